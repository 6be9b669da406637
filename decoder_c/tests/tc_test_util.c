/* tc_test_util.c - see tc_test_util.h. */
#include "tc_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The working state of every tc_decode_tensor call here. */
static tc_decoder whole_decoder;

#define GUARD_BYTE 0xA5u

void tcu_fail(const char *file, int line, const char *message)
{
    fprintf(stderr, "%s:%d: decoder contract broken: %s\n", file, line, message);
    fflush(stderr);
    abort();
}

uint8_t *tcu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long length;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (length = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)length + 1u);
        if (data != NULL && fread(data, 1, (size_t)length, f) != (size_t)length) {
            free(data);
            data = NULL;
        }
        *size = (size_t)length;
    }
    fclose(f);
    return data;
}

void tcu_put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void tcu_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void tcu_fix_header_crc(uint8_t *data, size_t size)
{
    uint32_t directory_size, crc;
    if (size < TC_HEADER_SIZE)
        return;
    directory_size = get_u32(data + 8);
    if (size - TC_HEADER_SIZE < directory_size)
        return;
    crc = tc_crc32(0, data, 16);
    crc = tc_crc32(crc, data + TC_HEADER_SIZE, directory_size);
    tcu_put_u32(data + 16, crc);
}

int tcu_mode_is_delta(unsigned mode)
{
    return mode == TC_MODE_DELTA_LOSSLESS || mode == TC_MODE_DELTA_QUANTIZED;
}

static int mode_is_quantized(unsigned mode)
{
    return mode == TC_MODE_QUANTIZED || mode == TC_MODE_DELTA_QUANTIZED;
}

/* Bytes of the mode-specific fields of an entry (FORMAT 3.2). */
static size_t mode_fields_size(unsigned mode, uint32_t step_count)
{
    size_t size = mode == TC_MODE_LOSSLESS ? 4u : 0u;
    if (mode_is_quantized(mode))
        size += 2u + 3u * (size_t)step_count; /* axis, quantizer, steps */
    if (tcu_mode_is_delta(mode))
        size += 4u; /* base_crc32 */
    return size;
}

/* Bytes of an entry before its dims: name_len, name, dtype, mode,
 * initial_activity, prediction, history (u16, only with prediction), rank
 * and factor_shift (only with factor prediction), ndim. */
static size_t entry_head_size(size_t name_len, unsigned prediction)
{
    return 1u + name_len + 4u + (prediction != TC_PREDICT_NONE ? 2u : 0u) +
           (prediction == TC_PREDICT_FACTORS ? 2u : 0u) + 1u;
}

size_t tcu_entry_size(const tc_tensor_info *t)
{
    return entry_head_size(t->name_len, t->prediction) + 4u * (size_t)t->ndim +
           mode_fields_size(t->mode, t->step_count) + 12u;
}

size_t tcu_entry_crc_offset(const tc_stream *s, const tc_tensor_info *t)
{
    return (size_t)(t->name - 1 - s->data) + tcu_entry_size(t) - 4u;
}

static unsigned expected_element_size(unsigned dtype)
{
    static const unsigned sizes[7] = {0, 1, 1, 2, 4, 4, 4};
    return dtype < 7u ? sizes[dtype] : 0u;
}

static const char *check_shape(const tc_tensor_info *t)
{
    uint64_t count = 1;
    unsigned i;
    int empty = 0;
    if (t->ndim > TC_MAX_NDIM)
        return "ndim above the limit";
    for (i = 0; i < t->ndim; i++) {
        if (t->dims[i] > TC_MAX_ELEMENTS)
            return "dimension above the limit";
        empty |= t->dims[i] == 0;
    }
    /* FORMAT 3.2: a 0 anywhere empties the tensor, whatever the dims
     * before it; otherwise the product must stay within the limit (each
     * step fits 64 bits: at most 2^31 - 1 times 2^31 - 1). */
    for (i = 0; i < t->ndim && !empty; i++) {
        count *= t->dims[i];
        if (count > TC_MAX_ELEMENTS)
            return "element count above the limit accepted";
    }
    if (empty)
        count = 0;
    if (count != t->element_count)
        return "element_count is not the product of dims";
    return NULL;
}

