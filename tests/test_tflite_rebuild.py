"""decoder_c/tflite: the device rebuilds the .tflite file the host tools rebuild.

Runs decoder_c/tests/tflite_rebuild.c under the sanitizers, with a model
buffer of exactly the size given, so a write past it is caught.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import tinycabac
from test_c_decoder import DECODER, SANITIZE, TESTS_C, build
from test_skeleton_pack import (HOSTILE_PACKED, PACKED_SKELETON, PACKED_SKELETON_BYTES, PLACES, SKELETON,
                                crafted_packed, packed_bytes)  # fmt: skip
from test_tflite_io import generated_models
from tinycabac import modelfile, skeleton_pack
from tinycabac.container import ContainerTensors, FormatError
from tinycabac.models import default_model_path

TC_ERR_ARGUMENT, TC_ERR_RESERVED, TC_ERR_NOT_FOUND, TC_ERR_OUTPUT_SIZE = -1, -6, -10, -11


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    sources = [TESTS_C / "tflite_rebuild.c", TESTS_C / "tc_test_util.c", DECODER / "tflite" / "tc_tflite.c",
               DECODER / "tinycabac.c"]
    return build(tmp_path_factory.mktemp("tflite"), "tflite_rebuild", sources, ["-O1", "-g", *SANITIZE])


def rebuild(driver: Path, tmp_path: Path, stream: bytes, model_size: int | None = None,
            table_in_model: bool = False, emulator: tuple[str, ...] = ()) -> tuple[int, bytes | None]:
    """(status, rebuilt file); `emulator` runs a driver built for another machine."""
    (tmp_path / "in.tcb").write_bytes(stream)
    out = tmp_path / "out.tflite"
    out.unlink(missing_ok=True)
    extra = [] if model_size is None else [str(model_size)] + (["table-in-model"] if table_in_model else [])
    result = subprocess.run([*emulator, str(driver), "rebuild", str(tmp_path / "in.tcb"), str(out), *extra],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = int(result.stdout.split()[1])
    return status, out.read_bytes() if out.exists() else None


def model_cases() -> dict[str, tuple[bytes, dict]]:
    cases = {"bundled int8, lossless": (default_model_path("int8").read_bytes(), {})}
    cases["bundled float32, quantized"] = (default_model_path("float32").read_bytes(), {"snr_db": 35.0})
    for name, data in generated_models().items():  # float16 weights, shared and external buffers
        cases[name] = (data, {"snr_db": 30.0, "quantizer": "trellis"})
    return cases


def model_stream(data: bytes, skeleton: str, **options) -> bytes:
    """The model's stream with its skeleton "plain" or "packed" (FORMAT 3.6),
    whatever the encoder would choose."""
    model = modelfile.model_from_bytes(data)
    tensors = model.stream_tensors()
    tensors.pop(SKELETON, None)
    tensors.pop(PACKED_SKELETON, None)
    if skeleton == "packed":
        tensors[PACKED_SKELETON] = np.frombuffer(skeleton_pack.pack(model.skeleton), np.uint8)
    else:
        tensors[SKELETON] = np.frombuffer(model.skeleton, np.uint8)
    return tinycabac.encode(tensors, **options)


@pytest.mark.parametrize("skeleton", ["plain", "packed"])
@pytest.mark.parametrize("case", sorted(model_cases()))
def test_device_rebuild_equals_the_host_rebuild(driver, tmp_path, case, skeleton):
    data, options = model_cases()[case]
    stream = model_stream(data, skeleton, **options)
    assert (PACKED_SKELETON in {t.name for t in tinycabac.info(stream)}) == (skeleton == "packed")
    status, rebuilt = rebuild(driver, tmp_path, stream)
    assert status == 0 and rebuilt == modelfile.decode_model(stream).to_bytes()
    if not options:
        assert rebuilt == data  # lossless: the original file


def test_the_encoder_packs_the_bundled_models_skeleton(driver, tmp_path):
    """encode_model packs when that makes the stream smaller (FORMAT 3.5): the device rebuilds that too."""
    data = default_model_path("int8").read_bytes()
    stream = modelfile.encode_model(modelfile.model_from_bytes(data))
    assert PACKED_SKELETON in {t.name for t in tinycabac.info(stream)}
    assert rebuild(driver, tmp_path, stream) == (0, data)


def test_a_model_buffer_one_byte_short_is_refused(driver, tmp_path):
    stream = modelfile.encode_model(modelfile.read_model(default_model_path("int8")))
    size = len(default_model_path("int8").read_bytes())
    assert rebuild(driver, tmp_path, stream, size - 1) == (TC_ERR_OUTPUT_SIZE, None)
    assert rebuild(driver, tmp_path, stream, size + 100)[0] == 0


def test_a_places_table_inside_the_model_buffer_is_refused(driver, tmp_path):
    """Decoding the weights would overwrite the table the rebuild still
    reads: it crashed in memmove; the buffers must be separate."""
    data = default_model_path("int8").read_bytes()
    stream = modelfile.encode_model(modelfile.model_from_bytes(data))
    assert rebuild(driver, tmp_path, stream, len(data), table_in_model=True) == (TC_ERR_ARGUMENT, None)
    assert rebuild(driver, tmp_path, stream, len(data)) == (0, data)


def test_a_stream_of_arrays_is_not_a_model(driver, tmp_path):
    assert rebuild(driver, tmp_path, tinycabac.encode({"w": np.arange(10, dtype=np.int8)}))[0] == TC_ERR_NOT_FOUND


def crafted(places: list[int], skeleton_size: int = 16, **options) -> bytes:
    """Two weight buffers (8 and 4 bytes) and a skeleton, with any places table."""
    return tinycabac.encode(ContainerTensors({
        "a": np.arange(8, dtype=np.int8),
        "b": np.arange(4, dtype=np.uint8),
        "__tflite_skeleton__": np.full(skeleton_size, 7, np.uint8),
        "__tflite_places__": np.array(places, dtype=np.int32),
    }), **options)  # fmt: skip


def crafted_container(case: str) -> bytes:
    """The crafted stream with one container tensor of the wrong kind: each
    would rebuild the crafted file if a tier let it through."""
    skeleton, places = np.full(16, 7, np.uint8), np.array([28, 1, 3, 0, 10], np.int32)
    tensors = ContainerTensors({"a": np.arange(8, dtype=np.int8), "b": np.arange(4, dtype=np.uint8)})
    tensors.update({
        "int16 skeleton": {"__tflite_skeleton__": skeleton.view(np.int16), "__tflite_places__": places},
        "int8 skeleton": {"__tflite_skeleton__": skeleton.view(np.int8), "__tflite_places__": places},
        "float32 places": {"__tflite_skeleton__": skeleton, "__tflite_places__": places.astype(np.float32)},
        "int16 places": {"__tflite_skeleton__": skeleton, "__tflite_places__": places.astype(np.int16)},
        "places and JSON layout": {"__tflite_skeleton__": skeleton, "__tflite_places__": places,
                                   "__tflite_layout__": np.frombuffer(b'{"file_size":28,"weights":[]}', np.uint8)},
        "int8 packed skeleton": {PACKED_SKELETON: packed_bytes().view(np.int8), "__tflite_places__": places},
    }[case])  # fmt: skip
    return tinycabac.encode(tensors, step=1.0)


HOSTILE_CONTAINERS = ["int16 skeleton", "int8 skeleton", "float32 places", "int16 places", "places and JSON layout",
                      "int8 packed skeleton"]

CRAFTED_FILE = bytes([7] * 3 + [0, 1, 2, 3] + [7] * 3 + list(range(8)) + [7] * 10)


def test_a_crafted_places_table_is_rebuilt_exactly(driver, tmp_path):
    assert rebuild(driver, tmp_path, crafted([28, 1, 3, 0, 10])) == (0, CRAFTED_FILE)


def test_a_places_table_coded_with_prediction(driver, tmp_path):
    """Like any tensor, the table may use prediction (FORMAT 5.7): the rebuild gives it history."""
    from tinycabac import native

    stream = crafted([28, 1, 3, 0, 10], prediction={"__tflite_places__": "difference"},
                     history={"__tflite_places__": 2})  # fmt: skip
    assert next(t for t in tinycabac.info(stream) if t.name == "__tflite_places__").history == 2
    assert rebuild(driver, tmp_path, stream) == (0, CRAFTED_FILE)
    assert native.rebuild_tflite(stream) == CRAFTED_FILE


HOSTILE_PLACES = [
    [28, 0, 10, 1, 3],  # not by increasing offset
    [28, 0, 0, 1, 4],  # overlapping
    [28, 0, 0, 1, 26],  # past the end of the file
    [27, 0, 0, 1, 20],  # buffers and skeleton do not add up to the file
    [28, 0, 0, 9, 20],  # no such tensor
    [28, 0, 0, 2, 20],  # the skeleton as a weight buffer
    [40, 0, 3, 2, 12],  # the same, with a file size that adds up: a reserved tensor is never a weight
    [28, 0, -8, 1, 20],  # negative offset
    [28, 0, 0, 1],  # not the file size and pairs
]


@pytest.mark.parametrize("places", HOSTILE_PLACES)
def test_hostile_places_are_refused_before_anything_moves(driver, tmp_path, places):
    assert rebuild(driver, tmp_path, crafted(places)) == (TC_ERR_RESERVED, None)


def test_the_host_rebuilds_from_the_places_as_the_device_does():
    assert modelfile.decode_model(crafted([28, 1, 3, 0, 10])).to_bytes() == CRAFTED_FILE


@pytest.mark.parametrize("places", HOSTILE_PLACES)
def test_the_host_refuses_the_hostile_places_too(places):
    with pytest.raises(FormatError, match="container data is damaged"):
        modelfile.decode_model(crafted(places))


@pytest.mark.parametrize("case", HOSTILE_CONTAINERS)
def test_container_tensors_of_the_wrong_kind_are_refused_by_host_and_device(driver, tmp_path, case):
    """FORMAT 3.5: the skeleton is lossless uint8, the places lossless int32,
    and a stream has the places or the JSON layout, never both."""
    assert rebuild(driver, tmp_path, crafted_container(case)) == (TC_ERR_RESERVED, None)
    with pytest.raises(FormatError, match="container data is damaged"):
        modelfile.decode_model(crafted_container(case))


# ------------------------------------------------------------- packed skeleton

@pytest.mark.parametrize("a_size", [56, 44])  # 44: S + P is the file size, the unpacked skeleton starts at model[0]
def test_a_packed_skeleton_is_rebuilt_exactly(driver, tmp_path, a_size):
    stream, file = crafted_packed(packed_bytes(), a_size)
    assert len(PACKED_SKELETON_BYTES) + packed_bytes().size <= len(file)
    assert rebuild(driver, tmp_path, stream) == (0, file)
    assert modelfile.decode_model(stream).to_bytes() == file


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKED))
def test_a_corrupt_packed_skeleton_is_refused_by_host_and_device(driver, tmp_path, case):
    """FORMAT 3.6's rules, with the model buffer exactly the file's size:
    the device refuses as a reserved field, the host as damaged data."""
    packed = HOSTILE_PACKED[case]
    with pytest.raises(skeleton_pack.PackError):
        skeleton_pack.unpack(packed.tobytes())
    stream, _ = crafted_packed(packed)
    assert rebuild(driver, tmp_path, stream) == (TC_ERR_RESERVED, None)
    with pytest.raises(FormatError, match="container data is damaged"):
        modelfile.decode_model(stream)


def test_a_packed_skeleton_without_room_beside_its_skeleton_is_refused(driver, tmp_path):
    """FORMAT 3.5: S + P <= the file size, so that the device unpacks in the file's room."""
    stream, file = crafted_packed(packed_bytes(), a_size=43)
    assert len(file) == len(PACKED_SKELETON_BYTES) + packed_bytes().size - 1
    assert rebuild(driver, tmp_path, stream) == (TC_ERR_RESERVED, None)
    with pytest.raises(FormatError, match="container data is damaged: .* exceed the file's size"):
        modelfile.decode_model(stream)


