"""Outages are quiet in the log and loud in the metrics.

While Kafka is away the Kafka client and Faust log the same connection error many times a
second (thousands of lines for a ten-second broker restart). :class:`RepeatedLineLimiter`
lets the first line of each kind through, suppresses repeats of it for ``window_s`` seconds
and then says how many it suppressed, so an outage writes a bounded number of lines: it
started, it is still going on (one summary per kind and window), and — from the pipeline —
it ended. Which dependency is down and for how long is in the metrics
(``creditrisk_dependency_up``, ``creditrisk_batch_retries_total``) and in ``/health``.

A "kind" is the logger and the message template (``record.msg``, digits blurred so that
messages formatted before logging, with ports and node ids in them, still group together).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import faust

# Loggers of the libraries that repeat themselves during an outage (and their children).
NOISY_LOGGERS: tuple[str, ...] = ("aiokafka", "kafka", "faust", "mode")
SUMMARY_LOGGER = "creditrisk.log_limits"
_DIGITS = re.compile(r"\d+")


@dataclass
class _Kind:
    logger: str
    level: int
    template: str
    window_started: float
    suppressed: int = 0


class RepeatedLineLimiter(logging.Filter):
    """A handler filter: the first line of a kind passes, its repeats within ``window_s`` are
    counted instead of written; the next one after the window passes with the count, and
    :meth:`flush` writes the counts of windows that ended without another line."""

    def __init__(self, loggers: tuple[str, ...] = NOISY_LOGGERS, window_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, max_kinds: int = 1000) -> None:
        super().__init__()
        self.loggers = loggers
        self.window_s = window_s
        self.clock = clock
        self.max_kinds = max_kinds
        self._kinds: dict[tuple[str, int, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == SUMMARY_LOGGER or not self._watched(record.name):
            return True
        template = _DIGITS.sub("#", str(record.msg))[:300]
        key = (record.name, record.levelno, template)
        now = self.clock()
        kind = self._kinds.get(key)
        if kind is None:
            if len(self._kinds) >= self.max_kinds:
                self._forget_quiet_kinds(now)
            self._kinds[key] = _Kind(record.name, record.levelno, template, now)
            return True
        if now - kind.window_started < self.window_s:
            kind.suppressed += 1
            return False
        if kind.suppressed:
            record.msg = f"{record.msg} [{kind.suppressed} similar lines suppressed in the last " \
                         f"{now - kind.window_started:.0f} s]"
        kind.window_started, kind.suppressed = now, 0
        return True

    def flush(self) -> int:
        """Write one summary line per kind whose window ended with lines suppressed; returns
        how many it wrote. Call it periodically (the worker does, every few seconds)."""
        now = self.clock()
        written = 0
        for kind in list(self._kinds.values()):
            if kind.suppressed and now - kind.window_started >= self.window_s:
                logging.getLogger(SUMMARY_LOGGER).log(
                    kind.level, "%d line(s) like this one from %s suppressed in the last "
                    "%.0f s: %s", kind.suppressed, kind.logger, now - kind.window_started,
                    kind.template)
                kind.window_started, kind.suppressed = now, 0
                written += 1
        return written

    def _watched(self, name: str) -> bool:
        return any(name == logger or name.startswith(logger + ".") for logger in self.loggers)

    def _forget_quiet_kinds(self, now: float) -> None:
        self._kinds = {key: kind for key, kind in self._kinds.items()
                       if kind.suppressed or now - kind.window_started < self.window_s}


def install(limiter: RepeatedLineLimiter, logger: logging.Logger | None = None) -> None:
    """Put the limiter on every handler of ``logger`` (the root logger by default): handler
    filters see the records of every child logger, logger filters only their own."""
    for handler in (logger or logging.getLogger()).handlers:
        if limiter not in handler.filters:
            handler.addFilter(limiter)


# The worker process's limiter: installed on the root handlers once Faust has set logging
# up, flushed by the app's timer.
OUTAGE_LINES = RepeatedLineLimiter()


class QuietOutagesWorker(faust.Worker):
    """The Faust worker, with :data:`OUTAGE_LINES` on the log handlers it configures."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        install(OUTAGE_LINES, logger)
