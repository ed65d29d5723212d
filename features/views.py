"""Feature views of the Redis feature store, declared once.

A view is a group of features about one entity, written together and read together:
``bureau`` (credit-bureau and history values per customer, materialized from an offline
table) and ``velocity`` (how many applications the customer made recently, kept by the
worker itself). Each view says its fields, their types, how old a value may be before it
is stale (``max_age``) and how long Redis keeps it (``ttl``).

Keys are explicit, versioned and readable. Two key schemas, chosen by
``CREDITRISK_FEATURE_SCHEMA_VERSION``:

- ``v1``: ``<prefix>fs:v1:<view>:<entity_id>``, for a single Redis;
- ``v2``: ``<prefix>fs:v2:<view>:{<entity_id>}``: the entity is a Redis Cluster hash tag, so
  every view of one customer lives in one slot and the worker's read script (which touches the
  customer's bureau hash and velocity set together) runs on one node. It works on a single
  Redis too.

A store migrates from v1 to v2 by materializing v2 beside v1, switching the worker's setting,
and letting the v1 keys expire (docs/runbook.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from config.json_types import JSONObject
from features.definitions import BUREAU_FIELDS

if TYPE_CHECKING:
    import pandas as pd

FieldKind = Literal["number", "date"]
AggregationFunction = Literal["count", "count_value", "sum", "mean", "min", "max"]
AGGREGATION_FUNCTIONS: tuple[str, ...] = ("count", "count_value", "sum", "mean", "min", "max")


@dataclass(frozen=True)
class FieldSpec:
    """One stored feature. ``nullable`` fields may be absent on purpose (the absence means
    something, e.g. no delinquency ever), so their absence is not reported as missing."""

    name: str
    kind: FieldKind = "number"
    nullable: bool = False


@dataclass(frozen=True)
class Aggregation:
    """How one view field is computed from a source table with many rows per entity:
    ``count`` rows, ``count_value`` rows whose ``column`` equals ``value``, or the
    ``sum`` / ``mean`` / ``min`` / ``max`` of a numeric ``column`` (blanks ignored)."""

    column: str
    function: AggregationFunction
    value: str | None = None

    def __post_init__(self) -> None:
        if self.function not in AGGREGATION_FUNCTIONS:
            raise ValueError(f"aggregation function {self.function!r} is unknown; use one of "
                             f"{', '.join(AGGREGATION_FUNCTIONS)}")
        if (self.function == "count_value") != (self.value is not None):
            raise ValueError("'value' goes with the count_value function, and only with it")


@dataclass(frozen=True)
class FeatureView:
    """A group of features about one entity, stored as one Redis hash per entity.

    ``source`` names the table it is materialized from (a CSV beside the loan file),
    ``entity_column`` the table's column holding the entity id (the application's
    ``customer_id``). Without ``aggregations`` the table has one row per entity and each
    field is a column of it; with them, every field is an aggregate over the entity's rows.
    """

    name: str
    entity: str
    fields: tuple[FieldSpec, ...]
    max_age: timedelta
    ttl: timedelta
    source: str = ""
    entity_column: str = "customer_id"
    event_time_column: str | None = None
    aggregations: Mapping[str, Aggregation] = field(default_factory=dict)
    description: str = ""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    def to_card(self) -> JSONObject:
        """The view as model.json records it (what the worker reads)."""
        return {"name": self.name, "entity": self.entity, "source": self.source,
                "entity_column": self.entity_column, "event_time_column": self.event_time_column,
                "description": self.description,
                "fields": [{"name": spec.name, "kind": spec.kind, "nullable": spec.nullable}
                           for spec in self.fields],
                "aggregations": {name: {"column": agg.column, "function": agg.function,
                                        **({"value": agg.value} if agg.value is not None else {})}
                                 for name, agg in self.aggregations.items()},
                "max_age_seconds": self.max_age.total_seconds(),
                "ttl_seconds": self.ttl.total_seconds()}

    @classmethod
    def from_card(cls, entry: Mapping[str, Any]) -> FeatureView:
        return cls(name=str(entry["name"]), entity=str(entry.get("entity", "customer_id")),
                   fields=tuple(FieldSpec(str(f["name"]), f.get("kind", "number"),
                                          bool(f.get("nullable", False)))
                                for f in entry["fields"]),
                   max_age=timedelta(seconds=float(entry["max_age_seconds"])),
                   ttl=timedelta(seconds=float(entry["ttl_seconds"])),
                   source=str(entry.get("source", "")),
                   entity_column=str(entry.get("entity_column", "customer_id")),
                   event_time_column=entry.get("event_time_column"),
                   aggregations={name: Aggregation(str(a["column"]), a["function"], a.get("value"))
                                 for name, a in entry.get("aggregations", {}).items()},
                   description=str(entry.get("description", "")))


def aggregate_view(table: pd.DataFrame, view: FeatureView) -> pd.DataFrame:
    """One row per entity (index: entity id as text) with one column per view field.

    The one definition of a view's values: training joins it onto the loan file and
    materialization writes it to Redis, so both see the same numbers. A view without
    aggregations takes its fields from the table as they are (last row per entity wins).
    """
    import pandas as pd

    if view.entity_column not in table.columns:
        raise ValueError(f"view {view.name!r}: the source table has no column "
                         f"{view.entity_column!r} (the entity id)")
    entity = table[view.entity_column].astype(str).str.strip()
    if not view.aggregations:
        present = [name for name in view.field_names if name in table.columns]
        columns = table[present].set_axis(entity, axis=0)
        return columns[~columns.index.duplicated(keep="last")]
    out: dict[str, pd.Series] = {}
    for name, aggregation in view.aggregations.items():
        if aggregation.column not in table.columns:
            raise ValueError(f"view {view.name!r}: field {name!r} aggregates column "
                             f"{aggregation.column!r}, which the source table does not have")
        column = table[aggregation.column]
        if aggregation.function == "count":
            out[name] = column.groupby(entity).size().astype("float64")
        elif aggregation.function == "count_value":
            hits = column.astype(str).str.strip().eq(str(aggregation.value))
            out[name] = hits.groupby(entity).sum().astype("float64")
        else:
            numbers = pd.to_numeric(column, errors="coerce")
            out[name] = numbers.groupby(entity).agg(aggregation.function).astype("float64")
    result = pd.DataFrame(out)
    result.index.name = view.entity_column
    return result


def _bureau_field(name: str) -> FieldSpec:
    if name == "earliest_cr_line":
        return FieldSpec(name, kind="date")
    return FieldSpec(name, nullable=name == "mths_since_last_delinq")


# Bureau files are refreshed monthly; a value more than 45 days older than the
# application it serves is stale. Keys live a year so an absent customer is rare.
BUREAU_VIEW = FeatureView(
    name="bureau",
    entity="customer_id",
    fields=tuple(_bureau_field(name) for name in BUREAU_FIELDS),
    max_age=timedelta(days=45),
    ttl=timedelta(days=365),
)

# Sliding windows over the customer's own applications (a sorted set of application ids
# scored by submission time); kept a day longer than the widest window.
VELOCITY_WINDOWS: dict[str, timedelta] = {
    "applications_24h": timedelta(hours=24),
    "applications_7d": timedelta(days=7),
}
VELOCITY_LABELS: dict[str, str] = {
    "applications_24h": "Applications in the last 24 hours",
    "applications_7d": "Applications in the last 7 days",
}
VELOCITY_VIEW = FeatureView(
    name="velocity",
    entity="customer_id",
    fields=tuple(FieldSpec(name) for name in VELOCITY_WINDOWS),
    max_age=timedelta(days=8),
    ttl=timedelta(days=8),
    description="Recent activity",
)


# Key schemas the store knows; those listed in HASH_TAGGED_SCHEMAS put the entity in a hash tag.
SCHEMA_VERSIONS: tuple[str, ...] = ("v1", "v2")
HASH_TAGGED_SCHEMAS: frozenset[str] = frozenset({"v2"})


def feature_key(view: FeatureView, entity_id: str, schema_version: str, prefix: str = "") -> str:
    """The Redis key of one entity's values in one view."""
    return view_key_prefix(view, schema_version, prefix) + entity_key_part(entity_id, schema_version)


