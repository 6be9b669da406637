"""bench/firmware_report.py: exact instruction counts, stack painting, and a
complete report from real decoder runs in unicorn."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tool_missing

import tinycabac

REPO = Path(__file__).resolve().parents[1]
REPORT_SCRIPT = REPO / "bench" / "firmware_report.py"

# Hand-written Thumb (ARMv6-M, so it runs on the M0 and M4 models) with known
# instruction counts: count_loop(n) runs 1 + 3n + 2 instructions and takes
# its backward branch n - 1 times; stack_user pushes 5 registers and
# reserves 64 bytes, 84 bytes of stack, and writes the deepest word.
ASSEMBLY = """
    .syntax unified
    .thumb
    .text
    .global count_loop
    .type count_loop, %function
    .thumb_func
count_loop:
    movs r1, #0
1:  adds r1, r1, #2
    subs r0, r0, #1
    bne 1b
    mov r0, r1
    bx lr
    .size count_loop, . - count_loop

    .global stack_user
    .type stack_user, %function
    .thumb_func
stack_user:
    push {r4, r5, r6, r7, lr}
    sub sp, sp, #64
    movs r1, #1
    str r1, [sp, #0]
    add sp, sp, #64
    pop {r4, r5, r6, r7, pc}
    .size stack_user, . - stack_user
"""


def require(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        tool_missing(f"missing tools: {missing}")


@pytest.fixture(scope="module")
def report():
    require("arm-none-eabi-gcc")
    spec = importlib.util.spec_from_file_location("firmware_report", REPORT_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def assemble(tmp_path: Path, cpu: str) -> Path:
    source = tmp_path / "probe.S"
    source.write_text(ASSEMBLY)
    elf = tmp_path / f"probe.{cpu}.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-nostartfiles", "-nostdlib",
         "-T", str(REPO / "bench" / "firmware" / "bench.ld"), "-Wl,-e,count_loop", str(source), "-o", str(elf)],
        check=True,
    )  # fmt: skip
    return elf


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4"])
def test_instruction_count_is_exact(report, tmp_path, cpu):
    machine = report.ThumbMachine(assemble(tmp_path, cpu), cpu, report.SPEED_CPUS[cpu][1])
    for n in (1, 7, 100):
        assert machine.call("count_loop", n) == 2 * n
        assert machine.instructions == 1 + 3 * n + 2
        # movs 1, loop body 3 per pass + 2 per taken branch, mov 1, bx 3
        assert machine.cycles == 1 + 3 * n + 2 * (n - 1) + 1 + 3


def test_stack_painting_finds_the_deepest_write(report, tmp_path):
    machine = report.ThumbMachine(assemble(tmp_path, "cortex-m4"), "cortex-m4", report.SPEED_CPUS["cortex-m4"][1])
    machine.call("stack_user")
    assert machine.stack_used == 5 * 4 + 64


def small_streams() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    weights = np.clip(np.round(rng.laplace(scale=12, size=(32, 40))), -128, 127).astype(np.int8)
    return {
        "int8": tinycabac.encode({"w": weights}),
        "float": tinycabac.encode({"f": rng.normal(scale=0.1, size=(24, 20)).astype(np.float32)}),
    }


@pytest.mark.parametrize("cpu", ["cortex-m0", "cortex-m4"])
def test_decoder_runs_bit_exactly_in_unicorn(report, tmp_path, cpu):
    elf = report.link_harness(cpu, "-Os", tmp_path)
    for label, data in small_streams().items():
        result = report.measure_speed(elf, cpu, "-Os", label, data)
        assert result.weights == sum(t.elements for t in tinycabac.info(data))
        assert 10 < result.instructions_per_weight < 5000
        assert result.cycles >= result.instructions
        assert 0 < result.stack < report.STACK_PAINT_SIZE
        assert sum(result.by_function.values()) == result.instructions


def test_a_corrupted_stream_is_not_measured(report, tmp_path):
    elf = report.link_harness("cortex-m4", "-Os", tmp_path)
    data = bytearray(small_streams()["int8"])
    data[30] ^= 0x10  # inside the directory: header CRC mismatch
    with pytest.raises(RuntimeError, match="status -5"):
        report.measure_speed(elf, "cortex-m4", "-Os", "corrupt", bytes(data))


def test_library_objects_have_no_static_ram_and_no_heap(report, tmp_path):
    footprint = report.object_footprint(report.compile_objects("cortex-m0plus", "-Os", tmp_path))
    assert footprint.text > 0 and footprint.ram == 0
    assert report.heap_symbols(report.link_harness("cortex-m0plus", "-Os", tmp_path)) == []


def test_report_is_written(report, tmp_path):
    output = tmp_path / "FIRMWARE_REPORT.md"
    assert report.main(["--output", str(output)]) == 0
    text = output.read_text()
    for heading in ("## Against the targets", "## Flash and static RAM", "## Speed and stack"):
        assert heading in text
    for core in ("Cortex-M0+", "Cortex-M4", "Cortex-M7"):
        assert f"| {core} | -Os |" in text and f"| {core} | -O2 |" in text
    assert "| lossless int8 | Cortex-M0 |" in text and "| quantized float32 | Cortex-M4 |" in text
    assert "tamp" in text and "heatshrink" in text
