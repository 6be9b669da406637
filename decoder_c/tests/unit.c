/*
 * unit.c - edge cases of the decoder's API, above all the streaming
 * contract of tc_decoder_run: 1-byte input chunks, 1-element and
 * sub-element output chunks, empty and scalar tensors, TC_NEED_INPUT /
 * TC_NEED_OUTPUT semantics, argument errors, in-place updates, and
 * prediction from an earlier row (FORMAT 5.7), difference and scale: the
 * history buffer the caller gives, its errors, reserved prediction fields,
 * and levels that prediction pushes past 2^31; factor prediction (FORMAT
 * 5.8): round trips whole and in 1-byte / 1-element chunks, its working
 * memory, its reserved fields, factors outside int8 and residuals beyond
 * 2^30; the quantizer byte and
 * dependent quantization (FORMAT 6.2), worked by hand and from the
 * encoder's trellis search, whole and one value per call; float32
 * reconstruction at the edges of the format (subnormals, ties, carries,
 * overflow); the directory's varints (FORMAT 2: one encoding each, 5 bytes
 * at most, field limits); channel peaks (FORMAT 5.9): their directory
 * rules, round trips along every axis, with scale prediction, at the
 * tensor's ends and the format's limits, whole and in 1-byte / 1-element
 * chunks that stop inside the peak entries, their working memory and
 * hand-made infos.
 * Streams are made with the host encoder core, so the file also checks
 * that encoder and decoder agree.  Exit status 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "tc_test_util.h"

/* The working state of every tc_decode_tensor call here. */
static tc_decoder whole_decoder;

static int failures, checks;

#define EXPECT(condition)                                                         \
    do {                                                                          \
        checks++;                                                                 \
        if (!(condition)) {                                                       \
            failures++;                                                           \
            fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #condition);  \
        }                                                                         \
    } while (0)

typedef struct {
    uint8_t bytes[1 << 16];
    size_t size;
    tc_stream stream;
    tc_tensor_info info;
    uint8_t expected[1 << 16];
} fixture;

/* The payload of levels[0..n) coded with `prediction` at distance
 * `history` (FORMAT 5.7): residuals for difference, the levels with
 * their column activities for scale, the levels alone for none.  Returns its size. */
static int64_t encode_predicted(const int64_t *levels, uint32_t n, uint8_t prediction, uint16_t history,
                                uint8_t *payload, size_t capacity)
{
    static int64_t residuals[4096];
    static uint8_t columns[4096];
    const int64_t *coded = levels;
    const uint8_t *steering = NULL;
    if (prediction == TC_PREDICT_DIFFERENCE) {
        tcu_residuals(levels, n, history, residuals);
        coded = residuals;
    } else if (prediction == TC_PREDICT_SCALE) {
        tcu_column_activities(levels, NULL, n, history, 0, columns);
        steering = columns;
    }
    return tce_encode_levels(coded, steering, n, 0, NULL, 0, payload, capacity, NULL);
}

/* A lossless tensor of `dtype` holding levels + offset, coded with
 * `prediction` at distance `history` (0 with TC_PREDICT_NONE). */
static void make_predicted(fixture *f, uint8_t dtype, const int64_t *levels, uint32_t n, uint32_t ndim,
                           const uint32_t *dims, int32_t offset, uint8_t prediction, uint16_t history)
{
    tcu_tensor_spec spec;
    uint8_t payload[1 << 15];
    unsigned size = dtype == TC_DTYPE_INT16 ? 2u : dtype == TC_DTYPE_INT32 ? 4u : 1u;
    uint32_t i, b;
    int64_t payload_size = encode_predicted(levels, n, prediction, history, payload, sizeof payload);
    memset(&spec, 0, sizeof spec);
    spec.name = "t";
    spec.dtype = dtype;
    spec.mode = TC_MODE_LOSSLESS;
    spec.prediction = prediction;
    spec.history = history;
    spec.ndim = (uint8_t)ndim;
    if (ndim > 0)
        memcpy(spec.dims, dims, ndim * sizeof *dims);
    spec.offset = offset;
    for (i = 0; i < n; i++)
        for (b = 0; b < size; b++)
            f->expected[i * size + b] = (uint8_t)((uint64_t)(levels[i] + offset) >> (8u * b));
    f->size = tcu_build_stream(f->bytes, sizeof f->bytes, &spec, payload, (uint32_t)payload_size,
                               tc_crc32(0, f->expected, (size_t)n * size));
    EXPECT(f->size > 0 && tc_stream_open(&f->stream, f->bytes, f->size) == TC_OK);
    EXPECT(tc_stream_tensor(&f->stream, 0, &f->info) == TC_OK && f->info.prediction == prediction &&
           f->info.history == history);
}

static void make_lossless(fixture *f, uint8_t dtype, const int64_t *levels, uint32_t n, uint32_t ndim,
                          const uint32_t *dims, int32_t offset)
{
    make_predicted(f, dtype, levels, n, ndim, dims, offset, TC_PREDICT_NONE, 0);
}

static void make_ramp(fixture *f, uint8_t dtype, uint32_t n)
{
    static int64_t levels[4096];
    uint32_t i;
    for (i = 0; i < n; i++)
        levels[i] = (int64_t)((i * 37u) % 201u) - 100;
    make_lossless(f, dtype, levels, n, 1, &n, dtype == TC_DTYPE_UINT8 ? 100 : 0);
}

static const uint8_t *payload(const fixture *f)
{
    return f->bytes + f->info.payload_offset;
}

static void test_chunked(uint8_t dtype, size_t in_max, size_t out_max)
{
    static fixture f;
    static uint8_t out[1 << 14];
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t len;
    tc_status st;
    make_ramp(&f, dtype, 1000);
    chunks.state = 1;
    chunks.in_max = in_max;
    chunks.out_max = out_max;
    st = tcu_decode_streaming(&f.info, payload(&f), f.info.payload_size, &chunks, NULL, out,
                                        1000u * f.info.element_size, &len, &stats);
    if (st != TC_OK)
        fprintf(stderr, "streaming dtype %u: %s\n", dtype, tc_status_string(st));
    EXPECT(st == TC_OK);
    EXPECT(len == 1000u * f.info.element_size && memcmp(out, f.expected, len) == 0);
    EXPECT(stats.need_input > 0 && stats.need_output > 0);
}

static void test_empty_tensor(void)
{
    static fixture f;
    uint32_t dims[2] = {0, 4};
    uint8_t garbage[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[4] = {9, 9, 9, 9};
    size_t in_pos = 0, out_pos = 0;
    tc_decoder d;
    make_lossless(&f, TC_DTYPE_INT8, NULL, 0, 2, dims, 0);
    EXPECT(f.info.element_count == 0 && f.info.payload_size == 0);
    EXPECT(tc_decoder_init(&d, &f.info) == TC_OK);
    EXPECT(tc_decoder_run(&d, NULL, &in_pos, 0, NULL, &out_pos, 0) == TC_OK);
    EXPECT(tc_decoder_run(&d, garbage, &in_pos, sizeof garbage, out, &out_pos, sizeof out) == TC_OK);
    EXPECT(in_pos == 0 && out_pos == 0 && out[0] == 9);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, NULL, 0, NULL, 0) == TC_OK);
}

static void test_scalar(void)
{
    static fixture f;
    int64_t level = -128;
    uint8_t out[1];
    make_lossless(&f, TC_DTYPE_INT8, &level, 1, 0, NULL, 0);
    EXPECT(f.info.ndim == 0 && f.info.element_count == 1);
    memset(&whole_decoder, 0xA5, sizeof whole_decoder); /* what it held before must not matter */
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, 1, NULL, 0) == TC_OK && out[0] == 0x80);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, 0, NULL, 0) == TC_ERR_OUTPUT_SIZE);
}

/* Fewer than 4 bytes: nothing consumed; fewer than TC_MAX_VALUE_INPUT and
 * not the end of the payload: TC_NEED_INPUT with what is left unconsumed. */
static void test_need_input(void)
{
    static fixture f;
    static uint8_t out[4096];
    size_t in_pos = 0, out_pos = 0, cut;
    tc_decoder d;
    make_ramp(&f, TC_DTYPE_INT8, 3000);
    EXPECT(f.info.payload_size > 2u * TC_MAX_VALUE_INPUT);
    tc_decoder_init(&d, &f.info);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, 3, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    EXPECT(in_pos == 0 && out_pos == 0);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, TC_MAX_VALUE_INPUT, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    EXPECT(in_pos == 4 && out_pos == 0); /* the code register is loaded, no value fits yet */
    cut = f.info.payload_size - 1u;
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, cut, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    EXPECT(cut - in_pos < TC_MAX_VALUE_INPUT && out_pos > 0 && out_pos < 3000);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, 0, out, &out_pos, sizeof out) == TC_ERR_ARGUMENT); /* in_pos > 0 */
    {
        size_t zero = 0;
        EXPECT(tc_decoder_run(&d, payload(&f), &zero, 0, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    }
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, sizeof out) == TC_OK);
    EXPECT(in_pos == f.info.payload_size && out_pos == 3000 && memcmp(out, f.expected, 3000) == 0);
}

/* Output chunks smaller than an element: TC_NEED_OUTPUT, nothing written. */
static void test_need_output(void)
{
    static fixture f;
    uint8_t out[8];
    size_t in_pos = 0, out_pos = 0;
    tc_decoder d;
    make_ramp(&f, TC_DTYPE_INT32, 10);
    tc_decoder_init(&d, &f.info);
    memset(out, 0xEE, sizeof out);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, 3) == TC_NEED_OUTPUT);
    EXPECT(out_pos == 0 && out[0] == 0xEE && out[2] == 0xEE);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, 0) == TC_NEED_OUTPUT);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, 7) == TC_NEED_OUTPUT);
    EXPECT(out_pos == 4 && memcmp(out, f.expected, 4) == 0 && out[4] == 0xEE);
}

/* Input beyond the payload is left alone; a finished decoder stays finished. */
static void test_payload_end(void)
{
    static fixture f;
    static uint8_t in[4096], out[1000], again[4];
    size_t in_pos = 0, out_pos = 0, extra_pos = 0, none = 0;
    tc_decoder d;
    make_ramp(&f, TC_DTYPE_INT8, 1000);
    memcpy(in, payload(&f), f.info.payload_size);
    memset(in + f.info.payload_size, 0x55, 100);
    tc_decoder_init(&d, &f.info);
    EXPECT(tc_decoder_run(&d, in, &in_pos, f.info.payload_size + 100u, out, &out_pos, sizeof out) == TC_OK);
    EXPECT(in_pos == f.info.payload_size && out_pos == 1000 && memcmp(out, f.expected, 1000) == 0);
    EXPECT(tc_decoder_run(&d, in, &extra_pos, 100, again, &none, sizeof again) == TC_OK);
    EXPECT(extra_pos == 0 && none == 0);
}

static void test_crc_mismatch(void)
{
    static fixture f;
    static uint8_t out[1000];
    make_ramp(&f, TC_DTYPE_INT8, 1000);
    f.bytes[tcu_entry_crc_offset(&f.stream, &f.info)] ^= 1u;
    tcu_fix_header_crc(f.bytes, f.size);
    EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_OK && tc_stream_tensor(&f.stream, 0, &f.info) == TC_OK);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, NULL, 0) == TC_ERR_CRC);
}

static void test_argument_errors(void)
{
    static fixture f;
    uint8_t byte = 0, out[4];
    size_t pos = 0, big = 5;
    tc_decoder d;
    tc_stream s;
    tc_tensor_info t;
    uint32_t index;
    make_ramp(&f, TC_DTYPE_INT8, 10);
    /* a stream that failed to open stays closed: the directory it claims is
     * not in the buffer, so nothing may read it */
    EXPECT(tc_stream_open(&s, f.bytes, TC_HEADER_SIZE) == TC_ERR_TRUNCATED);
    EXPECT(tc_stream_tensor(&s, 0, &t) == TC_ERR_ARGUMENT && tc_stream_find(&s, "t", 1, &t, NULL) == TC_ERR_ARGUMENT &&
           tc_decode_tensor(&s, &f.info, &whole_decoder, out, 4, NULL, 0) == TC_ERR_ARGUMENT);
    tc_decoder_init(&d, &f.info);
    EXPECT(tc_decoder_init(NULL, &f.info) == TC_ERR_ARGUMENT && tc_decoder_init(&d, NULL) == TC_ERR_ARGUMENT);
    EXPECT(tc_decoder_run(NULL, &byte, &pos, 1, out, &pos, 4) == TC_ERR_ARGUMENT);
    EXPECT(tc_decoder_run(&d, &byte, NULL, 1, out, &pos, 4) == TC_ERR_ARGUMENT);
    EXPECT(tc_decoder_run(&d, &byte, &pos, 1, out, NULL, 4) == TC_ERR_ARGUMENT);
    EXPECT(tc_decoder_run(&d, &byte, &big, 1, out, &pos, 4) == TC_ERR_ARGUMENT);
    EXPECT(tc_decoder_run(&d, NULL, &pos, 1, out, &pos, 4) == TC_ERR_ARGUMENT);
    pos = 0;
    EXPECT(tc_decoder_run(&d, &byte, &pos, 1, NULL, &pos, 4) == TC_ERR_ARGUMENT);
    EXPECT(tc_stream_open(NULL, f.bytes, f.size) == TC_ERR_ARGUMENT);
    EXPECT(tc_stream_open(&s, NULL, 5) == TC_ERR_ARGUMENT && tc_stream_open(&s, NULL, 0) == TC_ERR_TRUNCATED);
    EXPECT(tc_stream_tensor(NULL, 0, &t) == TC_ERR_ARGUMENT && tc_stream_tensor(&f.stream, 0, NULL) == TC_ERR_ARGUMENT);
    EXPECT(tc_stream_tensor(&f.stream, 1, &t) == TC_ERR_NOT_FOUND);
    EXPECT(tc_stream_find(&f.stream, NULL, 1, &t, &index) == TC_ERR_ARGUMENT);
    EXPECT(tc_stream_find(&f.stream, "u", 1, &t, &index) == TC_ERR_NOT_FOUND);
    EXPECT(tc_stream_find(&f.stream, "t", 1, &t, NULL) == TC_OK);
    EXPECT(tc_decode_tensor(NULL, &f.info, &whole_decoder, out, 4, NULL, 0) == TC_ERR_ARGUMENT &&
           tc_decode_tensor(&f.stream, NULL, &whole_decoder, out, 4, NULL, 0) == TC_ERR_ARGUMENT &&
           tc_decode_tensor(&f.stream, &f.info, NULL, out, 4, NULL, 0) == TC_ERR_ARGUMENT);
    EXPECT(tc_check_base(NULL, out, 4) == TC_ERR_ARGUMENT && tc_check_base(&f.info, out, 10) == TC_ERR_ARGUMENT);
    EXPECT(tc_crc32(5, NULL, 10) == 5 && tc_crc32(0, (const uint8_t *)"123456789", 9) == 0xCBF43926u);
}

