"""Prediction (FORMAT 5.7, 5.8), the encoder's side.

Some weight tensors repeat themselves at a fixed distance H, one "row"
(times a small lag) apart, and every decoder keeps a ring of H bytes for
them: the last H levels clamped to int8, or the activities of the H
columns (the elements H apart).

- difference: the x, y and z output rows of a landmark regression layer, the
  taps of a depthwise kernel one kernel row apart.  Each level is coded as
  its difference from the level H elements back.
- scale: the input channels of a 1x1 convolution (the columns of its
  rows, H apart) differ in scale, pruned ones being all zero, in every row
  alike, though the signs do not repeat.  The level is coded as it is, with
  the Rice parameter steered by the running activity of its column.

Factor prediction (5.8) is of another kind: it needs no earlier row.  The
rows of some tensors (the landmark regression heads above all) lie near a
subspace of small dimension, so the encoder sends low-rank int8 factors of
the levels, A (rank values per row) and B (rank values per column), in the
payload and codes each level's residual from the integer prediction
A[row] . B[column] >> shift.  A decoder keeps B and the current row's A:
(H + 1) * rank bytes.

This module picks the kind and H for a tensor, codes it each promising way
and keeps the smallest payload.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import native
from .peaks import Peaks, find_peaks
from .container import (
    MAX_FACTOR_RESIDUAL,
    MAX_FACTOR_SHIFT,
    MAX_HISTORY,
    MAX_RANK,
    PREDICT_DIFFERENCE,
    PREDICT_FACTORS,
    PREDICT_NONE,
    PREDICT_SCALE,
    FormatError,
    leb128,
)

# The working memory a decoder needs for a predicted tensor: H bytes for
# difference and scale prediction, (H + 1) * rank for factors.  16 KiB is
# what factor prediction needs to pay on landmark heads (a 288-column head
# at rank 48), and what the boards the firmware targets spare beside their
# other buffers; a micro:bit-class board (16 KB of RAM in all) wants 4096.
DEFAULT_MAX_HISTORY = 16384
# The most working memory a tensor can ask for: (H + 1) * rank at their limits.
MAX_WORK_SIZE = (MAX_HISTORY + 1) * MAX_RANK
PREDICTION_KINDS = {"none": PREDICT_NONE, "difference": PREDICT_DIFFERENCE, "scale": PREDICT_SCALE,
                    "factors": PREDICT_FACTORS}
# Row lags tried for difference prediction: 3 catches x/y/z landmark rows.
DIFFERENCE_LAGS = (1, 2, 3, 4, 6)
# Scale prediction pays at lags 2 and 3 too (x/y/z rows that share their
# pruned inputs), though less often.
SCALE_LAGS = (1, 2, 3)
# A candidate must promise this much before the encoder spends a real
# encode to confirm it: difference by a cheap proxy, scale by the model's
# own estimate, which is closer to the truth.
MIN_PROMISED_GAIN = 0.01
MIN_PROMISED_SCALE_GAIN = 0.003
# A scale proposal that promises this much is not checked against coding
# without prediction, which saves an encode of the tensor.
DECISIVE_GAIN = 0.01
# Scale candidates are ranked by the model's own estimate on a prefix of
# the tensor: enough rows to see the pattern, bounded encode time.
SCALE_SAMPLE_ROWS = 8
SCALE_SAMPLE_MIN = 8192
SCALE_SAMPLE_MAX = 32768
PREDICTION_CLAMP = (-128, 127)
FACTOR_FIELD_BYTES = 2  # rank and shift (FORMAT 3.2)
# Factor prediction: the ranks tried, and the smallest side (rows and
# columns) a tensor needs for it; a rank must be at most a quarter of the
# smaller side, or the factors cost more than they save.
FACTOR_RANKS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
MIN_FACTOR_SIDE = 8
# Proxy for the bits of a coded value: its magnitude class plus this much
# (sign and prefix), used to rank the ranks before one real encode.
PROXY_BITS_PER_VALUE = 1.5
# The factor search works on blocks of rows of about this many elements,
# and on the Gram matrix of the smaller side only if it has at most this
# share of the tensor's elements.
BLOCK_ELEMENTS = 1 << 16
MAX_GRAM_SHARE = 0.5
# The ranks the singular values promise most are rated by the proxy, this
# many of them; a factor value is priced at this many bits there.
PROXY_CANDIDATES = 3
FACTOR_VALUE_BITS = 6.0


@dataclass(frozen=True)
class Prediction:
    """What the caller allows for one tensor: a kind ("auto" tries all) and
    a distance (None: the encoder chooses one up to max_history)."""

    kind: str = "auto"
    history: int | None = None
    max_history: int = DEFAULT_MAX_HISTORY


@dataclass(frozen=True)
class CodedLevels:
    prediction: int  # PREDICT_*
    history: int
    initial_activity: int
    payload: bytes
    rank: int = 0  # factor prediction only
    factor_shift: int = 0
    peaks: Peaks | None = None  # FORMAT 5.9, with prediction none or scale

    @property
    def work_size(self) -> int:
        """Bytes of decoder working memory (FORMAT 3.2)."""
        if self.prediction == PREDICT_FACTORS:
            return (self.history + 1) * self.rank
        return self.history + (self.peaks.work_size if self.peaks else 0)


@dataclass(frozen=True)
class Factors:
    """Low-rank int8 factors of a tensor's rows of `history` levels (FORMAT 5.8)."""

    history: int
    rows: np.ndarray  # int8, one row of rank values per row of levels (A)
    columns: np.ndarray  # int8, history x rank (B)
    shift: int

    @property
    def rank(self) -> int:
        return self.columns.shape[1]

    def prediction(self, first_row: int = 0, end_row: int | None = None) -> np.ndarray:
        """The predictions of rows first_row..end_row, flat, as every decoder
        computes them: int64 sums (exact) and an arithmetic shift, a floor."""
        sums = self.rows[first_row:end_row].astype(np.int64) @ self.columns.astype(np.int64).T
        if self.shift:
            sums = (sums + (1 << (self.shift - 1))) >> self.shift
        return sums.ravel()


