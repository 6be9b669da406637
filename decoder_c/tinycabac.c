/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tinycabac.c - the decoder of record for tinycabac streams, format 9.
 *
 * Sections follow docs/FORMAT.md: container parsing (3), the range decoder
 * (5.1), binarization (5.5) and reconstruction (6).  No heap, no floating
 * point, every byte read checked against the buffer it comes from.
 */
#include "tinycabac.h"

#include "tc_model.h"

/* Helpers that -Os would inline at several call sites; kept out of line
 * there so that the decoder stays within 4 KB of flash (speed builds let
 * the compiler choose). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__OPTIMIZE_SIZE__)
#define TC_OUT_OF_LINE_FOR_SIZE __attribute__((noinline))
#else
#define TC_OUT_OF_LINE_FOR_SIZE
#endif

/* Code the value loop seldom runs, kept out of it so that it takes none of
 * the loop's registers (the channel peaks, the factors' prediction). */
#if defined(__GNUC__) || defined(__clang__)
#define TC_NOINLINE __attribute__((noinline))
#else
#define TC_NOINLINE
#endif

/* A branch the value loop rarely takes, laid out of its way (the factor
 * test: 1.8 instructions per weight less on the Cortex-M4 at -O2). */
#if defined(__GNUC__) || defined(__clang__)
#define TC_UNLIKELY(condition) __builtin_expect(!!(condition), 0)
#else
#define TC_UNLIKELY(condition) (condition)
#endif

/* ------------------------------------------------------------------ */
/* Little-endian field readers (callers check bounds first).          */

static uint32_t read_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ------------------------------------------------------------------ */
/* CRC-32 (zlib polynomial), four bits at a time: a 64-byte table keeps */
/* flash small while costing two lookups per byte.                    */

/* Speed builds (not -Os) spend 1 KiB of flash on a byte-wise table: one
 * lookup per byte instead of two; -Os keeps the 64-byte nibble table. */
#if !defined(TC_CRC_TABLE256) && !defined(TC_CRC_NIBBLE) && !defined(__OPTIMIZE_SIZE__)
#define TC_CRC_TABLE256 1
#endif

#ifndef TC_CRC_TABLE256
static const uint32_t crc_nibble_table[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};
#endif

#ifdef TC_CRC_TABLE256
static const uint32_t crc_byte_table[256] = {
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu,
    0xE963A535u, 0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u,
    0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u,
    0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
    0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u,
    0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u,
    0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
    0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u,
    0xCFBA9599u, 0xB8BDA50Fu, 0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u,
    0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du, 0x76DC4190u, 0x01DB7106u,
    0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
    0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du,
    0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u,
    0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
    0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u,
    0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u,
    0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u, 0x5005713Cu, 0x270241AAu,
    0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
    0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au,
    0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u,
    0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
    0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu,
    0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu,
    0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u, 0xA1D1937Eu,
    0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u,
    0x316E8EEFu, 0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u,
    0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u,
    0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
    0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu,
    0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u,
    0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
    0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u,
    0x616BFFD3u, 0x166CCF45u, 0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u,
    0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu,
    0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
    0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u,
    0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du};

TC_INLINE uint32_t crc32_byte_step(uint32_t crc)
{
    return (crc >> 8) ^ crc_byte_table[crc & 0xFFu];
}

/* Four bytes are taken into the CRC at once (the table steps shift them
 * down in turn), saving the per-byte load and mask: on the Cortex-M4 at
 * -O2 about 3 instructions per int8 weight.  gcc reads the word with one
 * load where the core allows unaligned loads. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t size)
{
    for (; size >= 4; size -= 4, data += 4) {
        crc ^= (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
        crc = crc32_byte_step(crc32_byte_step(crc32_byte_step(crc32_byte_step(crc))));
    }
    for (; size > 0; size--)
        crc = crc32_byte_step(crc ^ *data++);
    return crc;
}
#else
static uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t size)
{
    size_t i;
    for (i = 0; i < size; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibble_table[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble_table[crc & 15u];
    }
    return crc;
}
#endif

uint32_t tc_crc32(uint32_t crc, const uint8_t *data, size_t size)
{
    if (data == NULL)
        return crc;
    return ~crc32_update(~crc, data, size);
}

/* Every message in one string, in status order from TC_ERR_HISTORY up to
 * TC_NEED_OUTPUT, then the one for unknown values: walking it costs less
 * flash than a table of pointers. */
static const char status_messages[] =
    "history buffer too small\0"                  /* TC_ERR_HISTORY */
    "wrong base tensor\0"                         /* TC_ERR_BASE */
    "output buffer too small\0"                   /* TC_ERR_OUTPUT_SIZE */
    "tensor not found\0"                          /* TC_ERR_NOT_FOUND */
    "tensor CRC mismatch\0"                       /* TC_ERR_CRC */
    "corrupt payload\0"                           /* TC_ERR_PAYLOAD */
    "exceeds a format limit\0"                    /* TC_ERR_LIMIT */
    "reserved or invalid field\0"                 /* TC_ERR_RESERVED */
    "header CRC mismatch\0"                       /* TC_ERR_HEADER_CRC */
    "truncated stream\0"                          /* TC_ERR_TRUNCATED */
    "unsupported version\0"                       /* TC_ERR_VERSION */
    "not a tinycabac stream\0"                    /* TC_ERR_MAGIC */
    "invalid argument\0"                          /* TC_ERR_ARGUMENT */
    "ok\0"                                        /* TC_OK */
    "need more input\0"                           /* TC_NEED_INPUT */
    "output buffer full\0"                        /* TC_NEED_OUTPUT */
    "unknown status";

const char *tc_status_string(tc_status status)
{
    const char *message = status_messages;
    int index = (int)status - (int)TC_ERR_HISTORY;
    if (index < 0 || index > (int)TC_NEED_OUTPUT - (int)TC_ERR_HISTORY)
        index = (int)TC_NEED_OUTPUT - (int)TC_ERR_HISTORY + 1;
    for (; index > 0; index--)
        while (*message++ != '\0')
            continue;
    return message;
}

/* ------------------------------------------------------------------ */
/* Byte helpers: the decoder links no C library routine at all, so its  */
/* flash figure is the whole cost on a device.                         */

TC_OUT_OF_LINE_FOR_SIZE static void fill_bytes(void *object, unsigned value, size_t size)
{
    /* volatile: otherwise the compiler turns the loop back into memset */
    volatile uint8_t *p = (volatile uint8_t *)object;
    while (size-- > 0)
        *p++ = (uint8_t)value;
}

#define zero_bytes(object, size) fill_bytes((object), 0u, (size))

