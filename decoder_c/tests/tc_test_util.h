/*
 * tc_test_util.h - helpers shared by the decoder's C test drivers
 * (decoder_c/tests/) and libFuzzer targets (decoder_c/fuzz/).
 *
 * They decode whole streams and single tensors the way a careful caller
 * would, and check the decoder's promises on the way: parsed directory
 * entries are consistent with the bytes they came from, the streaming API
 * keeps its TC_NEED_INPUT / TC_NEED_OUTPUT contract, and nothing is written
 * outside the part of a buffer the decoder reports as filled.  A broken
 * promise ends the process through tcu_fail(), which is what a fuzzer or a
 * test driver needs to notice it.
 */
#ifndef TC_TEST_UTIL_H
#define TC_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "tinycabac.h"

/* Print "file:line: message" to stderr and abort (a fuzzer "crash"). */
void tcu_fail(const char *file, int line, const char *message);
#define TCU_CHECK(condition, message)                                                  \
    do {                                                                               \
        if (!(condition))                                                              \
            tcu_fail(__FILE__, __LINE__, message);                                     \
    } while (0)

/* Whole file into a malloc'd buffer; NULL on failure. */
uint8_t *tcu_read_file(const char *path, size_t *size);

/* Little-endian stores for building streams. */
void tcu_put_u16(uint8_t *p, uint32_t v);
void tcu_put_u32(uint8_t *p, uint32_t v);

/* Recompute header_crc of a stream held in a writable buffer, if the header
 * and the directory it declares fit in `size` (fuzzers use this to get past
 * the CRC and reach the directory parser). */
void tcu_fix_header_crc(uint8_t *data, size_t size);

/* A varint (FORMAT 2): LEB128 of v in its one encoding, the shortest.
 * Writes it at p (unless p is NULL) and returns its length, 1..5 bytes. */
size_t tcu_put_varint(uint8_t *p, uint32_t v);

/* The zigzag map of FORMAT 2: 0, -1, 1, -2 to 0, 1, 2, 3. */
uint32_t tcu_zigzag(int32_t v);

/* Bytes of the directory entry `t` of stream `s` came from (FORMAT 3.2):
 * its varints have one encoding each, so the fields fix the size. */
size_t tcu_entry_size(const tc_stream *s, const tc_tensor_info *t);

/* Offset in the stream of the crc32 field of the entry `t` came from. */
size_t tcu_entry_crc_offset(const tc_stream *s, const tc_tensor_info *t);

/* Offset in the stream of the base_crc32 field of the entry `t` came from
 * (delta modes only). */
size_t tcu_entry_base_crc_offset(const tc_stream *s, const tc_tensor_info *t);

/* NULL if `t` agrees with the stream and the format rules, else the broken
 * rule.  Every entry tc_stream_tensor() returns must pass; among the checks,
 * the entry written again from `t` must be the very bytes it was parsed
 * from (varints in their one encoding included). */
const char *tcu_check_info(const tc_stream *s, const tc_tensor_info *t);

/* A single tensor to put in a one-tensor stream. */
typedef struct {
    const char *name;
    uint8_t dtype, mode, ndim, axis, initial_activity;
    uint8_t quantizer;      /* quantized modes: tc_quantizer, written after axis (FORMAT 3.2) */
    uint8_t prediction;     /* tc_prediction (FORMAT 5.7) */
    uint32_t history;       /* prediction distance H, 0 exactly when prediction is none (a varint) */
    uint8_t rank, factor_shift; /* factor prediction (FORMAT 5.8), written after history */
    uint32_t dims[TC_MAX_NDIM];
    int32_t offset;         /* lossless (a zigzag varint) */
    uint32_t peak;          /* lossless: channel peaks' magnitude P, 0 for none (FORMAT 5.9) */
    uint8_t peak_axis;      /* written only when peak != 0 */
    uint32_t base_crc32;    /* delta modes */
    const uint8_t *steps;   /* quantized: step_count records of 3 bytes */
    uint32_t step_count;
} tcu_tensor_spec;

