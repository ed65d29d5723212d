"""The console's Plotly figures: score gauge, factor bars, customer-vs-population curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from console.data import DECISION_COLOURS, Factor, ScoreBand

RISK_UP_COLOUR = "#c62828"
RISK_DOWN_COLOUR = "#2e7d32"
ALL_CUSTOMERS_COLOUR = "#1565c0"
SIMILAR_COLOUR = "#ef6c00"


def score_gauge(score: int, decision: str, bands: list[ScoreBand],
                axis_range: tuple[int, int]) -> go.Figure:
    """The score on a dial whose bands are the decline / review / approve zones."""
    figure = go.Figure(go.Indicator(
        mode="gauge+number", value=score, number={"suffix": " points"},
        title={"text": f"Score — {decision}"},
        gauge={
            "axis": {"range": list(axis_range),
                     "tickvals": sorted({int(band.low) for band in bands} | {axis_range[1]})},
            "bar": {"color": "#212121", "thickness": 0.25},
            "steps": [{"range": [band.low, band.high], "color": band.colour} for band in bands],
            "threshold": {"line": {"color": DECISION_COLOURS.get(decision, "#212121"),
                                   "width": 4}, "value": score},
        }))
    figure.update_layout(height=260, margin={"l": 30, "r": 30, "t": 60, "b": 10})
    return figure


def factor_bars(raising: list[Factor], lowering: list[Factor]) -> go.Figure:
    """Horizontal bars: how much each factor raised (right, red) or lowered (left, green)
    the risk, as its contribution to the log-odds of default."""
    factors = sorted(raising + lowering, key=lambda factor: factor.impact)
    figure = go.Figure(go.Bar(
        x=[factor.impact for factor in factors], y=[factor.text for factor in factors],
        orientation="h",
        marker_color=[RISK_UP_COLOUR if factor.impact > 0 else RISK_DOWN_COLOUR
                      for factor in factors],
        hovertemplate="%{y}<br>%{customdata}<extra></extra>",
        customdata=[_odds_words(factor) for factor in factors]))
    figure.update_layout(
        height=80 + 40 * len(factors), margin={"l": 10, "r": 10, "t": 30, "b": 40},
        xaxis_title="← lowered the risk · raised the risk →", yaxis={"automargin": True},
        title="How much each factor moved the risk")
    return figure


def _odds_words(factor: Factor) -> str:
    if factor.impact >= 0:
        return f"multiplied the odds of default by {factor.odds_factor:.2f}"
    return f"divided the odds of default by {1 / factor.odds_factor:.2f}"


def comparison_curve(title: str, customer_value: float, reference: tuple[list[float], list[float]] | None,
                     similar_sample: np.ndarray | None, similar_label: str) -> go.Figure:
    """Share of customers below each value (all customers from the training reference, the
    similar group from recent decisions), with the customer's value marked."""
    figure = go.Figure()
    if reference is not None:
        values, levels = reference
        figure.add_trace(go.Scatter(x=values, y=[100 * level for level in levels],
                                    mode="lines+markers", name="All customers (training)",
                                    line={"color": ALL_CUSTOMERS_COLOUR}))
    if similar_sample is not None and len(similar_sample):
        ordered = np.sort(similar_sample)
        shares = 100 * (np.arange(1, len(ordered) + 1) / len(ordered))
        figure.add_trace(go.Scatter(x=ordered, y=shares, mode="lines", line_shape="hv",
                                    name=similar_label, line={"color": SIMILAR_COLOUR}))
    if not np.isnan(customer_value):
        figure.add_vline(x=customer_value, line_width=3, line_color="#212121",
                         annotation_text="this customer", annotation_position="top")
    figure.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 50, "b": 40},
                         yaxis_title="% of customers with a lower value",
                         yaxis_range=[0, 100], legend={"orientation": "h", "y": -0.25})
    return figure


def calibration_plot(table: pd.DataFrame) -> go.Figure:
    """Predicted PD against observed bad rate per PD decile; the diagonal is perfect."""
    top = float(max(table["predicted_pd"].max(), table["observed_bad_rate"].max(), 0.05)) * 1.05
    figure = go.Figure([
        go.Scatter(x=[0, top], y=[0, top], mode="lines", name="perfect calibration",
                   line={"dash": "dash", "color": "#9e9e9e"}),
        go.Scatter(x=table["predicted_pd"], y=table["observed_bad_rate"], mode="lines+markers",
                   name="PD deciles", marker={"size": 8, "color": ALL_CUSTOMERS_COLOUR},
                   text=[f"n={int(n):,}" for n in table["count"]])])
    figure.update_layout(title="Calibration: predicted PD vs observed bad rate",
                         xaxis_title="mean predicted PD", yaxis_title="observed bad rate",
                         height=340, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return figure


def bad_rate_bars(table: pd.DataFrame, column: str, title: str) -> go.Figure:
    """Observed bad rate (bars) and mean predicted PD (markers) by grade or score band."""
    figure = go.Figure([
        go.Bar(x=table[column].astype(str), y=table["bad_rate"], name="observed bad rate",
               marker_color=RISK_UP_COLOUR, text=[f"n={int(n):,}" for n in table["matured"]]),
        go.Scatter(x=table[column].astype(str), y=table["predicted_pd"], mode="markers",
                   name="mean predicted PD", marker={"size": 10, "color": "#212121"})])
    figure.update_layout(title=f"Bad rate by {title.lower()}", xaxis_title=title,
                         yaxis_title="bad rate", height=340,
                         margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return figure


def monthly_rates(table: pd.DataFrame) -> go.Figure:
    """Approval rate of all decisions and bad rate of matured ones, by application month."""
    figure = go.Figure([
        go.Scatter(x=table["month"], y=table["approval_rate"], mode="lines+markers",
                   name="approval rate", line={"color": RISK_DOWN_COLOUR}),
        go.Scatter(x=table["month"], y=table["bad_rate"], mode="lines+markers",
                   name="bad rate (matured)", line={"color": RISK_UP_COLOUR})])
    figure.update_layout(title="Approval and bad rate by application month", yaxis_title="rate",
                         height=340, margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return figure
