/* SPDX-License-Identifier: Apache-2.0 */
/*
 * encoder.c - host encoder core for tinycabac (see encoder.h).
 *
 * The binarization is written once, in binarize_level(), against a small
 * "bin sink" interface; the range coder and the rate estimator are two sinks.
 * That keeps the coded bitstream and the rate estimates used by RDOQ in
 * exact agreement.
 */
#include "encoder.h"

#include <float.h>
#include <stddef.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tc_model.h"

/* ------------------------------------------------------------------ */
/* Model state shared by coder and estimator: contexts + activity.     */

typedef struct {
    tc_context prefix[TC_PREFIX_SETS][TC_PREFIX_BINS];
    tc_context suffix[TC_SUFFIX_SETS][2][3];
    tc_context sign[TC_SIGN_CONTEXTS];
    unsigned activity;
    unsigned factor_activity; /* factor prediction's factor values (FORMAT 5.8) */
    unsigned previous_sign;
} model_state;

typedef char model_contexts_are_adjacent[offsetof(model_state, sign) + sizeof(tc_context) * TC_SIGN_CONTEXTS ==
                                                 sizeof(tc_context) * TC_CONTEXT_COUNT
                                             ? 1
                                             : -1];

#ifdef TCE_CONTEXT_STATS
/* Training of tc_context_init (bench/train_context_init.py builds the
 * encoder with this): the zeros and ones each context codes among its first
 * tce_stats_window bins in every tensor. */
unsigned tce_stats_window = 32;
double tce_stats_zeros[TC_CONTEXT_COUNT], tce_stats_ones[TC_CONTEXT_COUNT];
static unsigned stats_seen[TC_CONTEXT_COUNT];
static const tc_context *stats_first;

static void stats_start(const model_state *s)
{
    memset(stats_seen, 0, sizeof stats_seen);
    stats_first = &s->prefix[0][0];
}

static void stats_count(const tc_context *c, unsigned bin)
{
    size_t i = (size_t)(c - stats_first);
    if (i < TC_CONTEXT_COUNT && stats_seen[i]++ < tce_stats_window)
        *(bin ? &tce_stats_ones[i] : &tce_stats_zeros[i]) += 1.0;
}
#else
#define stats_start(s) ((void)0)
#define stats_count(c, bin) ((void)0)
#endif

static void model_reset(model_state *s, unsigned initial_activity)
{
    tc_contexts_reset(&s->prefix[0][0]); /* prefix, suffix and sign: adjacent, as in tc_decoder */
    stats_start(s);
    s->activity = initial_activity;
    s->factor_activity = TC_FACTOR_ACTIVITY;
    s->previous_sign = 0;
}

/* ------------------------------------------------------------------ */
/* Range encoder (LZMA-style carry handling, FORMAT 5.1).              */

typedef struct {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t pending; /* bytes held back: cache plus 0xFF run */
    int first;        /* the first byte is always 0 and is not sent */
    uint8_t *out;
    size_t pos, capacity;
    int full;
} range_encoder;

static void re_init(range_encoder *e, uint8_t *out, size_t capacity)
{
    memset(e, 0, sizeof *e);
    e->range = 0xFFFFFFFFu;
    e->pending = 1;
    e->first = 1;
    e->out = out;
    e->capacity = capacity;
}

static void re_emit(range_encoder *e, uint8_t byte)
{
    if (e->first) {
        e->first = 0; /* always 0: low + range never exceeds 2^32 before it */
        return;
    }
    if (e->pos < e->capacity)
        e->out[e->pos++] = byte;
    else
        e->full = 1;
}

