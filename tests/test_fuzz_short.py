"""A short libFuzzer run of every C decoder target, so CI fuzzes each change.

Each target first replays its saved inputs under tests/regressions/<target>/
and then fuzzes for TINYCABAC_FUZZ_SECONDS seconds (default 20) from seeds
made of the golden vectors; decoder_c/fuzz/run_fuzzers.sh does the work (a
full run is `decoder_c/fuzz/run_fuzzers.sh 60`), in one run for all targets,
as many fuzzing at once as there are cores.  A crash is saved under
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
           "fuzz_tflite_rebuild", "fuzz_skeleton_unpack"]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    if shutil.which("clang") is None:
        tool_missing("clang (with libFuzzer: libclang-rt-14-dev) is not installed")
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def fuzz_run(request, build_dir) -> subprocess.CompletedProcess:
    """One run_fuzzers.sh run of every selected target, one target per core
    at a time: each still fuzzes TINYCABAC_FUZZ_SECONDS on a core of its
    own, and the build and seeds are made once."""
    targets = [item.callspec.params["target"] for item in request.session.items
               if getattr(item, "module", None) is request.module
               and item.originalname == "test_fuzz_target_runs_clean"]  # fmt: skip
    seconds = int(os.environ.get("TINYCABAC_FUZZ_SECONDS", "20"))
    jobs = max(1, min(len(targets), os.cpu_count() or 1))
    environment = dict(os.environ, TINYCABAC_FUZZ_BUILD=str(build_dir), TINYCABAC_FUZZ_TARGETS=" ".join(targets),
                       TINYCABAC_FUZZ_JOBS=str(jobs))  # fmt: skip
    batches = -(-len(targets) // jobs)
    return subprocess.run(["sh", str(SCRIPT), str(seconds)], capture_output=True, text=True, env=environment,
                          timeout=batches * seconds + 600)  # fmt: skip


@pytest.mark.last  # every core free: after the background damage runs of test_c_decoder.py
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs_clean(fuzz_run, target):
    output = fuzz_run.stdout + fuzz_run.stderr
    # exit 1 is another target's failure (its own row is checked below), 2 a failed build or seeding
    assert fuzz_run.returncode in (0, 1), output
    row = re.search(rf"^{target}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+ok$", fuzz_run.stdout, re.M)
    assert row, output
    executions, coverage = int(row.group(1)), int(row.group(2))
    assert executions > 0 and coverage > 50
