"""``creditrisk model compare CHAMPION CHALLENGER``: the champion and a challenger that shadowed
it, compared on the applications both decided and on the same loans (:mod:`ledger.challenger`):
printed, and written as one self-contained HTML report with its plots (PNG, base64)."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer

from config.settings import get_settings
from ledger.backtest import Estimate
from ledger.challenger import (
    DECISIONS,
    SWAP_SET_WORDS,
    Comparison,
    ShadowPair,
    calibration_tables,
    comparison_of,
    load_shadowed,
    report_lines,
    shadow_pairs,
)
from ledger.cli import connect_or_exit, fail, registry_cards

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORTS_DIR = Path("reports")
CHAMPION_COLOUR, CHALLENGER_COLOUR = "#264653", "#e76f51"


def compare_command(
    champion: str = typer.Argument(..., help="the champion's version (the live model)"),
    challenger: str = typer.Argument(..., help="a challenger version that shadowed it"),
    out: Path | None = typer.Option(
        None, "--out", help="the HTML report (default reports/compare-CHAMPION-CHALLENGER.html)"),
) -> None:
    """Compare a challenger with the champion on the applications both decided.

    Prints the swap matrix, the agreement, the bad rates of swap-ins, swap-outs and unchanged
    approvals, and each model's realised AUC, KS and calibration error on the same matured
    loans (95 % intervals and counts); writes an HTML report with plots."""
    import psycopg

    settings = get_settings()
    with connect_or_exit(settings) as connection:
        try:
            shadowed = load_shadowed(connection, registry_cards(settings), champion, challenger)
            pairs = shadow_pairs(connection) if shadowed.empty else []
        except psycopg.errors.UndefinedTable:
            fail("The ledger has no shadow_decisions table yet: run `creditrisk ledger migrate` "
                 "(or start the ledger writer, `creditrisk ledger run`).")
    if shadowed.empty:
        fail(_no_shadow_decisions(champion, challenger, pairs))
    comparison = comparison_of(shadowed, champion, challenger)
    for line in report_lines(comparison):
        typer.echo(line)
    target = out or REPORTS_DIR / f"compare-{champion}-{challenger}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_report(comparison, comparison_plots(comparison, shadowed)),
                      encoding="utf-8")
    typer.echo(f"report: {target}")


def _no_shadow_decisions(champion: str, challenger: str, pairs: list[ShadowPair]) -> str:
    known = "; ".join(f"{pair.champion} vs {pair.challenger} ({pair.shadow_decisions:,})"
                      for pair in pairs[:10])
    return (f"The ledger holds no application decided by champion {champion} and shadowed by "
            f"challenger {challenger}. "
            + (f"Pairs in the ledger (champion vs challenger, shadow decisions): {known}."
               if known else
               "It holds no shadow decisions at all: set a challenger (`creditrisk model "
               "challenger VERSION --percent P`) and keep the worker and the ledger writer "
               "running."))


# -- plots ---------------------------------------------------------------------------------

def _png(figure: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _figure(width: float = 6.0, height: float = 4.2) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def swap_matrix_plot(comparison: Comparison) -> bytes:
    """The 3×3 swap matrix as a heatmap, each cell with its count."""
    figure = _figure(5.4, 4.4)
    axes = figure.add_subplot()
    counts = [[comparison.swap_matrix[(mine, theirs)] for theirs in DECISIONS]
              for mine in DECISIONS]
    axes.imshow(counts, cmap="Blues")
    top = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            axes.text(j, i, f"{count:,}", ha="center", va="center",
                      color="white" if count > top / 2 else "black")
    axes.set_xticks(range(3), DECISIONS)
    axes.set_yticks(range(3), DECISIONS)
    axes.set(xlabel=f"challenger {comparison.challenger}",
             ylabel=f"champion {comparison.champion}", title="Swap matrix (applications)")
    return _png(figure)


def bad_rate_plot(comparison: Comparison) -> bytes:
    """The bad rates of swap-ins, swap-outs and unchanged approvals with their intervals."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.grid(alpha=0.3)
    for position, name in enumerate(SWAP_SET_WORDS):
        rate, matured, _applications = comparison.swap_set(name)
        if rate is None or rate.low is None or rate.high is None:
            axes.text(position, 0.0, "no matured loan", ha="center", va="bottom")
            continue
        axes.errorbar(position, rate.value, yerr=[[rate.value - rate.low], [rate.high - rate.value]],
                      fmt="o", capsize=6, color=CHALLENGER_COLOUR if name == "swap_in"
                      else CHAMPION_COLOUR)
        axes.annotate(f"n={matured:,}", (position, rate.high), textcoords="offset points",
                      xytext=(0, 6), ha="center")
    axes.set_xticks(range(3), ["swap-ins", "swap-outs", "unchanged"])
    axes.set_xlim(-0.5, 2.5)
    highs = [rate.high for name in SWAP_SET_WORDS
             if (rate := comparison.swap_set(name)[0]) is not None and rate.high is not None]
    axes.set_ylim(0, max([0.05, *highs]) * 1.15)  # room for the n= labels
    axes.set(ylabel="bad rate of matured loans",
             title="Bad rate by swap set (95 % Wilson intervals)")
    return _png(figure)


