/*
 * fuzz_streaming.c - tc_decoder_init / tc_decoder_run with fuzzer-chosen
 * input and output chunk sizes, refilled xz-style (unconsumed input kept and
 * passed again), against tc_decode_tensor on the same tensor.
 *
 * Parameters: byte 1 tensor selector, byte 2 largest input chunk - 1,
 * byte 3 largest output chunk - 1 (bytes), bytes 4..7 chunk-size seed.
 * tcu_decode_streaming checks the API contract on every call; here both
 * paths must agree on the status and, when it is TC_OK, on every byte.
 * Both give a tensor coded with prediction exactly the working memory it
 * declares, work_size bytes (tc_decoder_set_history after tc_decoder_init).
 */
#include "fuzz_common.h"

/* The working state of every tc_decode_tensor call here. */
static tc_decoder whole_decoder;

static int all_zero(const uint8_t *p, size_t n)
{
    while (n-- > 0)
        if (*p++ != 0)
            return 0;
    return 1;
}

static void compare_paths(const tc_stream *s, const tc_tensor_info *t, const uint8_t *params)
{
    tcu_chunks chunks;
    tcu_stream_stats stats;
    size_t bytes, out_len, start;
    uint8_t *whole, *streamed;
    int8_t *history;
    tc_status whole_st, stream_st;
    int wrong_base;
    if (!fuzz_output_fits(t, &bytes))
        return;
    whole = calloc(bytes ? bytes : 1u, 1); /* delta modes: a zero base in both paths */
    streamed = malloc(bytes ? bytes : 1u);
    history = tcu_history_buffer(t);
    if (whole == NULL || streamed == NULL)
        abort();
    wrong_base = tcu_mode_is_delta(t->mode) && tc_check_base(t, whole, bytes) == TC_ERR_BASE;
    whole_st = tc_decode_tensor(s, t, &whole_decoder, whole, bytes, history, t->work_size);
    chunks.in_max = (size_t)params[1] + 1u;
    chunks.out_max = (size_t)params[2] + 1u;
    chunks.state = (uint32_t)params[3] | ((uint32_t)params[4] << 8) | ((uint32_t)params[5] << 16) |
                   ((uint32_t)params[6] << 24);
    start = t->payload_offset <= s->size ? t->payload_offset : s->size;
    stream_st = tcu_decode_streaming(t, s->data + start, s->size - start, &chunks, NULL, streamed, bytes,
                                     &out_len, &stats);
    if (whole_st == TC_ERR_TRUNCATED) /* checked up front; streaming may first meet corrupt data, */
        TCU_CHECK(stream_st < 0 || t->payload_size == 0, /* and an empty tensor needs no payload */
                  "streaming decoded a truncated payload");
    else if (wrong_base && whole_st == TC_ERR_BASE) { /* refused up front, untouched; streaming */
        TCU_CHECK(stream_st < 0, "streaming applied an update to the wrong base"); /* fails later */
        TCU_CHECK(all_zero(whole, bytes), "the one-call decoder wrote over a wrong base");
    } else
        TCU_CHECK(stream_st == whole_st, "streaming and whole-buffer decoding disagree on the status");
    if (whole_st == TC_OK)
        TCU_CHECK(out_len == bytes && memcmp(whole, streamed, bytes) == 0,
                  "streaming and whole-buffer decoding disagree on the bytes");
    free(whole);
    free(streamed);
    free(history);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    uint8_t *stream;
    tc_stream s;
    tc_tensor_info t;
    uint32_t i;
    if (size < FUZZ_PREFIX)
        return 0;
    stream = fuzz_stream_copy(data, size, FUZZ_PREFIX, &n);
    if (tc_stream_open(&s, stream, n) == TC_OK && s.tensor_count > 0) {
        for (i = 0; i < s.tensor_count; i++) {
            uint32_t index = data[0] & FUZZ_ALL_TENSORS ? i : data[1] % s.tensor_count;
            TCU_CHECK(tc_stream_tensor(&s, index, &t) == TC_OK, "listed tensor does not parse");
            compare_paths(&s, &t, data + 1);
            if (!(data[0] & FUZZ_ALL_TENSORS))
                break;
        }
    }
    free(stream);
    return 0;
}
