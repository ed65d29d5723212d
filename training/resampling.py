"""SMOTE that respects missing values, whole numbers and categorical codes.

SMOTE interpolates between a minority row and its nearest minority neighbours, so it needs
complete rows and meaningful distances. Here, only for finding neighbours and
interpolating: numeric features are median-imputed and standardised, each column with
missing values gets a 0/1 missing indicator, and categorical codes become scaled one-hot
blocks (dense, so the neighbour search stays a tree search rather than SMOTENC's brute
force). Synthetic rows are then mapped back: values un-scaled; a value set back to NaN when
its interpolated missing indicator is at least 0.5; whole-number columns snapped to the
nearest observed value (a 36/60-month term never becomes 48); categorical "missing" back
to NaN. The model therefore still learns from NaN and takes NaN at serving time.
Applied to training folds only, never to validation, calibration or test rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MISSING_CATEGORY_CODE = -1.0


class MissingAwareSMOTE:
    """``fit_resample(X, y)`` like imbalanced-learn's samplers (X float, NaN allowed)."""

    def __init__(self, categorical_indices: Sequence[int] = (), sampling_strategy: float = 1.0,
                 k_neighbors: int = 5, random_state: int = 0) -> None:
        self.categorical_indices = categorical_indices
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.random_state = random_state

    def _check_parameters(self, features: np.ndarray) -> None:
        if not 0 < self.sampling_strategy <= 1:
            raise ValueError("sampling_strategy is the minority:majority ratio after "
                             f"resampling, in (0, 1]; got {self.sampling_strategy}")
        if any(not 0 <= index < features.shape[1] for index in self.categorical_indices):
            raise ValueError("categorical_indices must be column positions of X")

    def fit_resample(self, features: np.ndarray, label: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        from imblearn.over_sampling import SMOTE

        features = np.asarray(features, dtype=np.float64)
        label = np.asarray(label)
        self._check_parameters(features)
        minority = int(min(np.sum(label == 0), np.sum(label == 1)))
        majority = len(label) - minority
        if minority / max(majority, 1) >= self.sampling_strategy or minority < 2:
            return features, label
        categorical = sorted(self.categorical_indices)
        numeric = [i for i in range(features.shape[1]) if i not in set(categorical)]

        numeric_values = features[:, numeric]
        missing = np.isnan(numeric_values)
        # Counts (inquiries, open accounts, years employed ...) must stay whole numbers:
        # fractional synthetic counts would let the trees tell synthetic bads from real rows.
        whole = np.where(missing, 0.0, numeric_values)
        self.integer_columns_ = np.flatnonzero(np.all(whole == np.round(whole), axis=0))
        self.integer_levels_ = [np.unique(column[~np.isnan(column)])
                                for column in numeric_values[:, self.integer_columns_].T]
        with_missing = np.flatnonzero(missing.any(axis=0))
        all_missing = missing.all(axis=0)
        filled = numeric_values.copy()
        filled[:, all_missing] = 0.0
        self.medians_ = np.nanmedian(filled, axis=0)
        imputed = np.where(missing, self.medians_, numeric_values)
        self.scale_ = imputed.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        scaled = (imputed - self.medians_) / self.scale_
        indicators = missing[:, with_missing].astype(np.float64)
        codes = np.where(np.isnan(features[:, categorical]), MISSING_CATEGORY_CODE,
                         features[:, categorical])
        self.levels_ = [np.unique(codes[:, position]) for position in range(codes.shape[1])]
        # One-hot blocks scaled so two different categories are as far apart as one
        # standard deviation of a numeric feature.
        one_hot = [(codes[:, [position]] == levels).astype(np.float64) / np.sqrt(2.0)
                   for position, levels in enumerate(self.levels_)]
        design = np.hstack([scaled, indicators, *one_hot])

        k_neighbors = max(1, min(self.k_neighbors, minority - 1))
        sampler = SMOTE(sampling_strategy=self.sampling_strategy, k_neighbors=k_neighbors,
                        random_state=self.random_state)
        resampled, resampled_label = sampler.fit_resample(design, label)
        return self._restore(resampled, features.shape[1], numeric, categorical,
                             with_missing, len(label), features), resampled_label

    def _restore(self, design: np.ndarray, width: int, numeric: list[int],
                 categorical: list[int], with_missing: np.ndarray, original_rows: int,
                 original: np.ndarray) -> np.ndarray:
        n_numeric = len(numeric)
        synthetic = design[original_rows:]
        restored = np.empty((synthetic.shape[0], width), dtype=np.float64)
        values = synthetic[:, :n_numeric] * self.scale_ + self.medians_
        indicators = synthetic[:, n_numeric:n_numeric + len(with_missing)]
        for column, levels in zip(self.integer_columns_, self.integer_levels_, strict=False):
            values[:, column] = _nearest_level(values[:, column], levels)
        for position, column in enumerate(with_missing):
            values[indicators[:, position] >= 0.5, column] = np.nan
        restored[:, numeric] = values
        # An interpolated one-hot block leans towards the nearer of the two rows' categories.
        offset = n_numeric + len(with_missing)
        for position, levels in enumerate(self.levels_):
            block = synthetic[:, offset:offset + len(levels)]
            codes = levels[np.argmax(block, axis=1)]
            restored[:, categorical[position]] = np.where(codes == MISSING_CATEGORY_CODE,
                                                          np.nan, codes)
            offset += len(levels)
        # The original rows come back bit-for-bit; only synthetic rows are reconstructed.
        return np.vstack([original, restored])


def _nearest_level(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each value replaced by the closest observed level (36 or 60 for a loan term, never 48)."""
    if len(levels) == 0:
        return values
    upper = np.clip(np.searchsorted(levels, values), 1, len(levels) - 1) if len(levels) > 1 \
        else np.zeros(len(values), dtype=int)
    lower = np.maximum(upper - 1, 0)
    closer_to_lower = np.abs(values - levels[lower]) <= np.abs(levels[upper] - values)
    return np.where(closer_to_lower, levels[lower], levels[upper])
