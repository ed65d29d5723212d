"""Decisions: deterministic ids, the published message, and the record kept in Redis.

Same application + same model version ⇒ same ``decision_id`` and the same content: the
first decision is stored, and a replayed application is answered with the stored one
(``decided_at`` included), so at-least-once delivery never publishes two different
decisions for one application and model.

Redis keys (besides the feature store's), all with ``CREDITRISK_KEY_PREFIX`` in front:
- ``decision:<application_id>`` — JSON record: the decision plus the application, the
  features used and what was missing or stale (for the console), TTL 90 days;
- ``decisions:customer:<customer_id>`` — sorted set of the customer's application ids;
- ``decisions:recent`` — sorted set of the latest application ids (trimmed).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from features.normalize import utc_timestamp

DECISION_NAMESPACE = uuid.UUID("6f1c2a4e-8d3b-5e7f-9a10-c2d4e6f8a0b1")
DECISION_TTL_S = 90 * 86400
RECENT_KEEP = 50_000


def decision_id(application_id: str, model_version: str) -> str:
    """Stable id: a UUIDv5 of the application and the model version that decided it."""
    return str(uuid.uuid5(DECISION_NAMESPACE, f"{application_id}|{model_version}"))



@dataclass(frozen=True)
class DecisionRecord:
    """What is stored per application: the published decision and its context."""

    decision: dict[str, Any]
    application: dict[str, Any]
    features: dict[str, Any]
    stale_features: list[str]
    velocity: dict[str, int]
    # Age of each feature view's values when the application was scored (None: absent).
    feature_age_seconds: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"decision": self.decision, "application": self.application,
                           "features": _json_safe(self.features),
                           "stale_features": self.stale_features, "velocity": self.velocity,
                           "feature_age_seconds": self.feature_age_seconds},
                          separators=(",", ":"))


class DecisionStore:
    """Decision records in Redis; one pipelined round trip per batch for each direction."""

    def __init__(self, client: Any, key_prefix: str = "") -> None:
        self.client = client
        self.prefix = key_prefix

    def _key(self, application_id: str) -> str:
        return decision_key(self.prefix, application_id)

    async def existing(self, application_ids: Sequence[str], model_version: str,
                       ) -> dict[str, dict[str, Any]]:
        """Decisions already made for these applications by this model version."""
        if not application_ids:
            return {}
        stored = await self.client.mget([self._key(app_id) for app_id in application_ids])
        found: dict[str, dict[str, Any]] = {}
        for app_id, raw in zip(application_ids, stored, strict=True):
            decision = _stored_decision(raw)
            if decision is not None and decision.get("model_version") == model_version:
                found[app_id] = decision
        return found

    async def save(self, records: Sequence[DecisionRecord]) -> None:
        if not records:
            return
        pipe = self.client.pipeline(transaction=False)
        recent = f"{self.prefix}decisions:recent"
        for record in records:
            decision = record.decision
            decided = datetime.fromisoformat(decision["decided_at"]).timestamp()
            pipe.set(self._key(decision["application_id"]), record.to_json(), ex=DECISION_TTL_S)
            customer_key = f"{self.prefix}decisions:customer:{decision['customer_id']}"
            pipe.zadd(customer_key, {decision["application_id"]: decided})
            pipe.expire(customer_key, DECISION_TTL_S)
            pipe.zadd(recent, {decision["application_id"]: decided})
        pipe.zremrangebyrank(recent, 0, -RECENT_KEEP - 1)
        await pipe.execute()

    def records(self, application_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The stored records of these applications in one round trip (a synchronous client);
        None where absent or unreadable. The ledger writer reads lineage this way."""
        if not application_ids:
            return []
        raws = self.client.mget([self._key(app_id) for app_id in application_ids])
        return [_stored_record(raw) for raw in raws]

    async def get(self, application_id: str) -> dict[str, Any] | None:
        raw = await self.client.get(self._key(application_id))
        return json.loads(raw) if raw is not None else None


def decision_key(prefix: str, application_id: str) -> str:
    return f"{prefix}decision:{application_id}"


def _stored_record(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("decision"), dict) else None


def _stored_decision(raw: bytes | str | None) -> dict[str, Any] | None:
    """The decision of a stored record; None when absent or unreadable (the application is
    then decided again and the record rewritten, rather than the batch failing)."""
    if raw is None:
        return None
    try:
        decision = json.loads(raw)["decision"]
    except (ValueError, KeyError, TypeError):
        return None
    return decision if isinstance(decision, dict) and "submitted_at" in decision else None


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Feature values for JSON: NaN becomes null, datetimes become ISO text."""
    safe: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, float) and math.isnan(value):
            safe[name] = None
        elif isinstance(value, datetime):
            safe[name] = utc_timestamp(value)
        else:
            safe[name] = value
    return safe
