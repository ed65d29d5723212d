"""Decisions: deterministic ids, the published message, and the record kept in Redis.

Same application + same model version ⇒ same ``decision_id`` and the same content: the
first decision is stored, and a replayed application is answered with the stored one
(``decided_at`` included), so at-least-once delivery never publishes two different
decisions for one application and model.

Redis keys (besides the feature store's), all with ``CREDITRISK_KEY_PREFIX`` in front:
- ``decision:<application_id>`` — JSON record: the decision plus the application, the
  features used and what was missing or stale, and the applicant's monitored groups
  (idempotency, the ledger's lineage and the console's quick look-up), TTL 90 days;
- ``decisions:recent`` — sorted set of the latest application ids (trimmed), one command
  per batch.

Both work on a single Redis and on a Redis Cluster with the same code: a batch's records span
slots, so they are read with one MGET per slot, pipelined to every node at once
(:func:`features.store.get_many`), and written in one pipeline the cluster client splits by
node; the recent list is one key, so its commands stay in one slot.

The decision ledger (PostgreSQL) is the book of record: every decision, searchable by
customer and by any field, for as long as retention says.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeVar

import msgspec
import redis.asyncio.client
import redis.asyncio.cluster

from config.json_types import JSONValue
from features.normalize import utc_timestamp
from features.store import AsyncRedis, SyncRedis, get_many, get_many_blocking, refusals_explained
from stream.reasons import Reason

DECISION_NAMESPACE = uuid.UUID("6f1c2a4e-8d3b-5e7f-9a10-c2d4e6f8a0b1")
DECISION_TTL_S = 90 * 86400
RECENT_KEEP = 50_000

DecisionOutcome = Literal["approve", "review", "decline"]
log = logging.getLogger(__name__)


def decision_id(application_id: str, model_version: str) -> str:
    """Stable id: a UUIDv5 of the application and the model version that decided it."""
    return str(uuid.uuid5(DECISION_NAMESPACE, f"{application_id}|{model_version}"))



class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The published decision (DESIGN.md contract): built once by the worker, encoded once,
    and parsed and checked once by whoever reads it (:meth:`from_json`)."""

    application_id: str
    customer_id: str
    decision_id: str
    decision: DecisionOutcome
    probability_of_default: float
    score: int
    risk_grade: str
    reasons: tuple[Reason, ...] = ()
    missing_features: tuple[str, ...] = ()
    model_version: str
    policy_version: str
    # ISO-8601 UTC text as the worker writes it ('2026-11-22T14:03:07.123Z').
    submitted_at: str
    decided_at: str

    def __post_init__(self) -> None:
        for name in ("submitted_at", "decided_at"):
            try:
                moment = datetime.fromisoformat(getattr(self, name))
            except ValueError:
                raise ValueError(f"{name} is not an ISO-8601 time") from None
            if moment.tzinfo is None:
                raise ValueError(f"{name} has no time zone")

    @property
    def decided_timestamp(self) -> float:
        return datetime.fromisoformat(self.decided_at).timestamp()

    @property
    def submitted_timestamp(self) -> float:
        return datetime.fromisoformat(self.submitted_at).timestamp()

    def to_json(self) -> bytes:
        return _ENCODER.encode(self)

    def to_dict(self) -> dict[str, JSONValue]:
        """JSON-ready fields, for a page or an HTTP answer."""
        value: dict[str, JSONValue] = msgspec.json.decode(self.to_json())
        return value

    @classmethod
    def from_json(cls, raw: bytes | str) -> Decision:
        """The decision in a message; :class:`DecisionError` says which field is wrong."""
        return _decoded(_DECODER, raw)

    @classmethod
    def from_dict(cls, value: object) -> Decision:
        return _converted(value, cls)


class DecisionError(ValueError):
    """A message on the decisions topic (or a stored record) that is not a decision."""


_Checked = TypeVar("_Checked")


def _decoded(decoder: msgspec.json.Decoder[_Checked], raw: bytes | str) -> _Checked:
    """The value in ``raw``, checked by ``decoder``; :class:`DecisionError` says what is wrong."""
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as error:
        raise DecisionError(str(error)) from None


