"""From the model's raw output to what a decision publishes, using only model.json values.

Training uses these functions to evaluate and to check ONNX parity; the worker uses them to
score. So the calibrated probability of default, the score points, the risk grade and the
approve / review / decline outcome are computed by one piece of code everywhere.

model.json shapes (written by training):

- ``calibration``: ``{"method": "platt", "slope": a, "intercept": b}`` meaning
  ``PD = sigmoid(a * logit(raw) + b)``, or ``{"method": "none"}``;
- ``score_scale``: ``{"base_score": 600, "base_odds": 30, "points_to_double_odds": 20}``
  (odds are good:bad);
- ``risk_grades``: ``[{"grade": "A", "max_pd": 0.03}, ..., {"grade": "G", "max_pd": 1.0}]``;
- ``thresholds``: ``{"approve_below": p1, "decline_at_or_above": p2, ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Keeps logit/odds finite; far below any PD a lender acts on.
PROBABILITY_FLOOR = 1e-7


def _clip(probability: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(probability, dtype=np.float64), PROBABILITY_FLOOR,
                   1.0 - PROBABILITY_FLOOR)


def logit(probability: np.ndarray) -> np.ndarray:
    clipped = _clip(probability)
    return np.log(clipped) - np.log1p(-clipped)


def apply_calibration(raw_probability: np.ndarray,
                      calibration: Mapping[str, Any]) -> np.ndarray:
    """Calibrated probability of default (float64) from the model's raw probability."""
    method = calibration.get("method", "none")
    if method == "none":
        return np.asarray(raw_probability, dtype=np.float64)
    if method == "platt":
        log_odds = float(calibration["slope"]) * logit(raw_probability) + \
            float(calibration["intercept"])
        return 1.0 / (1.0 + np.exp(-log_odds))
    raise ValueError(f"model.json calibration method {method!r} is unknown; "
                     "expected 'platt' or 'none'")


def score_points(probability_of_default: np.ndarray,
                 score_scale: Mapping[str, Any]) -> np.ndarray:
    """Integer score: base_score at base_odds (good:bad), +points_to_double_odds per doubling."""
    clipped = _clip(probability_of_default)
    factor = float(score_scale["points_to_double_odds"]) / np.log(2.0)
    offset = float(score_scale["base_score"]) - factor * np.log(float(score_scale["base_odds"]))
    good_bad_odds = (1.0 - clipped) / clipped
    return np.rint(offset + factor * np.log(good_bad_odds)).astype(np.int64)


def risk_grade(probability_of_default: np.ndarray,
               risk_grades: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Grade letter per PD: the first band whose ``max_pd`` is above the PD."""
    upper_bounds = np.array([float(band["max_pd"]) for band in risk_grades])
    letters = np.array([str(band["grade"]) for band in risk_grades])
    index = np.searchsorted(upper_bounds, np.asarray(probability_of_default), side="right")
    return letters[np.minimum(index, len(letters) - 1)]


def decide(probability_of_default: np.ndarray,
           thresholds: Mapping[str, Any]) -> np.ndarray:
    """'approve' below ``approve_below``, 'decline' at or above ``decline_at_or_above``,
    'review' in between."""
    pd_values = np.asarray(probability_of_default, dtype=np.float64)
    outcome = np.full(pd_values.shape, "review", dtype=object)
    outcome[pd_values < float(thresholds["approve_below"])] = "approve"
    outcome[pd_values >= float(thresholds["decline_at_or_above"])] = "decline"
    return outcome
