"""The console's sign-in: every session signs in as a named user (``creditrisk users add``)
and sees nothing but the sign-in form before.

The user name and password are checked by :func:`review.users.sign_in` on the console's own
ledger role: throttled per user name, every attempt on a known name recorded. What a person
is told never says which of the two was wrong, nor that an account is disabled. Neither
what was typed nor a hash reaches a log line or a metric; the log names a user only once
the sign-in has succeeded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta

import streamlit as st

from config.settings import Settings
from console import metrics
from console.ledger_access import LedgerUnavailable, console_connection
from review.users import SignIn, User, sign_in

log = logging.getLogger("creditrisk.console")

USER = "user"           # session key of the signed-in review.users.User
SIGN_IN = "sign_in"     # session key of the sign-in check (a test may put its own)
WRONG = ("Wrong user name or password. Ask the console's administrator if you have forgotten "
         "them (`creditrisk users list`).")

SignInCheck = Callable[[str, str], SignIn]


def ledger_sign_in(settings: Settings) -> SignInCheck:
    """The real check: :func:`review.users.sign_in` on the console's ledger role, the
    attempt committed (so a failure counts towards the throttle)."""
    def check(username: str, password: str) -> SignIn:
        with console_connection(settings, "Signing in") as connection:
            return sign_in(connection, username, password, settings.login_max_failures,
                           timedelta(minutes=settings.login_lockout_minutes))
    return check


def signed_in_user(settings: Settings) -> User | None:
    """The session's user; otherwise draws the sign-in form and returns None, having shown no
    data."""
    user = st.session_state.get(USER)
    if isinstance(user, User):
        return user
    st.title("Credit decisions console")
    with st.form("login"):
        username = st.text_input("User name")
        typed = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        check: SignInCheck = st.session_state.get(SIGN_IN) or ledger_sign_in(settings)
        outcome = _attempt(check, username.strip(), typed)
        if outcome is not None and outcome.user is not None:
            st.session_state[USER] = outcome.user
            st.rerun()
    return None


def _attempt(check: SignInCheck, username: str, password: str) -> SignIn | None:
    """One sign-in attempt: the outcome, with its message shown when it failed."""
    try:
        outcome = check(username, password)
    except LedgerUnavailable as error:
        metrics.signed_in("unavailable")
        log.warning("console sign-in not possible: the ledger does not answer")
        st.error(str(error))
        return None
    metrics.signed_in(outcome.outcome)
    if outcome.outcome == "signed_in" and outcome.user is not None:
        log.info("console sign-in: %s (%s)", outcome.user.username, outcome.user.role)
    elif outcome.outcome == "throttled":
        minutes = max(1, math.ceil(outcome.retry_after_s / 60))
        log.warning("console sign-in refused: too many failed attempts for one user name")
        st.error(f"Too many failed sign-ins for this user; try again in {minutes} "
                 f"minute{'' if minutes == 1 else 's'}.")
    else:  # wrong or disabled: a disabled account is not revealed
        log.warning("console sign-in refused: wrong user name or password")
        st.error(WRONG)
    return outcome


def sign_out_button(user: User) -> None:
    """In the sidebar: who is signed in, with which role, and the way out."""
    st.sidebar.markdown(f"Signed in as **{user.display_name}** ({user.username}) · "
                        f"role **{user.role}**")
    if st.sidebar.button("Sign out"):
        log.info("console sign-out: %s", user.username)
        for key in list(st.session_state.keys()):
            if key not in ("settings", "data_source", SIGN_IN):
                del st.session_state[key]
        st.rerun()
