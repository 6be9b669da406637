"""Prediction from an earlier row (FORMAT 5.7), the encoder's side.

Some weight tensors repeat themselves at a fixed distance: the x, y and z
output rows of a landmark regression layer, the taps of a depthwise kernel
one kernel row apart.  Coding each level as its difference from the level H
elements back (clamped to int8, as every decoder keeps it) then costs far
fewer bits.  This module picks H for a tensor and forms the residuals.
"""
from __future__ import annotations

import math

import numpy as np

from . import native
from .container import MAX_HISTORY

# Decoders need H bytes of RAM for a predicted tensor; 4 KiB fits the
# smallest boards the firmware targets next to their other buffers.
DEFAULT_MAX_HISTORY = 4096
# Row lags tried: 3 catches x/y/z landmark rows, 1 and 2 neighbouring rows.
CANDIDATE_LAGS = (1, 2, 3, 4, 6)
# A candidate must promise this much (by the magnitude-class proxy) before
# the encoder spends a second real encode to confirm it.
MIN_PROXY_GAIN = 0.01
PREDICTION_CLAMP = (-128, 127)
# A residual must stay within the coder's |level| <= 2^31.
_MAX_PREDICTABLE = 2**31 - 128


def residuals(levels: np.ndarray, history: int) -> np.ndarray:
    """The values the entropy coder codes: level minus the clamped level
    `history` elements back (the levels themselves for history 0)."""
    levels = np.asarray(levels, dtype=np.int64).ravel()
    out = levels.copy()
    if history:
        out[history:] -= np.clip(levels[:-history], *PREDICTION_CLAMP)
    return out


def candidate_distances(shape: tuple[int, ...], max_history: int) -> list[int]:
    """Row lengths of every trailing sub-shape times the candidate lags."""
    count = math.prod(shape)
    found = set()
    for first in range(1, len(shape)):
        row = math.prod(shape[first:])
        for lag in CANDIDATE_LAGS:
            distance = row * lag
            if 0 < distance <= min(max_history, MAX_HISTORY) and distance < count:
                found.add(distance)
    return sorted(found)


def propose_history(levels: np.ndarray, shape: tuple[int, ...], max_history: int) -> int:
    """The most promising distance by the proxy, or 0 if none looks worth
    a trial encode."""
    levels = np.asarray(levels, dtype=np.int64).ravel()
    if levels.size == 0 or int(np.abs(levels).max()) > _MAX_PREDICTABLE:
        return 0
    candidates = candidate_distances(shape, max_history)
    if not candidates:
        return 0
    costs = {h: native.history_cost(levels, h) for h in candidates}
    best = min(candidates, key=costs.get)
    plain = native.history_cost(levels, 0)
    return best if costs[best] < plain * (1.0 - MIN_PROXY_GAIN) else 0


def check_history(name: str, history) -> int:
    if isinstance(history, bool) or not isinstance(history, (int, np.integer)) or not 0 <= history <= MAX_HISTORY:
        raise ValueError(f"tensor {name!r}: history must be an integer 0..{MAX_HISTORY}, got {history!r}")
    return int(history)
