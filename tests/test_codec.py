"""Round trips and error handling of the Python API over the C core."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import with_header_crc

import tinycabac
from tinycabac import native, quantize
from tinycabac.container import Step
from tinycabac.quantize import quantize_for_snr, reconstruct, snr_db

INTEGER_DTYPES = [np.int8, np.uint8, np.int16, np.int32]
FLOAT_DTYPES = [np.float32, np.float16]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def round_trip(tensors, **options):
    return tinycabac.decode(tinycabac.encode(tensors, **options))


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12)


@SETTINGS
@given(st.sampled_from(INTEGER_DTYPES).flatmap(lambda dt: hnp.arrays(dt, shapes)))
def test_integer_tensors_round_trip_bit_exact(array):
    out = round_trip({"t": array})["t"]
    assert out.dtype == array.dtype and out.shape == array.shape
    assert np.array_equal(out, array)


@SETTINGS
@given(
    st.sampled_from(INTEGER_DTYPES),
    st.sampled_from(["min", "max", "zero", "minmax"]),
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
)
def test_extreme_and_constant_integer_tensors(dtype, pattern, shape):
    info = np.iinfo(dtype)
    fill = {"min": info.min, "max": info.max, "zero": 0}
    if pattern == "minmax":
        array = np.where(np.indices(shape).sum(axis=0) % 2 == 0, info.min, info.max).astype(dtype)
    else:
        array = np.full(shape, fill[pattern], dtype=dtype)
    assert np.array_equal(round_trip({"t": array})["t"], array)


@SETTINGS
@given(
    st.sampled_from([np.int8, np.uint8, np.int16]).flatmap(lambda dt: hnp.arrays(dt, shapes)),
    st.integers(0, 40),
    st.sampled_from(["auto", "difference", "scale"]),
)
def test_any_prediction_distance_round_trips_bit_exact(array, history, kind):
    stream = tinycabac.encode({"t": array}, history=history, prediction=kind)
    info = tinycabac.info(stream)[0]
    assert info.history == history and (info.prediction == "none") == (history == 0)
    assert kind == "auto" or history == 0 or info.prediction == kind
    out = tinycabac.decode(stream)["t"]
    assert out.dtype == array.dtype and np.array_equal(out, array)


@SETTINGS
@given(
    st.sampled_from([np.int8, np.uint8, np.int16, np.int32]).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12),
                              elements=st.integers(-(2**29), 2**29) if dt == np.int32 else None)),
    st.integers(1, 40),
)
def test_factor_prediction_round_trips_bit_exact(array, history):
    """Forced factor prediction (FORMAT 5.8) at any row length: rows cut
    short, fewer elements than one row, wide levels."""
    stream = tinycabac.encode({"t": array}, prediction="factors", history=history)
    info = tinycabac.info(stream)[0]
    if array.size:
        assert (info.prediction, info.history) == ("factors", history)
        assert 1 <= info.rank <= 64 and info.work_size == (history + 1) * info.rank
    out = tinycabac.decode(stream)["t"]
    assert out.dtype == array.dtype and np.array_equal(out, array)


def _low_rank(dtype=np.int8, rows=128, columns=96, rank=6, seed=0, scale=15.0):
    """Rows near a subspace of `rank` dimensions, like a landmark head."""
    rng = np.random.default_rng(seed)
    product = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, columns)) * scale
    return np.clip(np.rint(product + rng.normal(size=(rows, columns))), -127, 127).astype(dtype)


def test_encoder_chooses_factor_prediction_for_a_low_rank_head():
    head = _low_rank().reshape(128, 4, 4, 6)
    stream = tinycabac.encode({"head": head})
    info = tinycabac.info(stream)[0]
    assert (info.prediction, info.history) == ("factors", 96) and 6 <= info.rank <= 24
    assert info.work_size == 97 * info.rank <= 16384
    plain = tinycabac.encode({"head": head}, prediction="none")
    assert info.payload_bytes < 0.8 * tinycabac.info(plain)[0].payload_bytes
    assert np.array_equal(tinycabac.decode(stream)["head"], head)
    # the working memory the decoder may need bounds the rank
    small = tinycabac.info(tinycabac.encode({"head": head}, max_history=400))[0]
    assert small.work_size <= 400 and (small.prediction != "factors" or small.rank <= 4)


def test_factor_prediction_for_quantized_tensors_and_updates():
    weights = _low_rank(np.float32) / 100.0
    stream = tinycabac.encode({"f": weights}, step=0.01)
    assert tinycabac.info(stream)[0].prediction == "factors"
    assert np.array_equal(tinycabac.decode(stream)["f"], round_trip({"f": weights}, step=0.01, prediction="none")["f"])
    base = {"i": _low_rank(np.int16)}
    new = {"i": base["i"] + _low_rank(np.int16, seed=1, scale=4.0)}
    update = tinycabac.encode(new, base=base, prediction="factors")
    assert tinycabac.info(update)[0].prediction == "factors"
    assert np.array_equal(tinycabac.apply(base, update)["i"], new["i"])


def test_factors_at_a_forced_distance_that_cannot_fit_are_refused():
    with pytest.raises(tinycabac.FormatError, match="factor prediction"):
        tinycabac.encode({"t": np.ones((8, 100), np.int8)}, prediction="factors", history=100, max_history=50)
    with pytest.raises(tinycabac.FormatError, match="factor prediction"):
        tinycabac.encode({"t": np.array([-(2**31), 2**31 - 1], np.int32)}, prediction="factors", history=1)


def _repeating_rows(dtype=np.int8, rows=24, lag=3, seed=0):
    """Rows that repeat every `lag` rows up to small noise, like the x/y/z
    rows of a landmark layer: prediction at lag x row length pays."""
    rng = np.random.default_rng(seed)
    pattern = rng.integers(-90, 90, size=(lag, 64))
    noise = rng.integers(-3, 4, size=(rows, 64))
    return (np.tile(pattern, (rows // lag, 1)) + noise).astype(dtype)


def test_encoder_chooses_prediction_when_it_pays():
    array = _repeating_rows()
    stream = tinycabac.encode({"w": array, "noise": np.random.default_rng(1).integers(-99, 99, (24, 64), dtype=np.int8)})
    by_name = {t.name: t for t in tinycabac.info(stream)}
    assert by_name["w"].history == 3 * 64  # the lag the data has
    assert by_name["noise"].history == 0   # nothing to predict
    plain = tinycabac.encode({"w": array}, history=0)
    assert tinycabac.info(stream)[0].payload_bytes < 0.6 * tinycabac.info(plain)[0].payload_bytes
    assert np.array_equal(tinycabac.decode(stream)["w"], array)
    assert tinycabac.info(tinycabac.encode({"w": array}, max_history=100))[0].history in (0, 64)  # 3 rows > 100


def test_encoder_chooses_scale_prediction_for_pruned_input_channels():
    rng = np.random.default_rng(4)
    kept = rng.random(96) < 0.5  # pruned input channels: zero in every output row
    weights = (rng.laplace(size=(64, 96)) * 40 * kept).clip(-127, 127).astype(np.int8)
    stream = tinycabac.encode({"conv": weights})
    info = tinycabac.info(stream)[0]
    assert (info.prediction, info.history) == ("scale", 96)
    assert info.payload_bytes < 0.9 * tinycabac.info(tinycabac.encode({"conv": weights}, prediction="none"))[0].payload_bytes
    assert np.array_equal(tinycabac.decode(stream)["conv"], weights)


def test_prediction_for_quantized_tensors_and_updates():
    rows = _repeating_rows(np.float32) / 100.0
    stream = tinycabac.encode({"f": rows}, step=0.01)
    assert tinycabac.info(stream)[0].history == 3 * 64
    assert np.array_equal(tinycabac.decode(stream)["f"], round_trip({"f": rows}, step=0.01, history=0)["f"])
    base = {"f": rows, "i": _repeating_rows(np.int16)}
    new = {"f": rows + 0.05 * _repeating_rows(np.float32, seed=2) / 100.0, "i": base["i"] + _repeating_rows(np.int16, seed=3) // 8}
    update = tinycabac.encode(new, base=base, step=0.001)
    assert all(t.history > 0 for t in tinycabac.info(update) if not t.name.startswith("__"))
    applied = tinycabac.apply(base, update)
    assert np.array_equal(applied["i"], new["i"])
    assert np.abs(applied["f"] - new["f"]).max() <= 0.0005 + 1e-6


def test_bad_history_options_are_refused():
    for bad in (-1, 65536, 2.5, True):
        with pytest.raises(ValueError, match="history"):
            tinycabac.encode({"t": np.zeros(4, np.int8)}, history=bad)
    with pytest.raises(ValueError, match="history"):
        tinycabac.encode({"t": np.zeros(4, np.int8)}, max_history=-5)
    for bad_kind in ("diff", 1, None):
        with pytest.raises(ValueError, match="prediction"):
            tinycabac.encode({"t": np.zeros(4, np.int8)}, prediction=bad_kind or "x")
    with pytest.raises(ValueError, match="history"):
        tinycabac.encode({"t": np.zeros(4, np.int8)}, prediction="none", history=3)
    extremes = np.array([-(2**31), 2**31 - 1] * 4, dtype=np.int32)
    with pytest.raises(tinycabac.FormatError, match="prediction='none'"):
        tinycabac.encode({"t": extremes}, prediction="difference", history=1)
    scaled = tinycabac.encode({"t": extremes}, history=1)  # scale prediction has no range limit
    assert tinycabac.info(scaled)[0].prediction == "scale"
    assert np.array_equal(tinycabac.decode(scaled)["t"], extremes)
    assert np.array_equal(round_trip({"t": extremes})["t"], extremes)  # automatic choice stays safe


def test_huge_first_dimension_and_many_tensors_keep_order():
    tensors = {
        "tall": np.arange(200_000, dtype=np.int32).reshape(200_000, 1) % 251 - 125,
        "one": np.array([7], dtype=np.int16),
        "scalar": np.array(-3, dtype=np.int8),
        "empty": np.zeros((0, 5, 3), dtype=np.uint8),
    }
    out = round_trip(tensors)
    assert list(out) == list(tensors)
    for name, array in tensors.items():
        assert out[name].shape == array.shape and np.array_equal(out[name], array)


@SETTINGS
@given(
    st.sampled_from(FLOAT_DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, max_side=10),
                              elements=st.floats(-1e3, 1e3, allow_nan=False, width=16 if dt == np.float16 else 32))
    ),
    st.floats(1e-3, 10.0),
)
def test_float_reconstruction_identical_in_encoder_and_c_decoder(array, step):
    out = round_trip({"w": array}, step=step)["w"]
    fixed = Step.from_float(step)
    expected = reconstruct(np.rint(array.astype(np.float64) / fixed.value).astype(np.int64), [fixed], 0xFF)
    assert out.dtype == np.float32
    assert out.tobytes() == expected.tobytes()


@SETTINGS
@given(st.integers(-(2**31), 2**31), st.integers(1, 65535), st.integers(-128, 127))
def test_exact_float32_rounding_of_level_times_step(level, mantissa, exponent):
    """The C decoder's integer float construction equals float64 -> float32."""
    value = level * mantissa * 2.0**exponent
    with np.errstate(over="ignore"):
        expected = np.float32(value) if np.isfinite(np.float32(value)) else None
    step = Step(mantissa, exponent)
    tensor = {"w": np.array([0.0], dtype=np.float32)}
    entry_levels = np.array([level], dtype=np.int64)
    from tinycabac import container, native

    payload = native.encode_levels(entry_levels)
    if expected is None:
        return  # the encoder refuses overflowing steps (tested below)
    entry = container.TensorEntry(
        "w", np.dtype(np.float32), (1,), container.MODE_QUANTIZED, payload,
        zlib.crc32(np.array([expected], dtype="<f4").tobytes()), steps=[step],
    )
    out = tinycabac.decode(container.write_stream([entry]))["w"]
    assert out.tobytes() == np.array([expected], dtype="<f4").tobytes(), tensor


