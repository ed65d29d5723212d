"""The clustered stack's parts that need no server: the brokers' configs, the Redis Cluster's
slot split and node table, compose's cluster profile, the ACLs a cluster client needs; and a
private Redis Cluster failing over (marked ``cluster``)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from config.settings import REPO_ROOT, Settings
from infra.stack.redis_acl import PERMISSIONS
from infra.stack.redis_cluster import SLOTS, parse_node_line, slot_ranges
from infra.stack.services import kafka_nodes, redis_nodes, services


def _properties(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))


def test_the_cluster_profile_has_three_kafka_nodes_and_six_redis_nodes() -> None:
    settings = Settings(profile="cluster")

    assert [node.name for node in kafka_nodes(settings)] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [node.controller_port for node in kafka_nodes(settings)] == [19093, 19095, 19097]
    assert [node.address for node in redis_nodes(settings)] == [
        f"127.0.0.1:{port}" for port in range(17001, 17007)]
    assert [service.name for service in services(Settings(profile="single"))] == [
        "kafka", "redis", "postgres", "prometheus"]  # the single-node stack is unchanged


def test_every_slot_has_exactly_one_primary() -> None:
    ranges = slot_ranges(3)

    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(left[1] + 1 == right[0] for left, right in pairwise(ranges))


def test_a_cluster_nodes_line_gives_role_primary_and_slots() -> None:
    primary = parse_node_line("a1 127.0.0.1:17001@27001 myself,master - 0 0 1 connected 0-5460 "
                              "[5461->-b2]")
    replica = parse_node_line("c3 127.0.0.1:17004@27004 slave,fail a1 0 0 1 connected")

    assert (primary.role, primary.slot_count, primary.serves(5460), primary.serves(5461)) == (
        "primary", 5461, True, False)
    assert (replica.role, replica.primary_id, replica.failed, replica.address) == (
        "replica", "a1", True, "127.0.0.1:17004")


def test_kafka_config_for_three_nodes_makes_one_quorum_with_replicated_topics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_KAFKA_ADMIN_PASSWORD", "compose-admin-password-1")
    result = CliRunner().invoke(app, ["stack", "kafka-config", "--out", str(tmp_path),
                                      "--host", "kafka", "--nodes", "3"])

    assert result.exit_code == 0, result.output
    configs = [_properties(tmp_path / f"node-{node}" / "server.properties") for node in (1, 2, 3)]
    assert [config["node.id"] for config in configs] == ["1", "2", "3"]
    assert {config["controller.quorum.voters"] for config in configs} == {
        "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert configs[1]["advertised.listeners"] == "SASL_SSL://kafka-2:9092"
    for config in configs:
        assert (config["default.replication.factor"], config["min.insync.replicas"],
                config["offsets.topic.replication.factor"],
                config["unclean.leader.election.enable"]) == ("3", "2", "3", "false")
    assert len((tmp_path / "cluster-id").read_text().strip()) == 22


def test_compose_cluster_profile_runs_the_same_configs() -> None:
    services_ = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    cluster = {name: service for name, service in services_.items()
               if "cluster" in service.get("profiles", [])}

    assert {"kafka-1", "kafka-2", "kafka-3", "redis-cluster", "worker-cluster",
            "ledger-cluster", "console-cluster"} <= set(cluster)
    assert {f"redis-node-{node}" for node in range(1, 7)} <= set(cluster)
    for node in (1, 2, 3):
        assert cluster[f"kafka-{node}"]["environment"]["KAFKA_NODE"] == str(node)
    assert "/usr/local/etc/redis/cluster.conf" in cluster["redis-node-4"]["command"]
    worker = cluster["worker-cluster"]["environment"]
    assert worker["CREDITRISK_FEATURE_SCHEMA_VERSION"] == "v2"
    assert worker["CREDITRISK_REDIS_CLUSTER_NODES"].count("redis-node-") == 6
    assert all("profiles" not in services_[name] for name in ("kafka", "redis", "worker"))
    targets = REPO_ROOT / "infra" / "prometheus" / "targets-cluster"
    assert "./infra/prometheus/targets-cluster:/etc/prometheus/targets:ro" in cluster[
        "prometheus-cluster"]["volumes"]
    assert "worker-cluster:6066" in (targets / "worker.json").read_text()


def test_every_redis_role_may_ask_for_the_slot_map() -> None:
    for role, rules in PERMISSIONS.items():
        assert role == "admin" or {"+cluster|slots", "+command", "+asking"} <= set(rules), role


@pytest.mark.cluster
@pytest.mark.integration
def test_a_private_redis_cluster_promotes_a_replica_when_a_primary_is_killed(
        tmp_path: Path) -> None:
    from infra.stack.private import PrivateRedisCluster
    from infra.stack.redis_cluster import node_client

    cluster = PrivateRedisCluster(tmp_path, users=False)
    cluster.start()
    try:
        key = "fs:v2:bureau:{C-1}"
        primary = cluster.primary_of(key)
        with node_client(cluster.settings, primary.host, primary.port) as client:
            client.set(key, "kept")
            client.execute_command("WAIT", 1, 2000)  # the replica has it before the kill

        killed = cluster.kill_primary_of(key)
        cluster.wait_until_ok(timeout_s=30)

        promoted = cluster.primary_of(key)
        assert promoted.address != killed.address
        with node_client(cluster.settings, promoted.host, promoted.port) as client:
            assert client.get(key) == "kept"
    finally:
        cluster.stop()