static void re_shift_low(range_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do {
            re_emit(e, (uint8_t)(byte + carry));
            byte = 0xFF;
        } while (--e->pending != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

static void re_normalize(range_encoder *e)
{
    while (e->range < TC_RANGE_TOP) {
        e->range <<= 8;
        re_shift_low(e);
    }
}

static void re_bin(range_encoder *e, tc_context *c, unsigned bin)
{
    uint32_t bound = (e->range >> TC_PROB_BITS) * tc_context_p0(c);
    if (bin) {
        e->low += bound;
        e->range -= bound;
    } else {
        e->range = bound;
    }
    tc_context_update(c, bin);
    re_normalize(e);
}

static void re_bypass(range_encoder *e, unsigned bin)
{
    e->range >>= 1;
    if (bin)
        e->low += e->range;
    re_normalize(e);
}

static void re_flush(range_encoder *e)
{
    int i;
    for (i = 0; i < 5; i++)
        re_shift_low(e);
}

/* ------------------------------------------------------------------ */
/* Bin sinks: the coder, or the rate estimator.                        */

typedef struct {
    range_encoder *coder; /* NULL: estimate only */
    double bits;
} bin_sink;

static double cost_table[TC_PROB_ONE >> 4]; /* -log2(p) at 1/2048 resolution */
static int cost_table_ready;

static void init_cost_table(void)
{
    size_t i, n = sizeof cost_table / sizeof cost_table[0];
    if (cost_table_ready)
        return;
    for (i = 0; i < n; i++)
        cost_table[i] = -log2(((double)i + 0.5) / (double)n);
    cost_table_ready = 1;
}

static double bin_cost(const tc_context *c, unsigned bin)
{
    uint32_t p0 = tc_context_p0(c);
    uint32_t p = bin ? TC_PROB_ONE - p0 : p0;
    return cost_table[p >> 4];
}

static void sink_bin(bin_sink *s, tc_context *c, unsigned bin)
{
    stats_count(c, bin);
    if (s->coder) {
        re_bin(s->coder, c, bin);
    } else {
        s->bits += bin_cost(c, bin);
        tc_context_update(c, bin);
    }
}

static void sink_bypass(bin_sink *s, unsigned bin)
{
    if (s->coder)
        re_bypass(s->coder, bin);
    else
        s->bits += 1.0;
}

/* ------------------------------------------------------------------ */
/* Binarization (FORMAT 5.5), the mirror of decode_level().            */

static void binarize_escape(bin_sink *s, uint32_t value)
{
    uint32_t v = value + 1u;
    unsigned n = tc_bit_length(v) - 1u, i;
    for (i = 0; i < n; i++)
        sink_bypass(s, 1);
    sink_bypass(s, 0);
    for (i = n; i-- > 0;)
        sink_bypass(s, (v >> i) & 1u);
}

/* `column` is the element's column activity (scale prediction) or NULL. */
static void binarize_level(model_state *st, bin_sink *s, uint32_t m, unsigned negative, const uint8_t *column)
{
    unsigned activity = st->activity, k;
    tc_context *prefix;
    if (column != NULL)
        activity = tc_scale_activity(activity, *column);
    k = tc_rice_k(activity);
    prefix = st->prefix[tc_prefix_set(activity, k)];
    uint32_t p = k >= 32 ? 0 : m >> k, i;
    uint32_t unary = p < TC_UNARY_MAX ? p : TC_UNARY_MAX;
    unsigned magnitude_class;
    for (i = 0; i < unary; i++)
        sink_bin(s, &prefix[tc_prefix_bin_index(i)], 1);
    if (p < TC_UNARY_MAX)
        sink_bin(s, &prefix[tc_prefix_bin_index(p)], 0);
    else
        binarize_escape(s, p - TC_UNARY_MAX);
    if (k > 0) {
        tc_context *suffix = st->suffix[tc_suffix_set(k)][p > 0];
        unsigned b1 = (m >> (k - 1)) & 1u;
        sink_bin(s, &suffix[0], b1);
        if (k >= 2)
            sink_bin(s, &suffix[1 + b1], (m >> (k - 2)) & 1u);
        for (i = k >= 2 ? k - 2 : 0; i-- > 0;)
            sink_bypass(s, (m >> i) & 1u);
    }
    magnitude_class = tc_bit_length(m);
    if (m) {
        sink_bin(s, &st->sign[tc_sign_context(st->previous_sign, magnitude_class)], negative);
        st->previous_sign = 2u - negative;
    }
    st->activity = tc_activity_next(st->activity, magnitude_class);
}

static int split_level(int64_t level, uint32_t *m, unsigned *negative)
{
    if (level < -(int64_t)TC_MAX_MAGNITUDE || level > (int64_t)TC_MAX_MAGNITUDE)
        return 0;
    *negative = level < 0;
    *m = (uint32_t)(level < 0 ? -level : level);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Public entry points.                                                */

size_t tce_max_payload_size(size_t n)
{
    /* FORMAT 5.6: a value costs at most 206 bits (under 26 bytes); 32 per
     * value leaves margin, plus the 4-byte flush. */
    return n * 32u + 8u;
}

/* A fresh model and a sink that codes into out[0..out_capacity). */
static void start_coding(model_state *st, range_encoder *coder, bin_sink *sink, unsigned initial_activity,
                         uint8_t *out, size_t out_capacity)
{
    model_reset(st, initial_activity);
    re_init(coder, out, out_capacity);
    sink->coder = coder;
    sink->bits = 0;
}

/* The payload's size once flushed, or TCE_ERR_OUTPUT_FULL. */
static int64_t finish_coding(range_encoder *coder)
{
    re_flush(coder);
    return coder->full ? TCE_ERR_OUTPUT_FULL : (int64_t)coder->pos;
}

int64_t tce_encode_levels(const int64_t *levels, const uint8_t *columns, size_t n, unsigned initial_activity,
                          const tce_field *preamble, size_t preamble_count, uint8_t *out, size_t out_capacity,
                          size_t *bad_index)
{
    model_state st;
    range_encoder coder;
    bin_sink sink;
    size_t i;
    if (n == 0 && preamble_count == 0)
        return 0;
    start_coding(&st, &coder, &sink, initial_activity, out, out_capacity);
    for (i = 0; i < preamble_count; i++) {
        unsigned bit = preamble[i].bits;
        while (bit-- > 0)
            sink_bypass(&sink, (preamble[i].value >> bit) & 1u);
    }
    for (i = 0; i < n; i++) {
        uint32_t m;
        unsigned negative;
        if (!split_level(levels[i], &m, &negative)) {
            if (bad_index)
                *bad_index = i;
            return TCE_ERR_LEVEL_RANGE;
        }
        binarize_level(&st, &sink, m, negative, columns ? columns + i : NULL);
    }
    return finish_coding(&coder);
}

/* A factor value (FORMAT 5.8), coded with the factor activity: factors
 * span the int8 range while the residuals beside them are small. */
static void binarize_factor(model_state *st, bin_sink *s, int8_t value)
{
    unsigned running = st->activity;
    st->activity = st->factor_activity;
    binarize_level(st, s, (uint32_t)(value < 0 ? -value : value), value < 0, NULL);
    st->factor_activity = st->activity;
    st->activity = running;
}

int64_t tce_encode_factored(const int64_t *levels, size_t n, size_t history, const int8_t *row_factors,
                            const int8_t *column_factors, unsigned rank, unsigned shift, unsigned initial_activity,
                            uint8_t *out, size_t out_capacity, size_t *bad_index)
{
    const int64_t beyond = (int64_t)1 << 33; /* residuals from here on exceed 2^30 */
    model_state st;
    range_encoder coder;
    bin_sink sink;
    const int8_t *a = row_factors;
    int64_t residual;
    size_t i;
    if (n == 0)
        return 0;
    start_coding(&st, &coder, &sink, initial_activity, out, out_capacity);
    for (i = 0; i < history * rank; i++)
        binarize_factor(&st, &sink, column_factors[i]);
    for (i = 0; i < n; i++) {
        size_t column = i % history, r;
        uint32_t m;
        unsigned negative;
        if (column == 0) {
            a = row_factors + i / history * rank;
            for (r = 0; r < rank; r++)
                binarize_factor(&st, &sink, a[r]);
        }
        residual = levels[i] > beyond || levels[i] < -beyond
                       ? beyond
                       : levels[i] - tc_factor_prediction(a, column_factors + column * rank, rank, shift);
        if (residual > (int64_t)TC_MAX_FACTOR_RESIDUAL || residual < -(int64_t)TC_MAX_FACTOR_RESIDUAL) {
            if (bad_index)
                *bad_index = i;
            return TCE_ERR_LEVEL_RANGE;
        }
        split_level(residual, &m, &negative);
        binarize_level(&st, &sink, m, negative, NULL);
    }
    return finish_coding(&coder);
}

/* The magnitude class of level - predicted (|predicted| <= 128), 33 for
 * anything beyond 32 bits.  A level beyond 2^33 is class 33 whatever the
 * prediction, and is classed before subtracting: near INT64_MIN the
 * subtraction, or the negation, would overflow. */
static unsigned residual_class(int64_t level, int64_t predicted)
{
    const int64_t beyond = (int64_t)1 << 33;
    int64_t r;
    if (level > beyond || level < -beyond)
        return 33u;
    r = level - predicted;
    r = r < 0 ? -r : r;
    return r > 0xFFFFFFFF ? 33u : tc_bit_length((uint32_t)r);
}

uint64_t tce_history_cost(const int64_t *levels, size_t n, size_t distance)
{
    uint64_t total = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        int64_t p = distance != 0 && i >= distance ? levels[i - distance] : 0;
        total += residual_class(levels[i], p < -128 ? -128 : p > 127 ? 127 : p);
    }
    return total;
}

void tce_column_activities(const int64_t *levels, const uint8_t *peaks, size_t n, size_t history,
                           unsigned initial_activity, uint8_t *columns)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int64_t level;
        uint64_t m;
        if (history == 0 || i < history) {
            columns[i] = (uint8_t)initial_activity;
            continue;
        }
        if (peaks != NULL && peaks[i - history]) { /* FORMAT 5.9: a peak leaves its column as it was */
            columns[i] = columns[i - history];
            continue;
        }
        /* the column before element i: before element i - H, then moved on
         * by it (a level beyond 2^32 only gets refused by the coder later) */
        level = levels[i - history];
        m = level < 0 ? 0u - (uint64_t)level : (uint64_t)level;
        columns[i] = (uint8_t)tc_column_activity_next(columns[i - history],
                                                      m > 0xFFFFFFFFu ? 33u : tc_bit_length((uint32_t)m));
    }
}

