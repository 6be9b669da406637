"""Experiment: what factor prediction (FORMAT 5.8, format 12) gains per budget of decoder RAM.

A decoder keeps B and the current row's A of a factored tensor: (H + 1) x rank bytes of
working memory, which the encoder bounds with `max_history`. This runs the real encoder
(tinycabac.encode) on the int8 levels of each model of the corpus where factors pay, at
several budgets, and prints the payload bits per weight against the same encoder without
factor prediction (difference and scale prediction still allowed, at the same budget).
The rest of the corpus gains nothing measurable (low_rank_factors.py).

Run from the repository root: .venv/bin/python bench/experiments/low_rank/factor_budget.py
(about 20 seconds on 2 cores).
"""

import sys
from multiprocessing import Pool
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from bench_lossless import tensor_dict  # noqa: E402
from corpus import load_corpus  # noqa: E402

import tinycabac  # noqa: E402
from tinycabac import predict  # noqa: E402

MODELS = ("face_landmark", "face_landmark_with_attention", "iris_landmark", "nudenet_320n", "pose_landmark_full")
BUDGETS = (4096, 8192, 16384, 65536)
CORPUS_BITS = 6.280 * 14.64e6  # the corpus's payloads in format 11 (docs/BENCH_LOSSLESS.md)


def payload_bits(tensors: dict, budget: int, factors: bool) -> int:
    if factors:
        stream = tinycabac.encode(tensors, max_history=budget)
    else:
        with mock.patch.object(predict, "propose_factors", lambda *args: None):
            stream = tinycabac.encode(tensors, max_history=budget)
    return 8 * sum(t.payload_bytes for t in tinycabac.info(stream))


def model_row(name: str) -> tuple[str, int, list[tuple[int, int]]]:
    model = next(m for m in load_corpus() if m.name == name)
    tensors = tensor_dict(model, [t.int8_levels() for t in model.tensors])
    return name, model.num_weights, [(payload_bits(tensors, b, False), payload_bits(tensors, b, True)) for b in BUDGETS]


def main() -> None:
    print("| model | " + " | ".join(f"{b} B: without / with factors" for b in BUDGETS) + " |")
    print("|---|" + "---:|" * len(BUDGETS))
    saved = np.zeros(len(BUDGETS))
    with Pool(2) as pool:
        for name, weights, bits in pool.imap(model_row, MODELS):
            saved += [without - with_ for without, with_ in bits]
            cells = [f"{w / weights:.4f} / {f / weights:.4f} ({100 * (f / w - 1):+.1f}%)" for w, f in bits]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("| corpus (14.64 M weights) | " + " | ".join(f"{-100 * s / CORPUS_BITS:+.2f}%" for s in saved) + " |")


if __name__ == "__main__":
    main()
