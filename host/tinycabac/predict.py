"""Prediction from an earlier row (FORMAT 5.7), the encoder's side.

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

This module picks the kind and H for a tensor, codes it each promising way
and keeps the smallest payload.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import native
from .container import MAX_HISTORY, PREDICT_DIFFERENCE, PREDICT_NONE, PREDICT_SCALE, FormatError

# Decoders need H bytes of RAM for a predicted tensor; 4 KiB fits the
# smallest boards the firmware targets next to their other buffers.
DEFAULT_MAX_HISTORY = 4096
PREDICTION_KINDS = {"none": PREDICT_NONE, "difference": PREDICT_DIFFERENCE, "scale": PREDICT_SCALE}
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
HISTORY_FIELD_BYTES = 2


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


def _candidates(levels: np.ndarray, shape, allowed: Prediction) -> list[tuple[int, int]]:
    """(kind, history) pairs worth a real encode: a forced distance with
    each allowed kind, else no prediction and each kind's best proposal."""
    if allowed.kind == "none" or allowed.history == 0:
        return [(PREDICT_NONE, 0)]
    kinds = [PREDICT_DIFFERENCE, PREDICT_SCALE] if allowed.kind == "auto" else [PREDICTION_KINDS[allowed.kind]]
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


def code_levels(name: str, shape: tuple[int, ...], levels: np.ndarray, allowed: Prediction) -> CodedLevels:
    """Code a tensor's levels each allowed, promising way; keep the smallest."""
    levels = np.ascontiguousarray(levels, dtype=np.int64).ravel()
    coded, refused = [], []
    for kind, history in _candidates(levels, shape, allowed):
        try:
            coded.append(_code(name, levels, kind, history))
        except FormatError as error:  # another allowed kind may still fit
            refused.append(error)
    if not coded:
        raise refused[0]
    return min(coded, key=_entry_and_payload_bytes)


def _entry_and_payload_bytes(coded: CodedLevels) -> int:
    """What a choice adds to the stream: its payload, and the u16 history
    field a predicted tensor's directory entry carries (FORMAT 3.2)."""
    return len(coded.payload) + (HISTORY_FIELD_BYTES if coded.prediction != PREDICT_NONE else 0)


def check_prediction(name: str, kind, history, max_history) -> Prediction:
    """Validate the caller's options for one tensor."""
    if kind not in ("auto", *PREDICTION_KINDS):
        raise ValueError(f"tensor {name!r}: prediction must be one of auto, {', '.join(PREDICTION_KINDS)}; got {kind!r}")
    for label, value in (("history", history), ("max_history", max_history)):
        if value is None and label == "history":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_HISTORY:
            raise ValueError(f"tensor {name!r}: {label} must be an integer 0..{MAX_HISTORY}, got {value!r}")
    if kind == "none" and history:
        raise ValueError(f"tensor {name!r}: history={history} given with prediction='none'")
    return Prediction(kind, None if history is None else int(history), int(max_history))
