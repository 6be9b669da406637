"""Experiment: the low-rank row prediction learnt causally, the residual coded by the real encoder.

The decoder-side alternative to low_rank_factors.py, as ../cm_bound predicts: for each
row, the basis is the top RANK eigenvectors of the Gram matrix of the rows before it
(eigh at first, then one warm-started step of subspace iteration every REFRESH rows); the
row's coefficients are a ridge fit (LAMBDA) on the row's already coded prefix, refitted
every STEP elements, and predict the next STEP elements. The residual (level minus the
rounded prediction) is coded by the real encoder; per tensor the smaller of that and the
plain coding is kept. Nothing is sent besides the residual, but a decoder would need the
C x C Gram matrix, and thousands of float operations per weight.

Run from the repository root:
    .venv/bin/python bench/experiments/low_rank/causal_low_rank.py [MODEL ...]
(default face_landmark and iris_landmark, about 30 s; the large models take hours).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import payload_bits  # noqa: E402
from corpus import load_corpus  # noqa: E402
from low_rank_factors import MIN_SIDE  # noqa: E402

RANK, LAMBDA, REFRESH, STEP = 32, 0.25, 4, 8
MAX_ROW = 2304


def causal_residual(rows: np.ndarray) -> np.ndarray:
    count, length = rows.shape
    values = rows.astype(np.float64)
    prediction = np.zeros_like(values)
    gram, basis = np.zeros((length, length)), None
    starts = np.arange(STEP, length, STEP)
    for r in range(count):
        if r >= RANK // 2 and (basis is None or r % REFRESH == 0):
            if basis is None or basis.shape[1] < min(RANK, r):
                basis = np.linalg.eigh(gram)[1][:, ::-1][:, :min(RANK, r)]
            else:
                basis = np.linalg.qr(gram @ basis)[0]
            # the prefix's normal matrix before each refit, for every refit of the row
            normal = np.cumsum(basis[:, :, None] * basis[:, None, :], axis=0)[starts - 1]
        if basis is not None and len(starts):
            rhs = np.cumsum(basis * values[r][:, None], axis=0)[starts - 1]
            coefficients = np.linalg.solve(normal + LAMBDA * np.eye(basis.shape[1]), rhs[:, :, None])[:, :, 0]
            for start, c in zip(starts, coefficients):
                prediction[r, start:start + STEP] = basis[start:start + STEP] @ c
        gram += np.outer(values[r], values[r])
    return rows.astype(np.int32) - np.rint(prediction).astype(np.int32)


def main() -> None:
    names = sys.argv[1:] or ["face_landmark", "iris_landmark"]
    for model in (m for m in load_corpus() if m.name in names):
        plain_total = best_total = 0
        for tensor in model.tensors:
            levels = tensor.int8_levels()
            plain = best = payload_bits(levels)
            rows = tensor.channel_rows(levels)
            if tensor.channel_axis == 0 and MIN_SIDE <= rows.shape[1] <= MAX_ROW and rows.shape[0] > RANK // 2:
                residual = causal_residual(rows).astype(np.int16).reshape(levels.shape)
                best = min(plain, payload_bits(residual))
            plain_total += plain
            best_total += best
        print(f"{model.name}: {plain_total / model.num_weights:.4f} -> {best_total / model.num_weights:.4f} "
              f"bits/weight ({100 * (best_total / plain_total - 1):+.2f}%)")


if __name__ == "__main__":
    main()
