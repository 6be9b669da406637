"""docs/FORMAT.md against the bits: tests/spec/specdec.py, a decoder written
from the spec alone, must decode every golden vector to its manifest digest
and give the C decoder's verdict (the same tc_status) on damaged streams.
A format change that the spec does not describe, or a spec edit that the
decoders do not follow, fails here."""
from __future__ import annotations

import hashlib
import random
import sys

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
    too_many = tinycabac.encode({"w": np.zeros((3, 1), np.int8)})
    too_many = bytearray(too_many.replace((3).to_bytes(4, "little") + (1).to_bytes(4, "little"),
                                          (2**16).to_bytes(4, "little") + (2**16).to_bytes(4, "little"), 1))
    assert c_decoder_verdict(with_header_crc(too_many)) == -7  # no 0: the product is over the limit


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
