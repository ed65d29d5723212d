"""Fairness by group of a scored frame: the figures a fair-lending review reads, on the
training report's test rows or on the ledger's decisions once their loans have matured.

One row per application with its groups (a column per monitored attribute, named by the
attribute), whether it was approved, its predicted probability of default and, where the
loan has matured, whether it turned out bad (NaN while open). Per group:

- decisions and approval rate, with the adverse impact ratio and parity difference against
  the reference group (:mod:`fairness.stats`, confidence intervals included);
- among matured loans: the realised bad rate of the approved ones, AUC and calibration error
  of the model inside the group, and the **equal-opportunity gap** — the approval rate of the
  loans that turned out good minus the reference group's (fairlearn's true-positive rate with
  "good" as the positive class and "approved" as the positive prediction).

The per-group splits are fairlearn's ``MetricFrame``; a group (or its reference) with fewer
rows than the spec's minimum is listed with its counts only (``judged`` is False).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from fairness.stats import GroupCount, GroupFigures, attribute_figures

# (bad flags, predicted PDs) -> calibration error; each caller passes the definition the rest
# of its report uses, so the fairness section reads like the report around it.
CalibrationError = Callable[[np.ndarray, np.ndarray], float | None]
APPROVED, BAD, PREDICTED = "approved", "bad", "probability_of_default"


@dataclass(frozen=True)
class GroupOutcomes:
    """One group's decisions (``figures``) and, once loans matured, their outcomes."""

    figures: GroupFigures
    matured: int
    matured_bad: int
    approved_matured: int
    approved_bad_rate: float | None
    auc: float | None
    calibration_error: float | None
    good_approval_rate: float | None
    equal_opportunity_gap: float | None

    @property
    def attribute(self) -> str:
        return self.figures.attribute

    @property
    def group(self) -> str:
        return self.figures.group

    @property
    def judged(self) -> bool:
        return self.figures.judged

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures (for the model card and the console)."""
        figures = self.figures

        def interval(value: object) -> list[float] | None:
            return None if value is None else [value.value, value.low, value.high]  # type: ignore[attr-defined]
        return {"attribute": figures.attribute, "group": figures.group,
                "reference": figures.reference, "judged": figures.judged,
                "decisions": figures.decisions, "approved": figures.approved,
                "approval_rate": interval(figures.approval_rate),
                "adverse_impact_ratio": interval(figures.adverse_impact_ratio),
                "parity_difference": interval(figures.parity_difference),
                "matured": self.matured, "matured_bad": self.matured_bad,
                "approved_matured": self.approved_matured,
                "approved_bad_rate": self.approved_bad_rate, "auc": self.auc,
                "calibration_error": self.calibration_error,
                "good_approval_rate": self.good_approval_rate,
                "equal_opportunity_gap": self.equal_opportunity_gap}


def outcomes_by_group(frame: pd.DataFrame, spec: MonitoringSpec,
                      calibration_error: CalibrationError) -> list[GroupOutcomes]:
    """Every monitored attribute's groups in ``frame`` (columns: one per attribute name,
    ``approved``, ``probability_of_default``, ``bad``); an attribute whose column is absent
    counts every row as ``unknown``."""
    missing = [column for column in (APPROVED, PREDICTED, BAD) if column not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks the columns {missing} (needs one row per decision "
                         f"with {APPROVED}, {PREDICTED} and {BAD})")
    results: list[GroupOutcomes] = []
    for attribute in spec.attributes:
        groups = (frame[attribute.name].fillna(UNKNOWN).astype(str)
                  if attribute.name in frame.columns
                  else pd.Series(UNKNOWN, index=frame.index))
        groups = groups.where(groups.isin(attribute.groups), UNKNOWN)
        results += _attribute_outcomes(attribute, frame, groups, spec, calibration_error)
    return results


def _attribute_outcomes(attribute: MonitoredAttribute, frame: pd.DataFrame, groups: pd.Series,
                        spec: MonitoringSpec, calibration_error: CalibrationError
                        ) -> list[GroupOutcomes]:
    approved = frame[APPROVED].astype(bool).to_numpy()
    counts = {str(group): GroupCount(len(rows), int(approved[rows].sum()))
              for group, rows in groups.groupby(groups).indices.items()}
    figures = attribute_figures(attribute, counts, spec.min_group_size, spec.confidence)
    matured = frame[BAD].notna().to_numpy()
    by_group = _matured_metrics(frame.loc[matured], groups[matured], calibration_error)
    reference_rate = by_group.get(attribute.reference, {}).get("good_approval_rate")
    outcomes = []
    for figure in figures:
        metrics = by_group.get(figure.group, {}) if figure.judged else {}
        good_rate = metrics.get("good_approval_rate")
        gap = (None if good_rate is None or reference_rate is None
               or figure.group == attribute.reference else good_rate - reference_rate)
        in_group = (groups == figure.group).to_numpy()
        outcomes.append(GroupOutcomes(
            figure, matured=int((matured & in_group).sum()),
            matured_bad=int(frame[BAD].to_numpy()[matured & in_group].sum()),
            approved_matured=int((matured & in_group & approved).sum()),
            approved_bad_rate=metrics.get("approved_bad_rate"), auc=metrics.get("auc"),
            calibration_error=metrics.get("calibration_error"),
            good_approval_rate=good_rate, equal_opportunity_gap=gap))
    return outcomes


def _matured_metrics(matured: pd.DataFrame, groups: pd.Series,
                     calibration_error: CalibrationError) -> dict[str, dict[str, float | None]]:
    """fairlearn MetricFrame over the matured loans: group -> metric -> value (None where a
    group has no loans of the kind a metric needs)."""
    if matured.empty:
        return {}
    from fairlearn.metrics import MetricFrame, true_positive_rate

    bad = matured[BAD].to_numpy(dtype=float)
    approved = matured[APPROVED].astype(bool).to_numpy().astype(int)
    predicted = matured[PREDICTED].to_numpy(dtype=float)

    def approved_bad_rate(y_bad: np.ndarray, y_approved: np.ndarray) -> float:
        chosen = y_approved == 1
        return float(y_bad[chosen].mean()) if chosen.any() else float("nan")

    def good_approval_rate(y_bad: np.ndarray, y_approved: np.ndarray) -> float:
        good = 1 - y_bad.astype(int)
        if not good.any():
            return float("nan")
        return float(true_positive_rate(good, y_approved, pos_label=1))

    def auc(y_bad: np.ndarray, y_pd: np.ndarray) -> float:
        from sklearn.metrics import roc_auc_score
        if len(np.unique(y_bad)) < 2:
            return float("nan")
        return float(roc_auc_score(y_bad, y_pd))

    def calibration(y_bad: np.ndarray, y_pd: np.ndarray) -> float:
        error = calibration_error(y_bad, y_pd)
        return float("nan") if error is None else float(error)

    decisions = MetricFrame(metrics={"approved_bad_rate": approved_bad_rate,
                                     "good_approval_rate": good_approval_rate},
                            y_true=bad, y_pred=approved, sensitive_features=groups.to_numpy())
    scores = MetricFrame(metrics={"auc": auc, "calibration_error": calibration},
                         y_true=bad, y_pred=predicted, sensitive_features=groups.to_numpy())
    table = pd.concat([decisions.by_group, scores.by_group], axis=1)
    return {str(group): {name: (None if pd.isna(value) else float(value))
                         for name, value in row.items()}
            for group, row in table.iterrows()}
