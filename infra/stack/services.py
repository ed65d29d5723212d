"""The local stack: Apache Kafka (KRaft), Redis, PostgreSQL and Prometheus as plain processes.

No Docker: Kafka runs from Maven Central jars, Redis, PostgreSQL and Prometheus from Debian
packages. Everything listens on loopback; data, logs and pid files live under one
folder (``CREDITRISK_STACK_DIR``, default ``.stack/``). ``up`` is idempotent and waits
until every service really answers; ``down`` stops only the processes ``up`` started.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from config.settings import REPO_ROOT, RedisRole, Settings
from infra.stack.private_files import create_private_once, write_private

if TYPE_CHECKING:
    import redis

INFRA_DIR = REPO_ROOT / "infra"
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """A service could not be started or checked; the message says what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    answering: bool
    pid: int | None
    started_by_us: bool
    detail: str = ""  # a node's place in its cluster (role, slots), when it has one


class Service:
    """One server process of the stack: how to start it and how to know it answers."""

    name: str = ""
    start_timeout_s: float = 60.0
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.stack_dir / self.name
        self.log_path = settings.stack_dir / "logs" / f"{self.name}.log"
        self.pid_path = settings.stack_dir / "pids" / f"{self.name}.pid"

    # -- to be given by each service --------------------------------------------------
    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def answering(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Check prerequisites and write configs before the first start."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def reload_config(self) -> str:
        """Bring a running service of ours up to date with the configs in infra/."""
        return ""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def run_as(self) -> str | None:
        """The system user the server must run as (None: whoever runs the stack)."""
        return None

    def detail(self) -> str:
        """What ``stack status`` says of this server beside its address (a cluster node's role)."""
        return ""

    # -- shared behaviour ---------------------------------------------------------------
    def our_pid(self) -> int | None:
        """The pid we started, if that process is still alive."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if process_alive(pid):
            return pid
        self.pid_path.unlink(missing_ok=True)
        return None

    def status(self) -> ServiceStatus:
        pid = self.our_pid()
        answering = self.answering()
        return ServiceStatus(self.name, self.address, answering, pid, pid is not None,
                             self.detail() if answering else "")

    def start(self, echo: Callable[[str], None]) -> str:
        """Start the service unless it already answers; return what was done."""
        if self.answering():
            if self.our_pid() is None:
                return f"{self.name}: already answering at {self.address} (not started by this stack, reused)"
            note = self.reload_config()
            return f"{self.name}: already answering at {self.address} (ours{note})"
        self.launch(echo)
        self._wait_until_answering()
        return f"{self.name}: answering at {self.address}"

    def launch(self, echo: Callable[[str], None]) -> None:
        """Start the process unless ours runs, without waiting for it to answer: the nodes of
        a KRaft quorum answer only once a majority of them runs."""
        if self.our_pid() is None and _port_in_use(self.port):
            raise StackError(
                f"{self.name}: port {self.port} is in use by another program that does not answer "
                f"as {self.name}. Stop that program or choose another port "
                f"(see the configuration table in README.md)."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        if self.our_pid() is None:
            self.prepare()
            echo(f"{self.name}: starting on {self.address} (log: {self.log_path})")
            with self.log_path.open("ab") as log:
                process = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.home,
                    env=self.environment(),
                    start_new_session=True,
                    user=self.run_as(),
                )
            self.pid_path.write_text(str(process.pid))

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.answering():
                return
            if self.our_pid() is None:
                raise StackError(
                    f"{self.name}: the process exited during start-up. Last log lines:\n"
                    + _tail(self.log_path)
                )
            time.sleep(0.5)
        raise StackError(
            f"{self.name}: did not answer at {self.address} within {self.start_timeout_s:.0f}s. "
            f"Last log lines:\n" + _tail(self.log_path)
        )

    def stop(self, timeout_s: float = 30.0) -> str:
        pid = self.our_pid()
        if pid is None:
            return f"{self.name}: not started by this stack, left alone"
        _signal_group(pid, self.stop_signal)
        deadline = time.monotonic() + timeout_s
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if process_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while process_alive(pid):
                time.sleep(0.1)
        self.pid_path.unlink(missing_ok=True)
        return f"{self.name}: stopped"


class Kafka(Service):
    """A Kafka node in KRaft mode (broker and controller in one process), run from Maven
    Central jars: the one node of ``kafka_bootstrap``, or node ``node_id`` (1-based) of the
    brokers it lists, which then form the controller quorum together."""

    name = "kafka"
    start_timeout_s = 90.0

    def __init__(self, settings: Settings, node_id: int = 1) -> None:
        self.node_id = node_id
        self.clustered = len(settings.kafka_brokers) > 1
        if self.clustered:
            self.name = f"kafka-{node_id}"
        super().__init__(settings)

    @property
    def port(self) -> int:
        return self.settings.kafka_brokers[self.node_id - 1][1]

    @property
    def controller_port(self) -> int:
        return self.settings.kafka_controller_ports[self.node_id - 1]

    @property
    def own_settings(self) -> Settings:
        """The settings with this node alone as the bootstrap server (its probe)."""
        host, port = self.settings.kafka_brokers[self.node_id - 1]
        return self.settings.model_copy(update={"kafka_bootstrap": f"{host}:{port}"})

    @property
    def libs(self) -> Path:
        return self.settings.kafka_jars_dir

    # Written next to the data when the storage is formatted with SASL/SCRAM and ACLs: a
    # data folder without it comes from a broker without authentication and is reformatted.
    AUTH_STAMP = ".creditrisk-auth-v1"

    def answering(self) -> bool:
        if not self.clustered:
            return kafka_answers(self.settings)
        return self.node_id in live_broker_ids(self.own_settings)

    def detail(self) -> str:
        quorum = f" of {len(self.settings.kafka_brokers)}" if self.clustered else ""
        return f"broker and controller, node {self.node_id}{quorum}"

    def prepare(self) -> None:
        _require("java", "Install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless).")
        self._fetch_jars()
        self._write_config()
        self._format_storage()

    @property
    def admin_password(self) -> str:
        from infra.stack.kafka_access import principal_password

        return principal_password(self.settings, "admin")

    def _fetch_jars(self) -> None:
        pom = INFRA_DIR / "kafka" / "pom.xml"
        stamp = self.libs / ".pom-sha256"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return
        _require("mvn", "Install Maven (Debian: apt-get install maven) to fetch the Kafka jars.")
        shutil.rmtree(self.libs, ignore_errors=True)
        self.libs.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={self.libs}"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise StackError(
                "kafka: Maven could not fetch the Kafka jars from Maven Central:\n"
                + (result.stdout + result.stderr)[-2000:]
            )
        stamp.write_text(digest)

    def _write_config(self) -> None:
        write_kafka_config(self.home / "server.properties", self.settings.stack_dir / "tls",
                           host=LOOPBACK, bind=LOOPBACK, port=self.port,
                           controller_port=self.controller_port,
                           log_dirs=self.home / "data", admin_password=self.admin_password,
                           mechanism=self.settings.kafka_sasl_mechanism, node_id=self.node_id,
                           quorum_voters=self.quorum_voters(),
                           replication_factor=self.settings.kafka_replication_factor,
                           min_insync_replicas=self.settings.kafka_min_insync_replicas)

    def quorum_voters(self) -> str:
        """``controller.quorum.voters``: every node of the stack, ``id@host:controller-port``."""
        return quorum_voters([(LOOPBACK, port) for port in self.settings.kafka_controller_ports])

    def cluster_id(self) -> str:
        """The KRaft cluster id every node is formatted with: one node's own, or for several
        nodes one id kept in the stack folder, so a node formatted later joins the others."""
        if not self.clustered:
            return kafka_uuid()
        # Nodes are formatted side by side: the first writer's id is every node's.
        return create_private_once(self.settings.stack_dir / "kafka-cluster-id", kafka_uuid())

    def _format_storage(self) -> None:
        data = self.home / "data"
        if (data / "meta.properties").exists():
            if (self.home / self.AUTH_STAMP).exists():
                return
            print(f"kafka: {data} was formatted for a broker without authentication; "
                  "reformatting it (its topics are dropped)", file=sys.stderr)
            shutil.rmtree(data)
        cluster_id = self.cluster_id()
        # The admin principal must exist before the broker starts: it is how the broker
        # authenticates to itself. The other roles are added through it after the start.
        # Its password goes through an argument file (mode 0600), never the command line.
        scram = f"{self.settings.kafka_sasl_mechanism}=[name=admin,password={self.admin_password}]"
        arguments = self.home / "format.args"
        write_private(arguments, "\n".join(
            ["format", "-t", cluster_id, "-c", str(self.home / "server.properties"),
             "--ignore-formatted", "--add-scram", scram]) + "\n")
        try:
            self._java("kafka.tools.StorageTool", f"@{arguments}")
        finally:
            arguments.unlink(missing_ok=True)
        (self.home / self.AUTH_STAMP).write_text("SASL/SCRAM, TLS, ACLs\n")

    def _java(self, main_class: str, *args: str) -> str:
        result = subprocess.run(
            # A short-lived tool: the quick compiler and a small heap start it sooner.
            ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
             "-cp", f"{self.libs}/*", main_class, *args],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            error = result.stderr[-2000:].replace(self.admin_password, "<admin password>")
            raise StackError(f"kafka: {main_class} {' '.join(args)} failed:\n{error}")
        return result.stdout

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            "java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            "-cp", f"{self.libs}/*", "kafka.Kafka", str(self.home / "server.properties"),
        ]


def kafka_uuid() -> str:
    """A random id as Kafka writes one (``StorageTool random-uuid``: 16 bytes, URL-safe
    base64 without padding, never starting with '-'), without starting a JVM for it."""
    import base64
    import uuid

    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def launch_together(nodes: list[Kafka], echo: Callable[[str], None]) -> None:
    """Prepare (format) and start the nodes of a quorum side by side, none waited for: each
    answers only once most of them run."""
    from concurrent.futures import ThreadPoolExecutor

    waiting = [node for node in nodes if not node.answering()]
    with ThreadPoolExecutor(max_workers=max(1, len(waiting))) as pool:
        for future in [pool.submit(node.launch, echo) for node in waiting]:
            future.result()


def quorum_voters(controllers: list[tuple[str, int]]) -> str:
    """``controller.quorum.voters`` for nodes 1..n at these controller addresses."""
    return ",".join(f"{node_id}@{host}:{port}"
                    for node_id, (host, port) in enumerate(controllers, start=1))


def write_kafka_config(path: Path, tls_folder: Path, *, host: str, bind: str, port: int,
                       controller_port: int, log_dirs: Path, admin_password: str,
                       mechanism: str = "SCRAM-SHA-512", node_id: int = 1,
                       quorum_voters: str | None = None, replication_factor: int = 1,
                       min_insync_replicas: int = 1) -> None:
    """Render infra/kafka/server.properties (and the broker's certificates, when missing) for
    a broker reached as ``host``: the local stack's, or docker-compose's (`stack kafka-config`).
    ``quorum_voters`` unset: a quorum of this node alone. The file holds the admin password,
    so only its owner may read it."""
    from infra.stack.tls import ensure_broker_tls

    if not mechanism.startswith("SCRAM-"):
        raise StackError(f"kafka: the local broker takes SCRAM-SHA-512 or SCRAM-SHA-256 logins, "
                         f"not {mechanism}; set CREDITRISK_KAFKA_SASL_MECHANISM to one of them")
    tls = ensure_broker_tls(tls_folder)
    template = Template((INFRA_DIR / "kafka" / "server.properties").read_text())
    config = template.substitute(
        KAFKA_HOST=host, KAFKA_BIND=bind, KAFKA_PORT=port, KAFKA_CONTROLLER_PORT=controller_port,
        KAFKA_NODE_ID=node_id,
        KAFKA_QUORUM_VOTERS=quorum_voters or f"{node_id}@{host}:{controller_port}",
        KAFKA_REPLICATION_FACTOR=replication_factor, KAFKA_MIN_ISR=min_insync_replicas,
        KAFKA_LOG_DIRS=log_dirs, KAFKA_ADMIN_PASSWORD=admin_password,
        KAFKA_SASL_MECHANISM=mechanism, KAFKA_SASL_MECHANISM_KEY=mechanism.lower(),
        KAFKA_TLS_KEYSTORE=tls.broker_keystore, KAFKA_TLS_CA=tls.ca_certificate,
        KAFKA_BROKER_PRINCIPAL=tls.principal)
    write_private(path, config)


class Redis(Service):
    """Redis with ACL users (infra/stack/redis_acl.py): one per role, each with a password generated
    once into the stack folder (``secrets/redis-<role>``, mode 0600); the ACL file holds only
    their hashes, and no password is on the command line. A client that does not log in is
    refused. ``up`` brings a running Redis of ours up to date (``ACL LOAD``)."""

    name = "redis"
    start_timeout_s = 20.0

    @property
    def port(self) -> int:
        return self.settings.redis_port

    @property
    def acl_path(self) -> Path:
        return self.home / "users.acl"

    def answering(self) -> bool:
        return redis_answers(self.settings)

    def prepare(self) -> None:
        _require("redis-server", "Install Redis (Debian: apt-get install redis-server).")
        self.write_acl_file()

    def write_acl_file(self) -> None:
        """The users and their password hashes, and the marker that tells clients that the
        stack's passwords are for this Redis (:meth:`Settings.redis_credentials`)."""
        from infra.stack.redis_acl import ROLES, acl_file

        passwords = {role: ensure_stack_secret(self.settings, f"redis-{role}") for role in ROLES}
        self.home.mkdir(parents=True, exist_ok=True)
        write_private(self.acl_path, acl_file(passwords))
        # A cluster's nodes share the users: the marker names the address clients start from.
        self.settings.redis_acl_marker.parent.mkdir(parents=True, exist_ok=True)
        self.settings.redis_acl_marker.write_text(f"{self.settings.redis_address}\n")

    def lets_anyone_in(self) -> bool:
        """True when this Redis answers a client that has not logged in."""
        return redis_lets_anyone_in(self.settings)

    def start(self, echo: Callable[[str], None]) -> str:
        if self.our_pid() is not None and not self.answering() and _port_in_use(self.port):
            # Ours, but it refuses the admin user: started before its ACL users existed.
            with contextlib.suppress(StackError):
                echo(f"{self.name}: running{self.reload_config()}")
        done = super().start(echo)
        if self.lets_anyone_in():
            raise StackError(
                f"redis: the Redis at {self.address} answers a client that has not logged in: it "
                "has no ACL users, so it is not this stack's and the feature store would be "
                "open. Stop it (e.g. Debian's redis-server service) or set CREDITRISK_REDIS_URL "
                "to another port.")
        return done

    def reload_config(self) -> str:
        """Rewrite the ACL file and have Redis apply it: ``ACL LOAD`` when Redis was started
        with it, else (a Redis of ours from before the ACL users) each user with
        ``ACL SETUSER``, logged in as nobody since its default user is still open."""
        import redis

        from infra.stack.redis_acl import ROLES, acl_users

        self.write_acl_file()
        admin_password = self.settings.stack_secret("redis-admin")
        for username, password in (("admin", admin_password), (None, None)):
            client = redis.Redis(host=LOOPBACK, port=self.port, username=username,
                                 password=password, socket_timeout=5, socket_connect_timeout=5)
            try:
                if client.config_get("aclfile").get("aclfile"):
                    client.acl_load()
                    return ", ACL users reloaded"
                users = acl_users({role: self.settings.stack_secret(f"redis-{role}") or ""
                                   for role in ROLES})
                for user in users[1:] + users[:1]:  # the default user (ours now) last
                    client.execute_command("ACL", "SETUSER", *user)
                return (", ACL users applied (`creditrisk stack down` then `up` makes Redis "
                        "read them from its ACL file)")
            except redis.AuthenticationError:
                continue
            except (redis.RedisError, OSError) as error:
                raise StackError(f"redis: applying the ACL users failed ({type(error).__name__}); "
                                 f"see {self.log_path}") from None
            finally:
                client.close()
        raise StackError(f"redis: the Redis at {self.address} refuses the stack's admin user "
                         f"(password in {self.settings.stack_secret_path('redis-admin')}). Stop it "
                         "(`creditrisk stack down`) and run `creditrisk stack up` again.")

    def stop(self, timeout_s: float = 30.0) -> str:
        done = super().stop(timeout_s)
        if self.our_pid() is None:
            self.settings.redis_acl_marker.unlink(missing_ok=True)
        return done

    def command(self) -> list[str]:
        return [
            "redis-server", str(INFRA_DIR / "redis" / "redis.conf"),
            "--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.home),
            "--aclfile", str(self.acl_path), "--daemonize", "no",
        ]


class Postgres(Service):
    """The decision ledger's PostgreSQL: a cluster of our own under the stack folder.

    ``initdb`` runs once with a generated password (kept, mode 0600, in the stack folder;
    ``CREDITRISK_POSTGRES_PASSWORD`` overrides it) and password authentication only; the
    server listens on loopback TCP alone (no Unix socket). PostgreSQL refuses to run as
    root, so when the stack runs as root the server runs as the ``postgres`` system user
    the Debian package creates. ``up`` then creates the database and applies the ledger's
    migrations.
    """

    name = "postgres"
    start_timeout_s = 60.0
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def answering(self) -> bool:
        return postgres_answers(self.settings, database="postgres")

    def run_as(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        owner = self.run_as()
        if owner is not None:
            try:
                account = pwd.getpwnam(owner)
            except KeyError:
                raise StackError("postgres: the stack runs as root and PostgreSQL refuses to; the "
                                 "`postgres` system user is missing (apt-get install postgresql "
                                 "creates it).") from None
            os.chown(self.home, account.pw_uid, account.pw_gid)
            reachable = subprocess.run(["test", "-w", str(self.home)], user=owner, check=False)
            if reachable.returncode != 0:
                raise StackError(f"postgres: the `{owner}` user cannot reach {self.home} (a parent "
                                 "folder is private to root). Choose a CREDITRISK_STACK_DIR it can "
                                 "reach, e.g. inside the repository.")
        password = self._password()
        password_file = self.home / "initdb-password"
        write_private(password_file, password)
        if owner is not None:
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            result = subprocess.run(
                [postgres_binary("initdb"), "-D", str(self.data_dir), "-U", self.settings.postgres_user,
                 f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"],
                capture_output=True, text=True, check=False, cwd=self.home, user=owner)
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise StackError(f"postgres: initdb failed:\n{result.stderr[-2000:]}")

    def _password(self) -> str:
        """The configured password, else the stack's own (generated once)."""
        if self.settings.postgres_password is not None:
            return self.settings.postgres_password.get_secret_value()
        path = self.settings.postgres_password_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return create_private_once(path, secrets.token_urlsafe(24))

    def command(self) -> list[str]:
        return [postgres_binary("postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", f"listen_addresses={LOOPBACK}", "-c", "unix_socket_directories=",
                "-c", "shared_buffers=128MB", "-c", "max_connections=100",
                "-c", "synchronous_commit=on", "-c", "log_min_messages=warning"]

    def start(self, echo: Callable[[str], None]) -> str:
        done = super().start(echo)
        return done + "; " + self.create_database()

    def create_database(self) -> str:
        import psycopg

        name = self.settings.postgres_database
        admin = self.settings.model_copy(update={"postgres_database": "postgres"})
        with psycopg.connect(admin.postgres_conninfo(), autocommit=True) as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return f"database {name} exists"
            connection.execute(f'CREATE DATABASE "{name}"')  # a configured name, quoted
        return f"database {name} created"


class Prometheus(Service):
    name = "prometheus"
    start_timeout_s = 30.0

    @property
    def port(self) -> int:
        return self.settings.prometheus_port

    @property
    def targets_dir(self) -> Path:
        """Drop a file_sd JSON file here to add scrape targets to the worker job."""
        return self.home / "targets"

    def answering(self) -> bool:
        return http_answers(self.port, "/-/ready")

    def prepare(self) -> None:
        _require("prometheus", "Install Prometheus (Debian: apt-get install prometheus).")
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        source = INFRA_DIR / "prometheus"
        config = (source / "prometheus.yml").read_text()
        config = config.replace("/etc/prometheus/targets", str(self.targets_dir))
        config = config.replace("localhost:9090", f"{LOOPBACK}:{self.port}")
        config = config.replace("/etc/prometheus/", f"{source}/")
        (self.home / "prometheus.yml").write_text(config)
        worker = [{"targets": [f"{LOOPBACK}:{self.settings.worker_port}"],
                   "labels": {"service": "creditrisk-worker"}}]
        (self.targets_dir / "worker.json").write_text(json.dumps(worker, indent=2))
        ledger = [{"targets": [f"{LOOPBACK}:{self.settings.ledger_port}"],
                   "labels": {"service": "creditrisk-ledger"}}]
        (self.targets_dir / "ledger").mkdir(exist_ok=True)
        (self.targets_dir / "ledger" / "ledger.json").write_text(json.dumps(ledger, indent=2))
        console = [{"targets": [f"{LOOPBACK}:{self.settings.console_metrics_port}"],
                    "labels": {"service": "creditrisk-console"}}]
        (self.targets_dir / "console").mkdir(exist_ok=True)
        (self.targets_dir / "console" / "console.json").write_text(json.dumps(console, indent=2))

    def reload_config(self) -> str:
        """Re-render the config (rules may have changed) and ask Prometheus to reload it."""
        self.prepare()
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.port}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10):
                return ", config and rules reloaded"
        except (urllib.error.URLError, OSError) as error:
            raise StackError(f"prometheus: reloading the config failed ({error}); "
                             f"see {self.log_path}") from None

    def command(self) -> list[str]:
        return [
            "prometheus",
            f"--config.file={self.home / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=7d",
        ]


class Worker(Service):
    """The scoring worker, run in the background by `creditrisk demo` (not by `stack up`)."""

    name = "worker"
    start_timeout_s = 90.0

    @property
    def port(self) -> int:
        return self.settings.worker_port

    def answering(self) -> bool:
        # A 503 from /health still answers: the worker is up, only a dependency is not.
        return http_answers(self.port, "/health", any_status=True)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "cli.main", "worker"]


class Ledger(Service):
    """The ledger writer (decisions and outcomes → PostgreSQL), run in the background by the
    demo or ``creditrisk ledger run``."""

    name = "ledger"
    start_timeout_s = 60.0

    @property
    def port(self) -> int:
        return self.settings.ledger_port

    def answering(self) -> bool:
        return http_answers(self.port, "/health", any_status=True)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "cli.main", "ledger", "run"]


class Console(Service):
    """The relationship-manager console (Streamlit), run in the background by the demo."""

    name = "console"
    start_timeout_s = 60.0

    @property
    def port(self) -> int:
        return self.settings.console_port

    def answering(self) -> bool:
        return http_answers(self.port, "/_stcore/health")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "cli.main", "console"]


