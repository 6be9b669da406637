/*
 * avr_golden.c - decodes golden vectors on an 8-bit AVR, where int and
 * size_t are 16 bits wide, under simavr; run by tests/test_portability.py.
 *
 * The test generates golden_vectors.inc: the streams as PROGMEM arrays
 * (AVR data pointers cannot read flash, and 16 KB of RAM holds few of them),
 * a table `vectors` of {name, data, rest, first_size, size, is_base}, and
 * float32_samples, little-endian float32 bit patterns to narrow to float16.
 * A stream above 32 KB, the most one AVR object may hold, is split in two
 * arrays: its first first_size bytes at data, the rest at rest.  Each stream's
 * header and directory are copied to RAM, which is all tc_stream_open
 * needs; the payloads are streamed from flash through tc_decoder_run in
 * small chunks, so no tensor has to fit in RAM, and each tensor's CRC-32 is
 * computed over the output as it comes.  The tensors of an is_base vector are kept for the
 * update (delta mode) vector that follows it.
 *
 * Prints on UART0 "reference <file> <tensor> <crc32>" per tensor decoded
 * (damage.c's format) or "FAIL <file> <tensor> <status>", then
 * "float16 <count> <crc32>" and "done", and stops the core (simavr exits on
 * cli; sleep).
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <stdio.h>
#include <string.h>

#include "tflite/tc_tflite.h"
#include "tinycabac.h"

typedef struct {
    const char *name;
    const uint8_t *data; /* PROGMEM: the first first_size bytes */
    const uint8_t *rest; /* PROGMEM: the bytes after them, or NULL */
    uint16_t first_size;
    uint16_t size;
    uint8_t is_base;     /* a later vector updates its tensors */
} golden_vector;

#include "golden_vectors.inc"

#define DIRECTORY_CAPACITY 1024u
#define INPUT_CAPACITY (2u * TC_MAX_VALUE_INPUT)
#define OUTPUT_CHUNK 64u /* a multiple of every element size: base bytes stay aligned */
#define HISTORY_CAPACITY 512u
#define BASE_CAPACITY 2048u
#define BASE_TENSORS 8u
#define BASE_NAME_CAPACITY 16u

typedef struct {
    char name[BASE_NAME_CAPACITY];
    uint8_t name_len;
    uint16_t offset; /* into base_bytes */
    uint16_t size;
} base_tensor;

static uint8_t directory[DIRECTORY_CAPACITY];
static uint8_t input[INPUT_CAPACITY];
static uint8_t output[OUTPUT_CHUNK];
static int8_t history[HISTORY_CAPACITY];
static uint8_t base_bytes[BASE_CAPACITY];
static base_tensor bases[BASE_TENSORS];
static uint8_t base_count;
static uint16_t base_used;
static tc_decoder decoder;

static int uart_put(char c, FILE *stream)
{
    (void)stream;
    while (!(UCSR0A & (1u << UDRE0))) {
    }
    UDR0 = (uint8_t)c;
    return 0;
}

static FILE uart = FDEV_SETUP_STREAM(uart_put, NULL, _FDEV_SETUP_WRITE);

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Copies n bytes of a stream, from `offset` on, out of flash. */
static void copy_stream(uint8_t *to, const golden_vector *v, uint16_t offset, size_t n)
{
    while (n > 0) {
        size_t run = n;
        if (offset < v->first_size) {
            if (run > (size_t)(v->first_size - offset))
                run = v->first_size - offset;
            memcpy_P(to, v->data + offset, run);
        } else {
            memcpy_P(to, v->rest + (offset - v->first_size), run);
        }
        to += run;
        offset += (uint16_t)run;
        n -= run;
    }
}

/* Header and directory into RAM: the bytes tc_stream_open reads. */
static tc_status open_vector(const golden_vector *v, tc_stream *s)
{
    uint32_t directory_size;
    copy_stream(directory, v, 0, TC_HEADER_SIZE);
    directory_size = load_u32(directory + 8);
    if (directory_size > DIRECTORY_CAPACITY - TC_HEADER_SIZE)
        return TC_ERR_OUTPUT_SIZE;
    copy_stream(directory + TC_HEADER_SIZE, v, TC_HEADER_SIZE, (size_t)directory_size);
    return tc_stream_open(s, directory, TC_HEADER_SIZE + (size_t)directory_size);
}

static int is_update(const tc_tensor_info *t)
{
    return t->mode == TC_MODE_DELTA_LOSSLESS || t->mode == TC_MODE_DELTA_QUANTIZED;
}

/* The base tensor an update replaces: same name and byte size, or NULL
 * (the update then applies to zeros, as in the host tools). */
static const uint8_t *find_base(const tc_tensor_info *t, uint32_t bytes)
{
    uint8_t i;
    for (i = 0; i < base_count; i++)
        if (bases[i].name_len == t->name_len && memcmp(bases[i].name, t->name, t->name_len) == 0)
            return bases[i].size == bytes ? base_bytes + bases[i].offset : NULL;
    return NULL;
}

