"""From the model's raw output to what a decision publishes, using only model.json values.

Training uses these functions to evaluate and to check ONNX parity; the worker uses them to
score. So the calibrated probability of default, the score points, the risk grade and the
approve / review / decline outcome are computed by one piece of code everywhere.

model.json shapes (written by training; :class:`Calibration`, :class:`ScoreScale`,
:class:`RiskGrade` and :class:`Thresholds` check them once when a card is read):

- ``calibration``: ``{"method": "platt", "slope": a, "intercept": b}`` meaning
  ``PD = sigmoid(a * logit(raw) + b)``, or ``{"method": "none"}``;
- ``score_scale``: ``{"base_score": 600, "base_odds": 30, "points_to_double_odds": 20}``
  (odds are good:bad);
- ``risk_grades``: ``[{"grade": "A", "max_pd": 0.03}, ..., {"grade": "G", "max_pd": 1.0}]``;
- ``thresholds``: ``{"approve_below": p1, "decline_at_or_above": p2, ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

# Keeps logit/odds finite; far below any PD a lender acts on.
PROBABILITY_FLOOR = 1e-7


class PolicyPart(BaseModel):
    """A section of model.json, checked once when the card is read. Keys this version does not
    know are kept (a newer card still serves), values are immutable."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @classmethod
    def of(cls, value: Self | Mapping[str, object]) -> Self:
        """``value`` itself, or the section parsed from its model.json mapping."""
        return value if isinstance(value, cls) else cls.model_validate(value)


class Calibration(PolicyPart):
    """``PD = sigmoid(slope * logit(raw) + intercept)`` (Platt), or the raw output (none)."""

    method: Literal["platt", "none"] = "none"
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def log_odds_factor(self) -> float:
        """Factor from raw log-odds to the log-odds of the calibrated PD."""
        return self.slope if self.method == "platt" else 1.0


class ScoreScale(PolicyPart):
    base_score: float
    base_odds: float
    points_to_double_odds: float


class RiskGrade(PolicyPart):
    grade: str
    max_pd: float


class Thresholds(PolicyPart):
    approve_below: float
    decline_at_or_above: float


def _clip(probability: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(probability, dtype=np.float64), PROBABILITY_FLOOR,
                   1.0 - PROBABILITY_FLOOR)


def logit(probability: np.ndarray) -> np.ndarray:
    clipped = _clip(probability)
    return np.log(clipped) - np.log1p(-clipped)


def apply_calibration(raw_probability: np.ndarray,
                      calibration: Calibration | Mapping[str, object]) -> np.ndarray:
    """Calibrated probability of default (float64) from the model's raw probability."""
    calibration = Calibration.of(calibration)
    if calibration.method == "none":
        return np.asarray(raw_probability, dtype=np.float64)
    log_odds = calibration.slope * logit(raw_probability) + calibration.intercept
    return 1.0 / (1.0 + np.exp(-log_odds))


def score_points(probability_of_default: np.ndarray,
                 score_scale: ScoreScale | Mapping[str, object]) -> np.ndarray:
    """Integer score: base_score at base_odds (good:bad), +points_to_double_odds per doubling."""
    scale = ScoreScale.of(score_scale)
    clipped = _clip(probability_of_default)
    factor = scale.points_to_double_odds / np.log(2.0)
    offset = scale.base_score - factor * np.log(scale.base_odds)
    good_bad_odds = (1.0 - clipped) / clipped
    return np.rint(offset + factor * np.log(good_bad_odds)).astype(np.int64)


def risk_grade(probability_of_default: np.ndarray,
               risk_grades: Sequence[RiskGrade | Mapping[str, object]]) -> np.ndarray:
    """Grade letter per PD: the first band whose ``max_pd`` is above the PD."""
    bands = [RiskGrade.of(band) for band in risk_grades]
    upper_bounds = np.array([band.max_pd for band in bands])
    letters = np.array([band.grade for band in bands])
    index = np.searchsorted(upper_bounds, np.asarray(probability_of_default), side="right")
    return letters[np.minimum(index, len(letters) - 1)]


def decide(probability_of_default: np.ndarray,
           thresholds: Thresholds | Mapping[str, object]) -> np.ndarray:
    """'approve' below ``approve_below``, 'decline' at or above ``decline_at_or_above``,
    'review' in between."""
    policy = Thresholds.of(thresholds)
    pd_values = np.asarray(probability_of_default, dtype=np.float64)
    outcome = np.full(pd_values.shape, "review", dtype=object)
    outcome[pd_values < policy.approve_below] = "approve"
    outcome[pd_values >= policy.decline_at_or_above] = "decline"
    return outcome
