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


def assemble(size: int, lanes=((), (), (), ()), literal_lengths=b"\0", match_lengths=b"", codes=b"", low=b"",
             high=b"", header: tuple[int, ...] | None = None) -> bytes:  # fmt: skip
    """A packed skeleton from its sections (FORMAT 3.6); `header` replaces
    the counts N, R, A0..A3, B, C that the sections give (R: the codes
    that are not followed by a new distance's quotient bytes)."""
    counts = header or (len(codes), len(codes) - len(low), *map(len, lanes), len(literal_lengths), len(match_lengths))
    sections = (*lanes, literal_lengths, match_lengths, codes, low, high)
    return struct.pack("<9I", size, *counts) + b"".join(bytes(section) for section in sections)


PACKED_SKELETON_BYTES = b"tflite" * 40  # 6 literals, then a match of 234 bytes 6 back
# Its packed form (FORMAT 3.6) by section: the literals' move-to-front ranks
# in the lanes of their positions mod 4 (t f l i t e: lane 0 holds t, then t
# again at the front of its list; lane 1 f, then e, moved behind f), the
# literal runs (6, then 0 after the match), the match length less 4, and
# the distance 6 = 4 * (low + 256 * high) + code.
PACKED_SECTIONS = {"lanes": ([116, 0], [102, 102], [108], [105]), "literal_lengths": [6, 0], "match_lengths": [230],
                   "codes": [2], "low": [1], "high": [0]}  # fmt: skip
LANES = PACKED_SECTIONS["lanes"]
# The same bytes as a match of 96 bytes 6 back, then 138 bytes at the same
# distance: a repeat of the most recent distance (code 4).
REPEATING_SECTIONS = dict(PACKED_SECTIONS, literal_lengths=[6, 0, 0], match_lengths=[92, 134], codes=[2, 4])


def packed_bytes(size: int = 240, header: tuple[int, ...] | None = None, **sections) -> np.ndarray:
    """PACKED_SKELETON_BYTES packed, with some sections replaced."""
    return np.frombuffer(assemble(size, **{**PACKED_SECTIONS, **sections}, header=header), np.uint8)


def crafted_packed(packed: np.ndarray | bytes, a_size: int = 56, plain: bool = False) -> tuple[bytes, bytes]:
    """(stream, file): weight buffers a (int8, a_size bytes) at offset 3 and
    b (4 bytes) 90 skeleton bytes later, in a file whose skeleton is
    PACKED_SKELETON_BYTES, carried as `packed` (and plain too if `plain`);
    S + P <= the file size from a_size = 44 on."""
    a, b, sk = np.arange(a_size, dtype=np.int8) - 3, np.arange(200, 204, dtype=np.uint8), PACKED_SKELETON_BYTES
    file = sk[:3] + a.tobytes() + sk[3:93] + b.tobytes() + sk[93:]
    tensors = ContainerTensors({"a": a, "b": b, PACKED_SKELETON: np.frombuffer(bytes(packed), np.uint8)})
    if plain:
        tensors[SKELETON] = np.frombuffer(sk, np.uint8)
    tensors[PLACES] = np.array([len(file), 0, 3, 1, 3 + a_size + 90], np.int32)
    return tinycabac.encode(tensors), file


