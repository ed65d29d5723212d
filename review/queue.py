"""The review queue and overrides: who may do what to an application's decision.

- A ``review`` decision is a queue item (the ledger writer enters it). A reviewer claims
  it, then decides approve or decline with a listed reason code and free text: that is the
  application's final decision (revision 1). Releasing hands an item back to the queue.
- Any final decision can be reversed (an override): a reviewer asks, and it takes effect
  only when a second person with the ``approver`` role approves it (four eyes); the
  approval adds the next revision of the final decision. The asker may not approve their
  own request; an approver may reject it instead.

Every action is an append-only ``review_actions`` row (who, when, from, to, reason code,
text). Each function runs in one transaction that first takes the application's advisory
lock, so two people acting on one application at once are served one after the other and
the second sees what the first did. A refusal (:class:`Refused`) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Literal, Protocol

from ledger.finals import FinalDecisionMessage, FinalExists, insert_final, latest_final
from review.reason_codes import ReasonCode, UnknownReasonCode, reason_for
from review.users import Role, User, as_datetime

Outcome = Literal["approve", "decline"]


class Cursor(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...
    def fetchall(self) -> list[tuple[object, ...]]: ...


class Transaction(Protocol):
    def __enter__(self) -> object: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None, /) -> bool | None: ...


class Connection(Protocol):
    def execute(self, query: str, params: Sequence[object] | None = ...) -> Cursor: ...
    def transaction(self) -> Transaction: ...


class Refused(Exception):
    """The action is not allowed; nothing was changed. The message says why."""


@dataclass(frozen=True)
class QueueItem:
    application_id: str
    customer_id: str
    risk_grade: str
    score: int
    amount: float | None
    entered_at: datetime
    due_at: datetime
    status: str
    claimed_by: str | None

    def age(self, now: datetime) -> timedelta:
        return now - self.entered_at

    def past_due(self, now: datetime) -> bool:
        return self.status != "decided" and now > self.due_at


@dataclass(frozen=True)
class QueueFilter:
    risk_grades: tuple[str, ...] = ()
    min_amount: float | None = None
    max_amount: float | None = None
    min_age_hours: float | None = None
    include_claimed: bool = True
    limit: int = 200


@dataclass(frozen=True)
class OverrideRequest:
    request_id: int
    application_id: str
    requested_by: str
    requested_at: datetime
    from_decision: str
    to_decision: Outcome
    reason_code: str
    reason_text: str


@dataclass(frozen=True)
class Action:
    action_id: int
    action: str
    actor: str
    acted_at: datetime
    from_decision: str | None
    to_decision: str | None
    reason_code: str | None
    reason_text: str
    request_id: int | None


def open_items(connection: Connection, wanted: QueueFilter = QueueFilter(),
               amount_field: str | None = None) -> list[QueueItem]:
    """Items not yet decided, oldest first. ``amount_field`` is the application field the
    live model's card names as the credit amount (``serving.amount_field``)."""
    amount = "NULL::double precision"
    params: list[object] = []
    if amount_field:
        amount = ("CASE WHEN jsonb_typeof(d.application -> %s) = 'number' "
                  "THEN (d.application ->> %s)::double precision END")
        params += [amount_field, amount_field]
    where = ["r.status <> 'decided'"]
    if not wanted.include_claimed:
        where.append("r.status = 'open'")
    if wanted.risk_grades:
        where.append("r.risk_grade = ANY(%s)")
        params.append(list(wanted.risk_grades))
    if wanted.min_age_hours is not None:
        where.append("r.entered_at <= now() - make_interval(secs => %s)")
        params.append(wanted.min_age_hours * 3600)
    query = (f"SELECT * FROM (SELECT r.application_id, r.customer_id, r.risk_grade, r.score, "
             f"{amount} AS amount, r.entered_at, r.due_at, r.status, r.claimed_by "
             "FROM review_items r LEFT JOIN decisions d ON d.decision_id = r.decision_id "
             f"WHERE {' AND '.join(where)}) q")
    bounds = []
    if wanted.min_amount is not None:
        bounds.append("q.amount >= %s")
        params.append(wanted.min_amount)
    if wanted.max_amount is not None:
        bounds.append("q.amount <= %s")
        params.append(wanted.max_amount)
    if bounds:
        query += " WHERE " + " AND ".join(bounds)
    query += " ORDER BY q.entered_at, q.application_id LIMIT %s"
    params.append(wanted.limit)
    return [QueueItem(str(r[0]), str(r[1]), str(r[2]), int(str(r[3])),
                      None if r[4] is None else float(str(r[4])), as_datetime(r[5]), as_datetime(r[6]),
                      str(r[7]), None if r[8] is None else str(r[8]))
            for r in connection.execute(query, params).fetchall()]


