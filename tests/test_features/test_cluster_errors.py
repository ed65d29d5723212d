"""What a Redis Cluster's errors mean to the worker (no server): a failover's errors are an
outage (retry the batch), a refusal wrapped by the cluster client is still a refusal, and the
failure policy stops the worker on it as broken configuration instead of waiting it out."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    ClusterError,
    MasterDownError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from features.store import refusal_in
from stream.failures import broken_configuration, outage_dependency


def _wrapped(cause: BaseException) -> RedisClusterException:
    """As redis-py raises it when no seed node lets it discover the cluster."""
    try:
        try:
            raise cause
        except Exception as error:
            raise RedisClusterException(f"Redis Cluster cannot be connected: {error}") from error
    except RedisClusterException as wrapped:
        return wrapped


@pytest.mark.parametrize("error", [
    ClusterDownError("CLUSTERDOWN The cluster is down"),
    MasterDownError("MASTERDOWN Link with MASTER is down"),
    ClusterError("TTL exhausted."),
    SlotNotCoveredError('Slot "42" is not covered by the cluster.'),
    TryAgainError("TRYAGAIN"),
    MovedError("3999 127.0.0.1:7002"),
    AskError("3999 127.0.0.1:7002"),
    _wrapped(ConnectionError("Connection refused")),
], ids=lambda error: type(error).__name__)
def test_a_failover_is_an_outage_of_redis_not_a_fault_of_the_events(error: BaseException) -> None:
    assert outage_dependency(error) == "redis"
    assert refusal_in(error) is None


@pytest.mark.parametrize("cause", [
    AuthenticationError("invalid username-password pair or user is disabled."),
    NoPermissionError("this user has no permissions to run the 'cluster|slots' command"),
])
def test_a_refusal_wrapped_by_the_cluster_client_is_found_and_stops_the_worker(
        cause: BaseException) -> None:
    assert refusal_in(_wrapped(cause)) is cause
    assert refusal_in(cause) is cause
    assert broken_configuration(_wrapped(cause))
    assert outage_dependency(_wrapped(cause)) is None  # never retried forever as an outage


@pytest.mark.parametrize("error", [
    _wrapped(ConnectionError("Connection refused")),
    ClusterDownError("CLUSTERDOWN The cluster is down"),
], ids=["unreachable-seeds", "cluster-down"])
def test_an_unreachable_cluster_is_an_outage_not_broken_configuration(error: BaseException) -> None:
    assert not broken_configuration(error)
    assert outage_dependency(error) == "redis"
