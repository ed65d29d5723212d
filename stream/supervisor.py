"""``creditrisk worker --processes N``: N scoring workers in one consumer group on this machine.

Python runs one event loop on one core, so a machine with more cores runs more worker
processes. Each child is a plain ``creditrisk worker`` with the same settings (same consumer
group, topics, key prefix) and its own HTTP port, ``base port + i``; Kafka splits the input
topic's partitions between them exactly as it does between workers on several machines, so
more machines join the same group by running ``creditrisk worker`` with the same settings.

Each child warms up before it joins the group (:mod:`stream.warm_start`: Kafka metadata and
leaders, Redis connections, a synthetic batch of each size through the model), so neither a
child of a fresh start nor one started again in a stalled child's place takes partitions
cold; its ``/health`` says ``warming`` meanwhile.

The supervisor starts, watches and stops: it forwards SIGTERM / SIGINT to every child and
waits for them. A child that stopped itself because its stream stalled (exit status 75,
``stream.exits.EXIT_STALLED``) is started again in its place; when a child dies with
any other error the supervisor stops the others and exits with that child's status (so
systemd, Kubernetes or a shell loop restarts the whole set). With a
file_sd folder (the local stack's Prometheus), it writes one scrape target per child there
and removes the file on exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from stream.exits import EXIT_STALLED, STOP_GRACE_S

MAX_PORT = 65535
TARGETS_FILE = "worker-processes.json"
WORKER_SERVICE_LABEL = {"service": "creditrisk-worker"}


@dataclass(frozen=True)
class ChildWorker:
    """One child process to run: its command line, environment and HTTP port."""

    index: int
    port: int
    command: tuple[str, ...]
    env: Mapping[str, str]

    def health_url(self, host: str) -> str:
        return f"http://{host}:{self.port}/health"

    def metrics_url(self, host: str) -> str:
        return f"http://{host}:{self.port}/metrics"


def worker_ports(base_port: int, processes: int) -> list[int]:
    """The HTTP port of each child: ``base_port``, ``base_port + 1``, …"""
    if processes < 1:
        raise ValueError(f"--processes must be at least 1, got {processes}.")
    if not 1 <= base_port <= MAX_PORT - processes + 1:
        raise ValueError(f"ports {base_port}..{base_port + processes - 1} are not all valid TCP "
                         f"ports: set CREDITRISK_WORKER_PORT to at most {MAX_PORT - processes + 1}.")
    return [base_port + index for index in range(processes)]


def plan_children(processes: int, base_port: int, loglevel: str,
                  environment: Mapping[str, str]) -> list[ChildWorker]:
    """The children of ``creditrisk worker --processes N``: the same settings, one port each."""
    command = (sys.executable, "-m", "cli.main", "worker", "--loglevel", loglevel)
    return [ChildWorker(index, port, command, {**environment, "CREDITRISK_WORKER_PORT": str(port)})
            for index, port in enumerate(worker_ports(base_port, processes))]


def scrape_targets(host: str, ports: Sequence[int], already_scraped: set[str]) -> list[dict[str, object]]:
    """A file_sd document for the children's ports not already listed in the folder (the local
    stack's ``worker.json`` lists the default port)."""
    targets = [f"{host}:{port}" for port in ports if f"{host}:{port}" not in already_scraped]
    return [{"targets": targets, "labels": dict(WORKER_SERVICE_LABEL)}] if targets else []


def listed_targets(targets_dir: Path, skip: str = TARGETS_FILE) -> set[str]:
    """Every target already listed by the other file_sd files of the folder."""
    listed: set[str] = set()
    for path in targets_dir.glob("*.json"):
        if path.name == skip:
            continue
        try:
            groups = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # not ours to judge; Prometheus reports a broken file itself
        for group in groups if isinstance(groups, list) else []:
            listed.update(str(target) for target in group.get("targets", []))
    return listed


