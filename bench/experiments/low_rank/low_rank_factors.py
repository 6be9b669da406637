"""Experiment: code a tensor as low-rank factors plus the residual, per tensor where it pays.

The context-mixing bound (../cm_bound) found most of its margin over tinycabac in a
low-rank row predictor: the rows of some tensors (the landmark regression heads above
all: face_landmark's [1404, 3, 3, 32] output layer) lie near a subspace of small
dimension. cm_bound learns that subspace causally, at some hundred times tinycabac's decode
cost. A decoder can have the same prediction for k multiply-adds per weight if the encoder
sends the factors instead:

    rows R (output channels x the rest) ~ A @ B.T,  A = U_k S_k (rows x k),  B = V_k (columns x k)

from the SVD of the int8 levels, each factor column quantised to int8 with its own scale.
The prediction is integer arithmetic a decoder can repeat exactly: the two scales of rank
i fold into one multiplier M_i = round(scale_a_i * scale_b_i * 2^16), and

    prediction[r, j] = (sum_i A[r, i] * B[j, i] * M_i + 2^15) >> 16

(with A[r, i] * M_i formed once per row, k multiply-adds per weight; the sums stay far
inside 32 bits on the corpus). The stream would carry A and B (coded as int8 tensors by
the real encoder), the k multipliers (16 bits each) and the residual R - prediction
(coded by the real encoder, as int16). Per tensor the encoder keeps the plain coding
unless some rank k in KS is smaller in total. Only output-channel-first tensors with at
least 8 rows and columns are tried (a depthwise tensor's channel is its last axis). What
is not counted: the few bytes a directory entry would need for k. A decoder needs B,
C x k bytes, in RAM or read in place from the stream.

Run from the repository root: .venv/bin/python bench/experiments/low_rank/low_rank_factors.py
(about 2 minutes on 2 cores).
"""

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from common import payload_bits  # noqa: E402
from corpus import load_corpus  # noqa: E402

KS = (2, 4, 8, 16, 32, 64)
SHIFT = 16
MULTIPLIER_BITS = 16
MIN_SIDE = 8


def int8_columns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column as int8 levels and its scale (max |x| / 127)."""
    scales = np.abs(matrix).max(axis=0) / 127
    scales[scales == 0] = 1
    return np.rint(matrix / scales).astype(np.int8), scales


def factored_bits(levels: np.ndarray, rows: np.ndarray, k: int, svd) -> int:
    u, s, vt = svd
    a, a_scales = int8_columns(u[:, :k] * s[:k])
    b, b_scales = int8_columns(vt[:k].T)
    multipliers = np.rint(a_scales * b_scales * 2.0**SHIFT).astype(np.int64)
    if multipliers.max() >= 1 << MULTIPLIER_BITS:
        raise ValueError(f"a multiplier needs more than {MULTIPLIER_BITS} bits")
    sums = (a.astype(np.int64) * multipliers) @ b.astype(np.int64).T
    if np.abs(sums).max() >= 1 << 31:
        raise ValueError("a prediction sum leaves 32 bits")
    prediction = (sums + (1 << (SHIFT - 1))) >> SHIFT
    residual = (rows - prediction).astype(np.int16).reshape(levels.shape)
    return payload_bits(residual) + payload_bits(a) + payload_bits(b) + MULTIPLIER_BITS * k


def tensor_bits(tensor) -> tuple[int, int, int, int]:
    """(weights, plain bits, best bits, the rank chosen: 0 for plain)."""
    levels = tensor.int8_levels()
    plain = payload_bits(levels)
    best, rank = plain, 0
    if tensor.channel_axis == 0:
        rows = tensor.channel_rows(levels).astype(np.float64)
        if min(rows.shape) >= MIN_SIDE:
            svd = np.linalg.svd(rows, full_matrices=False)
            for k in (k for k in KS if 4 * k <= min(rows.shape)):
                bits = factored_bits(levels, rows, k, svd)
                if bits < best:
                    best, rank = bits, k
    return levels.size, plain, best, rank


def model_bits(name: str):
    model = next(m for m in load_corpus() if m.name == name)
    results = [(t, *tensor_bits(t)) for t in model.tensors]
    totals = np.sum([r[1:4] for r in results], axis=0)
    chosen = [(t.weights.shape, rank, 100 * (best / plain - 1)) for t, _, plain, best, rank in results if rank]
    return name, totals, chosen


def main() -> None:
    print("| model | tinycabac payloads | with low-rank factors | change | tensors factored (shape, rank, change) |")
    print("|---|---:|---:|---:|---|")
    corpus = np.zeros(3)
    with Pool(2) as pool:
        for name, (weights, plain, best), chosen in pool.imap(model_bits, [m.name for m in load_corpus()]):
            corpus += (weights, plain, best)
            detail = "; ".join(f"{shape} k={rank} {change:+.1f}%" for shape, rank, change in sorted(chosen, key=lambda c: c[2])[:3])
            print(f"| {name} | {plain / weights:.4f} | {best / weights:.4f} | {100 * (best / plain - 1):+.2f}% | {len(chosen)}: {detail} |")
    weights, plain, best = corpus
    print(f"| **corpus** | {plain / weights:.4f} | {best / weights:.4f} | {100 * (best / plain - 1):+.2f}% | |")


if __name__ == "__main__":
    main()
