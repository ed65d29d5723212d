"""Fair-lending back-test: how each model's decisions fall across the groups its card watches,
and, once the loans have matured, how they turned out in each group.

For every model version in the ledger whose card declares monitored attributes (its
``monitoring`` entry, :meth:`onnx_models.card.ModelCard.monitoring_spec`), the champion's
decisions (the ``decisions`` table: a challenger's shadow decisions are never acted on, so
they are no one's adverse impact) are read as the back-test reads them
(:func:`ledger.backtest.load_decisions`: each loan's outcome in the deciding model's
portfolio, classed by its card), each with its groups (``monitoring_groups``: group labels
only, never an applicant's value). "Approved" is the decision ``approve``.

- Decision-based figures per window (the last 24 hours, all time): decisions, approval rate,
  adverse impact ratio and parity difference against the reference group, with intervals
  (:func:`fairness.stats.attribute_figures`).
- Outcome-based figures among matured loans (all time): the realised bad rate of approved
  loans, AUC and calibration error inside each group, and the equal-opportunity gap
  (:func:`fairness.frames.outcomes_by_group`, with the back-test's own calibration error so
  the figure means what it means on the Model performance page).

A group (or its reference) with fewer decisions than the card's ``min_group_size`` is listed
with its count only. A decision written without lineage has no groups: it counts as
``unknown`` for every attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from fairness.frames import APPROVED, BAD, PREDICTED, GroupOutcomes, outcomes_by_group
from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from fairness.stats import GroupCount, GroupFigures, Interval, attribute_figures
from ledger.backtest import ModelCards, calibration_error, load_decisions

if TYPE_CHECKING:
    from ledger.store import Ledger
    from onnx_models.card import ModelCard

# The windows of the decision-based figures: a name and how far back it reaches (None: all).
WINDOWS: tuple[tuple[str, timedelta | None], ...] = (("last 24 h", timedelta(hours=24)),
                                                     ("all time", None))
NO_CARD_NOTE = "its model card is not in the registry"
NO_DECLARATION_NOTE = "its model card declares no monitored attribute"


class FairnessCards(ModelCards, Protocol):
    """The model cards as the fairness back-test reads them (:class:`ledger.cards.RegistryCards`)."""

    def card(self, version: str) -> ModelCard | None: ...


@dataclass(frozen=True)
class WindowFigures:
    """The decision-based figures of one attribute's groups over one window."""

    window: str
    figures: tuple[GroupFigures, ...]


@dataclass(frozen=True)
class AttributeFairness:
    """One monitored attribute of one model version: its windows and its matured outcomes."""

    attribute: MonitoredAttribute
    windows: tuple[WindowFigures, ...]
    outcomes: tuple[GroupOutcomes, ...]   # all time, matured loans' figures inside

    @property
    def matured(self) -> int:
        return sum(outcome.matured for outcome in self.outcomes)


@dataclass(frozen=True)
class VersionFairness:
    """The fairness back-test of one model version (``attributes`` empty: nothing monitored,
    ``note`` says why)."""

    model_version: str
    portfolio: str
    spec: MonitoringSpec
    decisions: int
    attributes: tuple[AttributeFairness, ...] = ()
    note: str = ""

    @property
    def monitored(self) -> bool:
        return bool(self.attributes)

    def flagged(self) -> list[tuple[str, GroupFigures]]:
        """(window, group) whose adverse impact ratio is below the card's threshold even at
        the upper end of its interval (the four-fifths test failed beyond chance)."""
        return [(window.window, figure) for attribute in self.attributes
                for window in attribute.windows for figure in window.figures
                if figure.adverse_impact_below(self.spec.air_threshold)]


def monitoring_spec_of(cards: FairnessCards, version: str) -> tuple[MonitoringSpec, str]:
    """The version's monitoring spec and, when it monitors nothing, why."""
    card = cards.card(version)
    if card is None:
        return MonitoringSpec(), NO_CARD_NOTE
    spec = card.monitoring_spec()
    if not spec.attributes:
        return spec, spec.note or NO_DECLARATION_NOTE
    return spec, ""


