"""The steps of one batch and the item each event is carried in.

Every message of a batch is an :class:`EventItem` that ends with a decision or a dead letter.
A valid application moves through the steps as one value that changes shape in the open —
:class:`Accepted` → :class:`Enriched` → :class:`Encoded` → :class:`Scored` →
:class:`Decided` — carrying the messages it arrived in (copies of one application in a batch
are decided once and answered alike). A step that fails for one application fails that
value: each of its messages gets a ``processing_error`` dead letter (``fail``), and the
others go on. :class:`BatchSteps` are the steps, bound to the one model of the batch; each
takes a list of values and returns the next shape for each, in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from features.normalize import utc_timestamp
from features.online import FeatureRequest, OnlineFeatures
from features.serving import ServingSpec
from stream.decisions import Decision, DecisionRecord, decision_id
from stream.failures import ModelRuntimeBroken, field_that_breaks
from stream.feature_union import projected
from stream.model_runtime import Verdict
from stream.ports import DecisionKeeper, FeatureReader, ScoringModel
from stream.validation import DeadLetter, ValidApplication


@dataclass(frozen=True)
class IncomingEvent:
    """One Kafka message as the pipeline needs it: its value, key and where it came from
    (no topic: a request body of ``POST /score``)."""

    value: bytes | None
    topic: str | None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None

    def dead_letter(self, error: str, detail: str, application_id: str | None = None,
                    ) -> DeadLetter:
        return DeadLetter(error=error, detail=detail, payload=self.value,
                          received_at=datetime.now(UTC), topic=self.topic,
                          partition=self.partition, offset=self.offset, key=self.key,
                          application_id=application_id)


@dataclass(eq=False)
class EventItem:
    """One message of the batch and how it ended: a decision or a dead letter."""

    event: IncomingEvent
    decision: Decision | None = None
    dead_letter: DeadLetter | None = None

    @property
    def answer(self) -> Decision | DeadLetter:
        if self.decision is not None:
            return self.decision
        if self.dead_letter is not None:
            return self.dead_letter
        raise RuntimeError("an event of the batch ended neither decided nor dead-lettered")


@dataclass(frozen=True)
class Accepted:
    """A valid application and every message of the batch that carried it."""

    application: ValidApplication
    items: tuple[EventItem, ...]

    def fail(self, error: str, detail: str) -> None:
        """The application cannot be decided: each of its messages becomes a dead letter."""
        for item in self.items:
            item.decision = None
            item.dead_letter = item.event.dead_letter(error, detail,
                                                      self.application.application_id)

    def settle(self, decision: Decision) -> None:
        for item in self.items:
            item.decision, item.dead_letter = decision, None

    @property
    def feature_request(self) -> FeatureRequest:
        app = self.application
        return FeatureRequest(app.application_id, app.customer_id, app.submitted_at,
                              app.application)


@dataclass(frozen=True)
class Enriched(Accepted):
    """... and what the feature store knew about its customer."""

    features: OnlineFeatures


@dataclass(frozen=True)
class Encoded(Enriched):
    """... and the model's input row (float32, model.json order)."""

    inputs: NDArray[np.float32]


@dataclass(frozen=True)
class Scored(Encoded):
    """... and the model's verdict."""

    verdict: Verdict


@dataclass(frozen=True)
class Decided(Scored):
    """... and the decision, with the record kept in Redis."""

    decision: Decision
    record: DecisionRecord


