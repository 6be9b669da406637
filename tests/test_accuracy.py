"""bench/bench_accuracy.py on the bundled digits models: quantizing with tinycabac, decoding with
the C decoder and rebuilding the .tflite keeps the held-out accuracy where the DeepCABAC-style
table says it is, and the int8 model survives lossless coding byte for byte."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_bench_module

from tinycabac.modelfile import read_model
from tinycabac.models import default_model_path, evaluate_accuracy, load_test_split

COARSE_SNRS_DB = (10.0, 20.0, 30.0, 40.0)

ba = load_bench_module("bench_accuracy")


@pytest.fixture(scope="module")
def float_model():
    return read_model(default_model_path("float32"))


@pytest.fixture(scope="module")
def original_accuracy():
    return evaluate_accuracy(default_model_path("float32").read_bytes())


@pytest.fixture(scope="module")
def one_image():
    """One test image's worth of accuracy: the resolution of every accuracy comparison."""
    return 1.0 / len(load_test_split()["labels"])


@pytest.fixture(scope="module")
def coarse_sweep(float_model):
    return {config: [ba.measure_digits_point(float_model, ba.Setting(granularity, quantizer, snr))
                     for snr in COARSE_SNRS_DB]
            for config, (granularity, quantizer) in {"per-tensor nearest": ("per-tensor", "nearest"),
                                                     "per-channel rdoq": ("per-channel", "rdoq"),
                                                     "per-channel trellis": ("per-channel", "trellis")}.items()}


def test_40_db_per_tensor_keeps_accuracy_within_one_point(float_model, original_accuracy):
    point = ba.measure_digits_point(float_model, ba.Setting("per-tensor", "nearest", 40.0))
    assert original_accuracy > 0.95
    assert abs(point.accuracy - original_accuracy) <= 0.01
    assert point.weight_snr_db >= 40.0  # every tensor reaches the target, so all of them together do
    assert point.sizes.weight_payload_bytes * 3 < point.sizes.float_bytes


def test_int8_model_round_trips_byte_for_byte_with_identical_accuracy():
    result = ba.measure_int8(default_model_path("int8"))
    assert result.byte_identical
    assert result.decoded_accuracy == result.original_accuracy > 0.95
    assert result.payload_bytes < result.original_weight_bytes


@pytest.mark.parametrize("config", ["per-tensor nearest", "per-channel rdoq", "per-channel trellis"])
def test_coarse_sweep_trades_size_for_accuracy(coarse_sweep, config, one_image):
    points = coarse_sweep[config]
    sizes = [p.sizes.weight_payload_bytes for p in points]
    snrs = [p.weight_snr_db for p in points]
    accuracies = [p.accuracy for p in points]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert all(measured >= target for measured, target in zip(snrs, COARSE_SNRS_DB))
    assert snrs == sorted(snrs)
    # as the SNR rises accuracy stays within 1% (absolute) of any coarser
    # point's, the bench's "robust" margin: a lucky coarse point can beat a
    # finer one by a few of the 359 test images (per-channel trellis: 99.44%
    # at 20 dB, 98.89% at 30). 10 dB visibly hurts.
    assert all(later >= earlier - 0.01 for earlier, later in zip(accuracies, accuracies[1:])), accuracies
    assert accuracies[0] <= accuracies[-1] - 2 * one_image


def test_tinycabac_codes_the_levels_smaller_than_bzip2(coarse_sweep):
    for points in coarse_sweep.values():
        for point in points:
            assert point.sizes.weight_payload_bytes < point.general_bytes["bzip2 -9"]


def test_levels_behind_decoded_weights_are_exact_integers(float_model):
    setting = ba.Setting("per-channel", "nearest", 40.0)
    stream = ba.encode_setting(float_model, setting)
    decoded = ba.decode_model(stream)
    levels = ba.stream_levels(stream, decoded, ba.channel_axes(float_model))
    assert levels.size == sum(a.size for a in float_model.tensors.values())
    assert levels.dtype == np.int16  # 40 dB needs more than int8's range here, not more than int16's
    assert np.abs(levels).max() > 127
    steps = {s.name: s.steps for s in ba.tinycabac.info(stream)}
    first = ba.integer_levels(decoded.tensors["conv/filter"], steps["conv/filter"], 0)
    assert np.array_equal(first.ravel(), levels[: first.size])
    with pytest.raises(ValueError, match="not integer multiples"):
        ba.integer_levels(np.array([0.25, 0.5], np.float32), [0.2], None)


