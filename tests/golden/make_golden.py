"""Regenerate the golden vectors: `python tests/golden/make_golden.py`.

Each vector is a .tcb stream made from deterministic inputs; MANIFEST.json
records the SHA-256 of every stream and of every decoded tensor (bytes in C
order, little-endian, float tensors as float32).  tests/test_golden.py checks
that the encoder still produces exactly these streams and that every decoder
tier decodes them to exactly these digests, so a format change cannot slip
through.  Regenerate only together with a format version bump.
"""
from __future__ import annotations

import hashlib
import json
import sys
import zlib
from pathlib import Path

import numpy as np

import tinycabac
from tinycabac import modelfile
from tinycabac.models import default_model_path

GOLDEN_DIR = Path(__file__).resolve().parent
BASE_DIGEST_NAME = "__base_sha256__"
MANIFEST = GOLDEN_DIR / "MANIFEST.json"


def _int8_levels(rng, channels, per_channel):
    """TFLite-style int8: symmetric per output channel, in [-127, 127]."""
    w = rng.laplace(size=(channels, per_channel)) * rng.uniform(0.3, 3.0, size=(channels, 1))
    return np.clip(np.rint(w / np.abs(w).max(axis=1, keepdims=True) * 127), -127, 127).astype(np.int8)


def vector_inputs() -> dict[str, tuple[dict, dict]]:
    """name -> (tensors, encode options)."""
    rng = np.random.default_rng(20261128)
    vectors = {}
    vectors["lossless_int8"] = (
        {
            "conv": _int8_levels(rng, 16, 3 * 3 * 8).reshape(16, 3, 3, 8),
            "scalar": np.array(-128, dtype=np.int8),
            "extremes": np.array([-128, 127, 0, -1, 1, 127, -128], dtype=np.int8),
            "empty": np.zeros((0, 4), dtype=np.int8),
            "zeros": np.zeros(300, dtype=np.int8),
        },
        {},
    )
    vectors["lossless_dtypes"] = (
        {
            "u8_zero_point": rng.integers(100, 160, size=(8, 32)).astype(np.uint8),
            "u8_full": np.arange(256, dtype=np.uint8),
            "i16": rng.integers(-32768, 32767, size=500, endpoint=True).astype(np.int16),
            "i32_bias": rng.integers(-5000, 5000, size=64).astype(np.int32),
            "i32_extremes": np.array([-(2**31), 2**31 - 1, 0, 12345678, -1], dtype=np.int32),
            "spiky": np.where(rng.random(400) < 0.05, 127, 0).astype(np.int8),
        },
        {},
    )
    w = rng.standard_normal((8, 3, 3, 4)).astype(np.float32) * 0.05
    vectors["quantized_float"] = (
        {
            "per_tensor_step": w,
            "per_channel_axis0": w * np.arange(1, 9, dtype=np.float32).reshape(8, 1, 1, 1),
            "per_channel_last": w.reshape(1, 3, 3, 32) * np.linspace(0.1, 2, 32, dtype=np.float32),
            "float16": (rng.standard_normal(200) * 3).astype(np.float16),
            "subnormal": np.array([1e-40, -3e-39, 2e-38, 0.0, 5e-39], dtype=np.float32),
            "big_levels": np.array([1e4, -3e6, 2.5, 0.0, 7e5], dtype=np.float32),
        },
        {
            "step": {"per_tensor_step": 0.004, "subnormal": 2.0**-127, "big_levels": 0.25},
            "qp": {"float16": -22},
            "snr_db": {"per_channel_axis0": 30.0, "per_channel_last": 25.0},
            "axis": {"per_channel_axis0": 0, "per_channel_last": 3},
        },
    )
    vectors["large_int8"] = ({"dense": _int8_levels(rng, 64, 1024)}, {})
    vectors["rdoq_float"] = (
        {"dense": (rng.laplace(size=(32, 64)) * 0.02).astype(np.float32)},
        {"step": 0.01, "quantizer": "rdoq"},
    )
    for kind in ("int8", "float32"):
        model = modelfile.read_model(default_model_path(kind))
        vectors[f"digits_{kind}"] = (model.stream_tensors(), {"snr_db": 40.0} if kind == "float32" else {})
    base = {
        "w8": _int8_levels(rng, 8, 64),
        "w32": rng.integers(-70000, 70000, size=40).astype(np.int32),
        "f": (rng.standard_normal((4, 50)) * 0.1).astype(np.float32),
        "h": (rng.standard_normal(30) * 2).astype(np.float16),
    }
    vectors["update_base"] = (base, {"step": 1e-3})
    vectors["predicted_rows"] = _predicted_rows(rng)
    vectors["trellis_float"] = _trellis_float(rng)
    vectors["factored_rows"] = _factored_rows(rng)
    vectors["channel_peaks"] = _channel_peaks(rng)
    return vectors


