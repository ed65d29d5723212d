"""The console's Prometheus metrics, served on ``CREDITRISK_CONSOLE_METRICS_PORT``.

Streamlit runs the page script again on every interaction, but this module is imported
once per process, so the counters and the HTTP server exist once. Labels are bounded: a
sign-in's outcome and a review action's name, never a user name typed at sign-in, never a
password or its hash.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, start_http_server

from config.settings import Settings

log = logging.getLogger("creditrisk.console")

SignInMetric = Literal["signed_in", "wrong", "throttled", "disabled", "unavailable"]
SIGN_IN_OUTCOMES: tuple[SignInMetric, ...] = ("signed_in", "wrong", "throttled", "disabled",
                                              "unavailable")
REVIEW_ACTIONS: tuple[str, ...] = ("claim", "release", "decide", "override_request",
                                   "override_approve", "override_reject", "notice")

REGISTRY = CollectorRegistry()
SIGN_INS = Counter("creditrisk_console_sign_ins", "Console sign-in attempts by outcome",
                   ["outcome"], registry=REGISTRY)
ACTIONS = Counter("creditrisk_console_review_actions",
                  "Review queue, override and notice actions done in the console",
                  ["action"], registry=REGISTRY)
REFUSALS = Counter("creditrisk_console_review_refusals",
                   "Review queue and override actions the console refused (nothing changed)",
                   ["action"], registry=REGISTRY)
for _outcome in SIGN_IN_OUTCOMES:
    SIGN_INS.labels(outcome=_outcome)
for _action in REVIEW_ACTIONS:
    ACTIONS.labels(action=_action)
    REFUSALS.labels(action=_action)

_lock = threading.Lock()
_serving: list[int] = []  # the port served, once per process


def serve(settings: Settings) -> None:
    """Start ``/metrics`` on the console's host and metrics port, once per process; a port
    already taken is a warning, not a reason to stop the console. Port 0 serves nothing."""
    with _lock:
        if _serving or settings.console_metrics_port == 0:
            return
        _serving.append(settings.console_metrics_port)
        try:
            start_http_server(settings.console_metrics_port, addr=settings.console_host,
                              registry=REGISTRY)
        except OSError as error:
            log.warning("the console's metrics cannot be served on %s:%s (%s); the console runs "
                        "without /metrics (set CREDITRISK_CONSOLE_METRICS_PORT to a free port)",
                        settings.console_host, settings.console_metrics_port, error.strerror)
            return
        log.info("console metrics on http://%s:%s/metrics", settings.console_host,
                 settings.console_metrics_port)


def signed_in(outcome: SignInMetric) -> None:
    SIGN_INS.labels(outcome=outcome).inc()


def acted(action: str) -> None:
    ACTIONS.labels(action=action).inc()


def refused(action: str) -> None:
    REFUSALS.labels(action=action).inc()
