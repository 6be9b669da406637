/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tc_model.h - the parts of the coding model that the decoder and the host
 * encoder must share bit for bit: probability estimation and adaptation,
 * context selection and the activity recurrence (FORMAT sections 5.2-5.4).
 *
 * Keeping them in one header is what makes encoder and decoder agree; the
 * host encoder (host/tinycabac/csrc/encoder.c) includes this file.
 */
#ifndef TC_MODEL_H
#define TC_MODEL_H

#include <stdint.h>

#include "tinycabac.h"

/* Forced inlining makes the hot loop fast at -O2; at -Os (__OPTIMIZE_SIZE__)
 * the compiler chooses, which keeps the decoder within 4 KB of flash. */
#if defined(__GNUC__) || defined(__clang__)
#define TC_ALWAYS_INLINE static __inline__ __attribute__((always_inline))
#else
#define TC_ALWAYS_INLINE static
#endif
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__OPTIMIZE_SIZE__)
#define TC_INLINE static __inline__ __attribute__((always_inline))
#elif defined(__GNUC__) || defined(__clang__)
#define TC_INLINE static __inline__
#else
#define TC_INLINE static
#endif

#define TC_PROB_BITS 15u                 /* probabilities are in 1/32768 */
#define TC_PROB_ONE (1u << TC_PROB_BITS)
#define TC_RATE_FAST 5u                  /* fast estimate: window ~32 bins */
#define TC_RATE_SLOW 8u                  /* slow estimate: window ~256 bins */
#define TC_RANGE_TOP ((uint32_t)1 << 24) /* renormalise below this range (1u may be 16 bits) */

#define TC_UNARY_MAX 16u      /* prefix bins before the exp-Golomb escape */
#define TC_ESCAPE_MAX_BITS 31u /* longest legal escape prefix */
#define TC_MAX_MAGNITUDE 0x80000000u /* |level| <= 2^31 */

/* Probability that the next bin is 0, in 1/32768 units.  The two estimates
 * never reach 0 or 32768 (FORMAT 5.2), so neither can the mean. */
TC_INLINE uint32_t tc_context_p0(const tc_context *c)
{
    return ((uint32_t)c->fast + c->slow) >> 1;
}

TC_INLINE void tc_context_update(tc_context *c, unsigned bin)
{
    if (bin) {
        c->fast = (uint16_t)(c->fast - (c->fast >> TC_RATE_FAST));
        c->slow = (uint16_t)(c->slow - (c->slow >> TC_RATE_SLOW));
    } else {
        c->fast = (uint16_t)(c->fast + ((TC_PROB_ONE - c->fast) >> TC_RATE_FAST));
        c->slow = (uint16_t)(c->slow + ((TC_PROB_ONE - c->slow) >> TC_RATE_SLOW));
    }
}

/* The 166 contexts of a tensor (FORMAT 5.3): prefix[16][4], suffix[15][2][3]
 * and sign[12], in that order, as tc_decoder and the encoder lay them out. */
#define TC_CONTEXT_COUNT (TC_PREFIX_SETS * TC_PREFIX_BINS + TC_SUFFIX_SETS * 2 * 3 + TC_SIGN_CONTEXTS)

/* Where each context starts (FORMAT 5.2): both estimates at INIT[i] << 7,
 * a probability learnt from the first bins the context codes in tensors of
 * models outside the bench corpus (bench/train_context_init.py), instead
 * of 1/2: small tensors then spend fewer bits learning.  Entries are 2..254,
 * so the estimates start inside the ranges the update keeps them in. */
static const uint8_t tc_context_init[TC_CONTEXT_COUNT] = {
    192, 171, 128, 128, 205, 192, 128, 128, 209, 205, 128, 128, 148, 157, 135,  45,
    153, 150, 128,  70, 150, 151, 145, 125, 170, 187, 170, 106, 159, 136, 112, 118,
    137, 144, 153, 254, 180, 254, 128, 128, 254, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    132, 128, 128, 157, 128, 128, 146,  97, 150, 159, 142, 143, 150, 116, 149, 169,
    149, 157, 151, 126, 145, 148, 142, 135, 143, 134, 139, 137, 146, 120, 147, 126,
    142, 144, 146,  99,  87, 132,  78, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 202, 142, 181, 128, 129,
    130, 132, 129, 129, 132, 147,
};

TC_INLINE void tc_contexts_reset(tc_context *c)
{
    unsigned i;
    for (i = 0; i < TC_CONTEXT_COUNT; i++)
        c[i].fast = c[i].slow = (uint16_t)(tc_context_init[i] << 7);
}

/* Number of significant bits of m (0 for m = 0): the magnitude class. */
TC_INLINE unsigned tc_bit_length(uint32_t m)
{
#if defined(__GNUC__) && (defined(__ARM_FEATURE_CLZ) || defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
    return m ? 32u - (unsigned)__builtin_clz(m) : 0u;
#else
    /* Cortex-M0 has no CLZ instruction; a binary search beats libgcc's. */
    unsigned n = 0;
    if (m >= 0x10000u) { m >>= 16; n += 16; }
    if (m >= 0x100u) { m >>= 8; n += 8; }
    if (m >= 0x10u) { m >>= 4; n += 4; }
    if (m >= 0x4u) { m >>= 2; n += 2; }
    if (m >= 0x2u) { m >>= 1; n += 1; }
    return n + m;
#endif
}