/* A fresh model and a rate-estimating sink (no bitstream). */
static void start_estimate(model_state *st, bin_sink *sink, unsigned initial_activity)
{
    init_cost_table();
    model_reset(st, initial_activity);
    sink->coder = NULL;
    sink->bits = 0;
}

double tce_estimate_bits(const int64_t *levels, const uint8_t *columns, size_t n, unsigned initial_activity)
{
    model_state st;
    bin_sink sink;
    size_t i;
    start_estimate(&st, &sink, initial_activity);
    for (i = 0; i < n; i++) {
        uint32_t m;
        unsigned negative;
        if (!split_level(levels[i], &m, &negative))
            return INFINITY;
        binarize_level(&st, &sink, m, negative, columns ? columns + i : NULL);
    }
    return sink.bits;
}

/* weight / step, bounded so that its floor converts to int64 (a larger
 * ratio is out of every level's range anyway: the caller checks the range
 * before searching).  A NaN (a NaN weight, 0/0, inf/inf) becomes 0: its
 * conversion to int64 would be undefined. */
static double bounded_ratio(double weight, double step)
{
    double ratio = weight / step;
    const double limit = 1099511627776.0; /* 2^40 */
    if (ratio != ratio)
        return 0.0;
    return ratio > limit ? limit : ratio < -limit ? -limit : ratio;
}

