/*
 * fuzz_decode_stream.c - whole-stream decode: tc_stream_open, then every
 * tensor through tc_decode_tensor into an exact-size buffer.
 *
 * Checks beyond "no crash": every entry tc_stream_open accepted parses again
 * and is consistent (tcu_check_info), tc_stream_find finds each name at its
 * first occurrence, and with FUZZ_FIX_TENSOR_CRC a tensor that failed only
 * its CRC decodes, once the CRC is repaired, to the very same bytes.
 */
#include "fuzz_common.h"

static void check_find(tcu_decoded *r)
{
    uint32_t i, j, index;
    tc_tensor_info found;
    for (i = 0; i < r->count; i++) {
        const tc_tensor_info *t = &r->info[i];
        tc_status st = tc_stream_find(&r->stream, (const char *)t->name, t->name_len, &found, &index);
        TCU_CHECK(st == TC_OK && index <= i, "tc_stream_find misses a listed tensor");
        for (j = 0; j < index; j++)
            TCU_CHECK(r->info[j].name_len != t->name_len || memcmp(r->info[j].name, t->name, t->name_len) != 0,
                      "tc_stream_find skipped an earlier tensor of that name");
    }
}

/* Delta tensors decode over a zero base here: make their base_crc32 say so. */
static void repair_base_crcs(uint8_t *data, size_t size)
{
    static const uint8_t zeros[4096];
    tc_stream s;
    tc_tensor_info t;
    uint32_t i;
    if (tc_stream_open(&s, data, size) != TC_OK)
        return;
    for (i = 0; i < s.tensor_count; i++) {
        size_t bytes, done;
        uint32_t crc = 0;
        if (tc_stream_tensor(&s, i, &t) != TC_OK || !tcu_mode_is_delta(t.mode) || !fuzz_output_fits(&t, &bytes))
            continue;
        for (done = 0; done < bytes; done += sizeof zeros)
            crc = tc_crc32(crc, zeros, bytes - done < sizeof zeros ? bytes - done : sizeof zeros);
        tcu_put_u32(data + tcu_entry_base_crc_offset(&s, &t), crc); /* a fixed-size field: the entry keeps its size */
    }
    tcu_fix_header_crc(data, size);
}

/* A tensor that failed only its CRC: repair the CRC, decode again, and the
 * bytes must not change. */
static void check_crc_repair(uint8_t *data, size_t size, const tcu_decoded *r)
{
    uint32_t i = r->failed_index;
    tcu_decoded again;
    size_t crc_at = tcu_entry_crc_offset(&r->stream, &r->info[i]);
    tcu_put_u32(data + crc_at, tc_crc32(0, r->data[i], r->bytes[i]));
    tcu_fix_header_crc(data, size);
    tcu_decode_all(data, size, 0, FUZZ_MAX_OUTPUT, NULL, 0, &again);
    TCU_CHECK(again.count > i && (again.status == TC_OK || again.failed_index > i),
              "tensor still fails after its CRC was repaired");
    TCU_CHECK(again.bytes[i] == r->bytes[i] && memcmp(again.data[i], r->data[i], r->bytes[i]) == 0,
              "decoded bytes changed with the CRC field");
    tcu_decoded_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    uint8_t *stream;
    tcu_decoded r;
    if (size < FUZZ_PREFIX)
        return 0;
    stream = fuzz_stream_copy(data, size, FUZZ_PREFIX, &n);
    if (data[0] & FUZZ_FIX_TENSOR_CRC)
        repair_base_crcs(stream, n);
    tcu_decode_all(stream, n, 0, FUZZ_MAX_OUTPUT, NULL, 0, &r);
    check_find(&r);
    if ((data[0] & FUZZ_FIX_TENSOR_CRC) && r.status == TC_ERR_CRC)
        check_crc_repair(stream, n, &r);
    tcu_decoded_free(&r);
    free(stream);
    return 0;
}