/* Each status has its own message (tc_status_string walks one string of
 * them, so an off-by-one would shift every message), anything else the
 * unknown one. */
static void test_status_strings(void)
{
    static const struct {
        tc_status status;
        const char *text;
    } messages[] = {
        {TC_OK, "ok"},
        {TC_NEED_INPUT, "need more input"},
        {TC_NEED_OUTPUT, "output buffer full"},
        {TC_ERR_ARGUMENT, "invalid argument"},
        {TC_ERR_MAGIC, "not a tinycabac stream"},
        {TC_ERR_VERSION, "unsupported version"},
        {TC_ERR_TRUNCATED, "truncated stream"},
        {TC_ERR_HEADER_CRC, "header CRC mismatch"},
        {TC_ERR_RESERVED, "reserved or invalid field"},
        {TC_ERR_LIMIT, "exceeds a format limit"},
        {TC_ERR_PAYLOAD, "corrupt payload"},
        {TC_ERR_CRC, "tensor CRC mismatch"},
        {TC_ERR_NOT_FOUND, "tensor not found"},
        {TC_ERR_OUTPUT_SIZE, "output buffer too small"},
        {TC_ERR_BASE, "wrong base tensor"},
        {TC_ERR_HISTORY, "history buffer too small"},
    };
    size_t i;
    for (i = 0; i < sizeof messages / sizeof messages[0]; i++)
        EXPECT(strcmp(tc_status_string(messages[i].status), messages[i].text) == 0);
    EXPECT(strcmp(tc_status_string((tc_status)3), "unknown status") == 0);
    EXPECT(strcmp(tc_status_string((tc_status)77), "unknown status") == 0);
    EXPECT(strcmp(tc_status_string((tc_status)-14), "unknown status") == 0);
    EXPECT(strcmp(tc_status_string((tc_status)-1000), "unknown status") == 0);
}

/* In-place update: tc_check_base refuses a wrong base, decoding over one
 * reports TC_ERR_BASE. */
static void test_delta(void)
{
    static uint8_t stream[4096], payload_bytes[4096];
    uint8_t base[16], expected[16], out[16];
    int64_t levels[16];
    tcu_tensor_spec spec;
    tc_stream s;
    tc_tensor_info t;
    size_t size, i;
    int64_t payload_size;
    for (i = 0; i < 16; i++) {
        base[i] = (uint8_t)(10u + i * 7u);
        levels[i] = (int64_t)(i % 5u) - 2;
        expected[i] = (uint8_t)(base[i] + levels[i]);
    }
    payload_size = tce_encode_levels(levels, NULL, 16, 0, NULL, 0, payload_bytes, sizeof payload_bytes, NULL);
    memset(&spec, 0, sizeof spec);
    spec.name = "d";
    spec.dtype = TC_DTYPE_UINT8;
    spec.mode = TC_MODE_DELTA_LOSSLESS;
    spec.ndim = 1;
    spec.dims[0] = 16;
    spec.base_crc32 = tc_crc32(0, base, 16);
    size = tcu_build_stream(stream, sizeof stream, &spec, payload_bytes, (uint32_t)payload_size, tc_crc32(0, expected, 16));
    EXPECT(tc_stream_open(&s, stream, size) == TC_OK && tc_stream_tensor(&s, 0, &t) == TC_OK);
    EXPECT(tc_check_base(&t, base, 16) == TC_OK && tc_check_base(&t, base, 15) == TC_ERR_OUTPUT_SIZE);
    memcpy(out, base, 16);
    EXPECT(tc_decode_tensor(&s, &t, &whole_decoder, out, 16, NULL, 0) == TC_OK && memcmp(out, expected, 16) == 0);
    EXPECT(tc_check_base(&t, out, 16) == TC_ERR_BASE); /* applying it twice is refused */
    EXPECT(tc_decode_tensor(&s, &t, &whole_decoder, out, 16, NULL, 0) == TC_ERR_BASE);
    EXPECT(memcmp(out, expected, 16) == 0); /* ... before a byte of it is replaced */
    memcpy(out, base, 16);
    out[15] ^= 1u; /* a base wrong in its last byte only: refused untouched too */
    EXPECT(tc_decode_tensor(&s, &t, &whole_decoder, out, 16, NULL, 0) == TC_ERR_BASE);
    EXPECT(memcmp(out, base, 15) == 0 && out[15] == (base[15] ^ 1u));
}

/* ------------------------------------------------------------------ */
/* Integer reconstruction at the edges of each dtype (FORMAT 6.1).     */

#define INT32_LOW (-2147483647 - 1)
#define TWO_31_LEVEL ((int64_t)1 << 31) /* the largest |level| (FORMAT 5.5) */

static unsigned integer_size(uint8_t dtype)
{
    return dtype == TC_DTYPE_INT16 ? 2u : dtype == TC_DTYPE_INT32 ? 4u : 1u;
}

/* One lossless value level + offset: decodes when it fits the dtype, is a
 * corrupt payload otherwise (never wraps). */
static void expect_lossless_value(uint8_t dtype, int32_t offset, int64_t level, int fits)
{
    static fixture f;
    uint8_t out[4];
    uint32_t one = 1;
    make_lossless(&f, dtype, &level, 1, 1, &one, offset);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, NULL, 0) == (fits ? TC_OK : TC_ERR_PAYLOAD));
    EXPECT(!fits || memcmp(out, f.expected, integer_size(dtype)) == 0);
}

/* One delta-lossless value base + level, as expect_lossless_value. */
static void expect_delta_value(uint8_t dtype, int64_t base_value, int64_t level, int fits)
{
    static uint8_t stream[256], payload_bytes[64];
    unsigned size = integer_size(dtype), b;
    uint8_t base[4], expected[4], out[4];
    tcu_tensor_spec spec;
    tc_stream s;
    tc_tensor_info t;
    size_t stream_size;
    int64_t payload_size = tce_encode_levels(&level, NULL, 1, 0, NULL, 0, payload_bytes, sizeof payload_bytes, NULL);
    for (b = 0; b < size; b++) {
        base[b] = (uint8_t)((uint64_t)base_value >> (8u * b));
        expected[b] = (uint8_t)((uint64_t)(base_value + level) >> (8u * b));
    }
    memset(&spec, 0, sizeof spec);
    spec.name = "d";
    spec.dtype = dtype;
    spec.mode = TC_MODE_DELTA_LOSSLESS;
    spec.ndim = 0;
    spec.base_crc32 = tc_crc32(0, base, size);
    stream_size = tcu_build_stream(stream, sizeof stream, &spec, payload_bytes, (uint32_t)payload_size,
                                   tc_crc32(0, expected, size));
    EXPECT(tc_stream_open(&s, stream, stream_size) == TC_OK && tc_stream_tensor(&s, 0, &t) == TC_OK);
    memcpy(out, base, size);
    EXPECT(tc_decode_tensor(&s, &t, &whole_decoder, out, size, NULL, 0) == (fits ? TC_OK : TC_ERR_PAYLOAD));
    EXPECT(!fits || memcmp(out, expected, size) == 0);
}

static void test_integer_limits(void)
{
    expect_lossless_value(TC_DTYPE_INT8, 0, -128, 1);
    expect_lossless_value(TC_DTYPE_INT8, 0, 127, 1);
    expect_lossless_value(TC_DTYPE_INT8, 0, 128, 0);
    expect_lossless_value(TC_DTYPE_INT8, 0, -129, 0);
    expect_lossless_value(TC_DTYPE_INT8, 100, 27, 1);
    expect_lossless_value(TC_DTYPE_INT8, 100, 28, 0);
    expect_lossless_value(TC_DTYPE_INT8, 100, -228, 1);
    expect_lossless_value(TC_DTYPE_INT8, 1000, -1000, 1);  /* an offset beyond the dtype itself */
    expect_lossless_value(TC_DTYPE_INT8, 1000, -871, 0);
    expect_lossless_value(TC_DTYPE_INT8, -1000000, 999995, 1); /* offset and level both far outside */
    expect_lossless_value(TC_DTYPE_INT8, -1000000, 1000128, 0);
    expect_lossless_value(TC_DTYPE_INT8, INT32_LOW, TWO_31_LEVEL - 1, 1);
    expect_lossless_value(TC_DTYPE_INT8, 2147483647, -2147483647, 1);
    expect_lossless_value(TC_DTYPE_UINT8, -2000, 2255, 1);
    expect_lossless_value(TC_DTYPE_INT16, INT32_LOW, TWO_31_LEVEL, 1);
    expect_lossless_value(TC_DTYPE_UINT8, 0, 255, 1);
    expect_lossless_value(TC_DTYPE_UINT8, 0, 256, 0);
    expect_lossless_value(TC_DTYPE_UINT8, 0, -1, 0);
    expect_lossless_value(TC_DTYPE_UINT8, 0, 0, 1);
    expect_lossless_value(TC_DTYPE_INT16, -32768, 65535, 1);
    expect_lossless_value(TC_DTYPE_INT16, -32768, 65536, 0);
    expect_lossless_value(TC_DTYPE_INT16, -32768, -1, 0);
    expect_lossless_value(TC_DTYPE_INT32, 0, -TWO_31_LEVEL, 1);
    expect_lossless_value(TC_DTYPE_INT32, 0, TWO_31_LEVEL, 0);
    expect_lossless_value(TC_DTYPE_INT32, INT32_LOW, TWO_31_LEVEL, 1);
    expect_lossless_value(TC_DTYPE_INT32, INT32_LOW, -1, 0);
    expect_lossless_value(TC_DTYPE_INT32, 2147483647, -TWO_31_LEVEL, 1);
    expect_lossless_value(TC_DTYPE_INT32, 2147483647, 1, 0);
    expect_lossless_value(TC_DTYPE_INT32, 2147483647, TWO_31_LEVEL, 0); /* 2^32 - 1 + 2^31: past 2^32 */
    /* offsets at the dtype's edges: the speed build's per-tensor limits
     * (TC_LEVEL_LIMITS) are 1 and the dtype's whole span there */
    expect_lossless_value(TC_DTYPE_INT8, 127, 0, 1);
    expect_lossless_value(TC_DTYPE_INT8, 127, 1, 0);
    expect_lossless_value(TC_DTYPE_INT8, 127, -255, 1);
    expect_lossless_value(TC_DTYPE_INT8, 127, -256, 0);
    expect_lossless_value(TC_DTYPE_INT8, -128, -1, 0);
    expect_lossless_value(TC_DTYPE_INT8, -128, 255, 1);
    expect_lossless_value(TC_DTYPE_INT8, -128, 256, 0);
    expect_lossless_value(TC_DTYPE_UINT8, 255, 1, 0);
    expect_lossless_value(TC_DTYPE_UINT8, 255, -255, 1);
    expect_lossless_value(TC_DTYPE_UINT8, 255, -256, 0);
    expect_lossless_value(TC_DTYPE_UINT8, 256, -1, 1); /* just beyond uint8: the general test */
    expect_lossless_value(TC_DTYPE_UINT8, 256, 0, 0);
    expect_lossless_value(TC_DTYPE_INT16, 32767, 1, 0);
    expect_lossless_value(TC_DTYPE_INT16, 32767, -65535, 1);
    expect_lossless_value(TC_DTYPE_INT16, 32767, -65536, 0);
    expect_lossless_value(TC_DTYPE_INT32, INT32_LOW, TWO_31_LEVEL - 1, 1);
    expect_lossless_value(TC_DTYPE_INT32, -1, TWO_31_LEVEL, 1); /* a limit past 2^31, clamped */
    expect_lossless_value(TC_DTYPE_INT32, -1, -TWO_31_LEVEL + 1, 1);
    expect_lossless_value(TC_DTYPE_INT32, -1, -TWO_31_LEVEL, 0);
    expect_delta_value(TC_DTYPE_INT16, 32767, 0, 1);
    expect_delta_value(TC_DTYPE_INT16, 32767, 1, 0);
    expect_delta_value(TC_DTYPE_INT16, -32768, -1, 0);
    expect_delta_value(TC_DTYPE_INT16, -32768, 65535, 1);
    expect_delta_value(TC_DTYPE_UINT8, 200, 55, 1);
    expect_delta_value(TC_DTYPE_UINT8, 200, 56, 0);
    expect_delta_value(TC_DTYPE_UINT8, 0, -1, 0);
    expect_delta_value(TC_DTYPE_INT8, -128, 255, 1);
    expect_delta_value(TC_DTYPE_INT32, 2147483647, TWO_31_LEVEL, 0);
    expect_delta_value(TC_DTYPE_INT32, 2147483647, -TWO_31_LEVEL, 1);
    expect_delta_value(TC_DTYPE_INT32, INT32_LOW, TWO_31_LEVEL, 1);
    expect_delta_value(TC_DTYPE_INT32, INT32_LOW, -1, 0);
}

/* ------------------------------------------------------------------ */
/* Prediction from an earlier row (FORMAT 5.7).                        */

#define TWO_31 ((int64_t)1 << 31)

/* What ring byte i holds after the whole tensor (FORMAT 5.7): the last
 * row's level clamped to int8 for difference prediction, the column's
 * activity after its last level for scale prediction (the activity an
 * element one row beyond the end would be coded with). */
static int8_t final_ring_byte(unsigned prediction, const int64_t *levels, uint32_t n, uint32_t columns, uint32_t i)
{
    static int64_t extended[8192];
    static uint8_t activities[8192];
    if (prediction != TC_PREDICT_SCALE)
        return (int8_t)tcu_clamp_int8(levels[n - columns + i]);
    TCU_CHECK(n + columns <= 8192, "tensor too large for final_ring_byte");
    memset(extended, 0, sizeof extended);
    memcpy(extended, levels, n * sizeof *levels);
    tcu_column_activities(extended, NULL, n + columns, columns, 0, activities);
    return (int8_t)activities[n + i];
}

/* A tensor predicted at H = one row of `columns` (2-byte elements): it
 * takes fewer bytes than `plain`, decodes exactly whole and in 1-byte input
 * chunks (output chunks of out_max bytes), and uses only the first H bytes
 * of a larger buffer, which ends up holding the ring's final state. */
