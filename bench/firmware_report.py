"""Footprint and speed of the C decoder on Cortex-M -> docs/FIRMWARE_REPORT.md.

Measures the decoder alone (decoder_c/*.c, no demo code):
  * flash (.text + .rodata + .data) and static RAM (.data + .bss) of the
    library objects for Cortex-M0+, M4 and M7 at -Os and -O2, plus the
    linked size with the libgcc/libc helpers the library pulls in;
  * the size of the caller-owned state (tc_decoder, tc_stream, tc_tensor_info);
  * exact instructions per decoded weight on Cortex-M0 and M4, running the
    decoder in unicorn (bench/firmware/harness.c), for a lossless int8 stream,
    the same weights with each kind of prediction (FORMAT 5.7, difference and
    scale; 5.8, factors) forced on, and a quantized float32 stream, uniform and dependent
    (FORMAT 6.2, the encoder's trellis quantizer), with a cycle estimate from
    the cores' published instruction timings;
  * the maximum stack depth of a whole decode, by stack painting.

Usage: python bench/firmware_report.py [--output docs/FIRMWARE_REPORT.md]
Needs arm-none-eabi-gcc (Debian gcc-arm-none-eabi + libnewlib-arm-none-eabi),
unicorn, capstone and pyelftools (PyPI), and the tinycabac package.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import capstone
from capstone import arm_const as cs_arm
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_THUMB, Uc
from unicorn import arm_const as uc_arm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/anchor_decoders.py

import tinycabac  # noqa: E402
from anchor_decoders import ANCHOR_DECODERS, QUOTED_ANCHORS, AnchorUnavailable, source_dir  # noqa: E402
from tinycabac.models import default_model_path  # noqa: E402
from tinycabac.predict import DEFAULT_MAX_HISTORY  # noqa: E402
from tinycabac.tflite_io import split_tflite  # noqa: E402

DECODER_DIR = REPO / "decoder_c"
HARNESS_DIR = Path(__file__).resolve().parent / "firmware"
DEFAULT_OUTPUT = REPO / "docs" / "FIRMWARE_REPORT.md"

SIZE_CPUS = {"cortex-m0plus": "Cortex-M0+", "cortex-m4": "Cortex-M4", "cortex-m7": "Cortex-M7"}
SPEED_CPUS = {
    "cortex-m0": ("Cortex-M0", uc_arm.UC_CPU_ARM_CORTEX_M0),
    "cortex-m4": ("Cortex-M4", uc_arm.UC_CPU_ARM_CORTEX_M4),
}
OPTIMIZATIONS = ["-Os", "-O2"]
COMMON_FLAGS = ["-mthumb", "-mfloat-abi=soft", "-std=c99", "-ffunction-sections", "-fdata-sections", "-Wall"]
HARNESS_SYMBOLS = {"bench_decode", "bench_decode_whole", "tc_public_api"}

# Issue 4's targets and the anchors it compares against.
TARGET_FLASH_OS_M4 = 4096
TARGET_STATE_RAM = 1024
TARGET_STACK = 512
TARGET_INSTR_PER_INT8_M4 = 120
HISTORY_BUFFER_SIZE = 4096  # bench/firmware/harness.c BENCH_HISTORY_SIZE, enough for the bench's streams
ANCHOR_CPUS = ["cortex-m0plus", "cortex-m4"]  # -Os, as the flash target

# unicorn memory map (bench/firmware/bench.ld): code at 0, data at 0x20000000.
CODE_BASE, CODE_SIZE = 0x00000000, 0x00100000
RAM_BASE, RAM_SIZE = 0x20000000, 0x00100000
STACK_TOP = RAM_BASE + RAM_SIZE
STACK_PAINT_SIZE = 0x10000
STACK_PAINT_BYTE = 0xA5
INPUT_BASE = 0x60000000
RETURN_MAGIC = CODE_BASE + CODE_SIZE - 0x10  # LR points here; reaching it ends the call


# ---------------------------------------------------------------- building


class ToolMissing(RuntimeError):
    """A tool of the ARM toolchain is not installed."""


def run(command: list[str]) -> str:
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise ToolMissing(f"{command[0]} not found: install Debian's gcc-arm-none-eabi and "
                          "libnewlib-arm-none-eabi (`make system-deps` does)") from None


# The optional .tflite rebuild: measured apart, as it is not part of the decoder.
TFLITE_HELPER = DECODER_DIR / "tflite" / "tc_tflite.c"


def compile_objects(cpu: str, optimization: str, out_dir: Path, sources: list[Path] | None = None,
                    include: Path = DECODER_DIR, defines: tuple[str, ...] = ()) -> list[Path]:
    objects = []
    for source in sources or sorted(DECODER_DIR.glob("*.c")):
        target = out_dir / f"{source.stem}.{cpu}{optimization}.o"
        run(["arm-none-eabi-gcc", f"-mcpu={cpu}", optimization, *COMMON_FLAGS, *defines, "-I", str(include),
             "-c", str(source), "-o", str(target)])  # fmt: skip
        objects.append(target)
    return objects


def anchor_flash(work: Path) -> dict[str, dict[str, int] | str]:
    """Flash of each anchor decompressor's objects at -Os, compiled here
    like the decoder; the reason instead where its sources are unavailable."""
    flash = {}
    for anchor in ANCHOR_DECODERS:
        try:
            root = source_dir(anchor)
        except AnchorUnavailable as error:
            flash[anchor.label] = f"not measured: {error}"
            continue
        out = work / "anchors" / root.name
        out.mkdir(parents=True, exist_ok=True)
        flash[anchor.label] = {
            cpu: object_footprint(compile_objects(cpu, "-Os", out, [root / s for s in anchor.sources],
                                                  root / anchor.include, anchor.defines)).flash
            for cpu in ANCHOR_CPUS
        }  # fmt: skip
    return flash


def link_harness(cpu: str, optimization: str, out_dir: Path) -> Path:
    """The decoder plus harness.c, linked with every public function kept."""
    elf = out_dir / f"harness.{cpu}{optimization}.elf"
    sources = [str(HARNESS_DIR / "harness.c"), *map(str, sorted(DECODER_DIR.glob("*.c")))]
    keep = [f"-Wl,-u,{symbol}" for symbol in ("tc_public_api", "sizeof_tc_decoder", "sizeof_tc_stream",
                                               "sizeof_tc_tensor_info")]  # fmt: skip
    run(["arm-none-eabi-gcc", f"-mcpu={cpu}", optimization, *COMMON_FLAGS, "-I", str(DECODER_DIR),
         *sources, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
         "-T", str(HARNESS_DIR / "bench.ld"), *keep, "-o", str(elf)])  # fmt: skip
    return elf


# ---------------------------------------------------------------- sizes


@dataclass
class Footprint:
    text: int = 0
    rodata: int = 0
    data: int = 0
    bss: int = 0

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


def object_footprint(objects: list[Path]) -> Footprint:
    footprint = Footprint()
    for path in objects:
        with open(path, "rb") as handle:
            for section in ELFFile(handle).iter_sections():
                if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC:
                    continue
                for prefix in ("text", "rodata", "data", "bss"):
                    if section.name == f".{prefix}" or section.name.startswith(f".{prefix}."):
                        setattr(footprint, prefix, getattr(footprint, prefix) + section["sh_size"])
    return footprint


def elf_symbols(elf: Path) -> dict[str, tuple[int, int, str]]:
    """name -> (address, size, section name) for sized symbols."""
    symbols = {}
    with open(elf, "rb") as handle:
        reader = ELFFile(handle)
        for symbol in reader.get_section_by_name(".symtab").iter_symbols():
            index = symbol["st_shndx"]
            if symbol["st_size"] and isinstance(index, int):
                section = reader.get_section(index).name
                symbols[symbol.name] = (symbol["st_value"] & ~1, symbol["st_size"], section)
    return symbols


def linked_flash(elf: Path) -> tuple[int, list[str]]:
    """Flash of the library as linked (harness excluded) and the names of the
    libgcc/libc helpers it needed."""
    with open(elf, "rb") as handle:
        total = sum(
            section["sh_size"]
            for section in ELFFile(handle).iter_sections()
            if section.name in (".text", ".rodata", ".data")
        )
    decoder_names = decoder_symbol_names_cached()
    helpers = []
    for name, (_, size, section) in elf_symbols(elf).items():
        if name in HARNESS_SYMBOLS:
            total -= size
        elif section == ".text" and name.split(".")[0] not in decoder_names:  # GCC clones: f.isra.0
            helpers.append(name)
    return total, sorted(helpers)


def decoder_symbol_names() -> set[str]:
    """Every symbol decoder_c defines, static functions and tables included
    (compiled at -O0 so that nothing is inlined away)."""
    with tempfile.TemporaryDirectory() as tmp:
        objects = compile_objects("cortex-m4", "-O0", Path(tmp))
        output = run(["arm-none-eabi-nm", "--defined-only", *map(str, objects)])
    return {line.split()[-1] for line in output.splitlines() if len(line.split()) == 3}


_DECODER_NAMES: set[str] = set()


def decoder_symbol_names_cached() -> set[str]:
    if not _DECODER_NAMES:
        _DECODER_NAMES.update(decoder_symbol_names())
    return _DECODER_NAMES


def struct_sizes(elf: Path) -> dict[str, int]:
    symbols = elf_symbols(elf)
    return {name: symbols[f"sizeof_{name}"][1] for name in ("tc_decoder", "tc_stream", "tc_tensor_info")}


def heap_symbols(elf: Path) -> list[str]:
    return sorted(n for n in elf_symbols(elf) if n in ("malloc", "free", "calloc", "realloc", "_sbrk", "_malloc_r"))


# ---------------------------------------------------------------- execution


@dataclass
class BlockCost:
    instructions: int
    cycles: int  # not counting a taken conditional branch at the end
    taken_penalty: int  # extra cycles if the final conditional branch is taken
    end: int


# Extra cycles of a taken branch: 3-cycle taken branches on the M0, 1+P with
# P = 2 assumed on the M4.
BRANCH_REFILL = 2


class CycleModel:
    """Instruction timings from the Cortex-M0 and Cortex-M4 Technical Reference
    Manuals, zero wait-state memory.  M4 branch refill P is taken as 2 and
    division as 7 cycles (2-12): an estimate, not a measurement."""

    def __init__(self, core: str):
        self.core = core

    def cost(self, insn) -> tuple[int, int, bool]:
        """(cycles if not branching, extra cycles when a conditional branch is
        taken, whether this is a conditional branch)."""
        m = insn.mnemonic.split(".")[0]
        m0 = self.core == "cortex-m0"
        refill = BRANCH_REFILL
        writes_pc = any(op.type == cs_arm.ARM_OP_REG and op.reg == cs_arm.ARM_REG_PC for op in insn.operands)
        registers = sum(1 for op in insn.operands if op.type == cs_arm.ARM_OP_REG)
        if m in ("cbz", "cbnz") or (m.startswith("b") and insn.cc not in (cs_arm.ARM_CC_AL, cs_arm.ARM_CC_INVALID) and m not in ("bic", "bics", "bfi", "bfc")):
            return 1, refill, True
        if m in ("b", "bx"):
            return 1 + refill, 0, False
        if m in ("bl", "blx"):
            return (4 if m0 else 1 + refill), 0, False
        if m in ("push", "pop", "ldm", "stm", "ldmia", "stmia", "stmdb", "ldmdb"):
            return 1 + registers + (refill + 1 if m0 and writes_pc else refill if writes_pc else 0), 0, False
        if m.startswith("ldr") or m.startswith("str"):
            return 2 + (refill if writes_pc else 0), 0, False
        if m in ("udiv", "sdiv"):
            return 7, 0, False
        if m in ("muls", "mul") and m0:
            return 1, 0, False
        if writes_pc and m in ("mov", "add"):
            return 1 + refill, 0, False
        return 1, 0, False


class ThumbMachine:
    """An ELF loaded into unicorn, with exact instruction counting."""

    def __init__(self, elf: Path, cpu: str, uc_model: int, count: bool = True):
        """count=False runs without the per-block hook (no instruction or
        cycle counts, stack painting alone), many times faster."""
        self.cpu = cpu
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        self.uc.ctl_set_cpu_model(uc_model)  # before anything else; no UC_MODE_MCLASS (it selects an M33)
        self.uc.mem_map(CODE_BASE, CODE_SIZE)
        self.uc.mem_map(RAM_BASE, RAM_SIZE)
        self.disassembler = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        self.disassembler.detail = True
        self.model = CycleModel(cpu)
        self.blocks: dict[int, BlockCost] = {}
        with open(elf, "rb") as handle:
            reader = ELFFile(handle)
            for segment in reader.iter_segments():
                if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]:
                    self.uc.mem_write(segment["p_vaddr"], segment.data())
        self.symbols = elf_symbols(elf)
        if count:
            self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)

    def _block_cost(self, address: int, size: int) -> BlockCost:
        code = bytes(self.uc.mem_read(address, size))
        instructions = cycles = penalty = 0
        for insn in self.disassembler.disasm(code, address):
            base, taken, conditional = self.model.cost(insn)
            instructions += 1
            cycles += base
            penalty = taken if conditional else 0
        return BlockCost(instructions, cycles, penalty, address + size)

    def _on_block(self, uc, address, size, _user):
        cost = self.blocks.get(address)
        if cost is None or cost.end != address + size:
            cost = self.blocks[address] = self._block_cost(address, size)
        if self._previous is not None and self._previous.end != address:
            self.cycles += self._previous.taken_penalty
        self.instructions += cost.instructions
        self.cycles += cost.cycles
        self._previous = cost
        self.block_runs[address] = self.block_runs.get(address, 0) + 1

    def call(self, function: str, *args: int) -> int:
        """Run function(args) to completion; instruction and cycle counts and
        the stack high-water mark are left in attributes."""
        self.uc.mem_write(STACK_TOP - STACK_PAINT_SIZE, bytes([STACK_PAINT_BYTE]) * STACK_PAINT_SIZE)
        for register, value in zip((uc_arm.UC_ARM_REG_R0, uc_arm.UC_ARM_REG_R1, uc_arm.UC_ARM_REG_R2, uc_arm.UC_ARM_REG_R3), args):
            self.uc.reg_write(register, value)
        self.uc.reg_write(uc_arm.UC_ARM_REG_SP, STACK_TOP)
        self.uc.reg_write(uc_arm.UC_ARM_REG_LR, RETURN_MAGIC | 1)
        self.instructions = self.cycles = 0
        self._previous = None
        self.block_runs: dict[int, int] = {}
        address = self.symbols[function][0]
        self.uc.emu_start(address | 1, RETURN_MAGIC)
        if self._previous is not None and self._previous.end != RETURN_MAGIC:
            self.cycles += self._previous.taken_penalty
        painted = bytes(self.uc.mem_read(STACK_TOP - STACK_PAINT_SIZE, STACK_PAINT_SIZE))
        untouched = len(painted) - len(painted.lstrip(bytes([STACK_PAINT_BYTE])))
        self.stack_used = STACK_PAINT_SIZE - untouched
        return self.uc.reg_read(uc_arm.UC_ARM_REG_R0)

    def instructions_by_function(self) -> dict[str, int]:
        """Instructions of the last call, attributed to the function holding
        each block (inlined code counts for its caller)."""
        functions = sorted(
            (address, address + size, name)
            for name, (address, size, section) in self.symbols.items()
            if section == ".text"
        )
        totals: dict[str, int] = {}
        for address, runs in self.block_runs.items():
            owner = next((name for start, end, name in functions if start <= address < end), "?")
            totals[owner] = totals.get(owner, 0) + runs * self.blocks[address].instructions
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    def load_input(self, data: bytes) -> int:
        size = (len(data) + 0xFFFF) & ~0xFFFF
        self.uc.mem_map(INPUT_BASE, max(size, 0x10000))
        self.uc.mem_write(INPUT_BASE, data)
        return INPUT_BASE


@dataclass
class SpeedResult:
    stream: str
    cpu: str
    optimization: str
    weights: int
    instructions: int
    cycles: int
    stack: int
    by_function: dict[str, int]

    @property
    def instructions_per_weight(self) -> float:
        return self.instructions / self.weights

    @property
    def cycles_per_weight(self) -> float:
        return self.cycles / self.weights


def measure_speed(elf: Path, cpu: str, optimization: str, label: str, data: bytes) -> SpeedResult:
    name, model = SPEED_CPUS[cpu]
    machine = ThumbMachine(elf, cpu, model)
    address = machine.load_input(data)
    status = machine.call("bench_decode", address, len(data))
    if status != 0:
        raise RuntimeError(f"{name} {optimization} {label}: decoder returned status {status - (1 << 32) if status >> 31 else status}")
    weights = sum(t.elements for t in tinycabac.info(data))
    return SpeedResult(
        label, name, optimization, weights, machine.instructions, machine.cycles, machine.stack_used,
        machine.instructions_by_function(),
    )


def measure_whole_call_stack(elf: Path, cpu: str, data: bytes) -> int:
    """Stack used decoding `data` with tc_decode_tensor, the one-call API
    (bench/firmware/harness.c, bench_decode_whole); only the stack counts
    here, so the decoder runs without instruction counting."""
    machine = ThumbMachine(elf, cpu, SPEED_CPUS[cpu][1], count=False)
    address = machine.load_input(data)
    if machine.call("bench_decode_whole", address, len(data)) != 0:
        raise RuntimeError(f"{cpu}: tc_decode_tensor failed on the bench stream")
    return machine.stack_used


# ---------------------------------------------------------------- streams


def benchmark_streams() -> dict[str, bytes]:
    """The bundled digits classifier: its int8 weight matrices coded losslessly
    (as the encoder chooses, and again with each kind of prediction forced
    on, so that the decoder's difference, scale and factor paths are
    measured too), and its float32 weights quantized (default 40 dB SNR
    per tensor), with uniform reconstruction and again with dependent
    reconstruction from the trellis quantizer (FORMAT 6.2)."""
    int8_weights, _, _ = split_tflite(default_model_path("int8").read_bytes())
    float_weights, _, _ = split_tflite(default_model_path("float32").read_bytes())
    lossless = {name: w for name, w in int8_weights.items() if w.dtype.name == "int8"}
    one_row_back = {name: min(w.size // w.shape[0], HISTORY_BUFFER_SIZE) for name, w in lossless.items()}
    return {
        "lossless int8": tinycabac.encode(lossless),
        "lossless int8, difference forced": tinycabac.encode(lossless, prediction="difference", history=one_row_back),
        "lossless int8, scale forced": tinycabac.encode(lossless, prediction="scale", history=one_row_back),
        "lossless int8, factors forced": tinycabac.encode(lossless, prediction="factors", history=one_row_back,
                                                          max_history=HISTORY_BUFFER_SIZE),
        "quantized float32": tinycabac.encode(float_weights),
        "quantized float32, trellis": tinycabac.encode(float_weights, quantizer="trellis"),
    }


def prediction_kinds(data: bytes) -> str:
    """The prediction kinds the stream's tensors use (FORMAT 5.7)."""
    kinds = sorted({t.prediction for t in tinycabac.info(data)} - {"none"})
    return " and ".join(kinds) if kinds else "none"