def test_quantization_choices():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((16, 64)) * 0.1).astype(np.float32)
    for options in ({"step": 0.01}, {"qp": -28}, {"snr_db": 30.0}, {"snr_db": 30.0, "axis": 0},
                    {"step": 0.01, "quantizer": "rdoq"}, {"step": np.linspace(0.005, 0.02, 16), "axis": 0}):
        report = []
        data = tinycabac.encode({"w": w}, report=report, **options)
        out = tinycabac.decode(data)["w"]
        assert out.shape == w.shape and out.dtype == np.float32
        if "snr_db" in options:
            assert report[0].snr_db >= options["snr_db"]
    coarse = len(tinycabac.encode({"w": w}, step=0.05))
    fine = len(tinycabac.encode({"w": w}, step=0.005))
    assert coarse < fine


def test_rdoq_trades_distortion_for_fewer_bits():
    rng = np.random.default_rng(1)
    w = (rng.laplace(size=20_000) * 0.05).astype(np.float32)
    nearest, rdoq = [], []
    size_nearest = len(tinycabac.encode({"w": w}, step=0.02, report=nearest))
    size_rdoq = len(tinycabac.encode({"w": w}, step=0.02, quantizer="rdoq", report=rdoq))
    assert size_rdoq < size_nearest
    assert rdoq[0].snr_db < nearest[0].snr_db


