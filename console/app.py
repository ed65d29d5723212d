"""The console's Streamlit entry script:
``creditrisk console``, or ``streamlit run console/app.py --server.address 127.0.0.1
--server.port 8501 --server.headless true`` (with no address Streamlit listens on every
interface, and the page then opens only with a console password).

Data comes from ``st.session_state["data_source"]`` when a test put one there, otherwise
from Redis, the model registry and the worker named by the ``CREDITRISK_*`` settings. With
``CREDITRISK_CONSOLE_PASSWORD`` set, a session signs in first (``console/login.py``).
"""

from __future__ import annotations

import logging

import streamlit as st

from config.settings import Settings
from console import login, views
from console.data import ConsoleUnavailable, DataSource

log = logging.getLogger("creditrisk.console")

RENDERERS = {
    "Find": views.render_find,
    "Decision": views.render_decision,
    "Profile": views.render_profile,
    "Compare": views.render_compare,
    "New application": views.render_new_application,
    "Model performance": views.render_model_performance,
}


def console_settings() -> Settings:
    """The ``CREDITRISK_*`` settings, read once per session (a test may put its own)."""
    settings = st.session_state.get("settings")
    if settings is None:
        settings = st.session_state["settings"] = Settings()
    return settings


def data_source() -> DataSource:
    source = st.session_state.get("data_source")
    if source is None:
        from console.data import RedisDataSource

        source = RedisDataSource(console_settings())
        st.session_state["data_source"] = source
    return source


def open_linked_application() -> None:
    """A link such as ``/?application_id=A&view=Compare`` opens that application once."""
    if st.session_state.get("link_opened"):
        return
    st.session_state["link_opened"] = True
    linked = st.query_params.get("application_id")
    if linked:
        st.session_state["application_id"] = linked
        wanted = st.query_params.get("view", "Decision")
        st.session_state["pending_view"] = wanted if wanted in views.VIEWS else "Decision"


def navigation() -> str:
    open_linked_application()
    pending = st.session_state.pop("pending_view", None)
    if pending is not None:
        st.session_state["view"] = pending
    st.sidebar.title("Credit decisions")
    view = st.sidebar.radio("View", views.VIEWS, key="view")
    selected = st.session_state.get("application_id")
    st.sidebar.caption(f"Selected application: {selected}" if selected
                       else "No application selected")
    return str(view)


def main() -> None:
    st.set_page_config(page_title="Credit decisions console", layout="wide")
    if not login.signed_in(console_settings()):
        return  # the login form (or the refusal) and nothing else
    view = navigation()
    login.sign_out_button()
    try:
        RENDERERS[view](data_source())
    except ConsoleUnavailable as error:
        st.error(str(error))
    except Exception as error:  # a user must never see a stack trace
        # (st.rerun / st.stop raise BaseException subclasses, so they pass through)
        log.exception("console view %s failed", view)
        st.error(f"This view could not be shown ({type(error).__name__}). Reload the page; "
                 "if it happens again, check that Redis, the model registry and the worker "
                 "are up (`creditrisk stack status`).")


main()
