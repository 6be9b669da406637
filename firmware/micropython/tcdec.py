# SPDX-License-Identifier: Apache-2.0
"""tcdec: decoder for tinycabac weight streams (format 13), for MicroPython and CPython.

No dependencies.  The same file runs on MicroPython >= 1.22 and on CPython
>= 3.8, with a plain-Python arithmetic decoder.  On MicroPython, put
tcdec_viper.py (or its .mpy) beside it for the same decoder compiled with
@micropython.viper, about 40 times faster; tcdec uses it where the port can
compile it and compiles it right (see viper_trusted), with the same results
bit for bit.
docs/FORMAT.md is the specification; "FORMAT 5.1" etc. point into it.

Whole stream at once::

    import tcdec
    with open("model.tcb", "rb") as f:
        tensors = tcdec.decode(f)          # {name: (shape, array.array)}
    shape, weights = tensors["dense/weights"]

One tensor at a time, or a tensor in pieces, with bounded memory::

    d = tcdec.Decoder(open("model.tcb", "rb"))
    for info in d.tensors():
        print(info.name, info.dtype, info.shape)
    w = d.read("dense/weights")            # array.array('b', ...)
    d.read_into("dense/weights", buf)      # into a caller-owned buffer
    for count in d.chunks("big", chunk):   # `count` elements now in `chunk`
        consume(chunk, count)

A stream of a .tflite file gives the file back, for a TFLite Micro port::

    model = tcdec.rebuild_tflite(open("model.tcb", "rb"))   # bytearray

Only the header, the directory and about 3 KB of state stay in RAM; the
payloads are read through a small window (`chunk_size`).  A tensor coded
with prediction, or with channel peaks, needs info.work_size more bytes
while it is decoded: with info.prediction 'difference' or 'scale' (FORMAT
5.7) H = info.history, for a ring of its last H levels or of its H column
activities; with 'factors' (FORMAT 5.8) (H + 1) * info.rank, for the int8
factors of its H columns and of the row being decoded (H <= 65535, rank <=
64); a lossless tensor with info.peak != 0 (FORMAT 5.9) 2 bytes more per
channel along info.peak_axis, for the place and sign of each channel's
peak (tinycabac's encoder asks for at most 16384 bytes in all unless told
otherwise).  read(), read_into() and chunks() share one such buffer, kept
by the Decoder and grown only for a tensor that needs more than any before;
a reader from open() has its own.  Quantized tensors use the uniform or
the dependent quantizer (info.quantizer 'uniform' or 'dependent', FORMAT
6.2); the dependent one carries an 8-state machine from element to
element, and from piece to piece.  Every failure is a `DecodeError` (a
ValueError) subclass with a clear message; decoded data is checked against
the stream's CRC-32 before a tensor is reported complete.
"""

import array
import sys
from collections import namedtuple
from struct import pack_into
from struct import unpack_from as _unpack_from

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


try:
    from binascii import crc32 as _crc32
except ImportError:  # a MicroPython port built without binascii.crc32
    _crc32 = None

__version__ = "0.1.0"
_MICROPYTHON = sys.implementation.name == "micropython"

# .mpy native architecture codes (sys.implementation._mpy >> 10) of Cortex-M:
# armv6m, armv7m, armv7em, armv7emsp, armv7emdp; and of Xtensa: xtensa
# (ESP8266), xtensawin (ESP32, ESP32-S2/S3).
_CORTEX_M_ARCHS = (4, 5, 6, 7, 8)
_XTENSA_ARCHS = (9, 10)


def viper_trusted(arch, version, compiled_on_board):
    """Whether viper code compiled for `arch` may run.  MicroPython's Thumb
    emitter before 1.27 encoded a conditional branch jumping back more than
    256 bytes wrongly on armv7-M (micropython PR 17946): tcdec_viper.run's
    main loop became a jump into nowhere.  Its Xtensa emitter before 1.26
    had no long form of a conditional branch: one spanning more than 2 KB,
    as tcdec_viper.run's do, was cut to 12 bits (mpy-cross printed "ERROR:
    xtensa bccz out of range" and wrote the .mpy anyway).  A .mpy from
    build_mpy.py was compiled by a fixed mpy-cross and is safe on any
    firmware that loads it; tcdec_viper.py compiled by the board, or frozen
    into its firmware, carries that firmware's emitter."""
    if not compiled_on_board:
        return True
    if arch in _CORTEX_M_ARCHS:
        return tuple(version[:2]) >= (1, 27)
    if arch in _XTENSA_ARCHS:
        return tuple(version[:2]) >= (1, 26)
    return True


def _load_viper_core():
    """tcdec_viper where this port compiles it, and compiles it right; else
    None, and the plain path (same results) does the work."""
    if not _MICROPYTHON:
        return None
    # beside this module: top level, or in the same package
    name = __name__.rpartition(".")[0] + ".tcdec_viper" if "." in __name__ else "tcdec_viper"
    try:
        tcdec_viper = __import__(name)
        for part in name.split(".")[1:]:
            tcdec_viper = getattr(tcdec_viper, part)
    except (ImportError, AttributeError, SyntaxError, NotImplementedError, ValueError):
        # not installed beside tcdec; no native emitter ("invalid micropython
        # decorator"); armv6m before 1.26 ("native method too big"); a .mpy
        # for another architecture ("incompatible .mpy arch")
        return None
    compiled_on_board = not getattr(tcdec_viper, "__file__", "").endswith(".mpy")
    if not viper_trusted(getattr(sys.implementation, "_mpy", 0) >> 10, sys.implementation.version, compiled_on_board):
        return None
    return tcdec_viper


_VIPER = _load_viper_core()
# True when Decoder objects decode with the viper core by default.
ACCELERATED = _VIPER is not None

FORMAT_VERSION = 13
MAGIC = b"TCAB"
HEADER_SIZE = 20
MAX_TENSORS = 4096
_HASH_MASK = const(0x3FFFFFFF)  # a small int on every port (no long-int arithmetic)
MAX_NDIM = 8
MAX_ELEMENTS = 0x7FFFFFFF
MAX_DIRECTORY_SIZE = 0x1000000
MAX_STEP_COUNT = 65536
MAX_RANK = 64  # factor prediction (FORMAT 5.8): factors per row
MAX_FACTOR_SHIFT = 24
MAX_HISTORY = 65535  # prediction distance H (FORMAT 3.4)
MAX_PEAK = 0x80000000  # channel peaks (FORMAT 5.9): magnitude P
MAX_PEAK_CHANNELS = 65535
MAX_PEAK_CHANNEL_SIZE = 32768
AXIS_NONE = 0xFF
# mode code -> name.  The delta modes are updates, decoded in place over the
# base tensor the receiver already holds (FORMAT 6.3).
MODES = ("lossless", "quantized", "delta-lossless", "delta-quantized")
# prediction code -> name (FORMAT 5.7, 5.8): how a tensor uses its
# working memory.  'difference' codes the level minus the level H elements
# back; 'scale' codes the level itself with the Rice parameter steered by
# the activity of its column (the elements H apart); 'factors' codes the
# level minus the product of int8 factors that the payload carries, one
# row of `rank` per column (B) and per row of H elements (A).
PREDICTIONS = ("none", "difference", "scale", "factors")
_FACTORS = const(3)
# quantizer code -> name (FORMAT 6.2): how quantized tensors map a level to
# its reconstruction index q.  'uniform': q = level; 'dependent': a state
# driven by the levels' parities picks even or odd multiples of the step.
QUANTIZERS = ("uniform", "dependent")

# dtype code -> (name, array typecode, bytes per decoded element).  Float
# tensors (float32 and float16 sources) decode to their float32 reconstruction.
DTYPES = {
    1: ("int8", "b", 1),
    2: ("uint8", "B", 1),
    3: ("int16", "h", 2),
    4: ("int32", "i", 4),
    5: ("float32", "f", 4),
    6: ("float16", "f", 4),
}
# delta-lossless: value bits ^ bias = value - dtype minimum, at most umax
_DELTA_DOMAINS = {"b": (0x80, 0xFF), "B": (0, 0xFF), "h": (0x8000, 0xFFFF), "i": (0x80000000, 0xFFFFFFFF)}
_INTEGER_RANGES = {"b": (-128, 127), "B": (0, 255), "h": (-32768, 32767), "i": (-0x80000000, 0x7FFFFFFF)}


# ---------------------------------------------------------------------------
# Errors (FORMAT 7).  `status` is the matching tc_status of the C decoder.


class DecodeError(ValueError):
    """Base class: the input is not a valid tinycabac stream."""

    status = 0


class NotAStreamError(DecodeError):
    status = -2


class VersionError(DecodeError):
    status = -3


class TruncatedError(DecodeError):
    status = -4


class HeaderCRCError(DecodeError):
    status = -5


class InvalidFieldError(DecodeError):
    """A reserved or inconsistent field value."""

    status = -6


class LimitError(DecodeError):
    status = -7


class CorruptPayloadError(DecodeError):
    status = -8


class DataCRCError(DecodeError):
    """The decoded tensor does not match the CRC-32 stored for it."""

    status = -9


class BaseMismatchError(DecodeError):
    """An update (delta) tensor met a base other than the one it was made for."""

    status = -12


class StreamOrderError(DecodeError):
    """A non-seekable stream was asked for data that already went past."""

    status = -1


# ---------------------------------------------------------------------------
# Decoder state shared by the viper and the plain path: one array('I') so
# that the viper function gets it as a single ptr32 argument.