def _channel_snrs(w: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Weight SNR of each row (output channel), in dB."""
    noise = np.sum((w.astype(np.float64) - out) ** 2, axis=1)
    return 10 * np.log10(np.sum(w.astype(np.float64) ** 2, axis=1) / noise)


@pytest.mark.parametrize("quantizer", ["rdoq", "trellis"])
def test_searching_quantizers_keep_every_channel_at_its_own_precision(quantizer):
    """With per-channel steps a small channel has a small step; RDOQ and the
    trellis must weigh its errors by that step (lambda = lam * step**2 per
    channel), not by a lambda sized for the large channels, which zeroed
    the small ones."""
    rng = np.random.default_rng(5)
    scales = np.array([1.0, 0.3, 0.03, 0.003])[:, None]
    w = (rng.laplace(size=(4, 2000)) * scales).astype(np.float32)
    steps = (scales.ravel() / 8).tolist()
    nearest = tinycabac.decode(tinycabac.encode({"w": w}, step=steps, axis=0))["w"]
    searched = tinycabac.decode(tinycabac.encode({"w": w}, step=steps, axis=0, quantizer=quantizer))["w"]
    # each channel gives up about the same SNR for its bits (a dependent
    # level spans two steps, so the trellis gives up more at a given step)
    loss = _channel_snrs(w, nearest) - _channel_snrs(w, searched)
    assert np.ptp(loss) < 1.5 and np.max(loss) < (6.0 if quantizer == "trellis" else 3.0), loss


def test_lam_is_used_however_the_step_is_chosen():
    """`lam` (in units of step**2) steers RDOQ whether the step is given or
    searched for an SNR or a size; 0 makes RDOQ pick the nearest level."""
    rng = np.random.default_rng(6)
    w = {"w": (rng.laplace(size=(16, 500)) * 0.05).astype(np.float32)}
    nearest = tinycabac.decode(tinycabac.encode(w, step=0.01))["w"]
    assert np.array_equal(tinycabac.decode(tinycabac.encode(w, step=0.01, quantizer="rdoq", lam=0.0))["w"], nearest)
    for target in ({"snr_db": 25.0}, {"bits_per_weight": 3.0}):
        sizes, snrs = [], []
        for lam in (0.0, 0.17, 2.0):
            report = []
            sizes.append(len(tinycabac.encode(w, quantizer="rdoq", lam=lam, report=report, **target)))
            snrs.append(report[0].snr_db)
        # a size target may land two lambdas on one size, never on one result
        assert len(set(zip(sizes, snrs))) == 3, (target, sizes, snrs)
        if "snr_db" in target:
            assert min(snrs) >= 25.0
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lam"):
            tinycabac.encode(w, step=0.01, quantizer="rdoq", lam=bad)


@pytest.mark.parametrize("quantizer", ["nearest", "trellis"])
def test_max_size_is_met_by_the_whole_stream_at_one_common_snr(quantizer):
    rng = np.random.default_rng(8)
    tensors = {
        "conv": (rng.standard_normal((16, 3, 3, 8)) * 0.2).astype(np.float32),
        "dense": (rng.laplace(size=(32, 300)) * 0.01).astype(np.float16),
        "bias": np.arange(32, dtype=np.int32),
    }
    for max_size in (1500, 4000, 9000):
        report, trials = [], []
        data = tinycabac.encode(tensors, max_size=max_size, quantizer=quantizer, report=report,
                                progress=lambda name, _: trials.append(name) if name.startswith("size") else None)
        assert 0.9 * max_size < len(data) <= max_size
        assert len(trials) <= 8  # aimed by secant: bisection to 0.05 dB took 12
        snrs = [r.snr_db for r in report if r.snr_db is not None]
        assert len(snrs) == 2 and max(snrs) - min(snrs) < 1.0  # one SNR target for all
        decoded = tinycabac.decode(data)
        assert np.array_equal(decoded["bias"], tensors["bias"])


@pytest.mark.parametrize("max_size", [np.uint64(600), np.uint16(600), np.int8(100), 600, 10**400])
def test_max_size_of_any_integer_type_is_met(max_size):
    """A numpy unsigned max_size once made max_size - size wrap around, so a
    stream 3.6 times too large passed as fitting; a small numpy type or a
    huge int overflowed."""
    w = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    data = tinycabac.encode({"w": w}, max_size=max_size)
    assert len(data) <= int(max_size)
    assert len(data) == len(tinycabac.encode({"w": w}, snr_db=100.0)) or len(data) > 0.9 * int(max_size)


def test_an_infinite_snr_target_is_met_by_exactly_representable_weights():
    """inf - inf is nan: the search once found no try meeting the target."""
    report = []
    w = np.array([0.5, 0.25, -0.125, 1.0] * 10, np.float32)
    data = tinycabac.encode({"w": w}, snr_db=float("inf"), report=report)
    assert report[0].snr_db == float("inf") and np.array_equal(tinycabac.decode(data)["w"], w)


@pytest.mark.parametrize("shape, axis", [((0, 4), 0), ((0, 4), 1), ((3, 0), 0)])
@pytest.mark.parametrize("options", [{}, {"step": 0.1}, {"bits_per_weight": 2.0}])
def test_empty_float_tensors_with_a_channel_axis(shape, axis, options):
    data = tinycabac.encode({"z": np.zeros(shape, np.float32)}, axis=axis, **options)
    assert tinycabac.decode(data)["z"].shape == shape


@pytest.mark.parametrize("w", [
    np.array([3.4e38, -3.4e38, 0.0, 1e38] * 8, np.float32),
    np.array([65504.0, 0.1, -65504.0, 300.0] * 8, np.float16),
])
@pytest.mark.parametrize("target", [{"snr_db": 10}, {"snr_db": 40}, {"bits_per_weight": 3.0}])
def test_step_search_reaches_weights_at_their_dtype_s_limit(w, target):
    """The step search skips steps whose levels would reconstruct past the
    dtype's range (float16 rounds 65520 up to infinity) instead of failing."""
    report = []
    out = tinycabac.decode(tinycabac.encode({"w": w}, report=report, **target))["w"]
    assert np.all(np.isfinite(out.astype(w.dtype)))
    if "snr_db" in target:
        assert report[0].snr_db >= target["snr_db"]


@pytest.mark.parametrize("options", [{}, {"snr_db": 20}, {"bits_per_weight": 2.0}, {"max_size": 300},
                                     {"quantizer": "trellis"}, {"axis": {"channels": 0}}])
def test_step_search_stays_within_the_steps_the_format_has(options):
    """Weights near float32's smallest values ask for steps below the
    format's finest, 2**-128 (FORMAT 3.3): the search holds them to it, at
    the best SNR it allows, and the C decoder outputs the encoder's
    reconstruction."""
    subnormal = np.zeros(100, np.float32)
    subnormal[5] = 1e-40  # 0.03 of the finest step: it can only become 0
    tensors = {
        "bias": subnormal,
        "tiny": np.full(64, 1e-37, np.float32),  # 34 finest steps
        "channels": np.array([[1e-40, 0.0, 2e-40], [1.0, 2.0, 3.0]], np.float32),
        "ok": np.ones(10, np.float32),
    }
    report = []
    data = tinycabac.encode(tensors, report=report, **options)
    decoded = tinycabac.decode(data)
    for entry in report:
        assert entry.snr_db == snr_db(tensors[entry.name], decoded[entry.name])
    measured = {entry.name: entry.snr_db for entry in report}
    assert measured["bias"] == 0.0
    if not options:
        assert measured["tiny"] >= 40 and measured["channels"] >= 40
        assert decoded["tiny"].tobytes() == quantize_for_snr(tensors["tiny"], 40.0, 0xFF).reconstruction.tobytes()
    with pytest.raises(tinycabac.FormatError, match="tensor 'bias': quantization step 1e-50 is below"):
        tinycabac.encode(tensors, step={"bias": 1e-50, "tiny": 1e-38, "channels": 1e-38, "ok": 0.1})


@pytest.mark.parametrize("quantizer", ["nearest", "rdoq", "trellis"])
@pytest.mark.parametrize("search", [("snr", 30.0), ("rate", 3.0)])
def test_step_search_aims_at_the_boundary_in_few_quantizations(monkeypatch, quantizer, search):
    """Each try of the step search quantizes the whole tensor (a trellis
    search, on a large one, takes seconds), so it aims its tries: a
    real-sized tensor takes at most 10 of them where bisection took 16, and
    the step found is at the boundary: 0.1% past it (0.0014 in log2;
    coarser for an SNR floor, finer for a rate ceiling) misses the target."""
    rng = np.random.default_rng(3)
    w = (rng.standard_t(4, size=(128, 1152)) * np.exp(rng.normal(0, 0.5, (128, 1))) * 0.02).astype(np.float32)
    tries = []
    real_quantize = quantize.quantize_with_steps
    monkeypatch.setattr(quantize, "quantize_with_steps", lambda *args, **kw: tries.append(1) or real_quantize(*args, **kw))
    kind, target = search
    search_for = quantize.quantize_for_snr if kind == "snr" else quantize.quantize_for_rate
    found = search_for(w, target, 0, quantizer, "w")
    assert len(tries) <= 10

    def measure(q):
        if kind == "snr":
            return snr_db(w, q.reconstruction) - target
        return target - native.estimate_bits(q.levels, native.initial_activity(q.levels)) / w.size

    assert measure(found) >= 0
    past = [Step.from_float(s.value * (1.001 if kind == "snr" else 1 / 1.001)) for s in found.steps]
    assert measure(quantize.quantize_with_steps(w, past, 0, quantizer)) < 0


@pytest.mark.parametrize("qp", [2.5, True, "3"])
def test_qp_must_be_an_integer(qp):
    with pytest.raises(ValueError, match="qp must be an integer"):
        tinycabac.encode({"w": np.ones(8, np.float32)}, qp=qp)


def test_progress_names_each_tensor_as_it_starts_and_counts_it_when_done():
    calls = []
    tinycabac.encode({"a": np.linspace(-1, 1, 10, dtype=np.float32), "b": np.arange(5, dtype=np.int8)},
                     progress=lambda name, elements: calls.append((name, elements)))
    # a float tensor's step search also names each of its tries, which on a
    # large tensor take seconds each
    tries = [name for name, elements in calls if name.startswith("step try") and elements == 0]
    assert tries and tries == [f"step try {n}: a" for n in range(1, len(tries) + 1)]
    assert calls[1 : 1 + len(tries)] == [(name, 0) for name in tries]
    assert [call for call in calls if call[0] not in tries] == [("a", 0), ("a", 10), ("b", 0), ("b", 5)]
    calls.clear()
    tinycabac.encode({"a": np.linspace(0, 1, 1000, dtype=np.float32)}, max_size=600,
                     progress=lambda name, elements: calls.append((name, elements)))
    searches = [name for name, elements in calls if name.startswith("size search")]
    tensor_calls = [call for call in calls if call[0] == "a"]
    assert searches and tensor_calls == [("a", 0), ("a", 1000)]  # counted once, by the final encode
    assert sum(elements for _, elements in calls) == 1000


def test_a_quantization_setting_for_an_integer_tensor_is_an_error():
    tensors = {"i": np.arange(10, dtype=np.int8), "f": np.ones(10, np.float32)}
    assert tinycabac.decode(tinycabac.encode(tensors, step=0.5))["i"].tolist() == list(range(10))  # floats only
    for option in ({"step": {"i": 0.5}}, {"qp": {"i": 3}}, {"snr_db": {"i": 30.0}}, {"lam": {"i": 0.1}},
                   {"bits_per_weight": {"i": 2.0}}):
        with pytest.raises(ValueError, match="integer tensor, coded losslessly"):
            tinycabac.encode(tensors, **option)
    tinycabac.encode(tensors, axis={"i": 0, "f": 0})  # axes, as --per-channel gives them, are harmless


def test_max_size_errors():
    w = {"w": np.linspace(-1, 1, 5000, dtype=np.float32), "i": np.arange(4000, dtype=np.int32)}
    with pytest.raises(tinycabac.FormatError, match="cannot fit 100 bytes"):
        tinycabac.encode(w, max_size=100)
    with pytest.raises(ValueError, match="max_size alone"):
        tinycabac.encode(w, max_size=10_000, snr_db=30)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="max_size"):
            tinycabac.encode(w, max_size=bad)


