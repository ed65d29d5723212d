"""The failure policy on the real stack: one bad value never stops the line, and /health
sees a stalled agent (Kafka, Redis and the worker are real processes)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from faulty_worker import POISON_AMOUNT  # tests/test_stream/faulty_worker.py
from worker_harness import (  # tests/test_stream/worker_harness.py
    TopicReader,
    WorkerProcess,
    keyed,
    load_fresh_bureau,
    metric_sum,
    produce,
    valid_events,
)

from config.settings import REPO_ROOT
from features.store import sync_client
from features.views import BUREAU_VIEW, feature_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_corrupt_feature_store_value_costs_one_application_its_feature_not_the_stream(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        tmp_path: Path) -> None:
    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)
    events = valid_events(clean_frame, 1_000)
    poisoned = events[500]
    client = sync_client(namespace.settings, "admin")  # spoils a bureau value
    key = feature_key(BUREAU_VIEW, poisoned["customer_id"], namespace.settings.feature_schema_version,
                      namespace.settings.key_prefix)
    assert client.exists(key), "the poisoned customer has bureau data"
    client.hset(key, "delinq_2yrs", "not-a-number")
    client.close()

    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    worker.start()
    try:
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        letters = TopicReader(namespace.settings, namespace.topic_dead_letters)
        started = time.monotonic()
        produce(namespace.settings, namespace.topic_applications, keyed(events))
        decisions.wait_for(lambda r: len(r.by_key) >= 1_000, 120, "1,000 decisions")
        elapsed = time.monotonic() - started
        letters.poll()

        assert set(decisions.by_key) == {event["application_id"] for event in events}
        assert letters.messages == []
        (decision,) = decisions.by_key[poisoned["application_id"]]
        assert "delinq_2yrs" in decision["missing_features"]
        assert decision["decision"] != "approve"
        assert elapsed < 60, f"1,000 decisions took {elapsed:.0f} s"
        samples = worker.metrics()
        assert metric_sum(samples, "creditrisk_feature_store_corrupt_values_total",
                          view="bureau", feature="delinq_2yrs") == 1
        status, body = worker.http("GET", "/health")
        assert status == 200, body
        decisions.close()
        letters.close()
    finally:
        worker.stop()


def test_an_encoding_failure_dead_letters_that_event_and_its_batch_is_decided(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        tmp_path: Path) -> None:
    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)
    events = valid_events(clean_frame, 300)
    events[150] = dict(events[150], loan_amnt=POISON_AMOUNT)
    poison_id = events[150]["application_id"]
    command = [sys.executable, str(Path(__file__).with_name("faulty_worker.py"))]
    # a script's own folder leads sys.path: point the worker at this checkout's packages
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log", command=command,
                           PYTHONPATH=str(REPO_ROOT))
    worker.start()
    try:
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        letters = TopicReader(namespace.settings, namespace.topic_dead_letters)
        # one burst, so the poison event shares its batch with others
        produce(namespace.settings, namespace.topic_applications, keyed(events))
        decisions.wait_for(lambda r: len(r.by_key) >= 299, 120, "299 decisions")
        letters.wait_for(lambda r: len(r.messages) >= 1, 30, "the dead letter")
        decisions.poll()

        assert set(decisions.by_key) == {e["application_id"] for e in events} - {poison_id}
        (letter,) = letters.messages
        assert letter["error"] == "processing_error"
        assert "encode" in letter["detail"] and "'loan_amnt'" in letter["detail"]
        assert str(int(POISON_AMOUNT)) not in letter["detail"]
        assert json.loads(letter["payload"])["application_id"] == poison_id
        assert letters.by_key.get(poison_id) == [letter]  # keyed like the original message
        batch_sizes = worker.metrics()
        assert metric_sum(batch_sizes, "creditrisk_batch_size_count") < 300  # batched, not one by one
        assert metric_sum(batch_sizes, "creditrisk_dead_letters_total", reason="processing_error") == 1
        decisions.close()
        letters.close()
    finally:
        worker.stop()


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

        private_redis.start()
        decisions.wait_for(lambda r: len(r.by_key) >= 100, 120, "the waiting applications")
        status, body = worker.http("GET", "/health")
        assert status == 200 and json.loads(body)["stream"]["ok"], body
        decisions.close()
    finally:
        worker.stop()
