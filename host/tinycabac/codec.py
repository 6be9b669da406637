"""The public encode / decode / info API over the container and the C core."""
from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from . import native
from .container import (
    AXIS_NONE,
    FLOAT_DTYPES,
    INTEGER_DTYPES,
    MAX_STEP_COUNT,
    MODE_DELTA_LOSSLESS,
    MODE_DELTA_QUANTIZED,
    MODE_LOSSLESS,
    MODE_NAMES,
    MODE_QUANTIZED,
    QUANTIZED_MODES,
    QUANTIZER_DEPENDENT,
    QUANTIZER_UNIFORM,
    BASE_DIGEST_NAME,
    ContainerTensors,
    RESERVED_NAME_PREFIX,
    TFLITE_LAYOUT_NAME,
    TFLITE_PLACES_NAME,
    TFLITE_PACKED_SKELETON_NAME,
    TFLITE_SKELETON_NAME,
    FormatError,
    Step,
    TensorEntry,
    check_name,
    check_shape,
    write_stream,
)
from .peaks import find_peaks
from .predict import DEFAULT_MAX_HISTORY, PREDICTION_KINDS, Prediction, check_prediction, code_levels
from .quantize import (
    QUANTIZERS, Bracket, SearchTry, quantize_for_rate, quantize_for_snr, quantize_with_steps, search_boundary, snr_db,
)

DEFAULT_SNR_DB = 40.0
PREDICTION_NAMES = {code: name for name, code in PREDICTION_KINDS.items()}
QUANTIZER_NAMES = {QUANTIZER_UNIFORM: "uniform", QUANTIZER_DEPENDENT: "dependent"}  # FORMAT 6.2


def _per_tensor(option, name: str):
    """`option` is one value for every tensor or a mapping name -> value."""
    if isinstance(option, Mapping):
        return option.get(name)
    return option


def _check_no_quantization_for(name: str, options: dict) -> None:
    """A per-tensor quantization setting for an integer tensor, which is
    coded losslessly, is a mistake that would otherwise go unnoticed (one
    value for all tensors applies to the float ones only)."""
    for option, value in options.items():
        if isinstance(value, Mapping) and name in value:
            raise ValueError(f"tensor {name!r} is an integer tensor, coded losslessly: {option} does not apply to it")


def _check_option_names(tensors: Mapping, options: dict) -> None:
    """A per-tensor mapping naming a tensor the input does not have is a
    typo that would silently leave that tensor at the default."""
    for option, value in options.items():
        if isinstance(value, Mapping):
            unknown = [name for name in value if name not in tensors]
            if unknown:
                raise ValueError(f"{option} names tensors that are not in the input: {unknown[:5]}")


def _check_tensor_name(name: str, container: bool) -> None:
    """A valid name that decode() will return: of the reserved names
    (FORMAT 3.5) only the .tflite container data, and only from the
    model-file layer (`container`: the tensors are a ContainerTensors)."""
    check_name(name)
    container_names = (
        (TFLITE_SKELETON_NAME, TFLITE_PACKED_SKELETON_NAME, TFLITE_LAYOUT_NAME, TFLITE_PLACES_NAME) if container else ()
    )
    if name.startswith(RESERVED_NAME_PREFIX) and name not in container_names:
        raise FormatError(f"tensor name {name[:40]!r}: names starting with {RESERVED_NAME_PREFIX!r} are reserved "
                          "for container data; rename the tensor")


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


def _le_bytes(array: np.ndarray):
    """The array's little-endian bytes, as a buffer read in place where it
    already is one (copies of a large tensor are hundreds of megabytes)."""
    contiguous = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return contiguous.tobytes() if contiguous.dtype.hasobject else contiguous  # objects export no buffer


def _crc32(array: np.ndarray) -> int:
    return zlib.crc32(_le_bytes(array))


