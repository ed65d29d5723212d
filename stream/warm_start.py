"""Warm start: the worker pays its first-call costs before it joins the consumer group.

A freshly started worker used to meet its first events cold: each opened a Redis connection
(TLS and ACL login), fetched a Kafka topic's metadata on its first send, and made the model's
first calls at a new batch size, so the p99 latency of a run that includes the first seconds
was several times the warm one. :func:`warm_up` runs before the consumer subscribes
(:class:`stream.app.ScoringApp` starts it after the producer and the HTTP server and before the
consumer), in this order:

1. **Kafka**: the metadata of every topic the worker writes, and a connection to each of
   their partition leaders (``warm_kafka``, given by the app);
2. **Redis**: ``REDIS_CONNECTIONS`` connections of the pool opened at once (to every primary
   of a Redis Cluster) and the read script loaded (on every primary);
3. **the model**: synthetic application events, one batch of each size the pipeline will meet
   (1 and ``batch_max_events``), through the whole event path of a :class:`ScoringPipeline`
   built for the purpose (:func:`warm_up_pipeline`);
4. **the collector**: what is alive by then (the libraries' modules, the model, the
   connections: about a million objects) is frozen out of the cyclic garbage collector's scans
   (:func:`freeze_long_lived`, also called once the pipeline is built when the warm start is
   off). Unfrozen, each full collection walked them all and stopped the event loop for ~100 ms
   in the middle of a stream, the slowest decisions of a run.

The synthetic batch never leaves the process: its feature read never records velocity
(:class:`ReadOnlyFeatures`: the read script only reads then), its decisions are neither
stored (:class:`ForgetfulStore`) nor published (:class:`DiscardedSends`), and its metrics go to
a registry of its own, so no topic, Redis key, metric the operators see, or ledger row ever
holds it. A part that fails or takes longer than ``PART_TIMEOUT_S`` is reported and the worker
joins anyway: a cold worker that decides is better than none (an outage is then waited out
by the pipeline, as always).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from redis.asyncio.cluster import RedisCluster

from config.settings import Settings
from features import normalize
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineBatch, OnlineFeatureReader, load_read_script
from features.serving import ServingSpec
from features.store import AsyncRedis
from stream.decisions import Decision, DecisionRecord
from stream.drift import DriftMonitor
from stream.event_schema import EventSchema, FieldProblem
from stream.metrics import WorkerMetrics
from stream.pipeline import IncomingEvent, ScoringPipeline
from stream.ports import DecisionKeeper, FeatureReader, ModelSource

log = logging.getLogger(__name__)

REDIS_CONNECTIONS = 4     # the batch's reads and writes, the probe, POST /score: opened at once
PART_TIMEOUT_S = 15.0     # each part; past it the worker joins with that part cold
SYNTHETIC_CUSTOMER = "warm-start"  # never a real customer's id: nothing is stored under it
SYNTHETIC_TOPIC = "warm-start"     # where the synthetic events claim to come from
# Values tried for each application field, first accepted by the field's check wins:
# an amount, a term, years of employment, a purpose, a state, then the closed vocabularies.
_CANDIDATE_VALUES: tuple[object, ...] = (
    10_000, 36, 5, "other", "CA", *sorted(normalize.HOME_OWNERSHIP_VALUES),
    *normalize.VERIFICATION_STATUS_VALUES.values())

KafkaWarmer = Callable[[Sequence[str]], Awaitable[None]]


def batch_sizes(batch_max_events: int) -> tuple[int, ...]:
    """The batch sizes the pipeline meets first: one event at a time under a light load, and
    full batches under a backlog."""
    return tuple(sorted({1, batch_max_events}))


def synthetic_events(schema: EventSchema, count: int, now: datetime | None = None) -> list[bytes]:
    """``count`` application events valid under ``schema``, for a customer the feature store
    does not know (so every one is a ``review`` with reasons: the whole scoring path)."""
    application = {name: _accepted_value(check) for name, check in schema.checks}
    submitted_at = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return [json.dumps({"application_id": f"{SYNTHETIC_CUSTOMER}-{index}",
                        "customer_id": SYNTHETIC_CUSTOMER, "submitted_at": submitted_at,
                        **application}).encode()
            for index in range(count)]


def _accepted_value(check: Callable[[object], object]) -> object:
    for candidate in _CANDIDATE_VALUES:
        try:
            if check(candidate) is not None:
                return candidate
        except FieldProblem:
            continue
    return None


class ReadOnlyFeatures:
    """A :class:`FeatureReader` that reads and never records velocity, whatever is asked."""

    def __init__(self, reader: FeatureReader) -> None:
        self.reader = reader

    async def read(self, requests: Sequence[FeatureRequest], *, serving: ServingSpec,
                   record_velocity: bool = True) -> OnlineBatch:
        return await self.reader.read(requests, serving=serving, record_velocity=False)


class ForgetfulStore:
    """A :class:`DecisionKeeper` that looks decisions up in the real store (a read) and
    stores nothing."""

    def __init__(self, store: DecisionKeeper) -> None:
        self.store = store

    async def existing(self, application_ids: Sequence[str], model_version: str,
                       ) -> dict[str, Decision]:
        return await self.store.existing(application_ids, model_version)

    async def save(self, records: Sequence[DecisionRecord]) -> None:
        return None


class DiscardedSends:
    """The pipeline's ``publish``: every message is dropped and counted, none is sent."""

    def __init__(self) -> None:
        self.discarded = 0

    async def __call__(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[object]:
        self.discarded += 1
        delivered: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def warm_up_pipeline(settings: Settings, models: ModelSource, redis: AsyncRedis,
                     store: DecisionKeeper) -> ScoringPipeline:
    """A pipeline on the worker's model, Redis client and decision store whose effects stay
    in the process (see the module docstring): its metrics, the feature reader's included,
    are counted on a registry of its own."""
    own_metrics = CollectorRegistry()
    reader = OnlineFeatureReader(redis, settings.feature_schema_version, settings.key_prefix,
                                 metrics=FeatureStoreMetrics(own_metrics))
    return ScoringPipeline(settings, models, ReadOnlyFeatures(reader), ForgetfulStore(store),
                           DiscardedSends(), WorkerMetrics(own_metrics),
                           drift_monitor=DriftMonitor)


@dataclass
class WarmUpReport:
    """What the warm start did: seconds per part, and what could not be warmed."""

    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    synthetic_decided: int = 0
    synthetic_dead_lettered: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def line(self) -> str:
        parts = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in self.seconds.items())
        cold = f"; cold: {'; '.join(self.problems)}" if self.problems else ""
        return f"warm start in {self.total_seconds:.2f} s ({parts}){cold}"