def run_fairness(connection: Ledger, cards: FairnessCards,
                 now: datetime | None = None) -> list[VersionFairness]:
    """The fairness back-test of every model version in the ledger (version name order)."""
    versions = sorted(str(row[0]) for row in connection.execute(
        "SELECT DISTINCT model_version FROM decisions").fetchall())
    specs = {version: monitoring_spec_of(cards, version) for version in versions}
    monitored = [version for version in versions if specs[version][0].attributes]
    frame = (load_decisions(connection, cards, monitored, extra=("decided_at", "monitoring_groups"))
             if monitored else pd.DataFrame())
    counts: dict[object, object] = dict(connection.execute(
        "SELECT model_version, count(*) FROM decisions GROUP BY model_version").fetchall())
    moment = now or datetime.now(UTC)
    results = []
    for version in versions:
        spec, note = specs[version]
        if not spec.attributes:
            results.append(VersionFairness(version, cards.portfolio(version), spec,
                                           int(str(counts.get(version, 0))), note=note))
            continue
        mine = frame[frame["model_version"] == version]
        results.append(version_fairness(version, cards.portfolio(version), spec,
                                        scored_frame(mine, spec), moment))
    return results


def scored_frame(decisions: pd.DataFrame, spec: MonitoringSpec) -> pd.DataFrame:
    """The frame :func:`fairness.frames.outcomes_by_group` reads, from ledger decisions: a
    column per attribute (its group; ``unknown`` without one), ``approved``, the PD, ``bad``
    (1 bad, 0 good, NaN while the loan runs or its outcome is unknown), and ``decided_at``."""
    groups = decisions["monitoring_groups"].map(_groups_of).tolist() \
        if "monitoring_groups" in decisions.columns else [{}] * len(decisions)
    outcome = decisions["outcome"]
    frame = pd.DataFrame({
        APPROVED: (decisions["decision"] == "approve").to_numpy(),
        PREDICTED: decisions["probability_of_default"].to_numpy(dtype=float),
        BAD: np.where(outcome == "bad", 1.0, np.where(outcome == "good", 0.0, np.nan)),
        "decided_at": pd.to_datetime(decisions["decided_at"], utc=True).to_numpy()
        if "decided_at" in decisions.columns else pd.NaT,
    }, index=decisions.index)
    for attribute in spec.attributes:
        frame[attribute.name] = [found.get(attribute.name, UNKNOWN) for found in groups]
    return frame.reset_index(drop=True)


def _groups_of(value: object) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def version_fairness(version: str, portfolio: str, spec: MonitoringSpec, frame: pd.DataFrame,
                     now: datetime) -> VersionFairness:
    """One version's figures from its :func:`scored_frame`."""
    outcomes = outcomes_by_group(frame, spec, calibration_error)
    attributes = []
    for attribute in spec.attributes:
        windows = []
        for name, reach in WINDOWS:
            inside = frame if reach is None else frame[frame["decided_at"] >= now - reach]
            windows.append(WindowFigures(name, tuple(attribute_figures(
                attribute, group_counts(inside, attribute), spec.min_group_size,
                spec.confidence))))
        attributes.append(AttributeFairness(
            attribute, tuple(windows),
            tuple(outcome for outcome in outcomes if outcome.attribute == attribute.name)))
    return VersionFairness(version, portfolio, spec, len(frame), tuple(attributes))


def group_counts(frame: pd.DataFrame, attribute: MonitoredAttribute) -> dict[str, GroupCount]:
    """Decisions and approvals per group of ``attribute`` (an undeclared label is ``unknown``)."""
    groups = frame[attribute.name].where(frame[attribute.name].isin(attribute.groups), UNKNOWN)
    approved = frame[APPROVED].astype(bool)
    return {str(group): GroupCount(len(rows), int(approved.loc[rows.index].sum()))
            for group, rows in groups.groupby(groups)}


# -- as text (`creditrisk monitor --fairness`, the demo) ---------------------------------------

def _interval(value: Interval | None, digits: int = 3) -> str:
    return "n/a" if value is None else value.text(digits)


