"""Shadow scoring with in-memory fakes (no servers): the challengers' share of a batch, the one
feature read for the union of views, and a challenger's failures kept away from the champion."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from test_pipeline import (  # tests/test_stream/test_pipeline.py
    SETTINGS,
    FakeHolder,
    FakeKafka,
    FakeModel,
    FakeReader,
    FakeStore,
    event,
)

from features.online import FeatureRequest, OnlineBatch, OnlineFeatures
from features.serving import LENDING_CLUB_SERVING, ServingSpec
from features.store import EVENT_TS
from features.views import FeatureView, FieldSpec
from onnx_models.challengers import shadowed
from onnx_models.registry import Registry
from stream.challenger_models import ChallengerModels
from stream.decisions import ShadowDecision, decision_id
from stream.feature_union import ViewConflict, projected, union_spec
from stream.metrics import WorkerMetrics
from stream.pipeline import IncomingEvent, ScoringPipeline
from stream.ports import ChallengerModel
from stream.shadow import ShadowScorer, scores_psi

CHAMPION, CHALLENGER = "20260101T000000Z-00000001", "20260102T000000Z-00000002"
SHADOW_TOPIC = SETTINGS.topic_shadow_decisions
EXTRA_VIEW = FeatureView(name="open_banking", entity="customer_id",
                         fields=(FieldSpec("months_overdrawn"),), max_age=timedelta(days=30),
                         ttl=timedelta(days=60))


class OtherModel(FakeModel):
    """A challenger that prices risk higher (PD = amount / 50,000), so it declines more."""

    def __init__(self, version: str = CHALLENGER, serving: ServingSpec = LENDING_CLUB_SERVING,
                 ) -> None:
        super().__init__(version)
        self.serving = serving
        self.broken_encoder_amount: float | None = None

    def score(self, inputs: np.ndarray, incomplete: Sequence[bool], explain: bool = True,
              ) -> list[Any]:
        verdicts = super().score(inputs * np.asarray([2.0, 1.0], dtype=np.float32), incomplete)
        return verdicts if explain else [dataclasses.replace(v, reasons=()) for v in verdicts]


class BreakingEncoder:
    """The challenger's encoder, failing for one loan amount."""

    def __init__(self, inner: Any, amount: float) -> None:
        self.inner, self.amount = inner, amount

    def transform_records(self, records: Sequence[Any]) -> np.ndarray:
        if any(record.get("loan_amnt") == self.amount for record in records):
            raise ValueError("category never seen in training")
        return np.asarray(self.inner.transform_records(records))


class ViewReader(FakeReader):
    """Answers the views of the spec it is asked for (extra views: one field per customer)."""

    def __init__(self) -> None:
        super().__init__({"c1": {"delinq_2yrs": 0.0}, "c2": {"delinq_2yrs": 1.0}})
        self.specs: list[ServingSpec] = []
        self.velocity_flags: list[bool] = []

    async def read(self, requests: Sequence[FeatureRequest], *, serving: ServingSpec,
                   record_velocity: bool = True) -> OnlineBatch:
        self.specs.append(serving)
        self.velocity_flags.append(record_velocity)
        batch = await super().read(requests, serving=serving, record_velocity=record_velocity)
        for item in batch.features:
            for view in serving.views:
                if view.name == EXTRA_VIEW.name:
                    item.record["months_overdrawn"] = 2.0
                    item.age_seconds[view.name] = 3600.0
        return batch


