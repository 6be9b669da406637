/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tc_tflite.c - rebuild a .tflite file on the device (see tc_tflite.h).
 *
 * A stream of a .tflite file (FORMAT 3.5) holds the weight buffers as
 * tensors, then the skeleton (the file with those buffers cut out), plain
 * (__tflite_skeleton__) or packed (__tflite_packed_skeleton__, FORMAT 3.6),
 * and __tflite_places__ (int32: the file size, then the directory index and
 * file offset of every weight buffer, by increasing offset).
 *
 * The rebuild works in place: the skeleton's S bytes are decoded into the
 * end of the file's room, model[file_size - S .. file_size), then from the
 * first weight buffer to the last, the skeleton bytes before a buffer move
 * down to their final place and the buffer is decoded after them.  What is
 * still to be read of the skeleton then always starts at or after where the
 * buffer ends, so nothing is overwritten before it is used, and only one
 * tensor is decoded at a time.
 *
 * A packed skeleton of P bytes is decoded into the last P bytes of the
 * file's room, unpacked into the S bytes in front of them (the format
 * promises S + P <= the file size), and moved up by P: then the rebuild goes
 * on as for a plain one.  Unpacking needs no RAM but four 256-byte tables
 * on the stack, and checks every length and distance before it writes, so a
 * corrupt packed skeleton never writes outside the S bytes.
 */
#include "tc_tflite.h"

#include <string.h>

/* Kept out of line where the compiler allows: the unpacker's 1 KiB of tables
 * then lives only while it runs, not in the rebuild's frame, which stays
 * live under every weight tensor's decoding. */
#if defined(__GNUC__)
#define TC_TFLITE_OUT_OF_LINE __attribute__((noinline))
#else
#define TC_TFLITE_OUT_OF_LINE
#endif

static uint32_t read_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Bytes per element in the .tflite file; float16 decodes to float32 and is
 * narrowed back.  0: a dtype a .tflite weight buffer cannot have here. */
static uint32_t file_element_size(unsigned dtype)
{
    switch (dtype) {
    case TC_DTYPE_INT8:
    case TC_DTYPE_UINT8: return 1;
    case TC_DTYPE_INT16:
    case TC_DTYPE_FLOAT16: return 2;
    case TC_DTYPE_INT32:
    case TC_DTYPE_FLOAT32: return 4;
    default: return 0;
    }
}

static tc_status find_tensor(tc_stream *s, const char *name, size_t name_len, unsigned dtype,
                             tc_tensor_info *info)
{
    uint32_t index;
    tc_status st = tc_stream_find(s, name, name_len, info, &index);
    if (st != TC_OK)
        return st;
    return info->dtype == dtype && info->mode == TC_MODE_LOSSLESS ? TC_OK : TC_ERR_RESERVED;
}

/* The places table; a stream that also has the JSON layout, which only
 * the host tools read, is refused as they refuse it (FORMAT 3.5). */
static tc_status find_places(tc_stream *s, tc_tensor_info *info)
{
    tc_tensor_info layout;
    tc_status st = find_tensor(s, TC_TFLITE_PLACES_NAME, sizeof TC_TFLITE_PLACES_NAME - 1, TC_DTYPE_INT32, info);
    if (st == TC_OK && info->element_count % 2u != 1u)
        return TC_ERR_RESERVED; /* the file size, then pairs */
    if (st == TC_OK && tc_stream_find(s, TC_TFLITE_LAYOUT_NAME, sizeof TC_TFLITE_LAYOUT_NAME - 1, &layout, NULL) == TC_OK)
        return TC_ERR_RESERVED;
    return st;
}

/* The skeleton, plain or packed: a stream with both, or neither, cannot
 * be rebuilt (FORMAT 3.5). */
