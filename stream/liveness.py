"""Is the worker alive and moving? One owner of the answer.

The worker's periodic probe is the only feeder of dependency and lag readings: every few
seconds it counts the events waiting on the assigned partitions (a Kafka round trip), pings
Redis and reads when the pipeline last completed a batch, and hands that :class:`Probe` to
:meth:`Liveness.probed`. The scoring agent reports its own state (running, failed, stopping).
Everything else reads:

- ``GET /health`` renders a :class:`LivenessSnapshot` and makes no round trip of its own;
- the ``creditrisk_dependency_up`` gauge is set here, as each probe finds the dependency;
- the stall watchdog asks :meth:`Liveness.stall_to_stop` after each probe.

Two stall clocks, two purposes:

- **/health's** (``stall_after_s``): events wait and no batch has completed for that long,
  counted from the latest of the last completed batch, the moment the events were first seen
  waiting and the worker's start. An outage does not reset it: a stream stalled by an outage
  is red.
- **The watchdog's** (``stall_exit_after_s``, 0 never): the same, but counted only since Kafka
  and Redis both last answered. An outage is waited out however long (the pipeline retries
  the batch), and the batch in hand gets its retry after the outage before the clock can run
  out. Past the limit a client inside the worker is stuck, and the worker stops itself
  (:func:`stream.exits.stop_stalled_worker`).

The warm start (:mod:`stream.warm_start`) reports here too: ``/health`` says ``warming`` (and is
red, 503) from the worker's start until it is warm and about to join its consumer group.

Outages are loud in the metric and in ``/health`` and quiet in the log: one line when a
dependency goes down, one every ``still_down_every_s`` while it stays down, one when it
recovers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol

DEPENDENCIES: tuple[str, ...] = ("redis", "kafka")
# The warm start's states: "off" (not configured), "warming" (not yet joined the group),
# "warm" (every part warmed), "cold" (some part could not be warmed; the worker serves anyway).
WarmStartState = Literal["off", "warming", "warm", "cold"]
# One part of the ``GET /health`` report: JSON values, ``ok`` among them.
HealthPart = dict[str, str | int | float | bool | None]

log = logging.getLogger(__name__)


class GaugeSeries(Protocol):
    def set(self, value: float) -> None: ...


class DependencyGauge(Protocol):
    """``creditrisk_dependency_up{dependency}``: 1 while the dependency answers, else 0."""

    def labels(self, *, dependency: str) -> GaugeSeries: ...


@dataclass(frozen=True)
class Probe:
    """One round of the periodic probe."""

    # Events waiting per assigned partition of the input topic, or why Kafka did not answer.
    lag: Mapping[int, int] | BaseException
    # Why Redis did not answer its ping; None when it did.
    redis: BaseException | None
    # time.time() when the pipeline last completed a batch; None before its first.
    last_batch_completed_at: float | None


@dataclass(frozen=True)
class Stall:
    """The stream stalled past the watchdog's limit while Kafka and Redis answered."""

    waiting: int
    seconds: float