def test_narrowest_int_picks_the_smallest_dtype_that_holds_the_levels():
    assert ba.narrowest_int(np.array([-128, 127])).dtype == np.int8
    assert ba.narrowest_int(np.array([-129, 0])).dtype == np.int16
    assert ba.narrowest_int(np.array([0, 40000])).dtype == np.int32


def test_smallest_without_loss_ignores_cheaper_points_that_lose_accuracy(coarse_sweep, original_accuracy):
    points = coarse_sweep["per-tensor nearest"]
    best = ba.smallest_without_loss(points, original_accuracy=0.0)
    assert best is points[0]
    best = ba.smallest_without_loss(points, original_accuracy=points[-1].accuracy)
    assert best.accuracy >= points[-1].accuracy
    assert all(p.accuracy < points[-1].accuracy for p in points if p.sizes.weight_payload_bytes < best.sizes.weight_payload_bytes)
    assert ba.smallest_without_loss(points, original_accuracy=1.01) is None


def test_smallest_stable_needs_every_finer_point_within_tolerance(coarse_sweep, original_accuracy):
    points = coarse_sweep["per-tensor nearest"]
    assert ba.smallest_stable(points, original_accuracy=0.0, tolerance=0.0) is points[0]
    assert ba.smallest_stable(points, original_accuracy=1.0, tolerance=0.0) is None
    stable = ba.smallest_stable(points, original_accuracy, tolerance=0.01)
    assert stable is not None and stable is not points[0]  # 10 dB loses more than a point
    assert all(p.accuracy >= original_accuracy - 0.01 for p in points if p.setting.snr_db >= stable.setting.snr_db)


def test_agreement_metrics_on_known_outputs():
    reference = {"boxes": np.array([[3.0, 4.0], [1.0, 0.0]]), "scores": np.array([[0.1, 0.9, 0.2], [0.8, 0.1, 0.3]]),
                 "presence": np.array([[0.5], [0.7]])}
    same = ba.agreement(reference, reference, ("scores", "argmax"))
    assert (same.mean_cosine, same.worst_relative_l2, same.decision_agreement) == (1.0, 0.0, 1.0)
    moved = dict(reference, boxes=reference["boxes"] * 1.1, scores=reference["scores"][:, ::-1])
    result = ba.agreement(moved, reference, ("scores", "argmax"))
    assert result.decision_agreement == 0.5  # the second input's argmax moves, the first's stays
    assert result.worst_relative_l2 == pytest.approx(np.linalg.norm(reference["scores"] - moved["scores"]) / np.linalg.norm(moved["scores"]))
    assert ba.agreement(moved, reference).decision_agreement is None
    assert ba.decision_agreement(reference["scores"], moved["scores"], "mask") == pytest.approx(4 / 6)


def test_float16_jitter_moves_values_by_at_most_one_float16_ulp(float_model):
    jittered = ba.float16_jitter(float_model, np.random.default_rng(0))
    for name, original in float_model.tensors.items():
        moved = jittered.tensors[name].astype(np.float64) - original
        ulp = np.spacing(np.abs(original.astype(np.float16))).astype(np.float64)
        assert np.all(np.abs(moved) <= ulp * (1 + 2.0**-10))  # plus float32 rounding of the sum
        assert np.any(moved != 0)


def test_general_compressors_get_the_levels_tinycabac_coded_under_dependent_quantization():
    from tinycabac import native

    levels = np.random.default_rng(5).integers(-60, 60, size=500)
    assert np.array_equal(ba.dependent_levels(native.dependent_indices(levels)), levels)


def test_real_model_filters_are_found_under_their_stream_names():
    """A filter whose TFLite name is long is coded under its tensor index;
    the accuracy bench must find it there (it once looked it up by TFLite
    name and found none of most models' filters)."""
    from types import SimpleNamespace

    from tinycabac.tflite_io import stream_name

    bench = load_bench_module("bench_accuracy")
    long_name = "model_1/model/conv2d_25/BiasAdd;model_1/model/conv2d_25/Conv2D"
    assert stream_name(long_name, 0, 57) != long_name
    corpus = [SimpleNamespace(name=long_name, index=57, channel_axis=0),
              SimpleNamespace(name="dense2/weights", index=3, channel_axis=1),
              SimpleNamespace(name="not_in_the_file", index=9, channel_axis=0)]
    model_tensors = {stream_name(long_name, 0, 57): None, "dense2/weights": None, "bias": None}
    assert bench.filter_axes_of(model_tensors, corpus) == {stream_name(long_name, 0, 57): 0, "dense2/weights": 1}
