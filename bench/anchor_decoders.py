"""The C sources of the embedded decompressors issue 4 compares the decoder
with, so that bench/firmware_report.py measures their flash with the same
compiler and flags in the same run instead of quoting it.

tamp's decompressor and heatshrink's decoder ship as C inside their PyPI
source distributions (tamp, heatshrink2), fetched once with
`pip download --no-deps --no-binary :all:` into bench/.cache/anchors/.
uzlib has no C source on PyPI, so its figure stays a quoted one.
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "anchors"


@dataclass(frozen=True)
class AnchorDecoder:
    label: str
    requirement: str  # the pinned PyPI sdist holding the sources
    sources: tuple[str, ...]  # paths inside the sdist's top folder
    include: str
    defines: tuple[str, ...] = field(default=())


ANCHOR_DECODERS = [
    AnchorDecoder("tamp 2.5.0 decompressor", "tamp==2.5.0",
                  ("tamp/_c_src/tamp/decompressor.c", "tamp/_c_src/tamp/common.c"), "tamp/_c_src"),
    # heatshrink 0.4 as bundled by heatshrink2; static allocation, as on a device (no malloc)
    AnchorDecoder("heatshrink 0.4 decoder (static allocation)", "heatshrink2==0.15.0",
                  ("heatshrink2/_heatshrink/heatshrink_decoder.c",), "heatshrink2/_heatshrink",
                  ("-DHEATSHRINK_DYNAMIC_ALLOC=0",)),
]  # fmt: skip
QUOTED_ANCHORS = [("uzlib inflate (quoted by issue 4, not measured: no C source on PyPI)", "about 4 KB")]


class AnchorUnavailable(RuntimeError):
    """An anchor's source distribution could not be fetched or read."""


def source_dir(anchor: AnchorDecoder) -> Path:
    """The unpacked sdist of `anchor`, fetched and unpacked on first use."""
    name, version = anchor.requirement.split("==")
    unpacked = CACHE_DIR / f"{name}-{version}"
    if all((unpacked / source).is_file() for source in anchor.sources):
        return unpacked
    archive = CACHE_DIR / f"{name}-{version}.tar.gz"
    if not archive.is_file():
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             anchor.requirement, "-d", str(CACHE_DIR)],
            capture_output=True, text=True,
        )  # fmt: skip
        if fetched.returncode != 0 or not archive.is_file():
            reason = (fetched.stderr.strip().splitlines() or ["no sdist"])[-1]
            raise AnchorUnavailable(f"cannot fetch {anchor.requirement}: {reason}")
    # the "data" filter refuses links and paths out of the folder; Pythons
    # without it get the same check by hand
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(archive) as tar:
            if not safe and any(m.name.startswith(("/", "..")) or ".." in Path(m.name).parts or m.issym()
                                or m.islnk() for m in tar.getmembers()):  # fmt: skip
                raise AnchorUnavailable(f"{archive.name} holds a link or a path out of its folder")
            tar.extractall(CACHE_DIR, **safe)
    except (tarfile.TarError, OSError) as error:
        raise AnchorUnavailable(f"cannot unpack {archive.name}: {error}") from error
    return unpacked
