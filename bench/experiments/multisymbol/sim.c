/* Ideal code length (sum of -log2 p) of adaptive multi-symbol models, per tensor. */
#include <stdint.h>
#include <math.h>
#include <string.h>

typedef struct {
    uint8_t ctx_tab[257];  /* context index by a */
    uint8_t k_tab[257];    /* Rice parameter k by a (min(a>>3,31)) */
    int nctx;
    int shift_d;    /* <0: no pre-shift; else s = max(k - shift_d, 0) low bits of m raw */
    int classmode;  /* 0: x = m>>s capped at Q (escape symbol Q, then EG0 raw of x-Q); 1: mantissa class of x with M bits */
    int Q, M;
    int signmode;   /* 0 raw, 1 one adaptive ctx, 2 prev-sign (3 ctx), 3 tinycabac's 12 ctx */
    int adapt;      /* 0 counts, 1 two count models averaged, 2 shift-CDF (2^15 total), rates r1 (r2: second speed, averaged) */
    int c0, inc, limit, inc2, limit2;
    int r1, r2;
    int ctx_bits;   /* unused */
} params;

#define MAXSYM 64
#define MAXCTX 64

static inline int bitlen(uint32_t m) { return m ? 32 - __builtin_clz(m) : 0; }

typedef struct { uint16_t fast, slow; } bin_ctx;
static double bin_cost(bin_ctx *c, int bin) {
    int p0 = (c->fast + c->slow) >> 1;
    double p = bin ? (32768 - p0) / 32768.0 : p0 / 32768.0;
    if (bin == 0) { c->fast += (32768 - c->fast) >> 5; c->slow += (32768 - c->slow) >> 8; }
    else { c->fast -= c->fast >> 5; c->slow -= c->slow >> 8; }
    return -log2(p);
}

/* symbol and raw bit count of magnitude m */
static int symbolize(const params *P, uint32_t m, int k, int *raw, int *nsym) {
    int s = P->shift_d < 0 ? 0 : (k - P->shift_d > 0 ? k - P->shift_d : 0);
    uint32_t x = m >> s;
    *raw = s;
    if (P->classmode == 0) {
        *nsym = P->Q + 1;
        if (x >= (uint32_t)P->Q) { int b = bitlen(x - P->Q + 1); *raw += 2 * b - 1; return P->Q; }
        return (int)x;
    } else {
        int M = P->M;
        *nsym = (1 << (M + 1)) + (8 - M - 1) * (1 << M);   /* int8 data: bitlen(x) <= 8 */
        if (x < (2u << M)) return (int)x;
        int b = bitlen(x);
        *raw += b - 1 - M;
        return (b - M) * (1 << M) + (int)(x >> (b - 1 - M)) - (1 << M);
    }
}

typedef struct {
    uint32_t c[MAXSYM], tot; uint32_t c2[MAXSYM], tot2;
    uint16_t f1[MAXSYM], f2[MAXSYM];
} model;

static void model_init(const params *P, model *md, int n) {
    memset(md, 0, sizeof *md);
    for (int i = 0; i < n; i++) { md->c[i] = P->c0; md->c2[i] = P->c0; }
    md->tot = md->tot2 = P->c0 * n;
    /* shift-CDF: uniform, total 32768 */
    for (int i = 0; i < n; i++) { md->f1[i] = md->f2[i] = 32768 / n; }
    int rem = 32768 - (32768 / n) * n;
    md->f1[0] += rem; md->f2[0] += rem;
}

