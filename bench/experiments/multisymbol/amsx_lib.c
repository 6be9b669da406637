/* host shared library: encode, decode (int32 out) and helpers for ctypes */
#include "amsx.h"
#include <stdlib.h>
size_t amsx_state_size(void) { return sizeof(amsx_state); }
size_t amsx_model_size(void) { return sizeof(amsx_model); }
int amsx_params(int *p) { p[0] = MB; p[1] = NCTX; p[2] = CTX_SHIFT; p[3] = ESC; p[4] = POW2; p[5] = DIVFREE; p[6] = NSYM; return 0; }
/* encode one tensor into out; if check, decode again and compare; returns bytes or <0 */
long amsx_roundtrip(const int32_t *v, const uint8_t *cols, size_t n, unsigned a0, uint8_t *out, size_t cap, int check)
{
    static amsx_state s;
    amsx_init(&s);
    long nb = amsx_encode(&s, v, cols, n, a0, out, cap);
    if (nb < 0 || !check) return nb;
#if SCALE
    return nb;   /* decode check only built without SCALE */
#else
    if (cols) return nb;
    int32_t *dec = malloc(4 * n + 4); uint32_t crc;
    amsx_init(&s);
    int rc = amsx_decode(&s, out, nb, dec, n, a0, &crc);
    if (rc) { free(dec); return -100 + rc; }
    for (size_t i = 0; i < n; i++) if (dec[i] != v[i]) { free(dec); return -200; }
    free(dec);
    return nb;
#endif
}