class Rig:
    """A pipeline with a registry folder naming challengers, and fake models to load."""

    def __init__(self, tmp_path: Path, challengers: dict[str, float] | None = None,
                 models: dict[str, ChallengerModel | Exception] | None = None,
                 kafka: FakeKafka | None = None) -> None:
        self.registry = Registry(tmp_path / "registry")
        self.registry.root.mkdir(parents=True, exist_ok=True)
        self.models: dict[str, ChallengerModel | Exception] = models or {CHALLENGER: OtherModel()}
        for version in self.models:
            folder = self.registry.root / version
            folder.mkdir(exist_ok=True)
            (folder / "model.onnx").write_bytes(b"onnx")
        self.set_roles(challengers if challengers is not None else {CHALLENGER: 100.0})
        self.champion = FakeModel(CHAMPION)
        self.reader = ViewReader()
        self.kafka = kafka or FakeKafka()
        self.prometheus = CollectorRegistry()
        self.metrics = WorkerMetrics(self.prometheus)
        self.challengers = ChallengerModels(self.registry, self.metrics, load=self.load)
        self.shadow = ShadowScorer(SETTINGS, self.challengers, self.reader,
                                   self.kafka.publish, self.metrics)
        shadow = self.shadow
        self.store = FakeStore()
        self.pipeline = ScoringPipeline(SETTINGS, FakeHolder(self.champion), self.reader,
                                        self.store, self.kafka.publish, self.metrics,
                                        shadow=shadow)

    def set_roles(self, challengers: dict[str, float]) -> None:
        document = {"challengers": [{"version": version, "percent": percent, "since": ""}
                                    for version, percent in challengers.items()]}
        (self.registry.root / "challengers.json").write_text(json.dumps(document))

    def load(self, registry: Registry, version: str) -> ChallengerModel:
        model = self.models[version]
        if isinstance(model, Exception):
            raise model
        return model

    def process(self, events: Sequence[IncomingEvent]) -> None:
        async def batch_and_confirmations() -> None:
            await self.pipeline.process(events)
            await self.shadow.delivered()

        asyncio.run(batch_and_confirmations())

    def shadow_decisions(self) -> list[ShadowDecision]:
        return [ShadowDecision.from_json(json.dumps(value))
                for _key, value in self.kafka.on(SHADOW_TOPIC)]

    def metric(self, name: str, **labels: str) -> float:
        return self.prometheus.get_sample_value(name, labels) or 0.0


def without_challenger(tmp_path: Path, events: Sequence[IncomingEvent]) -> list[dict[str, Any]]:
    """The champion's decisions of the same events with no challenger set."""
    rig = Rig(tmp_path / "alone", challengers={})
    rig.process(events)
    return rig.kafka.decisions


def batch(count: int, start: int = 0, amount: Callable[[int], float] = lambda i: 4000 + 97 * i,
          ) -> list[IncomingEvent]:
    return [event(f"app-{i}", "c1" if i % 2 else "c2", offset=i, loan_amnt=amount(i))
            for i in range(start, start + count)]


def comparable(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "decided_at"} for d in decisions]


# ---- the challenger's share ----------------------------------------------------------------

