"""The online reader: a batch of applications in, model-input records and freshness facts out.

Every view the model's serving spec declares, for every customer in the batch, is read in one
pipelined round trip (and the velocity windows are updated in the same trip); on a Redis
Cluster, one round trip to each node holding some of the batch's customers, sent concurrently
(a customer's keys share a hash tag, so each customer's read runs on one node). Values older
than their view's max age at the application's time are stale; stale, absent and unreadable
values reach the model as NaN (the model was trained to handle missing values) and are
listed per application.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

import redis.asyncio.cluster
from redis.exceptions import AuthenticationError, NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from features.metrics import FeatureStoreMetrics, default_metrics
from features.serving import ServingSpec
from features.store import (
    EVENT_TS,
    READ_CUSTOMER,
    REFUSED_ERRORS,
    UNAVAILABLE_ERRORS,
    AsyncRedis,
    FeatureStoreRefused,
    FeatureStoreUnavailable,
    as_text,
    parse_timestamp,
    refusal_in,
    refused,
)
from features.views import (
    VELOCITY_VIEW,
    VELOCITY_WINDOWS,
    FeatureView,
    entity_key_part,
    view_key_prefix,
)

# What the read script answers per application: each view's hash as a flat list of field,
# value, ..., then the count of each velocity window.
ScriptReply = list[list[bytes | str | int]]


async def load_read_script(client: AsyncRedis) -> str:
    """Load the read script (``SCRIPT LOAD``) wherever the reads will call it, and return its
    SHA1: on a single Redis, that Redis; on a Redis Cluster, every primary, since each
    customer's read runs on the primary of its slot (a primary that lacks the script answers
    NOSCRIPT and costs the batch a reload and a second round trip)."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        sha = await client.execute_command("SCRIPT LOAD", READ_CUSTOMER,
                                           target_nodes=client.PRIMARIES)
    else:
        sha = await client.script_load(READ_CUSTOMER)
    return as_text(sha)


@dataclass(frozen=True)
class FeatureRequest:
    """One application to enrich: who, when, and the fields the applicant typed
    (already normalised, e.g. by the worker's validation)."""

    application_id: str
    customer_id: str
    submitted_at: datetime
    application: Mapping[str, object]


@dataclass
class OnlineFeatures:
    """What the store knew about one application's customer."""

    record: dict[str, object]
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    # Stored values that do not parse as their declared type: read as missing values.
    corrupt: list[str] = field(default_factory=list)
    age_seconds: dict[str, float | None] = field(default_factory=dict)
    velocity: dict[str, int] = field(default_factory=dict)

    @property
    def views_found(self) -> bool:
        """Every view had fresh values for the customer (true when the model has no view)."""
        return None not in self.age_seconds.values() and not self.stale

    @property
    def incomplete(self) -> bool:
        """A view's record is absent, stale or partly unreadable: never auto-approve."""
        return not self.views_found or bool(self.corrupt)

    @property
    def unavailable(self) -> list[str]:
        """Every feature the model did not get a value for, for the decision to list."""
        return self.missing + self.stale + self.corrupt


@dataclass
class OnlineBatch:
    """One record per request, in request order; the model's encoder turns them into inputs."""

    features: list[OnlineFeatures]
    read_seconds: float


