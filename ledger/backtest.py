"""Back-testing: each model version judged on what became of the loans it decided.

A decision has *matured* when servicing has reported a definite outcome for its loan (bad
or good) in the portfolio of the model that decided it: outcomes are matched by portfolio
and application id (an outcome that names no portfolio counts for whichever model decided
the application), and classed by the deciding model card's outcome lists (see
:mod:`ledger.cards`), so each model is judged on its own book. Loans still running are left
out. For each model version: realised AUC, KS and calibration error, each with a 95 %
confidence interval and the number of matured loans it rests on, beside the AUC its card
measured on its own test set (with that interval and count too); a calibration table (mean
predicted PD against observed bad rate per PD decile), bad rate by risk grade and by
20-point score band (20 points double the odds on the model's scale), and approval and bad
rate by application month.

The intervals: AUC by Hanley and McNeil's standard error (1982), which needs only the AUC and
the numbers of bad and good loans, so the card's test AUC gets one too; KS and calibration
error by a percentile bootstrap of the matured loans with a fixed seed (the same ledger
always shows the same interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from ledger.cards import CardTest, OutcomeLabels

if TYPE_CHECKING:
    from ledger.store import Ledger

SCORE_BAND_POINTS = 20
CALIBRATION_BINS = 10
CONFIDENCE_Z = 1.959964  # two-sided 95 %
BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 20_261_203

_DECISIONS_SQL = """
WITH portfolios (model_version, portfolio) AS (SELECT * FROM unnest(%s::text[], %s::text[]))
SELECT d.model_version, d.probability_of_default, d.score, d.risk_grade, d.decision,
       date_trunc('month', d.submitted_at AT TIME ZONE 'UTC') AS month, o.loan_status, o.outcome
       {extra}
FROM decisions d JOIN portfolios p USING (model_version)
LEFT JOIN LATERAL (
    SELECT loan_status, outcome FROM loan_outcomes
    WHERE application_id = d.application_id AND portfolio IN (p.portfolio, '')
    ORDER BY portfolio DESC LIMIT 1) o ON true
"""
_COLUMNS = ["model_version", "probability_of_default", "score", "risk_grade", "decision", "month",
            "loan_status", "outcome"]
# Further decision columns a caller may ask for (the fairness back-test reads the groups and
# when each decision was made).
EXTRA_COLUMNS = ("decided_at", "monitoring_groups")


class ModelCards(Protocol):
    """What the back-test asks of the model cards (:class:`ledger.cards.RegistryCards`)."""

    def portfolio(self, version: str) -> str: ...

    def card_test(self, version: str) -> CardTest | None: ...

    def version_labels(self, version: str) -> OutcomeLabels: ...


class NoCards:
    """No registry: outcomes that name no portfolio, as the writer classed them."""

    def portfolio(self, version: str) -> str:
        return ""

    def card_test(self, version: str) -> CardTest | None:
        return None

    def version_labels(self, version: str) -> OutcomeLabels:
        return OutcomeLabels()


@dataclass(frozen=True)
class Estimate:
    """A measured figure with its 95 % confidence interval and the count it rests on."""

    value: float
    low: float | None
    high: float | None
    count: int | None

    def text(self, digits: int = 3) -> str:
        """'0.712 [0.681, 0.743]' (the value alone when there is no interval)."""
        shown = f"{self.value:.{digits}f}"
        if self.low is None or self.high is None:
            return shown
        return f"{shown} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def counted(self, what: str, digits: int = 3) -> str:
        """'0.712 [0.681, 0.743] on 975 matured loans'."""
        count = f" on {self.count:,} {what}" if self.count is not None else ""
        return self.text(digits) + count


def auc_standard_error(auc: float, bad: int, good: int) -> float:
    """Hanley and McNeil's standard error of an AUC from ``bad`` and ``good`` cases."""
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (auc * (1.0 - auc) + (bad - 1) * (q1 - auc * auc)
                + (good - 1) * (q2 - auc * auc)) / (bad * good)
    return math.sqrt(max(variance, 0.0))


