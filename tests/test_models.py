"""The bundled digit classifier: it runs, it classifies, it is what the generator makes."""

from __future__ import annotations

import numpy as np
import pytest

from tinycabac.models import (
    default_model_path,
    evaluate_accuracy,
    load_test_split,
    make_interpreter,
)
from tinycabac.tflite_io import _buffer_byte_range, _parse_model, split_tflite

MIN_ACCURACY = 0.9


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_bundled_model_classifies_the_held_out_digits(kind):
    accuracy = evaluate_accuracy(default_model_path(kind).read_bytes())
    assert accuracy > MIN_ACCURACY


def test_default_kind_is_int8():
    assert default_model_path() == default_model_path("int8")
    assert default_model_path().name == "digits_int8.tflite"


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown model kind 'int4'"):
        default_model_path("int4")


def test_single_image_inference_matches_the_label():
    split = load_test_split()
    interpreter = make_interpreter(default_model_path("int8").read_bytes())
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    correct = 0
    for image, label in zip(split["x_int8"][:50], split["labels"][:50]):
        interpreter.set_tensor(input_index, image[None])
        interpreter.invoke()
        correct += int(interpreter.get_tensor(output_index)[0].argmax() == label)
    assert correct >= 45


def test_test_split_is_consistent_with_the_int8_model_input():
    split = load_test_split()
    count = len(split["labels"])
    assert split["x_float"].shape == (count, 8, 8, 1) and split["x_float"].dtype == np.float32
    assert split["x_int8"].shape == (count, 8, 8, 1) and split["x_int8"].dtype == np.int8
    assert set(split["labels"].tolist()) == set(range(10))
    assert count > 300
    detail = make_interpreter(default_model_path("int8").read_bytes()).get_input_details()[0]
    scale, zero_point = detail["quantization"]
    assert np.float32(scale) == split["input_scale"] and zero_point == split["input_zero_point"]
    expected = np.clip(np.round(split["x_float"] / scale) + zero_point, -128, 127)
    np.testing.assert_array_equal(split["x_int8"], expected)


def test_int8_model_is_full_integer_with_per_channel_weights():
    interpreter = make_interpreter(default_model_path("int8").read_bytes())
    for detail in interpreter.get_tensor_details():
        quantization = detail["quantization_parameters"]
        dtype = np.dtype(detail["dtype"])
        assert dtype in (np.int8, np.int32), detail["name"]
        assert len(quantization["scales"]) > 0 and np.all(quantization["scales"] > 0), detail["name"]
    weights, _, layout = split_tflite(default_model_path("int8").read_bytes())
    for record in layout["weights"]:
        array = weights[record["name"]]
        output_channels = record["shape"][record["quantized_dimension"]]
        assert len(record["scales"]) == output_channels
        if record["dtype"] == "int8":
            assert record["name"].endswith(("/filter", "/weights"))
            assert array.min() >= -127 and array.max() <= 127
            assert record["zero_points"] == [0] * output_channels
            # Symmetric per-channel scaling uses the full range in every channel.
            assert np.all(np.abs(array.reshape(output_channels, -1)).max(axis=1) == 127)
        else:
            assert record["dtype"] == "int32" and record["name"].endswith("/bias")


@pytest.mark.parametrize("kind, dtype", [("float32", "float32"), ("int8", "int8")])
def test_model_size_is_a_few_thousand_weights(kind, dtype):
    weights, _, layout = split_tflite(default_model_path(kind).read_bytes())
    coded = sum(a.size for a in weights.values())
    assert 5_000 < coded < 50_000
    assert {r["dtype"] for r in layout["weights"]} <= {dtype, "int32"}


@pytest.fixture(scope="module")
def regenerated():
    # Needs scikit-learn (a test dependency) for load_digits.
    from tinycabac.models import make_digits_model

    return make_digits_model.build_models(), make_digits_model.build_models()


def test_generator_is_deterministic(regenerated):
    first, second = regenerated
    assert first == second


def test_generator_reproduces_the_committed_model_structure(regenerated):
    generated, _ = regenerated
    for kind in ("float32", "int8"):
        name = default_model_path(kind).name
        _, _, committed_layout = split_tflite(default_model_path(kind).read_bytes())
        _, _, layout = split_tflite(generated[name])
        assert len(generated[name]) == len(default_model_path(kind).read_bytes())
        assert [(r["name"], r["shape"], r["dtype"], r["offset"]) for r in layout["weights"]] == [
            (r["name"], r["shape"], r["dtype"], r["offset"]) for r in committed_layout["weights"]
        ]
        if kind == "float32":
            assert_same_graph_close_numbers(generated[name], default_model_path(kind).read_bytes())
        assert evaluate_accuracy(generated[name]) > MIN_ACCURACY


# Training runs through numpy's BLAS, whose kernels differ from one CPU to
# another (AVX2, AVX-512): the trained numbers differ in their last bits,
# about 0.1% of a tensor's largest value, so only they are compared loosely.
TRAINED_NUMBERS_TOLERANCE = 0.01


def float32_constant_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the float32 constants (weights and biases) of a .tflite file."""
    model = _parse_model(data)
    graph = model.Subgraphs(0)
    ranges = set()
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        if tensor.Type() == 0:  # TensorType.FLOAT32
            byte_range = _buffer_byte_range(model.Buffers(tensor.Buffer()), data)
            ranges |= {byte_range[:2]} if byte_range else set()
    return sorted(ranges)


def assert_same_graph_close_numbers(generated: bytes, committed: bytes) -> None:
    """Every byte outside the float32 constants equal, and each constant
    within TRAINED_NUMBERS_TOLERANCE of its largest magnitude."""
    ranges = float32_constant_ranges(committed)
    assert float32_constant_ranges(generated) == ranges
    masked = [bytearray(generated), bytearray(committed)]
    for offset, length in ranges:
        new, old = (np.frombuffer(data, "<f4", length // 4, offset) for data in (generated, committed))
        np.testing.assert_allclose(new, old, rtol=0, atol=TRAINED_NUMBERS_TOLERANCE * np.max(np.abs(old)))
        for data in masked:
            data[offset : offset + length] = bytes(length)
    assert masked[0] == masked[1]
