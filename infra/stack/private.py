"""Servers of one's own beside the shared local stack, for a fault run or a test that stops,
restarts or reconfigures one: one helper per service, each on free loopback ports and in a
folder of its own, so the shared stack (used by everyone on the machine) is never touched.

A private Kafka broker is :class:`infra.stack.services.Kafka` with other settings; a private
Redis is a ``redis-server`` process run with the stack's ``redis.conf``, with ACL users of its
own like the stack's Redis, or open (or protected as its extra arguments say) when a test
needs a Redis without the stack's users.
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
from infra.stack.services import INFRA_DIR, LOOPBACK, Kafka, Redis, process_alive, redis_answers

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
