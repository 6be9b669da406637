/* cm.c: a context-mixing model of int8 weight levels, as a measurement tool (ideal code length).

   Reads the .lev files written by prep.py and prints, per file, the ideal code length
   sum(-log2 p(actual bin)) of the levels in coding order, every probability computed causally
   (from values already coded) before the bin's updates. Probabilities are clamped to
   [2^-16, 1 - 2^-16], as a 16-bit binary arithmetic coder would need.

   Binarization of a level v, m = |v| (all bins modelled, no bypass):
     node 0      m > 0 ?
     nodes 1..6  unary bitlen(m) > b ?  for b = 1..6 (bitlen 1..7)
     nodes 7..126 the bitlen(m) - 1 bits of m below its MSB, MSB first, as a binary tree per bitlen
     node 127    sign (after the magnitude)
   Each node splits an interval [lo, hi] of magnitudes at mid: bin = 1 iff m >= mid.

   Per bin: 14 adaptive counters (node x one context each), 10 parametric inputs (discretised
   Laplace and Gaussian for five causal scale estimates), 6 "centred" Laplace inputs (around the
   level 1, 2 and 3 rows back, the kernel tap left / up, and the low-rank row prediction), three
   logistic mixers with different weight-set selectors, a final mixer and two APM/SSE stages.
   See README.md.

   usage: cm [-c] [-v] [-x MASK] [-l RATE] [-n LIMIT] [-r LAMBDA] FILE.lev...
     -c        carry model state from tensor to tensor within a file (default: reset per tensor)
     -x MASK   ablation: switch off input groups (bits, see enum G_* below)
     -l RATE   mixer learning rate (0.004); -n LIMIT counter count limit (255)
     -r LAMBDA ridge parameter of the low-rank predictor (0.25); rank LRK at compile time (32)
     -v        per-tensor lines */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { G_ORDER0, G_RUNACT, G_PREV, G_ROWBACK, G_SLICE, G_COLF, G_INPOS, G_COLEWMA, G_KERNEL, G_ROWMAX,
       G_ROWBACK3, G_HASH, G_APM, G_PARAM, G_CENTRED, G_MIX23, G_LOWRANK, NGROUPS };

#define NNODE 128
#define SIGN_NODE 127
#define NCLS 14
#define NCTR 14
#define SLOTS 4096
#define NSC 5                       /* scale estimates */
#define NCEN 6                      /* centred predictors */
#define NIN (NCTR + 2 * NSC + NCEN + 1)
#define NSCALE 256                  /* scale grid of the parametric tables: 2^(k/16 - 6) */

static double GL[NSCALE][129], GG[NSCALE][129]; /* folded CDF P(|x| <= m - 1), index m = 0..128 */
static int node_lo[NNODE], node_mid[NNODE], node_hi[NNODE], node_cls[NNODE];
static unsigned mask_off; static int carry; static double LR = 0.004; static int LIMIT = 255;
static int verbose;

/* ------------------------------------------------------------------ helpers */
static inline double clampd(double x, double a, double b) { return x < a ? a : x > b ? b : x; }
static float ST[4097];                      /* stretch on a 1/4096 grid, interpolated */
static inline double stretch(double p) {
    double x = clampd(p, 1e-5, 1 - 1e-5) * 4096; int j = (int)x; if (j > 4095) j = 4095;
    return ST[j] + (ST[j + 1] - ST[j]) * (x - j);
}
static inline double squash(double x) { x = clampd(x, -30, 30); return 1 / (1 + exp(-x)); }
static int QM[128];
static inline int qm(int m) { return QM[m < 0 ? -m : m > 127 ? 127 : m]; }
static inline int qs(double s, int res, int maxq) { /* log scale bucket, res per octave */
    int q = (int)floor(res * log2(s + 0.125) + 3 * res);
    return q < 0 ? 0 : q > maxq ? maxq : q;
}
static inline int sidx(double s) { int k = (int)lrint(16 * (log2(s) + 6)); return k < 0 ? 0 : k >= NSCALE ? NSCALE - 1 : k; }
static inline int sgn3(int v) { return v > 0 ? 2 : v < 0 ? 1 : 0; }

