"""The ledger writer as a real process, a database of the test's own, synthetic decisions."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker_harness import WorkerProcess

if TYPE_CHECKING:
    from stream.decisions import Decision, DecisionRecord

from config.settings import Settings


@contextmanager
def private_database(settings: Settings) -> Iterator[Settings]:
    """A fresh database on the stack's PostgreSQL, migrated; dropped afterwards."""
    from ledger.schema import temporary_database

    with temporary_database(settings, "t") as own:
        yield own


class LedgerProcess(WorkerProcess):
    """`python -m cli.main ledger run` on the test's topics, key prefix and database."""

    redis_role = "ledger"
    kafka_role = "ledger"

    def __init__(self, namespace: Any, settings: Settings, registry_dir: Path, log_path: Path) -> None:
        super().__init__(namespace, registry_dir, log_path,
                         command=[sys.executable, "-m", "cli.main", "ledger", "run"],
                         CREDITRISK_POSTGRES_DATABASE=settings.postgres_database,
                         CREDITRISK_POSTGRES_PORT=str(settings.postgres_port),
                         CREDITRISK_TOPIC_OUTCOMES=namespace.topic_outcomes,
                         CREDITRISK_TOPIC_SHADOW_DECISIONS=(
                             getattr(namespace, "topic_shadow_decisions", "")
                             or settings.topic_shadow_decisions),
                         # the test's own final-decisions topic, never the shared one
                         CREDITRISK_TOPIC_FINAL_DECISIONS=(
                             getattr(namespace, "topic_final_decisions", "")
                             or settings.topic_final_decisions),
                         CREDITRISK_LEDGER_BATCH_MAX="300",
                         CREDITRISK_BACKTEST_INTERVAL_S="2")
        self.env["CREDITRISK_LEDGER_PORT"] = str(self.port)
        # A group of the namespace's own: its ACL goes with the namespace.
        group = f"{namespace.settings.worker_group}-ledger-{uuid.uuid4().hex[:10]}"
        self.env["CREDITRISK_LEDGER_GROUP"] = group
        self.settings = self.settings.model_copy(update={"ledger_group": group})
        # The ledger's own database password, not the shared stack folder with every secret.
        self.env["CREDITRISK_POSTGRES_PASSWORD"] = (
            settings.postgres_password.get_secret_value() if settings.postgres_password
            else settings.postgres_password_file.read_text().strip())


def ledger_count(settings: Settings, sql: str = "SELECT count(*) FROM decisions",
                 params: tuple[Any, ...] = ()) -> int:
    import psycopg

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        return int(connection.execute(sql, params).fetchone()[0])  # type: ignore[index]


def wait_for_rows(settings: Settings, expected: int, timeout_s: float,
                  sql: str = "SELECT count(*) FROM decisions") -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = ledger_count(settings, sql)
        if count >= expected:
            return count
        time.sleep(0.5)
    raise AssertionError(f"the ledger has {count} rows after {timeout_s}s, expected {expected}")


def synthetic_decision(index: int, decided_at: datetime | None = None,
                       model_version: str = "m-test", application_id: str | None = None,
                       **application: Any) -> tuple[Decision, DecisionRecord]:
    """A contract decision and the worker's Redis record for it (``application`` fields
    replace the record's defaults)."""
    from stream.decisions import Decision, DecisionRecord, decision_id
    from stream.reasons import Reason

    moment = decided_at or datetime.now(UTC)
    application_id = application_id or f"app-{index}"
    probability = round(0.02 + (index % 97) / 200, 6)
    decision = Decision(
        application_id=application_id, customer_id=f"cust-{index % 5000}",
        decision_id=decision_id(application_id, model_version),
        decision=("approve", "review", "decline")[index % 3],  # type: ignore[arg-type]
        probability_of_default=probability, score=700 - int(probability * 300),
        risk_grade="ABCDEFG"[index % 7],
        reasons=(Reason("R03", "revol_util", "High utilisation", 0.04),),
        model_version=model_version, policy_version="p-test",
        submitted_at=(moment - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        decided_at=moment.isoformat().replace("+00:00", "Z"))
    fields = {"loan_amnt": 1000.0 + index, "purpose": "car", "annual_inc": 50_000.0, "term": 36,
              **application}
    record = DecisionRecord(decision, fields, {"revol_util": 55.0, "delinq_2yrs": 0}, [],
                            {"applications_24h": 1}, {"bureau": 86_400.0})
    return decision, record


def store_records(settings: Settings, records: list[DecisionRecord]) -> None:
    from features.store import sync_client
    from stream.decisions import decision_key

    client = sync_client(settings, "worker")  # the worker writes decision records
    try:
        pipe = client.pipeline(transaction=False)
        for record in records:
            pipe.set(decision_key(settings.key_prefix, record.decision.application_id),
                     record.to_json(), ex=3600)
        pipe.execute()
    finally:
        client.close()
