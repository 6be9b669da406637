/* SPDX-License-Identifier: Apache-2.0 */
/*
 * encoder.h - the host encoder core: binarization, context modelling and
 * range coding of one tensor's integer levels (docs/FORMAT.md section 5),
 * plus rate estimation for rate-distortion-optimised quantization.
 *
 * It mirrors decoder_c/tinycabac.c and shares decoder_c/tc_model.h with it,
 * so the two cannot drift apart silently.
 */
#ifndef TINYCABAC_ENCODER_H
#define TINYCABAC_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#define TCE_ERR_LEVEL_RANGE (-1)  /* a level has |level| > 2^31 */
#define TCE_ERR_OUTPUT_FULL (-2)  /* out_capacity too small */

/* Upper bound of the payload size for n levels (FORMAT 5.6). */
size_t tce_max_payload_size(size_t n);

/* A field of `bits` bypass bins (at most 32), the value's bits MSB first. */
typedef struct {
    uint32_t value;
    uint32_t bits;
} tce_field;

/* Encode n levels into out (`columns`: NULL, or for scale prediction the
 * column activity each element is coded with, from tce_column_activities),
 * the model starting at `initial_activity` (FORMAT 5.4), after
 * `preamble_count` bypass fields (the peak entries of FORMAT 5.9; none: 0).
 * Returns the payload size in bytes (0 when there is nothing to code), or a
 * negative TCE_ERR_*; on TCE_ERR_LEVEL_RANGE *bad_index names the offending
 * level. */
int64_t tce_encode_levels(const int64_t *levels, const uint8_t *columns, size_t n, unsigned initial_activity,
                          const tce_field *preamble, size_t preamble_count, uint8_t *out, size_t out_capacity,
                          size_t *bad_index);

/* Factor prediction (FORMAT 5.8): encode n levels as rows of `history`
 * elements predicted from low-rank factors: `column_factors` (history x
 * rank, column j's values together) first, then each row's `rank` values of
 * `row_factors` (ceil(n / history) x rank) before its residuals.  rank
 * 1..TC_MAX_RANK, shift 0..TC_MAX_FACTOR_SHIFT; the factor values must be
 * in -128..127 (int8).  Returns as tce_encode_levels; a residual beyond
 * 2^30 (TC_MAX_FACTOR_RESIDUAL) is TCE_ERR_LEVEL_RANGE at its element. */
int64_t tce_encode_factored(const int64_t *levels, size_t n, size_t history, const int8_t *row_factors,
                            const int8_t *column_factors, unsigned rank, unsigned shift, unsigned initial_activity,
                            uint8_t *out, size_t out_capacity, size_t *bad_index);

/* Estimated payload size in bits of n levels, from the adaptive model's own
 * probabilities (-log2 p per bin), without producing a bitstream. */
double tce_estimate_bits(const int64_t *levels, const uint8_t *columns, size_t n, unsigned initial_activity);

/* Scale prediction (FORMAT 5.7): the activity of each element's column
 * (the elements `history` apart) before the element, every column starting
 * at `initial_activity`; an element flagged in `peaks` (NULL: none; FORMAT
 * 5.9) leaves its column unchanged.  Writes columns[0..n). */
void tce_column_activities(const int64_t *levels, const uint8_t *peaks, size_t n, size_t history,
                           unsigned initial_activity, uint8_t *columns);

/* Cheap size proxy for prediction at `distance` (FORMAT 5.7; 0: none):
 * the sum of the residuals' magnitude classes.  The encoder ranks candidate
 * distances with it before paying for a real encode. */
uint64_t tce_history_cost(const int64_t *levels, size_t n, size_t distance);

/* Rate-distortion-optimised quantization of n float weights with step
 * scale[c] for channel c = (i / inner) % channels.  For each weight it
 * compares the candidate levels floor(w/step), ceil(w/step) and 0 by
 * (w - level*step)^2 + lambda * bits with lambda = step^2 * lambda_scale,
 * where bits come from the adaptive model's current state, which then
 * advances with the chosen level.  lambda follows each channel's step so
 * that every channel trades bits for error at the same relative precision:
 * one lambda for all would zero the channels with small steps.  channels
 * and inner must be at least 1.  Writes levels[0..n); returns the
 * estimated payload bits. */
double tce_rdoq(const double *weights, size_t n, const double *steps, size_t channels, size_t inner,
                double lambda_scale, unsigned initial_activity, int64_t *levels);

/* Reconstruction indices q of dependent quantization (FORMAT 6.2) for n
 * levels in C order (|level| <= 2^31), the state starting at 0. */
void tce_dependent_indices(const int64_t *levels, size_t n, int64_t *indices);

/* Dependent (trellis-coded) quantization of n float weights, steps and
 * channels as for tce_rdoq.  A Viterbi search over the eight states of FORMAT
 * 6.2 minimises (w - q*step)^2 + lambda * bits (lambda = step^2 * lambda_scale,
 * as for tce_rdoq) over each chunk of 1024 levels,
 * pricing bits from the adaptive model as it stood at the chunk's start;
 * the model then advances with the chosen levels.  Writes levels[0..n);
 * returns the estimated payload bits, or -1 if out of memory. */
double tce_trellis(const double *weights, size_t n, const double *steps, size_t channels, size_t inner,
                   double lambda_scale, unsigned initial_activity, int64_t *levels);

#endif
