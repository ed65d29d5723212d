"""The review queue, decisions and overrides on the stack's real PostgreSQL, as the people
who use them would notice: what enters the queue, who may claim and decide, the four-eyes
rule on overrides, refusals that change nothing, and audit rows nobody can edit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest
from ledger_harness import private_database, synthetic_decision

from config.settings import Settings
from ledger.finals import latest_final, record_model_outcomes
from ledger.rows import decision_row
from ledger.store import insert_decisions
from review import queue
from review.users import User, add_user, disable_user, find_user, list_users, sign_in

pytestmark = [pytest.mark.integration]

PASSWORD = "correct horse battery"


@pytest.fixture
def ledger(live_stack: Settings) -> Iterator[psycopg.Connection]:
    """A private migrated database with 30 model decisions written as the ledger writer
    writes them (a third each approve, review, decline), and four users."""
    with private_database(live_stack) as settings, psycopg.connect(
            settings.postgres_conninfo(), autocommit=True) as connection:
        made = [synthetic_decision(i, datetime.now(UTC) - timedelta(hours=30 - i))
                for i in range(30)]
        decisions = [decision for decision, _record in made]
        source = SimpleNamespace(topic="loan-decisions", partition=0, offset=0)
        with connection.transaction():
            insert_decisions(connection, [decision_row(d, r, source) for d, r in made])
            record_model_outcomes(connection, decisions, timedelta(hours=24))
        for name, role in (("vera", "viewer"), ("rita", "reviewer"), ("ravi", "reviewer"),
                           ("alan", "approver")):
            add_user(connection, name, role, PASSWORD, "test")
        yield connection


def _user(connection: psycopg.Connection, name: str) -> User:
    user = find_user(connection, name)
    assert user is not None
    return user


def _review_ids(connection: psycopg.Connection) -> list[str]:
    return [str(r[0]) for r in connection.execute(
        "SELECT application_id FROM decisions WHERE decision = 'review' ORDER BY decided_at")]


def _actions(connection: psycopg.Connection) -> int:
    return int(connection.execute("SELECT count(*) FROM review_actions").fetchone()[0])  # type: ignore[index]


def test_the_queue_holds_exactly_the_review_decisions_oldest_first_with_due_times(ledger) -> None:
    items = queue.open_items(ledger, amount_field="loan_amnt")
    assert [i.application_id for i in items] == _review_ids(ledger)
    assert all(i.due_at - i.entered_at == timedelta(hours=24) for i in items)
    now = datetime.now(UTC)
    assert any(i.past_due(now) for i in items) and not all(i.past_due(now) for i in items)
    # the writer's automatic approves and declines are final at once, by the model
    finals = ledger.execute("SELECT count(*), bool_and(decided_by = 'model') FROM final_decisions"
                            ).fetchone()
    assert finals == (20, True)
    # a redelivered batch enters nothing twice
    again = record_model_outcomes(ledger, [synthetic_decision(i)[0] for i in range(30)],
                                  timedelta(hours=24))
    assert (again.finals, again.review_items) == (0, 0)


def test_the_queue_filters_by_grade_amount_and_age(ledger) -> None:
    everything = queue.open_items(ledger, amount_field="loan_amnt")
    grade = everything[0].risk_grade
    by_grade = queue.open_items(ledger, queue.QueueFilter(risk_grades=(grade,)), "loan_amnt")
    assert by_grade and {i.risk_grade for i in by_grade} == {grade}
    amounts = sorted(i.amount for i in everything if i.amount is not None)
    middle = amounts[len(amounts) // 2]
    cheap = queue.open_items(ledger, queue.QueueFilter(max_amount=middle), "loan_amnt")
    assert cheap and all(i.amount is not None and i.amount <= middle for i in cheap)
    assert len(cheap) < len(everything)
    old = queue.open_items(ledger, queue.QueueFilter(min_age_hours=20), "loan_amnt")
    now = datetime.now(UTC)
    assert old and all(i.age(now) >= timedelta(hours=20) for i in old) and len(old) < len(everything)


def test_a_reviewer_claims_and_declines_with_a_listed_reason_and_it_becomes_final(ledger) -> None:
    rita, ravi = _user(ledger, "rita"), _user(ledger, "ravi")
    first = queue.open_items(ledger)[0].application_id
    queue.claim(ledger, rita, first)
    with pytest.raises(queue.Refused, match="claimed by rita"):
        queue.claim(ledger, ravi, first)
    with pytest.raises(queue.Refused, match="claimed by rita"):
        queue.decide(ledger, ravi, first, "approve", "AP01")
    before = _actions(ledger)
    with pytest.raises(queue.Refused, match="unknown reason code"):
        queue.decide(ledger, rita, first, "decline", "XX99", "no such code")
    with pytest.raises(queue.Refused, match="reason to approve"):
        queue.decide(ledger, rita, first, "decline", "AP01")
    assert _actions(ledger) == before  # refusals change nothing
    final = queue.decide(ledger, rita, first, "decline", "DC03", "debts on the bank statements")
    assert (final.final_decision, final.decided_by, final.reason_code) == ("decline", "rita", "DC03")
    assert latest_final(ledger, first) == final
    assert first not in [i.application_id for i in queue.open_items(ledger)]
    with pytest.raises(queue.Refused, match="decided already"):
        queue.decide(ledger, rita, first, "approve", "AP01")
    assert [a.action for a in queue.history(ledger, first)] == ["claim", "decide"]


def test_a_viewer_or_a_disabled_user_may_not_act(ledger) -> None:
    first = queue.open_items(ledger)[0].application_id
    with pytest.raises(queue.Refused, match="only a reviewer"):
        queue.claim(ledger, _user(ledger, "vera"), first)
    disable_user(ledger, "ravi")
    with pytest.raises(queue.Refused, match="disabled"):
        queue.claim(ledger, _user(ledger, "ravi"), first)
    assert [u.username for u, _ in list_users(ledger) if u.disabled] == ["ravi"]


def test_reversing_an_automatic_approve_needs_a_second_person_with_the_approver_role(ledger) -> None:
    rita, ravi, alan = (_user(ledger, n) for n in ("rita", "ravi", "alan"))
    approved = str(ledger.execute("SELECT application_id FROM final_decisions WHERE "
                                  "final_decision = 'approve' LIMIT 1").fetchone()[0])  # type: ignore[index]
    with pytest.raises(queue.Refused, match="say why"):
        queue.request_override(ledger, rita, approved, "decline", "DC04", "  ")
    request = queue.request_override(ledger, rita, approved, "decline", "DC04",
                                     "two missed payments the bureau has not reported yet")
    assert latest_final(ledger, approved).final_decision == "approve"  # not yet in effect
    with pytest.raises(queue.Refused, match="already has an override waiting"):
        queue.request_override(ledger, ravi, approved, "decline", "DC04", "again")
    with pytest.raises(queue.Refused, match="only an approver"):
        queue.approve_override(ledger, ravi, request)
    # an approver who asked for an override may not approve it either
    own = queue.request_override(ledger, alan, _other_approved(ledger, approved), "decline",
                                 "DC05", "thin file")
    with pytest.raises(queue.Refused, match="another approver"):
        queue.approve_override(ledger, alan, own)
    final = queue.approve_override(ledger, alan, request)
    assert (final.revision, final.final_decision, final.decided_by, final.approved_by) == (
        2, "decline", "rita", "alan")
    assert latest_final(ledger, approved) == final
    with pytest.raises(queue.Refused, match="answered already"):
        queue.reject_override(ledger, alan, request, "too late")
    assert [a.action for a in queue.history(ledger, approved)] == ["override_request", "override_approve"]


def _other_approved(connection: psycopg.Connection, but: str) -> str:
    return str(connection.execute("SELECT application_id FROM final_decisions WHERE "
                                  "final_decision = 'approve' AND application_id <> %s LIMIT 1",
                                  (but,)).fetchone()[0])  # type: ignore[index]


def test_a_rejected_override_leaves_the_decision_as_it_was(ledger) -> None:
    rita, alan = _user(ledger, "rita"), _user(ledger, "alan")
    declined = str(ledger.execute("SELECT application_id FROM final_decisions WHERE "
                                  "final_decision = 'decline' LIMIT 1").fetchone()[0])  # type: ignore[index]
    request = queue.request_override(ledger, rita, declined, "approve", "AP03", "guarantor signed")
    queue.reject_override(ledger, alan, request, "guarantor's income not verified")
    assert latest_final(ledger, declined).revision == 1
    assert queue.pending_overrides(ledger) == []


def test_nobody_edits_or_deletes_an_audit_row_not_even_the_owner(ledger) -> None:
    rita = _user(ledger, "rita")
    queue.claim(ledger, rita, queue.open_items(ledger)[0].application_id)
    for statement in ("UPDATE review_actions SET actor = 'alan'", "DELETE FROM review_actions",
                      "UPDATE final_decisions SET final_decision = 'approve'",
                      "DELETE FROM final_decisions"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            ledger.execute(statement)


def test_sign_in_is_throttled_after_repeated_failures_and_each_attempt_recorded(ledger) -> None:
    window = timedelta(minutes=15)
    assert sign_in(ledger, "rita", PASSWORD, 3, window).outcome == "signed_in"
    for _ in range(3):
        assert sign_in(ledger, "rita", "wrong password!", 3, window).outcome == "wrong"
    throttled = sign_in(ledger, "rita", PASSWORD, 3, window)  # the right password, too late
    assert throttled.outcome == "throttled" and 0 < throttled.retry_after_s <= 15 * 60
    assert sign_in(ledger, "nobody", PASSWORD, 3, window).outcome == "wrong"
    rows = ledger.execute("SELECT succeeded FROM login_attempts WHERE username = 'rita' "
                          "ORDER BY attempt_id").fetchall()
    assert [r[0] for r in rows] == [True, False, False, False]
    hashes = [str(r[0]) for r in ledger.execute("SELECT password_hash FROM console_users")]
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)
