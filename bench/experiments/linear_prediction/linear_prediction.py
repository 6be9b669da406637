"""Experiment: per-tensor linear prediction of each level from a few earlier ones.

The context-mixing bound (bench/experiments/cm_bound/) credits "the levels one to three
rows back and the kernel taps used as centred predictions" with about 1% of the corpus.
This measures the part of it a microcontroller could afford as one more prediction kind:
per tensor, up to MAX_TAPS causal neighbours at lags chosen greedily (least squares) from
the products of trailing dimensions (1 = the previous element, the innermost dimension =
one kernel tap back, ..., one and two rows back), integer weights in 1/64 units, the
prediction (sum + 32) >> 6, and the residual coded by the format's own coder (the real
encoder core, with scale contexts at the row length where they pay). Per tensor the
smaller of that and what tinycabac's encoder does now (any prediction kind, factors
included) is kept; side information: 3 bytes per tap and one.

Nothing here is in the format: it is the measurement that decided against adding it
(docs/DESIGN_NOTES.md, "Compression experiments").

Run from the repository root (about 15 seconds on 2 cores):
    .venv/bin/python bench/experiments/linear_prediction/linear_prediction.py [MAX_TAPS]
"""

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from corpus import load_corpus  # noqa: E402

from tinycabac import native, predict  # noqa: E402

WEIGHT_SHIFT = 6  # weights in 1/64 units, int8
MIN_ENERGY_GAIN = 0.02  # a tap must cut the residual energy by 2%
SIDE_BYTES_PER_TAP = 3  # lag (u16) and weight (i8)
MIN_ELEMENTS = 64


def lagged(x: np.ndarray, lag: int) -> np.ndarray:
    """x shifted by lag elements, zeros before the start (what a decoder's ring holds)."""
    y = np.zeros_like(x)
    y[lag:] = x[:-lag]
    return y


def lag_candidates(shape: tuple[int, ...], size: int) -> list[int]:
    """The previous element, every product of trailing dimensions, two rows back."""
    lags, product = {1}, 1
    for dim in reversed(shape[1:]):
        product *= dim
        lags.add(product)
    if len(shape) >= 2:
        lags.add(2 * (size // shape[0]))
    return sorted(lag for lag in lags if 0 < lag < size)


def residual(x: np.ndarray, lags: list[int]) -> np.ndarray:
    """x minus its integer prediction from the least-squares weights at `lags`."""
    taps = np.stack([lagged(x, lag) for lag in lags], axis=1)
    weights, *_ = np.linalg.lstsq(taps.astype(np.float64), x.astype(np.float64), rcond=None)
    quantized = np.clip(np.rint(weights * 2**WEIGHT_SHIFT), -128, 127).astype(np.int64)
    return x - ((taps @ quantized + (1 << (WEIGHT_SHIFT - 1))) >> WEIGHT_SHIFT)


def coded_bytes(values: np.ndarray, row_length: int) -> int:
    """Payload bytes of `values` as the format codes levels, with scale contexts if smaller."""
    activity = native.initial_activity(values)
    best = len(native.encode_levels(values, "", activity))
    if 0 < row_length < values.size:
        columns = native.column_activities(values, row_length, activity)
        best = min(best, len(native.encode_levels(values, "", activity, columns)) +
                   predict.directory_field_bytes(predict.PREDICT_SCALE, row_length))
    return best


def tensor_bytes(levels: np.ndarray, max_taps: int) -> tuple[int, int]:
    """(bytes as tinycabac codes the tensor now, bytes with the best linear prediction or now)."""
    x = np.ascontiguousarray(levels, dtype=np.int64).ravel()
    now = predict.code_levels("t", tuple(levels.shape), x, predict.Prediction())
    now_bytes = len(now.payload) + predict.directory_field_bytes(now.prediction, now.history, now.peaks)
    if x.size < MIN_ELEMENTS:
        return now_bytes, now_bytes
    row_length = x.size // levels.shape[0] if levels.ndim >= 2 else 0
    chosen, best = [], now_bytes
    energy = float((x.astype(np.float64) ** 2).sum())
    candidates = lag_candidates(levels.shape, x.size)
    for _ in range(max_taps):
        trials = [(float((residual(x, chosen + [lag]).astype(np.float64) ** 2).sum()), lag)
                  for lag in candidates if lag not in chosen]
        if not trials or min(trials)[0] > (1 - MIN_ENERGY_GAIN) * energy:
            break
        energy, lag = min(trials)
        chosen.append(lag)
        best = min(best, coded_bytes(residual(x, chosen), row_length) + SIDE_BYTES_PER_TAP * len(chosen) + 1)
    return now_bytes, best


def model_row(args) -> tuple[str, int, int, int]:
    model, max_taps = args
    pairs = [tensor_bytes(t.int8_levels(), max_taps) for t in model.tensors]
    return model.name, model.num_weights, sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def main() -> None:
    max_taps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"| model | payloads now | with linear prediction (up to {max_taps} taps) | change |")
    print("|---|---:|---:|---:|")
    total_now = total_linear = total_weights = 0
    with Pool(2) as pool:
        for name, weights, now, linear in pool.imap(model_row, [(m, max_taps) for m in load_corpus()]):
            total_now, total_linear, total_weights = total_now + now, total_linear + linear, total_weights + weights
            print(f"| {name} | {8 * now / weights:.4f} | {8 * linear / weights:.4f} | {100 * (linear / now - 1):+.2f}% |")
    print(f"| **corpus** | {8 * total_now / total_weights:.4f} | {8 * total_linear / total_weights:.4f} | "
          f"{100 * (total_linear / total_now - 1):+.2f}% |")


if __name__ == "__main__":
    main()