def test_a_stream_with_both_skeletons_is_refused(driver, tmp_path):
    stream, _ = crafted_packed(packed_bytes(), plain=True)
    assert rebuild(driver, tmp_path, stream) == (TC_ERR_RESERVED, None)
    with pytest.raises(FormatError, match="container data is damaged: both"):
        modelfile.decode_model(stream)


def test_a_stream_with_places_but_no_skeleton_is_not_a_model(driver, tmp_path):
    stream = tinycabac.encode(ContainerTensors({"a": np.arange(8, dtype=np.int8),
                                                PLACES: np.array([8, 0, 0], np.int32)}))  # fmt: skip
    assert rebuild(driver, tmp_path, stream) == (TC_ERR_NOT_FOUND, None)
    assert modelfile.decode_model(stream).kind == "npz"


def test_a_tflite_stream_carries_no_json_layout():
    """Format 9: the places and the directory say where the weights go."""
    stream = modelfile.encode_model(modelfile.read_model(default_model_path("int8")))
    names = [t.name for t in tinycabac.info(stream)]
    assert "__tflite_places__" in names and "__tflite_layout__" not in names


def test_a_file_of_2_gib_or_more_keeps_the_json_layout():
    """int32 places cannot hold its offsets (FORMAT 3.5)."""
    weight = {"name": "w", "offset": 2**31, "length": 8, "dtype": "int8", "shape": [8]}
    model = modelfile.Model("tflite", {"w": np.arange(8, dtype=np.int8)}, b"\x07" * 16,
                            {"format": "tflite", "file_size": 2**31 + 16, "weights": [weight]})  # fmt: skip
    stream = modelfile.encode_model(model)
    names = [t.name for t in tinycabac.info(stream)]
    assert "__tflite_layout__" in names and "__tflite_places__" not in names
    # Read back with the skeleton such a file would have (its 2 GiB are not made here).
    layout = tinycabac.decode(stream, include_reserved=True)["__tflite_layout__"].tobytes()
    read = modelfile._layout_from_json(layout, tinycabac.info(stream), skeleton_size=2**31 + 8)
    assert read["file_size"] == 2**31 + 16 and read["weights"] == [weight]


