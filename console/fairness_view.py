"""The "Fairness" page: how the live model's decisions fall across the groups its model card
watches (gender, age band, ...), and, once loans have matured, how they turned out in each
group (:mod:`ledger.fairness`).

Only groups holding at least the card's minimum number of decisions (and whose reference
group does too) are drawn or tabled; the others are named with "fewer than N decisions" and
no figure. Nothing on the page names an applicant.

Data comes from ``st.session_state["fairness_source"]`` when a test put one there, otherwise
from the ledger as the console's own role and from the model registry.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Protocol

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from config.settings import Settings
from console.charts import ALL_CUSTOMERS_COLOUR, RISK_UP_COLOUR
from console.ledger_access import console_connection
from fairness.spec import UNKNOWN, MonitoringSpec
from fairness.stats import GroupFigures, Interval
from ledger.fairness import WINDOWS, AttributeFairness, VersionFairness, run_fairness

if TYPE_CHECKING:
    from ledger.cards import RegistryCards

PAGE = "Fairness"
SOURCE = "fairness_source"   # session key of the page's data source (a test may put its own)
REFERENCE_COLOUR = "#9e9e9e"
LINE_LABEL = {"annotation_position": "top left", "annotation_bgcolor": "rgba(255,255,255,0.85)"}

EXPLANATION = """
**What this page shows.** For each protected characteristic the model card names (never used
by the model to decide), how often applicants of each group were approved, compared with a
*reference group*.

**Adverse impact ratio (AIR).** A group's approval rate divided by the reference group's. An
AIR of 1 means both groups are approved equally often; 0.70 means the group is approved 70 %
as often as the reference group.

**The four-fifths rule.** US regulators' rule of thumb: an AIR below 0.8 (four fifths) is a
sign of *adverse impact* that the lender should look into and be able to justify by
credit risk. It is a screening test, not a verdict on its own.

**The bars and whiskers.** Each figure comes with its 95 % confidence interval: with a few
hundred decisions a rate can move by chance. A group is flagged only when even the upper
end of its AIR interval is below 0.8, i.e. when chance alone is an unlikely explanation.
Groups with too few decisions are not shown at all.

**Once loans mature.** The outcome table shows, per group, the share of approved loans that
went bad, how well the model ranks risk inside the group (AUC) and how close its predicted
risk is to what happened (calibration error); the *equal-opportunity gap* compares the
approval rate of applicants who went on to repay with the reference group's (0 is equal).
"""


class FairnessSource(Protocol):
    """What the page reads: the fairness back-test of each model version, and the live one."""

    def results(self) -> list[VersionFairness]: ...

    def live_version(self) -> str | None: ...


class LedgerFairnessSource:
    """The ledger as the console's role, and the registry's live pointer and cards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def results(self) -> list[VersionFairness]:
        with console_connection(self.settings, "The Fairness page") as connection:
            return run_fairness(connection, self._cards)

    def live_version(self) -> str | None:
        from onnx_models.registry import Registry, RegistryError

        try:
            return Registry(self.settings.registry_dir).live_version()
        except RegistryError:
            return None

    @cached_property
    def _cards(self) -> RegistryCards:
        from ledger.cards import RegistryCards

        return RegistryCards(self.settings.registry_dir, self.settings.outcome_dataset)


def fairness_source(settings: Settings) -> FairnessSource:
    source: FairnessSource | None = st.session_state.get(SOURCE)
    if source is None:
        source = st.session_state[SOURCE] = LedgerFairnessSource(settings)
    return source


def _interval_text(interval: Interval | None, digits: int = 3) -> str:
    return "n/a" if interval is None else interval.text(digits)


def _error_bars(intervals: list[Interval]) -> dict[str, object]:
    return {"type": "data", "symmetric": False,
            "array": [interval.high - interval.value for interval in intervals],
            "arrayminus": [interval.value - interval.low for interval in intervals]}