static tc_status find_skeleton(tc_stream *s, tc_tensor_info *info, int *packed)
{
    tc_tensor_info other;
    tc_status st = find_tensor(s, TC_TFLITE_SKELETON_NAME, sizeof TC_TFLITE_SKELETON_NAME - 1, TC_DTYPE_UINT8, info);
    *packed = st == TC_ERR_NOT_FOUND;
    if (*packed)
        return find_tensor(s, TC_TFLITE_PACKED_SKELETON_NAME, sizeof TC_TFLITE_PACKED_SKELETON_NAME - 1,
                           TC_DTYPE_UINT8, info);
    if (tc_stream_find(s, TC_TFLITE_PACKED_SKELETON_NAME, sizeof TC_TFLITE_PACKED_SKELETON_NAME - 1, &other, NULL) ==
        TC_OK)
        return TC_ERR_RESERVED;
    return st;
}

static tc_status start_decoder(const tc_stream *s, const tc_tensor_info *t, tc_decoder *d, int8_t *history,
                               size_t history_size)
{
    tc_status st;
    if (t->payload_offset > s->size || t->payload_size > s->size - t->payload_offset)
        return TC_ERR_TRUNCATED;
    if ((st = tc_decoder_init(d, t)) != TC_OK)
        return st;
    return tc_decoder_set_history(d, history, history_size);
}

/* A float16 weight buffer: decoded as float32 through a small chunk and
 * narrowed into out[0 .. 2 * element_count). */
static tc_status decode_float16(const tc_stream *s, const tc_tensor_info *t, tc_decoder *d, int8_t *history,
                                size_t history_size, uint8_t *out)
{
    uint8_t chunk[64];
    size_t in_pos = 0, written = 0;
    tc_status st = start_decoder(s, t, d, history, history_size);
    while (st == TC_OK) {
        size_t out_pos = 0, i;
        st = tc_decoder_run(d, s->data + t->payload_offset, &in_pos, t->payload_size, chunk, &out_pos, sizeof chunk);
        for (i = 0; i + 4u <= out_pos; i += 4u, written += 2u) {
            uint16_t half = tc_float16_from_float32(read_le32(chunk + i));
            out[written] = (uint8_t)half;
            out[written + 1u] = (uint8_t)(half >> 8);
        }
        if (st == TC_NEED_OUTPUT)
            st = TC_OK;
        else if (st == TC_OK)
            break;
    }
    return st == TC_NEED_INPUT ? TC_ERR_PAYLOAD : st;
}

uint16_t tc_float16_from_float32(uint32_t bits)
{
    uint32_t sign = (bits >> 16) & 0x8000u, mantissa = bits & 0x7FFFFFu, half, rest, tie;
    int32_t exponent = (int32_t)((bits >> 23) & 0xFFu) - 127 + 15;
    unsigned shift;
    if (exponent == 0xFF - 127 + 15) /* infinity or NaN (a valid stream decodes neither) */
        return (uint16_t)(sign | 0x7C00u | (mantissa ? 0x200u : 0u));
    if (exponent >= 31)
        return (uint16_t)(sign | 0x7C00u); /* beyond the float16 range: infinity */
    if (exponent < -10)
        return (uint16_t)sign; /* below half the smallest subnormal: zero */
    if (exponent > 0) {
        half = ((uint32_t)exponent << 10) | (mantissa >> 13);
        shift = 13;
    } else { /* subnormal float16: the implicit bit joins the mantissa */
        mantissa |= 0x800000u;
        shift = (unsigned)(14 - exponent);
        half = mantissa >> shift;
    }
    rest = mantissa & (((uint32_t)1 << shift) - 1u); /* shift <= 24: 1u is 16 bits wide on some C99 targets */
    tie = (uint32_t)1 << (shift - 1u);
    if (rest > tie || (rest == tie && (half & 1u)))
        half++; /* a carry out of the mantissa steps the exponent, up to infinity */
    return (uint16_t)(sign | half);
}

/* Weight buffer number k of the places table: its tensor and byte range.
 * A reserved "__" tensor is container data, never a weight buffer: the
 * host tools refuse such a table too, so every tier rebuilds the same. */
static tc_status place_of(tc_stream *s, const uint8_t *places, uint32_t k, tc_tensor_info *t,
                          uint32_t *offset, uint32_t *length)
{
    const uint8_t *entry = places + 4u + 8u * k;
    uint32_t size;
    if (tc_stream_tensor(s, read_le32(entry), t) != TC_OK)
        return TC_ERR_RESERVED;
    if (t->name_len >= 2u && t->name[0] == '_' && t->name[1] == '_')
        return TC_ERR_RESERVED;
    size = file_element_size(t->dtype);
    if (size == 0 || t->mode > TC_MODE_QUANTIZED) /* an update needs its base: not a whole model */
        return TC_ERR_RESERVED;
    if (t->element_count > UINT32_MAX / size)
        return TC_ERR_RESERVED;
    *offset = read_le32(entry + 4);
    *length = t->element_count * size;
    return TC_OK;
}