_S_MASK = const(0)  # 0xFFFFFFFF: viper words may be 64-bit, the coder is 32-bit
_S_RANGE = const(1)
_S_CODE = const(2)
_S_POS = const(3)  # next input byte, index into the source buffer
_S_LIMIT = const(4)  # end of readable input in the source buffer
_S_GUARDED = const(5)  # 1 while the payload continues beyond LIMIT
_S_LEFT = const(6)  # values still to decode
_S_OUT_POS = const(7)  # next output byte
_S_OUT_END = const(8)
_S_ESIZE = const(9)  # bytes per output element
_S_ACTIVITY = const(10)
_S_CRC = const(11)  # running CRC-32 register of the output bytes
_S_QUANTIZED = const(12)  # 0: integer modes; else 1 + quantizer code (1 uniform, 2 dependent)
_S_OFFSET = const(13)  # lossless: offset as a 32-bit pattern
_S_POS_MIN = const(14)  # lossless: legal magnitudes of positive levels
_S_POS_MAX = const(15)
_S_NEG_MIN = const(16)  # ... and of negative levels (dtype range - offset)
_S_NEG_MAX = const(17)
_S_STEP_AT = const(18)  # quantized: index of the current step in the directory
_S_STEP_FIRST = const(19)
_S_STEP_STOP = const(20)
_S_INNER = const(21)  # elements per step run (FORMAT 3.3)
_S_INNER_LEFT = const(22)
_S_DELTA = const(23)  # delta-lossless: value = base element + level
_S_BASE_CRC = const(24)  # running CRC-32 register of the base bytes
_S_BIAS = const(25)  # delta-lossless: value bits ^ BIAS = value - dtype minimum
_S_UMAX = const(26)  # ... and dtype maximum - dtype minimum
_S_PREVIOUS_SIGN = const(27)  # 0 none yet, 1 negative, 2 positive (FORMAT 5.5)
_S_HISTORY = const(28)  # prediction distance (row length) H, 0: none (FORMAT 5.7, 5.8)
_S_HISTORY_POS = const(29)  # ring slot (column) of the next element: element index mod H
_S_SCALE = const(30)  # 1: scale prediction, 0: another kind or none
_S_QUANTIZER_STATE = const(31)  # dependent quantizer: state 0..7 of the next element (FORMAT 6.2)
_S_RANK = const(32)  # factor prediction: factors per row R, 0: another kind or none (FORMAT 5.8)
_S_FACTOR_SHIFT = const(33)  # factor prediction: the prediction's shift s
_S_FACTOR_ACTIVITY = const(34)  # the factor values' own activity (FORMAT 5.4)
_S_FACTORS_LEFT = const(35)  # factor values due before the next element
# Channel peaks (FORMAT 5.9).  The elements run in blocks of `inner` (one
# channel's, C order); the peak entries go to the working memory after the
# H ring bytes, 2 bytes a channel: place | negative << 15.  The core stops
# its usual work only when `left` reaches _S_PEAK_NEXT: there it reads the
# entries (one per pass, with the input check of a value), then emits each
# peak and looks ahead, block by block, for the next one.
_S_PEAK = const(36)  # the peaks' magnitude P, 0: none
_S_PEAK_NEXT = const(37)  # `left` at the next peak element (or entry); 0: none, never met
_S_PEAK_ENTRIES = const(38)  # peak entries still to read from the payload
_S_PEAKS_LEFT = const(39)  # peaks that the look-ahead has still to find
_S_PEAK_NEGATIVE = const(40)  # the sign of the next peak
_S_PEAK_CHANNELS = const(41)  # C
_S_PEAK_INNER = const(42)  # elements per block: the product of the dims after the peak axis
_S_PEAK_CHANNEL_SIZE = const(43)  # elements per channel n
_S_PEAK_BITS = const(44)  # floor(log2 n): the places' short code length
_S_PEAK_CHANNEL = const(45)  # look-ahead: the channel of the next block to look at
_S_PEAK_BASE = const(46)  # ... the block's first place in its channel
_S_PEAK_BLOCK_LEFT = const(47)  # ... and `left` at its first element
_S_PREFIX = const(48)  # 16 sets x 4 contexts x (fast, slow)
_S_SUFFIX = const(176)  # 15 sets x 2 x 3 contexts x (fast, slow)
_S_SIGN = const(356)  # 12 contexts x (fast, slow)
_S_CONTEXT_END = const(380)
_S_CRC_TABLE = const(380)  # 256 words, built once per state array
_S_SIZE = const(636)

# Return codes of the core.  Negative: corrupt payload.
_DONE = const(0)
_NEED_INPUT = const(1)
_NEED_OUTPUT = const(2)
_ERR_ESCAPE = const(-1)
_ERR_MAGNITUDE = const(-2)
_ERR_OVERRUN = const(-3)
_ERR_RANGE = const(-4)
_ERR_FLOAT = const(-5)
_ERR_BASE = const(-6)
_ERR_PREDICTED = const(-7)
_ERR_FACTOR = const(-8)
_ERR_RESIDUAL = const(-9)
_CORE_ERRORS = {
    -1: "escape code longer than 31 bits",
    -2: "coded magnitude above 2**31",
    -3: "payload ends before the last value",
    -4: "value outside the range of the dtype",
    -5: "quantized value overflows float32",
    -7: "predicted level magnitude above 2**31",
    -8: "factor value outside -128..127",
    -9: "coded value beyond 2**30 with factor prediction",
}
_DEPENDENT = const(2)  # _S_QUANTIZED of the dependent quantizer
# Parities of the dependent quantizer's states 0..7 (FORMAT 6.2): bit s is
# the XOR of the three bits of s, so the next state, ((2 * s) & 7) |
# (level & 1) ^ parity(s), takes shifts and an XOR, no table to index.
_STATE_PARITY = const(0x96)
# FORMAT 5.8: the factor values' activity at the start of a tensor, about
# the magnitude class of factors that span the int8 range.
_FACTOR_ACTIVITY = const(48)
# The ring argument of the core for tensors without prediction, or without
# elements (never read).
_NO_HISTORY = bytearray(0)

# FORMAT 5.2: where context number i (5.3: prefix, suffix, sign, in C
# order) starts, both estimates INIT[i] * 128; the 166 entries of INIT.
_CONTEXT_INIT = (
    b"\xc0\xab\x80\x80\xcd\xc0\x80\x80\xd1\xcd\x80\x80\x94\x9d\x87\x2d"
    b"\x99\x96\x80\x46\x96\x97\x91\x7d\xaa\xbb\xaa\x6a\x9f\x88\x70\x76"
    b"\x89\x90\x99\xfe\xb4\xfe\x80\x80\xfe\x80\x80\x80\x80\x80\x80\x80"
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
    b"\x84\x80\x80\x9d\x80\x80\x92\x61\x96\x9f\x8e\x8f\x96\x74\x95\xa9"
    b"\x95\x9d\x97\x7e\x91\x94\x8e\x87\x8f\x86\x8b\x89\x92\x78\x93\x7e"
    b"\x8e\x90\x92\x63\x57\x84\x4e\x80\x80\x80\x80\x80\x80\x80\x80\x80"
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\xca\x8e\xb5\x80\x81"
    b"\x82\x84\x81\x81\x84\x93"
)

# FORMAT 5.6: one value never needs more input than this.
_MAX_VALUE_INPUT = const(64)
_KEEP = const(64)  # window bytes reserved for the unread rest of a refill
# Every value costs at least one context-coded bin, which narrows the range
# by a factor of at most 32625/32768 (FORMAT 5.2): a payload of n bytes holds
# fewer than 1268 * (n - 3) values.
_MAX_ELEMENTS_PER_BYTE = const(1300)


# ---------------------------------------------------------------------------
# The core: decode values from src[pos:limit] into dst[out_pos:out_end],
# with `ring` the tensor's working memory for its prediction: H bytes of
# history (FORMAT 5.7), or B and the current row's A (FORMAT 5.8).
# Everything per bin sits in one function with the range coder inlined,
# because a call from viper code costs more than decoding a whole value.
# Both versions (this plain one, and tcdec_viper's) stop with _NEED_INPUT
# while the payload continues and fewer than 64 bytes are in hand, and with
# _NEED_OUTPUT when dst is full.


def _prepare_plain(st):
    for i in range(_S_CONTEXT_END - _S_PREFIX):
        st[_S_PREFIX + i] = _CONTEXT_INIT[i >> 1] << 7  # FORMAT 5.2: fast and slow alike
    if st[_S_CRC_TABLE + 1]:
        return
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        st[_S_CRC_TABLE + n] = c


def _move_plain(buf, to, start, count):
    buf[to : to + count] = bytes(buf[start : start + count])


_PACK_FORMATS = (None, "<B", "<H", None, "<I")
_UNPACK_FORMATS = (None, "<B", "<H", None, "<I")


