/*
 * damage.c - exhaustive damage test of the C decoder on real streams.
 *
 * For each stream given on the command line it decodes the intact stream
 * (the reference), then every truncation and every single-bit flip (or a
 * deterministic random sample of flips for streams above --exhaustive-limit
 * bytes).  Each damaged stream must end in an error status unless it still
 * decodes to exactly the reference tensors; a crash or an out-of-bounds
 * access is caught by the sanitizers or valgrind the driver runs under, a
 * hang by the per-decode time limit.  Every --stream-every'th case is also
 * decoded with the streaming API in small odd chunks, which must agree with
 * tc_decode_tensor status for status and byte for byte.
 *
 * A flip in a payload byte can only change the tensor that byte belongs to
 * (the directory is intact, each tensor decodes from its own entry and
 * payload), so by default only that tensor is decoded again; --full decodes
 * every tensor of every damaged stream.  An update stream (delta modes)
 * applies to the tensors of the stream named by the --base before it.
 *
 *   damage [--exhaustive-limit BYTES] [--samples N] [--stream-every K]
 *          [--max-cases N] [--time-limit-ms MS] [--full]
 *          [--base base.tcb] file.tcb...
 *
 * Prints "reference <file> <tensor> <crc32>" per tensor (the test compares
 * them with tests/golden/MANIFEST.json) and a summary line per file; exits 1
 * on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tc_test_util.h"

#define MAX_OUTPUT ((size_t)64 << 20)

typedef struct {
    size_t exhaustive_limit; /* flip every bit of streams up to this size */
    size_t samples;          /* flips to sample above it */
    size_t stream_every;     /* cross-check every K-th case with streaming */
    size_t max_cases;        /* cap on cases per kind (0: none), for valgrind */
    double time_limit_ms;
    int full;                /* decode every tensor of every damaged stream */
    const tcu_decoded *base; /* base tensors for update streams */
} options;

typedef struct {
    size_t cases, detected, benign, wrong, stream_checks, stream_mismatches, slow;
    double max_ms;
} tally;

static int failures;

/* Enough FAIL lines to diagnose, not so many that the log drowns. */
static int report(void)
{
    return failures <= 20;
}

static double now_ms(void)
{
    return 1000.0 * (double)clock() / CLOCKS_PER_SEC;
}

/* Streaming decode of tensor i, which the whole-buffer decode finished
 * with `expected` (its output in whole->data[i] when that is TC_OK). */
static int tensor_agrees(const uint8_t *data, size_t size, const tc_tensor_info *t, const tcu_decoded *whole,
                         const tcu_decoded *base, uint32_t i, tc_status expected, uint32_t seed)
{
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t out_len, bytes = (size_t)t->element_count * t->element_size;
    size_t start = t->payload_offset <= size ? t->payload_offset : size;
    uint8_t *out = malloc(bytes ? bytes : 1u);
    tc_status st;
    int agrees;
    chunks.state = seed + i;
    chunks.in_max = 13;
    chunks.out_max = 3u * t->element_size + 1u;
    st = tcu_decode_streaming(t, data + start, size - start, &chunks, tcu_find_base(base, t), out, bytes,
                              &out_len, &stats);
    agrees = st == expected;
    if (agrees && st == TC_OK)
        agrees = out_len == whole->bytes[i] && memcmp(out, whole->data[i], out_len) == 0;
    free(out);
    return agrees;
}

/* Streaming decode of every tensor the whole-buffer decode (non-strict)
 * reached: same status per tensor, same bytes. */
