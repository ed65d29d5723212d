"""A Redis Cluster of the stack's Redis nodes: primaries that share the 16,384 slots, each
with its replicas, every node with the stack's ACL users.

The nodes are ``redis-server`` processes run with ``infra/redis/redis.conf`` and
``infra/redis/cluster.conf``; the first ``len(nodes) // (1 + replicas)`` of
``redis_cluster_nodes`` become the primaries, the others their replicas in turn, so the
roles are the same at every start. A replica logs in to its primary as ``admin`` (the
password in a file of the node's own, mode 0600, never on a command line).

:func:`form_cluster` joins fresh nodes (slots, ``CLUSTER MEET``, ``CLUSTER REPLICATE``) and
leaves a formed cluster alone; :func:`wait_until_ok` waits until every slot is served again,
e.g. after a primary died and its replica was promoted.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.settings import RedisRole, Settings
from infra.stack.private_files import write_private
from infra.stack.services import INFRA_DIR, Redis, StackError, _answers_ping, _port_in_use

if TYPE_CHECKING:
    import redis

SLOTS = 16384
CLUSTER_CONF = INFRA_DIR / "redis" / "cluster.conf"
BUS_PORT_OFFSET = 10000  # Redis's own rule for the cluster bus port, used by the stack's nodes


@dataclass(frozen=True)
class ClusterNode:
    """One node as the cluster sees it (a line of ``CLUSTER NODES``)."""

    node_id: str
    address: str  # host:port of its clients
    role: str  # primary or replica
    primary_id: str  # the primary a replica copies ("" for a primary)
    failed: bool  # flagged fail (or pfail) by the node asked
    slots: tuple[tuple[int, int], ...]  # inclusive ranges served (primaries)

    @property
    def slot_count(self) -> int:
        return sum(end - start + 1 for start, end in self.slots)

    def serves(self, slot: int) -> bool:
        return any(start <= slot <= end for start, end in self.slots)


class RedisClusterNode(Redis):
    """Node ``index`` (1-based) of ``redis_cluster_nodes``: the stack's Redis service with the
    cluster settings, its files under ``redis-<index>/``. ``users=False``: no ACL users (an
    open node, for tests that need one)."""

    start_timeout_s = 20.0

    def __init__(self, settings: Settings, index: int, bus_port: int | None = None,
                 users: bool = True) -> None:
        self.index = index
        self.name = f"redis-{index}"
        self.users = users
        super().__init__(settings)
        self.host, self._port = settings.redis_cluster_seeds[index - 1]
        self.bus_port = bus_port or self._port + BUS_PORT_OFFSET

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    @property
    def replication_conf(self) -> str:
        return str(self.home / "replication.conf")

    def answering(self) -> bool:
        if not _port_in_use(self._port, self.host):
            return False
        with node_client(self.settings, self.host, self._port, timeout_s=1) as client:
            return _answers_ping(client)

    def lets_anyone_in(self) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return _answers_ping(redis.Redis(host=self.host, port=self._port, socket_timeout=1,
                                         socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)))

    def prepare(self) -> None:
        if self.users:
            super().prepare()
        else:
            self.home.mkdir(parents=True, exist_ok=True)

    def write_acl_file(self) -> None:
        """The ACL users (as every node of the stack has them) and the login this node uses
        when it replicates a primary."""
        super().write_acl_file()
        write_private(self.home / "replication.conf",
                      f"masteruser admin\nmasterauth {self.settings.stack_secret('redis-admin')}\n")

    def command(self) -> list[str]:
        command = ["redis-server", str(INFRA_DIR / "redis" / "redis.conf"),
                   "--include", str(CLUSTER_CONF)]
        if self.users:
            command += ["--include", self.replication_conf, "--aclfile", str(self.acl_path)]
        return [*command, "--port", str(self._port), "--cluster-port", str(self.bus_port),
                "--bind", self.host, "--dir", str(self.home), "--daemonize", "no"]

    def start(self, echo: Callable[[str], None]) -> str:
        if not self.users:
            return super(Redis, self).start(echo)
        return super().start(echo)

    def detail(self) -> str:
        try:
            nodes = cluster_nodes(self.settings, self.host, self._port)
        except StackError:
            return "not in a cluster yet"
        me = next((node for node in nodes if node.address == self.address), None)
        if me is None or (me.role == "primary" and not me.slots and len(nodes) == 1):
            return "not in a cluster yet"
        if me.role == "replica":
            primary = next((node.address for node in nodes if node.node_id == me.primary_id), "?")
            return f"replica of {primary}"
        return f"primary, {me.slot_count} slots " + ",".join(
            f"{start}-{end}" for start, end in me.slots)


def cluster_nodes_of(settings: Settings, users: bool = True) -> list[RedisClusterNode]:
    """The stack's Redis Cluster nodes, in the order of ``redis_cluster_nodes``."""
    return [RedisClusterNode(settings, index, users=users)
            for index in range(1, len(settings.redis_cluster_seeds) + 1)]


