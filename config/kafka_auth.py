"""How every Kafka client of the product authenticates: one place, per role.

The broker of the local stack takes SASL/SCRAM over TLS on its client listener and lets
each principal do only its job (``infra/stack/kafka_access.py`` grants the ACLs):

=========  ==========================================================================
role       may
=========  ==========================================================================
admin      everything: the stack, topic and ACL provisioning, test clean-up
producer   write applications and loan outcomes (the upstream systems, ``replay``)
worker     read applications; write decisions, challengers' shadow decisions and dead
           letters; its consumer group
reader     read decisions, shadow decisions and dead letters (downstream systems,
           ``decisions tail``)
ledger     read decisions, shadow decisions and outcomes; its consumer group
finals     write final decisions (the ledger writer's outbox publisher; nobody else may)
=========  ==========================================================================

A deployment gives each process its own ``CREDITRISK_KAFKA_USERNAME`` and
``CREDITRISK_KAFKA_PASSWORD``; left unset, a process of the local stack uses its role's
principal with the password ``creditrisk stack up`` generated (``.stack/secrets/``).

The ledger writer is two principals: it reads as ``ledger`` and publishes the final
decisions as ``finals``, whose password it takes from ``CREDITRISK_KAFKA_FINALS_PASSWORD``
(the same variable ``creditrisk stack topics --principals`` sets the principal from), else
from the local stack. Its own ``CREDITRISK_KAFKA_USERNAME`` never stands in for ``finals``:
a reader of the decisions must not be able to publish final ones.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict, get_args

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.settings import Settings

if TYPE_CHECKING:
    import faust

KafkaRole = Literal["admin", "producer", "worker", "reader", "ledger", "finals"]
KAFKA_ROLES: tuple[KafkaRole, ...] = get_args(KafkaRole)
# The principals a process of a role holds beside its own (the ledger writer publishes the
# final decisions as ``finals``).
SECOND_PRINCIPALS: dict[KafkaRole, tuple[KafkaRole, ...]] = {"ledger": ("finals",)}


class KafkaCredentialsMissing(RuntimeError):
    """No username or password for a Kafka client; the message says which setting to fill."""


def kafka_secret_name(role: str) -> str:
    """The file under ``.stack/secrets/`` that holds the local principal's password."""
    return f"kafka-{role}"


class SecondPrincipalLogin(BaseSettings):
    """``CREDITRISK_KAFKA_<ROLE>_PASSWORD`` of a principal a process holds beside its own."""

    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    password: SecretStr | None = None


def second_principal_password(role: KafkaRole) -> str | None:
    """The password of ``role`` handed to this process in its environment, or None."""
    login = SecondPrincipalLogin(_env_prefix=f"CREDITRISK_KAFKA_{role.upper()}_")
    return login.password.get_secret_value() if login.password else None


def kafka_credentials(settings: Settings, role: KafkaRole) -> tuple[str, str]:
    """The (username, password) this process presents: its own settings, else the local
    stack's principal for ``role``. A second principal (``finals``) is always itself: its
    password from ``CREDITRISK_KAFKA_FINALS_PASSWORD``, else the local stack's."""
    if any(role in seconds for seconds in SECOND_PRINCIPALS.values()):
        return role, _second_password(settings, role)
    if settings.kafka_username:
        if settings.kafka_password is None:
            raise KafkaCredentialsMissing(
                f"CREDITRISK_KAFKA_USERNAME is set ({settings.kafka_username}) but "
                "CREDITRISK_KAFKA_PASSWORD is not")
        return settings.kafka_username, settings.kafka_password.get_secret_value()
    password = settings.stack_secret(kafka_secret_name(role))
    if password is None:
        raise KafkaCredentialsMissing(
            f"no Kafka credentials for the {role} role: set CREDITRISK_KAFKA_USERNAME and "
            f"CREDITRISK_KAFKA_PASSWORD, or start the local stack (`creditrisk stack up` "
            f"writes {settings.stack_secret_path(kafka_secret_name(role))})")
    return role, password