static const char *check_quantization(const uint8_t *dir_end, const tc_tensor_info *t)
{
    uint32_t i;
    if (t->mode > TC_MODE_DELTA_QUANTIZED)
        return "reserved mode accepted";
    if (!mode_is_quantized(t->mode)) {
        if (t->quantizer != TC_QUANTIZER_UNIFORM)
            return "quantizer set on a lossless mode";
        return t->dtype >= TC_DTYPE_FLOAT32 ? "lossless mode on a float dtype" : NULL;
    }
    if (t->dtype < TC_DTYPE_FLOAT32)
        return "quantized mode on an integer dtype";
    if (t->quantizer > TC_QUANTIZER_DEPENDENT)
        return "reserved quantizer accepted";
    if (t->axis != TC_AXIS_NONE && t->axis >= t->ndim)
        return "quantization axis out of range";
    if (t->step_count != (t->axis == TC_AXIS_NONE ? 1u : t->dims[t->axis]) || t->step_count > TC_MAX_STEP_COUNT)
        return "wrong step_count";
    if (t->steps == NULL || t->steps > dir_end || (size_t)(dir_end - t->steps) < 3u * (size_t)t->step_count)
        return "steps outside the directory";
    for (i = 0; i < t->step_count; i++)
        if (t->steps[3u * i] == 0 && t->steps[3u * i + 1u] == 0)
            return "zero step mantissa accepted";
    return NULL;
}

const char *tcu_check_info(const tc_stream *s, const tc_tensor_info *t)
{
    const uint8_t *dir_start = s->data + TC_HEADER_SIZE;
    const uint8_t *dir_end = dir_start + s->directory_size;
    uint64_t payload_start = (uint64_t)TC_HEADER_SIZE + s->directory_size;
    uint64_t payload_end = payload_start + s->payload_area_size;
    const char *problem;
    if (t->name_len < 1 || t->name_len > TC_MAX_NAME_LEN)
        return "name length out of range";
    if (t->name < dir_start + 1 || t->name > dir_end || (size_t)(dir_end - t->name) < t->name_len)
        return "name outside the directory";
    if ((size_t)(dir_end - (t->name - 1)) < tcu_entry_size(t))
        return "entry extends past the directory";
    if (expected_element_size(t->dtype) == 0 || t->element_size != expected_element_size(t->dtype))
        return "bad dtype or element_size";
    if (t->prediction > TC_PREDICT_FACTORS)
        return "reserved prediction kind accepted";
    if ((t->prediction == TC_PREDICT_NONE) != (t->history == 0))
        return "history present without prediction, or prediction without history";
    if (t->history > TC_MAX_HISTORY)
        return "history above the limit";
    if (t->prediction == TC_PREDICT_FACTORS ? t->rank == 0 || t->rank > 64 || t->factor_shift > 24
                                            : t->rank != 0 || t->factor_shift != 0)
        return "rank or factor_shift out of range, or present without factor prediction";
    if (t->work_size != (t->prediction == TC_PREDICT_FACTORS ? (t->history + 1u) * t->rank : t->history))
        return "work_size is not the prediction's working memory";
    if ((problem = check_shape(t)) != NULL || (problem = check_quantization(dir_end, t)) != NULL)
        return problem;
    if (t->payload_offset < payload_start)
        return "payload_offset points into the header or directory";
    if ((uint64_t)t->payload_offset + t->payload_size > payload_end)
        return "payload extends past the payload area";
    if ((t->element_count == 0) != (t->payload_size == 0))
        return "payload_size inconsistent with element_count";
    return NULL;
}

