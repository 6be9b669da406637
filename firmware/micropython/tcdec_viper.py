# SPDX-License-Identifier: Apache-2.0
"""tcdec_viper: the viper core of tcdec (MicroPython only).

tcdec imports this module when it can and otherwise decodes with its own
plain-Python core, which gives the same results.  It lives in a file of its
own because a port without the native code emitter (ESP32-C3 before
MicroPython 1.24, the webassembly port, builds with MICROPY_EMIT_NATIVE off)
refuses the whole file that holds @micropython.viper ("invalid micropython
decorator"), and the armv6m emitter before 1.26 refuses run() ("native
method too big"): tcdec catches that import and carries on.

Every function works on tcdec's state array (one array('I')); the layout
and return codes below must equal tcdec's, which a test checks.  tcdec's
_run_plain is the same algorithm as run() here, whose comments explain it
(docs/FORMAT.md).
"""

import micropython
from micropython import const

# State layout and return codes: copies of tcdec's (viper needs them as
# compile-time constants of this module).
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
_DONE = const(0)
_NEED_INPUT = const(1)
_NEED_OUTPUT = const(2)
_ERR_ESCAPE = const(-1)
_ERR_MAGNITUDE = const(-2)
_ERR_OVERRUN = const(-3)
_ERR_RANGE = const(-4)
_ERR_FLOAT = const(-5)
_ERR_PREDICTED = const(-7)
_ERR_FACTOR = const(-8)
_ERR_RESIDUAL = const(-9)
_DEPENDENT = const(2)  # _S_QUANTIZED of the dependent quantizer
_STATE_PARITY = const(0x96)
_MAX_VALUE_INPUT = const(64)

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


@micropython.viper
def prepare(st: ptr32):
    init = ptr8(_CONTEXT_INIT)
    i = 0
    while i < _S_CONTEXT_END - _S_PREFIX:
        st[_S_PREFIX + i] = uint(init[i >> 1]) << 7  # FORMAT 5.2: fast and slow alike
        i += 1
    if st[_S_CRC_TABLE + 1] != 0:
        return
    poly = (uint(0xEDB8) << 16) | uint(0x8320)  # no 32-bit literal: 31-bit small ints
    n = 0
    while n < 256:
        c = uint(n)
        j = 0
        while j < 8:
            if c & 1:
                c = (c >> 1) ^ poly
            else:
                c = c >> 1
            j += 1
        st[_S_CRC_TABLE + n] = c
        n += 1

@micropython.viper
def move(buf: ptr8, to: int, start: int, count: int):
    i = 0
    while i < count:  # forward copy: `to` <= `start`, overlap is fine
        buf[to + i] = buf[start + i]
        i += 1