GOOD_RECORD = '{"name":"a","offset":0,"length":8,"dtype":"int8","shape":[8]}'
HOSTILE_JSON_LAYOUTS = [
    "[1]",  # not an object
    '{"file_size": 24}',  # no weights
    '{"file_size": 24, "weights": [5]}',  # a record that is not an object
    '{"file_size": 24, "weights": [{"name": "a"}]}',  # a record without its offset
    '{"file_size": 24, "weights": [' + GOOD_RECORD.replace('"a"', '"zz"') + "]}",  # no such tensor
    '{"file_size": 24, "weights": [' + GOOD_RECORD.replace('"a"', '"__tflite_skeleton__"') + "]}",  # reserved
    '{"file_size": 24, "weights": [' + GOOD_RECORD.replace(":0,", ":-5,") + "]}",  # negative offset
    '{"file_size": 24, "weights": [' + GOOD_RECORD.replace(":0,", ":0.0,") + "]}",  # not an integer
    '{"file_size": 24, "weights": [' + GOOD_RECORD.replace('"int8"', '"bogus"') + "]}",  # not the tensor's dtype
    '{"file_size": 24, "weights": [' + GOOD_RECORD.replace("[8]", "[2,4]") + "]}",  # not the tensor's shape
    '{"file_size": 25, "weights": [' + GOOD_RECORD + "]}",  # weights and skeleton do not fill the file
    "\u00ff not JSON",
    "[" * 100_000,  # nested past Python's recursion limit
]