size_t tcu_build_stream(uint8_t *out, size_t cap, const tcu_tensor_spec *spec, const uint8_t *payload,
                        uint32_t payload_size, uint32_t crc)
{
    size_t name_len = strlen(spec->name), pos = TC_HEADER_SIZE, directory_size, i;
    directory_size = entry_head_size(name_len, spec->prediction) + 4u * spec->ndim +
                     mode_fields_size(spec->mode, spec->step_count) + 12u;
    if (name_len < 1 || name_len > TC_MAX_NAME_LEN || cap < TC_HEADER_SIZE + directory_size + payload_size)
        return 0;
    memcpy(out, "TCAB", 4);
    out[4] = (uint8_t)TC_FORMAT_VERSION;
    out[5] = 0;
    tcu_put_u16(out + 6, 1);
    tcu_put_u32(out + 8, (uint32_t)directory_size);
    tcu_put_u32(out + 12, payload_size);
    out[pos++] = (uint8_t)name_len;
    memcpy(out + pos, spec->name, name_len);
    pos += name_len;
    out[pos++] = spec->dtype;
    out[pos++] = spec->mode;
    out[pos++] = spec->initial_activity;
    out[pos++] = spec->prediction;
    if (spec->prediction != TC_PREDICT_NONE) {
        tcu_put_u16(out + pos, spec->history);
        pos += 2;
    }
    if (spec->prediction == TC_PREDICT_FACTORS) {
        out[pos++] = spec->rank;
        out[pos++] = spec->factor_shift;
    }
    out[pos++] = spec->ndim;
    for (i = 0; i < spec->ndim; i++, pos += 4)
        tcu_put_u32(out + pos, spec->dims[i]);
    if (spec->mode == TC_MODE_LOSSLESS) {
        tcu_put_u32(out + pos, (uint32_t)spec->offset);
        pos += 4;
    }
    if (mode_is_quantized(spec->mode)) {
        out[pos++] = spec->axis;
        out[pos++] = spec->quantizer;
        memcpy(out + pos, spec->steps, 3u * (size_t)spec->step_count);
        pos += 3u * (size_t)spec->step_count;
    }
    if (tcu_mode_is_delta(spec->mode)) {
        tcu_put_u32(out + pos, spec->base_crc32);
        pos += 4;
    }
    tcu_put_u32(out + pos, 0); /* payload_offset */
    tcu_put_u32(out + pos + 4, payload_size);
    tcu_put_u32(out + pos + 8, crc);
    pos += 12;
    if (payload_size)
        memcpy(out + pos, payload, payload_size);
    tcu_fix_header_crc(out, pos + payload_size);
    return pos + payload_size;
}

int64_t tcu_clamp_int8(int64_t level)
{
    return level < -128 ? -128 : level > 127 ? 127 : level;
}

void tcu_residuals(const int64_t *levels, size_t n, uint32_t history, int64_t *residuals)
{
    size_t i;
    for (i = 0; i < n; i++)
        residuals[i] = levels[i] - (history != 0 && i >= history ? tcu_clamp_int8(levels[i - history]) : 0);
}

unsigned tcu_dependent_next_state(unsigned state, int64_t level)
{
    unsigned level_parity = (unsigned)((level < 0 ? -level : level) & 1);
    unsigned state_parity = (state ^ (state >> 1) ^ (state >> 2)) & 1u; /* XOR of the three bits */
    return ((2u * state) & 7u) | (level_parity ^ state_parity);
}

void tcu_reconstruction_indices(const int64_t *levels, size_t n, unsigned quantizer, int64_t *indices)
{
    unsigned state = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        int64_t level = levels[i], sign = level > 0 ? 1 : level < 0 ? -1 : 0;
        if (quantizer == TC_QUANTIZER_UNIFORM) {
            indices[i] = level;
            continue;
        }
        indices[i] = (state & 1u) == 0 ? 2 * level : 2 * level - sign;
        state = tcu_dependent_next_state(state, level);
    }
}

void tcu_column_activities(const int64_t *levels, size_t n, uint32_t history, unsigned initial_activity,
                           uint8_t *columns)
{
    uint8_t *ring;
    size_t i;
    TCU_CHECK(history > 0, "scale prediction needs a distance H > 0"); /* columns are i mod H */
    ring = malloc(history);
    TCU_CHECK(ring != NULL, "out of memory");
    memset(ring, (int)initial_activity, history);
    for (i = 0; i < n; i++) {
        uint8_t *column = ring + i % history;
        uint64_t magnitude = levels[i] < 0 ? 0u - (uint64_t)levels[i] : (uint64_t)levels[i];
        unsigned magnitude_class = 0;
        while (magnitude_class < 64 && (magnitude >> magnitude_class) != 0)
            magnitude_class++;
        columns[i] = *column;
        *column = (uint8_t)((*column - (*column >> 3) + magnitude_class) % 256u);
    }
    free(ring);
}

