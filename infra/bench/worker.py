"""Worker benchmark: throughput and end-to-end latency of the real worker on the local stack.

A worker process scores applications replayed from a loan file into topics of the
benchmark's own; decisions are read back and timed. Then freshly started workers, with the
warm start off and on, under a steady rate from the moment they are healthy
(:mod:`infra.bench.fresh_start`). Prints figures, never fails on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from config.json_types import JSONObject
from config.kafka_auth import kafka_python_options
from config.settings import Settings
from infra.stack.kafka_access import ensure_leader_topic, ensure_topics, grant_prefix, retire_prefix
from infra.stack.private import free_port
from infra.stack.redis_keys import delete_keys


def bench_worker(settings: Settings, data: Path, echo: Callable[[str], None],
                 runs: tuple[tuple[int, float], ...] = ((20_000, 0.0), (6_000, 300.0))) -> None:
    """For each (events, rate): replay, wait for every decision, report rate and latency.
    Then the latency of freshly started workers, warm start off and on
    (:mod:`infra.bench.fresh_start`)."""
    from infra.bench.fresh_start import bench_fresh_start

    _bench_runs(settings, data, echo, runs)
    bench_fresh_start(settings, data, echo)


def _bench_runs(settings: Settings, data: Path, echo: Callable[[str], None],
                runs: tuple[tuple[int, float], ...]) -> None:
    with bureau_features(settings, data) as prefix:
        start_row = 0
        for events, rate in runs:
            tag = uuid.uuid4().hex[:8]
            topics = {name: f"bench-{tag}-{name}" for name in ("applications", "decisions", "dlq")}
            grant_prefix(settings, f"bench-{tag}")
            ensure_topics(settings, dict.fromkeys(topics.values(), settings.topic_partitions))
            worker = start_worker(settings, topics, tag, prefix)
            try:
                _measure(settings, data, topics, events, rate, start_row, echo)
            finally:
                worker.stop()
                retire_prefix(settings, f"bench-{tag}")
            start_row += events


@contextmanager
def bureau_features(settings: Settings, data: Path) -> Iterator[str]:
    """The bureau table beside ``data`` in Redis under a key prefix of its own (fresh as of
    now), deleted afterwards. A prefix per run: no decision stored by an earlier run (same
    application, same model) can be reused, which would skip the scoring being measured."""
    from features.materialize import materialize_bureau_features
    from features.store import sync_client

    prefix = f"bench-worker-{uuid.uuid4().hex[:8]}:"
    client = sync_client(settings, "admin")
    try:
        materialize_bureau_features(data.parent / "bureau.csv", client,
                                    settings.feature_schema_version, prefix, as_of=datetime.now(UTC))
        yield prefix
    finally:
        delete_keys(client, prefix, batch=10_000)
        client.close()


@dataclass
class BenchWorker:
    """A worker process the benchmark started, and the HTTP port of its (first) worker."""

    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_worker(settings: Settings, topics: dict[str, str], tag: str, prefix: str,
                 arguments: tuple[str, ...] = (), registry_dir: Path | None = None,
                 environment: Mapping[str, str] | None = None) -> BenchWorker:
    """`creditrisk worker ARGUMENTS` on the benchmark's topics (applications, decisions, dlq,
    and shadow when given), key prefix and consumer group (``bench-TAG``), serving
    ``registry_dir`` (else the settings' registry), with ``environment`` added, once its
    /health is green (checked every 0.1 s: the fresh-start bench sends from that moment)."""
    port = free_port()
    # The worker's principal may not create topics: its group's leader topic is made here.
    ensure_leader_topic(settings, f"bench-{tag}")
    env = {**os.environ, "CREDITRISK_TOPIC_APPLICATIONS": topics["applications"],
           "CREDITRISK_TOPIC_DECISIONS": topics["decisions"],
           "CREDITRISK_TOPIC_DEAD_LETTERS": topics["dlq"], "CREDITRISK_KEY_PREFIX": prefix,
           "CREDITRISK_WORKER_GROUP": f"bench-{tag}", "CREDITRISK_WORKER_PORT": str(port),
           **({"CREDITRISK_TOPIC_SHADOW_DECISIONS": topics["shadow"]} if "shadow" in topics else {}),
           **({"CREDITRISK_REGISTRY_DIR": str(registry_dir)} if registry_dir else {}),
           **(environment or {})}
    log = (settings.stack_dir / "logs" / "bench-worker.log").open("ab")
    worker = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", *arguments], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return BenchWorker(worker, port)
        except OSError:  # not answering yet, or 503 (warming, not yet assigned partitions)
            time.sleep(0.1)
    worker.terminate()
    raise RuntimeError("the benchmark worker did not become healthy; see .stack/logs/bench-worker.log")


class _Message(Protocol):
    value: bytes


def decoded_outputs(polled: Mapping[object, Iterable[_Message]]) -> tuple[int, list[JSONObject]]:
    """One poll of the decisions and dead-letter topics: how many messages arrived, and the
    decisions among them (the messages with a ``decided_at``), decoded."""
    arrived = 0
    decisions: list[JSONObject] = []
    for records in polled.values():
        for record in records:
            arrived += 1
            message = json.loads(record.value)
            if "decided_at" in message:
                decisions.append(message)
    return arrived, decisions


def _measure(settings: Settings, data: Path, topics: dict[str, str], events: int, rate: float,
             start_row: int, echo: Callable[[str], None]) -> None:
    from kafka import KafkaConsumer

    from replay.core import live_event_layout, replay_applications

    consumer = KafkaConsumer(topics["decisions"], topics["dlq"], **kafka_python_options(settings, "reader"),
                             group_id=None, auto_offset_reset="earliest")
    started = time.monotonic()
    summary = replay_applications(data, settings, topics["applications"], events,
                                  rate, start=start_row, progress=False,
                                  layout=live_event_layout(settings.registry_dir))
    latencies: list[float] = []
    done = 0
    last = time.monotonic()
    while done < summary.sent and time.monotonic() - last < 30:
        arrived, decisions = decoded_outputs(consumer.poll(timeout_ms=500))
        if arrived:
            last = time.monotonic()
        done += arrived
        latencies += [(datetime.fromisoformat(str(decision["decided_at"]))
                       - datetime.fromisoformat(str(decision["submitted_at"]))).total_seconds()
                      for decision in decisions]
    elapsed = last - started
    consumer.close()
    pace = "as fast as possible" if not rate else f"offered at {rate:.0f}/s"
    echo(f"  {summary.sent:,} applications {pace}: {done:,} decisions + dead letters in "
         f"{elapsed:.1f}s = {done / elapsed:,.0f} events/s; submitted→decided p50 "
         f"{np.percentile(latencies, 50) * 1000:.0f} ms, p99 {np.percentile(latencies, 99) * 1000:.0f} ms")
