"""TensorFlow Lite Micro, the interpreter this project's users run on their
boards, takes the .tflite file a device rebuilds from a stream
(decoder_c/tflite, through the cffi binding) and computes with it what
LiteRT computes: the decoded model is a model TFLM can run, not only one the
desktop runtime accepts.

Runs the `tflite-micro` wheel's interpreter (TFLM's reference kernels, the
ones a Cortex-M build without CMSIS-NN uses) on the bundled digits models.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_bench_module, tool_missing
from tinycabac import modelfile, native
from tinycabac.models import default_model_path, held_out_outputs, load_test_split, model_input

# TFLM reads every tensor in place from the model (in flash, on a board);
# the converter and this project's writer start every buffer on 16 bytes,
# and a float weight that moved off its 4-byte alignment faults on a Cortex-M0.
BUFFER_ALIGNMENT = 16


@pytest.fixture(scope="module")
def tflm():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as error:
        tool_missing(f"tflite-micro is not installed ({error}); make setup installs it")
    return runtime


@pytest.fixture(scope="module")
def split():
    return load_test_split()


def tflm_outputs(tflm, model: bytes, split) -> np.ndarray:
    """TFLM's outputs for every held-out image (it runs one batch of one)."""
    interpreter = tflm.Interpreter.from_bytes(model)
    detail = interpreter.get_input_details(0)
    scales, zero_points = (detail["quantization_parameters"][key] for key in ("scales", "zero_points"))
    quantization = (float(scales[0]), int(zero_points[0])) if len(scales) else (0.0, 0)
    images = model_input(split["x_float"], {"dtype": detail["dtype"], "quantization": quantization})
    outputs = []
    for image in images:
        interpreter.set_input(image.reshape(detail["shape"]), 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).ravel().copy())
    return np.array(outputs)


def accuracy(outputs: np.ndarray, split) -> float:
    return float(np.mean(outputs.argmax(axis=1) == split["labels"]))


def device_rebuild(source: bytes, **options) -> bytes:
    model = modelfile.model_from_bytes(source)
    if options.pop("per_channel", False):
        options["axis"] = model.channel_axes()
    rebuilt = native.rebuild_tflite(modelfile.encode_model(model, **options))
    assert rebuilt is not None
    return rebuilt


def buffer_offsets(model: bytes) -> list[int]:
    import tflite

    root = tflite.Model.GetRootAsModel(model, 0)
    buffers = (root.Buffers(i) for i in range(root.BuffersLength()))
    return [b._tab.Vector(b._tab.Offset(4)) for b in buffers if b.DataLength()]


def test_the_lossless_int8_model_runs_in_tflm_as_the_original(tflm, split):
    original = default_model_path("int8").read_bytes()
    rebuilt = device_rebuild(original)
    assert rebuilt == original
    outputs = tflm_outputs(tflm, rebuilt, split)
    assert outputs.dtype == np.int8
    assert np.array_equal(outputs, tflm_outputs(tflm, original, split))
    assert accuracy(outputs, split) > 0.95


@pytest.mark.parametrize("options", [{"snr_db": 35.0}, {"snr_db": 25.0, "quantizer": "trellis", "per_channel": True}],
                         ids=["per-tensor nearest 35 dB", "per-channel trellis 25 dB"])
def test_a_quantized_float_model_runs_in_tflm_as_in_litert(tflm, split, options):
    original = default_model_path("float32").read_bytes()
    rebuilt = device_rebuild(original, **options)
    assert rebuilt != original and len(rebuilt) == len(original)
    assert all(offset % BUFFER_ALIGNMENT == 0 for offset in buffer_offsets(rebuilt))
    outputs = tflm_outputs(tflm, rebuilt, split)
    # the same float model: only the kernels' summation order differs
    assert np.allclose(outputs, held_out_outputs(rebuilt), rtol=0, atol=1e-5)
    assert accuracy(outputs, split) >= accuracy(tflm_outputs(tflm, original, split), split) - 0.02


@pytest.mark.parametrize("spread, element_bits", [(0.5, 8), (3.0, 8), (20.0, 8), (60.0, 8), (300.0, 16)])
def test_the_benches_tflm_lut_figure_is_what_tflm_packs(tflm, spread, element_bits):
    """bench/common.py counts TFLM's LUT compression by arithmetic; TFLM's own
    packing (lut.pack_indices, lut.pack_lookup_tables) gives the same bytes,
    and a tensor needing 8-bit indices stays as stored."""
    from tflite_micro.tensorflow.lite.micro.compression import lut

    common = load_bench_module("common")
    dtype = np.int8 if element_bits == 8 else np.int16
    info = np.iinfo(dtype)
    rows = np.clip(np.rint(np.random.default_rng(3).normal(size=(6, 200)) * spread), info.min, info.max).astype(dtype)
    packed = []
    for axis in (None, 0):
        compressed = lut.compress_array(rows, axis)
        if compressed.index_bitwidth <= common.TFLM_MAX_INDEX_BITS:
            table_length = max(len(table) for table in compressed.lookup_tables)
            packed.append(8 * len(lut.pack_indices(compressed.indices, compressed.index_bitwidth))
                          + 8 * len(lut.pack_lookup_tables(compressed.lookup_tables, table_length)))
    assert common.tflm_lut_bits(rows, element_bits) == min(packed + [rows.size * element_bits])
    assert bool(packed) == (spread < 60)
