/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tinycabac.h - portable C99 decoder for tinycabac streams (format version 12).
 *
 * The decoder of record: no heap, no floating point, caller-owned buffers,
 * every read bounds-checked.  docs/FORMAT.md is the specification; the
 * section numbers in comments (e.g. "FORMAT 4.2") point into it.
 *
 * Typical use with the whole stream in memory (flash or RAM):
 *
 *     static tc_decoder d;                              // 752 bytes, not on the stack
 *     tc_stream s;
 *     tc_tensor_info t;
 *     if (tc_stream_open(&s, data, size) != TC_OK) ...
 *     for (uint32_t i = 0; i < s.tensor_count; i++) {
 *         tc_stream_tensor(&s, i, &t);
 *         tc_decode_tensor(&s, &t, &d, out, sizeof out, // whole tensor at once
 *                          history, sizeof history);    // for prediction (5.7, 5.8)
 *     }
 *
 * Every call takes its state from the caller, tc_decode_tensor included, so
 * the decoder's own stack stays under 300 bytes on a Cortex-M.
 *
 * A tensor larger than RAM is decoded piecewise with tc_decoder_init() and
 * repeated tc_decoder_run() calls (xz-embedded style in/in_pos/in_size and
 * out/out_pos/out_size), which return TC_NEED_OUTPUT when the output buffer
 * is full and TC_NEED_INPUT when the caller must supply more payload bytes.
 */
#ifndef TINYCABAC_H
#define TINYCABAC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TC_FORMAT_VERSION 13u
#define TC_HEADER_SIZE 20u

/* Hard limits (FORMAT 3.4).  A stream exceeding them is rejected with
 * TC_ERR_LIMIT, so that no size arithmetic can overflow 32 bits. */
#define TC_MAX_TENSORS 4096u
#define TC_MAX_NAME_LEN 255u
#define TC_MAX_NDIM 8u
#define TC_MAX_ELEMENTS 0x7FFFFFFFu
#define TC_MAX_DIRECTORY_SIZE 0x01000000u /* 16 MiB */
#define TC_MAX_STEP_COUNT 65536u
#define TC_MAX_HISTORY 65535u /* bytes of prediction history (FORMAT 5.7) */
#define TC_MAX_PEAK_CHANNELS 65535u      /* channels with a peak (FORMAT 5.9) */
#define TC_MAX_PEAK_CHANNEL_SIZE 32768u  /* elements per such channel */

/* A value never needs more than this many payload bytes (FORMAT 5.6); the
 * streaming decoder asks for more input while fewer are buffered. */
#define TC_MAX_VALUE_INPUT 64u

typedef enum {
    TC_DTYPE_INT8 = 1,
    TC_DTYPE_UINT8 = 2,
    TC_DTYPE_INT16 = 3,
    TC_DTYPE_INT32 = 4,
    TC_DTYPE_FLOAT32 = 5,
    TC_DTYPE_FLOAT16 = 6
} tc_dtype;

typedef enum {
    TC_MODE_LOSSLESS = 0,       /* integer tensor, value = level + offset */
    TC_MODE_QUANTIZED = 1,      /* float tensor, value = q * step, as float32 */
    TC_MODE_DELTA_LOSSLESS = 2, /* integer update: value = base + level */
    TC_MODE_DELTA_QUANTIZED = 3 /* float update: value = base + q * step (float32 add) */
} tc_mode;

/* How a quantized tensor maps levels to reconstruction indices q (FORMAT 6.2). */
typedef enum {
    TC_QUANTIZER_UNIFORM = 0,  /* q = level */
    TC_QUANTIZER_DEPENDENT = 1 /* 8-state rule: q = 2 * level, or 2 * level - sign(level) */
} tc_quantizer;

/* How a tensor predicts its levels (FORMAT 5.7, 5.8), in working memory
 * the caller gives (tc_tensor_info.work_size bytes). */
typedef enum {
    TC_PREDICT_NONE = 0,
    TC_PREDICT_DIFFERENCE = 1, /* the coded value is level - the level H elements back */
    TC_PREDICT_SCALE = 2,      /* the column's activity steers the Rice parameter */
    TC_PREDICT_FACTORS = 3     /* rows of H elements predicted from low-rank factors */
} tc_prediction;

#define TC_AXIS_NONE 0xFFu /* quantized tensor with one step for all elements */

typedef enum {
    TC_OK = 0,           /* done: stream parsed / tensor decoded, CRC checked */
    TC_NEED_INPUT = 1,   /* tc_decoder_run: supply more payload bytes */
    TC_NEED_OUTPUT = 2,  /* tc_decoder_run: output buffer full */
    TC_ERR_ARGUMENT = -1,   /* caller error: NULL pointer, buffer misuse */
    TC_ERR_MAGIC = -2,      /* not a tinycabac stream */
    TC_ERR_VERSION = -3,    /* unsupported format version */
    TC_ERR_TRUNCATED = -4,  /* buffer ends before a structure it declares */
    TC_ERR_HEADER_CRC = -5, /* header or directory damaged */
    TC_ERR_RESERVED = -6,   /* reserved or inconsistent field value */
    TC_ERR_LIMIT = -7,      /* exceeds a hard limit of the format */
    TC_ERR_PAYLOAD = -8,    /* arithmetic-coded payload is corrupt */
    TC_ERR_CRC = -9,        /* decoded tensor does not match its CRC-32 */
    TC_ERR_NOT_FOUND = -10, /* no tensor with that index or name */
    TC_ERR_OUTPUT_SIZE = -11, /* output buffer cannot hold the tensor */
    TC_ERR_BASE = -12,      /* update applied to the wrong base tensor */
    TC_ERR_HISTORY = -13    /* tensor needs a history buffer the caller did not give */
} tc_status;

