"""The event path, top to bottom: validate → dead-letter → enrich → score → decide → publish.

One call of :meth:`ScoringPipeline.process` handles one micro-batch from Kafka. It returns
only when every decision and dead letter of the batch is delivered, so the caller may then
acknowledge the batch (at-least-once). If Redis or Kafka fail, the batch is retried with
backoff until they recover; nothing is acknowledged meanwhile, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from config.settings import Settings
from features.normalize import utc_timestamp
from features.online import FeatureRequest, OnlineFeatureReader
from features.store import FeatureStoreUnavailable
from stream.decisions import DecisionRecord, DecisionStore, decision_id
from stream.metrics import WorkerMetrics
from stream.validation import Rejection, ValidApplication, dead_letter, validate_application

log = logging.getLogger(__name__)

# Sends one message; the returned awaitable resolves once Kafka has it.
Publish = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]


@dataclass(frozen=True)
class IncomingEvent:
    """One Kafka message as the pipeline needs it (value plus where it came from)."""

    value: bytes | None
    topic: str
    partition: int | None = None
    offset: int | None = None


@dataclass
class BatchOutcome:
    decisions: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    replayed: int = 0


class ScoringPipeline:
    """The scoring service's logic, independent of Faust (the app feeds it batches)."""

    def __init__(self, settings: Settings, models: Any, reader: OnlineFeatureReader,
                 store: DecisionStore, publish: Publish, metrics: WorkerMetrics,
                 drift_monitor: Callable[[dict[str, Any]], Any] | None = None,
                 max_backoff_s: float = 10.0) -> None:
        self.settings = settings
        self.models = models
        self.reader = reader
        self.store = store
        self.publish = publish
        self.metrics = metrics
        self.drift_monitor = drift_monitor
        self.drift = drift_monitor(models.current.card) if drift_monitor else None
        self.max_backoff_s = max_backoff_s
        self.healthy_dependencies: dict[str, bool] = {"redis": True, "kafka": True}

    # -- the batch ------------------------------------------------------------------------
    async def process(self, events: Sequence[IncomingEvent]) -> BatchOutcome:
        started = time.perf_counter()
        self.metrics.events_consumed.inc(len(events))
        self.metrics.batch_size.observe(len(events))
        self._switch_model_if_promoted()

        valid, rejected = self._validate(events)
        outcome = BatchOutcome()
        outcome.dead_letters = await self._retrying(self._send_dead_letters, rejected)
        decisions, replayed = await self._retrying(self._decide_and_publish, valid)
        outcome.decisions, outcome.replayed = decisions, replayed

        self.metrics.batch_latency.observe(time.perf_counter() - started)
        self.metrics.last_batch_timestamp.set(time.time())
        return outcome

    def _switch_model_if_promoted(self) -> None:
        """Hot reload at the batch boundary; drift is measured against the new reference."""
        if self.models.refresh() and self.drift_monitor is not None:
            self.drift = self.drift_monitor(self.models.current.card)
            self.metrics.drift_psi.clear()

    def _validate(self, events: Sequence[IncomingEvent],
                  ) -> tuple[list[ValidApplication], list[tuple[Rejection, IncomingEvent]]]:
        valid: list[ValidApplication] = []
        rejected: list[tuple[Rejection, IncomingEvent]] = []
        for event in events:
            try:
                result = validate_application(event.value)
            except Exception as error:  # noqa: BLE001 - one bad event must never stop the stream
                log.error("validation failed unexpectedly: %s", type(error).__name__)
                result = Rejection("invalid_value", "the event could not be validated")
            if isinstance(result, Rejection):
                rejected.append((result, event))
            else:
                valid.append(result)
                self.metrics.unknown_fields.inc(len(result.unknown_fields))
        return valid, rejected

    async def _send_dead_letters(self, rejected: list[tuple[Rejection, IncomingEvent]],
                                 ) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        letters = []
        deliveries = []
        for rejection, event in rejected:
            letter = dead_letter(rejection, event.value, event.topic, event.partition,
                                 event.offset, now)
            letters.append(letter)
            key = rejection.application_id.encode() if rejection.application_id else None
            deliveries.append(await self.publish(self.settings.topic_dead_letters, key,
                                                 json.dumps(letter).encode()))
        await asyncio.gather(*deliveries)
        for letter in letters:
            self.metrics.dead_letters.labels(reason=letter["error"]).inc()
        return letters

    async def _decide_and_publish(self, applications: list[ValidApplication],
                                  ) -> tuple[list[dict[str, Any]], int]:
        """Decide every application (or reuse its stored decision) and deliver them all."""
        if not applications:
            return [], 0
        model = self.models.current
        unique = list({app.application_id: app for app in applications}.values())
        stored = await self.store.existing([app.application_id for app in unique], model.version)
        new = await self._decide([app for app in unique if app.application_id not in stored], model)
        decided = {**stored, **{decision["application_id"]: decision for decision in new}}
        published = [decided[app.application_id] for app in applications]

        deliveries = [await self.publish(self.settings.topic_decisions,
                                          decision["application_id"].encode(),
                                          json.dumps(decision).encode())
                      for decision in published]
        await asyncio.gather(*deliveries)

        replayed = len(published) - len(new)
        self.metrics.replayed_decisions.inc(replayed)
        now = time.time()
        for decision in published:
            self.metrics.decisions.labels(decision=decision["decision"],
                                          model_version=decision["model_version"]).inc()
            submitted = datetime.fromisoformat(decision["submitted_at"]).timestamp()
            self.metrics.end_to_end_latency.observe(max(now - submitted, 0.0))
        return published, replayed

    async def _decide(self, applications: list[ValidApplication], model: Any,
                      ) -> list[dict[str, Any]]:
        if not applications:
            return []
        enriched = await self.reader.read([_feature_request(app) for app in applications])
        started = time.perf_counter()
        inputs = model.encoder.transform_records([item.record for item in enriched.features])
        verdicts = model.score(inputs, [not item.bureau_found for item in enriched.features])
        self.metrics.scoring_latency.observe(time.perf_counter() - started)

        decided_at = utc_timestamp(datetime.now(UTC))
        decisions, records = [], []
        for app, features, verdict in zip(applications, enriched.features, verdicts, strict=True):
            decision = build_decision(app, verdict, model, features.missing + features.stale,
                                      decided_at)
            decisions.append(decision)
            records.append(DecisionRecord(decision, dict(app.application), features.record,
                                          features.stale, features.velocity))
            self.metrics.probability_of_default.observe(verdict.probability_of_default)
            self.metrics.score.observe(verdict.score)
            if not features.bureau_found:
                self.metrics.missing_bureau.inc()
        await self.store.save(records)
        if self.drift is not None:
            self.drift.observe(inputs, np.array([verdict.score for verdict in verdicts]),
                               np.array([verdict.probability_of_default for verdict in verdicts]))
            for name, value in self.drift.psi().items():
                self.metrics.drift_psi.labels(feature=name).set(value)
        return decisions

    # -- one application over HTTP (same steps, nothing published or stored) ----------------
    async def score_one(self, payload: bytes) -> dict[str, Any] | Rejection:
        result = validate_application(payload)
        if isinstance(result, Rejection):
            return result
        model = self.models.current
        enriched = await self.reader.read([_feature_request(result)], record_velocity=False)
        features = enriched.features[0]
        inputs = model.encoder.transform_records([features.record])
        (verdict,) = model.score(inputs, [not features.bureau_found])
        return build_decision(result, verdict, model, features.missing + features.stale,
                              utc_timestamp(datetime.now(UTC)))

    # -- failures -------------------------------------------------------------------------
    async def _retrying(self, step: Callable[[Any], Awaitable[Any]], argument: Any) -> Any:
        """Run a step until it succeeds; Redis or Kafka outages are waited out with backoff."""
        backoff = 0.2
        while True:
            try:
                result = await step(argument)
            except FeatureStoreUnavailable as error:
                self._dependency_failed("redis", error)
            except _KAFKA_ERRORS as error:
                self._dependency_failed("kafka", error)
            except _REDIS_ERRORS as error:
                self._dependency_failed("redis", error)
            else:
                self.healthy_dependencies = {"redis": True, "kafka": True}
                return result
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _dependency_failed(self, dependency: str, error: BaseException) -> None:
        self.healthy_dependencies[dependency] = False
        self.metrics.retries.labels(dependency=dependency).inc()
        log.warning("%s unavailable (%s); the batch will be retried", dependency,
                    type(error).__name__)


def build_decision(app: ValidApplication, verdict: Any, model: Any,
                   missing_features: list[str], decided_at: str) -> dict[str, Any]:
    """The published decision (DESIGN.md shape)."""
    return {
        "application_id": app.application_id,
        "customer_id": app.customer_id,
        "decision_id": decision_id(app.application_id, model.version),
        "decision": verdict.decision,
        "probability_of_default": round(float(verdict.probability_of_default), 6),
        "score": int(verdict.score),
        "risk_grade": str(verdict.risk_grade),
        "reasons": [asdict(reason) for reason in verdict.reasons],
        "missing_features": missing_features,
        "model_version": model.version,
        "policy_version": model.policy_version,
        "submitted_at": utc_timestamp(app.submitted_at),
        "decided_at": decided_at,
    }


def _feature_request(app: ValidApplication) -> FeatureRequest:
    return FeatureRequest(app.application_id, app.customer_id, app.submitted_at, app.application)


def _error_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    from aiokafka.errors import KafkaError as AIOKafkaError
    from redis.exceptions import RedisError

    return (AIOKafkaError,), (RedisError, ConnectionError, TimeoutError)


_KAFKA_ERRORS, _REDIS_ERRORS = _error_types()