static void expect_predicted_round_trip(const fixture *predicted, const fixture *plain, const int64_t *levels,
                                        uint32_t n, uint32_t columns, uint8_t *out, size_t out_max)
{
    int8_t history[64];
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t len, size = 2u * n;
    uint32_t i;
    EXPECT(predicted->info.payload_size < plain->info.payload_size && columns + 8u <= sizeof history);
    memset(history, 0x77, sizeof history);
    EXPECT(tc_decode_tensor(&predicted->stream, &predicted->info, &whole_decoder, out, size, history, columns + 8u) == TC_OK);
    EXPECT(memcmp(out, predicted->expected, size) == 0);
    for (i = 0; i < columns; i++)
        EXPECT(history[i] == final_ring_byte(predicted->info.prediction, levels, n, columns, i));
    for (i = columns; i < columns + 8u; i++)
        EXPECT(history[i] == 0x77);
    chunks.state = 3;
    chunks.in_max = 1;
    chunks.out_max = out_max;
    memset(out, 0, size);
    EXPECT(tcu_decode_streaming(&predicted->info, payload(predicted), predicted->info.payload_size, &chunks, NULL, out,
                                size, &len, &stats) == TC_OK);
    EXPECT(len == size && memcmp(out, predicted->expected, size) == 0 && stats.need_input > 0);
}

/* Rows of an int16 tensor that repeat each other up to +-1, every ninth
 * column far outside int8 (the ring keeps those clamped): with H = one row
 * the tensor takes fewer bytes and decodes exactly, whole and in 1-byte /
 * 1-element chunks, using only the first H bytes of a larger buffer, which
 * ends up holding the last row clamped to int8. */
static void test_predicted_rows(void)
{
    enum { ROWS = 8, COLUMNS = 37, N = ROWS * COLUMNS };
    static fixture plain, predicted;
    static int64_t levels[N];
    static uint8_t out[2 * N];
    uint32_t dims[2] = {ROWS, COLUMNS}, i;
    for (i = 0; i < N; i++) {
        uint32_t column = i % COLUMNS;
        int64_t shape = (int64_t)(column * 29u % 61u) - 30;
        levels[i] = shape * (column % 9u == 5u ? 40 : 1) + (int64_t)(i / COLUMNS % 3u) - 1;
    }
    make_predicted(&plain, TC_DTYPE_INT16, levels, N, 2, dims, 0, TC_PREDICT_NONE, 0);
    make_predicted(&predicted, TC_DTYPE_INT16, levels, N, 2, dims, 0, TC_PREDICT_DIFFERENCE, COLUMNS);
    expect_predicted_round_trip(&predicted, &plain, levels, N, COLUMNS, out, 2);
}

/* H = 1 (every element predicted from the one before) and H = 65535, longer
 * than the tensor, where every prediction is the initial 0: the payload is
 * then the one without prediction, and still needs all H bytes. */
static void test_history_extremes(void)
{
    static fixture plain, longest, shortest;
    static int8_t history[TC_MAX_HISTORY];
    static int64_t levels[500];
    static uint8_t out[500];
    uint32_t n = 500, i;
    for (i = 0; i < n; i++)
        levels[i] = (int64_t)(i / 7u % 50u) - 25; /* runs of equal levels */
    make_predicted(&plain, TC_DTYPE_INT8, levels, n, 1, &n, 0, TC_PREDICT_NONE, 0);
    make_predicted(&longest, TC_DTYPE_INT8, levels, n, 1, &n, 0, TC_PREDICT_DIFFERENCE, TC_MAX_HISTORY);
    make_predicted(&shortest, TC_DTYPE_INT8, levels, n, 1, &n, 0, TC_PREDICT_DIFFERENCE, 1);
    EXPECT(longest.info.payload_size == plain.info.payload_size &&
           memcmp(payload(&longest), payload(&plain), plain.info.payload_size) == 0);
    EXPECT(tc_decode_tensor(&longest.stream, &longest.info, &whole_decoder, out, n, history, TC_MAX_HISTORY - 1) == TC_ERR_HISTORY);
    EXPECT(tc_decode_tensor(&longest.stream, &longest.info, &whole_decoder, out, n, history, TC_MAX_HISTORY) == TC_OK &&
           memcmp(out, plain.expected, n) == 0);
    EXPECT(shortest.info.payload_size < plain.info.payload_size);
    EXPECT(tc_decode_tensor(&shortest.stream, &shortest.info, &whole_decoder, out, n, history, 1) == TC_OK &&
           memcmp(out, plain.expected, n) == 0);
}

/* tc_decoder_set_history: argument errors, too little memory, too late; a
 * run without history is refused before it consumes or writes anything,
 * and so is tc_decode_tensor with too little.  H = 0 needs nothing. */
static void test_history_errors(void)
{
    enum { H = 10, N = 100 };
    static fixture f, plain;
    static int8_t history[2 * H];
    static int64_t levels[N];
    uint8_t out[N], untouched[N];
    size_t in_pos = 0, out_pos = 0, i;
    uint32_t n = N;
    tc_decoder d;
    for (i = 0; i < N; i++)
        levels[i] = (int64_t)(i % H) * 3 - 14 + (int64_t)(i / 30u);
    make_predicted(&f, TC_DTYPE_INT8, levels, N, 1, &n, 0, TC_PREDICT_DIFFERENCE, H);
    EXPECT(f.info.payload_size > 4u + 1u);
    memset(untouched, 0xEE, sizeof untouched);
    memcpy(out, untouched, sizeof out);

    EXPECT(tc_decoder_set_history(NULL, history, sizeof history) == TC_ERR_ARGUMENT);
    EXPECT(tc_decoder_init(&d, &f.info) == TC_OK);
    EXPECT(tc_decoder_set_history(&d, NULL, H) == TC_ERR_HISTORY);
    EXPECT(tc_decoder_set_history(&d, history, H - 1) == TC_ERR_HISTORY);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, sizeof out) == TC_ERR_HISTORY);
    EXPECT(in_pos == 0 && out_pos == 0 && memcmp(out, untouched, sizeof out) == 0);
    EXPECT(tc_decoder_set_history(&d, history, H) == TC_OK); /* the refused run did not start decoding */
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, 5, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    EXPECT(in_pos == 4 && out_pos == 0);
    EXPECT(tc_decoder_set_history(&d, history, H) == TC_ERR_ARGUMENT); /* started: too late */
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, sizeof out) == TC_OK);
    EXPECT(out_pos == N && memcmp(out, f.expected, N) == 0);

    memcpy(out, untouched, sizeof out);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, history, H - 1) == TC_ERR_HISTORY);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, NULL, 0) == TC_ERR_HISTORY);
    EXPECT(memcmp(out, untouched, sizeof out) == 0);

    make_ramp(&plain, TC_DTYPE_INT8, N);
    memset(history, 0x33, sizeof history);
    EXPECT(tc_decoder_init(&d, &plain.info) == TC_OK);
    EXPECT(tc_decoder_set_history(&d, NULL, 0) == TC_OK);
    EXPECT(tc_decoder_set_history(&d, history, 1) == TC_OK && history[0] == 0x33); /* a no-op for H = 0 */
    in_pos = out_pos = 0;
    EXPECT(tc_decoder_run(&d, payload(&plain), &in_pos, plain.info.payload_size, out, &out_pos, sizeof out) == TC_OK);
    EXPECT(memcmp(out, plain.expected, N) == 0);
}

/* An update with prediction of either kind: a too-small history is refused
 * with the base left in place; with enough it applies like any other
 * update. */
static void test_predicted_update(uint8_t prediction)
{
    enum { H = 4, N = 24 };
    static uint8_t stream[4096], payload_bytes[4096];
    static int8_t history[H];
    uint8_t base[N], expected[N], out[N];
    int64_t levels[N];
    tcu_tensor_spec spec;
    tc_stream s;
    tc_tensor_info t;
    size_t size, i;
    int64_t payload_size;
    for (i = 0; i < N; i++) {
        base[i] = (uint8_t)(100u + i * 5u);
        levels[i] = (int64_t)(i % H) - 2 + (i >= 12u); /* the same step for every row, then one more */
        expected[i] = (uint8_t)(base[i] + levels[i]);
    }
    payload_size = encode_predicted(levels, N, prediction, H, payload_bytes, sizeof payload_bytes);
    memset(&spec, 0, sizeof spec);
    spec.name = "u";
    spec.dtype = TC_DTYPE_UINT8;
    spec.mode = TC_MODE_DELTA_LOSSLESS;
    spec.prediction = prediction;
    spec.history = H;
    spec.ndim = 1;
    spec.dims[0] = N;
    spec.base_crc32 = tc_crc32(0, base, N);
    size = tcu_build_stream(stream, sizeof stream, &spec, payload_bytes, (uint32_t)payload_size, tc_crc32(0, expected, N));
    EXPECT(tc_stream_open(&s, stream, size) == TC_OK && tc_stream_tensor(&s, 0, &t) == TC_OK &&
           t.prediction == prediction && t.history == H);
    memcpy(out, base, N);
    EXPECT(tc_decode_tensor(&s, &t, &whole_decoder, out, N, history, H - 1) == TC_ERR_HISTORY && memcmp(out, base, N) == 0);
    EXPECT(tc_decode_tensor(&s, &t, &whole_decoder, out, N, history, H) == TC_OK && memcmp(out, expected, N) == 0);
}

/* The stream of `f` with its payload and CRC unchanged but the directory
 * declaring `prediction` at distance `history` instead. */
static void relabel_prediction(const fixture *f, fixture *relabelled, uint8_t prediction, uint16_t history)
{
    tcu_tensor_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.name = "t";
    spec.dtype = f->info.dtype;
    spec.mode = f->info.mode;
    spec.offset = f->info.offset;
    spec.ndim = f->info.ndim;
    memcpy(spec.dims, f->info.dims, sizeof spec.dims);
    spec.prediction = prediction;
    spec.history = history;
    relabelled->size = tcu_build_stream(relabelled->bytes, sizeof relabelled->bytes, &spec, payload(f),
                                        f->info.payload_size, f->info.crc32);
    EXPECT(tc_stream_open(&relabelled->stream, relabelled->bytes, relabelled->size) == TC_OK);
    EXPECT(tc_stream_tensor(&relabelled->stream, 0, &relabelled->info) == TC_OK);
}

/* A pruned-column int16 tensor: the same input channels are zero in every
 * row, a few are large (beyond int8, so the ring holds them clamped) and
 * the rest small, with signs that do not repeat from row to row. */
static void pruned_columns(int64_t *levels, uint32_t rows, uint32_t columns)
{
    uint32_t state = 12345u, i;
    for (i = 0; i < rows * columns; i++) {
        uint32_t column = i % columns, magnitude;
        state = state * 1103515245u + 12345u;
        magnitude = column % 4u == 0u ? 0u : column % 7u == 3u ? 300u + (state >> 16) % 1500u : (state >> 16) % 4u;
        levels[i] = (state >> 30) & 1u ? -(int64_t)magnitude : (int64_t)magnitude;
    }
}

/* Scale prediction (FORMAT 5.7): the encoder's payload for a pruned-column
 * tensor with H = one row is smaller than without prediction, decodes
 * exactly whole and in 1-byte input chunks using only the first H bytes of
 * a larger buffer, which ends up holding the last row clamped to int8; the
 * same payload declared with no or difference prediction does not decode,
 * so the decoder really steers its model by the ring. */
static void test_scale_prediction(void)
{
    enum { ROWS = 12, COLUMNS = 41, N = ROWS * COLUMNS };
    static fixture plain, scaled, relabelled;
    static int64_t levels[N];
    static uint8_t out[2 * N];
    uint32_t dims[2] = {ROWS, COLUMNS};
    int8_t history[COLUMNS];
    pruned_columns(levels, ROWS, COLUMNS);
    make_predicted(&plain, TC_DTYPE_INT16, levels, N, 2, dims, 0, TC_PREDICT_NONE, 0);
    make_predicted(&scaled, TC_DTYPE_INT16, levels, N, 2, dims, 0, TC_PREDICT_SCALE, COLUMNS);
    expect_predicted_round_trip(&scaled, &plain, levels, N, COLUMNS, out, 1);
    relabel_prediction(&scaled, &relabelled, TC_PREDICT_NONE, 0);
    EXPECT(tc_decode_tensor(&relabelled.stream, &relabelled.info, &whole_decoder, out, sizeof out, NULL, 0) != TC_OK);
    relabel_prediction(&scaled, &relabelled, TC_PREDICT_DIFFERENCE, COLUMNS);
    EXPECT(tc_decode_tensor(&relabelled.stream, &relabelled.info, &whole_decoder, out, sizeof out, history, COLUMNS) != TC_OK);
}

/* A scale-predicted tensor needs its H bytes like a difference-predicted
 * one: with fewer, tc_decode_tensor and tc_decoder_run return
 * TC_ERR_HISTORY and touch neither the output nor the history. */
static void test_scale_history_too_small(void)
{
    enum { ROWS = 6, COLUMNS = 20, N = ROWS * COLUMNS };
    static fixture f;
    static int64_t levels[N];
    uint8_t out[2 * N], untouched[2 * N];
    int8_t history[COLUMNS];
    uint32_t dims[2] = {ROWS, COLUMNS};
    size_t in_pos = 0, out_pos = 0;
    tc_decoder d;
    pruned_columns(levels, ROWS, COLUMNS);
    make_predicted(&f, TC_DTYPE_INT16, levels, N, 2, dims, 0, TC_PREDICT_SCALE, COLUMNS);
    memset(untouched, 0xEE, sizeof untouched);
    memcpy(out, untouched, sizeof out);
    memset(history, 0x44, sizeof history);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, history, COLUMNS - 1) == TC_ERR_HISTORY);
    EXPECT(memcmp(out, untouched, sizeof out) == 0 && history[0] == 0x44 && history[COLUMNS - 2] == 0x44);
    EXPECT(tc_decoder_init(&d, &f.info) == TC_OK);
    EXPECT(tc_decoder_set_history(&d, history, COLUMNS - 1) == TC_ERR_HISTORY);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, sizeof out) == TC_ERR_HISTORY);
    EXPECT(in_pos == 0 && out_pos == 0 && memcmp(out, untouched, sizeof out) == 0 && history[0] == 0x44);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, history, COLUMNS) == TC_OK &&
           memcmp(out, f.expected, sizeof out) == 0);
}

/* tc_stream_open status of a one-tensor stream whose entry declares
 * `prediction` and (written only when prediction != 0) `history`. */
static tc_status open_with_prediction(uint8_t prediction, uint32_t history)
{
    static uint8_t bytes[256];
    static const int64_t levels[4] = {1, -2, 3, -4};
    static const uint8_t expected[4] = {1, 0xFE, 3, 0xFC};
    uint8_t payload_bytes[64];
    int64_t payload_size = tce_encode_levels(levels, NULL, 4, 0, NULL, 0, payload_bytes, sizeof payload_bytes, NULL);
    tcu_tensor_spec spec;
    tc_stream s;
    size_t size;
    memset(&spec, 0, sizeof spec);
    spec.name = "r";
    spec.dtype = TC_DTYPE_INT8;
    spec.mode = TC_MODE_LOSSLESS;
    spec.prediction = prediction;
    spec.history = history;
    spec.ndim = 1;
    spec.dims[0] = 4;
    size = tcu_build_stream(bytes, sizeof bytes, &spec, payload_bytes, (uint32_t)payload_size,
                            tc_crc32(0, expected, 4));
    EXPECT(size > 0);
    return tc_stream_open(&s, bytes, size);
}

