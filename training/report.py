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

from features.definitions import FeatureEncoder
from training.fairness_report import FAIRNESS_PLOT, fairness_section_html
from training.model import FittedVariant
from training.report_plots import render_all

TEMPLATE = Path(__file__).with_name("report_template.html")
EDA_PLOTS = ("loan_amount", "grade", "home_ownership", "purpose", "dti", "bad_flag",
             "bad_rate_by_grade", "bad_rate_by_purpose")
MODEL_PLOTS = ("roc", "ks", "calibration", "score_distribution", "feature_importance")
COMPARISON_PLOTS = ("smote_comparison",)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(str(value))


def html_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric_rows(named: Mapping[str, Mapping[str, object]]) -> list[list[object]]:
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


MODEL_LABELS = {"smote": "LightGBM + SMOTE", "no_smote": "LightGBM, no SMOTE",
                "baseline": "baseline scorecard"}
CV_NAMES = ("auc", "ks", "gini", "brier", "ece")


REFERENCE_LABEL = "fixed reference LightGBM"


def _side_by_side(card: Mapping[str, Any]) -> str:
    """Each fitted model: CV (mean ± std) and test figures, the promoted one marked, and the
    fixed reference LightGBM fitted on the same rows."""
    promoted = card["model"]["variant"]
    models = {**card["smote"]["variants"], "baseline": card["baseline"]}
    rows = []
    for name, figures in models.items():
        cv, test = figures["cv"], figures["calibrated"]
        rows.append([MODEL_LABELS[name] + (" (promoted)" if name == promoted else ""),
                     f"{cv['auc']:.4f} ± {cv['auc_std']:.4f}", test["auc"], test["ks"],
                     test["brier"], test["ece"], test["mean_pd"], figures["trees"],
                     figures["fitted_on_rows"], figures["synthetic_rows"]])
    reference = card.get("fixed_reference")
    if reference:
        cv, test = reference["cv"], reference["test"]
        rows.append([REFERENCE_LABEL,
                     f"{cv['auc']:.4f} ± {cv['auc_std']:.4f}" if cv else "not cross-validated",
                     test["auc"], test["ks"], test["brier"], test["ece"], test["mean_pd"],
                     reference["trees"], reference["fitted_on_rows"], 0])
    return html_table(["model", "CV AUC", "test AUC", "test KS", "test Brier", "test ECE",
                       "test mean PD", "trees", "fitted on rows", "SMOTE rows"], rows)


def _evaluation_note(card: Mapping[str, Any]) -> str:
    """How the test figures were obtained, and what the fixed reference is."""
    evaluation = card.get("evaluation", {})
    note = (f"Test figures: {evaluation.get('description', 'the held-out test set')} "
            f"({evaluation.get('rows', card['split']['test_rows']):,} loans, "
            f"{evaluation.get('bad_loans', '?')} bad).")
    reference = card.get("fixed_reference")
    if reference:
        settings = reference["settings"]
        note += (f" The {REFERENCE_LABEL} is fitted in every run on the same rows and columns"
                 f" with fixed settings (learning rate {settings['learning_rate']:g}, "
                 f"{settings['num_leaves']} leaves, at least {settings['min_child_samples']} "
                 f"rows per leaf, {settings['feature_fraction']:.0%} of the columns per tree, "
                 f"{reference['trees']} trees, no early stopping, no search)"
                 + ("; its test figures are uncalibrated (one fit on the training rows, not "
                    "cross-validated)." if reference["cv"] is None else "."))
    return html.escape(note)


def _search_table(card: Mapping[str, Any]) -> str:
    search = card["search"]
    rows = []
    for stage in ("no_smote", "smote"):
        if stage not in search:
            continue
        chosen = search[stage]["chosen"]
        for tried in search[stage]["tried"]:
            smote = (f"{tried['smote_sampling_strategy']:.3f}, k={tried['smote_k_neighbors']}"
                     if tried["smote_sampling_strategy"] is not None else "none")
            rows.append([MODEL_LABELS[stage], tried["num_leaves"], tried["min_child_samples"],
                         tried["reg_lambda"], smote, tried["trees"],
                         f"{tried['cv_auc']:.4f} ± {tried.get('cv_auc_se', 0.0):.4f}",
                         tried["seconds"], "chosen" if tried == chosen else ""])
        rows += [[MODEL_LABELS[stage], c["num_leaves"], c["min_child_samples"], c["reg_lambda"],
                  c["smote_sampling_strategy"] or "none", "", "", "", "skipped (time budget)"]
                 for c in search[stage]["skipped_for_time"]]
    baseline = search["baseline"]
    rows += [["baseline scorecard", f"C = {t['regularization_C']:g}", "", "", "", "",
              f"{t['cv_auc']:.4f}", "",
              "chosen" if t["regularization_C"] == baseline["chosen"]["regularization_C"]
              else ""] for t in baseline["tried"]]
    return html_table(["model", "leaves", "min rows per leaf", "L2", "SMOTE bad:good, k",
                       "trees", "CV AUC ± s.e.", "seconds", ""], rows)


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
    warnings = "".join(f'<p class="warning"><b>Warning ({html.escape(w["code"])}):</b> '
                       f'{html.escape(w["message"])}</p>' for w in card.get("warnings", []))
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
        "exported": html.escape(MODEL_LABELS[card["model"]["variant"]]),
        "model_line": html.escape(
            f"{card['model']['description']}: {card['model']['trees']} trees, fitted on all "
            f"{card['model']['fitted_on_rows']:,} training rows"
            + (f" plus {card['model']['synthetic_rows']:,} SMOTE rows"
               if card["model"]["synthetic_rows"] else "")
            + f"; {card['model']['cv_describes']}."),
        "side_by_side_table": _side_by_side(card),
        "evaluation_note": _evaluation_note(card),
        "search_rule": html.escape(card["search"].get("selection", "")),
        "search_table": _search_table(card),
        "search_seconds": f"{card['search'].get('seconds') or 0:.0f}",
        "search_budget": f"{card['search']['budget_seconds']:.0f}",
        "folds": str(cv["folds"]),
        "cv_rows": ("every labelled row" if card.get("split", {}).get("method") == "out_of_fold"
                    else "the training rows"),
        "metrics_table": html_table(metric_header, _metric_rows({"test": metrics["test"]})),
        "cv_table": html_table(["", "AUC", "KS", "Gini", "Brier", "ECE"], cv_rows),
        "dataset_choices": html.escape(
            "known at application time (declared): "
            + (", ".join(card["dataset"].get("known_at_application", [])) or "none")
            + "; excluded columns: "
            + (", ".join(card["dataset"].get("exclude_columns", [])) or "none")),
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
        "fairness_section": fairness_section_html(card, _figures(plots, (FAIRNESS_PLOT,))),
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


def write_report(folder: Path, card: Mapping[str, Any], full_frame: pd.DataFrame,
                 test_label: np.ndarray, test_pds: Mapping[str, np.ndarray],
                 test_raw: np.ndarray, variants: Mapping[str, FittedVariant],
                 encoder: FeatureEncoder) -> Path:
    """Write ``folder/report.html`` and the PNGs; return the HTML path. ``test_pds``: each
    variant's calibrated PDs on the rows the test figures describe (held out, or
    out-of-fold), ``test_raw`` the promoted one's before calibration."""
    folder = Path(folder)
    plots = render_all(folder, card, full_frame, test_label, test_pds, test_raw, variants,
                       encoder)
    path = folder / "report.html"
    path.write_text(render_html(card, plots), encoding="utf-8")
    return path
