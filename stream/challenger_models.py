"""The challengers in the worker: which versions shadow the champion, loaded and hot-reloaded.

The registry's ``challengers.json`` (:mod:`onnx_models.challengers`) names up to two
versions and their shares. :class:`ChallengerModels` reads it the way
:class:`stream.model_runtime.ModelHolder` reads the live pointer: at every batch boundary,
one ``stat`` when nothing changed. A challenger is loaded with the champion's checks
(:func:`load_serving_model`) and must take the champion's events and share its feature read
(:func:`stream.feature_union.union_spec`); one that does not is refused — counted
(``creditrisk_challenger_failures_total{stage="load"}``), logged once, shown in ``/health`` —
and the champion goes on alone. A challenger whose files change on disk (versions are
immutable: a change is damage) is loaded again, and refused if broken; one that breaks while
scoring (:meth:`ChallengerModels.fail`) stays failed until a good reload, tried when its files
or the roles change, or every ``retry_failed_after_s``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from features.serving import ServingSpec
from onnx_models.challengers import CHALLENGERS_FILE, Challenger, challengers
from onnx_models.registry import MODEL_CARD, MODEL_ONNX, ModelRejectedError, Registry
from stream.decisions import DecisionOutcome
from stream.feature_union import union_spec
from stream.metrics import WorkerMetrics
from stream.model_runtime import EXPLAINER_FILE, load_serving_model
from stream.ports import ChallengerModel, ScoringModel

log = logging.getLogger(__name__)

FileSignature = tuple[tuple[int, int, int] | None, ...]
ChallengerState = Literal["shadowing", "failed"]
_WATCHED_FILES = (MODEL_ONNX, MODEL_CARD, EXPLAINER_FILE)
# Where a challenger can fail (creditrisk_challenger_failures_total's stage label).
FAILURE_STAGES = ("load", "enrich", "encode", "score", "decide", "publish")
OUTCOMES: tuple[DecisionOutcome, ...] = get_args(DecisionOutcome)


@dataclass
class ChallengerSlot:
    """One challenger as the worker holds it: its model while it shadows, why not if failed."""

    version: str
    percent: float
    files: FileSignature
    model: ChallengerModel | None = None
    error: str | None = None
    failed_at: float = field(default_factory=time.monotonic)

    @property
    def state(self) -> ChallengerState:
        return "shadowing" if self.model is not None else "failed"

    def health(self) -> dict[str, str | float | None]:
        return {"version": self.version, "percent": self.percent, "state": self.state,
                "error": self.error}


class ChallengerModels:
    """The challengers that shadow the champion now (see the module docstring)."""

    def __init__(self, registry: Registry, metrics: WorkerMetrics,
                 load: Callable[[Registry, str], ChallengerModel] = load_serving_model,
                 retry_failed_after_s: float = 60.0) -> None:
        self.registry = registry
        self.metrics = metrics
        self.load = load
        self.retry_failed_after_s = retry_failed_after_s
        self.slots: dict[str, ChallengerSlot] = {}
        self._roles: tuple[int, int, int] | None = None
        self._read_once = False
        self._champion: str | None = None
        self.read_spec: ServingSpec | None = None  # the union of views, None: no challenger

    @property
    def shadowing(self) -> list[ChallengerSlot]:
        return [slot for slot in self.slots.values() if slot.model is not None]

    def refresh(self, champion: ScoringModel) -> bool:
        """Follow challengers.json, the challengers' files and the champion; True when the
        set of shadowing models changed. Never raises: a refused challenger is counted."""
        roles = _signature(self.registry.root / CHALLENGERS_FILE)
        changed = False
        if not self._read_once or roles != self._roles or champion.version != self._champion:
            self._read_once, self._roles, self._champion = True, roles, champion.version
            changed = self._follow_roles(champion)
        now = time.monotonic()
        for slot in self.slots.values():
            files = self._files(slot.version)
            retry = slot.model is None and now - slot.failed_at >= self.retry_failed_after_s
            if files != slot.files or retry:
                slot.files = files
                changed |= self._load(slot, champion)
        if changed:
            self.read_spec = self._read_spec(champion)
        return changed

    def fail(self, slot: ChallengerSlot, error: BaseException) -> None:
        """The challenger broke while scoring: failed until a good reload."""
        slot.model, slot.error, slot.failed_at = None, _what(error), time.monotonic()
        self.metrics.challenger_up.labels(model_version=slot.version).set(0)
        self.read_spec = self._read_spec_of_shadowing()
        log.error("challenger %s is failed until it reloads; the champion decides alone: %s",
                  slot.version, slot.error)

    def health(self) -> list[dict[str, str | float | None]]:
        return [slot.health() for slot in self.slots.values()]

    # -- loading ----------------------------------------------------------------------------
    def _follow_roles(self, champion: ScoringModel) -> bool:
        try:
            wanted = [c for c in challengers(self.registry) if c.version != champion.version]
        except Exception as error:  # noqa: BLE001 - unreadable roles: keep what shadows
            log.error("challengers unchanged: %s", error)
            return False
        previous = self.slots
        self.slots = {}
        for challenger in wanted:
            slot = previous.get(challenger.version)
            if slot is not None and slot.model is not None:
                slot.percent = challenger.percent
                problem = self._incompatibility(slot.model, champion)
                if problem is None:
                    self.slots[slot.version] = slot
                    continue
                self._refuse(slot, problem)
                self.slots[slot.version] = slot
                continue
            self.slots[challenger.version] = self._new_slot(challenger, champion)
        for version in set(previous) - set(self.slots):
            self.metrics.forget_challenger(version)
            log.info("challenger %s cleared", version)
        return True

    def _new_slot(self, challenger: Challenger, champion: ScoringModel) -> ChallengerSlot:
        slot = ChallengerSlot(challenger.version, challenger.percent,
                              self._files(challenger.version))
        self._load(slot, champion)
        return slot

    def _load(self, slot: ChallengerSlot, champion: ScoringModel) -> bool:
        """(Re)load a challenger; True when it now shadows or stopped shadowing."""
        was_shadowing = slot.model is not None
        try:
            model = self.load(self.registry, slot.version)
            problem = self._incompatibility(model, champion)
            if problem is not None:
                raise ModelRejectedError(f"challenger {slot.version}", [problem])
        except Exception as error:  # noqa: BLE001 - any failure: the champion decides alone
            self._refuse(slot, _what(error))
            return was_shadowing
        slot.model, slot.error = model, None
        self.metrics.challenger_up.labels(model_version=slot.version).set(1)
        self._zero_series(slot.version)
        log.info("challenger %s shadows %g %% of the applications", slot.version, slot.percent)
        return True

    def _zero_series(self, version: str) -> None:
        """Every failure stage, agreement and swap cell is a series from the start, at 0."""
        metrics = self.metrics
        for stage in FAILURE_STAGES:
            metrics.challenger_failures.labels(model_version=version, stage=stage)
        for agreed in ("true", "false"):
            metrics.challenger_agreement.labels(model_version=version, agreed=agreed)
        for champion in OUTCOMES:
            for challenger in OUTCOMES:
                metrics.challenger_swaps.labels(model_version=version, champion=champion,
                                                challenger=challenger)

    def _refuse(self, slot: ChallengerSlot, error: str) -> None:
        repeated = slot.model is None and slot.error == error
        slot.model, slot.error, slot.failed_at = None, error, time.monotonic()
        self.metrics.challenger_failures.labels(model_version=slot.version, stage="load").inc()
        self.metrics.challenger_up.labels(model_version=slot.version).set(0)
        if not repeated:  # once per failure, not once per retry
            log.error("challenger %s refused; the champion decides alone: %s",
                      slot.version, error)

    def _incompatibility(self, model: ChallengerModel, champion: ScoringModel) -> str | None:
        if model.serving.event_contract() != champion.serving.event_contract():
            return (f"it expects application events with fields "
                    f"{list(model.serving.event_field_names)}, the champion "
                    f"{list(champion.serving.event_field_names)}")
        try:
            union_spec(champion.serving, [model.serving])
        except ValueError as error:
            return f"its feature views cannot be read with the champion's: {error}"
        return None

    def _read_spec(self, champion: ScoringModel) -> ServingSpec | None:
        shadowing = [slot.model.serving for slot in self.shadowing if slot.model is not None]
        if not shadowing:
            return None
        try:
            return union_spec(champion.serving, shadowing)
        except ValueError as error:  # two challengers conflict with each other: drop the last
            last = self.shadowing[-1]
            self._refuse(last, f"its feature views cannot be read with the others': {error}")
            return self._read_spec(champion)

    def _read_spec_of_shadowing(self) -> ServingSpec | None:
        """After a failure: the spec of the remaining challengers, still champion-first."""
        if not self.shadowing or self.read_spec is None:
            return None
        return self.read_spec  # a superset is still one read; the next refresh narrows it

    def _files(self, version: str) -> FileSignature:
        folder = self.registry.root / version
        return tuple(_signature(folder / name) for name in _WATCHED_FILES)


def _signature(path: os.PathLike[str]) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def _what(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"
