"""Where the instructions per weight go: the ELF of measure.py's build
(link_harness, flags + -g, which does not change the code), run in
firmware_report's ThumbMachine, every executed instruction charged to its
innermost source line (addr2line -i), lines grouped by the function of
the patched tinycabac.c (or decoder_c/tinycabac.c) that holds them.
Usage: breakdown.py [--patch FILE] amsx|tinycabac cortex-m4|cortex-m0 -O2|-Os [stream]
(--patch: the patch of the amsx build, default amsx_decoder.patch)"""
import re
import subprocess
import sys
from collections import Counter

from pathlib import Path

from streams import DEFAULT_PATCH, WORK, amsx_decoder_dir, load, msym_env, payload_key  # first: sys.path

import firmware_report as fr  # noqa: E402

argv = sys.argv[1:]
patch = DEFAULT_PATCH
if argv and argv[0].startswith("--patch"):
    patch = argv[0].split("=", 1)[1] if "=" in argv[0] else argv[1]
    argv = argv[1:] if "=" in argv[0] else argv[2:]
kind, cpu, opt = argv[:3]
label = argv[3] if len(argv) > 3 else "lossless int8"
directory = amsx_decoder_dir(patch) if kind == "amsx" else msym_env.REPO / "decoder_c"
fr.DECODER_DIR = directory
fr.COMMON_FLAGS = fr.COMMON_FLAGS + ["-g"]
out = WORK / "fw_g" / (kind if kind != "amsx" or patch == DEFAULT_PATCH else Path(patch).stem)
out.mkdir(parents=True, exist_ok=True)
elf = fr.link_harness(cpu, opt, out)
data = load()[label][payload_key(patch) if kind == "amsx" else kind]
m = fr.ThumbMachine(elf, cpu, fr.SPEED_CPUS[cpu][1])
addr = m.load_input(data)
assert m.call("bench_decode", addr, len(data)) == 0
weights = sum(t.elements for t in fr.tinycabac.info(data))
per_insn = Counter()
for start, runs in m.block_runs.items():
    block = m.blocks[start]
    code = bytes(m.uc.mem_read(start, block.end - start))
    for insn in m.disassembler.disasm(code, start):
        per_insn[insn.address] += runs
addrs = sorted(per_insn)
res = subprocess.run(["arm-none-eabi-addr2line", "-e", str(elf), "-f", "-i", *[hex(a) for a in addrs]],
                     capture_output=True, text=True).stdout.splitlines()
# addr2line -i prints (function, file:line) pairs, several per address when inlined; split with a sentinel run
res2 = subprocess.run(["arm-none-eabi-addr2line", "-e", str(elf), "-f", *[hex(a) for a in addrs]],
                      capture_output=True, text=True).stdout.splitlines()
# innermost function and line per address (without -i the innermost frame is what is printed)
source = (directory / "tinycabac.c").read_text().splitlines()
func_at = {}
current = None
for i, line in enumerate(source, 1):
    mm = re.match(r"^(?:static |TC_\w+ |TC_OUT_OF_LINE_FOR_SIZE |TC_NOINLINE )*(?:static )?[\w\s\*]+?\b(\w+)\(", line)
    if mm and not line.startswith(" ") and not line.rstrip().endswith(";"):
        current = mm.group(1)
    func_at[i] = current
by_func, by_line = Counter(), Counter()
for j, a in enumerate(addrs):
    fn, loc = res2[2 * j], res2[2 * j + 1]
    f, _, ln = loc.rpartition(":")
    ln = re.match(r"\d+", ln)
    if f.endswith("tinycabac.c") and ln:
        n = int(ln.group())
        by_func[func_at.get(n) or fn] += per_insn[a]
        by_line[n] += per_insn[a]
    else:
        by_func[f"{fn} ({f.rsplit('/', 1)[-1]})"] += per_insn[a]
total = sum(per_insn.values())
print(f"{kind} {cpu} {opt} {label}: {total / weights:.1f} instructions per weight")
for k, v in by_func.most_common():
    if v / weights >= 0.05:
        print(f"  {v / weights:6.1f}  {k}")
print("top lines:")
for n, v in by_line.most_common(40):
    print(f"  {v / weights:6.1f}  {n:5d}  {source[n - 1].strip()[:90]}")