def auc_estimate(auc: float, bad: int | None, good: int | None) -> Estimate:
    """The AUC with its Hanley-McNeil interval (none without both classes counted)."""
    if not bad or not good:
        return Estimate(auc, None, None, None if bad is None or good is None else bad + good)
    error = CONFIDENCE_Z * auc_standard_error(auc, bad, good)
    return Estimate(auc, max(auc - error, 0.0), min(auc + error, 1.0), bad + good)


def bootstrap_estimate(statistic: Callable[[np.ndarray, np.ndarray], float | None],
                       bad: np.ndarray, predicted: np.ndarray,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                       ) -> Estimate | None:
    """The statistic of the loans with a percentile-bootstrap 95 % interval."""
    value = statistic(bad, predicted)
    if value is None:
        return None
    generator = np.random.default_rng(seed)
    replicates = []
    for _ in range(resamples):
        picked = generator.integers(0, len(bad), len(bad))
        replicate = statistic(bad[picked], predicted[picked])
        if replicate is not None:
            replicates.append(replicate)
    if len(replicates) < resamples // 2:
        return Estimate(value, None, None, len(bad))
    low, high = np.quantile(replicates, [0.025, 0.975])
    return Estimate(value, float(low), float(high), len(bad))


def ks_statistic(bad: np.ndarray, predicted: np.ndarray) -> float | None:
    """The largest gap between the cumulative PD distributions of good and bad loans (the
    largest true-positive minus false-positive rate over the PD thresholds)."""
    bads, goods = int(bad.sum()), int(len(bad) - bad.sum())
    if not bads or not goods:
        return None
    order = np.argsort(predicted, kind="mergesort")
    ranked, flags = predicted[order], bad[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    bad_share = np.cumsum(flags)[last_of_tie] / bads
    good_share = np.cumsum(1 - flags)[last_of_tie] / goods
    return float(np.max(np.r_[0.0, good_share - bad_share]))


def calibration_error(bad: np.ndarray, predicted: np.ndarray, bins: int = CALIBRATION_BINS,
                      ) -> float | None:
    """Expected calibration error: loan-weighted mean |mean predicted PD − observed bad rate|
    over PD deciles (the calibration table's bins)."""
    if len(predicted) == 0:
        return None
    order = np.argsort(predicted, kind="mergesort")
    bin_of = np.empty(len(predicted), dtype=int)
    bin_of[order] = np.minimum(np.arange(len(predicted)) * bins // len(predicted), bins - 1)
    counts = np.bincount(bin_of, minlength=bins)
    filled = counts > 0
    predicted_mean = np.bincount(bin_of, weights=predicted, minlength=bins)[filled] / counts[filled]
    observed = np.bincount(bin_of, weights=bad, minlength=bins)[filled] / counts[filled]
    return float((counts[filled] * np.abs(predicted_mean - observed)).sum() / counts.sum())


@dataclass
class VersionBacktest:
    """The back-test of one model version."""

    model_version: str
    decisions: int
    matured: int
    bad: int
    auc: Estimate | None
    ks: Estimate | None
    calibration_error: Estimate | None
    mean_predicted_pd: float | None
    portfolio: str = ""
    reference_auc: Estimate | None = None  # the card's test AUC
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_grade: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_band: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_month: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def bad_rate(self) -> float | None:
        return self.bad / self.matured if self.matured else None

    def comparison(self) -> str:
        """'realised AUC 0.712 [0.68, 0.74] on 975 matured loans; model card test AUC …'."""
        realised = ("realised AUC n/a" if self.auc is None else
                    f"realised AUC {self.auc.counted('matured loans')}")
        if self.reference_auc is None:
            return realised
        return f"{realised}; model card test AUC {self.reference_auc.counted('test loans')}"

    def drift_problems(self, auc_drop: float, calibration_threshold: float,
                       min_matured: int) -> list[str]:
        """What is out of bounds (empty when the model performs as promised)."""
        if self.matured < min_matured:
            return []
        problems = []
        if self.auc is not None and self.reference_auc is not None \
                and self.auc.value < self.reference_auc.value - auc_drop:
            problems.append(f"realised AUC {self.auc.counted('matured loans')} is more than "
                            f"{auc_drop:g} below the {self.reference_auc.value:.3f} the model card "
                            "promised")
        if self.calibration_error is not None and self.calibration_error.value > calibration_threshold:
            problems.append(f"calibration error {self.calibration_error.counted('matured loans')} "
                            f"is above {calibration_threshold:g} (predicted PD and observed bad "
                            "rate disagree)")
        return problems


def load_decisions(connection: Ledger, cards: ModelCards, versions: Sequence[str] | None = None,
                   extra: Sequence[str] = ()) -> pd.DataFrame:
    """Every ledger decision (of ``versions``, default all) with its loan's outcome in the
    deciding model's portfolio (``outcome`` None while servicing has reported none), classed
    by that model's card; ``extra`` adds columns of ``EXTRA_COLUMNS``."""
    unknown = sorted(set(extra) - set(EXTRA_COLUMNS))
    if unknown:
        raise ValueError(f"load_decisions: {unknown} are not among {EXTRA_COLUMNS}")
    if versions is None:
        versions = [str(row[0]) for row in
                    connection.execute("SELECT DISTINCT model_version FROM decisions").fetchall()]
    portfolios = [cards.portfolio(version) for version in versions]
    query = _DECISIONS_SQL.format(extra="".join(f", d.{column}" for column in extra))
    rows = connection.execute(query, (list(versions), portfolios)).fetchall()
    frame = pd.DataFrame(rows, columns=[*_COLUMNS, *extra])
    frame["probability_of_default"] = frame["probability_of_default"].astype(float)
    for version, group in frame.groupby("model_version"):
        labels = cards.version_labels(str(version))
        if labels.recorded:
            statuses = group["loan_status"].dropna().unique()
            classes = {status: labels.classify(str(status)) for status in statuses}
            frame.loc[group.index, "outcome"] = group["loan_status"].map(classes)
    return frame


def run_backtest(connection: Ledger, cards: ModelCards | None = None) -> list[VersionBacktest]:
    """The back-test of every model version in the ledger, newest version name last."""
    cards = cards or NoCards()
    frame = load_decisions(connection, cards)
    results = []
    for version, group in frame.groupby("model_version", sort=True):
        name = str(version)
        test = cards.card_test(name)
        reference = (None if test is None else
                     auc_estimate(test.auc, test.bad,
                                  None if test.rows is None or test.bad is None
                                  else test.rows - test.bad))
        results.append(backtest_version(name, group, reference, cards.portfolio(name)))
    return results


def backtest_version(model_version: str, decisions: pd.DataFrame,
                     reference_auc: Estimate | None = None, portfolio: str = "") -> VersionBacktest:
    matured = decisions[decisions["outcome"].isin(["bad", "good"])]
    bad = (matured["outcome"] == "bad").to_numpy(dtype=int)
    predicted = matured["probability_of_default"].to_numpy(dtype=float)
    return VersionBacktest(
        model_version=model_version, decisions=len(decisions), matured=len(matured),
        bad=int(bad.sum()), auc=_auc(bad, predicted),
        ks=bootstrap_estimate(ks_statistic, bad, predicted),
        calibration_error=bootstrap_estimate(calibration_error, bad, predicted),
        mean_predicted_pd=float(predicted.mean()) if len(predicted) else None,
        portfolio=portfolio, reference_auc=reference_auc,
        calibration=calibration_table(bad, predicted),
        by_grade=_bad_rate_by(matured.assign(bad=bad), "risk_grade"),
        by_band=_by_band(matured.assign(bad=bad)),
        by_month=_by_month(decisions, matured.assign(bad=bad)))


def _auc(bad: np.ndarray, predicted: np.ndarray) -> Estimate | None:
    bads = int(bad.sum())
    if bads == 0 or bads == len(bad):
        return None
    from sklearn.metrics import roc_auc_score

    return auc_estimate(float(roc_auc_score(bad, predicted)), bads, len(bad) - bads)


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
    """The back-test as plain text (the CLI prints it); every realised figure with its 95 %
    confidence interval and the number of matured loans it rests on."""
    if not results:
        return ["the ledger holds no decisions yet"]
    lines = []
    for result in results:
        bad_rate = f"{result.bad_rate:.3f}" if result.bad_rate is not None else "n/a"
        ks = "n/a" if result.ks is None else result.ks.text()
        ece = "n/a" if result.calibration_error is None else result.calibration_error.text()
        portfolio = f" (portfolio {result.portfolio})" if result.portfolio else ""
        lines += [f"model {result.model_version}{portfolio}: {result.decisions:,} decisions, "
                  f"{result.matured:,} matured, bad rate {bad_rate}",
                  f"  {result.comparison()}",
                  f"  KS {ks}, calibration error {ece} (95 % intervals, {result.matured:,} "
                  "matured loans)"]
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


# -- approvals by who made them ----------------------------------------------------------
# Each application's current final decision, if an approval, with who made it and what
# became of the loan (an outcome of the named portfolio before one that names none).
_APPROVALS_SQL = """
SELECT CASE WHEN c.revision > 1 THEN 'override' WHEN c.decided_by = 'model' THEN 'model'
            ELSE 'reviewer' END AS approved_by, o.outcome
FROM (SELECT DISTINCT ON (application_id) application_id, revision, decided_by, final_decision
      FROM final_decisions ORDER BY application_id, revision DESC) c
LEFT JOIN LATERAL (
    SELECT outcome FROM loan_outcomes WHERE application_id = c.application_id
    ORDER BY portfolio DESC LIMIT 1) o ON true
WHERE c.final_decision = 'approve'
"""
APPROVERS = {"model": "the model's own approvals",
             "people": "overridden approvals (a reviewer's, or an approved override)",
             "reviewer": "  of which reviewers' approvals of review items",
             "override": "  of which approved overrides of a decline"}


@dataclass(frozen=True)
class ApprovalBadRate:
    """The bad rate of the loans one kind of approver approved."""

    approved_by: str   # model, people (reviewer + override), reviewer or override
    approvals: int
    matured: int
    bad: int
    bad_rate: Estimate | None  # None until an approved loan has matured

    def text(self) -> str:
        rate = ("bad rate n/a (no matured loan yet)" if self.bad_rate is None else
                f"bad rate {self.bad_rate.counted('matured loans')}")
        return f"{APPROVERS[self.approved_by]}: {rate}, of {self.approvals:,} approved"


def proportion_estimate(successes: int, count: int) -> Estimate | None:
    """A share with its Wilson score 95 % interval (sound for small counts and for 0 or
    all, where the normal approximation collapses to a point)."""
    if count <= 0:
        return None
    share, z2 = successes / count, CONFIDENCE_Z * CONFIDENCE_Z
    centre = (share + z2 / (2 * count)) / (1 + z2 / count)
    half = CONFIDENCE_Z * math.sqrt(share * (1 - share) / count + z2 / (4 * count * count)) \
        / (1 + z2 / count)
    return Estimate(share, max(centre - half, 0.0), min(centre + half, 1.0), count)


def approval_bad_rates(approvals: pd.DataFrame) -> list[ApprovalBadRate]:
    """Bad rate of the model's own approvals beside the overridden ones (``approved_by``:
    model, reviewer or override; ``outcome``: bad, good, open, unknown or None)."""
    groups = {"model": ["model"], "people": ["reviewer", "override"], "reviewer": ["reviewer"],
              "override": ["override"]}
    rates = []
    for name, kinds in groups.items():
        mine = approvals[approvals["approved_by"].isin(kinds)]
        matured = mine[mine["outcome"].isin(["bad", "good"])]
        bad = int((matured["outcome"] == "bad").sum())
        rates.append(ApprovalBadRate(name, len(mine), len(matured), bad,
                                     proportion_estimate(bad, len(matured))))
    return rates


def load_approvals(connection: Ledger) -> pd.DataFrame:
    """Every application whose current final decision is an approval: who approved it, and
    its loan's outcome (None while servicing has reported none)."""
    rows = connection.execute(_APPROVALS_SQL).fetchall()
    return pd.DataFrame(rows, columns=["approved_by", "outcome"])


def approval_report_lines(rates: list[ApprovalBadRate]) -> list[str]:
    """The approvals' bad rates as plain text (``creditrisk monitor`` prints them)."""
    if not any(rate.approvals for rate in rates):
        return ["final decisions: no approval yet"]
    return ["final approvals by who made them (bad rate of matured loans, 95 % interval):",
            *(f"  {rate.text()}" for rate in rates)]
