"""Quantized benchmark on float weights (issue 5, setting b).

Each float weight tensor is quantized with a per-tensor step std * 2^-x. For every x of a
grid we measure bits/weight and weight SNR of:
  - nearest rounding, levels coded by NNCodec 2.1.3's CABAC and by tinycabac (same levels:
    tinycabac's decoded reconstruction is checked against level * step);
  - NNCodec's RDOQ and its 8-state trellis (dependent) quantization with RDOQ, coded by
    NNCodec's CABAC;
  - tinycabac's own quantizers: rate-distortion-optimized (RDOQ, uniform reconstruction) and
    trellis (8-state dependent quantization, FORMAT 6.2), both pricing bits with its coder;
and, at the table points x = k = 2, 3, 4, the nearest levels under zlib / bzip2 / xz / zstd /
brotli, TensorFlow Lite Micro's LUT compression, and their order-0 entropy. Quantizers that change the SNR are compared at equal SNR:
their bits are interpolated along their own step sweep to the SNR that nearest rounding
reaches at std * 2^-k.

Weight SNR of a set of tensors = -10 log10(mean over weights of each tensor's noise-to-signal
ratio ||w - w_hat||^2 / ||w||^2), i.e. every tensor counts by its size, whatever its scale.

Run: python bench/bench_quantized.py   (writes docs/BENCH_QUANTIZED.md and docs/bench_quantized_*.png)
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing import Pool

import numpy as np

import nncodec_anchor
from common import (DOCS_DIR, GENERAL_COMPRESSORS, TFLM_LUT, fixed, general_compressor_bits, load_tinycabac,
                    markdown_table, order0_bits, tflm_lut_bits)
from corpus import MODEL_SOURCES, Model, WeightTensor, load_model

TABLE_K = (2, 3, 4)
SWEEP_X = tuple(float(x) for x in np.arange(1.5, 6.01, 0.5))  # step = std * 2^-x

# RDOQ / trellis lambda_scale for NNCodec (its default is 0 = no RDOQ), so that the anchor is
# NNCodec at its best. `--calibrate` on hand_landmark_lite, face_landmark, palm_detection_lite
# and iris_landmark (3.2 M weights), bits/weight at equal SNR for k = 2 / 3 / 4:
#   lambda 0.25: RDOQ 3.713 4.699 5.695   trellis 3.597 4.555 5.542
#   lambda 0.5:  RDOQ 3.709 4.696 5.694   trellis 3.589 4.550 5.537   <- fewest bits
#   lambda 1:    RDOQ 3.709 4.699 5.698   trellis 3.587 4.553 5.543
#   lambda 2:    RDOQ 3.750 4.743 5.741   trellis 3.675 4.654 5.630
NNCODEC_RDOQ_LAMBDA = 0.5
NNCODEC_TRELLIS_LAMBDA = 0.5

NEAREST_NNCODEC = "nearest + NNCodec CABAC"
NEAREST_TINYCABAC = "nearest + tinycabac"
RDOQ_NNCODEC = "NNCodec RDOQ"
TRELLIS_NNCODEC = "NNCodec trellis+RDOQ"
RDOQ_TINYCABAC = "tinycabac RDOQ"
TRELLIS_TINYCABAC = "tinycabac trellis"
ORDER0 = "order-0 / tensor"
SWEPT_METHODS = (NEAREST_NNCODEC, NEAREST_TINYCABAC, RDOQ_NNCODEC, TRELLIS_NNCODEC, RDOQ_TINYCABAC,
                 TRELLIS_TINYCABAC)
EQUAL_SNR_METHODS = (RDOQ_NNCODEC, TRELLIS_NNCODEC, RDOQ_TINYCABAC, TRELLIS_TINYCABAC)


@dataclass
class Point:
    """Totals over tensors: coded bits and size-weighted noise-to-signal ratio."""
    bits: float = 0.0
    weighted_nsr: float = 0.0
    rounding_ties: int = 0  # levels where the two coders' nearest rounding broke a .5 tie differently

    def add(self, other: "Point") -> None:
        self.bits += other.bits
        self.weighted_nsr += other.weighted_nsr
        self.rounding_ties += other.rounding_ties


@dataclass
class ModelResult:
    name: str
    num_weights: int
    # method -> x -> Point; methods with one point per table k use x = k.
    curves: dict[str, dict[float, Point]] = field(default_factory=lambda: defaultdict(dict))

    def snr_db(self, method: str, x: float) -> float:
        return -10 * math.log10(self.curves[method][x].weighted_nsr / self.num_weights)

    def bits_per_weight(self, method: str, x: float) -> float | None:
        point = self.curves.get(method, {}).get(x)
        return None if point is None else point.bits / self.num_weights

    def bits_at_snr(self, method: str, target_db: float) -> float | None:
        """Bits/weight interpolated along the method's sweep; None outside the sweep."""
        if method not in self.curves:
            return None
        xs = sorted(self.curves[method])
        snrs = [self.snr_db(method, x) for x in xs]
        rates = [self.bits_per_weight(method, x) for x in xs]
        if not snrs[0] <= target_db <= snrs[-1]:
            return None
        return float(np.interp(target_db, snrs, rates))