def _run_plain(st, aux, src, dst, ring):
    """The same algorithm as tcdec_viper.run, in plain Python (see there), plus
    the delta-quantized mode (FORMAT 6.3), whose float32 addition needs
    64-bit intermediates that viper on 32-bit ports does not have."""
    rng = st[_S_RANGE]
    code = st[_S_CODE]
    pos = st[_S_POS]
    limit = st[_S_LIMIT]
    guarded = st[_S_GUARDED]
    left = st[_S_LEFT]
    opos = st[_S_OUT_POS]
    oend = st[_S_OUT_END]
    esize = st[_S_ESIZE]
    activity = st[_S_ACTIVITY]
    crc = st[_S_CRC]
    bcrc = st[_S_BASE_CRC]
    quantized = st[_S_QUANTIZED]
    delta = st[_S_DELTA]
    previous = st[_S_PREVIOUS_SIGN]
    step_at = st[_S_STEP_AT]
    inner_left = st[_S_INNER_LEFT]
    history = st[_S_HISTORY]
    slot = st[_S_HISTORY_POS]
    scale = st[_S_SCALE]
    rank = st[_S_RANK]
    factor_shift = st[_S_FACTOR_SHIFT]
    factor_activity = st[_S_FACTOR_ACTIVITY]
    factors_left = st[_S_FACTORS_LEFT]
    qstate = st[_S_QUANTIZER_STATE]
    peak_next = st[_S_PEAK_NEXT]
    pack_format = _PACK_FORMATS[esize]
    out_mask = (1 << (8 * esize)) - 1
    status = _DONE
    overrun = False

    def renormalise():
        nonlocal rng, code, pos, overrun
        while rng < 0x1000000:
            rng <<= 8
            code = (code << 8) & 0xFFFFFFFF
            if pos < limit:
                code |= src[pos]
                pos += 1
            else:
                overrun = True

    def context_bin(c):
        nonlocal rng, code
        fast = st[c]
        slow = st[c + 1]
        bound = (rng >> 15) * ((fast + slow) >> 1)
        if code < bound:
            rng = bound
            st[c] = fast + ((32768 - fast) >> 5)
            st[c + 1] = slow + ((32768 - slow) >> 8)
            bit = 0
        else:
            code -= bound
            rng -= bound
            st[c] = fast - (fast >> 5)
            st[c + 1] = slow - (slow >> 8)
            bit = 1
        renormalise()
        return bit

    def bypass_bin():
        nonlocal rng, code
        rng >>= 1
        bit = 0
        if code >= rng:
            code -= rng
            bit = 1
        renormalise()
        return bit

    while left > 0:
        if oend - opos < esize:
            status = _NEED_OUTPUT
            break
        if left == peak_next:  # FORMAT 5.9, see tcdec_viper.run: a peak entry, or a peak
            entries = st[_S_PEAK_ENTRIES]
            if entries:
                if guarded and limit - pos < _MAX_VALUE_INPUT:
                    status = _NEED_INPUT
                    break
                size = st[_S_PEAK_CHANNEL_SIZE]
                bits = st[_S_PEAK_BITS]
                place = 0
                for _ in range(bits):
                    place = (place << 1) | bypass_bin()
                short = (2 << bits) - size
                if place >= short:  # truncated binary: one more bin
                    place = 2 * place + bypass_bin() - short
                place |= bypass_bin() << 15  # the sign
                at = history + 2 * (st[_S_PEAK_CHANNELS] - entries)
                ring[at] = place & 0xFF
                ring[at + 1] = place >> 8
                st[_S_PEAK_ENTRIES] = entries - 1
                if overrun:
                    status = _ERR_OVERRUN
                    break
                if entries > 1:
                    continue
                peak_next = _next_peak(st, ring, history)
                continue
            m = st[_S_PEAK]
            if st[_S_PEAK_NEGATIVE]:
                if m < st[_S_NEG_MIN] or m > st[_S_NEG_MAX]:
                    status = _ERR_RANGE
                    break
                value = (st[_S_OFFSET] - m) & 0xFFFFFFFF
            else:
                if m < st[_S_POS_MIN] or m > st[_S_POS_MAX]:
                    status = _ERR_RANGE
                    break
                value = (st[_S_OFFSET] + m) & 0xFFFFFFFF
            if history:  # scale prediction: the column stays, the ring moves on
                slot += 1
                if slot == history:
                    slot = 0
            peak_next = _next_peak(st, ring, history)
            pack_into(pack_format, dst, opos, value & out_mask)
            for _ in range(esize):
                crc = (crc >> 8) ^ st[_S_CRC_TABLE + ((crc ^ value) & 0xFF)]
                value >>= 8
            opos += esize
            left -= 1
            continue
        if guarded and limit - pos < _MAX_VALUE_INPUT:
            status = _NEED_INPUT
            break
        act = activity
        if factors_left:  # FORMAT 5.8: a factor value, with its own activity
            act = factor_activity
        elif scale:  # FORMAT 5.4, 5.7: the column's activity steers k
            act = (activity + 3 * ring[slot]) >> 2
        k = min(act >> 3, 31)
        pset = act >> 1 if k == 0 else 3 + min(k, 12)
        ctx = _S_PREFIX + pset * 8
        p = 0
        while p < 16 and context_bin(ctx + 2 * min(p, 3)):
            p += 1
        if p == 16:
            n = 0
            while n <= 31 and bypass_bin():
                n += 1
            if n > 31:
                status = _ERR_ESCAPE
                break
            v = 1
            for _ in range(n):
                v = (v << 1) | bypass_bin()
            v -= 1
            if v > 0x80000000:
                status = _ERR_MAGNITUDE
                break
            p += v
        m = p
        if k:
            sctx = _S_SUFFIX + (min(k, 15) - 1) * 12 + (6 if p else 0)
            s = context_bin(sctx)
            if k >= 2:
                s = (s << 1) | context_bin(sctx + 2 + 2 * s)
            for _ in range(k - 2):
                s = (s << 1) | bypass_bin()
            if p > (0x80000000 >> k):
                status = _ERR_MAGNITUDE
                break
            m = (p << k) | s
        if m > 0x80000000:
            status = _ERR_MAGNITUDE
            break
        magnitude_class = _bit_length(m)
        neg = 0
        if m:
            neg = context_bin(_S_SIGN + 2 * (previous * 4 + min(magnitude_class, 4) - 1))
            previous = 1 if neg else 2
        if overrun:
            status = _ERR_OVERRUN
            break
        if factors_left:  # FORMAT 5.8, see tcdec_viper.run: an int8 of B or of the row's A
            factor_activity = factor_activity - (factor_activity >> 3) + magnitude_class
            if m > 127 + neg:
                status = _ERR_FACTOR
                break
            ring[(history + 1) * rank - factors_left] = (-m if neg else m) & 0xFF
            factors_left -= 1
            continue
        activity = activity - (activity >> 3) + magnitude_class
        if history:  # FORMAT 5.7, 5.8, see tcdec_viper.run
            here = slot
            slot += 1
            if slot == history:
                slot = 0
                factors_left = rank  # factors: the next row's A comes first
            if rank:
                if m > 0x40000000:
                    status = _ERR_RESIDUAL
                    break
                level = (-m if neg else m) + _factor_prediction(ring, history * rank, here * rank, rank, factor_shift)
                neg = 1 if level < 0 else 0
                m = -level if neg else level
            elif scale:  # the column's activity moves on (mod 256)
                ring[here] = (ring[here] - (ring[here] >> 3) + magnitude_class) & 0xFF
            else:  # difference
                predicted = ring[here]
                level = (-m if neg else m) + (predicted - 256 if predicted >= 128 else predicted)
                if not -0x80000000 <= level <= 0x80000000:
                    status = _ERR_PREDICTED
                    break
                ring[here] = min(max(level, -128), 127) & 0xFF
                neg = 1 if level < 0 else 0
                m = -level if neg else level
        if delta:
            base = _unpack_from(_UNPACK_FORMATS[esize], dst, opos)[0]
            for _ in range(esize):
                bcrc = (bcrc >> 8) ^ st[_S_CRC_TABLE + ((bcrc ^ base) & 0xFF)]
                base >>= 8
            base = _unpack_from(_UNPACK_FORMATS[esize], dst, opos)[0]
        if quantized:
            q = m  # |q|, the reconstruction index (FORMAT 6.2), sign `neg`
            if quantized == _DEPENDENT:
                if qstate & 1 and m:
                    q = 2 * m - 1  # odd states: odd multiples (and 0)
                else:
                    q = 2 * m
                qstate = ((qstate << 1) & 7) | ((m & 1) ^ ((_STATE_PARITY >> qstate) & 1))
            at = step_at
            value = _float32_from_scaled(q * (aux[at] | (aux[at + 1] << 8)), aux[at + 2] - (256 if aux[at + 2] >= 128 else 0))
            if value < 0:
                status = _ERR_FLOAT
                break
            if neg:
                value |= 0x80000000
            if delta:
                if (base >> 23) & 0xFF == 0xFF:
                    status = _ERR_BASE  # NaN or infinity: never a valid base
                    break
                value = _float32_add(base, value)
                if value < 0:
                    status = _ERR_FLOAT
                    break
            inner_left -= 1
            if inner_left == 0:
                inner_left = st[_S_INNER]
                step_at += 3
                if step_at == st[_S_STEP_STOP]:
                    step_at = st[_S_STEP_FIRST]
        elif delta:
            biased = base ^ st[_S_BIAS]
            biased = biased - m if neg else biased + m
            if not 0 <= biased <= st[_S_UMAX]:
                status = _ERR_RANGE
                break
            value = biased ^ st[_S_BIAS]
        elif neg:
            if m < st[_S_NEG_MIN] or m > st[_S_NEG_MAX]:
                status = _ERR_RANGE
                break
            value = (st[_S_OFFSET] - m) & 0xFFFFFFFF
        else:
            if m < st[_S_POS_MIN] or m > st[_S_POS_MAX]:
                status = _ERR_RANGE
                break
            value = (st[_S_OFFSET] + m) & 0xFFFFFFFF
        pack_into(pack_format, dst, opos, value & out_mask)
        for _ in range(esize):
            crc = (crc >> 8) ^ st[_S_CRC_TABLE + ((crc ^ value) & 0xFF)]
            value >>= 8
        opos += esize
        left -= 1
    st[_S_RANGE] = rng
    st[_S_CODE] = code
    st[_S_POS] = pos
    st[_S_LEFT] = left
    st[_S_OUT_POS] = opos
    st[_S_ACTIVITY] = activity
    st[_S_CRC] = crc
    st[_S_BASE_CRC] = bcrc
    st[_S_PREVIOUS_SIGN] = previous
    st[_S_STEP_AT] = step_at
    st[_S_INNER_LEFT] = inner_left
    st[_S_HISTORY_POS] = slot
    st[_S_FACTOR_ACTIVITY] = factor_activity
    st[_S_FACTORS_LEFT] = factors_left
    st[_S_QUANTIZER_STATE] = qstate
    st[_S_PEAK_NEXT] = peak_next
    return status


def _next_peak(st, ring, history):
    """FORMAT 5.9: `left` at the next peak element, 0 if none is left (the
    same look-ahead as tcdec_viper.run's).  Blocks of `inner` elements, each
    of one channel, are looked at in element order from where the last look
    stopped; a block holds its channel's peak when the peak's place lies in
    it, and every channel's peak lies in one block."""
    found = st[_S_PEAKS_LEFT]
    if not found:
        return 0
    channels = st[_S_PEAK_CHANNELS]
    inner = st[_S_PEAK_INNER]
    channel = st[_S_PEAK_CHANNEL]
    base = st[_S_PEAK_BASE]
    block_left = st[_S_PEAK_BLOCK_LEFT]
    peak_next = 0
    while not peak_next:
        at = history + 2 * channel
        high = ring[at + 1]
        place = (ring[at] | ((high & 0x7F) << 8)) - base
        if 0 <= place < inner:
            peak_next = block_left - place
            st[_S_PEAK_NEGATIVE] = high >> 7
        block_left -= inner
        channel += 1
        if channel == channels:
            channel = 0
            base += inner
    st[_S_PEAKS_LEFT] = found - 1
    st[_S_PEAK_CHANNEL] = channel
    st[_S_PEAK_BASE] = base
    st[_S_PEAK_BLOCK_LEFT] = block_left  # 0 past the last block
    return peak_next


def _factor_prediction(ring, row_at, column_at, rank, shift):
    """FORMAT 5.8: the row's A (at row_at) dot the column's B (at column_at),
    int8s as two's complement bytes, divided by 2**shift and rounded to
    nearest, halves up (Python's >> is the floor the format asks for)."""
    total = 0
    for r in range(rank):
        a = ring[row_at + r]
        b = ring[column_at + r]
        total += (a - 256 if a >= 128 else a) * (b - 256 if b >= 128 else b)
    return (total + ((1 << shift) >> 1)) >> shift


def _bit_length(x):
    n = 0
    while x:
        x >>= 1
        n += 1
    return n


def _round_half_even(x, shift):
    if shift == 0:
        return x
    kept = x >> shift
    rest = x & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if rest > half or (rest == half and kept & 1):
        kept += 1
    return kept


def _float32_from_scaled(value, exponent):
    """Bits of the float32 nearest to value * 2**exponent (FORMAT 6.2) for
    an integer 0 <= value < 2**63, without sign; -1 if it overflows."""
    if value == 0:
        return 0
    length = _bit_length(value)
    e = length - 1 + exponent
    if e < -126:  # subnormal: units of 2**-149
        scale = exponent + 149
        return value << scale if scale >= 0 else _round_half_even(value, -scale)
    if length > 24:
        significand = _round_half_even(value, length - 24)
    else:
        significand = value << (24 - length)
    if significand == 0x1000000:
        significand = 0x800000
        e += 1
    if e > 127:
        return -1
    return ((e + 127) << 23) | (significand & 0x7FFFFF)


def _float32_split(bits):
    """A finite float32 as (integer significand, exponent of its last bit)."""
    biased = (bits >> 23) & 0xFF
    significand = (bits & 0x7FFFFF) | (0x800000 if biased else 0)
    return significand, (biased if biased else 1) - 150


