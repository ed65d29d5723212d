"""The ledger's SQL: writing decisions and outcomes, retention, and the console's look-ups.

Writes go through ``COPY`` into a temporary staging table and one ``INSERT … ON CONFLICT``
per batch: a redelivered or replayed decision (same ``decision_id``) is left as first
written, and an outcome replaces an older one for the same application of the same
portfolio only when it is at least as recent (another portfolio's outcome never does).
The rows' columns are :mod:`ledger.rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from ledger.rows import DECISION_COLUMNS, OUTCOME_COLUMNS, SqlValue

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import TupleRow

    Ledger = Connection[TupleRow]

Row = Sequence[SqlValue]


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    decisions_removed: int
    outcomes_removed: int


def _staging(connection: Ledger, table: str) -> str:
    staging = f"{table}_staging"
    connection.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
                       f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    return staging


def _copy(connection: Ledger, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    with connection.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def insert_decisions(connection: Ledger, rows: Sequence[Row]) -> int:
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


def upsert_outcomes(connection: Ledger, rows: Sequence[Row]) -> int:
    """Store outcome rows (``OUTCOME_COLUMNS`` order); the latest ``as_of`` per portfolio and
    application wins, ties go to the later message. Returns the rows inserted or updated."""
    key, as_of, offset = (OUTCOME_COLUMNS.index(name) for name in ("application_id", "as_of",
                                                                      "source_offset"))
    latest: dict[tuple[SqlValue, SqlValue], Row] = {}
    for row in rows:
        kept = latest.get((row[0], row[key]))
        if kept is None or (str(row[as_of]), _number(row[offset])) >= (str(kept[as_of]),
                                                                        _number(kept[offset])):
            latest[(row[0], row[key])] = row
    if not latest:
        return 0
    staging = _staging(connection, "loan_outcomes")
    _copy(connection, staging, OUTCOME_COLUMNS, list(latest.values()))
    columns = ", ".join(OUTCOME_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in OUTCOME_COLUMNS[2:])
    changed = connection.execute(
        f"INSERT INTO loan_outcomes ({columns}) SELECT {columns} FROM {staging} "
        f"ON CONFLICT (portfolio, application_id) DO UPDATE SET {updates}, recorded_at = now() "
        "WHERE excluded.as_of >= loan_outcomes.as_of")
    return int(changed.rowcount)


def _number(value: SqlValue) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def purge_older_than(connection: Ledger, months: int, now: datetime | None = None) -> PurgeReport:
    """Remove decisions decided more than ``months`` months before ``now``, and the outcomes
    of applications that no longer have a decision and are themselves that old."""
    moment = now or datetime.now(UTC)
    with connection.transaction():
        found = connection.execute("SELECT %s::timestamptz - make_interval(months => %s)",
                                   (moment, months)).fetchone()
        cutoff = found[0] if found else moment
        removed = connection.execute("DELETE FROM decisions WHERE decided_at < %s", (cutoff,))
        # a challenger's decisions go with the champion's they were compared with
        connection.execute("DELETE FROM shadow_decisions WHERE decided_at < %s", (cutoff,))
        orphans = connection.execute(
            "DELETE FROM loan_outcomes o WHERE o.as_of < %s::date AND NOT EXISTS "
            "(SELECT 1 FROM decisions d WHERE d.application_id = o.application_id)", (cutoff,))
    return PurgeReport(cutoff, int(removed.rowcount), int(orphans.rowcount))


def parse_as_of(value: object) -> date:
    """An outcome's as-of date from 'YYYY-MM-DD' or an ISO timestamp."""
    if not isinstance(value, str):
        raise ValueError("as_of is not text")
    return date.fromisoformat(value[:10])
