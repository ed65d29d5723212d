"""The failure policy's reading of a Redis Cluster refusal (no server): a wrong password or a
missing right met while the cluster client discovers the nodes stops the worker as broken
configuration; it is not waited out as an outage."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    NoPermissionError,
    RedisClusterException,
)

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


@pytest.mark.parametrize("cause", [
    AuthenticationError("WRONGPASS invalid username-password pair or user is disabled."),
    NoPermissionError("this user has no permissions to run the 'cluster|slots' command"),
], ids=lambda error: type(error).__name__)
def test_a_refusal_wrapped_by_the_cluster_client_stops_the_worker(cause: BaseException) -> None:
    error = _wrapped(cause)
    assert broken_configuration(error)
    assert outage_dependency(error) is None  # never retried forever as an outage


@pytest.mark.parametrize("error", [
    _wrapped(ConnectionError("Connection refused")),
    ClusterDownError("CLUSTERDOWN The cluster is down"),
], ids=["unreachable-seeds", "cluster-down"])
def test_an_unreachable_cluster_is_an_outage_not_broken_configuration(error: BaseException) -> None:
    assert not broken_configuration(error)
    assert outage_dependency(error) == "redis"
