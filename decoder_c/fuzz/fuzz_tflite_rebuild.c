/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_tflite_rebuild.c - the .tflite rebuild (decoder_c/tflite/) of a
 * hostile stream, as a device does it with a model received over the air:
 * tc_tflite_info, then tc_tflite_rebuild into a model buffer and a places
 * table of exactly the sizes asked for, so ASan sees a write past either
 * (the golden .tflite streams carry packed skeletons, FORMAT 3.6, which are
 * unpacked in the model buffer's last S + P bytes).
 *
 * Byte 0 bit 1 (FUZZ_FIX_TENSOR_CRC) repairs the places table's CRC-32 after
 * the mutation, so that hostile offsets reach the checks instead of failing
 * the CRC.  Byte 1 bit 0: a model buffer one byte short, which must be refused.
 */
#include "fuzz_common.h"
#include "tflite/tc_tflite.h"

/* The working state of every tc_decode_tensor call here. */
static tc_decoder whole_decoder;

#define FUZZ_MAX_PLACES 65536u

static int8_t history[4096];

/* Make the places table's stored CRC-32 match what it decodes to. */
static void repair_places_crc(uint8_t *stream, size_t n)
{
    tc_stream s;
    tc_tensor_info t;
    uint32_t index;
    size_t bytes;
    uint8_t *out;
    if (tc_stream_open(&s, stream, n) != TC_OK ||
        tc_stream_find(&s, TC_TFLITE_PLACES_NAME, sizeof TC_TFLITE_PLACES_NAME - 1, &t, &index) != TC_OK ||
        !fuzz_output_fits(&t, &bytes))
        return;
    out = malloc(bytes + 1u);
    if (out == NULL)
        abort();
    if (tc_decode_tensor(&s, &t, &whole_decoder, out, bytes, history, sizeof history) == TC_ERR_CRC) {
        tcu_put_u32(stream + tcu_entry_crc_offset(&s, &t), tc_crc32(0, out, bytes));
        tcu_fix_header_crc(stream, n);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tc_decoder decoder;
    tc_stream s;
    size_t n;
    uint32_t file_size, places;
    uint8_t *stream;
    if (size < FUZZ_PREFIX)
        return 0;
    stream = fuzz_stream_copy(data, size, FUZZ_PREFIX, &n);
    if (data[0] & FUZZ_FIX_TENSOR_CRC)
        repair_places_crc(stream, n);
    if (tc_stream_open(&s, stream, n) == TC_OK &&
        tc_tflite_info(&s, &decoder, history, sizeof history, &file_size, &places) == TC_OK &&
        file_size <= FUZZ_MAX_OUTPUT && places <= FUZZ_MAX_PLACES) {
        size_t short_by = (data[1] & 1u) && file_size > 0 ? 1u : 0u, table_size = 8u * (size_t)places + 4u;
        uint8_t *table = malloc(table_size), *model = malloc(file_size - short_by + 1u);
        tc_status st;
        if (table == NULL || model == NULL)
            abort();
        st = tc_tflite_rebuild(&s, &decoder, history, sizeof history, table, table_size, model, file_size - short_by);
        TCU_CHECK(!short_by || st != TC_OK, "a model buffer one byte short was accepted");
        free(table);
        free(model);
    }
    free(stream);
    return 0;
}