DEPENDENT_NEXT_STATE = [[0, 1], [3, 2], [5, 4], [6, 7], [1, 0], [2, 3], [4, 5], [7, 6]]  # FORMAT 6.2


def dependent_states(levels) -> list[int]:
    """The state each level is reconstructed in (FORMAT 6.2), starting at 0."""
    state, states = 0, []
    for level in levels:
        states.append(state)
        state = DEPENDENT_NEXT_STATE[state][level & 1]
    return states


def dependent_indices_by_hand(levels) -> list[int]:
    """FORMAT 6.2 spelled out: q = 2*level, or 2*level - sign(level) in the odd states."""
    return [2 * level - (int(np.sign(level)) if state & 1 else 0)
            for level, state in zip(levels, dependent_states(levels))]


def test_dependent_reconstruction_follows_the_eight_state_rule():
    """Hand-made levels that visit all eight states, zeros in the odd-multiple
    quantizer and |q| near 2**32; the C decoder must reproduce them exactly."""
    from tinycabac import container, native

    levels = [1, 0, -3, 2, 0, 5, -1, 0, 0, 7, 2**31, -(2**31) + 1, 4, -2, 1, 0, 1, 1, 0, 3, 0, 0, 2, -1, 6]
    indices = dependent_indices_by_hand(levels)
    states = dependent_states(levels)
    assert sorted(set(states)) == list(range(8))
    assert any(state & 1 and level == 0 for state, level in zip(states, levels))
    assert native.dependent_indices(np.array(levels)).tolist() == indices
    step = Step(3, -40)
    expected = np.array([np.float32(q * 3 * 2.0**-40) for q in indices], dtype="<f4")
    entry = container.TensorEntry(
        "w", np.dtype(np.float32), (len(levels),), container.MODE_QUANTIZED,
        native.encode_levels(np.array(levels)), zlib.crc32(expected.tobytes()), steps=[step],
        quantizer=container.QUANTIZER_DEPENDENT,
    )
    out = tinycabac.decode(container.write_stream([entry]))["w"]
    assert out.tobytes() == expected.tobytes()