async def warm_up(settings: Settings, warm_kafka: KafkaWarmer, output_topics: Sequence[str],
                  redis: AsyncRedis, pipeline: ScoringPipeline) -> WarmUpReport:
    """Kafka, Redis, then the model through ``pipeline`` (one from :func:`warm_up_pipeline`)."""
    report = WarmUpReport()
    await _part(report, "kafka", warm_kafka(output_topics))
    await _part(report, "redis", warm_redis(redis))
    await _part(report, "model", _score_synthetic_batches(settings, pipeline, report))
    freeze_long_lived()
    return report


def freeze_long_lived() -> None:
    """Collect what is garbage now, then move every object still alive to the collector's
    permanent generation (:func:`gc.freeze`): full collections then scan only what was made
    since, a few milliseconds instead of ~100. Frozen objects are still freed by reference
    counting when released (a replaced model); only cycles among them would stay."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    log.info("froze %d long-lived objects in %.0f ms", gc.get_freeze_count(),
              (time.perf_counter() - started) * 1000)


async def warm_redis(redis: AsyncRedis, connections: int = REDIS_CONNECTIONS) -> None:
    """Open ``connections`` of the pool (each pays its TCP, TLS and ACL login now) and load
    the read script. On a Redis Cluster, ``connections`` to every primary, where the batch's
    reads and writes go (a plain PING would reach one node), and the script on each."""
    await asyncio.gather(*(_ping_every_primary(redis) for _ in range(connections)))
    await load_read_script(redis)


async def _ping_every_primary(client: AsyncRedis) -> None:
    if isinstance(client, RedisCluster):
        await client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.ping()


async def _score_synthetic_batches(settings: Settings, pipeline: ScoringPipeline,
                                   report: WarmUpReport) -> None:
    schema = pipeline.event_schema(pipeline.models.current)
    for size in batch_sizes(settings.batch_max_events):
        events = [IncomingEvent(payload, SYNTHETIC_TOPIC, 0, offset)
                  for offset, payload in enumerate(synthetic_events(schema, size))]
        outcome = await pipeline.process(events)
        report.synthetic_decided += len(outcome.decisions)
        report.synthetic_dead_lettered += len(outcome.dead_letters)
    if report.synthetic_dead_lettered:
        report.problems.append(f"{report.synthetic_dead_lettered} synthetic events were "
                               "dead-lettered (the model's validation refused them), so part of "
                               "the scoring path stayed cold")


async def _part(report: WarmUpReport, name: str, work: Awaitable[None]) -> None:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(work, PART_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - a part that fails leaves that part cold, no more
        report.problems.append(f"{name} ({type(error).__name__}: {str(error)[:120]})")
    finally:
        report.seconds[name] = time.perf_counter() - started
