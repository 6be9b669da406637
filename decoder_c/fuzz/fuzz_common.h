/*
 * fuzz_common.h - input layout shared by the decoder's libFuzzer targets.
 *
 * Every stream target reads FUZZ_PREFIX control bytes, then a stream:
 *   byte 0      flags: bit 0 recompute the header CRC (so mutations reach the
 *               directory parser instead of dying at the CRC), bit 1 repair
 *               tensor CRCs (fuzz_decode_stream), bit 2 every tensor
 *   bytes 1..7  target parameters (tensor selector, chunk sizes, seeds)
 * tests/test_fuzz_regressions.py knows this layout to replay saved inputs
 * through the cffi decoder.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tc_test_util.h"

#define FUZZ_PREFIX 8u
#define FUZZ_FIX_HEADER_CRC 1u
#define FUZZ_FIX_TENSOR_CRC 2u
#define FUZZ_ALL_TENSORS 4u
#define FUZZ_MAX_OUTPUT ((size_t)4 << 20) /* keeps ASan fast; larger tensors are skipped */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The stream part of a fuzz input, copied to an exact-size writable buffer
 * (ASan sees reads past its end), header CRC repaired if asked. */
static inline uint8_t *fuzz_stream_copy(const uint8_t *data, size_t size, size_t skip, size_t *stream_size)
{
    uint8_t *copy;
    *stream_size = size - skip;
    copy = malloc(*stream_size ? *stream_size : 1u);
    if (copy == NULL)
        abort();
    memcpy(copy, data + skip, *stream_size);
    if (data[0] & FUZZ_FIX_HEADER_CRC)
        tcu_fix_header_crc(copy, *stream_size);
    return copy;
}

/* Bytes a tensor decodes to, if the harness is willing to allocate them. */
static inline int fuzz_output_fits(const tc_tensor_info *t, size_t *bytes)
{
    uint64_t n = (uint64_t)t->element_count * t->element_size;
    *bytes = (size_t)n;
    return n <= FUZZ_MAX_OUTPUT;
}

#endif /* FUZZ_COMMON_H */
