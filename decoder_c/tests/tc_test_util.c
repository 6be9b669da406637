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

size_t tcu_put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    do {
        uint8_t byte = (uint8_t)(v & 0x7Fu);
        v >>= 7;
        if (p != NULL)
            p[n] = (uint8_t)(byte | (v != 0 ? 0x80u : 0u));
        n++;
    } while (v != 0);
    return n;
}

uint32_t tcu_zigzag(int32_t v)
{
    uint32_t u = (uint32_t)v << 1; /* the bits of 2v */
    return v < 0 ? ~u : u;         /* -2v - 1 = ~(2v) */
}

/* Writes an entry, or with out NULL only counts its bytes. */
typedef struct {
    uint8_t *out;
    size_t pos;
} entry_writer;

static void put_bytes(entry_writer *w, const void *bytes, size_t n)
{
    if (w->out != NULL && n != 0)
        memcpy(w->out + w->pos, bytes, n);
    w->pos += n;
}

static void put_u8(entry_writer *w, uint32_t v)
{
    uint8_t byte = (uint8_t)v;
    put_bytes(w, &byte, 1);
}

static void put_u32(entry_writer *w, uint32_t v)
{
    uint8_t bytes[4];
    tcu_put_u32(bytes, v);
    put_bytes(w, bytes, 4);
}

static void put_varint(entry_writer *w, uint32_t v)
{
    w->pos += tcu_put_varint(w->out != NULL ? w->out + w->pos : NULL, v);
}

/* The directory entry of `t` (FORMAT 3.2), its payload at `relative_offset`
 * from the end of the directory, written the one way the format allows.
 * *base_crc_at (if not NULL) receives where base_crc32 lies in it. */
static size_t write_entry(uint8_t *out, const tc_tensor_info *t, uint32_t relative_offset, size_t *base_crc_at)
{
    entry_writer w;
    uint32_t i;
    w.out = out;
    w.pos = 0;
    put_u8(&w, t->name_len);
    put_bytes(&w, t->name, t->name_len);
    put_u8(&w, t->dtype);
    put_u8(&w, t->mode);
    put_u8(&w, t->initial_activity);
    put_u8(&w, t->prediction);
    if (t->prediction != TC_PREDICT_NONE)
        put_varint(&w, t->history);
    if (t->prediction == TC_PREDICT_FACTORS) {
        put_u8(&w, t->rank);
        put_u8(&w, t->factor_shift);
    }
    put_u8(&w, t->ndim);
    for (i = 0; i < t->ndim && i < TC_MAX_NDIM; i++)
        put_varint(&w, t->dims[i]);
    if (t->mode == TC_MODE_LOSSLESS) {
        put_varint(&w, tcu_zigzag(t->offset));
        put_varint(&w, t->peak);
        if (t->peak != 0)
            put_u8(&w, t->peak_axis);
    }
    if (mode_is_quantized(t->mode)) {
        put_u8(&w, t->axis);
        put_u8(&w, t->quantizer);
        put_bytes(&w, t->steps, 3u * (size_t)t->step_count);
    }
    if (base_crc_at != NULL)
        *base_crc_at = w.pos;
    if (tcu_mode_is_delta(t->mode))
        put_u32(&w, t->base_crc32);
    put_varint(&w, relative_offset);
    put_varint(&w, t->payload_size);
    put_u32(&w, t->crc32);
    return w.pos;
}

/* payload_offset as the entry holds it: from the end of the directory. */
static uint32_t relative_payload_offset(const tc_stream *s, const tc_tensor_info *t)
{
    return t->payload_offset - (uint32_t)(TC_HEADER_SIZE + s->directory_size);
}

size_t tcu_entry_size(const tc_stream *s, const tc_tensor_info *t)
{
    return write_entry(NULL, t, relative_payload_offset(s, t), NULL);
}

size_t tcu_entry_crc_offset(const tc_stream *s, const tc_tensor_info *t)
{
    return (size_t)(t->name - 1 - s->data) + tcu_entry_size(s, t) - 4u;
}

