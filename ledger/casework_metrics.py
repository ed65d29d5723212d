"""The review queue, overrides, final decisions, their outbox and notices, as metrics.

The ledger writer reads these figures from PostgreSQL every few seconds
(:func:`refresh_casework_metrics`) and exports them as gauges: the book of record holds the
counts, so every writer shows the same figures and a restarted one does not start from
zero. Labels stay bounded: status, decision, the controlled reason codes and the console
users' names (staff) — never an application or a customer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import Gauge

from config.settings import Settings
from ledger.metrics import LedgerMetrics

if TYPE_CHECKING:
    from ledger.store import Ledger

DECIDED_BY = ("model", "reviewer", "override")
FINAL_OUTCOMES = ("approve", "decline")
OVERRIDE_ACTIONS = {"override_request": "request", "override_approve": "approve",
                    "override_reject": "reject"}

# Each application's current final decision (its highest revision) and who made it.
_CURRENT_FINALS = (
    "SELECT DISTINCT ON (application_id) final_id, application_id, decision_id, revision, "
    "decided_by, final_decision, decided_at FROM final_decisions "
    "ORDER BY application_id, revision DESC")
_QUEUE = "SELECT status, count(*) FROM review_items WHERE status IN ('open', 'claimed') GROUP BY status"
_QUEUE_AGE = (
    "SELECT coalesce(extract(epoch FROM now() - min(entered_at)), 0), "
    "(SELECT count(*) FROM review_items WHERE status IN ('open', 'claimed') AND due_at < now()) "
    "FROM review_items WHERE status = 'open'")
_REVIEW_DECISIONS = (
    "SELECT actor, to_decision, count(*) FROM review_actions WHERE action = 'decide' "
    "GROUP BY actor, to_decision")
_OVERRIDES = (
    "SELECT action, coalesce(reason_code, ''), actor, count(*) FROM review_actions "
    "WHERE action IN ('override_request', 'override_approve', 'override_reject') "
    "GROUP BY action, reason_code, actor")
_FINALS_BY_KIND = (
    "SELECT CASE WHEN revision > 1 THEN 'override' WHEN decided_by = 'model' THEN 'model' "
    "ELSE 'reviewer' END, final_decision, count(*) FROM (" + _CURRENT_FINALS + ") current "
    "GROUP BY 1, 2")
_OUTBOX = (
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(f.decided_at)), 0) "
    "FROM final_decisions f WHERE NOT EXISTS "
    "(SELECT 1 FROM final_decision_publications p WHERE p.final_id = f.final_id)")
# A final decline owes a notice; its clock runs from the application (the decision's
# submitted_at; the final decision's own time when the ledger has no decision row).
_NOTICES = (
    "SELECT count(*), count(*) FILTER (WHERE coalesce(d.submitted_at, c.decided_at) "
    "    < now() - make_interval(days => %s)) "
    "FROM (" + _CURRENT_FINALS + ") c LEFT JOIN decisions d ON d.decision_id = c.decision_id "
    "WHERE c.final_decision = 'decline' AND NOT EXISTS "
    "(SELECT 1 FROM adverse_action_notices n WHERE n.final_id = c.final_id)")
# Every console user, 0 included: a burst on a user with no earlier failure is still a
# change of an existing series, which the alert's window sees.
_FAILED_SIGN_INS = (
    "SELECT u.username, count(a.attempt_id) FROM console_users u LEFT JOIN login_attempts a "
    "ON a.username = u.username AND NOT a.succeeded GROUP BY u.username")


def refresh_casework_metrics(connection: Ledger, settings: Settings,
                             metrics: LedgerMetrics) -> None:
    """Read every casework figure from the ledger and set the metrics."""
    m = metrics
    queue = {str(status): float(str(count)) for status, count in _rows(connection, _QUEUE)}
    for status in ("open", "claimed"):
        m.review_queue_items.labels(status=status).set(queue.get(status, 0.0))
    oldest, past_due = _one(connection, _QUEUE_AGE)
    m.review_oldest_open_age.set(oldest)
    m.review_items_past_due.set(past_due)
    _replace(m.review_decisions, _counts(connection, _REVIEW_DECISIONS))
    overrides: dict[tuple[str, ...], float] = {
        (OVERRIDE_ACTIONS[str(action)], str(reason), str(actor)): float(str(count))
        for action, reason, actor, count in _rows(connection, _OVERRIDES)}
    _replace(m.override_actions, overrides)
    finals: dict[tuple[str, ...], float] = {(kind, outcome): 0.0 for kind in DECIDED_BY
                                            for outcome in FINAL_OUTCOMES}
    finals.update(_counts(connection, _FINALS_BY_KIND))
    _replace(m.final_decisions, finals)
    applications = sum(finals.values())
    approved = sum(value for labels, value in overrides.items() if labels[0] == "approve")
    m.override_rate.set(approved / applications if applications else 0.0)
    backlog, oldest_unpublished = _one(connection, _OUTBOX)
    m.finals_unpublished.set(backlog)
    m.finals_oldest_unpublished_age.set(oldest_unpublished)
    without, overdue = _one(connection, _NOTICES, (settings.notice_overdue_days,))
    m.declines_without_notice.set(without)
    m.declines_notice_overdue.set(overdue)
    _replace(m.console_failed_sign_ins, _counts(connection, _FAILED_SIGN_INS))
    m.casework_last_refresh.set(time.time())


def _rows(connection: Ledger, query: str,
          params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    return connection.execute(query, params).fetchall()


def _one(connection: Ledger, query: str, params: tuple[object, ...] = ()) -> tuple[float, float]:
    row = connection.execute(query, params).fetchone()
    if row is None:
        return 0.0, 0.0
    return float(str(row[0])), float(str(row[1]))


def _counts(connection: Ledger, query: str) -> dict[tuple[str, ...], float]:
    """``label values → count`` of a query whose last column is the count."""
    return {tuple(str(value) for value in row[:-1]): float(str(row[-1]))
            for row in _rows(connection, query)}


def _replace(gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
    """Set every labelled value, and drop the label sets the ledger no longer has."""
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    # prometheus_client has no public listing of a metric's label sets.
    stale = [tuple(labels) for labels in gauge._metrics if tuple(labels) not in values]
    for labels in stale:
        gauge.remove(*labels)