def _second_password(settings: Settings, role: KafkaRole) -> str:
    password = second_principal_password(role) or settings.stack_secret(kafka_secret_name(role))
    if password is None:
        raise KafkaCredentialsMissing(
            f"no Kafka credentials for the {role} principal: set "
            f"CREDITRISK_KAFKA_{role.upper()}_PASSWORD, or start the local stack (`creditrisk "
            f"stack up` writes {settings.stack_secret_path(kafka_secret_name(role))})")
    return password


def kafka_ca_file(settings: Settings) -> Path | None:
    """The CA bundle that verifies the broker: the setting, else the local stack's CA."""
    if settings.kafka_ssl_cafile is not None:
        return settings.kafka_ssl_cafile
    local = settings.stack_dir / "tls" / "ca.pem"
    return local if local.exists() else None


def _uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _sasl_options(settings: Settings, role: KafkaRole) -> dict[str, object]:
    """The SASL login, named as kafka-python and aiokafka both name it (none without SASL)."""
    if not _uses_sasl(settings):
        return {}
    username, password = kafka_credentials(settings, role)
    return {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": username,
            "sasl_plain_password": password}


def kafka_python_options(settings: Settings, role: KafkaRole) -> dict[str, object]:
    """Keyword arguments for kafka-python's ``KafkaProducer``/``KafkaConsumer``/admin."""
    options: dict[str, object] = {"bootstrap_servers": settings.kafka_bootstrap.split(","),
                               "security_protocol": settings.kafka_security_protocol,
                               **_sasl_options(settings, role)}
    if _uses_tls(settings):
        ca_file = kafka_ca_file(settings)
        options.update(ssl_cafile=str(ca_file) if ca_file else None, ssl_check_hostname=True)
    return options


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A verifying TLS context for aiokafka and Faust (None without TLS)."""
    if not _uses_tls(settings):
        return None
    ca_file = kafka_ca_file(settings)
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def aiokafka_options(settings: Settings, role: KafkaRole) -> dict[str, object]:
    """Keyword arguments for aiokafka's ``AIOKafkaProducer``/``AIOKafkaConsumer``."""
    return {"bootstrap_servers": settings.kafka_bootstrap,
            "security_protocol": settings.kafka_security_protocol,
            "ssl_context": kafka_ssl_context(settings), **_sasl_options(settings, role)}


class FaustBrokerOptions(TypedDict):
    """The keyword arguments of ``faust.App`` that say where the broker is and how to log in."""

    broker: str
    broker_credentials: NotRequired[faust.SASLCredentials | faust.SSLCredentials]


def faust_broker_options(settings: Settings, role: KafkaRole) -> FaustBrokerOptions:
    """``broker`` and ``broker_credentials`` for ``faust.App``."""
    import faust

    options: FaustBrokerOptions = {
        "broker": ";".join(f"kafka://{server}" for server in settings.kafka_bootstrap.split(","))}
    context = kafka_ssl_context(settings)
    if _uses_sasl(settings):
        username, password = kafka_credentials(settings, role)
        options["broker_credentials"] = faust.SASLCredentials(
            username=username, password=password, ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism)
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


def kafka_environment(settings: Settings, role: KafkaRole) -> dict[str, str]:
    """Environment that hands a child process the Kafka identity of ``role``, with the
    principals such a process holds beside its own (for processes that run with a stack
    folder of their own, as a deployment hands each its secrets)."""
    environment = {"CREDITRISK_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
                   "CREDITRISK_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol}
    if _uses_sasl(settings):
        username, password = kafka_credentials(settings, role)
        environment.update(CREDITRISK_KAFKA_USERNAME=username, CREDITRISK_KAFKA_PASSWORD=password)
        for second in SECOND_PRINCIPALS.get(role, ()):
            # None yet: the process starts, and says so when it acts as that principal.
            second_password = second_principal_password(second) or settings.stack_secret(
                kafka_secret_name(second))
            if second_password is not None:
                environment[f"CREDITRISK_KAFKA_{second.upper()}_PASSWORD"] = second_password
    ca_file = kafka_ca_file(settings)
    if _uses_tls(settings) and ca_file is not None:
        environment["CREDITRISK_KAFKA_SSL_CAFILE"] = str(ca_file)
    return environment