@SETTINGS
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=12),
               elements=st.floats(-100, 100, allow_nan=False, width=32)),
    st.floats(1e-3, 10.0),
    st.sampled_from([None, 0]),
)
def test_trellis_reconstruction_identical_in_encoder_and_c_decoder(array, step, axis):
    report = []
    data = tinycabac.encode({"w": array}, step=step, quantizer="trellis", axis=axis, report=report)
    (row,) = tinycabac.info(data)
    assert row.quantizer == "dependent"
    out = tinycabac.decode(data)["w"]
    from tinycabac import quantize

    fixed = Step.from_float(step)
    steps = [fixed] * (1 if axis is None else array.shape[0])
    levels = np.asarray(quantize.quantize_with_steps(
        array, steps, 0xFF if axis is None else 0, "trellis").levels)
    expected = reconstruct(levels, steps, 0xFF if axis is None else 0, quantizer=1)
    assert out.tobytes() == expected.tobytes()


def test_trellis_beats_nearest_rounding_at_equal_snr():
    """Dependent quantization's reason to exist (FORMAT 6.2): on Laplacian
    weights a trellis-quantized stream that reaches the SNR of nearest
    rounding at step 0.02 is smaller."""
    rng = np.random.default_rng(3)
    w = (rng.laplace(size=(64, 256)) * 0.05).astype(np.float32)
    nearest = []
    size_nearest = len(tinycabac.encode({"w": w}, step=0.02, report=nearest))
    trellis = []
    size_trellis = len(tinycabac.encode({"w": w}, snr_db=nearest[0].snr_db, quantizer="trellis", report=trellis))
    assert trellis[0].snr_db >= nearest[0].snr_db
    assert size_trellis < 0.985 * size_nearest


def test_trellis_for_updates_and_size_targets():
    rng = np.random.default_rng(4)
    base = {"f": (rng.standard_normal((8, 100)) * 0.1).astype(np.float32)}
    new = {"f": base["f"] + (rng.standard_normal((8, 100)) * 1e-3).astype(np.float32)}
    update = tinycabac.encode(new, base=base, step=1e-4, quantizer="trellis")
    assert tinycabac.info(update)[0].quantizer == "dependent"
    applied = tinycabac.apply(base, update)["f"]
    assert np.max(np.abs(applied - new["f"])) < 2e-4
    sized = tinycabac.encode(base, bits_per_weight=3.0, quantizer="trellis")
    assert tinycabac.info(sized)[0].bits_per_weight <= 3.0 + 0.2  # payload target; the bound is the estimate


def test_info_names_the_quantizer_of_quantized_tensors_only():
    data = tinycabac.encode(
        {"i": np.arange(10, dtype=np.int8), "u": np.ones(10, np.float32), "d": np.ones(10, np.float32)},
        step=0.5, quantizer={"u": "rdoq", "d": "trellis"},
    )
    assert [r.quantizer for r in tinycabac.info(data)] == [None, "uniform", "dependent"]


def test_per_tensor_option_mappings():
    w = np.linspace(-1, 1, 100, dtype=np.float32)
    data = tinycabac.encode({"a": w, "b": w}, step={"a": 0.1, "b": 0.001})
    info = {t.name: t for t in tinycabac.info(data)}
    assert info["a"].steps[0] == pytest.approx(0.1, rel=1e-4)
    assert info["b"].steps[0] == pytest.approx(0.001, rel=1e-4)
    assert info["a"].payload_bytes < info["b"].payload_bytes


def test_info_describes_each_tensor():
    data = tinycabac.encode({"i": np.arange(100, dtype=np.int16), "f": np.ones((4, 5), np.float32)}, step=0.5)
    rows = tinycabac.info(data)
    assert [(r.name, r.dtype, r.shape, r.mode, r.elements) for r in rows] == [
        ("i", "int16", (100,), "lossless", 100),
        ("f", "float32", (4, 5), "quantized", 20),
    ]
    assert all(r.bits_per_weight > 0 and r.payload_bytes > 0 for r in rows)


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused_naming_the_tensor(bad):
    with pytest.raises(tinycabac.FormatError, match="'w'.*NaN or infinity"):
        tinycabac.encode({"w": np.array([1.0, bad], dtype=np.float32)})


@pytest.mark.parametrize("array", [np.zeros(3, np.float64), np.zeros(3, np.int64), np.zeros(3, bool), np.array(["a"])])
def test_unsupported_dtypes_are_refused(array):
    with pytest.raises(tinycabac.FormatError, match="unsupported dtype"):
        tinycabac.encode({"x": array})


