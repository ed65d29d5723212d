"""Servers of one's own beside the shared local stack, for a fault run or a test that stops,
restarts or reconfigures one: one helper per service, each on free loopback ports and in a
folder of its own, so the shared stack (used by everyone on the machine) is never touched.

A private Kafka broker is :class:`infra.stack.services.Kafka` with other settings; a private
Redis is a ``redis-server`` process run with the stack's ``redis.conf``, with ACL users of its
own like the stack's Redis, or open (or protected as its extra arguments say) when a test
needs a Redis without the stack's users. The clustered ones (three Kafka nodes in one
quorum, a Redis Cluster of primaries and replicas) are for the faults a cluster survives: a
broker or a primary SIGKILLed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from config.kafka_auth import KAFKA_ROLES, kafka_secret_name
from config.settings import Settings
from infra.stack.kafka_access import ensure_principals
from infra.stack.redis_cluster import RedisClusterNode, form_cluster, primary_serving, wait_until_ok
from infra.stack.services import (
    INFRA_DIR,
    LOOPBACK,
    Kafka,
    Redis,
    launch_together,
    process_alive,
    redis_answers,
)

START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def share_kafka_credentials(settings: Settings, workdir: Path) -> None:
    """Copy the shared stack's Kafka passwords and CA into a private server's folder, so
    settings pointing at that folder reach the shared broker (or a private one made with the
    same credentials) as the same principals."""
    for role in KAFKA_ROLES:
        source, target = (settings.stack_secret_path(kafka_secret_name(role)),
                          workdir / "secrets" / kafka_secret_name(role))
        if source.exists() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if (settings.stack_dir / "tls").is_dir() and not (workdir / "tls").exists():
        shutil.copytree(settings.stack_dir / "tls", workdir / "tls")


class PrivateKafka:
    """A single-node KRaft broker of one's own (``infra.stack.services.Kafka`` on free ports)."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        port, controller = free_port(), free_port()
        jars = settings.kafka_jars_dir
        if not (jars / ".pom-sha256").exists() and (settings.stack_dir / "kafka-jars").is_dir():
            jars = settings.stack_dir / "kafka-jars"  # the running stack's cache
        self.settings = settings.model_copy(update={
            "kafka_bootstrap": f"{LOOPBACK}:{port}", "kafka_controller_port": controller,
            "stack_dir": workdir, "kafka_jars_dir": jars, "kafka_heap": "384m"})
        self.service = Kafka(self.settings)
        share_kafka_credentials(settings, workdir)

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def start(self) -> None:
        self.service.start(echo=lambda line: None)
        ensure_principals(self.settings)

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown; the log is recovered at the next start."""
        pid = self.service.our_pid()
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            while process_alive(pid):
                time.sleep(0.05)
            self.service.pid_path.unlink(missing_ok=True)

    def stop(self) -> None:
        self.service.stop(timeout_s=20)


class PrivateRedis:
    """A ``redis-server`` of one's own on a free loopback port, its files in ``workdir``.

    ``users``: ACL users of its own, one per role as the stack's Redis has (passwords in
    ``workdir``), so :attr:`settings` log in as any role; without them it is open, or
    protected as ``extra_args`` say (a password, TLS). ``persistent``: its data survive a
    restart (append-only file, fsync always), so a restart loses only what a restart loses:
    connections and the script cache. ``settings`` default to the environment's; with
    ``users`` their Kafka credentials are copied too, so settings on ``workdir`` still reach
    Kafka.
    """

    def __init__(self, workdir: Path, *extra_args: str, settings: Settings | None = None,
                 users: bool = True, persistent: bool = False) -> None:
        base = settings or Settings()
        self.workdir = workdir
        self.extra_args = extra_args
        self.port = free_port()
        self.users = users
        self.persistent = persistent
        self.settings = base.model_copy(update={
            "redis_url": f"redis://{LOOPBACK}:{self.port}/0", "stack_dir": workdir})
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        if users:
            share_kafka_credentials(base, workdir)

    @property
    def url(self) -> str:
        return self.settings.redis_url

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install "
                               "redis-server; `make install` does it)")
        command = [binary, str(INFRA_DIR / "redis" / "redis.conf"), "--port", str(self.port),
                   "--bind", LOOPBACK, "--dir", str(self.workdir), "--daemonize", "no"]
        if self.users:
            command += ["--aclfile", str(Redis(self.settings).acl_path)]
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        return [*command, *self.extra_args]

    def start(self) -> None:
        if self.users:
            Redis(self.settings).write_acl_file()  # the users, and the marker naming this port
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the private redis-server exited at start-up; see "
                                   f"{self.workdir / 'redis.log'}")
            if self._answering():
                return
            time.sleep(0.05)
        raise RuntimeError(f"the private redis-server on port {self.port} did not answer "
                           f"within {START_TIMEOUT_S:.0f} s; see {self.workdir / 'redis.log'}")

    def _answering(self) -> bool:
        if self.users:  # the admin's PING, once the data are loaded
            return redis_answers(self.settings)
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: a clean shutdown (the append-only file is written)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: nothing is flushed."""
        self._end(signal.SIGKILL)

    def restart(self, down_s: float = 0.0) -> None:
        """A clean restart, down for ``down_s`` seconds."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def _end(self, how: signal.Signals) -> None:
        if self.process is None:
            return
        self.process.send_signal(how)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def free_port_run(length: int) -> int:
    """The first of ``length`` consecutive free loopback ports (a cluster's brokers and their
    controllers take port, port + 1, ...)."""
    for _ in range(50):
        first = free_port()
        if first + length < 65536 and all(_port_free(first + offset) for offset in range(length)):
            return first
    raise RuntimeError(f"found no {length} consecutive free loopback ports")


def distinct_free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports (the kernel may hand out one port twice when
    each is asked for alone and released)."""
    chosen: list[int] = []
    for _ in range(50 * count):
        port = free_port()
        if port not in chosen:
            chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"found only {len(chosen)} of {count} different free loopback ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _kill_group(pid: int) -> None:
    """SIGKILL a server's process group and wait until it is gone."""
    os.killpg(pid, signal.SIGKILL)
    while process_alive(pid):
        time.sleep(0.05)


