"""``creditrisk stack up | down | status | topics | redis-acl``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from config.settings import Settings, get_settings
from infra.stack import services as stack

stack_app = typer.Typer(help="The local Kafka, Redis and Prometheus (no Docker needed).",
                        no_args_is_help=True)

CLUSTER_OPTION = typer.Option(
    False, "--cluster", help="the clustered stack: three Kafka brokers and a six-node Redis "
    "Cluster, in .stack-cluster/ on ports of its own (the same as CREDITRISK_PROFILE=cluster)")


def stack_settings(cluster: bool) -> Settings:
    """The settings of the stack asked for: ``--cluster`` selects the cluster profile."""
    return Settings(profile="cluster") if cluster else get_settings()


def _flag(settings: Settings) -> str:
    return " --cluster" if settings.profile == "cluster" else ""


@stack_app.command("up")
def stack_up(cluster: bool = CLUSTER_OPTION) -> None:
    """Start every service that is not already answering, then create the topics."""
    settings = stack_settings(cluster)
    try:
        stack.up(settings, echo=typer.echo)
    except stack.StackError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"stack is up; `creditrisk stack status{_flag(settings)}` shows it, "
               f"`creditrisk stack down{_flag(settings)}` stops it")


@stack_app.command("down")
def stack_down(cluster: bool = CLUSTER_OPTION) -> None:
    """Stop the services this stack started (others are left alone)."""
    stack.down(stack_settings(cluster), echo=typer.echo)


@stack_app.command("status")
def stack_status(cluster: bool = CLUSTER_OPTION) -> None:
    """Each service (each Kafka broker and Redis node of a cluster, with its role), its
    address, whether it answers and whether we started it."""
    settings = stack_settings(cluster)
    all_answering = True
    typer.echo(f"{'service':<12}{'address':<20}{'answering':<11}{'pid':<9}{'owner':<12}role")
    for row in stack.status(settings):
        all_answering &= row.answering
        _print_status(row)
    for service in stack.application_services(settings):
        row = service.status()
        if row.answering or row.started_by_us:
            _print_status(row)
    raise typer.Exit(code=0 if all_answering else 3)


def _print_status(row: stack.ServiceStatus) -> None:
    owner = "this stack" if row.started_by_us else "-"
    typer.echo(f"{row.name:<12}{row.address:<20}{'yes' if row.answering else 'no':<11}"
               f"{row.pid or '-'!s:<9}{owner:<12}{row.detail}".rstrip())


@stack_app.command("topics")
def stack_topics(
    principals: bool = typer.Option(False, "--principals", help="also set the SCRAM passwords "
                                    "of the producer, worker, reader, ledger and finals principals "
                                    "(from CREDITRISK_KAFKA_<ROLE>_PASSWORD)"),
) -> None:
    """Create the service's topics on the configured Kafka (any cluster, not only the local
    one) and grant each principal its ACLs on them; connects as CREDITRISK_KAFKA_USERNAME."""
    from infra.stack.kafka_access import ensure_principals

    settings = get_settings()
    for line in [*(ensure_principals(settings, from_environment=True) if principals else []),
                 *stack.create_topics(settings)]:
        typer.echo(line)


@stack_app.command("kafka-config")
def stack_kafka_config(
    out: Path = typer.Option(..., "--out", help="folder for server.properties and tls/"),
    host: str = typer.Option("kafka", "--host", help="the name clients reach the broker by"),
    data: Path = typer.Option(Path("/var/lib/kafka/data"), "--data", help="the broker's log dir"),
    nodes: int = typer.Option(1, "--nodes", min=1, help="nodes of one KRaft quorum: with more "
                              "than one, node i is reached as <host>-<i> and its config is "
                              "node-<i>/server.properties (topics: 3 replicas, 2 in sync)"),
) -> None:
    """Write the broker config of infra/kafka/server.properties and its certificates for a
    broker the stack does not run, e.g. docker-compose's, with the admin password from
    CREDITRISK_KAFKA_ADMIN_PASSWORD. The local stack writes its own on `stack up`."""
    password = os.environ.get("CREDITRISK_KAFKA_ADMIN_PASSWORD", "")
    if not password:
        typer.secho("set CREDITRISK_KAFKA_ADMIN_PASSWORD (the broker's admin principal)",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    settings = get_settings()
    out.mkdir(parents=True, exist_ok=True)
    if nodes == 1:
        stack.write_kafka_config(out / "server.properties", out / "tls", host=host,
                                 bind="0.0.0.0", port=settings.kafka_port,
                                 controller_port=settings.kafka_controller_port,
                                 log_dirs=data, admin_password=password)
        typer.echo(f"{out}: server.properties, tls/ca.pem, tls/broker.pem")
        return
    hosts = [f"{host}-{node_id}" for node_id in range(1, nodes + 1)]
    voters = stack.quorum_voters([(name, settings.kafka_controller_port) for name in hosts])
    for node_id, name in enumerate(hosts, start=1):
        (out / f"node-{node_id}").mkdir(exist_ok=True)
        stack.write_kafka_config(out / f"node-{node_id}" / "server.properties", out / "tls",
                                 host=name, bind="0.0.0.0", port=settings.kafka_port,
                                 controller_port=settings.kafka_controller_port, log_dirs=data,
                                 admin_password=password, node_id=node_id, quorum_voters=voters,
                                 replication_factor=min(3, nodes),
                                 min_insync_replicas=min(2, nodes - 1))
    if not (out / "cluster-id").exists():  # every node is formatted with the same id
        (out / "cluster-id").write_text(stack.kafka_uuid() + "\n")
    typer.echo(f"{out}: node-1..{nodes}/server.properties, cluster-id, tls/ca.pem, tls/broker.pem")


@stack_app.command("redis-cluster")
def stack_redis_cluster(
    nodes: str = typer.Option(..., "--nodes", help="host:port of every node, primaries first "
                              "(e.g. redis-node-1:6379,...,redis-node-6:6379)"),
    replicas: int = typer.Option(1, "--replicas", min=0, help="replicas of each primary"),
) -> None:
    """Join running Redis nodes the stack does not run (docker-compose's cluster profile) into
    one Redis Cluster, logged in as CREDITRISK_REDIS_USERNAME / _PASSWORD (the admin); a
    formed cluster is left as it is. `stack up --cluster` forms its own."""
    from infra.stack.redis_cluster import RedisClusterNode, form_cluster

    settings = get_settings().model_copy(update={"redis_cluster_nodes": nodes})
    members = [RedisClusterNode(settings, index)
               for index in range(1, len(settings.redis_cluster_seeds) + 1)]
    try:
        typer.echo(form_cluster(settings, members, replicas=replicas, timeout_s=120))
    except stack.StackError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None


@stack_app.command("redis-acl")
def stack_redis_acl(
    out: Path = typer.Option(..., "--out", help="the ACL file to write (mode 0600)"),
    replication_conf: Path | None = typer.Option(
        None, "--replication-conf", help="also write the login Redis Cluster replicas use "
        "with their primaries (masteruser admin, masterauth; mode 0600), for `include`"),
) -> None:
    """Write the Redis ACL users (infra/stack/redis_acl.py) for a Redis the stack does not run, e.g.
    docker-compose's: each password from CREDITRISK_REDIS_<USER>_PASSWORD, only its hash
    in the file. The local stack writes its own on `stack up`."""
    from infra.stack.private_files import write_private
    from infra.stack.redis_acl import ROLES, acl_file

    variables = {role: f"CREDITRISK_REDIS_{role.upper()}_PASSWORD" for role in ROLES}
    passwords = {role: os.environ.get(name, "") for role, name in variables.items()}
    missing = [variables[role] for role in ROLES if not passwords[role]]
    if missing:
        typer.secho(f"set {', '.join(missing)} (one password per Redis user)",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    write_private(out, acl_file(passwords))
    typer.echo(f"{out}: users {', '.join(('default (off)', *ROLES))}")
    if replication_conf is not None:
        write_private(replication_conf,
                      f"masteruser admin\nmasterauth {passwords['admin']}\n")
        typer.echo(f"{replication_conf}: replicas log in to their primaries as admin")
