"""The scoring worker end to end on the real stack: Kafka → Faust → Redis → ONNX → Kafka."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from worker_harness import (  # tests/test_stream/worker_harness.py
    MALFORMED_KINDS,
    TopicReader,
    WorkerProcess,
    keyed,
    load_fresh_bureau,
    malformed_event,
    metric_sum,
    produce,
    register_copy,
    valid_events,
)

from onnx_models.registry import Registry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXPECTED_CODE = {"not_json": "not_json", "missing_field": "missing_field",
                 "wrong_type": "wrong_type", "negative_amount": "invalid_value",
                 "unknown_term": "invalid_value", "oversize": "oversize"}


@pytest.fixture
def worker(namespace, registry_dir: Path, generated_data: Path, tmp_path: Path):
    """Bureau features in Redis (fresh; every 25th customer absent) and a running worker."""
    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)
    process = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


def _absent_customers(generated_data: Path) -> set[str]:
    bureau = pd.read_csv(generated_data / "bureau.csv", dtype=str, keep_default_na=False)
    return {customer for i, customer in enumerate(bureau["customer_id"]) if i % 25 == 0}


def test_ten_thousand_events_end_as_exactly_one_decision_or_dead_letter(
        worker: WorkerProcess, namespace, clean_frame: pd.DataFrame, generated_data: Path) -> None:
    valid = valid_events(clean_frame, 9_500)
    assert len(valid) == 9_500
    malformed = [(None, malformed_event(MALFORMED_KINDS[i % len(MALFORMED_KINDS)], i, valid[0]))
                 for i in range(500)]
    payloads = keyed(valid) + malformed
    random.Random(7).shuffle(payloads)
    assert produce(namespace.settings, namespace.topic_applications, payloads) == 10_000

    decisions = TopicReader(namespace.settings, namespace.topic_decisions)
    letters = TopicReader(namespace.settings, namespace.topic_dead_letters)
    decisions.wait_for(lambda r: len(r.by_key) >= 9_500, 300, "9,500 decisions")
    letters.wait_for(lambda r: len(r.messages) >= 500, 60, "500 dead letters")
    decisions.poll()
    letters.poll()

    # Exactly one decision per valid application (a redelivered one would be identical).
    assert set(decisions.by_key) == {event["application_id"] for event in valid}
    for copies in decisions.by_key.values():
        assert all(copy == copies[0] for copy in copies)
    # Exactly one dead letter per malformed event, with the right reason.
    assert len(letters.messages) == 500
    planned = Counter(EXPECTED_CODE[MALFORMED_KINDS[i % len(MALFORMED_KINDS)]] for i in range(500))
    assert Counter(letter["error"] for letter in letters.messages) == planned
    assert all({"error", "detail", "source", "payload", "received_at"} <= set(letter)
               for letter in letters.messages)
    assert all(letter["source"]["topic"] == namespace.topic_applications for letter in letters.messages)

    # Adverse action: every decline / review carries 1-4 reasons; missing bureau never approves.
    absent = _absent_customers(generated_data)
    live = Registry(worker.env["CREDITRISK_REGISTRY_DIR"]).live_version()
    for copies in decisions.by_key.values():
        decision = copies[0]
        assert decision["model_version"] == live
        assert 0.0 <= decision["probability_of_default"] <= 1.0
        if decision["decision"] in ("review", "decline"):
            assert 1 <= len(decision["reasons"]) <= 4
        if decision["customer_id"] in absent:
            assert decision["decision"] != "approve"
            assert decision["missing_features"]
    outcomes = Counter(copies[0]["decision"] for copies in decisions.by_key.values())
    assert set(outcomes) == {"approve", "review", "decline"}

    # The metrics agree with what was consumed and published.
    samples = worker.metrics()
    assert metric_sum(samples, "creditrisk_events_consumed_total") == 10_000
    assert metric_sum(samples, "creditrisk_decisions_total") == len(decisions.messages)
    for code, count in planned.items():
        assert metric_sum(samples, "creditrisk_dead_letters_total", reason=code) == count
    assert metric_sum(samples, "creditrisk_decisions_total", decision="approve") == outcomes["approve"]
    decisions.close()
    letters.close()


def _produce_in_background(namespace, events: list[dict[str, Any]], rate: float) -> threading.Thread:
    thread = threading.Thread(target=produce, args=(namespace.settings,
                                                    namespace.topic_applications, keyed(events), rate))
    thread.start()
    return thread


def test_worker_killed_mid_stream_and_restarted_decides_every_application_once(
        worker: WorkerProcess, namespace, clean_frame: pd.DataFrame) -> None:
    events = valid_events(clean_frame, 3_000)
    producer = _produce_in_background(namespace, events, rate=300)
    decisions = TopicReader(namespace.settings, namespace.topic_decisions)
    decisions.wait_for(lambda r: len(r.by_key) >= 600, 120, "the first 600 decisions")

    worker.kill()  # SIGKILL mid-stream
    worker.start()
    producer.join()
    decisions.wait_for(lambda r: len(r.by_key) >= 3_000, 240, "every application decided")

    assert set(decisions.by_key) == {event["application_id"] for event in events}
    duplicated = {key: copies for key, copies in decisions.by_key.items() if len(copies) > 1}
    for copies in duplicated.values():
        assert all(copy == copies[0] for copy in copies), "a replayed decision differs"
    decisions.close()


def test_promoting_mid_stream_switches_without_loss_and_a_corrupt_model_is_refused(
        worker: WorkerProcess, namespace, clean_frame: pd.DataFrame, registry_dir: Path) -> None:
    registry = Registry(registry_dir)
    first = registry.live_version()
    events = valid_events(clean_frame, 3_000)
    producer = _produce_in_background(namespace, events, rate=300)
    decisions = TopicReader(namespace.settings, namespace.topic_decisions)
    decisions.wait_for(lambda r: len(r.by_key) >= 500, 120, "the first 500 decisions")

    second = register_copy(registry, first, "20991231T000000Z-0000beef", approve_below=0.05)
    registry.promote(second)
    decisions.wait_for(lambda r: any(m["model_version"] == second for m in r.messages), 60,
                       "a decision by the promoted model")
    corrupt = register_copy(registry, first, "20991231T000001Z-0000dead", approve_below=0.05)
    (registry_dir / corrupt / "model.onnx").write_bytes(b"not an onnx model")
    (registry_dir / "live.json").write_text(json.dumps({"version": corrupt}))

    producer.join()
    decisions.wait_for(lambda r: len(r.by_key) >= 3_000, 240, "every application decided")
    assert set(decisions.by_key) == {event["application_id"] for event in events}
    versions = [message["model_version"] for message in decisions.messages]
    assert corrupt not in versions
    switch = versions.index(second)
    assert set(versions[:switch]) == {first}
    assert versions[-1] == second, "the corrupt model replaced the serving one"

    _status, body = worker.http("GET", "/health")
    health = json.loads(body)
    assert health["model"]["version"] == second
    assert health["model"]["last_reload_error"]
    assert metric_sum(worker.metrics(), "creditrisk_model_reloads_total", outcome="failure") >= 1
    decisions.close()




DESIGN_METRICS = {
    "creditrisk_events_consumed_total": "counter",
    "creditrisk_decisions_total": "counter",
    "creditrisk_dead_letters_total": "counter",
    "creditrisk_end_to_end_latency_seconds": "histogram",
    "creditrisk_scoring_latency_seconds": "histogram",
    "creditrisk_feature_store_read_seconds": "histogram",
    "creditrisk_feature_store_lookups_total": "counter",
    "creditrisk_feature_age_seconds": "histogram",
    "creditrisk_batch_size": "histogram",
    "creditrisk_probability_of_default": "histogram",
    "creditrisk_drift_psi": "gauge",
    "creditrisk_model_info": "gauge",
    "creditrisk_consumer_lag_messages": "gauge",
}


def test_http_scores_one_application_reports_health_and_exposes_the_design_metrics(
        worker: WorkerProcess, namespace, clean_frame: pd.DataFrame) -> None:
    (event,) = valid_events(clean_frame, 1)
    status, body = worker.http("POST", "/score", json.dumps(event).encode())
    assert status == 200, body
    decision = json.loads(body)
    assert decision["application_id"] == event["application_id"]
    assert decision["decision"] in ("approve", "review", "decline")
    assert {"decision_id", "probability_of_default", "score", "risk_grade", "reasons",
            "missing_features", "model_version", "policy_version", "decided_at"} <= set(decision)

    bad = dict(event, term=48)
    status, body = worker.http("POST", "/score", json.dumps(bad).encode())
    assert status == 422
    assert json.loads(body)["error"] == "invalid_value"
    status, body = worker.http("POST", "/score", b"not json")
    assert status == 422 and json.loads(body)["error"] == "not_json"

    status, body = worker.http("GET", "/health")
    health = json.loads(body)
    assert status == 200 and health["kafka"]["ok"] and health["redis"]["ok"] and health["model"]["ok"]

    produce(namespace.settings, namespace.topic_applications,
            keyed(valid_events(clean_frame, 400)))
    reader = TopicReader(namespace.settings, namespace.topic_decisions)
    reader.wait_for(lambda r: len(r.by_key) >= 400, 120, "400 decisions")
    reader.close()
    text = worker.metrics_text()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))
    for name, kind in DESIGN_METRICS.items():
        assert types.get(name) == kind, f"{name}: {types.get(name)} instead of {kind}"
    assert 'creditrisk_drift_psi{feature="score"}' in text
    assert event["application_id"] not in text  # ids never become label values


def test_redis_outage_mid_stream_is_waited_out_and_nothing_is_lost(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        private_redis, tmp_path: Path) -> None:
    """The worker's Redis dies for a while: batches wait (nothing acknowledged), then finish."""
    settings = namespace.settings.model_copy(update={"redis_url": private_redis.url})
    load_fresh_bureau(settings, generated_data / "bureau.csv", tmp_path)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log",
                           CREDITRISK_REDIS_URL=private_redis.url)
    worker.start()
    try:
        events = valid_events(clean_frame, 1_500)
        producer = _produce_in_background(namespace, events, rate=250)
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        decisions.wait_for(lambda r: len(r.by_key) >= 300, 120, "the first 300 decisions")

        private_redis.kill()
        time.sleep(4)
        during = len(decisions.by_key)
        status, body = worker.http("GET", "/health")
        assert status == 503 and not json.loads(body)["redis"]["ok"]
        private_redis.start()  # empty: later applications find no bureau data and go to review

        producer.join()
        decisions.wait_for(lambda r: len(r.by_key) >= 1_500, 180, "every application decided")
        assert set(decisions.by_key) == {event["application_id"] for event in events}
        assert metric_sum(worker.metrics(), "creditrisk_batch_retries_total", dependency="redis") >= 1
        assert during < 1_500
        decisions.close()
    finally:
        worker.stop()
