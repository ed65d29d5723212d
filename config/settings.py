"""Typed settings, read from ``CREDITRISK_*`` environment variables.

Every setting has a default that works with the local stack (``creditrisk stack up``).
The README has the full table. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# Shortest credential accepted: a guessable token protects nothing.
MIN_SECRET_LENGTH = {"api_token": 16}

# Who a process is in Redis; each role is an ACL user of the local stack (infra/stack/redis_acl.py
# says what each may do).
RedisRole = Literal["admin", "materializer", "worker", "ledger", "console"]

StackProfile = Literal["single", "cluster"]

# What the clustered local stack (`creditrisk stack up --cluster`) changes: its own folder and
# ports, so it runs beside the single-node stack. Only settings left unset take these.
CLUSTER_PROFILE: dict[str, object] = {
    "stack_dir": REPO_ROOT / ".stack-cluster",
    "kafka_bootstrap": "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096",
    "kafka_controller_port": 19093,
    "redis_url": "redis://127.0.0.1:17001/0",
    "redis_cluster_nodes": ",".join(f"127.0.0.1:{port}" for port in range(17001, 17007)),
    "feature_schema_version": "v2",
    "postgres_port": 15433,
    "prometheus_port": 19090,
    "worker_port": 16066,
    "ledger_port": 16067,
    "console_metrics_port": 16068,
    "console_port": 18501,
    "kafka_replication_factor": 3,
    "kafka_min_insync_replicas": 2,
    "kafka_heap": "384m",
}


class Settings(BaseSettings):
    """All runtime configuration of the service, the tools and the local stack."""

    # hide_input_in_errors: a refused secret must not be quoted back in the error message.
    model_config = SettingsConfigDict(env_prefix="CREDITRISK_", extra="ignore",
                                      hide_input_in_errors=True)

    profile: StackProfile = Field("single", description=(
        "which local stack the defaults point at: `single` (one broker, one Redis) or "
        "`cluster` (three brokers, a six-node Redis Cluster; its own folder and ports, "
        "see README); settings given explicitly always win"))

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_controller_port: int = Field(9093, description="KRaft controller port of the local broker")
    kafka_security_protocol: Literal["SASL_SSL", "SASL_PLAINTEXT", "SSL", "PLAINTEXT"] = Field(
        "SASL_SSL", description="how clients reach the broker (the local stack: SASL/SCRAM over TLS)")
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism")
    kafka_username: str | None = Field(None, description=(
        "this process's Kafka principal (unset: the local stack's principal for the "
        "process's role: producer, worker, reader, ledger or admin)"))
    kafka_password: SecretStr | None = Field(
        None, description="this process's Kafka password (unset: the local stack's)")
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle that verifies the broker (unset: the local stack's CA)")
    reader_group_prefix: str = Field("creditrisk-reader", description=(
        "consumer groups downstream readers may use (the reader principal's groups start so)"))
    topic_applications: str = Field("loan-applications", description="input topic")
    topic_decisions: str = Field("loan-decisions", description="output topic")
    topic_dead_letters: str = Field("loan-applications-dlq", description="dead-letter topic")
    topic_outcomes: str = Field("loan-outcomes", description="loan outcomes from servicing")
    topic_shadow_decisions: str = Field("loan-decisions-shadow", description=(
        "challenger models' decisions, scored in the champion's shadow (never acted on)"))
    topic_final_decisions: str = Field("loan-final-decisions", description=(
        "final decisions (the model's, or a reviewer's with who and why), from the ledger's outbox"))
    topic_partitions: int = Field(6, ge=1, description="partitions of the topics the stack creates")
    kafka_replication_factor: int = Field(1, ge=1, description=(
        "replicas of every topic the stack creates (the cluster profile: 3)"))
    kafka_min_insync_replicas: int = Field(1, ge=1, description=(
        "replicas that must have a message before an acks=all write succeeds (the cluster "
        "profile: 2, so one broker may fail without losing an acknowledged event)"))

    # Redis feature store
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL (rediss:// for TLS)")
    redis_cluster_nodes: str = Field("", description=(
        "host:port of Redis Cluster seed nodes, comma-separated (empty: redis_url is a single "
        "Redis); the scheme, credentials and TLS of redis_url apply to every node"))
    redis_username: str | None = Field(None, description=(
        "Redis ACL user (unset: the process's role user of the local stack, see README)"))
    redis_password: SecretStr | None = Field(None, description=(
        "Redis password (unset: the one `stack up` generated for the role's user)"))
    redis_tls_ca_cert: Path | None = Field(None, description="CA bundle to verify Redis TLS (rediss://)")
    redis_timeout_s: float = Field(0.5, gt=0, description="Redis socket timeout")
    redis_pool_size: int = Field(32, ge=1, description="Redis connection pool size")
    feature_schema_version: str = Field("v1", description="feature-store key schema version")
    key_prefix: str = Field("", description="prefix for every Redis key (isolates tests and tenants)")

    # PostgreSQL decision ledger
    postgres_host: str = Field("127.0.0.1", description="PostgreSQL host of the decision ledger")
    postgres_port: int = Field(5433, description="PostgreSQL port (the local stack's own cluster)")
    postgres_database: str = Field("creditrisk", description="ledger database")
    postgres_user: str = Field("creditrisk", description="ledger database user")
    postgres_password: SecretStr | None = Field(
        None, description="ledger password (unset: the one `stack up` generated in the stack folder)")
    ledger_group: str = Field("creditrisk-ledger", description="Kafka consumer group of the ledger writer")
    ledger_port: int = Field(6067, description="ledger writer HTTP port (/metrics, /health)")
    ledger_batch_max: int = Field(1000, ge=1, description="most messages written in one ledger transaction")
    ledger_retention_months: int = Field(25, ge=1, description="months a decision is kept in the ledger")
    outcome_dataset: str = Field("lending_club", description="portfolio (model card dataset name) "
                                 "whose outcome lists class the stored status of outcomes that "
                                 "name no portfolio")
    backtest_interval_s: float = Field(60.0, gt=0, description="seconds between back-test refreshes "
                                       "of the ledger writer's metrics")

    # Review queue, overrides and adverse-action notices (the ledger's PostgreSQL)
    review_service_level_hours: float = Field(24.0, gt=0, description=(
        "hours a review item may wait before it is past due"))
    console_postgres_user: str = Field("creditrisk_console", description=(
        "the console's own ledger role: reads, claims, and inserts audit rows (never updates "
        "or deletes them)"))
    console_postgres_password: SecretStr | None = Field(None, description=(
        "the console role's password (unset: the one `stack up` generated)"))
    login_max_failures: int = Field(5, ge=1, description=(
        "failed console sign-ins of one user name within login_lockout_minutes before further "
        "attempts are refused until the window has passed"))
    login_lockout_minutes: float = Field(15.0, gt=0, description="console sign-in throttle window")
    console_metrics_port: int = Field(6068, description="console's Prometheus /metrics port")
    notice_creditor_name: str | None = Field(None, description="creditor's name on adverse-action notices")
    notice_creditor_address: str | None = Field(None, description="creditor's address on notices")
    notice_creditor_phone: str | None = Field(None, description="creditor's telephone on notices")
    notice_agency_name: str | None = Field(None, description=(
        "the federal agency that administers ECOA compliance for the creditor (Regulation B, "
        "appendix A)"))
    notice_agency_address: str | None = Field(None, description="that agency's address")
    notice_bureau_name: str | None = Field(None, description=(
        "consumer reporting agency whose data the features come from (FCRA 615(a) block)"))
    notice_bureau_address: str | None = Field(None, description="the bureau's address")
    notice_bureau_phone: str | None = Field(None, description="the bureau's toll-free telephone")
    notice_overdue_days: int = Field(25, ge=1, description=(
        "days after an application by which a final decline must have its notice (alert)"))

    # Promotion gate: a challenger becomes champion only on these figures from its shadow
    promotion_min_matured_loans: int = Field(500, ge=1, description=(
        "matured loans a challenger must have shadowed before its promotion is judged"))
    promotion_auc_tolerance: float = Field(0.01, ge=0, description=(
        "how far below the champion's realised AUC the challenger's may be, on the same loans"))
    promotion_max_calibration_error: float = Field(0.05, gt=0, description=(
        "highest expected calibration error of the challenger on its matured shadowed loans"))

    # Prometheus
    prometheus_port: int = Field(9090, description="port of the local Prometheus")

    # Model registry
    registry_dir: Path = Field(REPO_ROOT / "onnx_models", description="model registry folder")

    # Worker and console
    worker_port: int = Field(6066, description="worker HTTP port (/health, /metrics, /score)")
    worker_host: str = Field("127.0.0.1", description="address the worker's HTTP server binds")
    worker_group: str = Field("creditrisk-scoring", description="Kafka consumer group (Faust app id)")
    batch_max_events: int = Field(200, ge=1, description="most events scored in one micro-batch")
    batch_within_s: float = Field(0.002, gt=0, description=(
        "longest wait for more events before a micro-batch is scored: a lone application waits "
        "this long; under load batches fill to batch_max_events while the last one is scored"))
    score_queue_max: int = Field(500, ge=1, description=(
        "POST /score requests that may wait to be scored; more are answered 429 with "
        "Retry-After (concurrent requests are scored together, up to batch_max_events)"))
    allow_event_contract_change: bool = Field(
        False, description="let a promoted model that expects other event fields replace the "
        "serving one (the producers switch with it)")
    warm_start: bool = Field(True, description=(
        "before it joins its consumer group, a worker connects to Kafka and Redis and scores "
        "synthetic batches (/health says warming, 503, meanwhile); off only to measure what it "
        "saves"))
    stall_after_s: float = Field(60.0, gt=0, description="/health turns red when events wait "
                                 "and no batch has completed for this long")
    stall_exit_after_s: float = Field(
        120.0, ge=0, description="the worker stops itself (exit status 75, for its process "
        "manager to restart it) when events have waited this long with no batch completed "
        "while Kafka and Redis answer; 0 never")
    console_port: int = Field(8501, description="console HTTP port")
    console_host: str = Field("127.0.0.1", description="address the console binds")
    worker_url: str = Field("", description="the worker's HTTP address for the console "
                            "(empty: http://127.0.0.1:<worker_port>)")
    api_token: SecretStr | None = Field(
        None, description="bearer token POST /score requires (clients send "
        "`Authorization: Bearer <token>`; the console and the benches send it too); unset: no "
        "token asked, which the worker allows only while it binds a loopback address")

    # Local stack
    stack_dir: Path = Field(REPO_ROOT / ".stack", description="data, logs and pid files of the local stack")
    kafka_heap: str = Field("512m", description="max heap of the local Kafka broker")
    kafka_jars_dir: Path = Field(REPO_ROOT / ".stack" / "kafka-jars",
                                 description="cache of the Kafka jars fetched from Maven Central")

    @model_validator(mode="after")
    def _profile_defaults(self) -> Settings:
        if self.profile == "cluster":
            for name, value in CLUSTER_PROFILE.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        if self.redis_cluster_nodes and self.feature_schema_version == "v1":
            raise ValueError("CREDITRISK_FEATURE_SCHEMA_VERSION=v1 keys carry no hash tag, so a "
                             "Redis Cluster refuses the feature read; use v2 with "
                             "CREDITRISK_REDIS_CLUSTER_NODES")
        return self

    @property
    def redis_cluster_seeds(self) -> list[tuple[str, int]]:
        """(host, port) of the Redis Cluster seed nodes; empty for a single Redis."""
        seeds = []
        for node in filter(None, (part.strip() for part in self.redis_cluster_nodes.split(","))):
            host, _, port = node.rpartition(":")
            seeds.append((host or "127.0.0.1", int(port)))
        return seeds

    @property
    def kafka_brokers(self) -> list[tuple[str, int]]:
        """(host, port) of each bootstrap broker."""
        brokers = []
        for broker in filter(None, (part.strip() for part in self.kafka_bootstrap.split(","))):
            host, _, port = broker.rpartition(":")
            brokers.append((host, int(port)))
        return brokers

    @property
    def kafka_controller_ports(self) -> list[int]:
        """KRaft controller port of each local broker: ``kafka_controller_port`` for the first,
        shifted by as much as each broker's port is from the first's (the cluster profile:
        each broker's port + 1)."""
        ports = [port for _, port in self.kafka_brokers]
        return [self.kafka_controller_port + port - ports[0] for port in ports]

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        shortest = MIN_SECRET_LENGTH[info.field_name or ""]
        if secret is not None and len(secret.get_secret_value()) < shortest:
            raise ValueError(
                f"CREDITRISK_{(info.field_name or '').upper()} must be at least {shortest} characters; "
                "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return secret

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    def stack_secret_path(self, name: str) -> Path:
        """Where `creditrisk stack up` keeps a credential it generated (mode 0600)."""
        return self.stack_dir / "secrets" / name

    def stack_secret(self, name: str) -> str | None:
        """A credential the local stack generated, or None when there is none."""
        try:
            return self.stack_secret_path(name).read_text().strip() or None
        except FileNotFoundError:
            return None

    @property
    def postgres_password_file(self) -> Path:
        """Where `creditrisk stack up` keeps the password it generated for the local cluster."""
        return self.stack_dir / "postgres" / "password"

    def postgres_conninfo(self) -> str:
        """libpq connection string; the password comes from the setting or the stack's file."""
        from psycopg.conninfo import make_conninfo

        if self.postgres_password is not None:
            password = self.postgres_password.get_secret_value()
        elif self.postgres_password_file.exists():
            password = self.postgres_password_file.read_text().strip()
        else:
            password = ""
        return make_conninfo(host=self.postgres_host, port=self.postgres_port,
                             dbname=self.postgres_database, user=self.postgres_user,
                             password=password, connect_timeout=5,
                             application_name="creditrisk")

    def console_postgres_conninfo(self) -> str:
        """libpq connection string of the console's own ledger role (password from the
        setting or the stack's secret ``postgres-console``)."""
        from psycopg.conninfo import make_conninfo

        if self.console_postgres_password is not None:
            password = self.console_postgres_password.get_secret_value()
        else:
            password = self.stack_secret("postgres-console") or ""
        return make_conninfo(host=self.postgres_host, port=self.postgres_port,
                             dbname=self.postgres_database, user=self.console_postgres_user,
                             password=password, connect_timeout=5,
                             application_name="creditrisk-console")

    @property
    def redis_port(self) -> int:
        from urllib.parse import urlparse

        return urlparse(self.redis_url).port or 6379

    @property
    def redis_acl_marker(self) -> Path:
        """Written by `creditrisk stack up`: the address of the stack's Redis, whose ACL users
        have the passwords kept in the stack folder."""
        return self.stack_dir / "redis" / "acl-address"

    def redis_credentials(self, role: RedisRole) -> tuple[str | None, SecretStr | None]:
        """Who a process in ``role`` is in Redis: CREDITRISK_REDIS_USERNAME / _PASSWORD when
        set (a deployment gives each process its own); else, on the local stack's own Redis,
        the role's ACL user with the password `stack up` generated; else nobody (a Redis
        without ACL users, such as a test's private one)."""
        if self.redis_username is not None or self.redis_password is not None:
            return self.redis_username, self.redis_password
        try:
            stack_redis = self.redis_acl_marker.read_text().strip()
        except FileNotFoundError:
            return None, None
        password = self.stack_secret(f"redis-{role}")
        if self.redis_address != stack_redis or password is None:
            return None, None
        return role, SecretStr(password)

    @property
    def redis_address(self) -> str:
        """``host:port`` of Redis, without the credentials a URL may hold (safe to show)."""
        from urllib.parse import urlparse

        url = urlparse(self.redis_url)
        host = "127.0.0.1" if url.hostname == "localhost" else url.hostname
        return f"{host}:{url.port or 6379}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
