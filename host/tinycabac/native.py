"""Thin numpy wrappers around the compiled C core (tinycabac._native): the
decoder of record and the encoder's hot loops."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .container import DELTA_MODES, DTYPE_CODES, FORMAT_VERSION, QUANTIZED_MODES, TFLITE_PLACES_NAME, FormatError

INITIAL_ACTIVITY_WINDOW = 32

try:
    from ._native import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "tinycabac's C extension is not built; install the package with "
        "`pip install .` (or `make dev`) so cffi compiles it"
    ) from exc


class DecodeError(FormatError):
    """The C decoder rejected a stream; `status` is its tc_status code."""

    def __init__(self, status: int, where: str = "", detail: str = ""):
        self.status = status
        message = ffi.string(lib.tc_status_string(status)).decode() + (f" {detail}" if detail else "")
        super().__init__(f"{where}: {message}" if where else message)


class BaseMismatchError(FormatError):
    """An update stream was applied to a base it was not made for."""


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
    initial_activity: int
    base_crc32: int
    prediction: int = 0  # PREDICT_* (FORMAT 5.7)
    history: int = 0  # prediction distance (row length) H, 0: none
    rank: int = 0  # factor prediction (FORMAT 5.8): factors per row
    factor_shift: int = 0
    work_size: int = 0  # bytes of RAM the decoder needs for the prediction and the peaks
    quantizer: int = 0  # QUANTIZER_* (FORMAT 6.2); 0 for lossless modes
    peak: int = 0  # lossless: the channel peaks' magnitude (FORMAT 5.9), 0 for none
    peak_axis: int | None = None  # their channel axis


# A quantization step in the directory (FORMAT 3.3): u16 mantissa, i8 exponent.
STEP_DTYPE = np.dtype([("mantissa", "<u2"), ("exponent", "i1")])
TC_ERR_VERSION = -3
TC_ERR_RESERVED = -6
TC_ERR_PAYLOAD = -8
TC_ERR_NOT_FOUND = -10
# Every value costs at least one context-coded bin, which narrows the range
# by at most 32625/32768 (FORMAT 5.2): n payload bytes hold fewer than
# 1268 * (n - 3) values.
MAX_ELEMENTS_PER_BYTE = 1300


def _tflite_info(stream: Stream):
    """tc_tflite_info on the stream: (decoder, history, work_size, file
    size, place count), or None for a stream without __tflite_places__."""
    decoder = ffi.new("tc_decoder *")
    work_size = max((stream.info(i).work_size for i in range(stream.tensor_count)), default=0)
    history = ffi.new("int8_t[]", max(work_size, 1))  # the working memory every tensor needs
    file_size, place_count = ffi.new("uint32_t *"), ffi.new("uint32_t *")
    status = lib.tc_tflite_info(stream._stream, decoder, history, work_size, file_size, place_count)
    if status == TC_ERR_NOT_FOUND:
        return None
    if status != 0:
        raise DecodeError(status, "__tflite_places__")
    return decoder, history, work_size, file_size[0], place_count[0]


def tflite_buffer_sizes(data: bytes) -> tuple[int, int] | None:
    """The two buffers a device's tc_tflite_rebuild needs, in bytes: the
    .tflite file and the place table (8 per weight buffer, plus 4); None
    for a stream without __tflite_places__.  The table is decoded whole
    first: tc_tflite_info reads only its head, so it alone would size the
    buffers of a table whose CRC-32 the rebuild would then refuse."""
    stream = Stream(data)
    found = _tflite_info(stream)
    if found is None:
        return None
    stream.decode(stream.names().index(TFLITE_PLACES_NAME))  # raises DecodeError on a corrupt table
    return found[3], 8 * found[4] + 4


def rebuild_tflite(data: bytes) -> bytes | None:
    """The .tflite file as a device rebuilds it from the stream, with
    decoder_c/tflite/tc_tflite.c; None for a stream without
    __tflite_places__ (plain arrays, or a .tflite file of 2 GiB or more)."""
    stream = Stream(data)
    found = _tflite_info(stream)
    if found is None:
        return None
    decoder, history, work_size, file_size, place_count = found
    places = ffi.new("uint8_t[]", 8 * place_count + 4)
    model = ffi.new("uint8_t[]", max(file_size, 1))
    status = lib.tc_tflite_rebuild(stream._stream, decoder, history, work_size, places, len(places), model,
                                   file_size)  # fmt: skip
    if status != 0:
        raise DecodeError(status, "rebuilding the .tflite file")
    return ffi.buffer(model, file_size)[:]


def _entry_name(raw, index: int) -> str:
    """A directory name, which FORMAT 3.2 requires to be UTF-8 (the C decoder
    compares names as bytes; tcdec and the host refuse other bytes alike)."""
    try:
        return ffi.buffer(raw.name, raw.name_len)[:].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(TC_ERR_RESERVED, f"tensor #{index}: name is not UTF-8") from None


class Stream:
    """An opened stream; keeps the bytes alive for the C structures."""

    def __init__(self, data: bytes):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._buffer = ffi.from_buffer(self._data)
        self._stream = ffi.new("tc_stream *")
        status = lib.tc_stream_open(self._stream, self._buffer, len(self._data))
        if status == TC_ERR_VERSION:  # the header's byte 4 is there: shorter is truncated
            raise DecodeError(status, "cannot open stream", f"{self._data[4]} (this tinycabac reads {FORMAT_VERSION}; "
                                                            "decode it with the release that wrote it)")  # fmt: skip
        if status != 0:
            raise DecodeError(status, "cannot open stream")
        # every entry parsed once, in order (tc_stream_tensor resumes where
        # its last call stopped), and kept: later lookups cost nothing
        self._infos = ffi.new("tc_tensor_info[]", max(self.tensor_count, 1))
        for index in range(self.tensor_count):
            status = lib.tc_stream_tensor(self._stream, index, self._infos + index)
            if status != 0:
                raise DecodeError(status, "cannot read the directory")

    @property
    def tensor_count(self) -> int:
        return self._stream.tensor_count

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def end_of_payloads(self) -> int:
        return 20 + self._stream.directory_size + self._stream.payload_area_size

    def names(self) -> list[str]:
        """Every tensor's name; refuses a stream with a name twice, as
        FORMAT 3.2 forbids (the C decoder would find the first)."""
        names = [_entry_name(self._raw_info(index), index) for index in range(self.tensor_count)]
        if len(set(names)) != len(names):
            twice = next(name for name in names if names.count(name) > 1)
            raise DecodeError(TC_ERR_RESERVED, f"tensor name {twice!r} appears twice")
        return names

    def _raw_info(self, index: int):
        """Entry `index` as the C decoder parsed it (valid while the Stream lives)."""
        if not 0 <= index < self.tensor_count:
            raise DecodeError(TC_ERR_NOT_FOUND, f"tensor #{index}")
        return self._infos + index

    def info(self, index: int) -> TensorInfo:
        raw = self._raw_info(index)
        steps = []
        if raw.mode in QUANTIZED_MODES:
            step_bytes = ffi.buffer(raw.steps, 3 * raw.step_count)
            fields = np.frombuffer(step_bytes, dtype=STEP_DTYPE)  # up to 65536 steps: not one by one
            steps = list(zip(fields["mantissa"].tolist(), fields["exponent"].tolist()))
        name = _entry_name(raw, index)
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
            initial_activity=raw.initial_activity,
            base_crc32=raw.base_crc32,
            prediction=raw.prediction,
            history=raw.history,
            rank=raw.rank,
            factor_shift=raw.factor_shift,
            work_size=raw.work_size,
            quantizer=raw.quantizer,
            peak=raw.peak,
            peak_axis=raw.peak_axis if raw.peak else None,
        )

    def decode(self, index: int, base: np.ndarray | None = None) -> np.ndarray:
        """Decode tensor `index` with the C decoder; float tensors as float32.

        Update tensors (delta modes) need `base`, the tensor they apply to;
        the C decoder checks its CRC-32 before applying the update."""
        raw = self._raw_info(index)
        name = _entry_name(raw, index)
        if raw.element_count > MAX_ELEMENTS_PER_BYTE * raw.payload_size:
            # what the C decoder would find at the payload's end, found before
            # allocating the tensor a damaged entry claims (tcdec does the same)
            raise DecodeError(TC_ERR_PAYLOAD, f"tensor {name!r}: {raw.element_count} elements in {raw.payload_size} bytes")
        out_dtype = np.dtype(np.float32) if raw.mode in QUANTIZED_MODES else DTYPE_CODES[raw.dtype]
        shape = tuple(raw.dims[i] for i in range(raw.ndim))
        out = np.empty(raw.element_count, dtype=out_dtype.newbyteorder("<"))
        if raw.mode in DELTA_MODES:
            if base is None:
                raise FormatError(f"tensor {name!r} is an update: decoding it needs its base tensor")
            base = np.asarray(base)
            if base.shape != shape:
                raise BaseMismatchError(f"tensor {name!r}: base has shape {base.shape}, the update expects {shape}")
            # FORMAT 6.3: mode 2 needs the same dtype, mode 3 a float32 or float16 base (whatever the new dtype)
            allowed = (np.dtype(np.float16), np.dtype(np.float32)) if raw.mode in QUANTIZED_MODES else (out_dtype,)
            if base.dtype.newbyteorder("=") not in allowed:
                expects = "float32 or float16" if raw.mode in QUANTIZED_MODES else str(out_dtype)
                raise BaseMismatchError(f"tensor {name!r}: base has dtype {base.dtype}, the update expects {expects}")
            out[...] = base.ravel()  # exact: same dtype, or float16 widened to float32
            status = lib.tc_check_base(raw, ffi.from_buffer(out), out.nbytes)
            if status != 0:
                raise BaseMismatchError(f"tensor {name!r}: this update was made for another base (CRC-32 differs)")
        work = ffi.new("int8_t[]", max(raw.work_size, 1))
        decoder = ffi.new("tc_decoder *")
        status = lib.tc_decode_tensor(self._stream, raw, decoder, ffi.from_buffer(out), out.nbytes, work, raw.work_size)
        if status != 0:
            raise DecodeError(status, f"tensor {name!r}")
        return out.astype(out_dtype, copy=False).reshape(shape)


def peak_magnitude(array: np.ndarray):
    """The largest |value| of a non-empty array, as a Python number: without
    a full-size array of magnitudes, and without negating INT64_MIN."""
    return max(array.max().item(), -array.min().item())


def initial_activity(levels: np.ndarray) -> int:
    """The activity the model starts from (FORMAT 5.4): eight times the mean
    magnitude class of the first levels, so short tensors (biases) start at
    their scale instead of learning it."""
    head = np.asarray(levels).ravel()[:INITIAL_ACTIVITY_WINDOW]
    if head.dtype.kind == "f":  # rounded weight/step ratios: casting one beyond int64 is undefined
        head = np.clip(head, -(2.0**62), 2.0**62)
    head = np.abs(head.astype(np.int64))
    if head.size == 0:
        return 0
    classes = np.where(head > 0, np.floor(np.log2(np.maximum(head, 1))) + 1, 0)
    return int(min(255, round(8 * float(classes.mean()))))


# tce_encode_levels' errors (host/tinycabac/csrc/encoder.h)
TCE_ERR_LEVEL_RANGE, TCE_ERR_OUTPUT_FULL = -1, -2
MAX_LEVEL = 2**31  # FORMAT 5.5: |level| <= 2**31
INT64_MAX = 2**63 - 1


def _c_array(values, dtype) -> np.ndarray:
    """`values` as the C core reads them: flat, contiguous, native-endian
    and aligned, copied only where needed.  np.ascontiguousarray keeps an
    unaligned buffer as it is, which the C code would read with misaligned
    loads (undefined behaviour)."""
    return np.require(np.asarray(values, dtype=dtype).ravel(), requirements=("C", "A"))


def _int64_levels(levels) -> np.ndarray:
    """Integer levels as int64 for the C core.  Refuses what the conversion
    would silently change: fractions, and unsigned values beyond int64
    (2**64 - 1 would become -1)."""
    array = np.asarray(levels)
    if array.dtype.kind not in "biu":
        raise TypeError(f"levels must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.size and int(array.max()) > INT64_MAX:
        raise ValueError(f"level {int(array.max())} does not fit int64")
    return _c_array(array, np.int64)


def column_activities(levels: np.ndarray, history: int, activity: int, peaks: np.ndarray | None = None) -> np.ndarray:
    """Scale prediction (FORMAT 5.7): the activity of each element's column
    (elements `history` apart) before it, every column starting at `activity`;
    the elements flagged in `peaks` (FORMAT 5.9) leave their column as it was."""
    levels = _int64_levels(levels)
    columns = np.empty(levels.size, dtype=np.uint8)
    flags = ffi.NULL
    if peaks is not None:
        peaks = _c_array(peaks, np.uint8)
        if peaks.size != levels.size:
            raise ValueError(f"{peaks.size} peak flags given for {levels.size} levels")
        flags = ffi.from_buffer("uint8_t[]", peaks)
    lib.tce_column_activities(ffi.from_buffer("int64_t[]", levels), flags, levels.size, history, activity,
                              ffi.from_buffer("uint8_t[]", columns))
    return columns


def _columns(columns: np.ndarray | None, count: int):
    """The column activities for `count` levels, or NULL; the C core reads
    one per level, so a shorter array would be read past its end."""
    if columns is None:
        return ffi.NULL
    columns = _c_array(columns, np.uint8)
    if columns.size != count:
        raise ValueError(f"{columns.size} column activities given for {count} levels")
    return ffi.from_buffer("uint8_t[]", columns)


def encode_levels(levels: np.ndarray, name: str = "", activity: int = 0, columns: np.ndarray | None = None,
                  preamble: list[tuple[int, int]] = ()) -> bytes:
    """Arithmetic-code int64 levels (|level| <= 2**31) into a payload;
    `columns` (column activities from column_activities) selects scale
    prediction; `preamble` holds (value, bits) fields sent as bypass bins
    before the levels (the peak entries of FORMAT 5.9)."""
    levels = _int64_levels(levels)
    columns = _columns(columns, levels.size)
    fields = ffi.new("tce_field[]", [{"value": value, "bits": bits} for value, bits in preamble]) if preamble else ffi.NULL
    extra = (sum(bits for _, bits in preamble) + 7) // 8  # bytes: the bound below counts values only
    return _encode(levels, levels.size + extra, name, lambda out, capacity, bad: lib.tce_encode_levels(
        ffi.from_buffer("int64_t[]", levels), columns, levels.size, activity, fields, len(preamble), out, capacity,
        bad))


def encode_factored(levels: np.ndarray, history: int, row_factors: np.ndarray, column_factors: np.ndarray,
                    shift: int, name: str = "", activity: int = 0) -> bytes:
    """Factor prediction (FORMAT 5.8): code the levels as rows of `history`
    elements predicted from int8 factors, row_factors (one row of rank values
    per row of levels) and column_factors (history x rank), which the
    payload carries."""
    levels = _int64_levels(levels)
    rank = column_factors.shape[1]
    if column_factors.shape != (history, rank) or row_factors.shape != (-(-levels.size // history), rank):
        raise ValueError("factor shapes do not match the levels")
    rows, columns = (_c_array(f, np.int8) for f in (row_factors, column_factors))
    values = levels.size + rows.size + columns.size  # factor values are coded values too
    return _encode(levels, values, name, lambda out, capacity, bad: lib.tce_encode_factored(
        ffi.from_buffer("int64_t[]", levels), levels.size, history, ffi.from_buffer("int8_t[]", rows),
        ffi.from_buffer("int8_t[]", columns), rank, shift, activity, out, capacity, bad))


def _encode(levels: np.ndarray, values: int, name: str, code) -> bytes:
    """Run an encoder core, code(out, capacity, bad_index), that codes
    `values` values, into a buffer large enough for the payload."""
    bad = ffi.new("size_t *")
    # Most payloads take under 2 bytes a level; the proven bound (32 bytes a
    # level) is only allocated, and zeroed, when that does not suffice.
    for capacity in (2 * values + 64, int(lib.tce_max_payload_size(values))):
        out = bytearray(capacity)
        size = code(ffi.from_buffer(out), capacity, bad)
        if size != TCE_ERR_OUTPUT_FULL:
            break
    if size == TCE_ERR_LEVEL_RANGE:
        raise FormatError(f"tensor {name!r}: level {int(levels[bad[0]])} at element {bad[0]} exceeds 2**31")
    if size < 0:
        raise AssertionError("payload bound violated")  # tce_max_payload_size is a proven bound
    return bytes(memoryview(out)[:size])  # one copy of the payload, not two


def history_cost(levels: np.ndarray, distance: int) -> int:
    """Sum of the residuals' magnitude classes with prediction at `distance`."""
    levels = _int64_levels(levels)
    return int(lib.tce_history_cost(ffi.from_buffer("int64_t[]", levels), levels.size, distance))