def test_at_100_percent_every_decided_application_has_one_shadow_decision(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    events = [*batch(40), IncomingEvent(b"{not json", SETTINGS.topic_applications, 0, 99, b"x")]
    rig.process(events)
    decisions = rig.kafka.decisions
    shadows = rig.shadow_decisions()
    assert len(decisions) == 40 and len(rig.kafka.dead_letters) == 1
    assert sorted(s.application_id for s in shadows) == sorted(d["application_id"] for d in decisions)
    champion = {d["application_id"]: d for d in decisions}
    for shadow in shadows:
        assert shadow.model_version == CHALLENGER
        assert shadow.decision_id == decision_id(shadow.application_id, CHALLENGER)
        assert shadow.champion_decision_id == champion[shadow.application_id]["decision_id"]
        assert shadow.champion_decision == champion[shadow.application_id]["decision"]
        assert shadow.champion_model_version == CHAMPION
        assert shadow.reasons == (), "shadow decisions carry no reasons (never acted on)"
    assert {d["model_version"] for d in decisions} == {CHAMPION}
    assert all(d["reasons"] for d in decisions if d["decision"] != "approve")
    assert [key for key, _ in rig.kafka.on(SHADOW_TOPIC)] == [s.application_id.encode()
                                                              for s in shadows]
    # Shadow decisions come after every champion decision of the batch.
    topics = [topic for topic, _key, _value in rig.kafka.messages]
    assert topics.index(SHADOW_TOPIC) > max(i for i, t in enumerate(topics)
                                            if t == SETTINGS.topic_decisions)
    assert len(rig.reader.specs) == 1, "one feature read for champion and challenger"
    assert rig.metric("creditrisk_shadow_decisions_total", model_version=CHALLENGER) == 40
    swaps = sum(rig.metric("creditrisk_challenger_swaps_total", model_version=CHALLENGER,
                           champion=c, challenger=s)
                for c in ("approve", "review", "decline") for s in ("approve", "review", "decline"))
    agreed = rig.metric("creditrisk_challenger_agreement_total", model_version=CHALLENGER,
                        agreed="true")
    assert swaps == 40
    assert agreed == sum(s.decision == s.champion_decision for s in shadows) < 40
    assert rig.metric("creditrisk_challenger_batch_seconds_count", model_version=CHALLENGER) == 1


def test_the_champion_decides_exactly_as_it_would_alone(tmp_path: Path) -> None:
    events = batch(30)
    rig = Rig(tmp_path)
    rig.process(events)
    assert comparable(rig.kafka.decisions) == comparable(without_challenger(tmp_path, events))


def test_a_share_is_honoured_and_stable_for_a_redelivered_application(tmp_path: Path) -> None:
    rig = Rig(tmp_path, challengers={CHALLENGER: 30.0})
    events = batch(2_000)
    rig.process(events)
    first = {s.application_id: s for s in rig.shadow_decisions()}
    assert abs(len(first) / 2_000 - 0.30) <= 0.03
    assert set(first) == {f"app-{i}" for i in range(2_000) if shadowed(f"app-{i}", 30.0)}

    rig.kafka.messages.clear()
    rig.process(events[:500])  # a re-delivery: the champion answers with its stored decisions
    again = {s.application_id: s for s in rig.shadow_decisions()}
    assert set(again) == {app for app in first if int(app.split("-")[1]) < 500}
    assert all(again[app] == first[app] for app in again), "the same shadow decision"
    assert rig.reader.velocity_flags[-1] is False, "a replay's read records no application"


def test_a_challenger_at_0_percent_shadows_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, challengers={CHALLENGER: 0.0})
    rig.process(batch(50))
    assert len(rig.kafka.decisions) == 50 and rig.shadow_decisions() == []


def test_a_change_of_challengers_is_followed_without_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path, challengers={})
    rig.process(batch(10))
    assert rig.shadow_decisions() == []
    rig.set_roles({CHALLENGER: 100.0})
    rig.process(batch(10, start=10))
    assert {s.application_id for s in rig.shadow_decisions()} == {f"app-{i}" for i in range(10, 20)}
    rig.set_roles({})
    rig.kafka.messages.clear()
    rig.process(batch(10, start=20))
    assert rig.shadow_decisions() == [] and rig.challengers.health() == []


# ---- one read for the union of views --------------------------------------------------------

def test_one_read_covers_the_challengers_views_and_the_champion_sees_only_its_own(
        tmp_path: Path) -> None:
    wider = dataclasses.replace(LENDING_CLUB_SERVING,
                                views=(*LENDING_CLUB_SERVING.views, EXTRA_VIEW))
    rig = Rig(tmp_path, models={CHALLENGER: OtherModel(serving=wider)})
    events = batch(20)
    rig.process(events)
    assert len(rig.reader.specs) == 1
    assert [view.name for view in rig.reader.specs[0].views] == [
        *(view.name for view in LENDING_CLUB_SERVING.views), EXTRA_VIEW.name]
    assert len(rig.shadow_decisions()) == 20
    stored = rig.store.records["app-3"]
    assert "months_overdrawn" not in stored.features
    assert EXTRA_VIEW.name not in stored.feature_age_seconds
    assert comparable(rig.kafka.decisions) == comparable(without_challenger(tmp_path, events))


