/* SPDX-License-Identifier: Apache-2.0 */
/*
 * skeleton_pack.c - see skeleton_pack.h.
 *
 * Candidates are found through hash chains over 4-byte prefixes.  A
 * candidate is worth looking at only within TCS_MAX_DISTANCE, so the links
 * live in a ring of at most 2^18 entries (one more than the distance), not
 * one per byte: a 100 MB skeleton needs 5 MB of tables, not 400, and a
 * small one tables its own size (the fuzz target packs every input).
 * Positions whose 4 bytes merely share a hash are skipped without counting
 * toward the 64 tried, so the parse depends on the data alone, not on the
 * hash or the tables' size.
 */
#include "skeleton_pack.h"

#include <stdlib.h>
#include <string.h>

#define RING_BITS 18u /* 2^18 > TCS_MAX_DISTANCE */
#define HASH_BITS 20u /* at most: a small skeleton gets tables its size (what is found does not depend on them) */
#define NONE UINT32_MAX
#define CHAIN_DEPTH 64u
#define NICE_LENGTH 258u

typedef struct {
    const uint8_t *data;
    uint32_t n;
    unsigned hash_bits;
    uint32_t ring_mask;
    uint32_t *head;     /* hash -> the latest position inserted with it */
    uint32_t *previous; /* position (mod the ring) -> the one before it with its hash */
} match_finder;

static uint32_t prefix_of(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t hash_of(const match_finder *f, uint32_t prefix)
{
    return (prefix * 2654435761u) >> (32u - f->hash_bits);
}

static void insert(match_finder *f, uint32_t position)
{
    uint32_t h;
    if (f->n - position < TCS_MIN_MATCH)
        return;
    h = hash_of(f, prefix_of(f->data + position));
    f->previous[position & f->ring_mask] = f->head[h];
    f->head[h] = position;
}

static uint32_t common_length(const uint8_t *a, const uint8_t *b, uint32_t limit)
{
    uint32_t length = 0;
    while (length < limit && a[length] == b[length])
        length++;
    return length;
}

/* The longest earlier match at `position`: its length (0 below the
 * minimum), and its distance in *distance. */
static uint32_t longest(const match_finder *f, uint32_t position, uint32_t *distance)
{
    const uint8_t *here = f->data + position;
    uint32_t limit = f->n - position, best = 0, tried = 0, candidate, prefix;
    *distance = 0;
    if (limit < TCS_MIN_MATCH)
        return 0;
    prefix = prefix_of(here);
    for (candidate = f->head[hash_of(f, prefix)]; candidate != NONE && tried < CHAIN_DEPTH;
         candidate = f->previous[candidate & f->ring_mask]) {
        if (position - candidate > TCS_MAX_DISTANCE)
            break; /* the rest are older still, and the ring may have reused their links */
        if (prefix_of(f->data + candidate) != prefix)
            continue; /* another prefix with the same hash: not a candidate */
        tried++;
        if (here[best] == f->data[candidate + best]) { /* best < limit: a match of limit ended the search */
            uint32_t length = common_length(f->data + candidate, here, limit);
            if (length > best) {
                best = length;
                *distance = position - candidate;
                if (length >= NICE_LENGTH || length == limit)
                    break;
            }
        }
    }
    return best >= TCS_MIN_MATCH ? best : 0;
}

int64_t tcs_lz_parse(const uint8_t *data, size_t n, uint32_t *literal_counts, uint32_t *match_lengths,
                     uint32_t *distances, size_t capacity)
{
    match_finder f;
    uint32_t position = 0, literal_start = 0;
    size_t count = 0;
    if (n >= NONE || capacity < n / TCS_MIN_MATCH + 2u)
        return TCS_ERR_SIZE;
    f.data = data;
    f.n = (uint32_t)n;
    for (f.hash_bits = 8u; f.hash_bits < HASH_BITS && (1u << f.hash_bits) < f.n; f.hash_bits++)
        ;
    f.ring_mask = (1u << (f.hash_bits < RING_BITS ? f.hash_bits : RING_BITS)) - 1u; /* no position wraps below n */
    f.head = malloc(sizeof *f.head << f.hash_bits);
    f.previous = malloc(sizeof *f.previous * ((size_t)f.ring_mask + 1u));
    if (f.head == NULL || f.previous == NULL) {
        free(f.head);
        free(f.previous);
        return TCS_ERR_MEMORY;
    }
    memset(f.head, 0xFF, sizeof *f.head << f.hash_bits);
    while (position < f.n) {
        uint32_t distance, length = longest(&f, position, &distance);
        insert(&f, position);
        if (length != 0 && position + 1u < f.n) {
            uint32_t later_distance, later = longest(&f, position + 1u, &later_distance);
            if (later > length + 1u) { /* lazy: one more literal buys a longer match */
                insert(&f, ++position);
                length = later;
                distance = later_distance;
            }
        }
        if (length == 0) {
            position++;
            continue;
        }
        literal_counts[count] = position - literal_start;
        match_lengths[count] = length;
        distances[count++] = distance;
        while (--length > 0)
            insert(&f, ++position);
        literal_start = ++position;
    }
    literal_counts[count] = f.n - literal_start;
    match_lengths[count] = 0;
    distances[count++] = 0;
    free(f.head);
    free(f.previous);
    return (int64_t)count;
}

void tcs_move_to_front(const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t table[256];
    size_t i;
    unsigned v;
    for (v = 0; v < 256u; v++)
        table[v] = (uint8_t)v;
    for (i = 0; i < n; i++) {
        uint8_t byte = in[i], rank = 0;
        while (table[rank] != byte)
            rank++;
        memmove(table + 1, table, rank);
        table[0] = byte;
        out[i] = rank;
    }
}
