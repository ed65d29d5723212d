"""Redis feature store: connections, value encoding and the atomic write-if-newer.

Each entity's values in a view are one hash: feature -> value, plus ``_event_ts`` (when the
values were true at the source) and ``_written_ts`` (when we wrote them), both ISO-8601 UTC
of fixed width so that they compare as text. A write replaces the record only if it is not
older than what Redis holds, and refreshes the TTL — atomically, in one Lua script.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import ExponentialBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from config.settings import RedisRole, Settings

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
# KEYS[1] the velocity sorted set. ARGV: record (1/0), application id, submitted_at (epoch s),
# trim-before (epoch s), ttl seconds, the number of windows, one start per window, then the
# views' hash keys. Those are only read, so they come as arguments: Redis ACLs want write
# rights on a script's KEYS, and the worker may write the velocity view alone
# (infra/stack/redis_acl.py). Returns {flat hash of each view..., count per window}. Adding the same
# application twice is a no-op.
READ_CUSTOMER = """
local velocity = KEYS[1]
if ARGV[1] == '1' then
  redis.call('ZADD', velocity, ARGV[3], ARGV[2])
  redis.call('ZREMRANGEBYSCORE', velocity, '-inf', '(' .. ARGV[4])
  redis.call('EXPIRE', velocity, tonumber(ARGV[5]))
end
local last_window = 6 + tonumber(ARGV[6])
local result = {}
for i = last_window + 1, #ARGV do
  result[#result + 1] = redis.call('HGETALL', ARGV[i])
end
local counts = {}
for i = 7, last_window do
  counts[#counts + 1] = redis.call('ZCOUNT', velocity, ARGV[i], ARGV[3])
end
result[#result + 1] = counts
return result
"""

# A blocking client (offline jobs, the ledger writer, the console) and the worker's asyncio
# client: one Redis, or a Redis Cluster when CREDITRISK_REDIS_CLUSTER_NODES names its nodes.
SyncRedis = redis.Redis | redis.cluster.RedisCluster
AsyncRedis = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
RedisClient = SyncRedis | AsyncRedis
# Errors that mean "Redis refused us": our credentials, or the rights of our ACL user.
REFUSED_ERRORS = (AuthenticationError, NoPermissionError)
# Errors that mean "Redis is down or too slow", as opposed to a bug in the request.
# (An AuthenticationError is a ConnectionError to redis-py: check REFUSED_ERRORS first.)
# Redis answers, but cannot serve us for now: a replica after a failover (READONLY), memory
# full (OOM: the read script writes the velocity key), a cluster slot moving or down. Waiting
# ends them; dead-lettering would drain the stream into the dead-letter topic.
# On a cluster: CLUSTERDOWN / MASTERDOWN and redirections that did not settle within the
# client's retries (ClusterError: "TTL exhausted"; AskError, MovedError), and the cluster
# client's own RedisClusterException, which it raises when no seed node answers, the nodes
# disagree on the slots or a slot has no primary (SlotNotCoveredError) — all of them what a
# primary's failover looks like from the client until its replica is promoted.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError,
                      ReadOnlyError, OutOfMemoryError, TryAgainError, ClusterError, AskError,
                      RedisClusterException)


class FeatureStoreUnavailable(RuntimeError):
    """Redis did not answer within the timeouts after the bounded retries.

    The worker treats this as "try the batch again later": nothing is committed.
    """


class FeatureStoreRefused(RuntimeError):
    """Redis refused our credentials (WRONGPASS, NOAUTH) or our ACL user's rights (NOPERM).

    A configuration an operator must fix: retrying cannot help and the events are not to
    blame, so the worker stops (see stream/failures.py). The message names the user and the
    settings to check, never the password.
    """


@contextlib.contextmanager
def refusals_explained(client: RedisClient, on_refusal: Callable[[BaseException], None] | None = None,
                       ) -> Iterator[None]:
    """Turn a refusal of ``client``'s user (one of :data:`REFUSED_ERRORS`, or a cluster client's
    error caused by one, see :func:`refusal_in`) into the clear :class:`FeatureStoreRefused`;
    ``on_refusal`` sees the original first (e.g. to count it)."""
    try:
        yield
    except (*REFUSED_ERRORS, RedisClusterException) as error:
        refusal = refusal_in(error)
        if refusal is None:
            raise
        if on_refusal is not None:
            on_refusal(refusal)
        raise refused(refusal, client) from None


def refusal_in(error: BaseException) -> BaseException | None:
    """The refusal (one of :data:`REFUSED_ERRORS`) that ``error`` is or was raised from, else
    None. A cluster client meeting a refusal while it discovers the nodes (WRONGPASS at login,
    NOPERM on CLUSTER SLOTS) raises "Redis Cluster cannot be connected" from it, which would
    otherwise pass for an outage and be retried forever."""
    seen: BaseException | None = error
    for _ in range(5):  # a short chain: the cluster client wraps once or twice
        if seen is None:
            return None
        if isinstance(seen, REFUSED_ERRORS):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def refused(error: BaseException, client: RedisClient) -> FeatureStoreRefused:
    """The clear error for a refusal (one of :data:`REFUSED_ERRORS`) of ``client``'s user."""
    return refused_user(error, client.get_connection_kwargs().get("username"))


def refused_user(error: BaseException, username: str | None) -> FeatureStoreRefused:
    """The clear error for a refusal (one of :data:`REFUSED_ERRORS`) of ACL user ``username``
    (None: the default user)."""
    user = username or "default"
    if isinstance(error, NoPermissionError):
        what = (f"Redis refused a command of ACL user {user!r} (NOPERM: no rights on that "
                "command or key). The user's rules are in infra/stack/redis_acl.py (the local stack "
                "applies them on `creditrisk stack up`); check CREDITRISK_REDIS_USERNAME")
    else:
        what = (f"Redis refused the credentials of user {user!r} ({type(error).__name__}): "
                "check CREDITRISK_REDIS_USERNAME and CREDITRISK_REDIS_PASSWORD (unset, the "
                "local stack's generated password of the role is used: run "
                "`creditrisk stack up` to create or apply it)")
    return FeatureStoreRefused(what)


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


def redis_login(settings: Settings, role: RedisRole) -> dict[str, str | None]:
    """``username`` and ``password`` for a redis-py client logging in as ``role`` (see
    :meth:`Settings.redis_credentials`)."""
    username, secret = settings.redis_credentials(role)
    return {"username": username, "password": secret.get_secret_value() if secret else None}


class _ConnectionOptions(TypedDict, total=False):
    ssl: bool
    ssl_ca_certs: str
    username: str | None
    password: str | None
    socket_timeout: float
    socket_connect_timeout: float
    max_connections: int
    health_check_interval: int


def _uses_tls(settings: Settings) -> bool:
    return settings.redis_url.startswith("rediss://")


def _connection_options(settings: Settings, role: RedisRole) -> _ConnectionOptions:
    login = redis_login(settings, role)
    options: _ConnectionOptions = {
        "username": login["username"],
        "password": login["password"],
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "max_connections": settings.redis_pool_size,
        "health_check_interval": 30,
    }
    if _uses_tls(settings) and settings.redis_tls_ca_cert:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_cert)
    return options


def _cluster_options(settings: Settings, role: RedisRole) -> _ConnectionOptions:
    """The options of every node's connections: those of a single Redis, and what
    ``redis_url`` says beyond its address (TLS by its scheme, credentials it holds win over
    the settings', as they do for a single Redis's ``from_url``). ``max_connections`` is per
    node."""
    from urllib.parse import unquote, urlparse

    options = _connection_options(settings, role)
    url = urlparse(settings.redis_url)
    if url.username:
        options["username"] = unquote(url.username)
    if url.password:
        options["password"] = unquote(url.password)
    if _uses_tls(settings):
        options["ssl"] = True
    return options


def sync_client(settings: Settings, role: RedisRole) -> SyncRedis:
    """A blocking client for offline jobs (materialization), with bounded retries; it logs
    in as ``role`` (see :meth:`Settings.redis_credentials`). With
    ``CREDITRISK_REDIS_CLUSTER_NODES`` set, a Redis Cluster client: it follows MOVED and ASK
    itself and sends a pipeline to each node the pipeline's keys live on."""
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=3)
    if settings.redis_cluster_seeds:
        return redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port)
                           for host, port in settings.redis_cluster_seeds],
            retry=retry, **_cluster_options(settings, role))
    return redis.Redis.from_url(
        settings.redis_url, retry=retry,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **_connection_options(settings, role),
    )