def _channel_peaks(rng) -> tuple[dict, dict]:
    """Channel peaks (FORMAT 5.9): each output channel's +-127 sent as its
    position, along the first axis (rows), the last (a depthwise kernel,
    channels interleaved) and with scale prediction; an int16 tensor whose
    channels peak at -30000 or 30000, one of them twice."""
    rows = _int8_levels(rng, 16, 3 * 3 * 8).reshape(16, 3, 3, 8)
    depthwise = np.ascontiguousarray(_int8_levels(rng, 24, 9).T.reshape(1, 3, 3, 24))
    scaled = _int8_levels(rng, 24, 16) * (rng.random(16) < 0.6)  # pruned columns: scale prediction pays
    scaled[:, 0] = np.where(rng.random(24) < 0.5, 127, -127)  # every row keeps a peak
    wide = (rng.integers(-20000, 20000, size=(6, 5))).astype(np.int16)
    wide[np.arange(6), rng.integers(0, 5, size=6)] = np.where(rng.random(6) < 0.5, -30000, 30000)
    wide[0, :2] = 30000
    tensors = {"rows": rows, "depthwise": depthwise, "scaled": scaled.astype(np.int8).reshape(24, 1, 1, 16),
               "wide": wide}
    return tensors, {"prediction": {"scaled": "scale"}, "history": {"scaled": 16}}


def _trellis_float(rng) -> tuple[dict, dict]:
    """Dependent quantization (FORMAT 6.2): per-tensor and per-channel steps,
    float16, subnormal results, reconstruction indices near 2^32 (levels near
    2^31 with a tiny step) and the state machine under difference prediction."""
    w = (rng.laplace(size=(16, 40)) * 0.02).astype(np.float32)
    taps = rng.standard_normal((1, 1, 5, 24)) * 0.3
    tensors = {
        "dense": w,
        "per_channel": w * np.arange(1, 17, dtype=np.float32).reshape(16, 1),
        "float16": (rng.standard_normal(120) * 2).astype(np.float16),
        "subnormal": np.array([1e-38, -3e-38, 6e-39, 0.0, 1.2e-38, -6e-39, 2.4e-38], dtype=np.float32),
        "big_levels": np.array([4095.99, -4095.99, 2047.5, 0.0, -1e-3, 4095.0], dtype=np.float32),
        "predicted_taps": (taps + rng.standard_normal((1, 5, 5, 24)) * 0.05).astype(np.float32),
    }
    options = {
        "quantizer": "trellis",
        "step": {"dense": 0.01, "subnormal": 2.0**-127, "big_levels": 2.0**-20, "predicted_taps": 0.01},
        "snr_db": {"per_channel": 28.0, "float16": 30.0},
        "axis": {"per_channel": 0},
        "prediction": {"predicted_taps": "difference"},
        "history": {"predicted_taps": 120},
    }
    return tensors, options


def _predicted_rows(rng) -> tuple[dict, dict]:
    """Tensors coded with prediction (FORMAT 5.7), one per case a decoder
    must get right: the encoder's own choice of either kind, the int8 clamp
    of wide levels, an offset, quantized levels and a ring shorter than a
    row."""
    xyz = rng.integers(-100, 100, size=(3, 2, 2, 16))
    landmark_rows = np.clip(np.tile(xyz, (10, 1, 1, 1)) + rng.integers(-4, 5, size=(30, 2, 2, 16)), -127, 127)
    taps = rng.standard_normal((1, 1, 5, 24)) * 0.3
    tensors = {
        "landmark_rows": landmark_rows.astype(np.int8),
        "depthwise_taps": (taps + rng.standard_normal((1, 5, 5, 24)) * 0.05).astype(np.float32),
        "wide_int16": (np.tile(rng.integers(-3000, 3000, size=12), 6) + rng.integers(-200, 200, size=72)).astype(np.int16),
        "wide_int32": np.array([2**31 - 200, -(2**31) + 200, 1_000_000, 5, -7, 130, -129, 0] * 3, dtype=np.int32),
        "uint8_offset": np.tile(rng.integers(120, 140, size=8), 5).astype(np.uint8),
        "short_ring": rng.integers(-5, 6, size=50).astype(np.int8),
        "pruned_columns": _pruned_columns(rng),
        "scale_wide_int32": np.array([2**31 - 1, -(2**31), 300, -2, 0, 90] * 4, dtype=np.int32),
        "scale_quantized": (_pruned_columns(rng) / 64.0).astype(np.float32),
    }
    options = {
        "step": {"depthwise_taps": 0.01, "scale_quantized": 0.05},
        "history": {"depthwise_taps": 120, "wide_int16": 12, "wide_int32": 8, "uint8_offset": 8, "short_ring": 1,
                    "scale_wide_int32": 6},
        "prediction": {"depthwise_taps": "difference", "wide_int16": "difference", "wide_int32": "difference",
                       "uint8_offset": "difference", "short_ring": "difference",
                       "scale_wide_int32": "scale", "scale_quantized": "scale"},
    }
    return tensors, options


