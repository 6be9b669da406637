/*
 * fuzz_roundtrip.c - encoder core (host/tinycabac/csrc/encoder.c) to C
 * decoder: fuzzer bytes become levels (|level| <= 2^31), the target turns
 * them into the values a fuzzer-chosen prediction kind and distance H code
 * (FORMAT 5.7: residuals for difference, the levels and the column activity
 * each is coded with for scale, computed here independently of the decoder),
 * tce_encode_levels codes those, the target wraps the payload in a
 * one-tensor stream, and both tc_decode_tensor and the streaming API must
 * give back exactly the values the levels stand for.  With factor
 * prediction (FORMAT 5.8) the target draws random int8 factors, computes
 * their prediction itself from the format text, and codes with
 * tce_encode_factored.  Float reconstructions
 * are checked against the hardware: float32(q * mantissa * 2^exponent)
 * computed in double (exact) and rounded once, and for updates a binary32
 * addition, where q is the level's reconstruction index for the
 * fuzzer-chosen quantizer (FORMAT 6.2: the level itself, or the 8-state dependent
 * quantizer's 2 * level or 2 * level - sign(level)), computed here from the
 * format text.  A level the tensor cannot hold must be rejected as
 * TC_ERR_PAYLOAD: a float32 overflow, an integer outside the dtype, or
 * |level| > 2^31 reached through difference prediction.  With channel
 * peaks (FORMAT 5.9, lossless only) the target shapes the tensor with the
 * channel axis first, in the middle, last or alone, makes one element of
 * each channel, at a random place, +-P, writes the peak entries (truncated
 * binary positions and signs, from the format text: tcu_peak_entry) as the
 * encoder's bypass preamble and codes the other elements, their column
 * activities (scale prediction) computed with the peaks leaving their
 * columns alone.
 *
 * Layout:
 *   byte 0  bits 0-1 mode (0 lossless, 1 quantized, 2 delta-lossless,
 *           3 delta-quantized); bits 2-3 integer dtype (int8, uint8, int16,
 *           int32), bit 2 float16 instead of float32 for the float modes;
 *           bit 4 scale instead of difference prediction when H > 0 (0 keeps
 *           the format 3 seeds' meaning); bit 5 the dependent quantizer
 *           for the float modes (0 keeps the format 4 seeds' meaning); bit 6
 *           factor prediction when H > 0 (rank 1 + seed % 8, shift
 *           seed % 25; 0 keeps the format 11 seeds' meaning); bit 7
 *           channel peaks in mode 0, with scale prediction when H > 0 and
 *           none otherwise (bits 4 and 6 are then ignored; 0 keeps the
 *           format 12 seeds' meaning)
 *   byte 1-2 step mantissa (0 means 1), byte 3 step exponent (int8)
 *   byte 4  bit 0 per-channel steps, bits 1-4 channels - 1 (quantized
 *           modes); with peaks bits 0-1 where the channel axis lies (0
 *           first, 1 middle, 2 last, 3 the only axis: channels of one
 *           element), bits 2-4 the size of the dim before it - 1;
 *           bits 5-7 prediction distance H (choose_history)
 *   byte 5  initial_activity, byte 6-7 seed (offset, base, chunk sizes, H)
 *   then levels: b < 0x80 -> b - 64; b < 0xC0 -> ((b & 0x3F) << 8 | next) - 8192;
 *   else 4 bytes u32 x -> x - 2^31 + (b & 1), taken as the coded value
 *   itself (not fitted to the dtype; with difference prediction
 *   level = coded + prediction) when b & 2.
 */
#include <math.h>

#include "encoder.h"
#include "fuzz_common.h"

/* The working state of every tc_decode_tensor call here. */
static tc_decoder whole_decoder;

#define MAX_LEVELS 4096u
#define TWO_31 ((int64_t)1 << 31)

