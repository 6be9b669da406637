/*
 * fuzz_small_output.c - decoding into an output buffer of the wrong size.
 *
 * Parameters: byte 1 tensor selector, bytes 2..3 size selector, byte 4 case:
 *   0  tc_decode_tensor into a buffer smaller than the tensor: must return
 *      TC_ERR_OUTPUT_SIZE (or TC_ERR_TRUNCATED, checked first) and leave the
 *      buffer untouched;
 *   1  a larger buffer: bytes after the tensor stay untouched;
 *   2  one tc_decoder_run call with all input and a too-small output: it
 *      stops with TC_NEED_OUTPUT (or an error) and writes only out[0..out_pos);
 *   3  a tensor coded with prediction or channel peaks and a work buffer of
 *      fewer than its work_size bytes (size selector mod work_size): tc_decode_tensor returns
 *      TC_ERR_HISTORY (or an earlier check's error) with the output and the
 *      history untouched, tc_decoder_set_history refuses it, and
 *      tc_decoder_run then refuses to start.
 * The buffer always ends at its allocation, so ASan catches any write past
 * it, and guard bytes catch writes the decoder did not report.
 */
#include "fuzz_common.h"

/* The working state of every tc_decode_tensor call here. */
static tc_decoder whole_decoder;

#define GUARD 0x5Au

static int untouched(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != GUARD)
            return 0;
    return 1;
}

static void too_small_whole(const tc_stream *s, const tc_tensor_info *t, size_t bytes, size_t selector)
{
    size_t out_size = selector % bytes;
    uint8_t *out = malloc(out_size ? out_size : 1u);
    tc_status st;
    int8_t *history = tcu_history_buffer(t);
    memset(out, GUARD, out_size ? out_size : 1u);
    st = tc_decode_tensor(s, t, &whole_decoder, out_size ? out : NULL, out_size, history, t->work_size);
    TCU_CHECK(st == TC_ERR_OUTPUT_SIZE || st == TC_ERR_TRUNCATED, "accepted an output buffer that is too small");
    TCU_CHECK(untouched(out, out_size), "wrote into a buffer it rejected");
    free(out);
    free(history);
}

static void larger_whole(const tc_stream *s, const tc_tensor_info *t, size_t bytes, size_t selector)
{
    size_t out_size = bytes + 1u + selector % 64u;
    uint8_t *out = malloc(out_size);
    int8_t *history = tcu_history_buffer(t);
    memset(out, GUARD, out_size);
    memset(out, 0, bytes); /* delta modes: a zero base */
    tc_decode_tensor(s, t, &whole_decoder, out, out_size, history, t->work_size);
    TCU_CHECK(untouched(out + bytes, out_size - bytes), "wrote past the end of the tensor");
    free(out);
    free(history);
}

static void too_small_streaming(const tc_stream *s, const tc_tensor_info *t, size_t bytes, size_t selector)
{
    size_t out_size = selector % bytes, in_pos = 0, out_pos = 0;
    size_t available = t->payload_offset <= s->size ? s->size - t->payload_offset : 0;
    uint8_t *out = malloc(out_size ? out_size : 1u);
    int8_t *history = tcu_history_buffer(t);
    tc_decoder d;
    tc_status st;
    memset(out, 0, out_size ? out_size : 1u);
    TCU_CHECK(tc_decoder_init(&d, t) == TC_OK, "tc_decoder_init rejected a parsed entry");
    TCU_CHECK(tc_decoder_set_history(&d, history, t->work_size) == TC_OK, "refused a history of work_size bytes");
    st = tc_decoder_run(&d, s->data + s->size - available, &in_pos, available, out, &out_pos, out_size);
    TCU_CHECK(st != TC_OK, "whole tensor decoded into a buffer too small for it");
    TCU_CHECK(out_pos <= out_size && out_pos % t->element_size == 0, "bad out_pos");
    if (st == TC_NEED_OUTPUT)
        TCU_CHECK(out_size - out_pos < t->element_size, "TC_NEED_OUTPUT with room left");
    free(out);
    free(history);
}

/* The caller set aside fewer than the work_size bytes the tensor needs. */
static void too_small_history(const tc_stream *s, const tc_tensor_info *t, size_t bytes, size_t selector)
{
    size_t history_size = selector % t->work_size, in_pos = 0, out_pos = 0;
    size_t available = t->payload_offset <= s->size ? s->size - t->payload_offset : 0;
    int8_t *history = malloc(history_size ? history_size : 1u);
    uint8_t *out = malloc(bytes ? bytes : 1u);
    tc_decoder d;
    tc_status st;
    int wrong_base;
    memset(history, GUARD, history_size ? history_size : 1u);
    memset(out, GUARD, bytes ? bytes : 1u);
    wrong_base = tcu_mode_is_delta(t->mode) && tc_check_base(t, out, bytes) == TC_ERR_BASE;
    st = tc_decode_tensor(s, t, &whole_decoder, out, bytes, history_size ? history : NULL, history_size);
    TCU_CHECK(st == TC_ERR_HISTORY || (st == TC_ERR_TRUNCATED && available < t->payload_size) ||
                  (st == TC_ERR_BASE && wrong_base), /* a wrong base is refused first */
              "decoded with less history than the tensor needs");
    TCU_CHECK(untouched(out, bytes) && untouched((const uint8_t *)history, history_size),
              "wrote although the history was too small");
    TCU_CHECK(tc_decoder_init(&d, t) == TC_OK, "tc_decoder_init rejected a parsed entry");
    TCU_CHECK(tc_decoder_set_history(&d, history, history_size) == TC_ERR_HISTORY, "accepted a short history");
    st = tc_decoder_run(&d, s->data + s->size - available, &in_pos, available, out, &out_pos, bytes);
    TCU_CHECK(st == TC_ERR_HISTORY && in_pos == 0 && out_pos == 0 && untouched(out, bytes),
              "tc_decoder_run started without a history");
    free(out);
    free(history);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n, bytes, selector;
    uint8_t *stream;
    tc_stream s;
    tc_tensor_info t;
    if (size < FUZZ_PREFIX)
        return 0;
    stream = fuzz_stream_copy(data, size, FUZZ_PREFIX, &n);
    selector = (size_t)data[2] | ((size_t)data[3] << 8);
    if (tc_stream_open(&s, stream, n) == TC_OK && s.tensor_count > 0 &&
        tc_stream_tensor(&s, data[1] % s.tensor_count, &t) == TC_OK && fuzz_output_fits(&t, &bytes)) {
        unsigned which = data[4] % 4u;
        if (which == 1u)
            larger_whole(&s, &t, bytes, selector);
        else if (which == 3u && t.work_size > 0 && bytes > 0)
            too_small_history(&s, &t, bytes, selector);
        else if (bytes > 0 && which == 0u)
            too_small_whole(&s, &t, bytes, selector);
        else if (bytes > 0)
            too_small_streaming(&s, &t, bytes, selector);
    }
    free(stream);
    return 0;
}
