"""The console's Streamlit entry script:
``creditrisk console``, or ``streamlit run console/app.py --server.address 127.0.0.1
--server.port 8501 --server.headless true``.

Every session signs in as a named user first (``console/login.py``); the pages shown follow
the user's role: a viewer reads decisions, a reviewer also works the review queue and asks
for overrides, an approver also approves other people's overrides.

Data comes from ``st.session_state["data_source"]`` when a test put one there, otherwise
from Redis, the model registry and the worker named by the ``CREDITRISK_*`` settings; the
review pages and sign-in use the ledger as the console's own role.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from config.settings import Settings
from console import challenger_view, fairness_view, login, metrics, review_views, views
from console.data import ConsoleUnavailable, DataSource
from review.users import User

log = logging.getLogger("creditrisk.console")

RENDERERS: dict[str, Callable[[DataSource], None]] = {
    "Find": views.render_find,
    "Decision": views.render_decision,
    "Profile": views.render_profile,
    "Compare": views.render_compare,
    "New application": views.render_new_application,
    "Model performance": views.render_model_performance,
}
REVIEW_PAGES = ("Review queue", "Overrides")


def log_to_stderr() -> None:
    """The console's own log lines (sign-ins, review actions) at INFO on stderr, set up once
    per process (Streamlit configures only its own loggers)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


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


def pages_for(user: User) -> tuple[str, ...]:
    """The pages a user's role opens (approving overrides is within Overrides); every role
    reads the Challenger and Fairness pages."""
    pages = (*views.VIEWS, challenger_view.PAGE, fairness_view.PAGE)
    return pages + REVIEW_PAGES if user.may("reviewer") else pages


def open_linked_application(pages: tuple[str, ...]) -> None:
    """A link such as ``/?application_id=A&view=Compare`` opens that application once."""
    if st.session_state.get("link_opened"):
        return
    st.session_state["link_opened"] = True
    linked = st.query_params.get("application_id")
    if linked:
        st.session_state["application_id"] = linked
        wanted = st.query_params.get("view", "Decision")
        st.session_state["pending_view"] = wanted if wanted in pages else "Decision"


def navigation(user: User) -> str:
    pages = pages_for(user)
    open_linked_application(pages)
    pending = st.session_state.pop("pending_view", None)
    if pending is not None:
        st.session_state["view"] = pending
    if st.session_state.get("view") not in pages:
        st.session_state.pop("view", None)
    st.sidebar.title("Credit decisions")
    view = st.sidebar.radio("View", pages, key="view")
    selected = st.session_state.get("application_id")
    st.sidebar.caption(f"Selected application: {selected}" if selected
                       else "No application selected")
    return str(view)


def render(view: str, settings: Settings, user: User) -> None:
    if view == "Review queue":
        review_views.render_review_queue(data_source(), settings, user)
    elif view == "Overrides":
        review_views.render_overrides(settings, user)
    elif view == challenger_view.PAGE:
        challenger_view.render_challenger(challenger_view.challenger_source(settings))
    elif view == fairness_view.PAGE:
        fairness_view.render_fairness(fairness_view.fairness_source(settings))
    else:
        RENDERERS[view](data_source())
        if view == "Decision":
            review_views.render_final_decision(settings, user,
                                               st.session_state.get("application_id"))


def main() -> None:
    st.set_page_config(page_title="Credit decisions console", layout="wide")
    log_to_stderr()
    settings = console_settings()
    metrics.serve(settings)
    user = login.signed_in_user(settings)
    if user is None:
        return  # the sign-in form and nothing else
    view = navigation(user)
    login.sign_out_button(user)
    try:
        render(view, settings, user)
    except ConsoleUnavailable as error:
        st.error(str(error))
    except Exception as error:  # a user must never see a stack trace
        # (st.rerun / st.stop raise BaseException subclasses, so they pass through)
        log.exception("console view %s failed", view)
        st.error(f"This view could not be shown ({type(error).__name__}). Reload the page; "
                 "if it happens again, check that Redis, PostgreSQL, the model registry and the "
                 "worker are up (`creditrisk stack status`).")


main()
