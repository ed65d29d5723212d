"""The baseline fitted on every run: a binned logistic-regression scorecard.

Each numeric feature is cut into up to ``max_bins`` quantile bins plus a "missing" bin, each
categorical code is its own bin plus "missing or unknown"; a logistic regression on the
one-hot bins gives every bin its points (log-odds). This is the credit industry's classic
model: it ranks well on small files, is hard to overfit and reads as a points table.

Because the model is a sum of one step function per feature, it is exactly an additive tree
ensemble — one tree per feature whose leaves are the bins' points. :meth:`to_lightgbm_text`
writes it in LightGBM's text format, so the scorecard goes through the same ONNX export,
parity check and per-feature reason codes (TreeSHAP on a one-feature tree is the bin's
points minus the population's average points for that feature) as LightGBM. No model-type
specific code is needed where models are served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

FLOAT32_MAX = float(np.finfo(np.float32).max)
# decision_type bits in LightGBM text models: bit 1 = missing values go left, bits 2-3 =
# missing type (2 = NaN). Numeric splits send NaN to the right child here.
NAN_GOES_RIGHT = 8


class BinnedScorecard:
    """``fit(X, y)`` / ``predict_proba(X)`` (X float, NaN = missing)."""

    def __init__(self, categorical_indices: Sequence[int] = (), max_bins: int = 10,
                 regularization: float = 0.3) -> None:
        self.categorical_indices = categorical_indices
        self.max_bins = max_bins
        self.regularization = regularization

    def _check_parameters(self, features: np.ndarray) -> None:
        if self.max_bins < 2:
            raise ValueError(f"max_bins must be at least 2, got {self.max_bins}")
        if self.regularization <= 0:
            raise ValueError(f"regularization (C) must be positive, got {self.regularization}")
        if any(not 0 <= index < features.shape[1] for index in self.categorical_indices):
            raise ValueError("categorical_indices must be column positions of X")

    def fit(self, features: np.ndarray, label: np.ndarray) -> BinnedScorecard:
        from sklearn.linear_model import LogisticRegression

        features = _float32_values(features)
        self._check_parameters(features)
        categorical = set(self.categorical_indices)
        # Edges are observed values, so "x <= edge" means the same in float32 and float64.
        self.edges_ = [self._edges(features[:, column], column in categorical)
                       for column in range(features.shape[1])]
        design = self._design(features)
        regression = LogisticRegression(C=self.regularization, solver="lbfgs", max_iter=2000)
        regression.fit(design, np.asarray(label).astype(int))
        self.intercept_ = float(regression.intercept_[0])
        self.points_ = np.split(regression.coef_[0], self._offsets()[1:-1])
        self.bin_counts_ = np.split(np.asarray(design.sum(axis=0)).ravel(),
                                    self._offsets()[1:-1])
        self.value_range_ = [(float(np.nanmin(column)), float(np.nanmax(column)))
                             if not np.all(np.isnan(column)) else None
                             for column in features.T]
        return self

    def _edges(self, column: np.ndarray, categorical: bool) -> np.ndarray:
        present = np.unique(column[~np.isnan(column)])
        if categorical or len(present) <= self.max_bins:
            return present[:-1]
        quantiles = np.quantile(column[~np.isnan(column)],
                                np.linspace(0, 1, self.max_bins + 1)[1:-1], method="lower")
        return np.unique(quantiles)

    def _offsets(self) -> np.ndarray:
        # Per feature: len(edges) + 1 value bins, then the missing bin.
        return np.concatenate([[0], np.cumsum([len(edges) + 2 for edges in self.edges_])])

    def bin_index(self, features: np.ndarray) -> np.ndarray:
        """Each value's bin per feature (the last bin of a feature is "missing")."""
        features = _float32_values(features)
        index = np.empty(features.shape, dtype=np.int64)
        for column, edges in enumerate(self.edges_):
            values = features[:, column]
            index[:, column] = np.where(np.isnan(values), len(edges) + 1,
                                        np.searchsorted(edges, values, side="left"))
        return index

    def _design(self, features: np.ndarray) -> csr_matrix:
        from scipy.sparse import csr_matrix

        columns = self.bin_index(features) + self._offsets()[:-1]
        rows = np.repeat(np.arange(len(features)), features.shape[1])
        return csr_matrix((np.ones(columns.size), (rows, columns.ravel())),
                          shape=(len(features), int(self._offsets()[-1])))

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of bad: intercept plus each feature's bin points."""
        index = self.bin_index(features)
        total = np.full(len(index), self.intercept_)
        for column, points in enumerate(self.points_):
            total += points[index[:, column]]
        return total

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        bad = 1.0 / (1.0 + np.exp(-self.decision_function(features)))
        return np.column_stack([1.0 - bad, bad])

    def to_lightgbm_text(self) -> str:
        """The scorecard as a LightGBM text model: one tree per feature, leaves = points
        (the intercept added to the first tree), leaf counts = training rows per bin."""
        width = len(self.edges_)
        infos = ["none" if bounds is None else f"[{bounds[0]!r}:{bounds[1]!r}]"
                 for bounds in self.value_range_]
        header = ["tree", "version=v4", "num_class=1", "num_tree_per_iteration=1",
                  "label_index=0", f"max_feature_idx={width - 1}", "objective=binary sigmoid:1",
                  "feature_names=" + " ".join(f"Column_{i}" for i in range(width)),
                  "feature_infos=" + " ".join(infos), ""]
        trees = [_feature_tree(column, self.edges_[column],
                               self.points_[column] + (self.intercept_ if column == 0 else 0.0),
                               self.bin_counts_[column])
                 for column in range(width)]
        return "\n".join(header + trees + ["end of trees", ""])


