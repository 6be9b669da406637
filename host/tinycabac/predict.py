"""Prediction from an earlier row (FORMAT 5.7), the encoder's side.

Some weight tensors repeat themselves at a fixed distance H, one "row"
(times a small lag) apart, and every decoder keeps the last H levels,
clamped to int8, in a ring:

- difference: the x, y and z output rows of a landmark regression layer, the
  taps of a depthwise kernel one kernel row apart.  Each level is coded as
  its difference from the level H elements back.
- scale: 1x1 convolutions with pruned input channels share where their
  zeros and large values are, row after row, but not their signs.  The
  level is coded as it is, with the Rice parameter steered by the size of
  the level H elements back.

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
# encode to confirm it.
MIN_PROMISED_GAIN = 0.01
# Scale candidates are ranked by the model's own estimate on a prefix of
# the tensor: enough rows to see the pattern, bounded encode time.
SCALE_SAMPLE_ROWS = 4
SCALE_SAMPLE_MIN = 8192
SCALE_SAMPLE_MAX = 16384
PREDICTION_CLAMP = (-128, 127)


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
    """The ring entry each element sees: the level `history` elements back,
    clamped to int8, and 0 for the first row."""
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


def _propose_difference(levels: np.ndarray, shape, max_history: int) -> int:
    """The distance whose residuals have the smallest magnitude classes
    (a cheap proxy computed in C), if it promises a gain."""
    if int(np.abs(levels).max()) > 2**31 - 128:
        return 0  # a residual could leave the coder's range
    candidates = row_lengths(shape, DIFFERENCE_LAGS, max_history)
    if not candidates:
        return 0
    costs = {h: native.history_cost(levels, h) for h in candidates}
    best = min(candidates, key=costs.get)
    return best if costs[best] < native.history_cost(levels, 0) * (1 - MIN_PROMISED_GAIN) else 0


def _propose_scale(levels: np.ndarray, shape, max_history: int) -> int:
    """The row length (times a lag) whose ring steers the model best on a
    prefix, by the model's own rate estimate, if it promises a gain."""
    candidates = row_lengths(shape, SCALE_LAGS, max_history)
    if not candidates:
        return 0
    sample = levels[: max(SCALE_SAMPLE_MIN, min(SCALE_SAMPLE_MAX, SCALE_SAMPLE_ROWS * candidates[-1]))]
    activity = native.initial_activity(sample)
    costs = {h: native.estimate_bits(sample, activity, ring_values(sample, h)) for h in candidates}
    best = min(candidates, key=costs.get)
    return best if costs[best] < native.estimate_bits(sample, activity) * (1 - MIN_PROMISED_GAIN) else 0


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
    for kind in kinds:
        propose = _propose_difference if kind == PREDICT_DIFFERENCE else _propose_scale
        history = propose(levels, shape, allowed.max_history)
        if history:
            found.append((kind, history))
    return found


def _code(name: str, levels: np.ndarray, kind: int, history: int) -> CodedLevels:
    if kind == PREDICT_DIFFERENCE:
        coded = residuals(levels, history)
        if coded.size and int(np.abs(coded).max()) > 2**31:
            raise FormatError(
                f"tensor {name!r}: difference prediction at distance {history} needs values beyond 2**31; "
                "use prediction='none'"
            )
        ring = None
    else:
        coded = levels
        ring = ring_values(levels, history) if kind == PREDICT_SCALE else None
    activity = native.initial_activity(coded)
    return CodedLevels(kind, history, activity, native.encode_levels(coded, name, activity, ring))


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
    return min(coded, key=lambda c: len(c.payload))


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