def _number(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def figure_line(figure: GroupFigures, spec: MonitoringSpec) -> str:
    """'female: 1,203 decisions, approval rate 0.712 [0.686, 0.737], AIR 0.951 [...], SPD ...'
    (a group under the minimum: its count only)."""
    name = f"{figure.group} (reference)" if figure.is_reference else figure.group
    if not figure.judged:
        why = ("unknown group: counted, never judged" if figure.group == UNKNOWN else
               f"fewer than {spec.min_group_size:,} decisions here or in the reference: not judged")
        return f"{name}: {figure.decisions:,} decisions ({why})"
    text = (f"{name}: {figure.decisions:,} decisions, approval rate "
            f"{_interval(figure.approval_rate)}")
    if not figure.is_reference:
        text += (f", AIR {_interval(figure.adverse_impact_ratio)}, "
                 f"SPD {_interval(figure.parity_difference)}")
    if figure.adverse_impact_below(spec.air_threshold):
        text += f"  << ADVERSE IMPACT: AIR upper bound below {spec.air_threshold:g}"
    return text


def outcome_line(outcome: GroupOutcomes) -> str:
    """'female: 980 matured (71 bad); approved bad rate 0.051 (of 700), AUC 0.712, ...'."""
    name = outcome.group
    if not outcome.judged:
        return f"{name}: {outcome.matured:,} matured (not judged)"
    if not outcome.matured:
        return f"{name}: no matured loan yet"
    gap = ("reference" if outcome.figures.is_reference
           else _number(outcome.equal_opportunity_gap, signed=True))
    return (f"{name}: {outcome.matured:,} matured ({outcome.matured_bad:,} bad); approved bad rate "
            f"{_number(outcome.approved_bad_rate)} (of {outcome.approved_matured:,}), AUC "
            f"{_number(outcome.auc)}, calibration error {_number(outcome.calibration_error)}, "
            f"equal-opportunity gap {gap}")


def fairness_lines(results: Sequence[VersionFairness]) -> list[str]:
    """The fairness back-test as plain text; never an application id, only group labels and
    counts."""
    if not results:
        return ["the ledger holds no decisions yet"]
    lines: list[str] = []
    for result in results:
        portfolio = f" (portfolio {result.portfolio})" if result.portfolio else ""
        plural = "" if result.decisions == 1 else "s"
        head = f"model {result.model_version}{portfolio}: {result.decisions:,} decision{plural}"
        if not result.monitored:
            lines.append(f"{head}; nothing monitored: {result.note}")
            continue
        spec = result.spec
        lines.append(f"{head}; groups judged with at least {spec.min_group_size:,} decisions "
                     f"(and as many in the reference), {spec.confidence:.0%} intervals, "
                     f"four-fifths line at AIR {spec.air_threshold:g}")
        for attribute in result.attributes:
            lines += _attribute_lines(attribute, spec)
    return lines


def _attribute_lines(attribute: AttributeFairness, spec: MonitoringSpec) -> list[str]:
    declared = attribute.attribute
    lines = [f"  {declared.title} (reference {declared.reference})"]
    for window in attribute.windows:
        lines.append(f"    decisions, {window.window}:")
        lines += [f"      {figure_line(figure, spec)}" for figure in window.figures]
    if not attribute.matured:
        lines.append("    matured loans: none yet (outcome figures appear once servicing reports "
                     "outcomes)")
        return lines
    lines.append("    matured loans, all time (realised bad rate of approved loans, AUC, "
                 "calibration error, equal-opportunity gap = approval rate of good loans minus "
                 "the reference's):")
    lines += [f"      {outcome_line(outcome)}" for outcome in attribute.outcomes]
    return lines


def adverse_impact_lines(results: Sequence[VersionFairness]) -> list[str]:
    """One line per group whose AIR fails the four-fifths test beyond chance."""
    return [f"model {result.model_version}: {figure.attribute} {figure.group} ({window}): AIR "
            f"{_interval(figure.adverse_impact_ratio)} is below {result.spec.air_threshold:g} even "
            "at its upper bound" for result in results for window, figure in result.flagged()]


def summary_lines(result: VersionFairness, window: str = "all time") -> list[str]:
    """A few lines per attribute (the demo's): each judged group's AIR with its interval, the
    groups too small to judge, and among matured loans the approved bad rate and the
    equal-opportunity gap."""
    if not result.monitored:
        return [f"nothing monitored: {result.note}"]
    spec, lines = result.spec, []
    for attribute in result.attributes:
        figures = next(w.figures for w in attribute.windows if w.window == window)
        parts = []
        for figure in figures:
            if figure.group == UNKNOWN:
                continue
            if not figure.judged:
                parts.append(f"{figure.group} fewer than {spec.min_group_size:,} decisions")
            elif figure.is_reference:
                parts.append(f"{figure.group} reference (approval rate "
                             f"{_interval(figure.approval_rate, 2)})")
            else:
                flag = " ADVERSE IMPACT" if figure.adverse_impact_below(spec.air_threshold) else ""
                parts.append(f"{figure.group} AIR {_interval(figure.adverse_impact_ratio, 2)}"
                             f"{flag}")
        lines.append(f"{attribute.attribute.title}, {window}: " + "; ".join(parts))
        matured = [o for o in attribute.outcomes if o.judged and o.matured]
        if matured:
            lines.append("  matured loans: " + "; ".join(
                f"{o.group} approved bad rate {_number(o.approved_bad_rate)}"
                + ("" if o.figures.is_reference or o.equal_opportunity_gap is None
                   else f", equal-opportunity gap {_number(o.equal_opportunity_gap, signed=True)}")
                for o in matured))
    return lines