/* Room in base_bytes for the tensor `t` of a base vector, or NULL. */
static uint8_t *keep_as_base(const tc_tensor_info *t, uint32_t bytes)
{
    base_tensor *b = &bases[base_count];
    if (base_count == BASE_TENSORS || t->name_len >= BASE_NAME_CAPACITY || bytes > BASE_CAPACITY - base_used)
        return NULL;
    memcpy(b->name, t->name, t->name_len);
    b->name_len = (uint8_t)t->name_len;
    b->offset = base_used;
    b->size = (uint16_t)bytes;
    base_used += (uint16_t)bytes;
    base_count++;
    return base_bytes + b->offset;
}

/* Top up `input` from the payload in flash; returns the bytes now held. */
static size_t refill(const golden_vector *v, const tc_tensor_info *t, size_t held, uint32_t *fed)
{
    uint32_t left = t->payload_size - *fed;
    size_t n = INPUT_CAPACITY - held;
    if (left < n)
        n = (size_t)left;
    copy_stream(input + held, v, (uint16_t)(t->payload_offset + *fed), n);
    *fed += n;
    return held + n;
}

/* Next output chunk: the base bytes it replaces (delta modes), or zeros. */
static void prepare_output(const uint8_t *base, uint32_t done, uint32_t bytes)
{
    uint32_t left = bytes - done;
    memset(output, 0, sizeof output);
    if (base != NULL)
        memcpy(output, base + done, left < OUTPUT_CHUNK ? (size_t)left : OUTPUT_CHUNK);
}

/* Streams one tensor through tc_decoder_run; *crc covers its output, which
 * is also copied to `keep` when that is not NULL. */
static tc_status decode_tensor(const golden_vector *v, const tc_tensor_info *t, const uint8_t *base,
                               uint8_t *keep, uint32_t *crc)
{
    uint32_t bytes = t->element_count * t->element_size, done = 0, fed = 0;
    size_t held = 0;
    tc_status st = tc_decoder_init(&decoder, t);
    if (st == TC_OK)
        st = tc_decoder_set_history(&decoder, history, sizeof history);
    while (st == TC_OK || st == TC_NEED_INPUT || st == TC_NEED_OUTPUT) {
        size_t in_pos = 0, out_pos = 0;
        held = refill(v, t, held, &fed);
        prepare_output(base, done, bytes);
        st = tc_decoder_run(&decoder, input, &in_pos, held, output, &out_pos, sizeof output);
        *crc = tc_crc32(*crc, output, out_pos);
        if (keep != NULL)
            memcpy(keep + done, output, out_pos);
        done += out_pos;
        held -= in_pos;
        memmove(input, input + in_pos, held);
        if (st == TC_OK)
            break;
        if (st == TC_NEED_INPUT && fed == t->payload_size && in_pos == 0)
            st = TC_ERR_TRUNCATED;
    }
    return st;
}

/* avr-libc's printf has no "%.*s" for the name, which is not NUL-terminated. */
static void report(const golden_vector *v, const tc_tensor_info *t, tc_status st, uint32_t crc)
{
    uint32_t i;
    printf(st == TC_OK ? "reference %s " : "FAIL %s ", v->name);
    for (i = 0; i < t->name_len; i++)
        putchar(t->name[i]);
    if (st == TC_OK)
        printf(" %08lx\n", (unsigned long)crc);
    else
        printf(" %s\n", tc_status_string(st));
}

static void decode_vector(const golden_vector *v)
{
    tc_stream s;
    tc_tensor_info t;
    uint32_t i;
    tc_status st = open_vector(v, &s);
    if (st != TC_OK)
        printf("FAIL %s %s\n", v->name, tc_status_string(st));
    for (i = 0; st == TC_OK && i < s.tensor_count; i++) {
        uint32_t crc = 0, bytes;
        if ((st = tc_stream_tensor(&s, i, &t)) != TC_OK)
            break;
        bytes = t.element_count * t.element_size;
        st = decode_tensor(v, &t, is_update(&t) ? find_base(&t, bytes) : NULL,
                           v->is_base ? keep_as_base(&t, bytes) : NULL, &crc);
        report(v, &t, st, crc);
    }
}

/* float16 narrowing (decoder_c/tflite), whose rounding shifts once
 * overflowed a 16-bit int: the CRC-32 of the little-endian results. */
static void narrow_float32_samples(void)
{
    uint8_t bits[4], half[2];
    uint32_t crc = 0;
    size_t i;
    for (i = 0; i < sizeof float32_samples; i += 4u) {
        uint16_t narrowed;
        memcpy_P(bits, float32_samples + i, 4);
        narrowed = tc_float16_from_float32(load_u32(bits));
        half[0] = (uint8_t)narrowed;
        half[1] = (uint8_t)(narrowed >> 8);
        crc = tc_crc32(crc, half, 2);
    }
    printf("float16 %u %08lx\n", (unsigned)(sizeof float32_samples / 4u), (unsigned long)crc);
}

int main(void)
{
    size_t i;
    UCSR0B = 1u << TXEN0;
    stdout = &uart;
    for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        decode_vector(&vectors[i]);
    narrow_float32_samples();
    printf("done\n");
    cli();
    sleep_cpu();
    return 0;
}
