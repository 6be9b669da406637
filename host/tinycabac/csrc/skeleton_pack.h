/* SPDX-License-Identifier: Apache-2.0 */
/*
 * skeleton_pack.h - the hot loops of the .tflite skeleton's packer (FORMAT
 * 3.6): the LZ77 parse and the packed layout itself (literal lanes through
 * move-to-front, distance codes), which host/tinycabac/skeleton_pack.py and
 * the fuzz target both call.
 */
#ifndef TINYCABAC_SKELETON_PACK_H
#define TINYCABAC_SKELETON_PACK_H

#include <stddef.h>
#include <stdint.h>

#define TCS_MIN_MATCH 4u
#define TCS_MAX_DISTANCE (4u * 65535u + 3u) /* what a remainder and a 16-bit quotient hold */
#define TCS_LANES 4u            /* literal lanes, by position mod 4 */
#define TCS_RECENT_DISTANCES 4u /* distance codes 4..7 repeat one of these */
#define TCS_PACK_HEADER_SIZE 36u
#define TCS_ERR_MEMORY (-1)
#define TCS_ERR_SIZE (-2) /* n >= 2^32 - 1, or too little room for the sequences */

/* The greedy parse of data[0 .. n) with one step of lazy matching: sequence
 * k is literal_counts[k] literals, then a match of match_lengths[k] bytes
 * from distances[k] back (0 and 0 in the last sequence, which has no
 * match).  Candidates are the earlier positions with the same 4 bytes,
 * nearest first, at most 64 of them, within TCS_MAX_DISTANCE; the longest
 * wins (the nearest of equal length), and one of 258 bytes or more ends the
 * search.  When there is one, a match at one of the four most recent
 * distances (the list FORMAT 3.6 keeps) that is at least as long is taken
 * instead, since it codes without quotient bytes: the longest of them, the
 * most recent of equal length.  The match one byte later replaces it if it
 * is two bytes longer, or if it is at a recent distance and this one is not
 * and it is at most one byte shorter, but if this one is at a recent
 * distance and the later one not, only if it is four bytes longer.
 * `capacity` >= n / 4 + 2 always suffices.  Returns the number of
 * sequences, or a TCS_ERR_ code. */
int64_t tcs_lz_parse(const uint8_t *data, size_t n, uint32_t *literal_counts, uint32_t *match_lengths,
                     uint32_t *distances, size_t capacity);

/* Bytes that tcs_pack may need for a skeleton of n bytes. */
size_t tcs_pack_bound(size_t n);

/* data[0 .. n) packed as FORMAT 3.6 lays it out into out[0 .. room): the
 * parse above, its literals in four lanes by position mod 4 (each lane
 * through its own move-to-front list), a match's distance repeated by code
 * whenever it is one of the four most recent.  Returns the packed size, or
 * TCS_ERR_SIZE (room < tcs_pack_bound(n), or n too large) or
 * TCS_ERR_MEMORY. */
int64_t tcs_pack(const uint8_t *data, size_t n, uint8_t *out, size_t room);

#endif /* TINYCABAC_SKELETON_PACK_H */
