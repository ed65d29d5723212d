"""Adverse impact seen on the real worker's /metrics: applications replayed through Kafka whose
decisions are skewed against women on purpose make the alert condition
``creditrisk_fairness_adverse_impact_ratio{bound="high"} < 0.8`` hold for them, while an
attribute assigned without regard to the applications (every other pair of events, the same
kind of rows in each group) does not satisfy it.

The session's trained model gets a card of its own with two monitored attributes and a
minimum group size fit for the test's volume: ``gender`` (``applicant_sex``: F / M,
reference male) and ``cohort`` (``cohort``: a / b, reference a). The women's applications
come from customers the feature store has never heard of, so the worker never approves them
(no bureau record: review at best); the men's are ordinary applications with fresh bureau
data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from worker_harness import (  # tests/worker_harness.py
    TopicReader,
    WorkerProcess,
    keyed,
    load_fresh_bureau,
    metric_sum,
    produce,
    valid_events,
)

from infra.faults.harness import poll_until
from onnx_models.registry import MODEL_CARD, Registry

pytestmark = [pytest.mark.e2e]

EVENTS = 240
MIN_GROUP_SIZE = 30
MONITORING = {
    "attributes": [
        {"name": "gender", "field": "applicant_sex", "label": "Gender", "reference": "male",
         "values": {"F": "female", "M": "male"}},
        {"name": "cohort", "field": "cohort", "label": "Cohort", "reference": "a",
         "values": {"a": "a", "b": "b"}},
    ],
    "min_group_size": MIN_GROUP_SIZE, "confidence": 0.95, "air_threshold": 0.8,
}
AIR = "creditrisk_fairness_adverse_impact_ratio"


def _monitor_on_card(registry_dir: Path) -> None:
    """The live version's card with MONITORING (a card the test writes for itself)."""
    version = Registry(registry_dir).live_version() or ""
    path = registry_dir / version / MODEL_CARD
    card = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(card | {"monitoring": MONITORING}), encoding="utf-8")


def _skewed_events(clean_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Even events: women without any bureau record; odd events: men. Cohorts a and b take
    alternate pairs, so each holds as many women as men."""
    events = valid_events(clean_frame, EVENTS)
    for index, event in enumerate(events):
        woman = index % 2 == 0
        event["applicant_sex"] = "F" if woman else "M"
        event["cohort"] = "a" if (index // 2) % 2 == 0 else "b"
        if woman:
            event["customer_id"] = f"never-seen-{index}"
    return events


def _air(samples: dict[str, float], attribute: str, group: str, bound: str) -> float | None:
    key = f'{AIR}{{attribute="{attribute}",bound="{bound}",group="{group}",window="1h"}}'
    return samples.get(key)


def test_decisions_skewed_against_women_make_the_alert_condition_hold_and_balanced_groups_do_not(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        tmp_path: Path) -> None:
    _monitor_on_card(registry_dir)
    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    worker.start()
    try:
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        events = _skewed_events(clean_frame)
        assert produce(namespace.settings, namespace.topic_applications, keyed(events)) == EVENTS
        decisions.wait_for(lambda reader: len(reader.by_key) >= EVENTS, 60, f"{EVENTS} decisions")
        decisions.close()
        samples: dict[str, float] = {}

        def scrape() -> None:
            samples.clear()
            samples.update(worker.metrics())

        def every_decision_published() -> bool:
            counted = sum(metric_sum(samples, "creditrisk_fairness_group_decisions",
                                     attribute="gender", group=group, window="1h")
                          for group in ("female", "male"))
            return counted == EVENTS and _air(samples, "cohort", "b", "high") is not None

        # The gauges follow the windows every few seconds (the last decisions' publish may
        # come a few seconds after the decisions themselves).
        assert poll_until(scrape, every_decision_published, 30), worker.log_tail()
    finally:
        worker.stop()

    outcomes = {key: copies[0]["decision"] for key, copies in decisions.by_key.items()}
    women = [event["application_id"] for event in events if event["applicant_sex"] == "F"]
    men = [event["application_id"] for event in events if event["applicant_sex"] == "M"]
    assert all(outcomes[app_id] != "approve" for app_id in women)
    approved_men = sum(outcomes[app_id] == "approve" for app_id in men)
    assert approved_men >= 10, "the men's applications must be approved often enough to compare"

    # Skewed on purpose: the alert condition holds for women, whose AIR is judged.
    female_high = _air(samples, "gender", "female", "high")
    assert female_high is not None and female_high < 0.8
    assert _air(samples, "gender", "female", "estimate") == 0.0
    assert metric_sum(samples, "creditrisk_fairness_group_decisions", attribute="gender",
                      group="female", window="1h") == EVENTS / 2
    assert metric_sum(samples, "creditrisk_fairness_decisions_total", attribute="gender",
                      group="male", decision="approve") == approved_men
    assert samples["creditrisk_fairness_min_group_size"] == MIN_GROUP_SIZE

    # Balanced: the same kind of applications in both cohorts; the condition does not hold.
    cohort_high = _air(samples, "cohort", "b", "high")
    assert cohort_high is not None and cohort_high >= 0.8
    assert _air(samples, "gender", "male", "high") is None  # the reference has no ratio

    fairness_labels = "".join(key for key in samples if key.startswith("creditrisk_fairness"))
    assert "never-seen" not in fairness_labels and '"F"' not in fairness_labels
