"""Sanity data for cm.c: a 256 x 1024 tensor of i.i.d. uniform levels in [-127, 127] (entropy log2 255 = 7.994)
and one of rounded i.i.d. Laplace(b = 10) levels (prints its empirical order-0 entropy), as
$CM_WORK/uniform.syn and laplace.syn in prep.py's format (kind 2, fully connected)."""
import os
from pathlib import Path

import numpy as np

WORK = Path(os.environ.get("CM_WORK", "/tmp/cm_bound"))
O, I = 256, 1024


def write(path, levels):
    with open(path, "wb") as f:
        f.write(np.array([levels.size, O, I, I, 1, 1, 0, 1, 0, 2], dtype=np.int32).tobytes())
        f.write(levels.astype(np.int8).tobytes())


rng = np.random.default_rng(1)
WORK.mkdir(parents=True, exist_ok=True)
write(WORK / "uniform.syn", rng.integers(-127, 128, size=O * I))
x = np.clip(np.round(rng.laplace(0, 10.0, size=O * I)), -127, 127).astype(int)
_, counts = np.unique(x, return_counts=True)
p = counts / counts.sum()
print(f"laplace: empirical order-0 entropy {-(p * np.log2(p)).sum():.4f} bits/weight")
write(WORK / "laplace.syn", x)
