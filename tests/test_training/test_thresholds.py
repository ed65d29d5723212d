"""Thresholds come from costs; policy functions read only model.json values."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_models.policy import apply_calibration, decide, risk_grade, score_points
from training.thresholds import thresholds_from_costs


def test_break_even_and_review_band_from_costs():
    thresholds = thresholds_from_costs(cost_bad_loan=5, cost_rejected_good=1,
                                       review_band_fraction=0.25)
    assert thresholds["break_even_pd"] == pytest.approx(1 / 6)
    assert thresholds["approve_below"] == pytest.approx(0.125)
    assert thresholds["decline_at_or_above"] == pytest.approx(1 / 6 * 1.25)
    outcomes = decide(np.array([0.05, 0.125, 0.2, 0.3]), thresholds)
    assert list(outcomes) == ["approve", "review", "review", "decline"]


def test_costlier_bad_loans_lower_the_approval_threshold():
    cheap = thresholds_from_costs(2, 1, 0.0)
    dear = thresholds_from_costs(10, 1, 0.0)
    assert dear["approve_below"] < cheap["approve_below"]


def test_non_positive_costs_are_refused():
    with pytest.raises(ValueError, match="positive"):
        thresholds_from_costs(0, 1, 0.2)


def test_score_scale_points():
    scale = {"base_score": 600, "base_odds": 30, "points_to_double_odds": 20}
    odds_30 = 1 / 31  # PD giving 30:1 good:bad
    odds_60 = 1 / 61
    assert list(score_points(np.array([odds_30, odds_60]), scale)) == [600, 620]


def test_risk_grade_bands():
    bands = [{"grade": "A", "max_pd": 0.05}, {"grade": "B", "max_pd": 0.2},
             {"grade": "C", "max_pd": 1.0}]
    assert list(risk_grade(np.array([0.01, 0.05, 0.5, 1.0]), bands)) == ["A", "B", "C", "C"]


def test_platt_identity_keeps_the_probability():
    raw = np.array([0.01, 0.2, 0.9])
    calibrated = apply_calibration(raw, {"method": "platt", "slope": 1.0, "intercept": 0.0})
    np.testing.assert_allclose(calibrated, raw)
    with pytest.raises(ValueError, match="isotonic"):
        apply_calibration(raw, {"method": "isotonic"})
