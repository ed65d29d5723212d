"""Model quality: discrimination (AUC, KS, Gini), probability quality (Brier, expected
calibration error) and what the decision thresholds do to a loan book."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from config.json_types import JSONObject
from onnx_models.policy import decide


@dataclass
class BinaryMetrics:
    """Metrics of probabilities of default against the observed bad flag."""

    auc: float
    ks: float
    gini: float
    brier: float
    ece: float
    mean_pd: float
    bad_rate: float
    rows: int

    def to_dict(self) -> JSONObject:
        return asdict(self)


def ks_statistic(label: np.ndarray, probability: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of bad and good."""
    from sklearn.metrics import roc_curve

    false_positive_rate, true_positive_rate, _ = roc_curve(label, probability)
    return float(np.max(true_positive_rate - false_positive_rate))


def expected_calibration_error(label: np.ndarray, probability: np.ndarray,
                               bins: int = 10) -> float:
    """Row-weighted mean |mean predicted PD − observed bad rate| over equal-width PD bins."""
    label = np.asarray(label, dtype=np.float64)
    probability = np.asarray(probability, dtype=np.float64)
    bin_index = np.minimum((probability * bins).astype(int), bins - 1)
    error = 0.0
    for index in np.unique(bin_index):
        in_bin = bin_index == index
        error += in_bin.mean() * abs(probability[in_bin].mean() - label[in_bin].mean())
    return float(error)


def evaluate_probabilities(label: np.ndarray, probability: np.ndarray,
                           bins: int = 10) -> BinaryMetrics:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    label = np.asarray(label)
    auc = float(roc_auc_score(label, probability))
    return BinaryMetrics(
        auc=auc, ks=ks_statistic(label, probability), gini=2.0 * auc - 1.0,
        brier=float(brier_score_loss(label, probability)),
        ece=expected_calibration_error(label, probability, bins),
        mean_pd=float(np.mean(probability)), bad_rate=float(np.mean(label)),
        rows=len(label))


SUMMARIZED_METRICS = ("auc", "ks", "gini", "brier", "ece")


@dataclass(frozen=True)
class FoldSummary:
    """Metrics of each cross-validation fold, with their mean and standard deviation."""

    folds: tuple[BinaryMetrics, ...]

    def mean(self, name: str) -> float:
        return float(self._values(name).mean())

    def std(self, name: str) -> float:
        values = self._values(name)
        return float(values.std(ddof=1)) if len(values) > 1 else 0.0

    @property
    def auc(self) -> float:
        return self.mean("auc")

    @property
    def auc_std(self) -> float:
        return self.std("auc")

    def to_dict(self) -> JSONObject:
        """model.json form: ``folds``, each metric's mean and ``<metric>_std``, ``per_fold``."""
        summary: JSONObject = {"folds": len(self.folds)}
        for name in SUMMARIZED_METRICS:
            summary[name] = self.mean(name)
            summary[f"{name}_std"] = self.std(name)
        summary["per_fold"] = [fold.to_dict() for fold in self.folds]
        return summary

    def _values(self, name: str) -> np.ndarray:
        return np.array([getattr(fold, name) for fold in self.folds])


def summarize_folds(folds: Sequence[BinaryMetrics]) -> FoldSummary:
    """Mean and standard deviation across CV folds, per metric."""
    return FoldSummary(tuple(folds))


class DecisionOutcomes(TypedDict):
    """What the thresholds do on a labelled set (model.json ``decisions_at_thresholds``)."""

    approval_rate: float
    review_rate: float
    decline_rate: float
    bad_rate_among_approved: float
    bad_rate_among_not_declined: float
    bad_rate_overall: float
    by_decision: dict[str, dict[str, int]]    # decision -> {"good": n, "bad": n}
    confusion_matrix: dict[str, int]
    rows: int


def decision_outcomes(label: np.ndarray, probability_of_default: np.ndarray,
                      thresholds: Mapping[str, object]) -> DecisionOutcomes:
    """Approval / review / decline rates, bad rate among approved, and confusion counts.

    The confusion matrix treats 'decline' as predicting bad; 'review' is shown apart since
    a person decides those.
    """
    label = np.asarray(label).astype(int)
    outcome = decide(probability_of_default, thresholds)
    rows = len(label)
    table = {decision: {"good": int(np.sum((outcome == decision) & (label == 0))),
                        "bad": int(np.sum((outcome == decision) & (label == 1)))}
             for decision in ("approve", "review", "decline")}
    approved = outcome == "approve"
    not_declined = outcome != "decline"
    return {
        "approval_rate": float(approved.mean()),
        "review_rate": float((outcome == "review").mean()),
        "decline_rate": float((outcome == "decline").mean()),
        "bad_rate_among_approved": float(label[approved].mean()) if approved.any() else 0.0,
        "bad_rate_among_not_declined": float(label[not_declined].mean())
        if not_declined.any() else 0.0,
        "bad_rate_overall": float(label.mean()),
        "by_decision": table,
        "confusion_matrix": {
            "true_negative": table["approve"]["good"] + table["review"]["good"],
            "false_positive": table["decline"]["good"],
            "false_negative": table["approve"]["bad"] + table["review"]["bad"],
            "true_positive": table["decline"]["bad"],
        },
        "rows": rows,
    }


def evaluate_registered_model(labelled: pd.DataFrame, application_ids: Collection[str], registry_dir: Path,
                              version: str) -> BinaryMetrics:
    """Training's own evaluation of a registered model on the labelled rows of these
    applications (its encoder, its ONNX graph and calibration): what a back-test of the same
    loans in the ledger should find."""
    from onnx_models.registry import Registry
    from training.label import LABEL_COLUMN

    wanted = {str(application_id) for application_id in application_ids}
    rows = labelled[labelled["application_id"].astype(str).isin(wanted)]
    model = Registry(registry_dir).load(version)
    probability = model.probability_of_default(model.encoder().transform(rows))
    return evaluate_probabilities(rows[LABEL_COLUMN].to_numpy(), np.asarray(probability))
