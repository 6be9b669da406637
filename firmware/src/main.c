/*
 * main.c - tinycabac firmware demo: decode the embedded streams on the device
 * and print a digest of every tensor, so a host can check it bit for bit.
 *
 * For each stream (scripts/embed_streams.py embeds them) it prints
 *
 *     stream <file name> <bytes>
 *     tensor <name> <elements> crc32=<8 lowercase hex digits>   (one per tensor)
 *     OK                                   or   FAIL <reason>
 *
 * and returns 0 only if every stream decoded.  Before any tensor, a stream
 * passes the whole-stream checks of FORMAT 7 that the host tools make too
 * (its exact size, UTF-8 names, no name twice), so the device refuses what
 * the host refuses, with the same reason.  Tensors are decoded one at a
 * time through a 256-byte output buffer whose bytes are folded into a CRC-32
 * and dropped, so RAM use does not depend on the model (the microbit board
 * has 16 KiB).  The payload is read in place from flash.  No printf: a few
 * digits are formatted by hand into one line buffer.
 *
 * Update streams (tinycabac encode --base) apply to the stream embedded just
 * before them: each update tensor's base is decoded from that stream into a
 * RAM buffer (UPDATE_BUFFER_SIZE bytes), checked with tc_check_base, and
 * updated in place, as a device holding its model in RAM would do it.
 *
 * A tensor coded with prediction needs working memory, its info's
 * work_size: H bytes of history for difference or scale prediction (FORMAT
 * 5.7), (H + 1) * rank for factors (5.8), which the decoder fills and reads
 * by itself; the firmware sets aside TINYCABAC_HISTORY_SIZE bytes, 16384 by
 * default (the encoder's default limit; 4096 on the 16 KB micro:bit), set
 * with -D in platformio.ini's build_flags.  A tensor that needs more fails
 * with "FAIL history buffer too small (<work_size> > <TINYCABAC_HISTORY_SIZE>)".
 *
 * A stream of a .tflite file is then also rebuilt into one buffer, as a
 * TensorFlow Lite Micro application needs it (decoder_c/tflite/), and the
 * file's digest printed before the verdict:
 *
 *     tflite <bytes> crc32=<8 lowercase hex digits>
 *
 * TINYCABAC_TFLITE_BUFFER_SIZE sets the buffer; 0 (the default, and the
 * microbit's 16 KiB) leaves the rebuild out.  Update streams are not whole
 * models and are not rebuilt.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "console.h"
#include "embedded_streams.h"
#include "tflite/tc_tflite.h"
#include "tinycabac.h"

#define OUTPUT_CHUNK_SIZE 256u
#ifndef UPDATE_BUFFER_SIZE
#define UPDATE_BUFFER_SIZE 4096u
#endif
#ifndef TINYCABAC_HISTORY_SIZE
#define TINYCABAC_HISTORY_SIZE 16384u
#endif
#ifndef TINYCABAC_TFLITE_BUFFER_SIZE
#define TINYCABAC_TFLITE_BUFFER_SIZE 0u
#endif
#define TFLITE_MAX_WEIGHT_BUFFERS 256u

/* Static rather than on the stack: the size report then shows the demo's
 * whole RAM footprint, and the stack stays small. */
static tc_stream stream;
static tc_tensor_info tensor;
static tc_decoder decoder;
static uint8_t output_chunk[OUTPUT_CHUNK_SIZE];
static tc_stream base_stream;
static tc_tensor_info base_tensor;
static uint8_t update_buffer[UPDATE_BUFFER_SIZE];
static int8_t history[TINYCABAC_HISTORY_SIZE];
/* work_size of the last tensor refused for want of history, for the report. */
static uint32_t history_needed;
static char line[TC_MAX_NAME_LEN + 64u];

typedef struct {
    char *cursor;
    char *end; /* leaves room for the terminating NUL */
} line_writer;

static line_writer line_start(void)
{
    line_writer w = {line, line + sizeof line - 1u};
    return w;
}