def test_union_keeps_the_champions_views_first_and_refuses_conflicting_views() -> None:
    assert union_spec(LENDING_CLUB_SERVING, [LENDING_CLUB_SERVING]) is LENDING_CLUB_SERVING
    bureau = LENDING_CLUB_SERVING.views[0]
    clash = dataclasses.replace(bureau, fields=(FieldSpec("something_else"),))
    with pytest.raises(ViewConflict, match=bureau.name):
        union_spec(LENDING_CLUB_SERVING,
                   [dataclasses.replace(LENDING_CLUB_SERVING, views=(clash,))])


def test_a_projection_lists_only_its_own_views_gaps() -> None:
    wider = dataclasses.replace(LENDING_CLUB_SERVING,
                                views=(*LENDING_CLUB_SERVING.views, EXTRA_VIEW))
    bureau = LENDING_CLUB_SERVING.views[0]
    read = OnlineFeatures(record={"loan_amnt": 1.0, "revol_util": 0.5},
                          missing=["months_overdrawn"], corrupt=[EVENT_TS],
                          age_seconds={bureau.name: 10.0, EXTRA_VIEW.name: None})
    own = projected(read, wider, LENDING_CLUB_SERVING, datetime.now(UTC))
    assert own.missing == [] and own.corrupt == [] and not own.incomplete
    assert own.age_seconds == {bureau.name: 10.0}
    theirs = projected(read, wider, wider, datetime.now(UTC))
    assert theirs is read


# ---- failures stay the challenger's ----------------------------------------------------------