int8_t *tcu_history_buffer(const tc_tensor_info *info)
{
    size_t size = info->work_size ? info->work_size : 1u;
    int8_t *buffer = malloc(size);
    TCU_CHECK(buffer != NULL, "out of memory");
    memset(buffer, 0x5A, size); /* the ring must start at zero whatever the caller's memory held */
    return buffer;
}

/* ------------------------------------------------------------------ */
/* Whole-stream decoding.                                              */

static int allocate_tables(tcu_decoded *r, uint32_t count)
{
    size_t n = count ? count : 1u;
    r->info = calloc(n, sizeof *r->info);
    r->data = calloc(n, sizeof *r->data);
    r->bytes = calloc(n, sizeof *r->bytes);
    return r->info != NULL && r->data != NULL && r->bytes != NULL;
}

const uint8_t *tcu_find_base(const tcu_decoded *base, const tc_tensor_info *t)
{
    uint32_t i;
    if (base == NULL)
        return NULL;
    for (i = 0; i < base->count; i++) {
        const tc_tensor_info *b = &base->info[i];
        if (b->name_len == t->name_len && memcmp(b->name, t->name, t->name_len) == 0)
            return base->bytes[i] == (size_t)t->element_count * t->element_size ? base->data[i] : NULL;
    }
    return NULL;
}

/* Fill an update's output with its base, as the caller of an in-place
 * update does; a careful caller checks the base first. */
static tc_status load_base(const tcu_decoded *base, const tc_tensor_info *t, uint8_t *out, size_t bytes)
{
    const uint8_t *source = tcu_find_base(base, t);
    tc_status checked;
    if (source != NULL)
        memcpy(out, source, bytes);
    else
        memset(out, 0, bytes);
    checked = tc_check_base(t, out, bytes);
    TCU_CHECK(checked == TC_OK || checked == TC_ERR_BASE, "tc_check_base failed on a parsed update entry");
    return checked;
}

/* tc_decode_tensor with exactly the working memory the tensor asks for. */
static tc_status decode_with_history(const tc_stream *s, const tc_tensor_info *t, uint8_t *out, size_t size)
{
    int8_t *history = tcu_history_buffer(t);
    tc_status st = tc_decode_tensor(s, t, &whole_decoder, out, size, history, t->work_size);
    free(history);
    return st;
}

static tc_status decode_one(tcu_decoded *r, uint32_t i, size_t max_output, const tcu_decoded *base,
                            int check_base_first, size_t lo, size_t hi)
{
    tc_tensor_info *t = &r->info[i];
    const char *problem;
    uint64_t bytes;
    tc_status st = tc_stream_tensor(&r->stream, i, t);
    TCU_CHECK(st == TC_OK, "tc_stream_open accepted an entry that tc_stream_tensor rejects");
    if ((problem = tcu_check_info(&r->stream, t)) != NULL)
        tcu_fail(__FILE__, __LINE__, problem);
    bytes = (uint64_t)t->element_count * t->element_size;
    r->count = i + 1u;
    if (t->payload_offset >= hi || (uint64_t)t->payload_offset + t->payload_size <= lo)
        return TC_OK; /* untouched by the damage: left undecoded */
    if (bytes > max_output)
        return TCU_SKIPPED_LARGE;
    r->bytes[i] = (size_t)bytes;
    r->data[i] = malloc(bytes ? (size_t)bytes : 1u);
    TCU_CHECK(r->data[i] != NULL, "out of memory");
    if (tcu_mode_is_delta(t->mode)) {
        tc_status checked = load_base(base, t, r->data[i], (size_t)bytes);
        if (checked != TC_OK && check_base_first)
            return checked;
        st = decode_with_history(&r->stream, t, r->data[i], (size_t)bytes);
        TCU_CHECK(checked == TC_OK || st != TC_OK, "update applied to a base whose CRC-32 does not match");
        return st;
    }
    /* An empty tensor gets a zero-size view: the decoder must not touch it. */
    return decode_with_history(&r->stream, t, r->data[i], (size_t)bytes);
}

tc_status tcu_decode_all(const uint8_t *data, size_t size, int strict, size_t max_output,
                         const tcu_decoded *base, int check_base_first, tcu_decoded *result)
{
    return tcu_decode_range(data, size, strict, max_output, base, check_base_first, 0, SIZE_MAX, result);
}

