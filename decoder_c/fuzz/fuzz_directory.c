/*
 * fuzz_directory.c - header and directory parsing and random access:
 * tc_stream_open on the stream and on shorter prefixes, tc_stream_tensor on
 * every index and past the end (in order, backwards and skipping, each the
 * same as a walk from the first entry), tc_stream_find on a fuzzer-chosen
 * name and on every listed name.
 *
 * Layout: the common prefix (byte 1 = length L of the queried name, bytes
 * 2..3 = a shorter size to open), then L name bytes, then the stream.
 */
#include "fuzz_common.h"

static int same_name(const tc_tensor_info *t, const uint8_t *name, size_t len)
{
    return t->name_len == len && memcmp(t->name, name, len) == 0;
}

/* The first index holding `name`, or tensor_count. */
static uint32_t first_index(tc_stream *s, const uint8_t *name, size_t len)
{
    tc_tensor_info t;
    uint32_t i;
    for (i = 0; i < s->tensor_count; i++) {
        TCU_CHECK(tc_stream_tensor(s, i, &t) == TC_OK, "listed tensor does not parse");
        if (same_name(&t, name, len))
            return i;
    }
    return s->tensor_count;
}

static void check_query(tc_stream *s, const uint8_t *name, size_t len)
{
    tc_tensor_info t;
    uint32_t index = 0xFFFFFFFFu, expected = first_index(s, name, len);
    tc_status st = tc_stream_find(s, (const char *)name, len, &t, &index);
    if (expected == s->tensor_count) {
        TCU_CHECK(st == TC_ERR_NOT_FOUND, "found a name that is not listed");
    } else {
        TCU_CHECK(st == TC_OK && index == expected && same_name(&t, name, len), "tc_stream_find gave the wrong entry");
    }
}

/* Entry i read after any other call equals entry i read from the start:
 * tc_stream_tensor's resume point never shows in what it returns. */
static void check_same_entry(tc_stream *s, uint32_t i)
{
    tc_stream fresh;
    tc_tensor_info resumed, walked;
    TCU_CHECK(tc_stream_open(&fresh, s->data, s->size) == TC_OK, "an open stream does not open again");
    TCU_CHECK(tc_stream_tensor(s, i, &resumed) == TC_OK && tc_stream_tensor(&fresh, i, &walked) == TC_OK &&
                  memcmp(&resumed, &walked, sizeof resumed) == 0,
              "tc_stream_tensor depends on the calls before it");
}

static void check_entries(tc_stream *s)
{
    tc_tensor_info t;
    uint32_t i;
    const char *problem;
    for (i = 0; i < s->tensor_count; i++) {
        TCU_CHECK(tc_stream_tensor(s, i, &t) == TC_OK, "listed tensor does not parse");
        if ((problem = tcu_check_info(s, &t)) != NULL)
            tcu_fail(__FILE__, __LINE__, problem);
        check_query(s, t.name, t.name_len);
    }
    for (i = s->tensor_count; i-- > 0;)
        check_same_entry(s, i); /* backwards, then forwards by one and by two */
    for (i = 0; i < s->tensor_count; i += 1u + (i & 1u))
        check_same_entry(s, i);
    TCU_CHECK(tc_stream_tensor(s, s->tensor_count, &t) == TC_ERR_NOT_FOUND, "index past the end");
    TCU_CHECK(tc_stream_tensor(s, 0xFFFFFFFFu, &t) == TC_ERR_NOT_FOUND, "index 2^32-1");
}

/* Opening needs the header and directory, nothing more, and no less. */
static void check_prefixes(const uint8_t *stream, size_t n, size_t shorter, tc_status full)
{
    tc_stream s;
    size_t directory_end;
    uint8_t *copy;
    if (full != TC_OK)
        return;
    directory_end = TC_HEADER_SIZE + ((size_t)stream[8] | ((size_t)stream[9] << 8) | ((size_t)stream[10] << 16) |
                                      ((size_t)stream[11] << 24));
    copy = malloc(directory_end);
    memcpy(copy, stream, directory_end);
    TCU_CHECK(tc_stream_open(&s, copy, directory_end) == TC_OK, "open needs more than header and directory");
    free(copy);
    shorter %= directory_end;
    copy = malloc(shorter ? shorter : 1u);
    memcpy(copy, stream, shorter);
    TCU_CHECK(tc_stream_open(&s, copy, shorter) != TC_OK, "opened a stream cut inside its directory");
    free(copy);
    (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t name_len, n;
    uint8_t *stream, *name;
    tc_stream s;
    tc_status st;
    if (size < FUZZ_PREFIX)
        return 0;
    name_len = data[1];
    if (size - FUZZ_PREFIX < name_len)
        return 0;
    name = malloc(name_len ? name_len : 1u);
    memcpy(name, data + FUZZ_PREFIX, name_len);
    stream = fuzz_stream_copy(data, size, FUZZ_PREFIX + name_len, &n);
    st = tc_stream_open(&s, stream, n);
    if (st == TC_OK) {
        check_entries(&s);
        check_query(&s, name, name_len);
    }
    check_prefixes(stream, n, (size_t)data[2] | ((size_t)data[3] << 8), st);
    free(stream);
    free(name);
    return 0;
}