static void put_bytes(line_writer *w, const char *text, size_t length)
{
    for (size_t i = 0; i < length && w->cursor < w->end; i++) {
        char c = text[i];
        *w->cursor++ = (c == '\n' || c == '\r' || c == '\0') ? '?' : c; /* one record per line */
    }
}

static void put_text(line_writer *w, const char *text)
{
    size_t length = 0;
    while (text[length] != '\0') {
        length++;
    }
    put_bytes(w, text, length);
}

static void put_decimal(line_writer *w, uint32_t value)
{
    char digits[10];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (count > 0u) {
        put_bytes(w, &digits[--count], 1u);
    }
}

static void put_hex32(line_writer *w, uint32_t value)
{
    static const char hex[] = "0123456789abcdef";
    for (int shift = 28; shift >= 0; shift -= 4) {
        put_bytes(w, &hex[(value >> shift) & 15u], 1u);
    }
}

static void line_send(line_writer *w)
{
    *w->cursor++ = '\n';
    *w->cursor = '\0';
    console_write(line);
}

static void report_stream(const tc_embedded_stream *embedded)
{
    line_writer w = line_start();
    put_text(&w, "stream ");
    put_text(&w, embedded->label);
    put_text(&w, " ");
    put_decimal(&w, (uint32_t)*embedded->length);
    line_send(&w);
}

static void report_tensor(uint32_t crc)
{
    line_writer w = line_start();
    put_text(&w, "tensor ");
    put_bytes(&w, (const char *)tensor.name, tensor.name_len);
    put_text(&w, " ");
    put_decimal(&w, tensor.element_count);
    put_text(&w, " crc32=");
    put_hex32(&w, crc);
    line_send(&w);
}

static tc_status report_failure(tc_status status, uint32_t index)
{
    line_writer w = line_start();
    put_text(&w, "FAIL ");
    put_text(&w, tc_status_string(status));
    if (status == TC_ERR_HISTORY) { /* how much RAM the stream wants, and what there is */
        put_text(&w, " (");
        put_decimal(&w, history_needed);
        put_text(&w, " > ");
        put_decimal(&w, (uint32_t)sizeof history);
        put_text(&w, ")");
    }
    put_text(&w, " (tensor ");
    put_decimal(&w, index);
    put_text(&w, ")");
    line_send(&w);
    return status;
}

/* Remember what t needs when `status` says the history buffer was too small. */
static tc_status note_history(tc_status status, const tc_tensor_info *t)
{
    if (status == TC_ERR_HISTORY) {
        history_needed = t->work_size;
    }
    return status;
}

/* Start decoding `tensor`, with the history buffer if it uses prediction. */
static tc_status start_decoder(void)
{
    tc_status status = tc_decoder_init(&decoder, &tensor);
    if (status == TC_OK) {
        status = note_history(tc_decoder_set_history(&decoder, history, sizeof history), &tensor);
    }
    return status;
}

/* Decode `tensor` chunk by chunk; *crc receives the CRC-32 of its bytes. */
static tc_status decode_tensor(uint32_t *crc)
{
    if (tensor.payload_offset > stream.size ||
        tensor.payload_size > stream.size - tensor.payload_offset) {
        return TC_ERR_TRUNCATED;
    }
    const uint8_t *payload = stream.data + tensor.payload_offset;
    size_t in_pos = 0;
    uint64_t decoded_bytes = 0;
    tc_status status = start_decoder();
    *crc = 0;
    while (status == TC_OK || status == TC_NEED_OUTPUT) {
        size_t out_pos = 0;
        status = tc_decoder_run(&decoder, payload, &in_pos, tensor.payload_size,
                                output_chunk, &out_pos, sizeof output_chunk);
        *crc = tc_crc32(*crc, output_chunk, out_pos);
        decoded_bytes += out_pos;
        if (status == TC_OK) {
            break;
        }
    }
    if (status == TC_NEED_INPUT) {
        return TC_ERR_TRUNCATED; /* the whole payload was offered already */
    }
    if (status == TC_OK && decoded_bytes != (uint64_t)tensor.element_count * tensor.element_size) {
        return TC_ERR_PAYLOAD;
    }
    return status;
}

