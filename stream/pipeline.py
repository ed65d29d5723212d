"""The event path, top to bottom: validate → dead-letter → enrich → score → decide → publish.

One call of :meth:`ScoringPipeline.process` handles one micro-batch from Kafka. It returns
only when every decision and dead letter of the batch is delivered, so the caller may then
acknowledge the batch (at-least-once). What happens when a step fails is the failure policy
of :mod:`stream.failures`: outages are waited out with backoff (nothing is acknowledged
meanwhile, so nothing is lost), an error that belongs to one event dead-letters that event
only, and a model that cannot score at all stops the worker (:class:`ModelRuntimeBroken`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from config.settings import Settings
from features.normalize import utc_timestamp
from features.online import FeatureRequest, OnlineFeatureReader, OnlineFeatures
from onnx_models.card import ModelCard
from stream.decisions import Decision, DecisionRecord, DecisionStore, decision_id
from stream.event_schema import EventSchema
from stream.failures import (
    PROCESSING_ERROR,
    DependencyStatus,
    ModelRuntimeBroken,
    ProcessingError,
    field_that_breaks,
    isolate,
    outage_dependency,
)
from stream.metrics import WorkerMetrics
from stream.validation import Rejection, ValidApplication, dead_letter, validate_application

log = logging.getLogger(__name__)
# Drift gauges are recomputed after this many decisions or this long (every batch observes
# the window).
PSI_EVERY_ROWS, PSI_EVERY_S = 100, 1.0

# Sends one message; the returned awaitable resolves once Kafka has it.
Publish = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]
T = TypeVar("T")


@dataclass(frozen=True)
class IncomingEvent:
    """One Kafka message as the pipeline needs it: its value, key and where it came from."""

    value: bytes | None
    topic: str
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None


@dataclass
class BatchOutcome:
    decisions: list[Decision] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    replayed: int = 0


@dataclass(frozen=True)
class _Accepted:
    """A valid application and the message it arrived in (for a later dead letter)."""

    application: ValidApplication
    event: IncomingEvent


@dataclass(frozen=True)
class _Scored:
    """One application through enrich → encode → score."""

    features: OnlineFeatures
    inputs: np.ndarray   # the model's float32 input row
    verdict: Any         # stream.model_runtime.Verdict


Rejected = tuple[Rejection, IncomingEvent]


class ScoringPipeline:
    """The scoring service's logic, independent of Faust (the app feeds it batches)."""

    def __init__(self, settings: Settings, models: Any, reader: OnlineFeatureReader,
                 store: DecisionStore, publish: Publish, metrics: WorkerMetrics,
                 drift_monitor: Callable[[ModelCard], Any] | None = None,
                 max_backoff_s: float = 10.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.settings = settings
        self.models = models
        self.reader = reader
        self.store = store
        self.publish = publish
        self.metrics = metrics
        self.drift_monitor = drift_monitor
        self.drift = drift_monitor(models.current.card) if drift_monitor else None
        self._psi_published_at, self._rows_since_psi = -PSI_EVERY_S, 0
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.dependencies = DependencyStatus(metrics.dependency_up)
        self.last_batch_completed_at: float | None = None  # time.time() of the last batch

    # -- the batch ------------------------------------------------------------------------
    async def process(self, events: Sequence[IncomingEvent]) -> BatchOutcome:
        """Decide or dead-letter every event of the batch; raises only
        :class:`ModelRuntimeBroken` or :class:`FeatureStoreRefused` (the batch must then stay
        unacknowledged)."""
        started = time.perf_counter()
        self.metrics.events_consumed.inc(len(events))
        self.metrics.batch_size.observe(len(events))
        self._switch_model_if_promoted()
        model = self.models.current  # one model for the whole batch

        accepted, rejected = self._validate(events, model.event_schema)
        outcome = BatchOutcome()
        outcome.dead_letters = await self._retrying(lambda: self._send_dead_letters(rejected))
        decisions, failed, outcome.replayed = await self._retrying(
            lambda: self._decide_and_publish(accepted, model))
        outcome.decisions = decisions
        outcome.dead_letters += await self._retrying(lambda: self._send_dead_letters(failed))

        self.metrics.batch_latency.observe(time.perf_counter() - started)
        self.last_batch_completed_at = time.time()
        self.metrics.last_batch_timestamp.set(self.last_batch_completed_at)
        return outcome

    def _switch_model_if_promoted(self) -> None:
        """Hot reload at the batch boundary; drift is measured against the new reference."""
        if self.models.refresh() and self.drift_monitor is not None:
            self.drift = self.drift_monitor(self.models.current.card)
            self.metrics.drift_psi.clear()

    def _validate(self, events: Sequence[IncomingEvent], schema: EventSchema,
                  ) -> tuple[list[_Accepted], list[Rejected]]:
        accepted: list[_Accepted] = []
        rejected: list[Rejected] = []
        for event in events:
            try:
                result = validate_application(event.value, schema)
            except Exception as error:  # noqa: BLE001 - one bad event must never stop the stream
                log.error("validation failed unexpectedly: %s", type(error).__name__)
                result = Rejection("invalid_value", "the event could not be validated")
            if isinstance(result, Rejection):
                rejected.append((result, event))
            else:
                accepted.append(_Accepted(result, event))
                self.metrics.unknown_fields.inc(len(result.unknown_fields))
        return accepted, rejected

    async def _send_dead_letters(self, rejected: Sequence[Rejected]) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        letters = []
        deliveries = []
        for rejection, event in rejected:
            letter = dead_letter(rejection, event.value, event.topic, event.partition,
                                 event.offset, now)
            letters.append(letter)
            # The original message's key, so the letter lands beside what was sent.
            deliveries.append(await self.publish(self.settings.topic_dead_letters, event.key,
                                                 json.dumps(letter).encode()))
        await asyncio.gather(*deliveries)
        for letter in letters:
            self.metrics.dead_letters.labels(reason=letter["error"]).inc()
        return letters

    async def _decide_and_publish(self, accepted: Sequence[_Accepted], model: Any,
                                  ) -> tuple[list[Decision], list[Rejected], int]:
        """Decide every application (or reuse its stored decision) and deliver the decisions;
        the events that failed a step come back to be dead-lettered."""
        if not accepted:
            return [], [], 0
        unique = {item.application.application_id: item.application for item in accepted}
        stored = await self.store.existing(list(unique), model.version)
        new, failures = await self._decide(
            [app for app_id, app in unique.items() if app_id not in stored], model)
        decided = {**stored, **new}

        published: list[Decision] = []
        failed: list[Rejected] = []
        for item in accepted:
            app_id = item.application.application_id
            if app_id in failures:
                failed.append((Rejection(PROCESSING_ERROR, failures[app_id].detail, app_id),
                               item.event))
            else:
                published.append(decided[app_id])
        deliveries = [await self.publish(self.settings.topic_decisions,
                                          decision.application_id.encode(), decision.to_json())
                      for decision in published]
        await asyncio.gather(*deliveries)
        replayed = len(published) - len(new)
        self._count_published(published, replayed)
        return published, failed, replayed

    def _count_published(self, published: Sequence[Decision], replayed: int) -> None:
        self.metrics.replayed_decisions.inc(replayed)
        now = time.time()
        counts = Counter((decision.decision, decision.model_version) for decision in published)
        for (outcome, version), count in counts.items():  # one increment per label set
            self.metrics.decisions.labels(decision=outcome, model_version=version).inc(count)
        for decision in published:
            self.metrics.end_to_end_latency.observe(max(now - decision.submitted_timestamp, 0.0))

    async def _decide(self, applications: list[ValidApplication], model: Any,
                      ) -> tuple[dict[str, Decision], dict[str, ProcessingError]]:
        """New decisions by application id, stored in Redis; and the applications that failed."""
        scored, failures = await self._score(applications, model, record_velocity=True)
        decided_at = utc_timestamp(datetime.now(UTC))

        async def build(positions: Sequence[int]) -> list[tuple[Decision, DecisionRecord]]:
            built = []
            for position in positions:
                app, item = applications[position], scored[position]
                decision = build_decision(app, item.verdict, model, item.features.unavailable,
                                          decided_at)
                record = DecisionRecord(decision, dict(app.application), item.features.record,
                                        item.features.stale, item.features.velocity,
                                        dict(item.features.age_seconds))
                built.append((decision, record))
            return built

        built, build_errors = await isolate("decide", sorted(scored), build)
        failures.update({applications[p].application_id: e for p, e in build_errors.items()})

        async def save(positions: Sequence[int]) -> list[None]:
            await self.store.save([built[position][1] for position in positions])
            return [None] * len(positions)

        _saved, save_errors = await isolate("store", sorted(built), save)
        failures.update({applications[p].application_id: e for p, e in save_errors.items()})
        decided = {p: built[p] for p in built if p not in save_errors}
        self._observe([scored[p] for p in decided])
        self._log_failures(failures)
        return ({applications[p].application_id: decision for p, (decision, _) in decided.items()},
                failures)

    async def _score(self, applications: Sequence[ValidApplication], model: Any,
                     record_velocity: bool) -> tuple[dict[int, _Scored], dict[str, ProcessingError]]:
        """Enrich (one Redis round trip), encode and score; results by position."""
        if not applications:
            return {}, {}
        requests = [_feature_request(app) for app in applications]

        async def enrich(positions: Sequence[int]) -> list[OnlineFeatures]:
            batch = await self.reader.read([requests[p] for p in positions],
                                           record_velocity=record_velocity, serving=model.serving)
            return batch.features

        features, errors = await isolate("enrich", range(len(requests)), enrich)
        records = {p: item.record for p, item in features.items()}

        def encode_one(record: Mapping[str, Any]) -> np.ndarray:
            return model.encoder.transform_records([record])

        async def encode(positions: Sequence[int]) -> Sequence[np.ndarray]:
            matrix: np.ndarray = model.encoder.transform_records([records[p] for p in positions])
            return list(matrix)

        rows: dict[int, np.ndarray]
        rows, encode_errors = await isolate(
            "encode", sorted(records), encode,
            locate_field=lambda p: field_that_breaks(records[p], encode_one, list(records[p])))
        errors.update(encode_errors)

        started = time.perf_counter()

        async def score(positions: Sequence[int]) -> list[Any]:
            return model.score(np.asarray([rows[p] for p in positions], dtype=np.float32),
                               [features[p].incomplete for p in positions])

        verdicts, score_errors = await isolate(
            "score", sorted(rows), score,
            locate_field=lambda p: _input_that_breaks(model, rows[p], features[p].incomplete))
        self.metrics.scoring_latency.observe(time.perf_counter() - started)
        if score_errors and len(score_errors) == len(rows):
            _check_runtime(model, next(iter(score_errors.values())).cause)
        errors.update(score_errors)
        scored = {p: _Scored(features[p], rows[p], verdicts[p]) for p in verdicts}
        return scored, {applications[p].application_id: error for p, error in errors.items()}

    def _observe(self, scored: Sequence[_Scored]) -> None:
        """Distribution, missing-bureau and drift metrics of the new decisions, per batch."""
        if not scored:
            return
        for item in scored:
            self.metrics.probability_of_default.observe(item.verdict.probability_of_default)
            self.metrics.score.observe(item.verdict.score)
        self.metrics.missing_bureau.inc(sum(not item.features.views_found for item in scored))
        if self.drift is not None:
            self.drift.observe(np.asarray([item.inputs for item in scored], dtype=np.float32),
                               np.array([item.verdict.score for item in scored]),
                               np.array([item.verdict.probability_of_default for item in scored]))
            # Recomputed every PSI_EVERY_ROWS decisions or PSI_EVERY_S, not every batch: a
            # gauge over a window of thousands, scraped every 15 s.
            self._rows_since_psi += len(scored)
            now = time.monotonic()
            if self._rows_since_psi >= PSI_EVERY_ROWS or now - self._psi_published_at >= PSI_EVERY_S:
                self._psi_published_at, self._rows_since_psi = now, 0
                for name, value in self.drift.psi().items():
                    self.metrics.drift_psi.labels(feature=name).set(value)

    @staticmethod
    def _log_failures(failures: dict[str, ProcessingError]) -> None:
        for step in sorted({error.step for error in failures.values()}):
            count = sum(error.step == step for error in failures.values())
            log.warning("%d event(s) failed the %s step and go to the dead-letter topic", count,
                        step)

    # -- one application over HTTP (same steps, nothing published or stored) ----------------
    async def score_many(self, payloads: Sequence[bytes]) -> list[Decision | Rejection]:
        """Score request bodies together (one feature read, one model call), each answered
        on its own: a decision, or the rejection of that body alone."""
        model = self.models.current
        answers: list[Decision | Rejection | None] = []
        valid: list[tuple[int, ValidApplication]] = []
        for payload in payloads:
            result = validate_application(payload, model.event_schema)
            if isinstance(result, Rejection):
                answers.append(result)
            else:
                valid.append((len(answers), result))
                answers.append(None)
        scored, failures = await self._score([app for _, app in valid], model,
                                             record_velocity=False)
        decided_at = utc_timestamp(datetime.now(UTC))
        for index, (position, app) in enumerate(valid):
            item = scored.get(index)
            answers[position] = (
                build_decision(app, item.verdict, model, item.features.unavailable, decided_at)
                if item is not None else
                Rejection(PROCESSING_ERROR, failures[app.application_id].detail,
                          app.application_id))
        return [answer for answer in answers if answer is not None]

    # -- outages --------------------------------------------------------------------------
    async def _retrying(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run a step until it succeeds; Redis or Kafka outages are waited out with backoff."""
        backoff = 0.2
        while True:
            try:
                result = await step()
            except Exception as error:
                dependency = outage_dependency(error)
                if dependency is None:
                    raise
                self._dependency_failed(dependency, error)
            else:
                self.dependencies.answered()
                return result
            await self.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    @property
    def healthy_dependencies(self) -> dict[str, bool]:
        return self.dependencies.up

    def _dependency_failed(self, dependency: str, error: BaseException) -> None:
        self.metrics.retries.labels(dependency=dependency).inc()
        self.dependencies.failed(dependency, error)


def _check_runtime(model: Any, cause: BaseException) -> None:
    """Every event of the batch failed to score: a broken model, or only bad events?"""
    try:
        model.self_check()
    except Exception as error:
        raise ModelRuntimeBroken(model.version, cause) from error


def _input_that_breaks(model: Any, row: np.ndarray, incomplete: bool) -> str | None:
    """The model input whose value (set to missing) makes scoring fail, if it is one."""
    for column, name in enumerate(model.feature_names):
        if np.isnan(row[column]):
            continue
        trial = row.copy()
        trial[column] = np.nan
        try:
            model.score(trial[np.newaxis, :], [incomplete])
        except Exception:  # noqa: BLE001 - still failing: not this input
            continue
        return str(name)
    return None


def build_decision(app: ValidApplication, verdict: Any, model: Any,
                   missing_features: list[str], decided_at: str) -> Decision:
    """The published decision (DESIGN.md shape)."""
    return Decision(
        application_id=app.application_id,
        customer_id=app.customer_id,
        decision_id=decision_id(app.application_id, model.version),
        decision=verdict.decision,
        probability_of_default=round(float(verdict.probability_of_default), 6),
        score=int(verdict.score),
        risk_grade=str(verdict.risk_grade),
        reasons=tuple(verdict.reasons),
        missing_features=tuple(missing_features),
        model_version=model.version,
        policy_version=model.policy_version,
        submitted_at=utc_timestamp(app.submitted_at),
        decided_at=decided_at,
    )


def _feature_request(app: ValidApplication) -> FeatureRequest:
    return FeatureRequest(app.application_id, app.customer_id, app.submitted_at, app.application)
