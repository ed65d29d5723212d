"""The transactional outbox that feeds ``loan-final-decisions``.

A final decision is made when its ``final_decisions`` row is committed: the ledger writer,
the review queue and the overrides write that row in the same transaction as the act that
made the decision final, and nobody sends to Kafka inside a database transaction. The
PostgreSQL row is the commitment; the topic is fed from it. :func:`publish_pending` reads
the rows that have no ``final_decision_publications`` row yet, oldest first (``final_id``
order, so an application's revisions reach its partition in order), sends each — key: the
application id, value: the row's ``message`` as compact JSON — with an idempotent producer
(``acks=all``), waits until Kafka has acknowledged every one, and only then records their
topic, partition and offset in one transaction.

Why an outbox: a database commit and a Kafka send cannot be one atomic act. Sending first
could announce a decision the database then refuses; committing and sending with no record
of the send loses the message when the process dies in between. Here a crash between the
send and the record only publishes the same rows again: at least once, and every copy
identical, because the content was fixed when the row was written (consumers keep one
message per ``(application_id, revision)``). A Kafka outage leaves the rows waiting —
:class:`FinalsPublisher` retries with backoff, logs the outage once and counts it — and
loses none.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from config.kafka_auth import KafkaCredentialsMissing, kafka_python_options
from config.settings import Settings
from ledger.metrics import LedgerMetrics

if TYPE_CHECKING:
    from ledger.store import Ledger

log = logging.getLogger(__name__)

BATCH_MAX = 500          # rows sent and recorded together
SEND_TIMEOUT_S = 30.0    # longest wait for Kafka to acknowledge one batch
BUSY_FOR_S = 1.0         # one call publishes batch after batch for about this long
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0


class Placed(Protocol):
    """Where Kafka put a message (kafka-python's ``RecordMetadata``)."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class Delivery(Protocol):
    """A send in flight (kafka-python's ``FutureRecordMetadata``)."""

    def get(self, timeout: float | None = ...) -> Placed: ...


class Producer(Protocol):
    """What the outbox asks of a Kafka producer (kafka-python's ``KafkaProducer``)."""

    def send(self, topic: str, value: bytes | None = ..., key: bytes | None = ...) -> Delivery: ...

    def flush(self, timeout: float | None = ...) -> None: ...

    def close(self, timeout: float | None = ...) -> None: ...


@dataclass(frozen=True)
class PendingFinal:
    """A final decision not yet published: its row id, its key and the bytes to publish."""

    final_id: int
    application_id: str
    value: bytes


def message_bytes(message: object) -> bytes:
    """A stored ``message`` as compact JSON: the same row gives the same bytes every time."""
    if isinstance(message, bytes | str):
        message = json.loads(message)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


_PENDING = (
    "SELECT f.final_id, f.application_id, f.message FROM final_decisions f "
    "WHERE NOT EXISTS (SELECT 1 FROM final_decision_publications p WHERE p.final_id = f.final_id) "
    "ORDER BY f.final_id LIMIT %s")
_RECORD = (
    "INSERT INTO final_decision_publications (final_id, topic, kafka_partition, kafka_offset) "
    "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::bigint[]) "
    "ON CONFLICT (final_id) DO NOTHING")


def pending_finals(connection: Ledger, limit: int = BATCH_MAX) -> list[PendingFinal]:
    """The oldest final decisions without a publication, in ``final_id`` order."""
    rows = connection.execute(_PENDING, (limit,)).fetchall()
    return [PendingFinal(int(str(final_id)), str(application_id), message_bytes(message))
            for final_id, application_id, message in rows]


def publish_pending(connection: Ledger, producer: Producer, topic: str,
                    limit: int = BATCH_MAX) -> int:
    """Publish up to ``limit`` pending final decisions and record them; how many. Raises
    the producer's error when Kafka did not take every one (nothing is then recorded)."""
    pending = pending_finals(connection, limit)
    if not pending:
        return 0
    deliveries = [producer.send(topic, value=row.value, key=row.application_id.encode())
                  for row in pending]
    producer.flush(timeout=SEND_TIMEOUT_S)
    placed = [delivery.get(timeout=SEND_TIMEOUT_S) for delivery in deliveries]
    record_publications(connection, topic, pending, placed)
    return len(pending)


def record_publications(connection: Ledger, topic: str,
                        published: Sequence[PendingFinal], placed: Sequence[Placed]) -> None:
    """The publications rows of acknowledged sends, in one transaction."""
    with connection.transaction():
        connection.execute(_RECORD, ([row.final_id for row in published],
                                     [topic] * len(published),
                                     [where.partition for where in placed],
                                     [where.offset for where in placed]))


def finals_producer(settings: Settings) -> Producer:
    """kafka-python's idempotent producer as the ``finals`` principal."""
    from kafka import KafkaProducer

    producer: Producer = KafkaProducer(
        **kafka_python_options(settings, "finals"), acks="all", enable_idempotence=True,
        linger_ms=5, client_id="creditrisk-finals", max_block_ms=5_000,
        delivery_timeout_ms=int(SEND_TIMEOUT_S * 1000), request_timeout_ms=10_000)
    return producer


class FinalsPublisher:
    """Runs the outbox from the ledger writer's loop: :meth:`publish` sends what is pending,
    and waits out a Kafka outage (the next attempt after a growing pause; one log line per
    outage; ``creditrisk_ledger_errors_total{kind="kafka_publish"}`` counts the attempts)."""

    def __init__(self, settings: Settings, metrics: LedgerMetrics,
                 new_producer: Callable[[Settings], Producer] = finals_producer) -> None:
        self.settings = settings
        self.metrics = metrics
        self.new_producer = new_producer
        self.producer: Producer | None = None
        self.outage_since: float | None = None
        self.next_attempt = 0.0
        self.backoff = BACKOFF_FIRST_S
        metrics.finals_published.inc(0)
        metrics.errors.labels(kind="kafka_publish")

    def publish(self, connection: Ledger) -> int:
        """Publish pending final decisions for about a second; how many were published.
        PostgreSQL errors are the caller's (it reconnects); Kafka's are waited out here."""
        from kafka.errors import KafkaError

        now = time.monotonic()
        if now < self.next_attempt:
            return 0
        published = 0
        try:
            if self.producer is None:
                self.producer = self.new_producer(self.settings)
            while time.monotonic() - now < BUSY_FOR_S:
                sent = publish_pending(connection, self.producer, self.settings.topic_final_decisions)
                published += sent
                self.metrics.finals_published.inc(sent)
                if sent < BATCH_MAX:
                    break
        except (KafkaError, KafkaCredentialsMissing, OSError) as error:
            self._failed(error)
            return published
        if self.outage_since is not None:
            log.info("final decisions are published again after %.0f s",
                     time.monotonic() - self.outage_since)
        self.outage_since, self.backoff = None, BACKOFF_FIRST_S
        return published

    def _failed(self, error: BaseException) -> None:
        self.metrics.errors.labels(kind="kafka_publish").inc()
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.warning("final decisions cannot be published (%s: %s); they wait in the ledger "
                        "and are retried", type(error).__name__, error)
        self.close()
        self.next_attempt = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout=0)
            except Exception:  # a producer that cannot close is dropped all the same
                log.debug("the final decisions' producer did not close cleanly", exc_info=True)
            self.producer = None
