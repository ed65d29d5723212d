"""Final decisions reach `loan-final-decisions` from the ledger's transactional outbox: each
one, with exactly the content stored in PostgreSQL, through a SIGKILL of the writer; only the
`finals` principal may write the topic. And every panel of the review dashboard shows data
from a real ledger writer scraped by the stack's Prometheus."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from ledger_harness import LedgerProcess, ledger_count, private_database, synthetic_decision
from worker_harness import produce

from config.kafka_auth import kafka_python_options
from config.settings import Settings

pytestmark = [pytest.mark.e2e]

FINALS = "SELECT count(*) FROM final_decisions"
PUBLISHED = "SELECT count(*) FROM final_decision_publications"


def _final(index: int, revision: int = 1, outcome: Literal["approve", "decline"] = "decline",
           by: str = "model") -> Any:
    from ledger.finals import FinalDecisionMessage

    return FinalDecisionMessage(
        application_id=f"direct-{index}", customer_id=f"cust-{index}", revision=revision,
        final_decision=outcome, model_decision="review" if by != "model" else outcome,
        decided_by=by, reason_code=None if by == "model" else "R-TEST", comment="",
        decided_at=f"2026-01-02T03:04:{index % 60:02d}Z",
        decision_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"direct-{index}")),
        model_version="m-test", probability_of_default=0.1234567, score=640, risk_grade="C")


def _insert_finals(settings: Settings, messages: list[Any]) -> None:
    import psycopg

    from ledger.finals import insert_final

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        for message in messages:
            insert_final(connection, message)


def _stored(settings: Settings) -> dict[tuple[str, int], bytes]:
    """(application id, revision) → the bytes the outbox must publish for that row."""
    import psycopg

    from ledger.outbox import message_bytes

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        rows = connection.execute(
            "SELECT application_id, revision, message FROM final_decisions").fetchall()
    return {(str(app), int(revision)): message_bytes(message) for app, revision, message in rows}


class RawTopicReader:
    """The topic as a downstream system reads it (the `reader` principal), bytes as sent."""

    def __init__(self, settings: Settings, topic: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, **kafka_python_options(settings, "reader"),
                                      group_id=None, auto_offset_reset="earliest",
                                      enable_auto_commit=False)
        self.copies: dict[tuple[str, int], list[bytes]] = defaultdict(list)
        self.keys_match = True

    def read_until(self, expected: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.copies) < expected and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=500, max_records=5000).values():
                for record in records:
                    message = json.loads(record.value)
                    identity = (message["application_id"], message["revision"])
                    self.copies[identity].append(record.value)
                    self.keys_match &= record.key == message["application_id"].encode()
        if len(self.copies) < expected:
            raise AssertionError(f"{len(self.copies)} of {expected} final decisions on the topic "
                                 f"after {timeout_s:.0f} s")

    def close(self) -> None:
        self.consumer.close()


def _ledger(namespace: Any, settings: Settings, tmp_path: Path, name: str) -> LedgerProcess:
    ledger = LedgerProcess(namespace, settings, tmp_path / "registry", tmp_path / f"{name}.log")
    ledger.env["CREDITRISK_TOPIC_FINAL_DECISIONS"] = namespace.topic_final_decisions
    return ledger


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_every_final_decision_is_published_once_with_its_stored_content_through_a_sigkill(
        namespace, tmp_path: Path) -> None:
    (tmp_path / "registry").mkdir()
    # 200 final decisions recorded before the writer starts (a reviewer's, and an override
    # as revision 2), then 1,500 model decisions: their approves and declines become final.
    direct = [_final(i, outcome="approve", by="ana") for i in range(200)]
    direct += [_final(i, revision=2, outcome="decline", by="ben") for i in range(0, 200, 10)]
    decisions = [synthetic_decision(i)[0] for i in range(1_500)]
    automatic = sum(d.decision != "review" for d in decisions)
    expected = len(direct) + automatic
    with private_database(namespace.settings) as settings:
        _insert_finals(settings, direct)
        first = _ledger(namespace, settings, tmp_path, "ledger-1")
        reader = RawTopicReader(namespace.settings, namespace.topic_final_decisions)
        try:
            first.start()
            # The model's decisions arrive while the writer publishes (over 2.5 s, sent beside
            # the test): it is killed mid-stream, some final decisions out, others waiting.
            sender = threading.Thread(target=produce, args=(
                namespace.settings, namespace.topic_decisions,
                [(d.application_id.encode(), d.to_json()) for d in decisions], 600, "worker"))
            sender.start()
            _wait(lambda: ledger_count(settings, PUBLISHED) >= 100, 60, "the first publications")
            first.kill()
            published_before_kill = ledger_count(settings, PUBLISHED)
            sender.join()

            second = _ledger(namespace, settings, tmp_path, "ledger-2")
            second.start()
            try:
                _wait(lambda: ledger_count(settings, FINALS) == expected
                      and ledger_count(settings, PUBLISHED) == expected, 90,
                      f"{expected} final decisions written and published")
                reader.read_until(expected, 60)
                log = second.log_tail()
            finally:
                second.stop()
            stored = _stored(settings)
        finally:
            first.stop()
            reader.close()

    assert published_before_kill < expected, "the writer was killed after it had published all"
    assert len(stored) == expected
    assert set(reader.copies) == set(stored), "a final decision is missing from the topic"
    differing = [key for key, copies in reader.copies.items()
                 if any(copy != stored[key] for copy in copies)]
    assert not differing, f"published content differs from the ledger's: {differing[:5]}"
    assert reader.keys_match, "a message is not keyed by its application id"
    assert all(len(copies) <= 2 for copies in reader.copies.values())
    override = json.loads(reader.copies[("direct-0", 2)][0])
    assert (override["final_decision"], override["decided_by"]) == ("decline", "ben")
    assert "cannot be published" not in log


def test_only_the_finals_principal_writes_final_decisions_and_the_reader_reads_them(namespace) -> None:
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    settings = namespace.settings

    def send(role: Any) -> BaseException | None:
        producer = KafkaProducer(**kafka_python_options(settings, role), max_block_ms=5000,
                                 acks="all")
        try:
            producer.send(namespace.topic_final_decisions, key=b"app-1", value=b"{}").get(timeout=10)
            return None
        except Exception as error:  # noqa: BLE001 - the refusal is the answer
            return error
        finally:
            producer.close(timeout=5)

    assert isinstance(send("worker"), TopicAuthorizationFailedError)
    # A principal with no WRITE anywhere is refused even a producer id (cluster authorization).
    for role in ("ledger", "reader", "producer"):
        refusal = send(role)
        assert refusal is not None and "AuthorizationFailed" in repr(refusal), (role, refusal)
    assert send("finals") is None
    reader = RawTopicReader(settings, namespace.topic_final_decisions)
    try:
        deadline = time.monotonic() + 20
        values: list[bytes] = []
        while not values and time.monotonic() < deadline:
            values = [record.value for records in reader.consumer.poll(timeout_ms=500).values()
                      for record in records]
        assert values == [b"{}"]
    finally:
        reader.close()


@dataclass
class _Staff:
    reviewer: Any
    other_reviewer: Any
    approver: Any


def _casework(settings: Settings, decisions: list[Any]) -> None:
    """What a review team does in a morning: decide review items, ask for overrides and
    answer them, mistype passwords."""
    from datetime import timedelta

    import psycopg

    from review import queue, users

    with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as connection:
        staff = _Staff(users.add_user(connection, "rita", "reviewer", "rita-password-1", "test"),
                       users.add_user(connection, "rob", "reviewer", "rob-password-12", "test"),
                       users.add_user(connection, "alma", "approver", "alma-password-1", "test"))
        for _ in range(3):
            users.sign_in(connection, "rob", "wrong-password", 5, timedelta(minutes=15))
        approve, decline = "AP01", "DC01"
        reviews = [d.application_id for d in decisions if d.decision == "review"]
        for index, application_id in enumerate(reviews[:6]):
            who = staff.reviewer if index % 2 else staff.other_reviewer
            queue.claim(connection, who, application_id)
            outcome, code = ("approve", approve) if index % 3 else ("decline", decline)
            queue.decide(connection, who, application_id, outcome, code, "checked")  # type: ignore[arg-type]
        declined = [d.application_id for d in decisions if d.decision == "decline"]
        for index, application_id in enumerate(declined[:4]):
            request = queue.request_override(connection, staff.reviewer, application_id,
                                             "approve", approve, "income verified by phone")
            if index % 2:
                queue.reject_override(connection, staff.approver, request, "not enough")
            else:
                queue.approve_override(connection, staff.approver, request)


@pytest.mark.slow
def test_every_review_dashboard_panel_shows_data_from_a_real_ledger_writer(
        namespace, live_stack, tmp_path: Path) -> None:
    from test_stream.test_dashboards_e2e import (  # tests/test_stream/test_dashboards_e2e.py
        SCRAPE_INTERVAL_S,
        dashboard_targets,
        finite_values,
        for_prometheus,
        query,
    )

    from infra.stack.services import Prometheus

    (tmp_path / "registry").mkdir()
    decisions = [synthetic_decision(i)[0] for i in range(120)]
    target_dir = Prometheus(live_stack).targets_dir / "ledger"
    target_dir.mkdir(parents=True, exist_ok=True)
    target_file = target_dir / f"test-review-{uuid.uuid4().hex[:8]}.json"
    with private_database(namespace.settings) as settings:
        ledger = _ledger(namespace, settings, tmp_path, "ledger")
        instance = f"127.0.0.1:{ledger.port}"
        try:
            ledger.start()
            target_file.write_text(json.dumps([{"targets": [instance]}]))
            produce(namespace.settings, namespace.topic_decisions,
                    [(d.application_id.encode(), d.to_json()) for d in decisions], 0, "worker")
            _wait(lambda: ledger_count(settings, "SELECT count(*) FROM review_items") == 40, 60,
                  "the review items")
            _casework(settings, decisions)
            _wait(lambda: "creditrisk_override_actions{" in ledger.metrics_text(), 30,
                  "the casework figures on /metrics")
            time.sleep(3 * SCRAPE_INTERVAL_S)  # two scrapes after the figures were read

            targets = dashboard_targets(("creditrisk-review.json",))
            assert len(targets) >= 18
            empty = [f"{panel} / {ref}: {expr}" for _, panel, ref, expr in targets
                     if not finite_values(query(live_stack.prometheus_port,
                                                for_prometheus(expr, instance)))]
            assert not empty, "panel queries without data:\n" + "\n".join(empty) + ledger.log_tail()
            text = ledger.metrics_text()
            assert 'creditrisk_review_decisions{decision="approve",reviewer="rita"}' in text
            assert 'creditrisk_console_failed_sign_ins{username="rob"} 3.0' in text
            assert 'creditrisk_final_decisions{decided_by="override",decision="approve"} 2.0' in text
            assert "app-" not in text, "an application id reached /metrics"
        finally:
            target_file.unlink(missing_ok=True)
            ledger.stop()


@dataclass
class _Placed:
    partition: int
    offset: int


class _Delivery:
    def __init__(self, offset: int, refused: bool) -> None:
        self.offset, self.refused = offset, refused

    def get(self, timeout: float | None = None) -> _Placed:
        from kafka.errors import KafkaTimeoutError

        if self.refused:
            raise KafkaTimeoutError("no broker acknowledged the batch")
        return _Placed(partition=0, offset=self.offset)


class _RecordingProducer:
    """Keeps what it is sent; acknowledges it, or (``refused``) never does."""

    def __init__(self, refused: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.refused = refused

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> _Delivery:
        self.sent.append((topic, key, value))
        return _Delivery(len(self.sent) - 1, self.refused)

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


def test_the_outbox_publishes_in_order_records_after_the_acknowledgement_and_only_then(
        live_stack: Settings) -> None:
    import psycopg
    from kafka.errors import KafkaTimeoutError

    from ledger.outbox import message_bytes, publish_pending

    with private_database(live_stack) as settings:
        _insert_finals(settings, [_final(i, outcome="approve", by="ana") for i in (3, 1, 2)]
                       + [_final(3, revision=2, by="ben"), _final(0)])
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as connection:
            stored = connection.execute("SELECT final_id, application_id, message FROM "
                                        "final_decisions ORDER BY final_id").fetchall()
            refused = _RecordingProducer(refused=True)
            with pytest.raises(KafkaTimeoutError):
                publish_pending(connection, refused, "finals-topic", limit=2)
            assert ledger_count(settings, PUBLISHED) == 0  # sent but never acknowledged
            producer = _RecordingProducer()
            counts = [publish_pending(connection, producer, "finals-topic", limit=2) for _ in range(4)]
            published = connection.execute(
                "SELECT final_id, topic, kafka_offset FROM final_decision_publications "
                "ORDER BY final_id").fetchall()

    assert counts == [2, 2, 1, 0]
    # the order the rows were written in: direct-3's override follows its first revision
    assert producer.sent == [("finals-topic", str(app).encode(), message_bytes(message))
                             for _final_id, app, message in stored]
    assert [row[0] for row in published] == [row[0] for row in stored]
    assert [(row[1], row[2]) for row in published] == [("finals-topic", i) for i in range(5)]
    assert refused.sent[:2] == producer.sent[:2]  # a retry sends the very same bytes
