"""Workers a fault run may break, and how to read them.

The shared local stack is used by everyone on the machine, so a run that stops a broker or
Redis starts its own (:mod:`infra.stack.private`) and only ever stops those. Workers are
``creditrisk worker`` processes with the run's topics, key prefix, registry and consumer
group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from config.kafka_auth import KafkaRole, kafka_environment
from config.settings import REPO_ROOT, RedisRole, Settings
from infra.stack.kafka_access import provision
from infra.stack.private import free_port
from stream.exits import EXIT_STALLED, STOP_GRACE_S
from stream.http_auth import bearer_header


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
            # a Redis Cluster's seeds and the key schema its slots need (none, v1: one Redis)
            "CREDITRISK_REDIS_CLUSTER_NODES": settings.redis_cluster_nodes,
            "CREDITRISK_FEATURE_SCHEMA_VERSION": settings.feature_schema_version,
            "CREDITRISK_KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),
            "CREDITRISK_KAFKA_MIN_INSYNC_REPLICAS": str(settings.kafka_min_insync_replicas),
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
                # Longer than the worker's (and the supervisor's) own grace, so a slow clean
                # shutdown still ends in the process's own clean-up, not a SIGKILL.
                self.process.wait(timeout=STOP_GRACE_S + 15)
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