def representable_step(step: float) -> float:
    """`step` rounded to a 16-bit mantissa times a power of two: exact in float32 and in
    tinycabac's step format, so both codecs quantize with exactly the same step. (A long
    mantissa also makes exact .5 ties between float16 weights and the step rare.)"""
    exponent = math.floor(math.log2(step)) - 15
    return round(step / 2.0**exponent) * 2.0**exponent


def tensor_step(tensor: WeightTensor, x: float) -> float:
    return representable_step(float(np.std(tensor.weights, dtype=np.float64)) * 2.0**-x)


def noise_to_signal(weights: np.ndarray, reconstruction: np.ndarray) -> float:
    weights = weights.astype(np.float64)
    energy = float(np.sum(weights**2))
    return float(np.sum((weights - reconstruction) ** 2)) / energy if energy else 0.0


def exact_nearest_levels(weights: np.ndarray, step: float) -> np.ndarray:
    """round(w / step), half away from zero, with w / step in float64.

    NNCodec's own nearest quantizer is the same rounding, but fed float32 w / step it turns
    values a hair below n + 0.5 into exact ties and rounds them up; computing the quotient in
    float64 gives the true nearest levels that every coder below codes."""
    scaled = weights.astype(np.float64) / step
    return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int32)


def nncodec_point(model: Model, x: float, method: str, lambda_scale: float = 0.0,
                  keep_levels: list | None = None) -> Point:
    point = Point()
    for tensor in model.tensors:
        rows, step = tensor.channel_rows(), tensor_step(tensor, x)
        if method == "nearest":
            levels = exact_nearest_levels(rows, step)
            reconstruction = levels.astype(np.float32) * np.float32(step)
        else:
            levels, reconstruction = nncodec_anchor.quantize(rows, step, method, lambda_scale)
        coded = nncodec_anchor.code_losslessly([levels], trellis=method == "trellis")
        point.add(Point(coded.bits, rows.size * noise_to_signal(rows, reconstruction)))
        if keep_levels is not None:
            keep_levels.append(levels)
    return point


def tinycabac_point(tinycabac, model: Model, x: float, quantizer: str,
                    expected_levels: list[np.ndarray] | None = None) -> Point:
    """Encode the model's float tensors with per-tensor steps and decode them again.

    With `expected_levels` (channel rows, from NNCodec's nearest quantizer) the decoded
    reconstruction must be exactly those levels times the step."""
    tensors = {t.name: t.weights for t in model.tensors}
    steps = {t.name: tensor_step(t, x) for t in model.tensors}
    stream = tinycabac.encode(tensors, step=steps, quantizer=quantizer)
    decoded = tinycabac.decode(stream)
    point = Point(bits=8 * len(stream))
    for index, tensor in enumerate(model.tensors):
        reconstruction = decoded[tensor.name]
        point.weighted_nsr += tensor.weights.size * noise_to_signal(tensor.weights, reconstruction)
        if expected_levels is not None:
            point.rounding_ties += count_tie_differences(tensor, reconstruction, expected_levels[index],
                                                         steps[tensor.name])
    return point


