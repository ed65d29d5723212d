"""The promotion gate judged without a server: each criterion failing on its own names
itself with its figure and limit; the event-contract check of a challenger; the refusals
the commands make before they reach the ledger."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.model_roles import event_contract_problem, history_lines, missing_event_fields
from features.serving import EventField, ServingSpec
from features.views import BUREAU_VIEW
from ledger.backtest import Estimate
from ledger.model_history import Criterion, GateLimits, RoleChange, evaluate_gate


def _figure(value: float, count: int = 800) -> Estimate:
    return Estimate(value, value - 0.02, value + 0.02, count)


CHAMPION_AUC, CHALLENGER_AUC, CALIBRATION_ERROR = _figure(0.72), _figure(0.74), _figure(0.02)
SWAP_IN, SWAP_OUT = _figure(0.10, 60), _figure(0.18, 70)


@dataclass(frozen=True)
class Shadowed:
    """The figures of a champion/challenger comparison the gate reads."""

    shadowed: int = 2_000
    matured: int = 800
    champion_auc: Estimate | None = CHAMPION_AUC
    challenger_auc: Estimate | None = CHALLENGER_AUC
    challenger_calibration_error: Estimate | None = CALIBRATION_ERROR
    swap_in_bad_rate: Estimate | None = SWAP_IN
    swap_out_bad_rate: Estimate | None = SWAP_OUT


LIMITS = GateLimits(min_matured_loans=500, auc_tolerance=0.01, max_calibration_error=0.05)


def _failing(comparison: Shadowed, limits: GateLimits = LIMITS) -> list[Criterion]:
    return [criterion for criterion in evaluate_gate(comparison, limits) if not criterion.passed]


def test_a_challenger_better_on_every_figure_passes_all_four_criteria() -> None:
    criteria = evaluate_gate(Shadowed(), LIMITS)
    assert [c.name for c in criteria] == ["matured_shadowed_loans", "realised_auc",
                                          "calibration_error", "swap_in_bad_rate"]
    assert all(c.passed for c in criteria)


def test_too_few_matured_loans_fail_that_criterion_alone() -> None:
    [failing] = _failing(Shadowed(matured=499))
    assert failing.name == "matured_shadowed_loans"
    assert (failing.value, failing.limit) == (499, 500)
    assert "499" in failing.explanation and "500" in failing.explanation


def test_the_minimum_of_matured_loans_comes_from_the_limits() -> None:
    assert _failing(Shadowed(matured=499), replace(LIMITS, min_matured_loans=400)) == []


def test_an_auc_more_than_the_tolerance_below_the_champions_fails() -> None:
    [failing] = _failing(Shadowed(challenger_auc=_figure(0.705)))
    assert failing.name == "realised_auc"
    assert failing.value == pytest.approx(0.705) and failing.limit == pytest.approx(0.71)
    assert "0.7050" in failing.explanation and "0.7200" in failing.explanation
    # within the tolerance it passes
    assert _failing(Shadowed(challenger_auc=_figure(0.711))) == []


def test_an_auc_that_cannot_be_measured_fails() -> None:
    [failing] = _failing(Shadowed(challenger_auc=None))
    assert failing.name == "realised_auc" and "not measurable" in failing.explanation


def test_a_calibration_error_above_the_limit_fails() -> None:
    [failing] = _failing(Shadowed(challenger_calibration_error=_figure(0.08)))
    assert failing.name == "calibration_error"
    assert failing.value == pytest.approx(0.08) and failing.limit == 0.05
    assert "0.0800" in failing.explanation and "0.05" in failing.explanation


def test_swap_ins_going_bad_more_often_than_swap_outs_fail() -> None:
    [failing] = _failing(Shadowed(swap_in_bad_rate=_figure(0.25, 60)))
    assert failing.name == "swap_in_bad_rate"
    assert failing.value == pytest.approx(0.25) and failing.limit == pytest.approx(0.18)
    assert "25.00%" in failing.explanation and "18.00%" in failing.explanation


def test_no_matured_swap_ins_pass_but_swap_ins_without_swap_outs_fail() -> None:
    assert _failing(Shadowed(swap_in_bad_rate=None, swap_out_bad_rate=None)) == []
    [failing] = _failing(Shadowed(swap_out_bad_rate=None))
    assert failing.name == "swap_in_bad_rate" and "no matured swap-outs" in failing.explanation


def test_criteria_are_stored_with_name_value_limit_and_verdict() -> None:
    stored = [c.to_json() for c in evaluate_gate(Shadowed(matured=120), LIMITS)]
    assert stored[0] == {"name": "matured_shadowed_loans", "value": 120.0, "limit": 500.0,
                         "passed": False}


def _spec(*fields: EventField) -> ServingSpec:
    return ServingSpec(event_fields=fields)


AMOUNT = EventField("loan_amnt", "numeric", "loan_amount", required=True, nullable=False)
PURPOSE = EventField("purpose", "categorical", "purpose", required=True, nullable=False)


def test_a_challenger_reading_the_champions_fields_lacks_nothing() -> None:
    assert missing_event_fields(_spec(AMOUNT, PURPOSE), _spec(AMOUNT)) == []


def test_a_challenger_needing_fields_the_events_do_not_carry_is_told_which() -> None:
    income = EventField("AMT_INCOME_TOTAL", "numeric", "numeric", required=True)
    lacking = missing_event_fields(_spec(AMOUNT, replace(PURPOSE, required=False)),
                                   _spec(AMOUNT, PURPOSE, income))
    assert lacking == ["purpose (optional on the champion's events)", "AMT_INCOME_TOTAL"]


def test_a_challenger_the_worker_would_not_shadow_is_told_why() -> None:
    champion = ServingSpec(event_fields=(AMOUNT, PURPOSE), views=(BUREAU_VIEW,))
    assert event_contract_problem(champion, champion) is None
    fewer = event_contract_problem(champion, replace(champion, event_fields=(AMOUNT,)))
    assert fewer is not None and "purpose" in fewer and "event contract" in fewer
    other_view = replace(BUREAU_VIEW, fields=BUREAU_VIEW.fields[:1])
    views = event_contract_problem(champion, replace(champion, views=(other_view,)))
    assert views is not None and "feature views" in views and BUREAU_VIEW.name in views


def test_the_history_prints_who_what_the_criteria_and_the_reason() -> None:
    change = RoleChange(7, datetime(2026, 12, 3, 21, 40, tzinfo=UTC), "alice",
                        "promoted_by_override", "20261203T000000Z-0000beef",
                        "20261201T000000Z-0000cafe", None,
                        ({"name": "matured_shadowed_loans", "value": 120.0, "limit": 500.0,
                          "passed": False},), "regulator asked for the new bureau fields")
    lines = history_lines(change)
    assert "promoted_by_override" in lines[0] and "alice" in lines[0]
    assert "champion was 20261201T000000Z-0000cafe" in lines[0]
    assert lines[1].split() == ["FAIL", "matured_shadowed_loans:", "120", "(limit", "500)"]
    assert lines[2] == "    reason: regulator asked for the new bureau fields"


def test_promote_refuses_an_unknown_version_before_asking_the_ledger(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "promote", "20261122T000000Z-00000000",
                                      "--registry", str(tmp_path)])
    assert result.exit_code == 1 and "not in the registry" in result.output


def test_challenger_needs_either_a_share_or_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    for arguments in (["20261122T000000Z-00000000"],
                      ["20261122T000000Z-00000000", "--percent", "10", "--clear"]):
        result = runner.invoke(app, ["model", "challenger", *arguments, "--registry",
                                     str(tmp_path)])
        assert result.exit_code == 1 and "--percent P" in result.output
