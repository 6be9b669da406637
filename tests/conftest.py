"""Shared test helpers.  Under CI=true no tier may skip: a missing tool is
a failure, so `require_tool` fails instead of skipping there."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import os
import shutil
import subprocess
import threading
import zlib
from collections import deque
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO / "tests" / "golden"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def tool_missing(message: str):
    """A tier cannot run here: a failure under CI=true (no tier may skip),
    a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(message + " (CI=true: tiers may not skip)")
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        tool_missing(f"{name} is not installed")
    return path


def golden_manifest() -> dict:
    return json.loads((GOLDEN_DIR / "MANIFEST.json").read_text())


def with_header_crc(stream: bytearray) -> bytes:
    """`stream` with its header CRC (FORMAT 3.1) recomputed after a hand
    edit, so that the checks behind it see the edit."""
    directory_size = int.from_bytes(stream[8:12], "little")
    crc = zlib.crc32(bytes(stream[20 : 20 + directory_size]), zlib.crc32(bytes(stream[:16])))
    stream[16:20] = crc.to_bytes(4, "little")
    return bytes(stream)


def c_decoder_verdict(data: bytes) -> list | int:
    """[(TensorInfo, decoded array), ...] in stream order, or the tc_status
    the C decoder fails with, after the whole-stream checks the host tools
    make (FORMAT 7): the stream's size, then UTF-8 and unique names."""
    from tinycabac import codec, native

    try:
        stream = codec._open(data)  # the host tools' own whole-stream checks
        return [(stream.info(index), stream.decode(index)) for index in range(stream.tensor_count)]
    except native.DecodeError as error:
        return error.status


def tensor_sha256(array: np.ndarray) -> str:
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return hashlib.sha256(data).hexdigest()


def load_bench_module(name: str):
    """Import bench/<name>.py (bench/ is not a package) for tests of the benches."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Work that runs in the background while the rest of the suite goes on.
#
# The suite runs one test at a time, mostly in one process, so one of CI's
# two cores sits idle.  A module with long, CPU-bound subprocess work (the
# C decoder's sanitized damage runs) starts it in a Background when its first
# test runs, on one core; its tests that need the results are marked `last`
# and run after every other test, and widen the Background to every core
# while they wait for what is left.


def pytest_configure(config):
    config.addinivalue_line("markers", "last: run after every other test (it waits for Background work)")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)  # stable: the rest keep their order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip of any kind fails, not only a missing tool's:
    an empty parametrization (a list of cases that a format change left
    empty) skips silently otherwise."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} skipped under CI=true ({report.longrepr}): no test may skip in CI"


class Background:
    """Jobs (callables) run in the order submitted, at most `slots` at once,
    each in a thread of its own; `submit` returns a Future.  Jobs start their
    subprocesses with `run`, so that `close` can end them."""

    def __init__(self, slots: int = 1):
        self._slots = slots
        self._running = 0
        self._queue: deque = deque()
        self._processes: set[subprocess.Popen] = set()
        self._closed = False
        self._lock = threading.Condition()

    def submit(self, job, *args) -> Future:
        future: Future = Future()
        with self._lock:
            self._queue.append((future, job, args))
            self._start_ready()
        return future

    def widen(self, slots: int) -> None:
        with self._lock:
            self._slots = max(self._slots, slots)
            self._start_ready()

    def _start_ready(self) -> None:
        while self._queue and self._running < self._slots and not self._closed:
            future, job, args = self._queue.popleft()
            if future.set_running_or_notify_cancel():
                self._running += 1
                threading.Thread(target=self._work, args=(future, job, args), daemon=True).start()

    def _work(self, future: Future, job, args) -> None:
        try:
            future.set_result(job(*args))
        except BaseException as error:  # pytest's fail and skip outcomes too: the test that waits raises them
            future.set_exception(error)
        finally:
            with self._lock:
                self._running -= 1
                self._start_ready()

    def run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess:
        """subprocess.run(command, capture_output=True, text=True, timeout=timeout), ended by `close`."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the background work was closed")
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self._processes.add(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        finally:
            with self._lock:
                self._processes.discard(process)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def close(self) -> None:
        """Cancel what has not started and end the subprocesses still running."""
        with self._lock:
            self._closed = True
            while self._queue:
                self._queue.popleft()[0].cancel()
            for process in self._processes:
                process.kill()