#define LD 254
static double LC[NSCALE][2 * LD + 1];        /* Laplace CDF at d + 1/2, d = -254..254, scale grid */
static void init_tables(void) {
    for (int j = 0; j <= 4096; j++) { double p = clampd(j / 4096.0, 1e-5, 1 - 1e-5); ST[j] = (float)log(p / (1 - p)); }
    for (int k = 0; k < NSCALE; k++) {
        double b = exp2(k / 16.0 - 6);
        for (int d = -LD; d <= LD; d++) { double t = d + 0.5; LC[k][d + LD] = t < 0 ? 0.5 * exp(t / b) : 1 - 0.5 * exp(-t / b); }
    }
    for (int k = 0; k < NSCALE; k++) {
        double s = exp2(k / 16.0 - 6);
        double sig = s * sqrt(M_PI / 2);     /* Gaussian with E|x| = s */
        for (int m = 0; m <= 128; m++) {
            double t = m - 0.5;
            GL[k][m] = m == 0 ? 0 : 1 - exp(-t / s);
            GG[k][m] = m == 0 ? 0 : erf(t / (sig * sqrt(2)));
        }
    }
    node_lo[0] = 0; node_mid[0] = 1; node_hi[0] = 127; node_cls[0] = 0;
    for (int b = 1; b <= 6; b++) { node_lo[b] = 1 << (b - 1); node_mid[b] = 1 << b; node_hi[b] = 127; node_cls[b] = b; }
    int id = 7;
    for (int b = 2; b <= 7; b++) {           /* tree over [2^(b-1), 2^b - 1], heap order */
        int lo0 = 1 << (b - 1), n = b - 1;
        for (int d = 0; d < n; d++)
            for (int pre = 0; pre < (1 << d); pre++, id++) {
                int w = 1 << (n - d);
                node_lo[id] = lo0 + pre * w; node_mid[id] = node_lo[id] + w / 2;
                node_hi[id] = node_lo[id] + w - 1; node_cls[id] = 5 + b;
                if (node_hi[id] > 127) node_hi[id] = 127;
            }
    }
    if (id != 127) { fprintf(stderr, "node count %d\n", id); exit(1); }
    node_lo[SIGN_NODE] = node_mid[SIGN_NODE] = node_hi[SIGN_NODE] = 0; node_cls[SIGN_NODE] = 13;
    static const int edges[] = {0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128};
    for (int m = 0, q = 0; m < 128; m++) { while (m >= edges[q + 1]) q++; QM[m] = q; }
}
/* the base of the mantissa tree of bitlen b: heap index 1 of its nodes */
static int tree_base[8];

/* ------------------------------------------------------------------ model state */
typedef struct { float p; uint16_t n, ep; } Ctr;
static Ctr *ctr;                             /* [NCTR][SLOTS][NNODE] */
static uint16_t epoch;
#define NSET1 NNODE
#define NSET2 (NCLS * 16)
#define NSET3 (NCLS * 4 * 4)
static float W1[NSET1][NIN], W2[NSET2][NIN], W3[NSET3][NIN], WF[NCLS][4];
#define APMB 33
static float A1[NNODE * 16][APMB], A2[NNODE * 16][APMB];

static void reset_model(void) {
    epoch++;
    for (int s = 0; s < NSET1; s++) for (int i = 0; i < NIN; i++) W1[s][i] = 0.15f;
    for (int s = 0; s < NSET2; s++) for (int i = 0; i < NIN; i++) W2[s][i] = 0.15f;
    for (int s = 0; s < NSET3; s++) for (int i = 0; i < NIN; i++) W3[s][i] = 0.15f;
    for (int s = 0; s < NCLS; s++) { WF[s][0] = WF[s][1] = WF[s][2] = 0.33f; WF[s][3] = 0; }
    for (int s = 0; s < NNODE * 16; s++)
        for (int j = 0; j < APMB; j++) A1[s][j] = A2[s][j] = (float)squash((j - 16) / 2.0);
}

