#!/usr/bin/env python3
"""A decoder written from docs/FORMAT.md alone (format version 13).

A clean-room session wrote it from the spec, the golden vectors and their
manifest, without seeing any decoder of the project; keep it that way:
change it from the spec's text only.  tests/test_spec_decoder.py holds it to
the golden vectors and to the C decoder's verdict on damaged streams, so a
gap or an error in the spec shows up as a failing test.  Standard library
only; slow, and meant to be read beside the spec.

Usage:  specdec.py STREAM [--base BASESTREAM]
"""
import struct
import sys
import zlib

# ---------------------------------------------------------------- errors (7)


class TCError(Exception):
    kind = "error"


class NotAStream(TCError):
    kind = "not a stream"


class Unsupported(TCError):
    kind = "unsupported version"


class Truncated(TCError):
    kind = "truncated stream"


class HeaderCRC(TCError):
    kind = "header/directory crc mismatch"


class Reserved(TCError):
    kind = "reserved or inconsistent field"


class Limit(TCError):
    kind = "exceeded limit"


class Corrupt(TCError):
    kind = "corrupt payload"


class DataCRC(TCError):
    kind = "decoded-data crc mismatch"


class WrongBase(TCError):
    kind = "wrong base"


class HistoryMem(TCError):
    kind = "too little history memory"


DTYPES = {1: ("int8", 1), 2: ("uint8", 1), 3: ("int16", 2), 4: ("int32", 4),
          5: ("float32", 4), 6: ("float16", 4)}
INT_RANGE = {1: (-128, 127), 2: (0, 255), 3: (-32768, 32767),
             4: (-2**31, 2**31 - 1)}
INT_FMT = {1: "b", 2: "B", 3: "h", 4: "i"}
MAXI = 2**31 - 1


def bitlen(m):
    return m.bit_length()


# ------------------------------------------------------------- container (3)