/* FORMAT 3.2: prediction 4..255 is reserved, and so is history 0 with
 * prediction 1 or 2; streams of the three formats before this one, and of
 * the next, are refused by version. */
static void test_reserved_prediction_fields(void)
{
    static fixture f;
    static const uint8_t other_versions[4] = {TC_FORMAT_VERSION - 3u, TC_FORMAT_VERSION - 2u, TC_FORMAT_VERSION - 1u,
                                              TC_FORMAT_VERSION + 1u};
    size_t i;
    EXPECT(open_with_prediction(TC_PREDICT_NONE, 0) == TC_OK);
    EXPECT(open_with_prediction(TC_PREDICT_DIFFERENCE, 2) == TC_OK);
    EXPECT(open_with_prediction(TC_PREDICT_SCALE, 2) == TC_OK);
    EXPECT(open_with_prediction(4, 2) == TC_ERR_RESERVED);
    EXPECT(open_with_prediction(255, 2) == TC_ERR_RESERVED);
    EXPECT(open_with_prediction(TC_PREDICT_DIFFERENCE, 0) == TC_ERR_RESERVED);
    EXPECT(open_with_prediction(TC_PREDICT_SCALE, 0) == TC_ERR_RESERVED);
    for (i = 0; i < sizeof other_versions; i++) {
        make_ramp(&f, TC_DTYPE_INT8, 10);
        f.bytes[4] = other_versions[i];
        tcu_fix_header_crc(f.bytes, f.size);
        EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_ERR_VERSION);
    }
}

/* A hand-made tc_tensor_info must be as consistent as a parsed one: a
 * reserved kind, or a history that does not match the kind, is refused. */
static void test_hand_made_prediction_info(void)
{
    static fixture f;
    static int8_t history[8];
    tc_tensor_info t;
    tc_decoder d;
    make_ramp(&f, TC_DTYPE_INT8, 10);
    t = f.info;
    t.prediction = 4;
    t.history = 5;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.prediction = TC_PREDICT_NONE;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.prediction = TC_PREDICT_SCALE;
    t.history = 0;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.prediction = TC_PREDICT_DIFFERENCE;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.prediction = TC_PREDICT_SCALE;
    t.history = 5;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    EXPECT(tc_decoder_set_history(&d, history, 4) == TC_ERR_HISTORY && tc_decoder_set_history(&d, history, 5) == TC_OK);
}

/* ---- factor prediction (FORMAT 5.8) ---- */

/* A one-tensor stream of `dtype` whose payload is `payload_bytes` and whose
 * entry has factor prediction with rows of H, `rank` and `shift`; expected[]
 * must already hold the decoded bytes. */
static void build_factored(fixture *f, uint8_t dtype, uint32_t n, uint16_t history, uint8_t rank, uint8_t shift,
                           uint8_t initial_activity, const uint8_t *payload_bytes, int64_t payload_size, size_t bytes)
{
    tcu_tensor_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.name = "f";
    spec.dtype = dtype;
    spec.mode = TC_MODE_LOSSLESS;
    spec.initial_activity = initial_activity;
    spec.prediction = TC_PREDICT_FACTORS;
    spec.history = history;
    spec.rank = rank;
    spec.factor_shift = shift;
    spec.ndim = 1;
    spec.dims[0] = n;
    EXPECT(payload_size > 0);
    f->size = tcu_build_stream(f->bytes, sizeof f->bytes, &spec, payload_bytes, (uint32_t)payload_size,
                               tc_crc32(0, f->expected, bytes));
    EXPECT(f->size > 0 && tc_stream_open(&f->stream, f->bytes, f->size) == TC_OK);
    EXPECT(tc_stream_tensor(&f->stream, 0, &f->info) == TC_OK && f->info.prediction == TC_PREDICT_FACTORS &&
           f->info.rank == rank && f->info.factor_shift == shift && f->info.work_size == (history + 1u) * rank);
}

/* An int16 tensor of n levels in rows of H (the last row short when H does
 * not divide n) that is nearly the product of int8 factors: coded with
 * them by the host encoder it decodes exactly, whole, in 1-byte input and
 * 1-element output chunks, and in the exact working memory but not a byte
 * less; where the factors are few beside the levels, it is also smaller
 * than without them. */
static void test_factor_prediction(uint16_t history, uint8_t rank, uint8_t shift, int pays)
{
    enum { N = 301 };
    static fixture plain, factored;
    static int8_t factors[8192], work[8192];
    static int64_t levels[N];
    static uint8_t payload_bytes[1 << 15], out[2 * N];
    uint32_t rows = (N + history - 1u) / history, i, r, n = N, work_size = (history + 1u) * rank;
    const int8_t *b = factors, *a = factors + history * rank;
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t len;
    int64_t size;
    for (i = 0; i < (history + rows) * rank; i++)
        factors[i] = (int8_t)((int)((i * 97u + 13u) % 255u) - 127);
    for (i = 0; i < N; i++) {
        int64_t sum = 0, unit = (int64_t)1 << shift;
        for (r = 0; r < rank; r++)
            sum += (int64_t)a[i / history * rank + r] * b[i % history * rank + r];
        sum += shift ? unit / 2 : 0; /* floor((sum + 2^(s-1)) / 2^s), from the format's text */
        levels[i] = (sum >= 0 ? sum / unit : -((-sum + unit - 1) / unit)) + (int64_t)(i % 5u) - 2;
        factored.expected[2 * i] = (uint8_t)levels[i];
        factored.expected[2 * i + 1] = (uint8_t)((uint64_t)levels[i] >> 8);
    }
    size = tce_encode_factored(levels, N, history, a, b, rank, shift, 0, payload_bytes, sizeof payload_bytes, NULL);
    build_factored(&factored, TC_DTYPE_INT16, N, history, rank, shift, 0, payload_bytes, size, 2u * N);
    make_lossless(&plain, TC_DTYPE_INT16, levels, N, 1, &n, 0);
    EXPECT(!pays || factored.info.payload_size < plain.info.payload_size);
    memset(work, 0x77, sizeof work);
    EXPECT(tc_decode_tensor(&factored.stream, &factored.info, &whole_decoder, out, sizeof out, work, work_size - 1u) ==
           TC_ERR_HISTORY);
    EXPECT(tc_decode_tensor(&factored.stream, &factored.info, &whole_decoder, out, sizeof out, work, work_size) == TC_OK);
    EXPECT(memcmp(out, factored.expected, sizeof out) == 0 && work[work_size] == 0x77);
    chunks.state = 11;
    chunks.in_max = 1;
    chunks.out_max = 2;
    memset(out, 0, sizeof out);
    EXPECT(tcu_decode_streaming(&factored.info, payload(&factored), factored.info.payload_size, &chunks, NULL, out,
                                sizeof out, &len, &stats) == TC_OK);
    EXPECT(len == sizeof out && memcmp(out, factored.expected, sizeof out) == 0 && stats.need_input > 0);
}

/* The coded values of a factored tensor of int32 with H = 1 and rank 1
 * given directly: B[0], A[0], then the element's coded value.  The factors
 * are coded with the factor activity (48 at the start) and the element
 * with the running one, which the entry starts where the encoder's single
 * activity got to after the two factors. */
static tc_status decode_factored_values(int64_t b0, int64_t a0, int64_t coded, int64_t *level)
{
    static fixture f;
    static int8_t work[2];
    int64_t values[3];
    uint8_t payload_bytes[64], out[4];
    unsigned activity = 48, i;
    int64_t size;
    tc_status st;
    values[0] = b0;
    values[1] = a0;
    values[2] = coded;
    for (i = 0; i < 2; i++) {
        uint64_t m = values[i] < 0 ? (uint64_t)-values[i] : (uint64_t)values[i];
        unsigned magnitude_class = 0;
        while (m >> magnitude_class)
            magnitude_class++;
        activity = activity - (activity >> 3) + magnitude_class;
    }
    *level = coded + b0 * a0;
    for (i = 0; i < 4; i++)
        f.expected[i] = (uint8_t)((uint64_t)*level >> (8u * i));
    size = tce_encode_levels(values, NULL, 3, 48, NULL, 0, payload_bytes, sizeof payload_bytes, NULL);
    build_factored(&f, TC_DTYPE_INT32, 1, 1, 1, 0, (uint8_t)activity, payload_bytes, size, 4);
    st = tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, work, sizeof work);
    if (st == TC_OK)
        EXPECT(memcmp(out, f.expected, 4) == 0);
    return st;
}

/* A factor is an int8 and an element's coded value at most 2^30 in size
 * (FORMAT 5.8): anything else is a corrupt payload. */
static void test_factor_value_limits(void)
{
    int64_t level;
    EXPECT(decode_factored_values(-128, 127, TWO_31 / 2, &level) == TC_OK && level == TWO_31 / 2 - 128 * 127);
    EXPECT(decode_factored_values(127, -128, -TWO_31 / 2, &level) == TC_OK);
    EXPECT(decode_factored_values(128, 1, 0, &level) == TC_ERR_PAYLOAD);
    EXPECT(decode_factored_values(1, -129, 0, &level) == TC_ERR_PAYLOAD);
    EXPECT(decode_factored_values(1, 1, TWO_31 / 2 + 1, &level) == TC_ERR_PAYLOAD);
    EXPECT(decode_factored_values(1, 1, -TWO_31 / 2 - 1, &level) == TC_ERR_PAYLOAD);
}

/* FORMAT 3.2: rank 1..64 and factor_shift 0..24 with prediction 3; a
 * hand-made info with factors must hold the same, and the others no rank. */
static void test_reserved_factor_fields(void)
{
    static const struct {
        uint8_t rank, shift;
        tc_status status;
    } cases[] = {{1, 0, TC_OK}, {64, 24, TC_OK}, {0, 0, TC_ERR_RESERVED}, {65, 0, TC_ERR_RESERVED},
                 {1, 25, TC_ERR_RESERVED}, {255, 255, TC_ERR_RESERVED}};
    static fixture f;
    uint8_t payload_bytes[64];
    int64_t zeros[70] = {0};
    size_t i;
    tc_tensor_info t;
    tc_decoder d;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tcu_tensor_spec spec;
        int64_t size = tce_encode_levels(zeros, NULL, 66, 0, NULL, 0, payload_bytes, sizeof payload_bytes, NULL);
        tc_stream s;
        memset(&spec, 0, sizeof spec);
        spec.name = "f";
        spec.dtype = TC_DTYPE_INT8;
        spec.prediction = TC_PREDICT_FACTORS;
        spec.history = 1;
        spec.rank = cases[i].rank;
        spec.factor_shift = cases[i].shift;
        spec.ndim = 1;
        spec.dims[0] = 1;
        memset(f.expected, 0, 1);
        f.size = tcu_build_stream(f.bytes, sizeof f.bytes, &spec, payload_bytes, (uint32_t)size, tc_crc32(0, f.expected, 1));
        EXPECT(f.size > 0 && tc_stream_open(&s, f.bytes, f.size) == cases[i].status);
    }
    make_ramp(&f, TC_DTYPE_INT8, 10);
    t = f.info;
    t.prediction = TC_PREDICT_FACTORS;
    t.history = 5;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT); /* rank 0 */
    t.rank = 65;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.rank = 2;
    t.factor_shift = 25;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.factor_shift = 3;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t.prediction = TC_PREDICT_DIFFERENCE;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT); /* a rank without factors */
}

static void store_float(uint8_t *p, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, 4);
    tcu_put_u32(p, bits);
}

/* A quantized float32 tensor with step 1 whose payload codes `coded` with
 * `prediction` at distance `history`: residuals for difference, the levels
 * themselves otherwise.  expected[] receives the float32 of the levels
 * when every |level| <= 2^31 (levels beyond float precision are not used
 * here). */
static void make_float_step1(fixture *f, const int64_t *coded, uint32_t n, uint8_t prediction, uint16_t history)
{
    static const uint8_t step_one[3] = {1, 0, 0}; /* mantissa 1, exponent 0 */
    tcu_tensor_spec spec;
    uint8_t payload_bytes[256];
    uint8_t columns[8];
    int64_t levels[8] = {0}, payload_size;
    uint32_t i;
    for (i = 0; i < n && i < 8; i++) {
        int difference = prediction == TC_PREDICT_DIFFERENCE && i >= history;
        levels[i] = coded[i] + (difference ? tcu_clamp_int8(levels[i - history]) : 0);
        store_float(f->expected + 4u * i, (float)levels[i]);
    }
    if (prediction == TC_PREDICT_SCALE)
        tcu_column_activities(levels, NULL, n, history, 0, columns);
    payload_size = tce_encode_levels(coded, prediction == TC_PREDICT_SCALE ? columns : NULL, n, 0, NULL, 0,
                                     payload_bytes, sizeof payload_bytes, NULL);
    memset(&spec, 0, sizeof spec);
    spec.name = "q";
    spec.dtype = TC_DTYPE_FLOAT32;
    spec.mode = TC_MODE_QUANTIZED;
    spec.prediction = prediction;
    spec.history = history;
    spec.ndim = 1;
    spec.dims[0] = n;
    spec.axis = TC_AXIS_NONE;
    spec.steps = step_one;
    spec.step_count = 1;
    EXPECT(payload_size > 0);
    f->size = tcu_build_stream(f->bytes, sizeof f->bytes, &spec, payload_bytes, (uint32_t)payload_size,
                               tc_crc32(0, f->expected, 4u * n));
    EXPECT(f->size > 0 && tc_stream_open(&f->stream, f->bytes, f->size) == TC_OK);
    EXPECT(tc_stream_tensor(&f->stream, 0, &f->info) == TC_OK);
}

/* Decodes f whole and streamed; both must give `expected_status`, and on
 * TC_OK the expected floats. */
static void expect_float_decode(fixture *f, uint32_t n, tc_status expected_status)
{
    static int8_t history[16];
    uint8_t out[32];
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t len;
    tc_status st = tc_decode_tensor(&f->stream, &f->info, &whole_decoder, out, 4u * n, history, sizeof history);
    EXPECT(st == expected_status);
    if (st == TC_OK)
        EXPECT(memcmp(out, f->expected, 4u * n) == 0);
    chunks.state = 5;
    chunks.in_max = 2;
    chunks.out_max = 4;
    st = tcu_decode_streaming(&f->info, payload(f), f->info.payload_size, &chunks, NULL, out, 4u * n, &len, &stats);
    EXPECT(st == expected_status);
}

