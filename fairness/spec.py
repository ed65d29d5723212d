"""Monitoring attributes: the protected characteristics a lender watches, never scores on.

A dataset config declares them in ``[monitoring]`` (which event field, how its values fall
into a few fixed groups, which group is the reference); training records the declaration in
``model.json`` and refuses any of those fields as a feature; the worker reads the event's
value, turns it into its group with :meth:`MonitoredAttribute.group_of` and forgets the
value. Only the group label travels on (metrics, the decision record, the ledger), so a
figure never carries an applicant's own value, and labels stay few and fixed.

A value the event lacks, or one outside the declared values or bands, is the group
``unknown``: counted, never judged, never a reason to treat the event differently.

Example (Home Credit)::

    [monitoring]
    min_group_size = 100

    [[monitoring.attributes]]
    name = "gender"
    field = "CODE_GENDER"
    label = "Gender"
    values = { F = "female", M = "male" }
    reference = "male"

    [[monitoring.attributes]]
    name = "age_band"
    field = "DAYS_BIRTH"
    label = "Age band"
    source = "days_relative"          # days before the application, negative
    bands = [18, 25, 35, 45, 55, 65]  # lower bounds in years; the last band is open
    reference = "35-44"
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, cast

UNKNOWN = "unknown"
DAYS_PER_YEAR = 365.25
# How a banded attribute's number is read: as it is (an age in years), as days relative to
# the application (negative = before: Home Credit's DAYS_BIRTH), or as an ISO birth date
# (age on the day the application was submitted).
NumberSource = Literal["value", "days_relative", "birth_date"]
NUMBER_SOURCES: tuple[NumberSource, ...] = ("value", "days_relative", "birth_date")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_+\-. ]{0,31}$")


class MonitoringConfigError(ValueError):
    """A ``[monitoring]`` declaration that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class MonitoredAttribute:
    """One protected characteristic: ``field`` on the event, grouped by ``values`` (a
    category: raw value → group) or by ``bands`` (a number: ascending lower bounds)."""

    name: str
    field: str
    reference: str
    label: str = ""
    values: Mapping[str, str] = dataclasses.field(default_factory=dict)
    bands: tuple[float, ...] = ()
    source: NumberSource = "value"

    def __post_init__(self) -> None:
        where = f"monitoring attribute {self.name!r}"
        if not _NAME.match(self.name):
            raise MonitoringConfigError(
                f"{where}: the name must be lower-case letters, digits and '_' (it is a metric "
                "label), e.g. \"age_band\".")
        if not isinstance(self.field, str) or not self.field.strip():
            raise MonitoringConfigError(f"{where}: 'field' must name the event field to read.")
        if bool(self.values) == bool(self.bands):
            raise MonitoringConfigError(
                f"{where}: give either 'values' (a category: raw value = group) or 'bands' "
                "(a number: ascending lower bounds), not both and not neither.")
        if self.bands and list(self.bands) != sorted(set(self.bands)):
            raise MonitoringConfigError(f"{where}: 'bands' must be ascending without repeats.")
        if self.bands and len(self.bands) < 2:
            raise MonitoringConfigError(f"{where}: 'bands' needs at least two lower bounds.")
        if self.source not in NUMBER_SOURCES:
            raise MonitoringConfigError(f"{where}: source {self.source!r} is unknown; use one of "
                                        f"{', '.join(NUMBER_SOURCES)}.")
        if self.values and self.source != "value":
            raise MonitoringConfigError(f"{where}: 'source' applies to banded numbers only.")
        bad = sorted(group for group in self.groups if not _GROUP.match(group))
        if bad or UNKNOWN in self.values.values():
            raise MonitoringConfigError(
                f"{where}: group names {bad or [UNKNOWN]} are not allowed (letters, digits, "
                f"'_+-. ', at most 32 characters; {UNKNOWN!r} is kept for missing values).")
        if self.reference not in self.groups:
            raise MonitoringConfigError(
                f"{where}: the reference group {self.reference!r} is not one of its groups "
                f"({', '.join(self.groups)}).")

    @property
    def groups(self) -> tuple[str, ...]:
        """The declared groups, in a stable order (``unknown`` is not one of them)."""
        if self.values:
            return tuple(dict.fromkeys(self.values.values()))
        return tuple(_band_label(low, high) for low, high in self._band_pairs())

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def _band_pairs(self) -> list[tuple[float, float | None]]:
        return list(zip(self.bands, (*self.bands[1:], None), strict=True))

    def group_of(self, value: object, submitted_at: datetime | None = None) -> str:
        """The group of an event's raw value; ``unknown`` for anything missing, malformed or
        outside the declared values or bands. Never raises."""
        try:
            if self.values:
                return self._category(value)
            number = self._number(value, submitted_at)
        except (TypeError, ValueError, OverflowError):
            return UNKNOWN
        if number is None or not math.isfinite(number):
            return UNKNOWN
        for low, high in self._band_pairs():
            if number >= low and (high is None or number < high):
                return _band_label(low, high)
        return UNKNOWN

    def _category(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return UNKNOWN
        text = str(value).strip()
        if text in self.values:
            return self.values[text]
        folded = {key.strip().casefold(): group for key, group in self.values.items()}
        return folded.get(text.casefold(), UNKNOWN)

    def _number(self, value: object, submitted_at: datetime | None) -> float | None:
        if value is None or isinstance(value, bool):
            return None
        if self.source == "birth_date":
            if not isinstance(value, str) or submitted_at is None:
                return None
            born = date.fromisoformat(value.strip()[:10])
            on = submitted_at.date()
            return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
        if self.source == "days_relative":
            return -number / DAYS_PER_YEAR
        return number

    def to_card(self) -> dict[str, object]:
        entry: dict[str, object] = {"name": self.name, "field": self.field, "label": self.title,
                                    "reference": self.reference, "groups": list(self.groups)}
        if self.values:
            entry["values"] = dict(self.values)
        else:
            entry |= {"bands": list(self.bands), "source": self.source}
        return entry

    @classmethod
    def from_entry(cls, entry: Mapping[str, object], where: str) -> MonitoredAttribute:
        """One ``[[monitoring.attributes]]`` table (or a model card's entry)."""
        unknown = sorted(set(entry) - {"name", "field", "label", "reference", "values", "bands",
                                       "source", "groups"})
        if unknown:
            raise MonitoringConfigError(f"{where}: unknown keys {unknown} in a monitoring attribute.")
        missing = [key for key in ("name", "field", "reference") if key not in entry]
        if missing:
            raise MonitoringConfigError(f"{where}: a monitoring attribute needs {missing}.")
        values = entry.get("values") or {}
        bands = entry.get("bands") or []
        if not isinstance(values, Mapping) or not isinstance(bands, list):
            raise MonitoringConfigError(f"{where}: 'values' must be a table and 'bands' a list.")
        if not all(isinstance(edge, int | float) and not isinstance(edge, bool) for edge in bands):
            raise MonitoringConfigError(f"{where}: 'bands' must be numbers.")
        return cls(name=str(entry["name"]), field=str(entry["field"]),
                   reference=str(entry["reference"]), label=str(entry.get("label", "")),
                   values={str(key): str(group) for key, group in values.items()},
                   bands=tuple(float(edge) for edge in bands),
                   source=cast(NumberSource, str(entry.get("source", "value"))))


@dataclass(frozen=True)
class MonitoringSpec:
    """Every monitored attribute of one dataset, and how groups are judged: a group (and its
    reference) must hold ``min_group_size`` decisions before any figure of it is judged; the
    adverse impact ratio is judged at ``air_threshold`` (the four-fifths rule) with
    ``confidence`` intervals."""

    attributes: tuple[MonitoredAttribute, ...] = ()
    min_group_size: int = 100
    confidence: float = 0.95
    air_threshold: float = 0.8
    # Why nothing (or only this) is monitored, e.g. "the file carries no protected
    # characteristics": shown on the model card and in the report.
    note: str = ""

    def __post_init__(self) -> None:
        names = [attribute.name for attribute in self.attributes]
        fields = [attribute.field for attribute in self.attributes]
        for what, seen in (("name", names), ("field", fields)):
            repeated = sorted({item for item in seen if seen.count(item) > 1})
            if repeated:
                raise MonitoringConfigError(f"[monitoring]: attribute {what}s {repeated} repeat.")
        if isinstance(self.min_group_size, bool) or not isinstance(self.min_group_size, int) \
                or self.min_group_size < 1:
            raise MonitoringConfigError("[monitoring] min_group_size must be a positive integer.")
        if not 0.5 < self.confidence < 1:
            raise MonitoringConfigError("[monitoring] confidence must be between 0.5 and 1 "
                                        "(e.g. 0.95).")
        if not 0 < self.air_threshold <= 1:
            raise MonitoringConfigError("[monitoring] air_threshold must be in (0, 1] (e.g. 0.8).")

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(attribute.field for attribute in self.attributes)

    def groups_of(self, event: Mapping[str, object],
                  submitted_at: datetime | None = None) -> dict[str, str]:
        """attribute name → the event's group (``unknown`` where the value is unusable)."""
        return {attribute.name: attribute.group_of(event.get(attribute.field), submitted_at)
                for attribute in self.attributes}

    def to_card(self) -> dict[str, object]:
        return {"attributes": [attribute.to_card() for attribute in self.attributes],
                "min_group_size": self.min_group_size, "confidence": self.confidence,
                "air_threshold": self.air_threshold, "note": self.note}

    @classmethod
    def from_table(cls, table: object, where: str) -> MonitoringSpec:
        """A dataset config's ``[monitoring]`` table or a model card's ``monitoring`` entry
        (absent: nothing is monitored)."""
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise MonitoringConfigError(f"{where}: [monitoring] must be a table.")
        unknown = sorted(set(table) - {"attributes", "min_group_size", "confidence",
                                       "air_threshold", "note"})
        if unknown:
            raise MonitoringConfigError(f"{where}: unknown keys {unknown} in [monitoring].")
        entries = table.get("attributes", [])
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise MonitoringConfigError(f"{where}: [monitoring] attributes must be a list of "
                                        "tables ([[monitoring.attributes]]).")
        size, confidence, threshold = (table.get("min_group_size", 100),
                                       table.get("confidence", 0.95),
                                       table.get("air_threshold", 0.8))
        if not isinstance(size, int) or not all(isinstance(number, int | float)
                                                for number in (confidence, threshold)):
            raise MonitoringConfigError(f"{where}: [monitoring] min_group_size, confidence and "
                                        "air_threshold must be numbers.")
        return cls(tuple(MonitoredAttribute.from_entry(entry, where) for entry in entries),
                   min_group_size=size, confidence=float(confidence),
                   air_threshold=float(threshold), note=str(table.get("note", "")))


def _band_label(low: float, high: float | None) -> str:
    """'18-24' for whole-number bands (the upper bound is exclusive), '65+' for the top one."""
    def number(value: float) -> str:
        return f"{value:g}"
    if high is None:
        return f"{number(low)}+"
    if float(low).is_integer() and float(high).is_integer():
        return f"{number(low)}-{number(high - 1)}"
    return f"{number(low)} to under {number(high)}"