tc_status tc_tflite_info(tc_stream *s, tc_decoder *decoder, int8_t *history, size_t history_size,
                         uint32_t *file_size, uint32_t *place_count)
{
    tc_tensor_info places;
    uint8_t first[4];
    size_t in_pos = 0, out_pos = 0;
    tc_status st;
    if (s == NULL || decoder == NULL || file_size == NULL || place_count == NULL)
        return TC_ERR_ARGUMENT;
    if ((st = find_places(s, &places)) != TC_OK ||
        (st = start_decoder(s, &places, decoder, history, history_size)) != TC_OK)
        return st;
    st = tc_decoder_run(decoder, s->data + places.payload_offset, &in_pos, places.payload_size, first, &out_pos,
                        sizeof first);
    if (st != TC_OK && st != TC_NEED_OUTPUT)
        return st == TC_NEED_INPUT ? TC_ERR_PAYLOAD : st;
    *file_size = read_le32(first);
    *place_count = (places.element_count - 1u) / 2u;
    return TC_OK;
}

/* Every weight buffer inside the file, in order, not overlapping, and
 * together with the skeleton exactly the file: checked before anything moves. */
static tc_status check_places(tc_stream *s, const uint8_t *places, uint32_t count, uint32_t file_size,
                              uint32_t skeleton_size)
{
    uint64_t covered = skeleton_size;
    uint32_t end = 0, k;
    for (k = 0; k < count; k++) {
        tc_tensor_info t;
        uint32_t offset, length;
        tc_status st = place_of(s, places, k, &t, &offset, &length);
        if (st != TC_OK)
            return st;
        if (offset < end || offset > file_size || length > file_size - offset)
            return TC_ERR_RESERVED;
        end = offset + length;
        covered += length;
    }
    return covered == file_size ? TC_OK : TC_ERR_RESERVED;
}

/* A length of a packed skeleton's section (FORMAT 3.6): bytes of 255 while
 * they come, then one below 255.  0 if it runs past the section's end or
 * above `room`, the bytes the output still has room for. */
static int read_length(const uint8_t *in, uint32_t *at, uint32_t end, uint32_t room, uint32_t *length)
{
    uint32_t sum = 0;
    uint8_t byte;
    do {
        if (*at >= end)
            return 0;
        byte = in[(*at)++];
        if (byte > room - sum)
            return 0;
        sum += byte;
    } while (byte == 255u);
    *length = sum;
    return 1;
}

#define PACKED_HEADER_SIZE 36u /* nine u32 (FORMAT 3.6) */
#define LANES 4u
#define RECENT_DISTANCES 4u

/* The sections of a packed skeleton: the next byte to read, and the end,
 * of each literal lane, of the literal lengths and of the match lengths;
 * where the distance codes begin; where the new distances' low bytes begin
 * (their high bytes follow them), how many there are and how many were read. */
typedef struct {
    uint32_t lane[LANES], lane_end[LANES];
    uint32_t lengths, lengths_end, matches, matches_end, codes, quotients, new_count, new_read;
} packed_sections;

/* The sections of in[0 .. p) as its header places them; 0 if they do not
 * fill exactly p bytes. */
static int locate_sections(const uint8_t *in, uint32_t p, packed_sections *at)
{
    uint64_t end = PACKED_HEADER_SIZE; /* in 64 bits: hostile sizes may wrap 32 */
    uint32_t n = read_le32(in + 4), repeats = read_le32(in + 8), k;
    if (repeats > n)
        return 0;
    for (k = 0; k < LANES; k++) {
        at->lane[k] = (uint32_t)end;
        end += read_le32(in + 12u + 4u * k);
        at->lane_end[k] = (uint32_t)(end < p ? end : p);
    }
    at->lengths = at->lane_end[LANES - 1u];
    end += read_le32(in + 28);
    at->lengths_end = at->matches = (uint32_t)(end < p ? end : p);
    end += read_le32(in + 32);
    at->matches_end = at->codes = (uint32_t)(end < p ? end : p);
    end += n;
    at->quotients = (uint32_t)(end < p ? end : p);
    at->new_count = n - repeats;
    at->new_read = 0;
    return end + 2u * (uint64_t)at->new_count == p;
}