@dataclass(frozen=True)
class LivenessSnapshot:
    """What the worker knows of its own liveness at ``at``, as the last probe found it."""

    at: float
    probed: bool                          # has any probe completed yet
    dependencies_up: Mapping[str, bool]   # redis, kafka: answered the last probe
    waiting_by_partition: Mapping[int, int]  # the last lag reading Kafka answered
    last_batch_completed_at: float | None
    stalled_for: float                    # /health's stall clock (0 when nothing waits)
    stall_after_s: float
    agent_running: bool
    agent_error: str | None               # why the agent last stopped, if it failed
    fatal_error: str | None               # why the worker is stopping, if it is
    warm_start: WarmStartState = "off"
    warm_start_seconds: float | None = None
    warm_start_detail: str | None = None   # what stayed cold, if anything

    @property
    def assigned_partitions(self) -> int:
        return len(self.waiting_by_partition)

    @property
    def waiting_events(self) -> int:
        return sum(self.waiting_by_partition.values())

    @property
    def seconds_since_last_batch(self) -> float | None:
        last = self.last_batch_completed_at
        return None if last is None else round(self.at - last, 1)

    @property
    def redis_ok(self) -> bool:
        return self.probed and self.dependencies_up["redis"]

    @property
    def kafka_ok(self) -> bool:
        """Kafka answers and has assigned this worker partitions to consume."""
        return self.probed and self.dependencies_up["kafka"] and self.assigned_partitions > 0

    @property
    def stalled(self) -> bool:
        return self.stalled_for > self.stall_after_s

    @property
    def stream_ok(self) -> bool:
        """The agent runs, is not stopping, and is not stalled."""
        return self.agent_running and not self.stalled and self.fatal_error is None

    @property
    def stream_detail(self) -> str | None:
        """Why the stream is red, if it is."""
        if self.fatal_error or self.agent_error:
            return self.fatal_error or self.agent_error
        if self.stalled:
            return (f"{self.waiting_events} events waiting and no batch completed for more "
                    f"than {self.stall_after_s:g} s")
        return None

    def health(self) -> dict[str, HealthPart]:
        """The kafka, redis and stream parts of ``GET /health``. The stream part is red when
        the agent stopped, or when events have waited for ``stall_after_s`` with no batch
        completed since."""
        stream: HealthPart = {
            "ok": self.stream_ok, "agent_running": self.agent_running,
            "waiting_events": self.waiting_events,
            "seconds_since_last_batch": self.seconds_since_last_batch}
        if self.stream_detail is not None:
            stream["detail"] = self.stream_detail
        return {"kafka": {"ok": self.kafka_ok, "assigned_partitions": self.assigned_partitions},
                "redis": {"ok": self.redis_ok},
                "stream": stream,
                "warm_start": self.warm_start_health()}

    def warm_start_health(self) -> HealthPart:
        """Red only while warming: a worker that could not warm a part still serves."""
        part: HealthPart = {"ok": self.warm_start != "warming", "state": self.warm_start}
        if self.warm_start_seconds is not None:
            part["seconds"] = round(self.warm_start_seconds, 2)
        if self.warm_start_detail is not None:
            part["detail"] = self.warm_start_detail
        return part


