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

/* The match longest() finds at `position`, unless one at a recent distance
 * is at least as long: that one codes without quotient bytes (FORMAT 3.6).
 * Of those, the longest wins, the most recent of equal length.  Where the
 * finder finds nothing the recent distances are not tried: a match there
 * would have been a candidate, and random bytes (int4 weights left in the
 * skeleton) would pay for four tries per byte. */
static uint32_t longest_or_recent(const match_finder *f, uint32_t position, const uint32_t *recent,
                                  uint32_t *distance)
{
    const uint8_t *here = f->data + position;
    uint32_t best = longest(f, position, distance), recent_best = 0, recent_distance = 0, k;
    if (best == 0)
        return 0;
    for (k = 0; k < TCS_RECENT_DISTANCES; k++) {
        uint32_t length;
        if (recent[k] == 0 || recent[k] > position || prefix_of(here - recent[k]) != prefix_of(here))
            continue; /* no match of the minimum length there */
        length = common_length(here - recent[k], here, f->n - position);
        if (length > recent_best) {
            recent_best = length;
            recent_distance = recent[k];
        }
    }
    if (recent_best < TCS_MIN_MATCH || recent_best < best)
        return best;
    *distance = recent_distance;
    return recent_best;
}

/* The place of `distance` in the recent distances, or TCS_RECENT_DISTANCES
 * if it is not among them (0, no match, never is: the list starts as
 * zeros, which name no distance). */
static uint32_t recent_place(const uint32_t *recent, uint32_t distance)
{
    uint32_t place = 0;
    if (distance == 0)
        return TCS_RECENT_DISTANCES;
    while (place < TCS_RECENT_DISTANCES && recent[place] != distance)
        place++;
    return place;
}

static int is_recent(const uint32_t *recent, uint32_t distance)
{
    return recent_place(recent, distance) < TCS_RECENT_DISTANCES;
}

/* Lazy matching: whether the match one byte later (`later` bytes at
 * `later_distance`) is worth a literal more than the match here.  A match
 * at a recent distance costs about two bytes less than one at a new
 * distance (its quotient bytes), so a recent one later wins even one byte
 * shorter, and a new one later must beat a recent one here by four bytes;
 * otherwise, by two, as zlib does. */
static int later_is_better(const uint32_t *recent, uint32_t length, uint32_t distance, uint32_t later,
                           uint32_t later_distance)
{
    int recent_here = is_recent(recent, distance), recent_later = is_recent(recent, later_distance);
    if (recent_later && !recent_here)
        return later + 2u > length;
    if (recent_here && !recent_later)
        return later > length + 3u;
    return later > length + 1u;
}

/* The recent distances after a match at `distance`: it moves to the front,
 * a new one pushing out the oldest (FORMAT 3.6). */
static void remember_distance(uint32_t *recent, uint32_t distance)
{
    uint32_t place = recent_place(recent, distance);
    if (place == TCS_RECENT_DISTANCES)
        place = TCS_RECENT_DISTANCES - 1u; /* a new one pushes out the oldest */
    for (; place > 0u; place--)
        recent[place] = recent[place - 1u];
    recent[0] = distance;
}