class Reader:
    def __init__(self, buf, pos, end):
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, n):
        if self.pos + n > self.end:
            # reading the directory beyond directory_size
            raise Reserved("directory entry runs past directory_size")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def i8(self):
        return struct.unpack("<b", self.take(1))[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def varint(self, field):
        """A varint (2): LEB128, at most 5 bytes, the fifth at most 0x0F,
        no final 0x00 after the first byte.  A broken one is the field's
        fault, a reserved field (7); its upper limit the caller checks."""
        value = 0
        for index in range(5):
            b = self.u8()
            if index == 4 and b > 0x0F:
                # also a sixth byte: the fifth's top bit 0x80 is above 0x0F
                raise Reserved("%s: varint's fifth byte %#x > 0x0F"
                               % (field, b))
            value |= (b & 0x7F) << (7 * index)
            if b & 0x80 == 0:
                if index > 0 and b == 0:
                    raise Reserved("%s: varint ends in a 0x00 byte" % field)
                return value
        raise AssertionError("unreachable: a fifth byte <= 0x0F ends it")


def unzigzag(u):
    """2: the signed number whose zigzag is u (0, 1, 2, 3 -> 0, -1, 1, -2)."""
    return (u >> 1) if u & 1 == 0 else -((u + 1) >> 1)


class Entry:
    pass


def parse_peak(r, e, ndim):
    """The peak fields of a mode-0 entry whose `peak` is not 0 (3.2, 5.9),
    checked field by field (7): peak (its limit, then the prediction it
    needs), peak_axis, then the channels they make."""
    if e.peak > 2**31:
        raise Limit("peak %d > 2^31" % e.peak)
    if e.prediction not in (0, 2):
        raise Reserved("peak with prediction %d" % e.prediction)
    e.peak_axis = r.u8()
    if e.peak_axis >= ndim:
        raise Reserved("peak_axis %d with ndim %d" % (e.peak_axis, ndim))
    # 3.2: C = dims[peak_axis] channels of channel_size = element_count / C
    # elements, 1..32768, so element_count >= 1: a tensor without elements
    # (C = 0 among them) has channels of 0 elements, reserved (7), checked
    # before the limits on C and on channel_size
    channels = e.dims[e.peak_axis]
    if e.count == 0:
        raise Reserved("peak channels of 0 elements")
    if channels > 65535:
        raise Limit("%d peak channels" % channels)
    size = e.count // channels
    if size > 32768:
        raise Limit("peak channels of %d elements" % size)


def parse(buf, check_trailing=True):
    if buf[:4] != b"TCAB"[:len(buf[:4])]:
        raise NotAStream("bad magic")
    if len(buf) < 20:
        raise Truncated("header")
    version, flags, count, dsize, psize, hcrc = struct.unpack(
        "<BBHIII", buf[4:20])
    if version != 13:
        raise Unsupported("format_version %d" % version)
    if flags != 0:
        raise Reserved("flags %#x" % flags)
    if count > 4096:
        raise Limit("tensor_count %d" % count)
    if dsize > 16 * 1024 * 1024:
        raise Limit("directory_size %d" % dsize)
    total = 20 + dsize + psize
    if total > 2**32 - 1:
        raise Limit("stream size")
    if len(buf) < 20 + dsize:
        raise Truncated("stream ends inside the directory")
    if zlib.crc32(buf[20:20 + dsize], zlib.crc32(buf[0:16])) != hcrc:
        raise HeaderCRC("header crc")
    r = Reader(buf, 20, 20 + dsize)
    entries = []
    names = set()
    for idx in range(count):
        e = Entry()
        e.index = idx
        nl = r.u8()
        if nl == 0:
            raise Reserved("name_len 0")
        e.raw_name = r.take(nl)
        e.dtype = r.u8()
        if e.dtype not in DTYPES:
            raise Reserved("dtype %d" % e.dtype)
        e.mode = r.u8()
        if e.mode > 3:
            raise Reserved("mode %d" % e.mode)
        if e.mode in (0, 2) and e.dtype not in (1, 2, 3, 4):
            raise Reserved("mode %d needs an integer dtype" % e.mode)
        if e.mode in (1, 3) and e.dtype not in (5, 6):
            raise Reserved("mode %d needs a float dtype" % e.mode)
        e.initial_activity = r.u8()
        e.prediction = r.u8()
        if e.prediction > 3:
            raise Reserved("prediction %d" % e.prediction)
        e.history = 0
        if e.prediction:
            # 3.2: a varint, 1..65535; 7: 0 is reserved, above is a limit
            e.history = r.varint("history")
            if e.history == 0:
                raise Reserved("history 0")
            if e.history > 65535:
                raise Limit("history %d" % e.history)
        e.rank = 0
        e.factor_shift = 0
        if e.prediction == 3:
            # 3.2, 7: checked field by field, rank before factor_shift is read
            e.rank = r.u8()
            if e.rank == 0 or e.rank > 64:
                raise Reserved("rank %d" % e.rank)
            e.factor_shift = r.u8()
            if e.factor_shift > 24:
                raise Reserved("factor_shift %d" % e.factor_shift)
        ndim = r.u8()
        if ndim > 8:
            raise Limit("ndim %d" % ndim)
        e.dims = []
        for _ in range(ndim):
            # 7: field by field, each dimension checked as it is read
            d = r.varint("dims")
            if d > MAXI:
                raise Limit("dim %d" % d)
            e.dims.append(d)
        # 3.2: a 0 anywhere empties the tensor; else left to right
        n = 1
        if 0 in e.dims:
            n = 0
        else:
            for d in e.dims:
                if n > MAXI // d:
                    raise Limit("element count")
                n *= d
        e.count = n
        e.offset = 0
        e.peak = 0
        e.peak_axis = None
        if e.mode == 0:
            # 3.2: the zigzag (2) of the i32 offset; every varint value
            # (below 2^32) is the zigzag of an i32, so no limit of its own
            e.offset = unzigzag(r.varint("offset"))
            e.peak = r.varint("peak")
            if e.peak != 0:
                parse_peak(r, e, ndim)
        e.axis = 0xFF
        e.quantizer = 0
        e.steps = []
        if e.mode in (1, 3):
            e.axis = r.u8()
            if e.axis != 0xFF and e.axis >= ndim:
                raise Reserved("axis %d" % e.axis)
            e.quantizer = r.u8()
            if e.quantizer > 1:
                raise Reserved("quantizer %d" % e.quantizer)
            sc = 1 if e.axis == 0xFF else e.dims[e.axis]
            if sc > 65536:
                raise Limit("step_count %d" % sc)
            for _ in range(sc):
                mant = r.u16()
                ex = r.i8()
                if mant == 0:
                    raise Reserved("mantissa 0")
                e.steps.append((mant, ex))
        e.base_crc32 = None
        if e.mode in (2, 3):
            e.base_crc32 = r.u32()
        e.payload_offset = r.varint("payload_offset")
        e.payload_size = r.varint("payload_size")
        e.crc32 = r.u32()
        if e.payload_offset + e.payload_size > psize:
            raise Reserved("payload outside payload area")
        if (e.payload_size == 0) != (e.count == 0):
            raise Reserved("payload_size 0 iff element_count 0")
        entries.append(e)
    if r.pos != 20 + dsize:
        raise Reserved("directory entries do not fill directory_size")
    if len(buf) < total:
        raise Truncated("stream shorter than header says")
    if check_trailing and len(buf) > total:
        raise Reserved("trailing bytes")
    # 7: names are checked after the header, the directory and the size
    for e in entries:
        try:
            e.name = e.raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise Reserved("name not UTF-8")
    for e in entries:
        if e.name in names:
            raise Reserved("duplicate name %r" % e.name)
        names.add(e.name)
    return entries, 20 + dsize


# ------------------------------------------------------ range decoder (5.1)


class RangeDecoder:
    def __init__(self, data):
        if len(data) < 4:
            raise Corrupt("payload shorter than 4 bytes")
        self.data = data
        self.pos = 4
        self.range = 0xFFFFFFFF
        self.code = int.from_bytes(data[0:4], "big")
        if self.code == 0xFFFFFFFF:
            raise Corrupt("initial code 0xFFFFFFFF")

    def _renorm(self):
        while self.range < (1 << 24):
            if self.pos >= len(self.data):
                raise Corrupt("read past end of payload")
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self.data[self.pos]) & 0xFFFFFFFF
            self.pos += 1

    def bin(self, c):
        # c is a 2-element list [fast, slow]
        p0 = (c[0] + c[1]) >> 1
        bound = (self.range >> 15) * p0
        if self.code < bound:
            b = 0
            self.range = bound
            c[0] += (32768 - c[0]) >> 5
            c[1] += (32768 - c[1]) >> 8
        else:
            b = 1
            self.code -= bound
            self.range -= bound
            c[0] -= c[0] >> 5
            c[1] -= c[1] >> 8
        self._renorm()
        return b

    def bypass(self):
        self.range >>= 1
        if self.code >= self.range:
            b = 1
            self.code -= self.range
        else:
            b = 0
        self._renorm()
        return b