/* |level| may reach 2^31 through difference prediction but not pass it:
 * residual 2^31 after a predicted 127 is a corrupt payload although the
 * same values decode fine without prediction, and with scale prediction,
 * which codes the levels themselves. */
static void test_prediction_overflow(void)
{
    static const int64_t too_high[2] = {127, TWO_31}, highest[2] = {127, TWO_31 - 127};
    static const int64_t too_low[2] = {-128, -TWO_31}, lowest[2] = {-128, -TWO_31 + 128};
    static const struct {
        const int64_t *levels;
        uint8_t prediction;
        uint16_t history;
        tc_status expected;
    } cases[] = {
        {too_high, TC_PREDICT_NONE, 0, TC_OK},       {too_high, TC_PREDICT_DIFFERENCE, 1, TC_ERR_PAYLOAD},
        {too_high, TC_PREDICT_SCALE, 1, TC_OK},      {highest, TC_PREDICT_DIFFERENCE, 1, TC_OK},
        {too_low, TC_PREDICT_NONE, 0, TC_OK},        {too_low, TC_PREDICT_DIFFERENCE, 1, TC_ERR_PAYLOAD},
        {too_low, TC_PREDICT_SCALE, 1, TC_OK},       {lowest, TC_PREDICT_DIFFERENCE, 1, TC_OK},
    };
    static fixture f;
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_float_step1(&f, cases[i].levels, 2, cases[i].prediction, cases[i].history);
        expect_float_decode(&f, 2, cases[i].expected);
    }
}

/* ------------------------------------------------------------------ */
/* Quantizers and float reconstruction (FORMAT 6.2).                   */

/* A step record (FORMAT 3.3): u16 mantissa, then the int8 exponent. */
static void put_step(uint8_t *record, uint32_t mantissa, int exponent)
{
    tcu_put_u16(record, mantissa);
    record[2] = (uint8_t)(exponent & 0xFF);
}

/* float32 of q * step as the hardware computes it: the product is exact in
 * double (|q| * mantissa < 2^48) and the cast rounds it once, to nearest
 * even.  Only for results within float32's range. */
static float hardware_reconstruction(int64_t q, const uint8_t *step)
{
    int exponent = step[2] < 128u ? step[2] : step[2] - 256;
    return (float)ldexp((double)q * (double)(step[0] | (uint32_t)step[1] << 8), exponent);
}

/* Builds (without opening) a one-tensor stream of float32 `levels`, no
 * prediction, in `mode` with `quantizer`, shaped dims[0..ndim), one step
 * record per index along `axis` (TC_AXIS_NONE: steps[0..3) for all).
 * f->expected must already hold the decoded bytes, base_crc32 the base's
 * CRC-32 in mode 3. */
static void build_quantized(fixture *f, uint8_t mode, uint8_t quantizer, const int64_t *levels, uint32_t ndim,
                            const uint32_t *dims, uint8_t axis, const uint8_t *steps, uint32_t base_crc32)
{
    static uint8_t payload_bytes[1 << 15];
    tcu_tensor_spec spec;
    uint32_t n = 1, i;
    int64_t payload_size;
    for (i = 0; i < ndim; i++)
        n *= dims[i];
    payload_size = tce_encode_levels(levels, NULL, n, 0, NULL, 0, payload_bytes, sizeof payload_bytes, NULL);
    EXPECT(payload_size > 0);
    memset(&spec, 0, sizeof spec);
    spec.name = "q";
    spec.dtype = TC_DTYPE_FLOAT32;
    spec.mode = mode;
    spec.quantizer = quantizer;
    spec.ndim = (uint8_t)ndim;
    memcpy(spec.dims, dims, ndim * sizeof *dims);
    spec.axis = axis;
    spec.steps = steps;
    spec.step_count = axis == TC_AXIS_NONE ? 1u : dims[axis];
    spec.base_crc32 = base_crc32;
    f->size = tcu_build_stream(f->bytes, sizeof f->bytes, &spec, payload_bytes, (uint32_t)payload_size,
                               tc_crc32(0, f->expected, 4u * n));
    EXPECT(f->size > 0);
}

/* build_quantized, then open the stream and parse its entry. */
static void make_quantized(fixture *f, uint8_t mode, uint8_t quantizer, const int64_t *levels, uint32_t ndim,
                           const uint32_t *dims, uint8_t axis, const uint8_t *steps, uint32_t base_crc32)
{
    build_quantized(f, mode, quantizer, levels, ndim, dims, axis, steps, base_crc32);
    EXPECT(tc_stream_open(&f->stream, f->bytes, f->size) == TC_OK);
    EXPECT(tc_stream_tensor(&f->stream, 0, &f->info) == TC_OK && f->info.quantizer == quantizer);
}

/* FORMAT 3.2: a quantized entry (mode 1 or 3) carries a quantizer byte after
 * its axis, 0 uniform or 1 dependent; 2..255 are reserved fields.  The byte
 * counts: level 1 with step 0.5 is 0.5 uniform and 1.0 dependent (q = 2). */
static void test_reserved_quantizer(void)
{
    static const uint8_t modes[2] = {TC_MODE_QUANTIZED, TC_MODE_DELTA_QUANTIZED};
    static const uint8_t reserved[3] = {2, 3, 255};
    static fixture f;
    uint8_t step[3], out[4];
    int64_t level = 1;
    uint32_t one = 1;
    size_t m, i;
    put_step(step, 1, -1);
    for (m = 0; m < sizeof modes; m++) {
        for (i = 0; i < sizeof reserved; i++) {
            build_quantized(&f, modes[m], reserved[i], &level, 1, &one, TC_AXIS_NONE, step, 0);
            EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_ERR_RESERVED);
        }
    }
    store_float(f.expected, 0.5f);
    make_quantized(&f, TC_MODE_QUANTIZED, TC_QUANTIZER_UNIFORM, &level, 1, &one, TC_AXIS_NONE, step, 0);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, 4, NULL, 0) == TC_OK && memcmp(out, f.expected, 4) == 0);
    store_float(f.expected, 1.0f);
    make_quantized(&f, TC_MODE_QUANTIZED, TC_QUANTIZER_DEPENDENT, &level, 1, &one, TC_AXIS_NONE, step, 0);
    EXPECT(f.info.steps[0] == 1 && f.info.steps[2] == 0xFF); /* the steps follow the quantizer byte */
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, 4, NULL, 0) == TC_OK && memcmp(out, f.expected, 4) == 0);
}

/* A hand-made tc_tensor_info passes the parser's rules in tc_decoder_init:
 * a reserved quantizer, or any but uniform on a lossless mode, is refused. */
static void test_hand_made_quantizer_info(void)
{
    static fixture quantized, lossless;
    uint8_t step[3];
    int64_t level = 1;
    uint32_t one = 1;
    tc_tensor_info t;
    tc_decoder d;
    put_step(step, 1, 0);
    store_float(quantized.expected, 1.0f);
    make_quantized(&quantized, TC_MODE_QUANTIZED, TC_QUANTIZER_UNIFORM, &level, 1, &one, TC_AXIS_NONE, step, 0);
    t = quantized.info;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t.quantizer = TC_QUANTIZER_DEPENDENT;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t.quantizer = 2;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.quantizer = 255;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t = quantized.info; /* more dimensions than dims[] holds: refused, not read past it */
    t.axis = 0;
    t.ndim = TC_MAX_NDIM + 1u;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.ndim = 255;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    make_ramp(&lossless, TC_DTYPE_INT8, 10);
    t = lossless.info;
    t.quantizer = TC_QUANTIZER_DEPENDENT;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.mode = TC_MODE_DELTA_LOSSLESS;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.quantizer = TC_QUANTIZER_UNIFORM;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
}

/* Dependent quantization worked by hand (FORMAT 6.2): q = 2 * level in
 * even states, 2 * level - sign(level) in odd ones, then
 * state = ((2 * state) & 7) | ((|level| & 1) XOR parity(state)).  The walk
 * follows a de Bruijn sequence of order 4, so it visits all eight states
 * and takes each of the sixteen transitions (state, level parity) exactly
 * once, ending back in state 0 (test_dependent_reconstruction checks
 * this); it has zero levels in even and odd states (q = 0, as
 * sign(0) = 0), and reaches |level| = 2^31, where |q| is 2^32 or just
 * below. */
static const struct {
    unsigned state; /* before the level */
    int64_t level, q;
} dependent_walk[16] = {
    {0, 2, 4},                           /* 0 -> 0 */
    {0, 1, 2},                           /* 0 -> 1 */
    {1, -3, -5},                         /* 1 -> 2 */
    {2, -1, -2},                         /* 2 -> 4 */
    {4, 0, 0},                           /* 4 -> 1 */
    {1, 0, 0},                           /* 1 -> 3 */
    {3, -2, -3},                         /* 3 -> 6 */
    {6, 3, 6},                           /* 6 -> 5 */
    {5, -TWO_31, -2 * TWO_31 + 1},       /* 5 -> 2 */
    {2, TWO_31, 2 * TWO_31},             /* 2 -> 5 */
    {5, TWO_31 - 1, 2 * TWO_31 - 3},     /* 5 -> 3 */
    {3, -1, -1},                         /* 3 -> 7 */
    {7, 0, 0},                           /* 7 -> 7 */
    {7, 1, 1},                           /* 7 -> 6 */
    {6, -2, -4},                         /* 6 -> 4 */
    {4, 1, 2},                           /* 4 -> 0 */
};

/* The walk as a 2 x 8 tensor with per-channel steps 0.75 and 0xFFFF * 2^-20
 * (the big levels in the second channel: |q| * mantissa near 2^48): the
 * state runs on across the channel boundary, as it belongs to the tensor.
 * Decoded alone (mode 1), and as an update over a float32 base (mode 3:
 * base + q * step, a binary32 addition). */
static void test_dependent_reconstruction(void)
{
    enum { N = 16 };
    static fixture f;
    int64_t levels[N], q[N];
    float base[N], reconstruction[N];
    uint8_t steps[6], out[4 * N];
    uint32_t dims[2] = {2, N / 2}, i;
    unsigned state = 0, states_seen = 0, transitions_seen = 0; /* bit 2 * state + parity per transition */
    put_step(steps, 3, -2);
    put_step(steps + 3, 0xFFFF, -20);
    for (i = 0; i < N; i++) {
        levels[i] = dependent_walk[i].level;
        EXPECT(dependent_walk[i].state == state); /* the table's states follow the rule */
        states_seen |= 1u << state;
        transitions_seen |= 1u << (2u * state + (unsigned)(levels[i] & 1));
        state = tcu_dependent_next_state(state, levels[i]);
    }
    EXPECT(states_seen == 0xFFu && transitions_seen == 0xFFFFu && state == 0);
    tcu_reconstruction_indices(levels, N, TC_QUANTIZER_DEPENDENT, q);
    for (i = 0; i < N; i++) {
        EXPECT(q[i] == dependent_walk[i].q); /* the shared helper agrees with the walk */
        reconstruction[i] = hardware_reconstruction(dependent_walk[i].q, steps + 3u * (i / (N / 2)));
        store_float(f.expected + 4u * i, reconstruction[i]);
        base[i] = (float)i * 0.3f - 2.0f;
    }
    make_quantized(&f, TC_MODE_QUANTIZED, TC_QUANTIZER_DEPENDENT, levels, 2, dims, 0, steps, 0);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, NULL, 0) == TC_OK);
    EXPECT(memcmp(out, f.expected, sizeof out) == 0);

    for (i = 0; i < N; i++)
        store_float(out + 4u * i, base[i]);
    for (i = 0; i < N; i++)
        store_float(f.expected + 4u * i, base[i] + reconstruction[i]);
    make_quantized(&f, TC_MODE_DELTA_QUANTIZED, TC_QUANTIZER_DEPENDENT, levels, 2, dims, 0, steps,
                   tc_crc32(0, out, sizeof out));
    EXPECT(tc_check_base(&f.info, out, sizeof out) == TC_OK);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, NULL, 0) == TC_OK);
    EXPECT(memcmp(out, f.expected, sizeof out) == 0);
}

/* Weights for the encoder's trellis search: a few per channel zero, the
 * rest spread over a few steps, growing from channel to channel. */
static void trellis_weights(double *weights, uint32_t channels, uint32_t inner)
{
    uint32_t state = 2024u, i;
    for (i = 0; i < channels * inner; i++) {
        state = state * 1103515245u + 12345u;
        weights[i] = i % 7u == 0u ? 0.0 : ((double)(state >> 16 & 0x7FFFu) / 16384.0 - 1.0) * 0.1 * (1u + i / inner);
    }
}

/* The dependent state persists across tc_decoder_run calls: a tensor whose
 * levels the encoder's trellis search chose (tce_trellis, per-channel
 * steps) decodes one value per call, its payload handed over a byte at a
 * time, to exactly what one tc_decode_tensor call gives, which is the
 * hardware's float32 of q * step for the levels' q. */
static void test_dependent_streaming(void)
{
    enum { CHANNELS = 3, INNER = 100, N = CHANNELS * INNER };
    static fixture f;
    static int64_t levels[N], q[N];
    static uint8_t whole[4 * N], piecewise[4 * N];
    static double weights[N];
    double step_values[CHANNELS];
    uint8_t steps[3 * CHANNELS];
    uint32_t dims[2] = {CHANNELS, INNER}, i, odd = 0, calls = 0;
    size_t in_pos = 0, in_size = 0, out_pos = 0;
    tc_status st = TC_NEED_INPUT;
    tc_decoder d;
    for (i = 0; i < CHANNELS; i++) {
        put_step(steps + 3u * i, 5u + 2u * i, -8);
        step_values[i] = (5.0 + 2.0 * i) / 256.0;
    }
    trellis_weights(weights, CHANNELS, INNER);
    tce_trellis(weights, N, step_values, CHANNELS, INNER, 0.12 * step_values[0] * step_values[0], 0, levels);
    tcu_reconstruction_indices(levels, N, TC_QUANTIZER_DEPENDENT, q);
    for (i = 0; i < N; i++) {
        odd += (uint32_t)(q[i] & 1); /* odd q: a non-zero level in an odd state */
        store_float(f.expected + 4u * i, hardware_reconstruction(q[i], steps + 3u * (i / INNER)));
    }
    EXPECT(odd > 10u && odd < N);
    make_quantized(&f, TC_MODE_QUANTIZED, TC_QUANTIZER_DEPENDENT, levels, 2, dims, 0, steps, 0);
    EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, whole, sizeof whole, NULL, 0) == TC_OK);
    EXPECT(memcmp(whole, f.expected, sizeof whole) == 0);

    EXPECT(tc_decoder_init(&d, &f.info) == TC_OK);
    while ((st == TC_NEED_INPUT || st == TC_NEED_OUTPUT) && calls++ < 100000u) {
        size_t before = out_pos;
        if (st == TC_NEED_INPUT)
            in_size++; /* one more payload byte */
        st = tc_decoder_run(&d, payload(&f), &in_pos, in_size, piecewise, &out_pos, out_pos + 4u);
        EXPECT(out_pos - before <= 4u);
    }
    EXPECT(st == TC_OK && out_pos == sizeof piecewise && in_size == f.info.payload_size);
    EXPECT(memcmp(piecewise, whole, sizeof whole) == 0);
}