static inline Ctr *ctr_at(int t, unsigned ctx, int node) {
    unsigned slot = ctx < SLOTS ? ctx : (ctx * 2654435761u) >> 20;
    Ctr *c = &ctr[((size_t)t * SLOTS + slot) * NNODE + node];
    if (c->ep != epoch) { c->p = 0.5f; c->n = 0; c->ep = epoch; }
    return c;
}
static inline void ctr_update(Ctr *c, int bit) {
    c->p += (bit - c->p) / (c->n + 1.5f);
    if (c->n < LIMIT) c->n++;
}
static inline double apm_p(float *t, double st, int bit, int update, double rate) {
    double x = clampd((st + 8) * 2, 0, APMB - 1.001);
    int j = (int)x; double w = x - j;
    double p = t[j] * (1 - w) + t[j + 1] * w;
    if (update) { t[j] += (float)((bit - t[j]) * rate * (1 - w)); t[j + 1] += (float)((bit - t[j + 1]) * rate * w); }
    return p;
}

/* ------------------------------------------------------------------ per tensor */
typedef struct { int n, O, sO, I, sI, Y, sY, X, sX, kind; } Geo;

/* state carried through a tensor */
typedef struct {
    double act;                       /* EWMA of |x| in coding order, decay 1/8 */
    double *ssum, *scnt, *smax, *ssgn;/* per output channel: sum |x|, count, max |x|, sum of signs */
    double *fcol_s, *fcol_n, *cew, *csg; /* per column: normalised sum, count; EWMA |x|; EWMA sign */
    double *fin_s, *fin_n, *fpos_s, *fpos_n;
    double gsum, gcnt, prior0;
    double cb[NCEN];                  /* EWMA |x - mu| per centred predictor */
} TS;

static double ctx_in[NIN];
static int in_on[NIN];

/* code one bin: returns cost in bits, updates everything. ctxs: counter contexts; sc: scale indices;
   cen: centred probabilities P(bin=1) or <0 if not available */
static double code_bin(int node, int bit, const unsigned *ctxs, const int *sidx5, const double *cenp,
                       int sel2, int sel3, int a1ctx, int a2ctx) {
    double *x = ctx_in; int k = 0;
    Ctr *cs[NCTR];
    for (int t = 0; t < NCTR; t++) { cs[t] = ctr_at(t, ctxs[t], node); x[k++] = stretch(cs[t]->p); }
    for (int e = 0; e < NSC; e++) {
        if (node == SIGN_NODE || !in_on[k]) { x[k++] = 0; x[k++] = 0; continue; }
        int lo = node_lo[node], mid = node_mid[node], hi = node_hi[node];
        const double *gl = GL[sidx5[e]], *gg = GG[sidx5[e]];
        double d = gl[hi + 1] - gl[lo], n1 = gl[hi + 1] - gl[mid];
        x[k++] = d > 1e-300 ? stretch(n1 / d) : 0;
        d = gg[hi + 1] - gg[lo]; n1 = gg[hi + 1] - gg[mid];
        x[k++] = d > 1e-300 ? stretch(n1 / d) : 0;
    }
    for (int c = 0; c < NCEN; c++) x[k++] = cenp[c] >= 0 ? stretch(cenp[c]) : 0;
    x[k++] = 0.3;
    for (int i = 0; i < NIN; i++) if (!in_on[i]) x[i] = 0;
    float *w1 = W1[node], *w2 = W2[sel2], *w3 = W3[sel3], *wf = WF[node_cls[node]];
    double d1 = 0, d2 = 0, d3 = 0;
    for (int i = 0; i < NIN; i++) { d1 += w1[i] * x[i]; d2 += w2[i] * x[i]; d3 += w3[i] * x[i]; }
    d1 = clampd(d1, -12, 12); d2 = clampd(d2, -12, 12); d3 = clampd(d3, -12, 12);
    int m23 = !(mask_off >> G_MIX23 & 1);
    double df = m23 ? wf[0] * d1 + wf[1] * d2 + wf[2] * d3 + wf[3] * 0.3 : d1;
    double pm = squash(df);
    double p = pm;
    if (!(mask_off >> G_APM & 1)) {
        double pa1 = apm_p(A1[a1ctx], df, bit, 1, 0.02), pa2 = apm_p(A2[a2ctx], df, bit, 1, 0.02);
        p = 0.5 * pm + 0.25 * pa1 + 0.25 * pa2;
    }
    p = clampd(p, 1.0 / 65536, 1 - 1.0 / 65536);
    double cost = -log2(bit ? p : 1 - p);
    /* updates */
    double ef = bit - pm, e1 = bit - squash(d1), e2 = bit - squash(d2), e3 = bit - squash(d3);
    for (int i = 0; i < NIN; i++) {
        w1[i] += (float)(LR * e1 * x[i]); w2[i] += (float)(LR * e2 * x[i]); w3[i] += (float)(LR * e3 * x[i]);
    }
    if (m23) { wf[0] += (float)(LR * ef * d1); wf[1] += (float)(LR * ef * d2); wf[2] += (float)(LR * ef * d3); wf[3] += (float)(LR * ef * 0.3); }
    for (int t = 0; t < NCTR; t++) ctr_update(cs[t], bit);
    return cost;
}

