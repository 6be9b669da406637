/* SPDX-License-Identifier: Apache-2.0 */
/*
 * selector_table.c - the decoder's speed-build table of context selection
 * (tinycabac.c: context_selector_table) against the rules of tc_model.h it
 * restates, for every activity a value can be coded with; and, by
 * exhaustion, the bound TC_MAX_ACTIVITY that keeps the lookup in the table
 * whatever a stream says.  The decoder is included whole, as its table is
 * private.  Exit status 1 on any failure.
 */
#include <stdio.h>

#include "../tinycabac.c"

#if !defined(TC_SELECTOR_TABLE) || !TC_SELECTOR_TABLE
#error "build this test without -Os: it checks the speed builds' table"
#endif

static int failures;

static void expect(int condition, const char *what, unsigned activity)
{
    if (!condition) {
        failures++;
        fprintf(stderr, "activity %u: %s\n", activity, what);
    }
}

static void check_table(void)
{
    unsigned activity;
    for (activity = 0; activity <= TC_MAX_ACTIVITY; activity++) {
        unsigned selector = context_selector(activity), k = tc_rice_k(activity);
        expect(selected_k(selector) == k, "k", activity);
        expect(selected_prefix_set(selector) == tc_prefix_set(activity, k), "prefix set", activity);
        if (k > 0) { /* with k = 0 there is no suffix */
            tc_decoder d;
            expect(selected_suffix(&d, selector, 0) == d.suffix[tc_suffix_set(k)][0], "suffix after p = 0", activity);
            expect(selected_suffix(&d, selector, 5) == d.suffix[tc_suffix_set(k)][1], "suffix after p > 0", activity);
        }
    }
}

/* Every activity the recurrence and the scale mix can reach from a byte. */
static void check_activity_bound(void)
{
    unsigned activity, magnitude_class, column;
    for (activity = 0; activity <= TC_MAX_ACTIVITY; activity++) {
        for (magnitude_class = 0; magnitude_class <= 32; magnitude_class++)
            expect(tc_activity_next(activity, magnitude_class) <= TC_MAX_ACTIVITY, "running activity", activity);
        for (column = 0; column <= 255; column++)
            expect(tc_scale_activity(activity, column) <= TC_MAX_ACTIVITY, "scale mix", activity);
    }
}

int main(void)
{
    check_table();
    check_activity_bound();
    printf("selector_table: %u activities, %d failures\n", TC_MAX_ACTIVITY + 1u, failures);
    return failures != 0;
}