def json_layout_stream(layout: str) -> bytes:
    return tinycabac.encode(ContainerTensors({"a": np.arange(8, dtype=np.int8),
                                              "__tflite_skeleton__": np.full(16, 7, np.uint8),
                                              "__tflite_layout__": np.frombuffer(layout.encode(), np.uint8)}))  # fmt: skip


def test_a_json_layout_is_held_to_the_places_rules():
    """A hostile stream may carry the JSON layout whatever the file's size:
    it must say what the directory says, or be refused as damaged."""
    good = '{"file_size": 24, "weights": [' + GOOD_RECORD + "]}"
    assert modelfile.decode_model(json_layout_stream(good)).to_bytes() == bytes(range(8)) + b"\x07" * 16
    # split_tflite lists weights in graph order, not by offset: any order is valid
    second = '{"name":"b","offset":16,"length":4,"dtype":"uint8","shape":[4]}'
    reversed_records = '{"file_size": 28, "weights": [' + second + "," + GOOD_RECORD + "]}"
    stream = tinycabac.encode(ContainerTensors({"a": np.arange(8, dtype=np.int8), "b": np.arange(4, dtype=np.uint8),
                                                "__tflite_skeleton__": np.full(16, 7, np.uint8),
                                                "__tflite_layout__": np.frombuffer(reversed_records.encode(), np.uint8)}))  # fmt: skip
    assert modelfile.decode_model(stream).to_bytes() == bytes(range(8)) + b"\x07" * 8 + bytes(range(4)) + b"\x07" * 8
    for layout in HOSTILE_JSON_LAYOUTS:
        with pytest.raises(FormatError, match="container data is damaged"):
            modelfile.decode_model(json_layout_stream(layout))


