"""The online reader: a batch of applications in, model inputs and freshness facts out.

Every view of every customer in the batch is read in one pipelined round trip (and the
velocity windows are updated in the same trip). Values older than their view's max age at
the application's time are stale; stale and absent values reach the model as NaN (the
model was trained to handle missing values) and are listed per application.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from redis.exceptions import AuthenticationError
from redis.exceptions import TimeoutError as RedisTimeoutError

from features.definitions import FeatureEncoder
from features.metrics import FeatureStoreMetrics, default_metrics
from features.store import EVENT_TS, UNAVAILABLE_ERRORS, FeatureStoreUnavailable, parse_timestamp
from features.views import BUREAU_VIEW, VELOCITY_VIEW, VELOCITY_WINDOWS, FeatureView, feature_key


@dataclass(frozen=True)
class FeatureRequest:
    """One application to enrich: who, when, and the fields the applicant typed
    (already normalised, e.g. by the worker's validation)."""

    application_id: str
    customer_id: str
    submitted_at: datetime
    application: Mapping[str, Any]


@dataclass
class OnlineFeatures:
    """What the store knew about one application's customer."""

    record: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    age_seconds: dict[str, float | None] = field(default_factory=dict)
    velocity: dict[str, int] = field(default_factory=dict)

    @property
    def bureau_found(self) -> bool:
        return self.age_seconds.get(BUREAU_VIEW.name) is not None and not self.stale


@dataclass
class OnlineBatch:
    features: list[OnlineFeatures]
    inputs: np.ndarray | None
    read_seconds: float


class OnlineFeatureReader:
    """Reads and assembles features for micro-batches of applications."""

    def __init__(self, client: Any, schema_version: str = "v1", key_prefix: str = "",
                 encoder: FeatureEncoder | None = None,
                 metrics: FeatureStoreMetrics | None = None,
                 bureau_view: FeatureView = BUREAU_VIEW) -> None:
        self.client = client
        self.schema_version = schema_version
        self.key_prefix = key_prefix
        self.encoder = encoder
        self.metrics = metrics or default_metrics()
        self.bureau_view = bureau_view

    def _key(self, view: FeatureView, customer_id: str) -> str:
        return feature_key(view, customer_id, self.schema_version, self.key_prefix)

    async def read(self, requests: Sequence[FeatureRequest], record_velocity: bool = True,
                   ) -> OnlineBatch:
        """Enrich a batch. Raises :class:`FeatureStoreUnavailable` if Redis does not answer."""
        if not requests:
            return OnlineBatch([], None, 0.0)
        pipe = self.client.pipeline(transaction=False)
        for request in requests:
            pipe.hgetall(self._key(self.bureau_view, request.customer_id))
            self._queue_velocity(pipe, request, record_velocity)
        started = time.perf_counter()
        try:
            replies = await pipe.execute()
        except UNAVAILABLE_ERRORS as error:
            raise self._unavailable(error) from error
        elapsed = time.perf_counter() - started
        self.metrics.read_seconds.observe(elapsed)

        per_request = 1 + self._velocity_commands(record_velocity)
        features = [
            self._assemble(request, replies[i * per_request:(i + 1) * per_request])
            for i, request in enumerate(requests)
        ]
        inputs = None
        if self.encoder is not None:
            inputs = self.encoder.transform_records([item.record for item in features])
        return OnlineBatch(features, inputs, elapsed)

    def _unavailable(self, error: BaseException) -> FeatureStoreUnavailable:
        if isinstance(error, AuthenticationError):
            kind, what = "auth", ("refused our credentials: check CREDITRISK_REDIS_USERNAME "
                                  "and CREDITRISK_REDIS_PASSWORD")
        elif isinstance(error, (RedisTimeoutError, TimeoutError)):
            kind, what = "timeout", "did not answer within the timeout"
        else:
            kind, what = "connection", "could not be reached"
        self.metrics.errors.labels(kind=kind).inc()
        return FeatureStoreUnavailable(
            f"Redis feature store {what} ({type(error).__name__}); the batch was not scored "
            "and can be retried")

    # -- velocity windows: a sorted set of application ids scored by submission time ------
    @staticmethod
    def _velocity_commands(record_velocity: bool) -> int:
        return len(VELOCITY_WINDOWS) + (3 if record_velocity else 0)

    def _queue_velocity(self, pipe: Any, request: FeatureRequest, record_velocity: bool) -> None:
        key = self._key(VELOCITY_VIEW, request.customer_id)
        now = request.submitted_at.timestamp()
        if record_velocity:
            # Adding the same application again (a replay) changes nothing.
            pipe.zadd(key, {request.application_id: now})
            widest = max(VELOCITY_WINDOWS.values()).total_seconds()
            pipe.zremrangebyscore(key, "-inf", f"({now - widest - 86400}")
            pipe.expire(key, int(VELOCITY_VIEW.ttl.total_seconds()))
        for window in VELOCITY_WINDOWS.values():
            pipe.zcount(key, now - window.total_seconds(), now)

    # -- assembling one application's record ---------------------------------------------
    def _assemble(self, request: FeatureRequest, replies: list[Any]) -> OnlineFeatures:
        view = self.bureau_view
        stored = {_text(k): _text(v) for k, v in (replies[0] or {}).items()}
        result = OnlineFeatures(record={**request.application, "issue_d": request.submitted_at})
        result.velocity = {name: int(count) for name, count in
                           zip(VELOCITY_WINDOWS, replies[-len(VELOCITY_WINDOWS):], strict=True)}
        result.record.update(result.velocity)

        if not stored:
            result.age_seconds[view.name] = None
            result.missing = [spec.name for spec in view.fields]
            self._count(view, "missing", result.missing)
            return result

        age = (request.submitted_at - parse_timestamp(stored[EVENT_TS])).total_seconds()
        result.age_seconds[view.name] = age
        self.metrics.feature_age.labels(view=view.name).observe(max(age, 0.0))
        if age > view.max_age.total_seconds():
            result.stale = [spec.name for spec in view.fields]
            self._count(view, "stale", result.stale)
            return result

        for spec in view.fields:
            text = stored.get(spec.name)
            if text is None:
                if not spec.nullable:
                    result.missing.append(spec.name)
                continue
            result.record[spec.name] = text if spec.kind == "date" else float(text)
        self._count(view, "hit", result.missing)
        return result

    def _count(self, view: FeatureView, outcome: str, fields: list[str]) -> None:
        self.metrics.lookups.labels(view=view.name, outcome=outcome).inc()
        for name in fields:
            self.metrics.missing_features.labels(view=view.name, feature=name).inc()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
