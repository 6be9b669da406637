/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tflite_rebuild.c - command-line driver for decoder_c/tflite/tc_tflite.c,
 * run by tests/test_tflite_rebuild.py under the sanitizers:
 *
 *     tflite_rebuild rebuild STREAM OUT [MODEL_SIZE [table-in-model]]
 *                                                     rebuild the .tflite; MODEL_SIZE
 *                                                     (default: the file size) sizes
 *                                                     the model buffer exactly, so any
 *                                                     write past it is caught;
 *                                                     table-in-model puts the places
 *                                                     table in the model buffer's tail
 *     tflite_rebuild float16 IN OUT                   narrow little-endian float32
 *                                                     bit patterns to float16
 *
 * Prints "status <tc_status>" and exits 0 whatever the status; 2 on a usage
 * or I/O problem.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tc_test_util.h"
#include "tflite/tc_tflite.h"

static int write_file(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(data, 1, size, f) == size;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    return ok;
}

static int rebuild(const char *stream_path, const char *out_path, const char *model_size_text, int table_in_model)
{
    static tc_decoder decoder;
    static int8_t history[65536];
    tc_stream s;
    size_t size, model_size;
    uint32_t file_size = 0, places = 0;
    unsigned char *data = tcu_read_file(stream_path, &size), *table, *model;
    tc_status st;
    if (data == NULL)
        return 2;
    st = tc_stream_open(&s, data, size);
    if (st == TC_OK)
        st = tc_tflite_info(&s, &decoder, history, sizeof history, &file_size, &places);
    if (st != TC_OK) {
        printf("status %d\n", (int)st);
        free(data);
        return 0;
    }
    model_size = model_size_text != NULL ? (size_t)strtoul(model_size_text, NULL, 10) : file_size;
    model = malloc(model_size + 1u); /* +1: malloc(0) may return NULL */
    table = malloc(8u * (size_t)places + 4u);
    if (table_in_model && model_size >= 8u * (size_t)places + 4u) {
        free(table);
        table = NULL;
    }
    st = tc_tflite_rebuild(&s, &decoder, history, sizeof history,
                           table != NULL ? table : model + model_size - (8u * (size_t)places + 4u),
                           8u * (size_t)places + 4u, model, model_size);
    printf("status %d\n", (int)st);
    if (st == TC_OK && !write_file(out_path, model, file_size))
        return 2;
    free(table);
    free(model);
    free(data);
    return 0;
}

static int narrow(const char *in_path, const char *out_path)
{
    size_t size, i;
    unsigned char *in = tcu_read_file(in_path, &size), *out;
    if (in == NULL)
        return 2;
    out = malloc(size / 2u + 1u);
    for (i = 0; i + 4u <= size; i += 4u) {
        uint32_t bits = (uint32_t)in[i] | ((uint32_t)in[i + 1] << 8) | ((uint32_t)in[i + 2] << 16) |
                        ((uint32_t)in[i + 3] << 24);
        uint16_t half = tc_float16_from_float32(bits);
        out[i / 2u] = (unsigned char)half;
        out[i / 2u + 1u] = (unsigned char)(half >> 8);
    }
    i = write_file(out_path, out, size / 2u);
    free(in);
    free(out);
    return i ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "rebuild") == 0)
        return rebuild(argv[2], argv[3], argc >= 5 ? argv[4] : NULL, argc >= 6 && strcmp(argv[5], "table-in-model") == 0);
    if (argc == 4 && strcmp(argv[1], "float16") == 0)
        return narrow(argv[2], argv[3]);
    fprintf(stderr, "usage: tflite_rebuild rebuild STREAM OUT [MODEL_SIZE [table-in-model]] | float16 IN OUT\n");
    return 2;
}
