"""The soak's figures, verdict and plot, from made-up intervals (no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

from infra.bench.soak import (
    ProcessSample,
    SoakInterval,
    _read_for,
    _Window,
    p99_growth,
    read_worker_figures,
    save_figure,
)

if TYPE_CHECKING:
    from kafka import KafkaConsumer


def interval(index: int, p99_ms: float, worker_mb: float = 280.0) -> SoakInterval:
    return SoakInterval(index, 60.0, 1_000.0, 998.0, 12, p99_ms / 4, p99_ms / 2, p99_ms,
                        (ProcessSample("worker", 41.0, worker_mb),
                         ProcessSample("producer", 20.0, 170.0),
                         ProcessSample("broker", 15.0, 740.0)),
                        mean_batch=4.0, batch_busy=0.3)


def test_a_flat_p99_passes_even_after_a_slow_first_minute() -> None:
    p99s = [400.0, 60.0, 55.0, 62.0, 58.0, 61.0, 57.0, 60.0, 59.0, 61.0]
    growth = p99_growth([interval(i, p99) for i, p99 in enumerate(p99s, start=1)])
    assert not growth.grows
    assert "passes" in growth.line()


def test_a_climbing_p99_fails() -> None:
    growth = p99_growth([interval(i, 50.0 + 30.0 * i) for i in range(1, 11)])
    assert growth.grows
    assert growth.rise_ms > 200
    assert "fails" in growth.line()


def test_a_few_milliseconds_of_noise_is_not_growth() -> None:
    assert not p99_growth([interval(i, 20.0 + i) for i in range(1, 11)]).grows


def test_the_line_names_every_process_with_cpu_and_memory() -> None:
    line = interval(3, 80.0).line()
    for shown in ("sent  1,000/s", "decided    998/s", "lag     12", "p99 80 ms", "worker 41% 280 MB",
                  "producer 20% 170 MB", "broker 15% 740 MB", "batch 4 ev"):
        assert shown in line, line


def test_the_figure_is_a_png_of_latency_and_memory(tmp_path: Path) -> None:
    rows = [interval(i, 60.0, worker_mb=280.0 + i) for i in range(1, 6)]
    path = save_figure(rows, tmp_path / "bench" / "soak.png", "soak: 1,000/s")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # two panels, not an empty canvas


def test_worker_figures_from_its_metrics_page() -> None:
    page = "\n".join([
        "# HELP creditrisk_consumer_lag_messages Events in the input topic not yet processed.",
        'creditrisk_consumer_lag_messages{partition="0"} 3.0',
        'creditrisk_consumer_lag_messages{partition="1"} 4.0',
        "creditrisk_batch_size_count 10.0", "creditrisk_batch_size_sum 250.0",
        "creditrisk_batch_processing_seconds_sum 1.5"])
    figures = read_worker_figures(page)
    assert (figures.lag, figures.batches, figures.batch_events, figures.batch_seconds) == (
        7, 10.0, 250.0, 1.5)
    assert read_worker_figures("").lag is None  # no partitions assigned yet: unknown, not 0


class _Record:
    def __init__(self, decision: dict[str, str]) -> None:
        self.value = json.dumps(decision).encode()


class _Reader:
    """Answers one poll with the given decisions, then nothing."""

    def __init__(self, decisions: list[dict[str, str]]) -> None:
        self.polls = [{"decisions-0": [_Record(decision) for decision in decisions]}]

    def poll(self, timeout_ms: int) -> dict[str, list[_Record]]:
        return self.polls.pop(0) if self.polls else {}


def test_a_repeated_application_is_counted_but_not_timed_from_its_first_copy() -> None:
    now = datetime.now(UTC)
    first_copy = (now - timedelta(seconds=30)).isoformat()
    decisions = [
        {"application_id": "a-1", "submitted_at": (now - timedelta(seconds=0.02)).isoformat(),
         "decided_at": now.isoformat()},
        # The file sent a-2 30 s ago and again just now: its stored decision answers the resend.
        {"application_id": "a-2", "submitted_at": first_copy, "decided_at": first_copy},
        {"application_id": "a-2", "submitted_at": first_copy, "decided_at": first_copy},
    ]
    window, answered = _Window(), {"a-2"}  # a-2's first decision was read in an earlier window
    _read_for(cast("KafkaConsumer", _Reader(decisions)), 0.3, window, answered)
    assert window.outputs == 3 and window.repeats == 2
    assert len(window.latencies) == 1 and window.latencies[0] < 5
    assert answered == {"a-1", "a-2"}
