"""Redis feature store: connections, value encoding and the atomic write-if-newer.

Each entity's values in a view are one hash: feature -> value, plus ``_event_ts`` (when the
values were true at the source) and ``_written_ts`` (when we wrote them), both ISO-8601 UTC
of fixed width so that they compare as text. A write replaces the record only if it is not
older than what Redis holds, and refreshes the TTL — atomically, in one Lua script.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from config.settings import Settings

EVENT_TS = "_event_ts"
WRITTEN_TS = "_written_ts"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# KEYS[1] hash key. ARGV: event_ts, written_ts, ttl seconds, then field/value pairs.
# Returns 1 when written, 0 when Redis already holds newer values (nothing changes).
WRITE_IF_NEWER = f"""
local current = redis.call('HGET', KEYS[1], '{EVENT_TS}')
if current and current > ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '{EVENT_TS}', ARGV[1], '{WRITTEN_TS}', ARGV[2], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# One application's read in one command: every view's hash plus the velocity windows.
# KEYS[1..n-1] the views' hashes, KEYS[n] the velocity sorted set. ARGV: record (1/0),
# application id, submitted_at (epoch s), trim-before (epoch s), ttl seconds, then one window
# start per window. Returns {flat hash of each view..., count per window}. Adding the same
# application twice is a no-op.
READ_CUSTOMER = """
local velocity = KEYS[#KEYS]
if ARGV[1] == '1' then
  redis.call('ZADD', velocity, ARGV[3], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', velocity, '-inf', '(' .. ARGV[4])
  redis.call('EXPIRE', velocity, tonumber(ARGV[5]))
end
local result = {}
for i = 1, #KEYS - 1 do
  result[i] = redis.call('HGETALL', KEYS[i])
end
local counts = {}
for i = 6, #ARGV do
  counts[#counts + 1] = redis.call('ZCOUNT', velocity, ARGV[i], ARGV[3])
end
result[#KEYS] = counts
return result
"""

# Errors that mean "Redis is down or too slow", as opposed to a bug in the request.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


class FeatureStoreUnavailable(RuntimeError):
    """Redis did not answer within the timeouts after the bounded retries.

    The worker treats this as "try the batch again later": nothing is committed.
    """


def as_text(value: bytes | str) -> str:
    """A Redis reply (bytes unless the client decodes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("feature store timestamps must be timezone-aware (UTC)")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str | bytes) -> datetime:
    if isinstance(text, bytes):
        text = text.decode()
    return datetime.fromisoformat(text)  # C-speed; the fixed format ends in Z (UTC)


def encode_column(values: pd.Series, kind: str) -> list[str | None]:
    """Parsed feature values as the text stored in Redis; None (not stored) where missing.

    Numbers are stored as ``repr`` of the float (reads back bit-exact), dates as ISO
    ``YYYY-MM-DD``; NaN, NaT and infinities are missing values.
    """
    if kind == "date":
        dates = pd.to_datetime(values, errors="coerce")
        text, present = dates.dt.strftime("%Y-%m-%d").tolist(), dates.notna().tolist()
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        text = numbers.map(repr, na_action="ignore").tolist()
        present = np.isfinite(numbers.to_numpy()).tolist()
    return [item if keep else None for item, keep in zip(text, present, strict=True)]


def _connection_options(settings: Settings) -> dict[str, Any]:
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    tls: dict[str, Any] = {}
    if settings.redis_url.startswith("rediss://") and settings.redis_tls_ca_cert:
        tls["ssl_ca_certs"] = str(settings.redis_tls_ca_cert)
    return {
        **tls,
        "username": settings.redis_username,
        "password": password,
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "max_connections": settings.redis_pool_size,
        "health_check_interval": 30,
    }


def sync_client(settings: Settings) -> redis.Redis:
    """A blocking client for offline jobs (materialization), with bounded retries."""
    return redis.Redis.from_url(
        settings.redis_url,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **_connection_options(settings),
    )


def async_client(settings: Settings) -> redis.asyncio.Redis:
    """The worker's client: short timeouts, two retries with backoff, then a typed error;
    commands packed in C (see :class:`_CPacking`)."""
    from redis.asyncio.retry import Retry as AsyncRetry

    tls = settings.redis_url.startswith("rediss://")
    return redis.asyncio.Redis.from_url(
        settings.redis_url,
        retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        connection_class=_CPackedTLSConnection if tls else _CPackedConnection,
        **_connection_options(settings),
    )


class _CPacking:
    """Command packing by hiredis, as the blocking client already does: redis-py's asyncio
    connection packs every argument in Python, a quarter of the worker's Redis time."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


class _CPackedConnection(_CPacking, redis.asyncio.Connection):
    pass


class _CPackedTLSConnection(_CPacking, redis.asyncio.SSLConnection):
    pass
