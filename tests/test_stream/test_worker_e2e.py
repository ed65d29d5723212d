"""The scoring worker end to end on the real stack: Kafka → Faust → Redis → ONNX → Kafka.

What the worker does through a fault (killed, a broken model promoted, Redis restarted, poison
events) is the fault suite's: tests/test_infra/test_fault_suite_e2e.py runs every scenario
of infra/faults/scenarios.py."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

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
    assert health["warm_start"]["state"] == "warm", health["warm_start"]
    # the warm start's synthetic batches left no trace an operator sees
    assert metric_sum(worker.metrics(), "creditrisk_events_consumed_total") == 0

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
    samples = worker.metrics()
    assert metric_sum(samples, "creditrisk_events_consumed_total") == 400
    assert metric_sum(samples, "creditrisk_decisions_total") == 400
    assert event["application_id"] not in text  # ids never become label values