def async_client(settings: Settings, role: RedisRole) -> AsyncRedis:
    """The worker's client: short timeouts, two retries with backoff, then a typed error;
    commands packed in C on a single Redis (see :class:`_CPacking`). With
    ``CREDITRISK_REDIS_CLUSTER_NODES`` set, a Redis Cluster client whose pipelines go to every
    node concurrently (one round trip per node holding the batch's keys)."""
    from redis.asyncio.retry import Retry as AsyncRetry

    retry = AsyncRetry(ExponentialBackoff(cap=0.5, base=0.02), retries=2)
    if settings.redis_cluster_seeds:
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port)
                           for host, port in settings.redis_cluster_seeds],
            retry=retry, **_cluster_options(settings, role))
    return redis.asyncio.Redis.from_url(
        settings.redis_url, retry=retry,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        connection_class=_CPackedTLSConnection if _uses_tls(settings) else _CPackedConnection,
        **_connection_options(settings, role),
    )


def is_cluster(client: RedisClient) -> bool:
    """Whether ``client`` talks to a Redis Cluster (multi-key commands must stay in a slot)."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


async def get_many(client: AsyncRedis, keys: Sequence[str]) -> list[bytes | str | None]:
    """The values of ``keys`` in their order (None where absent), in one round trip per node:
    one MGET on a single Redis; on a cluster one MGET per slot, pipelined to every node
    concurrently (a cluster refuses an MGET whose keys span slots)."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        values: list[bytes | str | None] = await client.mget_nonatomic(list(keys))
    else:
        values = await client.mget(list(keys))
    return values


def get_many_blocking(client: SyncRedis, keys: Sequence[str]) -> list[bytes | str | None]:
    """:func:`get_many` with a blocking client."""
    if isinstance(client, redis.cluster.RedisCluster):
        values: list[bytes | str | None] = client.mget_nonatomic(list(keys))
    else:
        values = client.mget(list(keys))
    return values


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