def count_tie_differences(tensor: WeightTensor, reconstruction: np.ndarray, expected_levels: np.ndarray,
                          step: float) -> int:
    """Check that `reconstruction` is expected_levels * step, except where the weight sits
    exactly half-way between two levels (NNCodec rounds those away from zero, another coder
    may round to even); returns how many such ties came out differently."""
    rows = tensor.channel_rows()
    expected = np.float32(expected_levels) * np.float32(step)
    differs = tensor.channel_rows(reconstruction) != expected
    if not differs.any():
        return 0
    scaled = rows[differs].astype(np.float64) / step
    is_tie = np.abs(scaled - np.trunc(scaled)) == 0.5
    if not is_tie.all():
        raise AssertionError(f"{tensor.name}: tinycabac nearest levels differ from NNCodec's beyond .5 ties")
    return int(differs.sum())


def level_dtype(levels: np.ndarray) -> type:
    """int8 when the levels fit, else int16 (else int32), as a model file would store them."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if levels.min() >= info.min and levels.max() <= info.max:
            return dtype
    return np.int64


def level_bytes(levels: np.ndarray, tensor: WeightTensor) -> bytes:
    """Levels in file layout, in their level_dtype."""
    rows_shape = np.moveaxis(tensor.weights, tensor.channel_axis, 0).shape
    file_layout = np.moveaxis(levels.reshape(rows_shape), 0, tensor.channel_axis)
    return np.ascontiguousarray(file_layout, dtype=level_dtype(levels)).tobytes()


def tflm_bits(levels: np.ndarray, tensor: WeightTensor) -> int:
    """TFLM's LUT compression of one tensor's levels (rows = output channels)."""
    return tflm_lut_bits(levels.reshape(tensor.num_channels, -1), 8 * np.dtype(level_dtype(levels)).itemsize)


def measure_model(job: tuple[int, dict]) -> ModelResult:
    source_index, options = job
    model = load_model(MODEL_SOURCES[source_index])
    tinycabac = load_tinycabac() if options["tinycabac"] else None
    result = ModelResult(model.name, model.num_weights)
    for x in options["sweep"]:
        nearest_levels: list[np.ndarray] = []
        result.curves[NEAREST_NNCODEC][x] = nncodec_point(model, x, "nearest", keep_levels=nearest_levels)
        result.curves[RDOQ_NNCODEC][x] = nncodec_point(model, x, "rdoq", options["rdoq_lambda"])
        result.curves[TRELLIS_NNCODEC][x] = nncodec_point(model, x, "trellis", options["trellis_lambda"])
        if tinycabac is not None:
            result.curves[NEAREST_TINYCABAC][x] = tinycabac_point(tinycabac, model, x, "nearest", nearest_levels)
            result.curves[RDOQ_TINYCABAC][x] = tinycabac_point(tinycabac, model, x, "rdoq")
            result.curves[TRELLIS_TINYCABAC][x] = tinycabac_point(tinycabac, model, x, "trellis")
        if x in TABLE_K:
            nsr = result.curves[NEAREST_NNCODEC][x].weighted_nsr
            blob = b"".join(level_bytes(levels, t) for levels, t in zip(nearest_levels, model.tensors))
            for name, bits in general_compressor_bits(blob).items():
                result.curves[name][x] = Point(bits, nsr)
            result.curves[ORDER0][x] = Point(sum(order0_bits(levels) for levels in nearest_levels), nsr)
            result.curves[TFLM_LUT][x] = Point(sum(tflm_bits(levels, t) for levels, t in zip(nearest_levels, model.tensors)), nsr)
    return result


def corpus_total(results: list[ModelResult]) -> ModelResult:
    total = ModelResult("**corpus**", sum(r.num_weights for r in results))
    for result in results:
        for method, curve in result.curves.items():
            for x, point in curve.items():
                total.curves[method].setdefault(x, Point()).add(point)
    return total


def table_for_k(results: list[ModelResult], k: int) -> str:
    nearest_columns = [NEAREST_NNCODEC, NEAREST_TINYCABAC] + list(GENERAL_COMPRESSORS) + [TFLM_LUT, ORDER0]
    header = (["model", "SNR dB"] + nearest_columns + [f"{m} @ equal SNR" for m in EQUAL_SNR_METHODS]
              + ["tinycabac vs NNCodec, same levels", "tinycabac trellis vs NNCodec trellis+RDOQ"])
    rows = []
    for result in results + [corpus_total(results)]:
        target = result.snr_db(NEAREST_NNCODEC, k)
        nearest = [result.bits_per_weight(m, k) for m in nearest_columns]
        equal_snr = [result.bits_at_snr(m, target) for m in EQUAL_SNR_METHODS]
        same_levels = relative_change(result.bits_per_weight(NEAREST_TINYCABAC, k), nearest[0])
        own_quantizer = relative_change(equal_snr[3], equal_snr[1])
        rows.append([result.name, f"{target:.2f}"] + [fixed(v) for v in nearest + equal_snr]
                    + [same_levels, own_quantizer])
    return markdown_table(header, rows)


def relative_change(value: float | None, reference: float | None) -> str:
    if value is None or reference is None:
        return "n/a"
    return f"{100 * (value / reference - 1):+.1f}%"


def plot_curves(results: list[ModelResult], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [corpus_total(results)] + results
    columns = 4
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis, result in zip(axes.flat, panels):
        draw_rd_curves(axis, result, markersize=3, scatter_size=18)
        axis.set_title(result.name.strip("*"), fontsize=9)
        axis.set_xlabel("bits / weight", fontsize=8)
        axis.set_ylabel("weight SNR (dB)", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    axes[0][0].legend(fontsize=6, loc="lower right")
    figure.suptitle("Rate-distortion, per-tensor steps std * 2^-x (nearest, RDOQ, trellis)", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw_rd_curves(axis, result: ModelResult, markersize: float, scatter_size: float | None) -> None:
    """Bits/weight against weight SNR: swept quantizers as lines, general
    compressors (on nearest-rounded levels) as points."""
    for method in SWEPT_METHODS:
        if method in result.curves:
            xs = sorted(result.curves[method])
            axis.plot([result.bits_per_weight(method, x) for x in xs],
                      [result.snr_db(method, x) for x in xs], marker="o", markersize=markersize, label=method)
    for compressor, marker in (("bzip2 -9", "s"), ("xz -9e", "^"), ("brotli -11", "D")):
        ks = sorted(result.curves[compressor])
        axis.scatter([result.bits_per_weight(compressor, k) for k in ks],
                     [result.snr_db(compressor, k) for k in ks], marker=marker, s=scatter_size,
                     label=f"nearest + {compressor}")


def plot_corpus(results: list[ModelResult], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    total = corpus_total(results)
    figure, axis = plt.subplots(figsize=(7, 5))
    draw_rd_curves(axis, total, markersize=4, scatter_size=None)
    axis.set_xlabel("bits / weight")
    axis.set_ylabel("weight SNR (dB)")
    axis.set_title(f"Whole corpus ({total.num_weights / 1e6:.2f} M weights), per-tensor steps std * 2^-x")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(results: list[ModelResult], options: dict, corpus_plot: str, model_plot: str) -> str:
    tables = "\n\n".join(f"### k = {k} (step = std * 2^-{k})\n\n{table_for_k(results, k)}" for k in TABLE_K)
    total = corpus_total(results)
    return f"""# Quantized benchmark: float weights, per-tensor steps std * 2^-k