typedef struct {
    unsigned mode, dtype, initial_activity, channels;
    unsigned peaked;    /* channel peaks (FORMAT 5.9) */
    uint32_t peak;      /* their magnitude P */
    uint8_t peak_axis;
    uint32_t ndim, dims[3]; /* the shape of a peaked tensor */
    unsigned quantizer; /* tc_quantizer, uniform for the integer modes */
    uint32_t seed;
    unsigned prediction; /* tc_prediction */
    uint32_t history; /* prediction distance H, 0 exactly with TC_PREDICT_NONE */
    unsigned rank, factor_shift; /* factor prediction */
    int8_t *factors; /* B (H x rank), then A (rank per row of H) */
    uint8_t steps[3u * 16u];
    uint32_t step_count;
} roundtrip;

/* raw[i] = 1 for a record that gives the coded value rather than the level. */
static size_t parse_levels(const uint8_t *p, size_t n, int64_t *levels, uint8_t *raw)
{
    size_t i = 0, count = 0;
    while (i < n && count < MAX_LEVELS) {
        uint8_t b = p[i++];
        raw[count] = b >= 0xC0u && (b & 2u);
        if (b < 0x80u) {
            levels[count++] = (int64_t)b - 64;
        } else if (b < 0xC0u) {
            if (i >= n)
                break;
            levels[count++] = (int64_t)(((uint32_t)(b & 0x3Fu) << 8) | p[i++]) - 8192;
        } else {
            uint32_t x;
            if (n - i < 4)
                break;
            x = (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8) | ((uint32_t)p[i + 2] << 16) | ((uint32_t)p[i + 3] << 24);
            i += 4;
            levels[count++] = (int64_t)x - TWO_31 + (b & 1u);
        }
    }
    return count;
}

static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state ? *state : 0x6D2B79F5u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static void integer_range(unsigned dtype, int64_t *lo, int64_t *hi)
{
    static const int64_t los[5] = {0, -128, 0, -32768, -TWO_31};
    static const int64_t his[5] = {0, 127, 255, 32767, TWO_31 - 1};
    *lo = los[dtype];
    *hi = his[dtype];
}

static int integer_fits(unsigned dtype, int64_t value)
{
    int64_t lo, hi;
    integer_range(dtype, &lo, &hi);
    return value >= lo && value <= hi;
}

/* Move level into [lo - base, hi - base] (the dtype's range after adding
 * base) intersected with the codable [-2^31, 2^31], by wrapping around. */
static int64_t fit_level(int64_t level, int64_t base, unsigned dtype)
{
    int64_t lo, hi, span, shifted;
    integer_range(dtype, &lo, &hi);
    lo = lo - base > -TWO_31 ? lo - base : -TWO_31;
    hi = hi - base < TWO_31 ? hi - base : TWO_31;
    span = hi - lo + 1;
    shifted = (level - lo) % span;
    return lo + (shifted < 0 ? shifted + span : shifted);
}

static void store(uint8_t *p, uint32_t v, unsigned size)
{
    unsigned i;
    for (i = 0; i < size; i++)
        p[i] = (uint8_t)(v >> (8u * i));
}

static uint32_t float_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return bits;
}

/* A finite float32 base element: sometimes any finite value, mostly one on
 * the scale of the updates so that the addition has work to do. */
static float random_base_float(uint32_t *state)
{
    uint32_t x = next_random(state);
    float f;
    if (x & 1u)
        return (float)((int32_t)((x >> 8) & 0xFFFFu) - 32768) * (1.0f / 1024.0f);
    if (((x >> 23) & 0xFFu) == 0xFFu)
        x &= ~0x40000000u; /* no NaN or infinity */
    memcpy(&f, &x, 4);
    return f;
}

/* The shape of a tensor with channel peaks, from byte 4 bits 0-4 and the
 * seed: the channel axis first, in the middle, last (with dims of 1..8
 * and 1..7 around it) or alone, the channels taking what the others leave
 * of n levels.  Returns how many levels the shape holds (1..n). */
