/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_skeleton_unpack.c - the packed .tflite skeleton's unpacker (FORMAT
 * 3.6, decoder_c/tflite/tc_tflite.c) on hostile bytes.  Through
 * fuzz_tflite_rebuild a mutation almost always breaks the coded payload or
 * its CRC before the unpacker sees it; here the input is the packed
 * skeleton itself, as the rebuild hands it over: the output buffer is
 * exactly the header's S bytes, so ASan sees a write past them, and the
 * input exactly its own size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
/* unpack_skeleton is static: the target compiles the helper in. */
#include "../tflite/tc_tflite.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in, *out;
    uint32_t skeleton_size;
    tc_status st;
    /* the rebuild refuses fewer than 20 bytes, and more than a file can hold, before unpacking */
    if (size < 20u || size > UINT32_MAX)
        return 0;
    skeleton_size = read_le32(data);
    if (skeleton_size > FUZZ_MAX_OUTPUT)
        return 0;
    in = malloc(size);
    out = malloc(skeleton_size ? skeleton_size : 1u);
    if (in == NULL || out == NULL)
        abort();
    memcpy(in, data, size);
    st = unpack_skeleton(in, (uint32_t)size, out, skeleton_size);
    if (st != TC_OK && st != TC_ERR_RESERVED)
        abort(); /* FORMAT 3.6: a corrupt packed skeleton is a reserved field, nothing else */
    if (memcmp(in, data, size) != 0)
        abort(); /* the packed bytes are only read */
    free(in);
    free(out);
    return 0;
}