def item(connection: Connection, application_id: str) -> QueueItem | None:
    row = connection.execute(
        "SELECT application_id, customer_id, risk_grade, score, NULL, entered_at, due_at, "
        "status, claimed_by FROM review_items WHERE application_id = %s",
        (application_id,)).fetchone()
    if row is None:
        return None
    return QueueItem(str(row[0]), str(row[1]), str(row[2]), int(str(row[3])), None,
                     as_datetime(row[5]), as_datetime(row[6]), str(row[7]),
                     None if row[8] is None else str(row[8]))


def claim(connection: Connection, user: User, application_id: str) -> None:
    """Take an open item; claiming one's own claimed item again is allowed (no new row)."""
    _allowed(user, "reviewer", "claim a review item")
    with connection.transaction():
        current = _locked_item(connection, application_id)
        if current.status == "decided":
            raise Refused(f"application {application_id} was decided already")
        if current.status == "claimed":
            if current.claimed_by == user.username:
                return
            raise Refused(f"application {application_id} is claimed by {current.claimed_by}")
        connection.execute("UPDATE review_items SET status = 'claimed', claimed_by = %s, "
                           "claimed_at = now() WHERE application_id = %s",
                           (user.username, application_id))
        _act(connection, application_id, "claim", user)


def release(connection: Connection, user: User, application_id: str) -> None:
    """Hand one's claimed item back to the queue."""
    _allowed(user, "reviewer", "release a review item")
    with connection.transaction():
        current = _locked_item(connection, application_id)
        if current.status != "claimed" or current.claimed_by != user.username:
            raise Refused(f"application {application_id} is not claimed by you")
        connection.execute("UPDATE review_items SET status = 'open', claimed_by = NULL, "
                           "claimed_at = NULL WHERE application_id = %s", (application_id,))
        _act(connection, application_id, "release", user)


def decide(connection: Connection, user: User, application_id: str, outcome: Outcome,
           reason_code: str, text: str = "") -> FinalDecisionMessage:
    """A reviewer's decision on the item they claimed: the application's final decision."""
    _allowed(user, "reviewer", "decide a review item")
    reason = _reason(reason_code, outcome)
    with connection.transaction():
        current = _locked_item(connection, application_id)
        if current.status == "decided":
            raise Refused(f"application {application_id} was decided already")
        if current.status != "claimed":
            raise Refused(f"claim application {application_id} before deciding it")
        if current.claimed_by != user.username:
            raise Refused(f"application {application_id} is claimed by {current.claimed_by}, "
                          "not by you")
        model = _model_decision(connection, application_id)
        message = FinalDecisionMessage(
            application_id=application_id, customer_id=current.customer_id, revision=1,
            final_decision=outcome, model_decision="review", decided_by=user.username,
            reason_code=reason.code, reason=reason.text, comment=text.strip(),
            decided_at=_now_text(connection), decision_id=model.decision_id,
            model_version=model.model_version,
            probability_of_default=model.probability_of_default, score=model.score,
            risk_grade=model.risk_grade)
        try:
            insert_final(connection, message)
        except FinalExists as error:
            raise Refused(str(error)) from None
        connection.execute("UPDATE review_items SET status = 'decided' WHERE application_id = %s",
                           (application_id,))
        _act(connection, application_id, "decide", user, "review", outcome, reason.code, text)
    return message


