"""What a model needs at serving time, as its model card records it: the serving contract.

A :class:`ServingSpec` says which fields arrive on the **application event** (each with the
named check the worker applies, see ``stream.event_schema.FIELD_CHECKS``), which come from
**feature views** in Redis, which model input takes the event's ``submitted_at``, and how the
console groups similar customers. Training writes it into ``model.json`` from the dataset
config; the worker and the console read it from there, so they hold no dataset's names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from config.json_types import JSONObject
from features.definitions import (
    APPLICANT_FIELDS,
    BUREAU_FIELDS,
    FEATURE_SET_LENDING_CLUB,
    LENDING_CLUB_FIELD_LABELS,
)
from features.views import BUREAU_VIEW, FeatureView

EventFieldKind = Literal["numeric", "categorical"]

# The checks of the Lending Club application event, by field (stream.event_schema names).
LENDING_CLUB_EVENT_CHECKS: dict[str, str] = {
    "loan_amnt": "loan_amount", "term": "term", "purpose": "purpose",
    "annual_inc": "annual_income", "emp_length": "emp_length",
    "home_ownership": "home_ownership", "verification_status": "verification_status",
    "addr_state": "addr_state",
}
LENDING_CLUB_NULLABLE = frozenset({"emp_length"})
# Free text a Lending Club upstream may send (job title, loan title): personal data, checked
# for type and dropped by the worker, never a feature.
LENDING_CLUB_FREE_TEXT: tuple[str, ...] = ("emp_title", "title")
# Similar Lending Club customers also share an annual-income band.
LENDING_CLUB_INCOME_BANDS: tuple[float, ...] = (0, 30_000, 50_000, 75_000, 100_000, 150_000)


@dataclass(frozen=True)
class EventField:
    """One application field on the event. ``check`` names the worker's rule for it;
    ``missing_values`` are the file's codes for "unknown" (read as missing)."""

    name: str
    kind: EventFieldKind
    check: str
    required: bool = False
    nullable: bool = True
    missing_values: tuple[str, ...] = ()

    def to_card(self) -> JSONObject:
        return {"name": self.name, "kind": self.kind, "check": self.check,
                "required": self.required, "nullable": self.nullable,
                "missing_values": list(self.missing_values)}

    @classmethod
    def from_card(cls, entry: Mapping[str, object]) -> EventField:
        return cls(str(entry["name"]), _field_kind(entry["kind"]), str(entry["check"]),
                   bool(entry.get("required", False)), bool(entry.get("nullable", True)),
                   _texts(entry.get("missing_values"), "missing_values"))


@dataclass(frozen=True)
class NumericBand:
    """Similar customers also fall in the same band of a numeric event field: ``edges`` are
    the lower bounds, ascending; the last band is open-ended."""

    field: str
    edges: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.edges) < 2 or list(self.edges) != sorted(set(self.edges)):
            raise ValueError(f"the band of {self.field!r} needs at least two ascending edges")

    def band_of(self, value: float | None) -> tuple[float, float | None] | None:
        """(low, high) of the band holding ``value``; high is None for the open top band."""
        if value is None or math.isnan(value) or value < self.edges[0]:
            return None
        for low, high in zip(self.edges, (*self.edges[1:], None), strict=True):
            if high is None or value < high:
                return float(low), None if high is None else float(high)
        return None

    def to_card(self) -> JSONObject:
        return {"field": self.field, "edges": list(self.edges)}

    @classmethod
    def from_card(cls, entry: object) -> NumericBand | None:
        if not entry:
            return None
        if not isinstance(entry, dict):
            raise ValueError("model.json serving.similar_band must be an object")
        edges = entry["edges"]
        if not isinstance(edges, list) or not all(isinstance(edge, int | float) for edge in edges):
            raise ValueError("model.json serving.similar_band.edges must be a list of numbers")
        return cls(str(entry["field"]), tuple(float(edge) for edge in edges))


