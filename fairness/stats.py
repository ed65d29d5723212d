"""Adverse impact by group from counts: approval rate, adverse impact ratio (AIR) and
statistical parity difference (SPD) against the reference group, each with a confidence
interval; a group smaller than the minimum size is reported with its count only.

- approval rate: Wilson score interval;
- AIR = rate(group) / rate(reference): Katz log interval (0.5 added to every cell when a
  count is zero, so an empty cell still has a finite interval);
- SPD = rate(group) − rate(reference): Newcombe's hybrid score interval (method 10).

The same function serves the stream's windows, the back-test and the training report, so a
figure means the same thing wherever it is shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class GroupCount:
    """Decisions of one group: how many, and how many approved."""

    decisions: int
    approved: int

    def __post_init__(self) -> None:
        if not 0 <= self.approved <= self.decisions:
            raise ValueError(f"approved ({self.approved}) must be within 0..decisions "
                             f"({self.decisions})")


@dataclass(frozen=True)
class GroupFigures:
    """One group's figures. ``judged`` is False when the group or its reference holds fewer
    decisions than the minimum: then only the count is meaningful and the ratios are None."""

    attribute: str
    group: str
    reference: str
    decisions: int
    approved: int
    judged: bool
    approval_rate: Interval | None = None
    adverse_impact_ratio: Interval | None = None
    parity_difference: Interval | None = None

    @property
    def is_reference(self) -> bool:
        return self.group == self.reference

    def adverse_impact_below(self, threshold: float) -> bool:
        """The four-fifths test: even the interval's upper bound is below ``threshold``."""
        return (self.judged and self.adverse_impact_ratio is not None
                and self.adverse_impact_ratio.high < threshold)


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, count: int, confidence: float = 0.95) -> Interval | None:
    if count <= 0:
        return None
    z = z_value(confidence)
    rate = successes / count
    centre = (rate + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(rate * (1 - rate) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return Interval(rate, max(0.0, centre - half), min(1.0, centre + half))


def adverse_impact_ratio(group: GroupCount, reference: GroupCount,
                         confidence: float = 0.95) -> Interval | None:
    """rate(group) / rate(reference) with the Katz log interval; None when either is empty or
    the reference approves nobody (the ratio has no meaning)."""
    if group.decisions == 0 or reference.decisions == 0 or reference.approved == 0:
        return None
    ratio = (group.approved / group.decisions) / (reference.approved / reference.decisions)
    a, n1, b, n2 = (float(count) for count in (group.approved, group.decisions,
                                               reference.approved, reference.decisions))
    if 0 in (a, b, n1 - a, n2 - b):
        a, n1, b, n2 = a + 0.5, n1 + 1, b + 0.5, n2 + 1
    spread = z_value(confidence) * math.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n2)
    centre = math.log((a / n1) / (b / n2))
    return Interval(ratio, math.exp(centre - spread), math.exp(centre + spread))


def parity_difference(group: GroupCount, reference: GroupCount,
                      confidence: float = 0.95) -> Interval | None:
    """rate(group) − rate(reference) with Newcombe's hybrid score interval."""
    first = wilson_interval(group.approved, group.decisions, confidence)
    second = wilson_interval(reference.approved, reference.decisions, confidence)
    if first is None or second is None:
        return None
    difference = first.value - second.value
    low = difference - math.sqrt((first.value - first.low) ** 2 + (second.high - second.value) ** 2)
    high = difference + math.sqrt((first.high - first.value) ** 2 + (second.value - second.low) ** 2)
    return Interval(difference, max(-1.0, low), min(1.0, high))


def attribute_figures(attribute: MonitoredAttribute, counts: Mapping[str, GroupCount],
                      min_group_size: int, confidence: float = 0.95) -> list[GroupFigures]:
    """Figures of every declared group of ``attribute`` (and ``unknown`` when it has
    decisions; never judged) from its counts; groups without decisions count zero."""
    empty = GroupCount(0, 0)
    reference = counts.get(attribute.reference, empty)
    reference_ok = reference.decisions >= min_group_size
    figures = []
    for group in (*attribute.groups, UNKNOWN):
        count = counts.get(group, empty)
        if group == UNKNOWN and count.decisions == 0:
            continue
        judged = group != UNKNOWN and reference_ok and count.decisions >= min_group_size
        figures.append(GroupFigures(
            attribute.name, group, attribute.reference, count.decisions, count.approved, judged,
            wilson_interval(count.approved, count.decisions, confidence) if judged else None,
            adverse_impact_ratio(count, reference, confidence) if judged else None,
            parity_difference(count, reference, confidence) if judged else None))
    return figures


def spec_figures(spec: MonitoringSpec, counts: Mapping[str, Mapping[str, GroupCount]]
                 ) -> list[GroupFigures]:
    """:func:`attribute_figures` of every attribute of ``spec``; ``counts`` is attribute name →
    group → count."""
    return [figure for attribute in spec.attributes
            for figure in attribute_figures(attribute, counts.get(attribute.name, {}),
                                            spec.min_group_size, spec.confidence)]
