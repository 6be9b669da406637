"""docs/FORMAT.md against the bits: tests/spec/specdec.py, a decoder written
from the spec alone, must decode every golden vector to its manifest digest
and give the C decoder's verdict (the same tc_status) on damaged streams.
A format change that the spec does not describe, or a spec edit that the
decoders do not follow, fails here."""
from __future__ import annotations

import functools
import hashlib
import random
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import GOLDEN_DIR, REPO, c_decoder_verdict, golden_manifest, with_header_crc


sys.path.insert(0, str(REPO / "tests" / "spec"))
import specdec  # noqa: E402
from test_skeleton_pack import HOSTILE_PACKED  # noqa: E402

MANIFEST = golden_manifest()
STATUS = {specdec.NotAStream: -2, specdec.Unsupported: -3, specdec.Truncated: -4, specdec.HeaderCRC: -5,
          specdec.Reserved: -6, specdec.Limit: -7, specdec.Corrupt: -8, specdec.DataCRC: -9,
          specdec.WrongBase: -12}  # fmt: skip


def vector_bytes(name: str) -> bytes:
    return (GOLDEN_DIR / MANIFEST["vectors"][name]["file"]).read_bytes()


def spec_decode(data: bytes, base: dict | None = None) -> dict[str, bytes]:
    return {entry.name: decoded for entry, decoded in specdec.decode_stream(data, base)}


@pytest.mark.parametrize("name", sorted(MANIFEST["vectors"]))
def test_the_spec_decodes_every_golden_vector(name):
    vector = MANIFEST["vectors"][name]
    base = spec_decode(vector_bytes(vector["base"])) if "base" in vector else None
    decoded = spec_decode(vector_bytes(name), base)
    expected = {t["name"]: t["sha256"] for t in vector["tensors"]}
    assert {k: hashlib.sha256(v).hexdigest() for k, v in decoded.items()} == expected


def c_verdict(data: bytes) -> list[bytes] | int:
    """The C decoder's tensors as bytes, or its tc_status."""
    verdict = c_decoder_verdict(data)
    return verdict if isinstance(verdict, int) else [array.tobytes() for _, array in verdict]


def spec_verdict(data: bytes) -> list[bytes] | int:
    try:
        return list(spec_decode(data).values())
    except specdec.TCError as error:
        return STATUS[type(error)]


# ----------------------------------------- forged directories (FORMAT 2, 3.2)