/* centred Laplace, integer mean mu, scale on the grid (row lc of LC): P(x in [a, c]) */
static inline double lap_mass(int a, int c, int mu, const double *lc) {
    return lc[c - mu + LD] - lc[a - 1 - mu + LD];
}
static inline double lap_abs_mass(int lo, int hi, int mu, const double *lc) { /* P(|x| in [lo, hi]) */
    if (lo == 0) return lap_mass(-hi, hi, mu, lc);
    return lap_mass(lo, hi, mu, lc) + lap_mass(-hi, -lo, mu, lc);
}
static double cen_prob(int node, int m, int mu, const double *b) {
    if (node == SIGN_NODE) {
        double pp = lap_mass(m, m, mu, b), pn = lap_mass(-m, -m, mu, b);
        return pp + pn > 1e-300 ? pn / (pp + pn) : 0.5;  /* bin = 1: negative */
    }
    double d = lap_abs_mass(node_lo[node], node_hi[node], mu, b);
    double n1 = lap_abs_mass(node_mid[node], node_hi[node], mu, b);
    return d > 1e-300 ? n1 / d : 0.5;
}


/* ------------------------------------------------------------------ low-rank row predictor
   For tensors whose rows (output channels) are contiguous: the top-K eigenvectors of the Gram
   matrix of the previous rows (subspace iteration, warm started, every few rows) form a basis;
   the current row's coefficients on that basis are fitted by ridge regression on the row's
   already coded prefix, and predict the next element. */
#ifndef LRK
#define LRK 32
#endif
#define LRMAXC 2304
static double LR_LAMBDA = 0.25;
typedef struct {
    int on, C, k;
    double *G, *Q, *T;                /* C x C Gram, K x C basis (rows), scratch */
    double A[LRK][LRK], bv[LRK], beta[LRK], L[LRK][LRK];
    double eb[4];                     /* EWMA |x - prediction| by prefix class */
} LowRank;