class Supervisor:
    """Runs the children until they all end; see the module docstring for the rules."""

    def __init__(self, children: Sequence[ChildWorker], echo: Callable[[str], None] = print,
                 stop_grace_s: float = STOP_GRACE_S) -> None:
        self.children = list(children)
        self.echo = echo
        self.stop_grace_s = stop_grace_s
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self.stop_requested_at: float | None = None
        self.killed = False  # a child outlived the stop grace and was killed

    def run(self) -> int:
        """Start every child, forward signals, wait; the exit status for the command."""
        previous = {sig: signal.signal(sig, self._forward) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.processes = [self._start(child) for child in self.children]
            return self._wait()
        finally:
            self._stop(signal.SIGTERM)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @staticmethod
    def _start(child: ChildWorker) -> subprocess.Popen[bytes]:
        # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which
        # forwards it once (a second SIGINT would make Faust skip its clean shutdown).
        return subprocess.Popen(child.command, env=dict(child.env), start_new_session=True)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        self._signal_all(signal.Signals(signum))

    def _signal_all(self, sig: signal.Signals) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(sig)

    def _wait(self) -> int:
        while True:
            codes = [process.poll() for process in self.processes]
            for index, code in enumerate(codes):
                if code == EXIT_STALLED and not self.stopping:
                    self.echo(f"worker {index + 1} (port {self.children[index].port}) stopped "
                              "itself: its stream had stalled. Starting it again")
                    self.processes[index] = self._start(self.children[index])
                    codes[index] = None
            failed = [(index, code) for index, code in enumerate(codes) if code not in (None, 0)]
            if failed and not self.stopping:
                index, code = failed[0]
                self.echo(f"worker {index + 1} (port {self.children[index].port}) exited with "
                          f"status {code}: stopping the others")
                self.stopping = True
                self._stop(signal.SIGTERM)
                return int(code or 1)
            if all(code is not None for code in codes):
                # Stopped on request: a child that still failed to shut down cleanly says so.
                errors = [code for code in codes if code and code > 0]
                return errors[0] if errors else (1 if self.killed else 0)
            if (self.stop_requested_at is not None
                    and time.monotonic() - self.stop_requested_at > self.stop_grace_s):
                # A child whose clean shutdown hangs is killed after the same grace as on any
                # other stop, so the supervisor itself ends (and tidies up) in bounded time.
                self._kill_remaining()
            time.sleep(0.2)

    def _kill_remaining(self) -> None:
        for index, process in enumerate(self.processes):
            if process.poll() is None:
                self.echo(f"worker {index + 1} (port {self.children[index].port}) did not stop "
                          f"within {self.stop_grace_s:.0f} s: killed")
                process.kill()
                process.wait()
                self.killed = True

    def _stop(self, sig: signal.Signals) -> None:
        self._signal_all(sig)
        deadline = time.monotonic() + self.stop_grace_s
        for process in self.processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_worker_processes(processes: int, base_port: int, host: str, loglevel: str,
                         targets_dir: Path | None, echo: Callable[[str], None] = print) -> int:
    """``creditrisk worker --processes N``: start, announce, supervise; the exit status."""
    children = plan_children(processes, base_port, loglevel, os.environ)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    targets_file = targets_dir / TARGETS_FILE if targets_dir and targets_dir.is_dir() else None
    if targets_file is not None:
        document = scrape_targets(shown_host, [child.port for child in children],
                                  listed_targets(targets_file.parent))
        targets_file.write_text(json.dumps(document, indent=2))
    for child in children:
        echo(f"worker {child.index + 1}/{processes}: {child.health_url(shown_host)} and "
             f"{child.metrics_url(shown_host)}")
    if targets_file is not None:
        echo(f"Prometheus scrapes them through {targets_file}")
    try:
        return Supervisor(children, echo).run()
    finally:
        if targets_file is not None:
            targets_file.unlink(missing_ok=True)