def shown(figures: tuple[GroupFigures, ...]) -> list[GroupFigures]:
    """The groups the page may show: judged ones (enough decisions here and in the reference)."""
    return [figure for figure in figures if figure.judged and figure.approval_rate is not None]


def hidden_groups(figures: tuple[GroupFigures, ...]) -> list[str]:
    return [figure.group for figure in figures if not figure.judged and figure.group != UNKNOWN]


def approval_figure(figures: list[GroupFigures], title: str, threshold: float) -> go.Figure:
    """Approval rate by group with its interval, and the four-fifths line: ``threshold`` times
    the reference group's rate."""
    rates = [figure.approval_rate for figure in figures if figure.approval_rate is not None]
    figure = go.Figure(go.Bar(
        x=[f.group for f in figures], y=[rate.value for rate in rates], error_y=_error_bars(rates),
        marker_color=[REFERENCE_COLOUR if f.is_reference else ALL_CUSTOMERS_COLOUR for f in figures],
        hovertemplate="%{x}: approved %{y:.1%}<extra></extra>"))
    reference = next((f.approval_rate for f in figures if f.is_reference and f.approval_rate), None)
    if reference is not None:
        figure.add_hline(y=threshold * reference.value, line_dash="dash", line_color=RISK_UP_COLOUR,
                         annotation_text=f"four fifths of the reference's rate "
                                         f"({threshold * reference.value:.1%})", **LINE_LABEL)
    figure.update_layout(title=f"{title}: approval rate", yaxis_tickformat=".0%", height=340,
                         yaxis_range=[0, 1], margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return figure


def impact_figure(figures: list[GroupFigures], title: str, threshold: float) -> go.Figure:
    """Adverse impact ratio by group (the reference is 1 by definition) with the 0.8 line."""
    others = [f for f in figures if not f.is_reference and f.adverse_impact_ratio is not None]
    ratios = [f.adverse_impact_ratio for f in others if f.adverse_impact_ratio is not None]
    figure = go.Figure(go.Bar(
        x=[f.group for f in others], y=[ratio.value for ratio in ratios],
        error_y=_error_bars(ratios),
        marker_color=[RISK_UP_COLOUR if f.adverse_impact_below(threshold) else ALL_CUSTOMERS_COLOUR
                      for f in others],
        hovertemplate="%{x}: AIR %{y:.2f}<extra></extra>"))
    figure.add_hline(y=threshold, line_dash="dash", line_color=RISK_UP_COLOUR,
                     annotation_text=f"four-fifths rule ({threshold:g})", **LINE_LABEL)
    figure.add_hline(y=1.0, line_dash="dot", line_color=REFERENCE_COLOUR,
                     annotation_text="parity with the reference", **LINE_LABEL)
    top = max([1.2, *(ratio.high for ratio in ratios)]) * 1.05
    figure.update_layout(title=f"{title}: adverse impact ratio", height=340, yaxis_range=[0, top],
                         margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return figure


def decisions_table(figures: list[GroupFigures], spec: MonitoringSpec) -> pd.DataFrame:
    rows = []
    for figure in figures:
        flagged = figure.adverse_impact_below(spec.air_threshold)
        rows.append({
            "Group": f"{figure.group} (reference)" if figure.is_reference else figure.group,
            "Decisions": figure.decisions,
            "Approval rate [95 %]": _interval_text(figure.approval_rate),
            "Adverse impact ratio [95 %]": ("1 (reference)" if figure.is_reference
                                            else _interval_text(figure.adverse_impact_ratio)),
            "Parity difference [95 %]": ("0 (reference)" if figure.is_reference
                                         else _interval_text(figure.parity_difference)),
            "Four-fifths test": ("below 0.8 beyond chance" if flagged else "passes"
                                 if not figure.is_reference else "—")})
    return pd.DataFrame(rows)


def outcomes_table(attribute: AttributeFairness) -> pd.DataFrame:
    def number(value: float | None, signed: bool = False) -> str:
        return "n/a" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")

    rows = []
    for outcome in attribute.outcomes:
        if not outcome.judged:
            continue
        reference = outcome.figures.is_reference
        rows.append({
            "Group": f"{outcome.group} (reference)" if reference else outcome.group,
            "Matured loans": outcome.matured,
            "Bad rate of approved loans": number(outcome.approved_bad_rate),
            "Approved loans matured": outcome.approved_matured,
            "AUC": number(outcome.auc), "Calibration error": number(outcome.calibration_error),
            "Equal-opportunity gap": "0 (reference)" if reference
            else number(outcome.equal_opportunity_gap, signed=True)})
    return pd.DataFrame(rows)


def _pick_version(results: list[VersionFairness], live: str | None) -> VersionFairness:
    versions = [result.model_version for result in results]
    default = versions.index(live) if live in versions else len(versions) - 1
    chosen = st.selectbox("Model version", versions, index=default, key="fairness_version",
                          help="the model whose decisions are shown (the live one by default)")
    return results[versions.index(str(chosen))]


def render_fairness(source: FairnessSource) -> None:
    st.header("Fairness")
    st.caption("How decisions fall across the groups of the protected characteristics the model "
               "card names: they are never model inputs, only watched.")
    with st.expander("What is the adverse impact ratio, and the four-fifths rule?"):
        st.markdown(EXPLANATION)
    results = source.results()
    if not results:
        st.info("The ledger holds no decisions yet. Keep the worker and the ledger writer "
                "running (`creditrisk stack up`, `creditrisk worker`, `creditrisk ledger run`).")
        return
    result = _pick_version(results, source.live_version())
    if not result.monitored:
        st.info(f"Model {result.model_version} monitors nothing: {result.note}.")
        return
    windows = [name for name, _reach in WINDOWS]
    window = str(st.radio("Decisions of", windows, index=len(windows) - 1, horizontal=True,
                          key="fairness_window"))
    spec = result.spec
    st.caption(f"{result.decisions:,} decisions of model {result.model_version}. A group is "
               f"shown when it and its reference group each hold at least "
               f"{spec.min_group_size:,} decisions.")
    for attribute in result.attributes:
        _render_attribute(attribute, window, spec)


def _render_attribute(attribute: AttributeFairness, window: str, spec: MonitoringSpec) -> None:
    declared = attribute.attribute
    st.subheader(f"{declared.title} (reference group: {declared.reference})")
    figures = next(w.figures for w in attribute.windows if w.window == window)
    judged = shown(figures)
    hidden = hidden_groups(figures)
    if hidden:
        st.caption(f"Not shown — fewer than {spec.min_group_size:,} decisions (in the group or "
                   f"in the reference): {', '.join(hidden)}.")
    if not judged:
        st.info(f"No group of {declared.title.lower()} holds {spec.min_group_size:,} decisions "
                f"({window}) beside a reference group that does: nothing to judge yet.")
        return
    flagged = [figure.group for figure in judged if figure.adverse_impact_below(spec.air_threshold)]
    if flagged:
        st.warning(f"Adverse impact ({window}): {', '.join(flagged)} — approved less than "
                   f"{spec.air_threshold:g} times as often as {declared.reference}, even at the "
                   "upper end of the confidence interval.")
    left, right = st.columns(2)
    left.plotly_chart(approval_figure(judged, declared.title, spec.air_threshold),
                      key=f"fairness_approval_{declared.name}")
    right.plotly_chart(impact_figure(judged, declared.title, spec.air_threshold),
                       key=f"fairness_impact_{declared.name}")
    st.dataframe(decisions_table(judged, spec), hide_index=True)
    _render_outcomes(attribute)


def _render_outcomes(attribute: AttributeFairness) -> None:
    table = outcomes_table(attribute)
    if table.empty or not table["Matured loans"].sum():
        st.caption("How the loans turned out by group appears here once servicing reports "
                   "outcomes (matured loans).")
        return
    st.markdown("**How the loans turned out (all time, matured loans)**")
    st.dataframe(table, hide_index=True)
