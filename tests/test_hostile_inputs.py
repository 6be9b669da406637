"""Hostile inputs to the encoder: tinycabac.encode() with every option at
the extremes it accepts, and the cffi wrappers of the encoder's C core
(native.py) with the levels, weights, steps, lengths and memory layouts
each allows.  Every call must return a result that round-trips, or raise a
clean FormatError / ValueError / TypeError with a message.

`make sanitize` runs this module (with more examples) against an
AddressSanitizer + UndefinedBehaviorSanitizer build of the C core, where an
out-of-bounds access or undefined behaviour aborts the run; see
docs/FUZZING.md."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinycabac
from tinycabac import native
from tinycabac.container import MAX_STEP, MIN_STEP, FormatError

EXAMPLES = int(os.environ.get("TINYCABAC_HOSTILE_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CLEAN_ERRORS = (ValueError, TypeError)  # FormatError is a ValueError
MAX_LEVEL = 2**31
INT64 = np.iinfo(np.int64)
EXTREME_LEVELS = [2**31, -(2**31), 2**31 + 1, -(2**31) - 1, 2**32, 2**62, -(2**62), 2**62 + 1, INT64.min, INT64.max]


def _unaligned(array: np.ndarray) -> np.ndarray:
    """The same values in a buffer one byte off the dtype's alignment."""
    raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
    view = raw[1:].view(array.dtype).reshape(array.shape) if array.size else array.copy()
    view[...] = array
    return view


def _strided(array: np.ndarray) -> np.ndarray:
    """The same values every other element of a larger buffer."""
    wide = np.zeros(array.shape[:-1] + (2 * array.shape[-1],), dtype=array.dtype) if array.ndim else array.copy()
    if array.ndim:
        wide[..., ::2] = array
        return wide[..., ::2]
    return wide


def _read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.setflags(write=False)
    return array


LAYOUTS = {
    "c": lambda a: np.array(a, order="C"),
    "fortran": lambda a: np.array(a, order="F"),
    "strided": _strided,
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "read-only": _read_only,
    "unaligned": _unaligned,
}
layouts = st.sampled_from(sorted(LAYOUTS))
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)


def _laid_out(array: np.ndarray, layout: str) -> np.ndarray:
    out = LAYOUTS[layout](array)
    assert out.shape == array.shape and np.array_equal(out, array, equal_nan=True)
    return out


def _clean(call):
    """call()'s result, or None when it raised a clean error with a message."""
    try:
        return call()
    except CLEAN_ERRORS as error:
        assert str(error), f"{type(error).__name__} without a message"
        return None


def float_arrays(dtype):
    """Denormals, the dtype's extremes, zeros and long runs of one value."""
    info = np.finfo(dtype)
    width = 16 if dtype == np.float16 else 32
    edges = st.sampled_from([0.0, -0.0, float(info.tiny), float(info.smallest_subnormal), float(info.max),
                             -float(info.max), 1.0, -1.0])
    elements = st.one_of(edges, st.floats(allow_nan=False, allow_infinity=False, width=width))
    return hnp.arrays(dtype, shapes, elements=elements, fill=edges)


step_options = st.one_of(
    st.just({}),
    st.sampled_from([MIN_STEP, MIN_STEP * 1.5, 2.0**-100, 1e-3, 1.0, 3.0e38, MAX_STEP * 0.999, MAX_STEP]).map(
        lambda step: {"step": step}),
    st.integers(-600, 600).map(lambda qp: {"qp": qp}),
    st.floats(-20, 200).map(lambda snr: {"snr_db": snr}),
    st.floats(0.01, 40).map(lambda bpw: {"bits_per_weight": bpw}),
)
search_options = st.fixed_dictionaries({
    "quantizer": st.sampled_from(["nearest", "rdoq", "trellis"]),
    "lam": st.sampled_from([None, 0.0, 0.5, 1e30, 1e305, 1.7e308]),
    "prediction": st.sampled_from(["auto", "none", "difference", "scale"]),
})


