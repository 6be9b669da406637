"""Thin numpy wrappers around the compiled C core (tinycabac._native): the
decoder of record and the encoder's hot loops."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .container import DTYPE_CODES, FormatError

try:
    from ._native import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "tinycabac's C extension is not built; install the package with "
        "`pip install .` (or `make dev`) so cffi compiles it"
    ) from exc


class DecodeError(FormatError):
    """The C decoder rejected a stream; `status` is its tc_status code."""

    def __init__(self, status: int, where: str = ""):
        self.status = status
        message = ffi.string(lib.tc_status_string(status)).decode()
        super().__init__(f"{where}: {message}" if where else message)


@dataclass
class TensorInfo:
    """A directory entry as the C decoder parsed it."""

    index: int
    name: str
    dtype: np.dtype
    mode: int
    shape: tuple[int, ...]
    element_count: int
    element_size: int
    offset: int
    axis: int | None
    steps: list[tuple[int, int]]
    payload_offset: int
    payload_size: int
    crc32: int


class Stream:
    """An opened stream; keeps the bytes alive for the C structures."""

    def __init__(self, data: bytes):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._buffer = ffi.from_buffer(self._data)
        self._stream = ffi.new("tc_stream *")
        status = lib.tc_stream_open(self._stream, self._buffer, len(self._data))
        if status != 0:
            raise DecodeError(status, "cannot open stream")

    @property
    def tensor_count(self) -> int:
        return self._stream.tensor_count

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def end_of_payloads(self) -> int:
        return 20 + self._stream.directory_size + self._stream.payload_area_size

    def _raw_info(self, index: int):
        info = ffi.new("tc_tensor_info *")
        status = lib.tc_stream_tensor(self._stream, index, info)
        if status != 0:
            raise DecodeError(status, f"tensor #{index}")
        return info

    def info(self, index: int) -> TensorInfo:
        raw = self._raw_info(index)
        steps = []
        if raw.mode == 1:
            step_bytes = ffi.buffer(raw.steps, 3 * raw.step_count)
            for i in range(raw.step_count):
                mantissa = int.from_bytes(step_bytes[3 * i : 3 * i + 2], "little")
                exponent = int.from_bytes(step_bytes[3 * i + 2 : 3 * i + 3], "little", signed=True)
                steps.append((mantissa, exponent))
        name = ffi.buffer(raw.name, raw.name_len)[:].decode("utf-8", errors="replace")
        return TensorInfo(
            index=index,
            name=name,
            dtype=DTYPE_CODES[raw.dtype],
            mode=raw.mode,
            shape=tuple(raw.dims[i] for i in range(raw.ndim)),
            element_count=raw.element_count,
            element_size=raw.element_size,
            offset=raw.offset,
            axis=None if raw.axis == 0xFF else raw.axis,
            steps=steps,
            payload_offset=raw.payload_offset,
            payload_size=raw.payload_size,
            crc32=raw.crc32,
        )

    def decode(self, index: int) -> np.ndarray:
        """Decode tensor `index` with the C decoder; float tensors as float32."""
        raw = self._raw_info(index)
        out_dtype = DTYPE_CODES[raw.dtype]
        if raw.mode == 1:
            out_dtype = np.dtype(np.float32)
        out = np.empty(raw.element_count, dtype=out_dtype.newbyteorder("<"))
        status = lib.tc_decode_tensor(self._stream, raw, ffi.from_buffer(out), out.nbytes)
        if status != 0:
            name = ffi.buffer(raw.name, raw.name_len)[:].decode("utf-8", errors="replace")
            raise DecodeError(status, f"tensor {name!r}")
        return out.astype(out_dtype, copy=False).reshape(tuple(raw.dims[i] for i in range(raw.ndim)))


def encode_levels(levels: np.ndarray, name: str = "") -> bytes:
    """Arithmetic-code int64 levels (|level| <= 2**31) into a payload."""
    levels = np.ascontiguousarray(levels, dtype=np.int64).ravel()
    capacity = int(lib.tce_max_payload_size(levels.size))
    out = bytearray(capacity)
    bad = ffi.new("size_t *")
    size = lib.tce_encode_levels(ffi.from_buffer("int64_t[]", levels), levels.size, ffi.from_buffer(out), capacity, bad)
    if size == -1:
        raise FormatError(f"tensor {name!r}: level {int(levels[bad[0]])} at element {bad[0]} exceeds 2**31")
    if size < 0:
        raise AssertionError("payload bound violated")  # tce_max_payload_size is a proven bound
    return bytes(out[:size])


def estimate_bits(levels: np.ndarray) -> float:
    levels = np.ascontiguousarray(levels, dtype=np.int64).ravel()
    return float(lib.tce_estimate_bits(ffi.from_buffer("int64_t[]", levels), levels.size))


def rdoq(weights: np.ndarray, steps: np.ndarray, inner: int, lam: float) -> np.ndarray:
    """Rate-distortion-optimised levels; steps per channel, channel = (i // inner) % len(steps)."""
    weights = np.ascontiguousarray(weights, dtype=np.float64).ravel()
    steps = np.ascontiguousarray(steps, dtype=np.float64).ravel()
    levels = np.empty(weights.size, dtype=np.int64)
    lib.tce_rdoq(
        ffi.from_buffer("double[]", weights),
        weights.size,
        ffi.from_buffer("double[]", steps),
        steps.size,
        max(int(inner), 1),
        float(lam),
        ffi.from_buffer("int64_t[]", levels),
    )
    return levels


def crc32(data: bytes) -> int:
    return lib.tc_crc32(0, ffi.from_buffer(data), len(data))
