"""Warnings a risk analyst needs before trusting a model: printed by the CLI, shown at the
top of the report and kept in model.json ``warnings``. Each has a stable code.

A warning never stops the run: the analyst decides (for instance with ``--model-type
baseline`` or ``--no-promote``). The levels are :class:`training.training_config.WarningLevels`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from training.training_config import WarningLevels


@dataclass(frozen=True)
class AnalystWarning:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"WARNING [{self.code}] {self.message}"


@dataclass(frozen=True)
class RunFigures:
    """What the warnings look at, taken from one training run."""

    model_name: str           # what is promoted, in words
    model_is_trees: bool      # LightGBM (a scorecard has one tree per feature by design)
    trees: int
    training_bad_loans: int
    training_rows: int
    approval_rate: float
    approve_below: float
    decline_at_or_above: float
    test_auc: float
    test_bad_loans: int
    test_good_loans: int
    cv_auc: float
    cv_auc_std: float
    folds: int
    lightgbm_cv_auc: float
    baseline_cv_auc: float
    smote_cv_auc: float | None
    plain_cv_auc: float
    test_mean_pd: float
    test_bad_rate: float
    train_bad_rate: float


def auc_standard_error(auc: float, bad: int, good: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC measured on ``bad`` and ``good`` rows."""
    if bad < 1 or good < 1:
        return float("inf")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (bad - 1) * (q1 - auc * auc)
                + (good - 1) * (q2 - auc * auc)) / (bad * good)
    return math.sqrt(max(variance, 0.0))


def analyst_warnings(figures: RunFigures, levels: WarningLevels) -> list[AnalystWarning]:
    """Every warning that applies to this run, most serious first."""
    found: list[AnalystWarning] = []
    f = figures
    if f.model_is_trees and f.trees < levels.min_trees:
        found.append(AnalystWarning("few_trees", (
            f"the promoted model has only {f.trees} tree(s): cross-validation found almost "
            "nothing to learn. Check the label and the features before using it.")))
    if f.approval_rate > levels.max_approval_rate or f.approval_rate < levels.min_approval_rate:
        found.append(AnalystWarning("approval_rate", (
            f"the policy approves {f.approval_rate:.1%} of the test loans (approve below PD "
            f"{f.approve_below:.4f}, decline from {f.decline_at_or_above:.4f}); outside "
            f"{levels.min_approval_rate:.0%}–{levels.max_approval_rate:.0%} the model barely "
            "decides anything. Revisit the costs (--cost-bad-loan, --cost-rejected-good) or "
            "the model.")))
    if f.model_is_trees and f.lightgbm_cv_auc <= f.baseline_cv_auc:
        found.append(AnalystWarning("baseline_not_beaten", (
            f"LightGBM (CV AUC {f.lightgbm_cv_auc:.4f}) is not better than the baseline "
            f"scorecard (CV AUC {f.baseline_cv_auc:.4f}) on cross-validation. Consider "
            "promoting the scorecard: --model-type baseline.")))
    if f.training_bad_loans < levels.min_bad_loans:
        found.append(AnalystWarning("few_bad_loans", (
            f"only {f.training_bad_loans:,} bad loans in the {f.training_rows:,} training rows "
            f"(fewer than {levels.min_bad_loans}); every figure here is uncertain. Add "
            "resolved loans if you can.")))
    gap = abs(f.test_auc - f.cv_auc)
    noise = math.hypot(auc_standard_error(f.test_auc, f.test_bad_loans, f.test_good_loans),
                       f.cv_auc_std / math.sqrt(max(f.folds, 1)))
    if gap > levels.auc_gap and gap > 2 * noise:
        found.append(AnalystWarning("test_far_from_cv", (
            f"test AUC {f.test_auc:.4f} is {gap:.3f} away from the cross-validation AUC "
            f"{f.cv_auc:.4f} (more than twice the sampling error, {noise:.3f}): the test "
            "period differs from the training period (drift, a policy change, a label "
            "defined differently) or the model does not generalise.")))
    if abs(f.test_mean_pd / max(f.test_bad_rate, 1e-12) - 1) > levels.pd_level_relative:
        found.append(AnalystWarning("pd_level_off", (
            f"on the test loans the mean PD is {f.test_mean_pd:.2%} against an observed bad "
            f"rate of {f.test_bad_rate:.2%} (training period: {f.train_bad_rate:.2%}). The PD "
            "level was calibrated on the training period; when newer loans default more or "
            "less often (or are not all resolved yet), recalibrate on recent outcomes before "
            "relying on PDs and thresholds.")))
    if f.smote_cv_auc is not None and f.plain_cv_auc - f.smote_cv_auc > levels.smote_auc_cost:
        found.append(AnalystWarning("smote_costs_ranking", (
            f"SMOTE lowers the cross-validation AUC to {f.smote_cv_auc:.4f} from "
            f"{f.plain_cv_auc:.4f} even at the best strength tried; --no-smote promotes the "
            "plain model.")))
    return found


def warnings_to_card(found: list[AnalystWarning]) -> list[dict[str, str]]:
    return [warning.to_dict() for warning in found]
