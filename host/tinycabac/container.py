"""The tinycabac container (docs/FORMAT.md section 3): header and tensor
directory.  This module writes them; reading goes through the C decoder of
record (tinycabac.native), so there is one parser, not two."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"TCAB"
FORMAT_VERSION = 13
HEADER_SIZE = 20

MAX_TENSORS = 4096
MAX_NAME_LEN = 255
MAX_NDIM = 8
MAX_ELEMENTS = 0x7FFFFFFF
MAX_DIRECTORY_SIZE = 1 << 24
MAX_STEP_COUNT = 65536
MAX_HISTORY = 65535  # prediction distance (FORMAT 3.4, 5.7)
PREDICT_NONE, PREDICT_DIFFERENCE, PREDICT_SCALE, PREDICT_FACTORS = 0, 1, 2, 3  # FORMAT 5.7, 5.8
MAX_RANK = 64  # factor prediction (FORMAT 5.8)
MAX_FACTOR_SHIFT = 24
MAX_FACTOR_RESIDUAL = 2**30
AXIS_NONE = 0xFF
QUANTIZER_UNIFORM, QUANTIZER_DEPENDENT = 0, 1  # FORMAT 6.2: level -> reconstruction index

MODE_LOSSLESS = 0
MODE_QUANTIZED = 1
MODE_DELTA_LOSSLESS = 2
MODE_DELTA_QUANTIZED = 3
MODE_NAMES = {
    MODE_LOSSLESS: "lossless",
    MODE_QUANTIZED: "quantized",
    MODE_DELTA_LOSSLESS: "delta-lossless",
    MODE_DELTA_QUANTIZED: "delta-quantized",
}
QUANTIZED_MODES = (MODE_QUANTIZED, MODE_DELTA_QUANTIZED)
DELTA_MODES = (MODE_DELTA_LOSSLESS, MODE_DELTA_QUANTIZED)

# dtype code -> numpy dtype of the *source* tensor (float tensors decode to float32)
DTYPE_CODES = {
    1: np.dtype(np.int8),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.float32),
    6: np.dtype(np.float16),
}
CODE_OF_DTYPE = {dt: code for code, dt in DTYPE_CODES.items()}
INTEGER_DTYPES = tuple(DTYPE_CODES[c] for c in (1, 2, 3, 4))
FLOAT_DTYPES = tuple(DTYPE_CODES[c] for c in (5, 6))

# Names starting with this prefix carry container-level data for the
# application layer (e.g. the rest of a .tflite file); decode() hides them.
# encode() takes no other "__" names, so decode() never hides a user's tensor.
RESERVED_NAME_PREFIX = "__"
TFLITE_SKELETON_NAME = "__tflite_skeleton__"  # the .tflite file without its coded weights
TFLITE_PACKED_SKELETON_NAME = "__tflite_packed_skeleton__"  # the same, LZ77-packed (FORMAT 3.6)
TFLITE_PLACES_NAME = "__tflite_places__"  # where the weights go: int32 file size, (tensor, offset) pairs
TFLITE_LAYOUT_NAME = "__tflite_layout__"  # the same as JSON, only for files of 2 GiB or more
BASE_DIGEST_NAME = "__base_sha256__"  # an update's base model (SHA-256)


class ContainerTensors(dict):
    """A model file's tensors together with its container data (the
    TFLITE_* names above), as only the model-file layer builds them: the one
    mapping encode() takes those names from, so that a user's tensor given
    one of them is refused instead of coded and then hidden by decode()."""


class FormatError(ValueError):
    """A stream or a tensor cannot be represented in / read from the format."""


# The finest and coarsest steps the format can code (FORMAT 3.3: a 16-bit
# mantissa of at least 1, an exponent from -128 to 127).
MIN_STEP = 2.0**-128
MAX_STEP = 65535 * 2.0**127


@dataclass
class Step:
    """A quantization step mantissa * 2**exponent (FORMAT 3.3)."""

    mantissa: int
    exponent: int

    @property
    def value(self) -> float:
        return self.mantissa * 2.0**self.exponent

    @classmethod
    def from_float(cls, step: float) -> "Step":
        """Nearest step with a 16-bit mantissa."""
        if not np.isfinite(step) or step <= 0:
            raise FormatError(f"quantization step must be a positive finite number, got {step!r}")
        mantissa_f, exp2 = np.frexp(step)  # step = mantissa_f * 2**exp2, mantissa_f in [0.5, 1)
        exponent = int(exp2) - 16
        mantissa = int(round(float(mantissa_f) * 65536))
        if mantissa == 65536:
            mantissa, exponent = 32768, exponent + 1
        if exponent < -128:  # tiny steps trade mantissa bits for range
            mantissa, exponent = int(round(step * 2.0**128)), -128
            if mantissa == 0:
                raise FormatError(f"quantization step {step!r} is below 2**-128")
        if not -128 <= exponent <= 127:
            raise FormatError(f"quantization step {step!r} is outside the representable range")
        return cls(mantissa, exponent)

    @classmethod
    def from_qp(cls, qp: int) -> "Step":
        """NNR-style QP with density 2: step = (1 + (qp % 4)/4) * 2**(qp // 4)."""
        qp = int(qp)
        step = cls(4 + (qp & 3), (qp >> 2) - 2)
        if not -128 <= step.exponent <= 127:
            raise FormatError(f"qp {qp} is outside the representable range")
        return step


@dataclass
class TensorEntry:
    """One directory entry, ready to be written."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    mode: int
    payload: bytes
    crc32: int
    initial_activity: int = 0
    prediction: int = 0  # PREDICT_* (FORMAT 5.7)
    history: int = 0  # prediction distance, 0 exactly when prediction is PREDICT_NONE
    rank: int = 0  # factor prediction only (FORMAT 5.8)
    factor_shift: int = 0  # factor prediction only
    offset: int = 0  # lossless
    peak: int = 0  # lossless: the channel peaks' magnitude P, 0 for none (FORMAT 5.9)
    peak_axis: int = 0  # the channels' axis when peak != 0
    axis: int = AXIS_NONE  # quantized modes
    quantizer: int = QUANTIZER_UNIFORM  # quantized modes
    steps: list[Step] = field(default_factory=list)  # quantized modes
    base_crc32: int = 0  # delta modes

    def directory_bytes(self, payload_offset: int) -> bytes:
        name = self.name.encode("utf-8")
        parts = [bytes([len(name)]), name, bytes([CODE_OF_DTYPE[self.dtype], self.mode, self.initial_activity, self.prediction])]
        if self.prediction != PREDICT_NONE:
            parts.append(leb128(self.history))
        if self.prediction == PREDICT_FACTORS:
            parts.append(bytes([self.rank, self.factor_shift]))
        parts.append(bytes([len(self.shape)]))
        parts.extend(leb128(d) for d in self.shape)
        if self.mode == MODE_LOSSLESS:
            parts.append(leb128(zigzag(self.offset)) + leb128(self.peak))
            if self.peak:
                parts.append(bytes([self.peak_axis]))
        if self.mode in QUANTIZED_MODES:
            parts.append(bytes([self.axis, self.quantizer]))
            parts.extend(struct.pack("<Hb", s.mantissa, s.exponent) for s in self.steps)
        if self.mode in DELTA_MODES:
            parts.append(struct.pack("<I", self.base_crc32))
        parts.append(leb128(payload_offset) + leb128(len(self.payload)) + struct.pack("<I", self.crc32))
        return b"".join(parts)


def leb128(value: int) -> bytes:
    """An unsigned number (below 2**32) as LEB128: 7 bits a byte, low first,
    the top bit set on every byte but the last (FORMAT 2)."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise FormatError(f"{value} does not fit a directory number")
    out = bytearray()
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value: int) -> int:
    """A signed 32-bit number as an unsigned one, small magnitudes small
    (0, -1, 1, -2 -> 0, 1, 2, 3; FORMAT 2)."""
    return 2 * value if value >= 0 else -2 * value - 1