def _float32_add(a, b):
    """IEEE-754 binary32 a + b, round half to even, of finite operands
    (FORMAT 6.3), as the C decoder computes it: the smaller operand is
    aligned 32 bits below the larger one's last bit, keeping a sticky bit,
    so every intermediate stays below 2**58.  -1 on overflow."""
    if (a & 0x7FFFFFFF) < (b & 0x7FFFFFFF):
        a, b = b, a
    if a & 0x7FFFFFFF == 0:
        return a & b  # -0 only if both are -0
    sa, ea = _float32_split(a)
    sb, eb = _float32_split(b)
    sa <<= 32
    shift = ea - eb - 32
    if shift <= 0:
        sb <<= -shift
    elif shift < 64:
        sb = (sb >> shift) | (1 if sb & ((1 << shift) - 1) else 0)
    else:
        sb = 1 if sb else 0
    total = sa - sb if (a ^ b) & 0x80000000 else sa + sb
    if total == 0:
        return 0  # exact cancellation is +0
    bits = _float32_from_scaled(total, ea - 32)
    return bits if bits < 0 else bits | (a & 0x80000000)


# ---------------------------------------------------------------------------
# CRC-32 of the header and directory (FORMAT 2).


def _crc32_update(data, crc=0):
    if _crc32 is not None:
        return _crc32(data, crc)
    # Iterating a view of wider elements (a base held in an array('f'))
    # gives numbers, not bytes: take it a slice at a time as bytes, which
    # copies 64 elements at most.
    view = memoryview(data)
    crc ^= 0xFFFFFFFF
    for start in range(0, len(view), 64):
        for byte in bytes(view[start : start + 64]):
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _u16(buf, at):
    return buf[at] | (buf[at + 1] << 8)


def _u32(buf, at):
    return buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)


def _new_array(typecode, count, itemsize):
    """A zero-filled array of `count` elements."""
    if _MICROPYTHON:
        return array.array(typecode, bytearray(count * itemsize))  # copied as raw bytes
    result = array.array(typecode)
    result.frombytes(bytes(count * itemsize))
    return result


def _new_state():
    # array('I', range(n)) is sized once from len(range), without the
    # temporary zero buffer _new_array needs on MicroPython.  Every field is
    # set before use; a zero in the CRC table asks _prepare_* to build it.
    state = array.array("I", range(_S_SIZE))
    state[_S_MASK] = 0xFFFFFFFF
    state[_S_CRC_TABLE + 1] = 0
    return state


# ---------------------------------------------------------------------------
# Input sources: where payload bytes come from.  Both expose `buf` (what the
# core reads), `base` (stream offset of buf[0]) and `end` (stream offset just
# past the last valid byte in buf).


class _BytesSource:
    """The whole stream is in memory: the core reads it in place."""

    in_place = True  # header and directory are read in place, too

    def __init__(self, data):
        self.buf = data
        self.base = 0
        self.end = len(data)
        self.size = len(data)

    def read_head(self, size):
        return self.buf  # header and directory are read in place, too

    def locate(self, position):
        return position

    def refill(self, index):
        return -1  # everything is here already: the stream ends early