static int is_update(const tc_tensor_info *t)
{
    return t->mode == TC_MODE_DELTA_LOSSLESS || t->mode == TC_MODE_DELTA_QUANTIZED;
}

/* The stream that updates apply to (the one embedded before theirs), opened
 * at a stream's first update: base_open is tc_stream_open's status, and
 * base_names_unique whether it passed check_whole_stream when it was
 * decoded, so that an entry of the right name is the only one. */
static const tc_embedded_stream *base_source;
static int base_ready;
static tc_status base_open;
static int base_names_unique;
static uint32_t base_next; /* the entry after the base tensor found last */
/* Whether the stream decoded last passed check_whole_stream. */
static int last_stream_checked;

static void open_base(void)
{
    base_open = TC_ERR_BASE; /* an update needs a stream before it */
    if (base_source != NULL) {
        base_open = tc_stream_open(&base_stream, base_source->data, (size_t)*base_source->length);
    }
    base_next = 0;
    base_ready = 1;
}

static int same_name(const tc_tensor_info *a, const tc_tensor_info *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* Find the base entry of tensor's name.  An update usually holds its
 * tensors in the base's order, so the entry after the last one found is
 * tried first: a whole update then reads the base's entries once, in order. */
static tc_status find_base(void)
{
    uint32_t found = base_next;
    tc_status status = TC_OK;
    if (!base_names_unique || found >= base_stream.tensor_count ||
        tc_stream_tensor(&base_stream, found, &base_tensor) != TC_OK || !same_name(&base_tensor, &tensor)) {
        status = tc_stream_find(&base_stream, (const char *)tensor.name, tensor.name_len, &base_tensor, &found);
    }
    if (status == TC_OK) {
        base_next = found + 1u;
    }
    return status;
}

/* Decode the base tensor of the same name as `tensor` into update_buffer. */
static tc_status load_base(size_t size)
{
    tc_status status;
    if (!base_ready) {
        open_base();
    }
    status = base_open;
    if (status == TC_OK) {
        status = find_base();
    }
    if (status == TC_ERR_NOT_FOUND || (status == TC_OK && is_update(&base_tensor))) {
        return TC_ERR_BASE;
    }
    if (status == TC_OK && (uint64_t)base_tensor.element_count * base_tensor.element_size != size) {
        return TC_ERR_BASE;
    }
    if (status != TC_OK) {
        return status;
    }
    return note_history(tc_decode_tensor(&base_stream, &base_tensor, &decoder, update_buffer, size, history, sizeof history),
                        &base_tensor);
}

/* Apply update `tensor` in place to its base; *crc receives the new bytes' CRC-32. */
static tc_status apply_update_tensor(uint32_t *crc)
{
    uint64_t size = (uint64_t)tensor.element_count * tensor.element_size;
    size_t in_pos = 0, out_pos = 0;
    tc_status status;
    if (size > sizeof update_buffer) {
        return TC_ERR_OUTPUT_SIZE;
    }
    if ((status = load_base((size_t)size)) != TC_OK ||
        (status = tc_check_base(&tensor, update_buffer, (size_t)size)) != TC_OK ||
        (status = start_decoder()) != TC_OK) {
        return status;
    }
    if (tensor.payload_offset > stream.size || tensor.payload_size > stream.size - tensor.payload_offset) {
        return TC_ERR_TRUNCATED;
    }
    status = tc_decoder_run(&decoder, stream.data + tensor.payload_offset, &in_pos, tensor.payload_size,
                            update_buffer, &out_pos, (size_t)size);
    *crc = tc_crc32(0, update_buffer, out_pos);
    return status == TC_NEED_INPUT ? TC_ERR_TRUNCATED : status;
}

#if TINYCABAC_TFLITE_BUFFER_SIZE > 0
static uint8_t tflite_model[TINYCABAC_TFLITE_BUFFER_SIZE];
static uint8_t tflite_places[8u * TFLITE_MAX_WEIGHT_BUFFERS + 4u];

/* Rebuild the .tflite file of a stream that holds one and print its digest;
 * TC_OK for a stream of plain arrays, which has nothing to rebuild. */
static tc_status rebuild_tflite(void)
{
    uint32_t file_size = 0, places = 0;
    tc_status status = tc_tflite_info(&stream, &decoder, history, sizeof history, &file_size, &places);
    if (status == TC_ERR_NOT_FOUND) {
        return TC_OK;
    }
    if (status == TC_OK && places > TFLITE_MAX_WEIGHT_BUFFERS) {
        status = TC_ERR_OUTPUT_SIZE; /* more weight buffers than the table holds */
    }
    if (status == TC_OK) {
        status = tc_tflite_rebuild(&stream, &decoder, history, sizeof history, tflite_places, sizeof tflite_places,
                                   tflite_model, sizeof tflite_model);
    }
    if (status == TC_OK) {
        line_writer w = line_start();
        put_text(&w, "tflite ");
        put_decimal(&w, file_size);
        put_text(&w, " crc32=");
        put_hex32(&w, tc_crc32(0, tflite_model, file_size));
        line_send(&w);
    }
    return status;
}
#else
static tc_status rebuild_tflite(void)
{
    return TC_OK;
}
#endif

/* Length of the UTF-8 sequence that a lead byte starts and the range its
 * second byte must lie in, which rules out overlong forms, surrogates and
 * code points above U+10FFFF, as a strict UTF-8 decoder (Python's) does;
 * 0 for a byte that cannot start a sequence. */
static unsigned utf8_sequence(uint8_t lead, uint8_t *second_min, uint8_t *second_max)
{
    *second_min = 0x80u;
    *second_max = 0xBFu;
    if (lead < 0x80u) {
        return 1u;
    }
    if (lead < 0xC2u || lead > 0xF4u) {
        return 0u; /* a continuation byte, an overlong 2-byte lead, or beyond U+10FFFF */
    }
    if (lead < 0xE0u) {
        return 2u;
    }
    if (lead < 0xF0u) {
        *second_min = lead == 0xE0u ? 0xA0u : 0x80u; /* no overlong 3-byte forms */
        *second_max = lead == 0xEDu ? 0x9Fu : 0xBFu; /* no surrogates */
        return 3u;
    }
    *second_min = lead == 0xF0u ? 0x90u : 0x80u; /* no overlong 4-byte forms */
    *second_max = lead == 0xF4u ? 0x8Fu : 0xBFu; /* nothing above U+10FFFF */
    return 4u;
}

static int is_utf8(const uint8_t *text, size_t length)
{
    size_t i = 0;
    while (i < length) {
        uint8_t second_min, second_max;
        unsigned count = utf8_sequence(text[i], &second_min, &second_max);
        if (count == 0u || count > length - i) {
            return 0;
        }
        for (unsigned k = 1; k < count; k++) {
            uint8_t low = k == 1u ? second_min : 0x80u, high = k == 1u ? second_max : 0xBFu;
            if (text[i + k] < low || text[i + k] > high) {
                return 0;
            }
        }
        i += count;
    }
    return 1;
}

/* A filter of the names met so far, one bit per hash, so that checking a
 * stream's names for one that appears twice parses each directory entry
 * once: only a name whose bit is already set (a repeat, or another name of
 * the same hash) costs a walk of the directory with tc_stream_find. */
#define NAME_FILTER_BITS 2048u
static uint8_t name_filter[NAME_FILTER_BITS / 8u];

static uint32_t name_hash(const uint8_t *name, uint32_t length)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (uint32_t i = 0; i < length; i++) {
        hash = (hash ^ name[i]) * 16777619u;
    }
    return (hash ^ (hash >> 11) ^ (hash >> 22)) % NAME_FILTER_BITS;
}

