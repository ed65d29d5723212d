"""Metrics on arrays whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from training.evaluate import (
    decision_outcomes,
    evaluate_probabilities,
    expected_calibration_error,
    ks_statistic,
    summarize_folds,
)


def test_perfect_separation():
    label = np.array([0, 0, 1, 1])
    metrics = evaluate_probabilities(label, np.array([0.1, 0.2, 0.8, 0.9]))
    assert metrics.auc == 1.0 and metrics.ks == 1.0 and metrics.gini == 1.0


def test_metrics_agree_with_sklearn_and_hand_values():
    rng = np.random.default_rng(3)
    probability = rng.random(500)
    label = (rng.random(500) < probability).astype(int)
    metrics = evaluate_probabilities(label, probability)
    assert metrics.auc == pytest.approx(roc_auc_score(label, probability))
    assert metrics.gini == pytest.approx(2 * metrics.auc - 1)
    assert metrics.brier == pytest.approx(brier_score_loss(label, probability))
    # KS equals the largest gap between the empirical CDFs of the two classes.
    grid = np.sort(probability)
    gap = max(abs(np.mean(probability[label == 0] <= t) - np.mean(probability[label == 1] <= t))
              for t in grid)
    assert ks_statistic(label, probability) == pytest.approx(gap)


def test_expected_calibration_error_by_hand():
    # bin [0.1,0.2): mean PD 0.1, observed 0.5 (2 rows); bin [0.9,1]: mean 0.9, observed 1.
    label = np.array([0, 1, 1, 1])
    probability = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(label, probability, bins=10) == pytest.approx(
        0.5 * 0.4 + 0.5 * 0.1)


def test_decisions_at_thresholds():
    thresholds = {"approve_below": 0.1, "decline_at_or_above": 0.3}
    label = np.array([0, 1, 0, 0, 1, 1])
    pd_values = np.array([0.05, 0.05, 0.2, 0.5, 0.5, 0.2])
    outcome = decision_outcomes(label, pd_values, thresholds)
    assert outcome["approval_rate"] == pytest.approx(2 / 6)
    assert outcome["bad_rate_among_approved"] == pytest.approx(0.5)
    assert outcome["confusion_matrix"] == {"true_negative": 2, "false_positive": 1,
                                           "false_negative": 2, "true_positive": 1}


def test_fold_summary_has_mean_and_std():
    label = np.array([0, 1, 0, 1])
    folds = [evaluate_probabilities(label, np.array([0.1, 0.9, 0.2, 0.8])),
             evaluate_probabilities(label, np.array([0.1, 0.9, 0.95, 0.8]))]
    summary = summarize_folds(folds).to_dict()
    assert summary["auc"] == pytest.approx(0.75)  # fold AUCs 1.0 and 0.5
    assert summary["auc_std"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
