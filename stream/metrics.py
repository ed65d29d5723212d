"""Prometheus metrics of the scoring worker (DESIGN.md names, prefix ``creditrisk_``).

Base units, ``_total`` counters, histograms for latencies and distributions. Every label
has a bounded set of values: decisions, rejection codes, dependency names, partitions,
drift feature names, the live model version (old versions' series are removed on switch)
and the challengers' versions (at most two at a time; a cleared one's series are removed),
and the fairness series' attributes and groups (the model card declares them, plus
``unknown``; never an applicant's value; see :mod:`stream.fairness`).
The feature store's own metrics live in ``features/metrics.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PIPELINE_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SCORING_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
PD_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)
SCORE_BUCKETS = (450, 500, 525, 550, 575, 600, 625, 650, 675, 700, 750, 800)


class WorkerMetrics:
    """The worker's metrics on one registry (the default one in production)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events_consumed = Counter(
            "creditrisk_events_consumed_total", "Application events taken from Kafka.",
            registry=registry)
        self.unknown_fields = Counter(
            "creditrisk_event_unknown_fields_total",
            "Extra fields in valid events, ignored (the contract allows them).", registry=registry)
        self.decisions = Counter(
            "creditrisk_decisions_total", "Decisions published, by outcome and model version.",
            ["decision", "model_version"], registry=registry)
        self.score_requests_refused = Counter(
            "creditrisk_score_requests_refused_total",
            "POST /score requests answered 429: more were waiting than score_queue_max.",
            registry=registry)
        self.score_requests_unauthorized = Counter(
            "creditrisk_score_requests_unauthorized_total",
            "POST /score requests answered 401, by reason: missing, malformed or wrong "
            "credential (never the value presented).", ["reason"], registry=registry)
        self.replayed_decisions = Counter(
            "creditrisk_decisions_replayed_total",
            "Applications seen again for the same model version: the stored decision was "
            "published again unchanged.", registry=registry)
        self.missing_bureau = Counter(
            "creditrisk_decisions_missing_bureau_total",
            "Decisions made without fresh bureau data (never approved).", registry=registry)
        self.dead_letters = Counter(
            "creditrisk_dead_letters_total", "Events sent to the dead-letter topic, by reason.",
            ["reason"], registry=registry)
        self.end_to_end_latency = Histogram(
            "creditrisk_end_to_end_latency_seconds",
            "From the application's submitted_at to its decision.",
            buckets=PIPELINE_LATENCY_BUCKETS_S, registry=registry)
        self.scoring_latency = Histogram(
            "creditrisk_scoring_latency_seconds",
            "Model inputs to verdicts for one batch (ONNX, policy, reasons).",
            buckets=SCORING_BUCKETS_S, registry=registry)
        self.batch_latency = Histogram(
            "creditrisk_batch_processing_seconds",
            "One micro-batch from validation to delivered decisions.",
            buckets=PIPELINE_LATENCY_BUCKETS_S, registry=registry)
        self.batch_size = Histogram(
            "creditrisk_batch_size", "Events per micro-batch.",
            buckets=BATCH_SIZE_BUCKETS, registry=registry)
        self.probability_of_default = Histogram(
            "creditrisk_probability_of_default", "Calibrated PD of scored applications.",
            buckets=PD_BUCKETS, registry=registry)
        self.score = Histogram(
            "creditrisk_score_points", "Score points of scored applications.",
            buckets=SCORE_BUCKETS, registry=registry)
        self.drift_psi = Gauge(
            "creditrisk_drift_psi",
            "Population stability index of the recent window vs the model's training "
            "reference, for the score and key features.", ["feature"], registry=registry)
        self.model_info = Gauge(
            "creditrisk_model_info", "The live model: 1 for the version being served.",
            ["model_version", "policy_version"], registry=registry)
        self.model_reloads = Counter(
            "creditrisk_model_reloads_total", "Model switches attempted, by outcome.",
            ["outcome"], registry=registry)
        self.retries = Counter(
            "creditrisk_batch_retries_total",
            "Batches retried because a dependency failed (nothing was acknowledged).",
            ["dependency"], registry=registry)
        self.dependency_up = Gauge(
            "creditrisk_dependency_up",
            "1 while the dependency answers the worker's batches, 0 from the first failed "
            "attempt until a batch gets through again.", ["dependency"], registry=registry)
        self.consumer_lag = Gauge(
            "creditrisk_consumer_lag_messages",
            "Events in the input topic not yet processed, per partition.",
            ["partition"], registry=registry)
        self.last_batch_timestamp = Gauge(
            "creditrisk_last_batch_timestamp_seconds",
            "Unix time the last batch was fully processed.", registry=registry)

        self.shadow_decisions = Counter(
            "creditrisk_shadow_decisions_total",
            "Challengers' decisions published to the shadow topic, by challenger version.",
            ["model_version"], registry=registry)
        self.challenger_agreement = Counter(
            "creditrisk_challenger_agreement_total",
            "Shadowed applications by whether the challenger's decision equals the champion's.",
            ["model_version", "agreed"], registry=registry)
        self.challenger_swaps = Counter(
            "creditrisk_challenger_swaps_total",
            "Shadowed applications by the champion's and the challenger's decision (the 3x3 "
            "swap matrix).", ["model_version", "champion", "challenger"], registry=registry)
        self.challenger_score = Histogram(
            "creditrisk_challenger_score_points",
            "Score points of the challenger's shadow decisions.", ["model_version"],
            buckets=SCORE_BUCKETS, registry=registry)
        self.challenger_champion_score = Histogram(
            "creditrisk_challenger_champion_score_points",
            "Score points of the champion on the applications the challenger shadowed.",
            ["model_version"], buckets=SCORE_BUCKETS, registry=registry)
        self.challenger_psi = Gauge(
            "creditrisk_challenger_psi",
            "Population stability index of the challenger's scores against the champion's on "
            "the same recent applications.", ["model_version"], registry=registry)
        self.challenger_batch_seconds = Histogram(
            "creditrisk_challenger_batch_seconds",
            "Time a batch spent on one challenger (read of replays, encode, score, decide, "
            "publish), after the champion's decisions were delivered.", ["model_version"],
            buckets=PIPELINE_LATENCY_BUCKETS_S, registry=registry)
        self.challenger_failures = Counter(
            "creditrisk_challenger_failures_total",
            "Challenger failures (never the champion's): a refused load, or events a stage "
            "failed for.", ["model_version", "stage"], registry=registry)
        self.challenger_up = Gauge(
            "creditrisk_challenger_up",
            "1 while the challenger shadows, 0 while it is failed (refused or broken).",
            ["model_version"], registry=registry)

        self.fairness_decisions = Counter(
            "creditrisk_fairness_decisions_total",
            "New champion decisions by monitored attribute, the applicant's group (declared "
            "groups or unknown) and outcome.", ["attribute", "group", "decision"],
            registry=registry)
        self.fairness_group_decisions = Gauge(
            "creditrisk_fairness_group_decisions",
            "Champion decisions of the group in the window (1h, 24h), every declared group and "
            "unknown; this worker process's share of the partitions.",
            ["attribute", "group", "window"], registry=registry)
        self.fairness_approval_rate = Gauge(
            "creditrisk_fairness_approval_rate",
            "Approval rate of the group in the window with its Wilson interval (bound: "
            "estimate, low, high); only for groups judged (at least the minimum size, and "
            "the reference too).", ["attribute", "group", "window", "bound"], registry=registry)
        self.fairness_adverse_impact_ratio = Gauge(
            "creditrisk_fairness_adverse_impact_ratio",
            "Approval rate of the group over the reference group's in the window, with its "
            "Katz interval (bound: estimate, low, high); only for judged groups other than "
            "the reference. Below 0.8 at the high bound: adverse impact.",
            ["attribute", "group", "window", "bound"], registry=registry)
        self.fairness_parity_difference = Gauge(
            "creditrisk_fairness_parity_difference",
            "Approval rate of the group minus the reference group's in the window, with its "
            "Newcombe interval (bound: estimate, low, high); only for judged groups other "
            "than the reference.", ["attribute", "group", "window", "bound"],
            registry=registry)
        self.fairness_min_group_size = OptionalGauge(
            "creditrisk_fairness_min_group_size",
            "Decisions a group and its reference need in a window before they are judged (the "
            "live model card's value); absent when the model monitors nothing.", registry)

    def forget_challenger(self, version: str) -> None:
        """Remove the gauges of a challenger that is no longer set."""
        for gauge in (self.challenger_psi, self.challenger_up):
            try:
                gauge.remove(version)
            except KeyError:
                continue

    def set_live_model(self, version: str, policy_version: str) -> None:
        """Exactly one model_info series: the version being served."""
        self.model_info.clear()
        self.model_info.labels(model_version=version, policy_version=policy_version).set(1)


class OptionalGauge(Collector):
    """A gauge without labels that is absent until set (a plain ``Gauge`` without labels is
    exported at 0 from its creation): for a value that exists only in some configurations."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.value: float | None = None
        registry.register(self)

    def set(self, value: float) -> None:
        self.value = float(value)

    def unset(self) -> None:
        self.value = None

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        if self.value is None:
            return []
        return [GaugeMetricFamily(self.name, self.documentation, value=self.value)]
