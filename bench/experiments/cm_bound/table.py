"""Markdown table: cm.c's per-model bits/weight (reset and carry runs) next to tinycabac payloads and
brotli -11 from docs/BENCH_LOSSLESS.md.  usage: table.py RESET.txt CARRY.txt"""
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "docs" / "BENCH_LOSSLESS.md"


def bench_columns():
    lines = BENCH.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == len(cols) and cells[0] not in ("model",) and not cells[0].startswith("---"):
            rows[cells[0].strip("*")] = dict(zip(cols, cells))
    return rows


def cm_results(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"^(\S+)\.lev (\d+) (\S+) (\S+)$", line)
        if m:
            out[Path(m.group(1)).name] = (int(m.group(2)), float(m.group(3)))
    return out


def main():
    bench = bench_columns()
    reset, carry = cm_results(sys.argv[1]), cm_results(sys.argv[2])
    print("| model | M weights | brotli -11 | tinycabac payloads | CM reset per tensor | CM carried | CM carried vs tinycabac |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    tot = {"n": 0, "r": 0.0, "c": 0.0, "t": 0.0, "b": 0.0}
    for name, (n, bits_r) in reset.items():
        b, t = float(bench[name]["brotli -11"]), float(bench[name]["tinycabac payloads"])
        bits_c = carry[name][1]
        print(f"| {name} | {n / 1e6:.2f} | {b:.3f} | {t:.3f} | {bits_r / n:.3f} | {bits_c / n:.3f} | "
              f"{100 * (bits_c / n / t - 1):+.1f}% |")
        tot["n"] += n; tot["r"] += bits_r; tot["c"] += bits_c; tot["t"] += t * n; tot["b"] += b * n
    n = tot["n"]
    r, c, t, b = (tot[k] / n for k in "rctb")
    print(f"| **corpus** | {n / 1e6:.2f} | {b:.3f} | {t:.3f} | {r:.3f} | {c:.3f} | {100 * (c / t - 1):+.1f}% |")
    cb, ct = float(bench["corpus"]["brotli -11"]), float(bench["corpus"]["tinycabac payloads"])
    print(f"\nvs brotli -11 ({cb:.3f}; -5% = {0.95 * cb:.3f}): tinycabac payloads {100 * (ct / cb - 1):+.2f}%, "
          f"CM reset {100 * (r / cb - 1):+.2f}%, CM carried {100 * (c / cb - 1):+.2f}%")


if __name__ == "__main__":
    main()
