/* Replays a bin log (trace_bins.c) with every pair of adaptation rates of a
 * grid and prints, per context (a line) and pair (a column, fast-major), the
 * ideal code length in bits.  Contexts start from the format's table at each
 * tensor, as the decoder starts them (FORMAT 5.2); with a second argument
 * "carry", only at the first tensor, each later one starting where the
 * tensor before it left them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tc_model.h"

static const unsigned FAST[] = {3, 4, 5, 6, 7};
static const unsigned SLOW[] = {5, 6, 7, 8, 9, 10};
#define NF (sizeof FAST / sizeof FAST[0])
#define NS (sizeof SLOW / sizeof SLOW[0])
#define PAIRS (NF * NS)

static double cost[TC_CONTEXT_COUNT][PAIRS];
static uint32_t fast[TC_CONTEXT_COUNT][PAIRS], slow[TC_CONTEXT_COUNT][PAIRS];

static void reset(void)
{
    unsigned c, p;
    for (c = 0; c < TC_CONTEXT_COUNT; c++)
        for (p = 0; p < PAIRS; p++)
            fast[c][p] = slow[c][p] = (uint32_t)tc_context_init[c] << 7;
}

static void replay(unsigned c, unsigned bin)
{
    unsigned p;
    for (p = 0; p < PAIRS; p++) {
        uint32_t *f = &fast[c][p], *s = &slow[c][p], p0 = (*f + *s) >> 1;
        unsigned rf = FAST[p / NS], rs = SLOW[p % NS];
        cost[c][p] -= log2((bin ? TC_PROB_ONE - p0 : p0) / (double)TC_PROB_ONE);
        if (bin) {
            *f -= *f >> rf;
            *s -= *s >> rs;
        } else {
            *f += (TC_PROB_ONE - *f) >> rf;
            *s += (TC_PROB_ONE - *s) >> rs;
        }
    }
}

int main(int argc, char **argv)
{
    FILE *f;
    int c, bin, carry, tensors = 0;
    unsigned i, p;
    if (argc < 2 || argc > 3 || !(f = fopen(argv[1], "rb")))
        return 2;
    carry = argc == 3 && strcmp(argv[2], "carry") == 0;
    while ((c = getc(f)) != EOF && (bin = getc(f)) != EOF) {
        if (c == 255) {
            if (!carry || tensors++ == 0)
                reset();
        } else if (c < TC_CONTEXT_COUNT)
            replay((unsigned)c, (unsigned)bin);
    }
    fclose(f);
    for (i = 0; i < TC_CONTEXT_COUNT; i++) {
        for (p = 0; p < PAIRS; p++)
            printf("%.1f ", cost[i][p]);
        printf("\n");
    }
    return 0;
}
