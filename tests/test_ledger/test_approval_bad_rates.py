"""`creditrisk monitor`'s bad rate of overridden approvals beside the model's own."""

from __future__ import annotations

import pandas as pd
import pytest

from ledger.backtest import approval_bad_rates, approval_report_lines, proportion_estimate


def _approvals(rows: list[tuple[str, str | None, int]]) -> pd.DataFrame:
    return pd.DataFrame([(kind, outcome) for kind, outcome, times in rows for _ in range(times)],
                        columns=["approved_by", "outcome"])


def test_overridden_approvals_are_judged_apart_from_the_models_own() -> None:
    approvals = _approvals([("model", "bad", 8), ("model", "good", 92), ("model", None, 50),
                            ("reviewer", "bad", 3), ("reviewer", "good", 7), ("reviewer", "open", 5),
                            ("override", "bad", 3), ("override", "good", 2)])
    rates = {rate.approved_by: rate for rate in approval_bad_rates(approvals)}

    model, people = rates["model"], rates["people"]
    assert (model.approvals, model.matured, model.bad) == (150, 100, 8)
    assert model.bad_rate is not None and model.bad_rate.value == pytest.approx(0.08)
    # reviewers' approvals of review items and approved overrides together: 6 bad of 15 matured
    assert (people.approvals, people.matured, people.bad) == (20, 15, 6)
    assert people.bad_rate is not None and people.bad_rate.value == pytest.approx(0.4)
    assert (rates["reviewer"].matured, rates["override"].matured) == (10, 5)
    # 15 loans say little: the interval is wide and holds the estimate
    assert people.bad_rate.low is not None and people.bad_rate.high is not None
    assert people.bad_rate.low < 0.4 < people.bad_rate.high
    assert people.bad_rate.high - people.bad_rate.low > 0.3
    lines = approval_report_lines(list(rates.values()))
    assert any("overridden approvals" in line and "0.400 [" in line and "on 15 matured loans" in line
               for line in lines), lines


def test_no_matured_loan_gives_no_rate_and_no_approval_says_so() -> None:
    rates = {rate.approved_by: rate for rate in
             approval_bad_rates(_approvals([("model", "good", 4), ("override", None, 2)]))}
    assert rates["override"].bad_rate is None and rates["override"].approvals == 2
    assert "n/a" in rates["override"].text()
    assert approval_report_lines(approval_bad_rates(_approvals([]))) == [
        "final decisions: no approval yet"]


@pytest.mark.parametrize(("bad", "count", "low", "high"), [
    (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (8, 100, 0.0411, 0.1500)])
def test_wilson_interval_matches_published_values(bad: int, count: int, low: float, high: float) -> None:
    estimate = proportion_estimate(bad, count)
    assert estimate is not None and estimate.count == count
    assert estimate.low == pytest.approx(low, abs=5e-4)
    assert estimate.high == pytest.approx(high, abs=5e-4)
    assert proportion_estimate(0, 0) is None
