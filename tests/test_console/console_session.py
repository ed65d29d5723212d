"""A signed-in console session for AppTest: the user in ``st.session_state["user"]`` (as
the sign-in form leaves it) and settings whose ledger answers nowhere, so a unit test never
reaches a server."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from config.settings import Settings
from review.users import User

VIEWER = User("vera", "Vera Viewer", "viewer")
REVIEWER = User("rita", "Rita Reviewer", "reviewer")
APPROVER = User("alan", "Alan Approver", "approver")
ADMIN = User("ada", "Ada Admin", "admin")


def offline_settings() -> Settings:
    """Nothing listens on port 9 of loopback: the ledger is down, at once."""
    return Settings(postgres_host="127.0.0.1", postgres_port=9, console_metrics_port=0)


def sign_in_as(app: AppTest, user: User = VIEWER, settings: Settings | None = None) -> AppTest:
    app.session_state["user"] = user
    app.session_state["settings"] = settings or offline_settings()
    return app
