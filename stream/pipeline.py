"""The event path, in the order it runs:

validate → dead-letter the invalid → reuse stored decisions → enrich → encode → score →
decide → store → publish the decisions → dead-letter the events a step failed → shadow
(the challengers decide their share, :mod:`stream.shadow`; they cannot fail the batch).

One call of :meth:`ScoringPipeline.process` handles one micro-batch from Kafka. Each message
is an item that ends decided or dead-lettered; a valid application moves through the steps
of :mod:`stream.stages` as one value (accepted → enriched → encoded → scored → decided). The
call returns only when every decision and dead letter of the batch is delivered, so the
caller may then acknowledge the batch (at-least-once). What happens when a step fails is the
failure policy of :mod:`stream.failures`: outages are waited out with backoff (nothing is
acknowledged meanwhile, so nothing is lost); an error that belongs to one event dead-letters
that event only, the others staying together in large calls (:func:`isolate`); a model that
cannot score at all stops the worker (:class:`ModelRuntimeBroken`), and so does a refused
configuration. With challengers, the batch's one feature read covers every model's views, and
the challengers run only once the champion's decisions are delivered. ``POST /score`` runs
the same steps (:meth:`ScoringPipeline.score_many`) without storing, publishing or shadowing.
The champion's new decisions are counted by monitored group (:mod:`stream.fairness`); the
groups come from validation, under the live model card's monitoring spec, and never change a
decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import numpy as np

from config.settings import Settings
from fairness.spec import MonitoringConfigError, MonitoringSpec
from onnx_models.card import ModelCard
from stream.decisions import Decision
from stream.event_schema import EventSchema
from stream.failures import isolate, outage_dependency
from stream.fairness import FairnessMonitor
from stream.metrics import WorkerMetrics
from stream.ports import DecisionKeeper, DriftObserver, FeatureReader, ModelSource, ScoringModel
from stream.shadow import ShadowCase, ShadowScorer
from stream.stages import (
    Accepted,
    BatchSteps,
    Decided,
    EventItem,
    IncomingEvent,
    Scored,
    build_decision,
)
from stream.validation import DeadLetter, Rejection, ValidApplication, validate_application

log = logging.getLogger(__name__)
# Drift gauges are recomputed after this many decisions or this long (every batch observes
# the window).
PSI_EVERY_ROWS, PSI_EVERY_S = 100, 1.0

# At most one "batch waits" line per dependency this often, however many batches wait.
OUTAGE_LINE_EVERY_S = 30.0

# Sends one message; the returned awaitable resolves once Kafka has it.
Publish = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[object]]]
Params = ParamSpec("Params")
T = TypeVar("T")

__all__ = ["BatchOutcome", "IncomingEvent", "Publish", "ScoringPipeline", "build_decision"]


@dataclass
class BatchOutcome:
    decisions: list[Decision] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    replayed: int = 0


class ScoringPipeline:
    """The scoring service's logic, independent of Faust (the app feeds it batches)."""

    def __init__(self, settings: Settings, models: ModelSource, reader: FeatureReader,
                 store: DecisionKeeper, publish: Publish, metrics: WorkerMetrics,
                 drift_monitor: Callable[[ModelCard], DriftObserver] | None = None,
                 max_backoff_s: float = 10.0,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 shadow: ShadowScorer | None = None) -> None:
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
        self.shadow = shadow
        self.last_batch_completed_at: float | None = None  # time.time() of the last batch
        self._outage_logged_at: dict[str, float] = {}
        self.fairness = FairnessMonitor(metrics)
        # The event contract of the model last seen, monitored fields included: built once
        # per model, not per event.
        self._contract: tuple[ScoringModel, EventSchema] | None = None
        self.event_schema(models.current)  # the live card's monitoring, from the start

    # -- the batch ------------------------------------------------------------------------
    async def process(self, events: Sequence[IncomingEvent]) -> BatchOutcome:
        """Decide or dead-letter every event of the batch; raises only
        :class:`ModelRuntimeBroken` or a refused configuration (the batch must then stay
        unacknowledged)."""
        started = time.perf_counter()
        self.metrics.events_consumed.inc(len(events))
        self.metrics.batch_size.observe(len(events))
        self._switch_model_if_promoted()
        read_spec = self.shadow.refreshed(self.models.current) if self.shadow else None
        steps = BatchSteps(self.models.current, self.reader, self.store,  # one model per batch
                           read_spec=read_spec)
        items = [EventItem(event) for event in events]

        accepted = self._validate(items, self.event_schema(steps.model))
        self.metrics.unknown_fields.inc(sum(len(app.application.unknown_fields) * len(app.items)
                                            for app in accepted))
        invalid = [item for item in items if item.dead_letter is not None]
        await self._retrying(self._send_dead_letters, invalid)
        newly_decided = await self._retrying(self._decide, steps, accepted)
        decisions = [item.decision for item in items if item.decision is not None]
        await self._retrying(self._publish_decisions, decisions)
        replayed = len(decisions) - newly_decided
        self._count_published(decisions, replayed)
        already_sent = set(invalid)
        failed = [item for item in items
                  if item.dead_letter is not None and item not in already_sent]
        await self._retrying(self._send_dead_letters, failed)

        self.metrics.batch_latency.observe(time.perf_counter() - started)
        self.last_batch_completed_at = time.time()
        self.metrics.last_batch_timestamp.set(self.last_batch_completed_at)
        if self.shadow is not None and read_spec is not None:
            await self.shadow.shadow(self._shadow_cases(steps, accepted))
        return BatchOutcome(decisions, [item.dead_letter for item in invalid + failed
                                        if item.dead_letter is not None], replayed)

    @staticmethod
    def _shadow_cases(steps: BatchSteps, applications: Sequence[Accepted]) -> list[ShadowCase]:
        """The applications the champion decided (new, or replayed: no read), never the
        dead-lettered ones."""
        cases = []
        for accepted in applications:
            decision = accepted.items[0].decision
            if decision is not None:
                app = accepted.application
                cases.append(ShadowCase(app, decision, steps.reads.get(app.application_id)))
        return cases

    def event_schema(self, model: ScoringModel) -> EventSchema:
        """``model``'s event contract with its card's monitored fields (built when the model
        changes); the fairness monitor follows the new card's declaration."""
        if self._contract is not None and self._contract[0] is model:
            return self._contract[1]
        monitoring = self._monitoring_spec(model)
        schema = model.event_schema.with_monitoring(monitoring)
        self._contract = (model, schema)
        self.fairness.use(monitoring)
        return schema

    @staticmethod
    def _monitoring_spec(model: ScoringModel) -> MonitoringSpec:
        try:
            return model.card.monitoring_spec()
        except MonitoringConfigError as error:  # decisions go on; nothing is monitored
            log.error("model %s: its monitoring declaration is unusable, no group is "
                      "monitored: %s", model.version, error)
            return MonitoringSpec()

    def _switch_model_if_promoted(self) -> None:
        """Hot reload at the batch boundary; drift is measured against the new reference."""
        if self.models.refresh() and self.drift_monitor is not None:
            self.drift = self.drift_monitor(self.models.current.card)
            self.metrics.drift_psi.clear()

    def _validate(self, items: Sequence[EventItem], schema: EventSchema) -> list[Accepted]:
        """Dead-letter the invalid messages; the valid ones as one value per application (copies
        of an application in the batch are decided once and answered alike)."""
        copies: dict[str, tuple[ValidApplication, list[EventItem]]] = {}
        for item in items:
            result = self._validated(item.event.value, schema)
            if isinstance(result, Rejection):
                item.dead_letter = item.event.dead_letter(result.error, result.detail,
                                                          result.application_id)
            else:
                # The last copy's fields are decided (a corrected resend), every copy answered.
                messages = copies[result.application_id][1] if result.application_id in copies else []
                copies[result.application_id] = (result, [*messages, item])
        return [Accepted(application, tuple(messages))
                for application, messages in copies.values()]

    @staticmethod
    def _validated(payload: bytes | None, schema: EventSchema) -> ValidApplication | Rejection:
        try:
            return validate_application(payload, schema)
        except Exception as error:  # noqa: BLE001 - one bad event must never stop the stream
            log.error("validation failed unexpectedly: %s", type(error).__name__)
            return Rejection("invalid_value", "the event could not be validated")

    async def _send_dead_letters(self, items: Sequence[EventItem]) -> None:
        letters = [item.dead_letter for item in items if item.dead_letter is not None]
        # The original message's key, so the letter lands beside what was sent.
        deliveries = [await self.publish(self.settings.topic_dead_letters, letter.key,
                                         letter.to_json())
                      for letter in letters]
        await asyncio.gather(*deliveries)
        for letter in letters:
            self.metrics.dead_letters.labels(reason=letter.error).inc()

    async def _decide(self, steps: BatchSteps, applications: Sequence[Accepted]) -> int:
        """Settle every application with its stored decision or a new one (stored in Redis),
        or dead-letter it; returns how many were decided anew."""
        new = await steps.stored(applications)
        decided = await self._decide_new(steps, new)
        saved = await isolate("store", decided, steps.save)
        for item in saved:
            item.settle(item.decision)
        self._observe(saved)
        self.fairness.observe((item.application.groups, item.decision.decision)
                              for item in saved)
        return len(saved)

    async def _decide_new(self, steps: BatchSteps, applications: Sequence[Accepted],
                          ) -> list[Decided]:
        """enrich → encode → score → decide; an application a step fails for is dead-lettered."""
        enriched = await isolate("enrich", applications, steps.enrich)
        encoded = await isolate("encode", enriched, steps.encode, steps.field_breaking_encode)
        started = time.perf_counter()
        scored = await isolate("score", encoded, steps.score, steps.input_breaking_score,
                               on_batch_failure=steps.check_runtime)
        if encoded:
            self.metrics.scoring_latency.observe(time.perf_counter() - started)
        return await isolate("decide", scored, steps.decide)

    def _observe(self, scored: Sequence[Scored]) -> None:
        """Distribution, missing-bureau and drift metrics of the new decisions, per batch."""
        if not scored:
            return
        for item in scored:
            self.metrics.probability_of_default.observe(item.verdict.probability_of_default)
            self.metrics.score.observe(item.verdict.score)
        self.metrics.missing_bureau.inc(sum(not item.features.views_found for item in scored))
        if self.drift is not None:
            self.drift.observe(np.asarray([item.inputs for item in scored], dtype=np.float32),
                               np.array([item.verdict.score for item in scored], dtype=np.float64),
                               np.array([item.verdict.probability_of_default for item in scored],
                                        dtype=np.float64))
            # Recomputed every PSI_EVERY_ROWS decisions or PSI_EVERY_S, not every batch: a
            # gauge over a window of thousands, scraped every 15 s.
            self._rows_since_psi += len(scored)
            now = time.monotonic()
            if self._rows_since_psi >= PSI_EVERY_ROWS or now - self._psi_published_at >= PSI_EVERY_S:
                self._psi_published_at, self._rows_since_psi = now, 0
                for name, value in self.drift.psi().items():
                    self.metrics.drift_psi.labels(feature=name).set(value)

    async def _publish_decisions(self, decisions: Sequence[Decision]) -> None:
        deliveries = [await self.publish(self.settings.topic_decisions,
                                         decision.application_id.encode(), decision.to_json())
                      for decision in decisions]
        await asyncio.gather(*deliveries)

    def _count_published(self, published: Sequence[Decision], replayed: int) -> None:
        self.metrics.replayed_decisions.inc(replayed)
        now = time.time()
        counts = Counter((decision.decision, decision.model_version) for decision in published)
        for (outcome, version), count in counts.items():  # one increment per label set
            self.metrics.decisions.labels(decision=outcome, model_version=version).inc(count)
        for decision in published:
            self.metrics.end_to_end_latency.observe(max(now - decision.submitted_timestamp, 0.0))

    # -- request bodies over HTTP (same steps, nothing stored or published) ----------------
    async def score_many(self, payloads: Sequence[bytes]) -> list[Decision | DeadLetter]:
        """Score request bodies together (one feature read, one model call), each answered
        on its own: a decision, or the dead letter of that body alone."""
        steps = BatchSteps(self.models.current, self.reader, self.store, record_velocity=False)
        items = [EventItem(IncomingEvent(payload, topic=None)) for payload in payloads]
        accepted = self._validate(items, self.event_schema(steps.model))
        for item in await self._decide_new(steps, accepted):
            item.settle(item.decision)
        return [item.answer for item in items]

    # -- outages --------------------------------------------------------------------------
    async def _retrying(self, step: Callable[Params, Awaitable[T]], *args: Params.args,
                        **kwargs: Params.kwargs) -> T:
        """Run a step until it succeeds; Redis or Kafka outages are waited out with backoff.
        The metrics count every retry; the log gets one line per dependency and
        OUTAGE_LINE_EVERY_S (the dependency's state is the liveness probe's to report)."""
        backoff = 0.2
        while True:
            try:
                return await step(*args, **kwargs)
            except Exception as error:
                dependency = outage_dependency(error)
                if dependency is None:
                    raise
                self.metrics.retries.labels(dependency=dependency).inc()
                self._log_outage(dependency, error)
            await self.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _log_outage(self, dependency: str, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._outage_logged_at.get(dependency, -OUTAGE_LINE_EVERY_S) < OUTAGE_LINE_EVERY_S:
            return
        self._outage_logged_at[dependency] = now
        log.warning("%s unavailable (%s); the batch waits and is retried until it recovers",
                    dependency, type(error).__name__)
