"""The Faust app: the agent that feeds micro-batches to the pipeline, and the HTTP views.

Batches grow with the backlog (:class:`stream.event_batches.BacklogBatches`: events are read
while a batch is scored, and the next batch takes all that waits, up to ``batch_max_events``),
and the consumer's fetch long-poll is FETCH_MAX_WAIT_MS, not Faust's fixed 1.5 s (with it, a
live stream kept ~1.5 s of events standing in the broker: docs/benchmarks.md, "Soak").

At-least-once: the agent's stream acknowledges nothing by itself (``noack``); the agent
acknowledges a batch's events only after the pipeline returns, and the pipeline returns only
when every decision and dead letter of the batch is delivered (it waits out Redis and Kafka
outages). A worker killed mid-batch leaves the batch, and the events read behind it,
unacknowledged, so they are processed again on restart and the stored decisions are reused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from functools import lru_cache
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.app.base import BootStrategy
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from faust.transport.drivers.aiokafka import Producer as AiokafkaProducer
from faust.transport.drivers.aiokafka import Transport as AiokafkaTransport
from faust.types import TP, ConsumerT, EventT, ProducerT, RecordMetadata
from mode import Service, ServiceT
from prometheus_client import REGISTRY, generate_latest

from config.json_types import JSONObject, JSONValue
from config.kafka_auth import faust_broker_options
from config.settings import Settings, get_settings
from features.metrics import default_metrics as feature_store_metrics
from features.online import OnlineFeatureReader
from features.store import AsyncRedis, async_client
from onnx_models.registry import Registry
from stream.challenger_models import ChallengerModels
from stream.decisions import Decision, DecisionStore
from stream.drift import DriftMonitor
from stream.event_batches import BacklogBatches
from stream.exits import stop_stalled_worker, stop_worker
from stream.failures import DEAD_LETTER_CODES
from stream.fairness import PUBLISH_EVERY_S as FAIRNESS_PUBLISH_EVERY_S
from stream.http_auth import (
    REFUSAL_REASONS,
    bearer_refusal,
    refusal_detail,
    require_credential_beyond_loopback,
)
from stream.liveness import Liveness, Probe
from stream.log_limits import OUTAGE_LINES
from stream.metrics import WorkerMetrics
from stream.model_runtime import ModelEvent, ModelHolder
from stream.pipeline import IncomingEvent, ScoringPipeline
from stream.request_batching import Overloaded, RequestBatcher
from stream.shadow import ShadowScorer
from stream.validation import DeadLetter
from stream.warm_start import batch_sizes, freeze_long_lived, warm_up, warm_up_pipeline

log = logging.getLogger(__name__)

PROMETHEUS_TEXT_FORMAT = "text/plain; version=0.0.4"
# How often the probe runs, and how long a probe may take before its dependency counts as
# not answering: /health and the dependency metric are at most this stale.
PROBE_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 3.0
# How long a micro-batch may wait to fill while the broker holds more events than were read
# (stream.event_batches): long enough to read a full batch on a busy 2-core machine, and spent
# only when those events are already late.
BACKLOG_WITHIN_S = 0.05
# How long the broker may hold a fetch that finds no new event (Faust fixes 1.5 s).
FETCH_MAX_WAIT_MS = 100


@lru_cache(maxsize=1)
def worker_metrics() -> WorkerMetrics:
    """The process-wide worker metrics on the default registry."""
    return WorkerMetrics()


class ServiceState:
    """The worker's wiring: its settings, its liveness, and the resources that must be built
    inside the running event loop, built once."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.liveness = Liveness(worker_metrics().dependency_up, settings.stall_after_s,
                                 settings.stall_exit_after_s)
        self.pipeline: ScoringPipeline | None = None
        self.models: ModelHolder | None = None  # the pipeline's, for /health
        self.challengers: ChallengerModels | None = None  # likewise
        self.requests: RequestBatcher[Decision | DeadLetter] | None = None
        self.redis: AsyncRedis | None = None
        self.processed: dict[TP, int] = {}  # the highest offset decided, per partition
        self._lock = asyncio.Lock()

    async def ready(self) -> ScoringPipeline:
        async with self._lock:
            if self.pipeline is None:
                self.pipeline = self._build()
                self.requests = RequestBatcher(self.pipeline.score_many,
                                               self.settings.batch_max_events,
                                               self.settings.score_queue_max)
                freeze_long_lived()
        return self.pipeline

    def _build(self) -> ScoringPipeline:
        settings = self.settings
        metrics = worker_metrics()
        for code in DEAD_LETTER_CODES:  # every reason is a series from the start, at 0
            metrics.dead_letters.labels(reason=code)
        registry = Registry(settings.registry_dir)
        models = ModelHolder(registry,
                             allow_event_contract_change=settings.allow_event_contract_change,
                             warm_batch_sizes=batch_sizes(settings.batch_max_events))
        model = models.current
        metrics.set_live_model(model.version, model.policy_version)
        models.on_event = _count_model_event  # from now on, loads are reloads
        self.models = models
        self.redis = async_client(settings, "worker")
        reader = OnlineFeatureReader(self.redis, settings.feature_schema_version,
                                     settings.key_prefix, metrics=feature_store_metrics())
        producer = self.app.producer

        async def publish(topic: str, key: bytes | None, value: bytes) -> Awaitable[RecordMetadata]:
            # Straight to the Kafka producer: the future resolves on delivery, and none of
            # Faust's per-message bookkeeping (a third of the send cost) is needed here.
            return await producer.send(topic, key, value, None, None, None)

        self.challengers = ChallengerModels(registry, metrics)
        shadow = ShadowScorer(settings, self.challengers, reader, publish, metrics)
        log.info("serving model %s from %s", model.version, settings.registry_dir)
        return ScoringPipeline(settings, models, reader, DecisionStore(self.redis, settings.key_prefix),
                               publish, metrics, drift_monitor=DriftMonitor, shadow=shadow)

    async def warm_up(self) -> None:
        """Before the consumer subscribes: build the pipeline, load the challengers, then
        warm Kafka, Redis and the model (:mod:`stream.warm_start`); /health says ``warming``
        until this returns. Never raises: what cannot be warmed is reported, and a pipeline
        that cannot be built fails in the agent as it would without a warm start."""
        started = time.perf_counter()
        try:
            pipeline = await self.ready()
        except Exception as error:  # noqa: BLE001 - the agent meets it again and reports it
            self.liveness.warmed(time.perf_counter() - started,
                                 [f"the pipeline could not be built ({type(error).__name__})"])
            return
        assert self.redis is not None and self.challengers is not None
        self.challengers.refresh(pipeline.models.current)  # loaded now, not on the first batch
        report = await warm_up(self.settings, _kafka_warmer(self.app), self._output_topics(),
                               self.redis, warm_up_pipeline(self.settings, pipeline.models,
                                                            self.redis, pipeline.store))
        self.liveness.warmed(time.perf_counter() - started, report.problems)
        log.info("%s; joining consumer group %s", report.line(), self.settings.worker_group)

    def _output_topics(self) -> list[str]:
        settings = self.settings
        topics = [settings.topic_decisions, settings.topic_dead_letters]
        if self.challengers is not None and self.challengers.shadowing:
            topics.append(settings.topic_shadow_decisions)
        return topics


