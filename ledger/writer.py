"""The ledger writer: decisions and loan outcomes from Kafka into PostgreSQL.

One consumer (its own group, ``CREDITRISK_LEDGER_GROUP``) reads the decisions and the
loan-outcomes topics in batches of up to ``CREDITRISK_LEDGER_BATCH_MAX`` messages. For a
batch it reads the lineage of every decision from the worker's Redis records in one
round trip, writes the batch in one transaction, and only then commits the Kafka offsets:
at-least-once, and idempotent because a decision already in the ledger (same
``decision_id``) is left as it was. A writer killed anywhere loses nothing — the batch is
read again and the rows it had already written are skipped. PostgreSQL or Redis outages
are waited out with backoff; a message that is not a decision or an outcome is counted
and skipped (its offset is logged, never its content).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import generate_latest

from config.settings import Settings
from ledger.backtest import run_backtest
from ledger.metrics import LedgerMetrics
from ledger.store import as_json, insert_decisions, parse_as_of, upsert_outcomes
from stream.decisions import Decision, DecisionError, DecisionRecord, DecisionStore

log = logging.getLogger(__name__)

ClassifyOutcome = Callable[[str], str]  # loan status → bad / good / open / unknown


@dataclass(frozen=True)
class LedgerMessage:
    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass
class BatchReport:
    decisions_new: int = 0
    decisions_duplicate: int = 0
    outcomes_written: int = 0
    unreadable: int = 0
    lineage_missing: int = 0


def parse_decision(value: bytes | None) -> Decision | None:
    """The decision in a message, or None when it is not one (the contract is checked)."""
    try:
        return Decision.from_json(value or b"")
    except DecisionError:
        return None


def decision_row(decision: Decision, record: DecisionRecord | None,
                 message: LedgerMessage) -> tuple[Any, ...]:
    """One ledger row: the decision, and its lineage when the worker's record matches it."""
    if record is not None and record.decision.decision_id != decision.decision_id:
        record = None  # the record in Redis is of another model version's decision
    reasons = [asdict(reason) for reason in decision.reasons]
    return (
        decision.decision_id, decision.application_id, decision.customer_id,
        decision.decision, decision.probability_of_default, decision.score,
        decision.risk_grade, as_json(reasons), as_json(list(decision.missing_features)),
        decision.model_version, decision.policy_version, decision.submitted_at,
        decision.decided_at,
        as_json(record.application) if record else None,
        as_json(record.features) if record else None,
        as_json(record.feature_age_seconds) if record else None,
        as_json(record.stale_features) if record else None,
        as_json(record.velocity) if record else None,
        record is not None,
        message.topic, message.partition, message.offset,
    )


