"""Adverse impact on the decision stream: approval rate, adverse impact ratio (AIR) and
statistical parity difference (SPD) by group, over the last hour and the last day.

The live model card declares the monitored attributes (:mod:`fairness.spec`); validation
turns each event's values into groups (``ValidApplication.groups``) and forgets the values.
:class:`FairnessMonitor` counts the champion's **new** decisions per attribute, group and
outcome in minute buckets — not decisions replayed from the store, not ``POST /score``
answers, not challengers' shadow decisions: what the lender decided, once per application.
Every ``PUBLISH_EVERY_S`` (:meth:`FairnessMonitor.publish`, a worker timer, never in a batch)
it turns the 1 h and 24 h windows into Prometheus series with
:func:`fairness.stats.attribute_figures`, so a figure means the same here as in the
training report and the back-test:

- ``creditrisk_fairness_decisions_total{attribute,group,decision}`` (counter);
- ``creditrisk_fairness_group_decisions{attribute,group,window}``: every declared group
  and ``unknown``;
- ``creditrisk_fairness_approval_rate``, ``creditrisk_fairness_adverse_impact_ratio`` and
  ``creditrisk_fairness_parity_difference`` ``{attribute,group,window,bound}`` with bound
  ``estimate`` / ``low`` / ``high``: only for judged groups (the group and the reference
  both hold ``min_group_size`` decisions in the window), removed when a group stops being
  judged; the reference group has an approval rate but no AIR or SPD of its own;
- ``creditrisk_fairness_min_group_size``: the card's minimum.

Approved means the decision ``approve``; ``review`` and ``decline`` are not approvals. Labels
are the card's attribute and group names and ``unknown`` only — a group outside the
declaration is counted as ``unknown`` — so no label ever holds an applicant's value. A model
that monitors nothing exports none of these series; a promoted model's card replaces the
declaration (the windows start again when its attributes differ).

Per process: with ``creditrisk worker --processes N`` (or several machines) each process
counts and judges only the decisions of its own share of the input partitions. Its figures
are that share's; an alert on them fires on a process whose share shows adverse impact, and
fleet-wide figures come from summing ``creditrisk_fairness_decisions_total`` across
processes (the back-test judges the whole book).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import Gauge

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from fairness.stats import GroupCount, Interval, attribute_figures
from stream.metrics import WorkerMetrics

# How often the gauges are recomputed (a worker timer): cheap, and far below the scrape
# interval's resolution of a window of an hour.
PUBLISH_EVERY_S = 5.0
BUCKET_S = 60
# Window label → its length in minute buckets.
WINDOWS: dict[str, int] = {"1h": 60, "24h": 24 * 60}
BOUNDS = ("estimate", "low", "high")
APPROVED = "approve"
OUTCOMES = ("approve", "review", "decline")

# (attribute, group, decision)
CountKey = tuple[str, str, str]


class MinuteWindows:
    """Counts in minute buckets with a running total per window: adding is one counter
    update, and rolling a window forward subtracts only the buckets that left it."""

    def __init__(self, windows: Mapping[str, int] = WINDOWS) -> None:
        self.windows = dict(windows)
        self._buckets: dict[int, Counter[CountKey]] = {}  # minute → counts, oldest first
        self._totals: dict[str, Counter[CountKey]] = {name: Counter() for name in self.windows}
        # The newest minute each window has already let go of.
        self._expired: dict[str, int] = dict.fromkeys(self.windows, -2 ** 62)
        self._latest = -(2 ** 62)

    def add(self, counts: Counter[CountKey], minute: int) -> None:
        minute = max(minute, self._latest)  # a clock never runs a bucket backwards
        self._latest = minute
        self._buckets.setdefault(minute, Counter()).update(counts)
        for total in self._totals.values():
            total.update(counts)

    def advance(self, minute: int) -> None:
        """Let every window end at ``minute`` (inclusive): older buckets leave it."""
        for name, length in self.windows.items():
            cutoff = minute - length
            if cutoff <= self._expired[name]:
                continue
            for bucket_minute, counts in self._buckets.items():
                if bucket_minute > cutoff:
                    break
                if bucket_minute > self._expired[name]:
                    self._totals[name].subtract(counts)
            self._expired[name] = cutoff
        oldest_kept = minute - max(self.windows.values(), default=0)
        for bucket_minute in [m for m in self._buckets if m <= oldest_kept]:
            del self._buckets[bucket_minute]

    def totals(self, window: str) -> Mapping[CountKey, int]:
        return self._totals[window]


@dataclass(frozen=True)
class _Series:
    """One published gauge sample's labels."""

    attribute: str
    group: str
    window: str
    bound: str = ""


