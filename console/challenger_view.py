"""The "Challenger" page: the live model (champion) and a challenger that scored the same
applications in its shadow, compared on those applications and, once outcomes arrive, on the
same loans (:mod:`ledger.challenger`).

Data comes from ``st.session_state["challenger_source"]`` when a test put one there, otherwise
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
from console.data import ConsoleUnavailable
from console.ledger_access import console_connection
from ledger.backtest import Estimate
from ledger.challenger import (
    DECISIONS,
    SWAP_SET_WORDS,
    Comparison,
    ShadowPair,
    calibration_tables,
    comparison_of,
    load_shadowed,
    shadow_pairs,
)

if TYPE_CHECKING:
    from ledger.cards import RegistryCards

PAGE = "Challenger"
SOURCE = "challenger_source"   # session key of the page's data source (a test may put its own)
SWAP_SET_NAMES = {"swap_in": "Swap-ins", "swap_out": "Swap-outs", "unchanged": "Unchanged"}
SWAP_SET_MEANING = {
    "swap_in": "the challenger would approve, the champion declined",
    "swap_out": "the champion approved, the challenger would decline",
    "unchanged": "both approve",
}


class ChallengerSource(Protocol):
    """What the page reads: the pairs in the ledger, the live version, and the applications
    a pair decided (``ledger.challenger.SHADOWED_COLUMNS``)."""

    def pairs(self) -> list[ShadowPair]: ...

    def live_version(self) -> str | None: ...

    def shadowed(self, champion: str, challenger: str) -> pd.DataFrame: ...


class LedgerChallengerSource:
    """The ledger as the console's role, and the registry's live pointer and cards."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def pairs(self) -> list[ShadowPair]:
        with console_connection(self.settings, "The Challenger page") as connection:
            return shadow_pairs(connection)

    def live_version(self) -> str | None:
        from onnx_models.registry import Registry, RegistryError

        try:
            return Registry(self.settings.registry_dir).live_version()
        except RegistryError:
            return None  # the page still compares what the ledger holds

    def shadowed(self, champion: str, challenger: str) -> pd.DataFrame:
        with console_connection(self.settings, "The Challenger page") as connection:
            return load_shadowed(connection, self._cards, champion, challenger)

    @cached_property
    def _cards(self) -> RegistryCards:
        from ledger.cards import RegistryCards

        return RegistryCards(self.settings.registry_dir, self.settings.outcome_dataset)


def challenger_source(settings: Settings) -> ChallengerSource:
    source: ChallengerSource | None = st.session_state.get(SOURCE)
    if source is None:
        source = st.session_state[SOURCE] = LedgerChallengerSource(settings)
    return source


def _estimate_text(estimate: Estimate | None) -> str:
    return "n/a" if estimate is None else estimate.text()


def _count_text(estimate: Estimate | None) -> str:
    return "—" if estimate is None or estimate.count is None else f"{estimate.count:,}"


def swap_matrix_table(comparison: Comparison) -> pd.DataFrame:
    """Applications by the champion's decision (rows) and the challenger's (columns)."""
    return pd.DataFrame(
        [[comparison.swap_matrix[(mine, theirs)] for theirs in DECISIONS] for mine in DECISIONS],
        index=pd.Index([f"champion: {d}" for d in DECISIONS]),
        columns=[f"challenger: {d}" for d in DECISIONS])


def swap_matrix_heatmap(comparison: Comparison) -> go.Figure:
    table = swap_matrix_table(comparison)
    figure = go.Figure(go.Heatmap(
        z=table.to_numpy(), x=list(DECISIONS), y=list(DECISIONS), colorscale="Blues",
        text=[[f"{count:,}" for count in row] for row in table.to_numpy()],
        texttemplate="%{text}", showscale=False,
        hovertemplate="champion %{y}, challenger %{x}: %{text} applications<extra></extra>"))
    figure.update_layout(title="Swap matrix", height=340, margin={"l": 40, "r": 20, "t": 50, "b": 40},
                         xaxis_title=f"challenger {comparison.challenger}",
                         yaxis_title=f"champion {comparison.champion}",
                         yaxis={"autorange": "reversed"})
    return figure


def swap_set_table(comparison: Comparison) -> pd.DataFrame:
    rows = []
    for name in SWAP_SET_WORDS:
        rate, matured, applications = comparison.swap_set(name)
        rows.append({"Group": SWAP_SET_NAMES[name], "Meaning": SWAP_SET_MEANING[name],
                     "Applications": applications, "Matured loans": matured,
                     "Bad rate [95 % interval]": _estimate_text(rate)})
    return pd.DataFrame(rows)


def model_table(comparison: Comparison) -> pd.DataFrame:
    c = comparison
    rows = []
    for label, champion, challenger in (
            ("Realised AUC", c.champion_auc, c.challenger_auc),
            ("KS", c.champion_ks, c.challenger_ks),
            ("Calibration error", c.champion_calibration_error, c.challenger_calibration_error)):
        rows.append({"Figure": label, f"Champion {c.champion}": _estimate_text(champion),
                     f"Challenger {c.challenger}": _estimate_text(challenger),
                     "Loans": _count_text(champion or challenger)})
    return pd.DataFrame(rows)