/* Float reconstruction at the edges of binary32 (FORMAT 6.2), one-element
 * tensors.  Expected bit patterns worked out by hand from the exact value
 * P * 2^exponent (P = |q| * mantissa; q = level, or 2 * level for the
 * dependent quantizer's first element), checked with numpy's float32 of
 * the product: subnormal results, ties to even rounding down and up, a
 * rounding carry into the exponent, the largest finite values, q = 2^32
 * with the largest mantissa, and overflow, exact or by rounding, which is a
 * corrupt payload. */
static void test_float_reconstruction_edges(void)
{
    enum { U = TC_QUANTIZER_UNIFORM, D = TC_QUANTIZER_DEPENDENT };
    static const struct {
        int64_t level;
        uint8_t quantizer;
        uint32_t mantissa;
        int exponent;
        tc_status status;
        uint32_t bits; /* with TC_OK */
    } cases[] = {
        {0, U, 1, 0, TC_OK, 0x00000000u},                         /* +0 */
        {1, U, 1, -128, TC_OK, 0x00200000u},                      /* 2^-128: 2^21 units of 2^-149, subnormal */
        {-3, U, 1, -128, TC_OK, 0x80600000u},                     /* -3 * 2^-128, subnormal */
        {1, D, 2, -128, TC_OK, 0x00800000u},                      /* q = 2, P = 4: 2^-126, the smallest normal */
        {1, U, 3, -127, TC_OK, 0x00C00000u},                      /* 1.5 * 2^-126 */
        {(1 << 24) - 1, U, 1, 0, TC_OK, 0x4B7FFFFFu},             /* 24 bits: exact */
        {(1 << 24) + 1, U, 1, 0, TC_OK, 0x4B800000u},             /* tie: down to the even 2^24 */
        {(1 << 24) + 3, U, 1, 0, TC_OK, 0x4B800002u},             /* tie: up to the even 2^24 + 4 */
        {(1 << 25) + 3, U, 1, 0, TC_OK, 0x4C000001u},             /* 3/4 of a unit: up */
        {(1 << 25) - 1, U, 1, 0, TC_OK, 0x4C000000u},             /* rounds to 2^25: carry into the exponent */
        {-((1 << 25) - 1), D, 1, -1, TC_OK, 0xCC000000u},         /* the same through q = 2 * level */
        {1, U, 1, 127, TC_OK, 0x7F000000u},                       /* 2^127 */
        {1, D, 1, 127, TC_ERR_PAYLOAD, 0},                        /* q = 2: 2^128 overflows */
        {(1 << 25) - 2, U, 1, 103, TC_OK, 0x7F7FFFFFu},           /* FLT_MAX exactly */
        {-((1 << 25) - 2), U, 1, 103, TC_OK, 0xFF7FFFFFu},        /* -FLT_MAX */
        {(1 << 25) - 1, U, 1, 103, TC_ERR_PAYLOAD, 0},            /* rounds up to 2^128 */
        {(1 << 26) - 3, U, 1, 102, TC_OK, 0x7F7FFFFFu},           /* below the tie: down to FLT_MAX */
        {-((1 << 26) - 2), U, 1, 102, TC_ERR_PAYLOAD, 0},         /* the tie rounds to even, 2^128 */
        {TWO_31, D, 0xFFFF, 0, TC_OK, 0x577FFF00u},               /* q = 2^32: P = 0xFFFF * 2^32 < 2^48, exact */
        {-TWO_31, D, 0xFFFF, 80, TC_OK, 0xFF7FFF00u},             /* -0xFFFF * 2^112 */
        {TWO_31, D, 0xFFFF, 81, TC_ERR_PAYLOAD, 0},               /* 0xFFFF * 2^113 */
        {-TWO_31, U, 0xFFFF, -20, TC_OK, 0xCCFFFF00u},            /* -2^31 * 0xFFFF * 2^-20 = -0xFFFF * 2^11 */
    };
    static fixture f;
    uint8_t step[3];
    uint32_t one = 1;
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put_step(step, cases[i].mantissa, cases[i].exponent);
        tcu_put_u32(f.expected, cases[i].bits);
        make_quantized(&f, TC_MODE_QUANTIZED, cases[i].quantizer, &cases[i].level, 1, &one, TC_AXIS_NONE, step, 0);
        expect_float_decode(&f, 1, cases[i].status);
    }
}

/* ------------------------------------------------------------------ */
/* Varints in the directory (FORMAT 2, 3.2).                           */

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Replaces bytes [at, at + old_len) of f's stream with bytes[0..len): the
 * directory grows or shrinks with them (payload offsets count from its end,
 * so they stay right), and the header CRC is made right again. */
static void splice(fixture *f, size_t at, size_t old_len, const uint8_t *bytes, size_t len)
{
    uint32_t directory_size = load_u32(f->bytes + 8);
    TCU_CHECK(f->size - old_len + len <= sizeof f->bytes && at + old_len <= f->size, "splice inside the stream");
    memmove(f->bytes + at + len, f->bytes + at + old_len, f->size - at - old_len);
    memcpy(f->bytes + at, bytes, len);
    f->size = f->size - old_len + len;
    tcu_put_u32(f->bytes + 8, (uint32_t)(directory_size - old_len + len));
    tcu_fix_header_crc(f->bytes, f->size);
}

/* tc_stream_open's status once the one-byte field at `at` of a fresh ramp
 * of 10 int8 (make_ramp) is written as bytes[0..len) instead. */
static tc_status open_with_field(size_t at, const uint8_t *bytes, size_t len)
{
    static fixture f;
    make_ramp(&f, TC_DTYPE_INT8, 10);
    splice(&f, at, 1, bytes, len);
    return tc_stream_open(&f.stream, f.bytes, f.size);
}

/* The entry of make_ramp's tensor of 10: name_len, "t", dtype, mode,
 * initial_activity, prediction, ndim, then one byte each for dims[0] (10),
 * the offset's zigzag (0), the peak (0), payload_offset (0) and
 * payload_size, and the 4 bytes of crc32. */
enum { AT_DIM = 27, AT_OFFSET = 28, AT_PEAK = 29, AT_PAYLOAD_OFFSET = 30, AT_PAYLOAD_SIZE = 31 };

/* A varint has one encoding: at most 5 bytes, the fifth at most 0x0F, no
 * last byte 0x00 after the first.  Anything else is a reserved field, a
 * well-formed varint beyond its field's limit is a limit. */
static void test_varint_rules(void)
{
    static const struct {
        uint8_t bytes[6];
        size_t len;
        tc_status status;
    } dims[] = {
        {{0x0A}, 1, TC_OK},
        {{0x8A, 0x00}, 2, TC_ERR_RESERVED},                         /* 10 with a last byte 0 */
        {{0x8A, 0x80, 0x80, 0x80, 0x00}, 5, TC_ERR_RESERVED},       /* 10 in 5 bytes */
        {{0x8A, 0x80, 0x80, 0x80, 0x80, 0x00}, 6, TC_ERR_RESERVED}, /* 10 in 6 bytes */
        {{0x8A, 0x80, 0x80, 0x80, 0x10}, 5, TC_ERR_RESERVED},       /* 10 + 2^32: a fifth byte above 0x0F */
        {{0x8A, 0x80, 0x80, 0x80, 0x8F}, 5, TC_ERR_RESERVED},       /* a fifth byte with more to come */
        {{0x80, 0x80, 0x80, 0x80, 0x08}, 5, TC_ERR_LIMIT},          /* 2^31: a varint, too large a dimension */
        {{0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, 5, TC_ERR_LIMIT},          /* 2^32 - 1, the largest varint */
    };
    static const uint8_t zero_in_two[2] = {0x80, 0x00};
    static fixture f;
    uint8_t payload_size_bytes[2];
    size_t i;
    make_ramp(&f, TC_DTYPE_INT8, 10);
    EXPECT(f.bytes[AT_DIM] == 10 && f.bytes[AT_OFFSET] == 0 && f.bytes[AT_PEAK] == 0 &&
           f.bytes[AT_PAYLOAD_OFFSET] == 0 && f.bytes[AT_PAYLOAD_SIZE] == f.info.payload_size &&
           load_u32(f.bytes + 8) == AT_PAYLOAD_SIZE + 1u + 4u - TC_HEADER_SIZE);
    for (i = 0; i < sizeof dims / sizeof dims[0]; i++)
        EXPECT(open_with_field(AT_DIM, dims[i].bytes, dims[i].len) == dims[i].status);
    EXPECT(open_with_field(AT_OFFSET, zero_in_two, 2) == TC_ERR_RESERVED);
    EXPECT(open_with_field(AT_PEAK, zero_in_two, 2) == TC_ERR_RESERVED);
    EXPECT(open_with_field(AT_PAYLOAD_OFFSET, zero_in_two, 2) == TC_ERR_RESERVED);
    payload_size_bytes[0] = (uint8_t)(f.info.payload_size | 0x80u);
    payload_size_bytes[1] = 0;
    EXPECT(open_with_field(AT_PAYLOAD_SIZE, payload_size_bytes, 2) == TC_ERR_RESERVED);
    payload_size_bytes[1] = 1; /* 128 more: past the payload area */
    EXPECT(open_with_field(AT_PAYLOAD_SIZE, payload_size_bytes, 2) == TC_ERR_RESERVED);

    /* a directory that ends inside a varint: the entry lied (FORMAT 7);
     * 1000 takes two bytes, so payload_size lies one byte later */
    make_ramp(&f, TC_DTYPE_INT8, 1000);
    EXPECT(f.bytes[AT_DIM] == (0x80u | (1000u & 0x7Fu)) && f.bytes[AT_DIM + 1] == 1000u >> 7);
    EXPECT(f.info.payload_size >= 128u && (f.bytes[AT_PAYLOAD_SIZE + 1] & 0x80u) != 0);
    EXPECT(load_u32(f.bytes + 8) == AT_PAYLOAD_SIZE + 1u + 2u + 4u - TC_HEADER_SIZE);
    EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_OK);
    tcu_put_u32(f.bytes + 8, AT_PAYLOAD_SIZE + 2u - TC_HEADER_SIZE); /* after payload_size's first byte */
    tcu_fix_header_crc(f.bytes, f.size);
    EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_ERR_RESERVED);
    tcu_put_u32(f.bytes + 8, AT_DIM + 1u - TC_HEADER_SIZE); /* after the dimension's first byte */
    tcu_fix_header_crc(f.bytes, f.size);
    EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_ERR_RESERVED);

    /* history: a varint up to 65535 (3 bytes), a limit beyond */
    EXPECT(open_with_prediction(TC_PREDICT_DIFFERENCE, TC_MAX_HISTORY) == TC_OK);
    EXPECT(open_with_prediction(TC_PREDICT_SCALE, TC_MAX_HISTORY) == TC_OK);
    EXPECT(open_with_prediction(TC_PREDICT_DIFFERENCE, TC_MAX_HISTORY + 1u) == TC_ERR_LIMIT);
    EXPECT(open_with_prediction(TC_PREDICT_SCALE, TC_MAX_HISTORY + 1u) == TC_ERR_LIMIT);
    EXPECT(open_with_prediction(TC_PREDICT_FACTORS, TC_MAX_HISTORY + 1u) == TC_ERR_LIMIT);
    EXPECT(open_with_prediction(TC_PREDICT_DIFFERENCE, 1u << 21) == TC_ERR_LIMIT);
    EXPECT(open_with_prediction(TC_PREDICT_DIFFERENCE, 0xFFFFFFFFu) == TC_ERR_LIMIT);
}

/* The lossless offset is the zigzag of an i32 (FORMAT 2): -2^31 takes the
 * largest 5-byte varint, 2^31 - 1 the one below it, -1 and 1 one byte. */
static void test_offset_varints(void)
{
    static const struct {
        int32_t offset;
        int64_t level;
        uint8_t bytes[5];
        size_t len;
    } cases[] = {
        {INT32_LOW, 0, {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, 5},
        {INT32_LOW, TWO_31_LEVEL, {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, 5},
        {2147483647, -TWO_31_LEVEL, {0xFE, 0xFF, 0xFF, 0xFF, 0x0F}, 5},
        {-1, 5, {0x01}, 1},
        {1, -5, {0x02}, 1},
        {-64, 3, {0x7F}, 1},
        {64, -3, {0x80, 0x01}, 2},
    };
    static fixture f;
    uint8_t out[4];
    uint32_t one = 1;
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_lossless(&f, TC_DTYPE_INT32, &cases[i].level, 1, 1, &one, cases[i].offset);
        EXPECT(f.info.offset == cases[i].offset && tcu_put_varint(NULL, tcu_zigzag(cases[i].offset)) == cases[i].len);
        EXPECT(memcmp(f.bytes + AT_OFFSET, cases[i].bytes, cases[i].len) == 0);
        EXPECT(f.bytes[AT_OFFSET + cases[i].len] == 0); /* the peak */
        EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, 4, NULL, 0) == TC_OK &&
               memcmp(out, f.expected, 4) == 0);
    }
}

/* ------------------------------------------------------------------ */
/* Channel peaks (FORMAT 5.9).                                         */

/* tc_stream_open's status of a one-tensor int8 stream shaped
 * dims[0..ndim) with channel peaks of magnitude `peak` along `axis` and
 * `prediction` at distance `history` (rank 1 with factors); a dummy
 * payload, as the directory is all that is checked. */
static tc_status open_peaked(uint8_t prediction, uint32_t history, uint32_t ndim, const uint32_t *dims, uint32_t peak,
                             uint8_t axis)
{
    static uint8_t bytes[256];
    static const uint8_t payload_bytes[8];
    uint64_t count = 1;
    tcu_tensor_spec spec;
    tc_stream s;
    size_t size;
    uint32_t i;
    memset(&spec, 0, sizeof spec);
    spec.name = "p";
    spec.dtype = TC_DTYPE_INT8;
    spec.mode = TC_MODE_LOSSLESS;
    spec.prediction = prediction;
    spec.history = history;
    spec.rank = prediction == TC_PREDICT_FACTORS ? 1u : 0u;
    spec.ndim = (uint8_t)ndim;
    for (i = 0; i < ndim; i++)
        count *= spec.dims[i] = dims[i];
    spec.peak = peak;
    spec.peak_axis = axis;
    size = tcu_build_stream(bytes, sizeof bytes, &spec, payload_bytes, count ? sizeof payload_bytes : 0u, 0);
    EXPECT(size > 0);
    return tc_stream_open(&s, bytes, size);
}