# 5.2: the initial probability of bin 0 of each context, in 1/256, by its
# number (5.3); copied as the spec prints it, in rows of 16
INIT = [
    192, 171, 128, 128, 205, 192, 128, 128, 209, 205, 128, 128, 148, 157, 135,  45,
    153, 150, 128,  70, 150, 151, 145, 125, 170, 187, 170, 106, 159, 136, 112, 118,
    137, 144, 153, 254, 180, 254, 128, 128, 254, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    132, 128, 128, 157, 128, 128, 146,  97, 150, 159, 142, 143, 150, 116, 149, 169,
    149, 157, 151, 126, 145, 148, 142, 135, 143, 134, 139, 137, 146, 120, 147, 126,
    142, 144, 146,  99,  87, 132,  78, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
    128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 202, 142, 181, 128, 129,
    130, 132, 129, 129, 132, 147,
]
assert len(INIT) == 166


def new_ctx(number):
    """Context number `number` (5.3) at the start of a tensor (5.2)."""
    return [INIT[number] * 128, INIT[number] * 128]


# ----------------------------------------------- value decoding (5.3 - 5.5)


class ValueDecoder:
    def __init__(self, payload, initial_activity):
        self.rd = RangeDecoder(payload)
        # 5.3: prefix[16][4], suffix[15][2][3], sign[12], numbered in that
        # order from 0, each array in C order
        self.prefix = [[new_ctx(4 * s + p) for p in range(4)]
                       for s in range(16)]
        self.suffix = [[[new_ctx(64 + 6 * s + 3 * b + c) for c in range(3)]
                        for b in range(2)]
                       for s in range(15)]
        self.sign = [new_ctx(154 + c) for c in range(12)]
        self.activity = initial_activity
        self.factor_activity = 48      # 5.8: for factor values only
        self.previous_sign = 0

    def decode(self, a, factor=False):
        """One coded value with activity a (5.5); a factor value (5.8)
        moves factor_activity on instead of activity."""
        rd = self.rd
        k = min(a >> 3, 31)
        if k == 0:
            prefix_set = a >> 1
        else:
            prefix_set = 3 + min(k, 12)
        P = self.prefix[prefix_set]
        p = 0
        while p < 16 and rd.bin(P[min(p, 3)]) == 1:
            p += 1
        if p == 16:
            n = 0
            while rd.bypass() == 1:
                n += 1
                if n > 31:
                    raise Corrupt("escape prefix too long")
            v = 1
            for _ in range(n):
                v = (v << 1) | rd.bypass()
            v -= 1
            if v > 2**31:
                raise Corrupt("escape value")
            p = 16 + v
        if k == 0:
            m = p
        else:
            S = self.suffix[min(k, 15) - 1][1 if p > 0 else 0]
            s = rd.bin(S[0])
            if k >= 2:
                s = (s << 1) | rd.bin(S[1 + s])
            for _ in range(k - 2):
                s = (s << 1) | rd.bypass()
            if p > (2**31 >> k):
                raise Corrupt("prefix too large for k")
            m = (p << k) | s
        if m > 2**31:
            raise Corrupt("magnitude > 2^31")
        negative = 0
        if m > 0:
            bl = bitlen(m)
            negative = rd.bin(self.sign[self.previous_sign * 4 +
                                        min(bl, 4) - 1])
            self.previous_sign = 1 if negative else 2
        if factor:
            act = self.factor_activity
            self.factor_activity = act - (act >> 3) + bitlen(m)
        else:
            act = self.activity
            self.activity = act - (act >> 3) + bitlen(m)
        return -m if negative else m

    def finish(self):
        rd = self.rd
        if rd.pos != len(rd.data):
            raise Corrupt("unread payload bytes (%d of %d read)" %
                          (rd.pos, len(rd.data)))
        if rd.code != 0:
            raise Corrupt("final code %#x != 0" % rd.code)