def test_an_update_stream_is_not_a_whole_model(driver, tmp_path):
    base = modelfile.read_model(default_model_path("int8"))
    new = modelfile.read_model(default_model_path("int8"))
    new.tensors = {name: array.copy() for name, array in new.tensors.items()}
    new.tensors["dense2/weights"][0, 0] ^= 1
    assert rebuild(driver, tmp_path, modelfile.encode_update(new, base))[0] == TC_ERR_RESERVED


def float16_narrowing_samples(count: int) -> np.ndarray:
    """Finite float32 values: the rounding edges, then `count` normal ones at
    scales from 2^-30 to 2^17 and `count` random bit patterns."""
    rng = np.random.default_rng(20261129)
    edges = np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, -65520.0, 3e38, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0001,
                      2.0**-14, 2.0**-14 * (1 - 2.0**-11), 1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 1e-40],
                     dtype=np.float32)  # fmt: skip
    scales = 2.0 ** rng.integers(-30, 18, size=count)
    values = np.concatenate([edges, (rng.standard_normal(count) * scales).astype(np.float32),
                             rng.integers(0, 2**32, size=count, dtype=np.uint64).astype(np.uint32).view(np.float32)])
    return values[np.isfinite(values)]


def numpy_float16_bits(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return values.astype("<f2").view("<u2")


def test_float16_narrowing_matches_numpy(driver, tmp_path):
    values = float16_narrowing_samples(300_000)
    (tmp_path / "f32.bin").write_bytes(values.astype("<f4").tobytes())
    subprocess.run([str(driver), "float16", str(tmp_path / "f32.bin"), str(tmp_path / "f16.bin")], check=True)
    assert np.array_equal(np.frombuffer((tmp_path / "f16.bin").read_bytes(), "<u2"), numpy_float16_bits(values))


def test_the_cffi_binding_runs_the_same_rebuild():
    """tinycabac verify uses it to check the device path on every .tflite stream."""
    from tinycabac import native

    for data, options in model_cases().values():
        for skeleton in ("plain", "packed"):
            stream = model_stream(data, skeleton, **options)
            assert native.rebuild_tflite(stream) == modelfile.decode_model(stream).to_bytes()
    stream, file = crafted_packed(packed_bytes())
    assert native.rebuild_tflite(stream) == file
    assert native.rebuild_tflite(tinycabac.encode({"w": np.zeros(3, np.int8)})) is None
    with pytest.raises(tinycabac.DecodeError, match="reserved"):
        native.rebuild_tflite(crafted([28, 0, 0, 1, 4]))
    with pytest.raises(tinycabac.DecodeError, match="reserved"):
        native.rebuild_tflite(crafted_packed(HOSTILE_PACKED["distance beyond the output"])[0])
