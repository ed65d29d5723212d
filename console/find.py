"""The Find page's search: the filters a relationship manager sets, run as one SQL query on
the decision ledger (every decision kept, indexed), or over the recent decisions in Redis when
the ledger does not answer.

The application's fields are filtered by name from the live model card (its categorical event
fields and amount field): a category by JSONB containment on the stored application, which
the GIN index ``decisions_application_gin_idx`` serves; field names and values always travel
as query parameters, never as SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal

import pandas as pd

from console.card import ConsoleCard
from console.records import ListedDecision, Parsed, parse_each
from stream.decisions import DecisionRecord

if TYPE_CHECKING:
    from psycopg import Connection

PAGE_SIZE = 50
FIXED_COLUMNS = ["application_id", "customer_id", "decided_at", "decision", "risk_grade",
                 "score", "probability_of_default_pct", "model_version"]
_PAGE_COLUMNS = ("application_id", "customer_id", "decided_at", "decision", "risk_grade", "score",
                 "probability_of_default", "model_version", "application")


@dataclass
class DecisionFilters:
    """The Find view's filters; empty lists, empty text and None mean "any"."""

    decisions: list[str] = field(default_factory=list)
    grades: list[str] = field(default_factory=list)
    score_range: tuple[int | None, int | None] = (None, None)
    date_range: tuple[date | None, date | None] = (None, None)     # decided on, UTC days, inclusive
    customer_id: str = ""
    application_id: str = ""
    model_version: str = ""
    categories: dict[str, list[str]] = field(default_factory=dict)  # application field -> values
    amount_field: str | None = None
    amount_range: tuple[float | None, float | None] = (None, None)

    @property
    def is_empty(self) -> bool:
        return not (self.decisions or self.grades or self.customer_id or self.application_id
                    or self.model_version or any(self.categories.values())
                    or any(v is not None for v in (*self.score_range, *self.date_range))
                    or (self.amount_field and any(v is not None for v in self.amount_range)))


@dataclass(frozen=True)
class DecisionPage:
    """One page of the decisions that match, newest first, and how many match in all."""

    records: list[ListedDecision]
    total: int
    offset: int
    searched: Literal["ledger", "recent"]
    searched_count: int | None = None  # the recent decisions searched (when not the ledger)
    unreadable: int = 0  # stored records that did not parse, left out of the page


# ---- the ledger ---------------------------------------------------------------------------

def ledger_conditions(filters: DecisionFilters) -> tuple[list[str], list[object]]:
    """The WHERE conditions (ANDed) and their parameters, in order."""
    conditions: list[str] = []
    parameters: list[object] = []

    def add(condition: str, *values: object) -> None:
        conditions.append(condition)
        parameters.extend(values)

    if filters.decisions:
        add("decision = ANY(%s)", list(filters.decisions))
    if filters.grades:
        add("risk_grade = ANY(%s)", list(filters.grades))
    low, high = filters.score_range
    if low is not None:
        add("score >= %s", int(low))
    if high is not None:
        add("score <= %s", int(high))
    start, end = filters.date_range
    if start is not None:
        add("decided_at >= %s", _day_start(start))
    if end is not None:
        add("decided_at < %s", _day_start(end) + timedelta(days=1))
    for name, value in (("customer_id", filters.customer_id),
                        ("application_id", filters.application_id),
                        ("model_version", filters.model_version)):
        if value.strip():
            add(f"{name} = %s", value.strip())
    for name, values in filters.categories.items():
        if values:  # one containment per value: each is a GIN index look-up, ORed
            add("(" + " OR ".join(["application @> %s::jsonb"] * len(values)) + ")",
                *(json.dumps({name: value}) for value in values))
    if filters.amount_field:
        amount = ("CASE WHEN jsonb_typeof(application -> %s) = 'number' "
                  "THEN (application ->> %s)::double precision END")
        low_amount, high_amount = filters.amount_range
        if low_amount is not None:
            add(f"{amount} >= %s", filters.amount_field, filters.amount_field, float(low_amount))
        if high_amount is not None:
            add(f"{amount} <= %s", filters.amount_field, filters.amount_field, float(high_amount))
    return conditions, parameters