def _levels_entry(name, array, mode, levels, decoded, prediction=Prediction(), found_peaks=None,
                  **fields) -> TensorEntry:
    coded = code_levels(name, array.shape, levels, prediction, peaks_allowed=mode == MODE_LOSSLESS,
                        found_peaks=found_peaks)
    return TensorEntry(
        name=name,
        dtype=array.dtype,
        shape=array.shape,
        mode=mode,
        payload=coded.payload,
        crc32=_crc32(decoded),
        initial_activity=coded.initial_activity,
        prediction=coded.prediction,
        history=coded.history,
        rank=coded.rank,
        factor_shift=coded.factor_shift,
        peak=coded.peaks.magnitude if coded.peaks else 0,
        peak_axis=coded.peaks.axis if coded.peaks else 0,
        **fields,
    )


def _encode_integer(name: str, array: np.ndarray, base: np.ndarray | None, prediction: Prediction) -> TensorEntry:
    if base is not None:
        levels = np.subtract(array, base, dtype=np.int64).ravel()  # no int64 copies of the two
        return _levels_entry(
            name, array, MODE_DELTA_LOSSLESS, levels, array, prediction, base_crc32=_crc32(base)
        )
    offset = _lossless_offset(array)
    levels = array.astype(np.int64).ravel()
    peaks_about_0 = None
    if offset != 0 and prediction.kind != "none" and prediction.history != 0:
        peaks_about_0 = find_peaks(levels, array.shape, prediction.max_history)
    if peaks_about_0 is not None:
        offset = 0  # symmetric int8 weights: their +-127 are channel peaks (FORMAT 5.9) only about 0
    levels -= offset
    return _levels_entry(name, array, MODE_LOSSLESS, levels, array, prediction, found_peaks=peaks_about_0,
                         offset=offset)


def _named_step(name: str, make: Callable[..., Step], value) -> Step:
    """A step given by the caller, its errors naming the tensor (it may be one of many)."""
    try:
        return make(value)
    except FormatError as error:
        raise FormatError(f"tensor {name!r}: {error}") from None


def _quantize(name: str, array: np.ndarray, step, qp, target_snr, axis, quantizer, lam, target_bpw=None, dtype=None,
              base=None, on_try=None):
    """`array` quantized as the options say; for an update it is the
    difference from `base`, and a searched step keeps base + reconstruction
    within `dtype`."""
    if not np.all(np.isfinite(array)):
        raise FormatError(f"tensor {name!r} contains NaN or infinity")
    chosen = [x is not None for x in (step, qp, target_snr, target_bpw)]
    if sum(chosen) > 1:
        raise ValueError(f"tensor {name!r}: give at most one of step, qp, snr_db, bits_per_weight")
    if lam is not None and not 0 <= float(lam) < float("inf"):
        raise ValueError(f"tensor {name!r}: lam must be a finite number >= 0, got {lam}")
    if axis is None:
        axis = AXIS_NONE
    elif isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"tensor {name!r}: a channel axis must be an integer, got {axis!r}")
    elif not 0 <= axis < array.ndim:
        raise ValueError(f"tensor {name!r}: channel axis {axis} is out of range for shape {array.shape}")
    elif array.shape[axis] > MAX_STEP_COUNT:
        raise FormatError(f"tensor {name!r}: {array.shape[axis]} channels on axis {axis}; the format allows "
                          f"{MAX_STEP_COUNT} steps per tensor (FORMAT 3.4)")
    if qp is not None:
        if isinstance(qp, bool) or not isinstance(qp, (int, np.integer)):
            raise ValueError(f"tensor {name!r}: qp must be an integer, got {qp!r}")
        steps = [_named_step(name, Step.from_qp, qp)] * (1 if axis == AXIS_NONE else array.shape[axis])
        return quantize_with_steps(array, steps, axis, quantizer, lam, name)
    if step is not None:
        values = np.atleast_1d(np.asarray(step, dtype=np.float64))
        if axis == AXIS_NONE and values.size != 1:
            raise ValueError(f"tensor {name!r}: {values.size} steps given but no channel axis")
        if axis != AXIS_NONE and values.size not in (1, array.shape[axis]):
            raise ValueError(f"tensor {name!r}: need 1 or {array.shape[axis]} steps, got {values.size}")
        count = 1 if axis == AXIS_NONE else array.shape[axis]
        steps = [_named_step(name, Step.from_float, float(v)) for v in np.broadcast_to(values, (count,))]
        return quantize_with_steps(array, steps, axis, quantizer, lam, name)
    if target_bpw is not None:
        if not 0 < float(target_bpw) < float("inf"):
            raise FormatError(f"tensor {name!r}: bits per weight must be a positive finite number, got {target_bpw}")
        return quantize_for_rate(array, float(target_bpw), axis, quantizer, name, lam, dtype, base, on_try)
    target = DEFAULT_SNR_DB if target_snr is None else float(target_snr)
    if np.isnan(target):
        raise FormatError(f"tensor {name!r}: target SNR must be a number of dB, got nan")
    return quantize_for_snr(array, target, axis, quantizer, name, lam, dtype, base, on_try)


