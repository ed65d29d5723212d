"""The console's sign-in (Streamlit AppTest, no servers): a session sees the sign-in form and
nothing else until a named user has signed in; what a failed sign-in says; the pages each
role opens; sign-in outcomes counted without names; the worker's token goes with every
typed-in application the console scores."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from console_session import ADMIN, APPROVER, REVIEWER, VIEWER, offline_settings, sign_in_as
from prometheus_client import generate_latest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from console import data, metrics
from console.data import ConsoleUnavailable
from console.ledger_access import LedgerUnavailable, unavailable_text
from console.views import VIEWS
from review.users import SignIn, User

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
PASSWORD = "console-password-for-tests"
OPENED = "the data source was asked"
REVIEW_PAGES = ["Review queue", "Overrides"]


class TripwireSource:
    """A data source that records every question and answers none: any call before sign-in
    would be data shown to someone who has not signed in."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def ask(*args: Any, **kwargs: Any) -> Any:
            self.asked.append(name)
            raise ConsoleUnavailable(OPENED)
        return ask


class FakeSignIn:
    """review.users.sign_in's answers without a database: one user, a password, and an
    outcome the test chooses for a right pair (signed in, throttled, disabled)."""

    def __init__(self, user: User = VIEWER, outcome: SignIn | None = None,
                 down: bool = False) -> None:
        self.user, self.outcome, self.down = user, outcome, down
        self.attempts: list[str] = []

    def __call__(self, username: str, password: str) -> SignIn:
        self.attempts.append(username)
        if self.down:
            raise LedgerUnavailable(unavailable_text(offline_settings(), "Signing in"))
        if self.outcome is not None:
            return self.outcome
        if username == self.user.username and password == PASSWORD:
            return SignIn("signed_in", self.user)
        return SignIn("wrong")


def _console(source: TripwireSource, check: FakeSignIn) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["data_source"] = source
    app.session_state["settings"] = offline_settings()
    app.session_state["sign_in"] = check
    app.run()
    assert not app.exception, app.exception
    return app


def _sign_in(app: AppTest, username: str, password: str) -> AppTest:
    app.text_input[0].set_value(username)
    app.text_input[1].set_value(password)
    app.button[0].click()
    app.run()
    assert not app.exception, app.exception
    return app


def _errors(app: AppTest) -> str:
    return "\n".join(str(item.value) for item in app.error)


def _pages(app: AppTest) -> list[str]:
    return list(app.sidebar.radio(key="view").options)


def test_before_sign_in_only_the_login_form_is_shown() -> None:
    source = TripwireSource()
    app = _console(source, FakeSignIn())
    assert source.asked == []
    assert [field.label for field in app.text_input] == ["User name", "Password"]
    assert not app.sidebar.radio and not app.error


def test_a_wrong_password_says_so_and_still_shows_nothing() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source, FakeSignIn()), VIEWER.username, "not-the-password")
    assert "Wrong user name or password" in _errors(app)
    assert "not-the-password" not in _errors(app)
    assert source.asked == [] and not app.sidebar.radio


def test_a_wrong_user_name_is_refused_with_the_same_words() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source, FakeSignIn()), "someone-else", PASSWORD)
    assert "Wrong user name or password" in _errors(app) and source.asked == []


def test_a_disabled_user_is_told_no_more_than_a_wrong_pair() -> None:
    app = _sign_in(_console(TripwireSource(), FakeSignIn(outcome=SignIn("disabled"))),
                   VIEWER.username, PASSWORD)
    assert "Wrong user name or password" in _errors(app)
    assert "disabled" not in _errors(app).lower() and not app.sidebar.radio


def test_a_throttled_user_is_told_when_to_try_again() -> None:
    check = FakeSignIn(outcome=SignIn("throttled", retry_after_s=14 * 60 + 5))
    app = _sign_in(_console(TripwireSource(), check), VIEWER.username, PASSWORD)
    assert "Too many failed sign-ins for this user; try again in 15 minutes" in _errors(app)
    assert not app.sidebar.radio


