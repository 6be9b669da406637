#include "amsx.h"
typedef struct { uint64_t low; uint32_t range, cache_size; uint8_t cache; uint8_t *out; size_t pos, cap; int first; } enc;
static void put(enc *e, uint8_t b) { if (e->first) { e->first = 0; return; } if (e->pos < e->cap) e->out[e->pos] = b; e->pos++; }
static void shift_low(enc *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32)) {
        uint8_t carry = (uint8_t)(e->low >> 32), temp = e->cache;
        do { put(e, (uint8_t)(temp + carry)); temp = 0xFF; } while (--e->cache_size);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}
static void norm(enc *e) { while (e->range < (1u << 24)) { e->range <<= 8; shift_low(e); } }
static unsigned bitlen(uint32_t m) { return m ? 32 - __builtin_clz(m) : 0; }
static void raw_put(enc *E, unsigned n, uint32_t v)   /* n <= 16 */
{
    if (!n) return;
#if DIVFREE
    for (int i = n - 1; i >= 0; i--) { E->range >>= 1; if (v >> i & 1) E->low += E->range; }
#else
    uint32_t rr = E->range >> n;
    E->low += (uint64_t)v * rr;
    E->range = rr;
#endif
    norm(E);
}
static void raw_long(enc *E, unsigned n, uint32_t v)  /* n <= 32, chunks of 16 from the top */
{
    while (n > 16) { n -= 16; raw_put(E, 16, (v >> n) & 0xFFFF); }
    raw_put(E, n, v & ((1u << n) - 1));
}
#if SIGN
static void sign_put(amsx_state *s, enc *E, unsigned c, int neg)   /* amsx.h, SIGN */
{
#if SIGN == 1
    uint16_t *sn = s->sgn[c]; uint32_t st = sn[0] + sn[1], r = E->range / st;
    if (neg) { E->low += (uint64_t)r * sn[0]; E->range = r * sn[1]; } else E->range = r * sn[0];
    sn[neg] += SINC;
    if (st + SINC > SLIMIT) { sn[0] = (sn[0] + 1) >> 1; sn[1] = (sn[1] + 1) >> 1; }
#else
    uint32_t pp = s->sgp[c], bound = (E->range >> 12) * pp;
    if (neg) { E->low += bound; E->range -= bound; s->sgp[c] = pp - (pp >> SRATE); }
    else { E->range = bound; s->sgp[c] = pp + ((4096 - pp) >> SRATE); }
#endif
    norm(E);
}
#endif
static unsigned sym_of(uint32_t m)
{
    if (m >= 256) return NSYM8;
#if defined(ALPHA) && ALPHA
    return amsx_symtab[m];   /* amsx.h, step 6 */
#endif
    if (m < (2u << MB)) return m;
    unsigned b = bitlen(m);
    return ((b - MB) << MB) + (m >> (b - 1 - MB)) - (1u << MB);
}
uint64_t amsx_escapes;
long amsx_encode(amsx_state *s, const int32_t *v, const uint8_t *cols, size_t n, unsigned a0, uint8_t *out, size_t cap)
{
    enc E = {0, 0xFFFFFFFFu, 1, 0, out, 0, cap, 1};
    unsigned act = a0, prev = 0;
    (void)prev;
    for (size_t i = 0; i < n; i++) {
        int32_t val = v[i];
        uint32_t mag = val < 0 ? -(uint32_t)val : (uint32_t)val;
        if (mag > 0x80000000u) return -1;
        unsigned b = bitlen(mag), sym = sym_of(mag);
        if (!ESC && sym == NSYM8) return -1;
        amsx_model *m = &s->m[amsx_ctx(cols ? (act + 3 * cols[i]) >> 2 : act)];
        unsigned j = 0, cum = 0;
        while (m->sym[j] != sym) { cum += m->cnt[j]; j++; }
#if POW2
        uint32_t r = E.range >> TB;
        if (j == 0) { E.range = r * (m->cnt[0] + m->tot); }
        else { E.low += (uint64_t)r * (cum + m->tot); E.range = r * m->cnt[j]; }
#else
        uint32_t r = E.range / m->tot;
        E.low += (uint64_t)r * cum;
        E.range = r * m->cnt[j];
#endif
        norm(&E);
#if POW2
        m->cnt[j] += m->inc; m->tot -= m->inc;
#else
        m->cnt[j] += INC;
#endif
        if (j && m->cnt[j] > m->cnt[j - 1]) {
            uint16_t c = m->cnt[j]; m->cnt[j] = m->cnt[j - 1]; m->cnt[j - 1] = c;
            uint8_t y = m->sym[j]; m->sym[j] = m->sym[j - 1]; m->sym[j - 1] = y;
        }
#if POW2
        if (--m->left == 0) amsx_decay(m);
#else
        if ((m->tot += INC) > LIMIT) amsx_halve(m);
#endif
#if ESC == 3
        if (sym == NSYM8) {   /* amsx.h: ESC == 3 */
            amsx_escapes++;
            unsigned k = b - 9, j = 0, cum = 0;
            while (s->esym[j] != k) cum += s->ecnt[j++];
            uint32_t r = E.range / s->etot;
            E.low += (uint64_t)r * cum; E.range = r * s->ecnt[j];
            norm(&E);
            s->ecnt[j] += INC;
            if (j && s->ecnt[j] > s->ecnt[j - 1]) {
                uint16_t c = s->ecnt[j]; s->ecnt[j] = s->ecnt[j - 1]; s->ecnt[j - 1] = c;
                uint8_t y = s->esym[j]; s->esym[j] = s->esym[j - 1]; s->esym[j - 1] = y;
            }
            if ((s->etot += INC) > LIMIT) { unsigned t = 0; for (int q = 0; q < NESC; q++) { s->ecnt[q] = (s->ecnt[q] + 1) >> 1; t += s->ecnt[q]; } s->etot = t; }
            raw_long(&E, b, (mag - (1u << (b - 1))) << 1 | (val < 0));
        } else
#endif
#if ESC == 2
        if (sym == NSYM8) {
            amsx_escapes++;
            unsigned k = b - 9, cum = 0;
            for (unsigned q = 0; q < k; q++) cum += s->ecnt[q];
            uint32_t r = E.range / s->etot;
            E.low += (uint64_t)r * cum; E.range = r * s->ecnt[k];
            norm(&E);
            s->ecnt[k] += INC;
            if ((s->etot += INC) > LIMIT) { unsigned t = 0; for (int q = 0; q < NESC; q++) { s->ecnt[q] = (s->ecnt[q] + 1) >> 1; t += s->ecnt[q]; } s->etot = t; }
            raw_long(&E, b - 1, mag);
            raw_put(&E, 1, val < 0);
        } else
#endif
        if (sym == NSYM8) {
            amsx_escapes++;
            uint32_t e1 = mag - 256 + 1; unsigned nb = bitlen(e1);
            for (unsigned z = 0; z + 1 < nb; z++) raw_put(&E, 1, 0);
            raw_put(&E, 1, 1);
            raw_long(&E, nb - 1, e1);
            raw_put(&E, 1, val < 0);
        } else {
            unsigned nraw = (amsx_info[sym] >> 8) & 15;
            if (nraw) {
                uint32_t low = mag - (amsx_info[sym] & 0xFF);
#if SIGN
                if (nraw > 1) raw_put(&E, nraw - 1, low);
                sign_put(s, &E, prev * 4 + (b < 4 ? b : 4) - 1, val < 0);
#else
                raw_put(&E, nraw, low << 1 | (val < 0));
#endif
            }
        }
#if SIGN
        if (mag) prev = val < 0 ? 1 : 2;
#endif
        act = act - (act >> 3) + b;
    }
    for (int i = 0; i < 5; i++) shift_low(&E);
    return E.pos <= cap ? (long)E.pos : -1;
}