# Each breaks one rule of FORMAT 3.6 (the header's S always matches the
# places of crafted_packed): every tier's tests refuse these same cases.
# The crafted header's counts are N = 1, R = 0, A = 2, 2, 1, 1, B = 2, C = 1.
HOSTILE_PACKED = {
    "empty": np.zeros(0, np.uint8),
    "header cut short": packed_bytes()[:35],
    "a byte after the sections": np.append(packed_bytes(), np.uint8(0)),
    "sections past the end": packed_bytes(header=(1, 0, 2, 2, 1, 1, 3, 1)),
    "section sizes adding up only modulo 2^32": packed_bytes(header=(1, 0, 2**32 - 1, 2, 1, 1, 5, 1)),
    "3N adding up only modulo 2^32": packed_bytes(header=(0x55555556, 0, 3, 2, 1, 1, 2, 1)),
    "more repeated distances than matches": packed_bytes(header=(1, 2, 2, 2, 1, 1, 2, 1), low=[1, 0, 0], high=[]),
    "literal lengths running out": packed_bytes(literal_lengths=[6]),
    "match lengths running out": packed_bytes(match_lengths=[]),
    "literal run past S": packed_bytes(lanes=(*LANES[:2], [108, 0], LANES[3]), literal_lengths=[6, 1]),
    "first literal run past S": packed_bytes(literal_lengths=[255, 255, 0]),
    "match past S": packed_bytes(match_lengths=[231]),
    "match of 255s past S": packed_bytes(match_lengths=[255, 0]),
    # a second match 2 bytes before the end, whose room (2 - 4) must not wrap to 2^32 - 2
    "match starting under 4 bytes before S": packed_bytes(literal_lengths=[6, 0, 0], match_lengths=[228, 255, 255, 0],
                                                          codes=[2, 2], low=[1, 1], high=[0, 0]),
    "fewer than S bytes": packed_bytes(match_lengths=[229]),
    "S one more than the skeleton": packed_bytes(size=241),
    "distance 0": packed_bytes(codes=[0], low=[0]),
    "distance beyond the output": packed_bytes(low=[2]),
    "distance beyond the output by its high byte": packed_bytes(high=[1]),
    "distance code above 7": packed_bytes(codes=[8], low=[], high=[]),
    "a repeat of a distance never seen": packed_bytes(codes=[4], low=[], high=[]),
    "a repeat of the last recent distance, never seen": packed_bytes(codes=[7], low=[], high=[]),
    "a new distance beyond N - R": packed_bytes(header=(1, 1, 2, 2, 1, 1, 2, 1), low=[], high=[]),
    "a new distance left over": packed_bytes(**dict(REPEATING_SECTIONS, low=[1, 0], high=[0, 0])),
    "a lane running out": packed_bytes(lanes=(LANES[0], [102], *LANES[2:])),
    "the literal of a lane in another": packed_bytes(lanes=([116, 0, 0], *LANES[1:3], [])),
    "literals running out past the packed bytes": packed_bytes(lanes=([], [], [], []), literal_lengths=[200, 0]),
    "a literal left over": packed_bytes(lanes=(*LANES[:3], [105, 0])),
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


def test_a_repeated_distance_takes_one_code():
    packed = packed_bytes(**REPEATING_SECTIONS)
    assert unpack(packed.tobytes()) == PACKED_SKELETON_BYTES
    assert len(packed) == len(packed_bytes()) + 3  # an empty literal run, a match length and a code: no quotients


def test_the_recent_distances_are_repeated_as_described():
    distances = [101, 202, 101, 303, 405, 506, 202, 506]
    codes, new = reference_distance_codes(distances)
    # 101 and 202 are new; 101 is then second in the list (code 5), and
    # 202 has left the four most recent when it comes back
    assert codes == [1, 2, 5, 3, 1, 2, 2, 5]
    assert new == [101, 202, 303, 405, 506, 202]


def test_a_real_skeleton_packs_with_repeated_distances():
    skeleton = modelfile.read_model(default_model_path("int8")).skeleton
    packed = pack(skeleton)
    matches, repeats = struct.unpack_from("<2I", packed, 4)
    assert 0 < repeats < matches and unpack(packed) == skeleton


def test_each_lane_keeps_its_own_move_to_front_list():
    # "abab", a match of 4 at distance 4, then "aa" at positions 8 and 9:
    # lane 0 has a at its front (rank 0), lane 1 b, so its a is rank 98
    lanes = ([97, 0], [98, 98], [97], [98])
    packed = assemble(10, lanes, b"\x04\x02", b"\x00", b"\x00", b"\x01", b"\x00")
    assert unpack(packed) == b"abababab" + b"aa"


def test_a_length_of_255_takes_a_second_byte():
    skeleton = bytes(range(256)) * 2 + bytes(range(255))  # a 255-byte literal run... and longer matches
    for data in (skeleton, bytes(range(255)), bytes(range(256))):
        assert unpack(pack(data)) == data
    assert pack(bytes(range(255)))[36 + 255 : 36 + 257] == b"\xff\x00"


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


@settings(max_examples=200, deadline=None)
@given(st.one_of(REPEATING_BYTES, st.lists(st.integers(0, 3), max_size=3000).map(bytes)))
def test_the_c_packer_lays_out_what_the_format_describes(data):
    assert pack(data) == reference_pack(data)


def test_the_parse_prefers_a_recent_distance_to_a_nearer_new_one():
    """Where a match at a recent distance is as long as the nearest one, it
    wins: it codes without quotient bytes."""
    rng = np.random.default_rng(3)
    data = bytearray(rng.integers(0, 256, 60, dtype=np.uint8).tobytes())
    for start in (0, 20, 35, 40):  # matches 20 back, then 15 back; at 40, 5 back is nearest, 20 back recent
        data[start : start + 4] = b"WXYZ"
    _, match_lengths, distances = skeleton_pack.parse(bytes(data))
    assert distances[match_lengths > 0].tolist() == [20, 15, 20]
    assert reference_parse(bytes(data))[:-1] == [(20, 4, 20), (11, 4, 15), (1, 4, 20)]


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
    assert len(stream) < len(plain) - 200  # 14170 -> 13720 bytes (format 11)


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


# ---------------------------------------------------------------- the reference packer

def reference_pack(data: bytes) -> bytes:
    """FORMAT 3.6's layout of reference_parse(data), written plainly."""
    sequences = reference_parse(data)
    lanes = [bytearray() for _ in range(4)]
    literal_lengths, match_lengths, start = bytearray(), bytearray(), 0
    for literal_count, match_length, _ in sequences:
        for position in range(start, start + literal_count):
            lanes[position % 4].append(data[position])
        start += literal_count + match_length
        literal_lengths += reference_length(literal_count)
        if match_length:
            match_lengths += reference_length(match_length - MIN_MATCH)
    codes, new = reference_distance_codes([distance for _, length, distance in sequences if length])
    header = struct.pack("<9I", len(data), len(codes), len(codes) - len(new), *map(len, lanes),
                         len(literal_lengths), len(match_lengths))  # fmt: skip
    return b"".join((header, *(reference_move_to_front(lane) for lane in lanes), literal_lengths, match_lengths,
                     bytes(codes), bytes(d >> 2 & 0xFF for d in new), bytes(d >> 10 for d in new)))  # fmt: skip


def reference_length(value: int) -> bytes:
    return b"\xff" * (value // 255) + bytes([value % 255])


def reference_move_to_front(data: bytes) -> bytes:
    table, ranks = list(range(256)), bytearray()
    for byte in data:
        ranks.append(table.index(byte))
        table.remove(byte)
        table.insert(0, byte)
    return bytes(ranks)


def reference_distance_codes(distances: list[int]) -> tuple[list[int], list[int]]:
    """(each match's distance code, the new distances in order): a distance
    among the four most recent is always repeated."""
    recent, codes, new = [0, 0, 0, 0], [], []
    for distance in distances:
        if distance in recent:
            codes.append(4 + recent.index(distance))
        else:
            codes.append(distance & 3)
            new.append(distance)
        reference_remember(recent, distance)
    return codes, new


# ---------------------------------------------------------------- the reference parse

def reference_parse(data: bytes) -> list[tuple[int, int, int]]:
    """The parse csrc/skeleton_pack.h describes, written plainly: (literal
    count, match length, distance) sequences, the last with no match."""
    finder = ReferenceMatchFinder(data)
    sequences, position, literal_start, recent = [], 0, 0, [0, 0, 0, 0]
    while position < len(data):
        length, distance = reference_longest_or_recent(finder, position, recent)
        finder.insert(position)
        if length >= MIN_MATCH and position + 1 < len(data):
            later_length, later_distance = reference_longest_or_recent(finder, position + 1, recent)
            if reference_later_is_better(recent, length, distance, later_length, later_distance):
                position += 1
                finder.insert(position)
                length, distance = later_length, later_distance
        if length < MIN_MATCH:
            position += 1
            continue
        sequences.append((position - literal_start, length, distance))
        reference_remember(recent, distance)
        for inside in range(position + 1, position + length):
            finder.insert(inside)
        position += length
        literal_start = position
    sequences.append((len(data) - literal_start, 0, 0))
    return sequences


def reference_remember(recent: list[int], distance: int) -> None:
    """The recent distances after a match: it moves to the front, a new one
    pushing out the oldest."""
    if distance in recent:
        recent.remove(distance)
    else:
        recent.pop()
    recent.insert(0, distance)


def reference_later_is_better(recent: list[int], length: int, distance: int, later: int, later_distance: int) -> bool:
    """Lazy matching: the later match must be two bytes longer, but one at a
    recent distance may be one byte shorter than one at a new distance, and
    one at a new distance must be four bytes longer than a recent one."""
    here_is_recent, later_is_recent = distance in recent, later_distance != 0 and later_distance in recent
    if later_is_recent and not here_is_recent:
        return later >= length - 1
    if here_is_recent and not later_is_recent:
        return later >= length + 4
    return later >= length + 2


def reference_longest_or_recent(finder: "ReferenceMatchFinder", position: int, recent: list[int]) -> tuple[int, int]:
    """The finder's match, or if it found one, a match at least as long at a
    recent distance (no quotient bytes to code): the longest, the most
    recent of equal length."""
    length, distance = finder.longest(position)
    if length < MIN_MATCH:
        return 0, 0
    data, limit = finder.data, len(finder.data) - position
    best, best_distance = 0, 0
    for earlier in recent:
        if 0 < earlier <= position:
            common = reference_common_length(data, position - earlier, position, limit)
            if common > best:
                best, best_distance = common, earlier
    return (best, best_distance) if best >= max(MIN_MATCH, length) else (length, distance)


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
