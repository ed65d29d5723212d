"""The worker's /health: red when the agent stopped, when a dependency did not answer the
last probe, or when events wait and no batch has completed for the configured time; green
while batches keep completing. And the stall watchdog's own clock."""

from __future__ import annotations

from liveness_rig import LivenessRig  # tests/test_stream/liveness_rig.py

from config.settings import Settings
from stream.liveness import Probe, Stall

STALL_S = 30.0


def stream(rig: LivenessRig, now: float, waiting: int) -> dict:
    """The stream part of /health at ``now``, just after a probe that counted ``waiting``."""
    rig.probe(now, waiting)
    return rig.health(now)["stream"]


def test_events_waiting_with_no_batch_for_longer_than_the_stall_time_turn_it_red() -> None:
    rig = LivenessRig(stall_after_s=STALL_S, last_batch=1000.0)
    assert stream(rig, 1010.0, waiting=50)["ok"]
    report = stream(rig, 1050.0, waiting=50)
    assert not report["ok"] and "50 events waiting" in str(report["detail"])
    assert report["seconds_since_last_batch"] == 50.0
    assert not rig.healthy(1050.0)


def test_a_long_idle_worker_is_not_stalled_when_events_start_to_arrive() -> None:
    rig = LivenessRig(stall_after_s=STALL_S, last_batch=1000.0)
    assert stream(rig, 5000.0, waiting=0)["ok"]
    # events arrive after an hour of silence: the clock starts when they are first seen
    assert stream(rig, 5001.0, waiting=10)["ok"]
    assert stream(rig, 5020.0, waiting=10)["ok"]
    assert not stream(rig, 5040.0, waiting=10)["ok"]


def test_batches_that_keep_completing_keep_it_green_under_a_backlog() -> None:
    rig = LivenessRig(stall_after_s=STALL_S, last_batch=1000.0)
    for now in range(1000, 1300, 10):
        rig.last_batch = float(now)
        assert stream(rig, now + 5.0, waiting=5000)["ok"]
        assert rig.healthy(now + 5.0)


def test_a_stopped_agent_is_red_with_the_reason() -> None:
    rig = LivenessRig(stall_after_s=STALL_S, last_batch=1000.0, running=False)
    rig.liveness.agent_failed("the scoring agent failed (ValueError)")
    report = stream(rig, 1001.0, waiting=0)
    assert not report["ok"] and report["detail"] == "the scoring agent failed (ValueError)"


def test_the_health_report_keeps_its_shape_and_reads_the_last_probe() -> None:
    rig = LivenessRig(stall_after_s=STALL_S, last_batch=1000.0)
    assert not rig.healthy(1000.0)  # no probe yet: neither Kafka nor Redis known to answer
    rig.probe(1002.0, waiting=7)
    report = rig.health(1003.0)
    assert report["kafka"] == {"ok": True, "assigned_partitions": 1}
    assert report["redis"] == {"ok": True}
    assert report["stream"] == {"ok": True, "agent_running": True, "waiting_events": 7,
                                "seconds_since_last_batch": 3.0}
    rig.probe(1004.0, waiting=7, redis=False)
    assert rig.health(1004.0)["redis"] == {"ok": False} and not rig.healthy(1004.0)
    rig.probe(1006.0, waiting=7, kafka=False)
    assert not rig.health(1006.0)["kafka"]["ok"] and rig.health(1006.0)["redis"]["ok"]


def test_a_worker_assigned_no_partition_is_not_ready() -> None:
    rig = LivenessRig(stall_after_s=STALL_S)
    rig.now = 1002.0
    rig.liveness.probed(Probe({}, None, 1000.0))
    assert rig.health(1002.0)["kafka"] == {"ok": False, "assigned_partitions": 0}


def test_the_worker_stops_itself_only_when_events_wait_past_the_limit_while_all_answers() -> None:
    rig = LivenessRig(last_batch=1000.0, stall_exit_after_s=120)
    assert rig.probe(1005.0, waiting=40) is None               # first seen waiting
    assert rig.probe(1100.0, waiting=40) is None               # 95 s: not yet
    assert rig.probe(1130.0, waiting=40) == Stall(40, 125.0)   # past the limit
    rig.last_batch = 1125.0
    assert rig.probe(1130.0, waiting=40) is None               # a batch completed: moving
    assert rig.probe(1400.0, waiting=0) is None                # nothing waits: idle, not stuck


def test_an_outage_restarts_the_stall_clock_so_a_long_outage_is_waited_out() -> None:
    rig = LivenessRig(last_batch=1000.0, stall_exit_after_s=120)
    assert rig.probe(1010.0, waiting=40) is None
    assert rig.probe(1300.0, waiting=40, redis=False) is None  # Redis away
    assert rig.probe(1305.0, kafka=False) is None              # then Kafka
    # back after five minutes: the batch in hand gets its retry before the clock runs out
    assert rig.probe(1310.0, waiting=40) is None
    assert rig.probe(1420.0, waiting=40) is None
    assert rig.probe(1440.0, waiting=40) == Stall(40, 130.0)


def test_an_outage_does_not_reset_what_health_reports() -> None:
    # /health stays red through an outage that stalls the stream (the runbook's first cause)
    rig = LivenessRig(stall_after_s=STALL_S, last_batch=1000.0)
    assert stream(rig, 1005.0, waiting=40)["ok"]
    for now in (1040.0, 1060.0):  # past the stall time since the events were first seen
        rig.probe(now, waiting=40, redis=False)  # the probes find Redis away
        assert not rig.health(now + 1)["stream"]["ok"]


def test_a_worker_already_stopping_for_another_reason_is_not_stopped_again() -> None:
    rig = LivenessRig(last_batch=1000.0, stall_exit_after_s=120)
    rig.liveness.stopping("model broken", "stopped: ModelRuntimeBroken", 70)
    assert rig.probe(1005.0, waiting=40) is None
    assert rig.probe(2000.0, waiting=40) is None
    assert rig.health(2000.0)["stream"]["detail"] == "model broken"


def test_a_stall_limit_of_zero_never_stops_the_worker() -> None:
    assert Settings(stall_exit_after_s=0).stall_exit_after_s == 0
    rig = LivenessRig(last_batch=1000.0, stall_exit_after_s=0)
    assert rig.probe(1005.0, waiting=40) is None
    assert rig.probe(99_000.0, waiting=40) is None