def request_override(connection: Connection, user: User, application_id: str, to: Outcome,
                     reason_code: str, text: str) -> int:
    """Ask to reverse an application's final decision; the request's id. It takes effect
    when another user with the ``approver`` role approves it."""
    _allowed(user, "reviewer", "ask for an override")
    reason = _reason(reason_code, to)
    if not text.strip():
        raise Refused("say why the decision should be reversed (the text is required)")
    with connection.transaction():
        _lock(connection, application_id)
        final = latest_final(connection, application_id)
        if final is None:
            raise Refused(f"application {application_id} has no final decision to reverse")
        if final.final_decision == to:
            raise Refused(f"application {application_id} is already {_done(to)}")
        if pending_override(connection, application_id) is not None:
            raise Refused(f"application {application_id} already has an override waiting for "
                          "an approver")
        return _act(connection, application_id, "override_request", user,
                    final.final_decision, to, reason.code, text)


def approve_override(connection: Connection, user: User, request_id: int) -> FinalDecisionMessage:
    """The second person's approval: the override takes effect as the next revision."""
    _allowed(user, "approver", "approve an override")
    with connection.transaction():
        request = _locked_request(connection, request_id)
        if request.requested_by == user.username:
            raise Refused("you asked for this override; another approver must approve it")
        final = latest_final(connection, request.application_id)
        if final is None or final.final_decision != request.from_decision:
            raise Refused(f"application {request.application_id}'s final decision changed since "
                          "the override was asked for")
        reason = reason_for(request.reason_code, request.to_decision)
        message = FinalDecisionMessage(
            application_id=final.application_id, customer_id=final.customer_id,
            revision=final.revision + 1, final_decision=request.to_decision,
            model_decision=final.model_decision, decided_by=request.requested_by,
            approved_by=user.username, reason_code=reason.code, reason=reason.text,
            comment=request.reason_text, decided_at=_now_text(connection),
            decision_id=final.decision_id, model_version=final.model_version,
            probability_of_default=final.probability_of_default, score=final.score,
            risk_grade=final.risk_grade)
        insert_final(connection, message)
        _act(connection, request.application_id, "override_approve", user,
             request.from_decision, request.to_decision, request.reason_code, "",
             request_id=request_id)
    return message


def reject_override(connection: Connection, user: User, request_id: int, text: str) -> None:
    _allowed(user, "approver", "reject an override")
    with connection.transaction():
        request = _locked_request(connection, request_id)
        if request.requested_by == user.username:
            raise Refused("you asked for this override; another approver must answer it")
        _act(connection, request.application_id, "override_reject", user,
             request.from_decision, request.to_decision, request.reason_code, text,
             request_id=request_id)


def pending_override(connection: Connection, application_id: str) -> OverrideRequest | None:
    found = pending_overrides(connection, application_id)
    return found[0] if found else None


def pending_overrides(connection: Connection, application_id: str | None = None,
                      ) -> list[OverrideRequest]:
    """Override requests nobody has answered yet, oldest first."""
    query = ("SELECT q.action_id, q.application_id, q.actor, q.acted_at, q.from_decision, "
             "q.to_decision, q.reason_code, q.reason_text FROM review_actions q "
             "WHERE q.action = 'override_request' AND NOT EXISTS (SELECT 1 FROM review_actions a "
             "WHERE a.request_id = q.action_id)")
    params: tuple[object, ...] = ()
    if application_id is not None:
        query += " AND q.application_id = %s"
        params = (application_id,)
    rows = connection.execute(query + " ORDER BY q.action_id", params).fetchall()
    return [_request(row) for row in rows]


