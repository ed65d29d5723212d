"""The warnings a risk analyst gets: each fires on the situation it names, and only then."""

from __future__ import annotations

from dataclasses import replace

import pytest

from training.diagnostics import RunFigures, analyst_warnings, auc_standard_error
from training.training_config import WarningLevels

HEALTHY = RunFigures(
    model_name="smote", model_is_trees=True, trees=180, training_bad_loans=1500,
    training_rows=14000, approval_rate=0.62, approve_below=0.125, decline_at_or_above=0.208,
    test_auc=0.715, test_bad_loans=450, test_good_loans=3700, cv_auc=0.722, cv_auc_std=0.01,
    folds=5, lightgbm_cv_auc=0.722, baseline_cv_auc=0.712, smote_cv_auc=0.720,
    plain_cv_auc=0.722, test_mean_pd=0.108, test_bad_rate=0.109, train_bad_rate=0.105)


def _codes(figures: RunFigures) -> list[str]:
    return [warning.code for warning in analyst_warnings(figures, WarningLevels())]


def test_a_healthy_run_has_no_warning():
    assert _codes(HEALTHY) == []


@pytest.mark.parametrize(("changes", "code"), [
    ({"trees": 1}, "few_trees"),
    ({"approval_rate": 0.999}, "approval_rate"),
    ({"approval_rate": 0.02}, "approval_rate"),
    ({"baseline_cv_auc": 0.73}, "baseline_not_beaten"),
    ({"training_bad_loans": 150}, "few_bad_loans"),
    ({"test_auc": 0.62}, "test_far_from_cv"),
    ({"smote_cv_auc": 0.70}, "smote_costs_ranking"),
    ({"test_mean_pd": 0.09}, "pd_level_off"),
])
def test_each_warning_fires_on_its_situation(changes, code):
    assert _codes(replace(HEALTHY, **changes)) == [code]


def test_the_issue_one_tree_model_gets_every_relevant_warning():
    one_tree = replace(HEALTHY, trees=1, approval_rate=0.999, lightgbm_cv_auc=0.71,
                       baseline_cv_auc=0.733, training_bad_loans=180)
    found = analyst_warnings(one_tree, WarningLevels())
    assert [w.code for w in found] == ["few_trees", "approval_rate", "baseline_not_beaten",
                                       "few_bad_loans"]
    assert "99.9%" in found[1].message and "--model-type baseline" in found[2].message
    assert str(found[0]).startswith("WARNING [few_trees]")


def test_a_test_auc_gap_within_sampling_error_is_not_a_warning():
    # 805 test loans with 98 bad (8k-row file): a 0.06 gap is within twice the error.
    small = replace(HEALTHY, test_auc=0.66, cv_auc=0.72, test_bad_loans=98,
                    test_good_loans=707, cv_auc_std=0.025)
    assert "test_far_from_cv" not in _codes(small)


def test_a_promoted_scorecard_is_not_told_to_promote_the_scorecard():
    scorecard = replace(HEALTHY, model_name="baseline", model_is_trees=False, trees=20,
                        baseline_cv_auc=0.73)
    assert _codes(scorecard) == []


def test_auc_standard_error_shrinks_with_more_loans():
    assert auc_standard_error(0.72, 100, 900) > 2.5 * auc_standard_error(0.72, 1000, 9000)
    assert 0.02 < auc_standard_error(0.72, 100, 900) < 0.04