static void lr_init(LowRank *r, const Geo *g, int C) {
    memset(r, 0, sizeof *r);
    r->on = g->kind != 1 && C >= 8 && C <= LRMAXC && g->O >= 8 && !(mask_off >> G_LOWRANK & 1);
    if (!r->on) return;
    r->C = C;
    r->G = calloc((size_t)C * C, 8); r->Q = malloc((size_t)LRK * C * 8); r->T = malloc((size_t)LRK * C * 8);
    uint32_t h = 12345;
    for (int i = 0; i < LRK * C; i++) { h = h * 1664525u + 1013904223u; r->Q[i] = (h >> 8) / 16777216.0 - 0.5; }
}
static void lr_free(LowRank *r) { if (r->on) { free(r->G); free(r->Q); free(r->T); } }
static void orthonormalise(double *Q, int k, int C) {
    for (int a = 0; a < k; a++) {
        double *qa = Q + (size_t)a * C;
        for (int b = 0; b < a; b++) {
            double *qb = Q + (size_t)b * C, d = 0;
            for (int j = 0; j < C; j++) d += qa[j] * qb[j];
            for (int j = 0; j < C; j++) qa[j] -= d * qb[j];
        }
        double n = 0; for (int j = 0; j < C; j++) n += qa[j] * qa[j];
        n = n > 1e-30 ? 1 / sqrt(n) : 0; for (int j = 0; j < C; j++) qa[j] *= n;
    }
}
static void lr_row_start(LowRank *r, int row) {
    if (!r->on) return;
    int C = r->C;
    r->k = row < LRK ? row : LRK;
    if (row >= 1 && (row <= 16 || (row <= 64 && row % 4 == 0) || row % 8 == 0)) {
        for (int it = 0; it < 2; it++) {
            orthonormalise(r->Q, LRK, C);
            for (int a = 0; a < LRK; a++)
                for (int i = 0; i < C; i++) {
                    const double *gi = r->G + (size_t)i * C, *qa = r->Q + (size_t)a * C; double d = 0;
                    for (int j = 0; j < C; j++) d += gi[j] * qa[j];
                    r->T[(size_t)a * C + i] = d;
                }
            memcpy(r->Q, r->T, (size_t)LRK * C * 8);
        }
        orthonormalise(r->Q, LRK, C);
    }
    memset(r->A, 0, sizeof r->A); memset(r->bv, 0, sizeof r->bv);
    for (int a = 0; a < LRK; a++) r->A[a][a] = LR_LAMBDA;
}
static inline void lr_feat(const LowRank *r, int j, double *f) {
    double sc = sqrt((double)r->C);
    for (int a = 0; a < r->k; a++) f[a] = r->Q[(size_t)a * r->C + j] * sc;
}
static double lr_predict(LowRank *r, int j) {     /* Cholesky solve of A beta = bv */
    int k = r->k; if (!k) return 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b <= a; b++) {
            double sum = r->A[a][b];
            for (int c = 0; c < b; c++) sum -= r->L[a][c] * r->L[b][c];
            r->L[a][b] = a == b ? sqrt(sum > 1e-12 ? sum : 1e-12) : sum / r->L[b][b];
        }
    double y[LRK];
    for (int a = 0; a < k; a++) { double sum = r->bv[a]; for (int c = 0; c < a; c++) sum -= r->L[a][c] * y[c]; y[a] = sum / r->L[a][a]; }
    for (int a = k - 1; a >= 0; a--) { double sum = y[a]; for (int c = a + 1; c < k; c++) sum -= r->L[c][a] * r->beta[c]; r->beta[a] = sum / r->L[a][a]; }
    double f[LRK], mu = 0; lr_feat(r, j, f);
    for (int a = 0; a < k; a++) mu += f[a] * r->beta[a];
    return mu;
}
static void lr_update(LowRank *r, int j, int x) {
    double f[LRK]; int k = r->k; lr_feat(r, j, f);
    for (int a = 0; a < k; a++) { r->bv[a] += f[a] * x; for (int b = 0; b < k; b++) r->A[a][b] += f[a] * f[b]; }
}
static void lr_row_end(LowRank *r, const int8_t *row) {
    int C = r->C;
    for (int i = 0; i < C; i++) { if (!row[i]) continue; double *gi = r->G + (size_t)i * C; double xi = row[i];
        for (int j = 0; j < C; j++) gi[j] += xi * row[j]; }
}
static inline int lr_cls(int j) { return j < 16 ? 0 : j < 48 ? 1 : j < 128 ? 2 : 3; }

