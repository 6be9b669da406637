"""Experiment: how much the sign of a nearby level says about a level's sign.

Signs take 14% of a corpus stream (context_rates.py) at about one bit per nonzero level:
the format's sign contexts (FORMAT 5.5: the previous coded value's sign and the magnitude
class) find almost nothing. The context-mixing bound (cm_bound/) credits the neighbours'
values with about 1% of the corpus. This is an upper bound for the sign part of that: per
tensor, the sign's order-0 entropy given the sign (-, 0, +) of the level at the best single
lag among the previous element, every product of trailing dimensions (one kernel tap back,
one row back, ...), with the histograms sent for free, against the order-0 entropy of the
signs. Ideal code lengths, numpy.

Nothing here is in the format (docs/DESIGN_NOTES.md, "Compression experiments").

Run from the repository root (about 30 seconds after the corpus is cached):
    .venv/bin/python bench/experiments/sign_neighbours/sign_neighbours.py
"""

import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from corpus import load_corpus  # noqa: E402


def binary_entropy(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def lags(shape: tuple[int, ...], size: int) -> list[int]:
    """The previous element and every product of trailing dimensions."""
    found, product = {1}, 1
    for dim in reversed(shape[1:]):
        product *= dim
        found.add(product)
    return sorted(lag for lag in found if 0 < lag < size)


def sign_bits(signs: np.ndarray) -> float:
    """Order-0 code length of the nonzero levels' signs."""
    nonzero = signs[signs != 0]
    return binary_entropy(float((nonzero > 0).mean())) * nonzero.size if nonzero.size else 0.0


def sign_bits_given(signs: np.ndarray, lag: int) -> float:
    """Code length of the signs given the sign `lag` elements back (the first `lag` alone)."""
    bits = sign_bits(signs[:lag])
    current, earlier = signs[lag:], signs[:-lag]
    for value in (-1, 0, 1):
        bits += sign_bits(current[earlier == value])
    return bits


def model_row(model) -> tuple[str, int, float, float]:
    alone = given = 0.0
    for tensor in model.tensors:
        signs = np.sign(tensor.int8_levels().astype(np.int8)).ravel()
        bits = sign_bits(signs)
        alone += bits
        given += min([bits] + [sign_bits_given(signs, lag) for lag in lags(tensor.weights.shape, signs.size)])
    return model.name, model.num_weights, alone, given


def main() -> None:
    print("| model | sign bits/weight | given the best lag's sign | saved, bits/weight |\n|---|---:|---:|---:|")
    weights = saved = 0.0
    with Pool(2) as pool:
        for name, count, alone, given in pool.imap(model_row, load_corpus()):
            weights, saved = weights + count, saved + alone - given
            print(f"| {name} | {alone / count:.4f} | {given / count:.4f} | {(alone - given) / count:.4f} |")
    print(f"| **corpus** | | | {saved / weights:.4f} |")


if __name__ == "__main__":
    main()