class FairnessMonitor:
    """Windowed counts of the champion's new decisions by group, and their gauges (see the
    module docstring). ``clock`` is monotonic seconds (a test passes its own)."""

    def __init__(self, metrics: WorkerMetrics, spec: MonitoringSpec | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.clock = clock
        self.spec = MonitoringSpec()
        self._groups: dict[str, frozenset[str]] = {}
        self._windows = MinuteWindows()
        # The judged groups' gauges, and the series each holds now.
        self._gauges: dict[str, Gauge] = {
            "approval_rate": metrics.fairness_approval_rate,
            "adverse_impact_ratio": metrics.fairness_adverse_impact_ratio,
            "parity_difference": metrics.fairness_parity_difference}
        self._published: dict[str, set[_Series]] = {name: set() for name in self._gauges}
        self._published_at: float | None = None
        if spec is not None:
            self.use(spec)

    # -- the declaration --------------------------------------------------------------------
    def use(self, spec: MonitoringSpec) -> None:
        """Monitor what ``spec`` declares (the live model's card); the windows start again
        when its attributes differ from the current ones."""
        if spec == self.spec:
            return
        if spec.attributes != self.spec.attributes:
            self._windows = MinuteWindows()
        self._clear_gauges()
        self.spec = spec
        self._groups = {attribute.name: frozenset((*attribute.groups, UNKNOWN))
                        for attribute in spec.attributes}
        if spec.attributes:
            self.metrics.fairness_min_group_size.set(spec.min_group_size)
        for attribute in spec.attributes:  # every series from the start, at 0
            for group in (*attribute.groups, UNKNOWN):
                for outcome in OUTCOMES:
                    self.metrics.fairness_decisions.labels(attribute.name, group, outcome)
        self._published_at = None  # publish at the next call

    @property
    def active(self) -> bool:
        return bool(self.spec.attributes)

    # -- counting ---------------------------------------------------------------------------
    def observe(self, decided: Iterable[tuple[Mapping[str, str], str]]) -> None:
        """Count new champion decisions: (the applicant's groups, the decision) each."""
        if not self._groups:
            return
        counts: Counter[CountKey] = Counter()
        for groups, outcome in decided:
            for attribute, allowed in self._groups.items():
                group = groups.get(attribute, UNKNOWN)
                counts[(attribute, group if group in allowed else UNKNOWN, outcome)] += 1
        if not counts:
            return
        self._windows.add(counts, self._minute(self.clock()))
        for (attribute, group, outcome), count in counts.items():
            self.metrics.fairness_decisions.labels(attribute, group, outcome).inc(count)

    def _minute(self, now: float) -> int:
        return int(now // BUCKET_S)

    # -- publishing -------------------------------------------------------------------------
    def publish(self) -> None:
        """Recompute every fairness gauge from the windows as they end now."""
        now = self.clock()
        self._published_at = now
        if not self.active:
            return
        self._windows.advance(self._minute(now))
        present: dict[str, set[_Series]] = {name: set() for name in self._published}
        for window in self._windows.windows:
            counts = _group_counts(self._windows.totals(window))
            for attribute in self.spec.attributes:
                self._publish_attribute(window, attribute, counts.get(attribute.name, {}),
                                        present)
        self._remove_absent(present)

    def _publish_attribute(self, window: str, attribute: MonitoredAttribute,
                           counts: Mapping[str, GroupCount],
                           present: dict[str, set[_Series]]) -> None:
        name = attribute.name
        for group in (*attribute.groups, UNKNOWN):
            self.metrics.fairness_group_decisions.labels(name, group, window).set(
                counts.get(group, GroupCount(0, 0)).decisions)
        figures = attribute_figures(attribute, counts, self.spec.min_group_size,
                                    self.spec.confidence)
        for figure in figures:
            if not figure.judged:
                continue
            parts: list[tuple[str, Interval | None]] = [("approval_rate", figure.approval_rate)]
            if not figure.is_reference:
                parts += [("adverse_impact_ratio", figure.adverse_impact_ratio),
                          ("parity_difference", figure.parity_difference)]
            for metric, interval in parts:
                if interval is None:
                    continue
                for bound, value in zip(BOUNDS, (interval.value, interval.low, interval.high),
                                        strict=True):
                    self._gauges[metric].labels(name, figure.group, window, bound).set(value)
                    present[metric].add(_Series(name, figure.group, window, bound))

    def _remove_absent(self, present: dict[str, set[_Series]]) -> None:
        """Remove the series of groups no longer judged (or no longer declared)."""
        for metric, series in present.items():
            for gone in self._published[metric] - series:
                self._gauges[metric].remove(gone.attribute, gone.group, gone.window, gone.bound)
            self._published[metric] = series

    def _clear_gauges(self) -> None:
        for metric, gauge in self._gauges.items():
            gauge.clear()
            self._published[metric] = set()
        self.metrics.fairness_group_decisions.clear()
        self.metrics.fairness_min_group_size.unset()


def _group_counts(totals: Mapping[CountKey, int]) -> dict[str, dict[str, GroupCount]]:
    """attribute → group → (decisions, approved) from the window's counts by outcome."""
    decisions: Counter[tuple[str, str]] = Counter()
    approved: Counter[tuple[str, str]] = Counter()
    for (attribute, group, outcome), count in totals.items():
        decisions[(attribute, group)] += count
        if outcome == APPROVED:
            approved[(attribute, group)] += count
    counts: dict[str, dict[str, GroupCount]] = {}
    for (attribute, group), total in decisions.items():
        if total > 0:
            counts.setdefault(attribute, {})[group] = GroupCount(total, approved[(attribute, group)])
    return counts


__all__ = ["BOUNDS", "PUBLISH_EVERY_S", "WINDOWS", "FairnessMonitor", "MinuteWindows"]