def _axis(data, array: np.ndarray):
    return data.draw(st.one_of(st.none(), st.integers(0, array.ndim - 1)) if array.ndim else st.none(), "axis")


def _check_decodes_as_reported(array: np.ndarray, decoded: np.ndarray, reported_snr: float) -> None:
    assert decoded.shape == array.shape and decoded.dtype == np.float32
    assert np.all(np.isfinite(decoded))
    measured = tinycabac.quantize.snr_db(array, decoded)
    assert measured == reported_snr or math.isclose(measured, reported_snr, rel_tol=1e-9, abs_tol=1e-9)


@SETTINGS
@given(st.sampled_from([np.float32, np.float16]).flatmap(float_arrays), layouts, step_options, search_options, st.data())
def test_float_tensors_round_trip_or_fail_cleanly(array, layout, step, search, data):
    report = []
    options = dict(step, axis=_axis(data, array), report=report, **search)
    stream = _clean(lambda: tinycabac.encode({"w": _laid_out(array, layout)}, **options))
    if stream is not None:
        _check_decodes_as_reported(array, tinycabac.decode(stream)["w"], report[0].snr_db)


@SETTINGS
@given(st.sampled_from([np.float32, np.float16]).flatmap(float_arrays), st.data())
def test_float_updates_apply_or_fail_cleanly(array, data):
    base_array = data.draw(hnp.arrays(array.dtype, array.shape, elements=st.floats(-4, 4, width=16)), "base")
    options = data.draw(search_options, "search")
    base = {"w": _laid_out(base_array, data.draw(layouts, "layout"))}
    report = []
    stream = _clean(lambda: tinycabac.encode({"w": array}, base=base, axis=_axis(data, array), report=report, **options))
    if stream is not None:
        _check_decodes_as_reported(array, tinycabac.apply(base, stream)["w"], report[0].snr_db)


@SETTINGS
@given(st.sampled_from([np.int8, np.uint8, np.int16, np.int32]).flatmap(lambda dt: hnp.arrays(dt, shapes)),
       layouts, st.booleans(), st.sampled_from(["auto", "none", "difference", "scale"]), st.integers(0, 70000),
       st.data())
def test_integer_tensors_and_updates_round_trip_or_fail_cleanly(array, layout, as_update, kind, history, data):
    history = None if kind == "auto" else 0 if kind == "none" else history
    base = {"t": data.draw(hnp.arrays(array.dtype, array.shape), "base")} if as_update else None
    stream = _clean(lambda: tinycabac.encode({"t": _laid_out(array, layout)}, base=base, prediction=kind,
                                             history=history))
    if stream is not None:
        out = (tinycabac.apply(base, stream) if as_update else tinycabac.decode(stream))["t"]
        assert out.dtype == array.dtype and np.array_equal(out, array)
    else:  # only an int32 difference can leave the coder's range of 2**31, and H is a u16
        assert (history or 0) > 65535 or (array.dtype == np.int32 and (as_update or kind == "difference"))