/* The distance of the match whose code is `code` (FORMAT 3.6), the recent
 * distances updated; 0, which no match has, if the code is corrupt. */
static uint32_t next_distance(const uint8_t *in, packed_sections *at, uint32_t *recent, uint8_t code)
{
    uint32_t distance, place = RECENT_DISTANCES - 1u; /* a new distance drops the oldest */
    if (code < 4u) {
        if (at->new_read == at->new_count)
            return 0; /* more new distances than the header's N - R */
        distance = 4u * (in[at->quotients + at->new_read] |
                         (uint32_t)in[at->quotients + at->new_count + at->new_read] << 8) + code;
        at->new_read++;
    } else if (code - 4u < RECENT_DISTANCES) {
        place = code - 4u;
        distance = recent[place];
    } else
        return 0;
    for (; place > 0u; place--)
        recent[place] = recent[place - 1u];
    recent[0] = distance;
    return distance;
}

/* Unpack the packed skeleton in[0 .. p) into out[0 .. size), size being its
 * header's S (FORMAT 3.6).  Every length and distance is checked before a
 * byte is written, so a corrupt one writes nothing outside out[0 .. size). */
static TC_TFLITE_OUT_OF_LINE tc_status unpack_skeleton(const uint8_t *in, uint32_t p, uint8_t *out, uint32_t size)
{
    uint8_t lists[LANES][256]; /* move-to-front, per lane: the byte values, the most recent first */
    uint32_t recent[RECENT_DISTANCES] = {0, 0, 0, 0};
    uint32_t n = read_le32(in + 4), done = 0, i, length, distance;
    packed_sections at;
    if (!locate_sections(in, p, &at))
        return TC_ERR_RESERVED;
    for (i = 0; i < LANES * 256u; i++)
        lists[i / 256u][i % 256u] = (uint8_t)i;
    for (i = 0;; i++) {
        if (!read_length(in, &at.lengths, at.lengths_end, size - done, &length))
            return TC_ERR_RESERVED;
        for (; length > 0u; length--, done++) {
            uint32_t lane = done % LANES;
            uint8_t rank, byte;
            if (at.lane[lane] == at.lane_end[lane])
                return TC_ERR_RESERVED;
            rank = in[at.lane[lane]++];
            byte = lists[lane][rank];
            memmove(lists[lane] + 1, lists[lane], rank);
            lists[lane][0] = byte;
            out[done] = byte;
        }
        if (i == n)
            break;
        if (size - done < 4u || !read_length(in, &at.matches, at.matches_end, size - done - 4u, &length))
            return TC_ERR_RESERVED;
        distance = next_distance(in, &at, recent, in[at.codes + i]);
        if (distance == 0u || distance > done)
            return TC_ERR_RESERVED;
        for (length += 4u; length > 0u; length--, done++)
            out[done] = out[done - distance]; /* byte by byte: a match may overlap its own output */
    }
    /* every byte of the skeleton made, and no literal, length or distance left over */
    for (i = 0; i < LANES; i++)
        if (at.lane[i] != at.lane_end[i])
            return TC_ERR_RESERVED;
    return done == size && at.lengths == at.lengths_end && at.matches == at.matches_end &&
                   at.new_read == at.new_count
               ? TC_OK
               : TC_ERR_RESERVED;
}

#ifdef TC_TFLITE_UNPACK_API
tc_status tc_tflite_unpack_skeleton(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size)
{
    if (in == NULL || out == NULL || in_size < PACKED_HEADER_SIZE || (uint64_t)in_size > UINT32_MAX || read_le32(in) != out_size)
        return TC_ERR_ARGUMENT;
    return unpack_skeleton(in, (uint32_t)in_size, out, (uint32_t)out_size);
}
#endif

