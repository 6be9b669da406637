"""A short libFuzzer run of every C decoder target, so CI fuzzes each change.

Each target first replays its saved inputs under tests/regressions/<target>/
and then fuzzes for TINYCABAC_FUZZ_SECONDS seconds (default 20) from seeds
made of the golden vectors; decoder_c/fuzz/run_fuzzers.sh does the work (a
full run is `decoder_c/fuzz/run_fuzzers.sh 60`).  A crash is saved under
tests/regressions/<target>/ and fails the test.  Needs clang with libFuzzer.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import tool_missing

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "decoder_c" / "fuzz" / "run_fuzzers.sh"
TARGETS = ["fuzz_decode_stream", "fuzz_streaming", "fuzz_small_output", "fuzz_directory", "fuzz_roundtrip",
           "fuzz_tflite_rebuild"]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    if shutil.which("clang") is None:
        tool_missing("clang (with libFuzzer: libclang-rt-14-dev) is not installed")
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs_clean(build_dir, target):
    seconds = int(os.environ.get("TINYCABAC_FUZZ_SECONDS", "20"))
    environment = dict(os.environ, TINYCABAC_FUZZ_BUILD=str(build_dir), TINYCABAC_FUZZ_TARGETS=target)
    result = subprocess.run(["sh", str(SCRIPT), str(seconds)], capture_output=True, text=True, env=environment,
                            timeout=seconds + 600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    row = re.search(rf"^{target}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+ok$", result.stdout, re.M)
    assert row, result.stdout
    executions, coverage = int(row.group(1)), int(row.group(2))
    assert executions > 0 and coverage > 50
