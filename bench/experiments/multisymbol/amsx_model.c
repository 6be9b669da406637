#include "amsx.h"
#include "amsx_info.h"
#if !POW2
void amsx_halve(amsx_model *m)   /* encoder and decoder alike, when a table's total exceeds LIMIT */
{
    unsigned tot = 0;
    for (int i = 0; i < NSYM; i++) { m->cnt[i] = (m->cnt[i] + 1) >> 1; tot += m->cnt[i]; }
    m->tot = tot;
}
#endif
#if POW2
void amsx_decay(amsx_model *m)
{
    unsigned sh = m->sh, freed = 0;
    do {
        for (int i = 0; i < NSYM; i++) { unsigned d = m->cnt[i] >> sh; m->cnt[i] -= d; freed += d; }
        m->tot += freed;
    } while ((m->tot >> LOG2R) == 0);
    m->sh = sh < SHMAX ? sh + 1 : SHMAX;
    m->inc = m->tot >> LOG2R;
    m->left = 1 << LOG2R;
}
#endif
void amsx_init(amsx_state *s)
{
    for (int c = 0; c < NCTX; c++) {
        amsx_model *m = &s->m[c];
#if POW2
        unsigned f = ((1u << TB) - ESC) / NSYM8, sum = 0;
        for (int i = 0; i < NSYM; i++) { m->cnt[i] = i < NSYM8 ? f : 1; m->sym[i] = i; sum += m->cnt[i]; }
        m->tot = (1u << TB) - sum;
        m->sh = SH0; m->inc = 0;
        amsx_decay(m);
#else
        unsigned sum = 0;
        for (int i = 0; i < NSYM; i++) { m->cnt[i] = i < NSYM8 ? C0 : 1; m->sym[i] = i; sum += m->cnt[i]; }
        m->tot = sum;
#endif
    }
#if SIGN == 1
    for (int i = 0; i < 12; i++) s->sgn[i][0] = s->sgn[i][1] = SC0;
#elif SIGN == 2
    for (int i = 0; i < 12; i++) s->sgp[i] = 2048;
#endif
#if ESC == 2
    for (int i = 0; i < NESC; i++) s->ecnt[i] = C0;
    s->etot = C0 * NESC;
#endif
}
