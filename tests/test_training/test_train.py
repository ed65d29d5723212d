"""Splits, SMOTE and calibration: the rules that keep the probabilities honest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from onnx_models.policy import apply_calibration
from training.calibration import fit_platt
from training.resampling import MissingAwareSMOTE
from training.split import split_test


def _frame(rows: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    months = pd.date_range("2012-01-01", periods=24, freq="MS")
    frame = pd.DataFrame({"issue_d": rng.choice(months, rows)})
    return frame, (rng.random(rows) < 0.15).astype(int)


def test_out_of_time_split_tests_on_the_newest_loans():
    frame, label = _frame()
    split = split_test(frame, label, "issue_d", test_fraction=0.2, seed=0)
    assert split.method == "out_of_time"
    train_dates = frame["issue_d"].iloc[split.train_positions]
    test_dates = frame["issue_d"].iloc[split.test_positions]
    assert train_dates.max() < test_dates.min()
    assert 0.15 <= len(split.test_positions) / len(frame) <= 0.3


def test_without_a_date_the_split_is_stratified():
    frame, label = _frame()
    split = split_test(frame, label, None, test_fraction=0.2, seed=0)
    assert split.method == "stratified"
    assert abs(label[split.test_positions].mean() - label.mean()) < 0.01
    assert len(set(split.train_positions) & set(split.test_positions)) == 0


def test_smote_balances_keeps_originals_and_missing_values():
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(2000, 4))
    rows[:, 3] = rng.integers(0, 3, 2000)
    rows[:, 2] = rng.poisson(2, 2000)  # a count
    rows[rng.random(2000) < 0.3, 1] = np.nan
    rows[rng.random(2000) < 0.1, 3] = np.nan
    label = (rng.random(2000) < 0.1).astype(int)
    resampled, resampled_label = MissingAwareSMOTE([3], random_state=0).fit_resample(rows, label)
    assert resampled_label.mean() == pytest.approx(0.5)
    np.testing.assert_array_equal(resampled[:2000], rows)  # real rows untouched
    synthetic = resampled[2000:]
    assert 0.15 < np.isnan(synthetic[:, 1]).mean() < 0.45  # missingness carried over
    codes = synthetic[:, 3][~np.isnan(synthetic[:, 3])]
    assert set(np.unique(codes)) <= {0.0, 1.0, 2.0}  # categories stay categories
    np.testing.assert_array_equal(synthetic[:, 2], np.round(synthetic[:, 2]))  # counts whole
    assert not np.all(synthetic[:, 0] == np.round(synthetic[:, 0]))


def test_platt_calibration_undoes_a_smote_like_prior_shift():
    rng = np.random.default_rng(4)
    true_pd = rng.uniform(0.01, 0.4, 20000)
    label = (rng.random(20000) < true_pd).astype(int)
    log_odds = np.log(true_pd / (1 - true_pd)) + 2.0  # a 50:50-trained model over-predicts
    raw = 1 / (1 + np.exp(-log_odds))
    calibration = fit_platt(raw, label)
    calibrated = apply_calibration(raw, calibration)
    assert raw.mean() > 2 * label.mean()
    assert calibrated.mean() == pytest.approx(label.mean(), abs=0.01)


def test_smote_never_invents_a_loan_term():
    rng = np.random.default_rng(6)
    rows = np.column_stack([rng.choice([36.0, 60.0], 1000), rng.normal(size=1000)])
    label = (rng.random(1000) < 0.1).astype(int)
    resampled, _ = MissingAwareSMOTE(random_state=0).fit_resample(rows, label)
    assert set(np.unique(resampled[:, 0])) == {36.0, 60.0}
