"""Experiment: adaptation rates chosen per context instead of 1/32 + 1/256 for all 166.

VVC's CABAC gives each context its own pair of adaptation rates, trained offline next to its
starting probability. tinycabac uses one pair for every context (FORMAT 5.2). This measures
what a trained per-context pair would save on the corpus, on the bins the format really codes:

- every corpus model is encoded by tinycabac's encoder (int8 levels, as bench_lossless
  names them) and decoded by a copy of the C decoder that logs each context-coded bin
  (context number, bin; `trace_bins.c`, hooks patched in below);
- `rate_costs.c` replays each log with every pair fast 1/8..1/128 x slow 1/32..1/1024,
  contexts started from the format's table as the decoder starts them, and prints the
  ideal code length of each context under each pair;
- the pair of each context is chosen on the other eleven models (leave one model out).

It also replays the logs with the format's pair and the contexts carried from each tensor
to the next instead of restarted (a decoder could then no longer start at any tensor).

It also prints how the stream's bits split between prefix, suffix and sign contexts.
Nothing here is in the format (docs/DESIGN_NOTES.md, "Compression experiments").

Run from the repository root (about 2 minutes after the corpus is cached):
    .venv/bin/python bench/experiments/context_rates/context_rates.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
from multiprocessing import Pool
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "bench"))
import bench_lossless  # noqa: E402
from corpus import load_corpus  # noqa: E402

import tinycabac  # noqa: E402

FORMAT_PAIR = 2 * 6 + 3  # fast 1/32, slow 1/256 in rate_costs.c's grid
PREFIX, SUFFIX = 64, 154  # first suffix and first sign context (FORMAT 5.3)

# Hooks into a copy of decoder_c/tinycabac.c: every context-coded bin of the
# plain (branching) bin decoder, and the contexts' reset at each tensor's start.
BIN_ANCHOR = "        bin = 1;\n    }\n    tc_context_update(c, bin);"
BIN_HOOK = ("        bin = 1;\n    }\n    { extern void trace_bin(const tc_context *, unsigned); trace_bin(c, bin); }\n"
            "    tc_context_update(c, bin);")
RESET_ANCHOR = "    tc_contexts_reset((tc_context *)(void *)((uint8_t *)d + offsetof(tc_decoder, prefix)));"
RESET_HOOK = RESET_ANCHOR + ("\n    { extern void trace_start(const tc_context *); "
                             "trace_start((tc_context *)(void *)((uint8_t *)d + offsetof(tc_decoder, prefix))); }")


def build(work: Path) -> tuple[Path, Path]:
    for path in (REPO / "decoder_c").glob("*.[ch]"):
        shutil.copy(path, work / path.name)
    source = (work / "tinycabac.c").read_text()
    if BIN_ANCHOR not in source or RESET_ANCHOR not in source:
        raise SystemExit("decoder_c/tinycabac.c changed: update the hooks' anchors")
    (work / "tinycabac.c").write_text(source.replace(BIN_ANCHOR, BIN_HOOK, 1).replace(RESET_ANCHOR, RESET_HOOK, 1))
    tracer, costs = work / "trace_bins", work / "rate_costs"
    cc = ["cc", "-O2", "-std=c99", "-I", str(work)]
    subprocess.run(cc + ["-DTC_BRANCHLESS=0", str(HERE / "trace_bins.c"), str(work / "tinycabac.c"), "-o", str(tracer)],
                   check=True)
    subprocess.run(cc + [str(HERE / "rate_costs.c"), "-o", str(costs), "-lm"], check=True)
    return tracer, costs


def model_costs(args) -> tuple[str, int, np.ndarray, np.ndarray]:
    """(model, stream bits, ideal bits of each context under each rate pair,
    the same with the contexts carried from tensor to tensor)."""
    model, work, tracer, costs = args
    tensors = bench_lossless.tensor_dict(model, [t.int8_levels() for t in model.tensors])
    stream, trace = work / f"{model.name}.tcb", work / f"{model.name}.trace"
    stream.write_bytes(tinycabac.encode(tensors))
    subprocess.run([str(tracer), str(stream), str(trace)], check=True)
    tables = [subprocess.run([str(costs), str(trace)] + extra, check=True, capture_output=True, text=True).stdout
              for extra in ([], ["carry"])]
    os.remove(trace)
    return (model.name, 8 * stream.stat().st_size) + tuple(np.loadtxt(t.splitlines()) for t in tables)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tracer, costs = build(work)
        with Pool(2) as pool:
            rows = pool.map(model_costs, [(m, work, tracer, costs) for m in load_corpus()])
    total = sum(row[2] for row in rows)
    carried = sum(row[3] for row in rows)
    stream_bits = sum(row[1] for row in rows)
    now = total[:, FORMAT_PAIR]
    print("share of the stream's bits: prefix {:.1%}, suffix {:.1%}, sign {:.1%}".format(
        now[:PREFIX].sum() / stream_bits, now[PREFIX:SUFFIX].sum() / stream_bits, now[SUFFIX:].sum() / stream_bits))
    print(f"contexts carried from tensor to tensor: {100 * (carried[:, FORMAT_PAIR].sum() - now.sum()) / stream_bits:+.3f}%")
    print(f"best single pair for all contexts: {100 * (total.sum(0).min() - now.sum()) / stream_bits:+.3f}%")
    print(f"per-context pairs chosen on the corpus itself: {100 * (total.min(1).sum() - now.sum()) / stream_bits:+.3f}%")
    print("| model | per-context pairs chosen on the other models |\n|---|---:|")
    saved = 0.0
    for name, bits, cost, _ in rows:
        choice = (total - cost).argmin(1)
        change = cost[np.arange(cost.shape[0]), choice].sum() - cost[:, FORMAT_PAIR].sum()
        saved += change
        print(f"| {name} | {100 * change / bits:+.3f}% |")
    print(f"| **corpus** | {100 * saved / stream_bits:+.3f}% |")


if __name__ == "__main__":
    main()
