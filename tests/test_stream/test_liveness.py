"""One worker's liveness driven through a day's troubles, with a fake clock and no server:
what /health shows, what creditrisk_dependency_up says, when the watchdog stops the worker,
and what the log says about an outage."""

from __future__ import annotations

import logging

import pytest
from liveness_rig import LivenessRig  # tests/test_stream/liveness_rig.py

from stream.liveness import Stall

PROBE_EVERY_S = 5.0


def probes(start: float, end: float) -> list[float]:
    """The probe's times from ``start`` to ``end`` (both included)."""
    count = int((end - start) / PROBE_EVERY_S)
    return [start + index * PROBE_EVERY_S for index in range(count + 1)]


def test_healthy_then_an_outage_a_recovery_a_stuck_stream_and_a_batch_again() -> None:
    rig = LivenessRig(stall_after_s=30.0, stall_exit_after_s=120.0, started_at=1000.0,
                      last_batch=None)

    # Healthy under a backlog: batches keep completing.
    for now in probes(1000.0, 1100.0):
        rig.last_batch = now - 1.0
        assert rig.probe(now, waiting=500) is None
        assert rig.healthy(now + 1.0)
    assert rig.dependency_up("redis") == rig.dependency_up("kafka") == 1

    # A short stall while both answer: /health turns red 30 s after the last batch (1099),
    # the watchdog waits.
    for now in probes(1105.0, 1125.0):
        assert rig.probe(now, waiting=500) is None
        assert rig.healthy(now)
    assert rig.probe(1130.0, waiting=500) is None
    assert not rig.healthy(1130.0)
    assert "500 events waiting" in str(rig.health(1130.0)["stream"]["detail"])
    assert rig.probe(1135.0, waiting=500) is None
    rig.last_batch = 1136.0
    assert rig.probe(1140.0, waiting=300) is None
    assert rig.healthy(1140.0)

    # Redis goes away for ten minutes: the batch in hand waits, and events pile up.
    outage = probes(1145.0, 1745.0)
    for now in outage:
        assert rig.probe(now, waiting=800, redis=False) is None  # waited out, however long
        health = rig.health(now)
        assert health["redis"] == {"ok": False} and health["kafka"]["ok"]
        assert not rig.healthy(now)
        assert rig.dependency_up("redis") == 0 and rig.dependency_up("kafka") == 1
    assert not rig.health(outage[-1])["stream"]["ok"]  # a stalled outage is red in the stream too

    # Redis answers again, but no batch completes: a client inside the worker is stuck.
    recovered_at = 1750.0
    for now in probes(recovered_at, recovered_at + 120.0):
        assert rig.probe(now, waiting=800) is None  # counted from the recovery, not the outage
        assert rig.health(now)["redis"] == {"ok": True} and rig.dependency_up("redis") == 1
        assert not rig.healthy(now)
    assert rig.probe(recovered_at + 125.0, waiting=800) == Stall(800, 125.0)

    # (A fresh worker would take over; here) a batch completes: green again, no stop.
    rig.last_batch = recovered_at + 126.0
    assert rig.probe(recovered_at + 130.0, waiting=200) is None
    assert rig.healthy(recovered_at + 130.0)
    assert rig.dependency_up("redis") == rig.dependency_up("kafka") == 1


def test_a_kafka_outage_is_red_in_health_and_the_metric_and_waited_out() -> None:
    rig = LivenessRig(stall_exit_after_s=120.0, last_batch=1000.0)
    assert rig.probe(1005.0, waiting=10) is None and rig.healthy(1005.0)
    for now in probes(1010.0, 1610.0):
        assert rig.probe(now, kafka=False) is None
        assert not rig.health(now)["kafka"]["ok"] and rig.health(now)["redis"]["ok"]
        assert rig.dependency_up("kafka") == 0
    assert rig.health(1610.0)["stream"]["waiting_events"] == 10  # the last reading Kafka gave
    rig.last_batch = 1612.0
    assert rig.probe(1615.0, waiting=0) is None
    assert rig.healthy(1615.0) and rig.dependency_up("kafka") == 1


def test_an_outage_logs_down_still_down_and_recovered_once_each(
        caplog: pytest.LogCaptureFixture) -> None:
    rig = LivenessRig(last_batch=1000.0)
    with caplog.at_level(logging.WARNING, logger="stream.liveness"):
        for now in probes(1000.0, 1050.0):  # a probe every 5 s, Kafka away for 50 s
            rig.probe(now, kafka=False)
        rig.probe(1055.0)
        rig.probe(1060.0)
    assert [record.getMessage() for record in caplog.records] == [
        "kafka unavailable (TimeoutError); batches wait and are retried until it recovers",
        "kafka still unavailable after 30 s (TimeoutError)",
        "kafka recovered after 55 s"]


def test_a_stopping_worker_says_why_and_with_which_exit_status() -> None:
    rig = LivenessRig(last_batch=1000.0)
    rig.probe(1005.0)
    assert rig.healthy(1005.0)
    rig.liveness.stopping("model 1 failed on a whole batch", "stopped: ModelRuntimeBroken", 70)
    rig.liveness.agent_ended()
    stream = rig.health(1006.0)["stream"]
    assert stream["ok"] is False and stream["agent_running"] is False
    assert stream["detail"] == "model 1 failed on a whole batch"
    assert (rig.liveness.fatal_error, rig.liveness.exit_status) == (
        "model 1 failed on a whole batch", 70)