@dataclass
class BatchSteps:
    """The steps of one batch, bound to the one model that decides the whole batch.

    With challengers, ``read_spec`` is the union of every model's views: the batch's one
    feature read serves them all, the champion gets its own share of it
    (:func:`stream.feature_union.projected`) and ``reads`` keeps the whole read per
    application id for the challengers."""

    model: ScoringModel
    reader: FeatureReader
    store: DecisionKeeper
    record_velocity: bool = True
    read_spec: ServingSpec | None = None
    reads: dict[str, OnlineFeatures] = field(default_factory=dict)

    async def stored(self, applications: Sequence[Accepted]) -> list[Accepted]:
        """Settle the applications this model version already decided (a replay) with
        their stored decision; the others are returned, to be decided."""
        ids = [accepted.application.application_id for accepted in applications]
        stored = await self.store.existing(ids, self.model.version)
        for accepted in applications:
            decision = stored.get(accepted.application.application_id)
            if decision is not None:
                accepted.settle(decision)
        return [accepted for accepted in applications
                if accepted.application.application_id not in stored]

    async def enrich(self, applications: Sequence[Accepted]) -> list[Enriched]:
        """One feature-store round trip for the batch (velocity windows updated in it)."""
        spec = self.read_spec or self.model.serving
        batch = await self.reader.read([accepted.feature_request for accepted in applications],
                                       serving=spec, record_velocity=self.record_velocity)
        if self.read_spec is None:
            return [Enriched(accepted.application, accepted.items, features)
                    for accepted, features in zip(applications, batch.features, strict=True)]
        enriched = []
        for accepted, read in zip(applications, batch.features, strict=True):
            app = accepted.application
            self.reads[app.application_id] = read
            enriched.append(Enriched(app, accepted.items,
                                     projected(read, spec, self.model.serving, app.submitted_at)))
        return enriched

    async def encode(self, applications: Sequence[Enriched]) -> list[Encoded]:
        matrix = self.model.encoder.transform_records([item.features.record
                                                       for item in applications])
        return [Encoded(item.application, item.items, item.features, row)
                for item, row in zip(applications, matrix, strict=True)]

    def field_breaking_encode(self, item: Enriched) -> str | None:
        """The record field whose value (set to missing) makes encoding fail, if one does."""
        record = item.features.record
        return field_that_breaks(record, self._encode_one, list(record))

    def _encode_one(self, record: Mapping[str, object]) -> object:
        return self.model.encoder.transform_records([record])

    async def score(self, applications: Sequence[Encoded]) -> list[Scored]:
        verdicts = self.model.score(np.asarray([item.inputs for item in applications],
                                               dtype=np.float32),
                                    [item.features.incomplete for item in applications])
        return [Scored(item.application, item.items, item.features, item.inputs, verdict)
                for item, verdict in zip(applications, verdicts, strict=True)]

    def input_breaking_score(self, item: Encoded) -> str | None:
        """The model input whose value (set to missing) makes scoring fail, if one does."""
        for column, name in enumerate(self.model.feature_names):
            if np.isnan(item.inputs[column]):
                continue
            trial = item.inputs.copy()
            trial[column] = np.nan
            try:
                self.model.score(trial[np.newaxis, :], [item.features.incomplete])
            except Exception:  # noqa: BLE001 - still failing: not this input
                continue
            return str(name)
        return None

    def check_runtime(self, cause: BaseException) -> None:
        """A batch failed to score: a broken model (it fails its own self-check), or only
        bad events (bisected, dead-lettered)?"""
        try:
            self.model.self_check()
        except Exception as error:
            raise ModelRuntimeBroken(self.model.version, cause) from error

    async def decide(self, applications: Sequence[Scored]) -> list[Decided]:
        decided_at = utc_timestamp(datetime.now(UTC))
        decided = []
        for item in applications:
            decision = build_decision(item.application, item.verdict, self.model,
                                      item.features.unavailable, decided_at)
            features = item.features
            record = DecisionRecord(decision, dict(item.application.application),
                                    features.record, features.stale, features.velocity,
                                    dict(features.age_seconds), dict(item.application.groups))
            decided.append(Decided(item.application, item.items, features, item.inputs,
                                   item.verdict, decision, record))
        return decided

    async def save(self, applications: Sequence[Decided]) -> list[Decided]:
        await self.store.save([item.record for item in applications])
        return list(applications)


def build_decision(app: ValidApplication, verdict: Verdict, model: ScoringModel,
                   missing_features: Sequence[str], decided_at: str) -> Decision:
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
