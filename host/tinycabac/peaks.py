"""Channel peaks (FORMAT 5.9): each channel's first +-P sent as its position.

TFLite's symmetric per-channel int8 quantization maps every output channel's largest |w|
to exactly 127, so each channel holds a +-127. The adaptive coder prices that rare level at
10-14 bits; the channel's position of it and its sign cost log2(channel size) + 1. The
encoder offers this for lossless tensors whose every channel, along one axis, holds the
tensor's largest magnitude P; a decoder keeps the positions in 2 bytes per channel of
working memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_PEAK_CHANNELS = 65535  # FORMAT 3.2: 2 bytes each of working memory
MAX_PEAK_CHANNEL_SIZE = 32768  # a position and its sign in 16 bits
# Beyond this channel size a position costs as much as the level it replaces
# (about 12 bits for a +-127 among int8 weights): not worth an encode.
WORTH_TRYING_CHANNEL_SIZE = 2048
# promised_bits looks at this many levels, and the peaks must promise this much
PROXY_SAMPLE = 4096
MIN_PROMISED_BITS = 32


@dataclass(frozen=True)
class Peaks:
    magnitude: int  # P
    axis: int
    channels: int  # C = shape[axis]
    channel_size: int  # elements per channel
    mask: np.ndarray  # bool per element (C order): the peak elements
    preamble: list[tuple[int, int]]  # the payload's peak entries as (value, bits) bypass fields

    @property
    def work_size(self) -> int:
        return 2 * self.channels


def truncated_binary(value: int, count: int) -> tuple[int, int]:
    """`value` in 0..count-1 as (code, bits): the truncated binary code, floor(log2 count)
    bits for the first 2^(k+1) - count values and one more for the rest (FORMAT 5.9)."""
    k = count.bit_length() - 1
    short = (1 << (k + 1)) - count
    return (value, k) if value < short else (value + short, k + 1)


def peaks_along(levels: np.ndarray, shape: tuple[int, ...], axis: int, magnitude: int,
                max_channel_size: int = MAX_PEAK_CHANNEL_SIZE) -> Peaks | None:
    """Each channel's first +-magnitude along `axis`, None if a channel has none or the
    channels break the format's limits (or are larger than `max_channel_size`).  Works on
    the levels as they are (any integer dtype) with bool temporaries only: a tensor can
    be hundreds of MB."""
    channels = shape[axis]
    size = levels.size // channels if channels else 0
    if not 1 <= size <= max_channel_size or channels > MAX_PEAK_CHANNELS:
        return None
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = size // outer
    runs = levels.reshape(outer, channels, inner)
    at_peak = runs == magnitude  # numpy compares with a value the dtype cannot hold as all False
    at_peak |= runs == -magnitude
    # a channel's elements in order: its run in each slab, slab by slab
    first = np.ascontiguousarray(at_peak.transpose(1, 0, 2)).reshape(channels, size)
    if not first.any(axis=1).all():
        return None
    positions = first.argmax(axis=1)
    channel = np.arange(channels)
    elements = ((positions // inner) * channels + channel) * inner + positions % inner
    negative = levels.reshape(-1)[elements] < 0
    mask = np.zeros(levels.size, dtype=bool)
    mask[elements] = True
    preamble = []
    for position, sign in zip(positions.tolist(), negative.tolist()):
        code, bits = truncated_binary(position, size)
        preamble.append(((code << 1) | sign, bits + 1))
    return Peaks(magnitude, axis, channels, size, mask, preamble)


def promised_bits(levels: np.ndarray, magnitude: int, channels: int) -> float:
    """What sending the peaks as positions promises to save, roughly: a +-P coded as a
    level with the Rice parameter k of the levels' mean magnitude class (unary prefix,
    k suffix bits, sign) against a position in the channel and a sign.  It spares the
    encoder a trial encode where peaks cannot pay: wide channels of small levels."""
    sample = np.abs(levels.reshape(-1)[:PROXY_SAMPLE]).astype(np.float64)
    k = int(round(float(np.log2(sample + 1).mean()))) if sample.size else 0
    level_bits = (magnitude >> k) + 2 + k
    position_bits = np.log2(levels.size / channels) + 1
    return channels * (level_bits - position_bits)


def find_peaks(levels: np.ndarray, shape: tuple[int, ...], max_work: int) -> Peaks | None:
    """Peaks worth trying: along the first or the last axis (an output channel's place in
    TFLite convolutions and dense layers, and in depthwise convolutions), whichever has more
    channels, if every channel there holds +-P, P the largest |level|."""
    if levels.size == 0 or len(shape) < 2:
        return None
    magnitude = max(int(levels.max()), -int(levels.min()))
    if not 1 <= magnitude <= 2**31:
        return None
    axes = sorted({0, len(shape) - 1}, key=lambda a: -shape[a])
    for axis in axes:
        if 2 * shape[axis] > max_work or levels.size // shape[axis] < 2:
            continue  # no room for the positions, or nothing left to code besides them
        if promised_bits(levels, magnitude, shape[axis]) < MIN_PROMISED_BITS:
            continue
        peaks = peaks_along(levels, shape, axis, magnitude, WORTH_TRYING_CHANNEL_SIZE)
        if peaks is not None:
            return peaks
    return None
