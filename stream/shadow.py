"""Shadow scoring: each challenger decides its share of the batch, after the champion.

It runs once the champion's decisions of the batch are delivered, on the feature read the
champion's batch already made (the union of every model's views, :mod:`stream.feature_union`),
so it can neither delay, change nor fail a champion decision. For each shadowing challenger,
the applications the champion decided (not the dead letters) that
:func:`onnx_models.challengers.shadowed` picks for its share are encoded with the
challenger's encoder, scored by its ONNX model and decided by its own card's policy; each
:class:`ShadowDecision` carries the champion's decision beside it and goes to
``loan-decisions-shadow``, keyed by application id.

Shadow decisions carry no reasons (``reasons`` is empty): nobody is told a challenger's
decision, so no adverse-action reason is owed, and the swap sets, agreement and score
comparisons need the decision, PD and score only. Measured, the reasons would cost too much:
TreeSHAP of the review and decline rows is about half of a worker's CPU per decision, and
explaining the challenger's too brought the drain rate with a challenger at 100 % to
0.44-0.58x the worker alone in three of four runs (docs/benchmarks.md), under the 0.6x
budget. The console can
explain a shadowed application on demand with the challenger's model.

Concurrency: :meth:`ShadowScorer.shadow` starts a batch's shadow work and returns, so the
champion's next batch is not queued behind it; the challengers' encoding and ONNX scoring run
on a thread of their own, the rest (reads, decisions, sends) on the event loop. At most one
batch's shadow work runs at a time: the next batch waits for it before starting its own,
which bounds how far the shadow path can fall behind a champion faster than it.

Delivery: shadow decisions are handed to the Kafka producer in the batch and their
confirmations awaited in the background (the metrics count them once confirmed), so the
champion's next batch does not wait on the shadow topic. The cost: a worker killed right
after a batch was acknowledged can lose that batch's shadow decisions (never a champion
decision) — a gap in the comparison, not in the book of record.

Idempotence: the share depends on the application id alone, and a shadow decision's
``decided_at`` is the champion's, so a re-delivered application (answered with the champion's
stored decision) is shadowed again with the same decision id and the same content for the
same stored features. Its features are read once more for that (replays only, never the
champion's read).

Any failure is the challenger's alone: it is counted
(``creditrisk_challenger_failures_total{model_version, stage}``), logged once per outage, and
the batch goes on. An event the challenger's encoder or model cannot take is skipped; a model
that fails its own self-check is dropped to "failed" until a good reload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import msgspec
import numpy as np
from numpy.typing import NDArray

from config.settings import Settings
from features.online import FeatureRequest, OnlineFeatures
from features.serving import ServingSpec
from onnx_models.challengers import shadowed
from stream.challenger_models import ChallengerModels, ChallengerSlot
from stream.decisions import Decision, ShadowDecision
from stream.drift import population_stability_index
from stream.feature_union import projected
from stream.metrics import SCORE_BUCKETS, WorkerMetrics
from stream.model_runtime import Verdict
from stream.ports import ChallengerModel, FeatureReader, ScoringModel
from stream.stages import build_decision
from stream.validation import ValidApplication

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[object]]]

# A shadow decision Kafka has not confirmed by then is counted as failed (never retried:
# the champion's batches must not wait on the shadow topic). Confirmations are awaited in the
# background, at most MAX_UNCONFIRMED batches' worth at a time.
SHADOW_DELIVERY_TIMEOUT_S, PUBLISH_PAUSE_S, MAX_UNCONFIRMED = 5.0, 30.0, 8
# PSI of the challenger's scores against the champion's over this many recent pairs,
# recomputed every PSI_EVERY_ROWS shadow decisions; none below PSI_MIN_PAIRS.
PSI_WINDOW, PSI_EVERY_ROWS, PSI_MIN_PAIRS = 5_000, 100, 200
_SCORE_EDGES = np.asarray(SCORE_BUCKETS, dtype=np.float64)


@dataclass(frozen=True)
class ShadowCase:
    """An application the champion decided, with the batch's read of its features
    (``None``: a replay, read again for the challengers)."""

    application: ValidApplication
    champion: Decision
    read: OnlineFeatures | None


@dataclass(frozen=True)
class _Row:
    case: ShadowCase
    features: OnlineFeatures
    inputs: NDArray[np.float32]


class ShadowScorer:
    """The challengers' path of a batch (see the module docstring)."""

    def __init__(self, settings: Settings, challengers: ChallengerModels, reader: FeatureReader,
                 publish: Publish, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.challengers = challengers
        self.reader = reader
        self.publish = publish
        self.metrics = metrics
        self._failing: set[tuple[str, str]] = set()  # (version, stage) logged, not yet over
        self._pairs: dict[str, deque[tuple[float, float]]] = {}
        self._since_psi: Counter[str] = Counter()
        self._publish_paused_until: dict[str, float] = {}
        self._unconfirmed: set[asyncio.Future[None]] = set()
        self._running: asyncio.Future[None] | None = None  # the latest batch's shadow work
        # Encoding and scoring (numpy, onnxruntime: mostly outside the GIL) run here, beside
        # the champion's next batch on the event loop.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    def refreshed(self, champion: ScoringModel) -> ServingSpec | None:
        """Follow the challengers (at a batch boundary); the spec the batch's feature read
        must cover (None: no challenger shadows)."""
        try:
            self.challengers.refresh(champion)
        except Exception as error:  # noqa: BLE001 - the champion decides alone
            log.error("challengers not refreshed: %s: %s", type(error).__name__, error)
        return self.challengers.read_spec

    async def shadow(self, cases: Sequence[ShadowCase]) -> None:
        """Start the challengers' work on ``cases`` and return: the champion's next batch runs
        beside it (the encoding and ONNX scoring run on the shadow thread). One batch's shadow
        work runs at a time: a batch that finds the previous one still running waits for it
        first, so the shadow path can fall at most one batch behind. Never raises."""
        spec = self.challengers.read_spec
        if spec is None or not cases:
            return
        if self._running is not None and not self._running.done():
            await asyncio.wait({self._running})
        self._running = asyncio.ensure_future(self._shadow_now(cases, spec))

    async def _shadow_now(self, cases: Sequence[ShadowCase], spec: ServingSpec) -> None:
        """Every shadowing challenger decides its share of ``cases``; never raises."""
        try:
            cases = await self._read_replays(cases, spec)
        except Exception as error:  # noqa: BLE001 - the challengers' trouble only
            for slot in self.challengers.shadowing:
                self._count(slot.version, "enrich", len(cases), error)
            return
        for slot in self.challengers.shadowing:
            started = time.perf_counter()
            try:
                await self._shadow_with(slot, cases, spec)
            except Exception as error:  # noqa: BLE001 - never the champion's problem
                self._count(slot.version, "decide", 1, error)
            self.metrics.challenger_batch_seconds.labels(model_version=slot.version).observe(
                time.perf_counter() - started)

    async def _read_replays(self, cases: Sequence[ShadowCase], spec: ServingSpec,
                            ) -> list[ShadowCase]:
        """Replayed applications some challenger shadows get their features read again."""
        percent = max(slot.percent for slot in self.challengers.shadowing)
        replays = [case for case in cases
                   if case.read is None and shadowed(case.application.application_id, percent)]
        if not replays:
            return [case for case in cases if case.read is not None]
        batch = await self.reader.read([_request(case.application) for case in replays],
                                       serving=spec, record_velocity=False)
        read = {id(case): features for case, features in zip(replays, batch.features, strict=True)}
        return [case if case.read is not None else ShadowCase(case.application, case.champion,
                                                              read[id(case)])
                for case in cases if case.read is not None or id(case) in read]

    async def _shadow_with(self, slot: ChallengerSlot, cases: Sequence[ShadowCase],
                           spec: ServingSpec) -> None:
        model = slot.model
        if model is None:
            return
        chosen = [case for case in cases if case.read is not None
                  and shadowed(case.application.application_id, slot.percent)]
        if not chosen:
            return
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._thread, self._encoded, model, chosen, spec)
        verdicts = await loop.run_in_executor(self._thread, self._scored, slot, model, rows)
        if verdicts is None:
            return
        decisions = [self._decision(model, row, verdict) for row, verdict in verdicts]
        await self._publish(slot.version, decisions,
                            [row.case.champion.score for row, _ in verdicts])

    # -- the steps --------------------------------------------------------------------------
    def _encoded(self, model: ChallengerModel, chosen: Sequence[ShadowCase], spec: ServingSpec,
                 ) -> list[_Row]:
        """The challenger's inputs; an event its encoder cannot take is counted and skipped."""
        features = [projected(_read(case), spec, model.serving, case.application.submitted_at)
                    for case in chosen]
        try:
            matrix = model.encoder.transform_records([item.record for item in features])
            self._recovered(model.version, "encode")
            return [_Row(case, item, row)
                    for case, item, row in zip(chosen, features, matrix, strict=True)]
        except Exception:  # noqa: BLE001 - find the events it fails for, one by one
            pass
        rows = []
        for case, item in zip(chosen, features, strict=True):
            try:
                rows.append(_Row(case, item, model.encoder.transform_records([item.record])[0]))
            except Exception as error:  # noqa: BLE001 - this event only
                self._count(model.version, "encode", 1, error)
        return rows

    def _scored(self, slot: ChallengerSlot, model: ChallengerModel, rows: Sequence[_Row],
                ) -> list[tuple[_Row, Verdict]] | None:
        """Verdicts; None when the model is broken (then failed until a good reload)."""
        if not rows:
            return []
        inputs = np.asarray([row.inputs for row in rows], dtype=np.float32)
        incomplete = [row.features.incomplete for row in rows]
        try:
            verdicts = model.score(inputs, incomplete, explain=False)
            self._recovered(model.version, "score")
            return list(zip(rows, verdicts, strict=True))
        except Exception as error:  # noqa: BLE001 - a broken model, or events it cannot take
            cause = error
        try:
            model.self_check()
        except Exception as broken:  # noqa: BLE001 - the model itself: drop it
            self._count(model.version, "score", len(rows), cause)
            self.challengers.fail(slot, broken)
            return None
        scored = []
        for row in rows:
            try:
                scored.append((row, model.score(row.inputs[np.newaxis, :],
                                                [row.features.incomplete], explain=False)[0]))
            except Exception as error:  # noqa: BLE001 - this event only
                self._count(model.version, "score", 1, error)
        return scored

    @staticmethod
    def _decision(model: ChallengerModel, row: _Row, verdict: Verdict) -> ShadowDecision:
        champion = row.case.champion
        decision = build_decision(row.case.application, verdict, model, row.features.unavailable,
                                  champion.decided_at)
        return ShadowDecision(**msgspec.structs.asdict(decision),
                              champion_decision_id=champion.decision_id,
                              champion_model_version=champion.model_version,
                              champion_decision=champion.decision)

    async def _publish(self, version: str, decisions: Sequence[ShadowDecision],
                       champion_scores: Sequence[int]) -> None:
        """Hand the shadow decisions to the producer; their delivery is awaited in the
        background (:meth:`_confirm`), so the champion's next batch never waits on the shadow
        topic's acknowledgements. At most MAX_UNCONFIRMED batches are awaited at a time
        (beyond, the oldest is waited for). After a failure the challenger's decisions are
        not sent for PUBLISH_PAUSE_S (counted), so a shadow topic that does not answer costs
        one timeout, not one per batch."""
        if time.monotonic() < self._publish_paused_until.get(version, 0.0):
            self.metrics.challenger_failures.labels(model_version=version,
                                                    stage="publish").inc(len(decisions))
            return
        while len(self._unconfirmed) >= MAX_UNCONFIRMED:
            await asyncio.wait(self._unconfirmed, return_when=asyncio.FIRST_COMPLETED)
        try:
            deliveries = await asyncio.wait_for(self._send(decisions), SHADOW_DELIVERY_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - lost shadow decisions, counted
            self._publish_failed(version, len(decisions), error)
            return
        task = asyncio.ensure_future(self._confirm(version, decisions, champion_scores,
                                                   deliveries))
        self._unconfirmed.add(task)
        task.add_done_callback(self._unconfirmed.discard)

    async def _confirm(self, version: str, decisions: Sequence[ShadowDecision],
                       champion_scores: Sequence[int], deliveries: Sequence[Awaitable[object]],
                       ) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*deliveries), SHADOW_DELIVERY_TIMEOUT_S)
        except Exception as error:  # noqa: BLE001 - lost shadow decisions, counted
            self._publish_failed(version, len(decisions), error)
            return
        self._recovered(version, "publish")
        self._observe(version, decisions, champion_scores)

    async def _send(self, decisions: Sequence[ShadowDecision]) -> list[Awaitable[object]]:
        topic = self.settings.topic_shadow_decisions
        return [await self.publish(topic, decision.application_id.encode(), decision.to_json())
                for decision in decisions]

    def _publish_failed(self, version: str, count: int, error: BaseException) -> None:
        self._publish_paused_until[version] = time.monotonic() + PUBLISH_PAUSE_S
        self._count(version, "publish", count, error)

    async def delivered(self) -> None:
        """Wait until the shadow work started is done and every shadow decision sent is
        confirmed or counted as failed (tests, shutdown)."""
        if self._running is not None and not self._running.done():
            await asyncio.wait({self._running})
        while self._unconfirmed:
            await asyncio.wait(set(self._unconfirmed))

    # -- metrics ----------------------------------------------------------------------------
    def _observe(self, version: str, decisions: Sequence[ShadowDecision],
                 champion_scores: Sequence[int]) -> None:
        metrics = self.metrics
        metrics.shadow_decisions.labels(model_version=version).inc(len(decisions))
        swaps = Counter((d.champion_decision, d.decision) for d in decisions)
        for (champion, challenger), count in swaps.items():
            metrics.challenger_swaps.labels(model_version=version, champion=champion,
                                            challenger=challenger).inc(count)
        agreed = sum(count for (champion, challenger), count in swaps.items()
                     if champion == challenger)
        metrics.challenger_agreement.labels(model_version=version, agreed="true").inc(agreed)
        metrics.challenger_agreement.labels(model_version=version, agreed="false").inc(
            len(decisions) - agreed)
        pairs = self._pairs.setdefault(version, deque(maxlen=PSI_WINDOW))
        challenger_histogram = metrics.challenger_score.labels(model_version=version)
        champion_histogram = metrics.challenger_champion_score.labels(model_version=version)
        for decision, champion_score in zip(decisions, champion_scores, strict=True):
            challenger_histogram.observe(decision.score)
            champion_histogram.observe(champion_score)
            pairs.append((float(champion_score), float(decision.score)))
        self._since_psi[version] += len(decisions)
        if self._since_psi[version] >= PSI_EVERY_ROWS and len(pairs) >= PSI_MIN_PAIRS:
            self._since_psi[version] = 0
            metrics.challenger_psi.labels(model_version=version).set(scores_psi(pairs))

    def _count(self, version: str, stage: str, events: int, error: BaseException) -> None:
        self.metrics.challenger_failures.labels(model_version=version, stage=stage).inc(events)
        if (version, stage) not in self._failing:
            self._failing.add((version, stage))
            log.error("challenger %s failed at %s (%s: %s); the champion's decisions are "
                      "unaffected; further failures are counted, not logged, until it recovers",
                      version, stage, type(error).__name__, str(error)[:200])

    def _recovered(self, version: str, stage: str) -> None:
        if (version, stage) in self._failing:
            self._failing.discard((version, stage))
            log.info("challenger %s works again at %s", version, stage)


def scores_psi(pairs: Sequence[tuple[float, float]]) -> float:
    """PSI of the challenger's scores (second) against the champion's (first), on the score
    buckets of the dashboards."""
    values = np.asarray(pairs, dtype=np.float64)
    champion = np.bincount(np.searchsorted(_SCORE_EDGES, values[:, 0]),
                           minlength=len(_SCORE_EDGES) + 1)
    challenger = np.bincount(np.searchsorted(_SCORE_EDGES, values[:, 1]),
                             minlength=len(_SCORE_EDGES) + 1)
    return population_stability_index(challenger, champion / champion.sum())


def _read(case: ShadowCase) -> OnlineFeatures:
    if case.read is None:
        raise ValueError("a shadowed application has no feature read")
    return case.read


def _request(app: ValidApplication) -> FeatureRequest:
    return FeatureRequest(app.application_id, app.customer_id, app.submitted_at, app.application)
