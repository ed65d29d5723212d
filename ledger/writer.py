"""The ledger writer: decisions, challengers' shadow decisions and loan outcomes from Kafka
into PostgreSQL.

One consumer (its own group, ``CREDITRISK_LEDGER_GROUP``) reads the decisions, the shadow
decisions and the loan-outcomes topics in batches of up to ``CREDITRISK_LEDGER_BATCH_MAX`` messages. For a
batch it reads the lineage of every decision from the worker's Redis records in one
round trip, writes the batch in one transaction, and only then commits the Kafka offsets:
at-least-once, and idempotent because a decision already in the ledger (same
``decision_id``) is left as it was. A writer killed anywhere loses nothing — the batch is
read again and the rows it had already written are skipped. PostgreSQL or Redis outages
are waited out with backoff; a message that is not a decision or an outcome is counted
and skipped (its offset is logged, never its content).

A challenger's shadow decision goes to ``shadow_decisions`` only (:mod:`ledger.challenger`),
in the same transaction and just as idempotently: it never enters the review queue nor
becomes a final decision.

An outcome belongs to the portfolio its message names (``portfolio``: the dataset name of
the models that decide those loans, as their cards record it); it is classed by that
portfolio's model card (:mod:`ledger.cards`) and never replaces another portfolio's outcome
of the same id. An outcome that names none is kept under the portfolio '' (classed by the
cards of ``CREDITRISK_OUTCOME_DATASET``) and counts for whichever model decided its loan.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol

from prometheus_client import generate_latest

from config.settings import Settings
from ledger.backtest import ModelCards, VersionBacktest, run_backtest
from ledger.cards import OutcomeClass
from ledger.challenger import insert_shadow_decisions
from ledger.finals import record_model_outcomes
from ledger.metrics import LedgerMetrics
from ledger.rows import SqlValue, decision_row, has_lineage, shadow_row
from ledger.store import insert_decisions, parse_as_of, upsert_outcomes
from stream.decisions import Decision, DecisionError, DecisionStore, ShadowDecision

if TYPE_CHECKING:
    from features.store import SyncRedis
    from ledger.store import Ledger

log = logging.getLogger(__name__)


class OutcomeClassifier(Protocol):
    """Classes a portfolio's loan statuses (:class:`ledger.cards.RegistryCards`)."""

    default_portfolio: str

    def classify(self, portfolio: str, status: str) -> OutcomeClass: ...


class OutcomeCards(ModelCards, OutcomeClassifier, Protocol):
    """The model cards as the writer reads them: outcome classes and the back-test's facts."""


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
    finals_written: int = 0        # automatic approves and declines, final at once
    review_items_entered: int = 0  # review decisions queued for an underwriter
    shadow_new: int = 0            # challengers' shadow decisions written now
    shadow_duplicate: int = 0      # shadow decisions already in the ledger
    unreadable: int = 0
    lineage_missing: int = 0


def parse_decision(value: bytes | None) -> Decision | None:
    """The decision in a message, or None when it is not one (the contract is checked)."""
    try:
        return Decision.from_json(value or b"")
    except DecisionError:
        return None


def parse_shadow_decision(value: bytes | None) -> ShadowDecision | None:
    """The shadow decision in a message, or None when it is not one."""
    try:
        return ShadowDecision.from_json(value or b"")
    except DecisionError:
        return None


def outcome_row(value: bytes | None, cards: OutcomeClassifier,
                message: LedgerMessage) -> tuple[SqlValue, ...] | None:
    """One outcome row (``ledger.rows.OUTCOME_COLUMNS``), or None when the message is not an
    outcome."""
    try:
        outcome = json.loads(value or b"")
        application_id, status = outcome["application_id"], outcome["loan_status"]
        as_of = parse_as_of(outcome["as_of"])
        portfolio = outcome.get("portfolio") or ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all(isinstance(text, str) for text in (application_id, status, portfolio)) \
            or not application_id:
        return None
    outcome_class = cards.classify(portfolio or cards.default_portfolio, status)
    return (portfolio, application_id, status, outcome_class, as_of, message.topic,
            message.partition, message.offset)


