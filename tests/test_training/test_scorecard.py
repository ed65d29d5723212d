"""The baseline scorecard: a points table that ranks, and that serves through the same ONNX
graph and per-feature explanations as LightGBM."""

from __future__ import annotations

import numpy as np
import pytest

from training.export import booster_to_onnx, check_parity
from training.model import as_float32_values
from training.scorecard import BinnedScorecard


def _rows(rows: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(11, 0.6, rows)
    utilisation = rng.uniform(0, 120, rows)
    purpose = rng.integers(0, 4, rows).astype(float)
    log_odds = -2.0 - 0.8 * (np.log(income) - 11) + 0.02 * (utilisation - 50) \
        + 0.5 * (purpose == 2)
    income[rng.random(rows) < 0.1] = np.nan  # unknown income is riskier below
    log_odds = np.where(np.isnan(income), log_odds + 1.0, log_odds)
    purpose[rng.random(rows) < 0.05] = np.nan
    label = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return np.column_stack([income, utilisation, purpose]), label


def test_scorecard_ranks_risk_and_gives_missing_values_their_own_points():
    from sklearn.metrics import roc_auc_score

    features, label = _rows()
    scorecard = BinnedScorecard([2], max_bins=10, regularization=1.0).fit(features[:3000],
                                                                          label[:3000])
    assert roc_auc_score(label[3000:], scorecard.predict_proba(features[3000:])[:, 1]) > 0.65
    income_points = scorecard.points_[0]
    assert income_points[-1] > np.median(income_points[:-1])  # missing income: more risk
    assert income_points[0] > income_points[-2]  # lowest income bin riskier than the highest


def test_scorecard_as_lightgbm_text_is_the_same_model_and_exports_to_onnx():
    import lightgbm as lgb

    features, label = _rows()
    scorecard = BinnedScorecard([2]).fit(features, label)
    booster = lgb.Booster(model_str=scorecard.to_lightgbm_text())
    features = as_float32_values(features)  # what the encoder and ONNX hand any model
    assert booster.num_trees() == features.shape[1]
    np.testing.assert_allclose(booster.predict(features, raw_score=True),
                               scorecard.decision_function(features), atol=1e-9)
    unseen = np.array([[np.nan, 250.0, 7.0], [1e9, -5.0, np.nan]])  # out of range, unknown code
    np.testing.assert_allclose(booster.predict(unseen, raw_score=True),
                               scorecard.decision_function(unseen), atol=1e-9)
    parity = check_parity(booster_to_onnx(booster, 3), booster, features,
                          {"method": "platt", "slope": 1.0, "intercept": -0.2})
    assert parity.max_abs_diff < 1e-6


def test_scorecard_explanations_are_bin_points_minus_their_average():
    import lightgbm as lgb

    features, label = _rows()
    scorecard = BinnedScorecard([2]).fit(features, label)
    booster = lgb.Booster(model_str=scorecard.to_lightgbm_text())
    features = as_float32_values(features)
    contributions = booster.predict(features[:50], pred_contrib=True)
    np.testing.assert_allclose(contributions.sum(axis=1),
                               scorecard.decision_function(features[:50]), atol=1e-9)
    bins = scorecard.bin_index(features[:50])
    # Two applicants in the same utilisation bin get the same utilisation contribution.
    same = np.flatnonzero(bins[:, 1] == bins[0, 1])
    assert len(same) > 1
    np.testing.assert_allclose(contributions[same, 1], contributions[same[0], 1])


def test_scorecard_refuses_bad_parameters():
    features, label = _rows(200)
    with pytest.raises(ValueError, match="max_bins"):
        BinnedScorecard(max_bins=1).fit(features, label)
    with pytest.raises(ValueError, match="regularization"):
        BinnedScorecard(regularization=0).fit(features, label)