def largest_history(data: bytes) -> int:
    """Bytes of working memory the stream's tensors need for prediction
    (FORMAT 5.7, 5.8): the largest H, or (H + 1) * rank for factors."""
    return max((t.work_size for t in tinycabac.info(data)), default=0)


# ---------------------------------------------------------------- report


def collect(work: Path) -> dict:
    sizes, linked, structs, heap, helper = {}, {}, None, set(), {}
    for cpu in SIZE_CPUS:
        for optimization in OPTIMIZATIONS:
            sizes[cpu, optimization] = object_footprint(compile_objects(cpu, optimization, work))
            helper[cpu, optimization] = object_footprint(compile_objects(cpu, optimization, work, [TFLITE_HELPER]))
            elf = link_harness(cpu, optimization, work)
            linked[cpu, optimization] = linked_flash(elf)
            structs = structs or struct_sizes(elf)
            heap.update(heap_symbols(elf))
    streams = benchmark_streams()
    speed, whole_call_stack = [], {}
    for cpu in SPEED_CPUS:
        for optimization in OPTIMIZATIONS:
            elf = link_harness(cpu, optimization, work)
            for label, data in streams.items():
                speed.append(measure_speed(elf, cpu, optimization, label, data))
                whole_call_stack[cpu, optimization, label] = measure_whole_call_stack(elf, cpu, data)
    stream_info = {
        label: (len(data), sum(t.elements for t in tinycabac.info(data)), largest_history(data),
                prediction_kinds(data))
        for label, data in streams.items()
    }  # fmt: skip
    return {"sizes": sizes, "linked": linked, "structs": structs, "heap": sorted(heap), "speed": speed,
            "streams": stream_info, "tflite_helper": helper, "anchors": anchor_flash(work),
            "whole_call_stack": max(whole_call_stack.values())}  # fmt: skip


