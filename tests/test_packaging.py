"""The source distribution is what PyPI users build from: it must compile the
cffi extension on its own and give a working package.  Built here through
setuptools' PEP 517 hooks (no network, no build isolation), from a copy of
the files git tracks or would track (not ignored), so a stray build product
cannot hide a missing file."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import GOLDEN_DIR, REPO, golden_manifest, require_tool, tool_missing


def _pep517(hook: str, source: Path, out: Path) -> Path:
    """Run setuptools' `hook` (build_sdist / build_wheel) in `source`; return the file it made."""
    script = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", script, str(out)], cwd=source,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{hook} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return out / done.stdout.strip().splitlines()[-1]


def _tracked_copy(destination: Path) -> Path:
    git = require_tool("git")
    listed = subprocess.run([git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():  # a tracked file deleted in the working tree is skipped
            shutil.copy2(REPO / name, target)
    return destination


@pytest.fixture(scope="module")
def wheel_from_sdist(tmp_path_factory) -> Path:
    if not (REPO / ".git").exists():
        tool_missing("the packaging test builds from a git checkout's tracked files")
    work = tmp_path_factory.mktemp("packaging")
    sdist = _pep517("build_sdist", _tracked_copy(work / "tree"), work)
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    (work / "wheel").mkdir()
    return _pep517("build_wheel", unpacked, work / "wheel")


def test_the_wheel_built_from_the_sdist_has_the_extension(wheel_from_sdist):
    names = zipfile.ZipFile(wheel_from_sdist).namelist()
    assert any(n.startswith("tinycabac/_native") and n.endswith(".so") for n in names), names
    assert "tinycabac/models/digits_int8.tflite" in names  # the bundled default model


def test_the_installed_wheel_decodes_a_golden_vector(wheel_from_sdist, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel_from_sdist).extractall(site)
    vector = golden_manifest()["vectors"]["lossless_int8"]
    check = (
        "import hashlib, sys, tinycabac\n"
        "assert tinycabac.__file__.startswith(sys.argv[1]), tinycabac.__file__\n"
        "for name, array in tinycabac.decode(open(sys.argv[2], 'rb').read()).items():\n"
        "    print(name, hashlib.sha256(array.astype(array.dtype.newbyteorder('<')).tobytes()).hexdigest())\n"
    )
    # -S -E: no .pth files (the repo's editable install is one) and no PYTHONPATH;
    # site-packages are added by hand for numpy and cffi, after the wheel
    paths = "import sys, sysconfig; sys.path[:0] = [sys.argv[1], *{sysconfig.get_path(k) for k in ('purelib', 'platlib')}]\n"
    done = subprocess.run([sys.executable, "-S", "-E", "-c", paths + check,
                           str(site), str(GOLDEN_DIR / vector["file"])],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    decoded = dict(line.split() for line in done.stdout.splitlines())
    assert decoded == {t["name"]: t["sha256"] for t in vector["tensors"]}


def test_every_package_of_the_project_has_one_version():
    """pyproject.toml, the Python package, the PlatformIO and CMake libraries
    and the MicroPython module (and its mip package) name the same release."""
    import json
    import re
    import tomllib

    import tinycabac

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    cmake_project = re.search(r"project\(tinycabac VERSION (\S+)", (REPO / "decoder_c/CMakeLists.txt").read_text())
    tcdec_version = re.search(r'^__version__ = "([^"]+)"', (REPO / "firmware/micropython/tcdec.py").read_text(), re.M)
    assert {
        "tinycabac": tinycabac.__version__,
        "library.json": json.loads((REPO / "decoder_c/library.json").read_text())["version"],
        "CMakeLists.txt": cmake_project.group(1),
        "tcdec": tcdec_version.group(1),
        "package.json": json.loads((REPO / "firmware/micropython/package.json").read_text())["version"],
    } == dict.fromkeys(("tinycabac", "library.json", "CMakeLists.txt", "tcdec", "package.json"), version)
