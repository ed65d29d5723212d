"""The warm start: a fresh worker pays its first-call costs before it joins its consumer
group, and the synthetic events it scores for that never leave the process (no topic, no
Redis write, no velocity, no metric an operator sees). Fakes for Redis and Kafka; the real
model, feature reader, decision store and pipeline."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from mode import Service
from prometheus_client import REGISTRY

from config.settings import Settings
from features.store import AsyncRedis
from features.views import VELOCITY_WINDOWS
from onnx_models.registry import Registry
from stream.app import WarmUpService, create_app
from stream.decisions import DecisionStore
from stream.liveness import Liveness
from stream.model_runtime import ModelHolder
from stream.validation import validate_application
from stream.warm_start import (
    SYNTHETIC_CUSTOMER,
    batch_sizes,
    synthetic_events,
    warm_up,
    warm_up_pipeline,
)

# Commands that only read, and the set-up of a connection: all a warm start may send.
READ_ONLY_COMMANDS = {"PING", "SCRIPT LOAD", "EVALSHA", "MGET"}


class RecordingRedis:
    """An asyncio Redis client that answers as an empty store and records every command."""

    def __init__(self, views: int) -> None:
        self.views = views
        self.commands: list[tuple[Any, ...]] = []

    async def ping(self) -> bool:
        self.commands.append(("PING",))
        await asyncio.sleep(0)
        return True

    async def script_load(self, script: str) -> str:
        self.commands.append(("SCRIPT LOAD",))
        return "sha"

    async def mget(self, keys: Sequence[str]) -> list[None]:
        self.commands.append(("MGET", *keys))
        return [None] * len(keys)

    def pipeline(self, transaction: bool = True) -> RecordingPipeline:
        return RecordingPipeline(self)

    def __getattr__(self, name: str) -> Any:
        async def command(*args: Any, **kwargs: Any) -> None:
            self.commands.append((name.upper(), *args))
        return command

    def answer(self, command: tuple[Any, ...]) -> Any:
        if command[0] == "EVALSHA":  # each view's hash (none found), then each window's count
            return [[] for _ in range(self.views)] + [[0] * len(VELOCITY_WINDOWS)]
        return None


class RecordingPipeline:
    def __init__(self, client: RecordingRedis) -> None:
        self.client = client
        self.queued: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **kwargs: Any) -> RecordingPipeline:
        self.queued.append(tuple(args))
        return self

    def __getattr__(self, name: str) -> Any:
        def command(*args: Any, **kwargs: Any) -> RecordingPipeline:
            self.queued.append((name.upper(), *args))
            return self
        return command

    async def execute(self) -> list[Any]:
        self.client.commands.extend(self.queued)
        return [self.client.answer(command) for command in self.queued]


class RecordingKafka:
    """The app's Kafka warmer: records the topics it was asked to warm; sends nothing."""

    def __init__(self) -> None:
        self.topics: list[str] = []

    async def __call__(self, topics: Sequence[str]) -> None:
        self.topics += topics


def _operator_metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every product sample of the process-wide registry, the one /metrics serves."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in REGISTRY.collect() for sample in family.samples
            if sample.name.startswith("creditrisk_")}


@pytest.fixture
def settings(tmp_path: Path, registry_dir: Path) -> Settings:
    return Settings(stack_dir=tmp_path / "stack", registry_dir=registry_dir, batch_max_events=64,
                    kafka_username="worker", kafka_password="not-used: nothing connects")


def test_the_synthetic_batches_touch_nothing_outside_the_process(settings: Settings) -> None:
    models = ModelHolder(Registry(settings.registry_dir))
    redis = RecordingRedis(views=len(models.current.serving.views))
    client = cast(AsyncRedis, redis)
    pipeline = warm_up_pipeline(settings, models, client, DecisionStore(client, settings.key_prefix))
    kafka = RecordingKafka()
    before = _operator_metrics()

    report = asyncio.run(warm_up(settings, kafka, ["decisions", "dead-letters"], client, pipeline))

    assert report.problems == []
    # every batch size the pipeline meets, all decided (none dead-lettered), none published
    assert report.synthetic_decided == sum(batch_sizes(settings.batch_max_events)) == 65
    assert report.synthetic_dead_lettered == 0
    assert pipeline.publish.discarded == 65  # type: ignore[attr-defined]
    assert kafka.topics == ["decisions", "dead-letters"]  # metadata only: nothing sent
    # Redis: connections and the script, then reads only; velocity never recorded
    sent = {command[0] for command in redis.commands}
    assert sent <= READ_ONLY_COMMANDS, sent - READ_ONLY_COMMANDS
    assert sum(command[0] == "PING" for command in redis.commands) >= 2
    reads = [command for command in redis.commands if command[0] == "EVALSHA"]
    assert len(reads) == 65 and {command[4] for command in reads} == {"0"}
    # the metrics /metrics serves did not move (decisions, events, feature reads, drift, …)
    assert _operator_metrics() == before