class PrivateKafkaCluster:
    """Kafka nodes of one's own forming one KRaft quorum (each a broker and a controller), on
    free loopback ports, with the shared stack's principals, TLS and ACLs: topics get
    ``brokers`` replicas with ``brokers - 1`` in sync. Nodes are named by their Kafka node id,
    1 to ``brokers``, as :meth:`leader_of` returns them."""

    def __init__(self, settings: Settings, workdir: Path, brokers: int = 3) -> None:
        first = free_port_run(2 * brokers)  # broker i: first + 2i, its controller the next
        jars = settings.kafka_jars_dir
        if not (jars / ".pom-sha256").exists() and (settings.stack_dir / "kafka-jars").is_dir():
            jars = settings.stack_dir / "kafka-jars"
        self.settings = settings.model_copy(update={
            "kafka_bootstrap": ",".join(f"{LOOPBACK}:{first + 2 * index}" for index in range(brokers)),
            "kafka_controller_port": first + 1, "stack_dir": workdir, "kafka_jars_dir": jars,
            "kafka_heap": "384m", "kafka_replication_factor": brokers,
            "kafka_min_insync_replicas": max(1, brokers - 1)})
        self.nodes = [Kafka(self.settings, node_id) for node_id in range(1, brokers + 1)]
        workdir.mkdir(parents=True, exist_ok=True)
        share_kafka_credentials(settings, workdir)

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def start(self) -> None:
        """Start every node (together: the quorum needs most of them), then the principals."""
        quiet = lambda line: None  # noqa: E731
        launch_together(self.nodes, quiet)
        for node in self.nodes:
            node.start(quiet)
        ensure_principals(self.settings)

    def node(self, node_id: int) -> Kafka:
        if not 1 <= node_id <= len(self.nodes):
            raise ValueError(f"no Kafka node {node_id}: the nodes are 1 to {len(self.nodes)}")
        return self.nodes[node_id - 1]

    def kill(self, node_id: int) -> None:
        """SIGKILL node ``node_id``: no controlled shutdown, its leaderships move at once."""
        node = self.node(node_id)
        pid = node.our_pid()
        if pid is not None:
            _kill_group(pid)
            node.pid_path.unlink(missing_ok=True)

    def start_broker(self, node_id: int) -> None:
        """Start node ``node_id`` again and wait until the cluster counts it live."""
        self.node(node_id).start(echo=lambda line: None)

    def leader_of(self, topic: str, partition: int) -> int:
        """The node id leading ``topic``'s ``partition`` now."""
        from infra.stack.kafka_access import admin_client

        with admin_client(self.settings) as admin:
            for described in admin.describe_topics([topic]):
                for found in described["partitions"]:
                    if found["partition_index"] == partition:
                        return int(found["leader_id"])
        raise ValueError(f"Kafka does not know partition {partition} of topic {topic}")

    def wait_for_leader(self, topic: str, partition: int, other_than: int | None = None,
                        timeout_s: float = 60.0) -> int:
        """The node id leading the partition once one other than ``other_than`` does (a
        SIGKILLed leader keeps its leadership until the controller fences it, ~9 s)."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                leader = self.leader_of(topic, partition)
            except (KafkaError, ValueError):
                leader = -1
            if leader >= 0 and leader != other_than:
                return leader
            time.sleep(0.5)
        raise RuntimeError(f"no Kafka node other than {other_than} took the lead of {topic}/"
                           f"{partition} within {timeout_s:.0f} s; see the nodes' logs in "
                           f"{self.settings.stack_dir / 'logs'}")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop(timeout_s=20)


class PrivateRedisCluster:
    """A Redis Cluster of one's own: ``primaries`` primaries with ``replicas`` replicas each,
    ``redis-server`` processes on free loopback ports with the stack's redis.conf and
    cluster.conf, their files in ``workdir``. ``users``: the stack's ACL users on every node
    (passwords in ``workdir``; replicas log in to their primaries as admin), else open nodes.
    :attr:`settings` point at it (``redis_cluster_nodes``, v2 feature keys)."""

    def __init__(self, workdir: Path, *, settings: Settings | None = None, users: bool = True,
                 primaries: int = 3, replicas: int = 1) -> None:
        base = settings or Settings()
        count = primaries * (1 + replicas)
        chosen = distinct_free_ports(2 * count)
        ports, bus_ports = chosen[:count], chosen[count:]
        self.workdir = workdir
        self.replicas = replicas
        self.settings = base.model_copy(update={
            "redis_url": f"redis://{LOOPBACK}:{ports[0]}/0",
            "redis_cluster_nodes": ",".join(f"{LOOPBACK}:{port}" for port in ports),
            "feature_schema_version": "v2", "stack_dir": workdir})
        self.nodes = [RedisClusterNode(self.settings, index + 1, bus_port=bus_ports[index],
                                       users=users)
                      for index in range(count)]
        workdir.mkdir(parents=True, exist_ok=True)
        if users:
            share_kafka_credentials(base, workdir)

    @property
    def url(self) -> str:
        return self.settings.redis_url

    def start(self) -> None:
        """Start every node and form the cluster; returns once every slot is served and every
        replica copies its primary."""
        for node in self.nodes:
            node.start(echo=lambda line: None)
        form_cluster(self.settings, self.nodes, replicas=self.replicas)

    def primary_of(self, key: str | bytes) -> RedisClusterNode:
        """The node that is the primary of ``key``'s slot now."""
        from redis.crc import key_slot

        return primary_serving(self.settings, self.nodes,
                               key_slot(key.encode() if isinstance(key, str) else key))

    def kill_primary_of(self, key: str | bytes) -> RedisClusterNode:
        """SIGKILL the primary of ``key``'s slot (its replica takes over after the cluster's
        node timeout, 3 s); return the node killed."""
        node = self.primary_of(key)
        self.kill(node)
        return node

    def kill(self, node: RedisClusterNode) -> None:
        pid = node.our_pid()
        if pid is not None:
            _kill_group(pid)
            node.pid_path.unlink(missing_ok=True)

    def restart(self, node: RedisClusterNode) -> None:
        """Start a killed node again: it rejoins (as the replica of whoever took its slots)."""
        node.start(echo=lambda line: None)

    def wait_until_ok(self, timeout_s: float = 30.0) -> None:
        """Wait until every slot has a live primary again (a replica promoted)."""
        wait_until_ok(self.settings, self.nodes, timeout_s)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop(timeout_s=20)
