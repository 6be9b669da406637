"""The bench streams of bench/firmware_report.py (benchmark_streams) and the
same tensors with amsx payloads in the same container.

Per tensor: the decoded tensor gives the levels (lossless: value - offset;
quantized: round(value / step), then the dependent quantizer's state machine
of FORMAT 6.2 for trellis streams), the directory's prediction gives the
coded values (difference: residuals; scale: the levels plus the column
activities), and re-encoding them with tinycabac's own encoder must give the
original payload byte for byte (so the values are the ones tinycabac coded).
The amsx encoder (../amsx_enc.c, MB=1 NCTX=12 ESC=2) then codes the same
values from the same initial activity, and the directory keeps every field
(initial_activity, prediction, history, steps, CRC-32, ...) but the payload.
The same with ESC=3 (the escape's table kept sorted, its raw bits in one
run with the sign) gives the payloads of amsx_decoder_small.patch, under the
key "amsx_small" (payload_key).  Identical to ESC=2 for values without an
escape.
Outputs: $MULTISYMBOL_WORK/streams.pkl (default /tmp/msw4).
"""
import ctypes
import os
import pickle
import sys
from pathlib import Path

os.environ.setdefault("MULTISYMBOL_WORK", "/tmp/msw4")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # msym_env, amsx_run
import msym_env  # noqa: E402  (puts host/ and bench/ on sys.path)
import numpy as np  # noqa: E402

import amsx_run  # noqa: E402
import firmware_report as fr  # noqa: E402
from tinycabac import native  # noqa: E402
from tinycabac.container import AXIS_NONE, QUANTIZED_MODES, Step, TensorEntry, write_stream  # noqa: E402
from tinycabac.predict import residuals  # noqa: E402

WORK = msym_env.WORK
DECODER_FILES = ("tinycabac.c", "tinycabac.h", "tc_model.h")


DEFAULT_PATCH = "amsx_decoder.patch"
FAST_PATCH = "amsx_decoder_fast.patch"
SMALL_PATCH = "amsx_decoder_small.patch"


def payload_key(patch: str) -> str:
    """The key of the streams a patched decoder reads: "amsx_small" (ESC=3)
    for amsx_decoder_small.patch, "amsx" (ESC=2) for the others."""
    return "amsx_small" if Path(patch).name == SMALL_PATCH else "amsx"


def amsx_decoder_dir(patch: str = DEFAULT_PATCH) -> Path:
    """decoder_c's three files with `patch` (a file of this directory:
    amsx_decoder.patch, the default, or amsx_decoder_fast.patch) applied,
    in WORK/decoder (the default patch) or WORK/decoder_<patch stem>.  The
    patches were made against decoder_c at commit dcc59b1; they fail loudly
    (patch's exit status) once decoder_c has moved on."""
    import shutil
    import subprocess

    target = WORK / ("decoder" if patch == DEFAULT_PATCH else f"decoder_{Path(patch).stem}")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in DECODER_FILES:
        shutil.copy(msym_env.REPO / "decoder_c" / name, target / name)
    subprocess.run(["patch", "-s", "-p1", "-d", str(target), "-i", str(HERE / patch)], check=True)
    return target


AMSX_DEFS = dict(MB=1, NCTX=12, ESC=2)
AMSX_SMALL_DEFS = dict(MB=1, NCTX=12, ESC=3)


