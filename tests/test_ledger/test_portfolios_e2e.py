"""Two portfolios on one stack: a Lending Club-shaped model and a Home Credit model decide
loans whose application ids overlap; each is back-tested on its own loans, and the Home Credit
outcomes change nothing in the Lending Club model's back-test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ledger_harness import LedgerProcess, ledger_count, private_database, synthetic_decision, wait_for_rows
from worker_harness import produce

from config.settings import Settings
from onnx_models.registry import Registry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LOANS = 600
OVERLAP = 200  # Home Credit application ids that are also Lending Club ones


@pytest.fixture
def two_portfolios(registry_dir: Path, tmp_path: Path) -> tuple[str, str]:
    """The registry's Lending Club-shaped model (live) and a small Home Credit model beside it."""
    from quick_training import quick_config  # tests/quick_training.py

    from training.generate_home_credit import generate_home_credit_files
    from training.pipeline import run_training

    generated = Registry(registry_dir).live_version() or ""
    folder = tmp_path / "home-credit"
    generate_home_credit_files(rows=4_000, seed=41, out_dir=folder, show_progress=False)
    result = run_training(folder / "application_train.csv", "home_credit", registry_dir=registry_dir,
                          promote=False, config=quick_config(folds=2), report_dir=tmp_path / "report",
                          progress=False, log=lambda _line: None)
    return generated, result.version


def _book(version: str, portfolio: str, ids: range, statuses: tuple[str, str],
          seed: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Decisions of ``version`` and what servicing reports for them: each loan bad with its
    own PD's odds (``statuses`` = bad, good), one in ten still running in Lending Club's book."""
    rng = np.random.default_rng(seed)
    decisions, outcomes = [], []
    for index in ids:
        decision, _ = synthetic_decision(index, model_version=version, application_id=str(index))
        decisions.append((decision.application_id.encode(), decision.to_json()))
        status = statuses[0] if rng.random() < decision.probability_of_default else statuses[1]
        if portfolio != "home_credit" and index % 10 == 0:
            status = "Current"
        outcomes.append((decision.application_id.encode(), json.dumps(
            {"application_id": decision.application_id, "loan_status": status,
             "as_of": "2026-01-01", "portfolio": portfolio}).encode()))
    return decisions, outcomes


def _backtest(settings: Settings, registry_dir: Path) -> dict[str, object]:
    import psycopg

    from ledger.backtest import run_backtest
    from ledger.cards import RegistryCards

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        results = run_backtest(connection, RegistryCards(registry_dir, "lending_club"))
    return {result.model_version: result for result in results}


def test_each_model_is_back_tested_on_its_own_portfolios_loans(
        namespace, registry_dir: Path, two_portfolios: tuple[str, str], tmp_path: Path) -> None:
    generated, home_credit = two_portfolios
    lending_ids = range(100_000, 100_000 + LOANS)
    home_ids = range(100_000 + LOANS - OVERLAP, 100_000 + 2 * LOANS - OVERLAP)
    lending_decisions, lending_outcomes = _book(generated, "generated", lending_ids,
                                                ("Charged Off", "Fully Paid"), 1)
    home_decisions, home_outcomes = _book(home_credit, "home_credit", home_ids, ("1", "0"), 2)

    with private_database(namespace.settings) as settings:
        ledger = LedgerProcess(namespace, settings, registry_dir, tmp_path / "ledger.log")
        ledger.start()
        try:
            produce(namespace.settings, namespace.topic_decisions, lending_decisions, role="worker")
            produce(namespace.settings, namespace.topic_outcomes, lending_outcomes)
            wait_for_rows(settings, LOANS, 60)
            wait_for_rows(settings, LOANS, 60, "SELECT count(*) FROM loan_outcomes")
            before = _backtest(settings, registry_dir)[generated]

            produce(namespace.settings, namespace.topic_decisions, home_decisions, role="worker")
            produce(namespace.settings, namespace.topic_outcomes, home_outcomes)
            wait_for_rows(settings, 2 * LOANS, 60)
            # Every outcome kept: the overlapping ids did not replace Lending Club's.
            wait_for_rows(settings, 2 * LOANS, 60, "SELECT count(*) FROM loan_outcomes")
            after = _backtest(settings, registry_dir)
            env = {**ledger.env}
            monitor = subprocess.run([sys.executable, "-m", "cli.main", "monitor", "--min-matured", "100000"], env=env,
                                     capture_output=True, text=True, check=False)
        finally:
            ledger.stop()
        classed = ledger_count(settings, "SELECT count(*) FROM loan_outcomes "
                                         "WHERE portfolio = 'home_credit' AND outcome IN ('bad', 'good')")

    running = sum(1 for index in lending_ids if index % 10 == 0)
    assert before.matured == LOANS - running and before.portfolio == "generated"
    lending, home = after[generated], after[home_credit]
    assert (lending.matured, lending.bad, lending.decisions) == (before.matured, before.bad, LOANS)
    assert lending.auc == before.auc
    assert home.portfolio == "home_credit" and home.decisions == LOANS
    assert home.matured == LOANS  # every Home Credit outcome is 1 or 0: all classed, all matured
    assert classed == LOANS
    assert home.auc is not None and home.auc.count == LOANS and home.reference_auc is not None
    assert home.reference_auc.count is not None and home.reference_auc.low is not None

    assert monitor.returncode == 0, monitor.stderr
    assert f"model {home_credit} (portfolio home_credit): {LOANS:,} decisions, {LOANS:,} matured" \
        in monitor.stdout
    assert f"model {generated} (portfolio generated): {LOANS:,} decisions, {before.matured:,} matured" \
        in monitor.stdout
    assert (f"realised AUC {home.auc.text()} on {LOANS:,} matured loans; model card test AUC "
            f"{home.reference_auc.counted('test loans')}") in monitor.stdout