/* One parsed directory entry (FORMAT 3.2).  Pointers point into the
 * directory, which must stay in memory while they are used. */
typedef struct {
    const uint8_t *name; /* UTF-8, not NUL-terminated */
    uint32_t name_len;
    uint8_t dtype;        /* tc_dtype */
    uint8_t mode;         /* tc_mode */
    uint8_t ndim;
    uint8_t element_size; /* bytes per decoded element: 1, 2 or 4 */
    uint8_t initial_activity; /* activity at the first level (FORMAT 5.4) */
    uint8_t prediction;   /* tc_prediction */
    uint32_t history;     /* prediction distance (row length) H, 0 for none */
    uint8_t rank;         /* factor prediction: factors per row, 1..64; else 0 */
    uint8_t factor_shift; /* factor prediction: the prediction's shift; else 0 */
    uint32_t work_size;   /* bytes of working memory the decoder needs: H for
                             difference and scale prediction, (H + 1) * rank
                             for factors, and 2 per channel with peaks */
    uint32_t dims[TC_MAX_NDIM];
    uint32_t element_count;
    int32_t offset;        /* lossless only */
    uint32_t peak;         /* lossless only: the channel peaks' magnitude, 0 for none (FORMAT 5.9) */
    uint8_t peak_axis;     /* the peaks' channel axis when peak != 0, else 0 */
    uint8_t axis;          /* quantized modes: TC_AXIS_NONE or channel axis */
    uint8_t quantizer;     /* quantized modes: tc_quantizer; 0 otherwise */
    uint32_t step_count;   /* quantized modes: 1, or dims[axis] */
    const uint8_t *steps;  /* step_count records of 3 bytes (FORMAT 3.3) */
    uint32_t payload_offset; /* from the start of the stream */
    uint32_t payload_size;
    uint32_t crc32;        /* CRC-32 of the decoded bytes, little-endian */
    uint32_t base_crc32;   /* delta modes: CRC-32 of the base tensor's bytes */
} tc_tensor_info;

/* A parsed and checked stream header and directory. */
typedef struct {
    const uint8_t *data; /* start of the stream */
    size_t size;         /* bytes available at data (may end before payloads) */
    uint32_t tensor_count;
    uint32_t directory_size;
    uint32_t payload_area_size;
    /* Where tc_stream_tensor resumes: entry `next_index` starts at
     * `next_entry`, so a reader going forward parses each entry once. */
    const uint8_t *next_entry;
    uint32_t next_index;
} tc_stream;

/* Context model: two probability estimates of "bin is 0" in 1/32768 units,
 * one adapting fast and one slowly (FORMAT 5.2). */
typedef struct {
    uint16_t fast;
    uint16_t slow;
} tc_context;

#define TC_PREFIX_SETS 16
#define TC_PREFIX_BINS 4
#define TC_SUFFIX_SETS 15
#define TC_SIGN_CONTEXTS 12

/* Streaming decoder state for one tensor: 752 bytes on a 32-bit core,
 * caller-owned. */
typedef struct {
    uint32_t range;
    uint32_t code;
    uint32_t payload_left;  /* payload bytes not yet consumed */
    uint32_t values_left;   /* values not yet decoded */
    uint32_t crc;
    uint32_t expected_crc;
    uint32_t base_crc;      /* delta modes: CRC of the base bytes read so far */
    uint32_t expected_base_crc;
    int32_t offset;
    /* A quantized tensor's steps, or a lossless tensor's channel peaks
     * (FORMAT 5.9): no tensor has both, so they share their bytes. */
    union {
        struct {
            const uint8_t *steps;
            uint32_t step_count;
            uint32_t inner_size; /* elements per channel run (per-channel steps) */
            uint32_t inner_left;
            uint32_t channel;
        } quantized;
        struct {
            uint32_t magnitude;    /* P; 0: no peaks */
            uint32_t at;           /* values_left at the next peak; 0: none left */
            uint16_t channels;     /* C; their entries follow the ring in the work buffer */
            uint16_t inner;        /* elements per channel run: the dims after the axis */
            uint16_t slabs;        /* runs per channel: the dims before the axis */
            uint16_t read;         /* entries read from the payload */
            uint16_t scan_slab;    /* where the search for the next peak goes on */
            uint16_t scan_channel;
        } peaks;
    } u;
    int8_t *history;        /* caller's ring: last levels or column activities */
    uint32_t history_length; /* H of FORMAT 5.7; 0: no prediction */
    uint32_t history_pos;   /* the element's column: its position in the ring or row */
    uint32_t factors_left;  /* factor values to decode before the next element (FORMAT 5.8) */
    uint16_t activity;      /* running magnitude-class average (FORMAT 5.4) */
    uint16_t factor_activity; /* the factor values' own (FORMAT 5.8) */
    uint8_t rank;
    uint8_t factor_shift;
    uint8_t dtype;
    uint8_t mode;
    uint8_t element_size;
    uint8_t started;        /* range decoder initialised */
    uint8_t previous_sign;  /* 0 none yet, 1 negative, 2 positive */
    uint8_t prediction;     /* tc_prediction */
    uint8_t quantizer;      /* tc_quantizer */
    uint8_t quantizer_state; /* dependent quantization state, 0..7 */
    uint8_t peak_negative;  /* the sign of the peak due next (FORMAT 5.9) */
    tc_context prefix[TC_PREFIX_SETS][TC_PREFIX_BINS];
    tc_context suffix[TC_SUFFIX_SETS][2][3];
    tc_context sign[TC_SIGN_CONTEXTS];
} tc_decoder;

