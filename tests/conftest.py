"""Shared fixtures.

Unit tests need nothing. Tests marked ``integration`` or ``e2e`` get the real local stack:
the session fixture ``live_stack`` reuses a running one or starts it (and then stops it at
the end). Each test gets its own topic names and Redis key prefix so tests never see each
other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import PrivateRedis, redis_as  # tests/servers.py

from config.settings import Settings


@dataclass(frozen=True)
class StackNamespace:
    """Names private to one test on the shared stack."""

    settings: Settings
    topic_applications: str
    topic_decisions: str
    topic_dead_letters: str
    key_prefix: str
    topic_outcomes: str = ""

    @property
    def topics(self) -> list[str]:
        return [self.topic_applications, self.topic_decisions, self.topic_dead_letters,
                self.topic_outcomes]


@pytest.fixture(scope="session")
def live_stack() -> Iterator[Settings]:
    """The real Kafka, Redis and Prometheus, up for the whole session."""
    from infra.stack import services as stack

    settings = Settings()
    started = [s for s in stack.services(settings) if not s.answering()]
    try:
        stack.up(settings, echo=lambda line: None)
    except stack.StackError as error:
        pytest.fail(f"the local stack could not start: {error}")
    yield settings
    for service in reversed(started):
        service.stop()


@pytest.fixture
def namespace(live_stack: Settings, request: pytest.FixtureRequest) -> Iterator[StackNamespace]:
    """Fresh topics (created, 3 partitions) and a Redis key prefix for one test."""
    from infra.stack.kafka_access import provision, retire_prefix

    tag = f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in tag)
    ns = StackNamespace(
        settings=live_stack.model_copy(update={
            "topic_applications": f"t-{tag}-applications",
            "topic_decisions": f"t-{tag}-decisions",
            "topic_dead_letters": f"t-{tag}-dlq",
            "topic_outcomes": f"t-{tag}-outcomes",
            "key_prefix": f"test:{tag}:",
            "worker_group": f"t-{tag}-scoring",
        }),
        topic_applications=f"t-{tag}-applications",
        topic_decisions=f"t-{tag}-decisions",
        topic_dead_letters=f"t-{tag}-dlq",
        key_prefix=f"test:{tag}:",
        topic_outcomes=f"t-{tag}-outcomes",
    )
    provision(ns.settings, partitions=3)  # topics and each role's ACLs, as the stack does
    yield ns
    _delete_redis_keys(live_stack, ns.key_prefix)
    # Tests leave no topics or ACLs behind: a broker with thousands of partitions gets slow.
    retire_prefix(live_stack, f"t-{tag}-")


def _delete_redis_keys(settings: Settings, prefix: str) -> None:
    client = redis_as(settings, "admin")
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def stack_secrets(live_stack: Settings) -> list[str]:
    """Every credential the local stack generated (Kafka, Redis and PostgreSQL passwords), to
    prove none of them is ever written to a log, /metrics or an error message."""
    folder = live_stack.stack_secret_path("any").parent
    found = [path.read_text().strip() for path in sorted(folder.iterdir()) if path.is_file()]
    if live_stack.postgres_password_file.exists():
        found.append(live_stack.postgres_password_file.read_text().strip())
    assert len(found) >= 10, f"expected the stack's Kafka and Redis passwords in {folder}"
    return [secret for secret in found if secret]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own (the test may stop and restart it)."""
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()
