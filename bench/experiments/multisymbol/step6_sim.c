/* Step 6 simulator: ideal code length (sum of -log2 p, counts exactly as the integer coder keeps them) of amsx-like
 * adaptive multi-symbol models with a free alphabet, context map, initial counts, adaptation and sign model.
 *
 * alphabet: sym_tab[ctx_tab[a]][m], nraw_tab[..][m] for m < 256 (one alphabet per activity context, same size nsym8) (nraw: raw magnitude bits below the class, sign not included);
 *           m >= 256: escape symbol nsym8, then bitlen(m) - 9 with one shared adaptive 24-entry count model
 *           and bitlen(m) - 1 raw bits (amsx ESC = 2).
 * context:  ctx = ctx_tab[a] * ngroup + grp_tab[min(bitlen(previous m), 32)] (previous m = 0 at the start).
 * counts:   init[ctx * nsym + s] (escape entry: 1), + inc per coded symbol, all halved ((c + 1) >> 1) when the
 *           total exceeds limit.  inc_first > 0: the increment is inc_first until the first halving of that table
 *           (a two-phase, "fast start" schedule), inc afterwards.
 * sign:     0 raw; 1 tinycabac's 12 contexts, two-speed (FORMAT 5.2); 2 the same 12 contexts, one 12-bit
 *           probability with shift srate (amsx SIGN = 2).
 * hist:     optional, accumulates the coded symbols per context (for trained initial counts).
 */
#include <stdint.h>
#include <math.h>
#include <string.h>

#define MAXSYM 64
#define MAXCTX 256
typedef struct {
    uint8_t sym_tab[32][256], nraw_tab[32][256];   /* per context of the activity map */
    uint8_t ctx_tab[257];
    uint8_t grp_tab[33];
    int nsym8, nctx, ngroup;
    int inc, limit, inc_first;
    int sign, srate;
    int esc_c0;
} sparams;

static inline int bitlen(uint32_t m) { return m ? 32 - __builtin_clz(m) : 0; }

typedef struct { uint32_t c[MAXSYM], tot; int halved; } cmodel;

static double cm_code(cmodel *md, int n, int s, int inc, int limit)
{
    double cost = log2((double)md->tot) - log2((double)md->c[s]);
    md->c[s] += inc; md->tot += inc;
    if (md->tot > (uint32_t)limit) {
        md->tot = 0; md->halved = 1;
        for (int i = 0; i < n; i++) { md->c[i] = (md->c[i] + 1) >> 1; md->tot += md->c[i]; }
    }
    return cost;
}

typedef struct { uint16_t fast, slow; } bin_ctx;
static double bin2(bin_ctx *c, int bin)
{
    int p0 = (c->fast + c->slow) >> 1;
    double p = bin ? (32768 - p0) / 32768.0 : p0 / 32768.0;
    if (bin == 0) { c->fast += (32768 - c->fast) >> 5; c->slow += (32768 - c->slow) >> 8; }
    else { c->fast -= c->fast >> 5; c->slow -= c->slow >> 8; }
    return -log2(p);
}
static double bin12(uint16_t *pp, int neg, int srate)   /* p = P(positive) in 1/4096 */
{
    uint32_t p = *pp;
    double cost = neg ? -log2((4096 - p) / 4096.0) : -log2(p / 4096.0);
    if (neg) *pp = p - (p >> srate); else *pp = p + ((4096 - p) >> srate);
    return cost;
}

/* bits of one tensor (no flush); sym_bits/sign_bits/raw_bits accumulate the parts */
double s6_tensor(const int32_t *v, const uint8_t *cols, long n, int a0, const sparams *P, const uint16_t *init,
                 double *parts, uint32_t *hist)
{
    static cmodel md[MAXCTX], esc;
    int ns = P->nsym8 + 1, nc = P->nctx * P->ngroup;
    for (int c = 0; c < nc; c++) {
        md[c].tot = 0; md[c].halved = 0;
        for (int i = 0; i < ns; i++) { md[c].c[i] = i < P->nsym8 ? init[c * P->nsym8 + i] : 1; md[c].tot += md[c].c[i]; }
    }
    esc.tot = 0; esc.halved = 0;
    for (int i = 0; i < 24; i++) { esc.c[i] = P->esc_c0; esc.tot += P->esc_c0; }
    bin_ctx sc[12]; uint16_t sp[12];
    for (int i = 0; i < 12; i++) { sc[i].fast = sc[i].slow = 16384; sp[i] = 2048; }
    int act = a0, prevs = 0, pb = 0;
    double sb = 0, rb = 0, yb = 0;
    for (long i = 0; i < n; i++) {
        int a = cols ? (act + 3 * cols[i]) >> 2 : act;
        int ca = P->ctx_tab[a], c = ca * P->ngroup + P->grp_tab[pb];
        int32_t val = v[i];
        uint32_t m = val < 0 ? 0u - (uint32_t)val : (uint32_t)val;
        int b = bitlen(m), s, nraw;
        if (m < 256) { s = P->sym_tab[ca][m]; nraw = P->nraw_tab[ca][m]; }
        else { s = P->nsym8; nraw = b - 1; }
        cmodel *M = &md[c];
        int inc = (P->inc_first && !M->halved) ? P->inc_first : P->inc;
        yb += cm_code(M, ns, s, inc, P->limit);
        if (hist) hist[c * ns + s]++;
        if (m >= 256) yb += cm_code(&esc, 24, b - 9, P->inc, P->limit);
        rb += nraw;
        if (m) {
            int neg = val < 0;
            int sc_i = prevs * 4 + (b < 4 ? b : 4) - 1;
            if (P->sign == 0 || m >= 256) sb += 1;
            else if (P->sign == 1) sb += bin2(&sc[sc_i], neg);
            else sb += bin12(&sp[sc_i], neg, P->srate);
            prevs = neg ? 1 : 2;
        }
        pb = b < 32 ? b : 32;
        act = act - (act >> 3) + b;
    }
    if (parts) { parts[0] += yb; parts[1] += sb; parts[2] += rb; }
    return yb + sb + rb;
}

void s6_all(const int32_t *v, const uint8_t *cols, const int64_t *off, const int64_t *coff, const int32_t *a0, int T,
            const sparams *P, const uint16_t *init, double *out, double *parts, uint32_t *hist)
{
    for (int t = 0; t < T; t++)
        out[t] = s6_tensor(v + off[t], coff[t] >= 0 ? cols + coff[t] : 0, (long)(off[t + 1] - off[t]), a0[t], P, init,
                           parts, hist);
}

/* grouped: tensor t uses init + ig[t] * isz (per group initial counts) and accumulates into hist + hg[t] * hsz */
void s6_all_grouped(const int32_t *v, const uint8_t *cols, const int64_t *off, const int64_t *coff, const int32_t *a0,
                    int T, const sparams *P, const uint16_t *init, const int32_t *ig, long isz, double *out,
                    double *parts, uint32_t *hist, const int32_t *hg, long hsz)
{
    for (int t = 0; t < T; t++)
        out[t] = s6_tensor(v + off[t], coff[t] >= 0 ? cols + coff[t] : 0, (long)(off[t + 1] - off[t]), a0[t], P,
                           init + ig[t] * isz, parts, hist ? hist + hg[t] * hsz : 0);
}
