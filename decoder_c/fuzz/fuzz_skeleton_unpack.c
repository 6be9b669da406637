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
 * Packing: the input is also taken as a skeleton, packed with the host's
 * parse and move-to-front (host/tinycabac/csrc/skeleton_pack.c) into the
 * sections host/tinycabac/skeleton_pack.py lays out, and must unpack to
 * itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "skeleton_pack.h"
/* unpack_skeleton is static: the target compiles the helper in. */
#include "../tflite/tc_tflite.c"

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A length as bytes of 255 while they last, then the rest (FORMAT 3.6). */
static size_t put_length(uint8_t *out, uint32_t value)
{
    size_t n = 0;
    for (; value >= 255u; value -= 255u)
        out[n++] = 255u;
    out[n++] = (uint8_t)value;
    return n;
}

static void check_unpack(const uint8_t *data, size_t size)
{
    uint8_t *in, *out;
    uint32_t skeleton_size;
    tc_status st;
    /* the rebuild refuses fewer than 20 bytes before unpacking */
    if (size < 20u || (skeleton_size = read_le32(data)) > FUZZ_MAX_OUTPUT)
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
    size_t capacity = n / TCS_MIN_MATCH + 2u, room = 20u + 2u * n + 4u * capacity + 8u, literals = 0;
    uint32_t *counts = malloc(capacity * sizeof *counts), *lengths = malloc(capacity * sizeof *lengths),
             *distances = malloc(capacity * sizeof *distances);
    uint8_t *raw = malloc(n + 1u), *packed = malloc(room), *out = malloc(n + 1u);
    size_t at = 20u, k, start = 0, matches, b_size = 0, c_size = 0;
    int64_t sequences;
    if (counts == NULL || lengths == NULL || distances == NULL || raw == NULL || packed == NULL || out == NULL)
        abort();
    sequences = tcs_lz_parse(data, n, counts, lengths, distances, capacity);
    if (sequences < 1)
        abort();
    matches = (size_t)sequences - 1u;
    for (k = 0; k < (size_t)sequences; start += counts[k] + lengths[k], k++) { /* the literals, in order */
        memcpy(raw + literals, data + start, counts[k]);
        literals += counts[k];
    }
    tcs_move_to_front(raw, literals, packed + at);
    at += literals;
    for (k = 0; k < (size_t)sequences; k++)
        b_size += put_length(packed + at + b_size, counts[k]);
    at += b_size;
    for (k = 0; k < matches; k++)
        c_size += put_length(packed + at + c_size, lengths[k] - TCS_MIN_MATCH);
    at += c_size;
    for (k = 0; k < matches; k++) {
        packed[at + k] = (uint8_t)(distances[k] & 3u);
        packed[at + matches + k] = (uint8_t)(distances[k] >> 2);
        packed[at + 2u * matches + k] = (uint8_t)(distances[k] >> 10);
    }
    at += 3u * matches;
    put_u32(packed, (uint32_t)n);
    put_u32(packed + 4, (uint32_t)matches);
    put_u32(packed + 8, (uint32_t)literals);
    put_u32(packed + 12, (uint32_t)b_size);
    put_u32(packed + 16, (uint32_t)c_size);
    if (unpack_skeleton(packed, (uint32_t)at, out, (uint32_t)n) != TC_OK || memcmp(out, data, n) != 0)
        abort(); /* what the host packs, a device must unpack to the same bytes */
    free(counts);
    free(lengths);
    free(distances);
    free(raw);
    free(packed);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_unpack(data, size);
    check_round_trip(data, size);
    return 0;
}
