/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_skeleton_unpack.c - the packed .tflite skeleton (FORMAT 3.6) both
 * ways, on hostile bytes.
 *
 * Unpacking: the input is taken as a packed skeleton, as the rebuild hands
 * it to decoder_c/tflite/tc_tflite.c's unpacker (through
 * fuzz_tflite_rebuild a mutation almost always breaks the coded payload or
 * its CRC before the unpacker sees it).  The output buffer is exactly the
 * header's S bytes, so ASan sees a write past them, and the input is
 * exactly its own size.
 *
 * Packing: the input is also taken as a skeleton, packed by the host's
 * packer (host/tinycabac/csrc/skeleton_pack.c, which skeleton_pack.py
 * calls), and must unpack to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "skeleton_pack.h"
/* unpack_skeleton is static: the target compiles the helper in. */
#include "../tflite/tc_tflite.c"

static void check_unpack(const uint8_t *data, size_t size)
{
    uint8_t *in, *out;
    uint32_t skeleton_size;
    tc_status st;
    /* the rebuild refuses a packed skeleton shorter than its header before unpacking */
    if (size < PACKED_HEADER_SIZE || (skeleton_size = read_le32(data)) > FUZZ_MAX_OUTPUT)
        return;
    in = malloc(size);
    out = malloc(skeleton_size ? skeleton_size : 1u);
    if (in == NULL || out == NULL)
        abort();
    memcpy(in, data, size);
    st = unpack_skeleton(in, (uint32_t)size, out, skeleton_size);
    if (st != TC_OK && st != TC_ERR_RESERVED)
        abort(); /* a corrupt packed skeleton is a reserved field, nothing else */
    if (memcmp(in, data, size) != 0)
        abort(); /* the packed bytes are only read */
    free(in);
    free(out);
}

/* Pack data[0 .. n) as the host does and unpack it again. */
static void check_round_trip(const uint8_t *data, size_t n)
{
    size_t room = tcs_pack_bound(n);
    uint8_t *packed = malloc(room), *out = malloc(n + 1u);
    int64_t packed_size;
    if (packed == NULL || out == NULL || (packed_size = tcs_pack(data, n, packed, room)) < 0)
        abort();
    if (unpack_skeleton(packed, (uint32_t)packed_size, out, (uint32_t)n) != TC_OK || memcmp(out, data, n) != 0)
        abort(); /* what the host packs, a device must unpack to the same bytes */
    free(packed);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_unpack(data, size);
    check_round_trip(data, size);
    return 0;
}
