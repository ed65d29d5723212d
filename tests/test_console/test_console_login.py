"""The console's login gate (Streamlit AppTest, no servers): with a password configured, a
session sees the login form and nothing else until it signs in; the worker's token goes with
every typed-in application it scores."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from config.settings import Settings
from console import data
from console.data import ConsoleUnavailable

# Run the page as `creditrisk console` does, bound to 127.0.0.1 (tests/test_stream/conftest.py).
pytestmark = pytest.mark.usefixtures("console_on_loopback")


APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
PASSWORD = "console-password-for-tests"
OPENED = "the data source was asked"


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


def _console(source: TripwireSource, password: str | None = PASSWORD) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["data_source"] = source
    app.session_state["settings"] = Settings(
        console_password=SecretStr(password) if password else None)
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


def test_before_sign_in_only_the_login_form_is_shown() -> None:
    source = TripwireSource()
    app = _console(source)
    assert source.asked == []
    assert [field.label for field in app.text_input] == ["User name", "Password"]
    assert not app.sidebar.radio and not app.error


def test_a_wrong_password_says_so_and_still_shows_nothing() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source), "creditrisk", "not-the-password")
    assert "Wrong user name or password" in _errors(app)
    assert "not-the-password" not in _errors(app)
    assert source.asked == [] and not app.sidebar.radio


def test_a_wrong_user_name_is_refused_too() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source), "someone-else", PASSWORD)
    assert "Wrong user name or password" in _errors(app) and source.asked == []


def test_signing_in_opens_the_console_and_signing_out_closes_it() -> None:
    source = TripwireSource()
    app = _sign_in(_console(source), "creditrisk", PASSWORD)
    assert source.asked and OPENED in _errors(app)  # past the gate: the views ask for data
    assert app.sidebar.radio
    next(button for button in app.sidebar.button if button.label == "Sign out").click()
    app.run()
    assert [field.label for field in app.text_input] == ["User name", "Password"]


def test_without_a_password_on_loopback_there_is_no_login() -> None:
    source = TripwireSource()
    app = _console(source, password=None)
    assert source.asked and app.sidebar.radio


@pytest.fixture(params=["0.0.0.0", ""], ids=["wildcard", "no-address"])
def bound_beyond_loopback(request: pytest.FixtureRequest, console_on_loopback: None):
    """Streamlit bound to every interface: by 0.0.0.0, or by giving it no address at all."""
    before = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", request.param)
    yield
    streamlit_config.set_option("server.address", before)


@pytest.mark.usefixtures("bound_beyond_loopback")
def test_streamlit_bound_beyond_loopback_without_a_password_shows_nothing() -> None:
    source = TripwireSource()
    app = _console(source, password=None)
    assert "CREDITRISK_CONSOLE_PASSWORD is not set" in _errors(app)
    assert source.asked == [] and not app.sidebar.radio and not app.text_input


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