class OnlineFeatureReader:
    """Reads and assembles features for micro-batches of applications."""

    def __init__(self, client: AsyncRedis, schema_version: str = "v1", key_prefix: str = "",
                 metrics: FeatureStoreMetrics | None = None) -> None:
        self.client = client
        self.schema_version = schema_version
        self.key_prefix = key_prefix
        self.metrics = metrics or default_metrics()
        self._script_sha: str | None = None

    async def read(self, requests: Sequence[FeatureRequest], *, serving: ServingSpec,
                   record_velocity: bool = True) -> OnlineBatch:
        """Enrich a batch for a model's serving spec (its views, its date field).
        Raises :class:`FeatureStoreUnavailable` if Redis does not answer and
        :class:`FeatureStoreRefused` if it refuses our credentials or rights."""
        if not requests:
            return OnlineBatch([], 0.0)
        started = time.perf_counter()
        try:
            replies = await self._round_trip(requests, serving.views, record_velocity)
        except REFUSED_ERRORS as error:
            raise self._refused(error) from None
        except (*UNAVAILABLE_ERRORS, NoScriptError) as error:
            refusal = refusal_in(error)  # a cluster client's "cannot connect" may be a refusal
            if refusal is not None:
                raise self._refused(refusal) from None
            raise self._unavailable(error) from error
        elapsed = time.perf_counter() - started
        self.metrics.read_seconds.observe(elapsed)

        features = [self._assemble(request, reply, serving)
                    for request, reply in zip(requests, replies, strict=True)]
        self._count(features, serving.views)
        return OnlineBatch(features, elapsed)

    def _refused(self, error: BaseException) -> FeatureStoreRefused:
        self.metrics.errors.labels(
            kind="auth" if isinstance(error, AuthenticationError) else "permission").inc()
        return refused(error, self.client)

    def _unavailable(self, error: BaseException) -> FeatureStoreUnavailable:
        if isinstance(error, (RedisTimeoutError, TimeoutError)):
            kind, what = "timeout", "did not answer within the timeout"
        elif isinstance(error, NoScriptError):  # lost again right after loading: a failover
            kind, what = "connection", "lost the read script while failing over"
        else:
            kind, what = "connection", "could not be reached"
        self.metrics.errors.labels(kind=kind).inc()
        return FeatureStoreUnavailable(
            f"Redis feature store {what} ({type(error).__name__}); the batch was not scored "
            "and can be retried")

    async def _round_trip(self, requests: Sequence[FeatureRequest],
                          views: Sequence[FeatureView], record_velocity: bool,
                          script_reloaded: bool = False) -> list[ScriptReply]:
        """One pipelined round trip (per node, on a cluster): one script call per application.

        The views' keys go as arguments, not KEYS (see READ_CUSTOMER); on a cluster they
        share the velocity key's hash tag, so the node the client routes the call to by its
        one KEY holds them too."""
        if self._script_sha is None:
            self._script_sha = await load_read_script(self.client)
        widest = max(VELOCITY_WINDOWS.values()).total_seconds()
        windows = [window.total_seconds() for window in VELOCITY_WINDOWS.values()]
        ttl = int(VELOCITY_VIEW.ttl.total_seconds())
        key_prefixes = [view_key_prefix(view, self.schema_version, self.key_prefix)
                        for view in views]
        velocity_prefix = view_key_prefix(VELOCITY_VIEW, self.schema_version, self.key_prefix)
        record = "1" if record_velocity else "0"
        pipe = self.client.pipeline(transaction=False)
        for request in requests:
            now = request.submitted_at.timestamp()
            customer = entity_key_part(request.customer_id, self.schema_version)
            # execute_command: a cluster pipeline refuses evalsha() by name, not the command.
            pipe.execute_command("EVALSHA", self._script_sha, 1, velocity_prefix + customer,
                         record, request.application_id, now, now - widest - 86400, ttl,
                         len(windows), *[now - window for window in windows],
                         *[key_prefix + customer for key_prefix in key_prefixes])
        try:
            replies: list[ScriptReply] = await pipe.execute()
            return replies
        except NoScriptError:  # Redis restarted (or a replica took over) without our script
            if script_reloaded:
                raise
            self._script_sha = None
            return await self._round_trip(requests, views, record_velocity, script_reloaded=True)

    # -- assembling one application's record ---------------------------------------------
    def _assemble(self, request: FeatureRequest, reply: ScriptReply, serving: ServingSpec,
                  ) -> OnlineFeatures:
        *hashes, counts = reply
        record = dict(request.application)
        if serving.date_field:
            record[serving.date_field] = request.submitted_at
        result = OnlineFeatures(record=record)
        result.velocity = {name: int(count) for name, count in
                           zip(VELOCITY_WINDOWS, counts, strict=True)}
        result.record.update(result.velocity)
        for view, flat_hash in zip(serving.views, hashes, strict=True):
            self._assemble_view(result, request, view, flat_hash)
        return result

    @staticmethod
    def _assemble_view(result: OnlineFeatures, request: FeatureRequest, view: FeatureView,
                       flat_hash: Sequence[bytes | str | int]) -> None:
        texts = [item.decode() if isinstance(item, bytes) else str(item) for item in flat_hash]
        stored = dict(zip(texts[::2], texts[1::2], strict=True))
        event_time = _parsed(parse_timestamp, stored.get(EVENT_TS))
        if event_time is None:
            result.age_seconds[view.name] = None
            result.missing += list(view.field_names)
            if stored:  # a hash without a readable event time: none of it can be dated
                result.corrupt.append(EVENT_TS)
            return

        age = (request.submitted_at - event_time).total_seconds()
        result.age_seconds[view.name] = age
        if age > view.max_age.total_seconds():
            result.stale += list(view.field_names)
            return

        for spec in view.fields:
            text = stored.get(spec.name)
            if text is None:
                if not spec.nullable:
                    result.missing.append(spec.name)
                continue
            value = _parsed(_STORED_VALUE_PARSERS[spec.kind], text)
            if value is None:
                result.corrupt.append(spec.name)
            else:
                result.record[spec.name] = value

    def _count(self, features: list[OnlineFeatures], views: Sequence[FeatureView]) -> None:
        """Metrics for a batch, one increment per label set (cheap on big batches)."""
        for view in views:
            names = set(view.field_names) | {EVENT_TS}
            outcomes: Counter[str] = Counter()
            absent: Counter[str] = Counter()
            corrupt: Counter[str] = Counter()
            for item in features:
                age = item.age_seconds.get(view.name)
                stale = age is not None and age > view.max_age.total_seconds()
                if age is None:
                    outcomes["missing"] += 1
                else:
                    outcomes["stale" if stale else "hit"] += 1
                    self.metrics.feature_age.labels(view=view.name).observe(max(age, 0.0))
                absent.update(name for name in item.missing + item.stale if name in names)
                corrupt.update(name for name in item.corrupt if name in names)
            for name, count in corrupt.items():
                self.metrics.corrupt_values.labels(view=view.name, feature=name).inc(count)
            for outcome, count in outcomes.items():
                self.metrics.lookups.labels(view=view.name, outcome=outcome).inc(count)
            for name, count in absent.items():
                self.metrics.missing_features.labels(view=view.name, feature=name).inc(count)



def _stored_number(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _stored_date(text: str) -> str:
    date.fromisoformat(text)  # the materializer writes YYYY-MM-DD
    return text


_STORED_VALUE_PARSERS: dict[str, Callable[[str], float | str]] = {"number": _stored_number,
                                                                  "date": _stored_date}
Parsed = TypeVar("Parsed")


def _parsed(parse: Callable[[str], Parsed], text: str | None) -> Parsed | None:
    """The parsed value, or None when absent or unreadable (someone wrote junk to Redis)."""
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError:
        return None
