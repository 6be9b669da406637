/* amsx: an adaptive multi-symbol range coder with a compact model layout (step 1), an escape for values beyond int8 (step 2)
 * and optional power-of-two totals / division-free decoding (step 4).  Experiment only, not part of
 * the tinycabac format (README.md in this directory).
 *
 * Per value: context = min(a >> CTX_SHIFT, NCTX - 1) (a: tinycabac's activity, FORMAT 5.4);
 * symbol = magnitude class of m = |v| with MB mantissa bits for m < 256 (m < 2^(MB+1): m itself; else
 * (bitlen, MB bits below the MSB)), or ESC (m >= 256).  Then the low bits of m and the sign (m > 0) as raw
 * bits; after ESC: ESC == 1: Exp-Golomb order 0 of m - 256 as raw bits, then the sign;
 * ESC == 2: bitlen(m) - 9 with one shared adaptive count model (24 symbols), then the bitlen(m) - 1 bits
 * below the MSB and the sign as raw bits.
 * ESC == 3 (integrated/amsx_decoder_small.patch): as 2, but the shared model is kept like a context's
 * (esym[]: entries roughly sorted by count, swapped with the predecessor once larger), and the bits below
 * the MSB with the sign appended, bitlen(m) bits in all, are one raw value coded in chunks of 16 from the top.
 * Model of a context: u16 cnt[NSYM] (count of the entry), u8 sym[NSYM] (symbol index of the entry, entries
 * kept roughly sorted by count: swap with predecessor when larger), u16 tot.
 *  POW2 = 0: tot = sum of counts; c0 = C0 (ESC: 1), + INC per coded symbol, all halved when tot > LIMIT.
 *  POW2 = 1: the total is fixed at 2^TB; tot holds the reservoir 2^TB - sum(cnt), which is added to the
 *            first (most probable) entry's interval.  Per coded symbol cnt += inc, reservoir -= inc; every
 *            R = 2^LOG2R updates of the context: cnt -= cnt >> sh for all entries (freed mass goes to the
 *            reservoir), sh = min(sh + 1, SHMAX), inc = reservoir >> LOG2R.
 *  DIVFREE = 1 (needs POW2): symbol search compares code with r * cum (no t = code / r), raw bits decoded
 *            one at a time (range >>= 1; compare).
 *  MULSEARCH (needs POW2 = 0; decoder only, same bitstream as the counts decoder, bit-exact for every input):
 *            1: one division per symbol, r = range / tot; the search compares code with r * cum instead of
 *               t = code / r with cum; raw bits still by v = code / rr.
 *            2: as 1, and the raw bits v = code / rr (rr = range >> nraw) by a restoring division over
 *               nraw + 1 quotient bits (compare code with rr << i), exact also when v = 2^nraw.
 *            3: as 2, the restoring division unrolled (a switch on nraw falling through).
 *  DIVTOT (with MULSEARCH): how r = range / tot is computed.  0: the C division (libgcc's __udivsi3 on
 *            ARMv6-M); 1: a schoolbook division specialised for 128 <= tot <= 32768, unrolled
 *            (amsx_divtot in amsx_dec.c).
 *  SIGN (a different bitstream; encoder and decoder): 0: the sign is the last raw bit.  Otherwise the raw chunk
 *            holds only the magnitude bits and the sign follows, coded with one of tinycabac's 12 sign contexts,
 *            previous sign (0 none yet, 1 negative, 2 positive) * 4 + min(bitlen(m), 4) - 1 (FORMAT 5.5):
 *            1: a 2-entry adaptive count model (SC0 each, + SINC, both halved when the total exceeds SLIMIT),
 *               r = range / total (a C division also with DIVTOT);
 *            2: a 12-bit probability of "positive", bound = (range >> 12) * p, p += (4096 - p) >> SRATE or
 *               p -= p >> SRATE.  The escape's sign stays raw.
 */
