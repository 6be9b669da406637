"""Issue 6 on the host: every truncation point and single-bit flips of every
golden vector, decoded by the C decoder through cffi, end in an error or in
exactly the original tensors: never a crash and never wrong data.  (The C
driver in tests/test_c_decoder.py repeats this under ASan/UBSan and
valgrind; tests/test_micropython.py on MicroPython.)"""
from __future__ import annotations

import random

import numpy as np
import pytest

import tinycabac
from conftest import GOLDEN_DIR, golden_manifest

VECTORS = golden_manifest()["vectors"]
EXHAUSTIVE_FLIP_LIMIT = 2048  # bytes; larger vectors get a fixed random sample
FLIP_SAMPLES = 3000


def decode_vector(name: str, data: bytes) -> dict[str, np.ndarray]:
    vector = VECTORS[name]
    if "base" in vector:
        base = tinycabac.decode((GOLDEN_DIR / VECTORS[vector["base"]]["file"]).read_bytes())
        return tinycabac.apply(base, data, include_reserved=True)
    return tinycabac.decode(data, include_reserved=True)


def same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_every_truncation_is_an_error(name):
    data = (GOLDEN_DIR / VECTORS[name]["file"]).read_bytes()
    for length in range(len(data)):
        with pytest.raises(tinycabac.FormatError):
            decode_vector(name, data[:length])


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_bit_flips_are_detected_or_harmless(name):
    data = (GOLDEN_DIR / VECTORS[name]["file"]).read_bytes()
    original = decode_vector(name, data)
    bits = range(8 * len(data))
    if len(data) > EXHAUSTIVE_FLIP_LIMIT:
        bits = random.Random(name).sample(bits, FLIP_SAMPLES)
    undetected = []
    for bit in bits:
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        try:
            decoded = decode_vector(name, bytes(damaged))
        except tinycabac.FormatError:
            continue
        if not same(decoded, original):
            undetected.append(bit)
    assert undetected == [], f"wrong output without an error for bit flips {undetected[:10]}"
