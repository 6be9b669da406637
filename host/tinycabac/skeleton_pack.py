"""The packed .tflite skeleton (FORMAT 3.6): LZ77 over the skeleton's bytes,
laid out as sections so that the weights' adaptive coder sees one kind of
symbol at a time.

A .tflite file's skeleton (tables, names, quantization parameters) repeats
itself: vtables, tensor tables of one layout, names sharing long prefixes.
The weights' coder, which knows nothing of repeats, codes it 1.4 to 5 times
larger than xz; packed first, it codes about half as large.  Matches are
found greedily with one step of lazy matching over hash chains, as zlib
does, in C (csrc/skeleton_pack.c): a skeleton can be hundreds of MB (int4
weights stay in it).  The parse is deterministic: the same skeleton always
packs to the same bytes, so a model re-encoded from its decoded stream
gives the same stream.  Unpacking runs the device's own code
(decoder_c/tflite/tc_tflite.c), so host and device refuse the same input.
"""
from __future__ import annotations

import struct

import numpy as np

from .native import ffi, lib

MIN_MATCH = 4
MAX_DISTANCE = 4 * 65535 + 3  # the quotient high byte's room
# skeleton size, matches, repeated distances, the lanes' sizes, literal-length bytes, match-length bytes
HEADER = struct.Struct("<9I")


class PackError(ValueError):
    """A packed skeleton breaks FORMAT 3.6."""


def pack(skeleton: bytes) -> bytes:
    """The packed form of `skeleton` (FORMAT 3.6): the parse below, its
    literals in four lanes by position mod 4, each through its own
    move-to-front list, and a match's distance as a code that repeats one
    of the four most recent distances whenever it can (csrc/skeleton_pack.c)."""
    data = bytes(skeleton)
    out = bytearray(lib.tcs_pack_bound(len(data)))
    size = lib.tcs_pack(ffi.from_buffer(data), len(data), ffi.from_buffer(out), len(out))
    if size < 0:
        raise MemoryError(f"cannot pack a {len(data)}-byte skeleton (status {size})")
    return bytes(out[:size])


def parse(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LZ77 sequences of `data` (csrc/skeleton_pack.h): per sequence, its
    literal count, match length and distance (uint32; the last sequence
    has no match, length 0)."""
    capacity = len(data) // MIN_MATCH + 2
    literal_counts, match_lengths, distances = (np.empty(capacity, np.uint32) for _ in range(3))
    count = lib.tcs_lz_parse(ffi.from_buffer(data), len(data), _u32(literal_counts), _u32(match_lengths),
                             _u32(distances), capacity)  # fmt: skip
    if count < 0:
        raise MemoryError(f"cannot parse a {len(data)}-byte skeleton (status {count})")
    return literal_counts[:count], match_lengths[:count], distances[:count]


def _u32(array: np.ndarray):
    return ffi.cast("uint32_t *", ffi.from_buffer(array))


def unpack(packed: bytes) -> bytes:
    """The skeleton `packed` holds, unpacked by the code a device runs
    (decoder_c/tflite/tc_tflite.c); PackError if it breaks FORMAT 3.6."""
    packed = bytes(packed)
    size = _declared_size(packed)
    out = bytearray(size)
    status = lib.tc_tflite_unpack_skeleton(ffi.from_buffer(packed), len(packed), ffi.from_buffer(out), size)
    if status != 0:
        reason = ffi.string(lib.tc_status_string(status)).decode()
        raise PackError(f"packed skeleton: {reason} (a length, distance or section breaks FORMAT 3.6)")
    return bytes(out)


def _declared_size(packed: bytes) -> int:
    """The header's skeleton size S, once the sections are seen to fill the
    packed bytes and their lengths to add up to S, as they must for it to
    unpack: a lying header cannot make the host allocate more than its
    lengths describe."""
    if len(packed) < HEADER.size:
        raise PackError(f"packed skeleton of {len(packed)} bytes, shorter than its {HEADER.size}-byte header")
    size, matches, repeats, *lanes, literal_length_bytes, match_length_bytes = HEADER.unpack_from(packed)
    literals = sum(lanes)
    total = HEADER.size + literals + literal_length_bytes + match_length_bytes + 3 * matches - 2 * repeats
    if repeats > matches or total != len(packed):
        raise PackError(f"packed skeleton: its header's sections add up to {total} bytes, not its {len(packed)}")
    lengths_at = HEADER.size + literals
    matches_at = lengths_at + literal_length_bytes
    view = np.frombuffer(packed, np.uint8)
    literal_sum = int(view[lengths_at:matches_at].sum(dtype=np.int64))
    match_sum = int(view[matches_at : matches_at + match_length_bytes].sum(dtype=np.int64))
    if literal_sum != literals or literals + match_sum + MIN_MATCH * matches != size:
        raise PackError(f"packed skeleton: its lengths do not add up to its {literals} literals and {size} bytes")
    return size