def _check_fits_dtype(name: str, array: np.ndarray, reconstruction: np.ndarray) -> None:
    """A float16 tensor's weights go back into float16 (a .tflite rebuild
    narrows them, FORMAT 3.5): a reconstruction of 65520 or more, which
    quantization can round up to from 65504, would be infinity there, so it
    is an error here."""
    if array.dtype == np.float16:
        with np.errstate(over="ignore"):
            finite = np.isfinite(reconstruction.astype(np.float16))
        if not np.all(finite):
            raise FormatError(f"tensor {name!r}: reconstruction overflows float16; use a smaller step")


def _encode_float(
    name, array, base, step, qp, target_snr, axis, quantizer, lam, target_bpw, prediction: Prediction, on_try=None
) -> tuple[TensorEntry, float]:
    if base is None:
        q = _quantize(name, array, step, qp, target_snr, axis, quantizer, lam, target_bpw, on_try=on_try)
        _check_fits_dtype(name, array, q.reconstruction)
        entry = _levels_entry(
            name, array, MODE_QUANTIZED, q.levels, q.reconstruction, prediction,
            axis=q.axis, steps=q.steps, quantizer=q.quantizer,
        )
        reconstruction = q.reconstruction
        del q  # its levels: int64, twice the size of a float32 tensor
        return entry, snr_db(array, reconstruction)
    # An update codes the quantized difference; every decoder adds it to the
    # base in float32 arithmetic (FORMAT 6.3), exactly as done here.
    base32 = base.astype(np.float32)
    difference = np.subtract(array, base32, dtype=np.float64)  # exact: no float64 copies of the two
    q = _quantize(name, difference, step, qp, target_snr, axis, quantizer, lam, target_bpw, array.dtype, base32, on_try)
    with np.errstate(over="ignore"):
        updated = base32 + q.reconstruction
    if not np.all(np.isfinite(updated)):
        raise FormatError(f"tensor {name!r}: the updated tensor overflows float32")
    _check_fits_dtype(name, array, updated)
    entry = _levels_entry(
        name, array, MODE_DELTA_QUANTIZED, q.levels, updated, prediction,
        axis=q.axis, steps=q.steps, quantizer=q.quantizer, base_crc32=_crc32(base32),
    )
    del q, difference
    return entry, snr_db(array, updated)


def _matching_base(name: str, array: np.ndarray, base: Mapping | None) -> np.ndarray | None:
    """The base tensor an update codes `name` against, or None to code it whole."""
    if base is None or name not in base:
        return None
    candidate = _as_array(name, base[name])
    same_kind = candidate.dtype == array.dtype or (array.dtype.kind == "f" and candidate.dtype.kind == "f")
    if not same_kind or candidate.shape != array.shape:
        return None
    if array.dtype.kind == "f":
        # NaN or infinity is never a valid base (FORMAT 6.3): code the tensor whole
        return candidate if np.all(np.isfinite(candidate)) else None
    # an int32 difference can exceed the levels' range (|level| <= 2**31, FORMAT 5.5): code the tensor whole
    difference = np.subtract(array, candidate, dtype=np.int64)
    if difference.size and native.peak_magnitude(difference) > native.MAX_LEVEL:
        return None
    return candidate


