"""`creditrisk worker --processes N`: ports, child settings, scrape targets, supervision."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import Settings
from stream.cli import prometheus_targets_dir
from stream.exits import EXIT_STALLED
from stream.supervisor import (
    TARGETS_FILE,
    ChildWorker,
    Supervisor,
    listed_targets,
    plan_children,
    scrape_targets,
    worker_ports,
)


def test_each_process_gets_the_next_port_from_the_worker_port() -> None:
    assert worker_ports(6066, 1) == [6066]
    assert worker_ports(6066, 3) == [6066, 6067, 6068]


@pytest.mark.parametrize(("base", "processes"), [(6066, 0), (65535, 2), (0, 1)])
def test_impossible_process_counts_and_ports_are_refused_with_the_setting_to_change(
        base: int, processes: int) -> None:
    with pytest.raises(ValueError, match=r"processes|CREDITRISK_WORKER_PORT"):
        worker_ports(base, processes)


def test_children_share_every_setting_but_their_port() -> None:
    environment = {"CREDITRISK_WORKER_GROUP": "scoring", "CREDITRISK_TOPIC_APPLICATIONS": "apps",
                   "CREDITRISK_WORKER_PORT": "7000"}
    children = plan_children(2, 7000, "warning", environment)
    assert [child.port for child in children] == [7000, 7001]
    assert [child.env["CREDITRISK_WORKER_PORT"] for child in children] == ["7000", "7001"]
    for child in children:
        assert child.env["CREDITRISK_WORKER_GROUP"] == "scoring"  # one consumer group
        assert child.env["CREDITRISK_TOPIC_APPLICATIONS"] == "apps"
        assert child.command[-3:] == ("worker", "--loglevel", "warning")
        assert "--processes" not in child.command  # a child is a plain worker


def test_scrape_targets_list_the_ports_prometheus_does_not_scrape_yet(tmp_path: Path) -> None:
    (tmp_path / "worker.json").write_text(json.dumps(
        [{"targets": ["127.0.0.1:6066"], "labels": {"service": "creditrisk-worker"}}]))
    (tmp_path / TARGETS_FILE).write_text(json.dumps([{"targets": ["127.0.0.1:6067"]}]))  # ours, stale
    listed = listed_targets(tmp_path)
    assert listed == {"127.0.0.1:6066"}
    assert scrape_targets("127.0.0.1", [6066, 6067, 6068], listed) == [
        {"targets": ["127.0.0.1:6067", "127.0.0.1:6068"], "labels": {"service": "creditrisk-worker"}}]
    assert scrape_targets("127.0.0.1", [6066], listed) == []


def test_the_cli_writes_targets_where_the_local_stack_prometheus_reads_them(tmp_path: Path) -> None:
    from infra.stack.services import Prometheus

    settings = Settings(stack_dir=tmp_path)
    assert prometheus_targets_dir(settings.stack_dir) == Prometheus(settings).targets_dir


def _child(index: int, code: str) -> ChildWorker:
    return ChildWorker(index, 7000 + index, (sys.executable, "-c", code), {})


SLEEPS_UNTIL_TERMINATED = "import time\nwhile True: time.sleep(0.1)"


def test_a_child_that_dies_with_an_error_stops_the_others_and_sets_the_exit_status() -> None:
    supervisor = Supervisor([_child(0, SLEEPS_UNTIL_TERMINATED), _child(1, "import sys; sys.exit(3)")],
                            echo=lambda line: None, stop_grace_s=10)
    started = time.monotonic()
    assert supervisor.run() == 3
    assert time.monotonic() - started < 10
    assert all(process.poll() is not None for process in supervisor.processes)


def test_a_child_that_stopped_because_its_stream_stalled_is_started_again_in_its_place(
        tmp_path: Path) -> None:
    # The first run of the child stalls (exit 75); the run started in its place then fails
    # with an ordinary error, which ends the supervisor: two runs, the status of the second.
    runs = tmp_path / "runs"
    code = (f"import pathlib, sys\np = pathlib.Path({str(runs)!r})\n"
            "p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
            f"sys.exit({EXIT_STALLED} if len(p.read_text()) == 1 else 3)")
    lines: list[str] = []
    supervisor = Supervisor([_child(0, SLEEPS_UNTIL_TERMINATED), _child(1, code)],
                            echo=lines.append, stop_grace_s=10)
    assert supervisor.run() == 3
    assert runs.read_text() == "xx"
    assert any("worker 2 (port 7001) stopped itself" in line for line in lines)


def test_sigterm_is_forwarded_to_every_child_and_a_clean_stop_exits_zero() -> None:
    # Children that exit 0 on SIGTERM, as the Faust worker does.
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
            "while True: time.sleep(0.1)")
    supervisor = Supervisor([_child(0, code), _child(1, code)], echo=lambda line: None)
    timer = threading.Timer(1.0, lambda: supervisor._forward(signal.SIGTERM, None))
    timer.start()
    try:
        assert supervisor.run() == 0
    finally:
        timer.cancel()
    assert [process.returncode for process in supervisor.processes] == [0, 0]


def test_a_child_whose_shutdown_hangs_is_killed_after_the_grace_and_the_stop_says_so() -> None:
    # One child stops on SIGTERM, the other's clean shutdown never ends.
    stops = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
             "while True: time.sleep(0.1)")
    hangs = ("import signal, time\n"
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
             "while True: time.sleep(0.1)")
    lines: list[str] = []
    supervisor = Supervisor([_child(0, stops), _child(1, hangs)], echo=lines.append,
                            stop_grace_s=1.0)
    timer = threading.Timer(1.0, lambda: supervisor._forward(signal.SIGTERM, None))
    timer.start()
    started = time.monotonic()
    try:
        assert supervisor.run() == 1
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10  # the grace, not forever
    assert [process.returncode for process in supervisor.processes] == [0, -signal.SIGKILL]
    assert any("worker 2 (port 7001) did not stop within 1 s: killed" in line for line in lines)


def test_worker_help_offers_processes() -> None:
    from cli.main import app

    result = CliRunner().invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    assert "--processes" in result.output