def services(settings: Settings) -> list[Service]:
    """The stack in start order: each Kafka node, each Redis node, PostgreSQL, Prometheus."""
    return [*kafka_nodes(settings), *redis_nodes(settings), Postgres(settings),
            Prometheus(settings)]


def kafka_nodes(settings: Settings) -> list[Kafka]:
    """One Kafka node per broker of ``kafka_bootstrap``."""
    return [Kafka(settings, node_id) for node_id in range(1, len(settings.kafka_brokers) + 1)]


def redis_nodes(settings: Settings) -> list[Redis]:
    """The one Redis, or each node of the Redis Cluster ``redis_cluster_nodes`` lists."""
    if not settings.redis_cluster_seeds:
        return [Redis(settings)]
    from infra.stack.redis_cluster import cluster_nodes_of

    return list(cluster_nodes_of(settings))


def application_services(settings: Settings) -> list[Service]:
    """Processes of the product itself that the demo may have started."""
    return [Worker(settings), Ledger(settings), Console(settings)]


def up(settings: Settings, echo: Callable[[str], None] = print) -> None:
    from infra.stack.kafka_access import ensure_principals
    from ledger.schema import migrate

    if len(settings.kafka_brokers) > 1:  # a quorum answers once most of its nodes run
        launch_together(kafka_nodes(settings), echo)
    for service in services(settings):
        echo(service.start(echo))
    if settings.redis_cluster_seeds:
        from infra.stack.redis_cluster import cluster_nodes_of, form_cluster

        echo(form_cluster(settings, cluster_nodes_of(settings)))
    for line in ensure_principals(settings):
        echo(line)
    for line in create_topics(settings):
        echo(line)
    for line in migrate(settings.postgres_conninfo()):
        echo(line)
    echo(console_role_login(settings))


