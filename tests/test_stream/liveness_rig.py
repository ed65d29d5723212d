"""A worker's liveness with a fake clock, fed as its periodic probe would feed it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from stream.liveness import HealthPart, Liveness, Probe, Stall
from stream.metrics import WorkerMetrics


class LivenessRig:
    """Time is set by each call (``now``); the pipeline's last completed batch by the test."""

    def __init__(self, stall_after_s: float = 30.0, stall_exit_after_s: float = 120.0,
                 started_at: float = 1000.0, last_batch: float | None = 1000.0,
                 running: bool = True) -> None:
        self.now = started_at
        self.registry = CollectorRegistry()
        self.liveness = Liveness(WorkerMetrics(self.registry).dependency_up, stall_after_s, stall_exit_after_s,
                                 clock=lambda: self.now)
        self.last_batch = last_batch
        if running:
            self.liveness.agent_started()

    def probe(self, now: float, waiting: int = 0, redis: bool = True, kafka: bool = True,
              ) -> Stall | None:
        """One probe round at ``now``: ``waiting`` events on one partition when Kafka answers.
        Returns what the watchdog is told to stop for, if anything."""
        self.now = now
        self.liveness.probed(Probe({0: waiting} if kafka else TimeoutError(),
                                   None if redis else ConnectionError(), self.last_batch))
        return self.liveness.stall_to_stop()

    def health(self, now: float) -> dict[str, HealthPart]:
        """``GET /health`` at ``now``, but for its model part."""
        self.now = now
        return self.liveness.snapshot().health()

    def healthy(self, now: float) -> bool:
        return all(part["ok"] for part in self.health(now).values())

    def dependency_up(self, dependency: str) -> float | None:
        """``creditrisk_dependency_up{dependency}`` as /metrics shows it."""
        return self.registry.get_sample_value("creditrisk_dependency_up",
                                              {"dependency": dependency})
