#include "amsx.h"
#ifdef HOST_STATS
uint64_t amsx_steps;
#define STEP() (amsx_steps++)
#else
#define STEP()
#endif
extern const uint32_t amsx_crc_table[256];

#if DIVTOT
/* n / d for 128 <= d <= 32768 (any n): schoolbook in two halves, each step "N = 2N; if (N >= D) N = N - D + 1"
 * (remainder in the high bits of N, quotient bits entering at the bottom; N < D <= 2^31, so 2N never overflows).
 * Stage 1: q1 = (n >> 16) / d, at most 9 bits (2 once d >= 2^14: n >> 16 < 2^16 <= d << 2);
 * stage 2: ((n >> 16) % d << 16 | n & 0xFFFF) / d, 16 bits.  Fully unrolled. */
#define DSTEP(N, Dm1) N <<= 1; if (N > Dm1) N -= Dm1;
static inline uint32_t amsx_divtot(uint32_t n, uint32_t d)
{
    uint32_t N = n >> 16, q1, Dm1;
    if (N < d) q1 = 0;
    else if (d >= 1u << 14) {
        Dm1 = (d << 2) - 1;
        DSTEP(N, Dm1) DSTEP(N, Dm1)
        q1 = N & 3; N >>= 2;
    } else {
        Dm1 = (d << 9) - 1;
        DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1)
        q1 = N & 511; N >>= 9;
    }
    N = N << 16 | (n & 0xFFFF);
    Dm1 = (d << 16) - 1;
    DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1)
    DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1) DSTEP(N, Dm1)
    return q1 << 16 | (N & 0xFFFF);
}
#define DIV_TOT(a, b) amsx_divtot(a, b)
#else
#define DIV_TOT(a, b) ((a) / (b))
#endif

#define NORM(fail) while (range < (1u << 24)) { if (p >= end) fail; range <<= 8; code = code << 8 | *p++; }


#if ESC
typedef struct { uint32_t range, code; const uint8_t *p, *end; } rd;
static int rd_raw(rd *d, unsigned n, uint32_t *out)   /* n <= 16 */
{
    uint32_t range = d->range, code = d->code, v = 0;
    const uint8_t *p = d->p, *end = d->end;
#if DIVFREE
    for (unsigned i = 0; i < n; i++) { range >>= 1; v <<= 1; if (code >= range) { code -= range; v |= 1; } }
#elif MULSEARCH >= 2
    uint32_t rr = range >> n;
    if (code >= rr << n) return -2;   /* = (code / rr) >> n */
    for (unsigned i = n; i--; ) { uint32_t s = rr << i; v <<= 1; if (code >= s) { code -= s; v |= 1; } }
    range = rr;
#else
    uint32_t rr = range >> n; v = code / rr; code -= v * rr; range = rr;
    if (v >> n) return -2;
#endif
    NORM(return -3);
    d->range = range; d->code = code; d->p = p; *out = v;
    return 0;
}
/* after ESC, returns the signed value in *val and bitlen(|val|) in *b.
 * ESC == 2: bitlen(m) - 9 with the shared adaptive model, the bits below the MSB, the sign. */
#if ESC == 2 || ESC == 3
/* The entry of the shared model that the code falls in (*entry), the range narrowed to it and renormalised. */
static int esc_locate(const amsx_state *s, rd *d, unsigned *entry)
{
    uint32_t range = d->range, code = d->code, r = range / s->etot, cum = 0;
    const uint8_t *p = d->p, *end = d->end;
    unsigned j = 0;
#if MULSEARCH
    if (code >= r * s->etot) return -2;
    while (code >= r * (cum + s->ecnt[j])) cum += s->ecnt[j++];
#else
    uint32_t t = code / r;
    if (t >= s->etot) return -2;
    while (t >= cum + s->ecnt[j]) cum += s->ecnt[j++];
#endif
    code -= r * cum; range = r * s->ecnt[j];
    NORM(return -3);
    d->range = range; d->code = code; d->p = p; *entry = j;
    return 0;
}
#endif
#if ESC == 2
static __attribute__((noinline)) int esc_decode(amsx_state *s, rd *d, int32_t *val, unsigned *b)
{
    uint32_t hi = 0, x, bit;
    unsigned k;
    int status = esc_locate(s, d, &k);
    if (status) return status;
    s->ecnt[k] += INC;
    if ((s->etot += INC) > LIMIT) { unsigned tt = 0; for (int q = 0; q < NESC; q++) { s->ecnt[q] = (s->ecnt[q] + 1) >> 1; tt += s->ecnt[q]; } s->etot = tt; }
    unsigned n = k + 8;   /* bits below the MSB */
    if (n > 16) { if (rd_raw(d, 16, &hi)) return -3; n -= 16; }
    if (rd_raw(d, n, &x)) return -3;
    uint32_t m = (uint32_t)((uint64_t)1 << (k + 8) | (uint64_t)hi << n | x);
    if (m > 0x80000000u) return -5;
    if (rd_raw(d, 1, &bit)) return -3;
    *val = bit ? (int32_t)(0u - m) : (int32_t)m;
    *b = k + 9;
    return 0;
}
#elif ESC == 3
/* ESC == 3 (amsx.h): the shared model kept sorted like a context's, then bitlen(m) raw bits: the bits below the
 * MSB and the sign, in chunks of 16 from the top. */
