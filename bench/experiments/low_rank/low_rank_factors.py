"""Experiment: code a tensor as low-rank factors plus the residual, per tensor where it pays.

The context-mixing bound (../cm_bound) found most of its margin over tinycabac in a
low-rank row predictor: the rows of some tensors (the landmark regression heads above
all: face_landmark's [1404, 3, 3, 32] output layer) lie near a subspace of small
dimension. cm_bound learns that subspace causally, at some hundred times tinycabac's decode
cost. A decoder can have the same prediction for k multiply-adds per weight if the encoder
sends the factors instead:

    rows R (output channels x the rest) ~ A @ B.T,  A = U_k S_k (rows x k),  B = V_k (columns x k)

from the SVD of the int8 levels, each factor column quantised to int8 with its own scale.
The stream would carry A and B (coded as int8 tensors by the real encoder, plus 2 x 32-bit
scales per rank) and the residual R - round(A B^T) (coded by the real encoder, as int16).
Per tensor the encoder keeps the plain coding unless some rank k in KS is smaller in total.
Only output-channel-first tensors with at least 8 rows and columns are tried (a depthwise
tensor's channel is its last axis).

The scales are float here, so this is the figure such a format could reach, not a
bit-exact design: a decoder would need integer scales (FORMAT 6.2's mantissa-exponent
steps would do) and B, C x k bytes, in RAM or read in place from the stream.

Run from the repository root: .venv/bin/python bench/experiments/low_rank/low_rank_factors.py
(about 2 minutes on 2 cores).
"""

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
import tinycabac  # noqa: E402
from corpus import load_corpus  # noqa: E402

KS = (2, 4, 8, 16, 32, 64)
SCALE_BITS_PER_RANK = 2 * 32
MIN_SIDE = 8


def payload_bits(levels: np.ndarray) -> int:
    stream = tinycabac.encode({"x": levels})
    return 8 * tinycabac.info(stream)[0].payload_bytes


def int8_columns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column as int8 levels and its scale (max |x| / 127)."""
    scales = np.abs(matrix).max(axis=0) / 127
    scales[scales == 0] = 1
    return np.rint(matrix / scales).astype(np.int8), scales


def factored_bits(levels: np.ndarray, rows: np.ndarray, k: int, svd) -> int:
    u, s, vt = svd
    a, a_scales = int8_columns(u[:, :k] * s[:k])
    b, b_scales = int8_columns(vt[:k].T)
    prediction = np.rint((a * a_scales) @ (b * b_scales).T)
    residual = (rows - prediction).astype(np.int16).reshape(levels.shape)
    return payload_bits(residual) + payload_bits(a) + payload_bits(b) + SCALE_BITS_PER_RANK * k


def tensor_bits(tensor) -> tuple[int, int, int]:
    """(weights, plain bits, best bits) and the rank chosen (0: plain)."""
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