/* FORMAT 3.2: peaks need prediction 0 or 2, an axis of the tensor, at most
 * 65535 channels of 1..32768 elements, and P <= 2^31. */
static void test_peak_fields(void)
{
    static const uint32_t d46[2] = {4, 6}, d04[2] = {0, 4}, d40[2] = {4, 0}, d1[1] = {1};
    static const uint32_t d65535[2] = {65535, 1}, d65536[1] = {65536}, d2_65536[2] = {2, 65536};
    static const uint32_t d1_32768[2] = {1, 32768}, d32769_1[2] = {32769, 1}, d2_32769[2] = {2, 32769};
    static const uint32_t d3_32768[2] = {3, 32768};
    static fixture f;
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 127, 0) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 127, 1) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_SCALE, 6, 2, d46, 127, 1) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_SCALE, TC_MAX_HISTORY, 2, d46, 127, 0) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_DIFFERENCE, 6, 2, d46, 127, 0) == TC_ERR_RESERVED);
    EXPECT(open_peaked(TC_PREDICT_FACTORS, 6, 2, d46, 127, 0) == TC_ERR_RESERVED);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 127, 2) == TC_ERR_RESERVED);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 127, 255) == TC_ERR_RESERVED);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 0, NULL, 127, 0) == TC_ERR_RESERVED); /* a scalar has no axis */
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 1, d1, 1, 0) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d04, 127, 0) == TC_ERR_RESERVED); /* empty tensors */
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d04, 127, 1) == TC_ERR_RESERVED);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d40, 127, 0) == TC_ERR_RESERVED);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 0x80000000u, 0) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 0x80000001u, 0) == TC_ERR_LIMIT);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d46, 0xFFFFFFFFu, 0) == TC_ERR_LIMIT);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d65535, 127, 0) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 1, d65536, 127, 0) == TC_ERR_LIMIT);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d2_65536, 127, 1) == TC_ERR_LIMIT);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d2_65536, 127, 0) == TC_ERR_LIMIT); /* 2 channels of 65536 */
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d1_32768, 127, 0) == TC_OK);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d32769_1, 127, 1) == TC_ERR_LIMIT);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d2_32769, 127, 0) == TC_ERR_LIMIT);
    EXPECT(open_peaked(TC_PREDICT_NONE, 0, 2, d3_32768, 127, 1) == TC_OK);
    /* the peak_axis byte follows a peak that is not 0, and only such a one:
     * spliced in, the entry parses with its peaks and 2 bytes of working
     * memory per channel */
    make_ramp(&f, TC_DTYPE_INT8, 10);
    {
        static const uint8_t peak_then_axis[2] = {0x7F, 0x00};
        splice(&f, AT_PEAK, 1, peak_then_axis, 2);
        EXPECT(tc_stream_open(&f.stream, f.bytes, f.size) == TC_OK);
        EXPECT(tc_stream_tensor(&f.stream, 0, &f.info) == TC_OK && f.info.peak == 127 && f.info.peak_axis == 0 && f.info.work_size == 20u);
    }
}

/* The payload of levels[0..n) (the peaks in them flagged in peaks[])
 * after the peak entries of places[] and negative[] along `layout`, coded
 * with no or scale prediction at distance `history`. */
static int64_t encode_peaked(const int64_t *levels, const uint8_t *peaks, size_t n, const tcu_peak_layout *layout,
                             const uint32_t *places, const uint8_t *negative, uint8_t prediction, uint32_t history,
                             uint8_t initial_activity, uint8_t *payload, size_t capacity)
{
    static int64_t coded[1 << 16];
    static uint8_t columns[1 << 16], coded_columns[1 << 16];
    static tce_field entries[TC_MAX_PEAK_CHANNELS];
    int scale = prediction == TC_PREDICT_SCALE;
    size_t count;
    uint32_t c;
    TCU_CHECK(n <= sizeof coded / sizeof coded[0], "tensor too large for encode_peaked");
    for (c = 0; c < layout->channels; c++)
        tcu_peak_entry(layout->channel_size, places[c], negative[c], &entries[c].value, &entries[c].bits);
    if (scale)
        tcu_column_activities(levels, peaks, n, history, initial_activity, columns);
    count = tcu_without_peaks(levels, scale ? columns : NULL, peaks, n, coded, coded_columns);
    return tce_encode_levels(coded, scale ? coded_columns : NULL, count, initial_activity, entries, layout->channels,
                             payload, capacity, NULL);
}

/* A lossless tensor of `dtype` shaped dims[0..ndim) holding levels +
 * offset, whose channels along `axis` peak at -peak (negative[c]) or peak
 * at places[c] (levels[] gets them), coded with no or scale prediction at
 * distance `history`. */
static void make_peaked(fixture *f, uint8_t dtype, int64_t *levels, uint32_t ndim, const uint32_t *dims,
                        int32_t offset, uint8_t prediction, uint32_t history, uint32_t peak, uint8_t axis,
                        const uint32_t *places, const uint8_t *negative)
{
    static uint8_t payload_bytes[1 << 16], peaks[1 << 16];
    tcu_tensor_spec spec;
    tcu_peak_layout layout = tcu_peak_layout_of(ndim, dims, axis);
    unsigned size = integer_size(dtype), b;
    size_t n = (size_t)layout.channels * layout.channel_size, i;
    int64_t payload_size;
    TCU_CHECK(n * size <= sizeof f->expected, "tensor too large for a fixture");
    tcu_set_peaks(&layout, peak, places, negative, levels, n, peaks);
    payload_size = encode_peaked(levels, peaks, n, &layout, places, negative, prediction, history, 0, payload_bytes,
                                 sizeof payload_bytes);
    EXPECT(payload_size >= 4);
    for (i = 0; i < n; i++)
        for (b = 0; b < size; b++)
            f->expected[i * size + b] = (uint8_t)((uint64_t)(levels[i] + offset) >> (8u * b));
    memset(&spec, 0, sizeof spec);
    spec.name = "t";
    spec.dtype = dtype;
    spec.mode = TC_MODE_LOSSLESS;
    spec.prediction = prediction;
    spec.history = history;
    spec.ndim = (uint8_t)ndim;
    memcpy(spec.dims, dims, ndim * sizeof *dims);
    spec.offset = offset;
    spec.peak = peak;
    spec.peak_axis = axis;
    f->size = tcu_build_stream(f->bytes, sizeof f->bytes, &spec, payload_bytes, (uint32_t)payload_size,
                               tc_crc32(0, f->expected, n * size));
    EXPECT(f->size > 0 && tc_stream_open(&f->stream, f->bytes, f->size) == TC_OK);
    EXPECT(tc_stream_tensor(&f->stream, 0, &f->info) == TC_OK && f->info.peak == peak && f->info.peak_axis == axis &&
           f->info.work_size == history + 2u * layout.channels && tcu_check_info(&f->stream, &f->info) == NULL);
}

/* Decodes a peaked tensor whole (in a work buffer larger than work_size,
 * whose extra bytes it must not touch), in 1-byte input and 1-element
 * output chunks, and in odd ones: each gives `expected_status`, and on
 * TC_OK the expected bytes.  Returns the work buffer of the whole decode. */
static const int8_t *expect_peaked_decodes(const fixture *f, tc_status expected_status)
{
    static int8_t work[(1 << 17) + 16];
    static uint8_t out[1 << 16];
    size_t bytes = (size_t)f->info.element_count * f->info.element_size, len, i;
    tcu_chunks chunks;
    tcu_stream_stats stats;
    tc_status st;
    TCU_CHECK(f->info.work_size + 16u <= sizeof work && bytes <= sizeof out, "tensor too large");
    memset(work, 0x77, sizeof work);
    st = tc_decode_tensor(&f->stream, &f->info, &whole_decoder, out, bytes, work, f->info.work_size + 16u);
    EXPECT(st == expected_status);
    EXPECT(st != TC_OK || memcmp(out, f->expected, bytes) == 0);
    for (i = f->info.work_size; i < f->info.work_size + 16u; i++)
        EXPECT(work[i] == 0x77);
    chunks.state = 7;
    chunks.in_max = 1;
    chunks.out_max = f->info.element_size;
    memset(out, 0, bytes);
    st = tcu_decode_streaming(&f->info, payload(f), f->info.payload_size, &chunks, NULL, out, bytes, &len, &stats);
    EXPECT(st == expected_status);
    EXPECT(st != TC_OK || (len == bytes && memcmp(out, f->expected, bytes) == 0));
    chunks.state = 8;
    chunks.in_max = 70;
    chunks.out_max = 3u * f->info.element_size + 1u;
    memset(out, 0, bytes);
    st = tcu_decode_streaming(&f->info, payload(f), f->info.payload_size, &chunks, NULL, out, bytes, &len, &stats);
    EXPECT(st == expected_status);
    EXPECT(st != TC_OK || (len == bytes && memcmp(out, f->expected, bytes) == 0));
    return work;
}

/* Levels in [-bound, bound] from a seed. */
static void random_levels(int64_t *levels, size_t n, uint32_t seed, int64_t bound)
{
    size_t i;
    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        levels[i] = (int64_t)((seed >> 8) % (uint32_t)(2 * bound + 1)) - bound;
    }
}

/* Peaks along the first, a middle and the last axis of a 3 x 5 x 7 int8
 * tensor (channel sizes 35, 21 and 15: truncated codes of both lengths),
 * at their channel's first and last place and between, with both signs,
 * among other elements that also reach +-127. */
static void test_peak_axes(void)
{
    static const uint32_t dims[3] = {3, 5, 7};
    static const uint32_t places0[3] = {0, 34, 17}, places1[5] = {20, 0, 7, 13, 14};
    static const uint32_t places2[7] = {14, 0, 1, 2, 7, 8, 9};
    static const uint8_t signs[7] = {0, 1, 1, 0, 1, 0, 0};
    static const uint32_t *places[3] = {places0, places1, places2};
    static fixture f;
    int64_t levels[105];
    uint8_t axis;
    for (axis = 0; axis < 3; axis++) {
        random_levels(levels, 105, 99u + axis, 127);
        make_peaked(&f, TC_DTYPE_INT8, levels, 3, dims, 0, TC_PREDICT_NONE, 0, 127, axis, places[axis], signs);
        expect_peaked_decodes(&f, TC_OK);
    }
    /* a uint8 tensor with an offset: the peak's level goes through it too */
    random_levels(levels, 105, 5, 100);
    make_peaked(&f, TC_DTYPE_UINT8, levels, 3, dims, 120, TC_PREDICT_NONE, 0, 120, 1, places1, signs);
    expect_peaked_decodes(&f, TC_OK);
}

/* The truncated binary code of FORMAT 5.9 worked by hand: n = 5, k = 2,
 * u = 3: places 0..2 in 2 bits, 3 and 4 as 6 and 7 in 3 bits. */
static void test_peak_entry_codes(void)
{
    static const struct {
        uint32_t size, place, value, bits; /* value and bits before the sign */
    } cases[] = {
        {1, 0, 0, 0},  {2, 0, 0, 1},  {2, 1, 1, 1},  {3, 0, 0, 1},    {3, 1, 2, 2},     {3, 2, 3, 2},
        {5, 0, 0, 2},  {5, 2, 2, 2},  {5, 3, 6, 3},  {5, 4, 7, 3},    {8, 7, 7, 3},     {21, 10, 10, 4},
        {21, 11, 22, 5}, {21, 20, 31, 5}, {32768, 32767, 32767, 15}, {32767, 0, 0, 14}, {32767, 32766, 32767, 15},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t value, bits;
        tcu_peak_entry(cases[i].size, cases[i].place, 1, &value, &bits);
        EXPECT(value == (cases[i].value << 1 | 1u) && bits == cases[i].bits + 1u);
    }
}

/* Channels of one element (every element a peak: the payload holds
 * nothing but signs), a tensor whose first and last elements are peaks,
 * and one whose last elements (a whole run) are all peaks. */
static void test_peak_ends(void)
{
    static const uint32_t d5[1] = {5}, d46[2] = {4, 6}, d64[2] = {6, 4}, d231[3] = {2, 3, 1};
    static const uint32_t zeros[6] = {0, 0, 0, 0, 0, 0}, last_of_4[4] = {0, 2, 3, 5}, last_of_6[4] = {0, 1, 5, 5};
    static const uint8_t signs[6] = {1, 0, 1, 1, 0, 1};
    static fixture f;
    int64_t levels[64];
    random_levels(levels, 24, 3, 20);
    make_peaked(&f, TC_DTYPE_INT8, levels, 1, d5, 0, TC_PREDICT_NONE, 0, 100, 0, zeros, signs);
    expect_peaked_decodes(&f, TC_OK);
    make_peaked(&f, TC_DTYPE_INT8, levels, 3, d231, 0, TC_PREDICT_NONE, 0, 3, 1, zeros, signs);
    expect_peaked_decodes(&f, TC_OK);
    make_peaked(&f, TC_DTYPE_INT16, levels, 3, d231, 0, TC_PREDICT_SCALE, 2, 30000, 2, zeros, signs); /* axis of 1 */
    expect_peaked_decodes(&f, TC_OK);
    random_levels(levels, 24, 4, 20);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, d46, 0, TC_PREDICT_NONE, 0, 21, 0, last_of_4, signs);
    EXPECT(f.expected[0] == (uint8_t)-21 && f.expected[23] == (uint8_t)-21);
    expect_peaked_decodes(&f, TC_OK);
    random_levels(levels, 24, 5, 20);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, d64, 0, TC_PREDICT_NONE, 0, 21, 1, last_of_6, signs);
    EXPECT(f.expected[0] == (uint8_t)-21 && f.expected[22] == (uint8_t)-21 && f.expected[23] == (uint8_t)-21);
    expect_peaked_decodes(&f, TC_OK);
}

/* A peak's value must fit the dtype like any other (FORMAT 6.1): -128 does
 * in int8, +128 does not; with P = 2^31 and offset -1 in int32 only the
 * positive peak fits.  A peak the dtype cannot hold is a corrupt payload. */
