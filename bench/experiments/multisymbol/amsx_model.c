#include "amsx.h"
#include "amsx_info.h"
#if defined(ALPHA) && ALPHA
#include ALPHA_H   /* amsx.h, step 6: amsx_info[NSYM], amsx_symtab[256] */
#endif
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
#if defined(INCVAR) && INCVAR
#ifndef INC0
#define INC0 16
#endif
uint16_t amsx_inc = INC0;   /* amsx.h, step 6 (INC0: the start value, for step6_mcu.py) */
#endif
#if defined(LIMITVAR) && LIMITVAR
#ifndef LIMIT0
#define LIMIT0 32768
#endif
uint16_t amsx_limit = LIMIT0;   /* amsx.h, step 6 */
#endif
#if CTXMAP == 2
#include "step6_ctxtab.h"   /* amsx.h, step 6 */
#endif
#if defined(INITTAB) && INITTAB
#include INITTAB_H   /* amsx_init_cnt[NCTX][NSYM8], amsx_init_sym[NCTX][NSYM8] */
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
#elif defined(INITTAB) && INITTAB   /* amsx.h, step 6: trained initial counts, entries sorted; the escape last, count 1 */
        unsigned sum = 0;
        for (int i = 0; i < NSYM8; i++) { m->cnt[i] = amsx_init_cnt[c][i]; m->sym[i] = amsx_init_sym[c][i]; sum += m->cnt[i]; }
#if ESC
        m->cnt[NSYM8] = 1; m->sym[NSYM8] = NSYM8; sum++;
#endif
        m->tot = sum;
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
#if ESC == 2 || ESC == 3
    for (int i = 0; i < NESC; i++) s->ecnt[i] = C0;
    s->etot = C0 * NESC;
#endif
#if ESC == 3
    for (int i = 0; i < NESC; i++) s->esym[i] = i;
#endif
}
