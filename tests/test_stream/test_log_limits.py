"""An outage writes a bounded number of log lines: repeats of a Kafka client line are
counted, not written, and summarised (the dependencies' own lines: test_liveness.py)."""

from __future__ import annotations

import logging

import pytest

from stream.log_limits import SUMMARY_LOGGER, RepeatedLineLimiter, install


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def written(clock: Clock):
    """Lines written by a handler carrying the limiter (window 30 s), and the limiter."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.name}: {record.getMessage()}")

    root = logging.getLogger("limiter-test")
    root.propagate = False
    root.setLevel(logging.DEBUG)
    handler = Collect()
    root.handlers = [handler]
    limiter = RepeatedLineLimiter(loggers=("limiter-test.aiokafka", SUMMARY_LOGGER),
                                  window_s=30.0, clock=clock)
    install(limiter, root)
    summary = logging.getLogger(SUMMARY_LOGGER)
    summary.addHandler(handler)
    summary.propagate = False
    yield lines, limiter
    summary.removeHandler(handler)


def test_a_connection_error_repeated_thousands_of_times_is_written_once(written, clock):
    lines, _ = written
    client = logging.getLogger("limiter-test.aiokafka.conn")
    for attempt in range(5000):
        clock.now += 0.002
        client.error("Unable connect to node with id %s: %s", 1, f"refused (attempt {attempt})")
    assert lines == ["limiter-test.aiokafka.conn: Unable connect to node with id 1: refused (attempt 0)"]


def test_messages_formatted_before_logging_group_together_despite_their_numbers(written, clock):
    lines, _ = written
    client = logging.getLogger("limiter-test.aiokafka")
    for port in range(40000, 40100):
        client.warning(f"Connection at 127.0.0.1:{port} closed")  # formatted before logging, as libraries do
    assert len(lines) == 1


def test_after_the_window_the_next_line_passes_with_the_count(written, clock):
    lines, _ = written
    client = logging.getLogger("limiter-test.aiokafka")
    for _ in range(11):
        client.error("Unable to update metadata from %s", [1])
    clock.now += 31
    client.error("Unable to update metadata from %s", [1])
    assert len(lines) == 2
    assert lines[1].endswith("[10 similar lines suppressed in the last 31 s]")


def test_flush_summarises_a_window_that_ended_without_another_line(written, clock):
    lines, limiter = written
    client = logging.getLogger("limiter-test.aiokafka.fetcher")
    for _ in range(300):
        client.error("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
    assert limiter.flush() == 0  # the window is still open
    clock.now += 30
    assert limiter.flush() == 1
    assert lines[-1] == (f"{SUMMARY_LOGGER}: 299 line(s) like this one from "
                         "limiter-test.aiokafka.fetcher suppressed in the last 30 s: "
                         "Failed fetch messages from %s: %s")
    assert limiter.flush() == 0  # said once


def test_other_loggers_other_templates_and_other_levels_are_not_limited(written, clock):
    lines, _ = written
    ours = logging.getLogger("limiter-test.stream")
    client = logging.getLogger("limiter-test.aiokafka")
    for _ in range(3):
        ours.warning("redis unavailable")
    client.error("Unable to update metadata from %s", [1])
    client.error("Group Coordinator Request failed: %s", "NodeNotReadyError")
    client.warning("Unable to update metadata from %s", [1])
    assert len(lines) == 6


def test_a_bounded_number_of_kinds_is_remembered(clock):
    limiter = RepeatedLineLimiter(loggers=("x",), window_s=30.0, clock=clock, max_kinds=10)
    for index in range(100):
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, f"kind {chr(65 + index % 26)}"
                                   f"{chr(65 + index // 26)}", None, None)
        assert limiter.filter(record)
        clock.now += 31  # each kind's window is over: forgettable
    assert len(limiter._kinds) <= 10
