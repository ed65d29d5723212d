"""A challenger shadows the champion in the real worker on the real stack (Kafka, Redis,
Prometheus): its decisions on the shadow topic, its share, its panels, and a broken challenger
that changes nothing for the champion."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_dashboards_e2e import (  # tests/test_stream/test_dashboards_e2e.py
    dashboard_targets,
    finite_values,
    for_prometheus,
    query,
    wait_until_scraped,
)
from worker_harness import (  # tests/worker_harness.py
    TopicReader,
    WorkerProcess,
    keyed,
    load_fresh_bureau,
    metric_sum,
    produce,
    register_copy,
    valid_events,
)

from onnx_models.challengers import set_challenger, shadowed
from onnx_models.registry import Registry
from stream.decisions import Decision, ShadowDecision, decision_id

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHALLENGER_DASHBOARD = "creditrisk-challenger.json"


def challenger_of(registry_dir: Path, suffix: str) -> str:
    """The trained model again under a new version, with a stricter policy (it approves
    less), so some of its decisions differ from the champion's."""
    registry = Registry(registry_dir)
    live = registry.live_version()
    assert live is not None
    card = json.loads((registry_dir / live / "model.json").read_text())
    approve_below = card["thresholds"]["approve_below"] * 0.7
    return register_copy(registry, live, f"20991231T000000Z-{suffix}", approve_below=approve_below)


@pytest.fixture
def bureau(namespace: Any, generated_data: Path, tmp_path: Path) -> None:
    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)


def decisions_by_id(reader: TopicReader) -> dict[str, Decision]:
    return {key: Decision.from_json(json.dumps(copies[-1])) for key, copies in reader.by_key.items()}


def test_a_challenger_shadows_every_decision_then_its_share_and_its_panels_show_it(
        namespace: Any, registry_dir: Path, clean_frame: pd.DataFrame, bureau: None,
        live_stack: Any, tmp_path: Path) -> None:
    from infra.stack.services import Prometheus

    registry = Registry(registry_dir)
    champion = registry.live_version()
    challenger = challenger_of(registry_dir, "0000c0de")
    set_challenger(registry, challenger, 100.0)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    instance = f"127.0.0.1:{worker.port}"
    target_file = Prometheus(live_stack).targets_dir / f"test-challenger-{uuid.uuid4().hex[:8]}.json"
    settings = namespace.settings
    events = valid_events(clean_frame, 3_000)
    full, sampled = events[:800], events[800:]
    decisions = TopicReader(settings, namespace.topic_decisions)
    shadows = TopicReader(settings, namespace.topic_shadow_decisions)
    try:
        worker.start()
        target_file.write_text(json.dumps([{"targets": [instance]}]))
        wait_until_scraped(live_stack.prometheus_port, instance)

        # (a) 100 %: one shadow decision per decided application, none on the decisions topic.
        # Slow enough for several scrapes while it flows (the panels show rates).
        produce(settings, namespace.topic_applications, keyed(full), rate_per_s=50)
        decisions.wait_for(lambda r: len(r.by_key) >= len(full), 120, "the champion's decisions")
        shadows.wait_for(lambda r: len(r.by_key) >= len(full), 60, "the shadow decisions")
        time.sleep(2)
        decisions.poll()
        shadows.poll()
        assert {d.model_version for d in decisions_by_id(decisions).values()} == {champion}
        assert set(shadows.by_key) == set(decisions.by_key) == {e["application_id"] for e in full}
        champion_decisions = decisions_by_id(decisions)
        for key, copies in shadows.by_key.items():
            assert len(copies) == 1, f"{len(copies)} shadow decisions for one application"
            shadow = ShadowDecision.from_json(json.dumps(copies[0]))
            assert shadow.model_version == challenger
            assert shadow.decision_id == decision_id(key, challenger)
            assert shadow.champion_decision_id == champion_decisions[key].decision_id
            assert shadow.champion_decision == champion_decisions[key].decision
            assert shadow.reasons == ()
        disagreements = sum(ShadowDecision.from_json(json.dumps(c[0])).decision
                            != ShadowDecision.from_json(json.dumps(c[0])).champion_decision
                            for c in shadows.by_key.values())
        assert 0 < disagreements < len(full), "a stricter challenger swaps some decisions"

        # The Challenger dashboard: every panel returns data for this worker.
        time.sleep(12)  # two scrapes after the last batch
        port = live_stack.prometheus_port
        empty = [f"{panel} / {ref}: {for_prometheus(expr, instance)}"
                 for _dashboard, panel, ref, expr in dashboard_targets((CHALLENGER_DASHBOARD,))
                 if not finite_values(query(port, for_prometheus(expr, instance)))]
        assert not empty, "panels without data:\n" + "\n".join(empty)

        # (b) 30 % (the roles file changes under the running worker): the share is honoured,
        # and a re-delivered application is shadowed the same way, with the same decision.
        set_challenger(registry, challenger, 30.0)
        time.sleep(1)
        before = len(shadows.messages)
        produce(settings, namespace.topic_applications, keyed(sampled), rate_per_s=400)
        ids = {e["application_id"] for e in sampled}
        expected = {app for app in ids if shadowed(app, 30.0)}
        decisions.wait_for(lambda r: ids <= set(r.by_key), 120, "decisions of the 30 % run")
        shadows.wait_for(lambda r: expected <= set(r.by_key), 60, "the 30 % shadow decisions")
        time.sleep(3)
        shadows.poll()
        first = {m["application_id"]: m for m in shadows.messages[before:]}
        assert set(first) == expected
        assert abs(len(first) / len(ids) - 0.30) <= 0.03, f"{len(first)} of {len(ids)}"

        again = len(shadows.messages)
        produce(settings, namespace.topic_applications, keyed(sampled[:600]))
        redelivered = {e["application_id"] for e in sampled[:600]} & expected
        shadows.wait_for(lambda r: len(r.messages) - again >= len(redelivered), 60,
                         "the re-delivered applications' shadow decisions")
        time.sleep(3)
        shadows.poll()
        second = {m["application_id"]: m for m in shadows.messages[again:]}
        assert set(second) == redelivered
        assert all(second[app] == first[app] for app in second), "the same shadow decision"
    finally:
        target_file.unlink(missing_ok=True)
        decisions.close()
        shadows.close()
        worker.stop()


