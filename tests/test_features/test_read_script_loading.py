"""Where the read script is loaded (no server): every primary of a Redis Cluster, since each
customer's read runs on the primary of its slot; the one Redis otherwise. The warm start
opens connections to every primary too."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster

from features.online import load_read_script
from features.store import READ_CUSTOMER
from stream.warm_start import warm_redis

SHA = hashlib.sha1(READ_CUSTOMER.encode()).hexdigest()


class RecordingCluster(RedisCluster):
    """A cluster client that never connects: it records each command and where it was sent."""

    def __init__(self) -> None:
        super().__init__(startup_nodes=[ClusterNode("127.0.0.1", 1)])
        self.sent: list[tuple[str, object]] = []

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        self.sent.append((str(args[0]), kwargs.get("target_nodes")))
        return SHA.encode() if args[0] == "SCRIPT LOAD" else True


class RecordingRedis:
    """A single Redis that records its commands."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def ping(self) -> bool:
        self.sent.append("PING")
        return True

    async def script_load(self, script: str) -> str:
        assert script == READ_CUSTOMER
        self.sent.append("SCRIPT LOAD")
        return SHA


def test_on_a_cluster_the_script_is_loaded_on_every_primary() -> None:
    cluster = RecordingCluster()
    assert asyncio.run(load_read_script(cluster)) == SHA  # as text, whatever the reply
    assert cluster.sent == [("SCRIPT LOAD", RedisCluster.PRIMARIES)]


def test_on_a_single_redis_the_script_is_loaded_there() -> None:
    single = RecordingRedis()
    assert asyncio.run(load_read_script(single)) == SHA  # type: ignore[arg-type]
    assert single.sent == ["SCRIPT LOAD"]


def test_the_warm_start_reaches_every_primary_of_a_cluster() -> None:
    cluster = RecordingCluster()
    asyncio.run(warm_redis(cluster, connections=3))
    assert cluster.sent == [("PING", RedisCluster.PRIMARIES)] * 3 + [
        ("SCRIPT LOAD", RedisCluster.PRIMARIES)]


def test_the_warm_start_on_a_single_redis_opens_its_connections_and_loads_the_script() -> None:
    single = RecordingRedis()
    asyncio.run(warm_redis(single, connections=3))  # type: ignore[arg-type]
    assert single.sent == ["PING"] * 3 + ["SCRIPT LOAD"]
