"""The packed .tflite skeleton (FORMAT 3.6): LZ77 over the skeleton's bytes,
laid out as sections so that the weights' adaptive coder sees one kind of
symbol at a time.

A .tflite file's skeleton (tables, names, quantization parameters) repeats
itself: vtables, tensor tables of one layout, names sharing long prefixes.
The weights' coder, which knows nothing of repeats, codes it 1.4 to 5 times
larger than xz; packed first, it codes about half as large.  Matches are
found greedily with one step of lazy matching over hash chains, as zlib
does.  The parse is deterministic: the same skeleton always packs to the
same bytes, so a model re-encoded from its decoded stream gives the same
stream.
"""
from __future__ import annotations

import struct

MIN_MATCH = 4
MAX_DISTANCE = 4 * 65535 + 3  # the quotient high byte's room
HEADER = struct.Struct("<5I")  # skeleton size, matches, literals, literal-length bytes, match-length bytes
_CHAIN_DEPTH = 64
_NICE_LENGTH = 258  # a match this long ends the search, as in zlib


class PackError(ValueError):
    """A packed skeleton breaks FORMAT 3.6."""


def pack(skeleton: bytes) -> bytes:
    """The packed form of `skeleton` (FORMAT 3.6)."""
    data = bytes(skeleton)
    sequences = _parse(data)
    literals, literal_lengths, match_lengths = bytearray(), bytearray(), bytearray()
    remainders, quotient_low, quotient_high = bytearray(), bytearray(), bytearray()
    for start, literal_count, match_length, distance in sequences:
        literals += data[start : start + literal_count]
        _put_length(literal_count, literal_lengths)
        if match_length:
            _put_length(match_length - MIN_MATCH, match_lengths)
            remainders.append(distance & 3)
            quotient_low.append((distance >> 2) & 0xFF)
            quotient_high.append(distance >> 10)
    header = HEADER.pack(len(data), len(remainders), len(literals), len(literal_lengths), len(match_lengths))
    return b"".join((header, _move_to_front(literals), literal_lengths, match_lengths, remainders, quotient_low,
                     quotient_high))  # fmt: skip


def unpack(packed: bytes) -> bytes:
    """The skeleton `packed` holds; PackError if it breaks FORMAT 3.6."""
    sections = _sections(memoryview(bytes(packed)))
    ranks, literal_lengths, match_lengths, remainders, quotient_low, quotient_high = sections[1:]
    size = sections[0]
    out = bytearray()
    table = bytearray(range(256))
    literal_at = length_at = match_at = 0
    for match in range(len(remainders) + 1):
        count, length_at = _get_length(literal_lengths, length_at, size - len(out), "literal run")
        if count > len(ranks) - literal_at:
            raise PackError("packed skeleton: a literal run passes the end of the literals")
        out += _from_front(ranks[literal_at : literal_at + count], table)
        literal_at += count
        if match == len(remainders):
            break
        extra, match_at = _get_length(match_lengths, match_at, size - len(out) - MIN_MATCH, "match")
        distance = 4 * (quotient_low[match] | quotient_high[match] << 8) + remainders[match]
        if remainders[match] > 3:
            raise PackError(f"packed skeleton: match {match} has a distance remainder of {remainders[match]}")
        if not 1 <= distance <= len(out):
            raise PackError(f"packed skeleton: match {match} reaches back {distance} bytes, before the start")
        _copy_match(out, distance, extra + MIN_MATCH)
    if len(out) != size or literal_at != len(ranks) or length_at != len(literal_lengths) or match_at != len(
            match_lengths):  # fmt: skip
        raise PackError("packed skeleton: sections hold more than the skeleton, or the skeleton is short")
    return bytes(out)


def _sections(packed: memoryview) -> tuple:
    """The header's skeleton size and the six sections, checked to fill the
    packed bytes exactly."""
    if len(packed) < HEADER.size:
        raise PackError(f"packed skeleton of {len(packed)} bytes, shorter than its {HEADER.size}-byte header")
    size, matches, literals, literal_length_bytes, match_length_bytes = HEADER.unpack_from(packed)
    lengths = (literals, literal_length_bytes, match_length_bytes, matches, matches, matches)
    if HEADER.size + sum(lengths) != len(packed):
        raise PackError(f"packed skeleton: its header's sections add up to {HEADER.size + sum(lengths)} bytes, "
                        f"not its {len(packed)}")  # fmt: skip
    parts, at = [size], HEADER.size
    for length in lengths:
        parts.append(packed[at : at + length])
        at += length
    return tuple(parts)