static size_t peak_shape(roundtrip *rt, unsigned selector, size_t n)
{
    uint32_t before = 1u + ((selector >> 2) & 7u), after = 1u + rt->seed % 7u, channels;
    unsigned where = selector & 3u;
    if (where == 3u) {
        rt->ndim = 1;
        rt->dims[0] = (uint32_t)n;
        rt->peak_axis = 0;
        return n;
    }
    if ((size_t)before * after > n)
        before = 1;
    if (after > n)
        after = 1;
    channels = (uint32_t)(n / ((size_t)before * after));
    rt->ndim = 3;
    rt->peak_axis = (uint8_t)where;
    rt->dims[where] = channels;
    rt->dims[where == 0u ? 1u : 0u] = before; /* the others keep their order: before, then after */
    rt->dims[where == 2u ? 1u : 2u] = after;
    return (size_t)channels * before * after;
}

/* Makes one element of each channel a peak (FORMAT 5.9) at a random place:
 * P is mostly the largest |level|, as the host encoder picks it, with the
 * sign of each peak random but one whose value the dtype holds if there is
 * one; now and then P has any magnitude, or the signs are left as drawn, so
 * that a peak the dtype cannot hold must be refused.  peaks[] flags them;
 * entries[] receives their payload entries, *bits their total length. */
static void place_peaks(roundtrip *rt, int64_t *levels, size_t n, int32_t offset, uint32_t *state, uint8_t *peaks,
                        tce_field *entries, size_t *bits)
{
    static uint32_t places[MAX_LEVELS];
    static uint8_t negative[MAX_LEVELS];
    tcu_peak_layout layout = tcu_peak_layout_of(rt->ndim, rt->dims, rt->peak_axis);
    uint64_t largest = 1;
    uint32_t c, kind = next_random(state) % 8u; /* 0: any P, 1: signs as drawn */
    size_t i;
    for (i = 0; i < n; i++) {
        uint64_t magnitude = levels[i] < 0 ? (uint64_t)-levels[i] : (uint64_t)levels[i];
        largest = magnitude > largest && magnitude <= (uint64_t)TWO_31 ? magnitude : largest;
    }
    rt->peak = kind == 0u ? 1u + next_random(state) % 0x80000000u : (uint32_t)largest;
    *bits = 0;
    for (c = 0; c < layout.channels; c++) {
        uint32_t x = next_random(state);
        int64_t value = (x & 1u ? -(int64_t)rt->peak : (int64_t)rt->peak) + offset;
        places[c] = (x >> 8) % layout.channel_size;
        negative[c] = (uint8_t)(x & 1u);
        if (!integer_fits(rt->dtype, value) && kind > 1u)
            negative[c] ^= 1u; /* the sign that fits, if one does */
        tcu_peak_entry(layout.channel_size, places[c], negative[c], &entries[c].value, &entries[c].bits);
        *bits += entries[c].bits;
    }
    tcu_set_peaks(&layout, rt->peak, places, negative, levels, n, peaks);
}

/* Prediction distance for selector 0..7 (byte 4 bits 5-7): none, the
 * shortest ones, a channel's run of elements (a "row"), seed-chosen short
 * and long ones, and the longest the format allows (longer than any tensor
 * here, so nothing is predicted but H bytes are still needed). */
static uint32_t choose_history(unsigned selector, size_t per_channel, uint32_t seed)
{
    switch (selector) {
    case 0: return 0;
    case 1:
    case 2:
    case 3: return selector;
    case 4: return per_channel > 0 && per_channel <= TC_MAX_HISTORY ? (uint32_t)per_channel : 1u;
    case 5: return 1u + seed % 64u;
    case 6: return 1u + seed % MAX_LEVELS;
    default: return TC_MAX_HISTORY;
    }
}

/* Factor prediction (FORMAT 5.8) of element i: floor((A[row] . B[column]
 * + 2^(shift-1)) / 2^shift), in int64 from the format's text. */