def work_size(e):
    """Bytes of working memory the tensor needs (5.7, 5.8, 5.9, 7)."""
    if e.prediction == 3:
        return (e.history + 1) * e.rank
    size = e.history if e.prediction else 0
    if e.peak:
        size += 2 * e.dims[e.peak_axis]    # a position and a sign a channel
    return size


def decode_levels(e, payload, history_limit=(65535 + 1) * 64):
    """Return the list of levels of entry e (5.5, 5.7, 5.8, 5.9).

    history_limit: the bytes of working memory the caller gives (3.4)."""
    n = e.count
    if n == 0:
        return []
    if work_size(e) > history_limit:
        raise HistoryMem("the tensor needs %d bytes" % work_size(e))
    vd = ValueDecoder(payload, e.initial_activity)
    peaks = read_peaks(e, vd) if e.peak else None
    levels = []  # grown as decoded: a damaged entry may claim 2^31 elements
    if e.prediction == 0:
        for i in range(n):
            peak = peaks.level_at(i) if peaks else None
            if peak is not None:                 # 5.9: nothing decoded
                levels.append(peak)
                continue
            levels.append(vd.decode(vd.activity))
    elif e.prediction == 1:
        H = e.history
        ring = [0] * H   # stored as signed int8 values
        for i in range(n):
            slot = i % H
            coded = vd.decode(vd.activity)
            level = coded + ring[slot]
            if abs(level) > 2**31:
                raise Corrupt("|level| > 2^31")
            ring[slot] = min(max(level, -128), 127)
            levels.append(level)
    elif e.prediction == 2:
        H = e.history
        ring = [e.initial_activity] * H
        for i in range(n):
            slot = i % H
            peak = peaks.level_at(i) if peaks else None
            if peak is not None:                 # 5.9: ring[slot] unchanged
                levels.append(peak)
                continue
            a = (vd.activity + 3 * ring[slot]) >> 2
            level = vd.decode(a)
            r = ring[slot]
            ring[slot] = (r - (r >> 3) + bitlen(abs(level))) & 0xFF
            levels.append(level)
    else:
        levels = decode_factored(e, vd)
    vd.finish()
    return levels


