"""The worker's /health "stream" check: red when the agent stopped, or when events wait and
no batch has completed for the configured time; green while batches keep completing."""

from __future__ import annotations

from types import SimpleNamespace

from config.settings import Settings
from stream.app import ServiceState, stream_health

STALL_S = 30.0


def state(last_batch: float | None, started_at: float = 1000.0, running: bool = True) -> ServiceState:
    service = ServiceState(app=None, settings=Settings())  # type: ignore[arg-type]
    service.started_at = started_at
    service.agent_running = running
    service.pipeline = SimpleNamespace(last_batch_completed_at=last_batch)  # type: ignore[assignment]
    return service


def test_events_waiting_with_no_batch_for_longer_than_the_stall_time_turn_it_red() -> None:
    service = state(last_batch=1000.0)
    assert stream_health(service, waiting=50, stall_after_s=STALL_S, now=1010.0)["ok"]
    report = stream_health(service, waiting=50, stall_after_s=STALL_S, now=1050.0)
    assert not report["ok"] and "50 events waiting" in report["detail"]
    assert report["seconds_since_last_batch"] == 50.0


def test_a_long_idle_worker_is_not_stalled_when_events_start_to_arrive() -> None:
    service = state(last_batch=1000.0)
    assert stream_health(service, waiting=0, stall_after_s=STALL_S, now=5000.0)["ok"]
    # events arrive after an hour of silence: the clock starts when they are first seen
    assert stream_health(service, waiting=10, stall_after_s=STALL_S, now=5001.0)["ok"]
    assert stream_health(service, waiting=10, stall_after_s=STALL_S, now=5020.0)["ok"]
    assert not stream_health(service, waiting=10, stall_after_s=STALL_S, now=5040.0)["ok"]


def test_batches_that_keep_completing_keep_it_green_under_a_backlog() -> None:
    service = state(last_batch=1000.0)
    for now in range(1000, 1300, 10):
        service.pipeline.last_batch_completed_at = float(now)  # type: ignore[union-attr]
        assert stream_health(service, waiting=5000, stall_after_s=STALL_S, now=now + 5.0)["ok"]


def test_a_stopped_agent_is_red_with_the_reason() -> None:
    service = state(last_batch=1000.0, running=False)
    service.agent_error = "the scoring agent failed (ValueError)"
    report = stream_health(service, waiting=0, stall_after_s=STALL_S, now=1001.0)
    assert not report["ok"] and report["detail"] == "the scoring agent failed (ValueError)"


def test_the_worker_stops_itself_only_when_events_wait_past_the_limit_while_all_answers() -> None:
    service = state(last_batch=1000.0)
    service.settings = Settings(stall_exit_after_s=120)
    assert service.stalled_past_limit(40, now=1005.0) is None   # first seen waiting
    assert service.stalled_past_limit(40, now=1100.0) is None   # 95 s: not yet
    assert service.stalled_past_limit(40, now=1130.0) == 125.0  # past the limit
    service.pipeline.last_batch_completed_at = 1125.0  # type: ignore[union-attr]
    assert service.stalled_past_limit(40, now=1130.0) is None   # a batch completed: moving
    assert service.stalled_past_limit(0, now=1400.0) is None    # nothing waits: idle, not stuck


def test_an_outage_restarts_the_stall_clock_so_a_long_outage_is_waited_out() -> None:
    service = state(last_batch=1000.0)
    service.settings = Settings(stall_exit_after_s=120)
    assert service.stalled_past_limit(40, now=1010.0) is None
    assert service.stalled_past_limit(None, now=1300.0) is None  # Kafka or Redis away
    # back after five minutes: the batch in hand gets its retry before the clock runs out
    assert service.stalled_past_limit(40, now=1310.0) is None
    assert service.stalled_past_limit(40, now=1420.0) is None
    assert service.stalled_past_limit(40, now=1440.0) == 130.0


def test_an_outage_does_not_reset_what_health_reports() -> None:
    # /health stays red through an outage that stalls the stream (the runbook's first cause)
    service = state(last_batch=1000.0)
    assert stream_health(service, waiting=40, stall_after_s=STALL_S, now=1005.0)["ok"]
    for now in (1040.0, 1060.0):  # past the stall time since the events were first seen
        service.stalled_past_limit(None, now=now)  # the probes find Redis away
        assert not stream_health(service, waiting=40, stall_after_s=STALL_S, now=now + 1)["ok"]


def test_a_worker_already_stopping_for_another_reason_is_not_stopped_again() -> None:
    service = state(last_batch=1000.0)
    service.settings = Settings(stall_exit_after_s=120)
    service.fatal_error = "model broken"
    assert service.stalled_past_limit(40, now=2000.0) is None
    assert Settings(stall_exit_after_s=0).stall_exit_after_s == 0  # 0: never