def calibration_plot(comparison: Comparison, tables: Mapping[str, pd.DataFrame]) -> bytes:
    """Both models' calibration curves (PD deciles) on the same matured loans."""
    figure = _figure()
    axes = figure.add_subplot()
    axes.grid(alpha=0.3)
    top = max([0.05, *(float(max(t["predicted_pd"].max(), t["observed_bad_rate"].max()))
                       for t in tables.values() if len(t))]) * 1.05
    axes.plot([0, top], [0, top], linestyle="--", color="#9e9e9e", label="perfect calibration")
    for role, colour in (("champion", CHAMPION_COLOUR), ("challenger", CHALLENGER_COLOUR)):
        table = tables[role]
        version = comparison.champion if role == "champion" else comparison.challenger
        axes.plot(table["predicted_pd"], table["observed_bad_rate"], marker="o", color=colour,
                  label=f"{role} {version}")
    axes.set(xlabel="mean predicted PD", ylabel="observed bad rate",
             title=f"Calibration on the same {comparison.matured:,} matured loans")
    axes.legend()
    return _png(figure)


def comparison_plots(comparison: Comparison, shadowed: pd.DataFrame) -> dict[str, bytes]:
    """The report's PNGs by caption (the calibration and bad-rate plots once loans matured)."""
    plots = {"Swap matrix": swap_matrix_plot(comparison)}
    if comparison.matured:
        plots["Bad rate by swap set"] = bad_rate_plot(comparison)
        plots["Calibration of both models"] = calibration_plot(comparison,
                                                               calibration_tables(shadowed))
    return plots


# -- the HTML report -----------------------------------------------------------------------

def _shown(estimate: Estimate | None) -> str:
    return "n/a" if estimate is None else estimate.text()


def html_report(comparison: Comparison, plots: Mapping[str, bytes]) -> str:
    """One self-contained HTML page: the figures as tables and the plots as embedded PNGs."""
    import base64

    from training.report import html_table

    c = comparison
    matrix = html_table([f"champion {c.champion} \\ challenger {c.challenger}", *DECISIONS],
                        [[mine, *(c.swap_matrix[(mine, theirs)] for theirs in DECISIONS)]
                         for mine in DECISIONS])
    swaps = html_table(["set", "applications", "matured loans", "bad rate [95 % interval]"],
                       [[words, c.swap_set(name)[2], c.swap_set(name)[1],
                         _shown(c.swap_set(name)[0])] for name, words in SWAP_SET_WORDS.items()])
    models = html_table(
        ["figure (same matured loans)", f"champion {c.champion}", f"challenger {c.challenger}"],
        [["realised AUC", _shown(c.champion_auc), _shown(c.challenger_auc)],
         ["KS", _shown(c.champion_ks), _shown(c.challenger_ks)],
         ["calibration error", _shown(c.champion_calibration_error),
          _shown(c.challenger_calibration_error)]])
    figures = "\n".join(
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>" for caption, png in plots.items())
    title = html.escape(f"Champion {c.champion} vs challenger {c.challenger}")
    agreement = "n/a" if c.agreement is None else f"{c.agreement:.3f}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;
text-align:right}}th:first-child,td:first-child{{text-align:left}}img{{max-width:100%}}</style>
</head><body>
<h1>{title}</h1>
<p>{c.shadowed:,} applications decided by both models; agreement {agreement};
{c.matured:,} of their loans matured (outcome good or bad).</p>
<h2>Swap matrix</h2>
<p>Applications by the champion's decision (rows) and the challenger's (columns).</p>
{matrix}
<h2>Bad rates of the swap sets</h2>
<p>Swap-ins are applications the challenger would approve and the champion declined; swap-outs
the reverse. A loan's outcome is known only where the loan was booked, so swap-in bad rates
rest on declined applications that were booked anyway or on a replayed history.</p>
{swaps}
<h2>Each model on the same loans</h2>
{models}
<h2>Plots</h2>
{figures}
<pre>{html.escape(chr(10).join(report_lines(c)))}</pre>
</body></html>
"""