def test_signing_in_needs_the_ledger_and_says_so() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source, FakeSignIn(down=True)), VIEWER.username, PASSWORD)
    assert "Signing in needs the decision ledger" in _errors(app)
    assert "creditrisk stack status" in _errors(app)
    assert source.asked == [] and not app.sidebar.radio


def test_signing_in_opens_the_console_and_signing_out_closes_it() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source, FakeSignIn()), VIEWER.username, PASSWORD)
    assert source.asked and OPENED in _errors(app)  # past the gate: the views ask for data
    sidebar = "\n".join(str(item.value) for item in app.sidebar.markdown)
    assert "Vera Viewer" in sidebar and "viewer" in sidebar
    next(button for button in app.sidebar.button if button.label == "Sign out").click()
    app.run()
    assert [field.label for field in app.text_input] == ["User name", "Password"]
    assert not app.sidebar.radio


@pytest.mark.parametrize(("user", "pages"), [
    (VIEWER, [*VIEWS, "Challenger", "Fairness"]),
    (REVIEWER, [*VIEWS, "Challenger", "Fairness", *REVIEW_PAGES]),
    (APPROVER, [*VIEWS, "Challenger", "Fairness", *REVIEW_PAGES]),
    (ADMIN, [*VIEWS, "Challenger", "Fairness", *REVIEW_PAGES]),
], ids=["viewer", "reviewer", "approver", "admin"])
def test_each_role_sees_its_pages(user: User, pages: list[str]) -> None:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), user)
    app.session_state["data_source"] = TripwireSource()
    app.run()
    assert not app.exception, app.exception
    assert _pages(app) == pages


def test_a_link_to_a_page_beyond_the_users_role_opens_the_decision_instead() -> None:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), VIEWER)
    app.session_state["data_source"] = TripwireSource()
    app.query_params["application_id"] = "app-1"
    app.query_params["view"] = "Review queue"
    app.run()
    assert app.sidebar.radio(key="view").value == "Decision"


def test_the_review_pages_say_when_the_ledger_is_down() -> None:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), REVIEWER)
    app.session_state["data_source"] = TripwireSource()
    app.session_state["view"] = "Overrides"
    app.run()
    assert "Overrides needs the decision ledger" in _errors(app)
    assert "creditrisk stack status" in _errors(app)


def test_sign_ins_are_counted_by_outcome_without_names_or_passwords() -> None:
    def count(outcome: str) -> float:
        return metrics.REGISTRY.get_sample_value("creditrisk_console_sign_ins_total",
                                                 {"outcome": outcome}) or 0.0

    before = {outcome: count(outcome) for outcome in metrics.SIGN_IN_OUTCOMES}
    _sign_in(_console(TripwireSource(), FakeSignIn()), "typed-name-x", "typed-secret-y")
    _sign_in(_console(TripwireSource(), FakeSignIn()), VIEWER.username, PASSWORD)
    _sign_in(_console(TripwireSource(), FakeSignIn(down=True)), VIEWER.username, PASSWORD)
    assert count("wrong") == before["wrong"] + 1
    assert count("signed_in") == before["signed_in"] + 1
    assert count("unavailable") == before["unavailable"] + 1
    exposed = generate_latest(metrics.REGISTRY).decode()
    for typed in ("typed-name-x", "typed-secret-y", VIEWER.username, PASSWORD):
        assert typed not in exposed


@pytest.mark.parametrize(("status", "kind", "detail"), [
    (200, "unavailable", "not a decision"),   # reached the worker, with the header
    (401, "unavailable", "refused the console's credential"),
])
def test_the_console_sends_the_workers_token(status: int, kind: str, detail: str) -> None:
    headers: list[str | None] = []

    class Worker(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's method naming
            headers.append(self.headers.get("Authorization"))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(json.dumps({"error": "unauthorized"}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Worker)
    threading.Thread(target=server.handle_request, daemon=True).start()
    token = SecretStr("worker-token-0123456789")
    try:
        outcome = data.post_score(f"http://127.0.0.1:{server.server_port}", {"customer_id": "c1"},
                                  token)
    finally:
        server.server_close()
    assert headers == ["Bearer worker-token-0123456789"]
    assert outcome.kind == kind and detail in outcome.detail
    assert "worker-token-0123456789" not in outcome.detail