def _put_length(value: int, out: bytearray) -> None:
    """A length as bytes of 255 while they last, then the rest (< 255)."""
    out += b"\xff" * (value // 255)
    out.append(value % 255)


def _get_length(section: memoryview, at: int, room: int, what: str) -> tuple[int, int]:
    """A length written by _put_length, refused once it exceeds `room`."""
    value = 0
    while True:
        if at >= len(section):
            raise PackError(f"packed skeleton: a {what} length runs past its section")
        byte = section[at]
        at += 1
        value += byte
        if value > room:
            raise PackError(f"packed skeleton: a {what} passes the end of the skeleton")
        if byte != 255:
            return value, at


def _copy_match(out: bytearray, distance: int, length: int) -> None:
    """Copy `length` bytes from `distance` back, byte by byte in effect (an
    overlapping match repeats its period)."""
    start = len(out) - distance
    while length > 0:
        piece = out[start : start + min(length, distance)]
        out += piece
        start += len(piece)
        length -= len(piece)


def _move_to_front(data: bytes) -> bytes:
    """Each byte as its rank in a list of byte values kept most recent first:
    names and field bytes reuse few values, which then get small ranks."""
    table, out = bytearray(range(256)), bytearray(len(data))
    for position, byte in enumerate(data):
        rank = table.index(byte)
        out[position] = rank
        if rank:
            del table[rank]
            table.insert(0, byte)
    return bytes(out)


def _from_front(ranks, table: bytearray) -> bytes:
    """The inverse of _move_to_front, continuing with `table`."""
    out = bytearray(len(ranks))
    for position, rank in enumerate(ranks):
        byte = table[rank]
        out[position] = byte
        if rank:
            del table[rank]
            table.insert(0, byte)
    return bytes(out)


def _parse(data: bytes) -> list[tuple[int, int, int, int]]:
    """(literal start, literal count, match length, distance) sequences; the
    last has no match (length 0)."""
    finder = _MatchFinder(data)
    sequences, position, literal_start = [], 0, 0
    while position < len(data):
        length, distance = finder.longest(position)
        finder.insert(position)
        if length >= MIN_MATCH and position + 1 < len(data):
            later_length, later_distance = finder.longest(position + 1)
            if later_length > length + 1:  # lazy: one literal buys a longer match
                position += 1
                finder.insert(position)
                length, distance = later_length, later_distance
        if length < MIN_MATCH:
            position += 1
            continue
        sequences.append((literal_start, position - literal_start, length, distance))
        for inside in range(position + 1, position + length):
            finder.insert(inside)
        position += length
        literal_start = position
    sequences.append((literal_start, len(data) - literal_start, 0, 0))
    return sequences


class _MatchFinder:
    """Hash chains over 4-byte prefixes (positions inserted in order)."""

    def __init__(self, data: bytes):
        self.data = data
        self.head: dict[bytes, int] = {}
        self.previous = [-1] * len(data)

    def insert(self, position: int) -> None:
        key = self.data[position : position + MIN_MATCH]
        if len(key) == MIN_MATCH:
            self.previous[position] = self.head.get(key, -1)
            self.head[key] = position

    def longest(self, position: int) -> tuple[int, int]:
        """The longest earlier match at `position` (length, distance), the
        nearest of equal length; (0, 0) if none reaches MIN_MATCH."""
        data, limit = self.data, len(self.data) - position
        candidate = self.head.get(data[position : position + MIN_MATCH], -1)
        best, best_distance = 0, 0
        for _ in range(_CHAIN_DEPTH):
            if candidate < 0 or position - candidate > MAX_DISTANCE:
                break
            if best < limit and data[candidate + best] == data[position + best]:
                length = _common_length(data, candidate, position, limit)
                if length > best:
                    best, best_distance = length, position - candidate
                    if length >= _NICE_LENGTH or length == limit:
                        break
            candidate = self.previous[candidate]
        return (best, best_distance) if best >= MIN_MATCH else (0, 0)


def _common_length(data: bytes, earlier: int, position: int, limit: int) -> int:
    """How many bytes from `earlier` equal those from `position` (at most
    `limit`): slices compared in growing steps, then halved, so that a long
    match costs a few C-speed comparisons instead of a Python loop per byte."""
    length, step = 0, 8
    while length < limit:
        step = min(step, limit - length)
        if data[earlier + length : earlier + length + step] == data[position + length : position + length + step]:
            length += step
            step *= 2
            continue
        while step > 1:  # the first difference lies within the next `step` bytes
            half = step // 2
            if data[earlier + length : earlier + length + half] == data[position + length : position + length + half]:
                length += half
                step -= half
            else:
                step = half
        return length
    return length