def estimate_bits(levels: np.ndarray, activity: int = 0, columns: np.ndarray | None = None) -> float:
    levels = _int64_levels(levels)
    return float(lib.tce_estimate_bits(ffi.from_buffer("int64_t[]", levels), _columns(columns, levels.size), levels.size,
                                       activity))


def _choose_levels(search, weights: np.ndarray, steps: np.ndarray, inner: int, lam: float, activity: int) -> np.ndarray:
    """Run one of the C level searches (tce_rdoq, tce_trellis); channel = (i // inner) % len(steps).
    `lam` is the Lagrange multiplier in units of the squared step: each
    channel trades bits for squared error at lam * step**2."""
    weights = _c_array(weights, np.float64)
    steps = _c_array(steps, np.float64)
    if weights.size and not steps.size:
        raise ValueError("the level search needs at least one step (the C core takes channel i % steps)")
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights must be finite: NaN or infinity has no level")
    levels = np.empty(weights.size, dtype=np.int64)
    bits = search(
        ffi.from_buffer("double[]", weights),
        weights.size,
        ffi.from_buffer("double[]", steps),
        steps.size,
        max(int(inner), 1),
        float(lam),
        activity,
        ffi.from_buffer("int64_t[]", levels),
    )
    if bits < 0:
        raise MemoryError("the level search could not allocate its working memory")
    return levels