@micropython.viper
def run(st: ptr32, aux: ptr8, src: ptr8, dst: ptr8, ring: ptr8) -> int:
    # Machine words are 32 or 64 bits: values stay below 2**32 and are
    # masked after left shifts; no unary minus (older viper emitters
    # clobber the operand); literals compared with uint are cast.
    mask = uint(st[_S_MASK])
    top = uint(1) << 31
    rng = uint(st[_S_RANGE])
    code = uint(st[_S_CODE])
    pos = int(st[_S_POS])
    limit = int(st[_S_LIMIT])
    guarded = int(st[_S_GUARDED])
    left = int(st[_S_LEFT])
    opos = int(st[_S_OUT_POS])
    oend = int(st[_S_OUT_END])
    esize = int(st[_S_ESIZE])
    activity = uint(st[_S_ACTIVITY])
    crc = uint(st[_S_CRC])
    quantized = int(st[_S_QUANTIZED])
    offset = uint(st[_S_OFFSET])
    pos_min = uint(st[_S_POS_MIN])
    pos_max = uint(st[_S_POS_MAX])
    neg_min = uint(st[_S_NEG_MIN])
    neg_max = uint(st[_S_NEG_MAX])
    step_at = int(st[_S_STEP_AT])
    inner_left = int(st[_S_INNER_LEFT])
    delta = int(st[_S_DELTA])
    bcrc = uint(st[_S_BASE_CRC])
    bias = uint(st[_S_BIAS])
    umax = uint(st[_S_UMAX])
    previous = int(st[_S_PREVIOUS_SIGN])
    history = int(st[_S_HISTORY])
    slot = int(st[_S_HISTORY_POS])
    scale = int(st[_S_SCALE])
    rank = int(st[_S_RANK])
    factor_shift = int(st[_S_FACTOR_SHIFT])
    factor_activity = uint(st[_S_FACTOR_ACTIVITY])
    factors_left = int(st[_S_FACTORS_LEFT])
    qstate = int(st[_S_QUANTIZER_STATE])
    peak_next = int(st[_S_PEAK_NEXT])
    overrun = 0
    status = _DONE
    while left > 0:
        if oend - opos < esize:
            status = _NEED_OUTPUT
            break
        if left == peak_next:
            # FORMAT 5.9, channel peaks: never met without them (0).
            # Before the first element, the entries: one per pass, each
            # checked for input like a value (it reads 17 bypass bins at
            # most).  Then each peak element, whose level is +-P: nothing
            # decoded, no context, activity or sign moved; the scale ring
            # moves on past its slot, unchanged.
            peak_entries = int(st[_S_PEAK_ENTRIES])
            peak_value = uint(0)
            peak_emit = 0
            if peak_entries != 0:
                if guarded and limit - pos < _MAX_VALUE_INPUT:
                    status = _NEED_INPUT
                    break
                # the place in the channel's n elements as a truncated
                # binary code, k = floor(log2 n) bins, one more for the
                # places from u = 2**(k + 1) - n on; then the sign bin
                peak_bits = int(st[_S_PEAK_BITS])
                peak_short = (2 << peak_bits) - int(st[_S_PEAK_CHANNEL_SIZE])
                peak_count = peak_bits + 1
                peak_code = 0
                peak_j = 0
                while peak_j < peak_count:
                    rng = rng >> 1
                    peak_code = peak_code << 1
                    if code >= rng:
                        code = code - rng
                        peak_code = peak_code | 1
                    while rng < uint(0x1000000):
                        rng = rng << 8
                        code = (code << 8) & mask
                        if pos < limit:
                            code = code | uint(src[pos])
                            pos += 1
                        else:
                            overrun = 1
                    peak_j += 1
                    if peak_j == peak_bits and peak_code >= peak_short:
                        peak_count += 1
                peak_place = peak_code >> 1
                if peak_count > peak_bits + 1:
                    peak_place = peak_place - peak_short
                # 2 bytes a channel after the ring: place | negative << 15
                peak_at = history + 2 * (int(st[_S_PEAK_CHANNELS]) - peak_entries)
                ring[peak_at] = peak_place & 0xFF
                ring[peak_at + 1] = (peak_place >> 8) | ((peak_code & 1) << 7)
                peak_entries -= 1
                st[_S_PEAK_ENTRIES] = peak_entries
                if overrun:
                    status = _ERR_OVERRUN
                    break
                if peak_entries != 0:
                    continue
            else:
                peak_emit = 1
                m = uint(st[_S_PEAK])
                if int(st[_S_PEAK_NEGATIVE]):
                    if m < neg_min or m > neg_max:
                        status = _ERR_RANGE
                        break
                    peak_value = (offset - m) & mask
                else:
                    if m < pos_min or m > pos_max:
                        status = _ERR_RANGE
                        break
                    peak_value = (offset + m) & mask
                if history != 0:
                    slot += 1
                    if slot == history:
                        slot = 0
            # The next peak, 0 if none is left: blocks of `inner`
            # elements, each of one channel, looked at in element order
            # from where the last look stopped.  A block holds its
            # channel's peak when the place lies in it; every peak lies in
            # one block, so the walk ends, and over the tensor it passes
            # each block once.
            peak_next = 0
            peaks_left = int(st[_S_PEAKS_LEFT])
            if peaks_left != 0:
                peak_inner = int(st[_S_PEAK_INNER])
                peak_channels = int(st[_S_PEAK_CHANNELS])
                peak_channel = int(st[_S_PEAK_CHANNEL])
                peak_base = int(st[_S_PEAK_BASE])
                peak_block_left = int(st[_S_PEAK_BLOCK_LEFT])
                while peak_next == 0:
                    peak_at = history + 2 * peak_channel
                    peak_high = int(ring[peak_at + 1])
                    peak_place = (int(ring[peak_at]) | ((peak_high & 0x7F) << 8)) - peak_base
                    if peak_place >= 0 and peak_place < peak_inner:
                        peak_next = peak_block_left - peak_place
                        st[_S_PEAK_NEGATIVE] = peak_high >> 7
                    peak_block_left -= peak_inner
                    peak_channel += 1
                    if peak_channel == peak_channels:
                        peak_channel = 0
                        peak_base += peak_inner
                st[_S_PEAKS_LEFT] = peaks_left - 1
                st[_S_PEAK_CHANNEL] = peak_channel
                st[_S_PEAK_BASE] = peak_base
                st[_S_PEAK_BLOCK_LEFT] = peak_block_left
            if peak_emit == 0:
                continue  # the last entry read: the peaks come with the elements
            i = 0
            while i < esize:
                byte = peak_value & 0xFF
                dst[opos] = byte
                crc = (crc >> 8) ^ uint(st[_S_CRC_TABLE + int((crc ^ byte) & 0xFF)])
                peak_value = peak_value >> 8
                opos += 1
                i += 1
            left -= 1
            continue
        if guarded and limit - pos < _MAX_VALUE_INPUT:
            status = _NEED_INPUT
            break
        # FORMAT 5.4: Rice parameter and prefix context set from `act`,
        # the activity this value is coded with: the running activity,
        # or with scale prediction (5.7) its 1:3 mix with the activity
        # of the element's column, which the ring holds; a factor value
        # (5.8) has an activity of its own, as factors span the int8
        # range and the residuals around their product do not
        act = activity
        if factors_left != 0:
            act = factor_activity
        elif scale:
            act = (act + uint(3) * uint(ring[slot])) >> 2
        k = act >> 3
        if k > uint(31):
            k = uint(31)
        pset = act >> 1
        if k != uint(0):
            pset = uint(15)
            if k < uint(12):
                pset = k + 3
        ctx = _S_PREFIX + int(pset) * 8
        # FORMAT 5.5: unary prefix, context-coded
        p = uint(0)
        while p < uint(16):
            c = ctx + 6
            if p < uint(3):
                c = ctx + int(p) * 2
            fast = int(st[c])
            slow = int(st[c + 1])
            bound = (rng >> 15) * uint((fast + slow) >> 1)
            if code < bound:
                rng = bound
                st[c] = fast + ((32768 - fast) >> 5)
                st[c + 1] = slow + ((32768 - slow) >> 8)
                bit = 0
            else:
                code = code - bound
                rng = rng - bound
                st[c] = fast - (fast >> 5)
                st[c + 1] = slow - (slow >> 8)
                bit = 1
            while rng < uint(0x1000000):
                rng = rng << 8
                code = (code << 8) & mask
                if pos < limit:
                    code = code | uint(src[pos])
                    pos += 1
                else:
                    overrun = 1
            if bit == 0:
                break
            p += 1
        if p == uint(16):
            # escape: exp-Golomb order 0 in bypass bins
            n = 0
            while n <= 31:
                rng = rng >> 1
                b = uint(0)
                if code >= rng:
                    code = code - rng
                    b = uint(1)
                while rng < uint(0x1000000):
                    rng = rng << 8
                    code = (code << 8) & mask
                    if pos < limit:
                        code = code | uint(src[pos])
                        pos += 1
                    else:
                        overrun = 1
                if b == uint(0):
                    break
                n += 1
            if n > 31:
                status = _ERR_ESCAPE
                break
            v = uint(1)
            i = 0
            while i < n:
                rng = rng >> 1
                b = uint(0)
                if code >= rng:
                    code = code - rng
                    b = uint(1)
                while rng < uint(0x1000000):
                    rng = rng << 8
                    code = (code << 8) & mask
                    if pos < limit:
                        code = code | uint(src[pos])
                        pos += 1
                    else:
                        overrun = 1
                v = (v << 1) | b
                i += 1
            v = v - 1
            if v > top:
                status = _ERR_MAGNITUDE
                break
            p = p + v
        m = p
        if k != uint(0):
            # Rice suffix: two context-coded bits, then bypass bits
            sset = k
            if sset > uint(15):
                sset = uint(15)
            sctx = _S_SUFFIX + (int(sset) - 1) * 12
            if p != uint(0):
                sctx += 6
            s = uint(0)
            j = uint(0)
            while j < k:
                if j < uint(2):
                    c = sctx
                    if j == uint(1):
                        c = sctx + 2 + int(s) * 2
                    fast = int(st[c])
                    slow = int(st[c + 1])
                    bound = (rng >> 15) * uint((fast + slow) >> 1)
                    if code < bound:
                        rng = bound
                        st[c] = fast + ((32768 - fast) >> 5)
                        st[c + 1] = slow + ((32768 - slow) >> 8)
                        s = s << 1
                    else:
                        code = code - bound
                        rng = rng - bound
                        st[c] = fast - (fast >> 5)
                        st[c + 1] = slow - (slow >> 8)
                        s = (s << 1) | uint(1)
                else:
                    rng = rng >> 1
                    if code >= rng:
                        code = code - rng
                        s = (s << 1) | uint(1)
                    else:
                        s = s << 1
                while rng < uint(0x1000000):
                    rng = rng << 8
                    code = (code << 8) & mask
                    if pos < limit:
                        code = code | uint(src[pos])
                        pos += 1
                    else:
                        overrun = 1
                j += 1
            if p > (top >> k):
                status = _ERR_MAGNITUDE
                break
            m = (p << k) | s
        if m > top:
            status = _ERR_MAGNITUDE
            break
        magnitude_class = 0
        t = m
        while t != uint(0):
            magnitude_class += 1
            t = t >> 1
        neg = 0
        if m != uint(0):
            # sign, context-coded by the previous sign and the class
            c = magnitude_class
            if c > 4:
                c = 4
            c = _S_SIGN + (previous * 4 + c - 1) * 2
            fast = int(st[c])
            slow = int(st[c + 1])
            bound = (rng >> 15) * uint((fast + slow) >> 1)
            if code < bound:
                rng = bound
                st[c] = fast + ((32768 - fast) >> 5)
                st[c + 1] = slow + ((32768 - slow) >> 8)
                previous = 2
            else:
                code = code - bound
                rng = rng - bound
                st[c] = fast - (fast >> 5)
                st[c + 1] = slow - (slow >> 8)
                neg = 1
                previous = 1
            while rng < uint(0x1000000):
                rng = rng << 8
                code = (code << 8) & mask
                if pos < limit:
                    code = code | uint(src[pos])
                    pos += 1
                else:
                    overrun = 1
        if overrun:
            status = _ERR_OVERRUN
            break
        if factors_left != 0:
            # FORMAT 5.8: an int8 factor, into the working memory: B
            # (H x R) at the start of the tensor, then each row's A (R,
            # after B) when its first element is next.  The sign context
            # follows factors and elements alike; the activity does not.
            factor_activity = factor_activity - (factor_activity >> 3) + uint(magnitude_class)
            if m > uint(127 + neg):
                status = _ERR_FACTOR
                break
            if neg:
                m = uint(256) - m  # two's complement byte; -128 is 128
            ring[(history + 1) * rank - factors_left] = m
            factors_left -= 1
            continue
        activity = activity - (activity >> 3) + uint(magnitude_class)
        if history != 0:
            # FORMAT 5.7: this element's ring slot (5.8: its column); the
            # next one's moves on, and after a row, factors want the next
            # row's A first (rank is 0 for the other kinds)
            here = slot
            slot += 1
            if slot == history:
                slot = 0
                factors_left = rank
            if rank != 0:
                # FORMAT 5.8: level = coded value + A[row] . B[column],
                # rounded at 2**-shift.  |coded| <= 2**30 and |sum| <=
                # 64 * 128 * 128 = 2**20 keep all of it in a signed 32-bit
                # word; the shift, of the sum biased by 2**24 (a multiple
                # of 2**shift), sees no negative number.
                if m > (top >> 1):
                    status = _ERR_RESIDUAL
                    break
                total = 0
                a_at = history * rank
                b_at = here * rank
                r = 0
                while r < rank:
                    # int8s from their two's complement bytes
                    x = (int(ring[a_at + r]) ^ 0x80) - 0x80
                    total += x * ((int(ring[b_at + r]) ^ 0x80) - 0x80)
                    r += 1
                if factor_shift != 0:
                    total += 0x1000000 + (1 << (factor_shift - 1))
                    total = (total >> factor_shift) - (0x1000000 >> factor_shift)
                level = int(m)
                if neg:
                    level = 0 - level
                level += total
                neg = 0
                if level < 0:
                    neg = 1
                    level = 0 - level
                m = uint(level)
            elif scale:
                # the column's activity moves on (a byte, mod 256)
                column = uint(ring[here])
                ring[here] = (column - (column >> 3) + uint(magnitude_class)) & 0xFF
            else:
                predicted = uint(ring[here])
                if predicted != uint(0):
                    # FORMAT 5.7, difference: level = coded value + the level
                    # H elements back.  Kept as sign and magnitude like the
                    # coded value (m, neg), so 32-bit words suffice:
                    # |level| <= 2**31 + 128 < 2**32.
                    predicted_neg = 0
                    if predicted >= uint(128):
                        predicted_neg = 1
                        predicted = uint(256) - predicted
                    if neg == predicted_neg:
                        m = m + predicted
                    elif m >= predicted:
                        m = m - predicted
                        if m == uint(0):
                            neg = 0
                    else:
                        m = predicted - m
                        neg = predicted_neg
                    if m > top:
                        status = _ERR_PREDICTED
                        break
                # the ring keeps the level clamped to -128..127 (a negative
                # level has m >= 1; its clamp is -128: 127 + neg)
                clamped = m
                if clamped > uint(127):
                    clamped = uint(127 + neg)
                if neg:
                    clamped = uint(256) - clamped
                ring[here] = clamped
        # FORMAT 6: reconstruction into a little-endian 32-bit pattern
        if quantized:
            mant = uint(aux[step_at]) | (uint(aux[step_at + 1]) << 8)
            ex = int(aux[step_at + 2])
            if ex >= 128:
                ex = ex - 256
            # product = m * mant < 2**47 as hi:lo 32-bit halves
            a = (m & 0xFFFF) * mant
            b = (m >> 16) * mant
            lo = (a + ((b & 0xFFFF) << 16)) & mask
            hi = b >> 16
            if lo < a:
                hi += 1
            if quantized == _DEPENDENT:
                # FORMAT 6.2: |q| = 2m, less 1 if m > 0 in the odd
                # states, so |q| * mant = 2 * product (- mant), computed
                # on the halves because |q| can be 2**32
                hi = (hi << 1) | (lo >> 31)
                lo = (lo << 1) & mask
                if (qstate & 1) and m != uint(0):
                    if lo < mant:
                        hi -= 1  # 2 * product >= 2 * mant: no underflow
                    lo = (lo - mant) & mask
                qstate = ((qstate << 1) & 7) | (int(m & 1) ^ ((_STATE_PARITY >> qstate) & 1))
            value = uint(0)
            if (hi | lo) != uint(0):
                t = lo
                length = 0
                if hi != uint(0):
                    t = hi
                    length = 32
                if t >= uint(0x10000):
                    t = t >> 16
                    length += 16
                if t >= uint(0x100):
                    t = t >> 8
                    length += 8
                if t >= uint(0x10):
                    t = t >> 4
                    length += 4
                if t >= uint(4):
                    t = t >> 2
                    length += 2
                if t >= uint(2):
                    t = t >> 1
                    length += 1
                length += int(t)
                e = length - 1 + ex
                if e + 126 >= 0:
                    if length > 24:
                        sh = length - 24
                        kept = ((lo >> sh) | (hi << (32 - sh))) & mask
                        rest = lo & ((uint(1) << sh) - 1)
                        half = uint(1) << (sh - 1)
                        if rest > half or (rest == half and (kept & 1) != uint(0)):
                            kept += 1
                    else:
                        kept = lo << (24 - length)
                    if kept == uint(0x1000000):
                        kept = uint(0x800000)
                        e += 1
                    if e > 127:
                        status = _ERR_FLOAT
                        break
                    value = (uint(e + 127) << 23) | (kept & uint(0x7FFFFF))
                else:
                    value = lo << (ex + 149)  # subnormal, exact: ex >= -128, so lo < 4
            if neg:
                value = value | top
            inner_left -= 1
            if inner_left == 0:
                inner_left = int(st[_S_INNER])
                step_at += 3
                if step_at == int(st[_S_STEP_STOP]):
                    step_at = int(st[_S_STEP_FIRST])
        elif delta:
            # FORMAT 6.3: base element from the output, read first; in
            # the biased domain u = value - dtype minimum, 0 <= u <= umax
            base = uint(0)
            i = 0
            while i < esize:
                byte = uint(dst[opos + i])
                bcrc = (bcrc >> 8) ^ uint(st[_S_CRC_TABLE + int((bcrc ^ byte) & 0xFF)])
                base = base | (byte << (8 * i))
                i += 1
            u = base ^ bias
            if neg:
                if m > u:
                    status = _ERR_RANGE
                    break
                u = u - m
            else:
                if m > umax - u:
                    status = _ERR_RANGE
                    break
                u = u + m
            value = (u ^ bias) & mask
        else:
            if neg:
                if m < neg_min or m > neg_max:
                    status = _ERR_RANGE
                    break
                value = (offset - m) & mask
            else:
                if m < pos_min or m > pos_max:
                    status = _ERR_RANGE
                    break
                value = (offset + m) & mask
        i = 0
        while i < esize:
            byte = value & 0xFF
            dst[opos] = byte
            crc = (crc >> 8) ^ uint(st[_S_CRC_TABLE + int((crc ^ byte) & 0xFF)])
            value = value >> 8
            opos += 1
            i += 1
        left -= 1
    st[_S_RANGE] = rng
    st[_S_CODE] = code
    st[_S_POS] = pos
    st[_S_LEFT] = left
    st[_S_OUT_POS] = opos
    st[_S_ACTIVITY] = activity
    st[_S_CRC] = crc
    st[_S_STEP_AT] = step_at
    st[_S_INNER_LEFT] = inner_left
    st[_S_BASE_CRC] = bcrc
    st[_S_PREVIOUS_SIGN] = previous
    st[_S_HISTORY_POS] = slot
    st[_S_FACTOR_ACTIVITY] = factor_activity
    st[_S_FACTORS_LEFT] = factors_left
    st[_S_QUANTIZER_STATE] = qstate
    st[_S_PEAK_NEXT] = peak_next
    return status
