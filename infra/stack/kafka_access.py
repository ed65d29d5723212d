"""Kafka topics, principals and ACLs: what each role of the product may touch.

``provision(settings)`` is the one way topics come to exist (the broker does not create
them on first use): it creates the topics a deployment's settings name — Faust's leader
topic for the worker's consumer group included — and grants each role exactly its job on
them (``config/kafka_auth.py`` lists the roles). It is idempotent; ``creditrisk stack up``
runs it for the configured names, and tests and benchmarks for their own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.kafka_auth import KAFKA_ROLES, KafkaCredentialsMissing, kafka_python_options, kafka_secret_name
from config.settings import Settings

if TYPE_CHECKING:
    from kafka.admin import ACL, KafkaAdminClient, NewTopic


@dataclass(frozen=True)
class Grant:
    """One permission of one role: ``operation`` on a topic or a consumer group."""

    role: str
    operation: str  # READ, WRITE, DESCRIBE
    resource: str  # TOPIC or GROUP
    name: str
    prefixed: bool = False


def leader_topic(settings: Settings) -> str:
    """Faust's internal topic for the worker's consumer group (the stack creates it)."""
    return f"{settings.worker_group}-__assignor-__leader"


def ensure_leader_topic(settings: Settings, group: str) -> None:
    """Create Faust's leader topic for consumer group ``group`` (its workers may not)."""
    ensure_topics(settings, {leader_topic(settings.model_copy(update={"worker_group": group})): 1})


def grants(settings: Settings) -> list[Grant]:
    """Every permission the roles need on the topics and groups ``settings`` name."""
    applications, decisions = settings.topic_applications, settings.topic_decisions
    dead_letters, outcomes = settings.topic_dead_letters, settings.topic_outcomes
    finals, shadow = settings.topic_final_decisions, settings.topic_shadow_decisions
    result: list[Grant] = []

    def allow(role: str, operations: tuple[str, ...], resource: str, name: str,
              prefixed: bool = False) -> None:
        if name:  # a namespace may leave a topic out (a benchmark's has no outcomes)
            result.extend(Grant(role, operation, resource, name, prefixed) for operation in operations)

    write, read = ("WRITE", "DESCRIBE"), ("READ", "DESCRIBE")
    allow("producer", write, "TOPIC", applications)
    allow("producer", write, "TOPIC", outcomes)
    allow("worker", read, "TOPIC", applications)
    allow("worker", write, "TOPIC", decisions)
    allow("worker", write, "TOPIC", dead_letters)
    # Challengers' decisions: only the worker writes them; the ledger stores them beside the
    # champion's and downstream analysts may read them (nobody acts on them).
    allow("worker", write, "TOPIC", shadow)
    allow("reader", read, "TOPIC", shadow)
    allow("ledger", read, "TOPIC", shadow)
    allow("worker", ("READ", "WRITE", "DESCRIBE"), "TOPIC", leader_topic(settings))
    allow("worker", read, "GROUP", settings.worker_group)
    allow("reader", read, "TOPIC", decisions)
    allow("reader", read, "TOPIC", dead_letters)
    allow("reader", read, "GROUP", settings.reader_group_prefix, prefixed=True)
    allow("ledger", read, "TOPIC", decisions)
    allow("ledger", read, "TOPIC", outcomes)
    allow("ledger", read, "GROUP", settings.ledger_group)
    # Final decisions: the ledger writer's outbox publishes them as `finals`, the only writer
    # (its idempotent producer needs no cluster right: WRITE on a topic allows it since
    # Kafka 2.8); downstream systems read them as `reader`.
    allow("finals", write, "TOPIC", finals)
    allow("reader", read, "TOPIC", finals)
    return result


