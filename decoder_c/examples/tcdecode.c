/*
 * tcdecode - decode a tinycabac stream file with the C decoder, as a device
 * does, and print what the firmware prints (firmware/src/main.c):
 *
 *     tensor <name> <elements> crc32=<8 lowercase hex digits>   (one per tensor)
 *     tflite <bytes> crc32=<8 hex digits>                       (with --tflite)
 *     OK                                      or   FAIL <reason> (tensor <index>)
 *
 * usage: tcdecode STREAM [--base BASE_STREAM] [--tflite OUT.tflite]
 *
 * An update stream (tinycabac encode --base) needs the stream of its base:
 * each update tensor starts from the base tensor of the same name, decoded
 * from BASE_STREAM, and is updated in place.  --tflite rebuilds the .tflite
 * file a stream of one holds (decoder_c/tflite) and writes it to OUT.  The
 * exit status is 0 only if everything decoded and every CRC-32 matched.
 *
 * The library itself has no heap; this host program takes its buffers from
 * malloc, sized by what the stream's directory says each tensor needs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tflite/tc_tflite.h"
#include "tinycabac.h"

typedef struct {
    uint8_t *data;
    size_t size;
} file_bytes;

static tc_decoder decoder; /* 752 bytes: static, off the stack */

static int read_file(const char *path, file_bytes *file)
{
    FILE *f = fopen(path, "rb");
    long size;
    file->data = NULL;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f != NULL)
            fclose(f);
        return 0;
    }
    file->size = (size_t)size;
    file->data = malloc(file->size + 1u); /* + 1: an empty file is no NULL */
    if (file->data == NULL || fread(file->data, 1, file->size, f) != file->size) {
        fclose(f);
        return 0;
    }
    return fclose(f) == 0;
}

static int fail(tc_status status, uint32_t index)
{
    printf("FAIL %s (tensor %lu)\n", tc_status_string(status), (unsigned long)index);
    return 1;
}

/* A tensor's decoded size in bytes, or 0 if it does not fit a size_t. */
static size_t tensor_bytes(const tc_tensor_info *t)
{
    uint64_t bytes = (uint64_t)t->element_count * t->element_size;
    return bytes > (uint64_t)(SIZE_MAX - 1u) ? 0u : (size_t)bytes;
}

static int is_update(const tc_tensor_info *t)
{
    return t->mode == TC_MODE_DELTA_LOSSLESS || t->mode == TC_MODE_DELTA_QUANTIZED;
}

/* The base of update tensor `t`: the tensor of the same name in `base`,
 * decoded into out[0 .. size). */
static tc_status decode_base(tc_stream *base, const tc_tensor_info *t, uint8_t *out, size_t size)
{
    tc_tensor_info base_info;
    uint32_t index;
    tc_status status;
    int8_t *work;
    status = tc_stream_find(base, (const char *)t->name, t->name_len, &base_info, &index);
    if (status != TC_OK)
        return status == TC_ERR_NOT_FOUND ? TC_ERR_BASE : status;
    if (tensor_bytes(&base_info) != size)
        return TC_ERR_BASE;
    work = malloc(base_info.work_size + 1u);
    status = work == NULL ? TC_ERR_ARGUMENT : tc_decode_tensor(base, &base_info, &decoder, out, size, work,
                                                                base_info.work_size);
    free(work);
    return status;
}

static tc_status decode_one(tc_stream *s, tc_stream *base, const tc_tensor_info *t, uint32_t *crc)
{
    size_t size = tensor_bytes(t);
    uint8_t *out = malloc(size + 1u);
    int8_t *work = malloc(t->work_size + 1u);
    tc_status status = out == NULL || work == NULL || (size == 0 && t->element_count != 0) ? TC_ERR_ARGUMENT : TC_OK;
    if (status == TC_OK && is_update(t))
        status = decode_base(base, t, out, size);
    if (status == TC_OK)
        status = tc_decode_tensor(s, t, &decoder, out, size, work, t->work_size);
    if (status == TC_OK)
        *crc = tc_crc32(0, out, size);
    free(out);
    free(work);
    return status;
}

