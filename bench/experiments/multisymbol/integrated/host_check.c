/* Host checks of a decoder build (the patched copy or decoder_c/, chosen by -I):
 * every tensor of a stream decoded through tc_decoder_run with the payload
 * fed in chunks of 1..max_in bytes and the output drained in chunks of
 * 1..max_out elements (pseudo-random sizes), CRC-32 checked by the decoder.
 * Built by check_host.py as a shared library for ctypes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinycabac.h"

static uint32_t rng_state;
/* What chunked_decode saw, for check_host.py's comparison of two decoders
 * on the same corrupt payloads: an FNV-1a hash of every output byte the
 * decoder produced, with the number of payload bytes it consumed and of
 * tc_decoder_run calls. */
static uint32_t trace_hash, trace_consumed, trace_calls;
static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* Returns TC_OK when every tensor decoded; *max_pending gets the most input
 * bytes the decoder left unconsumed on TC_NEED_INPUT (< TC_MAX_VALUE_INPUT). */
int32_t chunked_decode(const uint8_t *data, uint32_t size, uint32_t seed, uint32_t max_in, uint32_t max_out,
                       uint32_t *need_input_count, uint32_t *max_pending)
{
    static tc_stream s;
    static tc_tensor_info t;
    static tc_decoder d;
    static int8_t history[65536];
    static uint8_t out[4096];
    uint8_t in[256];
    uint32_t i;
    tc_status st = tc_stream_open(&s, data, size);
    rng_state = seed;
    trace_hash = 2166136261u;
    trace_consumed = trace_calls = 0;
    *need_input_count = 0;
    *max_pending = 0;
    for (i = 0; st == TC_OK && i < s.tensor_count; i++) {
        const uint8_t *payload;
        uint32_t fed = 0;
        size_t in_pos = 0, in_size = 0;
        if ((st = tc_stream_tensor(&s, i, &t)) != TC_OK)
            break;
        payload = data + t.payload_offset;
        if ((st = tc_decoder_init(&d, &t)) != TC_OK || (st = tc_decoder_set_history(&d, history, sizeof history)) != TC_OK)
            break;
        for (;;) {
            size_t out_pos = 0, out_size = (1u + rng() % max_out) * t.element_size;
            /* refill: keep unconsumed bytes, append a random amount */
            uint32_t add = 1u + rng() % max_in, pending = (uint32_t)(in_size - in_pos);
            if (pending + add > sizeof in)
                add = (uint32_t)sizeof in - pending;
            if (add > t.payload_size - fed)
                add = t.payload_size - fed;
            memmove(in, in + in_pos, pending);
            memcpy(in + pending, payload + fed, add);
            fed += add;
            in_pos = 0;
            in_size = pending + add;
            st = tc_decoder_run(&d, in, &in_pos, in_size, out, &out_pos, out_size);
            {
                size_t k;
                for (k = 0; k < out_pos; k++)
                    trace_hash = (trace_hash ^ out[k]) * 16777619u;
                trace_consumed += (uint32_t)in_pos;
                trace_calls++;
            }
            if (st == TC_NEED_INPUT) {
                uint32_t left = (uint32_t)(in_size - in_pos);
                (*need_input_count)++;
                if (left > *max_pending)
                    *max_pending = left;
                if (fed == t.payload_size)
                    return -100; /* asks for input that does not exist */
                continue;
            }
            if (st == TC_NEED_OUTPUT)
                continue;
            break;
        }
    }
    return (int32_t)st;
}

uint32_t decoder_size(void) { return (uint32_t)sizeof(tc_decoder); }
uint32_t max_value_input(void) { return TC_MAX_VALUE_INPUT; }

#ifdef CHECK_MAIN
#include <stdio.h>
int32_t bench_decode(const uint8_t *data, uint32_t size);       /* bench/firmware/harness.c */
int32_t bench_decode_whole(const uint8_t *data, uint32_t size);

/* check_host FILE [corrupt-trials [TRACE]]: whole-stream decodes (harness),
 * chunked decodes over many chunk sizes, then corrupted copies (random
 * payload byte flips): the decoder must return an error status, never crash
 * (run under ASan/UBSan) and never ask for input past the payload.  With
 * TRACE, one line per corrupt trial is written there (status; for the
 * chunked trials also the output hash, bytes consumed and calls), for
 * check_host.py to compare two decoders trial by trial. */
int main(int argc, char **argv)
{
    FILE *f = fopen(argv[1], "rb");
    static uint8_t data[1 << 20], copy[1 << 20];
    size_t size = fread(data, 1, sizeof data, f);
    uint32_t trials = argc > 2 ? (uint32_t)atoi(argv[2]) : 0, seed, i, needs, pending, worst = 0, total_needs = 0;
    static const uint32_t max_in[] = {1, 2, 3, 5, 9, 16, 64, 200}, max_out[] = {1, 3, 40, 4096};
    uint32_t bad = 0, errors[32] = {0};
    int32_t st;
    FILE *trace = argc > 3 ? fopen(argv[3], "w") : NULL;
    fclose(f);
    st = bench_decode(data, (uint32_t)size);
    printf("bench_decode %d, bench_decode_whole %d\n", st, bench_decode_whole(data, (uint32_t)size));
    for (seed = 1; seed <= 4; seed++)
        for (i = 0; i < sizeof max_in / sizeof *max_in; i++) {
            st = chunked_decode(data, (uint32_t)size, seed, max_in[i], max_out[(seed + i) % 4], &needs, &pending);
            if (st != 0) {
                printf("chunked seed %u max_in %u: status %d\n", seed, max_in[i], st);
                bad++;
            }
            total_needs += needs;
            if (pending > worst)
                worst = pending;
        }
    printf("chunked: %u failures, %u TC_NEED_INPUT returns, most bytes left pending %u (TC_MAX_VALUE_INPUT %u), tc_decoder %u B\n",
           bad, total_needs, worst, max_value_input(), decoder_size());
    /* corruption: payload area only (the directory has its own CRC) */
    {
        tc_stream s;
        uint32_t start, k;
        tc_stream_open(&s, data, (uint32_t)size);
        start = 20u + s.directory_size;
        rng_state = 12345;
        for (i = 0; i < trials; i++) {
            uint32_t flips = 1 + rng() % 3, r;
            memcpy(copy, data, size);
            for (k = 0; k < flips; k++)
                copy[start + rng() % (uint32_t)(size - start)] ^= (uint8_t)(1u << (rng() % 8));
            st = (i & 1) ? bench_decode(copy, (uint32_t)size)
                         : chunked_decode(copy, (uint32_t)size, i, 1 + i % 17, 1 + i % 50, &needs, &r);
            errors[(uint32_t)(st + 16) & 31]++;
            if (trace != NULL) {
                if (i & 1)
                    fprintf(trace, "%u %d\n", i, st);
                else
                    fprintf(trace, "%u %d %08x %u %u\n", i, st, trace_hash, trace_consumed, trace_calls);
            }
        }
        if (trace != NULL)
            fclose(trace);
        if (trials) {
            printf("corrupt trials %u:", trials);
            for (k = 0; k < 32; k++)
                if (errors[k])
                    printf(" status %d x%u", (int)k - 16, errors[k]);
            printf("\n");
        }
    }
    return 0;
}
#endif
