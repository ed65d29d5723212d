"""The console's own ledger role on the stack's real PostgreSQL, through the console's own
connection (console/ledger_access.py) and sign-in check (console/login.py): it records what
people do but can never change or remove a record, and its sign-in is throttled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest
from ledger_harness import private_database, synthetic_decision

from config.settings import Settings
from console.ledger_access import LedgerUnavailable, console_connection, review_connection
from console.login import ledger_sign_in
from ledger.finals import latest_final, record_model_outcomes
from ledger.rows import decision_row
from ledger.store import insert_decisions
from review import queue
from review.users import User, add_user

pytestmark = [pytest.mark.integration]

PASSWORD = "rita's long password"
RITA = User("rita", "rita", "reviewer")


@pytest.fixture
def ledger(live_stack: Settings) -> Iterator[Settings]:
    """A private migrated database with 12 model decisions as the ledger writer writes them
    (a third each approve, review, decline) and a reviewer; its settings."""
    with private_database(live_stack) as settings:
        made = [synthetic_decision(i, datetime.now(UTC) - timedelta(hours=12 - i))
                for i in range(12)]
        source = SimpleNamespace(topic="loan-decisions", partition=0, offset=0)
        with psycopg.connect(settings.postgres_conninfo(), autocommit=True) as owner, \
                owner.transaction():
            insert_decisions(owner, [decision_row(d, r, source) for d, r in made])
            record_model_outcomes(owner, [d for d, _ in made], timedelta(hours=24))
            add_user(owner, RITA.username, RITA.role, PASSWORD, "test")
        yield settings


def _console_role_decides_one(settings: Settings) -> str:
    """Through the console's connection: claim the oldest item and decline it."""
    with review_connection(settings) as connection:
        oldest = queue.open_items(connection)[0].application_id
        queue.claim(connection, RITA, oldest)
        queue.decide(connection, RITA, oldest, "decline", "DC03", "debts too high")
    return oldest


@pytest.mark.parametrize("statement", [
    "UPDATE review_actions SET actor = 'rita', reason_text = 'rewritten'",
    "DELETE FROM review_actions",
    "UPDATE final_decisions SET final_decision = 'approve'",
    "DELETE FROM final_decisions",
])
def test_the_console_role_inserts_audit_rows_but_cannot_change_them(ledger: Settings,
                                                                    statement: str) -> None:
    decided = _console_role_decides_one(ledger)  # the inserts the console may do
    with console_connection(ledger) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("creditrisk_console",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(statement)
    with psycopg.connect(ledger.postgres_conninfo()) as owner:
        final = latest_final(owner, decided)
        actions = owner.execute("SELECT action, actor, reason_code, reason_text FROM "
                                "review_actions ORDER BY action_id").fetchall()
    assert final is not None and (final.final_decision, final.decided_by, final.reason_code) == (
        "decline", "rita", "DC03")
    assert actions == [("claim", "rita", None, ""), ("decide", "rita", "DC03", "debts too high")]


def test_console_sign_in_is_throttled_and_each_failure_recorded(ledger: Settings) -> None:
    check = ledger_sign_in(ledger.model_copy(update={"login_max_failures": 3,
                                                     "login_lockout_minutes": 10.0}))
    assert check("rita", PASSWORD).outcome == "signed_in"
    assert [check("rita", "not her password").outcome for _ in range(3)] == ["wrong"] * 3
    throttled = check("rita", PASSWORD)
    assert throttled.outcome == "throttled" and 0 < throttled.retry_after_s <= 600
    with psycopg.connect(ledger.postgres_conninfo()) as owner:
        rows = owner.execute("SELECT succeeded FROM login_attempts WHERE username = 'rita' "
                             "ORDER BY attempt_id").fetchall()
    assert [succeeded for (succeeded,) in rows] == [True, False, False, False]


def test_sign_in_without_the_ledger_says_what_to_do(live_stack: Settings) -> None:
    check = ledger_sign_in(live_stack.model_copy(update={"postgres_port": 9}))
    with pytest.raises(LedgerUnavailable, match="creditrisk stack status"):
        check("rita", PASSWORD)