def outcome_row(value: bytes | None, classify: ClassifyOutcome,
                message: LedgerMessage) -> tuple[Any, ...] | None:
    """One outcome row, or None when the message is not an outcome."""
    try:
        outcome = json.loads(value or b"")
        application_id, status = outcome["application_id"], outcome["loan_status"]
        as_of = parse_as_of(outcome["as_of"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(application_id, str) or not isinstance(status, str) or not application_id:
        return None
    return (application_id, status, classify(status), as_of, message.topic, message.partition,
            message.offset)


class LedgerWriter:
    """Writes batches of messages to the ledger (no Kafka here: the loop feeds it)."""

    def __init__(self, settings: Settings, classify: ClassifyOutcome, metrics: LedgerMetrics,
                 redis_client: Any, reference_auc: Callable[[str], float | None] = lambda _v: None,
                 ) -> None:
        self.settings = settings
        self.classify = classify
        self.metrics = metrics
        self.records = DecisionStore(redis_client, settings.key_prefix)
        self.reference_auc = reference_auc
        self.connection: Any = None

    def _connected(self) -> Any:
        import psycopg

        if self.connection is None or self.connection.closed:
            self.connection = psycopg.connect(self.settings.postgres_conninfo())
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def write(self, messages: Sequence[LedgerMessage]) -> BatchReport:
        """Write one batch in one transaction; raises on an outage (nothing is then written)."""
        started = time.perf_counter()
        report = BatchReport()
        decisions: list[tuple[LedgerMessage, Decision]] = []
        outcomes = []
        for message in messages:
            if message.topic == self.settings.topic_outcomes:
                row = outcome_row(message.value, self.classify, message)
                if row is None:
                    self._unreadable("outcome", message, report)
                else:
                    outcomes.append(row)
                continue
            decision = parse_decision(message.value)
            if decision is None:
                self._unreadable("decision", message, report)
            else:
                decisions.append((message, decision))
        records = self.records.records([d.application_id for _m, d in decisions])
        rows = [decision_row(decision, record, message)
                for (message, decision), record in zip(decisions, records, strict=True)]
        report.lineage_missing = sum(not row[18] for row in rows)
        connection = self._connected()
        with connection.transaction():
            report.decisions_new = insert_decisions(connection, rows)
            report.outcomes_written = upsert_outcomes(connection, outcomes)
        report.decisions_duplicate = len(rows) - report.decisions_new
        self._count(messages, report, time.perf_counter() - started)
        return report

    def _unreadable(self, kind: str, message: LedgerMessage, report: BatchReport) -> None:
        report.unreadable += 1
        self.metrics.errors.labels(kind=f"unreadable_{kind}").inc()
        log.warning("skipped a message that is not a %s: %s[%d]@%d", kind, message.topic,
                    message.partition, message.offset)

    def _count(self, messages: Sequence[LedgerMessage], report: BatchReport, seconds: float) -> None:
        m = self.metrics
        outcomes = sum(message.topic == self.settings.topic_outcomes for message in messages)
        m.messages.labels(stream="outcomes").inc(outcomes)
        m.messages.labels(stream="decisions").inc(len(messages) - outcomes)
        m.rows_written.labels(table="decisions").inc(report.decisions_new)
        m.rows_written.labels(table="loan_outcomes").inc(report.outcomes_written)
        m.duplicates.inc(report.decisions_duplicate)
        m.lineage_missing.inc(report.lineage_missing)
        m.write_seconds.observe(seconds)
        m.last_write.set(time.time())

    def refresh_backtest(self) -> None:
        """Back-test every model version and export it (and the table sizes) as metrics."""
        connection = self._connected()
        with connection.transaction():
            results = run_backtest(connection, self.reference_auc)
            for table in ("decisions", "loan_outcomes"):
                count = connection.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", (table,)).fetchone()
                self.metrics.rows.labels(table=table).set(max(int(count[0]), 0) if count else 0)
        m = self.metrics
        for result in results:
            version = result.model_version
            m.backtest_matured.labels(model_version=version).set(result.matured)
            for gauge, value in ((m.backtest_auc, result.auc), (m.backtest_ks, result.ks),
                                 (m.backtest_calibration_error, result.calibration_error),
                                 (m.backtest_predicted_pd, result.mean_predicted_pd),
                                 (m.backtest_reference_auc, result.reference_auc)):
                if value is not None:
                    gauge.labels(model_version=version).set(value)
            if result.bad_rate is not None:
                m.backtest_bad_rate.labels(model_version=version, risk_grade="all").set(result.bad_rate)
            for row in result.by_grade.to_dict("records"):
                m.backtest_bad_rate.labels(model_version=version,
                                           risk_grade=str(row["risk_grade"])).set(row["bad_rate"])
        m.backtest_last_run.set(time.time())


class HealthState:
    def __init__(self) -> None:
        self.assigned = False
        self.last_error: str | None = None
        self.last_batch_at: float | None = None


def serve_http(host: str, port: int, metrics: LedgerMetrics, health: HealthState) -> ThreadingHTTPServer:
    """/metrics (Prometheus) and /health on a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, kind = generate_latest(metrics.registry), 200, "text/plain; version=0.0.4"
            elif self.path.startswith("/health"):
                ok = health.assigned and health.last_error is None
                body = json.dumps({"ok": ok, "kafka_assigned": health.assigned,
                                   "last_error": health.last_error,
                                   "last_batch_at": health.last_batch_at}).encode()
                status, kind = (200 if ok else 503), "application/json"
            else:
                body, status, kind = b"not found", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="ledger-http", daemon=True).start()
    return server