static double code_tensor(const Geo *g, const int8_t *v) {
    TS s; memset(&s, 0, sizeof s);
    int C = g->I * g->Y * g->X, P = g->Y * g->X;
    s.ssum = calloc(g->O, 8); s.scnt = calloc(g->O, 8); s.smax = calloc(g->O, 8); s.ssgn = calloc(g->O, 8);
    s.fcol_s = calloc(C, 8); s.fcol_n = calloc(C, 8); s.cew = calloc(C, 8); s.csg = calloc(C, 8);
    s.fin_s = calloc(g->I, 8); s.fin_n = calloc(g->I, 8); s.fpos_s = calloc(P, 8); s.fpos_n = calloc(P, 8);
    for (int j = 0; j < C; j++) s.cew[j] = -1;
    s.prior0 = 127 / sqrt(2 * log(C > 2 ? C : 2)) * 0.8;
    s.act = s.prior0;
    for (int c = 0; c < NCEN; c++) s.cb[c] = s.prior0;
    double bits = 0;
    LowRank lr; lr_init(&lr, g, C);
    for (int c = 0; c < 4; c++) lr.eb[c] = s.prior0 / 2;
    for (int i = 0; i < g->n; i++) {
        int cO = g->sO ? (i / g->sO) % g->O : 0, cI = g->sI ? (i / g->sI) % g->I : 0;
        int cY = g->sY ? (i / g->sY) % g->Y : 0, cX = g->sX ? (i / g->sX) % g->X : 0;
        int col = (cI * g->Y + cY) * g->X + cX, pos = cY * g->X + cX;
        int L1 = i > 0 ? v[i - 1] : 0, L2 = i > 1 ? v[i - 2] : 0;
        int hO = cO > 0, hO2 = cO > 1, hO3 = cO > 2, hI = cI > 0, hX = cX > 0, hY = cY > 0;
        int NO = hO ? v[i - g->sO] : 0, NO2 = hO2 ? v[i - 2 * g->sO] : 0, NO3 = hO3 ? v[i - 3 * g->sO] : 0;
        int NI = hI ? v[i - g->sI] : 0, NX = hX ? v[i - g->sX] : 0, NY = hY ? v[i - g->sY] : 0;
        int j = i - cO * C, hL = 0; double lmu = 0;
        if (lr.on && g->sO == C) {
            if (j == 0) lr_row_start(&lr, cO);
            if (lr.k >= 1) { hL = 1; lmu = lr_predict(&lr, j); }
        }
        int LP = (int)lrint(clampd(lmu, -127, 127)); double lb = lr.eb[lr_cls(j)];
        /* scale estimates */
        double gmean = s.gcnt > 0 ? (s.gsum + 4 * s.prior0) / (s.gcnt + 4) : s.prior0;
        double E2 = (s.ssum[cO] + 4 * gmean) / (s.scnt[cO] + 4);
        double fcol = (s.fcol_s[col] + 2) / (s.fcol_n[col] + 2);
        double fin = (s.fin_s[cI] + 2) / (s.fin_n[cI] + 2), fpos = (s.fpos_s[pos] + 2) / (s.fpos_n[pos] + 2);
        double E1 = s.act, E3 = E2 * fcol, E4 = E2 * fin * fpos, E5 = s.cew[col] >= 0 ? s.cew[col] : E2;
        double Es[NSC] = {E1, E2, E3, E4, E5};
        int si[NSC]; for (int e = 0; e < NSC; e++) si[e] = sidx(Es[e] > 0.02 ? Es[e] : 0.02);
        double smax = s.smax[cO];
        int done4 = (int)(4.0 * (s.scnt[cO]) / (C > 0 ? C : 1)); if (done4 > 3) done4 = 3;
        int seen127 = smax >= 127;
        /* counter contexts for magnitude bins */
        unsigned cx[NCTR];
        cx[0] = 0;
        cx[1] = qs(E1, 4, 63);
        cx[2] = qm(L1) * 16 + qm(L2);
        cx[3] = hO ? 1 + qm(NO) * 32 + qs(E2, 2, 31) : 0;
        cx[4] = qs(E3, 4, 63);
        cx[5] = qs(E4, 4, 63);
        cx[6] = qs(E5, 4, 63);
        cx[7] = (hX ? 1 + qm(NX) : 0) * 256 + (hY ? 1 + qm(NY) : 0) * 16 + (hI ? 1 + qm(NI) : 0);
        cx[8] = (qm((int)smax) * 4 + done4) * 2 + seen127;
        cx[9] = qs(E2, 2, 31) * 32 + qs(E5, 2, 31);
        cx[10] = hO3 ? 1 + qm(NO3) * 16 + qm(NO) : 0;
        cx[11] = 4096 + ((qs(E1, 2, 31) * 16 + qm(L1)) * 32 + qs(E3, 2, 31)) * 7;
        cx[12] = g->kind * 16 + qs(C, 1, 15);
        cx[13] = hL ? 1 + qm(LP) * 32 + qs(lb, 2, 31) : 0;
        int ctr_group[NCTR] = {G_ORDER0, G_RUNACT, G_PREV, G_ROWBACK, G_COLF, G_INPOS, G_COLEWMA, G_KERNEL,
                               G_ROWMAX, G_COLEWMA, G_ROWBACK3, G_HASH, G_ORDER0, G_LOWRANK};
        int sc_group[NSC] = {G_RUNACT, G_SLICE, G_COLF, G_INPOS, G_COLEWMA};
        int cen_group[NCEN] = {G_ROWBACK, G_ROWBACK3, G_ROWBACK3, G_KERNEL, G_KERNEL, G_LOWRANK};
        for (int t = 0, k = 0; t < NCTR; t++) in_on[k++] = !(mask_off >> ctr_group[t] & 1);
        for (int e = 0, k = NCTR; e < NSC; e++, k += 2) in_on[k] = in_on[k + 1] = !(mask_off >> sc_group[e] & 1) && !(mask_off >> G_PARAM & 1);
        for (int c = 0, k = NCTR + 2 * NSC; c < NCEN; c++, k++) in_on[k] = !(mask_off >> cen_group[c] & 1) && !(mask_off >> G_CENTRED & 1);
        in_on[NIN - 1] = 1;
        int cav[NCEN] = {hO, hO2, hO3, hX, hY, hL};
        int mu[NCEN] = {NO, NO2, NO3, NX, NY, LP};
    const double *lcb[NCEN];
    for (int c = 0; c < NCEN; c++) { cav[c] = cav[c] && in_on[NCTR + 2 * NSC + c]; lcb[c] = LC[sidx(s.cb[c] > 0.3 ? s.cb[c] : 0.3)]; }
    lcb[5] = LC[sidx(lb > 0.3 ? lb : 0.3)];
        int q3 = qs(E3, 1, 15), avail = hO * 2 + (hX || hY);
        int a2c = qm(L1);
        /* magnitude */
        int val = v[i], m = val < 0 ? -val : val;
        int path[16], bitsv[16], np = 0;
        path[np] = 0; bitsv[np++] = m > 0;
        if (m > 0) {
            int b = 0; while ((1 << b) <= m) b++;   /* bitlen */
            for (int u = 1; u <= 6; u++) { path[np] = u; bitsv[np++] = b > u; if (b <= u) break; }
            for (int d = 0, h = 1; d < b - 1; d++) {
                int bit = m >> (b - 2 - d) & 1;
                path[np] = tree_base[b] + h - 1; bitsv[np++] = bit; h = 2 * h + bit;
            }
        }
        for (int j = 0; j < np; j++) {
            int node = path[j]; double cp[NCEN];
            for (int c = 0; c < NCEN; c++) cp[c] = cav[c] ? cen_prob(node, 0, mu[c], lcb[c]) : -1;
            bits += code_bin(node, bitsv[j], cx, si, cp, node_cls[node] * 16 + q3,
                             (node_cls[node] * 4 + g->kind) * 4 + avail, node * 16 + qs(E3, 1, 15), node * 16 + a2c);
        }
        if (m > 0) {
            unsigned sx[NCTR]; int qmm = qm(m);
            sx[0] = qmm;
            sx[1] = sgn3(L1) * 16 + qmm;
            sx[2] = (sgn3(L1) * 3 + sgn3(L2)) * 16 + qmm;
            sx[3] = hO ? 1 + (sgn3(NO) * 16 + qm(NO)) * 16 + qmm : 0;
            sx[4] = (int)clampd(4 + 4 * s.ssgn[cO] / (s.scnt[cO] + 2), 0, 8) * 16 + qmm;
            sx[5] = (s.csg[col] > 0.3 ? 2 : s.csg[col] < -0.3 ? 1 : 0) * 16 + qmm;
            sx[6] = (int)clampd(4 + 4 * s.csg[col], 0, 8) * 16 + qmm;
            sx[7] = ((hX ? sgn3(NX) + 1 : 0) * 4 + (hY ? sgn3(NY) + 1 : 0)) * 4 + (hI ? sgn3(NI) + 1 : 0);
            sx[8] = seen127 * 16 + qmm;
            sx[9] = (hO2 ? 1 + sgn3(NO2) : 0) * 4 + (hO ? 1 + sgn3(NO) : 0);
            sx[10] = hO3 ? 1 + ((sgn3(NO3) * 16 + qm(NO3)) * 3 + sgn3(NO)) * 16 + qmm : 0;
            sx[11] = 4096 + (((sgn3(L1) * 3 + sgn3(NO)) * 4 + (hX ? sgn3(NX) + 1 : 0)) * 16 + qmm) * 7;
            sx[12] = g->kind * 16 + qmm;
            sx[13] = hL ? 1 + (sgn3(LP) * 16 + (int)clampd(8 * fabs(lmu) / (lb + 0.5), 0, 15)) * 16 + qmm : 0;
            double cp[NCEN];
            for (int c = 0; c < NCEN; c++) cp[c] = cav[c] ? cen_prob(SIGN_NODE, m, mu[c], lcb[c]) : -1;
            bits += code_bin(SIGN_NODE, val < 0, sx, si, cp, node_cls[SIGN_NODE] * 16 + qmm,
                             (node_cls[SIGN_NODE] * 4 + g->kind) * 4 + avail, SIGN_NODE * 16 + qmm,
                             SIGN_NODE * 16 + sgn3(L1) * 3 + sgn3(NO));
        }
        /* state updates */
        s.act += (m - s.act) / 8;
        double rowest = E2 > 0.05 ? E2 : 0.05;
        s.ssum[cO] += m; s.scnt[cO] += 1; if (m > s.smax[cO]) s.smax[cO] = m; s.ssgn[cO] += (val > 0) - (val < 0);
        s.fcol_s[col] += m / rowest; s.fcol_n[col] += 1;
        s.fin_s[cI] += m / rowest; s.fin_n[cI] += 1;
        s.fpos_s[pos] += m / rowest; s.fpos_n[pos] += 1;
        s.cew[col] = s.cew[col] < 0 ? m : s.cew[col] + (m - s.cew[col]) / 4;
        s.csg[col] += (((val > 0) - (val < 0)) - s.csg[col]) / 4;
        s.gsum += m; s.gcnt += 1;
        for (int c = 0; c < NCEN; c++) if (cav[c]) s.cb[c] += (fabs(val - mu[c]) - s.cb[c]) / 16;
        if (hL) lr.eb[lr_cls(j)] += (fabs(val - lmu) - lr.eb[lr_cls(j)]) / 16;
        if (lr.on && g->sO == C) { if (lr.k) lr_update(&lr, j, val); if (j == C - 1) lr_row_end(&lr, v + i - j); }
    }
    free(s.ssum); free(s.scnt); free(s.smax); free(s.ssgn); free(s.fcol_s); free(s.fcol_n); free(s.cew);
    lr_free(&lr);
    free(s.csg); free(s.fin_s); free(s.fin_n); free(s.fpos_s); free(s.fpos_n);
    return bits;
}