def test_bad_names_and_options_are_refused():
    with pytest.raises(tinycabac.FormatError, match="1..255 bytes"):
        tinycabac.encode({"": np.zeros(1, np.int8)})
    with pytest.raises(tinycabac.FormatError, match="1..255 bytes"):
        tinycabac.encode({"n" * 256: np.zeros(1, np.int8)})
    with pytest.raises(tinycabac.FormatError, match="not valid UTF-8"):
        tinycabac.encode({"bad\udcff": np.zeros(1, np.int8)})
    for reserved in ("__x", "__base_sha256__", "__tflite_skeleton__", "__tflite_places__", "__tflite_layout__"):
        # decode() would hide them (FORMAT 3.5); only a model file's ContainerTensors may hold the last three
        with pytest.raises(tinycabac.FormatError, match="reserved for container data"):
            tinycabac.encode({reserved: np.zeros(1, np.int8)})
    with pytest.raises(ValueError, match="at most one of"):
        tinycabac.encode({"w": np.ones(4, np.float32)}, step=0.1, qp=-20)
    with pytest.raises(TypeError, match="channel axis must be an integer, got 1.0"):
        tinycabac.encode({"w": np.ones((4, 4), np.float32)}, axis=1.0)
    with pytest.raises(TypeError, match="report must be a list"):
        tinycabac.encode({"w": np.ones(4, np.float32)}, report={})
    with pytest.raises(tinycabac.FormatError, match="positive finite"):
        tinycabac.encode({"w": np.ones(4, np.float32)}, step=-1.0)
    with pytest.raises(tinycabac.FormatError, match="overflows float32"):
        tinycabac.encode({"w": np.full(4, 3e38, np.float32)}, step=2.0**127)
    with pytest.raises(ValueError, match="axis"):
        tinycabac.encode({"w": np.ones((2, 2), np.float32)}, step=0.1, axis=5)
    for target in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(tinycabac.FormatError, match="bits per weight must be a positive finite number"):
            tinycabac.encode({"w": np.ones(4, np.float32)}, bits_per_weight=target)
    with pytest.raises(tinycabac.FormatError, match="target SNR must be a number"):
        tinycabac.encode({"w": np.ones(4, np.float32)}, snr_db=float("nan"))
    for option in ("step", "snr_db", "axis", "quantizer", "prediction", "history"):  # a typo is not a default
        with pytest.raises(ValueError, match=rf"{option} names tensors that are not in the input: \['dense'\]"):
            tinycabac.encode({"dense1": np.ones(4, np.float32)}, **{option: {"dense": 1}})


def test_a_float16_reconstruction_past_65504_is_an_error_not_infinity():
    """A .tflite rebuild narrows float16 weights back (FORMAT 3.5): 65504
    quantized with a step of 40 reconstructs as 1638 * 40 = 65520, which is
    infinity in float16."""
    top = np.array([65504.0, -65504.0, 1.0], np.float16)
    with pytest.raises(tinycabac.FormatError, match="overflows float16"):
        tinycabac.encode({"w": top}, step=40.0)
    with pytest.raises(tinycabac.FormatError, match="overflows float16"):
        tinycabac.encode({"w": top}, base={"w": np.zeros(3, np.float16)}, step=40.0)
    fits = tinycabac.decode(tinycabac.encode({"w": top}, step=4.0))["w"]  # 16376 * 4 = 65504
    assert fits.tolist() == [65504.0, -65504.0, 0.0]


@pytest.mark.parametrize("quantizer", ["nearest", "rdoq", "trellis"])
def test_a_step_too_small_for_the_levels_is_an_error_not_a_zeroed_weight(quantizer):
    """RDOQ and the trellis could fall back to level 0 for a weight whose
    levels are all out of range; the range is checked before they search."""
    weights = {"w": np.array([1e6, 1.0, -3e6], np.float32)}
    with pytest.raises(tinycabac.FormatError, match="step too small"):
        tinycabac.encode(weights, step=1e-6, quantizer=quantizer)


def _sample_stream():
    # "c" is coded with prediction, so damage tests cover that path too
    return tinycabac.encode(
        {"a": np.arange(-50, 50, dtype=np.int8), "b": np.linspace(-1, 1, 64, dtype=np.float32),
         "c": np.tile(np.arange(-8, 8, dtype=np.int16), (4, 1))},
        step=0.01,
        history={"c": 16},
    )


def test_wrong_magic_version_and_flags():
    data = bytearray(_sample_stream())
    with pytest.raises(tinycabac.DecodeError, match="not a tinycabac stream"):
        tinycabac.decode(b"XCAB" + bytes(data[4:]))
    for version in (tinycabac.FORMAT_VERSION - 1, tinycabac.FORMAT_VERSION + 1):
        data[4] = version  # says which version it is, and which this release reads
        expected = f"unsupported version {version} \\(this tinycabac reads {tinycabac.FORMAT_VERSION};"
        with pytest.raises(tinycabac.DecodeError, match=expected):
            tinycabac.decode(bytes(data))
    data[4], data[5] = tinycabac.FORMAT_VERSION, 1
    with pytest.raises(tinycabac.DecodeError, match="reserved"):
        tinycabac.decode(bytes(data))


def test_every_truncation_is_an_error():
    data = _sample_stream()
    for length in range(len(data)):
        with pytest.raises(tinycabac.FormatError):
            tinycabac.decode(data[:length])


def test_trailing_bytes_are_an_error():
    with pytest.raises(tinycabac.FormatError, match="unexpected bytes"):
        tinycabac.decode(_sample_stream() + b"\0")


def test_every_bit_flip_is_detected():
    data = _sample_stream()
    for position in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            with pytest.raises(tinycabac.FormatError):
                tinycabac.decode(bytes(damaged))


def test_directory_lies_are_caught_even_with_a_valid_crc():
    data = bytearray(_sample_stream())
    data[20 + 1 + 1] = 9  # dtype of the first tensor ("a": name_len 1) -> reserved
    with pytest.raises(tinycabac.DecodeError, match="reserved"):
        tinycabac.decode(with_header_crc(data))


def test_size_target_picks_the_finest_step_that_fits():
    w = np.random.default_rng(3).standard_normal(20_000).astype(np.float32)
    sizes = []
    for target in (2.0, 3.0, 4.0):
        report = []
        data = tinycabac.encode({"w": w}, bits_per_weight=target, report=report)
        row = tinycabac.info(data)[0]
        assert row.bits_per_weight <= target * 1.01  # the model's estimate vs the real payload
        assert row.bits_per_weight >= target * 0.95  # and not needlessly coarse
        sizes.append((row.payload_bytes, report[0].snr_db))
    assert sizes[0][0] < sizes[1][0] < sizes[2][0] and sizes[0][1] < sizes[1][1] < sizes[2][1]


# --- encoder core edges found by the sanitized run (make sanitize) -----------


def test_history_cost_classes_levels_near_the_int64_limits_as_33_bits():
    """Near INT64_MIN the residual and its negation overflowed int64 (UBSan:
    signed overflow); INT64_MIN itself was counted as 0 bits."""
    from tinycabac import native

    extremes = np.array([127, -(2**63), 2**63 - 1, -(2**33) - 1, 2**32], dtype=np.int64)
    assert native.history_cost(extremes, 0) == 7 + 4 * 33
    assert native.history_cost(extremes, 1) == 7 + 4 * 33