size_t tcu_entry_base_crc_offset(const tc_stream *s, const tc_tensor_info *t)
{
    size_t at;
    write_entry(NULL, t, relative_payload_offset(s, t), &at);
    return (size_t)(t->name - 1 - s->data) + at;
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

/* Channel peaks (FORMAT 3.2, 5.9): mode 0 only, prediction none or scale,
 * an axis of the tensor whose channels fit the limits; none: no axis. */
static const char *check_peaks(const tc_tensor_info *t)
{
    uint32_t channels;
    if (t->peak == 0)
        return t->peak_axis == 0 ? NULL : "peak_axis set without peaks";
    if (t->mode != TC_MODE_LOSSLESS)
        return "peaks on a mode other than lossless";
    if (t->prediction != TC_PREDICT_NONE && t->prediction != TC_PREDICT_SCALE)
        return "peaks with difference or factor prediction accepted";
    if (t->peak > 0x80000000u) /* |level| <= 2^31 */
        return "peak magnitude above 2^31 accepted";
    if (t->peak_axis >= t->ndim)
        return "peak_axis out of range accepted";
    if (t->element_count == 0)
        return "peaks on an empty tensor accepted";
    channels = t->dims[t->peak_axis];
    if (channels > TC_MAX_PEAK_CHANNELS)
        return "more peak channels than the limit accepted";
    if (t->element_count / channels > TC_MAX_PEAK_CHANNEL_SIZE)
        return "peak channel_size above the limit accepted";
    return NULL;
}

/* The working memory FORMAT 5.7-5.9 asks for: a ring of H bytes (difference,
 * scale), (H + 1) * rank bytes (factors), plus 2 per peak channel. */
static uint64_t expected_work_size(const tc_tensor_info *t)
{
    uint64_t size = t->prediction == TC_PREDICT_FACTORS ? ((uint64_t)t->history + 1u) * t->rank : t->history;
    if (t->peak != 0 && t->peak_axis < t->ndim)
        size += 2u * (uint64_t)t->dims[t->peak_axis];
    return size;
}

/* The entry written again from `t` is the bytes it came from. */
static const char *check_entry_bytes(const tc_stream *s, const tc_tensor_info *t, const uint8_t *dir_end)
{
    const uint8_t *entry = t->name - 1;
    size_t size = tcu_entry_size(s, t);
    uint8_t *written;
    int same;
    if ((size_t)(dir_end - entry) < size)
        return "entry extends past the directory";
    written = malloc(size);
    TCU_CHECK(written != NULL, "out of memory");
    write_entry(written, t, relative_payload_offset(s, t), NULL);
    same = memcmp(written, entry, size) == 0;
    free(written);
    return same ? NULL : "the parsed fields do not give back the entry's bytes";
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
    if ((problem = check_shape(t)) != NULL || (problem = check_quantization(dir_end, t)) != NULL)
        return problem;
    if (t->mode != TC_MODE_LOSSLESS && t->offset != 0)
        return "offset set on a mode other than lossless";
    if (!mode_is_quantized(t->mode) && (t->step_count != 0 || t->steps != NULL))
        return "steps set on a lossless mode";
    if (!tcu_mode_is_delta(t->mode) && t->base_crc32 != 0)
        return "base_crc32 set on a mode that has no base";
    if ((problem = check_peaks(t)) != NULL)
        return problem;
    if (t->work_size != expected_work_size(t))
        return "work_size is not the working memory of the prediction and the peaks";
    if (t->payload_offset < payload_start)
        return "payload_offset points into the header or directory";
    if ((uint64_t)t->payload_offset + t->payload_size > payload_end)
        return "payload extends past the payload area";
    if ((t->element_count == 0) != (t->payload_size == 0))
        return "payload_size inconsistent with element_count";
    return check_entry_bytes(s, t, dir_end);
}

size_t tcu_build_stream(uint8_t *out, size_t cap, const tcu_tensor_spec *spec, const uint8_t *payload,
                        uint32_t payload_size, uint32_t crc)
{
    size_t name_len = strlen(spec->name), directory_size;
    tc_tensor_info t;
    memset(&t, 0, sizeof t);
    t.name = (const uint8_t *)spec->name;
    t.name_len = (uint32_t)name_len;
    t.dtype = spec->dtype;
    t.mode = spec->mode;
    t.initial_activity = spec->initial_activity;
    t.prediction = spec->prediction;
    t.history = spec->history;
    t.rank = spec->rank;
    t.factor_shift = spec->factor_shift;
    t.ndim = spec->ndim;
    memcpy(t.dims, spec->dims, sizeof t.dims);
    t.offset = spec->offset;
    t.peak = spec->peak;
    t.peak_axis = spec->peak_axis;
    t.axis = spec->axis;
    t.quantizer = spec->quantizer;
    t.steps = spec->steps;
    t.step_count = spec->step_count;
    t.base_crc32 = spec->base_crc32;
    t.payload_size = payload_size;
    t.crc32 = crc;
    if (name_len < 1 || name_len > TC_MAX_NAME_LEN || spec->ndim > TC_MAX_NDIM)
        return 0;
    directory_size = write_entry(NULL, &t, 0, NULL);
    if (cap < TC_HEADER_SIZE + directory_size || cap - TC_HEADER_SIZE - directory_size < payload_size)
        return 0;
    memcpy(out, "TCAB", 4);
    out[4] = (uint8_t)TC_FORMAT_VERSION;
    out[5] = 0;
    tcu_put_u16(out + 6, 1);
    tcu_put_u32(out + 8, (uint32_t)directory_size);
    tcu_put_u32(out + 12, payload_size);
    write_entry(out + TC_HEADER_SIZE, &t, 0, NULL); /* the payload right after the directory */
    if (payload_size)
        memcpy(out + TC_HEADER_SIZE + directory_size, payload, payload_size);
    tcu_fix_header_crc(out, TC_HEADER_SIZE + directory_size + payload_size);
    return TC_HEADER_SIZE + directory_size + payload_size;
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

void tcu_column_activities(const int64_t *levels, const uint8_t *peaks, size_t n, uint32_t history,
                           unsigned initial_activity, uint8_t *columns)
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
        if (peaks == NULL || !peaks[i]) /* FORMAT 5.9: a peak leaves its column's byte alone */
            *column = (uint8_t)((*column - (*column >> 3) + magnitude_class) % 256u);
    }
    free(ring);
}

