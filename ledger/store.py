"""The ledger's SQL: writing decisions and outcomes, retention, and the console's look-ups.

Writes go through ``COPY`` into a temporary staging table and one ``INSERT … ON CONFLICT``
per batch: a redelivered or replayed decision (same ``decision_id``) is left as first
written, and an outcome replaces an older one for the same application only when it is at
least as recent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

DECISION_COLUMNS = (
    "decision_id", "application_id", "customer_id", "decision", "probability_of_default",
    "score", "risk_grade", "reasons", "missing_features", "model_version", "policy_version",
    "submitted_at", "decided_at", "application", "features", "feature_age_seconds",
    "stale_features", "velocity", "lineage_complete", "source_topic", "source_partition", "source_offset",
)
OUTCOME_COLUMNS = ("application_id", "loan_status", "outcome", "as_of", "source_topic",
                   "source_partition", "source_offset")


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    decisions_removed: int
    outcomes_removed: int


def _staging(connection: Any, table: str) -> str:
    staging = f"{table}_staging"
    connection.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
                       f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    return staging


def _copy(connection: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with connection.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_decisions(connection: Any, rows: Sequence[Sequence[Any]]) -> int:
    """Store decision rows (``DECISION_COLUMNS`` order) inside the caller's transaction;
    return how many were new (the rest were already in the ledger)."""
    if not rows:
        return 0
    staging = _staging(connection, "decisions")
    _copy(connection, staging, DECISION_COLUMNS, rows)
    columns = ", ".join(DECISION_COLUMNS)
    inserted = connection.execute(
        f"INSERT INTO decisions ({columns}) SELECT {columns} FROM {staging} "
        "ON CONFLICT (decision_id) DO NOTHING")
    return int(inserted.rowcount)


def upsert_outcomes(connection: Any, rows: Sequence[Sequence[Any]]) -> int:
    """Store outcome rows (``OUTCOME_COLUMNS`` order); the latest ``as_of`` per application
    wins, ties go to the later message. Returns the rows inserted or updated."""
    latest: dict[str, Sequence[Any]] = {}
    for row in rows:
        kept = latest.get(row[0])
        if kept is None or (row[3], row[6]) >= (kept[3], kept[6]):
            latest[row[0]] = row
    if not latest:
        return 0
    staging = _staging(connection, "loan_outcomes")
    _copy(connection, staging, OUTCOME_COLUMNS, list(latest.values()))
    columns = ", ".join(OUTCOME_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in OUTCOME_COLUMNS[1:])
    changed = connection.execute(
        f"INSERT INTO loan_outcomes ({columns}) SELECT {columns} FROM {staging} "
        f"ON CONFLICT (application_id) DO UPDATE SET {updates}, recorded_at = now() "
        "WHERE excluded.as_of >= loan_outcomes.as_of")
    return int(changed.rowcount)


def purge_older_than(connection: Any, months: int, now: datetime | None = None) -> PurgeReport:
    """Remove decisions decided more than ``months`` months before ``now``, and the outcomes
    of applications that no longer have a decision and are themselves that old."""
    moment = now or datetime.now(UTC)
    with connection.transaction():
        cutoff = connection.execute("SELECT %s::timestamptz - make_interval(months => %s)",
                                    (moment, months)).fetchone()[0]
        removed = connection.execute("DELETE FROM decisions WHERE decided_at < %s", (cutoff,))
        orphans = connection.execute(
            "DELETE FROM loan_outcomes o WHERE o.as_of < %s::date AND NOT EXISTS "
            "(SELECT 1 FROM decisions d WHERE d.application_id = o.application_id)", (cutoff,))
    return PurgeReport(cutoff, int(removed.rowcount), int(orphans.rowcount))


def as_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), allow_nan=False)


def parse_as_of(value: Any) -> date:
    """An outcome's as-of date from 'YYYY-MM-DD' or an ISO timestamp."""
    if not isinstance(value, str):
        raise ValueError("as_of is not text")
    return date.fromisoformat(value[:10])