def rdoq(weights: np.ndarray, steps: np.ndarray, inner: int, lam: float, activity: int = 0) -> np.ndarray:
    """Rate-distortion-optimised levels for the uniform quantizer."""
    return _choose_levels(lib.tce_rdoq, weights, steps, inner, lam, activity)


def trellis(weights: np.ndarray, steps: np.ndarray, inner: int, lam: float, activity: int = 0) -> np.ndarray:
    """Levels for the dependent quantizer (FORMAT 6.2), from a trellis search."""
    return _choose_levels(lib.tce_trellis, weights, steps, inner, lam, activity)


def dependent_indices(levels: np.ndarray) -> np.ndarray:
    """Reconstruction indices q of dependent quantization for levels in C order (FORMAT 6.2)."""
    flat = _int64_levels(levels)
    low, high = (int(flat.min()), int(flat.max())) if flat.size else (0, 0)
    if not -MAX_LEVEL <= low <= high <= MAX_LEVEL:
        # no stream holds such a level, and 2 * level could overflow int64 in C
        raise FormatError(f"level {low if low < -MAX_LEVEL else high} exceeds 2**31: it has no reconstruction index")
    indices = np.empty_like(flat)
    lib.tce_dependent_indices(ffi.from_buffer("int64_t[]", flat), flat.size, ffi.from_buffer("int64_t[]", indices))
    return indices.reshape(np.shape(levels))


def crc32(data: bytes) -> int:
    return lib.tc_crc32(0, ffi.from_buffer(data), len(data))