# ----------------------------------------------------- channel peaks (5.9)


class Peaks:
    """The peak of each channel of a tensor with `peak` = P != 0 (5.9)."""

    def __init__(self, e):
        self.P = e.peak
        self.C = e.dims[e.peak_axis]
        self.inner = 1                 # the product of the dims after the axis
        for d in e.dims[e.peak_axis + 1:]:
            self.inner *= d
        self.channel_size = e.count // self.C      # outer * inner
        self.position = [0] * self.C
        self.negative = [0] * self.C

    def level_at(self, i):
        """The level of element i (C order) if it is its channel's peak,
        else None."""
        j = i % self.inner
        o, c = divmod(i // self.inner, self.C)  # i = (o * C + c) * inner + j
        q = o * self.inner + j                  # its place in channel c
        if q != self.position[c]:
            return None
        return -self.P if self.negative[c] else self.P


def read_peaks(e, vd):
    """5.9: the C peak entries, bypass bins before the first coded value."""
    peaks = Peaks(e)
    rd = vd.rd
    for c in range(peaks.C):
        n = peaks.channel_size
        k = bitlen(n) - 1                       # floor(log2 n)
        u = 2**(k + 1) - n
        v = 0
        for _ in range(k):                      # k bypass bins, MSB first
            v = (v << 1) | rd.bypass()
        if v >= u:                              # a truncated binary code
            v = 2 * v + rd.bypass() - u
        peaks.position[c] = v                   # 0 .. n-1
        peaks.negative[c] = rd.bypass()
    return peaks


# --------------------------------------------------- factor prediction (5.8)


def decode_factor(vd):
    """A factor value (5.8): coded with factor_activity, an int8."""
    f = vd.decode(vd.factor_activity, factor=True)
    if f < -128 or f > 127:
        raise Corrupt("factor value %d outside int8" % f)
    return f


def decode_factored(e, vd):
    """5.8: B (R values per column), then per row A (R values) and the
    row's elements, each coded as its difference from the rounded product."""
    n, H, R, s = e.count, e.history, e.rank, e.factor_shift
    B = [[decode_factor(vd) for _ in range(R)] for _ in range(H)]
    half = (1 << (s - 1)) if s > 0 else 0
    levels = []
    for i in range(n):
        j = i % H
        if j == 0:       # the row's first element is next: read its A
            A = [decode_factor(vd) for _ in range(R)]
        coded = vd.decode(vd.activity)
        if abs(coded) > 2**30:
            raise Corrupt("|coded value| > 2^30 with factor prediction")
        # exact integers; >> on a negative int is floor (arithmetic shift)
        total = sum(A[r] * B[j][r] for r in range(R))
        prediction = (total + half) >> s
        levels.append(coded + prediction)
    return levels


# ------------------------------------------------------ reconstruction (6)


def round_half_even_shift(P, sh):
    """round_half_even(P / 2^sh) for P >= 0, sh >= 0."""
    if sh <= 0:
        return P << (-sh)
    q = P >> sh
    rem = P - (q << sh)
    half = 1 << (sh - 1)
    if rem > half or (rem == half and (q & 1)):
        q += 1
    return q


def recon_bits(m, negative, mantissa, exponent):
    """6.2: binary32 bits of (-1)^negative * m * mantissa * 2^exponent."""
    P = m * mantissa
    if P == 0:
        return 0
    L = bitlen(P)
    e = L - 1 + exponent
    if e >= -126:
        if L > 24:
            sig = round_half_even_shift(P, L - 24)
        else:
            sig = P << (24 - L)
        if sig == 2**24:
            sig = 2**23
            e += 1
        if e > 127:
            raise Corrupt("reconstruction overflows binary32")
        bits = ((e + 127) << 23) | (sig - 2**23)
    else:
        # units of 2^-149: P * 2^(exponent + 149)
        sh = exponent + 149
        bits = round_half_even_shift(P, -sh)
    if negative:
        bits |= 0x80000000
    return bits


def parity(state):
    return (0x96 >> state) & 1


def recon_indices(e, levels):
    """Map levels to reconstruction indices q (6.2)."""
    if e.quantizer == 0:
        return levels
    out = []
    state = 0
    for lv in levels:
        if not state & 1:
            q = 2 * lv
        else:
            q = 2 * lv - ((lv > 0) - (lv < 0))
        out.append(q)
        state = ((2 * state) & 7) | ((lv & 1) ^ parity(state))
    return out


def step_of(e, i):
    if e.axis == 0xFF:
        return e.steps[0]
    inner = 1
    for d in e.dims[e.axis + 1:]:
        inner *= d
    return e.steps[(i // inner) % e.dims[e.axis]]


def f32_from_bits(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def f32_add_bits(a_bits, b_bits):
    """binary32 a + b, round half even; Corrupt on overflow.

    float64 has >= 2*24+2 bits so double rounding via float64 is exact."""
    a = f32_from_bits(a_bits)
    b = f32_from_bits(b_bits)
    s = a + b
    try:
        out = struct.pack("<f", s)
    except OverflowError:
        raise Corrupt("update overflows binary32")
    r = struct.unpack("<I", out)[0]
    if (r & 0x7F800000) == 0x7F800000:
        raise Corrupt("update overflows binary32")
    return r


def reconstruct(e, levels, base_bytes=None):
    n = e.count
    if e.mode in (0, 2):
        lo, hi = INT_RANGE[e.dtype]
        if e.mode == 2:
            fmt = "<%d%s" % (n, INT_FMT[e.dtype])
            base = struct.unpack(fmt, base_bytes)
            vals = [b + lv for b, lv in zip(base, levels)]
        else:
            vals = [lv + e.offset for lv in levels]
        for v in vals:
            if v < lo or v > hi:
                raise Corrupt("value %d out of dtype range" % v)
        return struct.pack("<%d%s" % (n, INT_FMT[e.dtype]), *vals)
    # float modes
    qs = recon_indices(e, levels)
    bits = []
    if e.axis == 0xFF:
        mant, ex = e.steps[0]
        for q in qs:
            bits.append(recon_bits(abs(q), q < 0, mant, ex))
    else:
        inner = 1
        for d in e.dims[e.axis + 1:]:
            inner *= d
        D = e.dims[e.axis]
        for i, q in enumerate(qs):
            mant, ex = e.steps[(i // inner) % D]
            bits.append(recon_bits(abs(q), q < 0, mant, ex))
    if e.mode == 3:
        base = struct.unpack("<%dI" % n, base_bytes)
        for b in base:
            if (b & 0x7F800000) == 0x7F800000:
                raise WrongBase("NaN/inf base element")
        bits = [f32_add_bits(b, d) for b, d in zip(base, bits)]
    return struct.pack("<%dI" % n, *bits)


# ----------------------------------------------------- packed skeleton (3.6)


class Section:
    """One section of a packed skeleton, read front to back."""

    def __init__(self, buf, start, size, what):
        self.buf, self.pos, self.end, self.what = buf, start, start + size, what

    def left(self):
        return self.end - self.pos

    def length(self):
        """A length: bytes of 255 while they come, then one byte below 255,
        which ends it (255 is FF 00)."""
        total = 0
        while True:
            if self.pos >= self.end:
                raise Reserved("a length runs past the end of the %s"
                               % self.what)
            b = self.buf[self.pos]
            self.pos += 1
            total += b
            if b < 255:
                return total


def unpack_skeleton(packed):
    """The skeleton's S bytes from the P bytes of __tflite_packed_skeleton__
    (3.6).  Every corruption of 3.6 raises Reserved (-6), before a byte
    would be written past the S bytes."""
    P = len(packed)
    if P < 36:
        raise Reserved("packed skeleton of %d bytes, shorter than its header"
                       % P)
    S, N, R, A0, A1, A2, A3, B, C = struct.unpack("<9I", packed[0:36])
    if R > N:
        raise Reserved("%d repeated distances of %d matches" % (R, N))
    if 36 + A0 + A1 + A2 + A3 + B + C + N + 2 * (N - R) != P:
        raise Reserved("packed skeleton sections do not add up to P")
    lanes, start = [], 36
    for k, size in enumerate((A0, A1, A2, A3)):
        lanes.append(Section(packed, start, size, "literal lane %d" % k))
        start += size
    literal_lengths = Section(packed, start, B, "literal lengths")
    match_lengths = Section(packed, start + B, C, "match lengths")
    codes = start + B + C           # N distance codes
    low = codes + N                 # then N - R low bytes, N - R high bytes
    high = low + (N - R)
    new_distances = 0
    recent = [0, 0, 0, 0]           # the most recent distance first
    mtf = [list(range(256)) for _ in range(4)]  # per lane, over all runs
    out = bytearray()
    for i in range(N + 1):
        # 1. a literal run, each literal from lane (its position mod 4)
        L = literal_lengths.length()
        if L > S - len(out):
            raise Reserved("a literal run takes the output past S bytes")
        for _ in range(L):
            lane = len(out) % 4
            if not lanes[lane].left():
                raise Reserved("literal lane %d runs out" % lane)
            r = packed[lanes[lane].pos]
            lanes[lane].pos += 1
            value = mtf[lane].pop(r)
            mtf[lane].insert(0, value)
            out.append(value)
        # 2. the last literal run ends it
        if i == N:
            break
        # 3. a match
        M = match_lengths.length() + 4
        if M > S - len(out):
            raise Reserved("a match takes the output past S bytes")
        code = packed[codes + i]
        if code < 4:
            if new_distances == N - R:
                raise Reserved("more new distances than N - R")
            D = 4 * (packed[low + new_distances]
                     + 256 * packed[high + new_distances]) + code
            new_distances += 1
            recent = [D] + recent[:3]
        elif code < 8:
            D = recent.pop(code - 4)
            recent.insert(0, D)
        else:
            raise Reserved("distance code %d > 7" % code)
        if D == 0 or D > len(out):
            raise Reserved("match distance %d with %d bytes output"
                           % (D, len(out)))
        # 4. one byte at a time: a match longer than D repeats itself
        for _ in range(M):
            out.append(out[-D])
    if len(out) < S:
        raise Reserved("packed skeleton ends after %d of %d bytes"
                       % (len(out), S))
    for section in lanes + [literal_lengths, match_lengths]:
        if section.left():
            raise Reserved("%d bytes of the %s left"
                           % (section.left(), section.what))
    if new_distances != N - R:
        raise Reserved("%d new distances of N - R = %d"
                       % (new_distances, N - R))
    return bytes(out)


# ---------------------------------------------------------------- driver


def decode_stream(buf, base=None, check_crc=True):
    """Decode a whole stream.

    base: dict name -> decoded bytes of the base model (for modes 2, 3).
    Returns list of (entry, bytes)."""
    entries, payload_start = parse(buf)
    out = []
    for e in entries:
        base_bytes = None
        if e.mode in (2, 3):
            if base is None or e.name not in base:
                raise WrongBase("no base tensor %r" % e.name)
            base_bytes = base[e.name]
            if len(base_bytes) != e.count * DTYPES[e.dtype][1]:
                raise WrongBase("base size mismatch for %r" % e.name)
            if zlib.crc32(base_bytes) != e.base_crc32:
                raise WrongBase("base crc mismatch for %r" % e.name)
        p0 = payload_start + e.payload_offset
        payload = buf[p0:p0 + e.payload_size]
        levels = decode_levels(e, payload)
        data = reconstruct(e, levels, base_bytes)
        if check_crc and zlib.crc32(data) != e.crc32:
            raise DataCRC("crc mismatch for %r" % e.name)
        out.append((e, data))
    return out


def out_dtype_name(e):
    return "float32" if e.dtype in (5, 6) else DTYPES[e.dtype][0]


if __name__ == "__main__":
    import hashlib
    args = sys.argv[1:]
    base = None
    if "--base" in args:
        i = args.index("--base")
        bpath = args[i + 1]
        del args[i:i + 2]
        base = {e.name: d for e, d in
                decode_stream(open(bpath, "rb").read())}
    for e, d in decode_stream(open(args[0], "rb").read(), base):
        print(e.name, out_dtype_name(e), e.dims, "mode", e.mode,
              "pred", e.prediction, "H", e.history, "rank", e.rank,
              "peak", e.peak, "peak_axis", e.peak_axis,
              hashlib.sha256(d).hexdigest()[:16])
