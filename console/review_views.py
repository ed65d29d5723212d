"""The underwriters' pages: the review queue, overrides, and the final decision with its
adverse-action notice.

Everything here goes through :mod:`review.queue` on the console's own ledger role
(:mod:`console.ledger_access`): the queue module checks who may do what and refuses with a
:class:`review.queue.Refused` whose message is shown as it is; nothing changes then.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, TypeVar

import pandas as pd
import streamlit as st

from config.settings import Settings
from console import metrics, views
from console.card import ConsoleCard
from console.data import ConsoleUnavailable, DataSource
from console.ledger_access import console_connection, review_connection
from console.records import UnreadableRecord
from ledger.finals import FinalDecisionMessage, latest_final
from review import queue
from review.queue import Outcome, QueueFilter, QueueItem, Refused
from review.reason_codes import ReasonCode, choices
from review.users import User

if TYPE_CHECKING:
    from review.queue import Connection

log = logging.getLogger("creditrisk.console")
T = TypeVar("T")

WORKING = "review_item"          # the queue item this session works on
DECIDED = "review_result"        # the final decision just made here
OVERRIDE_LOOKUP = "override_application"
OVERRIDE_NOTE = "override_result"


@dataclass(frozen=True)
class Done(Generic[T]):
    """An action that was done, with what it returned."""

    value: T


def act(settings: Settings, action: str, call: Callable[[Connection], T]) -> Done[T] | None:
    """One review action in its own transaction; a refusal is shown (and counted) and None
    returned, nothing changed."""
    try:
        with review_connection(settings, "This action") as connection:
            done = Done(call(connection))
    except Refused as error:
        metrics.refused(action)
        st.error(f"Refused: {error}. Nothing was changed.")
        return None
    metrics.acted(action)
    return done


def reason_label(reason: ReasonCode) -> str:
    return f"{reason.code} — {reason.text}"


def final_text(final: FinalDecisionMessage) -> str:
    """'decline (revision 2) by rita, approved by alan, on … — DC03 Excessive obligations …'"""
    who = "the model" if final.decided_by == "model" else final.decided_by
    text = f"**{final.final_decision}** (revision {final.revision}) by {who}"
    if final.approved_by:
        text += f", approved by {final.approved_by}"
    text += f", {final.decided_at}"
    if final.reason_code:
        text += f" — {final.reason_code} {final.reason or ''}"
    if final.comment:
        text += f" · “{final.comment}”"
    return text


# ---- Review queue ----------------------------------------------------------------------------

def render_review_queue(source: DataSource, settings: Settings, user: User) -> None:
    st.header("Review queue")
    decided: FinalDecisionMessage | None = st.session_state.get(DECIDED)
    if decided is not None:
        st.success(f"Application {decided.application_id} decided: " + final_text(decided))
        if decided.final_decision == "decline":
            render_notice(settings, user, decided.application_id, f"queue-{decided.revision}")
    card = ConsoleCard(source.model_card())
    wanted = queue_filters(card)
    with review_connection(settings, "The review queue") as connection:
        items = queue.open_items(connection, wanted, card.amount_field)
        mine = [item for item in queue.open_items(connection, QueueFilter(limit=1000))
                if item.claimed_by == user.username]
    render_queue_table(items, card)
    working = st.session_state.get(WORKING)
    if working and working not in {item.application_id for item in mine}:
        working = st.session_state[WORKING] = None  # released, decided, or claimed elsewhere
    choose_item(settings, user, items, mine)
    if working:
        st.divider()
        render_claimed(source, settings, user, card, working)


def queue_filters(card: ConsoleCard) -> QueueFilter:
    columns = st.columns(4)
    grades = columns[0].multiselect("Risk grade", card.risk_grades(), key="queue-grade")
    low = high = None
    if card.amount_field:
        label = card.field_label(card.amount_field)
        low = columns[1].number_input(f"{label} from", value=None, key="queue-amount-low")
        high = columns[2].number_input(f"{label} to", value=None, key="queue-amount-high")
    age = columns[3].number_input("Waiting at least (hours)", value=None, min_value=0.0,
                                  key="queue-age")
    return QueueFilter(risk_grades=tuple(grades), min_amount=low, max_amount=high,
                       min_age_hours=age)


def render_queue_table(items: list[QueueItem], card: ConsoleCard) -> None:
    now = datetime.now(UTC)
    if not items:
        st.info("No application waits for review (with these filters).")
        return
    past_due = sum(item.past_due(now) for item in items)
    noun = "item waits" if len(items) == 1 else "items wait"
    st.caption(f"{len(items):,} {noun} for a decision, oldest first; {past_due:,} past due.")
    amount_label = card.field_label(card.amount_field) if card.amount_field else "Amount"
    table = pd.DataFrame([{
        "Application ID": item.application_id, "Customer ID": item.customer_id,
        "Risk grade": item.risk_grade, "Score": item.score, amount_label: item.amount,
        "Waiting (hours)": round(item.age(now).total_seconds() / 3600, 1),
        "Due": item.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Past due": "PAST DUE" if item.past_due(now) else "",
        "Claimed by": item.claimed_by or ""} for item in items])
    st.dataframe(table, hide_index=True, width="stretch", key="queue_table")


def choose_item(settings: Settings, user: User, items: list[QueueItem],
                mine: list[QueueItem]) -> None:
    """Claim an open item (the oldest is offered first), or go back to one already held."""
    free = [item.application_id for item in items if item.status == "open"]
    columns = st.columns(2)
    if free:
        chosen = columns[0].selectbox("Open item to claim (oldest first)", free,
                                      key="queue-claim-choice")
        if columns[0].button("Claim", key="queue-claim") and act(
                settings, "claim", lambda c: queue.claim(c, user, chosen)) is not None:
            log.info("review item %s claimed by %s", chosen, user.username)
            st.session_state[WORKING] = chosen
            st.session_state[DECIDED] = None
            st.rerun()
    if mine:
        held = columns[1].selectbox("Items you hold", [item.application_id for item in mine],
                                    key="queue-mine-choice")
        if columns[1].button("Work on it", key="queue-continue"):
            st.session_state[WORKING] = held
            st.rerun()


def render_claimed(source: DataSource, settings: Settings, user: User, card: ConsoleCard,
                   application_id: str) -> None:
    st.subheader(f"You hold application {application_id}")
    try:
        record = source.record(application_id)
    except UnreadableRecord as error:
        st.warning(str(error))
        record = None
    if record is None:
        st.warning(f"The model's decision on {application_id} cannot be read, so it cannot be "
                   "explained here; decide from the ledger's records or release it.")
    else:
        explained, compared = st.tabs(["Decision", "Similar customers"])
        with explained:
            views.show_decision(source, record)
        with compared:
            views.show_comparison(source, record, card)
    decide_form(settings, user, application_id)


def decide_form(settings: Settings, user: User, application_id: str) -> None:
    st.subheader("Your decision")
    outcome: Outcome = st.radio("Final decision", ["approve", "decline"], horizontal=True,
                                key=f"decide-outcome-{application_id}")
    reasons = choices(outcome)
    with st.form(f"decide-{application_id}"):
        reason = st.radio("Reason", reasons, format_func=reason_label,
                          key=f"decide-reason-{application_id}-{outcome}")
        comment = st.text_area("Comment", key=f"decide-comment-{application_id}")
        submitted = st.form_submit_button("Submit decision")
    if submitted and reason is not None:
        decided = act(settings, "decide", lambda c: queue.decide(
            c, user, application_id, outcome, reason.code, comment))
        if decided is not None:
            log.info("review item %s decided by %s: %s", application_id, user.username,
                     decided.value.final_decision)
            st.session_state[DECIDED] = decided.value
            st.session_state[WORKING] = None
            st.rerun()
    if st.button("Release", key=f"release-{application_id}") and act(
            settings, "release", lambda c: queue.release(c, user, application_id)) is not None:
        st.session_state[WORKING] = None
        st.rerun()


# ---- Overrides -------------------------------------------------------------------------------

def render_overrides(settings: Settings, user: User) -> None:
    st.header("Overrides")
    st.caption("A final decision is reversed in two steps: a reviewer asks, with a listed "
               "reason and why; it takes effect only when an approver other than the one who "
               "asked approves it.")
    note = st.session_state.get(OVERRIDE_NOTE)
    if isinstance(note, FinalDecisionMessage):
        st.success(f"Override approved: application {note.application_id} is now "
                   + final_text(note))
        if note.final_decision == "decline":
            render_notice(settings, user, note.application_id, f"override-{note.revision}")
    elif isinstance(note, str):
        st.success(note)
    with st.form("override-lookup"):
        wanted = st.text_input("Application ID", key="override-lookup-id")
        if st.form_submit_button("Look up") and wanted.strip():
            st.session_state[OVERRIDE_LOOKUP] = wanted.strip()
            st.session_state[OVERRIDE_NOTE] = None
    application_id = st.session_state.get(OVERRIDE_LOOKUP)
    if application_id:
        render_application_overrides(settings, user, application_id)
    st.divider()
    render_pending(settings, user)


def render_application_overrides(settings: Settings, user: User, application_id: str) -> None:
    with review_connection(settings, "Overrides") as connection:
        final = latest_final(connection, application_id)
        actions = queue.history(connection, application_id)
    if final is None:
        st.warning(f"Application {application_id} has no final decision: it was never decided, "
                   "or it waits in the review queue.")
        return
    st.markdown(f"Final decision on **{application_id}**: " + final_text(final))
    if actions:
        st.dataframe(pd.DataFrame([{
            "When": action.acted_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "Action": action.action.replace("_", " "), "By": action.actor,
            "From": action.from_decision or "", "To": action.to_decision or "",
            "Reason": action.reason_code or "", "Text": action.reason_text}
            for action in actions]), hide_index=True, width="stretch", key="override_history")
    if final.final_decision == "decline":
        render_notice(settings, user, application_id, f"lookup-{final.revision}")
    reverse_to: Outcome = "approve" if final.final_decision == "decline" else "decline"
    with st.form(f"override-request-{application_id}"):
        st.markdown(f"**Ask to reverse it to {reverse_to}**")
        reason = st.radio("Reason", choices(reverse_to), format_func=reason_label,
                          key=f"override-reason-{application_id}-{reverse_to}")
        why = st.text_area("Why (required)", key=f"override-why-{application_id}")
        submitted = st.form_submit_button("Ask for the override")
    if submitted and reason is not None:
        asked = act(settings, "override_request", lambda c: queue.request_override(
            c, user, application_id, reverse_to, reason.code, why))
        if asked is not None:
            request_id = asked.value
            log.info("override %s of %s asked by %s", request_id, application_id, user.username)
            st.session_state[OVERRIDE_NOTE] = (
                f"Override request {request_id} recorded: {application_id} {final.final_decision}"
                f" → {reverse_to}. It takes effect when another user with the approver role "
                "approves it.")
            st.rerun()


def render_pending(settings: Settings, user: User) -> None:
    st.subheader("Overrides waiting for an approver")
    with review_connection(settings, "Overrides") as connection:
        pending = queue.pending_overrides(connection)
    if not pending:
        st.info("No override waits for an approver.")
        return
    for request in pending:
        with st.container(border=True):
            st.markdown(
                f"**Request {request.request_id}** · application **{request.application_id}** · "
                f"{request.from_decision} → **{request.to_decision}** · {request.reason_code} · "
                f"asked by **{request.requested_by}** on "
                f"{request.requested_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
            st.markdown(f"Why: {request.reason_text}")
            answer = st.text_input("Answer (required to reject)",
                                   key=f"override-answer-{request.request_id}")
            approve, reject = st.columns(2)
            if approve.button("Approve", key=f"override-approve-{request.request_id}"):
                approved = act(settings, "override_approve", functools.partial(
                    queue.approve_override, user=user, request_id=request.request_id))
                if approved is not None:
                    log.info("override %s approved by %s", request.request_id, user.username)
                    st.session_state[OVERRIDE_NOTE] = approved.value
                    st.rerun()
            if reject.button("Reject", key=f"override-reject-{request.request_id}"):
                if not answer.strip():
                    st.error("Say why the override is rejected (the answer is required).")
                elif act(settings, "override_reject", functools.partial(
                        queue.reject_override, user=user, request_id=request.request_id,
                        text=answer)) is not None:
                    log.info("override %s rejected by %s", request.request_id, user.username)
                    st.session_state[OVERRIDE_NOTE] = (f"Override request {request.request_id} "
                                                       "rejected; the final decision stands.")
                    st.rerun()


# ---- the final decision and its notice ------------------------------------------------------

def render_final_decision(settings: Settings, user: User, application_id: str | None) -> None:
    """Under the Decision view: the application's final decision and, for a decline, its
    adverse-action notice."""
    if not application_id:
        return
    try:
        with console_connection(settings, "The final decision") as connection:
            final = latest_final(connection, application_id)
    except ConsoleUnavailable as error:
        st.caption(f"The final decision cannot be shown: {error}")
        return
    st.subheader("Final decision")
    if final is None:
        st.caption("No final decision yet (a review decision is final once a reviewer decides "
                   "it in the **Review queue**).")
        return
    st.markdown(final_text(final))
    if final.final_decision == "decline":
        render_notice(settings, user, application_id, f"decision-{final.revision}")


def render_notice(settings: Settings, user: User, application_id: str, key: str) -> None:
    """A final decline's adverse-action notice: the stored one to download (PDF) and read
    (HTML); a reviewer may produce it here when the ledger has not yet."""
    from ledger.notices import stored_notice

    with console_connection(settings, "The adverse-action notice") as connection:
        notice = stored_notice(connection, application_id)
    if notice is None:
        st.caption("No adverse-action notice has been produced for this decline yet.")
        if user.may("reviewer") and st.button("Produce the adverse-action notice",
                                               key=f"notice-produce-{key}"):
            produce(settings, user, application_id)
        return
    st.download_button("Adverse-action notice (PDF)", data=notice.pdf,
                       file_name=f"adverse-action-notice-{application_id}.pdf",
                       mime="application/pdf", key=f"notice-pdf-{key}")
    st.caption(f"Adverse-action notice produced {_moment_text(notice.produced_at)} by "
               f"{notice.produced_by}.")
    with st.expander("Adverse-action notice (HTML)"):
        st.html(notice.html)  # sanitised: the notice holds applicant data


def produce(settings: Settings, user: User, application_id: str) -> None:
    """Produce and store a final decline's notice now, then show it (a refusal is shown)."""
    from ledger.notices import NoticeRefused, produce_notice

    try:
        with console_connection(settings, "The adverse-action notice") as connection:
            produce_notice(connection, settings, application_id, produced_by=user.username)
    except NoticeRefused as error:
        metrics.refused("notice")
        st.error(f"Refused: {error}. Nothing was changed.")
        return
    metrics.acted("notice")
    log.info("adverse-action notice of %s produced by %s", application_id, user.username)
    st.rerun()


def _moment_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
