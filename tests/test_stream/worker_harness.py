"""Run the real worker (`creditrisk worker`) as a process on the real stack, feed it, read it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """`python -m infra.cli worker` with the test's topics, key prefix and registry."""

    def __init__(self, namespace: Any, registry_dir: Path, log_path: Path,
                 command: list[str] | None = None, **extra_env: str) -> None:
        self.command = command or [sys.executable, "-m", "infra.cli", "worker"]
        self.port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "CREDITRISK_KAFKA_BOOTSTRAP": namespace.settings.kafka_bootstrap,
            "CREDITRISK_REDIS_URL": namespace.settings.redis_url,
            "CREDITRISK_TOPIC_APPLICATIONS": namespace.topic_applications,
            "CREDITRISK_TOPIC_DECISIONS": namespace.topic_decisions,
            "CREDITRISK_TOPIC_DEAD_LETTERS": namespace.topic_dead_letters,
            "CREDITRISK_TOPIC_PARTITIONS": "3",
            "CREDITRISK_KEY_PREFIX": namespace.key_prefix,
            "CREDITRISK_REGISTRY_DIR": str(registry_dir),
            "CREDITRISK_WORKER_PORT": str(self.port),
            "CREDITRISK_WORKER_GROUP": f"test-{uuid.uuid4().hex[:10]}",
            "CREDITRISK_STACK_DIR": str(log_path.parent / "worker-stack"),
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command, env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited at start-up:\n{self.log_tail()}")
            status, _ = self.http("GET", "/health")
            if status == 200:
                return
            time.sleep(0.5)
        raise AssertionError(f"worker not healthy within {timeout_s}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or committed."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{labels}': value}."""
        status, body = self.http("GET", "/metrics")
        assert status == 200
        samples: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def metrics_text(self) -> str:
        return self.http("GET", "/metrics")[1].decode()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def metric_sum(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


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


MALFORMED_KINDS = ["not_json", "missing_field", "wrong_type", "negative_amount", "unknown_term",
                   "oversize"]


def malformed_event(kind: str, index: int, template: dict[str, Any]) -> bytes:
    event = dict(template, application_id=f"bad-{kind}-{index}")
    if kind == "not_json":
        return b"{this is not json " + str(index).encode()
    if kind == "missing_field":
        event.pop("customer_id")
    elif kind == "wrong_type":
        event["loan_amnt"] = "twelve thousand"
    elif kind == "negative_amount":
        event["loan_amnt"] = -5000
    elif kind == "unknown_term":
        event["term"] = 48
    elif kind == "oversize":
        event["notes"] = "x" * 200_000
    return json.dumps(event).encode()


def produce(bootstrap: str, topic: str, payloads: Iterable[tuple[bytes | None, bytes]],
            rate_per_s: float = 0.0) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
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

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
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
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if predicate(self):
                return
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; "
                             f"have {len(self.messages)} messages")

    def close(self) -> None:
        self.consumer.close()


def load_fresh_bureau(settings: Any, bureau_csv: Path, workdir: Path) -> None:
    """Materialize the generated bureau table into Redis under ``settings.key_prefix``, true as
    of yesterday (fresh for events submitted now), every 25th customer left out."""
    from features.materialize import materialize_bureau_features
    from features.store import sync_client

    client = sync_client(settings)
    try:
        materialize_bureau_features(_fresh_bureau_file(bureau_csv, workdir / "fresh-bureau.csv"),
                                    client, key_prefix=settings.key_prefix)
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


def register_copy(registry: Any, source: str, version: str, **thresholds: float) -> str:
    """A registered model again under a new version, optionally with other thresholds."""
    folder = registry.root / source
    card = json.loads((folder / "model.json").read_text())
    card["version"] = version
    card["thresholds"].update(thresholds)
    files = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    files["model.json"] = json.dumps(card).encode()
    registry.register(version, files)
    return version