static __attribute__((noinline)) int esc_decode(amsx_state *s, rd *d, int32_t *val, unsigned *b)
{
    uint32_t hi = 0, x;
    unsigned j;
    int status = esc_locate(s, d, &j);
    if (status) return status;
    unsigned k = s->esym[j];
    s->ecnt[j] += INC;
    if (j && s->ecnt[j] > s->ecnt[j - 1]) {
        uint16_t c = s->ecnt[j]; s->ecnt[j] = s->ecnt[j - 1]; s->ecnt[j - 1] = c;
        uint8_t y = s->esym[j]; s->esym[j] = s->esym[j - 1]; s->esym[j - 1] = y;
    }
    if ((s->etot += INC) > LIMIT) { unsigned tt = 0; for (int q = 0; q < NESC; q++) { s->ecnt[q] = (s->ecnt[q] + 1) >> 1; tt += s->ecnt[q]; } s->etot = tt; }
    unsigned n = k + 9;   /* the bits below the MSB, then the sign */
    if (n > 16) { if (rd_raw(d, 16, &hi)) return -3; n -= 16; }
    if (rd_raw(d, n, &x)) return -3;
    uint64_t v = (uint64_t)hi << n | x, m = ((uint64_t)1 << (k + 8)) + (v >> 1);
    if (m > 0x80000000u) return -5;
    *val = (v & 1) ? (int32_t)(0u - (uint32_t)m) : (int32_t)m;
    *b = k + 9;
    return 0;
}
#else
/* ESC == 1: Exp-Golomb order 0 of m - 256 as raw bits, then the sign */
static __attribute__((noinline)) int esc_decode(amsx_state *s, rd *d, int32_t *val, unsigned *b)
{
    (void)s;
    uint32_t bit, z = 0, x = 0, hi = 0;
    for (;;) {
        if (rd_raw(d, 1, &bit)) return -3;
        if (bit) break;
        if (++z > 31) return -5;
    }
    unsigned n = z;
    if (n > 16) { if (rd_raw(d, 16, &hi)) return -3; n -= 16; }
    if (rd_raw(d, n, &x)) return -3;
    uint32_t e1 = (uint32_t)((uint64_t)1 << z | (uint64_t)hi << n | x);
    uint32_t m = e1 - 1 + 256;
    if (e1 - 1 > 0x80000000u - 256) return -5;
    if (rd_raw(d, 1, &bit)) return -3;
    *val = bit ? (int32_t)(0u - m) : (int32_t)m;
    *b = 32 - __builtin_clz(m);
    return 0;
}
#endif
#endif /* ESC */

