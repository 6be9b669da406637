"""Paths and builds shared by the multi-symbol experiment's scripts.

Sources are read from this directory; generated data and build outputs go to the work
directory $MULTISYMBOL_WORK (default /tmp/tinycabac-multisymbol). The repository's bench/ and
host/ directories are put on sys.path, found relative to this file.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
WORK = Path(os.environ.get("MULTISYMBOL_WORK", "/tmp/tinycabac-multisymbol")).resolve()
WORK.mkdir(parents=True, exist_ok=True)
for _p in (REPO / "host", REPO / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(1, str(_p))


def build_host(name, kind="amsx", **defs):
    """Build WORK/name, a host shared library of kind amsx or sim, with -D defs; return its path."""
    out = WORK / name
    subprocess.run([str(HERE / "build_host.sh"), str(out), kind] + [f"-D{k}={v}" for k, v in defs.items()], check=True)
    return out


def build_mcu(name, mcpu, opt, kind, **defs):
    """Build WORK/name (an ARM ELF, plus its disassembly .dis) of the amsx decoder; return its path."""
    out = WORK / name
    subprocess.run([str(HERE / "build_mcu.sh"), mcpu, opt, str(out), kind] + [f"-D{k}={v}" for k, v in defs.items()],
                   check=True)
    return out


def pack_coded(meta, z, kind):
    """The coded values of every tensor of meta (prep.py's, or step6_qprep.py's) for `kind` ("none" or
    "pred") in one int32 array, as sim.c takes them: (values, column activities, value offsets,
    column offsets (-1: none), initial activities)."""
    vals, cols, off, coff, a0 = [], [], [0], [], []
    cpos = 0
    for m in meta:
        v = z[m["key"] + "/" + kind]; vals.append(v); off.append(off[-1] + v.size)
        ck = m["key"] + "/cols"
        if kind == "pred" and ck in z.files:
            c = z[ck]; cols.append(c); coff.append(cpos); cpos += c.size
        else:
            coff.append(-1)
        a0.append(m["a_none"] if kind == "none" else m["a_pred"])
    cols = np.concatenate(cols) if cols else np.zeros(1, np.uint8)
    return (np.ascontiguousarray(np.concatenate(vals), np.int32), np.ascontiguousarray(cols, np.uint8),
            np.array(off, np.int64), np.array(coff, np.int64), np.array(a0, np.int32))


def wide_value_tests():
    """step2_escape.py's wide int16 / int32 test values (seed 1): values beyond int8 reach the escape."""
    rng = np.random.default_rng(1)
    return {
        "int16 Laplace, scale 30 (|v| mostly < 256)": np.clip(np.round(rng.laplace(0, 30, 100000)), -32768, 32767).astype(np.int16),
        "int16 Laplace, scale 300": np.clip(np.round(rng.laplace(0, 300, 100000)), -32768, 32767).astype(np.int16),
        "int16 Laplace, scale 3000": np.clip(np.round(rng.laplace(0, 3000, 100000)), -32768, 32767).astype(np.int16),
        "int32 Laplace, scale 1e6": np.round(rng.laplace(0, 1e6, 100000)).astype(np.int32),
        "int32 extremes (+-(2**31-1), -2**31, +-256, +-255, 0, 1)":
            np.array([2**31 - 1, -2**31, -2**31 + 1, 256, -256, 255, -255, 0, 1] * 1000, np.int32),
    }