#include <stdint.h>
#include <stddef.h>
#ifndef MB
#define MB 1
#endif
#define NSYM8 ((2 << MB) + (8 - MB - 1) * (1 << MB))
#if defined(ALPHA) && ALPHA   /* step 6: an alphabet of ALPHA symbols from the header ALPHA_H (build with MB=0) */
#undef NSYM8
#define NSYM8 ALPHA
extern const uint8_t amsx_symtab[256];
#endif
#ifndef ESC
#define ESC 1
#endif
#define NSYM (NSYM8 + (ESC != 0))
#ifndef NCTX
#define NCTX 12
#endif
#ifndef CTX_SHIFT
#define CTX_SHIFT 2
#endif
#ifndef POW2
#define POW2 0
#endif
#ifndef DIVFREE
#define DIVFREE 0
#endif
#ifndef MULSEARCH
#define MULSEARCH 0
#endif
#ifndef DIVTOT
#define DIVTOT 0
#endif
#if MULSEARCH && (POW2 || DIVFREE)
#error "MULSEARCH is an option of the counts decoder (POW2 = 0)"
#endif
#if DIVTOT && !MULSEARCH
#error "DIVTOT needs MULSEARCH"
#endif
#ifndef INC
#define INC 16
#endif
#ifndef C0
#define C0 8
#endif
#ifndef LIMIT
#define LIMIT 32768
#endif
#define TB 15
#if DIVTOT && (C0 * NSYM8 + (ESC != 0) < 128 || LIMIT > 32768)
#error "DIVTOT needs 128 <= tot <= 32768"
#endif
#ifndef LOG2R
#define LOG2R 4
#endif
#ifndef SH0
#define SH0 1
#endif
#ifndef SHMAX
#define SHMAX 7
#endif
#ifndef SIGN
#define SIGN 0
#endif
#ifndef SC0
#define SC0 8
#endif
#ifndef SINC
#define SINC 16
#endif
#ifndef SLIMIT
#define SLIMIT 1024
#endif
#ifndef SRATE
#define SRATE 5
#endif
#ifndef SCALE
#define SCALE 0
#endif
#ifndef OUT_T
#define OUT_T int8_t
#endif

typedef struct {
    uint16_t tot;
#if POW2
    uint16_t inc;
    uint8_t left, sh;
#endif
    uint16_t cnt[NSYM];
    uint8_t sym[NSYM];
} amsx_model;

#define NESC 24   /* ESC == 2, 3: bitlen 9..32 of |v| >= 256, one adaptive count model shared by all contexts */
typedef struct {
    amsx_model m[NCTX];
#if ESC == 2 || ESC == 3
    uint16_t etot, ecnt[NESC];
#endif
#if ESC == 3
    uint8_t esym[NESC];
#endif
#if SIGN == 1
    uint16_t sgn[12][2];
#elif SIGN == 2
    uint16_t sgp[12];
#endif
} amsx_state;

/* symbol info (flash): bitlen << 12 | nraw << 8 | base; nraw includes the sign bit; ESC: 0xF000 */
extern const uint16_t amsx_info[NSYM];
void amsx_init(amsx_state *s);
void amsx_decay(amsx_model *m);
void amsx_halve(amsx_model *m);
long amsx_encode(amsx_state *s, const int32_t *v, const uint8_t *cols, size_t n, unsigned a0, uint8_t *out, size_t cap);
int amsx_decode(amsx_state *s, const uint8_t *in, size_t in_size, OUT_T *out, size_t n, unsigned a0, uint32_t *crc
#if SCALE
                , uint8_t *ring, size_t H
#endif
                );
extern uint64_t amsx_steps, amsx_escapes;
/* Step 6 options (README "Step 6"; the defaults keep the behaviour above):
 *  CTXMAP = 1: context a >> 1 for a < 16, else 4 + (a >> 2), capped at NCTX - 1 (finer contexts at low activity).
 *  CTXMAP = 2: the same map for NCTX = 16 as a 257-entry table in flash (step6_ctxtab.h, amsx_model.c).
 *  INCVAR = 1: the increment INC is the variable amsx_inc (per tensor, set before coding; amsx_model.c).
 *  LIMITVAR = 1: the halving limit LIMIT is the variable amsx_limit (per tensor, like INCVAR; at most 65535 - INC).
 *  INITTAB = 1: initial counts per context from the header INITTAB_H (amsx_model.c), entries pre-sorted.
 *  ALPHA = n (with MB = 0): an alphabet of n symbols for m < 256, amsx_info[] and amsx_symtab[m] from the header ALPHA_H
 *            (step6_real.py writes it; e.g. two mantissa bits for bit lengths 3-4 and one above: 20 symbols). */
#ifndef CTXMAP
#define CTXMAP 0
#endif
#if CTXMAP == 1
static inline unsigned amsx_ctx(unsigned a) { a = a < 16 ? a >> 1 : 4 + (a >> 2); return a < NCTX - 1 ? a : NCTX - 1; }
#elif CTXMAP == 2
extern const uint8_t amsx_ctxtab[257];   /* the same map as a 257-entry table (step6_ctxtab.h, NCTX = 16) */
static inline unsigned amsx_ctx(unsigned a) { return amsx_ctxtab[a]; }
#else
static inline unsigned amsx_ctx(unsigned a) { a >>= CTX_SHIFT; return a < NCTX - 1 ? a : NCTX - 1; }
#endif
#if defined(INCVAR) && INCVAR
extern uint16_t amsx_inc;
#undef INC
#define INC amsx_inc
#endif
#if defined(LIMITVAR) && LIMITVAR
extern uint16_t amsx_limit;
#undef LIMIT
#define LIMIT amsx_limit
#endif
