"""Reference distributions recorded in model.json: what the training-time population looked
like, for drift (PSI) in the worker and for "compared with all customers / a similar group"
in the console."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from config.json_types import JSONObject
from features.definitions import FeatureSpec
from features.serving import ServingSpec

QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
PD_BIN_EDGES = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20, 0.25, 0.30, 0.40,
                0.50, 1.0)


def numeric_reference(values: np.ndarray, bins: int = 10) -> JSONObject:
    """Decile bin edges (inner edges; the outer bins are open) with the share per bin,
    plus the share missing, quantiles and the mean: enough for PSI and for a percentile."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    entry: JSONObject = {"type": "numeric", "rows": len(values),
                         "missing_share": float(np.isnan(values).mean()) if len(values) else 0.0}
    if len(present) == 0:
        return entry | {"bin_edges": [], "bin_shares": [], "quantiles": {}}
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    entry.update({
        "bin_edges": [float(edge) for edge in edges],
        "bin_shares": [float(count) / len(values) for count in counts],
        "quantiles": {str(q): float(np.quantile(present, q)) for q in QUANTILES},
        "mean": float(present.mean()), "min": float(present.min()), "max": float(present.max()),
    })
    return entry


def categorical_reference(codes: np.ndarray, categories: Sequence[str]) -> JSONObject:
    codes = np.asarray(codes, dtype=np.float64)
    rows = max(len(codes), 1)
    shares: JSONObject = {category: float(np.sum(codes == index)) / rows
                          for index, category in enumerate(categories)}
    return {"type": "categorical", "rows": len(codes), "shares": shares,
            "missing_or_unknown_share": float(np.isnan(codes).sum()) / rows}


def feature_references(matrix: np.ndarray, specs: Sequence[FeatureSpec],
                       categories: Mapping[str, Sequence[str]]) -> JSONObject:
    references: JSONObject = {}
    for position, spec in enumerate(specs):
        column = matrix[:, position]
        references[spec.name] = (categorical_reference(column, categories[spec.name])
                                 if spec.kind == "categorical" else numeric_reference(column))
    return references


def score_reference(probability_of_default: np.ndarray, scores: np.ndarray) -> JSONObject:
    pd_values = np.asarray(probability_of_default, dtype=np.float64)
    counts, _ = np.histogram(pd_values, bins=PD_BIN_EDGES)
    return {"pd_bin_edges": list(PD_BIN_EDGES),
            "pd_bin_shares": [float(c) / max(len(pd_values), 1) for c in counts],
            "pd_quantiles": {str(q): float(np.quantile(pd_values, q)) for q in QUANTILES},
            "pd_mean": float(pd_values.mean()),
            "score": numeric_reference(np.asarray(scores, dtype=np.float64))}


def group_statistics(frame: pd.DataFrame, label: np.ndarray,
                     probability_of_default: np.ndarray, serving: ServingSpec) -> JSONObject:
    """Bad rate, mean PD and size per value of each of the console's grouping columns
    (``serving.similar_by``) and per band of its numeric band field, if any."""
    table = pd.DataFrame({"bad": np.asarray(label, dtype=np.float64),
                          "pd": np.asarray(probability_of_default, dtype=np.float64)},
                         index=frame.index)
    groups: JSONObject = {}
    for column in serving.similar_by:
        if column in frame.columns:
            groups[column] = _grouped(table, frame[column].astype("object").fillna("<missing>"))
    band = serving.similar_band
    if band is not None and band.field in frame.columns:
        values = pd.to_numeric(frame[band.field], errors="coerce")
        edges = [*band.edges, float("inf")]
        labels = [f"{lo:,.0f}-{'' if hi == float('inf') else f'{hi:,.0f}'}"
                  for lo, hi in itertools.pairwise(edges)]
        banded = pd.cut(values, bins=edges, labels=labels, right=False)
        groups["band"] = {"field": band.field,
                          "groups": _grouped(table, banded.astype("object").fillna("<missing>"))}
    return groups


def _grouped(table: pd.DataFrame, key: pd.Series) -> JSONObject:
    summary = table.groupby(key.to_numpy(), sort=True).agg(
        rows=("bad", "size"), bad_rate=("bad", "mean"), mean_pd=("pd", "mean"))
    return {str(name): {"rows": int(row.rows), "bad_rate": float(row.bad_rate),
                        "mean_pd": float(row.mean_pd)} for name, row in summary.iterrows()}
