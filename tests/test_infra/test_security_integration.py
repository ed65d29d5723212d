"""The default stack is authenticated: who is refused, who may do what, and no topic or
secret appears by accident. On the real Kafka and Redis the project starts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr

from config.kafka_auth import KafkaRole, aiokafka_options, kafka_python_options
from config.settings import Settings

pytestmark = pytest.mark.integration


def _producer_starts(settings: Settings, role: KafkaRole = "producer") -> bool:
    """Whether an aiokafka producer with these settings gets past bootstrap (authentication)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    async def attempt() -> bool:
        producer = AIOKafkaProducer(**aiokafka_options(settings, role), request_timeout_ms=5000)
        try:
            await producer.start()
            return True
        except KafkaConnectionError:
            return False
        finally:
            await producer.stop()

    return asyncio.run(attempt())


def _send(settings: Settings, role: KafkaRole, topic: str) -> BaseException | None:
    """Produce one message as ``role``; the error Kafka answered with, or None when written."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python_options(settings, role), max_block_ms=5000,
                             acks="all", retries=0)
    try:
        producer.send(topic, key=b"k", value=b"{}").get(timeout=10)
        return None
    except Exception as error:  # noqa: BLE001 - what was refused is the answer
        return error
    finally:
        producer.close(timeout=5)


def _readable(settings: Settings, role: KafkaRole, topic: str) -> int:
    """Messages ``role`` reads from ``topic`` (no group) in a few polls; 0 when Kafka shows it
    no partition of the topic."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_options(settings, role), group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            return 0
        consumer.assign([TopicPartition(topic, partition) for partition in partitions])
        return sum(len(records) for _ in range(10)
                   for records in consumer.poll(timeout_ms=500).values())
    finally:
        consumer.close()


def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(live_stack: Settings) -> None:
    assert _producer_starts(live_stack)  # the producer's own credentials work
    assert not _producer_starts(live_stack.model_copy(update={"kafka_security_protocol": "PLAINTEXT"}))
    assert not _producer_starts(live_stack.model_copy(update={"kafka_security_protocol": "SSL"}))
    wrong = live_stack.model_copy(update={"kafka_username": "producer",
                                          "kafka_password": SecretStr("not-the-password")})
    assert not _producer_starts(wrong)
    stranger = live_stack.model_copy(update={"kafka_username": "mallory",
                                             "kafka_password": SecretStr("guess-123456")})
    assert not _producer_starts(stranger)


def test_each_principal_may_do_its_job_and_nothing_else(namespace) -> None:
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    settings = namespace.settings
    assert _send(settings, "producer", namespace.topic_applications) is None
    assert _send(settings, "worker", namespace.topic_decisions) is None
    # A downstream reader cannot inject applications or decisions; the upstream producer
    # cannot forge decisions; the worker cannot write loan outcomes.
    for role, topic in (("reader", namespace.topic_applications), ("reader", namespace.topic_decisions),
                        ("producer", namespace.topic_decisions), ("worker", namespace.topic_outcomes),
                        ("ledger", namespace.topic_decisions)):
        assert isinstance(_send(settings, role, topic), TopicAuthorizationFailedError), (role, topic)

    # The reader reads decisions but not the applications (personal data) upstream sent: to
    # it the topic has no partitions and yields nothing, while the worker reads it.
    assert _readable(settings, "worker", namespace.topic_applications) >= 1
    assert _readable(settings, "reader", namespace.topic_applications) == 0
    assert _readable(settings, "reader", namespace.topic_decisions) >= 1

    from kafka import KafkaConsumer

    # A principal cannot join another role's consumer group (and so move its offsets).
    intruder = KafkaConsumer(namespace.topic_decisions, **kafka_python_options(settings, "reader"),
                             group_id=settings.ledger_group, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000)
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            list(intruder)
    finally:
        intruder.close()


def test_producing_to_a_topic_that_does_not_exist_fails_and_creates_nothing(namespace) -> None:
    from kafka.errors import KafkaTimeoutError

    from infra.stack.kafka_access import admin_client

    typo = f"{namespace.topic_applications}s-{uuid.uuid4().hex[:6]}"
    # The producer has no right on the misspelt name; even the admin gets no topic by using it.
    assert _send(namespace.settings, "producer", typo) is not None
    assert isinstance(_send(namespace.settings, "admin", typo), KafkaTimeoutError)
    with admin_client(namespace.settings) as admin:
        assert typo not in admin.list_topics()