def recover_levels(t, out):
    flat = out.ravel()
    if t.mode not in QUANTIZED_MODES:
        return flat.astype(np.int64) - t.offset
    steps = np.array([m * 2.0**e for m, e in t.steps])
    if t.axis is None:
        channel = np.zeros(flat.size, dtype=np.int64)
    else:
        inner = int(np.prod(t.shape[t.axis + 1:], dtype=np.int64))
        channel = (np.arange(flat.size) // inner) % len(steps)
    q = np.rint(flat.astype(np.float64) / steps[channel]).astype(np.int64)
    if t.quantizer == 0:
        return q
    levels = np.empty_like(q)
    state = 0
    for i, qi in enumerate(q.tolist()):  # FORMAT 6.2: |q| = 2|l| - (l != 0 and state odd)
        mag = abs(qi)
        m = (mag + 1) // 2 if state & 1 else mag // 2
        levels[i] = -m if qi < 0 else m
        state = ((state << 1) & 7) | (((0x96 >> state) ^ m) & 1)
    return levels


def coded_values(levels, t):
    if t.prediction == 1:
        return residuals(levels, t.history), None
    if t.prediction == 2:
        return levels, native.column_activities(levels, t.history, t.initial_activity)
    return levels, None


def amsx_encode(lib, values, cols, a0):
    v = np.ascontiguousarray(values, np.int32)
    assert np.array_equal(v, values), "value beyond int32"
    state = ctypes.create_string_buffer(1 << 16)
    cap = 8 * v.size + 256
    out = ctypes.create_string_buffer(cap)
    c = None if cols is None else np.ascontiguousarray(cols, np.uint8)
    lib.amsx_init(state)
    nb = lib.amsx_encode(state, v.ctypes.data_as(ctypes.c_void_p), None if c is None else c.ctypes.data_as(ctypes.c_void_p),
                         ctypes.c_size_t(v.size), ctypes.c_uint(a0), out, ctypes.c_size_t(cap))
    assert nb > 0, nb
    return out.raw[:nb]


def to_amsx(lib, data):
    stream = native.Stream(data)
    entries = []
    for i in range(stream.tensor_count):
        t = stream.info(i)
        payload = data[t.payload_offset:t.payload_offset + t.payload_size]
        levels = recover_levels(t, stream.decode(i))
        coded, cols = coded_values(levels, t)
        assert native.encode_levels(coded, activity=t.initial_activity, columns=cols) == payload, t.name
        entries.append(TensorEntry(
            name=t.name, dtype=t.dtype, shape=t.shape, mode=t.mode, payload=amsx_encode(lib, coded, cols, t.initial_activity),
            crc32=t.crc32, initial_activity=t.initial_activity, prediction=t.prediction, history=t.history,
            offset=t.offset, axis=AXIS_NONE if t.axis is None else t.axis, quantizer=t.quantizer,
            steps=[Step(m, e) for m, e in t.steps], base_crc32=t.base_crc32))
    return write_stream(entries)


def extra_streams():
    """The digits int8 weights with prediction "none" forced (the setting of
    the lean amsx loop's 116.6), and synthetic wide tensors whose levels
    reach the escape (|v| >= 256: ESC=2's shared bit-length model, raw bits
    up to 31 below the top one), uint8 and int16/int32 lossless."""
    import tinycabac
    from tinycabac.models import default_model_path
    from tinycabac.tflite_io import split_tflite
    int8_weights, _, _ = split_tflite(default_model_path("int8").read_bytes())
    lossless = {name: w for name, w in int8_weights.items() if w.dtype.name == "int8"}
    rng = np.random.default_rng(7)
    wide = {
        "int16_laplace": np.clip(rng.laplace(0, 300, (64, 40)), -32768, 32767).astype(np.int16),
        "int32_wide": (rng.laplace(0, 1, 3000) * 2.0 ** rng.integers(0, 30, 3000)).clip(-2**30, 2**30).astype(np.int32),
        "int32_extremes": np.array([2**30, -2**30, 0, 1, -1, 255, 256, -256, 65535, 65536, 2**24 + 3] * 20, np.int32),
        "uint8_small": rng.integers(0, 256, 500).astype(np.uint8),
    }
    return {"lossless int8, no prediction": tinycabac.encode(lossless, prediction="none"),
            "wide integers (escape)": tinycabac.encode(wide)}


def build():
    lib = amsx_run.build("libamsx_integrated.so", **AMSX_DEFS)
    lib_small = amsx_run.build("libamsx_integrated_small.so", **AMSX_SMALL_DEFS)
    result = {}
    for label, data in {**fr.benchmark_streams(), **extra_streams()}.items():
        result[label] = {"tinycabac": data, "amsx": to_amsx(lib, data), "amsx_small": to_amsx(lib_small, data)}
    with open(WORK / "streams.pkl", "wb") as handle:
        pickle.dump(result, handle)
    return result


def load():
    path = WORK / "streams.pkl"
    if not path.exists():
        return build()
    with open(path, "rb") as handle:
        result = pickle.load(handle)
    if any("amsx_small" not in pair for pair in result.values()):  # written before the small patch
        return build()
    return result


if __name__ == "__main__":
    import tinycabac
    for label, pair in build().items():
        infos = tinycabac.info(pair["tinycabac"])
        n = sum(t.elements for t in infos)
        kinds = sorted({t.prediction for t in infos})
        sizes = {k: sum(t.payload_bytes for t in tinycabac.info(v)) for k, v in pair.items()}
        print(f"{label}: {len(infos)} tensors, {n} weights, prediction {kinds}, payload bits/weight "
              + ", ".join(f"{k} {8 * s / n:.4f}" for k, s in sizes.items()))