@settings(max_examples=max(EXAMPLES // 5, 3), deadline=None, suppress_health_check=list(HealthCheck))
@given(float_arrays(np.float32), st.integers(1, 3000), st.sampled_from(["nearest", "rdoq", "trellis"]))
def test_size_target_is_met_or_refused_cleanly(array, max_size, quantizer):
    stream = _clean(lambda: tinycabac.encode({"w": array}, max_size=max_size, quantizer=quantizer))
    if stream is not None:
        assert len(stream) <= max_size
        assert tinycabac.decode(stream)["w"].shape == array.shape


# --- the cffi wrappers of the C core ---------------------------------------

levels_arrays = hnp.arrays(
    np.int64, st.integers(0, 40),
    elements=st.one_of(st.integers(-(2**31), 2**31), st.sampled_from(EXTREME_LEVELS), st.integers(-3, 3)),
)


def _in_range(levels: np.ndarray) -> bool:
    return all(-MAX_LEVEL <= int(level) <= MAX_LEVEL for level in levels)


def _magnitude_class(value: int) -> int:
    """FORMAT 5.4's class, 33 for anything beyond 32 bits (the cost proxies' cap)."""
    return 33 if abs(value) > 0xFFFFFFFF else abs(value).bit_length()


@SETTINGS
@given(levels_arrays, layouts, st.integers(0, 255))
def test_level_coding_takes_any_int64_or_names_the_bad_level(levels, layout, activity):
    hostile = _laid_out(levels, layout)
    estimate = native.estimate_bits(hostile, activity)
    if _in_range(levels):
        assert len(native.encode_levels(hostile, "t", activity)) <= native.lib.tce_max_payload_size(levels.size)
        assert math.isfinite(estimate)
    else:
        with pytest.raises(FormatError, match="exceeds 2\\*\\*31"):
            native.encode_levels(hostile, "t", activity)
        assert estimate == math.inf


@SETTINGS
@given(levels_arrays, layouts, st.integers(0, 50))
def test_history_cost_matches_its_definition_for_any_int64(levels, layout, distance):
    values = [int(level) for level in levels]
    expected = sum(
        _magnitude_class(value - (min(max(values[i - distance], -128), 127) if distance and i >= distance else 0))
        for i, value in enumerate(values)
    )
    assert native.history_cost(_laid_out(levels, layout), distance) == expected


@SETTINGS
@given(levels_arrays, layouts, st.integers(0, 50), st.integers(0, 255))
def test_column_activities_match_their_definition_for_any_int64(levels, layout, history, activity):
    expected = []
    for i in range(levels.size):
        if history == 0 or i < history:
            expected.append(activity)
        else:
            column = expected[i - history]
            expected.append((column - (column >> 3) + _magnitude_class(int(levels[i - history]))) & 0xFF)
    assert native.column_activities(_laid_out(levels, layout), history, activity).tolist() == expected


@SETTINGS
@given(levels_arrays, layouts)
def test_dependent_indices_follow_the_eight_state_rule_or_refuse(levels, layout):
    next_state = [(0, 1), (3, 2), (5, 4), (6, 7), (1, 0), (2, 3), (4, 5), (7, 6)]  # FORMAT 6.2
    if not _in_range(levels):
        with pytest.raises(FormatError, match="2\\*\\*31"):
            native.dependent_indices(_laid_out(levels, layout))
        return
    state, expected = 0, []
    for level in (int(v) for v in levels):
        expected.append(2 * level - (int(np.sign(level)) if state & 1 else 0))
        state = next_state[state][level & 1]
    assert native.dependent_indices(_laid_out(levels, layout)).tolist() == expected


weights_arrays = hnp.arrays(np.float64, st.integers(0, 60), elements=st.one_of(
    st.floats(-1e6, 1e6), st.sampled_from([0.0, 5e-324, -5e-324, 1e-300, 1e200, -1e200, 1.7e308]),
))


@SETTINGS
@given(weights_arrays, layouts, st.sampled_from(["rdoq", "trellis"]), st.integers(1, 70000), st.integers(0, 70000),
       st.sampled_from([MIN_STEP, 1e-3, 1.0, 7.0, MAX_STEP]), st.sampled_from([0.0, 0.17, 1e30, 1e305, 1.7e308]))
def test_level_searches_give_in_range_levels_for_any_weights(weights, layout, search, channels, inner, step, lam):
    steps = np.full(channels, step)
    levels = getattr(native, search)(_laid_out(weights, layout), steps, inner, lam, 0)
    assert levels.shape == (weights.size,) and levels.dtype == np.int64
    assert _in_range(levels)
    if lam >= 1e305 and np.all(np.abs(weights) <= 1e6):  # any bit outweighs any error a level can save
        assert not levels.any()