static int same_bytes(const uint8_t *a, const uint8_t *b, size_t size)
{
    size_t i;
    for (i = 0; i < size; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Container (FORMAT 3).                                              */

static const uint8_t stream_magic[4] = {'T', 'C', 'A', 'B'};

static unsigned dtype_element_size(unsigned dtype)
{
    switch (dtype) {
    case TC_DTYPE_INT8:
    case TC_DTYPE_UINT8: return 1;
    case TC_DTYPE_INT16: return 2;
    case TC_DTYPE_INT32:
    case TC_DTYPE_FLOAT32:
    case TC_DTYPE_FLOAT16: return 4; /* float tensors decode to float32 */
    default: return 0;
    }
}

static int dtype_is_float(unsigned dtype)
{
    return dtype == TC_DTYPE_FLOAT32 || dtype == TC_DTYPE_FLOAT16;
}

/* A bounds-checked cursor over the directory. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} cursor;

static const uint8_t *take(cursor *c, uint32_t n)
{
    const uint8_t *start = c->p;
    if ((size_t)(c->end - c->p) < n)
        return NULL;
    c->p += n;
    return start;
}

/* A varint (FORMAT 2): LEB128 of at most 5 bytes, the fifth at most 0x0F,
 * and no last byte 0 after the first, so that every number has one form. */
static tc_status take_varint(cursor *c, uint32_t *value)
{
    const uint8_t *p;
    uint32_t v = 0;
    unsigned shift;
    for (shift = 0;; shift += 7) {
        if ((p = take(c, 1)) == NULL)
            return TC_ERR_TRUNCATED;
        if (shift == 28 && *p > 0x0Fu)
            return TC_ERR_RESERVED; /* past 32 bits, or a sixth byte */
        v |= (uint32_t)(*p & 0x7Fu) << shift;
        if ((*p & 0x80u) == 0)
            break;
    }
    if (shift != 0 && *p == 0)
        return TC_ERR_RESERVED;
    *value = v;
    return TC_OK;
}

static tc_status parse_dims(cursor *c, tc_tensor_info *t)
{
    const uint8_t *p;
    uint32_t i, count = 1;
    int empty = 0;
    tc_status st;
    if ((p = take(c, 1)) == NULL)
        return TC_ERR_TRUNCATED;
    t->ndim = p[0];
    if (t->ndim > TC_MAX_NDIM)
        return TC_ERR_LIMIT;
    for (i = 0; i < t->ndim; i++) {
        if ((st = take_varint(c, &t->dims[i])) != TC_OK)
            return st;
        if (t->dims[i] > TC_MAX_ELEMENTS)
            return TC_ERR_LIMIT;
        empty |= t->dims[i] == 0;
    }
    /* A 0 anywhere makes the count 0, whatever the dims before it. */
    for (i = 0; !empty && i < t->ndim; i++) {
        if (count > TC_MAX_ELEMENTS / t->dims[i])
            return TC_ERR_LIMIT;
        count *= t->dims[i];
    }
    t->element_count = empty ? 0 : count;
    return TC_OK;
}

static int mode_is_quantized(unsigned mode)
{
    return mode == TC_MODE_QUANTIZED || mode == TC_MODE_DELTA_QUANTIZED;
}

static int mode_is_delta(unsigned mode)
{
    return mode == TC_MODE_DELTA_LOSSLESS || mode == TC_MODE_DELTA_QUANTIZED;
}

/* Channel peaks (FORMAT 3.2, 5.9) fit the tensor: checked on every parsed
 * entry and on a hand-made one given to tc_decoder_init. */
static tc_status check_peaks(const tc_tensor_info *t)
{
    uint32_t i, channels, size = 1;
    if (t->peak == 0)
        return t->peak_axis == 0 ? TC_OK : TC_ERR_RESERVED;
    if (t->peak > TC_MAX_MAGNITUDE)
        return TC_ERR_LIMIT;
    if (t->mode != TC_MODE_LOSSLESS || (t->prediction != TC_PREDICT_NONE && t->prediction != TC_PREDICT_SCALE) ||
        t->peak_axis >= t->ndim || t->element_count == 0)
        return TC_ERR_RESERVED;
    channels = t->dims[t->peak_axis];
    if (channels > TC_MAX_PEAK_CHANNELS)
        return TC_ERR_LIMIT;
    /* the channel size, the other dims' product: each factor and the
     * product stay <= 2^15 (no division, no overflow) */
    for (i = 0; i < t->ndim; i++) {
        if (i == t->peak_axis)
            continue;
        if (t->dims[i] > TC_MAX_PEAK_CHANNEL_SIZE || (size *= t->dims[i]) > TC_MAX_PEAK_CHANNEL_SIZE)
            return TC_ERR_LIMIT;
    }
    /* always so in a parsed entry; a hand-made one must agree as well */
    return size * channels == t->element_count ? TC_OK : TC_ERR_RESERVED;
}

/* A lossless entry's offset (zigzag) and channel peaks (FORMAT 3.2). */
static tc_status parse_lossless_fields(cursor *c, tc_tensor_info *t)
{
    const uint8_t *p;
    uint32_t zigzag;
    tc_status st;
    if ((st = take_varint(c, &zigzag)) != TC_OK || (st = take_varint(c, &t->peak)) != TC_OK)
        return st;
    t->offset = (int32_t)((zigzag >> 1) ^ (0u - (zigzag & 1u))); /* two's complement, as everywhere here */
    if (t->peak > TC_MAX_MAGNITUDE)
        return TC_ERR_LIMIT;
    if (t->peak != 0) {
        if (t->prediction != TC_PREDICT_NONE && t->prediction != TC_PREDICT_SCALE)
            return TC_ERR_RESERVED;
        if ((p = take(c, 1)) == NULL)
            return TC_ERR_TRUNCATED;
        t->peak_axis = p[0];
        if ((st = check_peaks(t)) != TC_OK)
            return st;
        t->work_size += 2u * t->dims[t->peak_axis];
    }
    return TC_OK;
}

/* The mode-specific fields of an entry (FORMAT 3.2). */
static tc_status parse_mode_fields(cursor *c, tc_tensor_info *t)
{
    const uint8_t *p;
    uint32_t i;
    if (t->mode == TC_MODE_LOSSLESS)
        return parse_lossless_fields(c, t);
    if (t->mode == TC_MODE_DELTA_LOSSLESS)
        return TC_OK;
    if ((p = take(c, 2)) == NULL)
        return TC_ERR_TRUNCATED;
    t->axis = p[0];
    t->quantizer = p[1];
    if ((t->axis != TC_AXIS_NONE && t->axis >= t->ndim) || t->quantizer > TC_QUANTIZER_DEPENDENT)
        return TC_ERR_RESERVED;
    t->step_count = t->axis == TC_AXIS_NONE ? 1u : t->dims[t->axis];
    if (t->step_count > TC_MAX_STEP_COUNT)
        return TC_ERR_LIMIT;
    if ((t->steps = take(c, 3u * t->step_count)) == NULL)
        return TC_ERR_TRUNCATED;
    for (i = 0; i < t->step_count; i++)
        if (read_u16(t->steps + 3u * i) == 0)
            return TC_ERR_RESERVED; /* a zero step would erase the tensor */
    return TC_OK;
}

static tc_status parse_base_digest(cursor *c, tc_tensor_info *t)
{
    const uint8_t *p;
    if (!mode_is_delta(t->mode))
        return TC_OK;
    if ((p = take(c, 4)) == NULL)
        return TC_ERR_TRUNCATED;
    t->base_crc32 = read_u32(p);
    return TC_OK;
}

/* The history distance, present when the tensor uses prediction, and
 * factor prediction's rank and shift (FORMAT 5.8). */
static tc_status parse_prediction(cursor *c, tc_tensor_info *t)
{
    const uint8_t *p;
    unsigned factors = t->prediction == TC_PREDICT_FACTORS;
    tc_status st;
    if (t->prediction == TC_PREDICT_NONE)
        return TC_OK;
    if ((st = take_varint(c, &t->history)) != TC_OK)
        return st;
    if (t->history > TC_MAX_HISTORY)
        return TC_ERR_LIMIT;
    if (factors) {
        if ((p = take(c, 2)) == NULL)
            return TC_ERR_TRUNCATED;
        t->rank = p[0];
        t->factor_shift = p[1];
    }
    t->work_size = factors ? (t->history + 1u) * t->rank : t->history;
    return TC_OK;
}

/* dtype, mode and prediction are defined and fit together (FORMAT 3.2):
 * before the fields whose presence they decide are read. */
static int entry_kind_is_defined(const tc_tensor_info *t)
{
    return t->element_size != 0 && t->element_size == dtype_element_size(t->dtype) &&
           t->mode <= TC_MODE_DELTA_QUANTIZED && mode_is_quantized(t->mode) == dtype_is_float(t->dtype) &&
           t->prediction <= TC_PREDICT_FACTORS;
}

/* ... and the prediction's fields fit it: checked on every parsed entry
 * and on a hand-made one given to tc_decoder_init. */
static int entry_kind_is_valid(const tc_tensor_info *t)
{
    return entry_kind_is_defined(t) && (t->prediction == TC_PREDICT_NONE) == (t->history == 0) &&
           (t->prediction == TC_PREDICT_FACTORS
                ? t->rank != 0 && t->rank <= TC_MAX_RANK && t->factor_shift <= TC_MAX_FACTOR_SHIFT
                : (t->rank | t->factor_shift) == 0);
}

/* Parse one directory entry at the cursor (FORMAT 3.2). */
static tc_status parse_entry(cursor *c, const tc_stream *s, tc_tensor_info *t)
{
    const uint8_t *p;
    tc_status st;
    zero_bytes(t, sizeof *t);
    t->axis = TC_AXIS_NONE;
    if ((p = take(c, 1)) == NULL)
        return TC_ERR_TRUNCATED;
    t->name_len = p[0];
    if (t->name_len == 0)
        return TC_ERR_RESERVED;
    if ((t->name = take(c, t->name_len)) == NULL || (p = take(c, 4)) == NULL)
        return TC_ERR_TRUNCATED;
    t->dtype = p[0];
    t->mode = p[1];
    t->initial_activity = p[2];
    t->prediction = p[3];
    t->element_size = (uint8_t)dtype_element_size(t->dtype);
    if (!entry_kind_is_defined(t))
        return TC_ERR_RESERVED;
    if ((st = parse_prediction(c, t)) != TC_OK)
        return st;
    if (!entry_kind_is_valid(t))
        return TC_ERR_RESERVED;
    if ((st = parse_dims(c, t)) != TC_OK || (st = parse_mode_fields(c, t)) != TC_OK ||
        (st = parse_base_digest(c, t)) != TC_OK)
        return st;
    if ((st = take_varint(c, &t->payload_offset)) != TC_OK || (st = take_varint(c, &t->payload_size)) != TC_OK)
        return st;
    if ((p = take(c, 4)) == NULL)
        return TC_ERR_TRUNCATED;
    t->crc32 = read_u32(p);
    if (t->payload_offset > s->payload_area_size ||
        t->payload_size > s->payload_area_size - t->payload_offset)
        return TC_ERR_RESERVED;
    if ((t->element_count == 0) != (t->payload_size == 0))
        return TC_ERR_RESERVED;
    t->payload_offset += TC_HEADER_SIZE + s->directory_size; /* make absolute */
    return TC_OK;
}

/* The directory of a stream at `data` (taken apart from the tc_stream,
 * whose data pointer tc_stream_open sets only once the stream is checked). */
static cursor directory_cursor(const uint8_t *data, uint32_t directory_size)
{
    cursor c;
    c.p = data + TC_HEADER_SIZE;
    c.end = c.p + directory_size;
    return c;
}

tc_status tc_stream_open(tc_stream *s, const uint8_t *data, size_t size)
{
    uint32_t i, crc;
    cursor c;
    tc_tensor_info t;
    tc_status st;
    if (s == NULL || (data == NULL && size != 0))
        return TC_ERR_ARGUMENT;
    zero_bytes(s, sizeof *s);
    if (!same_bytes(data, stream_magic, size < 4 ? size : 4)) /* an empty buffer is truncated, below */
        return TC_ERR_MAGIC;
    if (size < TC_HEADER_SIZE)
        return TC_ERR_TRUNCATED;
    if (data[4] != TC_FORMAT_VERSION)
        return TC_ERR_VERSION;
    if (data[5] != 0)
        return TC_ERR_RESERVED; /* flags: all reserved in version 1 */
    s->size = size; /* s->data, the mark of an open stream, is set last */
    s->tensor_count = read_u16(data + 6);
    s->directory_size = read_u32(data + 8);
    s->payload_area_size = read_u32(data + 12);
    if (s->tensor_count > TC_MAX_TENSORS || s->directory_size > TC_MAX_DIRECTORY_SIZE)
        return TC_ERR_LIMIT;
    if (s->payload_area_size > 0xFFFFFFFFu - TC_HEADER_SIZE - s->directory_size)
        return TC_ERR_LIMIT; /* absolute payload offsets must fit in 32 bits */
    if (size - TC_HEADER_SIZE < s->directory_size)
        return TC_ERR_TRUNCATED;
    crc = tc_crc32(0, data, 16);
    crc = tc_crc32(crc, data + TC_HEADER_SIZE, s->directory_size);
    if (crc != read_u32(data + 16))
        return TC_ERR_HEADER_CRC;
    c = directory_cursor(data, s->directory_size);
    for (i = 0; i < s->tensor_count; i++)
        if ((st = parse_entry(&c, s, &t)) != TC_OK)
            return st == TC_ERR_TRUNCATED ? TC_ERR_RESERVED : st; /* CRC was fine: the writer lied */
    if (c.p != c.end)
        return TC_ERR_RESERVED; /* directory_size disagrees with its entries */
    s->next_entry = data + TC_HEADER_SIZE;
    s->data = data;
    return TC_OK;
}

tc_status tc_stream_tensor(tc_stream *s, uint32_t index, tc_tensor_info *info)
{
    cursor c;
    tc_status st;
    if (s == NULL || info == NULL || s->data == NULL)
        return TC_ERR_ARGUMENT;
    if (index >= s->tensor_count)
        return TC_ERR_NOT_FOUND;
    c = directory_cursor(s->data, s->directory_size);
    if (index < s->next_index) { /* backwards: walk again from the first entry */
        s->next_index = 0;
        s->next_entry = c.p;
    }
    c.p = s->next_entry;
    do {
        if ((st = parse_entry(&c, s, info)) != TC_OK)
            return st; /* the resume point stays at the failed entry */
        s->next_entry = c.p;
    } while (s->next_index++ < index);
    return TC_OK;
}

tc_status tc_stream_find(tc_stream *s, const char *name, size_t name_len,
                         tc_tensor_info *info, uint32_t *index)
{
    uint32_t i;
    tc_status st;
    if (name == NULL && name_len != 0)
        return TC_ERR_ARGUMENT;
    for (i = 0; (st = tc_stream_tensor(s, i, info)) == TC_OK; i++)
        if (info->name_len == name_len && same_bytes(info->name, (const uint8_t *)name, name_len)) {
            if (index != NULL)
                *index = i;
            break;
        }
    return st;
}

/* ------------------------------------------------------------------ */
/* Range decoder (FORMAT 5.1).  Kept in locals of tc_decoder_run for   */
/* speed; `overrun` latches a read past the end of the payload, which  */
/* then reads as zero bytes until the value loop notices.              */

typedef struct {
    uint32_t range;
    uint32_t code;
    const uint8_t *in;
    const uint8_t *end; /* end of readable payload in this call */
    int overrun;
} range_decoder;

/* The range decoder over in[*in_pos..in_size), the tensor's payload bytes
 * there (all it has left, or as many as the caller gave), in locals of the
 * decoding function: its registers, not memory, while values are decoded.
 * Returns whether the rest of the payload is all there. */
TC_ALWAYS_INLINE int rd_open(range_decoder *r, const tc_decoder *d, const uint8_t *in, size_t in_pos,
                             size_t in_size)
{
    size_t available = in_size - in_pos;
    int payload_ends_here = available >= d->payload_left;
    r->range = d->range;
    r->code = d->code;
    r->in = in + in_pos;
    r->end = r->in + (payload_ends_here ? d->payload_left : available);
    r->overrun = 0;
    return payload_ends_here;
}

/* Back into the decoder, with the input consumed. */
TC_ALWAYS_INLINE void rd_close(const range_decoder *r, tc_decoder *d, const uint8_t *in, size_t *in_pos)
{
    d->payload_left -= (uint32_t)(r->in - (in + *in_pos));
    *in_pos = (size_t)(r->in - in);
    d->range = r->range;
    d->code = r->code;
}

/* Reads bytes until the range is back above TC_RANGE_TOP; out of line at
 * -Os, where one copy serves every bin decoder. */
#if defined(__OPTIMIZE_SIZE__)
TC_OUT_OF_LINE_FOR_SIZE static void rd_refill(range_decoder *r)
#else
TC_ALWAYS_INLINE void rd_refill(range_decoder *r)
#endif
{
    while (r->range < TC_RANGE_TOP) {
        uint32_t byte = 0;
        if (r->in < r->end)
            byte = *r->in++;
        else
            r->overrun = 1;
        r->range <<= 8;
        r->code = (r->code << 8) | byte;
    }
}

/* The test stays inline at -Os and on ARMv6-M (Cortex-M0/M0+): about 9
 * bins in 10 need no byte, and the call or loop set-up it skips costs more
 * than the test (int8 weights, -Os: Cortex-M4 405 -> 374 instructions for
 * 12 bytes of flash, M0 472 -> 443; M0 at -O2 422 -> 402).  On the M4 at
 * -O2 gcc schedules the plain inlined loop 2 instructions better. */
TC_ALWAYS_INLINE void rd_normalize(range_decoder *r)
{
#if defined(__OPTIMIZE_SIZE__) || defined(__ARM_ARCH_6M__)
    if (r->range < TC_RANGE_TOP)
#endif
        rd_refill(r);
}

/* Deeply pipelined hosts decode bins without data-dependent branches: a bin
 * is as unpredictable as the data, and a mispredicted branch costs more than
 * the extra operations.  Short Cortex-M pipelines are better served by the
 * plain branches (fewer instructions).  Both compute FORMAT 5.1/5.2 exactly. */
#if !defined(TC_BRANCHLESS) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__))
#define TC_BRANCHLESS 1
#endif

#if defined(TC_BRANCHLESS) && TC_BRANCHLESS
TC_INLINE unsigned rd_bin(range_decoder *r, tc_context *c)
{
    uint32_t bound = (r->range >> TC_PROB_BITS) * tc_context_p0(c);
    uint32_t one = (uint32_t)0 - (uint32_t)(r->code >= bound); /* all ones if bin = 1 */
    uint32_t fast = c->fast, slow = c->slow;
    r->code -= bound & one;
    r->range = (bound & ~one) | ((r->range - bound) & one);
    fast += ((TC_PROB_ONE - fast) >> TC_RATE_FAST) & ~one;
    fast -= (fast >> TC_RATE_FAST) & one;
    slow += ((TC_PROB_ONE - slow) >> TC_RATE_SLOW) & ~one;
    slow -= (slow >> TC_RATE_SLOW) & one;
    c->fast = (uint16_t)fast;
    c->slow = (uint16_t)slow;
    rd_normalize(r);
    return one & 1u;
}

TC_ALWAYS_INLINE unsigned rd_bypass(range_decoder *r)
{
    uint32_t one;
    r->range >>= 1;
    one = (uint32_t)0 - (uint32_t)(r->code >= r->range);
    r->code -= r->range & one;
    rd_normalize(r);
    return one & 1u;
}
#else
TC_INLINE unsigned rd_bin(range_decoder *r, tc_context *c)
{
    uint32_t bound = (r->range >> TC_PROB_BITS) * tc_context_p0(c);
    unsigned bin;
    if (r->code < bound) {
        r->range = bound;
        bin = 0;
    } else {
        r->code -= bound;
        r->range -= bound;
        bin = 1;
    }
    tc_context_update(c, bin);
    rd_normalize(r);
    return bin;
}

TC_ALWAYS_INLINE unsigned rd_bypass(range_decoder *r)
{
    unsigned bin = 0;
    r->range >>= 1;
    if (r->code >= r->range) {
        r->code -= r->range;
        bin = 1;
    }
    rd_normalize(r);
    return bin;
}
#endif

/* `count` bypass bins appended to `bits`, most significant first.  At -Os
 * it is out of line and rd_bypass is inlined in it: one call per run of
 * bins, where a call per bin cost more than the bin itself. */
#if defined(__OPTIMIZE_SIZE__)
TC_OUT_OF_LINE_FOR_SIZE static uint32_t rd_bypass_bits(range_decoder *r, unsigned count, uint32_t bits)
#else
TC_INLINE uint32_t rd_bypass_bits(range_decoder *r, unsigned count, uint32_t bits)
#endif
{
    while (count-- > 0)
        bits = (bits << 1) | rd_bypass(r);
    return bits;
}

/* ------------------------------------------------------------------ */
/* Binarization (FORMAT 5.5): one signed level.                        */

/* Exp-Golomb order 0 in bypass bins; returns 0 on a corrupt code. */
static int decode_escape(range_decoder *r, uint32_t *value)
{
    unsigned n = 0;
    while (rd_bypass(r)) {
        if (++n > TC_ESCAPE_MAX_BITS)
            return 0;
    }
    *value = rd_bypass_bits(r, n, 1) - 1u;
    return 1;
}

/* The per-value model state, kept in locals of tc_decoder_run while it
 * runs: stores to the output may alias the decoder. */
typedef struct {
    unsigned activity;
    unsigned previous_sign;
    unsigned magnitude_class; /* of the last value */
    uint8_t *ring;            /* the caller's history buffer (FORMAT 5.7) */
    uint32_t ring_pos;
    uint32_t ring_length;
    uint32_t factors_left;    /* FORMAT 5.8: factor values before the next element */
} value_model;

/* Context selection (FORMAT 5.4, 5.5): the activity a value is coded with
 * selects the Rice parameter k and the prefix and suffix context sets.
 *
 * Speed builds look all three up in a table of the 257 activities a value
 * can be coded with (0..TC_MAX_ACTIVITY), packed as k (bits 0-4), prefix set
 * (5-8) and the index of the suffix set's first context, 6 x the set
 * (9-15: an add, where a multiply by 3 cost 3 instructions per weight).
 * The preprocessor builds it from the rules of tc_model.h restated as
 * constant expressions, and tests/selector_table.c checks every entry
 * against them.  One load
 * replaces about 25 instructions of clamps and branches per value on the
 * Cortex-M4; -Os saves the 514 bytes instead, and its "selector" is the
 * activity itself. */
#if !defined(TC_SELECTOR_TABLE) && !defined(__OPTIMIZE_SIZE__)
#define TC_SELECTOR_TABLE 1
#endif

#if defined(TC_SELECTOR_TABLE) && TC_SELECTOR_TABLE
#define TABLE_K(a) ((a) >> 3 < 32u ? (a) >> 3 : 31u)
#define TABLE_PREFIX_SET(a) (TABLE_K(a) == 0u ? (a) >> 1 : 3u + (TABLE_K(a) < 12u ? TABLE_K(a) : 12u))
#define TABLE_SUFFIX_SET(a) (TABLE_K(a) == 0u ? 0u : (TABLE_K(a) < 15u ? TABLE_K(a) : 15u) - 1u)
#define TABLE_ENTRY(a) (uint16_t)(TABLE_K(a) | TABLE_PREFIX_SET(a) << 5 | 6u * TABLE_SUFFIX_SET(a) << 9)
#define TABLE_4(a) TABLE_ENTRY(a), TABLE_ENTRY((a) + 1u), TABLE_ENTRY((a) + 2u), TABLE_ENTRY((a) + 3u)
#define TABLE_16(a) TABLE_4(a), TABLE_4((a) + 4u), TABLE_4((a) + 8u), TABLE_4((a) + 12u)
#define TABLE_64(a) TABLE_16(a), TABLE_16((a) + 16u), TABLE_16((a) + 32u), TABLE_16((a) + 48u)
static const uint16_t context_selector_table[TC_MAX_ACTIVITY + 1u] = {
    TABLE_64(0u), TABLE_64(64u), TABLE_64(128u), TABLE_64(192u), TABLE_ENTRY(256u)};

TC_INLINE unsigned context_selector(unsigned activity) { return context_selector_table[activity]; }
TC_INLINE unsigned selected_k(unsigned selector) { return selector & 31u; }
TC_INLINE unsigned selected_prefix_set(unsigned selector) { return (selector >> 5) & 15u; }
/* the suffix contexts after a prefix p: selector >> 9 is the set's first
 * context, 6 x the set */
TC_INLINE tc_context *selected_suffix(tc_decoder *d, unsigned selector, uint32_t p)
{
    tc_context *sets = (tc_context *)(void *)d->suffix; /* as in tc_decoder_init: [set][p > 0][bin] */
    return sets + (selector >> 9) + (p > 0 ? 3u : 0u);
}
#else
TC_ALWAYS_INLINE unsigned context_selector(unsigned activity) { return activity; }
TC_ALWAYS_INLINE unsigned selected_k(unsigned activity) { return tc_rice_k(activity); }
TC_ALWAYS_INLINE unsigned selected_prefix_set(unsigned activity) { return tc_prefix_set(activity, tc_rice_k(activity)); }
TC_ALWAYS_INLINE tc_context *selected_suffix(tc_decoder *d, unsigned activity, uint32_t p)
{
    return d->suffix[tc_suffix_set(tc_rice_k(activity))][p > 0];
}
#endif

/* Decodes |residual| and its sign; returns 0 on a corrupt code. */
/* `activity` is the one the value is coded with (FORMAT 5.4): the running
 * activity, or for scale prediction its mix with the ring's level. */
TC_INLINE int decode_level(tc_decoder *d, range_decoder *r, unsigned activity, value_model *v, uint32_t *magnitude,
                           unsigned *negative)
{
    unsigned selector = context_selector(activity);
    unsigned k = selected_k(selector), magnitude_class;
    tc_context *prefix = d->prefix[selected_prefix_set(selector)];
    uint32_t p = 0, m;
    /* bin p of the prefix uses context min(p, TC_PREFIX_BINS - 1) */
    while (rd_bin(r, prefix)) {
        if (++p == TC_UNARY_MAX)
            break;
        if (p < TC_PREFIX_BINS)
            prefix++;
    }
    if (p == TC_UNARY_MAX) {
        uint32_t extra;
        if (!decode_escape(r, &extra) || extra > TC_MAX_MAGNITUDE)
            return 0;
        p += extra;
    }
    if (k == 0) {
        m = p;
    } else {
        tc_context *suffix = selected_suffix(d, selector, p);
        uint32_t s = rd_bin(r, &suffix[0]);
        if (k >= 2) {
            s = (s << 1) | rd_bin(r, &suffix[1 + s]);
            s = rd_bypass_bits(r, k - 2u, s);
        }
        if (p > (TC_MAX_MAGNITUDE >> k))
            return 0;
        m = (p << k) | s;
    }
    if (m > TC_MAX_MAGNITUDE)
        return 0;
    magnitude_class = tc_bit_length(m);
    *negative = 0;
    if (m) {
        *negative = rd_bin(r, &d->sign[tc_sign_context(v->previous_sign, magnitude_class)]);
        v->previous_sign = 2u - *negative;
    }
    *magnitude = m;
    v->magnitude_class = magnitude_class;
    v->activity = tc_activity_next(v->activity, magnitude_class);
    return 1;
}

/* Scale prediction (FORMAT 5.4, 5.7): the running activity mixed with the
 * activity of this element's column, which the ring holds. */
TC_INLINE unsigned scaled_activity(const value_model *v)
{
    return tc_scale_activity(v->activity, v->ring[v->ring_pos]);
}

/* Factor prediction (FORMAT 5.8): a factor value (an int8) goes to the
 * work buffer, B (H x rank) at the start of the tensor, then each row's A
 * (rank values after B).  Returns 0 if it is not an int8. */
static int store_factor(tc_decoder *d, value_model *v, uint32_t magnitude, unsigned negative)
{
    if (magnitude > 127u + negative)
        return 0;
    v->ring[(v->ring_length + 1u) * d->rank - v->factors_left--] = (uint8_t)(negative ? 0u - magnitude : magnitude);
    return 1;
}

/* The prediction of column `column` of the current row (FORMAT 5.8).  Out
 * of line: one call per weight is little beside its rank multiply-adds,
 * and it keeps the loop over the ranks out of the value loop (10 bytes
 * less flash at -Os). */
TC_NOINLINE static int32_t row_prediction(const int8_t *work, uint32_t column, uint32_t history, unsigned rank, unsigned shift)
{
    return tc_factor_prediction(work + history * rank, work + column * rank, rank, shift);
}

/* Factor prediction (FORMAT 5.8): the level is the coded value plus the
 * prediction of its column from the row's A and the column's B; after a
 * row's last element the next row's A is due.  Residuals are bounded by
 * 2^30, so with |prediction| <= 2^20 the level fits an int32.  Returns 0
 * for a larger residual. */
static int apply_factors(tc_decoder *d, value_model *v, uint32_t *magnitude, unsigned *negative)
{
    const int8_t *work = (const int8_t *)v->ring;
    int32_t level;
    if (*magnitude > TC_MAX_FACTOR_RESIDUAL)
        return 0;
    level = *negative ? -(int32_t)*magnitude : (int32_t)*magnitude;
    level += row_prediction(work, v->ring_pos, v->ring_length, d->rank, d->factor_shift);
    if (++v->ring_pos == v->ring_length) {
        v->ring_pos = 0;
        v->factors_left = d->rank;
    }
    *negative = level < 0;
    *magnitude = level < 0 ? 0u - (uint32_t)level : (uint32_t)level;
    return 1;
}

/* Prediction (FORMAT 5.7), after a value is decoded.  Scale prediction
 * moves the column's activity on.  With difference prediction the level is
 * the coded value plus the level history_length elements back, which the
 * ring keeps clamped to int8 (zeros before the first row).  Returns 0 if
 * |level| exceeds 2^31. */
TC_INLINE int apply_prediction(tc_decoder *d, unsigned prediction, value_model *v, uint32_t *magnitude,
                               unsigned *negative)
{
    uint8_t *slot = v->ring + v->ring_pos;
    uint32_t x, m;
    unsigned below_zero;
    if (prediction == TC_PREDICT_FACTORS)
        return apply_factors(d, v, magnitude, negative);
    if (++v->ring_pos == v->ring_length)
        v->ring_pos = 0;
    if (prediction == TC_PREDICT_SCALE) {
        *slot = (uint8_t)tc_column_activity_next(*slot, v->magnitude_class);
        return 1;
    }
    /* The level modulo 2^32.  |reference| <= 128 only moves a level near
     * zero across it, so the coded sign and x tell the level's sign. */
    x = (*negative ? 0u - *magnitude : *magnitude) + (uint32_t)(int32_t)(int8_t)*slot;
    below_zero = *negative ? x > 127u : x >= 0xFFFFFF80u;
    m = below_zero ? 0u - x : x;
    if (m > TC_MAX_MAGNITUDE)
        return 0;
    /* Clamped to -128..127 and stored as its two's complement byte (x's low
     * byte when |level| <= 127). */
    *slot = (uint8_t)(m > 127u ? 127u + below_zero : x);
    *negative = below_zero;
    *magnitude = m;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Reconstruction (FORMAT 6).                                          */

static uint32_t load_le(const uint8_t *p, unsigned size)
{
    uint32_t v = p[0];
    if (size >= 2)
        v |= (uint32_t)p[1] << 8;
    if (size == 4)
        v |= ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return v;
}

static void store_le(uint8_t *p, uint32_t v, unsigned size)
{
    p[0] = (uint8_t)v;
    if (size >= 2)
        p[1] = (uint8_t)(v >> 8);
    if (size == 4) {
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
    }
}

/* Speed builds first check a lossless level against two limits fixed per
 * tensor, and give only what they do not accept to the general test (M4
 * -O2: 8 instructions per int8 weight less); size builds keep the general
 * test alone, 240 bytes smaller (at -Os the limits would save 5
 * instructions per weight). */
#if !defined(TC_LEVEL_LIMITS) && !defined(__OPTIMIZE_SIZE__)
#define TC_LEVEL_LIMITS 1
#endif

/* The integer modes' map from levels to elements (FORMAT 6.1), fixed for a
 * tensor.  Values are int32 in two's complement: a value v of a dtype of b
 * bits is representable exactly when (v + sign_bias) mod 2^32 <= span, with
 * sign_bias = 2^(b-1) for signed dtypes and 0 for uint8, span = 2^b - 1. */
typedef struct {
    uint32_t offset; /* lossless: the tensor's offset */
    uint32_t sign_bias;
    uint32_t span;
#if TC_LEVEL_LIMITS
    /* lossless, with the offset inside the dtype's range: how many
     * magnitudes a positive (negative) level may have, the offset's distance
     * to the dtype's largest (smallest) value plus one, at most 2^31 + 1;
     * 0 otherwise, leaving every level to the general test */
    uint32_t positive_count, negative_count;
#endif
} integer_map;

#if TC_LEVEL_LIMITS
/* (distance + 1) clamped to TC_MAX_MAGNITUDE + 1: the largest |level| */
static uint32_t magnitude_count(int64_t distance)
{
    return distance >= (int64_t)TC_MAX_MAGNITUDE ? TC_MAX_MAGNITUDE + 1u : (uint32_t)distance + 1u;
}
#endif

static integer_map integer_map_of(const tc_decoder *d)
{
    integer_map map;
    uint32_t top = (uint32_t)1 << (8u * d->element_size - 1u);
    map.offset = (uint32_t)d->offset;
    map.sign_bias = d->dtype == TC_DTYPE_UINT8 ? 0u : top;
    map.span = top - 1u + top;
#if TC_LEVEL_LIMITS
    {
        int64_t smallest = -(int64_t)map.sign_bias, largest = (int64_t)map.span - (int64_t)map.sign_bias;
        int inside = d->mode == TC_MODE_LOSSLESS && d->offset >= smallest && d->offset <= largest;
        map.positive_count = inside ? magnitude_count(largest - d->offset) : 0u;
        map.negative_count = inside ? magnitude_count((int64_t)d->offset - smallest) : 0u;
    }
#endif
    return map;
}

static unsigned bit_length64(uint64_t x)
{
    uint32_t high = (uint32_t)(x >> 32); /* 32 bits: an unsigned int may have 16 */
    return high ? 32u + tc_bit_length(high) : tc_bit_length((uint32_t)x);
}

/* Shift right by `shift` bits rounding half to even. */
TC_OUT_OF_LINE_FOR_SIZE static uint64_t shift_round_even(uint64_t x, unsigned shift)
{
    if (shift == 0)
        return x;
    if (shift > 63)
        return 0; /* x < 2^63 here, so below half of one unit */
    /* Half a unit, less one unless the kept part is odd, carries into the
     * kept part exactly when the rest is above half, or half and it is odd
     * (no overflow: x < 2^63). */
    return (x + ((uint64_t)1 << (shift - 1)) - 1u + ((x >> shift) & 1u)) >> shift;
}

/* IEEE-754 float32 bits of round_to_nearest_even(value * 2^exponent) for
 * an integer 0 <= value < 2^63, with sign; 0 if the result overflows. */
static int float32_from_scaled(uint64_t value, unsigned negative, int exponent, uint32_t *bits)
{
    uint32_t sign = negative ? 0x80000000u : 0u;
    int length, field, shift;
    uint64_t units, pattern;
    if (value == 0) {
        *bits = sign;
        return 1;
    }
    length = (int)bit_length64(value);
    /* The exponent field less one: the significand's leading 1 (bit 23 of
     * `units`) adds it back, and a rounding carry to 2^24 bumps it. */
    field = length - 1 + exponent + 126;
    shift = length - 24; /* keep 24 significant bits */
    if (field < 0) {     /* subnormal: count units of 2^-149 instead */
        shift -= field;
        field = 0;
    }
    units = shift > 0 ? shift_round_even(value, (unsigned)shift) : value << -shift;
    pattern = ((uint64_t)field << 23) + units;
    if (pattern >= 0x7F800000u)
        return 0; /* overflows float32 */
    *bits = sign | (uint32_t)pattern;
    return 1;
}

/* A finite float32 as sign, integer significand and exponent of its last bit. */
static void float32_split(uint32_t bits, uint64_t *significand, int *exponent)
{
    uint32_t biased = (bits >> 23) & 0xFFu;
    *significand = (bits & 0x7FFFFFu) | (biased ? 0x800000u : 0u);
    *exponent = (biased ? (int)biased : 1) - 150;
}

/* IEEE-754 binary32 a + b, round half to even; 0 on overflow (finite
 * inputs only).  Exact: both operands are aligned on a common 2^-k grid in 64
 * bits (the smaller one keeps a sticky bit when it has to be truncated). */
static int float32_add(uint32_t a, uint32_t b, uint32_t *sum)
{
    uint64_t sa, sb;
    int ea, eb, shift;
    uint32_t larger_sign;
    if ((a & 0x7FFFFFFFu) < (b & 0x7FFFFFFFu)) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    if ((a & 0x7FFFFFFFu) == 0) {  /* both zero: -0 only if both are -0 */
        *sum = a & b;
        return 1;
    }
    larger_sign = a & 0x80000000u;
    float32_split(a, &sa, &ea);
    float32_split(b, &sb, &eb);
    sa <<= 32; /* 32 guard bits below a's last bit */
    shift = ea - eb - 32; /* >= -32, as |a| >= |b| */
    if (shift <= 0) {
        sb <<= -shift;
    } else if (shift < 24) {
        uint32_t low = (uint32_t)sb; /* a significand: below 2^24 */
        sb = (low >> shift) | ((low << (32 - shift)) != 0); /* sticky bit for what is lost */
    } else {
        sb = sb != 0; /* wholly below a's rounding position: a sticky bit */
    }
    if ((a ^ b) & 0x80000000u)
        sa -= sb; /* |a| >= |b|: no wrap */
    else
        sa += sb; /* < 2^57 */
    if (sa == 0) {
        *sum = 0; /* exact cancellation is +0 */
        return 1;
    }
    return float32_from_scaled(sa, larger_sign != 0, ea - 32, sum);
}

/* |q| * mantissa for level (m, sign), q its reconstruction index (FORMAT
 * 6.2): the dependent quantizer's state picks even multiples of the step
 * (even states) or odd multiples and zero (odd states); the next state is
 * the state shifted left with the level's parity, flipped by the state's own
 * parity (0x96 holds the parity of 0..7), in its low bit.  The uniform case
 * stays one 32x32->64 multiply. */
static uint64_t scaled_magnitude(tc_decoder *d, uint32_t m, uint32_t mantissa)
{
    uint64_t product = (uint64_t)m * mantissa;
    unsigned state = d->quantizer_state;
    if (d->quantizer == TC_QUANTIZER_UNIFORM)
        return product;
    d->quantizer_state = (uint8_t)(((state << 1) & 7u) | (((0x96u >> state) ^ m) & 1u)); /* NEXT[state][parity] */
    return 2u * product - (m != 0 && (state & 1u) ? mantissa : 0u);
}

/* The integer element for level (m, negative); `element` holds the base
 * element in delta mode and receives the new one. */
TC_ALWAYS_INLINE tc_status reconstruct_integer(const integer_map *map, unsigned size, int delta, uint32_t m,
                                               unsigned negative, uint8_t *element)
{
    uint32_t base, room, value;
#if TC_LEVEL_LIMITS
    if (m < (negative ? map->negative_count : map->positive_count)) { /* fits: lossless only */
        store_le(element, negative ? map->offset - m : map->offset + m, size);
        return TC_OK;
    }
#endif
    /* the int32 base: the offset, or the base element sign-extended */
    base = delta ? (load_le(element, size) ^ map->sign_bias) - map->sign_bias : map->offset;
    /* how far int32 reaches from the base in the level's direction */
    room = negative ? base + 0x80000000u : 0x7FFFFFFFu - base;
    value = negative ? base - m : base + m;
    if (m > room || value + map->sign_bias > map->span)
        return TC_ERR_PAYLOAD;
    store_le(element, value, size);
    return TC_OK;
}

/* The float32 element for level (m, negative), as reconstruct_integer. */
static tc_status reconstruct_float(tc_decoder *d, uint32_t m, unsigned negative, uint8_t *element)
{
    const uint8_t *step = d->u.quantized.steps + 3u * d->u.quantized.channel;
    int exponent = (int)step[2] - (step[2] & 0x80u ? 256 : 0); /* int8, portably */
    uint32_t bits;
    if (!float32_from_scaled(scaled_magnitude(d, m, read_u16(step)), negative, exponent, &bits))
        return TC_ERR_PAYLOAD;
    if (d->mode == TC_MODE_DELTA_QUANTIZED) {
        uint32_t base = load_le(element, 4);
        if (((base >> 23) & 0xFFu) == 0xFFu)
            return TC_ERR_BASE; /* NaN or infinity: never a valid base */
        if (!float32_add(base, bits, &bits))
            return TC_ERR_PAYLOAD;
    }
    store_le(element, bits, 4);
    if (--d->u.quantized.inner_left == 0) {
        d->u.quantized.inner_left = d->u.quantized.inner_size;
        d->u.quantized.channel = d->u.quantized.channel + 1u == d->u.quantized.step_count ? 0u : d->u.quantized.channel + 1u;
    }
    return TC_OK;
}

/* ------------------------------------------------------------------ */
/* Channel peaks (FORMAT 5.9).  Each channel's peak is one element whose  */
/* level is +-P and which is not coded; the payload sends every channel's */
/* position and sign first, and the value loop runs in stretches that    */
/* end before the next peak, so it pays nothing per element for them.    */

/* Whether the tensor has channel peaks: only a lossless one may, and the
 * peaks' fields share their bytes with a quantized tensor's steps. */
static int has_peaks(const tc_decoder *d)
{
    return d->mode == TC_MODE_LOSSLESS && d->u.peaks.magnitude != 0;
}

/* The peaks' entries follow the scale ring's H bytes in the work buffer. */
static uint8_t *peak_table_of(const tc_decoder *d)
{
    return (uint8_t *)d->history + d->history_length;
}

/* Channel c's entry in the work buffer: its position, and its sign in
 * bit 15 (positions are below 32768). */
static uint32_t peak_entry(const tc_decoder *d, uint32_t channel)
{
    const uint8_t *p = peak_table_of(d) + 2u * channel;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* The next peak in element order.  Channel c's elements lie in `slabs`
 * runs of `inner`, run o at element (o * C + c) * inner, so the search
 * walks the (run, channel) pairs in that order and stops at the run that
 * holds the channel's position: over a whole tensor it visits each pair
 * once.  Returns the values left at the peak (counting the peak itself),
 * 0 when no peak is left. */
static uint32_t find_next_peak(tc_decoder *d)
{
    uint32_t inner = d->u.peaks.inner, channels = d->u.peaks.channels;
    for (; d->u.peaks.scan_slab < d->u.peaks.slabs; d->u.peaks.scan_slab++, d->u.peaks.scan_channel = 0) {
        while (d->u.peaks.scan_channel < channels) {
            uint32_t c = d->u.peaks.scan_channel++, entry = peak_entry(d, c);
            uint32_t q = (entry & 0x7FFFu) - d->u.peaks.scan_slab * inner; /* wraps high for earlier runs */
            if (q < inner) {
                d->peak_negative = (uint8_t)(entry >> 15);
                return (d->u.peaks.slabs * channels - d->u.peaks.scan_slab * channels - c) * inner - q;
            }
        }
    }
    return 0;
}

/* The peak entries before the first value: each a position in the
 * channel's `size` elements as a truncated binary code, then a sign, all
 * bypass bins.  A streaming caller may run out of input between them. */
TC_NOINLINE static tc_status read_peaks(tc_decoder *d, const uint8_t *in, size_t *in_pos, size_t in_size)
{
    range_decoder decoder, *r = &decoder;
    int payload_ends_here = rd_open(r, d, in, *in_pos, in_size);
    tc_status st = TC_OK;
    uint32_t size = d->u.peaks.slabs * d->u.peaks.inner;
    unsigned k = tc_bit_length(size) - 1u;
    uint32_t short_codes = (2u << k) - size; /* positions below this take k bits, the rest k + 1 */
    for (; d->u.peaks.read < d->u.peaks.channels; d->u.peaks.read++) {
        uint8_t *entry = peak_table_of(d) + 2u * d->u.peaks.read;
        uint32_t code, longer;
        if (!payload_ends_here && (size_t)(r->end - r->in) < TC_MAX_VALUE_INPUT) {
            st = TC_NEED_INPUT;
            break;
        }
        code = rd_bypass_bits(r, k, 0);
        longer = code >= short_codes;
        code = rd_bypass_bits(r, 1u + longer, code); /* a long code's last bit, then the sign */
        code = ((code >> 1) - (longer ? short_codes : 0u)) | (code & 1u) << 15; /* position < size */
        entry[0] = (uint8_t)code;
        entry[1] = (uint8_t)(code >> 8);
        if (r->overrun) {
            st = TC_ERR_PAYLOAD;
            break;
        }
    }
    rd_close(r, d, in, in_pos);
    if (st == TC_OK)
        d->u.peaks.at = find_next_peak(d);
    return st;
}

/* Writes the peak due now: its level needs no decoding, leaves the model
 * alone, and (scale prediction) moves the ring past its slot unchanged. */
TC_NOINLINE static tc_status put_peak(tc_decoder *d, uint8_t *element)
{
    integer_map map = integer_map_of(d);
    tc_status st = reconstruct_integer(&map, d->element_size, 0, d->u.peaks.magnitude, d->peak_negative, element);
    if (st != TC_OK)
        return st;
    d->crc = crc32_update(d->crc, element, d->element_size);
    if (d->history_length != 0 && ++d->history_pos == d->history_length)
        d->history_pos = 0;
    d->values_left--;
    d->u.peaks.at = find_next_peak(d);
    return TC_OK;
}

/* ------------------------------------------------------------------ */
/* Tensor decoder.                                                     */

/* The prefix, suffix and sign contexts lie back to back in tc_decoder, so
 * one loop resets them all; the array type below fails to compile if a
 * change of the struct ever separates them. */
#define TC_CONTEXT_SPAN (offsetof(tc_decoder, sign) + sizeof(tc_context) * TC_SIGN_CONTEXTS - offsetof(tc_decoder, prefix))
typedef char tc_contexts_are_adjacent[TC_CONTEXT_SPAN == sizeof(tc_context) * TC_CONTEXT_COUNT ? 1 : -1];

tc_status tc_decoder_init(tc_decoder *d, const tc_tensor_info *info)
{
    uint32_t i;
    if (d == NULL || info == NULL)
        return TC_ERR_ARGUMENT;
    /* a hand-made info must be as consistent as a parsed one */
    if (!entry_kind_is_valid(info) || check_peaks(info) != TC_OK ||
        info->quantizer > (unsigned)mode_is_quantized(info->mode) ||
        (mode_is_quantized(info->mode) && info->element_count != 0 && (info->steps == NULL || info->step_count == 0 ||
                                           (info->axis != TC_AXIS_NONE && info->axis >= info->ndim))) ||
        info->ndim > TC_MAX_NDIM)
        return TC_ERR_ARGUMENT;
    zero_bytes(d, sizeof *d);
    d->payload_left = info->payload_size;
    d->values_left = info->element_count;
    d->expected_crc = info->crc32;
    d->expected_base_crc = info->base_crc32;
    d->crc = 0xFFFFFFFFu;
    d->base_crc = 0xFFFFFFFFu;
    d->dtype = info->dtype;
    d->mode = info->mode;
    d->element_size = info->element_size;
    d->offset = info->offset;
    d->activity = info->initial_activity;
    d->history_length = info->history;
    d->prediction = info->prediction;
    d->rank = info->rank;
    d->factor_shift = info->factor_shift;
    d->factor_activity = TC_FACTOR_ACTIVITY;
    d->factors_left = (info->history + 1u) * info->rank; /* B, then the first row's A */
    d->quantizer = info->quantizer;
    d->range = 0xFFFFFFFFu;
    if (mode_is_quantized(info->mode)) {
        d->u.quantized.steps = info->steps;
        d->u.quantized.step_count = info->step_count;
        d->u.quantized.inner_size = info->element_count ? info->element_count : 1u;
        if (info->axis != TC_AXIS_NONE) {
            d->u.quantized.inner_size = 1;
            for (i = (uint32_t)info->axis + 1u; i < info->ndim; i++)
                d->u.quantized.inner_size *= info->dims[i]; /* <= element_count: no overflow */
        }
        d->u.quantized.inner_left = d->u.quantized.inner_size;
    }
    tc_contexts_reset((tc_context *)(void *)((uint8_t *)d + offsetof(tc_decoder, prefix)));
    if (info->peak != 0) {
        uint32_t slabs = 1, inner = 1; /* check_peaks: products of the channel size, 1..32768 */
        for (i = 0; i < info->ndim; i++) {
            if (i < info->peak_axis)
                slabs *= info->dims[i];
            else if (i > info->peak_axis)
                inner *= info->dims[i];
        }
        d->u.peaks.magnitude = info->peak;
        d->u.peaks.channels = (uint16_t)info->dims[info->peak_axis];
        d->u.peaks.slabs = (uint16_t)slabs;
        d->u.peaks.inner = (uint16_t)inner;
    }
    return TC_OK;
}

/* The working memory a tensor needs (FORMAT 5.7-5.9). */
static uint32_t work_size_of(const tc_decoder *d)
{
    uint32_t ring = d->rank ? (d->history_length + 1u) * d->rank : d->history_length;
    return ring + (has_peaks(d) ? 2u * d->u.peaks.channels : 0u);
}

tc_status tc_decoder_set_history(tc_decoder *d, int8_t *buffer, size_t size)
{
    if (d == NULL || d->started)
        return TC_ERR_ARGUMENT;
    if (work_size_of(d) == 0)
        return TC_OK;
    if (buffer == NULL || size < work_size_of(d))
        return TC_ERR_HISTORY; /* FORMAT 5.8: factors take (H + 1) * rank bytes; 5.9: peaks 2 per channel */
    /* FORMAT 5.7: columns start at the initial activity, levels at 0 */
    fill_bytes(buffer, d->prediction == TC_PREDICT_SCALE ? d->activity : 0u, d->history_length);
    d->history = buffer; /* the ring, then the peaks' entries (FORMAT 5.9) */
    return TC_OK;
}

/* Reads the first four payload bytes into the code register. */
static tc_status start_range_decoder(tc_decoder *d, const uint8_t *in, size_t *in_pos, size_t in_size)
{
    unsigned i;
    if (d->payload_left < 4)
        return TC_ERR_PAYLOAD;
    if (in_size - *in_pos < 4)
        return TC_NEED_INPUT;
    for (i = 0; i < 4; i++)
        d->code = (d->code << 8) | in[(*in_pos)++];
    d->payload_left -= 4;
    if (d->code == 0xFFFFFFFFu)
        return TC_ERR_PAYLOAD; /* code must stay below range */
    d->started = 1;
    return TC_OK;
}

/* All values are out: the payload must be used up exactly and end with the
 * encoder's flushed `low`, which leaves the code register at 0 (so a flip in
 * the flush bytes is caught too), the base must have been the right one and
 * the CRC must match. */
static tc_status finish_tensor(const tc_decoder *d)
{
    if (d->payload_left != 0 || d->code != 0)
        return TC_ERR_PAYLOAD;
    if (mode_is_delta(d->mode) && ~d->base_crc != d->expected_base_crc)
        return TC_ERR_BASE;
    if (~d->crc != d->expected_crc)
        return TC_ERR_CRC;
    return TC_OK;
}

/* Decodes the values up to the next channel peak (all of them in a tensor
 * without peaks) as far as input and output allow, for tc_decoder_run,
 * which has checked its arguments and writes the peaks between calls.
 * Inlined there: kept out of line it cost the Cortex-M0 7 instructions per
 * weight at -O2.  Its range decoder must stay a local whose address is
 * never taken: passed by pointer to the peaks' reader it stayed in memory
 * through the value loop, 37 instructions per weight more (M4, -O2). */
TC_ALWAYS_INLINE tc_status decode_stretch(tc_decoder *d, const uint8_t *in, size_t *in_pos, size_t in_size,
                                          uint8_t *out, size_t *out_pos, size_t out_size)
{
    range_decoder r;
    const uint8_t *payload_end;
    uint8_t *chunk_start, *cursor_out;
    size_t room;
    uint32_t fitting, left;
    int payload_ends_here, delta, quantized;
    unsigned size, prediction;
    value_model v;
    integer_map map;
    tc_status st = TC_OK;

    payload_ends_here = rd_open(&r, d, in, *in_pos, in_size);
    payload_end = r.end;
    size = d->element_size;
    delta = mode_is_delta(d->mode);
    quantized = mode_is_quantized(d->mode);
    map = integer_map_of(d);
    /* In locals: stores to `out` may alias *d, so fields would be reloaded
     * for every value.  A tensor with prediction has its history by now
     * (checked above), so the kind alone says whether to use it. */
    prediction = d->prediction;
    v.activity = d->activity;
    v.previous_sign = d->previous_sign;
    v.magnitude_class = 0;
    v.ring = (uint8_t *)d->history;
    v.ring_pos = d->history_pos;
    v.ring_length = d->history_length;
    v.factors_left = d->factors_left;
    chunk_start = cursor_out = out + *out_pos;
    /* Only values whose elements fit in the output are decoded, so the
     * loop needs no test for room (size is 1, 2 or 4: size >> 1 is its log2). */
    room = (out_size - *out_pos) >> (size >> 1);
    /* The values before the next channel peak (FORMAT 5.9); all of them
     * when none is left (peak_at 0).  The peaks' own entries come first. */
    fitting = d->values_left - (has_peaks(d) ? d->u.peaks.at : 0u);
    fitting = room < fitting ? (uint32_t)room : fitting;

    for (left = fitting; left > 0;) {
        uint32_t m;
        unsigned negative, coded_activity;
        /* FORMAT 5.8: factor values come before a row's elements, coded with
         * their own activity: they span the int8 range, the residuals not */
        int factor = TC_UNLIKELY(v.factors_left != 0);
        if (!payload_ends_here && (size_t)(payload_end - r.in) < TC_MAX_VALUE_INPUT) {
            st = TC_NEED_INPUT;
            break;
        }
        if (factor) {
            coded_activity = d->factor_activity;
            d->factor_activity = (uint16_t)v.activity;
            v.activity = coded_activity;
        } else {
            if (delta)
                d->base_crc = crc32_update(d->base_crc, cursor_out, size);
            coded_activity = prediction == TC_PREDICT_SCALE ? scaled_activity(&v) : v.activity;
        }
        if (!decode_level(d, &r, coded_activity, &v, &m, &negative) || r.overrun) {
            st = TC_ERR_PAYLOAD;
            break;
        }
        if (factor) {
            coded_activity = d->factor_activity; /* the running activity, back */
            d->factor_activity = (uint16_t)v.activity;
            v.activity = coded_activity;
            if (!store_factor(d, &v, m, negative)) {
                st = TC_ERR_PAYLOAD;
                break;
            }
            continue;
        }
        if (prediction != TC_PREDICT_NONE && !apply_prediction(d, prediction, &v, &m, &negative)) {
            st = TC_ERR_PAYLOAD;
            break;
        }
        st = quantized ? reconstruct_float(d, m, negative, cursor_out)
                       : reconstruct_integer(&map, size, delta, m, negative, cursor_out);
        if (st != TC_OK)
            break;
        cursor_out += size;
        left--;
    }

    d->values_left -= fitting - left;

    d->activity = (uint16_t)v.activity;
    d->previous_sign = (uint8_t)v.previous_sign;
    d->history_pos = v.ring_pos;
    d->factors_left = v.factors_left;
    d->crc = crc32_update(d->crc, chunk_start, (size_t)(cursor_out - chunk_start));
    *out_pos = (size_t)(cursor_out - out);
    rd_close(&r, d, in, in_pos);
    return st;
}

tc_status tc_decoder_run(tc_decoder *d, const uint8_t *in, size_t *in_pos, size_t in_size,
                         uint8_t *out, size_t *out_pos, size_t out_size)
{
    uint8_t no_bytes[1]; /* stands in for an empty NULL buffer: never read or written */
    tc_status st;
    if (d == NULL || in_pos == NULL || out_pos == NULL || *in_pos > in_size || *out_pos > out_size ||
        (in == NULL && in_size != 0) || (out == NULL && out_size != 0))
        return TC_ERR_ARGUMENT;
    if (d->values_left == 0)
        return finish_tensor(d);
    if ((d->history_length != 0 || has_peaks(d)) && d->history == NULL)
        return TC_ERR_HISTORY;
    if (in == NULL)
        in = no_bytes; /* empty buffers may be NULL; pointer arithmetic on NULL is not */
    if (out == NULL)
        out = no_bytes;
    if (!d->started && (st = start_range_decoder(d, in, in_pos, in_size)) != TC_OK)
        return st;

    if (has_peaks(d) && d->u.peaks.read < d->u.peaks.channels && (st = read_peaks(d, in, in_pos, in_size)) != TC_OK)
        return st;
    /* a peak due, with room for it, after each stretch of values */
    while ((st = decode_stretch(d, in, in_pos, in_size, out, out_pos, out_size)) == TC_OK && has_peaks(d) &&
           d->u.peaks.at == d->values_left && d->u.peaks.at != 0 && out_size - *out_pos >= d->element_size) {
        if ((st = put_peak(d, out + *out_pos)) != TC_OK)
            return st;
        *out_pos += d->element_size;
    }
    if (st == TC_OK)
        st = d->values_left > 0 ? TC_NEED_OUTPUT : finish_tensor(d);
    return st;
}

tc_status tc_check_base(const tc_tensor_info *info, const uint8_t *base, size_t size)
{
    if (info == NULL || (base == NULL && size != 0))
        return TC_ERR_ARGUMENT;
    if (!mode_is_delta(info->mode))
        return TC_ERR_ARGUMENT;
    if ((uint64_t)info->element_count * info->element_size != size)
        return TC_ERR_OUTPUT_SIZE;
    return tc_crc32(0, base, size) == info->base_crc32 ? TC_OK : TC_ERR_BASE;
}

tc_status tc_decode_tensor(const tc_stream *s, const tc_tensor_info *info, tc_decoder *d, uint8_t *out,
                           size_t out_size, int8_t *history, size_t history_size)
{
    size_t in_pos = 0, out_pos = 0;
    tc_status st;
    if (s == NULL || info == NULL || d == NULL || s->data == NULL)
        return TC_ERR_ARGUMENT;
    if (info->payload_offset > s->size || info->payload_size > s->size - info->payload_offset)
        return TC_ERR_TRUNCATED;
    if ((uint64_t)info->element_count * info->element_size > out_size)
        return TC_ERR_OUTPUT_SIZE;
    /* a wrong base is refused before a byte of it is replaced */
    if (mode_is_delta(info->mode) &&
        (st = tc_check_base(info, out, (size_t)info->element_count * info->element_size)) != TC_OK)
        return st;
    if ((st = tc_decoder_init(d, info)) != TC_OK || (st = tc_decoder_set_history(d, history, history_size)) != TC_OK)
        return st;
    st = tc_decoder_run(d, s->data + info->payload_offset, &in_pos, info->payload_size, out, &out_pos, out_size);
    return st == TC_NEED_INPUT ? TC_ERR_PAYLOAD : st;
}
