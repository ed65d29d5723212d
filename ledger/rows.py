"""The one mapping between a decision and its ledger row, both ways.

The writer turns a published decision and the worker's Redis record into a ``decisions``
row (:func:`decision_row`; the applicant's monitored groups come from the record, so a row
without lineage has none); the console turns the row back into the worker's record
(:func:`latest_record`). Both read the column list here, so a column added to the ledger is
added in one place. Outcome rows (``loan_outcomes``) are keyed by portfolio and application;
a challenger's shadow decision is a ``shadow_decisions`` row (:func:`shadow_row`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Protocol

from features.normalize import utc_timestamp
from stream.decisions import Decision, DecisionRecord, ShadowDecision

# JSON-ready values as they travel to and from PostgreSQL (jsonb as text going in).
SqlValue = str | int | float | bool | date | datetime | None

DECISION_COLUMNS = (
    "decision_id", "application_id", "customer_id", "decision", "probability_of_default",
    "score", "risk_grade", "reasons", "missing_features", "model_version", "policy_version",
    "submitted_at", "decided_at", "application", "features", "feature_age_seconds",
    "stale_features", "velocity", "lineage_complete", "source_topic", "source_partition", "source_offset",
    "monitoring_groups",
)
# The decision's own fields and its lineage: what the console reads back as a record.
RECORD_COLUMNS = (*DECISION_COLUMNS[:15], "stale_features", "velocity", "feature_age_seconds")
SHADOW_COLUMNS = (
    "decision_id", "application_id", "decision", "probability_of_default", "score", "risk_grade",
    "reasons", "model_version", "policy_version", "decided_at", "champion_decision_id",
    "champion_model_version", "champion_decision", "source_topic", "source_partition",
    "source_offset",
)
OUTCOME_COLUMNS = ("portfolio", "application_id", "loan_status", "outcome", "as_of", "source_topic",
                   "source_partition", "source_offset")


class Cursor(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...


class Connection(Protocol):
    def execute(self, query: str, params: tuple[object, ...] = ...) -> Cursor: ...


class Source(Protocol):
    """Where a row was read: the topic, partition and offset of its Kafka message."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


def as_json(value: object) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)


def decision_row(decision: Decision, record: DecisionRecord | None,
                 source: Source) -> tuple[SqlValue, ...]:
    """One ``decisions`` row (``DECISION_COLUMNS`` order): the decision, and its lineage when
    the worker's record is of this very decision (else the lineage columns are null)."""
    if record is not None and record.decision.decision_id != decision.decision_id:
        record = None  # the record in Redis is of another model version's decision
    reasons = [asdict(reason) for reason in decision.reasons]
    return (
        decision.decision_id, decision.application_id, decision.customer_id,
        decision.decision, decision.probability_of_default, decision.score,
        decision.risk_grade, as_json(reasons), as_json(list(decision.missing_features)),
        decision.model_version, decision.policy_version, decision.submitted_at,
        decision.decided_at,
        as_json(record.application) if record else None,
        as_json(record.features) if record else None,
        as_json(record.feature_age_seconds) if record else None,
        as_json(record.stale_features) if record else None,
        as_json(record.velocity) if record else None,
        record is not None,
        source.topic, source.partition, source.offset,
        monitoring_groups(record),
    )


def monitoring_groups(record: DecisionRecord | None) -> str | None:
    """The applicant's groups as jsonb text (attribute → group label; never the raw value);
    None without the worker's record, whose groups are then not known."""
    return None if record is None else as_json(dict(record.groups))


def shadow_row(decision: ShadowDecision, source: Source) -> tuple[SqlValue, ...]:
    """One ``shadow_decisions`` row (``SHADOW_COLUMNS`` order): the challenger's decision and
    the champion's beside it."""
    return (
        decision.decision_id, decision.application_id, decision.decision,
        decision.probability_of_default, decision.score, decision.risk_grade,
        as_json([asdict(reason) for reason in decision.reasons]), decision.model_version,
        decision.policy_version, decision.decided_at, decision.champion_decision_id,
        decision.champion_model_version, decision.champion_decision,
        source.topic, source.partition, source.offset,
    )


def has_lineage(row: tuple[SqlValue, ...]) -> bool:
    return bool(row[DECISION_COLUMNS.index("lineage_complete")])


def record_from_row(row: tuple[object, ...]) -> DecisionRecord:
    """A ``RECORD_COLUMNS`` row as the worker's record (parsed and checked once);
    :class:`stream.decisions.DecisionError` when the row is not a decision."""
    values = dict(zip(RECORD_COLUMNS, row, strict=True))
    moments = {name: utc_timestamp(value) for name in ("submitted_at", "decided_at")
               if isinstance(value := values[name], datetime)}
    decision = {name: values[name] for name in RECORD_COLUMNS[:13]} | moments
    decision["decision_id"] = str(values["decision_id"])
    return DecisionRecord.from_dict({
        "decision": decision, "application": values["application"] or {},
        "features": values["features"] or {}, "stale_features": values["stale_features"] or [],
        "velocity": values["velocity"] or {},
        "feature_age_seconds": values["feature_age_seconds"] or {}})


LATEST_RECORD_SQL = (f"SELECT {', '.join(RECORD_COLUMNS)} FROM decisions "
                     "WHERE application_id = %s ORDER BY decided_at DESC LIMIT 1")


def latest_record(connection: Connection, application_id: str) -> DecisionRecord | None:
    """The application's latest decision in the ledger as the worker's record."""
    row = connection.execute(LATEST_RECORD_SQL, (application_id,)).fetchone()
    return None if row is None else record_from_row(row)
