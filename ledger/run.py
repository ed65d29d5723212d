"""The ledger writer's loop: poll a batch, write it, commit the offsets; export metrics."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from config.kafka_auth import kafka_python_options
from config.settings import Settings
from ledger.metrics import LedgerMetrics
from ledger.writer import HealthState, LedgerMessage, LedgerWriter, OutcomeCards, serve_http

if TYPE_CHECKING:
    from kafka import KafkaConsumer

log = logging.getLogger(__name__)
LAG_EVERY_S = 5.0


def run_ledger(settings: Settings, cards: OutcomeCards, stop: threading.Event,
               metrics: LedgerMetrics | None = None) -> None:
    """Run until ``stop`` is set: decisions and outcomes → PostgreSQL, at-least-once."""
    import psycopg
    import redis
    from kafka import KafkaConsumer

    from features.store import sync_client
    from ledger.schema import migrate

    metrics = metrics or LedgerMetrics()
    for stream in ("decisions", "outcomes"):
        metrics.messages.labels(stream=stream)
    for kind in ("unreadable_decision", "unreadable_outcome", "postgres", "redis"):
        metrics.errors.labels(kind=kind)
    health = HealthState()
    server = serve_http(settings.worker_host, settings.ledger_port, metrics, health)
    for line in migrate(settings.postgres_conninfo()):
        log.info("%s", line)
    writer = LedgerWriter(settings, cards, metrics, sync_client(settings, "ledger"))
    consumer = KafkaConsumer(
        settings.topic_decisions, settings.topic_outcomes,
        **kafka_python_options(settings, "ledger"), group_id=settings.ledger_group,
        enable_auto_commit=False, auto_offset_reset="earliest", client_id="creditrisk-ledger",
        max_poll_records=settings.ledger_batch_max, fetch_max_bytes=16_000_000)
    names = {settings.topic_decisions: "decisions", settings.topic_outcomes: "outcomes"}
    next_lag = next_backtest = 0.0
    try:
        while not stop.is_set():
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