class WarmUpService(Service):
    """Runs the warm start as a step of the worker's start-up: :class:`ScoringApp` places it
    after the producer and the HTTP server and before the consumer."""

    def __init__(self, warm_up: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._warm_up = warm_up

    async def on_start(self) -> None:
        await self._warm_up()


class WarmUpBeforeJoining(BootStrategy):
    """Faust starts an app's services one after the other (sensors, producer, web server,
    consumer, agents, the topic conductor that subscribes, tables): the app's
    ``warm_up_service``, if any, goes just before the consumer, so the worker is warm before
    it subscribes and joins its consumer group, and /health already answers meanwhile."""

    def kafka_consumer(self) -> Iterable[ServiceT]:
        warm_up_service = getattr(self.app, "warm_up_service", None)
        return [*([warm_up_service] if warm_up_service is not None else []),
                *super().kafka_consumer()]


class PromptFetchConsumerThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread with a fetch long-poll of FETCH_MAX_WAIT_MS instead
    of the 1.5 s Faust fixes."""

    def _create_worker_consumer(self, transport: AiokafkaTransport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher; Faust offers no setting.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class PromptFetchConsumer(AiokafkaConsumer):
    """Faust's aiokafka consumer, built on :class:`PromptFetchConsumerThread`."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return PromptFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)


class IdempotentProducer(AiokafkaProducer):
    """Faust's aiokafka producer with ``acks=all`` and idempotence: a send retried after a
    lost acknowledgment (a broker restart, a leader change) is written once, in order."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class ScoringApp(faust.App):
    """The worker's Faust app: a Faust app with a warm start before joining the group, whose
    producer is idempotent with ``acks=all``."""

    BootStrategy = WarmUpBeforeJoining
    warm_up_service: WarmUpService | None = None

    def _new_producer(self) -> ProducerT:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> ConsumerT:
        return PromptFetchConsumer(self.transport, callback=self.topics.on_message,
                                   on_partitions_revoked=self._on_partitions_revoked,
                                   on_partitions_assigned=self._on_partitions_assigned,
                                   beacon=self.beacon)


def _kafka_warmer(app: faust.App) -> Callable[[Sequence[str]], Awaitable[None]]:
    """Fetch the metadata of ``topics`` with the app's producer (started by now) and connect
    to their partition leaders, so the first decision's send waits for neither."""

    async def warm_kafka(topics: Sequence[str]) -> None:
        from aiokafka import TopicPartition

        # Faust does not expose its aiokafka producer; the first send would find it the same way.
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
        cluster = producer.client.cluster
        leaders: set[int] = set()
        for topic in topics:
            for partition in await producer.partitions_for(topic):
                leader = cluster.leader_for_partition(TopicPartition(topic, partition))
                if leader is not None and leader >= 0:
                    leaders.add(leader)
        await asyncio.gather(*(producer.client.ready(leader) for leader in leaders))

    return warm_kafka


def _count_model_event(event: ModelEvent) -> None:
    metrics = worker_metrics()
    if event.kind == "loaded":
        metrics.set_live_model(event.version or "", event.policy_version or "")
        metrics.model_reloads.labels(outcome="success").inc()
    else:
        metrics.model_reloads.labels(outcome="failure").inc()


def create_app(settings: Settings | None = None) -> ScoringApp:
    """The worker's Faust app. :class:`CredentialRequired` when it would bind an address
    beyond loopback with no ``CREDITRISK_API_TOKEN``."""
    settings = settings or get_settings()
    require_credential_beyond_loopback(settings.worker_host, settings.api_token,
                                       "CREDITRISK_API_TOKEN", "worker's HTTP server (POST /score)")
    datadir = settings.stack_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = ScoringApp(
        settings.worker_group,
        **faust_broker_options(settings, "worker"),
        # The stack creates every topic, this group's leader topic included; the worker's
        # principal may not create topics.
        topic_allow_declare=False,
        value_serializer="raw",
        key_serializer="raw",
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        web_port=settings.worker_port,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        datadir=str(datadir),
        broker_commit_interval=1.0,
        # No producer linger: measured, 5 ms of linger cut throughput by a third and
        # quadrupled latency (every send of a batch waited on it); see docs/benchmarks.md.
    )
    state = ServiceState(app, settings)
    app.creditrisk_state = state  # type: ignore[attr-defined]  # our state, for the CLI and tests
    if settings.warm_start:  # CREDITRISK_WARM_START, on unless measuring what it saves
        state.liveness.warming()
        app.warm_up_service = WarmUpService(state.warm_up)
    applications = app.topic(settings.topic_applications)

    @app.agent(applications, name="score-applications")
    async def score_applications(stream: faust.StreamT) -> None:
        pipeline = await state.ready()
        assert isinstance(stream, faust.Stream)  # the StreamT protocol omits noack
        liveness = state.liveness
        liveness.agent_started()
        manual = stream.noack()  # acknowledged below, batch by batch, once delivered
        try:
            read: dict[TP, int] = {}
            async with BacklogBatches(_noting_offsets(manual.events(), read),
                                      settings.batch_max_events, settings.batch_within_s,
                                      backlog=lambda: _unread(app, read),
                                      backlog_within_s=BACKLOG_WITHIN_S) as batches:
                async for events in batches:
                    try:
                        await pipeline.process([
                            IncomingEvent(event.value, event.message.topic,
                                          event.message.partition, event.message.offset,
                                          event.message.key)
                            for event in events])
                    except Exception as error:  # noqa: BLE001 - neither an outage nor one event's
                        stop_worker(liveness, error)
                        return  # the batch stays unacknowledged
                    await _acknowledge(manual, events, state.processed)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            liveness.agent_failed(f"the scoring agent failed ({type(error).__name__})")
            raise
        finally:
            liveness.agent_ended()

    @app.timer(interval=PROBE_INTERVAL_S)
    async def probe_dependencies_and_report_lag() -> None:
        await _probe_dependencies(app, state)

    @app.timer(interval=FAIRNESS_PUBLISH_EVERY_S)
    async def publish_fairness_figures() -> None:
        # Off the batch path: the windows roll and the gauges follow, events or not.
        if state.pipeline is not None:
            state.pipeline.fairness.publish()

    @app.timer(interval=5.0)
    async def summarise_suppressed_log_lines() -> None:
        OUTAGE_LINES.flush()  # "N similar lines suppressed", once per kind and window

    _add_views(app, state)
    return app


async def _noting_offsets(events: AsyncIterable[EventT],
                          read: dict[TP, int]) -> AsyncIterator[EventT]:
    """``events``, noting the offset of the last one read per partition in ``read``."""
    async for event in events:
        read[event.message.tp] = event.message.offset
        yield event


def _unread(app: faust.App, read: dict[TP, int]) -> int:
    """Events the broker holds beyond the last one read, per the consumer's last fetch (no
    round trip); partitions no longer assigned are forgotten."""
    consumer = app.consumer
    waiting = 0
    for tp, offset in list(read.items()):
        try:
            highwater = consumer.highwater(tp)
        except (AssertionError, AttributeError, KeyError):  # no longer assigned
            del read[tp]
            continue
        if highwater is not None:
            waiting += max(int(highwater) - offset - 1, 0)
    return waiting


async def _acknowledge(stream: faust.StreamT, events: Sequence[EventT],
                       processed: dict[TP, int]) -> None:
    """Mark a delivered batch's events safe to commit, and note the highest offset decided
    per partition (the lag the probe reports counts from it)."""
    for event in events:
        await stream.ack(event)
        tp = event.message.tp
        processed[tp] = max(processed.get(tp, -1), event.message.offset)


async def _waiting_events(app: faust.App, state: ServiceState, topic: str) -> dict[int, int]:
    """Events not yet processed, per assigned partition of the input topic."""
    partitions = [tp for tp in app.consumer.assignment() if tp.topic == topic]
    if not partitions:
        return {}
    highwaters = await app.consumer.highwaters(*partitions)
    waiting = {}
    for tp in partitions:
        done = state.processed.get(tp)
        next_offset = done + 1 if done is not None else (await app.consumer.position(tp) or 0)
        waiting[tp.partition] = max(int(highwaters.get(tp, next_offset)) - next_offset, 0)
    return waiting


async def _probe_dependencies(app: faust.App, state: ServiceState) -> None:
    """Every few seconds, events or not, Kafka and Redis at once: the consumer lag (a Kafka
    round trip) and a Redis ping, with when the pipeline last completed a batch. The only
    feeder of the worker's :class:`Liveness` (``creditrisk_dependency_up``, ``/health``, the
    outage lines); a stream that stays stalled while both answer stops the worker
    (:func:`stop_stalled_worker`)."""
    pipeline, redis_client = state.pipeline, state.redis
    if pipeline is None or redis_client is None:
        return
    lag, pong = await asyncio.gather(
        asyncio.wait_for(_waiting_events(app, state, state.settings.topic_applications),
                         PROBE_TIMEOUT_S),
        asyncio.wait_for(redis_client.ping(), PROBE_TIMEOUT_S),
        return_exceptions=True)
    state.liveness.probed(Probe(lag, pong if isinstance(pong, BaseException) else None,
                                pipeline.last_batch_completed_at))
    if not isinstance(lag, BaseException):
        for partition, waiting in lag.items():
            worker_metrics().consumer_lag.labels(partition=str(partition)).set(waiting)
    stall = state.liveness.stall_to_stop()
    if stall is not None:
        stop_stalled_worker(state.liveness, stall)


def model_health(models: ModelHolder | None,
                 challengers: ChallengerModels | None = None) -> JSONObject:
    """The model part of ``GET /health``: which version serves, the last failed reload, and
    each challenger's state (a failed challenger never makes the worker unhealthy: the
    champion decides alone; its failures are counted and alerted)."""
    if models is None:
        return {"ok": False, "detail": "not loaded yet"}
    return {"ok": True, "version": models.current.version,
            "policy_version": models.current.policy_version,
            "last_reload_error": models.last_reload_error,
            "challengers": _challengers_health(challengers)}


def _challengers_health(challengers: ChallengerModels | None) -> list[JSONValue]:
    if challengers is None:
        return []
    return [dict(part) for part in challengers.health()]


def _add_views(app: faust.App, state: ServiceState) -> None:
    @app.page("/metrics")
    async def metrics(self: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # aiohttp wants the charset apart from the content type; the exposition format is UTF-8.
        return self.bytes(generate_latest(REGISTRY), content_type=PROMETHEUS_TEXT_FORMAT)

    @app.page("/health")
    async def health(self: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        # What the last probe found: no round trip of its own.
        report: dict[str, Mapping[str, object]] = {
            **state.liveness.snapshot().health(),
            "model": model_health(state.models, state.challengers)}
        status = 200 if all(part["ok"] for part in report.values()) else 503
        return self.json(report, status=status)

    token = state.settings.api_token
    for reason in REFUSAL_REASONS:  # every reason is a series from the start, at 0
        worker_metrics().score_requests_unauthorized.labels(reason=reason)

    @app.page("/score")
    class Score(faust.web.View):
        """POST one application event (JSON); the decision comes back, nothing is published.
        With ``CREDITRISK_API_TOKEN`` set, only for ``Authorization: Bearer <token>``."""

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            refusal = bearer_refusal(request.headers.get("Authorization"), token) if token else None
            if refusal is not None:
                worker_metrics().score_requests_unauthorized.labels(reason=refusal).inc()
                challenge = 'Bearer realm="creditrisk"' + (
                    ', error="invalid_token"' if refusal == "wrong" else "")
                return self.json({"error": "unauthorized", "detail": refusal_detail(refusal)},
                                 status=401, headers={"WWW-Authenticate": challenge})
            await state.ready()
            assert state.requests is not None
            body = await request.read()
            try:
                result = await state.requests.score(body)
            except Overloaded as busy:
                worker_metrics().score_requests_refused.inc()
                return self.json({"error": "overloaded", "detail": str(busy)}, status=429,
                                 headers={"Retry-After": f"{busy.retry_after_s:g}"})
            except Exception as error:  # noqa: BLE001 - the caller gets a clear 503
                log.warning("POST /score failed: %s", type(error).__name__)
                return self.json({"error": "unavailable",
                                  "detail": f"scoring failed: {type(error).__name__}"}, status=503)
            if isinstance(result, DeadLetter):  # the contract's codes, or processing_error
                return self.json({"error": result.error, "detail": result.detail}, status=422)
            return self.bytes(result.to_json(), content_type="application/json")
