"""Update streams: differential coding against a base the receiver holds."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinycabac
from tinycabac.container import Step
from tinycabac.quantize import reconstruct, snr_db

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_models(seed=0):
    rng = np.random.default_rng(seed)
    old = {
        "i8": rng.integers(-127, 128, size=(32, 16)).astype(np.int8),
        "u8": rng.integers(0, 256, size=100).astype(np.uint8),
        "i16": rng.integers(-30000, 30000, size=50).astype(np.int16),
        "i32": rng.integers(-(2**30), 2**30, size=20).astype(np.int32),
        "f32": (rng.standard_normal((8, 12)) * 0.1).astype(np.float32),
        "f16": rng.standard_normal(40).astype(np.float16),
    }
    new = {
        "i8": np.clip(old["i8"].astype(int) + rng.integers(-2, 3, size=old["i8"].shape), -128, 127).astype(np.int8),
        "u8": np.clip(old["u8"].astype(int) + rng.integers(-1, 2, size=100), 0, 255).astype(np.uint8),
        "i16": old["i16"] + np.int16(3),
        "i32": old["i32"] - np.int32(7),
        "f32": old["f32"] + (rng.standard_normal((8, 12)) * 1e-3).astype(np.float32),
        "f16": (old["f16"] * 1.01).astype(np.float16),
        "fresh": np.arange(10, dtype=np.int8),
    }
    return old, new


def test_update_round_trip_all_dtypes_and_modes():
    old, new = make_models()
    update = tinycabac.encode(new, base=old, step=1e-4)
    modes = {t.name: t.mode for t in tinycabac.info(update)}
    assert modes["i8"] == "delta-lossless" and modes["f32"] == "delta-quantized" and modes["fresh"] == "lossless"
    out = tinycabac.apply(old, update)
    assert list(out) == list(new)
    for name in ("i8", "u8", "i16", "i32", "fresh"):
        assert out[name].dtype == new[name].dtype and np.array_equal(out[name], new[name])
    for name in ("f32", "f16"):
        assert out[name].dtype == np.float32
        assert np.max(np.abs(out[name] - new[name].astype(np.float32))) <= 1e-4


def test_update_is_smaller_than_sending_the_whole_model():
    old, new = make_models(1)
    update = tinycabac.encode(new, base=old, step=1e-4)
    whole = tinycabac.encode(new, step=1e-4)
    assert len(update) < 0.6 * len(whole)


def test_wrong_base_is_refused_clearly():
    old, new = make_models()
    update = tinycabac.encode(new, base=old, step=1e-4)
    wrong = dict(old)
    wrong["i8"] = old["i8"].copy()
    wrong["i8"][3, 3] ^= 1
    with pytest.raises(tinycabac.BaseMismatchError, match="different base"):
        tinycabac.apply(wrong, update)
    with pytest.raises(tinycabac.FormatError, match="update"):
        tinycabac.decode(update)
    with pytest.raises(tinycabac.FormatError, match="not an update"):
        tinycabac.apply(old, tinycabac.encode(new, step=1e-4))


def test_c_decoder_checks_each_base_tensor():
    """Below the whole-model digest, the C decoder refuses a wrong base tensor itself."""
    from tinycabac import native

    old, new = make_models()
    update = tinycabac.encode(new, base=old, step=1e-4)
    stream = native.Stream(update)
    names = [stream.info(i).name for i in range(stream.tensor_count)]
    index = names.index("i16")
    assert np.array_equal(stream.decode(index, old["i16"]), new["i16"])
    with pytest.raises(native.BaseMismatchError, match="another base"):
        stream.decode(index, old["i16"] + np.int16(1))
    with pytest.raises(native.BaseMismatchError, match="shape"):
        stream.decode(index, old["i16"][:10])


def test_delta_that_leaves_the_dtype_range_is_refused_by_the_decoder():
    old = {"w": np.array([120, -120], dtype=np.int8)}
    new = {"w": np.array([127, -128], dtype=np.int8)}
    update = tinycabac.encode(new, base=old)
    assert np.array_equal(tinycabac.apply(old, update)["w"], new["w"])


def test_a_tflite_update_from_float16_to_float32_weights():
    """The same .tflite tensor, float16 (through a DEQUANTIZE) in the base
    and float32 in the new model: `tinycabac encode --base` failed, as apply
    refused the float16 base of the update it had just made."""
    from tflite.ActivationFunctionType import ActivationFunctionType
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.BuiltinOptions import BuiltinOptions

    from tinycabac import modelfile
    from tinycabac.models.tflite_writer import ModelSpec, OperatorSpec, TensorSpec, build_tflite, fully_connected_options

    weights = np.random.default_rng(7).standard_normal((24, 20)).astype(np.float32)
    dense = OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 1, -1], [2], 1, BuiltinOptions.FullyConnectedOptions,
                         fully_connected_options(ActivationFunctionType.NONE))  # fmt: skip
    io = [TensorSpec("input", (1, 20), np.float32), TensorSpec("dense/weights", weights.shape, np.float32),
          TensorSpec("output", (1, 24), np.float32)]  # fmt: skip
    float16 = io + [TensorSpec("fp16", weights.shape, np.float16, weights.astype(np.float16))]
    old = build_tflite(ModelSpec(float16, [OperatorSpec(BuiltinOperator.DEQUANTIZE, [3], [1]), dense], [0], [2]))
    float32 = io[:3] + [TensorSpec("fp16", weights.shape, np.float32, weights * 1.01)]
    new = build_tflite(ModelSpec(float32, [OperatorSpec(BuiltinOperator.FULLY_CONNECTED, [0, 3, -1], [2], 1,
                                                        dense.options_type, dense.options)], [0], [2]))  # fmt: skip
    old_model, new_model = modelfile.model_from_bytes(old), modelfile.model_from_bytes(new)
    assert old_model.tensors["fp16"].dtype == np.float16 and new_model.tensors["fp16"].dtype == np.float32
    update = modelfile.encode_update(new_model, old_model, step=1e-3)
    assert {t.name: t.mode for t in tinycabac.info(update)}["fp16"] == "delta-quantized"
    applied = modelfile.apply_update(old_model, update)
    assert applied.skeleton == new_model.skeleton
    assert np.max(np.abs(applied.tensors["fp16"] - weights * 1.01)) <= 1e-3


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(hnp.arrays(np.float32, st.integers(1, 30), elements=finite32), st.integers(-(2**20), 2**20), st.sampled_from([1e-30, 1e-6, 0.5, 3.0, 1e20]))
def test_float32_update_addition_is_ieee_exact(base, level, step):
    """The C decoder's integer float32 addition equals numpy's IEEE add, sums
    that cancel, subnormals and signed zeros included."""
    fixed = Step.from_float(step)
    delta = reconstruct(np.full(base.shape, level, dtype=np.int64), [fixed], 0xFF)
    with np.errstate(over="ignore"):
        expected = base + delta
    new = expected.copy()
    if not np.all(np.isfinite(expected)):
        return
    update = tinycabac.encode({"w": new}, base={"w": base}, step=step)
    out = tinycabac.apply({"w": base}, update)["w"]
    # the encoder re-quantizes new - base; its own reconstruction is the reference
    levels = np.rint((new.astype(np.float64) - base.astype(np.float64)) / fixed.value).astype(np.int64)
    reference = base + reconstruct(levels, [fixed], 0xFF)
    assert out.tobytes() == reference.tobytes()


def test_signed_zero_and_cancellation_follow_ieee():
    base = np.array([-0.0, 1.5, -2.0, 0.0], dtype=np.float32)
    new = np.array([-0.0, 0.0, -2.0, 1.0], dtype=np.float32)
    out = tinycabac.apply({"w": base}, tinycabac.encode({"w": new}, base={"w": base}, step=0.5))["w"]
    # -0 + (+0) is +0 in IEEE arithmetic, exactly as numpy computes it
    assert out.tobytes() == (base + np.array([0.0, -1.5, 0.0, 1.0], dtype=np.float32)).tobytes()
    assert out.tobytes() == np.array([0.0, 0.0, -2.0, 1.0], dtype=np.float32).tobytes()


@pytest.mark.parametrize("dtype, old, new, overflowing_step, error", [
    (np.float16, 60000.0, 65504.0, 40.0, "reconstruction overflows float16"),  # 138 * 40 = 5520 over 60000
    (np.float32, 3.0e38, 3.4e38, 2.5e37, "the updated tensor overflows float32"),  # 2 * 2.5e37 over 3.0e38
])
@pytest.mark.parametrize("target", [{}, {"snr_db": 20}, {"bits_per_weight": 2.0}, {"max_size": 200},
                                    {"quantizer": "trellis"}])
def test_update_step_search_keeps_the_updated_tensor_in_its_dtype(dtype, old, new, overflowing_step, error, target):
    """The search quantizes the difference, but like a whole tensor's it
    skips steps whose decoded tensor, base + difference in float32
    (FORMAT 6.3), would leave the dtype; an explicit step that does is an
    error naming the tensor."""
    signs = np.array([1.0, -1.0] * 10)
    base = {"w": (signs * old).astype(dtype)}
    updated = {"w": (signs * new).astype(dtype)}
    report = []
    out = tinycabac.apply(base, tinycabac.encode(updated, base=base, report=report, **target))["w"]
    assert np.all(np.isfinite(out.astype(dtype)))
    assert report[0].snr_db == snr_db(updated["w"], out)  # the C decoder's output is the encoder's
    if "snr_db" in target:
        assert report[0].snr_db >= target["snr_db"]
    with pytest.raises(tinycabac.FormatError, match=f"tensor 'w': {error}"):
        tinycabac.encode(updated, base=base, step=overflowing_step)


@pytest.mark.parametrize("old_dtype, new_dtype", [(np.float16, np.float32), (np.float32, np.float16)])
def test_float16_and_float32_bases_update_either_way(old_dtype, new_dtype):
    """FORMAT 6.3: a mode-3 tensor's base may be float32 or float16 (widened,
    exactly); the encoder codes a float32 tensor against a float16 base, so
    apply() must take that base too."""
    rng = np.random.default_rng(3)
    old = {"w": rng.standard_normal(40).astype(old_dtype)}
    new = {"w": (old["w"].astype(np.float32) * 1.01).astype(new_dtype)}
    update = tinycabac.encode(new, base=old, step=1e-3)
    assert [t.mode for t in tinycabac.info(update)][0] == "delta-quantized"
    out = tinycabac.apply(old, update)["w"]
    assert np.max(np.abs(out - new["w"].astype(np.float32))) <= 1e-3


def test_base_digest_follows_the_spec_whatever_the_byte_order():
    """FORMAT 3.5: the digest names little-endian dtypes ('<f4') and hashes
    little-endian bytes, so a big-endian copy of a base (an .npz written
    big-endian) is the same base as its decoded, little-endian copy."""
    rng = np.random.default_rng(4)
    little = {"w": rng.standard_normal(40).astype("<f4"), "i": rng.integers(-9, 9, 7).astype("<i2"),
              "b": np.arange(3, dtype=np.int8)}
    big = {name: array.astype(array.dtype.newbyteorder(">")) for name, array in little.items()}
    assert tinycabac.base_digest(big) == tinycabac.base_digest(little)
    new = {name: array.astype(array.dtype.newbyteorder("<")) + array.dtype.type(1) for name, array in big.items()}
    out = tinycabac.apply(little, tinycabac.encode(new, base=big, step=1e-3))
    assert np.array_equal(out["i"], new["i"])


def test_integer_difference_beyond_the_level_range_codes_the_tensor_whole():
    """An int32 difference can exceed |level| <= 2**31 (FORMAT 5.5); such a
    tensor is coded whole (mode 0), as without a base, not refused."""
    old = {"b": np.array([-(2**31), 5, 2**31 - 1], np.int32), "c": np.array([1, 2], np.int32)}
    new = {"b": np.array([2**31 - 1, 6, -(2**31)], np.int32), "c": np.array([3, 2], np.int32)}
    update = tinycabac.encode(new, base=old)
    assert {t.name: t.mode for t in tinycabac.info(update)} == {
        "b": "lossless", "c": "delta-lossless", "__base_sha256__": "lossless"}
    out = tinycabac.apply(old, update)
    assert all(np.array_equal(out[name], new[name]) for name in new)


def test_a_non_finite_base_tensor_is_not_used_as_a_base():
    """A float base holding NaN or infinity is never a valid base (FORMAT
    6.3): the tensor is coded whole rather than the finite new tensor being
    refused as if it held NaN or infinity."""
    old = {"f": np.array([1.0, np.inf, 2.0], np.float32), "g": np.ones(3, np.float32)}
    new = {"f": np.array([1.0, 3.0, 2.0], np.float32), "g": np.full(3, 2.0, np.float32)}
    update = tinycabac.encode(new, base=old, step=0.5)
    assert {t.name: t.mode for t in tinycabac.info(update)}["f"] == "quantized"
    out = tinycabac.apply(old, update)
    assert np.array_equal(out["f"], new["f"]) and np.array_equal(out["g"], new["g"])
