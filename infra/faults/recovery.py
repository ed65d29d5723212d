"""How long a fault held applications up: the time to recover, measured from Kafka's own
timestamps so that a slow reader of the outcomes never lengthens it.

Each application's delay is the time from the producer being handed it to the first copy of
its decision being published (the decision record's Kafka timestamp, set by the worker when
it sent it; at-least-once copies count from the earliest). Before the fault, delays are
what this machine gives in normal running; an application is *held up* when its decision
was published after the kill and it waited longer than ``max(floor_s, factor × the median
delay before the kill)`` (the median, not a high percentile: the first events of a run wait
for the workers' first batches, and that start-up must not raise the bar). The **time to
recover** is from the kill to the publication of the last held-up application's decision:
after it, applications are again decided in normal time. An outage shorter than that bar
holds nothing up and recovers in 0 s.

The bar only decides which applications count as held up, hardly the figure: during an
outage of ``D`` seconds the application sent ``t`` seconds after the kill waits about
``D - t``, so the last held-up one is decided when the backlog has drained, whatever the
bar below ``D``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.faults.harness import PlannedMessage, Received

FLOOR_S = 1.0
FACTOR = 3.0


@dataclass(frozen=True)
class Recovery:
    """What a fault did to the applications' delays (seconds; wall clock)."""

    recovery_s: float  # from the kill to the last held-up application's decision (0: none)
    normal_delay_s: float  # median delay of the applications decided before the kill
    bar_s: float  # delays above it, decided after the kill, count as held up
    held_up: int  # applications held up by the fault
    worst_delay_s: float  # the longest any application waited for its decision
    first_decision_s: float | None  # from the kill to the first decision published after it

    def notes(self) -> dict[str, object]:
        """The figures, rounded, for a scenario's printed notes."""
        return {"recovery_s": round(self.recovery_s, 1),
                "normal_delay_s": round(self.normal_delay_s, 3),
                "held_up_bar_s": round(self.bar_s, 2), "held_up": self.held_up,
                "worst_delay_s": round(self.worst_delay_s, 1),
                "first_decision_after_kill_s": (None if self.first_decision_s is None
                                                else round(self.first_decision_s, 2))}


def first_publications(decisions: Sequence[Received]) -> dict[str, float]:
    """Application id -> when its first decision was published (seconds since the epoch)."""
    first: dict[str, float] = {}
    for decision in decisions:
        if decision.key is None or decision.published_ms is None:
            continue
        application_id = decision.key.decode()
        published = decision.published_ms / 1000
        if published < first.get(application_id, float("inf")):
            first[application_id] = published
    return first


def measure_recovery(messages: Sequence[PlannedMessage], handed_at: Sequence[float],
                     decisions: Sequence[Received], killed_at: float,
                     floor_s: float = FLOOR_S, factor: float = FACTOR) -> Recovery:
    """The fault's effect on the applications' delays (see the module's docstring).

    ``handed_at[i]`` is when ``messages[i]`` was handed to the producer (0: never);
    ``killed_at`` is when the fault struck; both seconds since the epoch."""
    published = first_publications(decisions)
    before: list[float] = []
    after: list[tuple[float, float]] = []  # (published, delay) of decisions after the kill
    for message, handed in zip(messages, handed_at, strict=True):
        decided = published.get(message.application_id or "")
        if not handed or decided is None:
            continue
        delay = max(decided - handed, 0.0)
        if decided < killed_at:
            before.append(delay)
        else:
            after.append((decided, delay))
    normal = _percentile(before, 0.50)
    bar = max(floor_s, factor * normal)
    held_up = [decided for decided, delay in after if delay > bar]
    return Recovery(
        recovery_s=max(held_up) - killed_at if held_up else 0.0,
        normal_delay_s=normal, bar_s=bar, held_up=len(held_up),
        worst_delay_s=max([*before, *(delay for _, delay in after)], default=0.0),
        first_decision_s=min(decided for decided, _ in after) - killed_at if after else None)


def _percentile(values: Sequence[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