/* Bits to code level `level` from state `st`, leaving `st` untouched. */
static double level_cost(const model_state *st, int64_t level)
{
    model_state scratch = *st;
    bin_sink sink;
    uint32_t m;
    unsigned negative;
    sink.coder = NULL;
    sink.bits = 0;
    if (!split_level(level, &m, &negative))
        return INFINITY;
    binarize_level(&scratch, &sink, m, negative, NULL);
    return sink.bits;
}

double tce_rdoq(const double *weights, size_t n, const double *steps, size_t channels, size_t inner,
                double lambda_scale, unsigned initial_activity, int64_t *levels)
{
    model_state st;
    bin_sink sink;
    size_t i;
    start_estimate(&st, &sink, initial_activity);
    for (i = 0; i < n; i++) {
        double step = steps[(i / inner) % channels];
        double lambda = step * step * lambda_scale;
        double q = bounded_ratio(weights[i], step);
        int64_t candidates[3];
        double best_cost = INFINITY;
        int64_t best = 0;
        int c;
        uint32_t m = 0;
        unsigned negative = 0;
        candidates[0] = (int64_t)floor(q);
        candidates[1] = (int64_t)ceil(q);
        candidates[2] = 0;
        for (c = 0; c < 3; c++) {
            double err = weights[i] - (double)candidates[c] * step;
            double cost = err * err + lambda * level_cost(&st, candidates[c]);
            if (cost < best_cost) {
                best_cost = cost;
                best = candidates[c];
            }
        }
        levels[i] = best;
        split_level(best, &m, &negative); /* valid: 0 is always a candidate */
        binarize_level(&st, &sink, m, negative, NULL);
    }
    return sink.bits;
}

