"""The cross-validated search: trees chosen on the mean of the folds, SMOTE kept inside each
fold's training part, out-of-fold predictions for calibration, and the time budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from training.training_config import SearchSettings, SmoteSettings, TrainingConfig, TreeSettings
from training.tuning import (
    Candidate,
    CandidateScore,
    CrossValidator,
    chosen_trees,
    cross_fitted_metrics,
    cross_fitted_probabilities,
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
    assert score.trees >= 50
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


def test_trees_are_chosen_on_the_smoothed_curve_never_on_one_noisy_round():
    rng = np.random.default_rng(3)
    # Flat and noisy, with a lucky spike at the 9th tree and a real, broad peak near 400.
    rounds = np.arange(1, 801)
    curve = 0.70 + 0.02 * np.exp(-((rounds - 400) / 150.0) ** 2) + rng.normal(0, 0.002, 800)
    curve[8] = 0.80
    trees = chosen_trees(curve.tolist(), smoothing=25, floor=50)
    assert 300 <= trees <= 500
    # A curve that only falls still keeps the floor, and never more trees than were grown.
    assert chosen_trees(np.linspace(0.7, 0.6, 300).tolist(), 25, 50) == 50
    assert chosen_trees([0.7] * 30, 9, 50) == 30


def test_a_small_file_gets_the_small_file_search():
    config = TrainingConfig()
    assert config.for_bad_loans(5000, 0.11) is config  # many bad loans: unchanged
    small = config.for_bad_loans(300, 0.05)
    assert small.small_file_search
    assert small.lightgbm.learning_rate == 0.02 and small.lightgbm.feature_fraction == 0.5
    assert small.lightgbm.bagging_fraction < 1 and small.lightgbm.min_trees == 50
    assert small.search.cv_repeats == 3
    # Leaves hold at least five bad loans on average: 100 rows at 5 % bad, 250 at 2 %.
    assert {t.min_child_samples for t in small.search.tree_candidates} >= {100}
    assert min(t.min_child_samples for t in small.search.tree_candidates) == 100
    assert min(t.min_child_samples for t in
               config.for_bad_loans(300, 0.02).search.tree_candidates) == 250
    # A light SMOTE target is tried first, and a quick search stays quick.
    assert small.search.smote_oversampling_factors[0] == 1.1
    quick = TrainingConfig(search=SearchSettings(tree_candidates=[TreeSettings(15, 100, 5.0)],
                                                 smote_oversampling_factors=(1.5,),
                                                 smote_k_neighbors=(5,)))
    quick_small = quick.for_bad_loans(300, 0.05).search
    assert len(quick_small.tree_candidates) == 1
    assert quick_small.smote_oversampling_factors == (1.1,)
    short = TrainingConfig(search=SearchSettings(budget_seconds=30)).for_bad_loans(300, 0.05)
    assert short.search.cv_repeats == 1  # a short search does not repeat its folds


def test_repeated_folds_predict_every_row_out_of_fold_in_each_repeat():
    from sklearn.metrics import roc_auc_score

    validator = _validator(1500, 4, search=SearchSettings(cv_repeats=2))
    assert len(validator.folds) == 10
    for repeat in range(2):
        covered = np.sort(np.concatenate([valid for _, valid in
                                          validator.folds[repeat * 5:(repeat + 1) * 5]]))
        np.testing.assert_array_equal(covered, np.arange(1500))
    score = validator.score(Candidate(TreeSettings(7, 50, 5.0)))
    assert len(score.fold_aucs) == 10
    # The standard error is one 5-fold pass's: repeats of the same rows do not shrink it.
    assert score.auc_se == pytest.approx(score.auc_std / np.sqrt(5))
    assert roc_auc_score(validator.label, score.out_of_fold) == pytest.approx(score.mean_auc,
                                                                              abs=0.03)


def test_the_fixed_reference_keeps_all_its_trees():
    from training.training_config import LightGBMSettings

    validator = _validator(1500, 5)
    reference = TrainingConfig().reference
    assert isinstance(reference, LightGBMSettings)
    assert (reference.learning_rate, reference.trees.num_leaves,
            reference.trees.min_child_samples, reference.feature_fraction,
            reference.max_rounds) == (0.02, 15, 100, 0.5, 300)
    score = validator.score_fixed(Candidate(reference.trees), reference)
    assert score.trees == 300
    calibrated = cross_fitted_probabilities(score.out_of_fold, validator.label,
                                            validator.fold_of_row)
    assert abs(calibrated.mean() - validator.label.mean()) < 0.01


class _Scripted:
    """A validator whose candidates score as scripted (mean AUC, fold AUCs)."""

    def __init__(self, scores: dict[float | None, tuple[float, float]]) -> None:
        self.scores = scores

    def score(self, candidate: Candidate, progress: bool = False) -> CandidateScore:
        key = candidate.smote.sampling_strategy if candidate.smote else None
        mean, spread = self.scores[key]
        folds = [mean - spread, mean + spread] * 2 + [mean]
        return CandidateScore(candidate, 100, mean, folds, 0.0, np.zeros(1), 0, 5)


def test_smote_strength_costs_at_most_one_standard_error_against_no_resampling():
    trees = TreeSettings(15, 100, 5.0)
    validator = _Scripted({None: (0.750, 0.02), 0.2: (0.749, 0.02), 0.5: (0.740, 0.02),
                           1.0: (0.700, 0.02)})
    plain = validator.score(Candidate(trees))
    candidates = [Candidate(trees, SmoteSettings(r, 5)) for r in (1.0, 0.5, 0.2)]
    result = run_search(validator, candidates, time.monotonic() + 60, False,  # type: ignore[arg-type]
                        lambda _: None, against=plain)
    assert plain.mean_auc - result.best.mean_auc <= plain.auc_se
    assert result.best.candidate.smote == SmoteSettings(0.2, 5)
    assert "one CV standard error" in result.to_dict()["rule"]


def test_a_later_tree_candidate_needs_to_beat_the_first_by_more_than_noise():
    first, second = TreeSettings(15, 100, 5.0), TreeSettings(7, 100, 5.0)

    class ByTrees(_Scripted):
        def score(self, candidate: Candidate, progress: bool = False) -> CandidateScore:
            mean = 0.740 if candidate.trees == first else self.scores[None][0]
            return CandidateScore(candidate, 100, mean, [mean - 0.02, mean + 0.02] * 2 + [mean],
                                  0.0, np.zeros(1), 0, 5)

    def best(second_auc: float) -> TreeSettings:
        return run_search(ByTrees({None: (second_auc, 0.0)}),  # type: ignore[arg-type]
                          [Candidate(first), Candidate(second)], time.monotonic() + 60, False,
                          lambda _: None, switch_margin_se=0.5).best.candidate.trees

    assert best(0.742) == first   # within half a standard error (~0.004): noise
    assert best(0.750) == second