def test_a_challenger_broken_while_shadowing_changes_no_champion_decision(
        namespace: Any, registry_dir: Path, clean_frame: pd.DataFrame, bureau: None,
        tmp_path: Path) -> None:
    registry = Registry(registry_dir)
    challenger = challenger_of(registry_dir, "0000dead")
    set_challenger(registry, challenger, 100.0)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    settings = namespace.settings
    events = valid_events(clean_frame, 1_200)
    before, after = events[:600], events[600:]
    decisions = TopicReader(settings, namespace.topic_decisions)
    shadows = TopicReader(settings, namespace.topic_shadow_decisions)
    try:
        worker.start()
        produce(settings, namespace.topic_applications, keyed(before), rate_per_s=300)
        shadows.wait_for(lambda r: len(r.by_key) >= len(before), 120, "the shadow decisions")

        (registry_dir / challenger / "model.onnx").write_bytes(b"\x08\x07 not an onnx model")
        started = time.monotonic()
        produce(settings, namespace.topic_applications, keyed(after), rate_per_s=300)
        ids = {e["application_id"] for e in events}
        decisions.wait_for(lambda r: ids <= set(r.by_key), 60, "every champion decision")
        assert time.monotonic() - started < 30, "the champion's decisions were delayed"
        shadows.poll()
        shadowed_after = set(shadows.by_key) & {e["application_id"] for e in after}
        assert shadowed_after == set(), "the broken challenger went on shadowing"

        # Every champion decision is the champion's own: what it decides alone for the same
        # application (POST /score runs the champion's steps with no challenger).
        made = decisions_by_id(decisions)
        for event in after[:200]:
            status, body = worker.http("POST", "/score", json.dumps(event).encode())
            assert status == 200, body
            alone = Decision.from_json(body)
            decided = made[event["application_id"]]
            assert (decided.decision_id, decided.probability_of_default, decided.decision,
                    decided.score, decided.reasons) == (
                alone.decision_id, alone.probability_of_default, alone.decision, alone.score,
                alone.reasons)

        metrics = worker.metrics()
        assert metric_sum(metrics, "creditrisk_challenger_failures_total",
                          model_version=challenger, stage="load") >= 1
        assert metric_sum(metrics, "creditrisk_challenger_up", model_version=challenger) == 0
        status, body = worker.http("GET", "/health")
        health = json.loads(body)
        assert status == 200 and health["model"]["ok"] is True
        [state] = health["model"]["challengers"]
        assert state["version"] == challenger and state["state"] == "failed"
    finally:
        decisions.close()
        shadows.close()
        worker.stop()