tc_status tcu_decode_range(const uint8_t *data, size_t size, int strict, size_t max_output,
                           const tcu_decoded *base, int check_base_first, size_t lo, size_t hi,
                           tcu_decoded *result)
{
    uint32_t i;
    tc_status st;
    memset(result, 0, sizeof *result);
    result->failed_index = UINT32_MAX;
    st = tc_stream_open(&result->stream, data, size);
    if (st == TC_OK && strict) {
        uint64_t end = (uint64_t)TC_HEADER_SIZE + result->stream.directory_size + result->stream.payload_area_size;
        st = size < end ? TC_ERR_TRUNCATED : size > end ? TCU_TRAILING_BYTES : TC_OK;
    }
    if (st == TC_OK && !allocate_tables(result, result->stream.tensor_count))
        tcu_fail(__FILE__, __LINE__, "out of memory");
    for (i = 0; st == TC_OK && i < result->stream.tensor_count; i++)
        if ((st = decode_one(result, i, max_output, base, check_base_first, lo, hi)) != TC_OK)
            result->failed_index = i;
    result->status = st;
    return st;
}

void tcu_decoded_free(tcu_decoded *result)
{
    uint32_t i;
    for (i = 0; i < result->count; i++)
        free(result->data[i]);
    free(result->info);
    free(result->data);
    free(result->bytes);
    memset(result, 0, sizeof *result);
}

static int same_tensor(const tcu_decoded *a, const tcu_decoded *b, uint32_t i)
{
    const tc_tensor_info *x = &a->info[i], *y = &b->info[i];
    return x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0 && x->dtype == y->dtype &&
           x->mode == y->mode && x->ndim == y->ndim && memcmp(x->dims, y->dims, sizeof x->dims) == 0 &&
           (a->data[i] == NULL || b->data[i] == NULL ||
            (a->bytes[i] == b->bytes[i] && memcmp(a->data[i], b->data[i], a->bytes[i]) == 0));
}

