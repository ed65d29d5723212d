"""The training report: one self-contained HTML file (PNG plots embedded as base64, no
scripts, no external resources) plus the PNG files beside it."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from training.report_plots import render_all

TEMPLATE = Path(__file__).with_name("report_template.html")
EDA_PLOTS = ("loan_amount", "grade", "home_ownership", "purpose", "dti", "bad_flag",
             "bad_rate_by_grade", "bad_rate_by_purpose")
MODEL_PLOTS = ("roc", "ks", "calibration", "score_distribution", "feature_importance")
COMPARISON_PLOTS = ("smote_comparison",)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(str(value))


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric_rows(named: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    names = ("auc", "ks", "gini", "brier", "ece", "mean_pd", "bad_rate")
    return [[label, *(values.get(n, "") for n in names)] for label, values in named.items()]


def _figures(paths: Mapping[str, Path], names: Sequence[str]) -> str:
    parts = []
    for name in names:
        if name not in paths:
            continue
        encoded = base64.b64encode(paths[name].read_bytes()).decode()
        parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{encoded}">'
                     f"<figcaption>{name}.png</figcaption></figure>")
    return "\n".join(parts)


def render_html(card: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
    metrics, cv, smote = card["metrics"], card["metrics"]["cv"], card["smote"]["variants"]
    metric_header = ["", "AUC", "KS", "Gini", "Brier", "ECE", "mean PD", "bad rate"]
    cv_rows = [["mean", *(cv[n] for n in ("auc", "ks", "gini", "brier", "ece"))],
               ["std", *(cv[f"{n}_std"] for n in ("auc", "ks", "gini", "brier", "ece"))]]
    cv_rows += [[f"fold {i + 1}", *(f[n] for n in ("auc", "ks", "gini", "brier", "ece"))]
                for i, f in enumerate(cv["per_fold"])]
    comparison = {f"{name} – {stage}": smote[name][stage]
                  for name in smote for stage in ("raw", "calibrated")}
    decisions = metrics["decisions_at_thresholds"]
    thresholds = card["thresholds"]
    cleaning = card["training"].get("cleaning", {})
    label = card["training"].get("label", {})
    warnings = "".join(f'<p class="warning">{html.escape(w)}</p>'
                       for w in card["training"].get("warnings", []))
    cleaning_rows = [["dropped row", "", reason, count]
                     for reason, count in cleaning.get("dropped", {}).items()]
    cleaning_rows += [["coerced value", c["column"], c["reason"], c["count"]]
                      for c in cleaning.get("coerced", [])]
    label_rows = [["good", label.get("good", "")], ["bad", label.get("bad", "")],
                  ["bad rate", label.get("bad_rate", "")]]
    label_rows += [[f"excluded: {k}", v] for k, v in label.get("indeterminate", {}).items()]
    label_rows += [[f"unknown: {k}", v] for k, v in label.get("unknown", {}).items()]
    values = {
        "version": html.escape(card["version"]), "created_at": html.escape(card["created_at"]),
        "dataset": html.escape(card["dataset"]["name"]),
        "rows": f"{card['data_fingerprint']['rows']:,}",
        "fingerprint": card["data_fingerprint"]["sha256"],
        "split": html.escape(f"{card['split']['method']} (test from {card['split']['test_from']}"
                             f", {card['split']['test_rows']:,} test rows)"
                             if card["split"]["test_from"] else card["split"]["method"]),
        "feature_set": html.escape(card["feature_set"]), "warnings": warnings,
        "exported": html.escape(card["smote"]["exported"]),
        "folds": str(cv["folds"]),
        "metrics_table": html_table(metric_header, _metric_rows({"test": metrics["test"]})),
        "cv_table": html_table(["", "AUC", "KS", "Gini", "Brier", "ECE"], cv_rows),
        "smote_table": html_table(metric_header, _metric_rows(comparison)),
        "thresholds_table": html_table(["threshold", "value"], [
            [k, v] for k, v in thresholds.items()]),
        "decisions_table": html_table(["decision", "good", "bad"], [
            [d, c["good"], c["bad"]] for d, c in decisions["by_decision"].items()]) +
        html_table(["rate", "value"], [[k, decisions[k]] for k in (
            "approval_rate", "review_rate", "decline_rate", "bad_rate_among_approved",
            "bad_rate_among_not_declined", "bad_rate_overall")]),
        "cleaning_table": html_table(["kind", "column", "reason", "count"], cleaning_rows)
        + html_table(["rows in", "rows out", "rows dropped"], [[
            cleaning.get("rows_in", ""), cleaning.get("rows_out", ""),
            cleaning.get("rows_dropped", "")]]),
        "label_table": html_table(["", "loans"], label_rows),
        "features_table": html_table(["feature", "type", "meaning", "categories"], [
            [f["name"], f["type"], f["description"], ", ".join(f.get("categories", []))[:120]]
            for f in card["features"]]),
        "parity_table": html_table(["check", "value"], [[k, v] for k, v in card["parity"].items()]),
        "timings_table": html_table(["step", "seconds"], [
            [k, v] for k, v in card["training"]["timings_s"].items()]),
        "plots_eda": _figures(plots, EDA_PLOTS), "plots_model": _figures(plots, MODEL_PLOTS),
        "plots_model_comparison": _figures(plots, COMPARISON_PLOTS),
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


def write_report(folder: Path, card: Mapping[str, Any], full_frame: pd.DataFrame,
                 test_label: np.ndarray, test_pd: np.ndarray, variants: Mapping[str, Any],
                 test_matrix: np.ndarray, encoder: Any) -> Path:
    """Write ``folder/report.html`` and the PNGs; return the HTML path."""
    folder = Path(folder)
    plots = render_all(folder, card, full_frame, test_label, test_pd, variants, test_matrix,
                       encoder)
    path = folder / "report.html"
    path.write_text(render_html(card, plots), encoding="utf-8")
    return path
