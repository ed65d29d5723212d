"""The report's figures (matplotlib, Agg backend): EDA of the loan book and model quality.

Each function draws one figure and returns it; :func:`render_all` saves them as PNG files
and skips the plots a dataset has no columns for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.definitions import FeatureEncoder
from onnx_models.policy import score_points
from training.fairness_report import FAIRNESS_PLOT, approval_rate_by_group
from training.model import FittedVariant

if TYPE_CHECKING:
    import lightgbm as lgb
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = {"good": "#2a9d8f", "bad": "#e76f51", "raw": "#8d99ae", "calibrated": "#264653",
           "no_smote": "#e9c46a"}


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height), dpi=100)
    axes.grid(alpha=0.3)
    return figure, axes


def histogram(values: pd.Series, title: str, xlabel: str, clip_quantile: float = 0.995) -> Figure:
    figure, axes = _figure()
    data = pd.to_numeric(values, errors="coerce").dropna()
    if len(data):
        data = data[data <= data.quantile(clip_quantile)]
    axes.hist(data, bins=50, color=PALETTE["calibrated"])
    axes.set(title=title, xlabel=xlabel, ylabel="loans")
    return figure


def category_counts(values: pd.Series, title: str, top: int = 15) -> Figure:
    figure, axes = _figure()
    counts = values.astype("object").fillna("<missing>").value_counts().head(top)[::-1]
    axes.barh([str(i) for i in counts.index], counts.to_numpy(), color=PALETTE["calibrated"])
    axes.set(title=title, xlabel="loans")
    figure.tight_layout()
    return figure


def bad_rate_by(values: pd.Series, label: pd.Series, title: str, top: int = 15) -> Figure:
    figure, axes = _figure()
    table = pd.DataFrame({"key": values.astype("object").fillna("<missing>"), "bad": label})
    rates = table.groupby("key")["bad"].agg(["mean", "size"])
    rates = rates.sort_values("size", ascending=False).head(top).sort_index()
    axes.bar([str(i) for i in rates.index], rates["mean"].to_numpy(), color=PALETTE["bad"])
    axes.set(title=title, ylabel="bad rate")
    axes.set_xticks(range(len(rates)), [str(i) for i in rates.index], rotation=60, ha="right")
    figure.tight_layout()
    return figure


def roc_curves(label: np.ndarray, curves: Mapping[str, np.ndarray]) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _figure(5.5, 5.0)
    for name, probability in curves.items():
        fpr, tpr, _ = roc_curve(label, probability)
        axes.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(label, probability):.3f})")
    axes.plot([0, 1], [0, 1], "k--", lw=0.8)
    axes.set(title="ROC on the test set", xlabel="false positive rate (goods declined)",
             ylabel="true positive rate (bads declined)")
    axes.legend(loc="lower right")
    return figure


def ks_curve(label: np.ndarray, probability: np.ndarray) -> Figure:
    figure, axes = _figure()
    grid = np.linspace(0, 1, 501)
    ordered = np.sort(probability)
    bad_cdf = np.searchsorted(np.sort(probability[label == 1]), np.quantile(ordered, grid),
                              side="right") / max((label == 1).sum(), 1)
    good_cdf = np.searchsorted(np.sort(probability[label == 0]), np.quantile(ordered, grid),
                               side="right") / max((label == 0).sum(), 1)
    gap = np.abs(good_cdf - bad_cdf)
    at = int(np.argmax(gap))
    axes.plot(grid, good_cdf, color=PALETTE["good"], label="good loans")
    axes.plot(grid, bad_cdf, color=PALETTE["bad"], label="bad loans")
    axes.vlines(grid[at], bad_cdf[at], good_cdf[at], colors="k", linestyles="--",
                label=f"KS = {gap[at]:.3f}")
    axes.set(title="KS: cumulative share by PD quantile", xlabel="PD quantile",
             ylabel="cumulative share")
    axes.legend()
    return figure


def calibration_curve(label: np.ndarray, curves: Mapping[str, np.ndarray], bins: int = 10
                      ) -> Figure:
    figure, axes = _figure(5.5, 5.0)
    top = 0.0
    for name, probability in curves.items():
        edges = np.unique(np.quantile(probability, np.linspace(0, 1, bins + 1)))
        index = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0,
                        len(edges) - 2)
        mean_pd = [probability[index == i].mean() for i in range(len(edges) - 1)
                   if np.any(index == i)]
        observed = [label[index == i].mean() for i in range(len(edges) - 1) if np.any(index == i)]
        axes.plot(mean_pd, observed, "o-", label=name)
        top = max(top, max(mean_pd, default=0), max(observed, default=0))
    axes.plot([0, top], [0, top], "k--", lw=0.8, label="perfect")
    axes.set(title="Calibration (test set, PD deciles)", xlabel="mean predicted PD",
             ylabel="observed bad rate")
    axes.legend()
    return figure


def score_distribution(label: np.ndarray, scores: np.ndarray) -> Figure:
    figure, axes = _figure()
    bins = np.linspace(np.percentile(scores, 0.5), np.percentile(scores, 99.5), 40).tolist()
    axes.hist(scores[label == 0], bins=bins, alpha=0.6, density=True, color=PALETTE["good"],
              label="good loans")
    axes.hist(scores[label == 1], bins=bins, alpha=0.6, density=True, color=PALETTE["bad"],
              label="bad loans")
    axes.set(title="Score distribution by outcome (test set)", xlabel="score points",
             ylabel="density")
    axes.legend()
    return figure


def feature_importance(booster: lgb.Booster, names: list[str]) -> Figure:
    figure, axes = _figure(6.4, 5.0)
    gain = booster.feature_importance(importance_type="gain")
    order = np.argsort(gain)
    axes.barh(np.array(names)[order], gain[order] / max(gain.sum(), 1e-12),
              color=PALETTE["calibrated"])
    axes.set(title="Feature importance (share of total split gain)", xlabel="share of gain")
    figure.tight_layout()
    return figure


def smote_comparison(variants: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    figure, axes = _figure(7.0, 4.0)
    metrics = ["auc", "ks", "gini", "brier", "ece"]
    series = {f"{name} raw": values["raw"] for name, values in variants.items()}
    series |= {f"{name} calibrated": values["calibrated"] for name, values in variants.items()}
    width = 0.8 / len(series)
    for offset, (name, values) in enumerate(series.items()):
        axes.bar(np.arange(len(metrics)) + offset * width,
                 [values[metric] for metric in metrics], width, label=name)
    axes.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    axes.set(title="SMOTE vs no SMOTE, before and after calibration (test set)")
    axes.legend(fontsize=8)
    return figure


def render_all(folder: Path, card: Mapping[str, Any], full_frame: pd.DataFrame,
               test_label: np.ndarray, test_pds: Mapping[str, np.ndarray], raw: np.ndarray,
               variants: Mapping[str, FittedVariant], encoder: FeatureEncoder
               ) -> dict[str, Path]:
    """Every plot the data allows, saved as ``folder/<name>.png``; name → path. The test
    plots use ``test_pds`` (each variant's calibrated PDs on the test figures' rows) and
    ``raw`` (the promoted model's before calibration)."""
    import matplotlib.pyplot as plt

    label = full_frame["bad"]
    engineered = encoder.transform_frame(full_frame)
    exported_name = card["model"]["variant"]
    exported = variants[exported_name]
    test_pd = test_pds[exported_name]
    others = {name: pd_values for name, pd_values in test_pds.items() if name != exported_name}
    plots: dict[str, Callable[[], Figure]] = {}
    if "loan_amnt" in full_frame:
        plots["loan_amount"] = lambda: histogram(full_frame["loan_amnt"],
                                                 "Loan amount", "loan amount")
    if "grade" in full_frame:
        plots["grade"] = lambda: category_counts(full_frame["grade"], "Lending Club grade")
        plots["bad_rate_by_grade"] = lambda: bad_rate_by(full_frame["grade"], label,
                                                         "Bad rate by grade")
    if "home_ownership" in full_frame:
        plots["home_ownership"] = lambda: category_counts(full_frame["home_ownership"],
                                                          "Home ownership")
    if "purpose" in full_frame:
        plots["purpose"] = lambda: category_counts(full_frame["purpose"], "Purpose")
        plots["bad_rate_by_purpose"] = lambda: bad_rate_by(full_frame["purpose"], label,
                                                           "Bad rate by purpose")
    if "dti" in engineered:
        plots["dti"] = lambda: histogram(engineered["dti"], "Debt-to-income (dti, %)", "dti")
    plots["bad_flag"] = lambda: category_counts(label.map({0: "good", 1: "bad"}),
                                                "Outcome (bad flag)")
    plots["roc"] = lambda: roc_curves(test_label, {f"{exported_name} (exported)": test_pd,
                                                   **others})
    plots["ks"] = lambda: ks_curve(test_label, test_pd)
    plots["calibration"] = lambda: calibration_curve(test_label, {
        f"{exported_name}, before calibration": raw,
        f"{exported_name}, after calibration": test_pd,
        **{f"{name}, after calibration": pd_values for name, pd_values in others.items()}})
    plots["score_distribution"] = lambda: score_distribution(
        test_label, score_points(test_pd, card["score_scale"]))
    plots["feature_importance"] = lambda: feature_importance(exported.booster,
                                                             encoder.feature_names_)
    plots["smote_comparison"] = lambda: smote_comparison(card["smote"]["variants"])
    if card.get("fairness", {}).get("attributes"):
        plots[FAIRNESS_PLOT] = lambda: approval_rate_by_group(card["fairness"])

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, draw in plots.items():
        figure = draw()
        path = folder / f"{name}.png"
        figure.savefig(path, bbox_inches="tight")
        plt.close(figure)
        written[name] = path
    return written
