/* Decodes a .tcb stream with a copy of the C decoder whose bin decoder calls
 * trace_bin (context_rates.py patches the hooks in) and writes the log: per
 * bin the context's number and the bin, per tensor a 255, 255 marker. */
#include <stdio.h>
#include <stdlib.h>
#include "tinycabac.h"

static FILE *trace;
static const tc_context *first_context;

void trace_start(const tc_context *first)
{
    first_context = first;
    fputc(255, trace);
    fputc(255, trace);
}

void trace_bin(const tc_context *c, unsigned bin)
{
    fputc((int)(c - first_context), trace);
    fputc((int)bin, trace);
}

static int8_t work[1 << 20];
static tc_decoder decoder;

int main(int argc, char **argv)
{
    FILE *f;
    long size;
    uint8_t *data;
    tc_stream s;
    uint32_t i;
    if (argc != 3 || !(f = fopen(argv[1], "rb")) || !(trace = fopen(argv[2], "wb")))
        return 2;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    data = malloc((size_t)size);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size || tc_stream_open(&s, data, (size_t)size))
        return 1;
    for (i = 0; i < s.tensor_count; i++) {
        tc_tensor_info t;
        size_t bytes;
        uint8_t *out;
        if (tc_stream_tensor(&s, i, &t))
            return 1;
        bytes = (size_t)t.element_count * t.element_size;
        out = malloc(bytes + 1);
        if (!out || tc_decode_tensor(&s, &t, &decoder, out, bytes, work, sizeof work))
            return 1;
        free(out);
    }
    return fclose(trace) != 0;
}