def _float32_values(features: np.ndarray) -> np.ndarray:
    return np.asarray(features, dtype=np.float32).astype(np.float64)


def _feature_tree(feature: int, edges: np.ndarray, points: np.ndarray,
                  counts: np.ndarray) -> str:
    """One tree: a NaN test at the root (missing → the last leaf), then a balanced binary
    search over the bin edges; leaf ``b`` holds bin ``b``'s points."""
    # Every leaf counts at least one row so TreeSHAP's population weights stay defined.
    leaf_count = np.maximum(np.asarray(counts, dtype=np.int64), 1)
    nodes: list[dict[str, str | int]] = []

    def build(low: int, high: int) -> tuple[int, int]:
        """Child reference for bins low..high, and the rows under it."""
        if low == high:
            return ~low, int(leaf_count[low])
        middle = (low + high) // 2
        node = len(nodes)
        nodes.append({})
        left, left_rows = build(low, middle)
        right, right_rows = build(middle + 1, high)
        nodes[node] = {"threshold": repr(float(edges[middle])), "left": left, "right": right,
                       "rows": left_rows + right_rows}
        return node, left_rows + right_rows

    missing_leaf = len(edges) + 1
    nodes.append({})
    present, present_rows = build(0, len(edges))
    nodes[0] = {"threshold": repr(FLOAT32_MAX), "left": present, "right": ~missing_leaf,
                "rows": present_rows + int(leaf_count[missing_leaf])}
    share = leaf_count / leaf_count.sum()
    average = float(np.dot(share, points))

    def field(name: str, values: Sequence[object]) -> str:
        return f"{name}=" + " ".join(str(value) for value in values)

    return "\n".join([
        f"Tree={feature}", f"num_leaves={len(points)}", "num_cat=0",
        field("split_feature", [feature] * len(nodes)),
        # The root carries the feature's spread of points, so "gain" importance ranks
        # features by how much they move scores.
        field("split_gain", [float(np.dot(share, (points - average) ** 2))]
              + [0.0] * (len(nodes) - 1)),
        field("threshold", [node["threshold"] for node in nodes]),
        field("decision_type", [NAN_GOES_RIGHT] * len(nodes)),
        field("left_child", [node["left"] for node in nodes]),
        field("right_child", [node["right"] for node in nodes]),
        field("leaf_value", [repr(float(value)) for value in points]),
        field("leaf_weight", [float(count) for count in leaf_count]),
        field("leaf_count", [int(count) for count in leaf_count]),
        field("internal_value", [0.0] * len(nodes)),
        field("internal_weight", [float(node["rows"]) for node in nodes]),
        field("internal_count", [node["rows"] for node in nodes]),
        "is_linear=0", "shrinkage=1", "", ""])


def fit_scorecard_cv(features: np.ndarray, label: np.ndarray,
                     folds: Sequence[tuple[np.ndarray, np.ndarray]],
                     categorical_indices: Sequence[int], max_bins: int,
                     regularizations: Sequence[float], progress: bool = False
                     ) -> dict[float, np.ndarray]:
    """Out-of-fold probabilities of a scorecard per regularisation strength (same folds as
    the LightGBM search, so the two are compared on the same rows)."""
    from tqdm import tqdm

    out_of_fold: dict[float, np.ndarray] = {}
    bar = tqdm(total=len(regularizations) * len(folds), desc="  CV scorecard", unit="fit",
               leave=False, disable=not progress)
    for strength in regularizations:
        predictions = np.empty(len(label))
        for fit, valid in folds:
            bar.update(1)
            scorecard = BinnedScorecard(categorical_indices, max_bins, strength)
            scorecard.fit(features[fit], label[fit])
            predictions[valid] = scorecard.predict_proba(features[valid])[:, 1]
        out_of_fold[strength] = predictions
    bar.close()
    return out_of_fold