class _FileSource:
    """A window over a file-like stream: `chunk_size` bytes are read at a
    time into buf[_KEEP:], the unread rest of the previous window (fewer
    than 64 bytes) is moved just before them, so the core sees one run.

    `size` is the stream's length from where it stood when opened, found by
    seeking to its end, or None for a stream that cannot seek there (a
    socket, a UART): then check_end() checks the length once the tensors
    have been read.  The stream's position is always that start + `end`."""

    in_place = False

    def __init__(self, stream, chunk_size, move):
        self._stream = stream
        self._move = move
        self.buf = bytearray(_KEEP + chunk_size)
        self._tail = memoryview(self.buf)[_KEEP:]
        self._readinto = getattr(stream, "readinto", None)
        try:
            self._origin = stream.tell()
        except (AttributeError, OSError, ValueError):
            self._origin = None
        self.base = 0 - _KEEP
        self._start = _KEEP  # buf[_start:] holds valid bytes up to `end`
        self.end = 0
        self.size = None if self._origin is None else self._measure()

    def _measure(self):
        """Bytes from the start position to the end of the stream, or None."""
        stream = self._stream
        try:
            stream.seek(0, 2)  # MicroPython's files and BytesIO take a whence
            end = stream.tell()
        except (AttributeError, OSError, ValueError, TypeError):
            return None  # not moved: a failed seek leaves the position alone
        stream.seek(self._origin)
        return end - self._origin

    def check_end(self, stream_size):
        """The stream holds exactly `stream_size` bytes: reads forward to
        there, then tries one more byte (FORMAT 7: fewer bytes are
        truncated, more a reserved field)."""
        if self.end > stream_size:
            raise InvalidFieldError("stream has unexpected bytes after its payloads")
        count = stream_size - self.end
        while count > 0:
            part = self._stream.read(min(count, len(self._tail)))
            if not part:
                raise TruncatedError("stream is truncated: %d of %d bytes" % (stream_size - count, stream_size))
            count -= len(part)
        self._reset(stream_size)
        if self._stream.read(1):
            raise InvalidFieldError("stream has unexpected bytes after its payloads")

    def read_head(self, size):
        """The first `size` bytes of the stream (shorter at end of file)."""
        parts = []
        got = 0
        while got < size:
            part = self._stream.read(size - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        self._reset(self.end + got)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _reset(self, position):
        self.base = position - _KEEP
        self._start = _KEEP
        self.end = position

    def locate(self, position):
        """Index in buf of stream offset `position`, moving the window there."""
        if self.base + self._start <= position <= self.end:
            return position - self.base
        if not self._seek(position):
            if position < self.end:
                raise StreamOrderError(
                    "the stream cannot seek back to offset %d; read tensors in stream order" % position
                )
            self._skip(position - self.end)
        self._reset(position)
        return _KEEP

    def _seek(self, position):
        if self._origin is None:
            return False
        try:
            self._stream.seek(self._origin + position)
        except (AttributeError, OSError, ValueError):
            return False
        return True

    def _skip(self, count):
        while count > 0:
            part = self._stream.read(min(count, len(self._tail)))
            if not part:
                raise TruncatedError("stream is truncated: it ends %d bytes before a tensor payload" % count)
            count -= len(part)

    def refill(self, index):
        """Keep buf[index:] (under 64 bytes) and read the next chunk after
        it; returns the new index of that byte, or -1 at the end of the
        stream.  (No tuple: a refill must not allocate.)"""
        keep = self.end - self.base - index
        start = _KEEP - keep
        if keep:
            self._move(self.buf, start, index, keep)
        self.base += index - start
        self._start = start
        if self._readinto is not None:
            got = self._readinto(self._tail) or 0
        else:
            part = self._stream.read(len(self._tail))
            got = len(part) if part else 0
            if got:
                self.buf[_KEEP : _KEEP + got] = part
        self.end += got
        return start if got else -1


# ---------------------------------------------------------------------------
# Directory (FORMAT 3.2).


TensorInfo = namedtuple(
    "TensorInfo",
    (
        "index",  # position in the directory
        "name",
        "dtype",  # 'int8', 'uint8', 'int16', 'int32', 'float32' or 'float16' (the source dtype)
        "typecode",  # of the decoded array.array: 'b', 'B', 'h', 'i' or 'f'
        "itemsize",  # bytes per decoded element: 1, 2 or 4
        "shape",  # tuple of ints; () for a scalar
        "size",  # elements
        "nbytes",  # decoded bytes: size * itemsize
        "mode",  # MODES: 'lossless', 'quantized', 'delta-lossless', 'delta-quantized'
        "initial_activity",  # the entropy coder's starting scale estimate (FORMAT 5.4)
        "prediction",  # PREDICTIONS: 'none', 'difference', 'scale' (FORMAT 5.7) or 'factors' (5.8)
        "history",  # prediction distance (row length) H, 0 with no prediction
        "rank",  # factor prediction: factors per row, 1..64; else 0
        "factor_shift",  # factor prediction: the prediction's shift, 0..24; else 0
        "work_size",  # working memory: H, or (H + 1) * rank with factors; 2 bytes more per peak channel
        "offset",  # lossless: value = level + offset
        "peak",  # lossless: the channel peaks' magnitude P (FORMAT 5.9), 0 for none
        "peak_axis",  # ... and the axis of their channels; None without peaks
        "axis",  # quantized: channel axis of per-channel steps, or None
        "quantizer",  # quantized: QUANTIZERS 'uniform' or 'dependent' (FORMAT 6.2); None for lossless modes
        "step_count",  # quantized: number of steps (Decoder.steps() lists them)
        "steps_at",  # where the steps are in the header+directory buffer
        "payload_offset",  # from the start of the stream
        "payload_size",
        "crc32",  # CRC-32 of the decoded bytes
        "base_crc32",  # delta modes: CRC-32 of the base tensor's bytes, else None
    ),
)
# A namedtuple, not a class with attributes: an instance dict costs ~1 KB
# of MicroPython heap per entry, a tuple ~150 bytes.


def _entry_error(index, what):
    return InvalidFieldError("directory entry #%d: %s" % (index, what))


def _need(at, stop, count, index):
    if stop - at < count:
        raise _entry_error(index, "entry runs past the end of the directory")


def _varint(head, at, stop, index, field):
    """The varint at head[at:] (FORMAT 2) and its length in bytes, as
    value << 3 | length: one int, not a tuple, so that parsing an entry
    allocates nothing (on a 32-bit port, values from 2**27 on are long ints
    as u32 fields from 2**30 on were).  LEB128 of at most 5 bytes, the
    fifth at most 0x0F, not ending in a 0x00 byte after the first; else a
    reserved field, as is one running past the entry's end.  Its field's
    own limit is the caller's to check."""
    value = 0
    shift = 0
    while at < stop:
        byte = head[at]
        at += 1
        if byte < 0x80:
            if shift == 0:
                return (byte << 3) | 1  # the common case
            if byte == 0:
                raise _entry_error(index, "%s is a varint ending in a 0x00 byte" % field)
            if shift == 28 and byte > 0x0F:
                break
            return ((value | (byte << shift)) << 3) | (shift // 7 + 1)
        if shift == 28:
            break
        value |= (byte & 0x7F) << shift
        shift += 7
    else:
        raise _entry_error(index, "entry runs past the end of the directory")
    raise _entry_error(index, "%s is a varint of more than 32 bits" % field)


def _entry_name(head, at, index):
    try:
        return bytes(head[at + 1 : at + 1 + head[at]]).decode("utf-8")
    except UnicodeError:
        raise _entry_error(index, "name is not UTF-8")


def _parse_entry(head, at, stop, payload_base, index, build=True):
    """Parse the entry at head[at:] (FORMAT 3.2); returns (TensorInfo, next
    offset).  Checks follow FORMAT 7's order, field by field, so that the
    C decoder and tcdec report the same error.  `payload_base` is the
    stream offset of the payload area.  With `build` False (opening the
    stream) the entry is only checked: its name is checked later (FORMAT
    7), and no TensorInfo is made (None), which spares the heap about 300
    bytes an entry."""

    payload_area_size = _u32(head, 12)
    _need(at, stop, 1, index)
    name_len = head[at]
    if name_len == 0:
        raise _entry_error(index, "empty name")
    _need(at, stop, 1 + name_len + 4, index)
    name = _entry_name(head, at, index) if build else None
    at += 1 + name_len
    # pairs, not one 4-tuple: MicroPython builds a tuple for 4 targets
    code, mode = head[at], head[at + 1]
    initial_activity, prediction = head[at + 2], head[at + 3]
    at += 4
    history = rank = factor_shift = 0
    if prediction != 0:  # any non-zero kind, reserved ones too, has a history field
        history = _varint(head, at, stop, index, "history")
        at += history & 7
        history >>= 3
    # FORMAT 7, field by field: the fields before `history` first, then its
    # value (0 is reserved, above 65535 a limit), then rank and shift
    if code not in DTYPES or mode > 3:
        raise _entry_error(index, "reserved dtype %d or mode %d" % (code, mode))
    quantized = mode & 1
    if quantized != (code >= 5):
        raise _entry_error(index, "mode %s does not fit dtype %s" % (MODES[mode], DTYPES[code][0]))
    if prediction >= len(PREDICTIONS):
        raise _entry_error(index, "reserved prediction %d" % prediction)
    if history == 0 and prediction != 0:
        raise _entry_error(index, "%s prediction with history 0" % PREDICTIONS[prediction])
    if history > MAX_HISTORY:
        raise LimitError("directory entry #%d: history %d (at most %d)" % (index, history, MAX_HISTORY))
    if prediction == _FACTORS:  # FORMAT 5.8: and factors their rank and shift
        _need(at, stop, 2, index)
        rank, factor_shift = head[at], head[at + 1]
        at += 2
        if not (1 <= rank <= MAX_RANK and factor_shift <= MAX_FACTOR_SHIFT):
            raise _entry_error(index, "reserved factor rank %d or shift %d" % (rank, factor_shift))
    dtype, typecode, itemsize = DTYPES[code]
    _need(at, stop, 1, index)
    ndim = head[at]
    at += 1
    if ndim > MAX_NDIM:
        raise LimitError("directory entry #%d: %d dimensions (at most %d)" % (index, ndim, MAX_NDIM))
    shape = []
    for _ in range(ndim):
        dim = _varint(head, at, stop, index, "a dimension")
        at += dim & 7
        dim >>= 3
        if dim > MAX_ELEMENTS:
            raise LimitError("directory entry #%d: a dimension over 2**31 - 1" % index)
        shape.append(dim)
    size = 0 if 0 in shape else 1  # a 0 anywhere: empty, whatever the dims before it
    for dim in shape if size else ():
        if size > MAX_ELEMENTS // dim:
            raise LimitError("directory entry #%d: more than 2**31 - 1 elements" % index)
        size *= dim
    offset, axis, quantizer, step_count, steps_at, base_crc = 0, None, None, 0, 0, None
    peak, peak_axis, channels = 0, None, 0
    if mode == 0:
        offset = _varint(head, at, stop, index, "offset")
        at += offset & 7
        offset >>= 3
        offset = (offset >> 1) ^ -(offset & 1)  # zigzag (FORMAT 2): 0, 1, 2, 3 are 0, -1, 1, -2
        peak = _varint(head, at, stop, index, "peak")
        at += peak & 7
        peak >>= 3
        if peak > MAX_PEAK:
            raise LimitError("directory entry #%d: peak magnitude %d (at most 2**31)" % (index, peak))
        if peak:  # FORMAT 5.9
            if prediction not in (0, 2):
                raise _entry_error(index, "channel peaks with %s prediction" % PREDICTIONS[prediction])
            _need(at, stop, 1, index)
            peak_axis = head[at]
            at += 1
            _check_peaks(shape, size, peak_axis, index)
            channels = shape[peak_axis]
    elif quantized:
        _need(at, stop, 2, index)
        axis, quantizer = head[at], head[at + 1]
        at += 2
        if axis != AXIS_NONE and axis >= ndim:
            raise _entry_error(index, "channel axis %d out of range for %d dimensions" % (axis, ndim))
        if quantizer >= len(QUANTIZERS):
            raise _entry_error(index, "reserved quantizer %d" % quantizer)
        quantizer = QUANTIZERS[quantizer]
        step_count = 1 if axis == AXIS_NONE else shape[axis]
        if axis == AXIS_NONE:
            axis = None
        if step_count > MAX_STEP_COUNT:
            raise LimitError("directory entry #%d: %d steps (at most 65536)" % (index, step_count))
        _need(at, stop, 3 * step_count, index)
        steps_at = at
        for step in range(at, at + 3 * step_count, 3):
            if _u16(head, step) == 0:
                raise _entry_error(index, "zero quantization step")
        at += 3 * step_count
    if mode >= 2:
        _need(at, stop, 4, index)
        base_crc = _u32(head, at)
        at += 4
    payload_offset = _varint(head, at, stop, index, "payload_offset")
    at += payload_offset & 7
    payload_offset >>= 3
    payload_size = _varint(head, at, stop, index, "payload_size")
    at += payload_size & 7
    payload_size >>= 3
    _need(at, stop, 4, index)
    crc = _u32(head, at)
    at += 4
    if payload_offset > payload_area_size or payload_size > payload_area_size - payload_offset:
        raise _entry_error(index, "payload lies outside the payload area")
    if (size == 0) != (payload_size == 0):
        raise _entry_error(index, "payload size %d for %d elements" % (payload_size, size))
    if not build:
        return None, at
    info = TensorInfo(
        index, name, dtype, typecode, itemsize, tuple(shape), size, size * itemsize,
        MODES[mode], initial_activity, PREDICTIONS[prediction], history, rank, factor_shift,
        (history + 1) * rank if rank else history + 2 * channels, offset, peak, peak_axis, axis, quantizer,
        step_count, steps_at, payload_base + payload_offset, payload_size, crc, base_crc,
    )
    return info, at


def _check_peaks(shape, size, axis, index):
    """The channels of a lossless entry with peaks (FORMAT 3.2, 5.9), in the
    C decoder's order: reserved values before limits."""
    if axis >= len(shape):
        raise _entry_error(index, "peak axis %d out of range for %d dimensions" % (axis, len(shape)))
    if size == 0:  # channels of 0 elements
        raise _entry_error(index, "channel peaks in a tensor without elements")
    channels = shape[axis]
    if channels > MAX_PEAK_CHANNELS:
        raise LimitError("directory entry #%d: %d peak channels (at most %d)" % (index, channels, MAX_PEAK_CHANNELS))
    channel_size = size // channels
    if channel_size > MAX_PEAK_CHANNEL_SIZE:
        raise LimitError("directory entry #%d: peak channels of %d elements (at most %d)"
                         % (index, channel_size, MAX_PEAK_CHANNEL_SIZE))  # fmt: skip


def _peak_layout(info):
    """(C, inner, channel size) of a tensor with channel peaks (FORMAT 5.9)."""
    channels = info.shape[info.peak_axis]
    inner = 1
    for dim in info.shape[info.peak_axis + 1 :]:
        inner *= dim
    return channels, inner, info.size // channels


def _inner_size(info):
    if info.axis is None:
        return info.size or 1
    inner = 1
    for dim in info.shape[info.axis + 1 :]:
        inner *= dim
    return inner


def _magnitude_bounds(info):
    """Legal |level| for positive and negative levels: value = level + offset
    must fit the dtype (FORMAT 6.1).  An empty range is (1, 0)."""
    low, high = _INTEGER_RANGES[info.typecode]
    offset = info.offset
    positive = (max(0, low - offset), min(high - offset, 0x80000000))
    negative = (max(0, offset - high), min(offset - low, 0x80000000))
    return [bounds if bounds[0] <= bounds[1] else (1, 0) for bounds in (positive, negative)]


def _as_bytes_like(stream):
    if isinstance(stream, (bytes, bytearray)):
        return stream
    view = memoryview(stream)
    return view if _MICROPYTHON else view.cast("B")


def _byte_length(buffer):
    if isinstance(buffer, (bytearray, bytes)):
        return len(buffer)
    view = memoryview(buffer)
    count = len(view)
    return count * len(bytes(view[0:1])) if count else 0  # MicroPython has no .nbytes


# ---------------------------------------------------------------------------
# Decoding one tensor.


def _check_payload_holds(info):
    """A tensor claiming more values than its payload can hold is corrupt:
    cheaper than decoding to the overrun the C decoder would report, and it
    keeps callers from allocating for a lie (output, or factors' working
    memory)."""
    values = _coded_values(info)
    if values > _MAX_ELEMENTS_PER_BYTE * info.payload_size:
        raise CorruptPayloadError(
            "tensor %r: %d payload bytes cannot hold %d values" % (info.name, info.payload_size, values)
        )


def _coded_values(info):
    """The values a tensor's payload codes: its elements, and with factor
    prediction (FORMAT 5.8) the H * rank of B and rank more per row."""
    if not info.rank or not info.size:
        return info.size
    rows = (info.size + info.history - 1) // info.history
    return info.size + info.rank * (info.history + rows)


class TensorReader:
    """Decodes one tensor in pieces, like a file: `readinto(buffer)` fills
    the buffer with as many whole elements as fit (little-endian, C order)
    and returns their count; 0 means the tensor is complete.  The count that
    completes the tensor is returned only after the payload end and the
    CRC-32 have been checked, but earlier pieces are handed out before the
    CRC can be known: commit them only once readinto returned 0 (or use
    Decoder.read_into).  After an error every call raises it again."""

    def __init__(self, decoder, info, shared=False):
        _check_payload_holds(info)
        self.info = info
        self.remaining = info.size
        self._source = decoder._source
        self._head = decoder._head
        # the delta-quantized mode always takes the plain path (see _run_plain)
        self._run = _run_plain if info.mode == "delta-quantized" else decoder._run
        self._position = info.payload_offset
        self._payload_end = info.payload_offset + info.payload_size
        self._started = False
        self._error = None
        self._buffer = None
        self._buffer_bytes = 0
        # The working memory.  FORMAT 5.7: a ring of H bytes; difference
        # prediction keeps the last H levels as int8, 0 before the first row;
        # scale prediction the activities of the H columns, starting at the
        # initial activity.  FORMAT 5.8: B (H * rank int8s), then the current
        # row's A (rank), decoded into it before the elements that use them.
        # FORMAT 5.9: with channel peaks, after the ring's H bytes (if any), 2
        # bytes per channel for the place and the sign of its peak.
        # An empty tensor decodes nothing, so it needs none.  read(),
        # read_into() and chunks() reuse the decoder's buffer, as they reuse
        # its state array (2.5 KB); readers from open() own theirs and may
        # interleave.
        self._ring = _NO_HISTORY
        if info.work_size and info.size:
            work = decoder._shared_work(info.work_size) if shared else memoryview(bytearray(info.work_size))
            self._ring = _start_work(work, info)
        self._decoder = decoder if shared else None
        if shared:
            decoder._state_user = self
        st = self._state = decoder._shared_state() if shared else _new_state()
        st[_S_LEFT] = info.size
        st[_S_ESIZE] = info.itemsize
        st[_S_ACTIVITY] = info.initial_activity
        st[_S_CRC] = 0xFFFFFFFF
        st[_S_BASE_CRC] = 0xFFFFFFFF
        st[_S_PREVIOUS_SIGN] = 0
        st[_S_HISTORY] = info.history
        st[_S_HISTORY_POS] = 0
        st[_S_SCALE] = 1 if info.prediction == "scale" else 0
        st[_S_RANK] = info.rank
        st[_S_FACTOR_SHIFT] = info.factor_shift
        st[_S_FACTOR_ACTIVITY] = _FACTOR_ACTIVITY
        st[_S_FACTORS_LEFT] = info.work_size if info.rank else 0  # B, then the first row's A
        peak = st[_S_PEAK] = info.peak
        st[_S_PEAK_NEXT] = 0  # never met: no peaks
        if peak:  # FORMAT 5.9: the entries first, at the first element, then the peaks
            channels, inner, channel_size = _peak_layout(info)
            st[_S_PEAK_NEXT] = st[_S_PEAK_BLOCK_LEFT] = info.size
            st[_S_PEAK_ENTRIES] = st[_S_PEAKS_LEFT] = st[_S_PEAK_CHANNELS] = channels
            st[_S_PEAK_INNER] = inner
            st[_S_PEAK_CHANNEL_SIZE] = channel_size
            st[_S_PEAK_BITS] = _bit_length(channel_size) - 1
            st[_S_PEAK_CHANNEL] = st[_S_PEAK_BASE] = 0
        st[_S_RANGE] = 0xFFFFFFFF
        st[_S_CODE] = 0
        st[_S_QUANTIZED] = 1 + QUANTIZERS.index(info.quantizer) if info.quantizer else 0
        st[_S_QUANTIZER_STATE] = 0  # FORMAT 6.2: state 0 at the tensor's first element
        st[_S_DELTA] = 1 if info.mode.startswith("delta") else 0
        if info.mode == "delta-lossless":
            st[_S_BIAS], st[_S_UMAX] = _DELTA_DOMAINS[info.typecode]
        elif info.mode == "lossless":
            positive, negative = _magnitude_bounds(info)
            st[_S_OFFSET] = info.offset & 0xFFFFFFFF
            st[_S_POS_MIN], st[_S_POS_MAX] = positive
            st[_S_NEG_MIN], st[_S_NEG_MAX] = negative
        else:
            st[_S_STEP_FIRST] = st[_S_STEP_AT] = info.steps_at
            st[_S_STEP_STOP] = info.steps_at + 3 * info.step_count
            st[_S_INNER] = st[_S_INNER_LEFT] = _inner_size(info)
        decoder._prepare(st)

    def readinto(self, buffer):
        if self._error is not None:
            raise self._error
        if self._decoder is not None and self._decoder._state_user is not self:
            raise RuntimeError(
                "decoding of tensor %r was interrupted by another tensor of the same Decoder; "
                "use Decoder.open() to decode tensors interleaved" % self.info.name
            )
        try:
            return self._readinto(buffer)
        except DecodeError as error:
            self._error = error
            raise

    def _readinto(self, buffer):
        info = self.info
        if self.remaining == 0:
            if not self._started:
                self._started = True
                self._finish()
            return 0
        if buffer is not self._buffer:
            self._buffer = buffer
            self._buffer_bytes = _byte_length(buffer)
        usable = self._buffer_bytes - self._buffer_bytes % info.itemsize
        if usable == 0:
            raise ValueError("buffer too small for one %s element" % info.dtype)
        st = self._state
        if not self._started:
            self._start()
        st[_S_OUT_POS] = 0
        st[_S_OUT_END] = usable
        source = self._source
        self._attach(source.locate(self._position))
        while True:
            status = self._run(st, self._head, source.buf, buffer, self._ring)
            if status != _NEED_INPUT:
                break
            index = source.refill(st[_S_POS])
            if index < 0:
                raise TruncatedError("stream is truncated inside the payload of tensor %r" % info.name)
            self._attach(index)
        self._position = source.base + st[_S_POS]
        if status == _ERR_BASE:
            raise BaseMismatchError("tensor %r: the base holds NaN or infinity, so it is not this update's base" % info.name)
        if status < 0:
            raise CorruptPayloadError("tensor %r: corrupt payload: %s" % (info.name, _CORE_ERRORS[status]))
        written = st[_S_OUT_POS] // info.itemsize
        self.remaining -= written
        if status == _DONE:
            self._finish()
        return written

    def _attach(self, index):
        """Point the core at buf[index:], up to the payload end if it is in the window."""
        st = self._state
        source = self._source
        st[_S_POS] = index
        payload_end = self._payload_end - source.base
        if payload_end <= source.end - source.base:
            st[_S_LIMIT], st[_S_GUARDED] = payload_end, 0
        else:
            st[_S_LIMIT], st[_S_GUARDED] = source.end - source.base, 1

    def _start(self):
        """Load the first four payload bytes into the code register (FORMAT 5.1)."""
        self._started = True
        if self.info.payload_size < 4:
            raise CorruptPayloadError("tensor %r: payload shorter than 4 bytes" % self.info.name)
        source = self._source
        index = source.locate(self._position)
        while source.end - source.base - index < 4:
            index = source.refill(index)
            if index < 0:
                raise TruncatedError("stream is truncated inside the payload of tensor %r" % self.info.name)
        buf = source.buf
        code = (buf[index] << 24) | (buf[index + 1] << 16) | (buf[index + 2] << 8) | buf[index + 3]
        if code == 0xFFFFFFFF:
            raise CorruptPayloadError("tensor %r: corrupt payload: initial code is 0xFFFFFFFF" % self.info.name)
        self._state[_S_CODE] = code
        self._position += 4

    def _finish(self):
        """All values are out: the payload must be used up exactly, the coder
        consistent and the CRC right (FORMAT 4, 5.1)."""
        st = self._state
        name = self.info.name
        if self._position != self._payload_end:
            raise CorruptPayloadError(
                "tensor %r: corrupt payload: %d bytes left unread" % (name, self._payload_end - self._position)
            )
        if st[_S_CODE] != 0:
            raise CorruptPayloadError("tensor %r: corrupt payload: the final code is not 0 (damaged flush bytes)" % name)
        if self.info.base_crc32 is not None:
            base_crc = st[_S_BASE_CRC] ^ 0xFFFFFFFF
            if base_crc != self.info.base_crc32:
                raise BaseMismatchError(
                    "tensor %r: the base has CRC-32 %08x, the update was made for %08x" % (name, base_crc, self.info.base_crc32)
                )
        crc = st[_S_CRC] ^ 0xFFFFFFFF
        if crc != self.info.crc32:
            raise DataCRCError(
                "tensor %r: decoded data has CRC-32 %08x, the stream says %08x" % (name, crc, self.info.crc32)
            )


# ---------------------------------------------------------------------------
# The stream.


class Decoder:
    """An opened tinycabac stream.

    `stream` is a bytes-like object (decoded in place) or a binary file-like
    object with readinto() or read() (read through a window of `chunk_size`
    bytes; seekable for random access, else tensors must be read in stream
    order).  The header and the directory are read and checked at once,
    and so is the stream's size (FORMAT 7) where it is known: for bytes and
    for a stream that can seek to its end.  A forward-only stream's size is
    checked by check_end(), which decode() calls after the last tensor.

    `key` arguments are a tensor index or name.  `accelerated=False` selects
    the plain-Python path on MicroPython (for comparison; same results)."""

    def __init__(self, stream, chunk_size=1024, accelerated=True):
        if chunk_size < _KEEP:
            raise ValueError("chunk_size must be at least %d" % _KEEP)
        viper = ACCELERATED and accelerated
        self.accelerated = viper
        self._run = _VIPER.run if viper else _run_plain
        self._prepare = _VIPER.prepare if viper else _prepare_plain
        if hasattr(stream, "readinto") or hasattr(stream, "read"):
            self._source = _FileSource(stream, chunk_size, _VIPER.move if viper else _move_plain)
        else:
            self._source = _BytesSource(_as_bytes_like(stream))
        self._state = None
        self._state_user = None
        self._work = None  # see _shared_work
        self._by_name = None  # (entry indices, their names' hashes), by hash: built on the first lookup by name
        self._open()

    def _open(self):
        """Parse and check the header and directory (FORMAT 3), in the C decoder's order."""
        source = self._source
        head = source.read_head(HEADER_SIZE)
        size = len(head)
        if size == 0:
            raise TruncatedError("stream is empty")
        if bytes(head[: min(size, 4)]) != MAGIC[: min(size, 4)]:
            raise NotAStreamError("not a tinycabac stream (bad magic)")
        if size < HEADER_SIZE:
            raise TruncatedError("stream is truncated: %d of %d header bytes" % (size, HEADER_SIZE))
        if head[4] != FORMAT_VERSION:
            raise VersionError("unsupported format version %d (this decoder reads %d)" % (head[4], FORMAT_VERSION))
        if head[5] != 0:
            raise InvalidFieldError("reserved header flags 0x%02x are set" % head[5])
        self.tensor_count = _u16(head, 6)
        directory_size = _u32(head, 8)
        self.payload_area_size = _u32(head, 12)
        if self.tensor_count > MAX_TENSORS:
            raise LimitError("%d tensors (at most %d)" % (self.tensor_count, MAX_TENSORS))
        if directory_size > MAX_DIRECTORY_SIZE:
            raise LimitError("directory of %d bytes (at most 16 MiB)" % directory_size)
        if self.payload_area_size > 0xFFFFFFFF - HEADER_SIZE - directory_size:
            raise LimitError("stream larger than 2**32 - 1 bytes")
        head = self._read_directory(head, directory_size)
        if len(head) - HEADER_SIZE < directory_size:
            raise TruncatedError("stream is truncated inside the directory")
        view = memoryview(head)
        crc = _crc32_update(view[HEADER_SIZE : HEADER_SIZE + directory_size], _crc32_update(view[0:16]))
        if crc != _u32(head, 16):
            raise HeaderCRCError("header or directory CRC mismatch")
        self._head = head
        self._entries = array.array("I")
        at, stop = HEADER_SIZE, HEADER_SIZE + directory_size
        self._payload_base = stop
        for index in range(self.tensor_count):
            self._entries.append(at)
            at = _parse_entry(head, at, stop, stop, index, False)[1]
        if at != stop:
            raise InvalidFieldError("directory has %d bytes after its last entry" % (stop - at))
        self._directory_end = stop
        self.stream_size = stop + self.payload_area_size
        if source.size is not None:
            if source.size < self.stream_size:
                raise TruncatedError("stream is truncated: %d of %d bytes" % (source.size, self.stream_size))
            if source.size > self.stream_size:
                raise InvalidFieldError(
                    "stream has %d unexpected bytes after its payloads" % (source.size - self.stream_size)
                )
        for index in range(self.tensor_count):  # UTF-8 names: after the checks above (FORMAT 7)
            _entry_name(head, self._entries[index], index)

    def check_end(self):
        """Check that the stream is exactly `stream_size` bytes long, for a
        forward-only stream whose size was unknown when it was opened (a
        no-op for others, checked then): call it after the last tensor you
        read.  It reads on to the end of the stream (up to EOF: a socket's
        sender must close it) and raises TruncatedError if the stream is
        shorter, InvalidFieldError if bytes follow."""
        source = self._source
        if source.size is None:
            source.check_end(self.stream_size)

    def _read_directory(self, head, directory_size):
        source = self._source
        if source.in_place or len(head) < HEADER_SIZE:
            return head
        if source.size is not None and source.size - HEADER_SIZE < directory_size:
            return head  # truncated (the caller says so): a read of the size claimed would allocate it first
        return head + source.read_head(directory_size)

    def __len__(self):
        return self.tensor_count

    def _index(self, key):
        if isinstance(key, int):
            if not 0 <= key < self.tensor_count:
                raise IndexError("tensor index %d out of range (%d tensors)" % (key, self.tensor_count))
            return key
        if not isinstance(key, str):
            raise KeyError(key)
        # A binary search of the names' hashes: a scan of every name per
        # lookup made reading each of n tensors by name n*n/2 name decodes
        # (40 s for 4000 tensors on the unix port).
        order, hashes = self._name_index()
        wanted = hash(key) & _HASH_MASK
        low, high = 0, len(order)
        while low < high:
            middle = (low + high) // 2
            if hashes[middle] < wanted:
                low = middle + 1
            else:
                high = middle
        found = None
        while low < len(order) and hashes[low] == wanted:
            index = order[low]
            if (found is None or index < found) and self._name_at(index) == key:
                found = index  # the first of a name given twice, as decode() refuses
            low += 1
        if found is None:
            raise KeyError(key)
        return found

    def _name_index(self):
        """Entry indices sorted by their names' hashes, and those hashes: 6
        bytes a tensor, made on the first lookup by name."""
        if self._by_name is None:
            hashes = array.array("I")
            for index in range(self.tensor_count):
                hashes.append(hash(self._name_at(index)) & _HASH_MASK)
            order = array.array("H", sorted(range(self.tensor_count), key=lambda index: hashes[index]))
            self._by_name = (order, array.array("I", [hashes[index] for index in order]))
        return self._by_name

    def _name_at(self, index):
        return _entry_name(self._head, self._entries[index], index)

    def index(self, name):
        """Index of the tensor called `name` (KeyError if there is none)."""
        return self._index(name)

    def info(self, key):
        """The TensorInfo of tensor `key`."""
        index = self._index(key)
        return _parse_entry(self._head, self._entries[index], self._directory_end, self._payload_base, index)[0]

    def steps(self, key):
        """Quantization steps of tensor `key` as (mantissa, exponent) pairs,
        each step being mantissa * 2**exponent; [] for a lossless tensor."""
        info = self.info(key)
        head = self._head
        result = []
        for at in range(info.steps_at, info.steps_at + 3 * info.step_count, 3):
            exponent = head[at + 2]
            result.append((_u16(head, at), exponent - 256 if exponent >= 128 else exponent))
        return result

    def tensors(self):
        """TensorInfo of every tensor, in stream order (parsed one at a time)."""
        for index in range(self.tensor_count):
            yield self.info(index)

    def names(self):
        return [self._name_at(index) for index in range(self.tensor_count)]

    def open(self, key):
        """A TensorReader for decoding tensor `key` in pieces."""
        return TensorReader(self, self.info(key))

    def read_into(self, key, buffer):
        """Decode tensor `key` into `buffer` (any writable buffer of at least
        info.nbytes bytes, e.g. an array.array of the tensor's typecode) and
        check its CRC; returns the number of elements.

        For an update (mode 'delta-...') `buffer` must hold the base tensor,
        which is replaced by the updated one; a wrong base is refused with
        BaseMismatchError before anything is written."""
        info = self.info(key)
        _check_buffer(info, buffer)
        return self._read_over(info, buffer)

    def _read_over(self, info, buffer):
        """read_into() once `buffer` has passed _check_buffer."""
        reader = TensorReader(self, info, True)
        while reader.readinto(buffer):
            pass
        return info.size

    def read(self, key):
        """Decode tensor `key` into a new array.array (C order)."""
        info = self.info(key)
        if info.base_crc32 is not None:
            raise BaseMismatchError("tensor %r is an update: decode it over its base with read_into()" % info.name)
        data = _new_array(info.typecode, info.size, info.itemsize)
        reader = TensorReader(self, info, True)
        while reader.readinto(data):
            pass
        if sys.byteorder != "little" and not _MICROPYTHON:
            data.byteswap()
        return data

    def chunks(self, key, buffer):
        """Decode tensor `key` piecewise into `buffer`, yielding how many
        elements each piece put there (see TensorReader on the CRC)."""
        reader = TensorReader(self, self.info(key), True)
        while True:
            count = reader.readinto(buffer)
            if count == 0:
                return
            yield count

    def _shared_state(self):
        if self._state is None:
            self._state = _new_state()
        return self._state

    def _shared_work(self, size):
        """`size` bytes of the working memory that read(), read_into() and
        chunks() share: one buffer, grown only for a tensor that needs more
        (a fresh one per tensor is garbage the collector is slow to take
        back: 2 KB a tensor with 1024 peak channels)."""
        if self._work is None or len(self._work) < size:
            self._work = None  # the old buffer may go before the new one comes
            self._work = memoryview(bytearray(size))
        return self._work[0:size]


def _start_work(work, info):
    """A tensor's working memory (a memoryview of exactly info.work_size
    bytes), as the format starts it: the H ring bytes of difference
    prediction 0, of scale prediction the initial activity (FORMAT 5.7).
    Factors (5.8) and peak entries (5.9) are decoded into it before they are
    read, so whatever an earlier tensor left there never shows."""
    if info.prediction == "scale":
        _fill(work, info.history, info.initial_activity)
    elif info.prediction == "difference":
        _fill(work, info.history, 0)
    return work


def _fill(view, count, value):
    """view[:count] = value, in about log2(count) copies of what is done so
    far: no per-byte loop, and no temporary of `count` bytes."""
    if count:
        view[0] = value
    done = 1
    while done < count:
        step = min(done, count - done)
        view[done : done + step] = view[0:step]
        done += step


def _check_buffer(info, buffer):
    """A buffer for read_into(): large enough, and for an update the base."""
    size = _byte_length(buffer)
    if size < info.nbytes:
        raise ValueError("buffer holds %d bytes, tensor %r needs %d" % (size, info.name, info.nbytes))
    if info.base_crc32 is not None:
        _check_base(info, buffer)


def _check_base(info, buffer):
    """FORMAT 6.3: refuse a wrong base before overwriting it.  The base is
    the buffer's first info.nbytes bytes, as the decoder reads them, whatever
    its element type (a bytearray, a memoryview of one, an array.array)."""
    view = memoryview(buffer)
    itemsize = _byte_length(buffer) // len(view) if len(view) else 1
    whole, rest = divmod(info.nbytes, itemsize)  # views slice by elements
    crc = _crc32_update(view[:whole])
    if rest:  # the base ends inside an element of a wider type
        crc = _crc32_update(bytes(view[whole : whole + 1])[:rest], crc)
    if crc != info.base_crc32:
        raise BaseMismatchError(
            "tensor %r: the base has CRC-32 %08x, the update was made for %08x" % (info.name, crc, info.base_crc32)
        )


# ---------------------------------------------------------------------------
# A .tflite file from its stream (FORMAT 3.5), as decoder_c/tflite/ does it.

_TFLITE_SKELETON = "__tflite_skeleton__"
_TFLITE_PACKED_SKELETON = "__tflite_packed_skeleton__"  # the same bytes, packed (FORMAT 3.6)
_TFLITE_PLACES = "__tflite_places__"
_TFLITE_LAYOUT = "__tflite_layout__"  # the host tools' JSON layout (2 GiB files): refused here
_PACK_HEADER_SIZE = const(36)  # the packed skeleton's header: S, N, R, A0..A3, B, C (u32 each)
_MIN_MATCH = const(4)  # a match's length is its coded length + 4
# Bytes per element in the .tflite file: float16 weights decode to float32.
_FILE_ITEMSIZE = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4, "float16": 2}


def _float16_from_float32(bits):
    """IEEE binary16 nearest (ties to even) to a float32 bit pattern."""
    sign = (bits >> 16) & 0x8000
    mantissa = bits & 0x7FFFFF
    exponent = ((bits >> 23) & 0xFF) - 127 + 15
    if exponent == 0xFF - 127 + 15:  # infinity or NaN (a valid stream decodes neither)
        return sign | 0x7C00 | (0x200 if mantissa else 0)
    if exponent >= 31:
        return sign | 0x7C00
    if exponent < -10:
        return sign
    if exponent > 0:
        half, shift = (exponent << 10) | (mantissa >> 13), 13
    else:
        mantissa |= 0x800000
        shift = 14 - exponent
        half = mantissa >> shift
    rest, tie = mantissa & ((1 << shift) - 1), 1 << (shift - 1)
    if rest > tie or (rest == tie and half & 1):
        half += 1
    return sign | half


def _tflite_part(decoder, name, dtype):
    try:
        info = decoder.info(name)
    except KeyError:
        raise InvalidFieldError("not a stream of a .tflite file: no %s" % name) from None
    if info.dtype != dtype or info.base_crc32 is not None:
        raise InvalidFieldError("%s is not a lossless %s tensor" % (name, dtype))
    return info


def _place_weights(decoder, info, view):
    """Weight tensor `info` into `view`, float16 narrowed from float32."""
    if info.dtype != "float16":
        decoder.read_into(info.index, view)
        return
    raw = bytes(decoder.read(info.index))  # float32 bit patterns, little-endian
    for i in range(info.size):
        pack_into("<H", view, 2 * i, _float16_from_float32(_unpack_from("<I", raw, 4 * i)[0]))


def rebuild_tflite(stream, chunk_size=1024, accelerated=True):
    """The .tflite file a stream of one holds (FORMAT 3.5), as a bytearray:
    byte for byte the original for a lossless stream, and what
    `tinycabac decode` writes for any other.  Needs RAM for the file and for
    its skeleton (the bytes that are not weights); a packed skeleton (FORMAT
    3.6) of P bytes is unpacked first, from P + S bytes, which are at most
    the file's size, before the file is allocated.  Every offset is checked
    before it is used."""
    decoder = Decoder(stream, chunk_size, accelerated)
    places_info = _tflite_part(decoder, _TFLITE_PLACES, "int32")
    skeleton_info, packed = _tflite_skeleton_part(decoder)
    try:
        decoder.info(_TFLITE_LAYOUT)
    except KeyError:
        pass
    else:  # which of the two says where the weights go?
        raise InvalidFieldError("both %s and %s" % (_TFLITE_PLACES, _TFLITE_LAYOUT))
    places = decoder.read(places_info.index)
    if len(places) % 2 != 1 or places[0] < 0:
        raise InvalidFieldError("%s is not a file size and (tensor, offset) pairs" % _TFLITE_PLACES)
    # checked before anything is allocated or decoded, in the C helper's order
    if packed:
        skeleton, placed = _unpacked_skeleton(decoder, skeleton_info, places)
    else:
        placed = _placed_weights(decoder, places, skeleton_info.size)
        _check_payload_holds(skeleton_info)
        skeleton = bytearray(skeleton_info.size)
        decoder.read_into(skeleton_info.index, skeleton)
    for info, _, _ in placed:
        _check_payload_holds(info)
    model = bytearray(places[0])
    view = memoryview(model)
    written = taken = 0
    for info, offset, length in placed:
        gap = offset - written  # skeleton bytes before this buffer
        view[written:offset] = skeleton[taken : taken + gap]
        taken += gap
        _place_weights(decoder, info, view[offset : offset + length])
        written = offset + length
    view[written:] = skeleton[taken:]
    decoder.check_end()
    return model


def _tflite_skeleton_part(decoder):
    """(info, packed): the skeleton's tensor, plain or packed (FORMAT 3.5);
    a stream with both, or neither, is not one a file can be rebuilt from."""
    try:
        decoder.info(_TFLITE_PACKED_SKELETON)
    except KeyError:
        return _tflite_part(decoder, _TFLITE_SKELETON, "uint8"), False
    try:
        decoder.info(_TFLITE_SKELETON)
    except KeyError:
        return _tflite_part(decoder, _TFLITE_PACKED_SKELETON, "uint8"), True
    raise InvalidFieldError("both %s and %s" % (_TFLITE_SKELETON, _TFLITE_PACKED_SKELETON))


def _unpacked_skeleton(decoder, info, places):
    """(skeleton, placed weights) from a packed skeleton (FORMAT 3.6): its
    P bytes decoded, its header and the size S of the skeleton checked
    (S + P <= the file size, with the weights S fills the file, and the
    sections' lengths add up to S) before the S bytes are allocated, then
    unpacked.  The P bytes are freed before the caller allocates the file."""
    file_size, packed_size = places[0], info.size
    if not _PACK_HEADER_SIZE <= packed_size <= file_size:
        raise InvalidFieldError("%s: %d bytes, not a header and at most the %d-byte file"
                                % (_TFLITE_PACKED_SKELETON, packed_size, file_size))  # fmt: skip
    _check_payload_holds(info)
    packed = bytearray(packed_size)
    decoder.read_into(info.index, packed)
    sections = _pack_sections(packed)
    size = sections[0]
    if size + packed_size > file_size:
        raise InvalidFieldError("%s: a %d-byte skeleton and its %d packed bytes exceed the %d-byte file"
                                % (_TFLITE_PACKED_SKELETON, size, packed_size, file_size))  # fmt: skip
    placed = _placed_weights(decoder, places, size)
    return _unpack_skeleton(packed, sections), placed


def _pack_corrupt(what):
    return InvalidFieldError("%s: %s" % (_TFLITE_PACKED_SKELETON, what))


def _pack_sections(packed):
    """(S, N, R, where each literal lane starts (and the last ends), end of
    the literal lengths, of the match lengths) of a packed skeleton of at
    least 36 bytes, checked: the header's sections fill its bytes, and their
    lengths add up to its literals and its S bytes, as they must for it to
    unpack, so that a lie in S is refused before S bytes are allocated."""
    size, matches, repeats, lane0, lane1, lane2, lane3, literal_length_bytes, match_length_bytes = _unpack_from(
        "<9I", packed, 0)
    literals = lane0 + lane1 + lane2 + lane3
    total = _PACK_HEADER_SIZE + literals + literal_length_bytes + match_length_bytes + 3 * matches - 2 * repeats
    if repeats > matches or total != len(packed):
        raise _pack_corrupt("its header's sections do not add up to its %d bytes" % len(packed))
    lanes = [_PACK_HEADER_SIZE]
    for lane_size in (lane0, lane1, lane2, lane3):
        lanes.append(lanes[-1] + lane_size)
    literal_end = lanes[-1]
    length_end = literal_end + literal_length_bytes
    match_end = length_end + match_length_bytes
    view = memoryview(packed)
    if sum(view[literal_end:length_end]) != literals:
        raise _pack_corrupt("its literal lengths do not add up to its %d literals" % literals)
    if literals + sum(view[length_end:match_end]) + _MIN_MATCH * matches != size:
        raise _pack_corrupt("its lengths do not add up to its %d-byte skeleton" % size)
    return size, matches, repeats, lanes, length_end, match_end


def _unpack_skeleton(packed, sections):
    """The skeleton a packed skeleton holds (FORMAT 3.6), as skeleton_pack.unpack
    gives it: InvalidFieldError for a corrupt one, before anything is
    written outside the skeleton.  `sections` are _pack_sections(packed).
    Sections are read in place; the inverse move-to-front keeps a 256-byte
    list per literal lane."""
    size, matches, repeats, lanes, length_end, match_end = sections
    lane_at, lane_end = lanes[:4], lanes[1:]
    length_at, match_at = lanes[4], length_end
    codes = match_end
    quotient_low = codes + matches
    quotient_high = quotient_low + matches - repeats
    new_distances, recent = 0, [0, 0, 0, 0]  # the most recent distance first
    out = bytearray(size)
    view = memoryview(out)
    tables = [bytearray(range(256)) for _ in range(4)]
    position = 0
    for match in range(matches + 1):
        count, length_at = _pack_length(packed, length_at, length_end, size - position, "literal run")
        for _ in range(count):
            lane = position & 3
            at = lane_at[lane]
            if at == lane_end[lane]:
                raise _pack_corrupt("literal lane %d runs out" % lane)
            lane_at[lane] = at + 1
            rank, table = packed[at], tables[lane]
            byte = table[rank]
            if rank:  # to the front of the list
                table[1 : rank + 1] = table[:rank]
                table[0] = byte
            out[position] = byte
            position += 1
        if match == matches:
            break
        extra, match_at = _pack_length(packed, match_at, match_end, size - position - _MIN_MATCH, "match")
        code = packed[codes + match]
        if code < 4:
            if new_distances == matches - repeats:
                raise _pack_corrupt("more new distances than its header's %d" % (matches - repeats))
            distance = 4 * (packed[quotient_low + new_distances] | packed[quotient_high + new_distances] << 8) + code
            new_distances += 1
            recent.pop()
        elif code < 8:
            distance = recent.pop(code - 4)
        else:
            raise _pack_corrupt("match %d has distance code %d" % (match, code))
        recent.insert(0, distance)
        if not 1 <= distance <= position:
            raise _pack_corrupt("match %d reaches back %d bytes, before the start" % (match, distance))
        # a match longer than its distance repeats its last `distance` bytes:
        # copied in pieces that never overlap their source, each up to twice as long
        start, length = position - distance, extra + _MIN_MATCH
        while length:
            piece = min(length, position - start)
            view[position : position + piece] = view[start : start + piece]
            position += piece
            length -= piece
    if (position != size or lane_at != lane_end or length_at != length_end or match_at != match_end
            or new_distances != matches - repeats):  # fmt: skip
        raise _pack_corrupt("sections hold more than the skeleton, or the skeleton is short")
    return out


def _pack_length(packed, at, end, room, what):
    """(length, next position): a length of a packed skeleton's section
    packed[at:end], bytes of 255 while they come, then one below 255;
    refused once it exceeds `room`."""
    value = 0
    while True:
        if at >= end:
            raise _pack_corrupt("a %s length runs past its section" % what)
        byte = packed[at]
        at += 1
        value += byte
        if value > room:
            raise _pack_corrupt("a %s passes the end of the skeleton" % what)
        if byte != 255:
            return value, at


def _placed_weights(decoder, places, skeleton_size):
    """(info, offset, length) of every weight buffer of the places table:
    each a tensor of the directory that is not container data nor an update,
    inside the file, in order, not overlapping, and together with the
    skeleton exactly the file."""
    file_size = places[0]
    placed = []
    end, covered = 0, skeleton_size
    for k in range(1, len(places), 2):
        index, offset = places[k], places[k + 1]
        if not 0 <= index < decoder.tensor_count:
            raise InvalidFieldError("%s names tensor %d of %d" % (_TFLITE_PLACES, index, decoder.tensor_count))
        info = decoder.info(index)
        if info.name.startswith("__"):  # container data, never a weight buffer
            raise InvalidFieldError("%s names reserved tensor %r" % (_TFLITE_PLACES, info.name))
        length = info.size * _FILE_ITEMSIZE[info.dtype]
        if info.base_crc32 is not None or offset < end or offset + length > file_size:
            raise InvalidFieldError("%s: weights %r do not fit the file" % (_TFLITE_PLACES, info.name))
        placed.append((info, offset, length))
        end = offset + length
        covered += length
    if covered != file_size:
        raise InvalidFieldError("%s: weights and skeleton do not fill the file" % _TFLITE_PLACES)
    return placed


def decode(stream, chunk_size=1024, accelerated=True, base=None):
    """Decode every tensor of a stream (bytes-like or file-like) into a dict
    name -> (shape tuple, array.array), reserved "__" names included.

    An update stream needs `base`: a dict name -> array.array (or -> (shape,
    array.array), as decode() returns) holding the tensors the update was
    made for.  Updated tensors are decoded in place over those arrays,
    after every one of them has been checked: a wrong base is refused
    before any of its tensors is overwritten."""
    decoder = Decoder(stream, chunk_size, accelerated)
    names = set()
    for name in decoder.names():  # before any tensor is decoded (FORMAT 7)
        if name in names:
            raise InvalidFieldError("tensor name %r appears twice" % name)
        names.add(name)
    for index in range(decoder.tensor_count):
        info = decoder.info(index)
        if info.base_crc32 is not None:
            _check_buffer(info, _base_tensor(info, base))
    tensors = {}
    for index in range(decoder.tensor_count):
        info = decoder.info(index)
        if info.base_crc32 is None:
            tensors[info.name] = (info.shape, decoder.read(index))
            continue
        target = _base_tensor(info, base)
        decoder._read_over(info, target)
        tensors[info.name] = (info.shape, target)
    decoder.check_end()  # a forward-only stream's size (FORMAT 7)
    return tensors


def _base_tensor(info, base):
    """The array in `base` (as decode() takes it) that update tensor `info` applies to."""
    target = base.get(info.name) if base is not None else None
    if isinstance(target, tuple):
        target = target[1]
    if target is None:
        raise BaseMismatchError("tensor %r is an update: pass its base tensor in `base`" % info.name)
    return target