static int rebuild_tflite(tc_stream *s, const char *path)
{
    uint32_t file_size = 0, places = 0;
    uint8_t *model = NULL, *table = NULL;
    int8_t *work = NULL;
    size_t work_size = 0;
    uint32_t i;
    tc_status status;
    FILE *out;
    tc_tensor_info t;
    for (i = 0; i < s->tensor_count; i++) /* the largest working memory any tensor needs */
        if (tc_stream_tensor(s, i, &t) == TC_OK && t.work_size > work_size)
            work_size = t.work_size;
    work = malloc(work_size + 1u);
    status = work == NULL ? TC_ERR_ARGUMENT : tc_tflite_info(s, &decoder, work, work_size, &file_size, &places);
    if (status == TC_OK) {
        model = malloc((size_t)file_size + 1u);
        table = malloc(8u * (size_t)places + 4u);
        status = model == NULL || table == NULL ? TC_ERR_ARGUMENT
                 : tc_tflite_rebuild(s, &decoder, work, work_size, table, 8u * (size_t)places + 4u, model,
                                     file_size);
    }
    if (status == TC_OK) {
        out = fopen(path, "wb");
        if (out == NULL || fwrite(model, 1, file_size, out) != file_size || fclose(out) != 0) {
            printf("FAIL cannot write %s\n", path);
            status = TC_ERR_ARGUMENT;
        } else {
            printf("tflite %lu crc32=%08lx\n", (unsigned long)file_size, (unsigned long)tc_crc32(0, model, file_size));
        }
    } else {
        printf("FAIL %s (.tflite rebuild)\n", tc_status_string(status));
    }
    free(model);
    free(table);
    free(work);
    return status == TC_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    file_bytes stream_file, base_file = {NULL, 0};
    const char *tflite_path = NULL;
    tc_stream s, base;
    tc_status status;
    uint32_t i;
    int arg;
    if (argc < 2) {
        fprintf(stderr, "usage: %s STREAM [--base BASE_STREAM] [--tflite OUT.tflite]\n", argv[0]);
        return 2;
    }
    for (arg = 2; arg + 1 < argc; arg += 2) {
        if (strcmp(argv[arg], "--base") == 0 && read_file(argv[arg + 1], &base_file))
            continue;
        if (strcmp(argv[arg], "--tflite") == 0) {
            tflite_path = argv[arg + 1];
            continue;
        }
        fprintf(stderr, "%s: bad argument or unreadable file: %s %s\n", argv[0], argv[arg], argv[arg + 1]);
        return 2;
    }
    if (arg != argc || !read_file(argv[1], &stream_file)) {
        fprintf(stderr, "%s: cannot read %s, or an option without its value\n", argv[0], argv[1]);
        return 2;
    }
    memset(&base, 0, sizeof base);
    if (base_file.data != NULL && (status = tc_stream_open(&base, base_file.data, base_file.size)) != TC_OK) {
        printf("FAIL base stream: %s\n", tc_status_string(status));
        return 1;
    }
    if ((status = tc_stream_open(&s, stream_file.data, stream_file.size)) != TC_OK) {
        printf("FAIL %s\n", tc_status_string(status));
        return 1;
    }
    for (i = 0; i < s.tensor_count; i++) {
        tc_tensor_info t;
        uint32_t crc = 0;
        if ((status = tc_stream_tensor(&s, i, &t)) != TC_OK)
            return fail(status, i);
        if (is_update(&t) && base.data == NULL) {
            printf("FAIL an update: give the stream of its base with --base (tensor %lu)\n", (unsigned long)i);
            return 1;
        }
        if ((status = decode_one(&s, &base, &t, &crc)) != TC_OK)
            return fail(status, i);
        printf("tensor %.*s %lu crc32=%08lx\n", (int)t.name_len, (const char *)t.name, (unsigned long)t.element_count,
               (unsigned long)crc);
    }
    if (tflite_path != NULL && rebuild_tflite(&s, tflite_path) != 0)
        return 1;
    printf("OK\n");
    free(stream_file.data);
    free(base_file.data);
    return 0;
}