def ledger_queries(filters: DecisionFilters, limit: int, offset: int,
                   ) -> tuple[tuple[str, list[object]], tuple[str, list[object]]]:
    """(count query, page query), each with its parameters."""
    conditions, parameters = ledger_conditions(filters)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    count = (f"SELECT count(*) FROM decisions{where}", parameters)
    page = (f"SELECT {', '.join(_PAGE_COLUMNS)} FROM decisions{where} "
            "ORDER BY decided_at DESC, application_id LIMIT %s OFFSET %s",
            [*parameters, int(limit), int(offset)])
    return count, page


def find_in_ledger(connection: Connection, filters: DecisionFilters, limit: int = PAGE_SIZE,
                   offset: int = 0) -> DecisionPage:
    """The page of matching decisions from the whole ledger, and the number that match."""
    (count_sql, count_parameters), (page_sql, page_parameters) = ledger_queries(filters, limit, offset)
    with connection.transaction():  # one snapshot: the count and the page agree
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = connection.execute(count_sql, count_parameters).fetchone()
        total = int(row[0]) if row else 0
        rows = connection.execute(page_sql, page_parameters).fetchall() if total > offset else []
    listed = parse_each((dict(zip(_PAGE_COLUMNS, values, strict=True)) for values in rows),
                        ListedDecision.from_row, "the ledger")
    return DecisionPage(listed.items, total, offset, "ledger", unreadable=listed.unreadable)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# ---- the recent decisions in Redis (when the ledger does not answer) -------------------------

def find_in_records(records: Parsed[DecisionRecord], card: ConsoleCard, filters: DecisionFilters,
                    limit: int = PAGE_SIZE, offset: int = 0) -> DecisionPage:
    """The same filters over decision records held in memory (newest first as given)."""
    listed = [ListedDecision.from_record(record) for record in records.items]
    table = decisions_table(listed, card)
    kept = filter_decisions(table, filters).index
    return DecisionPage([listed[position] for position in kept[offset:offset + limit]],
                        len(kept), offset, "recent", len(records.items), records.unreadable)


def decisions_table(records: Sequence[ListedDecision], card: ConsoleCard) -> pd.DataFrame:
    """One row per decision, in the order given, with the card's amount field and
    categorical event fields (see :meth:`ConsoleCard.find_columns`)."""
    extra = ([card.amount_field] if card.amount_field else []) + card.find_columns()
    rows = []
    for record in records:
        row = {
            "application_id": record.application_id,
            "customer_id": record.customer_id,
            "decided_at": pd.to_datetime(record.decided_at, utc=True),
            "decision": record.decision,
            "risk_grade": record.risk_grade,
            "score": record.score,
            "probability_of_default_pct": round(100 * record.probability_of_default, 1),
            "model_version": record.model_version,
        }
        rows.append(row | {name: record.application.get(name) for name in extra})
    table = pd.DataFrame(rows, columns=FIXED_COLUMNS + extra)
    table["decided_at"] = pd.to_datetime(table["decided_at"], utc=True)
    if card.amount_field:
        table[card.amount_field] = pd.to_numeric(table[card.amount_field], errors="coerce")
    return table


def filter_decisions(table: pd.DataFrame, filters: DecisionFilters) -> pd.DataFrame:
    """The rows of :func:`decisions_table` that pass the filters, as the ledger query selects."""
    keep = pd.Series(True, index=table.index)
    chosen_columns = [("decision", filters.decisions), ("risk_grade", filters.grades),
                      *filters.categories.items()]
    for column, chosen in chosen_columns:
        if chosen:
            keep &= table[column].astype("object").isin(chosen)
    for column, value in (("customer_id", filters.customer_id),
                          ("application_id", filters.application_id),
                          ("model_version", filters.model_version)):
        if value.strip():
            keep &= table[column].astype("object") == value.strip()
    keep &= _between(table["score"], *filters.score_range)
    if filters.amount_field:
        keep &= _between(table[filters.amount_field], *filters.amount_range)
    start, end = filters.date_range
    if start is not None or end is not None:
        day = table["decided_at"].dt.date
        keep &= _between(day, start, end)
    return table[keep]


def _between(values: pd.Series, low: float | date | None, high: float | date | None,
             ) -> pd.Series:
    keep = pd.Series(True, index=values.index)
    if low is not None:
        keep &= values.notna() & (values >= low)
    if high is not None:
        keep &= values.notna() & (values <= high)
    return keep