def base_digest(tensors: Mapping[str, np.ndarray]) -> bytes:
    """SHA-256 identifying a base model: names, dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for name, value in tensors.items():
        array = np.asarray(value)
        # FORMAT 3.5: the little-endian dtype string ('<f4') and bytes, whatever order the base is held in
        digest.update(f"{name}\0{array.dtype.newbyteorder('<').str}\0{array.shape}\0".encode())
        digest.update(_le_bytes(array))
    return digest.digest()


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
    bits_per_weight=None,
    max_size: int | None = None,
    axis=None,
    quantizer: str = "nearest",
    lam=None,
    progress: Callable[[str, int], None] | None = None,
    report: list[EncodeReport] | None = None,
    base: Mapping[str, np.ndarray] | None = None,
    prediction="auto",
    history=None,
    max_history: int = DEFAULT_MAX_HISTORY,
) -> bytes:
    """Encode named tensors (order kept) into a tinycabac stream.

    Integer tensors (int8, uint8, int16, int32) are coded losslessly.  Float
    tensors (float32, float16) are quantized: with an explicit `step`, an
    NNR-style `qp`, the largest step reaching `snr_db` (default 40 dB), the
    smallest step whose payload fits `bits_per_weight` (a per-tensor rate
    target, payload only, as the coder's model estimates it), or, with
    `max_size`, at the highest `snr_db`, the same for every float tensor (for
    an update: for its difference), whose whole stream (container included)
    takes at most `max_size` bytes.
    `step`, `qp`, `snr_db`, `bits_per_weight`, `axis` (per-channel steps along that axis),
    `quantizer` ("nearest", "rdoq" or "trellis", the last coding for dependent
    quantization, FORMAT 6.2) and `lam` take one value or a mapping
    from tensor name to value, which may name only tensors of the input.
    `lam` is the searching quantizers' Lagrange multiplier in units of the
    squared step: each channel trades bits for squared error at
    lam * step**2 (default 0.17 for "rdoq", 0.25 for "trellis"), whichever
    way the step was chosen.
    `progress(name, elements)` is called with 0 as a tensor starts and with
    its element count when it is done, and also with 0 and a description of
    each try of a step search ("step try 3: name") and, with `max_size`, of
    each trial of the size search; `report`, if
    given, receives an EncodeReport per tensor.

    Prediction (FORMAT 5.7): by default each tensor is also tried with its
    levels coded as differences from the level one row (times a small lag)
    back, and with that level steering the Rice parameter, at distances up
    to `max_history` elements; the smallest payload wins, and a decoder then
    needs that distance in bytes of RAM.  `prediction` ("auto", "none",
    "difference", "scale", "factors") and `history` (a distance, 0: none)
    take one value or a mapping and restrict the choice.

    Channel peaks (FORMAT 5.9): a lossless tensor whose every channel, along
    its first or last axis, holds its largest |level| (TFLite's per-channel
    int8 weights: +-127) is also tried with each channel's first one sent as
    its position; a decoder then needs 2 bytes of RAM per channel, within
    `max_history`.  prediction="none" (or history 0, or max_history 0) asks
    for no working memory at all, and so turns them off too.

    With `base` (the tensors the receiver already holds) the stream is an
    update: every tensor with a same-shaped, same-kind base tensor is coded
    as its difference from it, and the stream records the base's SHA-256
    (as the reserved tensor "__base_sha256__") and each base tensor's
    CRC-32, so that apply() and every decoder refuse a wrong base."""
    if not isinstance(tensors, Mapping):
        raise TypeError("tensors must be a mapping from names to arrays")
    if base is not None and not isinstance(base, Mapping):
        raise TypeError("base must be a mapping from names to arrays")
    if report is not None and not isinstance(report, list):
        raise TypeError(f"report must be a list to receive an EncodeReport per tensor, got {type(report).__name__}")
    if max_size is not None:
        if any(option is not None for option in (step, qp, snr_db, bits_per_weight)):
            raise ValueError("give max_size alone: it chooses the steps (no step, qp, snr_db or bits_per_weight)")
        encode_at = functools.partial(
            encode, tensors, axis=axis, quantizer=quantizer, lam=lam, base=base, prediction=prediction,
            history=history, max_history=max_history,
        )
        return _encode_within(encode_at, max_size, progress, report)
    _check_option_names(tensors, {"step": step, "qp": qp, "snr_db": snr_db, "bits_per_weight": bits_per_weight,
                                  "axis": axis, "quantizer": quantizer, "lam": lam, "prediction": prediction,
                                  "history": history})  # fmt: skip
    entries = []
    for name, value in tensors.items():
        _check_tensor_name(name, isinstance(tensors, ContainerTensors))
        if progress is not None:
            progress(name, 0)
        array = _as_array(name, value)
        allowed = check_prediction(
            name, _per_tensor(prediction, name) or "auto", _per_tensor(history, name), max_history
        )
        tensor_quantizer = _per_tensor(quantizer, name) or "nearest"
        if tensor_quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {tensor_quantizer!r}; choose one of {', '.join(QUANTIZERS)}")
        base_array = _matching_base(name, array, base)
        if array.dtype in INTEGER_DTYPES:
            _check_no_quantization_for(name, {"step": step, "qp": qp, "snr_db": snr_db, "lam": lam,
                                              "bits_per_weight": bits_per_weight})  # fmt: skip
            entries.append(_encode_integer(name, array, base_array, allowed))
            measured = None
        else:
            entry, measured = _encode_float(
                name,
                array,
                base_array,
                _per_tensor(step, name),
                _per_tensor(qp, name),
                _per_tensor(snr_db, name),
                _per_tensor(axis, name),
                tensor_quantizer,
                _per_tensor(lam, name),
                _per_tensor(bits_per_weight, name),
                allowed,
                on_try=None if progress is None else _step_try_reporter(progress, name),
            )
            entries.append(entry)
        if report is not None:
            report.append(EncodeReport(name, measured))
        if progress is not None:
            progress(name, array.size)
    if base is not None:
        digest = np.frombuffer(base_digest(base), dtype=np.uint8)
        entries.append(_levels_entry(BASE_DIGEST_NAME, digest, MODE_LOSSLESS, digest.astype(np.int64), digest))
    return write_stream(entries)


def _step_try_reporter(progress: Callable[[str, int], None], name: str) -> Callable[[int], None]:
    """Tells `progress` of each try of a tensor's step search, which on a
    large tensor takes seconds each (minutes with the trellis)."""
    return lambda tries: progress(f"step try {tries}: {name}", 0)


# The SNR range searched for a size target, and how closely: 0 dB rounds
# every weight to zero, and 100 dB is far beyond what a model's accuracy
# can notice (float32 rounding itself is about 150 dB, float16's 70).
SIZE_SEARCH_DB = (0.0, 100.0)
SIZE_SEARCH_TOLERANCE_DB = 0.05


def _encode_within(encode_at: Callable[..., bytes], max_size, progress, report) -> bytes:
    """The stream at the highest common SNR whose size is at most max_size
    bytes.  The size grows about linearly with the SNR, so the search aims
    its encodes by secant (quantize.search_boundary) on x = -SNR."""
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size <= 0:
        raise ValueError(f"max_size must be a positive number of bytes, got {max_size!r}")
    # a Python int, so that max_size - size cannot wrap around (numpy's
    # unsigned and small types would) and converts to float: no stream
    # comes near 2**62 bytes
    max_size = min(int(max_size), 2**62)
    low, high = SIZE_SEARCH_DB

    def sized(target_db: float, size: int) -> SearchTry:
        return SearchTry(-target_db, target_db, float(max_size - size), size > max_size)

    def attempt(target_db: float) -> SearchTry:
        if progress is not None:
            progress(f"size search: {target_db:.2f} dB", 0)
        try:
            return sized(target_db, len(encode_at(snr_db=target_db)))
        except FormatError:  # that SNR cannot be reached (levels beyond 2**31): too fine
            return SearchTry(-target_db, None, np.nan, True)

    smallest = len(encode_at(snr_db=low))
    if smallest > max_size:
        raise FormatError(
            f"cannot fit {max_size} bytes: the smallest stream of this input (float tensors at the "
            f"coarsest step, 0 dB SNR) takes {smallest} bytes"
        )
    finest = attempt(high)
    if finest.gap >= 0:
        return encode_at(snr_db=high, progress=progress, report=report)
    tries = [sized(low, smallest), finest]
    bracket = Bracket(-high, -low, SIZE_SEARCH_TOLERANCE_DB)
    target_db = search_boundary(lambda x: attempt(-x), bracket, tries, guess=None, slope=max_size / (high - low))
    return encode_at(snr_db=target_db, progress=progress, report=report)


def _open(data) -> native.Stream:
    stream = native.Stream(data)
    if stream.size < stream.end_of_payloads:
        raise native.DecodeError(-4, "stream")  # TC_ERR_TRUNCATED
    if stream.size > stream.end_of_payloads:
        # a reserved field (FORMAT 7): the directory's sizes do not account for them
        extra = stream.size - stream.end_of_payloads
        raise native.DecodeError(-6, f"stream has {extra} unexpected bytes after its payloads")  # TC_ERR_RESERVED
    stream.names()  # unique and UTF-8: a dict by name would drop one of two
    return stream


def decode(data, *, include_reserved: bool = False) -> dict[str, np.ndarray]:
    """Decode every tensor with the C decoder of record.

    Names, order, dtypes and shapes are restored; float tensors come back as
    their float32 reconstruction.  Tensors whose names start with "__"
    (container data such as the rest of a .tflite file) are left out unless
    `include_reserved`.  Update streams need apply() instead."""
    return _decode_all(_open(data), None, include_reserved)


def _decode_all(stream, base, include_reserved: bool) -> dict[str, np.ndarray]:
    out = {}
    for index in range(stream.tensor_count):
        info = stream.info(index)
        if info.name == BASE_DIGEST_NAME or (info.name.startswith(RESERVED_NAME_PREFIX) and not include_reserved):
            continue
        if info.mode in (MODE_DELTA_LOSSLESS, MODE_DELTA_QUANTIZED) and base is None:
            raise FormatError("this stream is an update: use tinycabac.apply(base, update)")
        out[info.name] = stream.decode(index, base.get(info.name) if base is not None else None)
    return out


def is_update(data) -> bool:
    return any(t.name == BASE_DIGEST_NAME for t in info(data))


def apply(base: Mapping[str, np.ndarray], update, *, include_reserved: bool = False) -> dict[str, np.ndarray]:
    """Apply an update stream (made with encode(new, base=old)) to `base`.

    Refuses, with BaseMismatchError, a base other than the one the update was
    made for (whole-model SHA-256 and per-tensor CRC-32); otherwise returns
    exactly the encoder's reconstruction of the new tensors."""
    stream = _open(update)
    recorded = None
    for index in range(stream.tensor_count):
        if stream.info(index).name == BASE_DIGEST_NAME:
            recorded = stream.decode(index).tobytes()
    if recorded is None:
        raise FormatError("not an update stream (no base digest); use tinycabac.decode")
    if recorded != base_digest(base):
        raise native.BaseMismatchError("this update was made for a different base model (SHA-256 differs)")
    return _decode_all(stream, base, include_reserved)


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
    prediction: str = "none"  # none, difference, scale (FORMAT 5.7) or factors (5.8)
    history: int = 0  # prediction distance (row length) H
    rank: int = 0  # factor prediction: factors per row
    work_size: int = 0  # bytes of RAM a decoder needs: H, (H + 1) * rank for factors, + 2 per peak channel
    quantizer: str | None = None  # quantized modes: uniform or dependent (FORMAT 6.2)
    peak: int = 0  # lossless: the channel peaks' magnitude (FORMAT 5.9), 0 for none
    peak_axis: int | None = None  # their channel axis


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
                prediction=PREDICTION_NAMES[t.prediction],
                history=t.history,
                rank=t.rank,
                work_size=t.work_size,
                quantizer=QUANTIZER_NAMES[t.quantizer] if t.mode in QUANTIZED_MODES else None,
                peak=t.peak,
                peak_axis=t.peak_axis,
            )
        )
    return summaries


__all__ = ["encode", "decode", "apply", "is_update", "base_digest", "info", "EncodeReport", "TensorSummary", "DEFAULT_SNR_DB", "MODE_LOSSLESS", "MODE_QUANTIZED"]
