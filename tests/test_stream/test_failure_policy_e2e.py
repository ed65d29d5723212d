"""The failure policy on the real stack: /health sees a stalled agent (Kafka, Redis and the
worker are real processes). One bad value never stopping the line (a corrupt feature-store
value, an event the encoder refuses) is the fault suite's poison scenario
(tests/test_infra/test_fault_suite_e2e.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from worker_harness import (  # tests/worker_harness.py
    TopicReader,
    WorkerProcess,
    keyed,
    load_fresh_bureau,
    produce,
    valid_events,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_stalled_agent_turns_health_red_within_the_configured_time(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        private_redis, tmp_path: Path) -> None:
    settings = namespace.settings.model_copy(update={"redis_url": private_redis.url})
    load_fresh_bureau(settings, generated_data / "bureau.csv", tmp_path)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log",
                           CREDITRISK_REDIS_URL=private_redis.url, CREDITRISK_STALL_AFTER_S="5")
    worker.start()
    try:
        produce(namespace.settings, namespace.topic_applications,
                keyed(valid_events(clean_frame, 50)))
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        decisions.wait_for(lambda r: len(r.by_key) >= 50, 60, "50 decisions")
        status, body = worker.http("GET", "/health")
        assert status == 200 and json.loads(body)["stream"]["ok"], body

        private_redis.kill()  # every batch now waits for Redis: the agent makes no progress
        produce(namespace.settings, namespace.topic_applications,
                keyed(valid_events(clean_frame, 100)[50:]))
        deadline = time.monotonic() + 30
        stream: dict = {}
        while time.monotonic() < deadline:
            status, body = worker.http("GET", "/health")
            stream = json.loads(body).get("stream", {}) if body else {}
            if status == 503 and not stream.get("ok", True):
                break
            time.sleep(1)
        assert status == 503 and not stream["ok"], body
        assert stream["waiting_events"] > 0 and "no batch completed" in stream["detail"]
        assert not json.loads(body)["redis"]["ok"], body  # and says which dependency is down

        private_redis.start()
        decisions.wait_for(lambda r: len(r.by_key) >= 100, 120, "the waiting applications")
        # /health shows what the worker's probe (every 2 s) last saw: green within a few probes.
        deadline = time.monotonic() + 10
        while True:
            status, body = worker.http("GET", "/health")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200 and json.loads(body)["stream"]["ok"], body
        decisions.close()
    finally:
        worker.stop()
