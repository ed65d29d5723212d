"""The ledger writer's Prometheus metrics (own registry; bounded labels, never an id)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class LedgerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("creditrisk_ledger_messages_total",
                                "Messages read by the ledger writer, by stream", ["stream"], registry=r)
        self.rows_written = Counter("creditrisk_ledger_rows_written_total",
                                    "Rows inserted or updated in the ledger, by table", ["table"],
                                    registry=r)
        self.duplicates = Counter("creditrisk_ledger_duplicate_decisions_total",
                                  "Decisions already in the ledger (redeliveries and replays)",
                                  registry=r)
        self.lineage_missing = Counter("creditrisk_ledger_lineage_missing_total",
                                       "Decisions stored without lineage (the worker's record was "
                                       "gone from Redis)", registry=r)
        self.errors = Counter("creditrisk_ledger_errors_total",
                              "Ledger writer errors, by kind", ["kind"], registry=r)
        self.lag = Gauge("creditrisk_ledger_lag_messages",
                         "Messages not yet written, by stream", ["stream"], registry=r)
        self.write_seconds = Histogram("creditrisk_ledger_write_seconds",
                                       "Time to write one batch (Redis lineage read + transaction)",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                       registry=r)
        self.last_write = Gauge("creditrisk_ledger_last_write_timestamp_seconds",
                                "When the last batch was committed", registry=r)
        self.rows = Gauge("creditrisk_ledger_rows", "Rows in the ledger, by table", ["table"], registry=r)
        # back-test of matured decisions, per model version
        self.backtest_auc = Gauge("creditrisk_backtest_auc",
                                  "Realised AUC on matured decisions", ["model_version"], registry=r)
        self.backtest_reference_auc = Gauge(
            "creditrisk_backtest_reference_auc", "AUC the model card promised (its test set)",
            ["model_version"], registry=r)
        self.backtest_ks = Gauge("creditrisk_backtest_ks", "Realised KS on matured decisions",
                                 ["model_version"], registry=r)
        self.backtest_calibration_error = Gauge(
            "creditrisk_backtest_calibration_error",
            "Expected calibration error: mean |predicted PD − observed bad rate| over PD deciles",
            ["model_version"], registry=r)
        self.backtest_predicted_pd = Gauge("creditrisk_backtest_predicted_pd",
                                           "Mean predicted PD of matured decisions",
                                           ["model_version"], registry=r)
        self.backtest_bad_rate = Gauge("creditrisk_backtest_bad_rate",
                                       "Observed bad rate of matured decisions, by risk grade "
                                       "(grade=\"all\" for every grade)", ["model_version", "risk_grade"],
                                       registry=r)
        self.backtest_matured = Gauge("creditrisk_backtest_matured_decisions",
                                      "Decisions whose loan has a known good or bad outcome",
                                      ["model_version"], registry=r)
        self.backtest_interval = Gauge(
            "creditrisk_backtest_interval",
            "95 % confidence bound of a back-test figure (metric: auc, ks, calibration_error or "
            "reference_auc; bound: low or high); the count it rests on is "
            "creditrisk_backtest_matured_decisions (the card's test count for reference_auc)",
            ["model_version", "metric", "bound"], registry=r)
        self.backtest_last_run = Gauge("creditrisk_backtest_last_run_timestamp_seconds",
                                       "When the back-test was last computed", registry=r)
        self._casework(r)

    def _casework(self, r: CollectorRegistry) -> None:
        """Review queue, overrides, final decisions, their outbox and notices. The counts are
        read from PostgreSQL (``ledger.casework_metrics``), so they are gauges: the ledger
        holds the totals, and a restarted writer shows them as they are, not from zero."""
        self.review_queue_items = Gauge("creditrisk_review_queue_items",
                                        "Review items waiting, by status (open or claimed)",
                                        ["status"], registry=r)
        self.review_oldest_open_age = Gauge(
            "creditrisk_review_oldest_open_age_seconds",
            "Age of the oldest open review item (0 when none is open)", registry=r)
        self.review_items_past_due = Gauge(
            "creditrisk_review_items_past_due",
            "Open or claimed review items past their due time (the service level)", registry=r)
        self.review_decisions = Gauge(
            "creditrisk_review_decisions",
            "Review decisions in the ledger, by reviewer (console user name) and decision",
            ["reviewer", "decision"], registry=r)
        self.override_actions = Gauge(
            "creditrisk_override_actions",
            "Override requests, approvals and rejections in the ledger (action: request, "
            "approve or reject), by the request's reason code and the user who acted",
            ["action", "reason_code", "user"], registry=r)
        self.override_rate = Gauge(
            "creditrisk_override_rate",
            "Approved overrides ÷ applications with a final decision", registry=r)
        self.final_decisions = Gauge(
            "creditrisk_final_decisions",
            "Applications by their current final decision and who made it (decided_by: "
            "model, reviewer or override)", ["decided_by", "decision"], registry=r)
        self.finals_unpublished = Gauge(
            "creditrisk_final_decisions_unpublished",
            "Final decisions not yet on loan-final-decisions (the outbox backlog)", registry=r)
        self.finals_oldest_unpublished_age = Gauge(
            "creditrisk_final_decisions_oldest_unpublished_age_seconds",
            "Time since the oldest unpublished final decision was decided (0 when none waits)",
            registry=r)
        self.finals_published = Counter(
            "creditrisk_final_decisions_published",
            "Final decisions this writer published to loan-final-decisions", registry=r)
        self.declines_without_notice = Gauge(
            "creditrisk_final_declines_without_notice",
            "Applications whose final decision is a decline with no adverse-action notice yet",
            registry=r)
        self.declines_notice_overdue = Gauge(
            "creditrisk_final_declines_notice_overdue",
            "Final declines without a notice more than CREDITRISK_NOTICE_OVERDUE_DAYS after "
            "their application was submitted", registry=r)
        self.notices_produced = Counter(
            "creditrisk_adverse_action_notices_produced",
            "Adverse-action notices this writer produced", registry=r)
        self.console_failed_sign_ins = Gauge(
            "creditrisk_console_failed_sign_ins",
            "Failed console sign-ins recorded in the ledger, by user name (a count that only "
            "the retention purge lowers; use delta() over a window)", ["username"], registry=r)
        self.casework_last_refresh = Gauge(
            "creditrisk_casework_last_refresh_timestamp_seconds",
            "When the review, override, outbox and notice figures were last read", registry=r)
