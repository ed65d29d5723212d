"""What the event path needs of the model, the model holder, the feature reader and the
decision store: the few members :class:`stream.pipeline.ScoringPipeline` uses, so the real
ones (``stream.model_runtime``, ``features.online``, ``stream.decisions``) and the tests'
in-memory fakes are checked against the same contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from features.online import FeatureRequest, OnlineBatch
from features.serving import ServingSpec
from onnx_models.card import ModelCard
from stream.decisions import Decision, DecisionRecord
from stream.event_schema import EventSchema
from stream.model_runtime import Verdict


class RecordEncoder(Protocol):
    """Turns model-input records into the model's input matrix (float32 [N, F])."""

    def transform_records(self, records: Sequence[Mapping[str, object]]) -> NDArray[np.float32]: ...


class ScoringModel(Protocol):
    """One model version as a batch uses it (``stream.model_runtime.LoadedModel``)."""

    @property
    def version(self) -> str: ...
    @property
    def policy_version(self) -> str: ...
    @property
    def card(self) -> ModelCard: ...
    @property
    def feature_names(self) -> Sequence[str]: ...
    @property
    def encoder(self) -> RecordEncoder: ...
    @property
    def serving(self) -> ServingSpec: ...
    @property
    def event_schema(self) -> EventSchema: ...

    def score(self, inputs: NDArray[np.float32], bureau_missing: Sequence[bool]) -> Sequence[Verdict]:
        """One verdict per input row."""
        ...

    def self_check(self) -> None:
        """Raises when the version cannot score a known-good row."""
        ...


class ChallengerModel(ScoringModel, Protocol):
    """A challenger: scored without reasons (``stream.model_runtime.LoadedModel``)."""

    def score(self, inputs: NDArray[np.float32], bureau_missing: Sequence[bool],
              explain: bool = True) -> Sequence[Verdict]:
        """One verdict per input row; reasons only when ``explain``."""
        ...


class ModelSource(Protocol):
    """The live model, switched at batch boundaries (``stream.model_runtime.ModelHolder``)."""

    @property
    def current(self) -> ScoringModel: ...

    def refresh(self) -> bool:
        """Switch to a newly promoted version; True when it switched."""
        ...


class FeatureReader(Protocol):
    """Enriches a batch of applications in one round trip (``features.online``)."""

    async def read(self, requests: Sequence[FeatureRequest], *, serving: ServingSpec,
                   record_velocity: bool = True) -> OnlineBatch: ...


class DecisionKeeper(Protocol):
    """Stored decisions: what this model version already decided, and new records
    (``stream.decisions.DecisionStore``)."""

    async def existing(self, application_ids: Sequence[str], model_version: str,
                       ) -> dict[str, Decision]: ...

    async def save(self, records: Sequence[DecisionRecord]) -> None: ...


class DriftObserver(Protocol):
    """Population stability of the scored stream (``stream.drift.DriftMonitor``)."""

    def observe(self, inputs: NDArray[np.float32], scores: NDArray[np.float64],
                probability_of_default: NDArray[np.float64] | None = None) -> None: ...

    def psi(self) -> dict[str, float]: ...
