"""Golden vectors pin format 1: the encoder must still write exactly these
streams, and the C decoder (through cffi) must decode them to exactly the
recorded digests."""
from __future__ import annotations

import hashlib
import sys

import pytest

import tinycabac
from conftest import GOLDEN_DIR, golden_manifest, tensor_sha256

sys.path.insert(0, str(GOLDEN_DIR))
import make_golden  # noqa: E402

MANIFEST = golden_manifest()
VECTORS = MANIFEST["vectors"]


def test_manifest_matches_format_version():
    assert MANIFEST["format_version"] == tinycabac.FORMAT_VERSION


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_c_decoder_reproduces_recorded_digests(name):
    vector = VECTORS[name]
    stream = (GOLDEN_DIR / vector["file"]).read_bytes()
    assert hashlib.sha256(stream).hexdigest() == vector["sha256"]
    decoded = tinycabac.decode(stream, include_reserved=True)
    assert list(decoded) == [t["name"] for t in vector["tensors"]]
    for expected in vector["tensors"]:
        array = decoded[expected["name"]]
        assert str(array.dtype) == expected["dtype"]
        assert list(array.shape) == expected["shape"]
        assert tensor_sha256(array) == expected["sha256"], expected["name"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_encoder_still_writes_the_golden_stream(name):
    tensors, options = make_golden.vector_inputs()[name]
    stream = tinycabac.encode(tensors, **options)
    assert hashlib.sha256(stream).hexdigest() == VECTORS[name]["sha256"], (
        "the encoder output changed: a format change needs a version bump and regenerated golden vectors"
    )