/* Whether two caller buffers share a byte (compared as addresses, which
 * every flat-memory target the decoder serves allows). */
static int overlap(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a_size != 0 && b_size != 0 && a0 < b0 + b_size && b0 < a0 + a_size;
}

tc_status tc_tflite_rebuild(tc_stream *s, tc_decoder *decoder, int8_t *history, size_t history_size,
                            uint8_t *places, size_t places_size, uint8_t *model, size_t model_size)
{
    tc_tensor_info places_info, skeleton;
    uint32_t file_size, count, skeleton_size, packed_size = 0, unread, written, k;
    int packed;
    tc_status st;
    if (s == NULL || decoder == NULL || places == NULL || model == NULL || overlap(places, places_size, model, model_size))
        return TC_ERR_ARGUMENT;
    if ((st = find_places(s, &places_info)) != TC_OK || (st = find_skeleton(s, &skeleton, &packed)) != TC_OK)
        return st;
    if ((uint64_t)places_info.element_count * 4u > places_size)
        return TC_ERR_ARGUMENT;
    st = tc_decode_tensor(s, &places_info, decoder, places, (size_t)places_info.element_count * 4u, history, history_size);
    if (st != TC_OK)
        return st;
    file_size = read_le32(places);
    count = (places_info.element_count - 1u) / 2u;
    if (file_size > model_size)
        return TC_ERR_OUTPUT_SIZE;
    skeleton_size = skeleton.element_count;
    if (packed) {
        /* decoded into the end of the file's room; its header gives S, and
         * S + P <= file_size leaves the skeleton room in front of it */
        packed_size = skeleton.element_count;
        if (packed_size < PACKED_HEADER_SIZE || packed_size > file_size)
            return TC_ERR_RESERVED;
        if ((st = tc_decode_tensor(s, &skeleton, decoder, model + (file_size - packed_size), packed_size, history,
                                   history_size)) != TC_OK)
            return st;
        skeleton_size = read_le32(model + (file_size - packed_size));
        if (skeleton_size > file_size - packed_size)
            return TC_ERR_RESERVED;
    }
    if ((st = check_places(s, places, count, file_size, skeleton_size)) != TC_OK)
        return st;
    /* The skeleton is decoded into the end of the file's room and moved
     * down piece by piece, so that the weights are visited in file order,
     * which is directory order: tc_stream_tensor then resumes where it
     * stopped instead of walking the directory again for every buffer. */
    unread = file_size - skeleton_size; /* skeleton bytes still at model[unread .. file_size) */
    if (packed) {
        if ((st = unpack_skeleton(model + (file_size - packed_size), packed_size, model + (unread - packed_size),
                                  skeleton_size)) != TC_OK)
            return st;
        memmove(model + unread, model + (unread - packed_size), skeleton_size);
    } else if ((st = tc_decode_tensor(s, &skeleton, decoder, model + unread, skeleton_size, history, history_size)) !=
               TC_OK)
        return st;
    written = 0; /* model[0 .. written) is final */
    for (k = 0; k < count; k++) {
        tc_tensor_info t;
        uint32_t offset, length, before;
        /* checked above; checked again, so that a table the caller let the
         * decoding overwrite (its history or stream in the same RAM) cannot
         * send memmove out of the model or a weight over unplaced skeleton */
        if (place_of(s, places, k, &t, &offset, &length) != TC_OK || offset < written || offset > file_size ||
            length > file_size - offset)
            return TC_ERR_ARGUMENT;
        before = offset - written; /* skeleton bytes before this buffer */
        if (before > file_size - unread)
            return TC_ERR_ARGUMENT;
        memmove(model + written, model + unread, before);
        unread += before;
        if (offset + length > unread)
            return TC_ERR_ARGUMENT;
        st = t.dtype == TC_DTYPE_FLOAT16 ? decode_float16(s, &t, decoder, history, history_size, model + offset)
                                         : tc_decode_tensor(s, &t, decoder, model + offset, length, history, history_size);
        if (st != TC_OK)
            return st;
        written = offset + length;
    }
    return TC_OK; /* the file's last skeleton bytes, from unread == written on, are in place */
}