@pytest.mark.parametrize("lam", [1e307, 1.7e308])
def test_trellis_with_a_huge_lambda_codes_almost_nothing(lam):
    """Path costs overflowed to infinity, every state then looked unreached,
    and the traceback read choices never written (ASan: index 190 out of
    bounds for trellis_step[8]); a huge lambda now minimises bits, as RDOQ
    does.  Minimal bits are nearly all zeros: the trellis prices a chunk with
    the contexts frozen at its start (FORMAT 5.2's trained starting
    probabilities), where a first +-1 or two can pay for themselves by moving
    the activity to the context set in which a zero costs least."""
    from tinycabac import native

    weights = np.linspace(-3, 3, 2000)
    for levels in (native.trellis(weights, np.ones(1), weights.size, lam),
                   tinycabac.decode(tinycabac.encode({"w": weights.astype(np.float32)}, step=1.0,
                                                     quantizer="trellis", lam=lam))["w"]):
        assert np.abs(levels).max() <= 1 and np.count_nonzero(levels) <= weights.size // 200


def test_column_activities_of_the_wrong_length_are_refused():
    """The C core reads one column activity per level: ten for a hundred
    levels was a heap-buffer-overflow read (ASan)."""
    from tinycabac import native

    levels = np.zeros(100, dtype=np.int64)
    for columns in (np.zeros(10, dtype=np.uint8), np.zeros(101, dtype=np.uint8)):
        with pytest.raises(ValueError, match="column activities"):
            native.estimate_bits(levels, 0, columns)
        with pytest.raises(ValueError, match="column activities"):
            native.encode_levels(levels, "t", 0, columns)


def test_levels_that_int64_would_change_are_refused():
    """2**64 - 1 as uint64 was silently coded as -1, and 1.5 as 1."""
    from tinycabac import native

    with pytest.raises(ValueError, match="int64"):
        native.encode_levels(np.array([2**64 - 1], dtype=np.uint64))
    with pytest.raises(TypeError, match="integer"):
        native.encode_levels(np.array([1.5]))


def test_dependent_indices_refuse_levels_beyond_the_format():
    """2 * level overflowed int64 in tce_dependent_indices (UBSan)."""
    from tinycabac import native

    for level in (2**31 + 1, -(2**31) - 1, 2**62, np.iinfo(np.int64).min):
        with pytest.raises(tinycabac.FormatError, match="exceeds 2\\*\\*31"):
            native.dependent_indices(np.array([0, level], dtype=np.int64))
    assert native.dependent_indices(np.array([2**31, -(2**31)])).tolist() == [2**32, -(2**32)]


@pytest.mark.parametrize("search", ["rdoq", "trellis"])
def test_level_searches_refuse_what_they_cannot_search(search):
    """No step was a division by zero in C (SIGFPE killed the interpreter);
    a NaN weight an undefined float-to-int64 conversion (UBSan)."""
    from tinycabac import native

    search = getattr(native, search)
    with pytest.raises(ValueError, match="step"):
        search(np.ones(4), np.array([]), 1, 0.1)
    assert search(np.array([]), np.array([]), 1, 0.1).size == 0
    for weight in (np.nan, np.inf):
        with pytest.raises(ValueError, match="finite"):
            search(np.array([1.0, weight]), np.ones(1), 1, 0.1)


def test_unaligned_levels_reach_the_c_core_aligned():
    """np.ascontiguousarray kept an unaligned view as it was, which the C
    core read with misaligned int64 loads (UBSan)."""
    from tinycabac import native

    levels = np.frombuffer(bytes(1) + np.arange(-32, 32, dtype=np.int64).tobytes(), dtype=np.int64, offset=1)
    assert not levels.flags.aligned
    assert native._int64_levels(levels).flags.aligned
    assert native.estimate_bits(levels) == native.estimate_bits(levels.copy())


@pytest.mark.parametrize("quantizer", ["rdoq", "trellis"])
@pytest.mark.parametrize("shape, axis", [((0,), 0), ((0, 3), 0), ((3, 0), 1)])
def test_an_empty_tensor_with_a_channel_axis_is_searched(quantizer, shape, axis):
    """An empty channel axis has no step to start the search's activity
    from: IndexError from the searching quantizers, where nearest coded it."""
    empty = np.zeros(shape, dtype=np.float32)
    out = round_trip({"w": empty}, axis=axis, quantizer=quantizer)["w"]
    assert out.shape == shape


@pytest.mark.parametrize("quantizer", ["rdoq", "trellis"])
def test_the_search_starts_from_each_weights_own_step(monkeypatch, quantizer):
    """A depthwise kernel's channel axis is last, so its first weights span
    many channels.  Dividing them all by the first channel's step, 1000 times
    finer than the others', started the search at the largest activity."""
    rng = np.random.default_rng(5)
    scales = np.where(np.arange(32) == 0, 0.001, 1.0)
    weights = rng.normal(size=(3, 3, 32)) * scales
    steps = [Step.from_float(0.1 * s) for s in scales]
    divisor = 2 if quantizer == "trellis" else 1
    coder_start = native.initial_activity(np.rint(weights.ravel()[:32] / (divisor * 0.1 * scales)))
    started = []
    search = native.trellis if quantizer == "trellis" else native.rdoq
    monkeypatch.setattr(native, quantizer, lambda *args: started.append(args[-1]) or search(*args))
    quantize.quantize_with_steps(weights, steps, axis=2, quantizer=quantizer)
    assert started == [coder_start]
    assert coder_start < 40  # levels of about 10, where the old start was 255


def test_initial_activity_of_ratios_beyond_int64_saturates():
    """The searches start from rounded weight/step ratios, which a tiny step
    can take past int64: casting 1e30 to int64 is undefined
    (numpy: INT64_MIN with a RuntimeWarning, counted as 0 bits)."""
    import warnings

    from tinycabac import native

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.initial_activity(np.array([1e30, 3.0])) == 255  # 8 x mean(63, 2 bits), capped
        assert native.initial_activity(np.array([-1e30, 3.0])) == 255