@contextmanager
def node_client(settings: Settings, host: str, port: int, role: RedisRole = "admin",
                timeout_s: float = 5.0) -> Iterator[redis.Redis]:
    """A plain client of one node (not cluster-aware), logged in as ``role``."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from features.store import redis_login

    login = redis_login(settings, role)
    # No retries: a node that is down is an answer here (a probe, a failover being watched).
    client = redis.Redis(host=host, port=port, username=login["username"],
                         password=login["password"], socket_timeout=timeout_s,
                         socket_connect_timeout=timeout_s, decode_responses=True,
                         retry=Retry(NoBackoff(), 0))
    try:
        yield client
    finally:
        client.close()


def cluster_nodes(settings: Settings, host: str, port: int) -> list[ClusterNode]:
    """The cluster as the node at ``host:port`` sees it."""
    import redis

    try:
        with node_client(settings, host, port, timeout_s=2) as client:
            text = client.execute_command("CLUSTER", "NODES")
    except (redis.RedisError, OSError) as error:
        raise StackError(f"redis: the node {host}:{port} did not say which nodes it knows "
                         f"({type(error).__name__}: {error})") from None
    return [parse_node_line(line) for line in str(text).splitlines() if line.strip()]


def parse_node_line(line: str) -> ClusterNode:
    """One line of ``CLUSTER NODES``: id, address@bus, flags, primary, ..., slot ranges."""
    fields = line.split()
    flags = fields[2].split(",")
    slots = []
    for part in fields[8:]:
        if part.startswith("["):  # a slot being migrated or imported
            continue
        start, _, end = part.partition("-")
        slots.append((int(start), int(end or start)))
    return ClusterNode(node_id=fields[0], address=fields[1].split("@")[0].split(",")[0],
                       role="replica" if "slave" in flags else "primary",
                       primary_id="" if fields[3] == "-" else fields[3],
                       failed="fail" in flags or "fail?" in flags, slots=tuple(slots))


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """The slots of each primary: 16,384 split into contiguous, nearly equal ranges."""
    return [(index * SLOTS // primaries, (index + 1) * SLOTS // primaries - 1)
            for index in range(primaries)]


def form_cluster(settings: Settings, nodes: list[RedisClusterNode], replicas: int = 1,
                 timeout_s: float = 60.0) -> str:
    """Join running, fresh nodes into one cluster (the first ones primaries with the slots,
    the others their replicas) and wait until it serves every slot; a formed cluster is
    left as it is."""
    if _every_slot_served(settings, nodes):
        _wait_for(lambda: _formed(settings, nodes), timeout_s, "the cluster to serve every slot")
        return f"redis cluster: formed ({len(nodes)} nodes), kept"
    primaries = len(nodes) // (1 + replicas)
    if primaries < 1 or len(nodes) % (1 + replicas):
        raise StackError(f"redis: {len(nodes)} nodes cannot make primaries with {replicas} "
                         f"replica(s) each; list a multiple of {1 + replicas} nodes in "
                         "CREDITRISK_REDIS_CLUSTER_NODES")
    for index, node in enumerate(nodes):
        _fresh_or_refuse(settings, node)
        with node_client(settings, node.host, node.port) as client:
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            if index < primaries:
                start, end = slot_ranges(primaries)[index]
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", start, end)
    first = nodes[0]
    with node_client(settings, first.host, first.port) as client:
        for node in nodes[1:]:  # MEET takes an IP address, not a name (docker-compose's)
            client.execute_command("CLUSTER", "MEET", socket.gethostbyname(node.host),
                                   node.port, node.bus_port)
    _wait_for(lambda: _all_met(settings, nodes), timeout_s, "every node to know the others")
    for offset, node in enumerate(nodes[primaries:]):
        primary = nodes[offset % primaries]
        primary_id = _node_id(settings, primary)
        with node_client(settings, node.host, node.port) as client:
            client.execute_command("CLUSTER", "REPLICATE", primary_id)
    _wait_for(lambda: _formed(settings, nodes), timeout_s,
              "every slot to be served and every replica in sync")
    return (f"redis cluster: formed, {primaries} primaries with {replicas} replica(s) each, "
            f"{SLOTS} slots")


def wait_until_ok(settings: Settings, nodes: list[RedisClusterNode], timeout_s: float = 30.0) -> None:
    """Wait until every running node says the cluster is ok and every slot has a live
    primary (after a failover: the replica promoted and known as such everywhere)."""
    _wait_for(lambda: _every_slot_served(settings, nodes), timeout_s,
              "every slot to have a live primary again")


def primary_serving(settings: Settings, nodes: list[RedisClusterNode], slot: int) -> RedisClusterNode:
    """The node that is the primary of ``slot`` now."""
    running = {_ip_address(node): node for node in _running(nodes)}
    for node in running.values():
        for seen in cluster_nodes(settings, node.host, node.port):
            if (seen.role == "primary" and not seen.failed and seen.serves(slot)
                    and seen.address in running):
                return running[seen.address]
    raise StackError(f"redis: no running primary serves slot {slot}")


def _running(nodes: list[RedisClusterNode]) -> list[RedisClusterNode]:
    return [node for node in nodes if node.answering()]


def _node_id(settings: Settings, node: RedisClusterNode) -> str:
    with node_client(settings, node.host, node.port) as client:
        return str(client.execute_command("CLUSTER", "MYID"))


def _fresh_or_refuse(settings: Settings, node: RedisClusterNode) -> None:
    """A node that knows others or holds slots, in a cluster that does not serve every slot,
    is half of an earlier cluster: joining it to a new one would mix two views."""
    known = cluster_nodes(settings, node.host, node.port)
    if len(known) > 1 or any(seen.slots for seen in known):
        raise StackError(
            f"redis: the node {node.address} belongs to an unfinished cluster (it knows "
            f"{len(known)} node(s)). Stop the stack (`creditrisk stack down --cluster`), remove "
            f"{node.home / 'nodes.conf'} on every node and start it again.")


def _all_met(settings: Settings, nodes: list[RedisClusterNode]) -> bool:
    for node in nodes:
        known = cluster_nodes(settings, node.host, node.port)
        if len(known) < len(nodes):
            return False
    return True


def _cluster_info(settings: Settings, node: RedisClusterNode) -> dict[str, str]:
    import redis

    try:
        with node_client(settings, node.host, node.port, timeout_s=2) as client:
            text = str(client.execute_command("CLUSTER", "INFO"))
    except (redis.RedisError, OSError):
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _every_slot_served(settings: Settings, nodes: list[RedisClusterNode]) -> bool:
    """Every running node says ok with all slots, and in its view each slot's primary is a
    node that runs (right after a primary dies the others still call it theirs)."""
    running = _running(nodes)
    live = {_ip_address(node) for node in running}
    if not running:
        return False
    for node in running:
        info = _cluster_info(settings, node)
        if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
            return False
        served = sum(seen.slot_count for seen in cluster_nodes(settings, node.host, node.port)
                     if seen.role == "primary" and not seen.failed and seen.address in live)
        if served != SLOTS:
            return False
    return True


def _ip_address(node: RedisClusterNode) -> str:
    """``ip:port`` as ``CLUSTER NODES`` names the node (compose's nodes have host names)."""
    return f"{socket.gethostbyname(node.host)}:{node.port}"


def _formed(settings: Settings, nodes: list[RedisClusterNode]) -> bool:
    """Every slot served, and every replica copying its primary (link up)."""
    if not _every_slot_served(settings, nodes):
        return False
    for node in _running(nodes):
        with node_client(settings, node.host, node.port, timeout_s=2) as client:
            replication = client.info("replication")
        if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
            return False
    return True


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except StackError:
            pass  # a node restarting: ask again
        time.sleep(0.2)
    raise StackError(f"redis: waited {timeout_s:.0f} s for {what}; see the nodes' logs under "
                     "the stack folder's logs/")