static int64_t factor_prediction(const roundtrip *rt, size_t i)
{
    const int8_t *b = rt->factors + (i % rt->history) * rt->rank;
    const int8_t *a = rt->factors + (size_t)rt->history * rt->rank + (i / rt->history) * rt->rank;
    int64_t sum = 0, unit = (int64_t)1 << rt->factor_shift;
    unsigned r;
    for (r = 0; r < rt->rank; r++)
        sum += (int64_t)a[r] * b[r];
    if (rt->factor_shift == 0)
        return sum;
    sum += unit / 2;
    return sum >= 0 ? sum / unit : -((-sum + unit - 1) / unit);
}

/* Random int8 factors for n elements in rows of H. */
static int8_t *make_factors(roundtrip *rt, size_t n, uint32_t *state)
{
    size_t count = ((size_t)rt->history + (n + rt->history - 1u) / rt->history) * rt->rank, i;
    int8_t *factors = malloc(count ? count : 1u);
    if (factors == NULL)
        abort();
    for (i = 0; i < count; i++)
        factors[i] = (int8_t)(uint8_t)next_random(state);
    return factors;
}

/* Turns levels into the values a stream with `prediction` at distance H
 * codes (FORMAT 5.7): difference codes the level minus the level H elements
 * back clamped to int8 (0 for the first H), scale and none the level itself
 * (scale hands its column activities to the encoder), factors the level
 * minus its factor prediction.  A level whose coded value would leave the
 * codable +-2^31 (+-2^30 for factors) becomes the nearest level whose value does not; a raw
 * record is the coded value, and its level is whatever prediction makes of
 * it, which may pass 2^31 with difference prediction. */
static void make_coded_values(const roundtrip *rt, int64_t *levels, const uint8_t *raw, size_t n, int64_t *coded)
{
    unsigned prediction = rt->prediction;
    uint32_t history = rt->history;
    size_t i;
    for (i = 0; i < n; i++) {
        int64_t added = prediction == TC_PREDICT_DIFFERENCE && i >= history ? tcu_clamp_int8(levels[i - history]) : 0;
        int64_t value, limit = prediction == TC_PREDICT_FACTORS ? TWO_31 / 2 : TWO_31; /* 2^30 for factors */
        if (prediction == TC_PREDICT_FACTORS)
            added = factor_prediction(rt, i);
        value = raw[i] ? levels[i] : levels[i] - added;
        value = value > limit ? limit : value < -limit ? -limit : value;
        coded[i] = value;
        levels[i] = value + added;
    }
}

/* Expected bytes for the levels; returns 0 if some level cannot be
 * decoded: |level| > 2^31, an integer outside the dtype, a float32 overflow. */
static int expected_output(const roundtrip *rt, const int64_t *levels, size_t n, size_t per_channel, int32_t offset,
                           const uint8_t *base, uint8_t *out)
{
    static int64_t indices[MAX_LEVELS];
    size_t i, size = rt->dtype >= TC_DTYPE_FLOAT32 ? 4u : rt->dtype == TC_DTYPE_INT16 ? 2u : rt->dtype == TC_DTYPE_INT32 ? 4u : 1u;
    int ok = 1;
    tcu_reconstruction_indices(levels, n, rt->quantizer, indices);
    for (i = 0; i < n; i++) {
        if (levels[i] > TWO_31 || levels[i] < -TWO_31)
            return 0; /* the decoder stops here */
        if (rt->mode == TC_MODE_LOSSLESS || rt->mode == TC_MODE_DELTA_LOSSLESS) {
            int64_t b = offset;
            if (rt->mode == TC_MODE_DELTA_LOSSLESS) {
                uint32_t raw = 0;
                memcpy(&raw, base + i * size, size); /* little-endian host */
                b = size == 1 ? (rt->dtype == TC_DTYPE_INT8 ? (int64_t)(int8_t)raw : (int64_t)raw)
                    : size == 2 ? (int64_t)(int16_t)raw : (int64_t)(int32_t)raw;
            }
            if (!integer_fits(rt->dtype, levels[i] + b))
                ok = 0;
            store(out + i * size, (uint32_t)(uint64_t)(levels[i] + b), (unsigned)size);
        } else {
            const uint8_t *step = rt->steps + 3u * (rt->step_count > 1 ? i / per_channel : 0u);
            double exact = ldexp((double)indices[i] * (double)(step[0] | (step[1] << 8)), (int)(int8_t)step[2]);
            float value = (float)exact;
            if (rt->mode == TC_MODE_DELTA_QUANTIZED) {
                float b;
                memcpy(&b, base + 4u * i, 4);
                value = b + value;
            }
            if (isinf(value))
                ok = 0;
            store(out + 4u * i, float_bits(value), 4u);
        }
    }
    return ok;
}