/* Writes header + one directory entry + payload into out (capacity cap).
 * Returns the stream size, 0 if it does not fit.  The fields are written as
 * FORMAT 3.2 lays them out, numbers as varints in their one encoding: the
 * history only when spec->prediction is not none, peak_axis only when the
 * peak is not 0.  With difference prediction the payload must code the
 * residuals (tcu_residuals), with scale prediction the levels coded with
 * their column activities (tcu_column_activities), with peaks the peak
 * entries first (tcu_peak_entry) and then the other elements' levels. */
size_t tcu_build_stream(uint8_t *out, size_t cap, const tcu_tensor_spec *spec, const uint8_t *payload,
                        uint32_t payload_size, uint32_t crc);

/* The residuals a stream with prediction distance `history` codes for
 * levels[0..n) (FORMAT 5.7): each level minus the level `history` elements
 * back clamped to int8 (minus 0 for the first `history` elements, and for
 * all of them when history = 0).  An independent statement of the rule the
 * decoder inverts; a residual may exceed the codable 2^31 when a level is
 * near it. */
void tcu_residuals(const int64_t *levels, size_t n, uint32_t history, int64_t *residuals);

/* The column activity each of levels[0..n) is coded with under scale
 * prediction at distance `history` > 0 (FORMAT 5.7): a ring of `history`
 * bytes, all `initial_activity` at first, each moved on by the magnitude
 * class of the levels in its column, except by a channel peak (peaks[i]
 * non-zero; peaks NULL: none), which leaves its column as it was (FORMAT
 * 5.9).  These are tce_encode_levels' `columns` (of the coded elements
 * only, with peaks: tcu_without_peaks); like tcu_residuals, written from
 * the format text, not from the decoder or the encoder. */
void tcu_column_activities(const int64_t *levels, const uint8_t *peaks, size_t n, uint32_t history,
                           unsigned initial_activity, uint8_t *columns);

/* Channel peaks (FORMAT 5.9) along one axis of a non-empty tensor: C
 * channels of channel_size elements, each in `slabs` runs of `inner`
 * consecutive elements (the products of the dims before and after the axis). */
typedef struct {
    uint32_t channels, channel_size, inner, slabs;
} tcu_peak_layout;

tcu_peak_layout tcu_peak_layout_of(uint32_t ndim, const uint32_t *dims, uint32_t axis);

/* Element number (C order) of place q of channel c: (o * C + c) * inner + j
 * for q = o * inner + j. */
size_t tcu_peak_element(const tcu_peak_layout *layout, uint32_t channel, uint32_t place);

/* Channel c's peak entry of the payload (FORMAT 5.9), as *bits bypass bins
 * holding *value MSB first: `place` among channel_size in the truncated
 * binary code, then the sign bit.  From the format text. */
void tcu_peak_entry(uint32_t channel_size, uint32_t place, unsigned negative, uint32_t *value, uint32_t *bits);

/* Makes place places[c] of every channel c a peak: its level becomes
 * -peak if negative[c], else peak, and peaks[i] 1 for it (0 for every other
 * element of levels[0..n)). */
void tcu_set_peaks(const tcu_peak_layout *layout, uint32_t peak, const uint32_t *places, const uint8_t *negative,
                   int64_t *levels, size_t n, uint8_t *peaks);

/* The values a payload codes after its peak entries: levels[i] of the
 * elements that are not peaks, in order, into coded[], and (columns not
 * NULL) their column activities into coded_columns[].  Returns how many. */
size_t tcu_without_peaks(const int64_t *levels, const uint8_t *columns, const uint8_t *peaks, size_t n,
                         int64_t *coded, uint8_t *coded_columns);

/* The dependent quantizer's state after `level` in `state` (FORMAT 6.2):
 * ((2 * state) & 7) | ((|level| & 1) XOR parity(state)), the parity being
 * the XOR of the state's three bits.  Written from the format text. */
unsigned tcu_dependent_next_state(unsigned state, int64_t level);

/* The reconstruction indices q of levels[0..n) (FORMAT 6.2): the levels
 * themselves with the uniform quantizer; with the dependent one, 2 * level
 * in even states or 2 * level - sign(level) in odd ones, as the 8-state
 * machine (starting at 0) says.  Written from the format text, not from
 * the decoder or the encoder. */
void tcu_reconstruction_indices(const int64_t *levels, size_t n, unsigned quantizer, int64_t *indices);

/* The prediction FORMAT 5.7 makes from an earlier level: clamped to int8. */
int64_t tcu_clamp_int8(int64_t level);

