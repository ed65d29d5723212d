"""Challengers in the ledger: their shadow decisions stored beside the champion's, and the
two models compared on the same applications and the same loans.

A *shadow decision* is what a challenger version would have decided for an application the
champion decided (``loan-decisions-shadow``, never acted on); the writer stores it in
``shadow_decisions`` (:func:`insert_shadow_decisions`), never in the review queue nor as a
final decision. :func:`compare` joins a champion's decisions to one challenger's shadow
decisions of the same applications, and both to the loans' outcomes as the back-test does
(:mod:`ledger.backtest`: by the champion card's portfolio and application id, classed by its
outcome lists; a loan counts once its outcome is good or bad):

- the 3×3 *swap matrix* (champion decision × challenger decision) and the agreement rate;
- the bad rate of the *swap-ins* (the challenger approves what the champion declines), the
  *swap-outs* (the champion approves what the challenger declines) and the *unchanged*
  approvals (both approve), each a Wilson 95 % interval on its matured loans; review
  decisions go to a person, so they are in the matrix but in no swap set;
- each model's realised AUC, KS and calibration error on the very same matured loans.

A loan's outcome is observed only when the loan was granted. The champion's declines were
not, so a swap-in bad rate is measurable only where a declined application was later booked
anyway (reversed by a reviewer or an override) or where outcomes exist for every
application, as in a replayed history; elsewhere the swap-ins have few or no matured loans
and their interval says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ledger.backtest import (
    Estimate,
    ModelCards,
    auc_estimate,
    bootstrap_estimate,
    calibration_error,
    calibration_table,
    ks_statistic,
    proportion_estimate,
)
from ledger.rows import SHADOW_COLUMNS, SqlValue

if TYPE_CHECKING:
    from ledger.store import Ledger

DECISIONS = ("approve", "review", "decline")
SWAP_SETS = {
    "swap_in": ("decline", "approve"),    # (champion, challenger)
    "swap_out": ("approve", "decline"),
    "unchanged": ("approve", "approve"),
}
SWAP_SET_WORDS = {
    "swap_in": "swap-ins (challenger approves, champion declines)",
    "swap_out": "swap-outs (champion approves, challenger declines)",
    "unchanged": "unchanged (both approve)",
}

_SHADOW_TYPES = ("uuid", "text", "text", "float8", "int", "text", "jsonb", "text", "text",
                 "timestamptz", "uuid", "text", "text", "text", "int", "bigint")
_INSERT_SHADOW = (
    f"WITH written AS (INSERT INTO shadow_decisions ({', '.join(SHADOW_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"%s::{kind}[]" for kind in _SHADOW_TYPES)
    + ") ON CONFLICT (decision_id) DO NOTHING RETURNING 1) SELECT count(*) FROM written")

_SHADOWED_SQL = """
SELECT s.application_id, d.decision, s.decision, d.probability_of_default,
       s.probability_of_default, o.loan_status, o.outcome
FROM shadow_decisions s
JOIN decisions d ON d.decision_id = s.champion_decision_id AND d.model_version = %(champion)s
LEFT JOIN LATERAL (
    SELECT loan_status, outcome FROM loan_outcomes
    WHERE application_id = s.application_id AND portfolio IN (%(portfolio)s, '')
    ORDER BY portfolio DESC LIMIT 1) o ON true