def console_role_login(settings: Settings) -> str:
    """Let the console's ledger role log in with the password the stack generated
    (``secrets/postgres-console``) unless one is configured."""
    from ledger.schema import let_console_role_log_in

    password = (settings.console_postgres_password.get_secret_value()
                if settings.console_postgres_password is not None
                else ensure_stack_secret(settings, "postgres-console"))
    let_console_role_log_in(settings.postgres_conninfo(), settings.console_postgres_user, password)
    return f"postgres: the console's role {settings.console_postgres_user} may log in"


def down(settings: Settings, echo: Callable[[str], None] = print) -> None:
    for service in application_services(settings):
        if service.our_pid() is not None:
            echo(service.stop())
    quorum = kafka_nodes(settings) if len(settings.kafka_brokers) > 1 else []
    for service in reversed(services(settings)):
        if service.name not in {node.name for node in quorum}:
            echo(service.stop())
    if quorum:
        stop_together(quorum, echo)


def stop_together(nodes: list[Kafka], echo: Callable[[str], None]) -> None:
    """Stop a quorum's nodes at the same moment: one by one, the last ones wait for a
    controller majority that is already gone before their controlled shutdown gives up."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        for done in pool.map(lambda node: node.stop(), nodes):
            echo(done)


def status(settings: Settings) -> Iterator[ServiceStatus]:
    for service in services(settings):
        yield service.status()


def create_topics(settings: Settings) -> list[str]:
    """Create the DESIGN.md topics (and the worker's internal one) with the configured
    partitions, and grant each role its ACLs on them; existing topics are kept."""
    from infra.stack.kafka_access import provision

    return provision(settings)


def ensure_stack_secret(settings: Settings, name: str) -> str:
    """The stack's credential ``name``: generated once (random, mode 0600), then reused."""
    path = settings.stack_secret_path(name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
    # The nodes of a quorum, formatted side by side, read the admin password at once: each
    # must get the same one (a node formatted with another could not log in to the others).
    return create_private_once(path, secrets.token_urlsafe(24))


# -- probes -----------------------------------------------------------------------------
def kafka_answers(settings: Settings) -> bool:
    """True when the broker serves metadata to the admin principal (not merely when the
    port is open)."""
    host, port = settings.kafka_bootstrap.split(",", maxsplit=1)[0].rsplit(":", 1)
    if not _port_in_use(int(port), host):
        return False
    from kafka.errors import KafkaError

    from config.kafka_auth import KafkaCredentialsMissing
    from infra.stack.kafka_access import admin_client

    try:
        with admin_client(settings, timeout_ms=3000) as admin:
            admin.list_topics()
        return True
    except (KafkaError, KafkaCredentialsMissing, OSError, ValueError):
        return False


def live_broker_ids(settings: Settings) -> set[int]:
    """Node ids of the brokers the cluster reached through ``kafka_bootstrap`` counts as live
    (registered and not fenced); empty when it does not answer the admin principal."""
    host, port = settings.kafka_brokers[0]
    if not _port_in_use(port, host):
        return set()
    from kafka.errors import KafkaError

    from config.kafka_auth import KafkaCredentialsMissing
    from infra.stack.kafka_access import admin_client

    try:
        with admin_client(settings, timeout_ms=3000) as admin:
            brokers = admin.describe_cluster()["brokers"]
        return {int(broker["broker_id"]) for broker in brokers if not broker.get("is_fenced")}
    except (KafkaError, KafkaCredentialsMissing, OSError, ValueError):
        return set()


def redis_answers(settings: Settings, role: RedisRole = "admin") -> bool:
    """True when Redis answers a PING from ``role`` (the stack's probe logs in as admin)."""
    import redis

    from features.store import redis_login

    return _answers_ping(redis.Redis.from_url(settings.redis_url, **redis_login(settings, role),
                                              socket_timeout=1, socket_connect_timeout=1))


def redis_lets_anyone_in(settings: Settings) -> bool:
    """True when Redis answers a client that has not logged in (a Redis without ACL users)."""
    import redis

    return _answers_ping(redis.Redis.from_url(settings.redis_url, socket_timeout=1,
                                              socket_connect_timeout=1))


def _answers_ping(client: redis.Redis) -> bool:
    """True when ``client`` gets an answer to PING; the client is closed either way."""
    import redis

    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def postgres_binary(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    if not candidates:
        raise StackError(f"`{name}` was not found. Install PostgreSQL (Debian: apt-get install "
                         "postgresql); `make install` does this.")
    return candidates[-1]


def postgres_answers(settings: Settings, database: str | None = None) -> bool:
    """True when the ledger's PostgreSQL accepts our credentials and answers a query."""
    if not _port_in_use(settings.postgres_port, settings.postgres_host):
        return False
    import psycopg

    target = settings if database is None else settings.model_copy(update={"postgres_database": database})
    try:
        with psycopg.connect(target.postgres_conninfo(), connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def http_answers(port: int, path: str, any_status: bool = False) -> bool:
    """True when a loopback HTTP server answers ``path`` with 200 (or anything, if asked)."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=2) as response:
            return response.status == 200 or any_status
    except urllib.error.HTTPError:
        return any_status
    except (urllib.error.URLError, OSError):
        return False


# -- process helpers --------------------------------------------------------------------
def _require(binary: str, advice: str) -> None:
    if shutil.which(binary) is None:
        raise StackError(f"`{binary}` was not found on PATH. {advice} (`make install` does this.)")


def _port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def process_alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, IndexError):
        return True
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
