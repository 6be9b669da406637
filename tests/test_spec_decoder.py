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

from conftest import GOLDEN_DIR, REPO, c_decoder_verdict, golden_manifest, with_header_crc


sys.path.insert(0, str(REPO / "tests" / "spec"))
import specdec  # noqa: E402

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
