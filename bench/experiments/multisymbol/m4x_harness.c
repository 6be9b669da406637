/* MCU harness for unicorn: decode every tensor of a blob with amsx, check each CRC-32.
 * Blob: u32 T; per tensor u32 n, a0, H, nbytes, crc, then the payload padded to 4 bytes.
 * SCALE=1 (column activities over a ring of H) compiles, but no table measured it for amsx. */
#include <stdint.h>
#include <stddef.h>
#include "amsx.h"
static amsx_state st;
#if SCALE
static uint8_t ring[4096];
#endif
int32_t bench(const uint32_t *blob, int8_t *out)
{
    uint32_t T = *blob++;
    for (uint32_t t = 0; t < T; t++) {
        uint32_t n = blob[0], a0 = blob[1], H = blob[2], nbytes = blob[3], crc = blob[4], c = 0;
        const uint8_t *payload = (const uint8_t *)(blob + 5);
        (void)H;
        amsx_init(&st);
#if SCALE
        int rc = amsx_decode(&st, payload, nbytes, out, n, a0, &c, ring, H);
#else
        int rc = amsx_decode(&st, payload, nbytes, out, n, a0, &c);
#endif
        if (rc) return rc;
        if (c != crc) return -10;
        blob += 5 + (nbytes + 3) / 4;
    }
    return 0;
}
uint32_t amsx_sizeof_state = sizeof(amsx_state);
