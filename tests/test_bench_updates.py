"""bench/bench_updates.py: its measurements check the update round trip and count what they claim."""
from __future__ import annotations

import bz2

import numpy as np
import pytest

from conftest import load_bench_module

import tinycabac


bench = load_bench_module("bench_updates")


def _int8_pair(rng, changed_fraction):
    old = {"w": rng.integers(-127, 128, size=(64, 64)).astype(np.int8), "b": rng.integers(-2**20, 2**20, size=64).astype(np.int32)}
    new = {name: value.copy() for name, value in old.items()}
    mask = rng.random(old["w"].shape) < changed_fraction
    new["w"][mask] = np.clip(old["w"][mask].astype(int) + rng.choice([-1, 1], size=mask.sum()), -127, 127)
    new["b"][:4] += 3
    return old, new


def test_integer_update_measures_the_stream_and_the_same_differences():
    old, new = _int8_pair(np.random.default_rng(1), 0.05)
    measure = bench.measure_integer_update(old, new)
    stream = tinycabac.encode(new, base=old)
    assert measure.update == len(stream)
    assert 0 < measure.update_payload < measure.update
    assert measure.changed == int(np.count_nonzero(new["w"] != old["w"])) + 4
    differences = np.concatenate([(new[n].astype(np.int64) - old[n]).ravel() for n in new]).astype(np.int8)
    assert measure.diff_general["bzip2 -9"] == len(bz2.compress(differences.tobytes(), 9))
    assert measure.whole_tinycabac == len(tinycabac.encode(new))
    # a 5% sparse +-1 update is far cheaper than the whole model
    assert measure.update * 3 < measure.whole_tinycabac


def test_float_update_lands_on_the_grid_and_beats_the_whole_model_at_equal_step():
    rng = np.random.default_rng(2)
    old = {"w": rng.standard_normal((128, 64)).astype(np.float32)}
    old["w"][0, 0] = -0.0  # a -0.0 base element with a zero level must come back as +0.0
    new = {"w": (old["w"] + 0.01 * rng.standard_normal(old["w"].shape)).astype(np.float32)}
    new["w"][0, 0] = np.float32(-1e-9)  # rounds to a zero level from below
    measure = bench.measure_float_update(old, new, 127)
    assert 0 < measure.changed < old["w"].size
    assert measure.noise_update <= measure.noise_whole  # dropped small changes, versus uniform rounding noise
    assert measure.update < measure.whole_tinycabac


def test_smallest_integer_bytes_picks_the_narrowest_type():
    assert len(bench.smallest_integer_bytes([np.array([-128, 127])])) == 2
    assert len(bench.smallest_integer_bytes([np.array([0, 128])])) == 4
    assert len(bench.smallest_integer_bytes([np.array([0]), np.array([2**20])])) == 8


def test_requantizing_the_float_digits_model_reproduces_the_deployed_int8_tensors():
    from tinycabac import modelfile, models

    float_file = models.default_model_path("float32").read_bytes()
    float_model = modelfile.model_from_bytes(float_file)
    int8_model = modelfile.read_model(models.default_model_path("int8"))
    params = bench.float_params(float_model.tensors, bench.output_bias(float_file))
    requantized = bench.requantize_int8(bench.tflite_layout(params), int8_model)
    for name, value in int8_model.tensors.items():
        np.testing.assert_array_equal(requantized[name], value)


def test_whole_tflite_update_rebuilds_the_new_file():
    from tinycabac import modelfile, models

    int8_model = modelfile.read_model(models.default_model_path("int8"))
    new = {name: value.copy() for name, value in int8_model.tensors.items()}
    new["dense1/weights"][3, :10] = np.clip(new["dense1/weights"][3, :10].astype(int) + 1, -127, 127)
    update_bytes, whole_bytes, general = bench.measure_tflite_file(int8_model, new)
    assert update_bytes < whole_bytes and update_bytes < min(general.values())


def test_shift_right_moves_columns_and_fills_zeros():
    images = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4, 1) + 1
    shifted = bench.shift_right(images, 1)
    np.testing.assert_array_equal(shifted[:, :, 1:], images[:, :, :-1])
    assert not shifted[:, :, 0].any()


@pytest.mark.parametrize("relative", [0.01, 0.05])
def test_perturb_scales_with_channel_rms(relative):
    from types import SimpleNamespace

    weights = np.stack([np.full((4, 50), 1.0), np.full((4, 50), 10.0)], axis=2).astype(np.float32)  # channel axis 2
    tensor = SimpleNamespace(weights=weights, channel_axis=2,
                             channel_rows=lambda: np.moveaxis(weights, 2, 0).reshape(2, -1))
    update = bench.SyntheticUpdate("test", relative)
    changed = bench.perturb(tensor, update, True, np.random.default_rng(0)) - weights
    ratio = changed[..., 1].std() / changed[..., 0].std()
    assert 8 < ratio < 12
    assert bench.perturb(tensor, update, False, np.random.default_rng(0)) is weights