def _factored_rows(rng) -> tuple[dict, dict]:
    """Tensors coded with factor prediction (FORMAT 5.8), one per case a
    decoder must get right: the encoder's own choice on a low-rank head, a
    last row cut short, levels and predictions beyond int8 (shift 0, clipped
    factors), an offset, quantized levels and dependent quantization."""
    def low_rank(rows, columns, rank, scale, noise):
        return rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, columns)) * scale + rng.normal(
            scale=noise, size=(rows, columns))
    tensors = {
        "head": np.clip(np.rint(low_rank(96, 48, 5, 12, 2)), -127, 127).astype(np.int8).reshape(96, 4, 4, 3),
        "short_last_row": np.clip(np.rint(low_rank(40, 24, 3, 15, 1)).ravel()[:-7], -127, 127).astype(np.int8),
        "wide_int16": np.rint(low_rank(32, 40, 4, 2000, 30)).astype(np.int16),
        "uint8_offset": np.clip(np.rint(low_rank(24, 32, 2, 10, 1)) + 128, 0, 255).astype(np.uint8),
        "quantized": low_rank(48, 32, 3, 0.1, 0.01).astype(np.float32),
        "trellis": low_rank(48, 32, 3, 0.1, 0.01).astype(np.float32),
    }
    forced = ("short_last_row", "wide_int16", "uint8_offset", "quantized", "trellis")
    options = {
        "step": {"quantized": 0.01, "trellis": 0.01},
        "quantizer": {"trellis": "trellis"},
        "prediction": {name: "factors" for name in ("head",) + forced},
        "history": {"short_last_row": 24, "wide_int16": 40, "uint8_offset": 32, "quantized": 32, "trellis": 32},
    }
    return tensors, options


def _pruned_columns(rng) -> np.ndarray:
    """A 1x1 convolution whose pruned input channels are zero in every
    output row: the encoder picks scale prediction for it."""
    kept = rng.random(48) < 0.5
    return np.clip(rng.laplace(size=(40, 1, 1, 48)) * 40 * kept, -127, 127).astype(np.int8)


# Update vectors apply to the decoded tensors of another vector, as a device
# holding that model would: name -> (base vector, new tensors, options).
def update_inputs() -> dict[str, tuple[str, dict, dict]]:
    rng = np.random.default_rng(7)
    base = _decoded_vector("update_base")
    new = {
        "w8": np.clip(base["w8"].astype(int) + rng.integers(-3, 4, size=base["w8"].shape), -127, 127).astype(np.int8),
        "w32": base["w32"] + rng.integers(-9, 9, size=40).astype(np.int32),
        "f": base["f"] + (rng.standard_normal(base["f"].shape) * 1e-3).astype(np.float32),
        "h": base["h"] - np.float32(0.25),
        "added": np.arange(-20, 20, dtype=np.int16),
    }
    options = {"step": {"f": 1e-4, "h": 1e-3}, "axis": {"f": 0}, "history": {"w8": 64, "f": 50},
               "prediction": {"w8": "difference", "f": "scale"}, "quantizer": {"h": "trellis"}}
    return {"update_delta": ("update_base", new, options)}


def _decoded_vector(name: str) -> dict:
    tensors, options = vector_inputs()[name]
    return tinycabac.decode(tinycabac.encode(tensors, **options))


def update_stream(name: str) -> tuple[bytes, dict]:
    base_name, new, options = update_inputs()[name]
    base = _decoded_vector(base_name)
    return tinycabac.encode(new, base=base, **options), base


def tensor_digests(stream: bytes, base: dict | None = None) -> list[dict]:
    """Digests of every tensor in directory order (an update: applied to `base`)."""
    if base is None:
        decoded = tinycabac.decode(stream, include_reserved=True)
    else:
        decoded = tinycabac.apply(base, stream, include_reserved=True)
        decoded[BASE_DIGEST_NAME] = np.frombuffer(tinycabac.base_digest(base), dtype=np.uint8)
    rows = []
    for name, array in decoded.items():
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        rows.append(
            {
                "name": name,
                "dtype": str(array.dtype),
                "shape": list(array.shape),
                "sha256": hashlib.sha256(data).hexdigest(),
                "crc32": f"{zlib.crc32(data):08x}",
            }
        )
    return rows


def build() -> dict:
    manifest = {"format_version": tinycabac.FORMAT_VERSION, "vectors": {}}
    for name, (tensors, options) in vector_inputs().items():
        stream = tinycabac.encode(tensors, **options)
        (GOLDEN_DIR / f"{name}.tcb").write_bytes(stream)
        manifest["vectors"][name] = {
            "file": f"{name}.tcb",
            "sha256": hashlib.sha256(stream).hexdigest(),
            "size": len(stream),
            "tensors": tensor_digests(stream),
        }
    for name, (base_name, _, _) in update_inputs().items():
        stream, base = update_stream(name)
        (GOLDEN_DIR / f"{name}.tcb").write_bytes(stream)
        manifest["vectors"][name] = {
            "file": f"{name}.tcb",
            "sha256": hashlib.sha256(stream).hexdigest(),
            "size": len(stream),
            "base": base_name,
            "tensors": tensor_digests(stream, base),
        }
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


if __name__ == "__main__":
    result = build()
    for name, vector in result["vectors"].items():
        print(f"{name:20s} {vector['size']:7d} bytes  {len(vector['tensors'])} tensors")
    sys.exit(0)
