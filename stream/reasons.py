"""Reason codes: the principal factors that pushed an applicant's risk up (adverse action).

Method: LightGBM's exact TreeSHAP contributions (``Booster.predict(X, pred_contrib=True)`` on
the version's ``model.txt``). For every row they add up, with the bias column, to the
booster's raw log-odds, which is the logit of the ONNX model's raw probability; the tests
prove it. Only review and decline rows are explained (a contribution costs far more than a
prediction).

``Reason.impact`` is the feature's contribution to the log-odds of the *published*
(calibrated) probability of default: the raw TreeSHAP value times the Platt ``slope`` of
model.json (slope 1 when calibration is ``none``), rounded to 4 decimals. A positive impact
pushed the risk up. The impacts of all features plus ``slope * bias + intercept`` add up to
``logit(PD)``.

A reason lists at most :data:`MAX_REASONS` features, most important first, and only those
with a positive impact; a review or decline with none gets its single largest contribution
anyway, so every adverse decision carries 1-4 reasons. Missing bureau data is its own
reason (:data:`MISSING_BUREAU_CODE`, impact 0) and comes first.

Codes are stable per feature across model versions: model.json records each feature's
``reason_code`` (``features.definitions.reason_code``: a fixed table for the Lending Club
features, else ``"RX"`` + 4 hex digits of the SHA-256 of the name).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.definitions import reason_code

if TYPE_CHECKING:
    from onnx_models.card import CardFeature, ModelCard

# Adverse-action notices name at most four principal reasons.
MAX_REASONS = 4

MISSING_BUREAU_CODE = "R00"
MISSING_BUREAU_FEATURE = "bureau_data"
MISSING_BUREAU_TEXT = "Credit bureau information unavailable"


UNAVAILABLE_VALUE_TEXT = "not available"


@dataclass(frozen=True)
class Reason:
    """One factor of a decision.

    ``impact``: contribution to the log-odds of the published PD (TreeSHAP x Platt slope,
    4 dp); positive means it pushed the risk up; 0 for missing bureau data.
    """

    code: str
    feature: str
    text: str
    impact: float

    def to_dict(self) -> dict[str, str | float]:
        return {"code": self.code, "feature": self.feature, "text": self.text,
                "impact": self.impact}


MISSING_BUREAU_REASON = Reason(MISSING_BUREAU_CODE, MISSING_BUREAU_FEATURE,
                               MISSING_BUREAU_TEXT, 0.0)


class ReasonBuilder:
    """Turns one row's contributions into reasons, using the model card's feature list."""

    def __init__(self, features: Sequence[CardFeature], slope: float) -> None:
        self.names = [feature.name for feature in features]
        self.codes = [feature.reason_code or reason_code(feature.name) for feature in features]
        self.descriptions = [feature.described for feature in features]
        self.categories = [list(feature.categories or ()) if feature.type == "categorical"
                           else None for feature in features]
        self.slope = slope

    @classmethod
    def from_model_card(cls, card: ModelCard) -> ReasonBuilder:
        return cls(card.features, card.calibration.log_odds_factor)

    def text(self, position: int, value: float) -> str:
        """Plain language for a feature at this value; categories are named (a loan
        purpose or housing status is not personal data), missing values are said so."""
        description = self.descriptions[position]
        categories = self.categories[position]
        if math.isnan(value):
            return f"{description}: {UNAVAILABLE_VALUE_TEXT}"
        if categories is not None:
            index = int(value)
            name = categories[index] if 0 <= index < len(categories) else UNAVAILABLE_VALUE_TEXT
            return f"{description}: {name}"
        return description

    def reasons(self, contributions: np.ndarray, values: np.ndarray,
                bureau_missing: bool = False) -> tuple[Reason, ...]:
        """Reasons for one adverse decision.

        ``contributions``: the row's raw TreeSHAP values, one per feature (bias excluded);
        ``values``: the row's model inputs (to name categories and missing values).
        """
        impacts = self._impacts(contributions)
        leading = [MISSING_BUREAU_REASON] if bureau_missing else []
        # Largest impact first; equal impacts keep model.json order.
        order = np.argsort(-impacts, kind="stable")
        chosen = [int(position) for position in order if impacts[position] > 0]
        chosen = chosen[:MAX_REASONS - len(leading)]
        if not chosen and not leading:
            chosen = [int(order[0])]
        return tuple(leading) + tuple(self._reason(position, impacts, values)
                                      for position in chosen)

    def lowering(self, contributions: np.ndarray, values: np.ndarray,
                 limit: int = MAX_REASONS) -> tuple[Reason, ...]:
        """The factors that pulled one row's risk down, the largest first (negative
        impacts, scaled as :meth:`reasons` scales them): what the console shows beside
        the reasons; never part of a notice."""
        impacts = self._impacts(contributions)
        order = np.argsort(impacts, kind="stable")
        return tuple(self._reason(int(position), impacts, values)
                     for position in order[:limit] if impacts[position] < 0)

    def _impacts(self, contributions: np.ndarray) -> np.ndarray:
        impacts = np.asarray(contributions, dtype=np.float64) * self.slope
        if len(impacts) != len(self.names):
            raise ValueError(f"{len(impacts)} contributions for a model with "
                             f"{len(self.names)} features")
        return impacts

    def _reason(self, position: int, impacts: np.ndarray, values: np.ndarray) -> Reason:
        return Reason(self.codes[position], self.names[position],
                      self.text(position, float(values[position])),
                      round(float(impacts[position]), 4))