@pytest.fixture
def unfrozen_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()  # the other tests of this process meet the collector as they expect


def test_the_model_and_connections_are_left_out_of_later_full_collections(
        settings: Settings, unfrozen_afterwards: None) -> None:
    models = ModelHolder(Registry(settings.registry_dir))
    client = cast(AsyncRedis, RecordingRedis(views=len(models.current.serving.views)))
    pipeline = warm_up_pipeline(settings, models, client, DecisionStore(client, settings.key_prefix))
    gc.unfreeze()

    asyncio.run(warm_up(settings, RecordingKafka(), ["decisions"], client, pipeline))

    # What a full collection walks once warm: only what was made since, not the model,
    # the libraries or the pipeline (each walk of those stopped the event loop ~100 ms).
    assert gc.get_freeze_count() > 10_000
    scanned = {id(obj) for generation in range(3) for obj in gc.get_objects(generation)}
    assert all(gc.is_tracked(obj) for obj in (pipeline, models.current))
    assert id(pipeline) not in scanned and id(models.current) not in scanned


def test_synthetic_events_are_valid_applications_of_a_customer_no_one_has(settings: Settings,
                                                                         ) -> None:
    schema = ModelHolder(Registry(settings.registry_dir)).current.event_schema
    events = synthetic_events(schema, 3)
    results = [validate_application(event, schema) for event in events]
    assert [type(result).__name__ for result in results] == ["ValidApplication"] * 3
    assert {result.customer_id for result in results} == {SYNTHETIC_CUSTOMER}  # type: ignore[union-attr]
    assert len({result.application_id for result in results}) == 3  # type: ignore[union-attr]


def test_the_worker_warms_up_after_the_producer_and_web_server_and_before_the_consumer(
        settings: Settings) -> None:
    app = create_app(settings)
    services = list(app.boot_strategy.server())
    warm = services.index(app.warm_up_service)
    assert services.index(app.producer) < warm and services.index(app.web) < warm
    # the consumer, the agents and the conductor (which subscribes) all start after it
    assert warm < services.index(app.consumer) < services.index(app.topics)
    assert app.creditrisk_state.liveness.snapshot().health()["warm_start"] == {  # type: ignore[attr-defined]
        "ok": False, "state": "warming"}


def test_without_the_warm_start_the_worker_joins_at_once(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"warm_start": False}))
    assert app.warm_up_service is None
    assert app.creditrisk_state.liveness.snapshot().health()["warm_start"]["state"] == "off"  # type: ignore[attr-defined]


def test_nothing_after_the_warm_up_starts_until_it_is_done() -> None:
    """Faust starts an app's services one after another: the consumer (and the subscription
    after it) waits for the warm-up service to finish starting."""
    release = asyncio.Event()
    started: list[str] = []

    async def warm() -> None:
        started.append("warm-up began")
        await release.wait()
        started.append("warm-up done")

    class Consumer(Service):
        async def on_start(self) -> None:
            started.append("consumer")

    class Worker(Service):
        def on_init_dependencies(self) -> list[Service]:
            return [WarmUpService(warm), Consumer()]

    async def scenario() -> None:
        worker = Worker()
        starting = asyncio.ensure_future(worker.start())
        await asyncio.sleep(0.05)
        assert started == ["warm-up began"]
        release.set()
        await starting
        assert started == ["warm-up began", "warm-up done", "consumer"]
        await worker.stop()

    asyncio.run(scenario())


def test_health_says_warming_until_warm_and_names_what_stayed_cold() -> None:
    class Gauge:
        def labels(self, *, dependency: str) -> Gauge:
            return self

        def set(self, value: float) -> None:
            pass

    liveness = Liveness(Gauge(), stall_after_s=60, stall_exit_after_s=0)
    assert liveness.snapshot().health()["warm_start"] == {"ok": True, "state": "off"}
    liveness.warming()
    assert liveness.snapshot().health()["warm_start"] == {"ok": False, "state": "warming"}
    liveness.warmed(0.4)
    assert liveness.snapshot().health()["warm_start"] == {"ok": True, "state": "warm",
                                                          "seconds": 0.4}
    liveness.warmed(15.0, ["redis (TimeoutError: )"])
    part = liveness.snapshot().health()["warm_start"]
    assert part["ok"] and part["state"] == "cold" and "redis" in str(part["detail"])
