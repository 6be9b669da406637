/*
 * harness.c - the one function bench/firmware_report.py calls under unicorn
 * to count the decoder's instructions and measure its stack.
 *
 * It decodes every tensor of a stream the way a device would: decoder state
 * in static memory, output through a 256-byte buffer that is thrown away
 * (the decoder itself checks each tensor's CRC-32, so TC_OK means the
 * output was bit-exact), and a history buffer of BENCH_HISTORY_SIZE bytes
 * for tensors coded with prediction.  Nothing else runs, so the counts are
 * the decoder's own plus this loop.
 */
#include <stddef.h>
#include <stdint.h>

#include "tinycabac.h"

/* The encoder's default limit on the prediction distance H. */
#define BENCH_HISTORY_SIZE 4096u

static tc_stream stream;
static tc_tensor_info tensor;
static tc_decoder decoder;
static uint8_t output_chunk[256];
static int8_t history[BENCH_HISTORY_SIZE];

/* Returns TC_OK (0) when every tensor decoded and matched its CRC. */
int32_t bench_decode(const uint8_t *data, uint32_t size)
{
    tc_status status = tc_stream_open(&stream, data, size);
    for (uint32_t index = 0; status == TC_OK && index < stream.tensor_count; index++) {
        status = tc_stream_tensor(&stream, index, &tensor);
        if (status != TC_OK) {
            break;
        }
        const uint8_t *payload = data + tensor.payload_offset;
        size_t in_pos = 0;
        status = tc_decoder_init(&decoder, &tensor);
        if (status == TC_OK) {
            status = tc_decoder_set_history(&decoder, history, sizeof history);
        }
        while (status == TC_OK || status == TC_NEED_OUTPUT) {
            size_t out_pos = 0;
            status = tc_decoder_run(&decoder, payload, &in_pos, tensor.payload_size,
                                    output_chunk, &out_pos, sizeof output_chunk);
            if (status == TC_OK) {
                break;
            }
        }
    }
    return (int32_t)status;
}

/* The same through tc_decode_tensor, the one-call API, with the same static
 * tc_decoder: the report measures the stack a caller of that API needs.
 * Tensors up to WHOLE_OUTPUT_SIZE bytes (the bench streams' largest is 12 KB). */
#define WHOLE_OUTPUT_SIZE 65536u
static uint8_t whole_output[WHOLE_OUTPUT_SIZE];

int32_t bench_decode_whole(const uint8_t *data, uint32_t size)
{
    tc_status status = tc_stream_open(&stream, data, size);
    for (uint32_t index = 0; status == TC_OK && index < stream.tensor_count; index++) {
        status = tc_stream_tensor(&stream, index, &tensor);
        if (status == TC_OK) {
            status = tc_decode_tensor(&stream, &tensor, &decoder, whole_output, sizeof whole_output, history, sizeof history);
        }
    }
    return (int32_t)status;
}

/* Keeps every public function in a --gc-sections link, so the linked size
 * is that of the whole library, as a user calling all of it would get. */
const void *const tc_public_api[] = {
    (const void *)tc_stream_open,   (const void *)tc_stream_tensor,       (const void *)tc_stream_find,
    (const void *)tc_decoder_init,  (const void *)tc_decoder_set_history, (const void *)tc_decoder_run,
    (const void *)tc_decode_tensor, (const void *)tc_check_base,          (const void *)tc_crc32,
    (const void *)tc_status_string, (const void *)bench_decode,           (const void *)bench_decode_whole,
};

/* Sizes of the caller-owned structures, read back from the symbol table. */
char sizeof_tc_decoder[sizeof(tc_decoder)];
char sizeof_tc_stream[sizeof(tc_stream)];
char sizeof_tc_tensor_info[sizeof(tc_tensor_info)];
