"""`creditrisk worker --processes 2` on the real stack: one consumer group, partitions split,
every application decided once."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from worker_harness import (  # tests/test_stream/worker_harness.py
    TopicReader,
    WorkerProcess,
    keyed,
    load_fresh_bureau,
    metric_sum,
    produce,
    valid_events,
)

from infra.stack.kafka_access import Grant, delete_topics, ensure_topics, grant
from stream.supervisor import TARGETS_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARTITIONS = 6


def test_two_processes_in_one_group_split_six_partitions_and_decide_every_application_once(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        tmp_path: Path) -> None:
    settings = namespace.settings
    applications = f"{namespace.topic_applications}-6p"
    ensure_topics(settings, {applications: PARTITIONS})
    grant(settings, [Grant("producer", "WRITE", "TOPIC", applications),
                     Grant("worker", "READ", "TOPIC", applications)])
    load_fresh_bureau(settings, generated_data / "bureau.csv", tmp_path)
    targets = tmp_path / "worker-stack" / "prometheus" / "targets"  # the stack's file_sd folder
    targets.mkdir(parents=True)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "workers.log",
                           command=[sys.executable, "-m", "cli.main", "worker", "--processes", "2"],
                           CREDITRISK_TOPIC_APPLICATIONS=applications,
                           CREDITRISK_TOPIC_PARTITIONS=str(PARTITIONS))
    # As `creditrisk stack up` does: the worker job already scrapes the first port.
    (targets / "worker.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{worker.port}"]}]))
    second = WorkerProcess(namespace, registry_dir, tmp_path / "unused.log")
    second.port = worker.port + 1  # the second child's HTTP port
    events = valid_events(clean_frame, 3_000)
    try:
        worker.start()
        # Prometheus is told about the second process (the first port is the stack's own).
        document = json.loads((targets / TARGETS_FILE).read_text())
        assert document[0]["targets"] == [f"127.0.0.1:{worker.port + 1}"]
        # The second child joins a group the first already formed: the events are sent once
        # the rebalance has settled, so each process has partitions to score them on (sent
        # earlier, the first can decide them all before the second is assigned any).
        _wait_until_both_hold_partitions(worker, second)
        assert produce(settings, applications, keyed(events)) == 3_000

        decisions = TopicReader(settings, namespace.topic_decisions)
        decisions.wait_for(lambda r: len(r.by_key) >= 3_000, 240, "every application decided")
        assert set(decisions.by_key) == {event["application_id"] for event in events}
        for copies in decisions.by_key.values():
            assert all(copy == copies[0] for copy in copies), "a repeated decision differs"
        decisions.close()

        # Both processes took partitions and scored: the group split the topic between them.
        partitions = [_assigned_partitions(process) for process in (worker, second)]
        # Three input partitions each (one of them also holds Faust's one-partition leader topic).
        assert min(partitions) >= 3
        assert sum(partitions) <= PARTITIONS + 1
        consumed = [metric_sum(process.metrics(), "creditrisk_events_consumed_total")
                    for process in (worker, second)]
        assert all(count > 0 for count in consumed)
        assert sum(consumed) >= 3_000
    finally:
        worker.stop()
        delete_topics(settings, [applications])
    assert worker.process is None
    assert not (targets / TARGETS_FILE).exists()  # the supervisor removed its targets on exit


def _assigned_partitions(process: WorkerProcess) -> int:
    return int(json.loads(process.http("GET", "/health")[1])["kafka"]["assigned_partitions"])


def _wait_until_both_hold_partitions(*processes: WorkerProcess, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if min(_assigned_partitions(process) for process in processes) >= 3:
                return
        except (KeyError, ValueError):  # a process not answering yet, or still warming
            pass
        time.sleep(0.5)
    raise AssertionError(f"the two processes did not both hold partitions within {timeout_s:.0f} s")
