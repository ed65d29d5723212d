"""The cross-validated search: trees chosen on the mean of the folds, SMOTE kept inside each
fold's training part, out-of-fold predictions for calibration, and the time budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.training_config import SearchSettings, SmoteSettings, TrainingConfig, TreeSettings
from training.tuning import (
    Candidate,
    CrossValidator,
    cross_fitted_metrics,
    run_search,
    smote_candidates,
)


def _small_book(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small, noisy loan book: ~9 % bad, a few weak signals, one categorical column."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 6))
    features[:, 5] = rng.integers(0, 5, rows)
    features[rng.random(rows) < 0.1, 1] = np.nan
    log_odds = -2.5 + 0.5 * features[:, 0] - 0.4 * np.nan_to_num(features[:, 1]) \
        + 0.3 * features[:, 2] * features[:, 3] + 0.3 * (features[:, 5] == 2)
    label = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return features, label


def _validator(rows: int = 2000, seed: int = 0, **config) -> CrossValidator:
    features, label = _small_book(rows, seed)
    return CrossValidator(features, label, np.arange(rows), [5],
                          TrainingConfig(seed=seed, **config))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_small_noisy_file_never_gets_a_handful_of_trees(seed):
    validator = _validator(2000, seed)
    score = validator.score(Candidate(TreeSettings(15, 100, 5.0)))
    assert score.trees >= 10
    assert 0.6 < score.mean_auc < 0.85
    assert len(score.fold_aucs) == 5


def test_out_of_fold_predictions_cover_every_training_row_once():
    from sklearn.metrics import roc_auc_score

    validator = _validator()
    score = validator.score(Candidate(TreeSettings(7, 50, 5.0)))
    assert score.out_of_fold.shape == validator.label.shape
    assert np.all((score.out_of_fold > 0) & (score.out_of_fold < 1))
    assert sorted(np.concatenate([valid for _, valid in validator.folds]).tolist()) == \
        list(range(len(validator.label)))
    assert roc_auc_score(validator.label, score.out_of_fold) == pytest.approx(score.mean_auc,
                                                                              abs=0.03)


def test_smote_rows_come_from_each_folds_training_part_and_never_validate():
    validator = _validator()
    real = len(validator.label)
    features, label, folds, synthetic = validator._fold_data(SmoteSettings(0.5, 5))
    assert synthetic > 0 and len(label) > real
    used = set()
    for (fit, valid), (real_fit, real_valid) in zip(folds, validator.folds, strict=True):
        np.testing.assert_array_equal(valid, real_valid)  # validation: real rows only
        added = fit[fit >= real]
        assert set(fit[fit < real]) == set(real_fit)
        assert not used & set(added)  # each fold's synthetic rows are its own
        used |= set(added)
        assert label[added].all()  # synthetic rows are bad loans
        # A synthetic row lies between real bad loans of this fold's training part.
        bad_fit = features[real_fit][label[real_fit] == 1]
        assert np.nanmin(features[added][:, 0]) >= np.nanmin(bad_fit[:, 0]) - 1e-6
        assert np.nanmax(features[added][:, 0]) <= np.nanmax(bad_fit[:, 0]) + 1e-6


def test_smote_strengths_tried_are_above_todays_ratio_and_at_most_balanced():
    config = TrainingConfig()
    candidates = smote_candidates(TreeSettings(7, 50, 5.0), 0.1, config)
    ratios = {candidate.smote.sampling_strategy for candidate in candidates if candidate.smote}
    assert ratios == {0.15, 0.125, 0.2, 0.3, 1.0}
    assert {c.smote.k_neighbors for c in candidates if c.smote} == {5, 25}
    assert smote_candidates(TreeSettings(7, 50, 5.0), 1.0, config) == []


def test_the_search_keeps_the_best_mean_auc_and_stops_at_the_deadline():
    validator = _validator(1500)
    candidates = [Candidate(TreeSettings(4, 30, 1.0)), Candidate(TreeSettings(15, 100, 5.0)),
                  Candidate(TreeSettings(31, 20, 0.0))]
    full = run_search(validator, candidates, time.monotonic() + 600, False, lambda _: None)
    assert len(full.tried) == 3 and not full.skipped
    assert full.best.mean_auc == max(score.mean_auc for score in full.tried)
    rushed = run_search(validator, candidates, time.monotonic() - 1, False, lambda _: None)
    assert len(rushed.tried) == 1 and len(rushed.skipped) == 2  # the first always runs
    assert rushed.to_dict()["skipped_for_time"][0]["num_leaves"] == 15


def test_cross_fitted_calibration_makes_out_of_fold_probabilities_honest():
    rng = np.random.default_rng(9)
    true_pd = rng.uniform(0.02, 0.4, 20000)
    label = (rng.random(20000) < true_pd).astype(int)
    # A SMOTE-trained model's raw output: right ranking, far too high.
    raw = 1 / (1 + np.exp(-(np.log(true_pd / (1 - true_pd)) + 1.5)))
    folds = rng.integers(0, 5, 20000)
    metrics = cross_fitted_metrics(raw, label, folds).to_dict()
    assert metrics["folds"] == 5
    assert metrics["ece"] < 0.015
    assert metrics["per_fold"][0]["mean_pd"] == pytest.approx(
        metrics["per_fold"][0]["bad_rate"], abs=0.02)


def test_search_settings_are_checked():
    with pytest.raises(ValueError, match="tree_candidates"):
        TrainingConfig(search=SearchSettings(tree_candidates=[]))
    with pytest.raises(ValueError, match="model_type"):
        TrainingConfig(model_type="xgboost")