static void test_peak_values(void)
{
    static const uint32_t dims[2] = {3, 4}, places[3] = {1, 2, 3};
    static const uint8_t negative[3] = {1, 1, 1}, one_positive[3] = {1, 0, 1}, positive[3] = {0, 0, 0};
    static fixture f;
    int64_t levels[12];
    random_levels(levels, 12, 8, 50);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, dims, 0, TC_PREDICT_NONE, 0, 128, 0, places, negative);
    expect_peaked_decodes(&f, TC_OK);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, dims, 0, TC_PREDICT_NONE, 0, 128, 0, places, one_positive);
    expect_peaked_decodes(&f, TC_ERR_PAYLOAD);
    make_peaked(&f, TC_DTYPE_INT32, levels, 2, dims, -1, TC_PREDICT_NONE, 0, 0x80000000u, 0, places, positive);
    expect_peaked_decodes(&f, TC_OK);
    make_peaked(&f, TC_DTYPE_INT32, levels, 2, dims, -1, TC_PREDICT_NONE, 0, 0x80000000u, 0, places, one_positive);
    expect_peaked_decodes(&f, TC_ERR_PAYLOAD);
}

/* Scale prediction with peaks: the pruned-column tensor of
 * test_scale_prediction with rows as channels (axis 0) and with a middle
 * axis, H = one row.  A peak leaves its column's ring byte alone, and the
 * ring after the tensor says so: the first H bytes of the work buffer hold
 * what tcu_column_activities gives an element one row past the end. */
static void test_peaks_with_scale_prediction(void)
{
    enum { ROWS = 12, COLUMNS = 41, N = ROWS * COLUMNS };
    static const uint32_t dims[2] = {ROWS, COLUMNS}, dims3[3] = {3, 4, COLUMNS}, places3[4] = {3, 60, 122, 41};
    static uint32_t places[ROWS];
    static uint8_t negative[ROWS], peaks[N + COLUMNS], activities[N + COLUMNS];
    static int64_t levels[N + COLUMNS];
    static fixture f;
    const int8_t *work;
    uint32_t c, i;
    tcu_peak_layout layout = tcu_peak_layout_of(2, dims, 0);
    for (c = 0; c < ROWS; c++) {
        places[c] = (c * 17u + 3u) % COLUMNS;
        negative[c] = (uint8_t)(c % 3u == 1u);
    }
    pruned_columns(levels, ROWS, COLUMNS);
    make_peaked(&f, TC_DTYPE_INT16, levels, 2, dims, 0, TC_PREDICT_SCALE, COLUMNS, 3000, 0, places, negative);
    work = expect_peaked_decodes(&f, TC_OK);
    tcu_set_peaks(&layout, 3000, places, negative, levels, N, peaks);
    memset(levels + N, 0, COLUMNS * sizeof *levels);
    memset(peaks + N, 0, COLUMNS);
    tcu_column_activities(levels, peaks, N + COLUMNS, COLUMNS, 0, activities);
    for (i = 0; i < COLUMNS; i++)
        EXPECT((uint8_t)work[i] == activities[N + i]);
    pruned_columns(levels, ROWS, COLUMNS); /* 4 channels of 3 runs of 41 */
    make_peaked(&f, TC_DTYPE_INT16, levels, 3, dims3, -7, TC_PREDICT_SCALE, COLUMNS, 2000, 1, places3, negative);
    expect_peaked_decodes(&f, TC_OK);
}

/* 300 channels of 4: the peak entries take 113 bytes, more than the
 * decoder waits for before a value (TC_MAX_VALUE_INPUT), so a payload
 * handed over a byte at a time, one element of output each call, stops
 * for input in the middle of them and must pick up where it stopped. */
static void test_peaks_resume(void)
{
    enum { CHANNELS = 300, SIZE = 4, N = CHANNELS * SIZE };
    static const uint32_t dims[2] = {CHANNELS, SIZE};
    static uint32_t places[CHANNELS];
    static uint8_t negative[CHANNELS], out[N];
    static int64_t levels[N];
    static int8_t work[2 * CHANNELS];
    static fixture f;
    size_t in_pos = 0, in_size = 0, out_pos = 0;
    uint32_t c, calls = 0, stops_inside = 0;
    tc_status st = TC_NEED_INPUT;
    tc_decoder d;
    for (c = 0; c < CHANNELS; c++) {
        places[c] = (c * 7u) % SIZE;
        negative[c] = (uint8_t)((c * 5u) % 3u == 0u);
    }
    random_levels(levels, N, 21, 5);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, dims, 0, TC_PREDICT_NONE, 0, 9, 0, places, negative);
    EXPECT(f.info.payload_size > 113u);
    expect_peaked_decodes(&f, TC_OK);
    EXPECT(tc_decoder_init(&d, &f.info) == TC_OK && tc_decoder_set_history(&d, work, sizeof work) == TC_OK);
    while ((st == TC_NEED_INPUT || st == TC_NEED_OUTPUT) && calls++ < 100000u) {
        if (st == TC_NEED_INPUT)
            in_size++;
        st = tc_decoder_run(&d, payload(&f), &in_pos, in_size, out, &out_pos, out_pos + 1u);
        if (st == TC_NEED_INPUT && d.u.peaks.read > 0 && d.u.peaks.read < CHANNELS) {
            stops_inside++;
            EXPECT(out_pos == 0);
        }
    }
    EXPECT(stops_inside > 10u);
    EXPECT(st == TC_OK && out_pos == N && in_size == f.info.payload_size && memcmp(out, f.expected, N) == 0);
    /* the same with all the payload but no room for output: the entries
     * are read, nothing is written */
    EXPECT(tc_decoder_init(&d, &f.info) == TC_OK && tc_decoder_set_history(&d, work, sizeof work) == TC_OK);
    in_pos = out_pos = 0;
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, 0) == TC_NEED_OUTPUT);
    EXPECT(d.u.peaks.read == CHANNELS && out_pos == 0 && in_pos > 0);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, N) == TC_OK);
    EXPECT(out_pos == N && memcmp(out, f.expected, N) == 0);
}

/* The limits of FORMAT 3.2 reached: 65535 channels of one element (the
 * payload is 65535 signs, the work memory 131070 bytes), and one channel
 * of 32768 elements with its peak at the last place (15 bits). */
static void test_peak_limits(void)
{
    static const uint32_t channels[1] = {TC_MAX_PEAK_CHANNELS}, row[2] = {1, TC_MAX_PEAK_CHANNEL_SIZE};
    static const uint32_t last[1] = {TC_MAX_PEAK_CHANNEL_SIZE - 1u};
    static const uint8_t minus[1] = {1};
    static uint32_t places[TC_MAX_PEAK_CHANNELS];
    static uint8_t negative[TC_MAX_PEAK_CHANNELS];
    static int64_t levels[TC_MAX_PEAK_CHANNELS + 1];
    static fixture f;
    uint32_t i;
    for (i = 0; i < TC_MAX_PEAK_CHANNELS; i++)
        negative[i] = (uint8_t)((i * 2654435761u) >> 31);
    make_peaked(&f, TC_DTYPE_INT8, levels, 1, channels, 0, TC_PREDICT_NONE, 0, 1, 0, places, negative);
    EXPECT(f.info.work_size == 2u * TC_MAX_PEAK_CHANNELS);
    expect_peaked_decodes(&f, TC_OK);
    random_levels(levels, TC_MAX_PEAK_CHANNEL_SIZE, 77, 3);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, row, 0, TC_PREDICT_NONE, 0, 4, 0, last, minus);
    EXPECT(f.expected[TC_MAX_PEAK_CHANNEL_SIZE - 1u] == (uint8_t)-4);
    expect_peaked_decodes(&f, TC_OK);
}

/* A peaked tensor needs 2 bytes per channel after the ring (FORMAT 5.9):
 * one byte less is TC_ERR_HISTORY from tc_decode_tensor and
 * tc_decoder_set_history, and a run without them is refused before it
 * consumes or writes anything. */
static void test_peak_work_memory(void)
{
    static const uint32_t dims[2] = {6, 20}, places[6] = {0, 5, 19, 3, 3, 11};
    static const uint8_t negative[6] = {0, 1, 0, 1, 1, 0};
    static int8_t work[64];
    static fixture f;
    int64_t levels[120];
    uint8_t out[120], untouched[120];
    size_t in_pos = 0, out_pos = 0;
    tc_decoder d;
    uint8_t prediction;
    for (prediction = TC_PREDICT_NONE; prediction <= TC_PREDICT_SCALE; prediction += TC_PREDICT_SCALE) {
        uint32_t history = prediction == TC_PREDICT_SCALE ? 20u : 0u, need = history + 12u;
        random_levels(levels, 120, 31, 40);
        make_peaked(&f, TC_DTYPE_INT8, levels, 2, dims, 0, prediction, history, 60, 0, places, negative);
        EXPECT(f.info.work_size == need);
        memset(untouched, 0xEE, sizeof untouched);
        memcpy(out, untouched, sizeof out);
        memset(work, 0x44, sizeof work);
        EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, work, need - 1u) ==
               TC_ERR_HISTORY);
        EXPECT(tc_decode_tensor(&f.stream, &f.info, &whole_decoder, out, sizeof out, NULL, 0) == TC_ERR_HISTORY);
        EXPECT(memcmp(out, untouched, sizeof out) == 0 && work[0] == 0x44 && work[need - 2u] == 0x44);
        EXPECT(tc_decoder_init(&d, &f.info) == TC_OK);
        EXPECT(tc_decoder_set_history(&d, work, need - 1u) == TC_ERR_HISTORY);
        EXPECT(tc_decoder_set_history(&d, NULL, 0) == TC_ERR_HISTORY);
        in_pos = out_pos = 0;
        EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, sizeof out) ==
               TC_ERR_HISTORY);
        EXPECT(in_pos == 0 && out_pos == 0 && memcmp(out, untouched, sizeof out) == 0);
        EXPECT(tc_decoder_set_history(&d, work, need) == TC_OK);
        EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, f.info.payload_size, out, &out_pos, sizeof out) == TC_OK);
        EXPECT(out_pos == sizeof out && memcmp(out, f.expected, sizeof out) == 0 && work[need] == 0x44);
    }
}

/* A hand-made tc_tensor_info with peaks must keep the rules of a parsed one
 * (FORMAT 3.2): tc_decoder_init refuses anything else. */
static void test_hand_made_peak_info(void)
{
    static const uint32_t dims[2] = {4, 6}, places[6] = {0, 1, 2, 3, 3, 2};
    static const uint8_t negative[6] = {0, 0, 1, 1, 0, 1};
    static fixture f;
    int64_t levels[24];
    tc_tensor_info t;
    tc_decoder d;
    random_levels(levels, 24, 12, 9);
    make_peaked(&f, TC_DTYPE_INT8, levels, 2, dims, 0, TC_PREDICT_NONE, 0, 12, 1, places, negative);
    t = f.info;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t.peak_axis = 2;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.peak_axis = 255;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t = f.info;
    t.peak = 0; /* an axis without peaks */
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.peak_axis = 0;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t = f.info;
    t.peak = 0x80000001u;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.peak = 0x80000000u;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t = f.info;
    t.prediction = TC_PREDICT_DIFFERENCE;
    t.history = 6;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.prediction = TC_PREDICT_FACTORS;
    t.rank = 1;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.prediction = TC_PREDICT_SCALE;
    t.rank = 0;
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
    t = f.info;
    t.mode = TC_MODE_DELTA_LOSSLESS; /* peaks are lossless-only */
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t = f.info;
    t.ndim = 1; /* one dimension, its index 1 beyond it */
    t.element_count = 4;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t = f.info;
    t.dims[0] = 0; /* empty */
    t.element_count = 0;
    t.payload_size = 0;
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t = f.info;
    t.dims[1] = TC_MAX_PEAK_CHANNELS + 1u; /* too many channels */
    t.element_count = 4u * t.dims[1];
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t = f.info;
    t.dims[0] = TC_MAX_PEAK_CHANNEL_SIZE + 1u; /* channels too large */
    t.element_count = 6u * t.dims[0];
    EXPECT(tc_decoder_init(&d, &t) == TC_ERR_ARGUMENT);
    t.dims[0] = TC_MAX_PEAK_CHANNEL_SIZE;
    t.element_count = 6u * t.dims[0];
    EXPECT(tc_decoder_init(&d, &t) == TC_OK);
}

/* The argument checks accept NULL for an empty buffer, so a caller with
 * nothing to give (or no room) may pass NULL, 0 in the middle of a tensor.
 * Run last: under UBSan a violation ends the program. */
static void test_null_empty_buffers(void)
{
    static fixture f;
    static uint8_t out[4096];
    size_t in_pos = 0, out_pos = 0, none = 0;
    tc_decoder d;
    make_ramp(&f, TC_DTYPE_INT8, 3000);
    tc_decoder_init(&d, &f.info);
    EXPECT(tc_decoder_run(&d, payload(&f), &in_pos, 100, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    EXPECT(tc_decoder_run(&d, NULL, &none, 0, out, &out_pos, sizeof out) == TC_NEED_INPUT);
    out_pos = 0;
    EXPECT(tc_decoder_run(&d, payload(&f) + in_pos, &none, 200, NULL, &out_pos, 0) == TC_NEED_OUTPUT);
}

int main(void)
{
    test_chunked(TC_DTYPE_INT8, 1, 1);   /* 1-byte input chunks, 1-element output chunks */
    test_chunked(TC_DTYPE_INT16, 1, 2);
    test_chunked(TC_DTYPE_INT32, 3, 4);
    test_chunked(TC_DTYPE_INT32, 1, 3);  /* output chunks often smaller than an element */
    test_chunked(TC_DTYPE_UINT8, 200, 17);
    test_empty_tensor();
    test_scalar();
    test_need_input();
    test_need_output();
    test_payload_end();
    test_crc_mismatch();
    test_argument_errors();
    test_status_strings();
    test_delta();
    test_integer_limits();
    test_predicted_rows();
    test_history_extremes();
    test_history_errors();
    test_predicted_update(TC_PREDICT_DIFFERENCE);
    test_predicted_update(TC_PREDICT_SCALE);
    test_scale_prediction();
    test_scale_history_too_small();
    test_reserved_prediction_fields();
    test_hand_made_prediction_info();
    test_prediction_overflow();
    test_factor_prediction(43, 3, 7, 1);    /* 7 rows, the last one short */
    test_factor_prediction(1, 1, 0, 0);     /* one element per row */
    test_factor_prediction(500, 2, 0, 0);   /* one row, shorter than H */
    test_factor_prediction(60, 64, 24, 0);  /* the largest rank and shift */
    test_factor_value_limits();
    test_reserved_factor_fields();
    test_reserved_quantizer();
    test_hand_made_quantizer_info();
    test_dependent_reconstruction();
    test_dependent_streaming();
    test_float_reconstruction_edges();
    test_varint_rules();
    test_offset_varints();
    test_peak_fields();
    test_peak_entry_codes();
    test_peak_axes();
    test_peak_ends();
    test_peak_values();
    test_peaks_with_scale_prediction();
    test_peaks_resume();
    test_peak_limits();
    test_peak_work_memory();
    test_hand_made_peak_info();
    fflush(stderr);
    test_null_empty_buffers();
    printf("unit: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