class LedgerWriter:
    """Writes batches of messages to the ledger (no Kafka here: the loop feeds it)."""

    def __init__(self, settings: Settings, cards: OutcomeCards, metrics: LedgerMetrics,
                 redis_client: SyncRedis) -> None:
        self.settings = settings
        self.cards = cards
        self.metrics = metrics
        self.records = DecisionStore(redis_client, settings.key_prefix)
        self.connection: Ledger | None = None

    def _connected(self) -> Ledger:
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
        shadows = []
        for message in messages:
            if message.topic == self.settings.topic_outcomes:
                row = outcome_row(message.value, self.cards, message)
                if row is None:
                    self._unreadable("outcome", message, report)
                else:
                    outcomes.append(row)
                continue
            if message.topic == self.settings.topic_shadow_decisions:
                shadow = parse_shadow_decision(message.value)
                if shadow is None:
                    self._unreadable("shadow_decision", message, report)
                else:
                    shadows.append(shadow_row(shadow, message))
                continue
            decision = parse_decision(message.value)
            if decision is None:
                self._unreadable("decision", message, report)
            else:
                decisions.append((message, decision))
        records = self.records.records([d.application_id for _m, d in decisions])
        rows = [decision_row(decision, record, message)
                for (message, decision), record in zip(decisions, records, strict=True)]
        report.lineage_missing = sum(not has_lineage(row) for row in rows)
        connection = self._connected()
        with connection.transaction():
            report.decisions_new = insert_decisions(connection, rows)
            recorded = record_model_outcomes(
                connection, [decision for _message, decision in decisions],
                timedelta(hours=self.settings.review_service_level_hours))
            report.finals_written, report.review_items_entered = (recorded.finals,
                                                                  recorded.review_items)
            report.outcomes_written = upsert_outcomes(connection, outcomes)
            report.shadow_new = insert_shadow_decisions(connection, shadows)
        report.decisions_duplicate = len(rows) - report.decisions_new
        report.shadow_duplicate = len(shadows) - report.shadow_new
        self._count(messages, report, time.perf_counter() - started)
        return report

    def _unreadable(self, kind: str, message: LedgerMessage, report: BatchReport) -> None:
        report.unreadable += 1
        self.metrics.errors.labels(kind=f"unreadable_{kind}").inc()
        log.warning("skipped a message that is not a %s: %s[%d]@%d", kind, message.topic,
                    message.partition, message.offset)

    def _count(self, messages: Sequence[LedgerMessage], report: BatchReport, seconds: float) -> None:
        m = self.metrics
        streams = self.streams()
        for message in messages:
            m.messages.labels(stream=streams.get(message.topic, "decisions")).inc()
        m.rows_written.labels(table="decisions").inc(report.decisions_new)
        m.rows_written.labels(table="shadow_decisions").inc(report.shadow_new)
        m.rows_written.labels(table="loan_outcomes").inc(report.outcomes_written)
        m.rows_written.labels(table="final_decisions").inc(report.finals_written)
        m.rows_written.labels(table="review_items").inc(report.review_items_entered)
        m.duplicates.inc(report.decisions_duplicate)
        m.lineage_missing.inc(report.lineage_missing)
        m.write_seconds.observe(seconds)
        m.last_write.set(time.time())

    def streams(self) -> dict[str, str]:
        """Each topic the writer reads → its ``stream`` label."""
        return {self.settings.topic_decisions: "decisions",
                self.settings.topic_shadow_decisions: "shadow_decisions",
                self.settings.topic_outcomes: "outcomes"}

    def refresh_backtest(self) -> None:
        """Back-test every model version and export it (and the table sizes) as metrics."""
        connection = self._connected()
        with connection.transaction():
            results = run_backtest(connection, self.cards)
            for table in ("decisions", "loan_outcomes"):
                count = connection.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", (table,)).fetchone()
                self.metrics.rows.labels(table=table).set(max(int(count[0]), 0) if count else 0)
        for result in results:
            self._export(result)
        self.metrics.backtest_last_run.set(time.time())

    def _export(self, result: VersionBacktest) -> None:
        m, version = self.metrics, result.model_version
        m.backtest_matured.labels(model_version=version).set(result.matured)
        for metric, gauge, estimate in (
                ("auc", m.backtest_auc, result.auc), ("ks", m.backtest_ks, result.ks),
                ("calibration_error", m.backtest_calibration_error, result.calibration_error),
                ("reference_auc", m.backtest_reference_auc, result.reference_auc)):
            if estimate is None:
                continue
            gauge.labels(model_version=version).set(estimate.value)
            for bound, value in (("low", estimate.low), ("high", estimate.high)):
                if value is not None:
                    m.backtest_interval.labels(model_version=version, metric=metric,
                                               bound=bound).set(value)
        if result.mean_predicted_pd is not None:
            m.backtest_predicted_pd.labels(model_version=version).set(result.mean_predicted_pd)
        if result.bad_rate is not None:
            m.backtest_bad_rate.labels(model_version=version, risk_grade="all").set(result.bad_rate)
        for row in result.by_grade.to_dict("records"):
            m.backtest_bad_rate.labels(model_version=version,
                                       risk_grade=str(row["risk_grade"])).set(row["bad_rate"])


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

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="ledger-http", daemon=True).start()
    return server