WHERE s.model_version = %(challenger)s AND s.champion_model_version = %(champion)s
"""
SHADOWED_COLUMNS = ["application_id", "champion_decision", "challenger_decision", "champion_pd",
                    "challenger_pd", "loan_status", "outcome"]

_PAIRS_SQL = """
SELECT champion_model_version, model_version, count(*), max(decided_at)
FROM shadow_decisions GROUP BY champion_model_version, model_version
ORDER BY max(decided_at) DESC, model_version
"""


def insert_shadow_decisions(connection: Ledger, rows: Sequence[Sequence[SqlValue]]) -> int:
    """Store shadow rows (``ledger.rows.SHADOW_COLUMNS`` order) in the caller's transaction;
    return how many were new (a redelivered one, same ``decision_id``, is left as it was)."""
    if not rows:
        return 0
    columns = [list(column) for column in zip(*rows, strict=True)]
    found = connection.execute(_INSERT_SHADOW, columns).fetchone()
    return int(found[0]) if found else 0


@dataclass(frozen=True)
class ShadowPair:
    """A champion and a challenger that shadowed it, as the ledger holds them."""

    champion: str
    challenger: str
    shadow_decisions: int
    last_decided_at: datetime


def shadow_pairs(connection: Ledger) -> list[ShadowPair]:
    """Every (champion, challenger) pair with shadow decisions, the latest shadowed first."""
    return [ShadowPair(str(champion), str(challenger), int(count), moment)
            for champion, challenger, count, moment in connection.execute(_PAIRS_SQL).fetchall()]


@dataclass(frozen=True)
class Comparison:
    champion: str
    challenger: str
    shadowed: int                                   # applications with both decisions
    agreement: float | None                         # share with the same decision
    swap_matrix: dict[tuple[str, str], int]         # (champion, challenger) decision -> count
    matured: int                                    # shadowed applications whose loan is good or bad
    swap_in_bad_rate: Estimate | None               # challenger approves, champion declines
    swap_out_bad_rate: Estimate | None              # champion approves, challenger declines
    unchanged_bad_rate: Estimate | None             # both approve
    swap_in_matured: int
    swap_out_matured: int
    unchanged_matured: int
    champion_auc: Estimate | None                   # on the same matured loans
    challenger_auc: Estimate | None
    champion_ks: Estimate | None
    challenger_ks: Estimate | None
    champion_calibration_error: Estimate | None
    challenger_calibration_error: Estimate | None

    def swap_set(self, name: str) -> tuple[Estimate | None, int, int]:
        """(bad rate, matured loans, applications) of ``swap_in``, ``swap_out`` or
        ``unchanged``."""
        rate, matured = {"swap_in": (self.swap_in_bad_rate, self.swap_in_matured),
                         "swap_out": (self.swap_out_bad_rate, self.swap_out_matured),
                         "unchanged": (self.unchanged_bad_rate, self.unchanged_matured)}[name]
        return rate, matured, self.swap_matrix[SWAP_SETS[name]]


def load_shadowed(connection: Ledger, cards: ModelCards, champion: str,
                  challenger: str) -> pd.DataFrame:
    """Each application both models decided (``SHADOWED_COLUMNS``), with its loan's outcome
    in the champion's portfolio (None while servicing has reported none), classed by the
    champion's card when it records its outcome lists (as the back-test does)."""
    rows = connection.execute(_SHADOWED_SQL, {"champion": champion, "challenger": challenger,
                                              "portfolio": cards.portfolio(champion)}).fetchall()
    frame = pd.DataFrame(rows, columns=SHADOWED_COLUMNS)
    for column in ("champion_pd", "challenger_pd"):
        frame[column] = frame[column].astype(float)
    labels = cards.version_labels(champion)
    if labels.recorded and len(frame):
        statuses = frame["loan_status"].dropna().unique()
        classes = {status: labels.classify(str(status)) for status in statuses}
        frame["outcome"] = frame["loan_status"].map(classes)
    return frame


def matured_loans(shadowed: pd.DataFrame) -> pd.DataFrame:
    """The shadowed applications whose loan is good or bad, with ``bad`` as 0/1."""
    matured = shadowed[shadowed["outcome"].isin(["bad", "good"])]
    return matured.assign(bad=(matured["outcome"] == "bad").astype(int))


def comparison_of(shadowed: pd.DataFrame, champion: str, challenger: str) -> Comparison:
    """The comparison of the applications :func:`load_shadowed` read."""
    pairs = list(zip(shadowed["champion_decision"], shadowed["challenger_decision"], strict=True))
    matrix = {(mine, theirs): 0 for mine in DECISIONS for theirs in DECISIONS}
    for pair in pairs:
        matrix[pair] += 1
    agreed = sum(matrix[(decision, decision)] for decision in DECISIONS)
    matured = matured_loans(shadowed)
    rates: dict[str, tuple[Estimate | None, int]] = {}
    for name, (mine, theirs) in SWAP_SETS.items():
        swapped = matured[(matured["champion_decision"] == mine)
                          & (matured["challenger_decision"] == theirs)]
        rates[name] = (proportion_estimate(int(swapped["bad"].sum()), len(swapped)), len(swapped))
    bad = matured["bad"].to_numpy(dtype=int)
    champion_pd = matured["champion_pd"].to_numpy(dtype=float)
    challenger_pd = matured["challenger_pd"].to_numpy(dtype=float)
    return Comparison(
        champion=champion, challenger=challenger, shadowed=len(pairs),
        agreement=agreed / len(pairs) if pairs else None, swap_matrix=matrix,
        matured=len(matured),
        swap_in_bad_rate=rates["swap_in"][0], swap_out_bad_rate=rates["swap_out"][0],
        unchanged_bad_rate=rates["unchanged"][0], swap_in_matured=rates["swap_in"][1],
        swap_out_matured=rates["swap_out"][1], unchanged_matured=rates["unchanged"][1],
        champion_auc=realised_auc(bad, champion_pd),
        challenger_auc=realised_auc(bad, challenger_pd),
        champion_ks=bootstrap_estimate(ks_statistic, bad, champion_pd),
        challenger_ks=bootstrap_estimate(ks_statistic, bad, challenger_pd),
        champion_calibration_error=bootstrap_estimate(calibration_error, bad, champion_pd),
        challenger_calibration_error=bootstrap_estimate(calibration_error, bad, challenger_pd))