@contextlib.contextmanager
def admin_client(settings: Settings, timeout_ms: int = 15_000) -> Iterator[KafkaAdminClient]:
    """kafka-python's admin client as the ``admin`` principal."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(client_id="creditrisk-stack", request_timeout_ms=timeout_ms,
                             **kafka_python_options(settings, "admin"))
    try:
        yield admin
    finally:
        admin.close()


def principal_password(settings: Settings, role: str, from_environment: bool = False) -> str:
    """A principal's password: the local stack's (generated once; its clients read the same
    file), or, for a broker the stack does not run (docker-compose),
    ``CREDITRISK_KAFKA_<ROLE>_PASSWORD``."""
    from infra.stack.services import ensure_stack_secret

    if not from_environment:
        return ensure_stack_secret(settings, kafka_secret_name(role))
    variable = f"CREDITRISK_KAFKA_{role.upper()}_PASSWORD"
    password = os.environ.get(variable, "")
    if not password:
        raise KafkaCredentialsMissing(f"set {variable} (the password of the {role} principal)")
    return password


def ensure_principals(settings: Settings, from_environment: bool = False) -> list[str]:
    """SCRAM credentials of the roles, set to their passwords (the admin's exists from the
    storage format: it is how the broker authenticates to itself)."""
    from kafka.admin import UserScramCredentialUpsertion

    roles = [role for role in KAFKA_ROLES if role != "admin"]
    upserts = [UserScramCredentialUpsertion(role, settings.kafka_sasl_mechanism,
                                            principal_password(settings, role, from_environment))
               for role in roles]
    with admin_client(settings) as admin:
        failures = {user: error for user, error in admin.alter_user_scram_credentials(upserts).items()
                    if error}
    if failures:
        raise RuntimeError(f"kafka: could not set the credentials of {sorted(failures)}: {failures}")
    return [f"kafka principal {role}: ready" for role in roles]


def provision(settings: Settings, partitions: int | None = None) -> list[str]:
    """Create the topics ``settings`` name (existing ones are kept) and grant each role its
    permissions on them; return one line per topic."""
    partitions = partitions or settings.topic_partitions
    names = (settings.topic_applications, settings.topic_decisions, settings.topic_dead_letters,
             settings.topic_outcomes, settings.topic_final_decisions,
             settings.topic_shadow_decisions)
    topics = dict.fromkeys((name for name in names if name), partitions)
    topics[leader_topic(settings)] = 1  # Faust's leader topic has one partition
    lines = ensure_topics(settings, topics)
    grant(settings, grants(settings))
    return lines


def ensure_topics(settings: Settings, topics: dict[str, int]) -> list[str]:
    """Create the named topics with their partition counts; existing ones are kept."""
    from kafka.errors import TopicAlreadyExistsError

    with admin_client(settings) as admin:
        existing = set(admin.list_topics())
        missing = [name for name in topics if name not in existing]
        for name in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([_new_topic(settings, name, topics[name])])
    return [f"topic {name}: " + ("created" if name in missing else "exists") for name in topics]


def _new_topic(settings: Settings, name: str, partitions: int) -> NewTopic:
    """A topic with the configured replicas; with more than one, an acks=all write needs
    ``kafka_min_insync_replicas`` of them."""
    from kafka.admin import NewTopic

    configs = ({"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
               if settings.kafka_replication_factor > 1 else {})
    return NewTopic(name, num_partitions=partitions,
                    replication_factor=settings.kafka_replication_factor, topic_configs=configs)


def grant(settings: Settings, permissions: list[Grant], timeout_s: float = 15.0) -> None:
    """Create ACLs (already existing ones are kept: Kafka's ACLs are a set) and return once
    the broker enforces them.

    The controller answers as soon as the ACLs are in the metadata log; a broker applies them
    when it replays that log, a moment later. A client acting on the grant in that moment is
    refused (TOPIC_AUTHORIZATION_FAILED), so the grant waits until the broker lists them."""
    import time

    wanted = [_acl(permission) for permission in permissions]
    with admin_client(settings) as admin:
        result = admin.create_acls(wanted)
        if result.get("failed"):
            raise RuntimeError(f"kafka: ACLs refused: {result['failed']}")
        deadline = time.monotonic() + timeout_s
        while missing := _acls_not_enforced(admin, wanted):
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka: {len(missing)} ACLs created but not enforced by the "
                                   f"broker after {timeout_s:.0f} s (first: {missing[0]})")
            time.sleep(0.1)


def _acls_not_enforced(admin: KafkaAdminClient, wanted: list[ACL]) -> list[ACL]:
    """The ACLs of ``wanted`` the broker does not list yet."""
    present = {_acl_key(acl) for acl in _listed_acls(admin)}
    return [acl for acl in wanted if _acl_key(acl) not in present]


def _listed_acls(admin: KafkaAdminClient) -> list[ACL]:
    """Every ACL the broker enforces."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                  ACLResourcePatternType.ANY))
    listed, _ = admin.describe_acls(everything)
    return list(listed)


def _acl_key(acl: ACL) -> tuple[object, ...]:
    pattern = acl.resource_pattern
    return (acl.principal, acl.host, acl.operation, acl.permission_type,
            pattern.resource_type, pattern.resource_name, pattern.pattern_type)


def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics (a benchmark's or a test's own); ones already gone are ignored."""
    from kafka.errors import KafkaError

    with admin_client(settings) as admin, contextlib.suppress(KafkaError):
        admin.delete_topics(names)


def grant_prefix(settings: Settings, prefix: str) -> None:
    """Let the pipeline's roles do their jobs on every topic and group named ``prefix...``
    (a benchmark's scratch topics): the producer writes, the worker reads and writes, the
    reader reads. :func:`retire_prefix` takes it back."""
    read, write = ("READ", "DESCRIBE"), ("WRITE", "DESCRIBE")
    permissions = [Grant(role, operation, "TOPIC", prefix, prefixed=True)
                   for role, operations in (("producer", write), ("worker", (*read, "WRITE")),
                                            ("reader", read))
                   for operation in operations]
    permissions += [Grant(role, "READ", "GROUP", prefix, prefixed=True) for role in ("worker", "reader")]
    grant(settings, permissions)


def retire_prefix(settings: Settings, prefix: str) -> None:
    """Delete every topic, ACL and consumer group whose name starts with ``prefix`` (a test's
    or a benchmark's namespace: its topics, its workers' groups and their leader topics)."""
    from kafka.admin import ACLFilter
    from kafka.errors import KafkaError

    if not prefix:
        raise ValueError("refusing to retire every topic: the prefix is empty")
    with admin_client(settings) as admin:
        mine = [ACLFilter(acl.principal, acl.host, acl.operation, acl.permission_type,
                          acl.resource_pattern)
                for acl in _listed_acls(admin) if acl.resource_pattern.resource_name.startswith(prefix)]
        if mine:
            admin.delete_acls(mine)
        topics = [name for name in admin.list_topics() if name.startswith(prefix)]
        if topics:
            with contextlib.suppress(KafkaError):
                admin.delete_topics(topics)
        with contextlib.suppress(KafkaError):  # a group still in use stays, as Kafka wants
            groups = [group["group_id"] for group in admin.list_groups()
                      if group["group_id"].startswith(prefix)]
            if groups:
                admin.delete_groups(groups)


def _acl(permission: Grant) -> ACL:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    pattern = ResourcePattern(
        ResourceType[permission.resource], permission.name,
        ACLResourcePatternType.PREFIXED if permission.prefixed else ACLResourcePatternType.LITERAL)
    return ACL(principal=f"User:{permission.role}", host="*",
               operation=ACLOperation[permission.operation],
               permission_type=ACLPermissionType.ALLOW, resource_pattern=pattern)
