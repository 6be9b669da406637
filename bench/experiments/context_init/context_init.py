"""Experiment: start every binary context from a trained probability instead of 1/2.

HEVC's CABAC starts each context from a table; tinycabac starts all 166 at p = 1/2
(FORMAT 5.2), so every tensor spends its first bins learning. This measures what trained
starting points would save, with the encoder's own rate estimate (`tce_estimate_bits`):

- `collect_and_seed.patch` adds to a copy of host/tinycabac/csrc/encoder.c a counter of
  each context's first `window` bins per tensor, and a table to seed the contexts from;
- for each corpus model, the table is trained on the other eleven (leave one out):
  p0 = (zeros + 1) / (bins + 2), clamped to [0.02, 0.98], both estimates seeded with it;
- levels are coded without prediction, from the encoder's initial activity.

Run from the repository root (about 1 minute after the corpus is cached):
    .venv/bin/python bench/experiments/context_init/context_init.py [window]
"""

import ctypes
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "bench"))
from corpus import load_corpus  # noqa: E402
from tinycabac.native import initial_activity  # noqa: E402

CONTEXTS = 166  # 16 x 4 prefix + 15 x 2 x 3 suffix + 12 sign (FORMAT 5.3)


def build(work: Path) -> ctypes.CDLL:
    for name in ("encoder.c", "encoder.h"):
        shutil.copy(REPO / "host/tinycabac/csrc" / name, work / name)
    subprocess.run(["patch", "-s", "-p4", "-d", str(work), "-i", str(HERE / "collect_and_seed.patch")], check=True)
    library = work / "libseeded.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-std=c99", "-I", str(REPO / "decoder_c"), "-I", str(work),
                    str(work / "encoder.c"), "-o", str(library), "-lm"], check=True)
    lib = ctypes.CDLL(str(library))
    lib.tce_estimate_bits.restype = ctypes.c_double
    lib.tce_estimate_bits.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
    return lib


class SeededEncoder:
    def __init__(self, lib: ctypes.CDLL, window: int):
        self.lib = lib
        self.seed = (ctypes.c_uint16 * CONTEXTS).in_dll(lib, "xp_init")
        self.zeros = (ctypes.c_double * CONTEXTS).in_dll(lib, "xp_zeros")
        self.ones = (ctypes.c_double * CONTEXTS).in_dll(lib, "xp_ones")
        self.use_seed = ctypes.c_int.in_dll(lib, "xp_use_init")
        self.collect = ctypes.c_int.in_dll(lib, "xp_collect")
        ctypes.c_int.in_dll(lib, "xp_window").value = window

    def bits(self, tensors, seeded: bool) -> float:
        self.use_seed.value = int(seeded)
        return sum(self.lib.tce_estimate_bits(a.ctypes.data, None, a.size, act) for a, act in tensors)

    def train(self, models) -> None:
        for i in range(CONTEXTS):
            self.zeros[i] = self.ones[i] = 0.0
        self.collect.value = 1
        for tensors in models:
            self.bits(tensors, seeded=False)
        self.collect.value = 0
        zeros, ones = np.array(self.zeros[:]), np.array(self.ones[:])
        p0 = np.clip((zeros + 1) / (zeros + ones + 2), 0.02, 0.98)
        for i in range(CONTEXTS):
            self.seed[i] = int(round(p0[i] * 32768))


def main() -> None:
    window = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    corpus = {}
    weights = {}
    for model in load_corpus():
        levels = [np.ascontiguousarray(t.int8_levels().ravel().astype(np.int64)) for t in model.tensors]
        corpus[model.name] = [(a, initial_activity(a)) for a in levels]
        weights[model.name] = model.num_weights
    with tempfile.TemporaryDirectory() as work:
        encoder = SeededEncoder(build(Path(work)), window)
        print(f"| model (window {window}) | contexts at 1/2, bits/weight | trained starts | change |")
        print("|---|---:|---:|---:|")
        totals = np.zeros(2)
        for name, tensors in corpus.items():
            plain = encoder.bits(tensors, seeded=False)
            encoder.train(other for other_name, other in corpus.items() if other_name != name)
            seeded = encoder.bits(tensors, seeded=True)
            totals += (plain, seeded)
            print(f"| {name} | {plain / weights[name]:.4f} | {seeded / weights[name]:.4f} | "
                  f"{(seeded - plain) / plain * 100:+.2f}% |")
        print(f"| **corpus** | | | {(totals[1] - totals[0]) / totals[0] * 100:+.2f}% |")


if __name__ == "__main__":
    main()
