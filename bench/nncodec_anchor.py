"""Fraunhofer NNCodec 2.1.3 (the MPEG NNC reference codec) as the benchmark anchor.

Uses only NNCodec's C++ `deepCABAC` extension: its CABAC for coding integer levels and its
quantizers (nearest rounding, RDOQ, 8-state trellis / dependent quantization). The
extension is built by bench/setup_nncodec.sh in bench/.venv-nncodec, which keeps NNCodec's
numpy<2 pin away from the project interpreter. It is a pybind11 module that depends only
on the CPython ABI, so it is loaded straight from that venv into this process (pybind11
resolves numpy at run time and works with numpy 2).

Settings are NNCodec's own defaults (nnc.compress): cabac_unary_length_minus1 = 10,
param_opt_flag = 1, qp_density = 2, row-wise scan (scan_order 0). Each tensor is coded as
its own stream with freshly initialised contexts, as NNCodec does per NNR data unit; the
byte counts leave out NNR headers, which flatters NNCodec slightly.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".venv-nncodec"

CABAC_UNARY_LENGTH_MINUS1 = 10  # NNCodec default; also its RDOQ "maxNumNoRem"
PARAM_OPT_FLAG = 1  # NNCodec default: encoder picks the best binarization parameter
QP_DENSITY = 2
GENERAL_PROFILE_IDC = 1  # what NNCodec writes for a plain NNR bitstream
QUANTIZERS = ("nearest", "rdoq", "trellis")


class NNCodecUnavailable(RuntimeError):
    pass


@lru_cache(maxsize=1)
def deepcabac():
    """The deepCABAC extension module built by bench/setup_nncodec.sh."""
    found = sorted(VENV_DIR.glob("lib/python*/site-packages/nncodec/extensions/deepCABAC*.so"))
    if not found:
        raise NNCodecUnavailable(f"NNCodec is not built: run `bash {BENCH_DIR / 'setup_nncodec.sh'}`")
    spec = importlib.util.spec_from_file_location("deepCABAC", found[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def available() -> bool:
    try:
        deepcabac()
    except (NNCodecUnavailable, ImportError):
        return False
    return True


def _as_rows(array: np.ndarray, dtype) -> np.ndarray:
    """NNCodec treats axis 0 as rows (output channels) and the rest as one row."""
    rows = array.reshape(array.shape[0], -1) if array.ndim >= 2 else array.reshape(1, -1)
    return np.ascontiguousarray(rows, dtype=dtype)


def _no_hdsp():
    return deepcabac().HdspMode.AlwaysOff, np.zeros((0, 0), dtype=np.int8)


def encode_levels(levels: np.ndarray, trellis: bool = False) -> bytes:
    """CABAC-code one tensor of integer levels (axis 0 = output channel).

    `trellis` must be set for levels produced by the trellis quantizer: their coding
    tracks the dependent-quantization state.
    """
    rows = _as_rows(levels, np.int32)
    encoder = deepcabac().Encoder()
    encoder.initCtxModels(CABAC_UNARY_LENGTH_MINUS1, PARAM_OPT_FLAG)
    encoder.encodeLayer(rows, int(trellis), 0, GENERAL_PROFILE_IDC, 0, 0,
                        np.zeros(rows.shape[0], dtype=np.int32), *_no_hdsp(), 0, 0)
    return encoder.finish().tobytes()


def decode_levels(stream: bytes, shape: tuple[int, ...], trellis: bool = False) -> np.ndarray:
    rows = np.zeros(_as_rows(np.empty(shape, dtype=np.int8), np.int8).shape, dtype=np.int32)
    decoder = deepcabac().Decoder()
    # The decoder reads past the stream end while renormalising: give it slack.
    padded = np.frombuffer(stream + bytes(16), dtype=np.uint8).copy()
    decoder.setStream(padded)
    decoder.initCtxModels(CABAC_UNARY_LENGTH_MINUS1)
    decoder.decodeLayer(rows, int(trellis), 0, GENERAL_PROFILE_IDC, 0, *_no_hdsp(), 0, 0)
    decoder.finish()
    return rows.reshape(shape)


@dataclass(frozen=True)
class CodedTensors:
    streams: list[bytes]
    encode_seconds: float
    decode_seconds: float

    @property
    def bits(self) -> int:
        return 8 * sum(len(s) for s in self.streams)


def code_losslessly(tensors: list[np.ndarray], trellis: bool = False) -> CodedTensors:
    """Encode and decode each tensor, check the round trip, and time both directions."""
    start = time.perf_counter()
    streams = [encode_levels(t, trellis) for t in tensors]
    encoded = time.perf_counter()
    decoded = [decode_levels(s, t.shape, trellis) for s, t in zip(streams, tensors)]
    finished = time.perf_counter()
    for original, result in zip(tensors, decoded):
        if not np.array_equal(original.astype(np.int32), result):
            raise AssertionError("NNCodec CABAC round trip changed the levels")
    return CodedTensors(streams, encoded - start, finished - encoded)


def quantize(weights: np.ndarray, step: float, method: str = "nearest",
             lambda_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """NNCodec's quantizer at an arbitrary step; returns (int32 levels, reconstruction).

    Reconstruction is level * step for every method: the trellis quantizer returns levels
    already mapped through its dependent-quantization state. NNCodec steps come from a QP
    grid, so the weights are pre-divided by `step` and quantized at QP 0 (step exactly
    1.0); its rate-distortion cost is measured in units of the step, so this is the same
    decision as quantizing at `step` directly. `lambda_scale` > 0 turns on the rate term
    (RDOQ for "rdoq", RD-trellis for "trellis"); "rdoq" requires it.
    """
    if method not in QUANTIZERS:
        raise ValueError(f"unknown quantizer {method!r}, expected one of {QUANTIZERS}")
    if method == "rdoq" and lambda_scale <= 0:
        raise ValueError("RDOQ needs lambda_scale > 0")
    rows = _as_rows(weights, np.float32)
    scaled = np.ascontiguousarray(rows / np.float32(step), dtype=np.float32)
    levels = np.zeros(rows.shape, dtype=np.int32)
    encoder = deepcabac().Encoder()
    encoder.initCtxModels(CABAC_UNARY_LENGTH_MINUS1, 0)
    unit_step_qp = 0
    used_qp = encoder.quantLayer(scaled, levels, int(method == "trellis"), QP_DENSITY, unit_step_qp,
                                 float(lambda_scale if method != "nearest" else 0.0),
                                 CABAC_UNARY_LENGTH_MINUS1, 0, GENERAL_PROFILE_IDC)
    if used_qp != unit_step_qp:
        raise ValueError(f"step {step} too small for int32 levels")
    levels = levels.reshape(weights.shape)
    return levels, (levels * np.float32(step)).astype(np.float32)
