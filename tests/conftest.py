"""Shared test helpers.  Under CI=true no tier may skip: a missing tool is
a failure, so `require_tool` fails instead of skipping there."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tool_missing(message: str):
    """A tier cannot run here: a failure under CI=true (no tier may skip),
    a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(message + " (CI=true: tiers may not skip)")
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        tool_missing(f"{name} is not installed")
    return path


def golden_manifest() -> dict:
    return json.loads((GOLDEN_DIR / "MANIFEST.json").read_text())


def with_header_crc(stream: bytearray) -> bytes:
    """`stream` with its header CRC (FORMAT 3.1) recomputed after a hand
    edit, so that the checks behind it see the edit."""
    directory_size = int.from_bytes(stream[8:12], "little")
    crc = zlib.crc32(bytes(stream[20 : 20 + directory_size]), zlib.crc32(bytes(stream[:16])))
    stream[16:20] = crc.to_bytes(4, "little")
    return bytes(stream)


def c_decoder_verdict(data: bytes) -> list | int:
    """[(TensorInfo, decoded array), ...] in stream order, or the tc_status
    the C decoder fails with, after the whole-stream checks the host tools
    make (FORMAT 7): the stream's size, then UTF-8 and unique names."""
    from tinycabac import codec, native

    try:
        stream = codec._open(data)  # the host tools' own whole-stream checks
        return [(stream.info(index), stream.decode(index)) for index in range(stream.tensor_count)]
    except native.DecodeError as error:
        return error.status


def tensor_sha256(array: np.ndarray) -> str:
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return hashlib.sha256(data).hexdigest()


def load_bench_module(name: str):
    """Import bench/<name>.py (bench/ is not a package) for tests of the benches."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module
