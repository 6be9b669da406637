"""Experiment: a flag per output channel that says the channel is all zero.

hand_landmark_full and hand_landmark_lite hold pruned layers: in some 1x1 convolutions
more than half of the output channels are all zero (and the next layer's matching input
channels, which scale prediction already codes cheaply). The format codes such a row as
levels; its running activity falls to 0 within a few elements, and the first levels of the
next live row pay for its climb back. This measures a one-bit flag per output channel
(sent for free of coding, one bit each) with only the live rows coded by tinycabac's
encoder, against the encoder as it is, on every tensor whose output channels come first
and that holds an all-zero one.

Nothing here is in the format (docs/DESIGN_NOTES.md, "Compression experiments").

Run from the repository root (about 10 seconds after the corpus is cached):
    .venv/bin/python bench/experiments/zero_rows/zero_rows.py
"""

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from corpus import load_corpus  # noqa: E402

from tinycabac import predict  # noqa: E402


def payload_bytes(levels: np.ndarray) -> int:
    coded = predict.code_levels("t", levels.shape, levels.astype(np.int64).ravel(), predict.Prediction())
    return len(coded.payload)


def model_row(model) -> tuple[str, int, int, int, int]:
    tensors = now = flagged = 0
    for tensor in model.tensors:
        levels = tensor.int8_levels()
        dead = np.abs(tensor.channel_rows(levels)).max(axis=1) == 0
        if tensor.channel_axis != 0 or not dead.any():
            continue
        tensors += 1
        now += payload_bytes(levels)
        flagged += payload_bytes(levels[~dead]) + (dead.size + 7) // 8
    return model.name, model.num_weights, tensors, now, flagged


def main() -> None:
    print("| model | tensors with dead channels | bytes now | with the flags | bits/weight of the model |")
    print("|---|---:|---:|---:|---:|")
    weights = saved = 0
    with Pool(2) as pool:
        for name, count, tensors, now, flagged in pool.imap(model_row, load_corpus()):
            weights, saved = weights + count, saved + now - flagged
            if tensors:
                print(f"| {name} | {tensors} | {now} | {flagged} | {8 * (flagged - now) / count:+.4f} |")
    print(f"| **corpus** | | | | {-8 * saved / weights:+.4f} |")


if __name__ == "__main__":
    main()
