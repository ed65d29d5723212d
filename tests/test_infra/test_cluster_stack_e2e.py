"""`creditrisk stack up --cluster`: three brokers and a six-node Redis Cluster that a user can
see in `stack status --cluster`, topics that survive the loss of a broker, and the same Redis
users on every node with the same rights as on the single Redis."""

from __future__ import annotations

import re

import pytest
import redis
from cluster_harness import cluster_stack  # noqa: F401  # tests/cluster_harness.py: the fixture
from typer.testing import CliRunner

from cli.main import app
from config.settings import RedisRole, Settings
from features.store import redis_login
from features.views import BUREAU_VIEW, entity_key_part, view_key_prefix
from infra.stack.redis_acl import ROLES
from infra.stack.redis_cluster import SLOTS, node_client

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_status_shows_three_brokers_and_six_redis_nodes_holding_every_slot(
        cluster_stack: Settings) -> None:  # noqa: F811
    result = CliRunner().invoke(app, ["stack", "status", "--cluster"])

    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith(("kafka", "redis"))]
    brokers = [row for row in rows if "broker and controller" in row]
    primaries = [row for row in rows if " primary, " in row]
    replicas = [row for row in rows if " replica of " in row]
    assert len(brokers) == 3 and all(" yes " in row for row in brokers), result.output
    assert len(primaries) == 3 and len(replicas) == 3, result.output
    slots = [re.search(r"primary, (\d+) slots", row) for row in primaries]
    assert sum(int(found.group(1)) for found in slots if found) == SLOTS
    primary_addresses = {row.split()[1] for row in primaries}
    assert {row.split()[-1] for row in replicas} == primary_addresses  # one replica each


def test_topics_have_three_replicas_and_need_two_in_sync(cluster_stack: Settings) -> None:  # noqa: F811
    from kafka.admin import ConfigResource, ConfigResourceType

    from infra.stack.kafka_access import admin_client

    topic = cluster_stack.topic_applications
    with admin_client(cluster_stack) as admin:
        partitions = admin.describe_topics([topic])[0]["partitions"]
        configs = admin.describe_configs([ConfigResource(
            ConfigResourceType.TOPIC, topic, configs=["min.insync.replicas"])])

    assert len(partitions) == cluster_stack.topic_partitions
    assert all(sorted(partition["replica_nodes"]) == [1, 2, 3] for partition in partitions)
    assert configs["topic"][topic]["min.insync.replicas"]["value"] == "2"


# What each role may do to a customer's bureau features (v2 key, one slot) and to a key of no
# view, the same on every node: (role, command, allowed).
FEATURE_KEY = view_key_prefix(BUREAU_VIEW, "v2") + entity_key_part("C-1", "v2")
RIGHTS: list[tuple[RedisRole, tuple[str, ...], bool]] = [
    ("materializer", ("HSET", FEATURE_KEY, "f", "1"), True),
    ("worker", ("HGETALL", FEATURE_KEY), True),
    ("worker", ("HSET", FEATURE_KEY, "f", "1"), False),
    ("console", ("HGETALL", FEATURE_KEY), False),
    ("ledger", ("SET", "not-a-view", "1"), False),
    ("admin", ("SET", "not-a-view", "1"), True),
]


def test_every_role_logs_in_to_every_node_with_its_own_rights_only(
        cluster_stack: Settings) -> None:  # noqa: F811
    for host, port in cluster_stack.redis_cluster_seeds:
        for role in ROLES:
            with node_client(cluster_stack, host, port, role=role) as client:
                assert client.ping(), f"{role} could not log in to {host}:{port}"
        with node_client(cluster_stack, host, port) as admin:  # ACL DRYRUN: asked, not run
            for role, command, allowed in RIGHTS:
                answer = admin.execute_command("ACL", "DRYRUN", role, *command)
                assert (answer == "OK") is allowed, f"{role} {command[0]} on {port}: {answer}"
    with pytest.raises(redis.AuthenticationError):  # a client that does not log in
        redis.Redis(host=host, port=port, socket_timeout=2).ping()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_a_cluster_client(cluster_stack: Settings, role: RedisRole) -> None:  # noqa: F811
    """A cluster client learns the slot map and the command table as the role itself."""
    host, port = cluster_stack.redis_cluster_seeds[0]
    login = redis_login(cluster_stack, role)
    client = redis.RedisCluster(host=host, port=port, username=login["username"],
                                password=login["password"])
    try:
        assert len(client.get_nodes()) == 6
        assert client.ping()
    finally:
        client.close()
