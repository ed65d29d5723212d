"""The console's typed shapes of what it reads, each parsed and checked once where it is read.

- a full decision record (Redis, or a ledger row with its lineage):
  :class:`stream.decisions.DecisionRecord`;
- a row of the Find table: :class:`ListedDecision` (the decision's headline fields and the
  application; the ledger query selects no more);
- a similar customer: :class:`SimilarCustomer` (the outcome, the application and the
  features the comparison plots);
- the worker's ``POST /score`` answer: :class:`stream.decisions.Decision`.

A stored record that does not parse is skipped, counted in :class:`Parsed` and logged; the
page says how many were left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from stream.decisions import DecisionError, DecisionOutcome, DecisionRecord

log = logging.getLogger("creditrisk.console")

T = TypeVar("T")
Raw = TypeVar("Raw")

UNREADABLE_NOTICE = (
    "{count:,} stored decision record{s} could not be read (not in the decision contract this "
    "console knows) and {are} left out here. The console's log names them; check that the "
    "worker and the console run the same release.")


class UnreadableRecord(ValueError):
    """The stored decision of one application does not parse; the text says which and why."""


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """What was read and parsed, and how many stored records were skipped as unreadable."""

    items: list[T] = field(default_factory=list)
    unreadable: int = 0


def parse_each(raws: Iterable[Raw], parse: Callable[[Raw], T], where: str) -> Parsed[T]:
    """Each raw record parsed once; one that does not parse is skipped, counted and logged."""
    items: list[T] = []
    unreadable = 0
    for raw in raws:
        try:
            items.append(parse(raw))
        except DecisionError as error:
            unreadable += 1
            log.warning("skipped an unreadable decision record in %s: %s", where, error)
    return Parsed(items, unreadable)


def unreadable_notice(count: int) -> str:
    """What the page says about records it had to leave out."""
    return UNREADABLE_NOTICE.format(count=count, s="" if count == 1 else "s",
                                    are="is" if count == 1 else "are")


def unreadable_record_text(application_id: str, problem: Exception) -> str:
    """What the page says when one application's stored decision does not parse."""
    return (f"The stored decision of application “{application_id}” could not be read "
            f"({problem}). Check that the worker and the console run the same release; the "
            "console's log has the details.")


def _convert(value: object, shape: type[T]) -> T:
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError as error:
        raise DecisionError(str(error)) from None


@dataclass(frozen=True)
class ListedDecision:
    """One row of the Find table: the decision's headline fields and the application."""

    application_id: str
    customer_id: str
    decided_at: datetime
    decision: DecisionOutcome
    risk_grade: str
    score: int
    probability_of_default: float
    model_version: str
    application: dict[str, object]

    @classmethod
    def from_record(cls, record: DecisionRecord) -> ListedDecision:
        decision = record.decision
        return cls(decision.application_id, decision.customer_id,
                   datetime.fromisoformat(decision.decided_at), decision.decision,
                   decision.risk_grade, decision.score, decision.probability_of_default,
                   decision.model_version, record.application)

    @classmethod
    def from_row(cls, row: dict[str, object]) -> ListedDecision:
        """A ledger row by column name; :class:`DecisionError` when it is not a decision."""
        return _convert(row | {"application": row.get("application") or {}}, cls)


@dataclass(frozen=True)
class SimilarCustomer:
    """A decision in the customer's similar group: only what the comparison reads."""

    application_id: str
    decision: DecisionOutcome
    risk_grade: str
    application: dict[str, object]
    features: dict[str, object]

    @classmethod
    def from_record(cls, record: DecisionRecord) -> SimilarCustomer:
        decision = record.decision
        return cls(decision.application_id, decision.decision, decision.risk_grade,
                   record.application, record.features)

    @classmethod
    def from_row(cls, row: dict[str, object]) -> SimilarCustomer:
        """A ledger row by column name; :class:`DecisionError` when it is not a decision."""
        return _convert(row | {"features": row.get("features") or {}}, cls)