def _converted(value: object, kind: type[_Checked]) -> _Checked:
    """``value`` (already decoded) checked as a ``kind``; :class:`DecisionError` says what is
    wrong."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        raise DecisionError(str(error)) from None


class ShadowDecision(Decision, frozen=True, kw_only=True):
    """A challenger's decision (``loan-decisions-shadow``, never acted on): the decision the
    challenger version would have made — its own ``decision_id`` (the application and the
    challenger's version) — and the champion's decision of the same application beside it."""

    champion_decision_id: str
    champion_model_version: str
    champion_decision: DecisionOutcome

    @classmethod
    def from_json(cls, raw: bytes | str) -> ShadowDecision:
        return _decoded(_SHADOW_DECODER, raw)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Decision)
_SHADOW_DECODER = msgspec.json.Decoder(ShadowDecision)


@dataclass(frozen=True)
class DecisionRecord:
    """What is stored per application: the published decision and its context."""

    decision: Decision
    application: dict[str, object]
    features: dict[str, object]
    stale_features: list[str]
    velocity: dict[str, int]
    # Age of each feature view's values when the application was scored (None: absent).
    feature_age_seconds: dict[str, float | None] = field(default_factory=dict)
    # Monitored attribute name → the applicant's group (fairness monitoring; never the raw
    # value, which is kept nowhere). Not part of the published decision. Empty for models
    # that monitor nothing and for records written before monitoring.
    groups: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return _ENCODER.encode({"decision": self.decision, "application": self.application,
                                "features": _json_safe(self.features),
                                "stale_features": self.stale_features,
                                "velocity": self.velocity,
                                "feature_age_seconds": self.feature_age_seconds,
                                "groups": self.groups})

    @classmethod
    def from_json(cls, raw: bytes | str) -> DecisionRecord:
        """A stored record, parsed and checked once; :class:`DecisionError` says what is wrong."""
        return _decoded(_RECORD_DECODER, raw)

    @classmethod
    def from_dict(cls, value: object) -> DecisionRecord:
        """A record from already-decoded values (a ledger row), checked like :meth:`from_json`."""
        return _converted(value, cls)


class DecisionStore:
    """Decision records in Redis; one pipelined round trip per batch (per node, on a cluster)
    for each direction.

    A refusal of our credentials or rights raises :class:`FeatureStoreRefused` (a
    configuration to fix), never a plain Redis error that could pass for an outage or for a
    fault of the events. The worker's store has an asyncio client; the ledger writer reads
    records (:meth:`records`) with a blocking one."""

    def __init__(self, client: AsyncRedis | SyncRedis, key_prefix: str = "") -> None:
        self.client = client
        self.prefix = key_prefix
        self._wait_refused = False

    def _key(self, application_id: str) -> str:
        return decision_key(self.prefix, application_id)

    async def existing(self, application_ids: Sequence[str], model_version: str,
                       ) -> dict[str, Decision]:
        """Decisions already made for these applications by this model version."""
        if not application_ids:
            return {}
        client = self._async_client()
        with refusals_explained(client):
            stored = await get_many(client, [self._key(app_id) for app_id in application_ids])
        found: dict[str, Decision] = {}
        for app_id, raw in zip(application_ids, stored, strict=True):
            decision = _stored_decision(raw)
            if decision is not None and decision.model_version == model_version:
                found[app_id] = decision
        return found

    async def save(self, records: Sequence[DecisionRecord]) -> None:
        if not records:
            return
        client = self._async_client()
        with refusals_explained(client):
            if isinstance(client, redis.asyncio.cluster.RedisCluster):
                await self._save_on_cluster(client, records)
                return
            pipe = client.pipeline(transaction=False)
            self._queue_writes(pipe, records)
            await pipe.execute()

    async def _save_on_cluster(self, client: redis.asyncio.cluster.RedisCluster,
                               records: Sequence[DecisionRecord]) -> None:
        """The writes, then a WAIT on each node written to (see :data:`REPLICA_WAIT_MS`)."""
        pipe = client.pipeline(transaction=False)
        self._queue_writes(pipe, records)
        keys = [self._key(record.decision.application_id) for record in records]
        waits = await _wait_for_replicas(client, pipe, [*keys, recent_decisions_key(self.prefix)])
        results = await pipe.execute(raise_on_error=False)
        _raise_first_error(results[:len(results) - waits])
        self._note_refused_waits(results[len(results) - waits:])

    def _queue_writes(self, pipe: redis.asyncio.client.Pipeline | redis.asyncio.cluster.ClusterPipeline,
                      records: Sequence[DecisionRecord]) -> None:
        for record in records:
            pipe.set(self._key(record.decision.application_id), record.to_json(),
                     ex=DECISION_TTL_S)
        recent = recent_decisions_key(self.prefix)
        pipe.zadd(recent, {record.decision.application_id: record.decision.decided_timestamp
                           for record in records})
        pipe.zremrangebyrank(recent, 0, -RECENT_KEEP - 1)

    def _note_refused_waits(self, results: Sequence[object]) -> None:
        """A WAIT that fails (e.g. an ACL without ``+wait``) costs durability, not the
        batch: logged once per store."""
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed and not self._wait_refused:
            self._wait_refused = True
            log.warning("Redis Cluster refused WAIT (%s): decision records are not confirmed "
                        "on a replica before the batch is acknowledged; the worker's ACL user "
                        "needs +wait (infra/stack/redis_acl.py)", type(failed[0]).__name__)

    def records(self, application_ids: Sequence[str]) -> list[DecisionRecord | None]:
        """The stored records of these applications in one round trip (a synchronous client);
        None where absent or unreadable. The ledger writer reads lineage this way."""
        if not application_ids:
            return []
        if not isinstance(self.client, SyncRedis):
            raise TypeError("DecisionStore.records needs a blocking Redis client")
        with refusals_explained(self.client):
            raws = get_many_blocking(self.client,
                                     [self._key(app_id) for app_id in application_ids])
        return [_stored_record(raw) for raw in raws]

    def _async_client(self) -> AsyncRedis:
        if isinstance(self.client, SyncRedis):
            raise TypeError("the worker's DecisionStore needs an asyncio Redis client")
        return self.client


# On a Redis Cluster a primary copies its writes to its replica after acknowledging them: a
# primary killed in between loses the records, and an application replayed after the failover
# would be decided again, with another decided_at. WAIT, sent on each node's connection right
# after its writes, holds the batch until a replica has them; bounded, so that with no replica
# up the batch goes on (its records then on the primary alone).
REPLICA_WAIT_MS = 50


async def _wait_for_replicas(client: redis.asyncio.cluster.RedisCluster,
                             pipe: redis.asyncio.cluster.ClusterPipeline, keys: Sequence[str],
                             ) -> int:
    """Queue one WAIT per node holding ``keys`` at the end of ``pipe``; how many were queued."""
    await client.initialize()  # the slot map (a no-op once known)
    nodes = {}
    for key in keys:
        node = client.get_node_from_key(key)
        if node is not None:
            nodes[node.name] = node
    for node in nodes.values():
        pipe.execute_command("WAIT", 1, REPLICA_WAIT_MS, target_nodes=node)
    return len(nodes)


def _raise_first_error(results: Sequence[object]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result


def decision_key(prefix: str, application_id: str) -> str:
    """One application's record; no hash tag, so a cluster spreads the records over its nodes."""
    return f"{prefix}decision:{application_id}"


def recent_decisions_key(prefix: str) -> str:
    """The sorted set of the latest application ids (one key: one slot on a cluster)."""
    return f"{prefix}decisions:recent"


def _stored_record(raw: bytes | str | None) -> DecisionRecord | None:
    if raw is None:
        return None
    try:
        return DecisionRecord.from_json(raw)
    except DecisionError:
        return None


class _StoredDecision(msgspec.Struct):
    decision: Decision


_RECORD_DECODER = msgspec.json.Decoder(DecisionRecord)
_DECISION_DECODER = msgspec.json.Decoder(_StoredDecision)


def _stored_decision(raw: bytes | str | None) -> Decision | None:
    """The decision of a stored record; None when absent or unreadable (the application is
    then decided again and the record rewritten, rather than the batch failing)."""
    if raw is None:
        return None
    try:
        return _DECISION_DECODER.decode(raw).decision
    except msgspec.DecodeError:
        return None


def _json_safe(values: Mapping[str, object]) -> dict[str, object]:
    """Feature values for JSON: NaN becomes null, datetimes become ISO text."""
    safe: dict[str, object] = {}
    for name, value in values.items():
        if isinstance(value, float) and math.isnan(value):
            safe[name] = None
        elif isinstance(value, datetime):
            safe[name] = utc_timestamp(value)
        else:
            safe[name] = value
    return safe