def history(connection: Connection, application_id: str) -> list[Action]:
    """Every action on an application, in order."""
    rows = connection.execute(
        "SELECT action_id, action, actor, acted_at, from_decision, to_decision, reason_code, "
        "reason_text, request_id FROM review_actions WHERE application_id = %s ORDER BY action_id",
        (application_id,)).fetchall()
    return [Action(int(str(r[0])), str(r[1]), str(r[2]), as_datetime(r[3]),
                   None if r[4] is None else str(r[4]), None if r[5] is None else str(r[5]),
                   None if r[6] is None else str(r[6]), str(r[7]),
                   None if r[8] is None else int(str(r[8]))) for r in rows]


# -- inside the transaction ------------------------------------------------------------
def _allowed(user: User, needed: Role, what: str) -> None:
    if user.disabled:
        raise Refused(f"user {user.username} is disabled")
    if not user.may(needed):
        raise Refused(f"only {_a(needed)} (or above) may {what}; {user.username} is "
                      f"{_a(user.role)}")


def _reason(code: str, outcome: Outcome) -> ReasonCode:
    try:
        return reason_for(code, outcome)
    except UnknownReasonCode as error:
        raise Refused(str(error)) from None


def _lock(connection: Connection, application_id: str) -> None:
    connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 22))",
                       (application_id,))


def _locked_item(connection: Connection, application_id: str) -> QueueItem:
    _lock(connection, application_id)
    current = item(connection, application_id)
    if current is None:
        raise Refused(f"application {application_id} is not in the review queue")
    return current


def _locked_request(connection: Connection, request_id: int) -> OverrideRequest:
    row = connection.execute("SELECT application_id FROM review_actions WHERE action_id = %s "
                             "AND action = 'override_request'", (request_id,)).fetchone()
    if row is None:
        raise Refused(f"there is no override request {request_id}")
    _lock(connection, str(row[0]))
    for request in pending_overrides(connection, str(row[0])):
        if request.request_id == request_id:
            return request
    raise Refused(f"override request {request_id} was answered already")


def _act(connection: Connection, application_id: str, action: str, user: User,
         from_decision: str | None = None, to_decision: str | None = None,
         reason_code: str | None = None, text: str = "", request_id: int | None = None) -> int:
    row = connection.execute(
        "INSERT INTO review_actions (application_id, action, actor, from_decision, to_decision, "
        "reason_code, reason_text, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "RETURNING action_id",
        (application_id, action, user.username, from_decision, to_decision, reason_code,
         text.strip(), request_id)).fetchone()
    assert row is not None
    return int(str(row[0]))


@dataclass(frozen=True)
class _Model:
    decision_id: str
    model_version: str
    probability_of_default: float
    score: int
    risk_grade: str


def _model_decision(connection: Connection, application_id: str) -> _Model:
    row = connection.execute(
        "SELECT d.decision_id, d.model_version, d.probability_of_default, d.score, d.risk_grade "
        "FROM review_items r JOIN decisions d ON d.decision_id = r.decision_id "
        "WHERE r.application_id = %s", (application_id,)).fetchone()
    if row is None:
        raise Refused(f"application {application_id}'s model decision is not in the ledger")
    return _Model(str(row[0]), str(row[1]), float(str(row[2])), int(str(row[3])), str(row[4]))


def _request(row: tuple[object, ...]) -> OverrideRequest:
    to = str(row[5])
    return OverrideRequest(int(str(row[0])), str(row[1]), str(row[2]), as_datetime(row[3]),
                           str(row[4]), "approve" if to == "approve" else "decline",
                           str(row[6]), str(row[7]))


def _now_text(connection: Connection) -> str:
    row = connection.execute("SELECT to_char(now() AT TIME ZONE 'UTC', "
                             "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')").fetchone()
    assert row is not None
    return str(row[0])


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def _done(outcome: Outcome) -> str:
    return "approved" if outcome == "approve" else "declined"