class Liveness:
    """The dependency status, the lag readings, the stall clocks, the agent's state and the
    last completed batch of one worker. Not thread-safe: one event loop feeds and reads it."""

    def __init__(self, gauge: DependencyGauge, stall_after_s: float, stall_exit_after_s: float,
                 still_down_every_s: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.gauge = gauge
        self.stall_after_s = stall_after_s
        self.stall_exit_after_s = stall_exit_after_s  # 0: never stop the worker
        self.still_down_every_s = still_down_every_s
        self.clock = clock  # wall time: the pipeline stamps its batches with time.time()
        self.started_at = clock()
        self._down_since: dict[str, float] = {}  # the dependencies that did not answer
        self._last_line_at: dict[str, float] = {}
        for name in DEPENDENCIES:
            gauge.labels(dependency=name).set(1)
        self._probed_at: float | None = None
        self._lag: Mapping[int, int] = MappingProxyType({})
        self._waiting_since: float | None = None    # when events were first seen waiting
        self._answering_since: float | None = None  # since when Kafka and Redis both answer
        self._last_batch_completed_at: float | None = None
        self.agent_running = False
        self.agent_error: str | None = None
        self.fatal_error: str | None = None
        self.exit_status: int | None = None  # of `creditrisk worker`, once it is stopping
        self.warm_start: WarmStartState = "off"
        self._warm_start_seconds: float | None = None
        self._warm_start_detail: str | None = None

    # -- fed by the probe ------------------------------------------------------------------

    def probed(self, probe: Probe) -> None:
        """Take one round of the periodic probe, found now."""
        now = self._probed_at = self.clock()
        self._last_batch_completed_at = probe.last_batch_completed_at
        failures = {"kafka": probe.lag if isinstance(probe.lag, BaseException) else None,
                    "redis": probe.redis}
        for name, error in failures.items():
            if error is None:
                self._answered(name, now)
            else:
                self._failed(name, error, now)
        if not isinstance(probe.lag, BaseException):  # else Kafka is away: the last reading stands
            self._lag = MappingProxyType(dict(probe.lag))
            if sum(probe.lag.values()) == 0:
                self._waiting_since = None
            elif self._waiting_since is None:
                self._waiting_since = now
        if self._down_since:
            self._answering_since = None
        elif self._answering_since is None:
            self._answering_since = now

    def stall_to_stop(self) -> Stall | None:
        """After a probe: the stall, when the stream has stalled past ``stall_exit_after_s``
        while Kafka and Redis answer and the worker is not already stopping (else None)."""
        now, since = self._probed_at, self._answering_since
        if now is None or since is None or not self.stall_exit_after_s or self.fatal_error:
            return None
        stalled = self._stalled_for(now, not_before=since)
        if stalled <= self.stall_exit_after_s:
            return None
        return Stall(sum(self._lag.values()), stalled)

    # -- fed by the warm start -------------------------------------------------------------

    def warming(self) -> None:
        """The worker warms up before joining its consumer group: /health is red meanwhile."""
        self.warm_start = "warming"

    def warmed(self, seconds: float, cold_parts: Sequence[str] = ()) -> None:
        """The warm start is over (``cold_parts``: what could not be warmed, and why)."""
        self.warm_start = "cold" if cold_parts else "warm"
        self._warm_start_seconds = seconds
        self._warm_start_detail = "; ".join(cold_parts) if cold_parts else None

    # -- fed by the agent ------------------------------------------------------------------

    def agent_started(self) -> None:
        self.agent_running, self.agent_error = True, None

    def agent_failed(self, reason: str) -> None:
        self.agent_error = reason

    def agent_ended(self) -> None:
        self.agent_running = False

    def stopping(self, fatal_error: str, agent_error: str, exit_status: int) -> None:
        """The worker stops itself: why (for the operator), what the agent shows, and the
        exit status of ``creditrisk worker``."""
        self.fatal_error, self.agent_error, self.exit_status = fatal_error, agent_error, exit_status

    # -- read ------------------------------------------------------------------------------

    def snapshot(self) -> LivenessSnapshot:
        now = self.clock()
        return LivenessSnapshot(
            at=now, probed=self._probed_at is not None,
            dependencies_up=MappingProxyType(
                {name: name not in self._down_since for name in DEPENDENCIES}),
            waiting_by_partition=self._lag,
            last_batch_completed_at=self._last_batch_completed_at,
            stalled_for=self._stalled_for(now), stall_after_s=self.stall_after_s,
            agent_running=self.agent_running, agent_error=self.agent_error,
            fatal_error=self.fatal_error, warm_start=self.warm_start,
            warm_start_seconds=self._warm_start_seconds,
            warm_start_detail=self._warm_start_detail)

    # -- inside ----------------------------------------------------------------------------

    def _stalled_for(self, now: float, not_before: float | None = None) -> float:
        """Seconds that events have waited with no batch completed (0 when none wait),
        counted from ``not_before`` at the earliest."""
        if sum(self._lag.values()) == 0:
            return 0.0
        progress = max(moment for moment in (self._last_batch_completed_at, self._waiting_since,
                                             self.started_at, not_before) if moment is not None)
        return max(now - progress, 0.0)

    def _failed(self, name: str, error: BaseException, now: float) -> None:
        self.gauge.labels(dependency=name).set(0)
        if name not in self._down_since:
            self._down_since[name] = self._last_line_at[name] = now
            log.warning("%s unavailable (%s); batches wait and are retried until it recovers",
                        name, type(error).__name__)
        elif now - self._last_line_at[name] >= self.still_down_every_s:
            self._last_line_at[name] = now
            log.warning("%s still unavailable after %.0f s (%s)", name,
                        now - self._down_since[name], type(error).__name__)

    def _answered(self, name: str, now: float) -> None:
        since = self._down_since.pop(name, None)
        if since is not None:
            self.gauge.labels(dependency=name).set(1)
            log.warning("%s recovered after %.0f s", name, now - since)