def varint(value: int) -> bytes:
    """FORMAT 2: LEB128, 7 bits a byte, the lowest first, in as few bytes as
    the value takes."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


def entry_bytes(e, raw: dict[str, bytes]) -> bytes:
    """A directory entry (FORMAT 3.2) written back from specdec's fields of
    it; `raw` gives the bytes of some fields instead (`dims`: all of them)."""
    fields = [("name_len", bytes([len(e.raw_name)])), ("name", e.raw_name), ("dtype", bytes([e.dtype])),
              ("mode", bytes([e.mode])), ("initial_activity", bytes([e.initial_activity])),
              ("prediction", bytes([e.prediction]))]  # fmt: skip
    if e.prediction:
        fields.append(("history", varint(e.history)))
    if e.prediction == 3:
        fields += [("rank", bytes([e.rank])), ("factor_shift", bytes([e.factor_shift]))]
    fields += [("ndim", bytes([len(e.dims)])), ("dims", b"".join(varint(d) for d in e.dims))]
    if e.mode == 0:
        fields += [("offset", varint(zigzag(e.offset))), ("peak", varint(e.peak))]
        if e.peak:
            fields.append(("peak_axis", bytes([e.peak_axis])))
    if e.mode in (1, 3):
        fields += [("axis", bytes([e.axis])), ("quantizer", bytes([e.quantizer])),
                   ("steps", b"".join(struct.pack("<Hb", *step) for step in e.steps))]  # fmt: skip
    if e.mode in (2, 3):
        fields.append(("base_crc32", e.base_crc32.to_bytes(4, "little")))
    fields += [("payload_offset", varint(e.payload_offset)), ("payload_size", varint(e.payload_size)),
               ("crc32", e.crc32.to_bytes(4, "little"))]  # fmt: skip
    assert set(raw) <= {name for name, _ in fields}, f"{set(raw)} not all fields of this entry"
    return b"".join(raw.get(name, value) for name, value in fields)


def forge(data: bytes, index: int = 0, raw: dict[str, bytes] | None = None, **fields) -> bytes:
    """`data` with entry `index`'s `fields` (specdec's names) changed and the
    `raw` fields' bytes replaced, its directory written anew, and
    directory_size and header_crc repaired, so that each check sees the edit.
    The payloads are kept as they are."""
    entries, payload_start = specdec.parse(data)
    for name, value in fields.items():
        assert hasattr(entries[index], name), name
        setattr(entries[index], name, value)
    directory = b"".join(entry_bytes(e, (raw or {}) if e.index == index else {}) for e in entries)
    stream = bytearray(data[:20]) + directory + data[payload_start:]
    stream[8:12] = len(directory).to_bytes(4, "little")
    return with_header_crc(stream)


def damaged(data: bytes, flips: int, seed: int) -> list[bytes]:
    """Every 5th truncation and `flips` single-bit flips of `data`."""
    rng = random.Random(seed)
    cases = [data[:size] for size in range(0, len(data), 5)]
    for _ in range(flips):
        flipped = bytearray(data)
        at = rng.randrange(len(flipped))
        flipped[at] ^= 1 << rng.randrange(8)
        cases.append(bytes(flipped))
    return cases


# the small vectors: every mode, prediction and quantizer, at a pure-Python pace
DAMAGED = [n for n, v in sorted(MANIFEST["vectors"].items()) if "base" not in v and v["size"] < 5000]


@pytest.mark.parametrize("name", DAMAGED)
def test_the_spec_refuses_damage_as_the_c_decoder_does(name):
    """FORMAT 7 names the report of each check; both decoders must agree on
    every truncation and bit flip, tensors or status."""
    for index, data in enumerate(damaged(vector_bytes(name), 200, seed=len(name))):
        assert spec_verdict(data) == c_verdict(data), f"{name}: damaged case #{index} ({len(data)} bytes)"


def directory_mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """`count` copies of `data` with 1-3 header or directory bytes changed
    and the header CRC repaired, so that the checks behind it run."""
    rng = random.Random(seed)
    directory_size = int.from_bytes(data[8:12], "little")
    places = [4, 5, 6, 7, 8, 9, 12, 13, *range(20, 20 + directory_size)]
    cases = []
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.choice(places)
            mutated[at] = rng.choice((rng.randrange(256), 0, 255, mutated[at] ^ 1, (mutated[at] + 1) & 255))
        cases.append(with_header_crc(mutated))
    return cases


@pytest.mark.parametrize("name", DAMAGED)
def test_several_directory_faults_are_reported_in_the_spec_s_order(name):
    """With the CRC repaired, faults in the header and directory reach the
    checks of FORMAT 7, several at a time: the first in the spec's order is
    the one both decoders report."""
    for index, data in enumerate(directory_mutations(vector_bytes(name), 150, seed=len(name) + 1)):
        assert spec_verdict(data) == c_verdict(data), f"{name}: mutated directory #{index}"


def test_a_zero_dimension_empties_a_tensor_whatever_the_dims_before_it():
    """FORMAT 3.2: a 0 anywhere makes element_count 0, even where the dims
    before it multiply past 2**31 - 1; the C decoder and tcdec once stopped
    at that product and refused the entry as over the limit."""
    import numpy as np

    import tinycabac

    sys.path.insert(0, str(REPO / "firmware" / "micropython"))
    import tcdec

    shapes = [(2**20, 2**20, 0), (2**31 - 1, 2, 0, 3), (0, 2**31 - 1, 2**20)]
    data = tinycabac.encode({f"e{i}": np.zeros(shape, np.int8) for i, shape in enumerate(shapes)})
    assert {k: v.shape for k, v in tinycabac.decode(data).items()} == {f"e{i}": s for i, s in enumerate(shapes)}
    assert all(len(decoded) == 0 for decoded in spec_decode(data).values())
    assert {name: tuple(shape) for name, (shape, _) in tcdec.decode(data).items()} == {
        f"e{i}": s for i, s in enumerate(shapes)
    }
    too_many = forge(tinycabac.encode({"w": np.zeros((3, 1), np.int8)}), dims=[2**16, 2**16])
    assert spec_verdict(too_many) == c_decoder_verdict(too_many) == -7  # no 0: the product is over the limit


# ------------------------------------ varints and channel peaks (FORMAT 2, 5.9)


def peaked_array(dtype, shape: tuple[int, ...], axis: int, peak: int, seed: int) -> np.ndarray:
    """Small levels with a +-peak in every channel along `axis`: at its first
    or last place in some channels, twice or with both signs in others, as a
    TFLite per-channel int8 tensor holds +-127."""
    rng = np.random.default_rng(seed)
    array = np.clip(np.round(rng.laplace(0, 4, size=shape)), -20, 20).astype(dtype)
    channels = np.moveaxis(array, axis, 0)  # a view: writes reach `array`
    size = channels[0].size
    for c in range(channels.shape[0]):
        places = [(0, size - 1, rng.integers(size))[c % 3]]
        if c % 4 == 1 and size > 1:
            places.append((places[0] + 1 + rng.integers(size - 1)) % size)
        for place in places:
            channels[c][np.unravel_index(place, channels[c].shape)] = peak * rng.choice((-1, 1))
    return array


# name: dtype, shape, peak axis, peak magnitude, encode options, the prediction
# expected (None: the encoder's choice, 0 or 2).  The encoder's prediction
# "none" turns peaks off too, so the tensors without prediction ask for
# "difference", which excludes peaks (FORMAT 3.2): on these tensors the
# encoder prefers peaks without prediction to it.
PEAKED = {
    "axis0": (np.int8, (16, 3, 3, 8), 0, 127, {}, None),
    "last_axis": (np.int8, (1, 3, 3, 32), 3, 127, {}, None),
    "axis0_unpredicted": (np.int8, (16, 3, 3, 8), 0, 127, {"prediction": "difference"}, 0),
    "last_axis_unpredicted": (np.int8, (1, 3, 3, 32), 3, 127, {"prediction": "difference"}, 0),
    "axis0_scale": (np.int8, (16, 3, 3, 8), 0, 127, {"prediction": "scale", "history": 8}, 2),
    "last_axis_scale": (np.int8, (1, 3, 3, 32), 3, 127, {"prediction": "scale", "history": 32}, 2),
    "int16_axis0": (np.int16, (8, 40), 0, 3000, {}, None),
}


@functools.lru_cache(maxsize=None)
def peaked_stream(name: str) -> tuple[np.ndarray, bytes]:
    import tinycabac

    dtype, shape, axis, peak, options, _ = PEAKED[name]
    array = peaked_array(dtype, shape, axis, peak, seed=len(name))
    return array, tinycabac.encode({"w": array}, **options)


@pytest.mark.parametrize("name", sorted(PEAKED))
def test_the_spec_decodes_channel_peaks_as_the_c_decoder_does(name):
    """FORMAT 5.9 along the first and the last axis, with and without scale
    prediction (5.7): the directory carries peak and peak_axis, and the spec
    decodes the tensor and agrees with the C decoder."""
    _, _, axis, peak, _, prediction = PEAKED[name]
    array, data = peaked_stream(name)
    (entry,), _ = specdec.parse(data)
    assert (entry.mode, entry.peak, entry.peak_axis) == (0, peak, axis)
    assert entry.prediction in ((0, 2) if prediction is None else (prediction,))
    assert specdec.work_size(entry) == entry.history + 2 * array.shape[axis]
    assert forge(data) == data  # the directory's bytes are what these fields write
    decoded = spec_decode(data)
    assert decoded == {"w": array.astype(array.dtype.newbyteorder("<")).tobytes()}
    assert list(decoded.values()) == c_verdict(data)
    (info, _), = c_decoder_verdict(data)
    assert (info.offset, info.history, info.work_size) == (entry.offset, entry.history, specdec.work_size(entry))


def test_directories_written_back_from_the_spec_s_fields_are_the_same_bytes():
    """FORMAT 2, 3.2: every golden directory parses into fields that write
    back to its very bytes, varints in their one encoding."""
    for name in MANIFEST["vectors"]:
        assert forge(vector_bytes(name)) == vector_bytes(name), name


@pytest.mark.parametrize("name", sorted(PEAKED))
def test_the_spec_refuses_damaged_peaks_as_the_c_decoder_does(name):
    """Truncations, bit flips and directory edits of streams with peaks:
    both decoders give the same tensors or the same status (FORMAT 7)."""
    _, data = peaked_stream(name)
    cases = damaged(data, 200, seed=len(name)) + directory_mutations(data, 150, seed=len(name) + 1)
    for index, case in enumerate(cases):
        assert spec_verdict(case) == c_verdict(case), f"{name}: damaged case #{index} ({len(case)} bytes)"


VARINT_FIELDS = ["history", "dims", "offset", "peak", "payload_offset", "payload_size"]
BROKEN_VARINTS = {  # FORMAT 2: each is a reserved field (-6) in whatever field it stands
    "two-byte zero": b"\x80\x00",
    "overlong 5": b"\x85\x80\x00",
    "six bytes": b"\x80\x80\x80\x80\x80\x00",
    "six bytes of 2^32-1": b"\xff\xff\xff\xff\x8f\x00",
    "fifth byte 0x10": b"\xff\xff\xff\xff\x10",
    "fifth byte 0x7f": b"\x80\x80\x80\x80\x7f",
    "fifth byte 0x00": b"\x81\x80\x80\x80\x00",
}


@pytest.mark.parametrize("form", sorted(BROKEN_VARINTS))
@pytest.mark.parametrize("field", VARINT_FIELDS)
def test_the_spec_refuses_broken_varints_as_a_reserved_field(field, form):
    """FORMAT 2, 7: more than 5 bytes, a fifth byte above 0x0F, or a last
    byte 0x00 after the first is a reserved field (-6), whichever field."""
    _, data = peaked_stream("axis0_scale")
    (entry,), _ = specdec.parse(data)
    bad = BROKEN_VARINTS[form]
    if field == "dims":  # the first dimension broken, the others kept
        bad += b"".join(varint(d) for d in entry.dims[1:])
    forged = forge(data, raw={field: bad})
    assert spec_verdict(forged) == -6
    assert c_verdict(forged) == -6


def test_the_largest_varint_is_read_and_held_to_its_field_s_limit():
    """FORMAT 2: FF FF FF FF 0F is 2^32 - 1, a valid varint; each field's own
    limit then decides."""
    _, data = peaked_stream("axis0_scale")
    top = b"\xff\xff\xff\xff\x0f"
    (entry,), _ = specdec.parse(data)
    dims = top + b"".join(varint(d) for d in entry.dims[1:])
    # history > 65535, a dimension > 2^31 - 1, peak > 2^31: limits; a
    # payload outside the area: reserved; offset -2^31 takes every value
    # outside int8: a corrupt payload
    expected = {"history": -7, "dims": -7, "peak": -7, "payload_offset": -6, "payload_size": -6, "offset": -8}
    for field in VARINT_FIELDS:
        forged = forge(data, raw={field: dims if field == "dims" else top})
        assert spec_verdict(forged) == c_verdict(forged) == expected[field], field


# name: the fields forged into the "axis0_unpredicted" stream (dims 16, 3, 3, 8, peak 127
# along axis 0, prediction 0), and the status FORMAT 7 gives (None: the C decoder's verdict
# is the only reference)
DIRECTORY_CASES = {
    "history 0": (dict(prediction=2, history=0), -6),
    "a reserved dtype before history 65536": (dict(dtype=0, prediction=2, history=65536), -6),
    "a reserved prediction before history 65536": (dict(prediction=4, history=65536), -6),
    "history 65536": (dict(prediction=2, history=65536), -7),
    "dimension 2^31": (dict(dims=[2**31, 3, 3, 8]), -7),
    "peak with difference prediction": (dict(prediction=1, history=8), -6),
    "peak with factor prediction": (dict(prediction=3, history=72, rank=2, factor_shift=0), -6),
    "peak_axis = ndim": (dict(peak_axis=4), -6),
    "peak_axis 255": (dict(peak_axis=255), -6),
    "peak 2^31 + 1": (dict(peak=2**31 + 1), -7),
    "peak 2^32 - 1": (dict(peak=2**32 - 1), -7),
    "peak 2^31, beyond int8": (dict(peak=2**31), -8),
    "peak 128, beyond int8": (dict(peak=128), -8),
    "65536 peak channels": (dict(dims=[65536, 1]), -7),
    "65536 peak channels, all empty": (dict(dims=[65536, 0]), -6),  # channel_size 0 first, as C does
    "channels of 32769 elements": (dict(dims=[2, 32769]), -7),
    "channels of 0 elements": (dict(dims=[4, 0]), -6),
    "no channel": (dict(dims=[0, 4]), -6),
    "65535 channels of 1 element": (dict(dims=[65535, 1]), None),
    "channels of 32768 elements": (dict(dims=[2, 32768]), None),
    "peak 2^31 + 1 with difference prediction": (dict(peak=2**31 + 1, prediction=1, history=8), None),
    "peak_axis past ndim and 65536 channels": (dict(peak_axis=2, dims=[65536, 1]), -6),
}


@pytest.mark.parametrize("case", sorted(DIRECTORY_CASES))
def test_the_spec_checks_history_and_the_peak_fields_as_the_c_decoder_does(case):
    """FORMAT 3.2's rules on history and the peak fields, with the reports
    of FORMAT 7, reserved (-6) or limit (-7), field by field: a broken
    rule of an earlier field is the one reported."""
    fields, expected = DIRECTORY_CASES[case]
    _, data = peaked_stream("axis0_unpredicted")
    forged = forge(data, **fields)
    verdict = spec_verdict(forged)
    assert verdict == c_verdict(forged)
    if expected is not None:
        assert verdict == expected


# ------------------------------------------------ packed skeleton (FORMAT 3.6)

PACKED = [n for n, v in sorted(MANIFEST["vectors"].items()) if any(
    t["name"] == "__tflite_packed_skeleton__" for t in v["tensors"])]  # fmt: skip


def test_the_golden_vectors_hold_packed_skeletons():
    """The tests below see a packed skeleton only if the vectors carry one."""
    assert {"digits_int8", "digits_float32"} <= set(PACKED)


@pytest.mark.parametrize("name", PACKED)
def test_the_spec_unpacks_the_golden_skeletons_as_the_host_does(name):
    from tinycabac import modelfile

    data = vector_bytes(name)
    entries = {entry.name: (entry, decoded) for entry, decoded in specdec.decode_stream(data)}
    assert "__tflite_skeleton__" not in entries  # 3.5: one or the other
    entry, packed = entries["__tflite_packed_skeleton__"]
    assert (entry.dtype, entry.mode) == (2, 0)  # 3.5: a lossless uint8 tensor
    skeleton = specdec.unpack_skeleton(packed)
    assert len(skeleton) == int.from_bytes(packed[:4], "little")
    assert skeleton == modelfile.decode_model(data).skeleton
    # 3.5: S + P fit the file, whose size heads the places table
    file_size = int.from_bytes(entries["__tflite_places__"][1][:4], "little", signed=True)
    assert len(skeleton) + len(packed) <= file_size


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKED))
def test_the_spec_refuses_every_hostile_packed_skeleton(case):
    """3.6: each corruption is reported as a reserved field (-6)."""
    with pytest.raises(specdec.Reserved):
        specdec.unpack_skeleton(HOSTILE_PACKED[case].tobytes())


def host_unpack_verdict(packed: bytes) -> bytes | int:
    from tinycabac import skeleton_pack

    try:
        return skeleton_pack.unpack(packed)
    except skeleton_pack.PackError:
        return -6


def spec_unpack_verdict(packed: bytes) -> bytes | int:
    try:
        return specdec.unpack_skeleton(packed)
    except specdec.TCError as error:
        return STATUS[type(error)]


@pytest.mark.parametrize("name", PACKED)
def test_the_spec_refuses_damaged_packed_skeletons_as_the_host_does(name):
    """Truncations, bit flips and header edits of a golden packed skeleton:
    the skeleton or -6 (3.6), the same from both, and never another error."""
    packed = spec_decode(vector_bytes(name))["__tflite_packed_skeleton__"]
    rng = random.Random(len(name) + 2)
    cases = damaged(packed, 300, seed=len(name) + 3)
    for _ in range(100):  # one header field off by a little: S, N, R, A0..A3, B or C
        edited = bytearray(packed)
        at = 4 * rng.randrange(9)
        value = int.from_bytes(edited[at : at + 4], "little") + rng.choice((-2, -1, 1, 2))
        edited[at : at + 4] = (value % 2**32).to_bytes(4, "little")
        cases.append(bytes(edited))
    for index, data in enumerate(cases):
        assert spec_unpack_verdict(data) == host_unpack_verdict(data), f"{name}: damaged case #{index}"


@st.composite
def skeleton_like(draw) -> bytes:
    """Random bytes mixed with copies of earlier stretches, some of them
    overlapping their source (a distance below the length)."""
    out = bytearray()
    for literal, size, back in draw(st.lists(st.tuples(st.booleans(), st.integers(1, 300), st.integers(1, 3000)),
                                             max_size=16)):  # fmt: skip
        if literal or not out:
            out += draw(st.binary(min_size=size, max_size=size))
        else:
            back = min(back, len(out))
            for _ in range(size):  # one byte at a time, as 3.6's matches copy
                out.append(out[-back])
    return bytes(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(skeleton_like())
def test_the_spec_unpacks_what_the_host_packs(skeleton):
    from tinycabac import skeleton_pack

    assert specdec.unpack_skeleton(skeleton_pack.pack(skeleton)) == skeleton


def test_the_spec_unpacks_seeded_far_repeats_the_host_packs():
    """A deterministic companion of the property: repeats at the distances
    around the farthest one 3.6 codes."""
    from tinycabac import skeleton_pack

    rng = random.Random(36)
    block = bytes(rng.randrange(256) for _ in range(64))
    for gap in (4 * 65535 + 3 - 64, 4 * 65535 + 3 - 63, 4 * 65535 + 3, 4 * 65535 + 4):
        filler = bytearray(gap - 64)  # zeros, with a byte of its own now and then
        for at in range(0, len(filler), 300):
            filler[at] = rng.randrange(1, 256)
        skeleton = block + filler + block + bytes(rng.randrange(256) for _ in range(50)) + block
        assert specdec.unpack_skeleton(skeleton_pack.pack(skeleton)) == skeleton, gap
    for size in (0, 1, 3, 4, 5, 255, 256, 259):
        skeleton = bytes([rng.randrange(4)]) * size
        assert specdec.unpack_skeleton(skeleton_pack.pack(skeleton)) == skeleton, size


def test_every_copy_of_the_context_init_table_is_the_same():
    """FORMAT 5.2's table of starting probabilities lives in the C header
    (decoder and encoder), the spec, the spec decoder and both MicroPython
    modules (bench/train_context_init.py --write rewrites them all): one
    copy left behind would decode every tensor wrongly."""
    import ast
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]

    def numbers(path: str, start: str, end: str) -> list[int]:
        text = (root / path).read_text()
        body = text[text.index(start) + len(start):]
        return [int(n) for n in re.findall(r"\d+", body[: body.index(end)])]

    def byte_values(path: str) -> list[int]:
        text = (root / path).read_text()
        start = text.index("_CONTEXT_INIT = (") + len("_CONTEXT_INIT = ")
        return list(ast.literal_eval(text[start: text.index("\n)", start) + 2]))

    c_table = numbers("decoder_c/tc_model.h", "tc_context_init[TC_CONTEXT_COUNT] = {", "};")
    assert len(c_table) == 166 and all(2 <= v <= 254 for v in c_table)
    assert numbers("docs/FORMAT.md", "INIT = [", "]") == c_table
    assert specdec.INIT == c_table
    assert byte_values("firmware/micropython/tcdec.py") == c_table
    assert byte_values("firmware/micropython/tcdec_viper.py") == c_table