def check_name(name: str) -> bytes:
    if not isinstance(name, str):
        raise FormatError(f"tensor names must be str, got {type(name).__name__}")
    try:
        encoded = name.encode("utf-8", errors="strict")
    except UnicodeEncodeError as error:
        raise FormatError(f"tensor name {name[:40]!r} is not valid UTF-8 ({error.reason})") from None
    if not 1 <= len(encoded) <= MAX_NAME_LEN:
        raise FormatError(f"tensor name {name[:40]!r} must be 1..{MAX_NAME_LEN} bytes of UTF-8")
    return encoded


def check_shape(name: str, shape: tuple[int, ...]) -> None:
    if len(shape) > MAX_NDIM:
        raise FormatError(f"tensor {name!r} has {len(shape)} dimensions; the format allows {MAX_NDIM}")
    count = 1
    for d in shape:
        if d > MAX_ELEMENTS:
            raise FormatError(f"tensor {name!r}: dimension {d} exceeds {MAX_ELEMENTS}")
        count *= d
    if count > MAX_ELEMENTS:
        raise FormatError(f"tensor {name!r} has {count} elements; the format allows {MAX_ELEMENTS}")


def write_stream(entries: list[TensorEntry]) -> bytes:
    """Header + directory + payloads, payloads in directory order."""
    if len(entries) > MAX_TENSORS:
        raise FormatError(f"{len(entries)} tensors; the format allows {MAX_TENSORS}")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise FormatError("tensor names must be unique")
    directory, offset = [], 0
    for entry in entries:
        directory.append(entry.directory_bytes(offset))
        offset += len(entry.payload)
    directory_bytes = b"".join(directory)
    if len(directory_bytes) > MAX_DIRECTORY_SIZE:
        raise FormatError("tensor directory exceeds 16 MiB")
    if offset > 0xFFFFFFFF:
        raise FormatError("payloads exceed 4 GiB")
    head = MAGIC + struct.pack("<BBHII", FORMAT_VERSION, 0, len(entries), len(directory_bytes), offset)
    crc = zlib.crc32(directory_bytes, zlib.crc32(head))
    return b"".join([head, struct.pack("<I", crc), directory_bytes] + [e.payload for e in entries])
