"""Back-testing: each model version judged on what became of the loans it decided.

A decision has *matured* when servicing has reported a definite outcome for its loan (bad
or good, by the dataset config's label lists); loans still running are left out. For
each model version: realised AUC and KS, a calibration table (mean predicted PD against
observed bad rate per PD decile, and its expected calibration error), bad rate by risk
grade and by 20-point score band (20 points double the odds on the model's scale), and
approval and bad rate by application month.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SCORE_BAND_POINTS = 20
CALIBRATION_BINS = 10

_MATURED_SQL = """
SELECT d.model_version, d.probability_of_default, d.score, d.risk_grade, d.decision,
       date_trunc('month', d.submitted_at AT TIME ZONE 'UTC') AS month, o.outcome
FROM decisions d LEFT JOIN loan_outcomes o ON o.application_id = d.application_id
"""


@dataclass
class VersionBacktest:
    """The back-test of one model version."""

    model_version: str
    decisions: int
    matured: int
    bad: int
    auc: float | None
    ks: float | None
    calibration_error: float | None
    mean_predicted_pd: float | None
    reference_auc: float | None = None
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_grade: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_band: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_month: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def bad_rate(self) -> float | None:
        return self.bad / self.matured if self.matured else None

    def drift_problems(self, auc_drop: float, calibration_threshold: float,
                       min_matured: int) -> list[str]:
        """What is out of bounds (empty when the model performs as promised)."""
        if self.matured < min_matured:
            return []
        problems = []
        if self.auc is not None and self.reference_auc is not None \
                and self.auc < self.reference_auc - auc_drop:
            problems.append(f"realised AUC {self.auc:.3f} is more than {auc_drop:g} below the "
                            f"{self.reference_auc:.3f} the model card promised")
        if self.calibration_error is not None and self.calibration_error > calibration_threshold:
            problems.append(f"calibration error {self.calibration_error:.3f} is above "
                            f"{calibration_threshold:g} (predicted PD and observed bad rate disagree)")
        return problems


def load_decisions(connection: Any) -> pd.DataFrame:
    """Every ledger decision with its loan's outcome (None while unknown)."""
    rows = connection.execute(_MATURED_SQL).fetchall()
    frame = pd.DataFrame(rows, columns=["model_version", "probability_of_default", "score",
                                        "risk_grade", "decision", "month", "outcome"])
    frame["probability_of_default"] = frame["probability_of_default"].astype(float)
    return frame


def run_backtest(connection: Any, reference_auc: Callable[[str], float | None] = lambda _v: None,
                 ) -> list[VersionBacktest]:
    """The back-test of every model version in the ledger, newest version name last."""
    frame = load_decisions(connection)
    return [backtest_version(str(version), group, reference_auc(str(version)))
            for version, group in frame.groupby("model_version", sort=True)]


def backtest_version(model_version: str, decisions: pd.DataFrame,
                     reference_auc: float | None = None) -> VersionBacktest:
    matured = decisions[decisions["outcome"].isin(["bad", "good"])]
    bad = (matured["outcome"] == "bad").to_numpy(dtype=int)
    predicted = matured["probability_of_default"].to_numpy(dtype=float)
    auc, ks = _auc_ks(bad, predicted)
    calibration = calibration_table(bad, predicted)
    error = (None if calibration.empty else
             float((calibration["count"] * (calibration["predicted_pd"] - calibration["observed_bad_rate"])
                    .abs()).sum() / calibration["count"].sum()))
    return VersionBacktest(
        model_version=model_version, decisions=len(decisions), matured=len(matured),
        bad=int(bad.sum()), auc=auc, ks=ks, calibration_error=error,
        mean_predicted_pd=float(predicted.mean()) if len(predicted) else None,
        reference_auc=reference_auc, calibration=calibration,
        by_grade=_bad_rate_by(matured.assign(bad=bad), "risk_grade"),
        by_band=_by_band(matured.assign(bad=bad)),
        by_month=_by_month(decisions, matured.assign(bad=bad)))


def _auc_ks(bad: np.ndarray, predicted: np.ndarray) -> tuple[float | None, float | None]:
    if len(set(bad.tolist())) < 2:
        return None, None
    from sklearn.metrics import roc_auc_score, roc_curve

    false_positive, true_positive, _ = roc_curve(bad, predicted)
    return float(roc_auc_score(bad, predicted)), float(np.max(true_positive - false_positive))


