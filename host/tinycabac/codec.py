"""The public encode / decode / info API over the container and the C core."""
from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from . import native
from .container import (
    AXIS_NONE,
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    MODE_LOSSLESS,
    MODE_NAMES,
    MODE_QUANTIZED,
    RESERVED_NAME_PREFIX,
    FormatError,
    Step,
    TensorEntry,
    check_name,
    check_shape,
    write_stream,
)
from .quantize import QUANTIZERS, quantize_for_snr, quantize_with_steps, snr_db

DEFAULT_SNR_DB = 40.0


def _per_tensor(option, name: str):
    """`option` is one value for every tensor or a mapping name -> value."""
    if isinstance(option, Mapping):
        return option.get(name)
    return option


def _as_array(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    dtype = array.dtype.newbyteorder("=")
    if dtype not in INTEGER_DTYPES + FLOAT_DTYPES:
        supported = ", ".join(str(d) for d in INTEGER_DTYPES + FLOAT_DTYPES)
        raise FormatError(f"tensor {name!r}: unsupported dtype {array.dtype}; supported: {supported}")
    check_shape(name, array.shape)
    return np.asarray(array, dtype=dtype, order="C")  # ascontiguousarray would turn scalars into 1-d


def _lossless_offset(array: np.ndarray) -> int:
    """Centre the levels on the median (e.g. a uint8 zero point), keeping
    |level| <= 2**31 so that any int32 tensor stays representable."""
    if array.size == 0:
        return 0
    offset = int(np.median(array))
    span = max(int(array.max()) - offset, offset - int(array.min()))
    return offset if span <= 2**31 else 0


def _encode_integer(name: str, array: np.ndarray) -> TensorEntry:
    offset = _lossless_offset(array)
    levels = array.astype(np.int64).ravel() - offset
    return TensorEntry(
        name=name,
        dtype=array.dtype,
        shape=array.shape,
        mode=MODE_LOSSLESS,
        payload=native.encode_levels(levels, name),
        crc32=zlib.crc32(array.astype(array.dtype.newbyteorder("<")).tobytes()),
        offset=offset,
    )


def _quantize(name: str, array: np.ndarray, step, qp, target_snr, axis, quantizer, lam):
    if not np.all(np.isfinite(array)):
        raise FormatError(f"tensor {name!r} contains NaN or infinity")
    chosen = [x is not None for x in (step, qp, target_snr)]
    if sum(chosen) > 1:
        raise ValueError(f"tensor {name!r}: give at most one of step, qp, snr_db")
    if axis is None:
        axis = AXIS_NONE
    elif not 0 <= axis < array.ndim:
        raise ValueError(f"tensor {name!r}: channel axis {axis} is out of range for shape {array.shape}")
    if qp is not None:
        steps = [Step.from_qp(qp)] * (1 if axis == AXIS_NONE else array.shape[axis])
        return quantize_with_steps(array, steps, axis, quantizer, lam, name)
    if step is not None:
        values = np.atleast_1d(np.asarray(step, dtype=np.float64))
        if axis == AXIS_NONE and values.size != 1:
            raise ValueError(f"tensor {name!r}: {values.size} steps given but no channel axis")
        if axis != AXIS_NONE and values.size not in (1, array.shape[axis]):
            raise ValueError(f"tensor {name!r}: need 1 or {array.shape[axis]} steps, got {values.size}")
        count = 1 if axis == AXIS_NONE else array.shape[axis]
        steps = [Step.from_float(float(v)) for v in np.broadcast_to(values, (count,))]
        return quantize_with_steps(array, steps, axis, quantizer, lam, name)
    target = DEFAULT_SNR_DB if target_snr is None else float(target_snr)
    return quantize_for_snr(array, target, axis, quantizer, name)


def _encode_float(name, array, step, qp, target_snr, axis, quantizer, lam) -> tuple[TensorEntry, float]:
    q = _quantize(name, array, step, qp, target_snr, axis, quantizer, lam)
    entry = TensorEntry(
        name=name,
        dtype=array.dtype,
        shape=array.shape,
        mode=MODE_QUANTIZED,
        payload=native.encode_levels(q.levels, name),
        crc32=zlib.crc32(q.reconstruction.astype("<f4").tobytes()),
        axis=q.axis,
        steps=q.steps,
    )
    return entry, snr_db(array, q.reconstruction)


@dataclass
class EncodeReport:
    """What encode() did to one tensor (for tables and the CLI)."""

    name: str
    snr_db: float | None


def encode(
    tensors: Mapping[str, np.ndarray],
    *,
    step=None,
    qp=None,
    snr_db=None,
    axis=None,
    quantizer: str = "nearest",
    lam=None,
    progress: Callable[[str, int], None] | None = None,
    report: list[EncodeReport] | None = None,
) -> bytes:
    """Encode named tensors (order kept) into a tinycabac stream.

    Integer tensors (int8, uint8, int16, int32) are coded losslessly.  Float
    tensors (float32, float16) are quantized: with an explicit `step`, an
    NNR-style `qp`, or the largest step reaching `snr_db` (default 40 dB).
    `step`, `qp`, `snr_db`, `axis` (per-channel steps along that axis),
    `quantizer` ("nearest" or "rdoq") and `lam` take one value or a mapping
    from tensor name to value.  `progress(name, elements)` is called after
    each tensor; `report`, if given, receives an EncodeReport per tensor."""
    if not isinstance(tensors, Mapping):
        raise TypeError("tensors must be a mapping from names to arrays")
    entries = []
    for name, value in tensors.items():
        check_name(name)
        array = _as_array(name, value)
        tensor_quantizer = _per_tensor(quantizer, name) or "nearest"
        if tensor_quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {tensor_quantizer!r}; choose one of {', '.join(QUANTIZERS)}")
        if array.dtype in INTEGER_DTYPES:
            entries.append(_encode_integer(name, array))
            measured = None
        else:
            entry, measured = _encode_float(
                name,
                array,
                _per_tensor(step, name),
                _per_tensor(qp, name),
                _per_tensor(snr_db, name),
                _per_tensor(axis, name),
                tensor_quantizer,
                _per_tensor(lam, name),
            )
            entries.append(entry)
        if report is not None:
            report.append(EncodeReport(name, measured))
        if progress is not None:
            progress(name, array.size)
    return write_stream(entries)


def _open(data) -> native.Stream:
    stream = native.Stream(data)
    if stream.size < stream.end_of_payloads:
        raise native.DecodeError(-4, "stream")  # TC_ERR_TRUNCATED
    if stream.size > stream.end_of_payloads:
        raise FormatError(f"stream has {stream.size - stream.end_of_payloads} unexpected bytes after its payloads")
    return stream


def decode(data, *, include_reserved: bool = False) -> dict[str, np.ndarray]:
    """Decode every tensor with the C decoder of record.

    Names, order, dtypes and shapes are restored; float tensors come back as
    their float32 reconstruction.  Tensors whose names start with "__"
    (container data such as the rest of a .tflite file) are left out unless
    `include_reserved`."""
    stream = _open(data)
    out = {}
    for index in range(stream.tensor_count):
        info = stream.info(index)
        if info.name.startswith(RESERVED_NAME_PREFIX) and not include_reserved:
            continue
        out[info.name] = stream.decode(index)
    return out


@dataclass
class TensorSummary:
    name: str
    dtype: str
    shape: tuple[int, ...]
    mode: str
    elements: int
    payload_bytes: int
    original_bytes: int
    bits_per_weight: float
    ratio: float
    steps: list[float]
    offset: int


def info(data) -> list[TensorSummary]:
    """Describe every tensor in a stream (no decoding)."""
    stream = _open(data)
    summaries = []
    for index in range(stream.tensor_count):
        t = stream.info(index)
        original = t.element_count * t.dtype.itemsize
        summaries.append(
            TensorSummary(
                name=t.name,
                dtype=str(t.dtype),
                shape=t.shape,
                mode=MODE_NAMES[t.mode],
                elements=t.element_count,
                payload_bytes=t.payload_size,
                original_bytes=original,
                bits_per_weight=8.0 * t.payload_size / t.element_count if t.element_count else 0.0,
                ratio=original / t.payload_size if t.payload_size else float("inf") if original else 1.0,
                steps=[m * 2.0**e for m, e in t.steps],
                offset=t.offset,
            )
        )
    return summaries


__all__ = ["encode", "decode", "info", "EncodeReport", "TensorSummary", "DEFAULT_SNR_DB", "MODE_LOSSLESS", "MODE_QUANTIZED"]