def test_a_broken_challenger_model_is_dropped_and_the_champion_is_untouched(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = OtherModel()
    rig = Rig(tmp_path, models={CHALLENGER: broken})
    events = batch(30)
    rig.process(events[:10])
    broken.broken = True
    with caplog.at_level(logging.ERROR):
        rig.process(events[10:20])
        rig.process(events[20:])
    assert comparable(rig.kafka.decisions) == comparable(without_challenger(tmp_path, events))
    assert {s.application_id for s in rig.shadow_decisions()} == {f"app-{i}" for i in range(10)}
    assert rig.metric("creditrisk_challenger_failures_total", model_version=CHALLENGER,
                      stage="score") == 10
    assert rig.metric("creditrisk_challenger_up", model_version=CHALLENGER) == 0
    [health] = rig.challengers.health()
    assert health["state"] == "failed" and "onnxruntime session is gone" in str(health["error"])
    assert sum(CHALLENGER in r.getMessage() for r in caplog.records) <= 2  # failed, dropped


def test_an_event_the_challengers_encoder_cannot_take_is_skipped_and_counted(
        tmp_path: Path) -> None:
    model = OtherModel()
    model.encoder = BreakingEncoder(model.encoder, 4000 + 97 * 3)  # type: ignore[assignment]  # a fake's encoder
    rig = Rig(tmp_path, models={CHALLENGER: model})
    rig.process(batch(10))
    assert len(rig.kafka.decisions) == 10
    assert {s.application_id for s in rig.shadow_decisions()} == {
        f"app-{i}" for i in range(10) if i != 3}
    assert rig.metric("creditrisk_challenger_failures_total", model_version=CHALLENGER,
                      stage="encode") == 1
    assert rig.metric("creditrisk_challenger_up", model_version=CHALLENGER) == 1


class ShadowTopicDown(FakeKafka):
    async def publish(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        if topic == SHADOW_TOPIC:
            raise PermissionError("TopicAuthorizationFailed")
        return await super().publish(topic, key, value)


def test_a_shadow_topic_that_refuses_costs_the_champion_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, kafka=ShadowTopicDown())
    events = batch(20)
    rig.process(events[:10])
    rig.process(events[10:])
    assert comparable(rig.kafka.decisions) == comparable(without_challenger(tmp_path, events))
    assert rig.metric("creditrisk_challenger_failures_total", model_version=CHALLENGER,
                      stage="publish") == 20


def test_a_challenger_that_does_not_load_is_refused_and_reloaded_when_its_files_change(
        tmp_path: Path) -> None:
    rig = Rig(tmp_path, models={CHALLENGER: RuntimeError("model.onnx is not an ONNX model")})
    rig.process(batch(5))
    assert len(rig.kafka.decisions) == 5 and rig.shadow_decisions() == []
    assert rig.metric("creditrisk_challenger_failures_total", model_version=CHALLENGER,
                      stage="load") == 1
    [health] = rig.challengers.health()
    assert health["state"] == "failed" and "not an ONNX model" in str(health["error"])

    rig.models[CHALLENGER] = OtherModel()  # repaired on disk
    (rig.registry.root / CHALLENGER / "model.onnx").write_bytes(b"a good onnx model")
    rig.process(batch(5, start=5))
    assert len(rig.shadow_decisions()) == 5
    assert rig.challengers.health()[0]["state"] == "shadowing"


def test_a_challenger_corrupted_on_disk_while_shadowing_is_dropped(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.process(batch(5))
    assert len(rig.shadow_decisions()) == 5
    rig.models[CHALLENGER] = RuntimeError("model.onnx does not load")
    (rig.registry.root / CHALLENGER / "model.onnx").write_bytes(b"garbage!")
    rig.process(batch(5, start=5))
    assert len(rig.kafka.decisions) == 10 and len(rig.shadow_decisions()) == 5
    assert rig.challengers.health()[0]["state"] == "failed"
    assert rig.metric("creditrisk_challenger_failures_total", model_version=CHALLENGER,
                      stage="load") == 1


def test_a_challenger_expecting_other_events_is_refused(tmp_path: Path) -> None:
    other_events = dataclasses.replace(LENDING_CLUB_SERVING,
                                       event_fields=LENDING_CLUB_SERVING.event_fields[:-1])
    rig = Rig(tmp_path, models={CHALLENGER: OtherModel(serving=other_events)})
    rig.process(batch(5))
    assert rig.shadow_decisions() == []
    assert "expects application events" in str(rig.challengers.health()[0]["error"])


def test_psi_is_zero_for_the_same_scores_and_grows_with_a_shift() -> None:
    same = [(float(s), float(s)) for s in range(450, 800, 3)]
    shifted = [(float(s), float(s) - 60) for s in range(450, 800, 3)]
    assert scores_psi(same) == pytest.approx(0.0, abs=1e-9)
    assert scores_psi(shifted) > 0.1


class ShadowTopicSilent(FakeKafka):
    """The shadow topic takes messages and never confirms them."""

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        if topic != SHADOW_TOPIC:
            return await super().publish(topic, key, value)
        self.messages.append((topic, key, json.loads(value)))
        return asyncio.get_running_loop().create_future()  # never resolved


def test_the_champions_batches_never_wait_on_shadow_confirmations(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stream.shadow

    monkeypatch.setattr(stream.shadow, "SHADOW_DELIVERY_TIMEOUT_S", 0.2)
    rig = Rig(tmp_path, kafka=ShadowTopicSilent())

    async def two_batches() -> float:
        started = time.perf_counter()
        await rig.pipeline.process(batch(10))
        await rig.pipeline.process(batch(10, start=10))
        elapsed = time.perf_counter() - started
        await rig.shadow.delivered()
        return elapsed

    elapsed = asyncio.run(two_batches())
    assert elapsed < 0.1, f"the batches waited {elapsed:.2f} s on the shadow topic"
    assert len(rig.kafka.decisions) == 20
    assert rig.metric("creditrisk_challenger_failures_total", model_version=CHALLENGER,
                      stage="publish") == 20
    assert rig.metric("creditrisk_shadow_decisions_total", model_version=CHALLENGER) == 0