def calibration_figure(comparison: Comparison, tables: dict[str, pd.DataFrame]) -> go.Figure:
    """Both models' predicted PD against the observed bad rate, per PD decile, same loans."""
    top = max([0.05, *(float(max(t["predicted_pd"].max(), t["observed_bad_rate"].max()))
                       for t in tables.values() if len(t))]) * 1.05
    figure = go.Figure(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfect calibration",
                                  line={"dash": "dash", "color": "#9e9e9e"}))
    for role, version, colour in (("champion", comparison.champion, ALL_CUSTOMERS_COLOUR),
                                  ("challenger", comparison.challenger, RISK_UP_COLOUR)):
        table = tables[role]
        figure.add_trace(go.Scatter(x=table["predicted_pd"], y=table["observed_bad_rate"],
                                    mode="lines+markers", name=f"{role} {version}",
                                    line={"color": colour},
                                    text=[f"n={int(n):,}" for n in table["count"]]))
    figure.update_layout(title="Calibration on the same loans", xaxis_title="mean predicted PD",
                         yaxis_title="observed bad rate", height=340,
                         margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return figure


def _pick_pair(pairs: list[ShadowPair], live: str | None) -> tuple[str, str]:
    """The champion and challenger chosen (defaults: the live version, its latest challenger)."""
    champions = list(dict.fromkeys(pair.champion for pair in pairs))
    default = champions.index(live) if live in champions else 0
    left, right = st.columns(2)
    champion = str(left.selectbox("Champion", champions, index=default, key="challenger_champion",
                                  help="the model that decided (the live one by default)"))
    challengers = [pair.challenger for pair in pairs if pair.champion == champion]
    challenger = str(right.selectbox("Challenger", challengers, index=0,
                                     key="challenger_version",
                                     help="a model that scored the same applications in the "
                                          "champion's shadow (the latest by default)"))
    return champion, challenger


def render_challenger(source: ChallengerSource) -> None:
    st.header("Challenger")
    st.caption("A challenger is a candidate model that scores a share of the same applications "
               "as the live model (the champion) without its decisions ever being used. Here "
               "both are compared on the applications both decided.")
    pairs = source.pairs()
    if not pairs:
        st.info("The ledger holds no challenger decisions yet. Set a challenger (`creditrisk "
                "model challenger VERSION --percent P`) and keep the worker and the ledger "
                "writer running.")
        return
    champion, challenger = _pick_pair(pairs, source.live_version())
    shadowed = source.shadowed(champion, challenger)
    if shadowed.empty:
        raise ConsoleUnavailable(f"No application in the ledger has both a decision of {champion} "
                                 f"and a shadow decision of {challenger} yet (the champion's "
                                 "decisions may still be on their way to the ledger).")
    comparison = comparison_of(shadowed, champion, challenger)
    _render_agreement(comparison)
    _render_outcomes(comparison, shadowed)


def _render_agreement(comparison: Comparison) -> None:
    columns = st.columns(3)
    columns[0].metric("Applications decided by both", f"{comparison.shadowed:,}")
    columns[1].metric("Same decision", f"{comparison.agreement or 0.0:.1%}")
    columns[2].metric("Loans with a known outcome", f"{comparison.matured:,}")
    st.subheader("Swap matrix")
    st.caption("Each cell counts applications: the champion's decision in the row, the "
               "challenger's in the column. The diagonal is where they agree; the corners are "
               "the applications one model would approve and the other decline.")
    left, right = st.columns(2)
    left.dataframe(swap_matrix_table(comparison))
    right.plotly_chart(swap_matrix_heatmap(comparison), key="swap_matrix_heatmap")


def _render_outcomes(comparison: Comparison, shadowed: pd.DataFrame) -> None:
    st.subheader("How the loans turned out")
    if not comparison.matured:
        st.info("No loan of these applications has a known outcome (good or bad) yet; the bad "
                "rates and each model's accuracy appear once servicing reports outcomes.")
        return
    st.caption("Bad rate: the share of loans with a known outcome that went bad. Swap-ins are "
               "the applications the challenger would approve and the champion declined; if "
               "their bad rate is no higher than the swap-outs', the challenger trades bad loans "
               "for better ones. A loan's outcome is known only if it was booked, so swap-ins "
               "count only declines that were booked anyway (or a replayed history). In brackets: "
               "the 95 % confidence interval — a difference inside it may be chance.")
    st.dataframe(swap_set_table(comparison), hide_index=True)
    st.subheader("Each model on the same loans")
    st.caption("AUC and KS: how well each model ranks bad loans above good ones (higher is "
               "better). Calibration error: how far the predicted chance of default is from what "
               "happened (lower is better). Both models are measured on the very same loans.")
    st.dataframe(model_table(comparison), hide_index=True)
    st.plotly_chart(calibration_figure(comparison, calibration_tables(shadowed)),
                    key="challenger_calibration")