def ring_values(levels: np.ndarray, history: int) -> np.ndarray:
    """The ring entry each element sees under difference prediction: the
    level `history` elements back, clamped to int8, and 0 for the first row."""
    ring = np.zeros(levels.size, dtype=np.int8)
    if history:
        ring[history:] = np.clip(levels[:-history], *PREDICTION_CLAMP)
    return ring


def residuals(levels: np.ndarray, history: int) -> np.ndarray:
    """Difference prediction's coded values."""
    levels = np.asarray(levels, dtype=np.int64).ravel()
    return levels - ring_values(levels, history) if history else levels.copy()


def row_lengths(shape: tuple[int, ...], lags, max_history: int) -> list[int]:
    """Row lengths of every trailing sub-shape times `lags`, usable as H."""
    count = math.prod(shape)
    found = set()
    for first in range(1, len(shape)):
        for lag in lags:
            distance = math.prod(shape[first:]) * lag
            if 0 < distance <= min(max_history, MAX_HISTORY) and distance < count:
                found.add(distance)
    return sorted(found)


def element_lags(shape: tuple[int, ...], max_history: int) -> list[int]:
    """For a vector, whose rows are its elements: the lags themselves.  A
    sparse tensor's index vectors rise along each row (FORMAT 3.5), and
    their differences one element back are small."""
    if len(shape) != 1:
        return []
    return [lag for lag in DIFFERENCE_LAGS if lag <= min(max_history, MAX_HISTORY) and lag < shape[0]]


def _propose_difference(levels: np.ndarray, shape, max_history: int) -> int:
    """The distance whose residuals have the smallest magnitude classes
    (a cheap proxy computed in C), if it promises a gain."""
    if native.peak_magnitude(levels) > 2**31 - 128:
        return 0  # a residual could leave the coder's range
    candidates = row_lengths(shape, DIFFERENCE_LAGS, max_history) or element_lags(shape, max_history)
    if not candidates:
        return 0
    costs = {h: native.history_cost(levels, h) for h in candidates}
    best = min(candidates, key=costs.get)
    return best if costs[best] < native.history_cost(levels, 0) * (1 - MIN_PROMISED_GAIN) else 0