def view_key_prefix(view: FeatureView, schema_version: str, prefix: str = "") -> str:
    """What every key of the view starts with; :func:`entity_key_part` follows it."""
    return f"{prefix}fs:{schema_version}:{view.name}:"


def entity_key_part(entity_id: str, schema_version: str) -> str:
    """The entity's part of a feature key: the id itself (v1), or the id as a Redis Cluster
    hash tag (v2), so that every key of the entity hashes to the same slot."""
    checked = checked_entity_id(entity_id)
    if schema_version not in SCHEMA_VERSIONS:
        raise ValueError(f"feature schema version {schema_version!r} is unknown; set "
                         f"CREDITRISK_FEATURE_SCHEMA_VERSION to one of {', '.join(SCHEMA_VERSIONS)}")
    if schema_version not in HASH_TAGGED_SCHEMAS:
        return checked
    if _BRACES.search(checked):
        # Redis hashes what lies between the first '{' and the next '}': a brace in the id
        # would cut the tag short, or empty it (then each view's key hashes on its own).
        raise ValueError("an entity id with '{' or '}' cannot be a hash tag of a v2 feature key")
    return "{" + checked + "}"


_NOT_IN_ENTITY_IDS = re.compile(r"[:\s]")
_BRACES = re.compile(r"[{}]")


def checked_entity_id(entity_id: str) -> str:
    if not entity_id or _NOT_IN_ENTITY_IDS.search(entity_id):
        raise ValueError(
            "an entity id cannot be used in a feature key: it must be non-empty, "
            "without ':' or whitespace"
        )
    return entity_id
