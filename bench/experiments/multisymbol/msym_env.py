"""Paths and builds shared by the multi-symbol experiment's scripts.

Sources are read from this directory; generated data and build outputs go to the work
directory $MULTISYMBOL_WORK (default /tmp/tinycabac-multisymbol). The repository's bench/ and
host/ directories are put on sys.path, found relative to this file.
"""
import os
import subprocess
import sys
from pathlib import Path

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