tcu_peak_layout tcu_peak_layout_of(uint32_t ndim, const uint32_t *dims, uint32_t axis)
{
    tcu_peak_layout layout;
    uint32_t i;
    layout.channels = dims[axis];
    layout.slabs = 1;
    layout.inner = 1;
    for (i = 0; i < axis; i++)
        layout.slabs *= dims[i];
    for (i = axis + 1u; i < ndim; i++)
        layout.inner *= dims[i];
    layout.channel_size = layout.slabs * layout.inner;
    return layout;
}

size_t tcu_peak_element(const tcu_peak_layout *layout, uint32_t channel, uint32_t place)
{
    size_t slab = place / layout->inner, j = place % layout->inner;
    return (slab * layout->channels + channel) * layout->inner + j;
}

void tcu_peak_entry(uint32_t channel_size, uint32_t place, unsigned negative, uint32_t *value, uint32_t *bits)
{
    uint32_t k = 0, u;
    TCU_CHECK(channel_size >= 1 && place < channel_size, "a peak's place lies in its channel");
    while ((channel_size >> (k + 1u)) != 0)
        k++; /* k = floor(log2 n) */
    u = (2u << k) - channel_size; /* places below u take k bits, the others k + 1 */
    if (place < u) {
        *value = place;
        *bits = k;
    } else {
        *value = place + u; /* its first k bits are >= u, the decoder's cue for one more */
        *bits = k + 1u;
    }
    *value = *value << 1 | (negative ? 1u : 0u);
    *bits += 1u;
}

void tcu_set_peaks(const tcu_peak_layout *layout, uint32_t peak, const uint32_t *places, const uint8_t *negative,
                   int64_t *levels, size_t n, uint8_t *peaks)
{
    uint32_t c;
    memset(peaks, 0, n);
    for (c = 0; c < layout->channels; c++) {
        size_t i = tcu_peak_element(layout, c, places[c]);
        TCU_CHECK(places[c] < layout->channel_size && i < n, "a peak inside its channel and the tensor");
        levels[i] = negative[c] ? -(int64_t)peak : (int64_t)peak;
        peaks[i] = 1;
    }
}

size_t tcu_without_peaks(const int64_t *levels, const uint8_t *columns, const uint8_t *peaks, size_t n,
                         int64_t *coded, uint8_t *coded_columns)
{
    size_t i, count = 0;
    for (i = 0; i < n; i++) {
        if (peaks != NULL && peaks[i])
            continue;
        coded[count] = levels[i];
        if (columns != NULL)
            coded_columns[count] = columns[i];
        count++;
    }
    return count;
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
