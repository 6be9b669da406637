"""Experiment: the two smallest models' payloads with every per-tensor choice measured so far.

Per tensor, the smallest of:
- the format's coding (the real encoder);
- channel-maximum positions (channel_max.py): each row's first +-127 sent as its position
  and sign, the rest coded by the real encoder (output-channel-first tensors only, which a
  streaming decoder can follow);
- a magnitude tree: the 7-bit magnitude as a binary tree of 127 contexts and a sign bin,
  with the format's two-rate probability model (rates 1/32 and 1/256, mean of the two),
  ideal code length (DESIGN_NOTES, "a second binarization chosen per tensor");
- the magnitude tree of the levels left after the positions.
The choice itself is not counted (one or two bits per tensor).

Run from the repository root: .venv/bin/python bench/experiments/channel_max/tree_and_positions.py
(about 5 s).
"""

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from channel_max import without_channel_max  # noqa: E402
from common import payload_bits  # noqa: E402
from corpus import load_corpus  # noqa: E402

SMALL_MODELS = ("selfie_segmentation", "face_detection_short_range")
ONE = 1 << 15  # probability scale of the format's context model (FORMAT 5.2)
FAST_SHIFT, SLOW_SHIFT = 5, 8
MAGNITUDE_BITS = 7


class TwoRateContext:
    def __init__(self) -> None:
        self.fast = self.slow = ONE // 2

    def cost_and_update(self, bit: int) -> float:
        p_one = (self.fast + self.slow) / (2 * ONE)
        if bit:
            self.fast += (ONE - self.fast) >> FAST_SHIFT
            self.slow += (ONE - self.slow) >> SLOW_SHIFT
        else:
            self.fast -= self.fast >> FAST_SHIFT
            self.slow -= self.slow >> SLOW_SHIFT
        return -math.log2(p_one if bit else 1.0 - p_one)


def magnitude_tree_bits(levels: np.ndarray) -> float:
    tree = [TwoRateContext() for _ in range(1 << MAGNITUDE_BITS)]
    sign = TwoRateContext()
    bits = 0.0
    for value in levels.astype(np.int32).ravel().tolist():
        magnitude, node = abs(value), 1
        for shift in range(MAGNITUDE_BITS - 1, -1, -1):
            bit = (magnitude >> shift) & 1
            bits += tree[node].cost_and_update(bit)
            node = 2 * node + bit
        if magnitude:
            bits += sign.cost_and_update(int(value < 0))
    return bits


def best_bits(tensor, levels: np.ndarray) -> np.ndarray:
    """(format, format or tree, format or positions, best of all four), in bits."""
    plain = payload_bits(levels)
    tree = min(plain, magnitude_tree_bits(levels))
    reduced = without_channel_max(tensor, levels) if tensor.channel_axis == 0 else None
    if reduced is None:
        return np.array([plain, tree, plain, tree])
    rest, position_bits = reduced
    positions = min(plain, payload_bits(rest) + position_bits)
    return np.array([plain, tree, positions, min(tree, positions, magnitude_tree_bits(rest) + position_bits)])


def main() -> None:
    print("| model | format | format or tree | format or positions | best of all |")
    print("|---|---:|---:|---:|---:|")
    for model in (m for m in load_corpus() if m.name in SMALL_MODELS):
        total = sum(best_bits(t, t.int8_levels()) for t in model.tensors)
        print(f"| {model.name} | " + " | ".join(f"{bits / model.num_weights:.4f}" for bits in total) + " |")


if __name__ == "__main__":
    main()