def calibration_table(bad: np.ndarray, predicted: np.ndarray, bins: int = CALIBRATION_BINS,
                      ) -> pd.DataFrame:
    """Mean predicted PD against observed bad rate per PD quantile bin."""
    if len(predicted) == 0:
        return pd.DataFrame(columns=["bin", "predicted_pd", "observed_bad_rate", "count"])
    ranks = pd.Series(predicted).rank(method="first").to_numpy()
    bin_of = np.minimum((ranks - 1) * bins // len(predicted), bins - 1).astype(int)
    frame = pd.DataFrame({"bin": bin_of + 1, "predicted": predicted, "bad": bad})
    table = frame.groupby("bin").agg(predicted_pd=("predicted", "mean"),
                                     observed_bad_rate=("bad", "mean"), count=("bad", "size"))
    return table.reset_index()


def _bad_rate_by(matured: pd.DataFrame, column: str) -> pd.DataFrame:
    table = matured.groupby(column).agg(matured=("bad", "size"), bad_rate=("bad", "mean"),
                                        predicted_pd=("probability_of_default", "mean"))
    return table.reset_index()


def _by_band(matured: pd.DataFrame) -> pd.DataFrame:
    low = (matured["score"] // SCORE_BAND_POINTS) * SCORE_BAND_POINTS
    table = _bad_rate_by(matured.assign(band_low=low), "band_low")
    table["score_band"] = [f"{int(b)}–{int(b) + SCORE_BAND_POINTS - 1}" for b in table["band_low"]]
    return table[["score_band", "band_low", "matured", "bad_rate", "predicted_pd"]]


def _by_month(decisions: pd.DataFrame, matured: pd.DataFrame) -> pd.DataFrame:
    month = decisions.assign(approved=decisions["decision"] == "approve").groupby("month").agg(
        decisions=("decision", "size"), approval_rate=("approved", "mean"))
    bad = matured.groupby("month").agg(matured=("bad", "size"), bad_rate=("bad", "mean"))
    table = month.join(bad, how="left").reset_index()
    table["matured"] = table["matured"].fillna(0).astype(int)
    table["month"] = pd.to_datetime(table["month"]).dt.strftime("%Y-%m")
    return table


def report_lines(results: list[VersionBacktest]) -> list[str]:
    """The back-test as plain text (the CLI prints it)."""
    if not results:
        return ["the ledger holds no decisions yet"]
    lines = []
    for result in results:
        auc = f"{result.auc:.4f}" if result.auc is not None else "n/a"
        ks = f"{result.ks:.4f}" if result.ks is not None else "n/a"
        ece = f"{result.calibration_error:.4f}" if result.calibration_error is not None else "n/a"
        promised = f" (model card: {result.reference_auc:.4f})" if result.reference_auc else ""
        bad_rate = f"{result.bad_rate:.3f}" if result.bad_rate is not None else "n/a"
        lines += [f"model {result.model_version}: {result.decisions:,} decisions, "
                  f"{result.matured:,} matured, bad rate {bad_rate}",
                  f"  realised AUC {auc}{promised}, KS {ks}, calibration error {ece}"]
        if result.matured:
            lines.append("  calibration (PD decile: predicted → observed, n)")
            lines += [f"    {r['bin']:>2}: {r['predicted_pd']:.3f} → {r['observed_bad_rate']:.3f}  "
                      f"n={r['count']:,}" for r in result.calibration.to_dict("records")]
            lines.append("  bad rate by risk grade: " + ", ".join(
                f"{r['risk_grade']} {r['bad_rate']:.3f} (n={r['matured']:,})"
                for r in result.by_grade.to_dict("records")))
            lines.append("  bad rate by score band: " + ", ".join(
                f"{r['score_band']} {r['bad_rate']:.3f} (n={r['matured']:,})"
                for r in result.by_band.to_dict("records")))
        lines.append("  by month (decisions, approval rate, matured, bad rate): " + "; ".join(
            f"{r['month']} {r['decisions']:,} {r['approval_rate']:.2f} {r['matured']:,} "
            + (f"{r['bad_rate']:.3f}" if r["matured"] else "-") for r in result.by_month.to_dict("records")))
    return lines
