"""The C decoder under compilers, static analysis, sanitizers and valgrind.

Builds and runs decoder_c/tests/unit.c (the streaming API's edge cases) and
decoder_c/tests/damage.c (every truncation and every single-bit flip of every
golden vector, a deterministic sample above 16 KB), and checks that the
decoder compiles warning-free for the host and for Cortex-M.  Under CI=true a
missing tool is a failure, elsewhere a skip.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path

import pytest

from conftest import Background, require_tool

ROOT = Path(__file__).resolve().parents[1]
DECODER = ROOT / "decoder_c"
TESTS_C = DECODER / "tests"
ENCODER = ROOT / "host" / "tinycabac" / "csrc"
GOLDEN = ROOT / "tests" / "golden"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def sanitizing_compiler() -> str:
    return require_tool("clang")


def build(tmp_path: Path, name: str, sources: list[Path], flags: list[str], compiler: str | None = None) -> Path:
    executable = tmp_path / name
    command = [compiler or sanitizing_compiler(), *STRICT, *flags, f"-I{DECODER}", f"-I{TESTS_C}", f"-I{ENCODER}",
               "-o", str(executable), *map(str, sources), "-lm"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    return executable


# damage.c's defaults: every bit of a stream up to EXHAUSTIVE_LIMIT bytes is
# flipped, SAMPLES flips of a larger one.
EXHAUSTIVE_LIMIT = 16384
SAMPLES = 20000
DTYPE_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4}


def damage_jobs() -> list[list[str]]:
    """damage.c's arguments for each golden vector on its own (an update
    after --base its base), the costliest first.  A damaged case decodes
    about the whole output again, so a vector costs its flips times its
    decoded bytes: the float32 digits model costs about twice the int8 one
    of the same stream size, and large_int8 is sampled, not exhaustive."""
    manifest = json.loads((GOLDEN / "MANIFEST.json").read_text())["vectors"]

    def cost(vector: dict) -> int:
        flips = 8 * vector["size"] if vector["size"] <= EXHAUSTIVE_LIMIT else SAMPLES
        return flips * sum(math.prod(t["shape"]) * DTYPE_SIZES[t["dtype"]] for t in vector["tensors"])

    jobs = []
    for vector in sorted(manifest.values(), key=cost, reverse=True):
        base = ["--base", str(GOLDEN / manifest[vector["base"]]["file"])] if vector.get("base") else []
        jobs.append([*base, str(GOLDEN / vector["file"])])
    return jobs


# The decoder and its optional companion (decoder_c/tflite/: .tflite rebuild).
LIBRARY_SOURCES = [DECODER / "tinycabac.c", DECODER / "tflite" / "tc_tflite.c"]


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("source", LIBRARY_SOURCES, ids=lambda path: path.name)
def test_decoder_compiles_without_warnings(tmp_path, compiler, source):
    require_tool(compiler)
    subprocess.run([compiler, *STRICT, "-O2", f"-I{DECODER}", "-c", str(source), "-o", str(tmp_path / "tc.o")],
                   check=True)  # fmt: skip


@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4"])
@pytest.mark.parametrize("source", LIBRARY_SOURCES, ids=lambda path: path.name)
def test_decoder_compiles_for_cortex_m(tmp_path, cpu, source):
    compiler = require_tool("arm-none-eabi-gcc")
    subprocess.run([compiler, f"-mcpu={cpu}", "-mthumb", *STRICT, "-Os", f"-I{DECODER}", "-c", str(source),
                    "-o", str(tmp_path / "tc.o")], check=True)  # fmt: skip


def test_cppcheck_finds_nothing():
    cppcheck = require_tool("cppcheck")
    result = subprocess.run(
        [cppcheck, "--enable=warning,portability,performance", "--std=c99", "--error-exitcode=1", "--quiet",
         f"-I{DECODER}", *map(str, LIBRARY_SOURCES)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


# How unit.c is built: the speed builds' code paths (-O1, -O2: everything
# inlined, the selector and byte-wise CRC tables, the level limits), the
# size build's (-Os: out-of-line range decoder helpers, context selection
# computed, the nibble CRC table, the general level test alone), and the
# mixes README's "Size or speed" offers.
UNIT_BUILDS = {
    "asan-ubsan": ("clang", ["-O1", "-g", *SANITIZE]),
    "plain-gcc": ("gcc", ["-O2"]),
    "size-build": ("gcc", ["-Os", "-g", *SANITIZE]),
    "size-build-selector-table": ("gcc", ["-Os", "-DTC_SELECTOR_TABLE=1", "-g", *SANITIZE]),
    "size-build-level-limits": ("gcc", ["-Os", "-DTC_LEVEL_LIMITS=1", "-g", *SANITIZE]),
    "speed-build-nibble-crc": ("gcc", ["-O2", "-DTC_CRC_NIBBLE=1", "-g", *SANITIZE]),
}


@pytest.mark.parametrize("variant", UNIT_BUILDS)
def test_streaming_api_edge_cases(tmp_path, variant):
    sources = [TESTS_C / "unit.c", TESTS_C / "tc_test_util.c", DECODER / "tinycabac.c", ENCODER / "encoder.c"]
    compiler, flags = UNIT_BUILDS[variant]
    executable = build(tmp_path, "unit", sources, flags, compiler=require_tool(compiler))
    result = subprocess.run([str(executable)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"unit: \d+ checks, 0 failures", result.stdout)


def test_selector_table_follows_the_model_rules(tmp_path):
    executable = build(tmp_path, "selector_table", [TESTS_C / "selector_table.c"], ["-O1", "-g", *SANITIZE])
    result = subprocess.run([str(executable)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selector_table: 257 activities, 0 failures" in result.stdout


DAMAGE_BUILDS = {"speed-build": "-O2", "size-build": "-Os"}
DAMAGE_TEST = "test_every_truncation_and_bit_flip_of_the_golden_vectors_is_caught"


def damage_build(directory: Path, optimization: str) -> Path:
    sources = [TESTS_C / "damage.c", TESTS_C / "tc_test_util.c", DECODER / "tinycabac.c"]
    return build(directory, "damage", sources, [optimization, "-g", *SANITIZE])


def damage_run(background: Background, executable: Future, job: list[str]) -> subprocess.CompletedProcess:
    return background.run([str(executable.result()), "--stream-every", "16", *job], timeout=1800)


@pytest.fixture(scope="session", autouse=True)
def damage_runs(request, tmp_path_factory):
    """The damage runs of the selected builds, started in the background
    (one core) with this module's first test: each build, then one
    damage.c process per golden vector and build, the costliest first, so
    that what is left when the damage tests widen to every core is short."""
    builds = [item.callspec.params["optimization"] for item in request.session.items
              if getattr(item, "module", None) is sys.modules[__name__] and item.originalname == DAMAGE_TEST]  # fmt: skip
    background = Background(slots=1)
    executables = {
        optimization: background.submit(damage_build, tmp_path_factory.mktemp("damage"), optimization)
        for optimization in builds
    }  # fmt: skip
    runs = {optimization: [] for optimization in builds}
    for job in damage_jobs():
        for optimization in sorted(builds, key=lambda o: o != "-Os"):  # -Os is the slower build
            runs[optimization].append(background.submit(damage_run, background, executables[optimization], job))
    yield background, runs
    background.close()


@pytest.mark.last
@pytest.mark.parametrize("optimization", DAMAGE_BUILDS.values(), ids=DAMAGE_BUILDS.keys())
def test_every_truncation_and_bit_flip_of_the_golden_vectors_is_caught(damage_runs, optimization):
    background, runs = damage_runs
    background.widen(os.cpu_count() or 2)
    results = [run.result() for run in runs[optimization]]
    for result in results:
        assert result.returncode == 0, result.stderr[-4000:]
    stdout = "".join(result.stdout for result in results)
    assert_reference_matches_manifest(stdout)
    assert_every_damage_caught(stdout)


def assert_every_damage_caught(stdout: str) -> None:
    """damage.c's tallies: every damaged case of every golden vector was
    detected or decoded to the reference tensors, none to others."""
    tallies = re.findall(r"^(\S+) (truncations|bit-flips): cases (\d+) detected (\d+) benign (\d+) wrong (\d+)",
                         stdout, re.M)  # fmt: skip
    assert len(tallies) == 2 * len(json.loads((GOLDEN / "MANIFEST.json").read_text())["vectors"])
    for _, kind, cases, detected, benign, wrong in tallies:
        assert int(wrong) == 0 and int(cases) == int(detected) + int(benign) and int(cases) > 0


def assert_reference_matches_manifest(stdout: str, vectors: Iterable[str] | None = None) -> None:
    """The driver's own decode of each intact vector (of all, or of the
    MANIFEST's `vectors`) has the MANIFEST's CRCs."""
    manifest = json.loads((GOLDEN / "MANIFEST.json").read_text())["vectors"]
    printed = {(Path(f).name, name): crc for f, name, crc in re.findall(r"^reference (\S+) (\S+) ([0-9a-f]{8})$",
                                                                         stdout, re.M)}  # fmt: skip
    for vector in (manifest[name] for name in vectors or manifest):
        for tensor in vector["tensors"]:
            if tensor["name"].startswith("__base"):
                continue  # the host tools add the base digest themselves
            assert printed[(vector["file"], tensor["name"])] == tensor["crc32"], (vector["file"], tensor["name"])


def test_damage_under_valgrind(tmp_path):
    valgrind = require_tool("valgrind")
    sources = [TESTS_C / "damage.c", TESTS_C / "tc_test_util.c", DECODER / "tinycabac.c"]
    executable = build(tmp_path, "damage_plain", sources, ["-O1", "-g"], compiler=require_tool("gcc"))
    manifest = json.loads((GOLDEN / "MANIFEST.json").read_text())["vectors"]
    small = [str(GOLDEN / v["file"]) for v in manifest.values() if v["size"] < 4096 and not v.get("base")]
    result = subprocess.run(
        [valgrind, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "-q",
         str(executable), "--max-cases", "1000", "--stream-every", "2", "--time-limit-ms", "60000", *small],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "failures 0" in result.stdout