int main(int argc, char **argv) {
    int a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (!strcmp(argv[a], "-c")) carry = 1;
        else if (!strcmp(argv[a], "-v")) verbose = 1;
        else if (!strcmp(argv[a], "-x")) mask_off = (unsigned)strtoul(argv[++a], 0, 0);
        else if (!strcmp(argv[a], "-l")) LR = atof(argv[++a]);
        else if (!strcmp(argv[a], "-n")) LIMIT = atoi(argv[++a]);
        else if (!strcmp(argv[a], "-r")) LR_LAMBDA = atof(argv[++a]);
        else { fprintf(stderr, "unknown option %s\n", argv[a]); return 2; }
    }
    init_tables();
    for (int b = 2, id = 7; b <= 7; b++) { tree_base[b] = id; id += (1 << (b - 1)) - 1; }
    ctr = calloc((size_t)NCTR * SLOTS * NNODE, sizeof(Ctr));
    double tot_bits = 0, tot_n = 0; clock_t t0 = clock();
    for (; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb"); if (!f) { perror(argv[a]); return 1; }
        double fbits = 0, fn = 0; int nt = 0;
        reset_model();
        Geo g;
        while (fread(&g, sizeof g, 1, f) == 1) {
            int8_t *v = malloc(g.n);
            if (fread(v, 1, g.n, f) != (size_t)g.n) { fprintf(stderr, "short read\n"); return 1; }
            if (!carry && nt > 0) reset_model();
            double b = code_tensor(&g, v);
            if (verbose) printf("  tensor %d n=%d O=%d I=%d Y=%d X=%d kind=%d  %.4f bpw\n", nt, g.n, g.O, g.I, g.Y, g.X, g.kind, b / g.n);
            fbits += b; fn += g.n; nt++; free(v);
        }
        fclose(f);
        printf("%s %.0f %.1f %.5f\n", argv[a], fn, fbits, fbits / fn);
        tot_bits += fbits; tot_n += fn;
    }
    double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("TOTAL %.0f %.1f %.5f  %.0f ns/weight\n", tot_n, tot_bits, tot_bits / tot_n, 1e9 * sec / tot_n);
    return 0;
}