/* Activity: an exponentially weighted sum of recent magnitude classes, about
 * 8 x their mean.  It stands for the local scale of the weights (FORMAT 5.4). */
TC_INLINE unsigned tc_activity_next(unsigned activity, unsigned magnitude_class)
{
    return activity - (activity >> 3) + magnitude_class;
}

/* No value is coded with a larger activity, whatever the stream says: from
 * an initial activity (a byte) the recurrence stays at most 256, since
 * a - a/8 grows with a and 256 - 32 + 32 (class 32: a magnitude of 2^31) is
 * its largest step from a <= 256, and the scale mix below stays under it. */
#define TC_MAX_ACTIVITY 256u

/* Scale prediction (FORMAT 5.4, 5.7): every column of a tensor (the
 * elements H apart: one input channel of a 1x1 convolution, one tap of a
 * kernel) keeps its own activity in the ring, because input channels differ
 * in scale (pruned ones are all zero) alike in every row.  A value is coded
 * with a mix weighted 3:1 towards its column's activity. */
TC_INLINE unsigned tc_scale_activity(unsigned activity, unsigned column_activity)
{
    return (activity + 3u * column_activity) >> 2;
}

/* The column's activity after a value of magnitude class `magnitude_class`,
 * the running activity's recurrence.  The ring keeps it in a byte (mod 256):
 * from any start <= 255 only a magnitude of 2^31 (class 32) can wrap it. */
TC_INLINE unsigned tc_column_activity_next(unsigned column_activity, unsigned magnitude_class)
{
    return (column_activity - (column_activity >> 3) + magnitude_class) & 0xFFu;
}

/* Rice parameter: the number of low magnitude bits sent as a suffix, about
 * the mean magnitude class, so the unary prefix stays short (0..31). */
TC_INLINE unsigned tc_rice_k(unsigned activity)
{
    unsigned k = activity >> 3;
    return k < 32u ? k : 31u;
}

/* Which of the 16 prefix context sets codes this value's unary prefix:
 * four by activity while k = 0 (mostly-zero levels), then one per k. */
TC_INLINE unsigned tc_prefix_set(unsigned activity, unsigned k)
{
    return k == 0u ? activity >> 1 : 3u + (k < 12u ? k : 12u);
}

/* Which of the 15 suffix context sets codes the top suffix bits (k >= 1). */
TC_INLINE unsigned tc_suffix_set(unsigned k)
{
    return (k < (unsigned)TC_SUFFIX_SETS ? k : (unsigned)TC_SUFFIX_SETS) - 1u;
}

/* Sign context: the previous non-zero level's sign (0 none, 1 negative,
 * 2 positive) and this level's magnitude class, capped at 4 (FORMAT 5.5). */
TC_INLINE unsigned tc_sign_context(unsigned previous_sign, unsigned magnitude_class)
{
    return previous_sign * 4u + (magnitude_class < 4u ? magnitude_class : 4u) - 1u;
}

/* Context of prefix bin `bin_number` within its set: one each for the first
 * bins, the last shared by the rest (FORMAT 5.5).  The decoder's prefix loop
 * (decode_level) walks the same contexts by stepping a pointer, which is
 * cheaper per bin; the golden vectors hold both to this rule. */
TC_INLINE unsigned tc_prefix_bin_index(uint32_t bin_number)
{
    return bin_number < TC_PREFIX_BINS - 1u ? (unsigned)bin_number : TC_PREFIX_BINS - 1u;
}

/* Factor prediction (FORMAT 5.8): a tensor's rows (runs of H elements) are
 * predicted from the low-rank factors the payload carries, A (one row of
 * `rank` i8 per row) and B (`rank` i8 per column):
 *     prediction = floor((sum_i A[i] * B[i] + 2^(shift-1)) / 2^shift)
 * With rank <= 64, |sum| <= 64 * 128 * 128 = 2^20: it stays in int32, and
 * the shift, done on the sum plus 2^30, needs no signed right shift. */
#define TC_MAX_RANK 64u
#define TC_MAX_FACTOR_SHIFT 24u
#define TC_MAX_FACTOR_RESIDUAL 0x40000000u /* |coded value| <= 2^30 */
/* The factor values' own activity (FORMAT 5.4) starts here: about the
 * magnitude class of factors quantized to the full int8 range. */
#define TC_FACTOR_ACTIVITY 48u

TC_INLINE int32_t tc_factor_prediction(const int8_t *a, const int8_t *b, unsigned rank, unsigned shift)
{
    int32_t sum = 0;
    unsigned i;
    for (i = 0; i < rank; i++)
        sum += (int32_t)a[i] * b[i];
    if (shift == 0)
        return sum;
    return (int32_t)(((uint32_t)(sum + 0x40000000) + ((uint32_t)1 << (shift - 1))) >> shift) -
           (int32_t)((uint32_t)0x40000000 >> shift);
}

#endif /* TC_MODEL_H */