int tcu_decoded_equal(const tcu_decoded *a, const tcu_decoded *b)
{
    uint32_t i;
    if (a->status != TC_OK || b->status != TC_OK || a->count != b->count)
        return 0;
    for (i = 0; i < a->count; i++)
        if (!same_tensor(a, b, i))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Streaming decoding.                                                 */

size_t tcu_chunk_size(tcu_chunks *c, size_t max)
{
    uint32_t x = c->state ? c->state : 0x9E3779B9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c->state = x;
    return max <= 1u ? 1u : 1u + (size_t)(x % max);
}

typedef struct {
    uint8_t *buf;   /* unconsumed input sits at the end: reads past in_size hit ASan */
    size_t cap;
    size_t held;
    size_t fed;     /* bytes of src handed over so far */
} input_window;

static void window_append(input_window *w, const uint8_t *src, size_t n)
{
    memmove(w->buf + w->cap - w->held - n, w->buf + w->cap - w->held, w->held);
    memcpy(w->buf + w->cap - n, src, n);
    w->held += n;
    w->fed += n;
}

/* Prepare the output chunk for one call: guard bytes everywhere, and in
 * the delta modes the base elements the decoder will read and replace. */
static void prepare_output(uint8_t *buf, size_t cap, uint8_t *chunk, size_t chunk_size, const uint8_t *base,
                           size_t base_left, uint8_t *snapshot)
{
    memset(buf, GUARD_BYTE, cap);
    if (base != NULL)
        memcpy(chunk, base, chunk_size < base_left ? chunk_size : base_left);
    memcpy(snapshot, buf, cap);
}

/* The decoder's answer to one call must fit its documented contract. */
static void check_call(const tc_tensor_info *info, tc_status st, const input_window *w, size_t in_pos,
                       const tcu_stream_stats *stats, size_t out_size, size_t out_pos)
{
    TCU_CHECK(in_pos <= w->held && out_pos <= out_size, "position moved past its buffer");
    TCU_CHECK(out_pos % info->element_size == 0, "partial element written");
    TCU_CHECK(stats->consumed + in_pos <= info->payload_size, "consumed bytes past the payload");
    if (st == TC_NEED_INPUT) {
        size_t left = w->held - in_pos;
        TCU_CHECK(left < TC_MAX_VALUE_INPUT, "TC_NEED_INPUT while holding a whole value's worth of input");
        TCU_CHECK(stats->consumed + in_pos + left < info->payload_size,
                  "TC_NEED_INPUT although the rest of the payload is buffered");
    }
    if (st == TC_NEED_OUTPUT)
        TCU_CHECK(out_size - out_pos < info->element_size, "TC_NEED_OUTPUT with room for another element");
}

tc_status tcu_decode_streaming(const tc_tensor_info *info, const uint8_t *src, size_t src_size,
                               tcu_chunks *chunks, const uint8_t *base, uint8_t *out, size_t out_cap,
                               size_t *out_len, tcu_stream_stats *stats)
{
    tc_decoder d;
    input_window w;
    size_t out_max = chunks->out_max < info->element_size ? info->element_size : chunks->out_max;
    size_t total = 0, idle = 0;
    uint8_t *out_buf = malloc(out_max), *snapshot = malloc(out_max), *zeros = NULL;
    int8_t *history = tcu_history_buffer(info);
    int want_input = 1;
    tc_status st = tc_decoder_init(&d, info);
    TCU_CHECK(st == TC_OK, "tc_decoder_init rejected a parsed entry");
    st = tc_decoder_set_history(&d, history, info->work_size);
    TCU_CHECK(st == TC_OK, "tc_decoder_set_history refused a buffer of work_size bytes");
    memset(stats, 0, sizeof *stats);
    w.cap = TC_MAX_VALUE_INPUT + chunks->in_max;
    w.buf = malloc(w.cap);
    w.held = w.fed = 0;
    TCU_CHECK(out_buf != NULL && snapshot != NULL && w.buf != NULL, "out of memory");
    if (!tcu_mode_is_delta(info->mode))
        base = NULL;
    else if (base == NULL)
        base = zeros = calloc(out_cap ? out_cap : 1u, 1); /* as tcu_decode_all: no base, zeros */
    for (;;) {
        size_t out_size = tcu_chunk_size(chunks, out_max), in_pos = 0, out_pos = 0;
        uint8_t *chunk = out_buf + out_max - out_size; /* ends where the allocation ends */
        if (want_input) {
            size_t n = tcu_chunk_size(chunks, chunks->in_max);
            window_append(&w, src + w.fed, n < src_size - w.fed ? n : src_size - w.fed);
        }
        prepare_output(out_buf, out_max, chunk, out_size, base ? base + total : NULL, out_cap - total, snapshot);
        st = tc_decoder_run(&d, w.buf + w.cap - w.held, &in_pos, w.held, chunk, &out_pos, out_size);
        stats->calls++;
        check_call(info, st, &w, in_pos, stats, out_size, out_pos);
        TCU_CHECK(memcmp(out_buf, snapshot, (size_t)(chunk - out_buf)) == 0 &&
                      memcmp(chunk + out_pos, snapshot + (chunk - out_buf) + out_pos, out_size - out_pos) == 0,
                  "wrote outside the reported output");
        TCU_CHECK(total + out_pos <= out_cap, "more output than the tensor holds");
        memcpy(out + total, chunk, out_pos);
        total += out_pos;
        stats->consumed += in_pos;
        w.held -= in_pos;
        idle = (in_pos == 0 && out_pos == 0) ? idle + 1u : 0u;
        TCU_CHECK(idle < 100000u, "no progress");
        if (st == TC_NEED_INPUT) {
            stats->need_input++;
            if (w.fed == src_size) {
                st = TC_ERR_TRUNCATED;
                break;
            }
        } else if (st == TC_NEED_OUTPUT) {
            stats->need_output++;
        } else {
            break;
        }
        want_input = st == TC_NEED_INPUT;
    }
    if (st == TC_OK) {
        TCU_CHECK(total == (size_t)info->element_count * info->element_size, "TC_OK before the whole tensor");
        TCU_CHECK(stats->consumed == info->payload_size, "TC_OK without consuming the whole payload");
    }
    free(out_buf);
    free(snapshot);
    free(zeros);
    free(history);
    free(w.buf);
    *out_len = total;
    return st;
}