static void setup_steps(roundtrip *rt, const uint8_t *data)
{
    unsigned c, mantissa = (unsigned)data[1] | ((unsigned)data[2] << 8);
    int exponent = (int)(int8_t)data[3];
    rt->step_count = rt->channels ? rt->channels : 1u;
    for (c = 0; c < rt->step_count; c++) {
        unsigned m = (mantissa + 7919u * c) & 0xFFFFu;
        int e = exponent - (int)(c % 3u) >= -128 ? exponent - (int)(c % 3u) : exponent + (int)(c % 3u);
        rt->steps[3u * c] = (uint8_t)(m ? m : 1u);
        rt->steps[3u * c + 1u] = (uint8_t)(m ? m >> 8 : 0u);
        rt->steps[3u * c + 2u] = (uint8_t)(int8_t)e;
    }
}

#define HISTORY_SLACK 16u

/* tc_decode_tensor with HISTORY_SLACK bytes more working memory than the
 * tensor needs: the decoder must use the first work_size bytes only. */
static tc_status decode_whole(const tc_stream *s, const tc_tensor_info *t, uint8_t *out, size_t bytes)
{
    size_t size = (size_t)t->work_size + HISTORY_SLACK, i;
    int8_t *history = malloc(size);
    tc_status st;
    if (history == NULL)
        abort();
    memset(history, 0x5A, size);
    st = tc_decode_tensor(s, t, &whole_decoder, out, bytes, history, size);
    for (i = t->work_size; i < size; i++)
        TCU_CHECK(history[i] == 0x5A, "used working memory beyond work_size");
    free(history);
    return st;
}