@dataclass(frozen=True)
class ServingSpec:
    """The serving contract of one model (see the module docstring)."""

    event_fields: tuple[EventField, ...]
    views: tuple[FeatureView, ...] = ()
    # The model input that takes the event's submitted_at (the file's application date).
    date_field: str | None = None
    # Columns the console groups "similar customers" by (categorical event fields).
    similar_by: tuple[str, ...] = ()
    # Plain-language wording of raw fields for the console's profile (name -> label).
    field_labels: Mapping[str, str] = field(default_factory=dict)
    # Optional: similar customers also share a band of this numeric event field.
    similar_band: NumericBand | None = None
    # Optional: the numeric event field the console filters decisions by (an amount).
    amount_field: str | None = None
    # Free text the event may carry besides its fields: checked for type, then dropped.
    free_text_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [item.name for item in self.event_fields]
        view_fields = [name for view in self.views for name in view.field_names]
        doubled = sorted({n for n in names + view_fields if (names + view_fields).count(n) > 1})
        if doubled:
            raise ValueError(f"fields {doubled} are declared twice (on the event and in a view, "
                             "or in two views); each field has one source")
        unknown = sorted(set(self.similar_by) - set(names))
        if unknown:
            raise ValueError(f"similar_by names {unknown}, which are not event fields")
        numeric = {item.name for item in self.event_fields if item.kind == "numeric"}
        for role, name in (("similar_band", self.similar_band and self.similar_band.field),
                           ("amount_field", self.amount_field)):
            if name is not None and name not in numeric:
                raise ValueError(f"{role} names {name!r}, which is not a numeric event field")

    @property
    def event_field_names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.event_fields)

    @property
    def view_field_names(self) -> tuple[str, ...]:
        return tuple(name for view in self.views for name in view.field_names)

    @property
    def available_inputs(self) -> frozenset[str]:
        """Raw fields the worker can put in a model-input record."""
        extra = {self.date_field} if self.date_field else set()
        return frozenset(self.event_field_names) | frozenset(self.view_field_names) | extra

    def event_contract(self) -> tuple[tuple[str, str, bool, bool], ...]:
        """What a producer must send; two models with the same contract share a topic."""
        return tuple((item.name, item.check, item.required, item.nullable)
                     for item in self.event_fields)

    def to_card(self) -> JSONObject:
        return {"event_fields": [item.to_card() for item in self.event_fields],
                "views": [view.to_card() for view in self.views],
                "date_field": self.date_field, "similar_by": list(self.similar_by),
                "field_labels": dict(self.field_labels),
                "similar_band": self.similar_band.to_card() if self.similar_band else None,
                "amount_field": self.amount_field,
                "free_text_fields": list(self.free_text_fields)}

    @classmethod
    def from_section(cls, serving: Mapping[str, object] | None, feature_set: str) -> ServingSpec:
        """The spec of a model card's ``serving`` section; cards written before serving specs
        existed are Lending Club cards, served by the Lending Club contract."""
        if serving is None:
            if feature_set == FEATURE_SET_LENDING_CLUB:
                return lending_club_serving()
            raise ValueError("model.json has no 'serving' section: retrain the model with "
                             "this version of `creditrisk train`")
        # Lending Club cards written before free text was declared still allow theirs.
        free_text = serving.get("free_text_fields", LENDING_CLUB_FREE_TEXT
                                if feature_set == FEATURE_SET_LENDING_CLUB else ())
        return cls(tuple(EventField.from_card(item) for item in _objects(serving, "event_fields")),
                   tuple(FeatureView.from_card(view) for view in _objects(serving, "views")),
                   _optional_text(serving.get("date_field")),
                   _texts(serving.get("similar_by"), "similar_by"),
                   _text_map(serving.get("field_labels"), "field_labels"),
                   NumericBand.from_card(serving.get("similar_band")),
                   _optional_text(serving.get("amount_field")),
                   _texts(free_text, "free_text_fields"))


# Readers of the serving section's JSON: each says which entry is not what it should be.
def _objects(section: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"model.json serving.{key} must be a list of objects")
    return value


def _texts(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError(f"model.json serving.{where} must be a list")
    return tuple(str(item) for item in value)


def _text_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"model.json serving.{where} must be an object")
    return {str(key): str(text) for key, text in value.items()}


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _field_kind(value: object) -> EventFieldKind:
    if value == "numeric":
        return "numeric"
    if value == "categorical":
        return "categorical"
    raise ValueError(f"an event field's kind is {value!r}; use 'numeric' or 'categorical'")


def lending_club_serving(views: Sequence[FeatureView] = (BUREAU_VIEW,),
                         similar_by: Sequence[str] = ("purpose",)) -> ServingSpec:
    """The Lending Club contract: the applicant's fields on the event (DESIGN.md), the bureau
    view from the feature store, and ``issue_d`` = ``submitted_at``."""
    assert tuple(LENDING_CLUB_EVENT_CHECKS) == APPLICANT_FIELDS
    served = {name for view in views for name in view.field_names}
    missing = sorted(set(BUREAU_FIELDS) - served)
    if missing:
        raise ValueError(f"the Lending Club contract needs bureau fields {missing} from a view")
    fields = tuple(EventField(name, "categorical" if check in _CATEGORY_CHECKS else "numeric",
                              check, required=True, nullable=name in LENDING_CLUB_NULLABLE)
                   for name, check in LENDING_CLUB_EVENT_CHECKS.items())
    return ServingSpec(fields, tuple(views), date_field="issue_d", similar_by=tuple(similar_by),
                       field_labels=LENDING_CLUB_FIELD_LABELS,
                       similar_band=NumericBand("annual_inc", LENDING_CLUB_INCOME_BANDS),
                       amount_field="loan_amnt", free_text_fields=LENDING_CLUB_FREE_TEXT)


_CATEGORY_CHECKS = frozenset({"purpose", "home_ownership", "verification_status", "addr_state"})

class RecordedColumns(Protocol):
    """The loan file's columns as a model card's ``dataset`` section records them."""

    @property
    def id_column(self) -> str | None: ...
    @property
    def customer_id_column(self) -> str | None: ...
    @property
    def date_column(self) -> str | None: ...
    @property
    def target_column(self) -> str | None: ...
    @property
    def outcome_date_column(self) -> str | None: ...


@dataclass(frozen=True)
class SourceColumns:
    """The loan file's own columns that become an event's identity: the application id, the
    customer id (the feature-store entity) and the application date."""

    id_column: str
    customer_id_column: str
    date_column: str | None = None
    # For outcomes replayed from the file: the outcome column and the date it was known.
    target_column: str | None = None
    outcome_date_column: str | None = None

    @classmethod
    def from_dataset(cls, dataset: RecordedColumns, feature_set: str) -> SourceColumns:
        """The columns a model card's ``dataset`` section records."""
        if dataset.id_column is None:
            if feature_set == FEATURE_SET_LENDING_CLUB:
                return LENDING_CLUB_COLUMNS  # cards written before the columns were recorded
            raise ValueError("model.json dataset has no id_column: retrain the model with "
                             "this version of `creditrisk train`")
        return cls(dataset.id_column, dataset.customer_id_column or dataset.id_column,
                   dataset.date_column, dataset.target_column, dataset.outcome_date_column)


LENDING_CLUB_COLUMNS = SourceColumns("id", "member_id", "issue_d", "loan_status", "last_pymnt_d")

# The contract of every Lending Club model trained with the default bureau view.
LENDING_CLUB_SERVING = lending_club_serving()