def anchor_lines(anchors: dict, sizes: dict) -> list[str]:
    """The anchors next to the decoder, all compiled in this run at -Os."""
    lines = [
        "Anchors: decompressors a user might otherwise embed, compiled in this run with the same",
        "compiler and flags at -Os from their PyPI source distributions (bench/anchor_decoders.py;",
        "library objects, as for the decoder above):",
        "",
        "| Decompressor | " + " | ".join(SIZE_CPUS[cpu] for cpu in ANCHOR_CPUS) + " |",
        "|---|" + "---:|" * len(ANCHOR_CPUS),
        "| tinycabac decoder (this report) | " + " | ".join(f"{sizes[cpu, '-Os'].flash} B" for cpu in ANCHOR_CPUS)
        + " |",
    ]
    for label, flash in anchors.items():
        cells = [f"{flash[cpu]} B" for cpu in ANCHOR_CPUS] if isinstance(flash, dict) else [flash] * len(ANCHOR_CPUS)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [f"| {label} | " + " | ".join([size] * len(ANCHOR_CPUS)) + " |" for label, size in QUOTED_ANCHORS]
    return lines


def forced_prediction_note(streams: dict) -> list[str]:
    """What the forced-prediction streams are, and what their counts mean."""
    note = [
        "Difference forced: the same int8 weights, each coded as its difference from the",
        "weight one row before (FORMAT 5.7). Scale forced: the same weights coded as they",
        "are, with the running activity of each weight's column (its input channel)",
        "steering the Rice parameter; its extra instructions per weight are a ring read,",
        "the mixed activity and the column's update. Factors forced: each weight matrix's",
        "rows (one output channel each) predicted from low-rank int8 factors sent in the",
        "stream (FORMAT 5.8), at the rank the encoder finds best within the harness's",
        "history buffer; each weight costs a multiply-add per rank more, and the factors",
        "themselves are decoded as values.",
    ]
    if streams["lossless int8"][3] == "none":
        note += [
            "The encoder itself chooses neither for these tensors (it keeps the smallest",
            "payload, here the one without prediction): their rows do not repeat, so the",
            "differences are larger than the weights and part of difference prediction's",
            "extra instructions are extra bins rather than the prediction step itself, while",
            "scale prediction codes about as many bytes as no prediction.",
        ]
    return note


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(results: dict) -> str:
    sizes, linked, structs, speed = results["sizes"], results["linked"], results["structs"], results["speed"]
    compiler = run(["arm-none-eabi-gcc", "--version"]).splitlines()[0]
    m4_flash = sizes["cortex-m4", "-Os"].flash
    m4_linked = linked["cortex-m4", "-Os"][0]
    state = structs["tc_decoder"] + structs["tc_stream"] + structs["tc_tensor_info"]
    max_stack = max(r.stack for r in speed)
    whole_stack = results["whole_call_stack"]
    # H of the streams the encoder makes by default (not the forced ones)
    default_history = max(results["streams"][label][2] for label in ("lossless int8", "quantized float32"))
    helper_flash = results["tflite_helper"]["cortex-m4", "-Os"].flash
    m4_int8 = [r for r in speed if r.cpu == "Cortex-M4" and r.stream == "lossless int8"]
    best_m4_int8 = min(r.instructions_per_weight for r in m4_int8)
    static_ram = max(f.ram for f in sizes.values())
    lines = [
        "# tinycabac decoder on Cortex-M: footprint and speed",
        "",
        f"Generated by `python bench/firmware_report.py` with {compiler}; do not edit by hand.",
        "The decoder alone (decoder_c/*.c), no demo code. Thumb, `-mfloat-abi=soft`,",
        "`-ffunction-sections -fdata-sections`.",
        "",
        "## Against the targets (issue 4)",
        "",
        "| Target | Measured | |",
        "|---|---|---|",
        f"| flash <= {TARGET_FLASH_OS_M4} B at -Os on Cortex-M4, all features | {m4_flash} B library objects (decoder_c/tinycabac.c: every feature of the format); {m4_linked} B linked (with any C library helpers it calls; unreferenced sections dropped). The optional .tflite rebuild helper (decoder_c/tflite/) adds {helper_flash} B | {verdict(max(m4_flash, m4_linked) <= TARGET_FLASH_OS_M4)} for the decoder; {m4_flash + helper_flash} B with the helper |",
        f"| decoder state <= {TARGET_STATE_RAM} B RAM | {state} B (tc_decoder {structs['tc_decoder']} + tc_stream {structs['tc_stream']} + tc_tensor_info {structs['tc_tensor_info']}); static RAM of the library {static_ram} B. A tensor coded with prediction or channel peaks also needs caller-owned working memory (H bytes of history, or (H + 1) x rank for factors, plus 2 B per channel with peaks): {default_history} B for the bench's streams ({state + static_ram + default_history} B in all); the encoder allows up to {DEFAULT_MAX_HISTORY} B by default, and `--max-history` caps it | {verdict(state + static_ram + default_history <= TARGET_STATE_RAM)} for H <= {TARGET_STATE_RAM - state - static_ram} |",
        f"| stack <= {TARGET_STACK} B | {max_stack} B worst case measured through the streaming calls (as the firmware uses them), {whole_stack} B through tc_decode_tensor; both take the tc_decoder from the caller | {verdict(max(max_stack, whole_stack) <= TARGET_STACK)} |",
        f"| no heap | {'no allocator linked' if not results['heap'] else 'linked: ' + ', '.join(results['heap'])} | {verdict(not results['heap'])} |",
        f"| <= {TARGET_INSTR_PER_INT8_M4} instructions per int8 weight on Cortex-M4 | {best_m4_int8:.1f} (best of -Os/-O2) | {verdict(best_m4_int8 <= TARGET_INSTR_PER_INT8_M4)} |",
        "",
        "## Flash and static RAM",
        "",
        "Library objects: flash = .text + .rodata + .data, static RAM = .data + .bss.",
        "Linked: the same code after `--gc-sections` with every public function kept,",
        "plus the libgcc/libc helpers it calls (listed).",
        "",
        "| Core | Opt | .text | .rodata | Flash (objects) | Static RAM | Flash (linked, with helpers) | Helpers |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for (cpu, optimization), footprint in sizes.items():
        total, helpers = linked[cpu, optimization]
        lines.append(
            f"| {SIZE_CPUS[cpu]} | {optimization} | {footprint.text} | {footprint.rodata} | {footprint.flash} | "
            f"{footprint.ram} | {total} | {', '.join(helpers) or '-'} |"
        )
    helper = results["tflite_helper"]
    lines += [
        "",
        "Optional, not counted above: rebuilding a .tflite file on the device "
        "(decoder_c/tflite/tc_tflite.c, flash of its object): "
        + ", ".join(f"{SIZE_CPUS[cpu]} {opt} {footprint.flash} B" for (cpu, opt), footprint in helper.items())
        + "; no static RAM, 8 bytes of caller-owned RAM per weight buffer besides the model, and 1 KiB of tables (four 256-byte move-to-front lists) on the stack while it unpacks a packed skeleton (FORMAT 3.6) in the model buffer.",
    ]
    lines += ["", *anchor_lines(results["anchors"], results["sizes"])]
    lines += [
        "",
        "## Speed and stack",
        "",
        "Exact instruction counts from running the decoder in unicorn (bench/firmware/harness.c:",
        "open the stream, then every tensor through a 256-byte output buffer, with a",
        f"{HISTORY_BUFFER_SIZE}-byte history buffer for prediction; the decoder checks each",
        "tensor's CRC-32, so every run decoded bit-exactly). Counts include",
        "stream and tensor setup, amortised over the weights. Cycles are an estimate from",
        "the Technical Reference Manual timings with zero wait-state memory (branch refill",
        "2 cycles, divide 7); flash wait states on a real part add to it.",
        "Stack: deepest use by the whole call, measured by painting 64 KiB below the",
        "initial stack pointer (includes the harness's own frame).",
        "",
    ]
    for label, (size, weights, history, kinds) in results["streams"].items():
        prediction = f", {kinds} prediction, history {history} bytes (largest H)" if history else ", no prediction"
        lines.append(f"- {label}: {weights} weights in {size} bytes ({8 * size / weights:.2f} bits per weight){prediction}")
    lines += ["", *forced_prediction_note(results["streams"])]
    lines += [
        "",
        "Trellis: the same float32 weights at the same SNR target, their levels chosen by the",
        "encoder's trellis search and reconstructed with the dependent quantizer (FORMAT 6.2):",
        "per weight the decoder also steps the 8-state machine and maps the level to q.",
    ]
    lines += [
        "",
        "| Stream | Core | Opt | Instructions | Instr/weight | Est. cycles/weight | Stack (B) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in speed:
        lines.append(
            f"| {r.stream} | {r.cpu} | {r.optimization} | {r.instructions} | {r.instructions_per_weight:.1f} | "
            f"{r.cycles_per_weight:.1f} | {r.stack} |"
        )
    lines += ["", "Where the instructions go (instructions per weight by function, inlined code counted in its caller):", ""]
    lines += ["| Stream | Core | Opt | Top functions |", "|---|---|---|---|"]
    for r in speed:
        top = list(r.by_function.items())[:5]
        listed = ", ".join(f"{name} {count / r.weights:.1f}" for name, count in top)
        lines.append(f"| {r.stream} | {r.cpu} | {r.optimization} | {listed} |")
    lines += [
        "",
        "At 64 MHz (a typical Cortex-M4) the estimated rate is "
        + ", ".join(
            f"{r.stream} {64e6 / r.cycles_per_weight / 1e6:.2f} M weights/s ({r.optimization})"
            for r in speed
            if r.cpu == "Cortex-M4"
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            text = render(collect(Path(tmp)))
        except ToolMissing as error:
            print(f"firmware_report: {error}", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