def realised_auc(bad: np.ndarray, predicted: np.ndarray) -> Estimate | None:
    """The AUC of ``predicted`` PDs on the loans, with its Hanley-McNeil interval (None
    without both bad and good loans)."""
    bads = int(bad.sum())
    if bads == 0 or bads == len(bad):
        return None
    from sklearn.metrics import roc_auc_score

    return auc_estimate(float(roc_auc_score(bad, predicted)), bads, len(bad) - bads)


def compare(connection: Ledger, cards: ModelCards, champion: str, challenger: str) -> Comparison:
    """The champion and the challenger on the applications both decided (see the module)."""
    return comparison_of(load_shadowed(connection, cards, champion, challenger), champion,
                         challenger)


def calibration_tables(shadowed: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each model's calibration table (``ledger.backtest.calibration_table``) on the same
    matured loans: keys ``champion`` and ``challenger``."""
    matured = matured_loans(shadowed)
    bad = matured["bad"].to_numpy(dtype=int)
    return {role: calibration_table(bad, matured[f"{role}_pd"].to_numpy(dtype=float))
            for role in ("champion", "challenger")}


def _figure(estimate: Estimate | None, what: str = "matured loans") -> str:
    return "n/a" if estimate is None else estimate.counted(what)


def swap_matrix_lines(comparison: Comparison) -> list[str]:
    """The 3×3 swap matrix as a text table: champion's decisions down, challenger's across."""
    width = max(9, *(len(f"{count:,}") + 2 for count in comparison.swap_matrix.values()))
    head = "champion \\ challenger".ljust(22) + "".join(d.rjust(width) for d in DECISIONS)
    rows = [f"  {mine}".ljust(22) + "".join(f"{comparison.swap_matrix[(mine, theirs)]:,}"
                                            .rjust(width) for theirs in DECISIONS)
            for mine in DECISIONS]
    return [head, *rows]


def report_lines(comparison: Comparison) -> list[str]:
    """The comparison as plain text (``creditrisk model compare`` prints it); every realised
    figure with its 95 % interval and the number of loans it rests on."""
    c = comparison
    if not c.shadowed:
        return [f"no application has both a decision of champion {c.champion} and a shadow "
                f"decision of challenger {c.challenger}"]
    agreed = sum(c.swap_matrix[(decision, decision)] for decision in DECISIONS)
    lines = [f"champion {c.champion} vs challenger {c.challenger}: {c.shadowed:,} applications "
             "decided by both",
             f"agreement {c.agreement or 0.0:.3f} ({agreed:,} of {c.shadowed:,} with the same "
             "decision)",
             "swap matrix (applications; champion's decision down, challenger's across):",
             *(f"  {line}" for line in swap_matrix_lines(c)),
             f"matured loans (outcome good or bad): {c.matured:,}",
             "bad rate of matured loans (95 % Wilson interval):"]
    for name, words in SWAP_SET_WORDS.items():
        rate, _matured, applications = c.swap_set(name)
        shown = "n/a (no matured loan)" if rate is None else rate.counted("matured loans")
        lines.append(f"  {words}: {shown} of {applications:,} applications")
    lines.append(f"each model on the same {c.matured:,} matured loans (95 % intervals):")
    for label, champion, challenger in (
            ("AUC", c.champion_auc, c.challenger_auc), ("KS", c.champion_ks, c.challenger_ks),
            ("calibration error", c.champion_calibration_error,
             c.challenger_calibration_error)):
        lines.append(f"  {label}: champion {c.champion} {_figure(champion)}; challenger "
                     f"{c.challenger} {_figure(challenger)}")
    return lines
