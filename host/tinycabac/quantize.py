"""Quantization of float tensors (pipeline stage 1): choosing a step that
fixed-point code can reproduce, mapping weights to integer levels (nearest or
rate-distortion-optimised, or a trellis search for dependent quantization),
and the exact float32 reconstruction every decoder must produce
(docs/FORMAT.md section 6)."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import native
from .container import AXIS_NONE, MAX_STEP, MIN_STEP, QUANTIZER_DEPENDENT, QUANTIZER_UNIFORM, FormatError, Step

MAX_MAGNITUDE = 2**31
QUANTIZERS = ("nearest", "rdoq", "trellis")
# Level choice -> the reconstruction rule it codes for (FORMAT 6.2).
QUANTIZER_RULES = {"nearest": QUANTIZER_UNIFORM, "rdoq": QUANTIZER_UNIFORM, "trellis": QUANTIZER_DEPENDENT}


@dataclass
class Quantized:
    levels: np.ndarray  # int64, same shape as the tensor
    steps: list[Step]
    axis: int  # AXIS_NONE or the channel axis
    reconstruction: np.ndarray  # float32, what every decoder outputs
    quantizer: int = QUANTIZER_UNIFORM  # the reconstruction rule (FORMAT 6.2)


def channel_layout(shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    """(channels, inner): element i belongs to channel (i // inner) % channels."""
    if axis == AXIS_NONE:
        return 1, max(int(np.prod(shape, dtype=np.int64)), 1)
    return shape[axis], int(np.prod(shape[axis + 1 :], dtype=np.int64))


def step_array(steps: list[Step], shape: tuple[int, ...], axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-element broadcastable (mantissa, exponent) arrays."""
    mantissa = np.array([s.mantissa for s in steps], dtype=np.float64)
    exponent = np.array([s.exponent for s in steps], dtype=np.float64)
    if axis != AXIS_NONE:
        view = [1] * len(shape)
        view[axis] = len(steps)
        mantissa, exponent = mantissa.reshape(view), exponent.reshape(view)
    return mantissa, exponent


def reconstruct(
    levels: np.ndarray, steps: list[Step], axis: int, name: str = "", quantizer: int = QUANTIZER_UNIFORM
) -> np.ndarray:
    """float32(q * mantissa * 2**exponent), correctly rounded, q the level's
    reconstruction index: the level itself, or under dependent quantization
    2*level or 2*level - sign(level) as the 8-state rule says (FORMAT 6.2).

    q * mantissa < 2**48 is exact in float64, scaling by a power of two is
    exact, and the one rounding is the cast to float32 (round half to even,
    subnormals included): the decoders' integer arithmetic does the same."""
    mantissa, exponent = step_array(steps, levels.shape, axis)
    indices = native.dependent_indices(levels) if quantizer == QUANTIZER_DEPENDENT else levels
    # the same products as indices.astype(np.float64) * mantissa * 2**exponent,
    # without a float64 copy of the indices or a second temporary
    exact = np.multiply(indices, mantissa, dtype=np.float64)
    del indices
    exact *= np.exp2(exponent)
    with np.errstate(over="ignore"):
        out = exact.astype(np.float32)
    del exact
    if not np.all(np.isfinite(out)):
        raise FormatError(f"tensor {name!r}: reconstruction overflows float32; use a smaller step")
    return out


def quantize_with_steps(
    weights: np.ndarray, steps: list[Step], axis: int, quantizer: str = "nearest", lam: float | None = None, name: str = ""
) -> Quantized:
    mantissa, exponent = step_array(steps, weights.shape, axis)
    step_values = mantissa * np.exp2(exponent)
    if quantizer not in QUANTIZERS:
        raise ValueError(f"unknown quantizer {quantizer!r}; choose one of {', '.join(QUANTIZERS)}")
    # Full-size temporaries are dropped as soon as they are used: on a
    # tensor of 100 M weights each float64 array is 800 MB.
    nearest = np.divide(weights, step_values, dtype=np.float64)  # as float64(weights) / step_values
    np.rint(nearest, out=nearest)
    # Checked before any search: RDOQ and the trellis would rather pick a
    # zero than a level out of range, silently erasing the weight.  A
    # dependent level covers two steps (FORMAT 6.2).
    reach = MAX_MAGNITUDE * (2 if quantizer == "trellis" else 1)
    if nearest.size and native.peak_magnitude(nearest) > reach:
        raise FormatError(f"tensor {name!r}: step too small, a level exceeds 2**31")
    if quantizer == "nearest":
        levels = nearest.astype(np.int64)
        del nearest
    else:
        del nearest
        levels = _searched_levels(weights.astype(np.float64), steps, axis, quantizer, lam).reshape(weights.shape)
    rule = QUANTIZER_RULES[quantizer]
    return Quantized(levels, steps, axis, reconstruct(levels, steps, axis, name, rule), rule)


# lambda = LAMBDA_FACTOR * step^2 trades bits for squared error, with each
# channel's own step (tce_rdoq, tce_trellis); `lam` overrides the factor.  RDOQ's comes
# from the high-rate model, D'(R) = -ln(2) * 2 * D with D ~ step^2 / 12,
# scaled by 1.5.  The trellis's was tuned with bench/bench_quantized.py on
# hand_landmark_lite and iris_landmark (4 states, 64-level chunks), bits at equal SNR
# for k = 2 / 3 / 4 relative to tinycabac RDOQ: 0.05 -2.2 / -2.3 / -2.2%,
# 0.12 -2.5 / -2.4 / -2.3%, 0.25 -2.8 / -2.6 / -2.4%, 0.4 -2.7 / -2.5 / -2.4%,
# 0.7 -0.9 / -1.6 / -1.9%.  Rechecked with 8 states and 1024-level chunks:
# 0.25 -3.6 / -3.1 / -2.9%, 0.35 -3.5 / -3.1 / -2.9% (relative to RDOQ).
LAMBDA_FACTOR = {"rdoq": np.log(2) / 6.0 * 1.5, "trellis": 0.25}


def _searched_levels(w, steps, axis, quantizer, lam) -> np.ndarray:
    """Levels from the coder-aware searches in C (RDOQ or trellis)."""
    if w.size == 0:  # nothing to search; an empty channel axis also has no step to start from
        return np.zeros(0, dtype=np.int64)
    _, inner = channel_layout(w.shape, axis)
    flat_steps = np.array([s.value for s in steps])
    if lam is None:
        lam = LAMBDA_FACTOR[quantizer]
    divisor = 2.0 if quantizer == "trellis" else 1.0  # a dependent level covers two grid steps
    head = w.ravel()[: native.INITIAL_ACTIVITY_WINDOW]
    start = native.initial_activity(np.rint(head / (divisor * _head_steps(flat_steps, w.shape, axis))))
    search = native.trellis if quantizer == "trellis" else native.rdoq
    return search(w, flat_steps, inner, lam, start)


def _head_steps(flat_steps: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """The step of each weight the starting activity is taken from.  With the
    channel axis last (a depthwise kernel) those weights span many channels,
    and dividing them all by the first channel's step would start the search
    at the wrong scale."""
    channels, inner = channel_layout(shape, axis)
    count = min(native.INITIAL_ACTIVITY_WINDOW, int(np.prod(shape, dtype=np.int64)))
    return flat_steps[(np.arange(count) // inner) % channels]


def snr_db(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Weight SNR in dB: 10 log10(sum w^2 / sum (w - w_hat)^2)."""
    # the sums of (w - w_hat)**2 and w**2 in float64, one full-size array at a time
    squares = np.atleast_1d(np.subtract(original, reconstruction, dtype=np.float64))  # 0-d: a numpy scalar
    noise = float(np.sum(np.square(squares, out=squares)))
    del squares
    signal = float(np.sum(np.square(original, dtype=np.float64)))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * np.log10(signal / noise)


def channel_scales(weights: np.ndarray, axis: int) -> np.ndarray:
    """RMS of each channel (1.0 where a channel is all zero)."""
    w = weights.astype(np.float64)
    if axis == AXIS_NONE:
        rms = np.sqrt(np.mean(w**2)) if w.size else 1.0
        return np.array([rms if rms > 0 else 1.0])
    if w.size == 0:  # an empty tensor: any step will do
        return np.ones(w.shape[axis])
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    rms = np.sqrt(np.mean(moved**2, axis=1)) if moved.shape[1] else np.ones(moved.shape[0])
    rms[rms == 0] = 1.0
    return rms


def _peak_to_rms(weights: np.ndarray, axis: int, scales: np.ndarray) -> float:
    """Largest max|w_c| / rms_c over the channels: the finest useful step
    factor must keep every channel's levels in range (a near-zero channel has
    a tiny RMS but also tiny weights)."""
    w = np.abs(weights.astype(np.float64))
    peaks = np.array([w.max()]) if axis == AXIS_NONE else np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1).max(axis=1)
    return float(np.max(peaks / scales))


def steps_for_factor(scales: np.ndarray, factor: float) -> list[Step]:
    """Each channel's step factor * RMS, held to the steps the format can
    code: weights near float32's smallest or largest values would otherwise
    ask for a step it cannot hold."""
    return [Step.from_float(float(np.clip(s * factor, MIN_STEP, MAX_STEP))) for s in scales]


# float16 rounds 65520 and above to infinity: a float16 tensor's
# reconstruction must stay below it (FORMAT 3.5, a .tflite rebuild narrows it).
FLOAT16_OVERFLOW = 65520.0


def overflows(reconstruction: np.ndarray, dtype, base: np.ndarray | None = None) -> bool:
    """Whether the decoded tensor leaves `dtype`'s range: float32 overflow,
    or for float16 a magnitude of 65520 or more.  An update's decoded tensor
    is base + reconstruction in float32 arithmetic (FORMAT 6.3)."""
    if base is not None:
        with np.errstate(over="ignore"):
            reconstruction = base + reconstruction
    if not np.all(np.isfinite(reconstruction)):
        return True
    return dtype == np.float16 and reconstruction.size > 0 and np.max(np.abs(reconstruction)) >= FLOAT16_OVERFLOW


def _candidate(weights, scales, factor, axis, quantizer, lam, name, dtype, base) -> Quantized | None:
    """The quantization at step factor * RMS, or None where a level would
    decode past the tensor's dtype (weights near its largest value)."""
    try:
        q = quantize_with_steps(weights, steps_for_factor(scales, factor), axis, quantizer, lam, name)
    except FormatError:  # past float32
        return None
    return None if overflows(q.reconstruction, dtype, base) else q


# The step search works on x = log2(step / channel RMS) and stops once the
# boundary is bracketed this closely (0.07% of the step).
SEARCH_TOLERANCE = 1e-3
SEARCH_MAX_TRIES = 48
# Tries aimed by a secant before the search falls back to bisection (a gap
# far from linear in x, or not monotonic, would keep the aim off).
SEARCH_AIMED_TRIES = 6
# First aims: a Gaussian's uniform-quantization noise is step^2 / 12, so its
# SNR is 10.79 dB at step = RMS and falls 6.02 dB per doubling of the step;
# its entropy at step = RMS is 0.5 log2(2 pi e) = 2.05 bits, one less per
# doubling.
UNIFORM_NOISE_DB = 10.0 * np.log10(12.0)
DB_PER_OCTAVE = 20.0 * np.log10(2.0)
GAUSSIAN_ENTROPY_BITS = 0.5 * np.log2(2.0 * np.pi * np.e)


@dataclass
class SearchTry:
    x: float
    candidate: object  # what the try made; None: nothing usable (a level past the dtype)
    gap: float  # 0 at the boundary, >= 0 accepts; nan without a candidate
    fine_side: bool  # the boundary lies at a coarser step


class Bracket:
    """The search's state: the nearest tries to the boundary on its fine and
    on its coarse side, and the gaps a secant between them uses (None: an
    end of the range, not tried, or a try without a candidate), until the
    two are within `tolerance`."""

    def __init__(self, fine: float, coarse: float, tolerance: float = SEARCH_TOLERANCE):
        self.fine, self.coarse, self.tolerance = fine, coarse, tolerance
        self.fine_gap: float | None = None
        self.coarse_gap: float | None = None
        self.last_fine_side: bool | None = None
        self.gaps: dict[float, float] = {}  # every try's x and finite gap

    def width(self) -> float:
        return self.coarse - self.fine

    def add(self, t: SearchTry) -> None:
        gap = t.gap if np.isfinite(t.gap) else None
        if gap is not None:
            self.gaps[t.x] = gap
        # Illinois: an end kept twice in a row weighs half in the secant,
        # so that a curved gap cannot pin the aim to one side
        if t.fine_side == self.last_fine_side:
            if t.fine_side and self.coarse_gap is not None:
                self.coarse_gap /= 2
            elif not t.fine_side and self.fine_gap is not None:
                self.fine_gap /= 2
        if t.fine_side:
            self.fine, self.fine_gap = t.x, gap
        else:
            self.coarse, self.coarse_gap = t.x, gap
        self.last_fine_side = t.fine_side

    def aim(self, slope: float) -> float | None:
        """Where the gap crosses 0, by a secant through the bracket's ends;
        with one end known, through it and the try nearest to it (`slope`
        per doubling of the step for a lone try)."""
        ends = [(x, g) for x, g in ((self.fine, self.fine_gap), (self.coarse, self.coarse_gap)) if g is not None]
        if len(ends) == 1:
            x0 = ends[0][0]
            others = [(x, g) for x, g in self.gaps.items() if x != x0]
            ends += [min(others, key=lambda point: abs(point[0] - x0))] if others else []
        if len(ends) == 2 and ends[0][1] != ends[1][1]:
            slope = (ends[1][1] - ends[0][1]) / (ends[1][0] - ends[0][0])
        return ends[0][0] - ends[0][1] / slope if ends else None

    def next_x(self, aimed: float | None) -> float:
        """A try near `aimed`, nudged past it towards the end that did not
        move last, so that an accurate aim closes the bracket from both
        sides in two tries; without an aim inside the bracket, its middle."""
        if aimed is None or not self.fine < aimed < self.coarse:
            return (self.fine + self.coarse) / 2
        nudge = 0.45 * self.tolerance * (1 if self.last_fine_side else -1)
        margin = min(0.05 * self.tolerance, self.width() / 4)
        return float(np.clip(aimed + nudge, self.fine + margin, self.coarse - margin))


def _search_step(
    weights, axis, quantizer, lam, name, gap, accept_fine: bool, goal: str, dtype, base, guess: float, slope: float,
    on_try: Callable[[int], None] | None = None,
) -> Quantized:
    """The accepted step nearest to the boundary where `gap` changes sign,
    within SEARCH_TOLERANCE of log2(step / channel RMS).  `gap(q) >= 0`
    accepts a candidate; `accept_fine` says which side accepts: fine steps
    (an SNR floor) or coarse steps (a size ceiling).  A step whose levels
    decode past `dtype` (for an update: added to `base`) counts as too
    coarse.

    Every try costs a whole quantization (a trellis search on large
    tensors), so tries are aimed: first at `guess`, then by a secant (the
    gap is nearly linear in x, with about `slope` per doubling of the step),
    falling back to bisection after SEARCH_AIMED_TRIES.  On tensors of a
    real model's size that takes 4 to 9 tries where bisection takes 16.
    Only the latest accepted candidate is kept: on large tensors each
    holds hundreds of megabytes.  `on_try(n)`, if given, hears of the nth
    try as it starts (a progress display)."""
    scales = channel_scales(weights, axis)
    if not np.any(weights):
        return quantize_with_steps(weights, steps_for_factor(scales, 1.0), axis, quantizer, lam, name)

    made = itertools.count(1)

    def attempt(x: float) -> SearchTry:
        if on_try is not None:
            on_try(next(made))
        q = _candidate(weights, scales, 2.0**x, axis, quantizer, lam, name, dtype, base)
        g = np.nan if q is None else float(gap(q))
        return SearchTry(x, q, g, q is not None and (g >= 0) == accept_fine)

    # from the finest step whose levels still fit in 2**29 to one that rounds
    # nearly everything to zero, within the steps the format has: past
    # `lowest` every channel's step is the finest, past `highest` the coarsest
    peak = _peak_to_rms(weights, axis, scales)
    lowest, highest = np.log2(MIN_STEP / np.max(scales)), np.log2(MAX_STEP / np.min(scales))
    fine, coarse = (float(end) for end in np.clip([np.log2(peak) - 29.0, np.log2(peak) + 2.0], lowest, highest))
    first = attempt(fine if accept_fine else coarse)
    if first.candidate is None or not first.gap >= 0:
        if first.candidate is not None and accept_fine and fine == lowest:
            return first.candidate  # weights too small for the target: the best SNR the format allows
        raise FormatError(f"tensor {name!r}: cannot reach {goal}")
    tries = [first]
    del first  # search_boundary empties the list: no candidate but the best stays held
    return search_boundary(attempt, Bracket(fine, coarse), tries, guess, slope)


def search_boundary(attempt, bracket: Bracket, tries: list[SearchTry], guess: float | None, slope: float):
    """The candidate of the accepted try nearest to the boundary, once
    `bracket` holds it within its tolerance.  `attempt(x)` makes a try:
    first at `guess` (None: where a secant through `tries` aims), then
    where a secant aims, then, after SEARCH_AIMED_TRIES, by bisection.
    `tries` are those made already, one at least accepted; the list is
    emptied once read, and only the best candidate so far is held (each may
    be hundreds of megabytes).  The gap changes by about `slope` per unit
    of x."""
    # An accepted try moves the bracket's accepting end to itself, so the
    # latest one is the accepted try nearest to the boundary.
    for made in tries:
        bracket.add(made)
    best = next((t.candidate for t in reversed(tries) if t.gap >= 0), None)
    if best is None:
        raise ValueError("search_boundary needs a try that meets the target to start from")
    made_before = len(tries)
    del made  # the loop's last try: its candidate, if rejected, is not held during the search
    tries.clear()
    aimed = bracket.aim(slope) if guess is None else guess
    for count in range(made_before + 1, SEARCH_MAX_TRIES + 1):
        if bracket.width() < bracket.tolerance:
            break
        latest = attempt(bracket.next_x(aimed))
        bracket.add(latest)
        best = latest.candidate if latest.gap >= 0 else best
        if latest.gap == 0:
            break  # on the boundary itself: a secant would aim here again, and bisection take the rest
        del latest  # a rejected candidate: not held during the next try
        aimed = bracket.aim(slope) if count <= SEARCH_AIMED_TRIES else None
    return best


def quantize_for_snr(
    weights: np.ndarray, target_db: float, axis: int, quantizer: str = "nearest", name: str = "", lam: float | None = None,
    dtype=None, base: np.ndarray | None = None, on_try: Callable[[int], None] | None = None,
) -> Quantized:
    """Largest step (per channel: proportional to the channel's RMS) whose
    reconstruction reaches `target_db`.  For an update, `weights` is the
    difference from `base` (float32) and `dtype` the updated tensor's: the
    search skips steps whose updated tensor would leave its range.
    `on_try(n)` hears of each try of the search as it starts."""
    def decibels_to_spare(q: Quantized) -> float:
        measured = snr_db(weights, q.reconstruction)
        return 0.0 if measured == target_db else measured - target_db  # inf - inf would be nan

    return _search_step(
        weights, axis, quantizer, lam, name, decibels_to_spare, True,
        f"{target_db} dB SNR", weights.dtype if dtype is None else dtype, base,
        guess=(UNIFORM_NOISE_DB - target_db) / DB_PER_OCTAVE, slope=-DB_PER_OCTAVE, on_try=on_try,
    )


def quantize_for_rate(
    weights: np.ndarray, bits_per_weight: float, axis: int, quantizer: str = "nearest", name: str = "",
    lam: float | None = None, dtype=None, base: np.ndarray | None = None, on_try: Callable[[int], None] | None = None,
) -> Quantized:
    """Smallest step whose levels the coder's own model estimates at no more
    than `bits_per_weight` (payload only); `dtype`, `base` and `on_try` as
    for quantize_for_snr."""
    count = max(weights.size, 1)

    def bits_to_spare(q: Quantized) -> float:
        return bits_per_weight - native.estimate_bits(q.levels, native.initial_activity(q.levels)) / count

    return _search_step(
        weights, axis, quantizer, lam, name, bits_to_spare, False, f"{bits_per_weight} bits per weight",
        weights.dtype if dtype is None else dtype, base,
        guess=GAUSSIAN_ENTROPY_BITS - bits_per_weight, slope=1.0, on_try=on_try,
    )
