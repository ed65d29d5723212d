"""Processes a fault run may break: a private Kafka broker, a private Redis, and workers.

The shared local stack is used by everyone on the machine, so a run that stops a broker or
Redis starts its own on free ports under a folder of its own (the same ``infra.stack.services``
classes, other settings) and only ever stops those. Workers are ``creditrisk worker``
processes with the run's topics, key prefix, registry and consumer group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from config.kafka_auth import KAFKA_ROLES, KafkaRole, kafka_environment, kafka_secret_name
from config.settings import REPO_ROOT, RedisRole, Settings
from infra.stack.kafka_access import ensure_principals, provision
from infra.stack.services import Kafka, Redis, process_alive
from stream.exits import EXIT_STALLED
from stream.http_auth import bearer_header


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
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
    """A single-node KRaft broker of the run's own (``infra.stack.services.Kafka`` on free ports)."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        port, controller = free_port(), free_port()
        jars = settings.kafka_jars_dir
        if not (jars / ".pom-sha256").exists() and (settings.stack_dir / "kafka-jars").is_dir():
            jars = settings.stack_dir / "kafka-jars"  # the running stack's cache
        self.settings = settings.model_copy(update={
            "kafka_bootstrap": f"127.0.0.1:{port}", "kafka_controller_port": controller,
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
    """A redis-server of the run's own that keeps its data across restarts (append-only
    file, fsync always), so a restart loses only what a restart loses: connections and the
    script cache."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings.model_copy(update={
            "redis_url": f"redis://127.0.0.1:{free_port()}/0", "stack_dir": workdir})
        self.service = _PersistentRedis(self.settings)  # ACL users of its own, in workdir
        share_kafka_credentials(settings, workdir)  # settings on workdir reach Kafka too

    @property
    def url(self) -> str:
        return self.settings.redis_url

    def start(self) -> None:
        self.service.start(echo=lambda line: None)

    def restart(self, down_s: float = 0.0) -> None:
        """A clean restart (SIGTERM writes the append-only file), then up again."""
        self.service.stop(timeout_s=20)
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        self.service.stop(timeout_s=20)


class _PersistentRedis(Redis):
    def command(self) -> list[str]:
        return [*super().command(), "--appendonly", "yes", "--appendfsync", "always"]


def redis_environment(settings: Settings, role: RedisRole, redis_url: str | None) -> dict[str, str]:
    """The role's Redis credentials as environment, for a process whose own stack folder holds
    none (as a deployment gives each process its own)."""
    target = settings if redis_url is None else settings.model_copy(update={"redis_url": redis_url})
    username, password = target.redis_credentials(role)
    login = {"CREDITRISK_REDIS_USERNAME": username} if username else {}
    if password is not None:
        login["CREDITRISK_REDIS_PASSWORD"] = password.get_secret_value()
    return login


class FaultWorker:
    """``creditrisk worker`` (or another worker module) on the run's settings."""

    redis_role: RedisRole = "worker"  # who the process is in Redis
    kafka_role: KafkaRole = "worker"  # and in Kafka

    def __init__(self, settings: Settings, workdir: Path, name: str, group: str,
                 module: str = "cli.main", **extra_env: str) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.command = [sys.executable, "-m", module, "worker"]
        self.env = {
            **os.environ,
            # this checkout's packages, whatever is installed in the environment
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        os.environ.get("PYTHONPATH", "")])),
            **kafka_environment(settings, self.kafka_role),
            "CREDITRISK_REDIS_URL": settings.redis_url,
            "CREDITRISK_TOPIC_APPLICATIONS": settings.topic_applications,
            "CREDITRISK_TOPIC_DECISIONS": settings.topic_decisions,
            "CREDITRISK_TOPIC_DEAD_LETTERS": settings.topic_dead_letters,
            "CREDITRISK_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "CREDITRISK_KEY_PREFIX": settings.key_prefix,
            "CREDITRISK_REGISTRY_DIR": str(settings.registry_dir),
            "CREDITRISK_WORKER_PORT": str(self.port),
            "CREDITRISK_WORKER_GROUP": group,
            "CREDITRISK_STACK_DIR": str(workdir / f"{name}-stack"),
            **redis_environment(settings, self.redis_role, extra_env.get("CREDITRISK_REDIS_URL")),
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.settings = settings.model_copy(update={"worker_group": group})  # its topics and group
        self._provisioned = False
        self.stall_restarts = 0  # times it stopped itself, stalled, and was started again

    def start(self, timeout_s: float = 90.0) -> None:
        if not self._provisioned:  # the group's leader topic and ACLs (the topics exist)
            provision(self.settings)
            self._provisioned = True
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, env=self.env, cwd=REPO_ROOT,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited at start-up:\n{self.log_tail()}")
            if self.http("GET", "/health")[0] == 200:
                return
            time.sleep(0.5)
        raise RuntimeError(f"worker {self.name} not healthy within {timeout_s:.0f} s:\n"
                           f"{self.log_tail()}")

    def restart_if_stalled(self) -> None:
        """Do what its process manager would: start the worker again if it stopped itself
        because its stream stalled (exit status EXIT_STALLED)."""
        if self.process is not None and self.process.poll() == EXIT_STALLED:
            self.process = None
            self.stall_restarts += 1
            self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed or committed."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def http(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request; by default with the worker's own bearer token, when it has one."""
        if headers is None:
            token = self.env.get("CREDITRISK_API_TOKEN")
            headers = {"Content-Type": "application/json",
                       **bearer_header(SecretStr(token) if token else None)}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                         method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def health(self) -> dict[str, Any]:
        status, body = self.http("GET", "/health")
        return json.loads(body) if status in (200, 503) and body else {}

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{labels}': value}."""
        samples: dict[str, float] = {}
        for line in self.http("GET", "/metrics")[1].decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_lines()[-lines:]) or "(no log)"


def metric_sum(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total