static double model_code(const params *P, model *md, int n, int s) {
    double cost;
    if (P->adapt == 0) {
        cost = log2((double)md->tot) - log2((double)md->c[s]);
        md->c[s] += P->inc; md->tot += P->inc;
        if (md->tot > (uint32_t)P->limit) { md->tot = 0; for (int i = 0; i < n; i++) { md->c[i] = (md->c[i] + 1) >> 1; md->tot += md->c[i]; } }
    } else if (P->adapt == 1) {
        double p = 0.5 * md->c[s] / md->tot + 0.5 * md->c2[s] / md->tot2;
        cost = -log2(p);
        md->c[s] += P->inc; md->tot += P->inc;
        if (md->tot > (uint32_t)P->limit) { md->tot = 0; for (int i = 0; i < n; i++) { md->c[i] = (md->c[i] + 1) >> 1; md->tot += md->c[i]; } }
        md->c2[s] += P->inc2; md->tot2 += P->inc2;
        if (md->tot2 > (uint32_t)P->limit2) { md->tot2 = 0; for (int i = 0; i < n; i++) { md->c2[i] = (md->c2[i] + 1) >> 1; md->tot2 += md->c2[i]; } }
    } else {
        uint32_t f = P->r2 ? ((uint32_t)md->f1[s] + md->f2[s]) >> 1 : md->f1[s];
        cost = 15.0 - log2((double)f);
        /* move mass toward s: every other symbol loses f>>r, s gains the sum */
        uint32_t gain = 0;
        for (int i = 0; i < n; i++) if (i != s) { uint16_t d = md->f1[i] >> P->r1; md->f1[i] -= d; gain += d; }
        md->f1[s] += gain;
        if (P->r2) {
            gain = 0;
            for (int i = 0; i < n; i++) if (i != s) { uint16_t d = md->f2[i] >> P->r2; md->f2[i] -= d; gain += d; }
            md->f2[s] += gain;
        }
    }
    return cost;
}

/* v: values, cols: column activities or NULL, returns bits; stats: optional histogram of symbols/raw bits */
double sim_tensor(const int32_t *v, const uint8_t *cols, int n, int a0, const params *P, double *sign_bits, double *raw_bits) {
    static model md[MAXCTX];
    bin_ctx sc[12];
    for (int i = 0; i < 12; i++) sc[i].fast = sc[i].slow = 16384;
    int nsym, raw;
    symbolize(P, 0, 0, &raw, &nsym);
    for (int c = 0; c < P->nctx; c++) model_init(P, &md[c], nsym);
    int act = a0, prev = 0;
    double bits = 0, sb = 0, rb = 0;
    for (int i = 0; i < n; i++) {
        int a = cols ? (act + 3 * cols[i]) >> 2 : act;
        int k = P->k_tab[a], c = P->ctx_tab[a];
        int32_t val = v[i];
        uint32_t m = val < 0 ? 0u - (uint32_t)val : (uint32_t)val;
        int s = symbolize(P, m, k, &raw, &nsym);
        bits += model_code(P, &md[c], nsym, s);
        rb += raw;
        if (m) {
            int neg = val < 0; double cs;
            switch (P->signmode) {
            case 0: cs = 1; break;
            case 1: cs = bin_cost(&sc[0], neg); break;
            case 2: cs = bin_cost(&sc[prev], neg); break;
            default: { int bl = bitlen(m); cs = bin_cost(&sc[prev * 4 + (bl < 4 ? bl : 4) - 1], neg); }
            }
            sb += cs;
            prev = neg ? 1 : 2;
        }
        act = act - (act >> 3) + bitlen(m);
    }
    *sign_bits += sb; *raw_bits += rb;
    return bits + sb + rb;
}

/* all tensors: offsets[t]..offsets[t+1]; colsoff[t] < 0: no columns */
void sim_all(const int32_t *v, const uint8_t *cols, const int64_t *off, const int64_t *coff, const int32_t *a0, int T,
             const params *P, double *out, double *sign_bits, double *raw_bits) {
    for (int t = 0; t < T; t++)
        out[t] = sim_tensor(v + off[t], coff[t] >= 0 ? cols + coff[t] : 0, (int)(off[t + 1] - off[t]), a0[t], P, sign_bits, raw_bits);
}
