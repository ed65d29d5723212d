"""Final decisions: what an origination system books a loan from.

An application's decision is final at once when the model approved or declined it
(``decided_by = 'model'``), and when a reviewer has decided its review item. An override
approved by a second person adds the next revision. Every revision is one append-only row
of ``final_decisions`` whose ``message`` is exactly what goes to ``loan-final-decisions``
(:mod:`ledger.outbox` publishes it): the content is fixed when the row is written, so a
row published twice is published with the same content.

The ledger writer records the model's own final decisions and the review items in the
transaction that stores the decisions (:func:`record_model_outcomes`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

import msgspec

from stream.decisions import Decision

FinalOutcome = Literal["approve", "decline"]
MODEL = "model"  # decided_by of a decision the model made final at once


class FinalDecisionMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message of ``loan-final-decisions`` (key: the application id)."""

    application_id: str
    customer_id: str
    revision: int                      # 1, then one more per approved override
    final_decision: FinalOutcome
    model_decision: Literal["approve", "review", "decline"]
    decided_by: str                    # 'model' or the console user who decided
    approved_by: str | None = None     # the second person of an override
    reason_code: str | None = None     # from the controlled list (review/reason_codes.py)
    reason: str | None = None          # the code's plain words
    comment: str = ""                  # the reviewer's free text
    decided_at: str                    # ISO-8601 UTC
    decision_id: str                   # the model decision it finalises
    model_version: str
    probability_of_default: float
    score: int
    risk_grade: str


class Cursor(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...
    def fetchall(self) -> list[tuple[object, ...]]: ...


class Connection(Protocol):
    def execute(self, query: str, params: Sequence[object] | None = ...) -> Cursor: ...


_INSERT_FINAL = (
    "INSERT INTO final_decisions (application_id, revision, decision_id, model_decision, "
    "final_decision, decided_by, approved_by, reason_code, reason_text, decided_at, message) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (application_id, revision) DO NOTHING RETURNING final_id")


def _utc_text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def final_row(message: FinalDecisionMessage) -> tuple[object, ...]:
    """The ``final_decisions`` row of a message (``_INSERT_FINAL`` order)."""
    return (message.application_id, message.revision, message.decision_id,
            message.model_decision, message.final_decision, message.decided_by,
            message.approved_by, message.reason_code, message.comment, message.decided_at,
            msgspec.json.encode(message).decode())


def model_final(decision: Decision) -> FinalDecisionMessage:
    """The final decision of an automatic approve or decline: the model's, at once."""
    if decision.decision == "review":
        raise ValueError("a review decision is final only once a reviewer has decided it")
    return FinalDecisionMessage(
        application_id=decision.application_id, customer_id=decision.customer_id, revision=1,
        final_decision=decision.decision, model_decision=decision.decision, decided_by=MODEL,
        decided_at=decision.decided_at, decision_id=decision.decision_id,
        model_version=decision.model_version,
        probability_of_default=decision.probability_of_default, score=decision.score,
        risk_grade=decision.risk_grade)


@dataclass(frozen=True)
class RecordedOutcomes:
    finals: int = 0        # final decisions written now (0 for a redelivered batch)
    review_items: int = 0  # review items entered now


def record_model_outcomes(connection: Connection, decisions: Sequence[Decision],
                          service_level: timedelta) -> RecordedOutcomes:
    """In the writer's transaction: each automatic approve/decline becomes the application's
    first final decision, each review decision a queue item due ``service_level`` after it
    was decided. Idempotent: an application that already has either keeps it (a redelivery,
    or a later model version deciding the same application again)."""
    finals = [final_row(model_final(d)) for d in decisions if d.decision != "review"]
    reviews = [(d.application_id, d.decision_id, d.customer_id, d.risk_grade, d.score,
                d.decided_at, _utc_text(datetime.fromisoformat(d.decided_at) + service_level))
               for d in decisions if d.decision == "review"]
    return RecordedOutcomes(finals=_insert_columns(connection, _FINALS_FROM_ARRAYS, finals),
                            review_items=_insert_columns(connection, _REVIEWS_FROM_ARRAYS, reviews))


# One statement per batch: the rows travel as one array per column.
_FINALS_FROM_ARRAYS = (
    "WITH written AS (INSERT INTO final_decisions (application_id, revision, decision_id, "
    "model_decision, final_decision, decided_by, approved_by, reason_code, reason_text, "
    "decided_at, message) SELECT * FROM unnest(%s::text[], %s::int[], %s::uuid[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], "
    "%s::jsonb[]) ON CONFLICT (application_id, revision) DO NOTHING RETURNING 1) "
    "SELECT count(*) FROM written")
_REVIEWS_FROM_ARRAYS = (
    "WITH written AS (INSERT INTO review_items (application_id, decision_id, customer_id, "
    "risk_grade, score, entered_at, due_at) SELECT * FROM unnest(%s::text[], %s::uuid[], "
    "%s::text[], %s::text[], %s::int[], %s::timestamptz[], %s::timestamptz[]) "
    "ON CONFLICT (application_id) DO NOTHING RETURNING 1) SELECT count(*) FROM written")


def _insert_columns(connection: Connection, query: str, rows: Sequence[tuple[object, ...]]) -> int:
    """Rows written (0 without a round trip when there are none)."""
    if not rows:
        return 0
    columns = [list(column) for column in zip(*rows, strict=True)]
    row = connection.execute(query, columns).fetchone()
    return int(str(row[0])) if row else 0


def insert_final(connection: Connection, message: FinalDecisionMessage) -> int:
    """Write one final decision; its id. Raises :class:`FinalExists` when the application
    already has this revision (someone else's decision came first)."""
    row = connection.execute(_INSERT_FINAL, final_row(message)).fetchone()
    if row is None:
        raise FinalExists(f"application {message.application_id} already has final decision "
                          f"revision {message.revision}")
    return int(str(row[0]))


class FinalExists(RuntimeError):
    """The application's final decision of that revision was already recorded."""


def latest_final(connection: Connection, application_id: str) -> FinalDecisionMessage | None:
    """The application's current final decision (its highest revision), or None."""
    row = connection.execute(
        "SELECT message FROM final_decisions WHERE application_id = %s "
        "ORDER BY revision DESC LIMIT 1", (application_id,)).fetchone()
    if row is None:
        return None
    value = row[0]
    return msgspec.convert(value if isinstance(value, dict) else json.loads(str(value)),
                           FinalDecisionMessage)