/* Parse and check the header and the whole directory.  `size` must cover at
 * least the header and the directory; payloads may lie beyond it.  On any
 * error `*s` is left closed: the calls below refuse it (TC_ERR_ARGUMENT). */
tc_status tc_stream_open(tc_stream *s, const uint8_t *data, size_t size);

/* Directory entry number `index` (0-based).  The stream remembers where
 * the last call stopped, so reading entries in increasing order parses each
 * entry once; a smaller index than the last walks from the first entry. */
tc_status tc_stream_tensor(tc_stream *s, uint32_t index, tc_tensor_info *info);

/* The first directory entry whose name equals name[0..name_len): a walk
 * from the first entry (it moves tc_stream_tensor's resume point). */
tc_status tc_stream_find(tc_stream *s, const char *name, size_t name_len,
                         tc_tensor_info *info, uint32_t *index);

/* Start decoding one tensor.  `info` normally comes from tc_stream_tensor;
 * a hand-made one must be as consistent as a parsed one (TC_ERR_ARGUMENT). */
tc_status tc_decoder_init(tc_decoder *d, const tc_tensor_info *info);

/* A tensor coded with prediction or channel peaks needs info->work_size
 * bytes of working memory (H for difference and scale prediction, (H + 1) *
 * rank for factors, plus 2 per channel for peaks): give them after
 * tc_decoder_init and before the first tc_decoder_run.  Returns
 * TC_ERR_HISTORY when `size` is smaller (the stream needs more RAM than the
 * caller set aside).  Tensors with work_size 0 need no call. */
tc_status tc_decoder_set_history(tc_decoder *d, int8_t *buffer, size_t size);

/* Decode from in[*in_pos..in_size) into out[*out_pos..out_size), advancing
 * both positions.  `in` holds the tensor's payload bytes in order, in any
 * chunking.  Returns TC_OK once the whole tensor is decoded and its CRC-32
 * matches, TC_NEED_INPUT / TC_NEED_OUTPUT when the caller must refill or
 * drain a buffer (unconsumed input stays at in[*in_pos..in_size) and must be
 * passed again), or an error.  Output holds whole elements in C order,
 * little-endian; float tensors decode to IEEE-754 float32 bit patterns.
 * Delta modes read each base element from out[*out_pos..] and overwrite it.
 * Output goes in whole elements: a buffer with room for less than one
 * element (1 to 4 bytes, info->element_size) gets TC_NEED_OUTPUT and
 * nothing written, so give at least that much. */
tc_status tc_decoder_run(tc_decoder *d, const uint8_t *in, size_t *in_pos, size_t in_size,
                         uint8_t *out, size_t *out_pos, size_t out_size);

/* Delta modes: check that base[0..size) is the base tensor the update was
 * made for (its CRC-32), before applying it in place. */
tc_status tc_check_base(const tc_tensor_info *info, const uint8_t *base, size_t size);

/* Decode a whole tensor whose payload lies inside the stream buffer.  For
 * the delta modes `out` must hold the base tensor, which is replaced by the
 * updated one; a wrong base (tc_check_base) is refused untouched with
 * TC_ERR_BASE, before anything is decoded.
 * `history` is working memory for tensors coded with prediction (NULL, 0
 * is fine for the others; see tc_decoder_set_history).  `d` is the working
 * state, any tc_decoder the caller owns: its contents on entry do not matter,
 * and it is free again on return. */
tc_status tc_decode_tensor(const tc_stream *s, const tc_tensor_info *info, tc_decoder *d,
                           uint8_t *out, size_t out_size, int8_t *history, size_t history_size);

/* CRC-32 (the zlib polynomial), continuing from `crc` (start with 0). */
uint32_t tc_crc32(uint32_t crc, const uint8_t *data, size_t size);

/* Short English description of a status, for messages. */
const char *tc_status_string(tc_status status);

#ifdef __cplusplus
}
#endif

#endif /* TINYCABAC_H */
