"""The back-test's statistics and outcome classes, without a server: the intervals cover the
truth as often as they promise and narrow as loans mature; outcomes are classed by their
portfolio's lists and never lose the portfolio they name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cards import model_card  # tests/cards.py

from ledger.backtest import (
    auc_estimate,
    backtest_version,
    bootstrap_estimate,
    calibration_error,
    ks_statistic,
)
from ledger.cards import OutcomeClass, OutcomeLabels, card_test, held_out_split, outcome_labels
from ledger.writer import LedgerMessage, outcome_row


def _binormal(n: int, separation: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Loans with a bad rate of 20 % and scores whose true AUC is Φ(separation / √2)."""
    bad = (rng.random(n) < 0.2).astype(int)
    score = rng.normal(size=n) + separation * bad
    return bad, 1.0 / (1.0 + np.exp(-score))


def _true_auc(separation: float) -> float:
    from math import erf

    return 0.5 * (1.0 + erf(separation / 2.0))


def _auc(bad: np.ndarray, predicted: np.ndarray) -> float:
    """Mann-Whitney: the share of (bad, good) pairs the PD orders right (no ties here)."""
    ranks = np.argsort(np.argsort(predicted)) + 1
    bads = int(bad.sum())
    return float((ranks[bad == 1].sum() - bads * (bads + 1) / 2) / (bads * (len(bad) - bads)))


def test_the_auc_interval_covers_the_true_auc_about_95_times_in_100() -> None:
    rng = np.random.default_rng(7)
    truth = _true_auc(0.8)
    covered = 0
    for _ in range(400):
        bad, predicted = _binormal(600, 0.8, rng)
        estimate = auc_estimate(_auc(bad, predicted), int(bad.sum()), int(len(bad) - bad.sum()))
        assert estimate.low is not None and estimate.high is not None
        covered += estimate.low <= truth <= estimate.high
    assert 0.91 <= covered / 400 <= 0.99


def test_intervals_narrow_as_more_loans_mature() -> None:
    rng = np.random.default_rng(11)
    widths = {}
    for n in (500, 5_000):
        bad, predicted = _binormal(n, 0.8, rng)
        auc = auc_estimate(_auc(bad, predicted), int(bad.sum()), int(n - bad.sum()))
        ks = bootstrap_estimate(ks_statistic, bad, predicted)
        ece = bootstrap_estimate(calibration_error, bad, predicted)
        assert auc.count == n and ks is not None and ece is not None and ks.count == n
        widths[n] = [e.high - e.low for e in (auc, ks, ece)]  # type: ignore[operator]
    # Ten times the loans: about a third of the width (1/√10), each figure.
    for small, large in zip(widths[500], widths[5_000], strict=True):
        assert 0.2 < large / small < 0.5


def test_bootstrap_intervals_hold_their_value_and_repeat_exactly() -> None:
    rng = np.random.default_rng(3)
    bad, predicted = _binormal(800, 1.0, rng)
    first = bootstrap_estimate(ks_statistic, bad, predicted)
    again = bootstrap_estimate(ks_statistic, bad, predicted)
    assert first == again  # a fixed seed: the same ledger always shows the same interval
    assert first is not None and first.low is not None and first.high is not None
    assert first.low <= first.value <= first.high
    assert bootstrap_estimate(ks_statistic, np.zeros(50, dtype=int), predicted[:50]) is None


def test_an_auc_without_both_classes_counted_has_no_interval() -> None:
    assert auc_estimate(0.72, None, None).text() == "0.720"
    assert auc_estimate(0.72, 0, 100).low is None
    shown = auc_estimate(0.72, 4_000, 16_000)
    assert shown.counted("test loans") == "0.720 [0.710, 0.730] on 20,000 test loans"


def test_the_back_test_prints_realised_beside_the_cards_test_auc_with_counts() -> None:
    import pandas as pd

    rng = np.random.default_rng(5)
    bad, predicted = _binormal(975, 0.9, rng)
    frame = pd.DataFrame({"probability_of_default": predicted, "score": 600, "risk_grade": "B",
                          "decision": "approve", "month": pd.Timestamp("2017-07-01"),
                          "outcome": np.where(bad == 1, "bad", "good")})
    result = backtest_version("m1", frame, auc_estimate(0.72, 4_000, 16_000), "generated")
    assert result.auc is not None
    assert result.comparison() == (f"realised AUC {result.auc.text()} on 975 matured loans; "
                                   "model card test AUC 0.720 [0.710, 0.730] on 20,000 test loans")


def test_outcomes_are_classed_by_their_portfolios_lists() -> None:
    home_credit = OutcomeLabels(bad_values=("1",), good_values=("0",))
    assert [home_credit.classify(status) for status in ("1", "1.0", " 0 ", "Fully Paid")] == \
        ["bad", "bad", "good", "unknown"]
    lending = OutcomeLabels(bad_values=("Charged Off",), good_values=("Fully Paid",),
                            excluded_values=("Current",))
    assert [lending.classify(status) for status in ("charged  off", "Fully Paid", "Current", "1")] \
        == ["bad", "good", "open", "unknown"]
    assert not OutcomeLabels().recorded and OutcomeLabels().classify("1") == "unknown"


def test_the_card_tells_the_ledger_its_outcome_lists_split_and_test_counts() -> None:
    card = model_card(dataset={"name": "home_credit", "bad_values": [1], "good_values": ["0"]},
                      split={"method": "stratified", "test_rows": 10_000},
                      metrics={"test": {"auc": 0.7, "ks": 0.3, "gini": 0.4, "brier": 0.05,
                                        "ece": 0.01, "rows": 10_000, "bad_rate": 0.08},
                               "cv": {"auc": 0.7, "ks": 0.3, "gini": 0.4, "brier": 0.05,
                                      "ece": 0.01}})
    assert outcome_labels(card).classify("1") == "bad"
    assert held_out_split(card).method == "stratified" and held_out_split(card).test_from is None
    assert card_test(card).bad == 800 and card_test(card).rows == 10_000
    older = model_card()  # a card from before the counts and lists were recorded
    assert card_test(older).bad is None and not outcome_labels(older).recorded


class _Cards:
    default_portfolio = "lending_club"

    def classify(self, portfolio: str, status: str) -> OutcomeClass:
        labels = {"home_credit": OutcomeLabels(bad_values=("1",), good_values=("0",))}
        return labels.get(portfolio, OutcomeLabels()).classify(status)


@pytest.mark.parametrize(("message", "expected"), [
    ({"application_id": "7", "loan_status": "1", "as_of": "2026-01-01", "portfolio": "home_credit"},
     ("home_credit", "7", "1", "bad")),
    ({"application_id": "7", "loan_status": "1", "as_of": "2026-01-01"}, ("", "7", "1", "unknown")),
])
def test_an_outcome_keeps_the_portfolio_it_names(message: dict[str, str],
                                                 expected: tuple[str, ...]) -> None:
    row = outcome_row(json.dumps(message).encode(), _Cards(), LedgerMessage("loan-outcomes", 0, 5, None))
    assert row is not None and row[:4] == expected


def test_a_message_that_is_not_an_outcome_is_refused() -> None:
    for value in (b"[]", b"{}", b'{"application_id": "", "loan_status": "1", "as_of": "2026-01-01"}',
                  b'{"application_id": "7", "loan_status": "1", "as_of": "2026-01-01", "portfolio": 3}'):
        assert outcome_row(value, _Cards(), LedgerMessage("t", 0, 0, None)) is None