def test_reading_every_directory_entry_takes_one_pass():
    """The host read entry i by walking the directory from its start
    (tc_stream_tensor), rechecking every step of the entries before it: n
    entries cost n*n/2 parses, and decoding 4000 tensors of 1000 channels
    took 15 s, 11 of them in that walk.  Reading every entry now costs about
    what opening the stream (one checked pass) does."""
    import time

    from tinycabac.container import MODE_QUANTIZED, TensorEntry, write_stream

    count, channels = 2048, 512
    steps = [Step(40000 + i, -20) for i in range(channels)]
    entries = [TensorEntry(f"t{i}", np.dtype(np.float32), (channels,), MODE_QUANTIZED, b"\0", 0, axis=0, steps=steps)
               for i in range(count)]  # fmt: skip
    data = write_stream(entries)  # the directory only: no payload is decoded

    def fastest(action) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            action()
            times.append(time.perf_counter() - started)
        return min(times)

    opening = fastest(lambda: native.Stream(data))
    reading = fastest(lambda: native.Stream(data).names())
    assert native.Stream(data).names() == [f"t{i}" for i in range(count)]
    assert native.Stream(data).info(count - 1).steps == [(s.mantissa, s.exponent) for s in steps]
    assert reading < 8 * opening + 0.02, (reading, opening)  # the old walk: about 50 times


@pytest.mark.parametrize(
    "dtype, options, limit",
    [
        (np.int8, {}, 13),  # was 16: levels, then a second int64 array for their magnitudes
        (np.float32, {"step": 0.02}, 28),  # was 40: float64 copies of weights, levels, reconstruction
        (np.float32, {"snr_db": 40.0}, 40),  # was 64: the search held rejected and first candidates
        (np.float32, {"bits_per_weight": 3.0}, 40),  # was 76
        (np.int8, {"base": True}, 13),  # an update; was 24: int64 copies of both tensors
    ],
)
def test_encoding_a_large_tensor_keeps_few_full_size_temporaries(dtype, options, limit):
    """Peak memory of encode() beyond its input, in bytes per weight, as
    tracemalloc counts numpy's buffers (the same on every machine).  A
    500 MB float32 tensor searched for an SNR needed 8 GB; each full-size
    float64 or int64 temporary is 8 bytes a weight."""
    import tracemalloc

    count = 1_000_000
    weights = np.random.default_rng(5).standard_normal((count // 1000, 1000)).astype(np.float32)
    if dtype == np.int8:
        weights = np.clip(np.rint(weights * 20), -128, 127).astype(np.int8)
    base, options = None, dict(options)
    if options.pop("base", False):
        base, weights = {"w": weights}, weights // 2
    tracemalloc.start()
    try:
        tinycabac.encode({"w": weights}, base=base, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / count < limit


def test_snr_of_a_scalar_tensor():
    """A 0-d tensor decodes as a 0-d array, and numpy's arithmetic on two of
    them gives a scalar, not an array to square in place (info --source and
    verify measure exactly that)."""
    scalar = np.array(0.5, dtype=np.float32)
    decoded = tinycabac.decode(tinycabac.encode({"s": scalar}, step=0.3))["s"]
    error = 0.5 - float(decoded)
    assert decoded.shape == () and snr_db(scalar, decoded) == pytest.approx(10 * np.log10(0.25 / error**2))
    assert snr_db(np.float64(2.0), np.array(1.0, np.float32)) == 10 * np.log10(4.0)


def test_directory_entries_read_in_order_are_parsed_once():
    """tc_stream_tensor resumes where its last call stopped (a device that
    reads thousands of tensors in order must not walk the directory again
    for each): with the first entry destroyed after opening, the later ones
    still read in order; a step back walks from the first entry, finds the
    damage and reports it, and so does every call after that failure."""
    from tinycabac.native import ffi, lib

    stream = tinycabac.encode({f"t{i}": np.arange(20, dtype=np.int8) * i for i in range(5)})
    data = ffi.new("uint8_t[]", stream)
    s, info = ffi.new("tc_stream *"), ffi.new("tc_tensor_info *")
    assert lib.tc_stream_open(s, data, len(stream)) == 0
    assert lib.tc_stream_tensor(s, 0, info) == 0
    data[20] = 0  # the first entry's name length: 0 is reserved
    names = []
    for index in (1, 2, 4):
        assert lib.tc_stream_tensor(s, index, info) == 0
        names.append(ffi.unpack(ffi.cast("char *", info.name), info.name_len))
    assert names == [b"t1", b"t2", b"t4"]
    for index in (3, 4, 1):
        assert lib.tc_stream_tensor(s, index, info) == native.TC_ERR_RESERVED
    data[20] = stream[20]
    assert lib.tc_stream_tensor(s, 3, info) == 0 and ffi.unpack(ffi.cast("char *", info.name), 2) == b"t3"


@pytest.mark.parametrize("prediction, history, peak", [
    (0, 0, 127), (1, 3, 0), (2, 127, 0), (2, 128, 127), (2, 16384, 200), (3, 300, 0), (0, 0, 2**31),
])
def test_the_encoder_prices_directory_fields_at_their_exact_size(prediction, history, peak):
    """What predict adds to a choice's payload for its directory fields is
    exactly what they add to the entry (FORMAT 3.2), so near-ties go to the
    smaller stream."""
    from tinycabac.container import MODE_LOSSLESS, TensorEntry
    from tinycabac.peaks import Peaks
    from tinycabac.predict import directory_field_bytes

    def entry_size(**fields) -> int:
        entry = TensorEntry(name="w", dtype=np.dtype(np.int8), shape=(64, 300), mode=MODE_LOSSLESS, payload=b"x",
                            crc32=0, **fields)
        return len(entry.directory_bytes(0))

    factors = dict(rank=8, factor_shift=4) if prediction == 3 else {}
    peaks = Peaks(peak, axis=0, channels=64, channel_size=300, mask=np.zeros(0, bool), preamble=[]) if peak else None
    added = entry_size(prediction=prediction, history=history, peak=peak, **factors) - entry_size()
    assert directory_field_bytes(prediction, history, peaks) == added


def test_peaks_that_move_the_offset_to_0_are_searched_once(monkeypatch):
    """Symmetric int8 weights whose median is not 0 are coded about 0 when
    their channels' +-127 make peaks there; the peaks found for that choice
    are the ones coded, not searched for a second time."""
    from tinycabac import codec, peaks, predict

    calls = []

    def counting_find_peaks(*args):
        calls.append(args)
        return peaks.find_peaks(*args)

    monkeypatch.setattr(codec, "find_peaks", counting_find_peaks)
    monkeypatch.setattr(predict, "find_peaks", counting_find_peaks)
    rng = np.random.default_rng(5)
    weights = np.clip(np.rint(rng.normal(3, 20, (64, 600))), -126, 126).astype(np.int8)
    weights[np.arange(64), rng.integers(0, 600, 64)] = 127 * rng.choice([-1, 1], 64)
    summary = tinycabac.info(stream := tinycabac.encode({"w": weights}))[0]
    assert (summary.offset, summary.peak) == (0, 127)
    assert len(calls) == 1
    assert np.array_equal(tinycabac.decode(stream)["w"], weights)
