"""The ledger writer's loop: poll a batch, write it, commit the offsets; export metrics.

Beside the decisions, the loop keeps the casework moving (:class:`Casework`): after each
written batch, and at least every second, it publishes the final decisions waiting in the
outbox (:mod:`ledger.outbox`); every few seconds it produces the adverse-action notices
final declines still owe, and reads the review, override, outbox and notice figures into
its metrics. A failure there is logged by kind, counted, and tried again next time: it
never stops the decisions being written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from config.kafka_auth import kafka_python_options
from config.settings import Settings
from ledger.casework_metrics import refresh_casework_metrics
from ledger.metrics import LedgerMetrics
from ledger.outbox import FinalsPublisher
from ledger.writer import HealthState, LedgerMessage, LedgerWriter, OutcomeCards, serve_http

if TYPE_CHECKING:
    from kafka import KafkaConsumer

    from ledger.store import Ledger

log = logging.getLogger(__name__)
LAG_EVERY_S = 5.0
PUBLISH_EVERY_S = 1.0             # the outbox, at the latest (and after every written batch)
NOTICES_EVERY_S = 5.0             # adverse-action notices the final declines still owe
# Notices rendered per round (about 25 ms each): a backlog never holds the writer's loop for
# more than a second or two; the next round takes the rest.
NOTICES_PER_ROUND = 50
CASEWORK_METRICS_EVERY_S = 10.0   # review queue, overrides, outbox and notice figures


def run_ledger(settings: Settings, cards: OutcomeCards, stop: threading.Event,
               metrics: LedgerMetrics | None = None) -> None:
    """Run until ``stop`` is set: decisions, shadow decisions and outcomes → PostgreSQL,
    at-least-once."""
    import psycopg
    import redis
    from kafka import KafkaConsumer

    from features.store import sync_client
    from ledger.schema import let_console_role_log_in, migrate

    metrics = metrics or LedgerMetrics()
    for stream in ("decisions", "shadow_decisions", "outcomes"):
        metrics.messages.labels(stream=stream)
    for kind in ("unreadable_decision", "unreadable_shadow_decision", "unreadable_outcome",
                 "postgres", "redis", *Casework.KINDS):
        metrics.errors.labels(kind=kind)
    health = HealthState()
    server = serve_http(settings.worker_host, settings.ledger_port, metrics, health)
    for line in migrate(settings.postgres_conninfo()):
        log.info("%s", line)
    if settings.console_postgres_password is not None:  # a deployment's (the stack sets its own)
        let_console_role_log_in(settings.postgres_conninfo(), settings.console_postgres_user,
                                settings.console_postgres_password.get_secret_value())
    writer = LedgerWriter(settings, cards, metrics, sync_client(settings, "ledger"))
    consumer = KafkaConsumer(
        settings.topic_decisions, settings.topic_shadow_decisions, settings.topic_outcomes,
        **kafka_python_options(settings, "ledger"), group_id=settings.ledger_group,
        enable_auto_commit=False, auto_offset_reset="earliest", client_id="creditrisk-ledger",
        max_poll_records=settings.ledger_batch_max, fetch_max_bytes=16_000_000)
    names = writer.streams()
    casework = Casework(settings, metrics)
    next_lag = next_backtest = 0.0
    try:
        while not stop.is_set():
            written = False
            polled = consumer.poll(timeout_ms=500, max_records=settings.ledger_batch_max)
            health.assigned = bool(consumer.assignment())
            messages = [LedgerMessage(r.topic, r.partition, r.offset, r.value)
                        for records in polled.values() for r in records]
            if messages:
                _write_until_done(writer, messages, metrics, health, stop,
                                  (psycopg.OperationalError, redis.RedisError, OSError))
                if stop.is_set() and health.last_error is not None:
                    break  # not written: leave the offsets uncommitted
                consumer.commit()
                health.last_batch_at = time.time()
                written = True
            casework.run_due(written)
            now = time.monotonic()
            if now >= next_lag:
                _report_lag(consumer, names, metrics)
                next_lag = now + LAG_EVERY_S
            if now >= next_backtest:
                try:
                    writer.refresh_backtest()
                except psycopg.Error as error:
                    log.warning("back-test refresh failed (%s)", type(error).__name__)
                    writer.close()
                next_backtest = now + settings.backtest_interval_s
    finally:
        consumer.close(autocommit=False)
        writer.close()
        casework.close()
        server.shutdown()


def _write_until_done(writer: LedgerWriter, messages: list[LedgerMessage], metrics: LedgerMetrics,
                      health: HealthState, stop: threading.Event,
                      outages: tuple[type[BaseException], ...]) -> None:
    backoff = 0.2
    while True:
        try:
            writer.write(messages)
            health.last_error = None
            return
        except outages as error:
            kind = "redis" if "redis" in type(error).__module__ else "postgres"
            metrics.errors.labels(kind=kind).inc()
            health.last_error = f"{kind} unavailable ({type(error).__name__})"
            log.warning("%s; the batch will be retried", health.last_error)
            writer.close()
        if stop.wait(backoff):
            return
        backoff = min(backoff * 2, 10.0)


def _report_lag(consumer: KafkaConsumer, names: dict[str, str], metrics: LedgerMetrics) -> None:
    assignment = list(consumer.assignment())
    if not assignment:
        return
    ends = consumer.end_offsets(assignment)
    lag = dict.fromkeys(names.values(), 0)
    for tp in assignment:
        lag[names[tp.topic]] += max(int(ends.get(tp, 0)) - int(consumer.position(tp)), 0)
    for stream, value in lag.items():
        metrics.lag.labels(stream=stream).set(value)


class Casework:
    """What the writer does beside writing, on a connection of its own (autocommit: each
    step takes the transactions it needs): publish the outbox, produce missing notices,
    refresh the casework metrics. Each failure is counted under its kind and logged once
    until that kind works again."""

    KINDS = ("outbox", "kafka_publish", "notices", "casework_metrics")

    def __init__(self, settings: Settings, metrics: LedgerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.publisher = FinalsPublisher(settings, metrics)
        self.connection: Ledger | None = None
        self.due = {"outbox": 0.0, "notices": 0.0, "casework_metrics": 0.0}
        self.failing: set[str] = set()

    def run_due(self, wrote_batch: bool) -> None:
        now = time.monotonic()
        if wrote_batch or now >= self.due["outbox"]:
            self._attempt("outbox", self.publisher.publish, PUBLISH_EVERY_S)
        if now >= self.due["notices"]:
            self._attempt("notices", self._produce_notices, NOTICES_EVERY_S)
        if now >= self.due["casework_metrics"]:
            self._attempt("casework_metrics", lambda connection: refresh_casework_metrics(
                connection, self.settings, self.metrics), CASEWORK_METRICS_EVERY_S)

    def _produce_notices(self, connection: Ledger) -> None:
        from ledger.notices import produce_missing_notices

        produced = produce_missing_notices(connection, self.settings, limit=NOTICES_PER_ROUND)
        self.metrics.notices_produced.inc(produced)

    def _attempt(self, kind: str, step: Callable[[Ledger], object],
                 every_s: float) -> None:
        self.due[kind] = time.monotonic() + every_s
        try:
            step(self._connected())
        except Exception as error:  # no casework failure may stop the writer
            self.metrics.errors.labels(kind=kind).inc()
            if kind not in self.failing:
                # The type only: a message could quote an applicant's data.
                log.warning("%s failed (%s); tried again in %.0f s", kind,
                            type(error).__name__, every_s)
                log.debug("%s failure", kind, exc_info=True)
            self.failing.add(kind)
            self._close_connection()
            return
        if kind in self.failing:
            self.failing.discard(kind)
            log.info("%s works again", kind)

    def _connected(self) -> Ledger:
        import psycopg

        if self.connection is None or self.connection.closed:
            self.connection = psycopg.connect(self.settings.postgres_conninfo(), autocommit=True)
        return self.connection

    def _close_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def close(self) -> None:
        self.publisher.close()
        self._close_connection()
