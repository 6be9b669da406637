"""The packed .tflite skeleton (FORMAT 3.6): round trips, the encoder's
choice between packed and plain, and every corruption rule refused.

HOSTILE_PACKED and crafted_packed() are shared with the device, MicroPython
and spec-decoder tests, which must refuse the same inputs."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinycabac
from tinycabac import modelfile, skeleton_pack
from tinycabac.container import ContainerTensors
from tinycabac.models import default_model_path
from tinycabac.skeleton_pack import MAX_DISTANCE, MIN_MATCH, PackError, pack, unpack

SKELETON, PACKED_SKELETON, PLACES = "__tflite_skeleton__", "__tflite_packed_skeleton__", "__tflite_places__"


def assemble(size: int, ranks=b"", literal_lengths=b"\0", match_lengths=b"", remainders=b"", low=b"", high=b"",
             header: tuple[int, int, int, int] | None = None) -> bytes:  # fmt: skip
    """A packed skeleton from its sections (FORMAT 3.6); `header` replaces
    the counts N, A, B, C that the sections give."""
    counts = header or (len(remainders), len(ranks), len(literal_lengths), len(match_lengths))
    sections = (ranks, literal_lengths, match_lengths, remainders, low, high)
    return struct.pack("<5I", size, *counts) + b"".join(bytes(section) for section in sections)


PACKED_SKELETON_BYTES = b"tflite" * 40  # 6 literals, then a match of 234 bytes 6 back
# Its packed form (FORMAT 3.6) by section: the literals' move-to-front ranks,
# the literal runs (6, then 0 after the match), the match length less 4,
# and the distance 6 = 4 * (low + 256 * high) + remainder.
PACKED_SECTIONS = {"ranks": [116, 103, 109, 107, 3, 105], "literal_lengths": [6, 0], "match_lengths": [230],
                   "remainders": [2], "low": [1], "high": [0]}  # fmt: skip


def packed_bytes(size: int = 240, header: tuple[int, int, int, int] | None = None, **sections) -> np.ndarray:
    """PACKED_SKELETON_BYTES packed, with some sections replaced."""
    return np.frombuffer(assemble(size, **{**PACKED_SECTIONS, **sections}, header=header), np.uint8)


def crafted_packed(packed: np.ndarray | bytes, a_size: int = 40, plain: bool = False) -> tuple[bytes, bytes]:
    """(stream, file): weight buffers a (int8, a_size bytes) at offset 3 and
    b (4 bytes) 90 skeleton bytes later, in a file whose skeleton is
    PACKED_SKELETON_BYTES, carried as `packed` (and plain too if `plain`);
    S + P <= the file size from a_size = 28 on."""
    a, b, sk = np.arange(a_size, dtype=np.int8) - 3, np.arange(200, 204, dtype=np.uint8), PACKED_SKELETON_BYTES
    file = sk[:3] + a.tobytes() + sk[3:93] + b.tobytes() + sk[93:]
    tensors = ContainerTensors({"a": a, "b": b, PACKED_SKELETON: np.frombuffer(bytes(packed), np.uint8)})
    if plain:
        tensors[SKELETON] = np.frombuffer(sk, np.uint8)
    tensors[PLACES] = np.array([len(file), 0, 3, 1, 3 + a_size + 90], np.int32)
    return tinycabac.encode(tensors), file


# Each breaks one rule of FORMAT 3.6 (the header's S always matches the
# places of crafted_packed): every tier's tests refuse these same cases.
HOSTILE_PACKED = {
    "empty": np.zeros(0, np.uint8),
    "header cut short": packed_bytes()[:19],
    "a byte after the sections": np.append(packed_bytes(), np.uint8(0)),
    "sections past the end": packed_bytes(header=(1, 7, 2, 1)),
    "section sizes adding up only modulo 2^32": packed_bytes(header=(1, 2**32 - 1, 9, 1)),
    "3N adding up only modulo 2^32": packed_bytes(header=(0x55555556, 7, 2, 1)),
    "literal lengths running out": packed_bytes(literal_lengths=[6]),
    "match lengths running out": packed_bytes(match_lengths=[]),
    "literal run past S": packed_bytes(ranks=PACKED_SECTIONS["ranks"] + [0], literal_lengths=[6, 1]),
    "first literal run past S": packed_bytes(literal_lengths=[255, 255, 0]),
    "match past S": packed_bytes(match_lengths=[231]),
    "match of 255s past S": packed_bytes(match_lengths=[255, 0]),
    # a second match 2 bytes before the end, whose room (2 - 4) must not wrap to 2^32 - 2
    "match starting under 4 bytes before S": packed_bytes(literal_lengths=[6, 0, 0], match_lengths=[228, 255, 255, 0],
                                                          remainders=[2, 2], low=[1, 1], high=[0, 0]),
    "fewer than S bytes": packed_bytes(match_lengths=[229]),
    "S one more than the skeleton": packed_bytes(size=241),
    "distance 0": packed_bytes(remainders=[0], low=[0]),
    "distance beyond the output": packed_bytes(low=[2]),
    "distance beyond the output by its high byte": packed_bytes(high=[1]),
    "remainder above 3": packed_bytes(remainders=[6], low=[0]),  # 6 back, but as a remainder of 6
    "literals running out": packed_bytes(ranks=PACKED_SECTIONS["ranks"][:5]),
    "literals running out past the packed bytes": packed_bytes(ranks=[], literal_lengths=[200, 0]),
    "a literal left over": packed_bytes(ranks=PACKED_SECTIONS["ranks"] + [0]),
    "a literal length left over": packed_bytes(literal_lengths=[6, 0, 0]),
    "a match length left over": packed_bytes(match_lengths=[230, 0]),
}



def test_the_crafted_packed_skeleton_is_what_the_packer_writes():
    assert packed_bytes().tobytes() == pack(PACKED_SKELETON_BYTES)
    assert unpack(packed_bytes().tobytes()) == PACKED_SKELETON_BYTES


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKED))
def test_each_corruption_rule_is_refused(case):
    with pytest.raises(PackError):
        unpack(HOSTILE_PACKED[case].tobytes())


def test_the_move_to_front_list_carries_over_between_runs():
    # "ab", a match of 4 at distance 2 ("abab"), then rank 1 (a, after b moved to the front) and rank 0 (a again)
    packed = assemble(8, bytes([97, 98, 1, 0]), b"\x02\x02", b"\x00", b"\x02", b"\x00", b"\x00")
    assert unpack(packed) == b"ababab" + b"aa"


def test_a_length_of_255_takes_a_second_byte():
    skeleton = bytes(range(256)) * 2 + bytes(range(255))  # a 255-byte literal run... and longer matches
    for data in (skeleton, bytes(range(255)), bytes(range(256))):
        assert unpack(pack(data)) == data
    assert pack(bytes(range(255)))[20 + 255 : 20 + 257] == b"\xff\x00"


def with_repeats(pieces) -> bytes:
    """Bytes mixed with repeats of earlier bytes (an integer n: the last n
    bytes three times, as an overlapping match copies them)."""
    data = bytearray()
    for piece in pieces:
        if isinstance(piece, int):
            data += bytes(data[-min(piece, len(data)) :] if data else b"") * 3
        else:
            data += piece
    return bytes(data)


REPEATING_BYTES = st.lists(st.one_of(st.binary(max_size=40), st.integers(1, 300)), max_size=40).map(with_repeats)


@settings(max_examples=200, deadline=None)
@given(REPEATING_BYTES)
def test_pack_unpack_round_trips(data):
    packed = pack(data)
    assert unpack(packed) == data
    assert pack(data) == packed  # deterministic: a decoded model re-encodes to the same stream


@settings(max_examples=200, deadline=None)
@given(st.one_of(REPEATING_BYTES, st.lists(st.integers(0, 3), max_size=3000).map(bytes)))
def test_the_c_parse_is_the_described_one(data):
    """csrc/skeleton_pack.c (hash chains in a ring, collisions skipped) finds
    the same sequences as the plain reference over exact 4-byte prefixes;
    a small alphabet makes long chains and many equal-length candidates."""
    literal_counts, match_lengths, distances = skeleton_pack.parse(data)
    assert list(zip(literal_counts.tolist(), match_lengths.tolist(), distances.tolist())) == reference_parse(data)


def test_matches_reach_as_far_back_as_the_format_allows():
    rng = np.random.default_rng(1)
    block = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    filler = rng.integers(0, 256, MAX_DISTANCE - len(block) + 8, dtype=np.uint8).tobytes()
    far = block + filler + block  # the repeat starts just past the window: literals
    near = block + filler[:-16] + block  # just inside it: one match
    packed_far, packed_near = pack(far), pack(near)
    assert unpack(packed_far) == far and unpack(packed_near) == near
    assert len(packed_near) < len(packed_far) - 3900


def test_empty_and_tiny_skeletons_round_trip():
    for data in (b"", b"x", b"xyz", b"aaaa", b"aaaaa" * 1000):
        assert unpack(pack(data)) == data
    assert len(pack(b"\x00" * 100_000)) < 500  # one long overlapping match


# ---------------------------------------------------------------- the encoder's choice

def _names(stream: bytes) -> list[str]:
    return [entry.name for entry in tinycabac.info(stream)]


def test_the_bundled_models_are_coded_with_a_packed_skeleton_and_rebuild_exactly():
    model = modelfile.read_model(default_model_path("int8"))
    stream = modelfile.encode_model(model)
    assert modelfile.PACKED_SKELETON_NAME in _names(stream) and modelfile.SKELETON_NAME not in _names(stream)
    assert modelfile.decode_model(stream).to_bytes() == model.to_bytes()
    plain = tinycabac.encode(model.stream_tensors(packed=False))
    assert len(stream) < len(plain) - 200  # 14170 -> 13859 bytes when this was written


def test_a_skeleton_that_packing_does_not_shrink_stays_plain():
    model = modelfile.read_model(default_model_path("int8"))
    rng = np.random.default_rng(0)
    model.skeleton = rng.integers(0, 256, len(model.skeleton), dtype=np.uint8).tobytes()  # no repeats
    assert modelfile.SKELETON_NAME in model.stream_tensors()


def test_a_packed_skeleton_without_room_beside_it_stays_plain():
    """S + P must fit the file (FORMAT 3.5) so a device can unpack in place."""
    model = modelfile.read_model(default_model_path("int8"))
    packed = pack(model.skeleton)
    weights = model.layout["file_size"] - len(model.skeleton)
    assert len(packed) <= weights
    model.layout = dict(model.layout, file_size=len(model.skeleton) + len(packed) - 1)
    assert modelfile.SKELETON_NAME in model.stream_tensors()


def test_updates_code_the_skeleton_plain():
    base = modelfile.read_model(default_model_path("int8"))
    new = modelfile.read_model(default_model_path("int8"))
    name = next(iter(new.tensors))
    new.tensors[name] = new.tensors[name].copy()
    new.tensors[name].flat[0] ^= 1
    update = modelfile.encode_update(new, base)
    assert modelfile.SKELETON_NAME in _names(update) and modelfile.PACKED_SKELETON_NAME not in _names(update)
    assert modelfile.apply_update(base, update).to_bytes() == new.to_bytes()


# ---------------------------------------------------------------- the reference parse

def reference_parse(data: bytes) -> list[tuple[int, int, int]]:
    """The parse csrc/skeleton_pack.h describes, written plainly: (literal
    count, match length, distance) sequences, the last with no match."""
    finder = ReferenceMatchFinder(data)
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
        sequences.append((position - literal_start, length, distance))
        for inside in range(position + 1, position + length):
            finder.insert(inside)
        position += length
        literal_start = position
    sequences.append((len(data) - literal_start, 0, 0))
    return sequences


class ReferenceMatchFinder:
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
        for _ in range(64):
            if candidate < 0 or position - candidate > MAX_DISTANCE:
                break
            if best < limit and data[candidate + best] == data[position + best]:
                length = reference_common_length(data, candidate, position, limit)
                if length > best:
                    best, best_distance = length, position - candidate
                    if length >= 258 or length == limit:
                        break
            candidate = self.previous[candidate]
        return (best, best_distance) if best >= MIN_MATCH else (0, 0)


def reference_common_length(data: bytes, earlier: int, position: int, limit: int) -> int:
    """How many bytes from `earlier` equal those from `position` (at most
    `limit`), compared in growing slices, then halved."""
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