int64_t tcs_lz_parse(const uint8_t *data, size_t n, uint32_t *literal_counts, uint32_t *match_lengths,
                     uint32_t *distances, size_t capacity)
{
    match_finder f;
    uint32_t position = 0, literal_start = 0, recent[TCS_RECENT_DISTANCES] = {0, 0, 0, 0};
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
        uint32_t distance, length = longest_or_recent(&f, position, recent, &distance);
        insert(&f, position);
        if (length != 0 && position + 1u < f.n) {
            uint32_t later_distance, later = longest_or_recent(&f, position + 1u, recent, &later_distance);
            if (later_is_better(recent, length, distance, later, later_distance)) {
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
        remember_distance(recent, distance);
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

/* out[i]: the rank of in[i] in a list of the 256 byte values kept most
 * recent first (initially 0, 1, ..., 255). */
static void move_to_front(const uint8_t *in, size_t n, uint8_t *out)
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

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* A length as bytes of 255 while they last, then the rest (FORMAT 3.6). */
static size_t put_length(uint8_t *out, uint32_t value)
{
    size_t n = 0;
    for (; value >= 255u; value -= 255u)
        out[n++] = 255u;
    out[n++] = (uint8_t)value;
    return n;
}

/* Each match's distance code into codes[0 .. matches) (a new distance's
 * remainder, or 4 + its place among the recent ones, which are always
 * repeated), the new distances moved to the front of distances[]; returns
 * how many are new. */
static size_t code_distances(uint32_t *distances, size_t matches, uint8_t *codes)
{
    uint32_t recent[TCS_RECENT_DISTANCES] = {0, 0, 0, 0};
    size_t k, fresh = 0;
    for (k = 0; k < matches; k++) {
        uint32_t distance = distances[k], place = recent_place(recent, distance);
        if (place < TCS_RECENT_DISTANCES)
            codes[k] = (uint8_t)(TCS_RECENT_DISTANCES + place);
        else {
            codes[k] = (uint8_t)(distance & 3u);
            distances[fresh++] = distance;
        }
        remember_distance(recent, distance);
    }
    return fresh;
}

size_t tcs_pack_bound(size_t n)
{
    return TCS_PACK_HEADER_SIZE + 2u * n + 4u * (n / TCS_MIN_MATCH + 2u) + 8u;
}

/* The parse's literals into out[], lane by lane (position mod TCS_LANES),
 * each lane through its own move-to-front list; their sizes into
 * lane_size[].  `scratch` holds n bytes.  Returns the bytes written. */
static size_t put_lanes(const uint8_t *data, const uint32_t *counts, const uint32_t *lengths, size_t sequences,
                        uint8_t *scratch, uint8_t *out, size_t *lane_size)
{
    size_t lane_at[TCS_LANES], k, position, start;
    for (k = 0; k < TCS_LANES; k++)
        lane_size[k] = 0;
    for (k = 0, start = 0; k < sequences; start += counts[k] + lengths[k], k++)
        for (position = start; position < start + counts[k]; position++)
            lane_size[position % TCS_LANES]++;
    for (lane_at[0] = 0, k = 1; k < TCS_LANES; k++)
        lane_at[k] = lane_at[k - 1u] + lane_size[k - 1u];
    for (k = 0, start = 0; k < sequences; start += counts[k] + lengths[k], k++)
        for (position = start; position < start + counts[k]; position++)
            scratch[lane_at[position % TCS_LANES]++] = data[position];
    for (k = 0, start = 0; k < TCS_LANES; start += lane_size[k], k++)
        move_to_front(scratch + start, lane_size[k], out + start);
    return start;
}

int64_t tcs_pack(const uint8_t *data, size_t n, uint8_t *out, size_t room)
{
    size_t capacity = n / TCS_MIN_MATCH + 2u, lane_size[TCS_LANES], at = TCS_PACK_HEADER_SIZE;
    size_t k, matches, fresh, b_size = 0, c_size = 0;
    uint32_t *counts = malloc(capacity * sizeof *counts), *lengths = malloc(capacity * sizeof *lengths),
             *distances = malloc(capacity * sizeof *distances);
    uint8_t *scratch = malloc(n + 1u);
    int64_t sequences = room < tcs_pack_bound(n) ? TCS_ERR_SIZE : TCS_ERR_MEMORY;
    if (counts == NULL || lengths == NULL || distances == NULL || scratch == NULL || room < tcs_pack_bound(n) ||
        (sequences = tcs_lz_parse(data, n, counts, lengths, distances, capacity)) < 1)
        goto done;
    matches = (size_t)sequences - 1u;
    at += put_lanes(data, counts, lengths, (size_t)sequences, scratch, out + at, lane_size);
    for (k = 0; k < (size_t)sequences; k++)
        b_size += put_length(out + at + b_size, counts[k]);
    at += b_size;
    for (k = 0; k < matches; k++)
        c_size += put_length(out + at + c_size, lengths[k] - TCS_MIN_MATCH);
    at += c_size;
    fresh = code_distances(distances, matches, out + at);
    at += matches;
    for (k = 0; k < fresh; k++) {
        out[at + k] = (uint8_t)(distances[k] >> 2);
        out[at + fresh + k] = (uint8_t)(distances[k] >> 10);
    }
    at += 2u * fresh;
    put_u32(out, (uint32_t)n);
    put_u32(out + 4, (uint32_t)matches);
    put_u32(out + 8, (uint32_t)(matches - fresh));
    for (k = 0; k < TCS_LANES; k++)
        put_u32(out + 12 + 4 * k, (uint32_t)lane_size[k]);
    put_u32(out + 28, (uint32_t)b_size);
    put_u32(out + 32, (uint32_t)c_size);
    sequences = (int64_t)at;
done:
    free(counts);
    free(lengths);
    free(distances);
    free(scratch);
    return sequences;
}
