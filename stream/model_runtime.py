"""The live model in the worker: score a micro-batch, apply the policy, explain, hot-reload.

:class:`LoadedModel` is one registered version ready to serve: its onnxruntime session, its
feature encoder, its model card (thresholds, score scale, grades, calibration) and the
LightGBM text model used only to explain review and decline decisions (see
:mod:`stream.reasons`). :class:`ModelHolder` keeps the current :class:`LoadedModel` and
swaps in a newly promoted version at a batch boundary; a version that fails to load or to
score keeps the current one serving.

Take ``holder.current`` once per batch and use that object for the whole batch, so every
decision of the batch carries the version and policy that made it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from features.definitions import FeatureEncoder
from features.serving import ServingSpec
from onnx_models.card import ModelCard
from onnx_models.policy import apply_calibration, decide, logit, risk_grade, score_points
from onnx_models.registry import LIVE_POINTER, ModelRejectedError, RegisteredModel, Registry, RegistryError
from stream.decisions import DecisionOutcome
from stream.event_schema import EventSchema
from stream.reasons import Reason, ReasonBuilder

if TYPE_CHECKING:
    import lightgbm

logger = logging.getLogger(__name__)

EXPLAINER_FILE = "model.txt"
# model.txt and model.onnx are the same trees: their log-odds agree to float32 rounding.
EXPLAINER_TOLERANCE = 1e-4


class NoLiveModelError(RegistryError):
    def __init__(self, registry_root: os.PathLike[str] | str) -> None:
        super().__init__(f"no live model in the registry {registry_root}: run `creditrisk "
                         "train` (or `creditrisk model promote VERSION`) before starting "
                         "the worker")


@dataclass(frozen=True)
class Verdict:
    """The policy outcome for one application, as the decision message publishes it."""

    probability_of_default: float   # calibrated
    score: int                      # points on model.json score_scale
    risk_grade: str
    decision: DecisionOutcome
    reasons: tuple[Reason, ...]     # 1-4 for review/decline, empty for approve


# The policy's decisions as the decision contract spells them (a KeyError if they differ).
_OUTCOMES: dict[str, DecisionOutcome] = {"approve": "approve", "review": "review",
                                         "decline": "decline"}


def servable_feature_problems(card: ModelCard) -> list[str]:
    """Why the real-time service cannot build this model's inputs (empty when it can):
    every feature must be built from the application event and the declared feature views."""
    try:
        serving = card.serving_spec()
        EventSchema.from_spec(serving)
    except (ValueError, KeyError, TypeError) as error:
        return [f"the serving spec of model.json is unusable: {error}"]
    available = serving.available_inputs
    unservable = [feature.name for feature in card.features
                  if not set(feature.inputs) <= available]
    if unservable:
        return [f"features {unservable} are not built from the application event and the "
                "declared feature views"]
    return []


class InferenceSession(Protocol):
    """What is used of an onnxruntime session."""

    def run(self, output_names: list[str], input_feed: dict[str, NDArray[np.float32]],
            ) -> list[NDArray[np.float32]]: ...


class LoadedModel:
    """One immutable model version ready to score (see the module docstring)."""

    def __init__(self, registered: RegisteredModel, session: InferenceSession,
                 explainer: lightgbm.Booster) -> None:
        self.registered = registered
        self.version = registered.version
        self.card = registered.card
        self.encoder: FeatureEncoder = self.card.encoder()
        self.serving: ServingSpec = self.card.serving_spec()
        self.event_schema = EventSchema.from_spec(self.serving)
        self.policy_version = self.card.policy_version
        self.session = session
        self.explainer = explainer
        self.feature_names = self.card.feature_names
        self._onnx = self.card.onnx
        self._reasons = ReasonBuilder.from_model_card(self.card)

    @classmethod
    def load(cls, registered: RegisteredModel) -> LoadedModel:
        """Session (one intra-op thread: the worker scores small batches on few cores),
        encoder, card, policy version and explainer of a registered version."""
        import lightgbm
        import onnxruntime

        where = f"version {registered.version}"
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(registered.onnx_path), options,
                                               providers=["CPUExecutionProvider"])
        explainer_path = registered.path / EXPLAINER_FILE
        if not explainer_path.is_file():
            raise ModelRejectedError(where, [f"missing file {EXPLAINER_FILE} (the LightGBM "
                                             "text model that explains decisions)"])
        try:
            explainer = lightgbm.Booster(model_file=str(explainer_path))
        except lightgbm.basic.LightGBMError as error:
            raise ModelRejectedError(where, [f"{EXPLAINER_FILE} does not load ({error})"]) \
                from None
        n_features = len(registered.card.features)
        if explainer.num_feature() != n_features:
            raise ModelRejectedError(where, [f"{EXPLAINER_FILE} has {explainer.num_feature()} "
                                             f"features, model.json lists {n_features}"])
        return cls(registered, session, explainer)

    # ---- scoring ---------------------------------------------------------------------

    def raw_probability(self, inputs: np.ndarray) -> np.ndarray:
        """The ONNX model's uncalibrated P(bad) per row (one onnxruntime call)."""
        output = self.session.run([self._onnx.output], {self._onnx.input: inputs})[0]
        return output[:, self._onnx.output_column_bad].astype(np.float64)

    def contributions(self, inputs: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP contributions [N, F + 1] in raw log-odds (last column: bias)."""
        contributions = self.explainer.predict(
            np.asarray(inputs, dtype=np.float32).astype(np.float64), pred_contrib=True,
            num_threads=1)
        return np.asarray(contributions, dtype=np.float64)

    def score(self, inputs: np.ndarray, bureau_missing: Sequence[bool],
              explain: bool = True) -> list[Verdict]:
        """Verdicts for a batch of model inputs (float32 [N, F], model.json order); without
        reasons when ``explain`` is false (TreeSHAP is most of the cost of a verdict)."""
        matrix = self._checked_inputs(inputs, bureau_missing)
        if len(matrix) == 0:
            return []
        missing = np.asarray(bureau_missing, dtype=bool)
        probability = apply_calibration(self.raw_probability(matrix), self.card.calibration)
        scores = score_points(probability, self.card.score_scale)
        grades = risk_grade(probability, self.card.risk_grades)
        decisions = decide(probability, self.card.thresholds)
        # Without bureau data the model has not seen the applicant's credit record.
        decisions[missing & (decisions == "approve")] = "review"
        adverse = np.flatnonzero(decisions != "approve")
        reasons: dict[int, tuple[Reason, ...]] = {}
        if adverse.size and explain:
            contributions = self.contributions(matrix[adverse])[:, :-1]
            for row, row_contributions in zip(adverse, contributions, strict=False):
                reasons[int(row)] = self._reasons.reasons(row_contributions, matrix[row],
                                                          bool(missing[row]))
        return [Verdict(float(probability[row]), int(scores[row]), str(grades[row]),
                        _OUTCOMES[str(decisions[row])], reasons.get(row, ()))
                for row in range(len(matrix))]

    def _checked_inputs(self, inputs: np.ndarray, bureau_missing: Sequence[bool]) -> np.ndarray:
        matrix = np.ascontiguousarray(inputs, dtype=np.float32)
        width = len(self.feature_names)
        if matrix.ndim != 2 or matrix.shape[1] != width:
            raise ValueError(f"model {self.version} expects inputs of shape [rows, {width}], "
                             f"got {list(matrix.shape)}; build them with this model's encoder")
        if len(bureau_missing) != len(matrix):
            raise ValueError(f"bureau_missing has {len(bureau_missing)} flags for "
                             f"{len(matrix)} rows; pass one flag per row")
        return matrix

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Score an all-missing batch of each size (without reasons: the self-check already
        explained one row), so onnxruntime's first call at each size is paid here, not by the
        first batch of events."""
        for size in batch_sizes:
            self.score(np.full((size, len(self.feature_names)), np.nan, dtype=np.float32),
                       [True] * size, explain=False)

    def self_check(self) -> None:
        """Score one all-missing row through every path (reasons included) and check that
        model.txt explains model.onnx; :class:`ModelRejectedError` if not."""
        where = f"version {self.version}"
        row = np.full((1, len(self.feature_names)), np.nan, dtype=np.float32)
        try:
            verdict = self.score(row, [True])[0]
            gap = abs(float(self.contributions(row).sum())
                      - float(logit(self.raw_probability(row))[0]))
        except Exception as error:  # noqa: BLE001 - any failure here means the version cannot serve
            raise ModelRejectedError(where, [f"smoke score failed ({type(error).__name__}: "
                                             f"{str(error)[:200]})"]) from None
        if not 0.0 <= verdict.probability_of_default <= 1.0 or not verdict.reasons:
            raise ModelRejectedError(where, [f"smoke score gave {verdict}"])
        if not gap < EXPLAINER_TOLERANCE:  # also catches NaN
            raise ModelRejectedError(where, [f"{EXPLAINER_FILE} does not match model.onnx "
                                             f"(log-odds differ by {gap:.3g})"])


# ---- hot reload -------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelEvent:
    """What :class:`ModelHolder` reports: a version went live, or a reload was refused."""

    kind: Literal["loaded", "reload_failed"]
    version: str | None          # the version loaded, or the one the pointer named
    policy_version: str | None = None
    error: str | None = None


ModelEventCallback = Callable[[ModelEvent], None]


def load_serving_model(registry: Registry, version: str) -> LoadedModel:
    """Load and validate a version for real-time serving (files, schema, ONNX width,
    servable features, explainer, smoke score)."""
    registered = registry.load(version)
    problems = servable_feature_problems(registered.card)
    if problems:
        raise ModelRejectedError(f"version {version}", problems)
    model = LoadedModel.load(registered)
    model.self_check()
    return model


@dataclass
class _PointerState:
    signature: tuple[int, int, int] | None
    checked_at: float = field(default_factory=time.monotonic)


class ModelHolder:
    """The model the worker serves now, replaced when another version is promoted.

    ``refresh()`` is meant for every batch boundary: when live.json is unchanged it costs one
    ``stat``. A refused version is retried only when the pointer changes again or after
    ``retry_failed_after_seconds``, so a broken promotion costs one load, not one per batch.
    A promoted version scores a synthetic batch of each of ``warm_batch_sizes`` before it
    serves (:meth:`LoadedModel.warm_up`).
    """

    def __init__(self, registry: Registry, on_event: ModelEventCallback | None = None,
                 retry_failed_after_seconds: float = 60.0,
                 allow_event_contract_change: bool = False,
                 warm_batch_sizes: Sequence[int] = ()) -> None:
        self.registry = registry
        self.allow_event_contract_change = allow_event_contract_change
        self.warm_batch_sizes = tuple(warm_batch_sizes)
        self.on_event = on_event
        self.retry_failed_after_seconds = retry_failed_after_seconds
        self.reload_failures = 0
        self.last_reload_error: str | None = None
        self._pointer = _PointerState(self._pointer_signature())
        version = registry.live_version()
        if not version:
            raise NoLiveModelError(registry.root)
        self.current: LoadedModel = load_serving_model(registry, version)
        self._failed_signature: tuple[int, int, int] | None = None
        self._report(ModelEvent("loaded", version, self.current.policy_version))

    @property
    def version(self) -> str:
        return self.current.version

    def _pointer_signature(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self.registry.root / LIVE_POINTER)
        except FileNotFoundError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def refresh(self) -> bool:
        """Switch to the version live.json names if it changed; True when it switched.

        Never raises for a bad model: the current one keeps serving, ``reload_failures``
        counts the refusal and ``last_reload_error`` says why (None once the pointer names
        the serving version again).
        """
        signature = self._pointer_signature()
        now = time.monotonic()
        if signature == self._pointer.signature and (
                signature != self._failed_signature
                or now - self._pointer.checked_at < self.retry_failed_after_seconds):
            return False
        self._pointer = _PointerState(signature, now)
        wanted: str | None = None
        try:
            wanted = self.registry.live_version()
            if not wanted:
                raise RegistryError(f"the live pointer {self.registry.root / LIVE_POINTER} "
                                    "is missing; promote a version with `creditrisk model "
                                    "promote VERSION`")
            if wanted == self.current.version:
                self._failed_signature, self.last_reload_error = None, None
                return False
            model = load_serving_model(self.registry, wanted)
            self._check_same_event_contract(model)
            model.warm_up(self.warm_batch_sizes)
        except Exception as error:  # noqa: BLE001 - any failure: keep serving what works
            self._failed_signature = signature
            self.reload_failures += 1
            self.last_reload_error = str(error)
            logger.error("model reload refused, still serving %s: %s",
                         self.current.version, error)
            self._report(ModelEvent("reload_failed", wanted, error=str(error)))
            return False
        self.current = model  # one reference assignment: batches see old or new, never mixed
        self._failed_signature, self.last_reload_error = None, None
        logger.info("now serving model %s (policy %s)", model.version, model.policy_version)
        self._report(ModelEvent("loaded", model.version, model.policy_version))
        return True

    def _check_same_event_contract(self, model: LoadedModel) -> None:
        """Producers send the serving model's events: a model that expects other fields
        (another dataset) would dead-letter or misread every one of them."""
        if self.allow_event_contract_change:
            return
        serving, wanted = self.current.serving, model.serving
        if wanted.event_contract() == serving.event_contract():
            return
        raise ModelRejectedError(f"version {model.version}", [
            f"it expects application events with fields {list(wanted.event_field_names)}, "
            f"while the topic carries events for fields {list(serving.event_field_names)}; "
            "serve it with its own topics and worker group (CREDITRISK_TOPIC_APPLICATIONS, "
            "CREDITRISK_WORKER_GROUP), or set CREDITRISK_ALLOW_EVENT_CONTRACT_CHANGE=true if "
            "the producers switch with it"])

    def _report(self, event: ModelEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:  # a metrics hook must not take the model down
            logger.exception("model event callback failed for %s", event)


__all__ = ["LoadedModel", "ModelEvent", "ModelEventCallback", "ModelHolder", "NoLiveModelError",
           "Reason", "Verdict", "load_serving_model",
           "servable_feature_problems"]
