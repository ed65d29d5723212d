"""Back-test end to end: the worker decides, the ledger keeps, servicing reports outcomes, and
the realised AUC the product shows equals an offline evaluation of the same loans."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from ledger_harness import LedgerProcess, ledger_count, private_database, wait_for_rows
from worker_harness import WorkerProcess, metric_sum, produce

from config.kafka_auth import kafka_environment
from config.settings import Settings
from onnx_models.registry import Registry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
APPLICATIONS = 3_000


def _events(frame: pd.DataFrame) -> list[tuple[bytes, bytes]]:
    """Application events as upstream sent them, submitted in the loan's own issue month."""
    payloads = []
    for row in frame.to_dict("records"):
        event = {"application_id": str(row["application_id"]), "customer_id": str(row["customer_id"]),
                 "submitted_at": row["issue_d"].strftime("%Y-%m-%dT00:00:00Z")}
        for name in ("loan_amnt", "annual_inc"):
            event[name] = float(row[name])
        event.update(term=int(row["term"]), purpose=row["purpose"],
                     emp_length=None if pd.isna(row["emp_length"]) else float(row["emp_length"]),
                     home_ownership=row["home_ownership"],
                     verification_status=row["verification_status"], addr_state=row["addr_state"])
        payloads.append((event["application_id"].encode(), json.dumps(event).encode()))
    return payloads


def _materialize_bureau_as_of_issue(settings: Settings, frame: pd.DataFrame) -> None:
    """The bureau values the loan file holds, true as of each loan's issue month."""
    from features.materialize import materialize_as_of_applications
    from features.store import sync_client

    client = sync_client(settings, "materializer")
    try:
        report = materialize_as_of_applications(
            frame, client, schema_version=settings.feature_schema_version,
            key_prefix=settings.key_prefix)
    finally:
        client.close()
    assert report.written == frame["customer_id"].nunique(), report.summary()


def _offline_auc(frame: pd.DataFrame, matured_ids: set[str], registry_dir: Path) -> float:
    """Training's own evaluation: label the loans, encode, score with the registered model."""
    from training.datasets import load_dataset_config
    from training.evaluate import evaluate_registered_model
    from training.label import assign_label

    labelled, _ = assign_label(frame, load_dataset_config("generated"))
    metrics = evaluate_registered_model(labelled, matured_ids, registry_dir,
                                        Registry(registry_dir).live_version() or "")
    assert metrics.rows == len(matured_ids), "offline labels and ledger outcomes cover other loans"
    return metrics.auc


def test_realised_auc_of_matured_loans_matches_offline_evaluation(
        namespace, registry_dir: Path, clean_frame: pd.DataFrame, generated_data: Path,
        tmp_path: Path) -> None:
    raw = pd.read_csv(generated_data / "loans.csv", dtype=str, keep_default_na=False)
    once = {i for i, n in Counter(raw["id"]).items() if n == 1}  # conflicting copies left out
    frame = clean_frame[clean_frame["application_id"].astype(str).isin(once)]
    frame = frame.dropna(subset=["loan_amnt", "term", "purpose", "annual_inc", "home_ownership",
                                 "verification_status", "addr_state", "issue_d"])
    frame = frame.drop_duplicates("customer_id").head(APPLICATIONS).reset_index(drop=True)
    _materialize_bureau_as_of_issue(namespace.settings, frame)

    with private_database(namespace.settings) as ledger_settings:
        worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
        ledger = LedgerProcess(namespace, ledger_settings, registry_dir, tmp_path / "ledger.log")
        worker.start()
        ledger.start()
        try:
            produce(namespace.settings, namespace.topic_applications, _events(frame))
            wait_for_rows(ledger_settings, len(frame), 240)
            # Servicing sends the outcomes, as the upstream producer.
            env = {**ledger.env, **kafka_environment(namespace.settings, "producer")}
            replay = subprocess.run(
                [sys.executable, "-m", "cli.main", "produce", "--outcomes", "--data",
                 str(generated_data / "loans.csv"), "--count", "100000"],
                env=env, capture_output=True, text=True, check=False)
            assert replay.returncode == 0, replay.stderr
            wait_for_rows(ledger_settings, len(once), 120, "SELECT count(*) FROM loan_outcomes")
            matured_ids = {row for (row,) in _query(ledger_settings,
                           "SELECT d.application_id FROM decisions d JOIN loan_outcomes o "
                           "USING (application_id) WHERE o.outcome IN ('bad', 'good')")}
            assert len(matured_ids) > 1_000
            assert ledger_count(ledger_settings) == len(frame)
            offline = _offline_auc(frame, matured_ids, registry_dir)

            monitor = subprocess.run([sys.executable, "-m", "cli.main", "monitor", "--min-matured", "100000"],
                                     env=env, capture_output=True, text=True, check=False)
            assert monitor.returncode == 0, monitor.stderr
            shown = float(monitor.stdout.split("realised AUC ")[1].split()[0].rstrip(","))
            assert abs(shown - offline) <= 0.005, monitor.stdout
            assert f"{len(matured_ids):,} matured" in monitor.stdout

            exported = _exported_auc(ledger)
            assert abs(exported - offline) <= 0.005
        finally:
            ledger.stop()
            worker.stop()


def _query(settings: Settings, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        return connection.execute(sql).fetchall()


def _exported_auc(ledger: LedgerProcess) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = ledger.metrics()
        matured = metric_sum(samples, "creditrisk_backtest_matured_decisions")
        if matured > 1_000:
            return metric_sum(samples, "creditrisk_backtest_auc")
        time.sleep(1)
    raise AssertionError("the ledger never exported a back-test")
