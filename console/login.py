"""The console's login gate: with ``CREDITRISK_CONSOLE_PASSWORD`` set, a session sees nothing
but the login form until it has signed in.

The console holds decisions and customer profiles, so beyond loopback it never runs open:
``creditrisk console`` refuses to start there without a password, and the page itself
refuses to show anything when Streamlit binds such an address with no password configured.
The name and password are compared in constant time; a failed attempt says only that the
pair was wrong and is logged without what was typed.
"""

from __future__ import annotations

import logging

import streamlit as st
from pydantic import SecretStr

from config.settings import Settings
from stream.http_auth import CredentialRequired, require_credential_beyond_loopback, secrets_match

log = logging.getLogger("creditrisk.console")

SIGNED_IN = "signed_in_as"


def signed_in(settings: Settings) -> bool:
    """True when the session may see the console; otherwise draws the gate (login form or
    refusal) and returns False, having shown no data."""
    if _refused_beyond_loopback(settings):
        return False
    password = settings.console_password
    if password is None or st.session_state.get(SIGNED_IN):
        return True
    st.title("Credit decisions console")
    with st.form("login"):
        username = st.text_input("User name", value=settings.console_username)
        typed = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        # Both compared, always: the time taken says nothing about which one was wrong.
        name_ok = secrets_match(username, SecretStr(settings.console_username))
        password_ok = secrets_match(typed, password)
        if name_ok and password_ok:
            st.session_state[SIGNED_IN] = username
            st.rerun()
        log.warning("console sign-in refused: wrong user name or password")
        st.error("Wrong user name or password. Ask the console's administrator if you have "
                 "forgotten them (CREDITRISK_CONSOLE_USERNAME / CREDITRISK_CONSOLE_PASSWORD).")
    return False


def sign_out_button() -> None:
    """In the sidebar, for a signed-in session."""
    if st.session_state.get(SIGNED_IN) and st.sidebar.button("Sign out"):
        del st.session_state[SIGNED_IN]
        st.rerun()


def _refused_beyond_loopback(settings: Settings) -> bool:
    """Streamlit started by hand on an address beyond loopback, with no password: refuse.
    (``creditrisk console`` already refuses to start so.) Without ``--server.address``
    Streamlit listens on every interface, so that counts as beyond loopback too."""
    address = st.get_option("server.address") or "every interface (no --server.address given)"
    try:
        require_credential_beyond_loopback(address, settings.console_password,
                                           "CREDITRISK_CONSOLE_PASSWORD", "console")
    except CredentialRequired as error:
        st.error(f"The console does not open: {error}")
        return True
    return False
