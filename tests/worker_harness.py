"""Run the real worker (`creditrisk worker`) as a process on the real stack, feed it, read it."""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from config.kafka_auth import KafkaRole, kafka_python_options
from config.settings import Settings
from infra.faults.harness import MALFORMED_KINDS, malformed_event, poll_until
from infra.faults.scenarios import register_copy
from infra.faults.servers import FaultWorker, free_port, metric_sum

__all__ = ["MALFORMED_KINDS", "WorkerProcess", "free_port", "malformed_event", "metric_sum",
           "register_copy"]


class WorkerProcess(FaultWorker):
    """`python -m cli.main worker` with the test's topics, key prefix and registry."""

    def __init__(self, namespace: Any, registry_dir: Path, log_path: Path,
                 command: list[str] | None = None, **extra_env: str) -> None:
        settings = namespace.settings.model_copy(update={"registry_dir": registry_dir,
                                                         "topic_partitions": 3})
        # A group of the namespace's own: its ACLs and leader topic go with the namespace.
        super().__init__(settings, log_path.parent, log_path.stem,
                         f"{settings.worker_group}-{uuid.uuid4().hex[:10]}", **extra_env)
        self.log_path = log_path
        self.env["CREDITRISK_STACK_DIR"] = str(log_path.parent / "worker-stack")
        # Challengers' decisions go to the namespace's own shadow topic.
        self.env["CREDITRISK_TOPIC_SHADOW_DECISIONS"] = settings.topic_shadow_decisions
        if command is not None:
            self.command = command

    def metrics_text(self) -> str:
        return self.http("GET", "/metrics")[1].decode()


# -- events --------------------------------------------------------------------------------
def valid_events(frame: pd.DataFrame, count: int, submitted_at: datetime | None = None,
                 ) -> list[dict[str, Any]]:
    """Contract events from the rows of a cleaned loan frame."""
    moment = submitted_at or datetime.now(UTC)
    required = ["loan_amnt", "term", "purpose", "annual_inc", "home_ownership",
                "verification_status", "addr_state"]
    complete = frame.dropna(subset=required)  # rows a real applicant could have submitted
    events = []
    for row in complete.head(count).to_dict("records"):
        emp = row["emp_length"]
        events.append({
            "application_id": f"app-{row['application_id']}",
            "customer_id": str(row["customer_id"]),
            "submitted_at": moment.isoformat().replace("+00:00", "Z"),
            "loan_amnt": float(row["loan_amnt"]), "term": int(row["term"]),
            "purpose": row["purpose"], "annual_inc": float(row["annual_inc"]),
            "emp_length": None if pd.isna(emp) else float(emp),
            "home_ownership": row["home_ownership"],
            "verification_status": row["verification_status"], "addr_state": row["addr_state"],
            "emp_title": "Registered nurse",
        })
    return events


def produce(settings: Settings, topic: str, payloads: Iterable[tuple[bytes | None, bytes]],
            rate_per_s: float = 0.0, role: KafkaRole = "producer") -> int:
    """Send (key, value) pairs as ``role`` (the upstream producer; the worker for decisions)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python_options(settings, role), acks="all", linger_ms=5,
                             max_request_size=2_000_000)
    sent = 0
    started = time.monotonic()
    for key, value in payloads:
        producer.send(topic, key=key, value=value)
        sent += 1
        if rate_per_s:
            ahead = sent / rate_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(timeout=60)
    producer.close()
    return sent


class TopicReader:
    """Reads a topic from the beginning, accumulating JSON messages by key."""

    def __init__(self, settings: Settings, topic: str, role: KafkaRole = "reader") -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, **kafka_python_options(settings, role), group_id=None,
                                      auto_offset_reset="earliest", enable_auto_commit=False,
                                      fetch_max_bytes=8_000_000, max_partition_fetch_bytes=4_000_000)
        self.messages: list[dict[str, Any]] = []
        self.by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=500, max_records=5000).values():
            for record in records:
                message = json.loads(record.value)
                self.messages.append(message)
                key = record.key.decode() if record.key else ""
                self.by_key[key].append(message)

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> None:
        if not poll_until(self.poll, lambda: predicate(self), timeout_s):
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                                 f"have {len(self.messages)} messages")

    def close(self) -> None:
        self.consumer.close()


def load_fresh_bureau(settings: Any, bureau_csv: Path, workdir: Path) -> None:
    """Materialize the generated bureau table into Redis under ``settings.key_prefix``, true as
    of yesterday (fresh for events submitted now), every 25th customer left out."""
    from features.materialize import materialize_bureau_features
    from features.store import sync_client

    client = sync_client(settings, "materializer")
    try:
        materialize_bureau_features(_fresh_bureau_file(bureau_csv, workdir / "fresh-bureau.csv"),
                                    client, schema_version=settings.feature_schema_version,
                                    key_prefix=settings.key_prefix)
    finally:
        client.close()


def _fresh_bureau_file(bureau_csv: Path, target: Path, as_of: datetime | None = None) -> Path:
    """The generated bureau table, true as of yesterday (fresh for events submitted now)."""
    frame = pd.read_csv(bureau_csv, dtype=str, keep_default_na=False)
    frame["as_of"] = ((as_of or datetime.now(UTC)) - timedelta(days=1)).isoformat()
    # Every 25th customer has no bureau record at all: those applications must not be approved.
    frame = frame.iloc[[i for i in range(len(frame)) if i % 25 != 0]]
    frame.to_csv(target, index=False)
    return target


def keyed(events: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    """Kafka (key, value) pairs of application events, keyed by application id."""
    return [(event["application_id"].encode(), json.dumps(event).encode()) for event in events]
