"""Every panel of the ledger dashboard shows data from a real ledger writer, scraped by the
stack's Prometheus (the worker dashboards have their own test, test_dashboards_e2e.py)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from ledger_harness import LedgerProcess, private_database, store_records, synthetic_decision, wait_for_rows
from test_stream.test_dashboards_e2e import (  # tests/test_stream/test_dashboards_e2e.py
    LEDGER_DASHBOARD,
    SCRAPE_INTERVAL_S,
    dashboard_targets,
    finite_values,
    for_prometheus,
    query,
)
from worker_harness import produce

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _wait_until_scraped(port: int, instance: str, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if finite_values(query(port, f'up{{job="creditrisk-ledger", instance="{instance}"}} == 1')):
            return
        time.sleep(1.0)
    raise AssertionError(f"Prometheus did not scrape the ledger writer at {instance}")


def test_every_ledger_dashboard_panel_shows_data_from_a_real_ledger_writer(
        namespace, live_stack, registry_dir: Path, tmp_path: Path) -> None:
    from infra.stack.services import Prometheus
    from onnx_models.registry import Registry

    live = Registry(registry_dir).live_version()  # its card holds the AUC the panel compares with
    pairs = [synthetic_decision(i, model_version=live or "") for i in range(1_500)]
    store_records(namespace.settings, [record for _, record in pairs])
    outcomes = []
    for index, (decision, _) in enumerate(pairs):
        bad = (index * 7919 % 1000) / 1000 < decision.probability_of_default
        outcomes.append((decision.application_id.encode(), json.dumps(
            {"application_id": decision.application_id, "as_of": "2026-01-01",
             "loan_status": "Charged Off" if bad else "Fully Paid"}).encode()))
    target_dir = Prometheus(live_stack).targets_dir / "ledger"
    target_dir.mkdir(parents=True, exist_ok=True)
    target_file = target_dir / f"test-ledger-{uuid.uuid4().hex[:8]}.json"
    with private_database(namespace.settings) as settings:
        ledger = LedgerProcess(namespace, settings, registry_dir, tmp_path / "ledger.log")
        instance = f"127.0.0.1:{ledger.port}"
        try:
            ledger.start()
            target_file.write_text(json.dumps([{"targets": [instance]}]))
            _wait_until_scraped(live_stack.prometheus_port, instance)
            produce(namespace.settings, namespace.topic_decisions,
                    [(d.application_id.encode(), d.to_json()) for d, _ in pairs], 300, "worker")
            produce(namespace.settings, namespace.topic_outcomes, outcomes)
            wait_for_rows(settings, len(outcomes), 60, "SELECT count(*) FROM loan_outcomes")
            time.sleep(3 * SCRAPE_INTERVAL_S)  # a back-test refresh and two scrapes after it

            targets = dashboard_targets((LEDGER_DASHBOARD,))
            assert len(targets) >= 10
            empty = [f"{panel} / {ref}: {expr}" for _, panel, ref, expr in targets
                     if not finite_values(query(live_stack.prometheus_port, for_prometheus(expr, instance)))]
            assert not empty, "panel queries without data:\n" + "\n".join(empty) + ledger.log_tail()
            auc = finite_values(query(live_stack.prometheus_port,
                                      f'creditrisk_backtest_auc{{instance="{instance}"}}'))
            assert auc and 0.5 < auc[0] < 1.0
        finally:
            target_file.unlink(missing_ok=True)
            ledger.stop()