int amsx_decode(amsx_state *s, const uint8_t *in, size_t in_size, OUT_T *out, size_t n, unsigned a0, uint32_t *crc_out
#if SCALE
                , uint8_t *ring, size_t H
#endif
                )
{
#if SCALE
    uint8_t *slot = ring, *ring_end = ring + H;
    for (size_t i = 0; i < H; i++) ring[i] = (uint8_t)a0;
#endif
    const uint8_t *p = in, *end = in + in_size;
    uint32_t range = 0xFFFFFFFFu, code, crc = 0xFFFFFFFFu;
    unsigned act = a0;
#if SIGN
    unsigned prev = 0;
#endif
    OUT_T *stop = out + n;
    if (in_size < 4) return -1;
    code = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    p += 4;
    while (out < stop) {
#if SCALE
        unsigned col = *slot;
        amsx_model *m = &s->m[amsx_ctx((act + 3 * col) >> 2)];
#else
        amsx_model *m = &s->m[amsx_ctx(act)];
#endif
        uint16_t *c = m->cnt;
#if MULSEARCH
        uint32_t x;
#else
        uint32_t cum, x;
#endif
#if POW2
        uint32_t r = range >> TB;
        cum = m->tot;
#if DIVFREE
        if (code >= r << TB) return -2;
        for (;;) { x = *c; STEP(); cum += x; if (code < r * cum) break; c++; }
#else
        uint32_t t = code / r;
        if (t >> TB) return -2;
        for (;;) { x = *c; STEP(); cum += x; if (t < cum) break; c++; }
#endif
        uint32_t lo = c == m->cnt ? 0 : cum - x;
        code -= r * lo;
        range = r * (cum - lo);
#elif MULSEARCH
        /* floor(code / r) >= cum  <=>  code >= r * cum; r * tot <= range, so no product overflows */
        uint32_t tot = m->tot, r = DIV_TOT(range, tot), lo = 0, hi;
        if (code >= r * tot) return -2;
        for (;;) { x = *c; STEP(); hi = lo + r * x; if (code < hi) break; lo = hi; c++; }
        code -= lo;
        range = r * x;
#else
        uint32_t r = range / m->tot;
        uint32_t t = code / r;
        if (t >= m->tot) return -2;
        cum = 0;
        for (;;) { x = *c; STEP(); if (t < cum + x) break; cum += x; c++; }
        code -= r * cum;
        range = r * x;
#endif
        NORM(return -3);
        unsigned j = c - m->cnt;
        unsigned info = amsx_info[m->sym[j]];
        /* model update */
#if POW2
        x += m->inc; *c = x; m->tot -= m->inc;
#else
        x += INC; *c = x;
#endif
        if (j && x > c[-1]) {
            c[0] = c[-1]; c[-1] = x;
            uint8_t y = m->sym[j]; m->sym[j] = m->sym[j - 1]; m->sym[j - 1] = y;
        }
#if POW2
        if (--m->left == 0) amsx_decay(m);
#else
        if ((m->tot += INC) > LIMIT) amsx_halve(m);
#endif
        int32_t val;
        unsigned b;
#if ESC
        if (info >= 0xF000) {
            rd d = {range, code, p, end};
            int rc = esc_decode(s, &d, &val, &b);
            if (rc) return rc;
            range = d.range; code = d.code; p = d.p;
#if SIGN
            prev = val < 0 ? 1 : 2;
#endif
        } else
#endif
        {
            unsigned nraw = (info >> 8) & 15;
            val = (int32_t)(info & 0xFF);
            b = info >> 12;
            if (nraw) {
#if SIGN
              if (--nraw) {   /* the magnitude bits, then the sign */
#endif
                uint32_t v;
#if DIVFREE
                v = 0;
                do { range >>= 1; v <<= 1; if (code >= range) { code -= range; v |= 1; } } while (--nraw);
#elif MULSEARCH == 3
                /* as MULSEARCH == 2, unrolled: the top quotient bit (v = 2^nraw, only on corrupt input) first,
                 * then the nraw bits below (nraw <= 8) by a switch falling through */
                uint32_t rr = range >> nraw, sub = rr << nraw;
                v = 0;
                if (code >= sub) { code -= sub; v = 1u << nraw; }
                else switch (nraw) {
#define RSTEP(i) case i + 1: if (code >= rr << i) { code -= rr << i; v |= 1u << i; }
#define RSTEPF(i) RSTEP(i) __attribute__((fallthrough));
                    default: RSTEPF(7) RSTEPF(6) RSTEPF(5) RSTEPF(4) RSTEPF(3) RSTEPF(2) RSTEPF(1) RSTEP(0)
                }
                range = rr;
#elif MULSEARCH == 2
                /* v = code / rr by restoring division: code < range < (rr + 1) << nraw and rr >= 2^16 > 2^nraw,
                 * so v <= 2^nraw: nraw + 1 quotient bits, compared against rr << i */
                uint32_t rr = range >> nraw, sub = rr << nraw;
                v = 0;
                for (;;) { if (code >= sub) { code -= sub; v |= 1; } if (sub == rr) break; sub >>= 1; v <<= 1; }
                range = rr;
#else
                uint32_t rr = range >> nraw;
                v = code / rr;
                code -= v * rr;
                range = rr;
#endif
                NORM(return -3);
#if SIGN
                val += (int32_t)v;
              }
                unsigned sc = prev * 4 + (b < 4 ? b : 4) - 1;
                int neg;
#if SIGN == 1
                uint16_t *sn = s->sgn[sc];
                uint32_t st = sn[0] + sn[1];
#if MULSEARCH
                uint32_t r = range / st, bound = r * sn[0];
                if (code >= r * st) return -2;
#else
                uint32_t r = range / st, t = code / r, bound = r * sn[0];
                if (t >= st) return -2;
#endif
                neg = code >= bound;
                if (neg) { code -= bound; range = r * sn[1]; } else range = bound;
                sn[neg] += SINC;
                if (st + SINC > SLIMIT) { sn[0] = (sn[0] + 1) >> 1; sn[1] = (sn[1] + 1) >> 1; }
#else
                uint16_t *sp = &s->sgp[sc];
                uint32_t pp = *sp, bound = (range >> 12) * pp;
                neg = code >= bound;
                if (neg) { code -= bound; range -= bound; *sp = pp - (pp >> SRATE); }
                else { range = bound; *sp = pp + ((4096 - pp) >> SRATE); }
#endif
                NORM(return -3);
                prev = neg ? 1 : 2;
                if (neg) val = -val;
#else
                int32_t neg = -(int32_t)(v & 1);
                val = ((val + (int32_t)(v >> 1)) ^ neg) - neg;
#endif
            }
        }
        act = act - (act >> 3) + b;
#if SCALE
        *slot = (uint8_t)(col - (col >> 3) + b);
        if (++slot == ring_end) slot = ring;
#endif
        crc = amsx_crc_table[(crc ^ (uint32_t)val) & 0xFF] ^ (crc >> 8);
        *out++ = (OUT_T)val;
    }
    if (code != 0) return -4;
    *crc_out = ~crc;
    return 0;
}