Generated by `python bench/bench_quantized.py` on {platform.machine()} / Python {platform.python_version()} / numpy {np.__version__}.

Each weight tensor of the corpus ({len(results)} models, {total.num_weights / 1e6:.2f} M weights; see
`bench/corpus.py`) is quantized with its own step std * 2^-k (rounded to a 16-bit mantissa so
both codecs use exactly the same step). Numbers are **bits per weight**.

- `nearest + ...`: the same nearest-rounded levels (round(w / step) half away from zero, like
  NNCodec's nearest quantizer, but with the quotient in float64) coded by each coder.
  tinycabac gets the float tensors and the step; its decoded reconstruction is checked to
  equal level * step, i.e. it coded the very same levels.
  General-purpose compressors see the model's levels as int8 (int16 where they do not fit)
  in file layout.
- `{TFLM_LUT}`: TensorFlow Lite Micro's own weight compression of the same levels
  (tflite-micro's `compress`, LUT method): indices into a table of each tensor's, or each
  output channel's, distinct levels, whichever is smaller; packed indices and value tables
  counted. Its indices have at most 7 bits, so a tensor with more distinct levels stays
  int8 (int16).
- `... @ equal SNR`: quantizers that trade distortion for rate, run over the step sweep
  std * 2^-x, x = {', '.join(f'{x:g}' for x in options['sweep'])}, with bits interpolated
  (linearly in dB) to the SNR nearest rounding reaches at k. NNCodec RDOQ uses
  lambda_scale = {options['rdoq_lambda']:g}, trellis (8-state dependent quantization) lambda_scale =
  {options['trellis_lambda']:g}; tinycabac RDOQ and trellis (8-state dependent quantization,
  decoded by every tinycabac decoder) use their default lambdas.
- NNCodec bits are its CABAC streams, one per tensor, without NNR headers; tinycabac bits are
  its whole `.tcb` stream including the container.
- Weight SNR = -10 log10(size-weighted mean of each tensor's ||w - w_hat||^2 / ||w||^2).
- {tie_note(total)}

## Bits per weight

{tables}

## Rate-distortion

![corpus]({corpus_plot})

![per model]({model_plot})
"""


def tie_note(total: ModelResult) -> str:
    if NEAREST_TINYCABAC not in total.curves:
        return "tinycabac was not importable: its columns are n/a."
    ties = sum(point.rounding_ties for point in total.curves[NEAREST_TINYCABAC].values())
    return (f"Levels where tinycabac broke an exact .5 tie the other way (to even): {ties} over all "
            f"{len(total.curves[NEAREST_TINYCABAC])} sweep points; every other level is identical.")


def calibrate(jobs: list, options: dict, workers: int) -> None:
    """Print NNCodec's corpus bits at equal SNR for several lambda_scale values."""
    for lam in (0.25, 0.5, 1.0, 2.0):
        trial = dict(options, rdoq_lambda=lam, trellis_lambda=lam, tinycabac=False)
        with Pool(workers) as pool:
            results = pool.map(measure_model, [(index, trial) for index, _ in jobs])
        total = corpus_total(results)
        for k in TABLE_K:
            target = total.snr_db(NEAREST_NNCODEC, k)
            print(f"lambda {lam:g} k={k} SNR {target:.2f}: nearest {total.bits_per_weight(NEAREST_NNCODEC, k):.4f}"
                  f"  rdoq {fixed(total.bits_at_snr(RDOQ_NNCODEC, target), 4)}"
                  f"  trellis {fixed(total.bits_at_snr(TRELLIS_NNCODEC, target), 4)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-report", action="store_true", help="print only, do not write docs/")
    parser.add_argument("--models", nargs="*", help="only these corpus models (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="processes, one model each (default 2)")
    parser.add_argument("--calibrate", action="store_true", help="compare NNCodec lambda_scale values and exit")
    args = parser.parse_args()

    tinycabac = load_tinycabac()
    print("tinycabac:", "found" if tinycabac else "not importable yet, skipped")
    options = {"sweep": SWEEP_X, "rdoq_lambda": NNCODEC_RDOQ_LAMBDA,
               "trellis_lambda": NNCODEC_TRELLIS_LAMBDA, "tinycabac": tinycabac is not None}
    jobs = [(index, source.name) for index, source in enumerate(MODEL_SOURCES)
            if not args.models or source.name in args.models]
    if args.calibrate:
        calibrate(jobs, options, args.workers)
        return

    started = time.perf_counter()
    with Pool(args.workers) as pool:
        results = []
        for result in pool.imap(measure_model, [(index, options) for index, _ in jobs]):
            print(f"  {result.name}: done at {time.perf_counter() - started:.0f} s", flush=True)
            results.append(result)
    results.sort(key=lambda r: -r.num_weights)

    for k in TABLE_K:
        print(f"\nk = {k}\n{table_for_k(results, k)}")
    if not args.no_report:
        DOCS_DIR.mkdir(exist_ok=True)
        plot_corpus(results, DOCS_DIR / "bench_quantized_rd.png")
        plot_curves(results, DOCS_DIR / "bench_quantized_rd_models.png")
        report = DOCS_DIR / "BENCH_QUANTIZED.md"
        report.write_text(write_report(results, options, "bench_quantized_rd.png", "bench_quantized_rd_models.png"))
        print(f"\nwrote {report} and the plots")


if __name__ == "__main__":
    main()
