"""Feature views of the Redis feature store, declared once.

A view is a group of features about one entity, written together and read together:
``bureau`` (credit-bureau and history values per customer, materialized from an offline
table) and ``velocity`` (how many applications the customer made recently, kept by the
worker itself). Each view says its fields, their types, how old a value may be before it
is stale (``max_age``) and how long Redis keeps it (``ttl``).

Keys are explicit, versioned and readable: ``<prefix>fs:<schema_version>:<view>:<entity_id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from features.definitions import BUREAU_FIELDS

FieldKind = Literal["number", "date"]


@dataclass(frozen=True)
class FieldSpec:
    """One stored feature. ``nullable`` fields may be absent on purpose (the absence means
    something, e.g. no delinquency ever), so their absence is not reported as missing."""

    name: str
    kind: FieldKind = "number"
    nullable: bool = False


@dataclass(frozen=True)
class FeatureView:
    name: str
    entity: str
    fields: tuple[FieldSpec, ...]
    max_age: timedelta
    ttl: timedelta

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)


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
VELOCITY_VIEW = FeatureView(
    name="velocity",
    entity="customer_id",
    fields=tuple(FieldSpec(name) for name in VELOCITY_WINDOWS),
    max_age=timedelta(days=8),
    ttl=timedelta(days=8),
)


def feature_key(view: FeatureView, entity_id: str, schema_version: str, prefix: str = "") -> str:
    """The Redis key of one entity's values in one view."""
    if not entity_id or ":" in entity_id or any(c.isspace() for c in entity_id):
        raise ValueError(
            "an entity id cannot be used in a feature key: it must be non-empty, "
            "without ':' or whitespace"
        )
    return f"{prefix}fs:{schema_version}:{view.name}:{entity_id}"
