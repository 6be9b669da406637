/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tc_tflite.h - rebuild a .tflite file on the device from a tinycabac stream
 * made by `tinycabac encode model.tflite` (FORMAT 3.5), for TensorFlow Lite
 * Micro, which needs the model as one contiguous byte array.
 *
 * An optional companion of the decoder (decoder_c/tinycabac.c), kept out of
 * its 4 KB: it only calls the decoder's public API.  The rebuild runs in
 * place in the caller's model buffer, one tensor at a time, with the
 * caller's tc_decoder; besides the model it needs 8 bytes per weight buffer
 * for the stream's table of places, and 1 KiB of stack to unpack a
 * packed skeleton (FORMAT 3.6) in the file's own room.  The result is the
 * file the host tools rebuild: byte for byte the original for a lossless
 * stream.
 *
 *     uint32_t file_size, places;       // then size place_table and model
 *     tc_tflite_info(&s, &decoder, history, sizeof history, &file_size, &places);
 *     tc_tflite_rebuild(&s, &decoder, history, sizeof history,
 *                       place_table, 8 * places + 4, model, file_size);
 *     const tflite::Model *m = tflite::GetModel(model);      // TFLite Micro (C++)
 */
#ifndef TC_TFLITE_H
#define TC_TFLITE_H

#include <stddef.h>
#include <stdint.h>

#include "tinycabac.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TC_TFLITE_SKELETON_NAME "__tflite_skeleton__"
#define TC_TFLITE_PACKED_SKELETON_NAME "__tflite_packed_skeleton__" /* instead of the plain one */
#define TC_TFLITE_PLACES_NAME "__tflite_places__"
#define TC_TFLITE_LAYOUT_NAME "__tflite_layout__" /* the host tools' JSON layout (2 GiB files): refused here */

/* The size of the .tflite file the stream rebuilds and the number of weight
 * buffers in it.  TC_ERR_NOT_FOUND: not a stream of a .tflite file (or one
 * from before format 8).  `history` as for tc_tflite_rebuild (the table may
 * be coded with prediction like any tensor). */
tc_status tc_tflite_info(tc_stream *s, tc_decoder *decoder, int8_t *history, size_t history_size,
                         uint32_t *file_size, uint32_t *place_count);

/* Rebuild the .tflite file into model[0 .. file_size).  `places` is working
 * memory of at least 8 * place_count + 4 bytes; `history` serves tensors
 * coded with prediction, as for tc_decode_tensor.  Every offset and size is
 * checked before the first byte is moved: a stream whose places do not tile
 * the file exactly, with both skeletons or a corrupt packed one fails with
 * TC_ERR_RESERVED, one without a skeleton with TC_ERR_NOT_FOUND, and
 * model_size < file_size with TC_ERR_OUTPUT_SIZE.  Only model[0 ..
 * file_size) is written, and on an error the model buffer holds no model.
 * `places` and `model` must be separate buffers (TC_ERR_ARGUMENT if they
 * overlap), and neither may share memory with the stream or `history`. */
tc_status tc_tflite_rebuild(tc_stream *s, tc_decoder *decoder, int8_t *history, size_t history_size,
                            uint8_t *places, size_t places_size, uint8_t *model, size_t model_size);

#ifdef TC_TFLITE_UNPACK_API
/* Host builds only (the cffi module defines it): the packed skeleton
 * in[0 .. in_size) unpacked into out[0 .. out_size) by the rebuild's own
 * code, so that the host tools unpack exactly as a device does.  out_size
 * must be the header's S (TC_ERR_ARGUMENT otherwise, and for fewer than 36
 * bytes of input); a corrupt packed skeleton gives TC_ERR_RESERVED. */
tc_status tc_tflite_unpack_skeleton(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size);
#endif

/* IEEE-754 binary16 nearest (ties to even) to a float32 bit pattern, as the
 * host narrows float16 weights, which decode to float32. */
uint16_t tc_float16_from_float32(uint32_t bits);

#ifdef __cplusplus
}
#endif

#endif /* TC_TFLITE_H */