/* ------------------------------------------------------------------ */
/* Dependent quantization (FORMAT 6.2): reconstruction indices and the  */
/* trellis search that chooses the levels.                              */

/* NEXT[state][level parity] of the 8-state rule (FORMAT 6.2); odd states
 * reconstruct on the odd multiples of the step. */
#define DQ_STATES 8
static const uint8_t dq_next_state[DQ_STATES][2] = {{0, 1}, {3, 2}, {5, 4}, {6, 7}, {1, 0}, {2, 3}, {4, 5}, {7, 6}};

static int64_t dq_index(int64_t level, unsigned state)
{
    int64_t sign = (level > 0) - (level < 0);
    return 2 * level - ((state & 1u) ? sign : 0);
}

void tce_dependent_indices(const int64_t *levels, size_t n, int64_t *indices)
{
    unsigned state = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        indices[i] = dq_index(levels[i], state);
        state = dq_next_state[state][levels[i] & 1];
    }
}

/* Bits to code level (m, negative) with the given activity and previous
 * sign, reading the contexts without adapting them: inside a trellis chunk
 * every path prices its levels from the same frozen model. */
static double frozen_level_cost(const model_state *st, unsigned activity, unsigned previous_sign, uint32_t m,
                                unsigned negative)
{
    unsigned k = tc_rice_k(activity), i;
    const tc_context *prefix = st->prefix[tc_prefix_set(activity, k)];
    uint32_t p = k >= 32 ? 0 : m >> k;
    double bits = 0;
    for (i = 0; i < p && i < TC_UNARY_MAX; i++)
        bits += bin_cost(&prefix[tc_prefix_bin_index(i)], 1);
    if (p < TC_UNARY_MAX)
        bits += bin_cost(&prefix[tc_prefix_bin_index(p)], 0);
    else
        bits += 2.0 * tc_bit_length(p - TC_UNARY_MAX + 1u) - 1.0; /* exp-Golomb escape */
    if (k > 0) {
        const tc_context *suffix = st->suffix[tc_suffix_set(k)][p > 0];
        unsigned b1 = (m >> (k - 1)) & 1u;
        bits += bin_cost(&suffix[0], b1);
        if (k >= 2)
            bits += bin_cost(&suffix[1 + b1], (m >> (k - 2)) & 1u) + (double)(k - 2);
    }
    if (m)
        bits += bin_cost(&st->sign[tc_sign_context(previous_sign, tc_bit_length(m))], negative);
    return bits;
}

/* One survivor per state: its cost so far and the model state its levels
 * left behind (the parts that differ between paths). */
typedef struct {
    double cost;
    unsigned activity;
    unsigned previous_sign;
} trellis_path;

typedef struct {
    int64_t level;
    uint8_t from;
} trellis_step;

/* Levels per decision; contexts are frozen within one.  Longer chunks force
 * fewer premature decisions: on the bench corpus 64 levels cost 0.3-0.5% more
 * bits than 1024, and 4096 gained nothing more. */
#define TRELLIS_CHUNK 1024
#define TRELLIS_CANDIDATES 3

/* The levels worth trying from `state` for weight/step ratio x: the two
 * reconstruction points of the state's quantizer around x, and zero. */
static void trellis_candidates(double x, unsigned state, int64_t candidates[TRELLIS_CANDIDATES])
{
    if ((state & 1u) == 0) { /* even multiples 2k */
        int64_t k = (int64_t)floor(x / 2.0);
        candidates[0] = k;
        candidates[1] = k + 1;
    } else { /* odd multiples 2k - sign(k) */
        int64_t odd = 2 * (int64_t)floor((x - 1.0) / 2.0) + 1; /* odd <= x < odd + 2 */
        candidates[0] = odd > 0 ? (odd + 1) / 2 : (odd - 1) / 2;
        candidates[1] = odd + 2 > 0 ? (odd + 3) / 2 : (odd + 1) / 2;
    }
    candidates[2] = 0;
}

/* The largest lambda with which a chunk's path costs stay finite: a level
 * costs under 2^9 bits and a chunk has 2^10, so lambda * bits sums to at
 * most half of DBL_MAX.  At this lambda a thousandth of a bit outweighs
 * any squared error a float32 weight can have with the format's steps
 * (under 2^370), so a larger one would choose the same levels. */
