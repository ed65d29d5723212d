"""Prometheus metrics of the feature store (names per DESIGN.md, prefix ``creditrisk_``).

Labels are bounded: view names, outcomes and feature names come from the view
declarations, never from data.
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

# Bureau values are days to months old; velocity values seconds to days.
AGE_BUCKETS_S = (60, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, 45 * 86400, 90 * 86400,
                 180 * 86400, 365 * 86400, float("inf"))
REDIS_LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     float("inf"))


class FeatureStoreMetrics:
    """The store's metrics, registered once per registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.read_seconds = Histogram(
            "creditrisk_feature_store_read_seconds",
            "Time of one pipelined feature-store round trip (a whole batch).",
            buckets=REDIS_LATENCY_BUCKETS_S, registry=registry)
        self.lookups = Counter(
            "creditrisk_feature_store_lookups_total",
            "Entity look-ups by view and outcome (hit, missing, stale).",
            ["view", "outcome"], registry=registry)
        self.missing_features = Counter(
            "creditrisk_feature_store_missing_features_total",
            "Feature values absent or stale at read time, by view and feature.",
            ["view", "feature"], registry=registry)
        self.corrupt_values = Counter(
            "creditrisk_feature_store_corrupt_values_total",
            "Stored values that do not parse as their declared type (read as missing), by "
            "view and feature.", ["view", "feature"], registry=registry)
        self.feature_age = Histogram(
            "creditrisk_feature_age_seconds",
            "Age of the values read (application time minus the values' event time).",
            ["view"], buckets=AGE_BUCKETS_S, registry=registry)
        self.errors = Counter(
            "creditrisk_feature_store_errors_total",
            "Feature-store round trips that failed after retries, by kind.",
            ["kind"], registry=registry)


@lru_cache(maxsize=1)
def default_metrics() -> FeatureStoreMetrics:
    """The process-wide metrics on the default registry (created on first use)."""
    return FeatureStoreMetrics()