/* Whether t's name may have appeared before (and mark it as seen). */
static int name_maybe_seen(const tc_tensor_info *t)
{
    uint32_t bit = name_hash(t->name, t->name_len);
    uint8_t mask = (uint8_t)(1u << (bit % 8u));
    int seen = (name_filter[bit / 8u] & mask) != 0;
    name_filter[bit / 8u] |= mask;
    return seen;
}

/* TC_ERR_RESERVED if an entry before `index` of s has t's name (t may be
 * overwritten). */
static tc_status check_name_once(tc_stream *s, tc_tensor_info *t, uint32_t index)
{
    uint32_t first = index;
    tc_status status = TC_OK;
    if (name_maybe_seen(t)) {
        /* tc_stream_find returns the first entry of a name */
        status = tc_stream_find(s, (const char *)t->name, t->name_len, t, &first);
    }
    return status == TC_OK && first != index ? TC_ERR_RESERVED : status;
}

/* FORMAT 7's checks of a whole stream held in memory: the stream's size,
 * then UTF-8 names and a name that appears twice.  The last two are both
 * reserved fields, so one pass over the names gives FORMAT 7's verdict.
 * The C decoder leaves them to its caller, as it may hold only part of a
 * stream.  `t` receives each entry in turn. */
static tc_status check_whole_stream(tc_stream *s, tc_tensor_info *t)
{
    uint64_t expected = (uint64_t)TC_HEADER_SIZE + s->directory_size + s->payload_area_size;
    tc_status status = TC_OK;
    if (s->size != expected) {
        return s->size < expected ? TC_ERR_TRUNCATED : TC_ERR_RESERVED;
    }
    for (uint32_t i = 0; i < sizeof name_filter; i++) {
        name_filter[i] = 0;
    }
    for (uint32_t index = 0; status == TC_OK && index < s->tensor_count; index++) {
        status = tc_stream_tensor(s, index, t);
        if (status == TC_OK && !is_utf8(t->name, t->name_len)) {
            status = TC_ERR_RESERVED;
        }
        if (status == TC_OK) {
            status = check_name_once(s, t, index);
        }
    }
    return status;
}