static int streaming_agrees(const uint8_t *data, size_t size, const tcu_decoded *whole, const tcu_decoded *base,
                            uint32_t seed, size_t lo, size_t hi)
{
    tc_stream s;
    tc_tensor_info t;
    uint32_t i;
    tc_status st = tc_stream_open(&s, data, size);
    if (st != TC_OK)
        return st == whole->status;
    for (i = 0; i < s.tensor_count; i++) {
        tc_status expected = i == whole->failed_index ? whole->status : TC_OK;
        if (expected == TCU_SKIPPED_LARGE)
            return 1;
        tc_stream_tensor(&s, i, &t);
        if (t.payload_offset >= hi || (uint64_t)t.payload_offset + t.payload_size <= lo)
            continue; /* outside the damage: tcu_decode_range skipped it too */
        if (!tensor_agrees(data, size, &t, whole, base, i, expected, seed))
            return 0;
        if (expected != TC_OK)
            return 1;
    }
    return whole->status == TC_OK;
}

/* damaged_byte: the flipped byte, or SIZE_MAX for a truncation. */
static void run_case(const char *file, const char *what, size_t where, const uint8_t *data, size_t size,
                     size_t damaged_byte, const tcu_decoded *reference, const options *o, tally *t)
{
    tcu_decoded damaged;
    size_t directory_end = TC_HEADER_SIZE + reference->stream.directory_size;
    size_t lo = 0, hi = SIZE_MAX;
    double start = now_ms(), elapsed;
    tc_status st;
    if (!o->full && damaged_byte != SIZE_MAX && damaged_byte >= directory_end) {
        lo = damaged_byte;
        hi = damaged_byte + 1u;
    }
    st = tcu_decode_range(data, size, 1, MAX_OUTPUT, o->base, 1, lo, hi, &damaged);
    elapsed = now_ms() - start;
    t->cases++;
    if (elapsed > t->max_ms)
        t->max_ms = elapsed;
    if (elapsed > o->time_limit_ms) {
        t->slow++;
        failures++;
        if (report())
            fprintf(stderr, "FAIL %s: %s %zu took %.1f ms\n", file, what, where, elapsed);
    }
    if (st != TC_OK) {
        t->detected++;
    } else if (tcu_decoded_equal(&damaged, reference)) {
        t->benign++;
    } else {
        t->wrong++;
        failures++;
        if (report())
            fprintf(stderr, "FAIL %s: %s %zu decoded to different tensors without an error\n", file, what, where);
    }
    tcu_decoded_free(&damaged);
    if (o->stream_every && t->cases % o->stream_every == 0) {
        tcu_decoded loose;
        tcu_decode_range(data, size, 0, MAX_OUTPUT, o->base, 0, lo, hi, &loose);
        t->stream_checks++;
        if (!streaming_agrees(data, size, &loose, o->base, (uint32_t)where, lo, hi)) {
            t->stream_mismatches++;
            failures++;
            if (report())
                fprintf(stderr, "FAIL %s: %s %zu: streaming and whole-buffer decoding disagree\n", file, what, where);
        }
        tcu_decoded_free(&loose);
    }
}

static void truncations(const char *file, const uint8_t *data, size_t size, const tcu_decoded *reference,
                        const options *o, tally *t)
{
    size_t length, step = 1;
    if (o->max_cases && size > o->max_cases)
        step = size / o->max_cases + 1u;
    for (length = 0; length < size; length += step) {
        uint8_t *copy = malloc(length ? length : 1u); /* exact size: ASan sees over-reads */
        memcpy(copy, data, length);
        run_case(file, "truncation to", length, copy, length, SIZE_MAX, reference, o, t);
        free(copy);
    }
}

static void flip(const char *file, uint8_t *copy, const uint8_t *data, size_t size, size_t bit,
                 const tcu_decoded *reference, const options *o, tally *t)
{
    memcpy(copy, data, size);
    copy[bit >> 3] ^= (uint8_t)(1u << (bit & 7u));
    run_case(file, "bit flip", bit, copy, size, bit >> 3, reference, o, t);
}