/* Decode the stream both ways and compare with the expectation. */
static void check_decoders(const uint8_t *stream, size_t stream_size, const uint8_t *base, const uint8_t *expected,
                           size_t bytes, int representable, uint32_t seed)
{
    tc_stream s;
    tc_tensor_info t;
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t out_len;
    uint8_t *out = malloc(bytes ? bytes : 1u);
    tc_status st;
    const char *problem;
    TCU_CHECK(tc_stream_open(&s, stream, stream_size) == TC_OK, "a well-formed stream does not open");
    TCU_CHECK(tc_stream_tensor(&s, 0, &t) == TC_OK, "its tensor does not parse");
    if ((problem = tcu_check_info(&s, &t)) != NULL)
        tcu_fail(__FILE__, __LINE__, problem);
    if (base != NULL)
        memcpy(out, base, bytes);
    st = decode_whole(&s, &t, out, bytes);
    if (representable)
        TCU_CHECK(st == TC_OK && memcmp(out, expected, bytes) == 0, "round trip changed the values");
    else
        TCU_CHECK(st == TC_ERR_PAYLOAD, "a level the tensor cannot hold was not rejected");
    chunks.state = seed;
    chunks.in_max = 1u + seed % 97u;
    chunks.out_max = 1u + (seed >> 8) % 29u;
    st = tcu_decode_streaming(&t, stream + t.payload_offset, t.payload_size, &chunks, base, out, bytes, &out_len,
                              &stats);
    if (representable)
        TCU_CHECK(st == TC_OK && out_len == bytes && memcmp(out, expected, bytes) == 0,
                  "streaming round trip changed the values");
    else
        TCU_CHECK(st == TC_ERR_PAYLOAD, "streaming: a level the tensor cannot hold was not rejected");
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int64_t levels[MAX_LEVELS], coded[MAX_LEVELS];
    static uint8_t columns[MAX_LEVELS], coded_columns[MAX_LEVELS];
    static uint8_t raw[MAX_LEVELS], peaks[MAX_LEVELS];
    static tce_field entries[MAX_LEVELS];
    roundtrip rt;
    tcu_tensor_spec spec;
    size_t n, i, bytes, per_channel, capacity, stream_size, coded_count, entry_bits = 0;
    int64_t payload_size;
    int32_t offset;
    uint8_t *base = NULL, *expected, *payload, *stream;
    uint32_t state;
    int representable, delta;
    if (size < FUZZ_PREFIX)
        return 0;
    memset(&spec, 0, sizeof spec);
    memset(&rt, 0, sizeof rt);
    rt.mode = data[0] & 3u;
    delta = rt.mode >= TC_MODE_DELTA_LOSSLESS;
    rt.dtype = rt.mode & 1u ? (data[0] & 4u ? TC_DTYPE_FLOAT16 : TC_DTYPE_FLOAT32) : 1u + ((data[0] >> 2) & 3u);
    rt.quantizer = (rt.mode & 1u) && (data[0] & 32u) ? TC_QUANTIZER_DEPENDENT : TC_QUANTIZER_UNIFORM;
    rt.initial_activity = data[5];
    rt.seed = (uint32_t)data[6] | ((uint32_t)data[7] << 8);
    n = parse_levels(data + FUZZ_PREFIX, size - FUZZ_PREFIX, levels, raw);
    rt.peaked = (data[0] & 128u) && rt.mode == TC_MODE_LOSSLESS && n > 0;
    rt.channels = (data[4] & 1u) && (rt.mode & 1u) && n >= 1u + ((data[4] >> 1) & 15u) ? 1u + ((data[4] >> 1) & 15u) : 0u;
    if (rt.channels)
        n -= n % rt.channels;
    if (rt.peaked)
        n = peak_shape(&rt, data[4] & 31u, n);
    setup_steps(&rt, data);
    bytes = n * (rt.dtype >= TC_DTYPE_FLOAT32 ? 4u : rt.dtype == TC_DTYPE_INT16 ? 2u : rt.dtype == TC_DTYPE_INT32 ? 4u : 1u);
    per_channel = rt.channels ? n / rt.channels : rt.peaked ? n / rt.dims[0] : n;
    rt.history = choose_history(data[4] >> 5, per_channel, rt.seed);
    rt.prediction = rt.history == 0   ? TC_PREDICT_NONE
                    : rt.peaked       ? TC_PREDICT_SCALE /* FORMAT 5.9: peaks with scale prediction or none */
                    : data[0] & 64u ? TC_PREDICT_FACTORS
                    : data[0] & 16u ? TC_PREDICT_SCALE
                                    : TC_PREDICT_DIFFERENCE;
    rt.rank = rt.prediction == TC_PREDICT_FACTORS ? 1u + rt.seed % 8u : 0u;
    rt.factor_shift = rt.prediction == TC_PREDICT_FACTORS ? rt.seed % 25u : 0u;
    state = rt.seed * 2654435761u + 1u;
    rt.factors = rt.rank ? make_factors(&rt, n, &state) : NULL;
    offset = (int32_t)((int64_t)next_random(&state) - TWO_31);
    if (rt.peaked && (next_random(&state) & 1u))
        offset = (int32_t)(next_random(&state) % 256u) - 128; /* a zero point, as in TFLite's tensors */
    if (delta) {
        base = malloc(bytes ? bytes : 1u);
        for (i = 0; i < bytes; i++)
            base[i] = (uint8_t)next_random(&state);
        if (rt.mode == TC_MODE_DELTA_QUANTIZED)
            for (i = 0; i < n; i++)
                store(base + 4u * i, float_bits(random_base_float(&state)), 4u);
    }
    if (!(rt.mode & 1u)) {
        size_t element = bytes / (n ? n : 1u);
        for (i = 0; i < n; i++) {
            int64_t b = offset;
            if (delta) {
                uint32_t raw = 0;
                memcpy(&raw, base + i * element, element);
                b = element == 1 ? (rt.dtype == TC_DTYPE_INT8 ? (int64_t)(int8_t)raw : (int64_t)raw)
                    : element == 2 ? (int64_t)(int16_t)raw : (int64_t)(int32_t)raw;
            }
            if (!raw[i])
                levels[i] = fit_level(levels[i], b, rt.dtype);
        }
    }
    if (rt.peaked)
        place_peaks(&rt, levels, n, offset, &state, peaks, entries, &entry_bits);
    make_coded_values(&rt, levels, raw, n, coded);
    if (rt.prediction == TC_PREDICT_SCALE)
        tcu_column_activities(levels, rt.peaked ? peaks : NULL, n, rt.history, rt.initial_activity, columns);
    coded_count = n;
    if (rt.peaked) /* FORMAT 5.9: the peaks are not coded */
        coded_count = tcu_without_peaks(coded, rt.prediction == TC_PREDICT_SCALE ? columns : NULL, peaks, n, coded,
                                        coded_columns);
    expected = malloc(bytes ? bytes : 1u);
    representable = expected_output(&rt, levels, n, per_channel ? per_channel : 1u, offset, base, expected);
    /* factor values are coded values too (FORMAT 5.8), peak entries bypass bins */
    capacity = tce_max_payload_size(coded_count + (rt.rank ? ((size_t)rt.history + (n + rt.history - 1u) / rt.history) *
                                                                   rt.rank : 0u)) +
               (entry_bits + 7u) / 8u;
    payload = malloc(capacity ? capacity : 1u);
    if (rt.prediction == TC_PREDICT_FACTORS)
        payload_size = tce_encode_factored(levels, n, rt.history, rt.factors + (size_t)rt.history * rt.rank, rt.factors,
                                           rt.rank, rt.factor_shift, rt.initial_activity, payload, capacity, NULL);
    else
        payload_size = tce_encode_levels(coded,
                                         rt.prediction != TC_PREDICT_SCALE ? NULL : rt.peaked ? coded_columns : columns,
                                         coded_count, rt.initial_activity, entries,
                                         rt.peaked ? rt.dims[rt.peak_axis] : 0u, payload, capacity, NULL);
    TCU_CHECK(payload_size >= 0 && (n == 0) == (payload_size == 0), "encoder failed on valid coded values");
    spec.name = "t";
    spec.dtype = (uint8_t)rt.dtype;
    spec.mode = (uint8_t)rt.mode;
    spec.quantizer = (uint8_t)rt.quantizer;
    spec.initial_activity = (uint8_t)rt.initial_activity;
    spec.prediction = (uint8_t)rt.prediction;
    spec.history = rt.history;
    spec.rank = (uint8_t)rt.rank;
    spec.factor_shift = (uint8_t)rt.factor_shift;
    spec.ndim = rt.channels ? 2u : 1u;
    spec.dims[0] = rt.channels ? rt.channels : (uint32_t)n;
    spec.dims[1] = (uint32_t)per_channel;
    if (rt.peaked) {
        spec.ndim = (uint8_t)rt.ndim;
        memcpy(spec.dims, rt.dims, sizeof rt.dims);
        spec.peak = rt.peak;
        spec.peak_axis = rt.peak_axis;
    }
    spec.axis = rt.channels ? 0u : TC_AXIS_NONE;
    spec.offset = offset;
    spec.steps = rt.steps;
    spec.step_count = rt.step_count;
    spec.base_crc32 = delta ? tc_crc32(0, base, bytes) : 0u;
    stream = malloc(1024u + (size_t)payload_size);
    stream_size = tcu_build_stream(stream, 1024u + (size_t)payload_size, &spec, payload, (uint32_t)payload_size,
                                   tc_crc32(0, expected, bytes));
    TCU_CHECK(stream_size > 0, "stream builder");
    check_decoders(stream, stream_size, base, expected, bytes, representable, rt.seed);
    free(stream);
    free(payload);
    free(expected);
    free(base);
    free(rt.factors);
    return 0;
}