def _propose_scale(levels: np.ndarray, shape, max_history: int) -> tuple[int, float]:
    """The row length (times a lag) whose columns steer the model best on a
    prefix, by the model's own rate estimate, if it promises a gain; and
    the fraction of the bits it promises to save."""
    candidates = row_lengths(shape, SCALE_LAGS, max_history)
    if not candidates:
        return 0, 0.0
    sample = levels[: max(SCALE_SAMPLE_MIN, min(SCALE_SAMPLE_MAX, SCALE_SAMPLE_ROWS * candidates[-1]))]
    activity = native.initial_activity(sample)
    costs = {h: native.estimate_bits(sample, activity, native.column_activities(sample, h, activity))
             for h in candidates}
    best = min(candidates, key=costs.get)
    gain = 1 - costs[best] / max(native.estimate_bits(sample, activity), 1.0)
    return (best, gain) if gain > MIN_PROMISED_SCALE_GAIN else (0, 0.0)


def _row_blocks(levels: np.ndarray, history: int):
    """(first row, float64 rows) in blocks of about BLOCK_ELEMENTS, the last
    row padded with zeros: the factor search never holds a full-size copy."""
    rows = -(-levels.size // history)
    step = max(1, BLOCK_ELEMENTS // history)
    for first in range(0, rows, step):
        block = levels[first * history: (first + step) * history].astype(np.float64)
        if block.size % history:
            block = np.concatenate([block, np.zeros(history - block.size % history)])
        yield first, block.reshape(-1, history)


def _column_blocks(levels: np.ndarray, history: int):
    """(first column, float64 columns of every row) in blocks of about
    BLOCK_ELEMENTS, the last row padded with zeros: for tensors with fewer
    rows than columns, again without a full-size copy."""
    full = levels.size // history
    rows = levels[: full * history].reshape(full, history)  # a view
    tail = np.zeros(history if levels.size % history else 0, dtype=levels.dtype)
    tail[: levels.size % history] = levels[full * history:]
    step = max(1, BLOCK_ELEMENTS // (full + 1))
    for first in range(0, history, step):
        block = rows[:, first: first + step]
        if tail.size:
            block = np.concatenate([block, tail[None, first: first + step]])
        yield first, block.astype(np.float64)


def _principal_axes(levels: np.ndarray, history: int, rank: int):
    """The first `rank` terms of the rows' SVD, as (U S, V, the squared
    singular values of every term, largest first), from the Gram
    matrix of the smaller side, or None when that matrix would have more
    elements than half the tensor and than a block (a large square layer,
    where factors rarely pay).
    Each axis's sign is fixed (B's largest entry positive), so that the
    stream does not depend on the linear-algebra library's choice."""
    rows = -(-levels.size // history)
    side = min(rows, history)
    if side * side > max(MAX_GRAM_SHARE * levels.size, BLOCK_ELEMENTS):
        return None
    gram = np.zeros((side, side))
    if history <= rows:  # the columns' Gram matrix
        for _, block in _row_blocks(levels, history):
            gram += block.T @ block
    else:  # the rows'
        for _, block in _column_blocks(levels, history):
            gram += block @ block.T
    values, vectors = np.linalg.eigh(gram)
    energies = np.maximum(values[::-1], 0)
    order = np.argsort(values)[::-1][:rank]
    singular = np.sqrt(np.maximum(values[order], 0))
    vectors = vectors[:, order]
    if history <= rows:  # vectors are V
        v = vectors
        us = np.concatenate([block @ v for _, block in _row_blocks(levels, history)])
    else:  # vectors are U
        us = vectors * singular
        v = np.concatenate([block.T @ vectors for _, block in _column_blocks(levels, history)])
        v /= np.where(singular > 0, singular, 1)
    signs = np.sign(v[np.abs(v).argmax(axis=0), np.arange(v.shape[1])])
    signs[signs == 0] = 1
    return us * signs, v * signs, energies


def _shortlist(energies: np.ndarray, ranks: list[int], rows: int, history: int, count: int, forced: bool) -> list[int]:
    """The `count` ranks that promise most by the singular values alone:
    levels as Gaussian, each halving of the error energy saves half a bit
    per level, and each factor value costs FACTOR_VALUE_BITS.  The proxy
    then rates only these, which keeps the search cheap on the many tensors
    where factors do not pay."""
    total = float(energies.sum())
    if total <= 0:
        return ranks[:1] if forced else []
    captured = np.cumsum(energies)
    count_levels = rows * history
    gains = {k: 0.5 * count_levels * np.log2(total / max(total - float(captured[k - 1]), total * 1e-9))
             - FACTOR_VALUE_BITS * (rows + history) * k for k in ranks}
    promising = sorted((k for k in ranks if forced or gains[k] > 0), key=gains.get, reverse=True)
    return sorted(promising[:count])


def quantize_factors(us: np.ndarray, v: np.ndarray, rank: int, history: int) -> Factors:
    """The first `rank` terms as int8 factors whose products share one
    scale, 2^-shift: each column of B takes the whole int8 range, and A's
    columns one common step, the finest that keeps them in int8.  A common
    step spends A's precision evenly on every rank's share of the
    prediction, which needs no per-rank multiplier in the decoder."""
    b = v[:, :rank]
    b_scales = np.abs(b).max(axis=0) / 127
    b_scales[b_scales == 0] = 1
    a = us[:, :rank] * b_scales
    peak = float(np.abs(a).max())
    shift = int(np.clip(np.floor(np.log2(127 / peak)), 0, MAX_FACTOR_SHIFT)) if peak > 0 else 0
    rows = np.clip(np.rint(a * 2.0**shift), -127, 127).astype(np.int8)
    return Factors(history, rows, np.rint(b / b_scales).astype(np.int8), shift)


def _factor_proxy_bits(levels: np.ndarray, factors: Factors) -> float:
    """A cheap size estimate of a factored coding: every coded value
    (residuals and factors) at its magnitude class (history_cost at
    distance 0 sums them in C) plus a constant, a block of rows at a time."""
    bits = native.history_cost(factors.rows, 0) + native.history_cost(factors.columns, 0)
    step = max(1, BLOCK_ELEMENTS // factors.history)
    for first in range(0, factors.rows.shape[0], step):
        block = levels[first * factors.history: (first + step) * factors.history]
        residuals = block - factors.prediction(first, first + step)[: block.size]
        if residuals.size and np.abs(residuals).max() > MAX_FACTOR_RESIDUAL:
            return float("inf")
        bits += native.history_cost(residuals, 0)
    values = levels.size + factors.rows.size + factors.columns.size
    return bits + PROXY_BITS_PER_VALUE * values


def _factor_history(levels: np.ndarray, shape, allowed: Prediction) -> int:
    """Row length for factor prediction: the forced distance, else the
    elements per output channel (everything after the first axis)."""
    if allowed.history is not None:
        return allowed.history
    if len(shape) < 2 or shape[0] < MIN_FACTOR_SIDE:
        return 0
    history = levels.size // shape[0]
    return history if MIN_FACTOR_SIDE <= history <= MAX_HISTORY else 0


def propose_factors(levels: np.ndarray, shape, allowed: Prediction) -> Factors | None:
    """The rank whose factored coding the proxy rates smallest within the
    working memory allowed, if it beats the proxy for plain coding (a
    forced distance takes the best rank whatever plain coding would cost)."""
    history = _factor_history(levels, shape, allowed)
    if not history or levels.size == 0 or native.peak_magnitude(levels) > MAX_FACTOR_RESIDUAL:
        return None
    side = min(-(-levels.size // history), history)
    # a rank above a quarter of the smaller side costs more than it saves, unless forced
    widest = side if allowed.history is not None else side // 4
    ranks = [k for k in FACTOR_RANKS if k <= widest and (history + 1) * k <= allowed.max_history]
    axes = _principal_axes(levels, history, max(ranks)) if ranks else None
    if axes is None:
        return None
    us, v, energies = axes
    ranks = _shortlist(energies, [k for k in ranks if k <= v.shape[1]], us.shape[0], history, PROXY_CANDIDATES,
                       allowed.history is not None)
    if not ranks:
        return None
    candidates = [quantize_factors(us, v, k, history) for k in ranks]
    costs = [_factor_proxy_bits(levels, f) for f in candidates]
    best = int(np.argmin(costs))
    plain = PROXY_BITS_PER_VALUE * levels.size + native.history_cost(levels, 0)
    if allowed.history is None and costs[best] >= plain * (1 - MIN_PROMISED_GAIN):
        return None
    return candidates[best]


def _code_factored(name: str, levels: np.ndarray, factors: Factors) -> CodedLevels:
    head = levels[: native.INITIAL_ACTIVITY_WINDOW]  # the residuals the activity starts from
    activity = native.initial_activity(head - factors.prediction(0, -(-head.size // factors.history))[: head.size])
    payload = native.encode_factored(levels, factors.history, factors.rows, factors.columns, factors.shift, name,
                                     activity)
    return CodedLevels(PREDICT_FACTORS, factors.history, activity, payload, factors.rank, factors.shift)


def _candidates(levels: np.ndarray, shape, allowed: Prediction) -> list[tuple[int, int]]:
    """(kind, history) pairs worth a real encode: a forced distance with
    each allowed kind, else no prediction and each kind's best proposal."""
    if allowed.kind == "none" or allowed.history == 0:
        return [(PREDICT_NONE, 0)]
    kinds = [PREDICT_DIFFERENCE, PREDICT_SCALE] if allowed.kind == "auto" else [PREDICTION_KINDS[allowed.kind]]
    if allowed.kind == "factors":  # code_levels proposes factors itself
        return [(PREDICT_NONE, 0)] if allowed.history is None else []
    if allowed.history is not None:
        return [(kind, allowed.history) for kind in kinds]
    found = [(PREDICT_NONE, 0)]
    if levels.size == 0:
        return found
    if PREDICT_DIFFERENCE in kinds:
        history = _propose_difference(levels, shape, allowed.max_history)
        if history:
            found.append((PREDICT_DIFFERENCE, history))
    if PREDICT_SCALE in kinds:
        history, gain = _propose_scale(levels, shape, allowed.max_history)
        if gain >= DECISIVE_GAIN:  # no need to confirm that plain coding loses
            found.remove((PREDICT_NONE, 0))
        if history:
            found.append((PREDICT_SCALE, history))
    return found


def _code(name: str, levels: np.ndarray, kind: int, history: int) -> CodedLevels:
    if kind == PREDICT_DIFFERENCE:
        coded = residuals(levels, history)
        if coded.size and native.peak_magnitude(coded) > 2**31:
            raise FormatError(
                f"tensor {name!r}: difference prediction at distance {history} needs values beyond 2**31; "
                "use prediction='none'"
            )
    else:
        coded = levels
    activity = native.initial_activity(coded)
    columns = native.column_activities(coded, history, activity) if kind == PREDICT_SCALE else None
    return CodedLevels(kind, history, activity, native.encode_levels(coded, name, activity, columns))


def _code_with_peaks(name: str, levels: np.ndarray, plain: CodedLevels, peaks: Peaks) -> CodedLevels:
    """`plain`'s prediction (none or scale) with the channel peaks out of the coded levels
    (FORMAT 5.9): they are sent as positions before the first value."""
    coded = levels[~peaks.mask]
    activity = native.initial_activity(coded)
    columns = None
    if plain.prediction == PREDICT_SCALE:
        columns = native.column_activities(levels, plain.history, activity, peaks.mask)[~peaks.mask]
    payload = native.encode_levels(coded, name, activity, columns, peaks.preamble)
    return CodedLevels(plain.prediction, plain.history, activity, payload, peaks=peaks)


def code_levels(name: str, shape: tuple[int, ...], levels: np.ndarray, allowed: Prediction,
                peaks_allowed: bool = False, found_peaks: Peaks | None = None) -> CodedLevels:
    """Code a tensor's levels each allowed, promising way; keep the smallest.
    `peaks_allowed` (lossless levels) lets the channel peaks of FORMAT 5.9
    go with no prediction and with scale prediction, where they promise to
    pay (peaks.find_peaks): those two are then coded with peaks only, which
    spares an encode of each (the peaks' gain is all but certain there).
    `found_peaks`: what find_peaks already returned for these very levels
    and this `allowed`, so that a large tensor is not searched twice."""
    levels = np.ascontiguousarray(levels, dtype=np.int64).ravel()
    peaks = None
    if peaks_allowed and allowed.kind != "none" and allowed.history != 0:
        peaks = found_peaks if found_peaks is not None else find_peaks(levels, shape, allowed.max_history)
    coded, refused = [], []
    for kind, history in _candidates(levels, shape, allowed):
        try:
            if peaks is not None and kind in (PREDICT_NONE, PREDICT_SCALE) and \
                    history + peaks.work_size <= allowed.max_history:
                coded.append(_code_with_peaks(name, levels, CodedLevels(kind, history, 0, b""), peaks))
            else:
                coded.append(_code(name, levels, kind, history))
        except FormatError as error:  # another allowed kind may still fit
            refused.append(error)
    factors = propose_factors(levels, shape, allowed) if allowed.kind in ("auto", "factors") else None
    if factors is not None:
        coded.append(_code_factored(name, levels, factors))
    if coded:
        return min(coded, key=_entry_and_payload_bytes)
    if refused:
        raise refused[0]
    if levels.size == 0:  # factors at a forced distance, and nothing to code
        return _code(name, levels, PREDICT_NONE, 0)
    raise FormatError(f"tensor {name!r}: factor prediction does not fit this tensor at history "
                      f"{allowed.history} (it needs levels within 2**30 and (H + 1) * rank <= max_history)")


def _entry_and_payload_bytes(coded: CodedLevels) -> int:
    """What a choice adds to the stream: its payload, and the fields a
    predicted or peaked tensor's directory entry carries (FORMAT 3.2)."""
    return len(coded.payload) + directory_field_bytes(coded.prediction, coded.history, coded.peaks)


def directory_field_bytes(prediction: int, history: int, peaks: Peaks | None = None) -> int:
    """The bytes a prediction and channel peaks add to a directory entry
    (FORMAT 3.2), exactly: the history varint, a factored tensor's rank and
    shift, and for peaks their axis and what P's varint takes beyond the
    one byte of peak = 0 that every lossless entry carries."""
    fields = len(leb128(history)) if prediction != PREDICT_NONE else 0
    fields += FACTOR_FIELD_BYTES if prediction == PREDICT_FACTORS else 0
    return fields + (len(leb128(peaks.magnitude)) if peaks else 0)


def check_prediction(name: str, kind, history, max_history) -> Prediction:
    """Validate the caller's options for one tensor."""
    if kind not in ("auto", *PREDICTION_KINDS):
        raise ValueError(f"tensor {name!r}: prediction must be one of auto, {', '.join(PREDICTION_KINDS)}; got {kind!r}")
    for label, value, limit in (("history", history, MAX_HISTORY), ("max_history", max_history, MAX_WORK_SIZE)):
        if value is None and label == "history":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= limit:
            raise ValueError(f"tensor {name!r}: {label} must be an integer 0..{limit}, got {value!r}")
    if kind == "none" and history:
        raise ValueError(f"tensor {name!r}: history={history} given with prediction='none'")
    return Prediction(kind, None if history is None else int(history), int(max_history))
