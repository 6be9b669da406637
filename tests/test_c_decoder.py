"""The C decoder under compilers, static analysis, sanitizers and valgrind.

Builds and runs decoder_c/tests/unit.c (the streaming API's edge cases) and
decoder_c/tests/damage.c (every truncation and every single-bit flip of every
golden vector, a deterministic sample above 16 KB), and checks that the
decoder compiles warning-free for the host and for Cortex-M.  Under CI=true a
missing tool is a failure, elsewhere a skip.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from conftest import require_tool

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


def damage_argument_groups(groups: int = 2) -> list[list[str]]:
    """Golden vectors split by size into groups of about equal work (one
    process per core), each update after --base its base."""
    manifest = json.loads((GOLDEN / "MANIFEST.json").read_text())["vectors"]
    loads = [0] * groups
    arguments: list[list[str]] = [[] for _ in range(groups)]
    for vector in sorted(manifest.values(), key=lambda v: -min(v["size"], 16384)):
        group = loads.index(min(loads))
        loads[group] += min(vector["size"], 16384)
        if vector.get("base"):
            arguments[group] += ["--base", str(GOLDEN / manifest[vector["base"]]["file"])]
        arguments[group].append(str(GOLDEN / vector["file"]))
    return arguments


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
# inlined, the selector and byte-wise CRC tables), the size build's (-Os:
# out-of-line range decoder helpers, context selection computed, the nibble
# CRC table), and the mixes README's "Size or speed" offers.
UNIT_BUILDS = {
    "asan-ubsan": ("clang", ["-O1", "-g", *SANITIZE]),
    "plain-gcc": ("gcc", ["-O2"]),
    "size-build": ("gcc", ["-Os", "-g", *SANITIZE]),
    "size-build-selector-table": ("gcc", ["-Os", "-DTC_SELECTOR_TABLE=1", "-g", *SANITIZE]),
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


@pytest.mark.parametrize("optimization", ["-O2", "-Os"], ids=["speed-build", "size-build"])
def test_every_truncation_and_bit_flip_of_the_golden_vectors_is_caught(tmp_path, optimization):
    sources = [TESTS_C / "damage.c", TESTS_C / "tc_test_util.c", DECODER / "tinycabac.c"]
    executable = build(tmp_path, "damage", sources, [optimization, "-g", *SANITIZE])
    runs = [subprocess.Popen([str(executable), "--stream-every", "16", *group], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for group in damage_argument_groups()]  # fmt: skip
    outputs = [run.communicate(timeout=1800) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr[-4000:]
    stdout = "".join(out for out, _ in outputs)
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
