"""The model card (``model.json``) as one typed object, parsed and checked once when a
registered version is read.

Training writes the card as JSON; everything that serves or explains a model (the worker,
the console, the ledger, the replay) reads this object, never the JSON by string keys.
Sections only the training report reads (search, SMOTE variants, timings) stay as they were
written: they are kept (``extra="allow"``) but not typed here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from fairness.spec import MonitoringSpec
from features.definitions import CardFeature, FeatureEncoder, FeatureParams
from features.serving import ServingSpec, SourceColumns
from onnx_models.policy import Calibration, RiskGrade, ScoreScale, Thresholds

__all__ = ["CardError", "CardFeature", "ModelCard", "policy_version"]

POLICY_SECTIONS = ("thresholds", "score_scale", "risk_grades", "calibration")


class CardPart(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class OnnxSpec(CardPart):
    input: str = "features"
    output: str = "probabilities"
    output_column_bad: int = 1


class ModelInfo(CardPart):
    type: str = ""
    variant: str = ""
    trees: int | None = None
    # Each input's share of the model's split gain.
    feature_importance: dict[str, float] = Field(default_factory=dict)


class TestMetrics(CardPart):
    auc: float
    ks: float
    gini: float
    brier: float
    ece: float


class Metrics(CardPart):
    test: TestMetrics
    cv: TestMetrics


class DatasetInfo(CardPart):
    name: str = ""
    id_column: str | None = None
    customer_id_column: str | None = None
    date_column: str | None = None
    target_column: str | None = None
    outcome_date_column: str | None = None


class Reference(CardPart):
    """Training-period distributions the console compares with and drift is measured on."""

    features: dict[str, dict[str, Any]] = Field(default_factory=dict)
    score: dict[str, Any] = Field(default_factory=dict)
    groups: dict[str, Any] = Field(default_factory=dict)


class ModelCard(CardPart):
    """A registered version's card (see the module docstring)."""

    version: str
    created_at: str
    feature_set: str
    features: tuple[CardFeature, ...] = Field(min_length=1)
    feature_params: FeatureParams
    serving: dict[str, object] | None = None
    # The monitored attributes (fairness.spec): read from the event, never model inputs.
    monitoring: dict[str, object] | None = None
    calibration: Calibration
    thresholds: Thresholds
    score_scale: ScoreScale
    risk_grades: tuple[RiskGrade, ...] = Field(min_length=1)
    metrics: Metrics
    dataset: DatasetInfo
    reference: Reference
    onnx: OnnxSpec = OnnxSpec()
    model: ModelInfo = ModelInfo()

    @classmethod
    def parse(cls, document: Mapping[str, object]) -> ModelCard:
        """The card of a model.json document; :class:`CardError` says what is wrong."""
        try:
            card = cls.model_validate(document)
        except ValidationError as error:
            raise CardError([_problem(item) for item in error.errors()]) from None
        return card

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def policy_version(self) -> str:
        """12 hex digits identifying the decision policy: changes whenever the thresholds,
        score scale, risk grades or calibration change, and only then."""
        return policy_version(self.to_document())

    def inputs_by_importance(self) -> list[str]:
        """The inputs, the most important first; ties (and cards without importances) keep
        model.json order."""
        shares = self.model.feature_importance
        return sorted(self.feature_names, key=lambda name: -shares.get(name, 0.0))

    def serving_spec(self) -> ServingSpec:
        """The serving contract this card records (see :mod:`features.serving`)."""
        return ServingSpec.from_section(self.serving, self.feature_set)

    def monitoring_spec(self) -> MonitoringSpec:
        """The protected characteristics this model's decisions are watched by (none when the
        card predates monitoring or the dataset declares none)."""
        return MonitoringSpec.from_table(self.monitoring, f"model {self.version} model.json")

    def source_columns(self) -> SourceColumns:
        """The loan file's columns that become an event's identity."""
        return SourceColumns.from_dataset(self.dataset, self.feature_set)

    def encoder(self) -> FeatureEncoder:
        """The fitted feature encoder this card records (no pickles, no refit)."""
        return FeatureEncoder.from_features(self.features, self.feature_params)

    def to_document(self) -> dict[str, Any]:
        """The card as JSON-ready data (what model.json holds)."""
        return self.model_dump(mode="json")


class CardError(ValueError):
    """model.json does not have the shape a served model needs."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "model.json"
    return f"model.json {where}: {error['msg']}"


def policy_version(document: Mapping[str, object]) -> str:
    """The policy id of a model.json document (see :attr:`ModelCard.policy_version`)."""
    policy = {key: document.get(key) for key in POLICY_SECTIONS}
    canonical = json.dumps(policy, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