/* Decode one embedded stream, printing its report; TC_OK if all decoded.
 * `base` is the stream embedded before it, which update tensors apply to. */
static tc_status decode_stream(const tc_embedded_stream *embedded, const tc_embedded_stream *base)
{
    report_stream(embedded);
    base_source = base;
    base_ready = 0;
    base_names_unique = base != NULL && last_stream_checked;
    tc_status status = tc_stream_open(&stream, embedded->data, (size_t)*embedded->length);
    if (status == TC_OK) {
        status = check_whole_stream(&stream, &tensor);
    }
    last_stream_checked = status == TC_OK;
    if (status != TC_OK) {
        line_writer w = line_start();
        put_text(&w, "FAIL ");
        put_text(&w, tc_status_string(status));
        line_send(&w);
        return status;
    }
    int whole_model = 1;
    for (uint32_t index = 0; index < stream.tensor_count; index++) {
        uint32_t crc = 0;
        status = tc_stream_tensor(&stream, index, &tensor);
        if (status == TC_OK) {
            whole_model &= !is_update(&tensor);
            status = is_update(&tensor) ? apply_update_tensor(&crc) : decode_tensor(&crc);
        }
        if (status != TC_OK) {
            return report_failure(status, index);
        }
        report_tensor(crc);
    }
    if (whole_model && (status = rebuild_tflite()) != TC_OK) {
        line_writer w = line_start();
        put_text(&w, "FAIL ");
        put_text(&w, tc_status_string(status));
        put_text(&w, " (tflite rebuild)");
        line_send(&w);
        return status;
    }
    console_write("OK\n");
    return TC_OK;
}

int tinycabac_demo(void)
{
    int exit_status = 0;
    for (unsigned i = 0; i < tc_embedded_stream_count; i++) {
        const tc_embedded_stream *previous = i > 0 ? &tc_embedded_streams[i - 1] : NULL;
        if (decode_stream(&tc_embedded_streams[i], previous) != TC_OK) {
            exit_status = 1;
        }
    }
    return exit_status;
}
