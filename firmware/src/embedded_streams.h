/*
 * embedded_streams.h - the tinycabac streams built into this firmware.
 *
 * scripts/embed_streams.py generates the table at build time from the
 * TINYCABAC_STREAM environment variable (one or more .tcb files).
 */
#ifndef EMBEDDED_STREAMS_H
#define EMBEDDED_STREAMS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *label;           /* file name of the embedded .tcb */
    const unsigned char *data;   /* the stream, in flash */
    const unsigned long *length; /* its size in bytes */
} tc_embedded_stream;

extern const tc_embedded_stream tc_embedded_streams[];
extern const unsigned tc_embedded_stream_count;

#ifdef __cplusplus
}
#endif

#endif /* EMBEDDED_STREAMS_H */
