"""Golden vectors pin the format: the encoder must still write exactly these
streams, and the C decoder (through cffi) must decode them to exactly the
recorded digests."""
from __future__ import annotations

import hashlib
import re
import sys

import pytest

import tinycabac
from conftest import GOLDEN_DIR, REPO, golden_manifest, tensor_sha256

sys.path.insert(0, str(GOLDEN_DIR))
import make_golden  # noqa: E402

MANIFEST = golden_manifest()
VECTORS = MANIFEST["vectors"]


def read_vector(name: str) -> bytes:
    return (GOLDEN_DIR / VECTORS[name]["file"]).read_bytes()


def test_manifest_matches_format_version():
    assert MANIFEST["format_version"] == tinycabac.FORMAT_VERSION


def test_the_spec_names_the_current_version():
    """docs/FORMAT.md's title, its header table, its error table and its
    version history all move with a format bump (format 9 once left the
    header table at 8, format 11 the error table at 10)."""
    spec = (REPO / "docs" / "FORMAT.md").read_text()
    version = tinycabac.FORMAT_VERSION
    assert spec.startswith(f"# The tinycabac stream format, version {version}\n")
    assert f"| format_version    | {version}; other values MUST be rejected |" in spec
    assert f"| `format_version` ≠ {version} | unsupported version" in spec
    assert re.findall(r"^- (\d+) \(", spec, re.MULTILINE)[-1] == str(version)


def test_update_vectors_are_present():
    updates = [name for name, vector in VECTORS.items() if "base" in vector]
    assert updates and all(VECTORS[name]["base"] in VECTORS for name in updates)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_c_decoder_reproduces_recorded_digests(name):
    vector = VECTORS[name]
    stream = read_vector(name)
    assert hashlib.sha256(stream).hexdigest() == vector["sha256"]
    expected_tensors = vector["tensors"]
    if "base" in vector:  # an update: applied to the decoded base vector
        base = tinycabac.decode(read_vector(vector["base"]))
        decoded = tinycabac.apply(base, stream, include_reserved=True)
        expected_tensors = [t for t in expected_tensors if t["name"] != make_golden.BASE_DIGEST_NAME]
    else:
        decoded = tinycabac.decode(stream, include_reserved=True)
    assert list(decoded) == [t["name"] for t in expected_tensors]
    for expected in expected_tensors:
        array = decoded[expected["name"]]
        assert str(array.dtype) == expected["dtype"]
        assert list(array.shape) == expected["shape"]
        assert tensor_sha256(array) == expected["sha256"], expected["name"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_encoder_still_writes_the_golden_stream(name):
    if "base" in VECTORS[name]:
        stream, _ = make_golden.update_stream(name)
    else:
        tensors, options = make_golden.vector_inputs()[name]
        stream = tinycabac.encode(tensors, **options)
    assert hashlib.sha256(stream).hexdigest() == VECTORS[name]["sha256"], (
        "the encoder output changed: a format change needs a version bump and regenerated golden vectors"
    )
