"""The run's warning when the search's LightGBM ranks below the fixed regularised reference
by more than the CV standard error (on the same folds for small files, on the test set
otherwise)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from training.evaluate import BinaryMetrics, summarize_folds
from training.pipeline import ReferenceFigures, _reference_warning
from training.training_config import TreeSettings
from training.tuning import Candidate, CandidateScore, SearchResult


def _metrics(auc: float) -> BinaryMetrics:
    return BinaryMetrics(auc, 0.3, 2 * auc - 1, 0.09, 0.01, 0.05, 0.05, 1000)


def _run(search_auc: float, reference_auc: float, cross_validated: bool,
         spread: float = 0.02) -> SimpleNamespace:
    folds = [search_auc - spread, search_auc + spread] * 2 + [search_auc]
    best = CandidateScore(Candidate(TreeSettings(15, 100, 5.0)), 200, search_auc, folds, 1.0,
                          np.zeros(1), 0, 5)
    reference = ReferenceFigures(
        {}, 300, _metrics(reference_auc), "out_of_fold" if cross_validated else "holdout", 1000,
        summarize_folds([_metrics(reference_auc)] * 5) if cross_validated else None)
    comparison = {"smote": SimpleNamespace(calibrated=_metrics(search_auc))}
    return SimpleNamespace(reference=reference, searches={"smote": SearchResult(best, [best], [])},
                           comparison=comparison)


def test_a_choice_below_the_reference_by_more_than_its_standard_error_is_flagged():
    # Standard error here: std of the folds (~0.018) / sqrt(5) ≈ 0.008.
    warned = _reference_warning(_run(0.720, 0.735, cross_validated=True), "smote")  # type: ignore[arg-type]
    assert [w.code for w in warned] == ["below_reference"]
    assert "0.7200" in warned[0].message and "0.7350" in warned[0].message
    assert "cross-validation AUC" in warned[0].message


def test_a_choice_within_noise_of_the_reference_or_above_it_is_not():
    assert _reference_warning(_run(0.730, 0.735, True), "smote") == []  # type: ignore[arg-type]
    assert _reference_warning(_run(0.745, 0.735, True), "smote") == []  # type: ignore[arg-type]


def test_without_a_cross_validated_reference_the_test_aucs_are_compared():
    warned = _reference_warning(_run(0.700, 0.735, cross_validated=False), "smote")  # type: ignore[arg-type]
    assert [w.code for w in warned] == ["below_reference"] and "test AUC" in warned[0].message