static void bit_flips(const char *file, const uint8_t *data, size_t size, const tcu_decoded *reference,
                      const options *o, tally *t)
{
    uint8_t *copy = malloc(size);
    size_t bits = size * 8u, i, count;
    tcu_chunks sampler;
    int exhaustive = size <= o->exhaustive_limit;
    count = exhaustive ? bits : o->samples;
    if (o->max_cases && count > o->max_cases)
        count = o->max_cases, exhaustive = 0;
    sampler.state = 0x2545F491u;
    for (i = 0; i < count; i++) {
        /* Header and directory bits first in every sample: they steer the parser. */
        size_t bit = exhaustive ? i : tcu_chunk_size(&sampler, bits) - 1u;
        flip(file, copy, data, size, bit, reference, o, t);
    }
    free(copy);
}

static void print_reference(const char *file, const tcu_decoded *r)
{
    uint32_t i;
    for (i = 0; i < r->count; i++)
        printf("reference %s %.*s %08lx\n", file, (int)r->info[i].name_len, (const char *)r->info[i].name,
               (unsigned long)tc_crc32(0, r->data[i], r->bytes[i]));
}

static void print_tally(const char *file, const char *kind, const tally *t)
{
    printf("%s %s: cases %zu detected %zu benign %zu wrong %zu slow %zu stream-checks %zu "
           "stream-mismatches %zu max-ms %.2f\n",
           file, kind, t->cases, t->detected, t->benign, t->wrong, t->slow, t->stream_checks,
           t->stream_mismatches, t->max_ms);
}

/* Decodes file into *decoded (its bytes in *data); 0 on failure. */
static int load_reference(const char *file, const tcu_decoded *base, uint8_t **data, size_t *size,
                          tcu_decoded *decoded)
{
    *data = tcu_read_file(file, size);
    if (*data == NULL) {
        fprintf(stderr, "FAIL cannot read %s\n", file);
        failures++;
        memset(decoded, 0, sizeof *decoded);
        return 0;
    }
    if (tcu_decode_all(*data, *size, 1, MAX_OUTPUT, base, 1, decoded) != TC_OK) {
        fprintf(stderr, "FAIL %s: intact stream does not decode: %s\n", file, tc_status_string(decoded->status));
        failures++;
        return 0;
    }
    return 1;
}

static void damage_file(const char *file, const options *o)
{
    size_t size = 0;
    uint8_t *data;
    tcu_decoded reference;
    tally cut, flips;
    if (!load_reference(file, o->base, &data, &size, &reference)) {
        /* reported by load_reference */
    } else {
        print_reference(file, &reference);
        memset(&cut, 0, sizeof cut);
        memset(&flips, 0, sizeof flips);
        truncations(file, data, size, &reference, o, &cut);
        bit_flips(file, data, size, &reference, o, &flips);
        print_tally(file, "truncations", &cut);
        print_tally(file, "bit-flips", &flips);
    }
    tcu_decoded_free(&reference);
    free(data);
}

int main(int argc, char **argv)
{
    options o = {16384, 20000, 7, 0, 2000.0, 0, NULL};
    tcu_decoded base;
    uint8_t *base_data = NULL;
    size_t base_size;
    int i;
    memset(&base, 0, sizeof base);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--exhaustive-limit") == 0 && i + 1 < argc)
            o.exhaustive_limit = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
            o.samples = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--stream-every") == 0 && i + 1 < argc)
            o.stream_every = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-cases") == 0 && i + 1 < argc)
            o.max_cases = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--time-limit-ms") == 0 && i + 1 < argc)
            o.time_limit_ms = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--full") == 0)
            o.full = 1;
        else if (strcmp(argv[i], "--base") == 0 && i + 1 < argc) {
            tcu_decoded_free(&base);
            free(base_data);
            o.base = load_reference(argv[++i], NULL, &base_data, &base_size, &base) ? &base : NULL;
        } else
            damage_file(argv[i], &o);
    }
    tcu_decoded_free(&base);
    free(base_data);
    printf("failures %d\n", failures);
    return failures ? 1 : 0;
}