/* Working memory for a tensor's prediction and peaks, as a caller gives it: malloc'd
 * at exactly info->work_size bytes (at least one) so that ASan sees any
 * access past it, and filled with junk the decoder must clear or overwrite. */
int8_t *tcu_history_buffer(const tc_tensor_info *info);

/* Every tensor of a stream, decoded with tc_decode_tensor. */
typedef struct {
    tc_status status;       /* first failure, or TC_OK */
    uint32_t failed_index;  /* tensor that failed (tensor_count if open/size failed) */
    tc_stream stream;
    uint32_t count;         /* tensors decoded or attempted */
    tc_tensor_info *info;   /* [count] */
    uint8_t **data;         /* [count], exact-size buffers; NULL if skipped */
    size_t *bytes;          /* [count] */
} tcu_decoded;

/* Harness-level status: the output would exceed max_output bytes. */
#define TCU_SKIPPED_LARGE ((tc_status)-100)
/* Harness-level status: bytes after the last payload (strict mode). */
#define TCU_TRAILING_BYTES ((tc_status)-101)

/* 1 for the update modes, which decode in place over a base tensor. */
int tcu_mode_is_delta(unsigned mode);

/* The bytes of the base tensor named like `t` in `base` (NULL if there is
 * no such tensor of the same byte size, or no base at all). */
const uint8_t *tcu_find_base(const tcu_decoded *base, const tc_tensor_info *t);

/* Open `data` and decode every tensor, stopping at the first failure.
 * strict: also require size == 20 + directory_size + payload_area_size, the
 * whole-stream rule of FORMAT 3.1 that the host tools apply.  Buffers are
 * malloc'd at exactly the tensor's size so ASan sees any overflow.  Update
 * tensors (delta modes) start from the same-named tensor of `base` (zeros
 * if there is none), checked first with tc_check_base as a careful caller
 * does (check_base_first), or decoded blind to exercise the decoder's own
 * base check. */
tc_status tcu_decode_all(const uint8_t *data, size_t size, int strict, size_t max_output,
                         const tcu_decoded *base, int check_base_first, tcu_decoded *result);
/* The same, but tensors whose payload lies wholly outside [lo, hi) are
 * parsed and checked, not decoded (data NULL): what a damaged byte at lo
 * can change, when the header and directory are intact. */
tc_status tcu_decode_range(const uint8_t *data, size_t size, int strict, size_t max_output,
                           const tcu_decoded *base, int check_base_first, size_t lo, size_t hi,
                           tcu_decoded *result);
void tcu_decoded_free(tcu_decoded *result);
/* 1 if both hold the same tensors (names, types, shapes, and bytes where
 * both decoded them). */
int tcu_decoded_equal(const tcu_decoded *a, const tcu_decoded *b);

/* Chunk sizes for the streaming helper: drawn from a xorshift generator in
 * [1, in_max] and [1, out_max] bytes, so one fuzz input fixes them all. */
typedef struct {
    uint32_t state;
    size_t in_max;
    size_t out_max;
} tcu_chunks;

size_t tcu_chunk_size(tcu_chunks *c, size_t max);

typedef struct {
    size_t calls;
    size_t need_input;
    size_t need_output;
    size_t consumed; /* payload bytes the decoder took */
} tcu_stream_stats;

/* Decode one tensor with tc_decoder_init, tc_decoder_set_history (an
 * exact-size tcu_history_buffer) and tc_decoder_run, feeding src (the
 * payload, possibly followed by unrelated bytes, possibly cut short) in
 * chunks and draining output in chunks, xz-style: unconsumed input is kept
 * and passed again.  Checks the API contract after every call (see .c).
 * Output goes to out[0..*out_len); in the delta modes base[0..out_cap) is the
 * base tensor, handed to the decoder chunk by chunk.  Returns the decoder's final status, or
 * TC_ERR_TRUNCATED when src ends while the decoder still asks for input. */
tc_status tcu_decode_streaming(const tc_tensor_info *info, const uint8_t *src, size_t src_size,
                               tcu_chunks *chunks, const uint8_t *base, uint8_t *out, size_t out_cap,
                               size_t *out_len, tcu_stream_stats *stats);

#endif /* TC_TEST_UTIL_H */
