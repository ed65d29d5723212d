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