#define TRELLIS_MAX_LAMBDA (DBL_MAX / 1048576.0) /* 2^20 */

/* A path's cost, saturated at DBL_MAX: an infinite (or NaN) cost would tie
 * with the INFINITY that marks an unreached state, and a state reached
 * only by such paths would be left without a recorded choice. */
static double path_cost(double cost)
{
    return cost < DBL_MAX ? cost : DBL_MAX;
}

/* Extends every survivor by weight w (step `step`) into next[]. */
static void trellis_advance(const model_state *st, const trellis_path path[DQ_STATES], double w, double step,
                            double lambda_scale, trellis_path next[DQ_STATES], trellis_step choice[DQ_STATES])
{
    double lambda = fmin(step * step * lambda_scale, TRELLIS_MAX_LAMBDA);
    unsigned s, t, c;
    for (t = 0; t < DQ_STATES; t++)
        next[t].cost = INFINITY;
    for (s = 0; s < DQ_STATES; s++) {
        int64_t candidates[TRELLIS_CANDIDATES];
        if (path[s].cost == INFINITY)
            continue;
        trellis_candidates(bounded_ratio(w, step), s, candidates);
        for (c = 0; c < TRELLIS_CANDIDATES; c++) {
            int64_t level = candidates[c];
            uint32_t m = (uint32_t)(level < 0 ? -level : level);
            double err = w - (double)dq_index(level, s) * step, cost;
            if (level < -(int64_t)TC_MAX_MAGNITUDE || level > (int64_t)TC_MAX_MAGNITUDE)
                continue;
            cost = path_cost(path[s].cost + err * err +
                             lambda * frozen_level_cost(st, path[s].activity, path[s].previous_sign, m, level < 0));
            t = dq_next_state[s][level & 1];
            if (cost < next[t].cost) {
                next[t].cost = cost;
                next[t].activity = tc_activity_next(path[s].activity, tc_bit_length(m));
                next[t].previous_sign = m ? 2u - (level < 0) : path[s].previous_sign;
                choice[t].level = level;
                choice[t].from = (uint8_t)s;
            }
        }
    }
}

/* Traces the best path of a chunk back, writes its levels and advances the
 * real model with them.  Returns the state the chunk ends in. */
static unsigned trellis_commit(model_state *st, bin_sink *sink, const trellis_path path[DQ_STATES],
                               trellis_step steps[][DQ_STATES], size_t count, int64_t *levels)
{
    unsigned best = 0, s, state;
    size_t i;
    for (s = 1; s < DQ_STATES; s++)
        if (path[s].cost < path[best].cost)
            best = s;
    for (state = best, i = count; i-- > 0;) {
        levels[i] = steps[i][state].level;
        state = steps[i][state].from;
    }
    for (i = 0; i < count; i++) {
        uint32_t m = 0;
        unsigned negative = 0;
        split_level(levels[i], &m, &negative); /* in range: candidates are checked */
        binarize_level(st, sink, m, negative, NULL);
    }
    return best;
}

double tce_trellis(const double *weights, size_t n, const double *steps, size_t channels, size_t inner,
                   double lambda_scale, unsigned initial_activity, int64_t *levels)
{
    model_state st;
    bin_sink sink;
    trellis_path path[DQ_STATES], next[DQ_STATES];
    trellis_step(*chunk)[DQ_STATES] = malloc(sizeof(trellis_step[TRELLIS_CHUNK][DQ_STATES])); /* 128 KiB */
    unsigned state = 0, s;
    size_t start;
    if (chunk == NULL)
        return -1.0;
    start_estimate(&st, &sink, initial_activity);
    for (start = 0; start < n; start += TRELLIS_CHUNK) {
        size_t count = n - start < TRELLIS_CHUNK ? n - start : TRELLIS_CHUNK, i;
        for (s = 0; s < DQ_STATES; s++) {
            path[s].cost = s == state ? 0.0 : INFINITY;
            path[s].activity = st.activity;
            path[s].previous_sign = st.previous_sign;
        }
        for (i = 0; i < count; i++) {
            size_t at = start + i;
            trellis_advance(&st, path, weights[at], steps[(at / inner) % channels], lambda_scale, next, chunk[i]);
            memcpy(path, next, sizeof path);
        }
        state = trellis_commit(&st, &sink, path, chunk, count, levels + start);
    }
    free(chunk);
    return sink.bits;
}
