"""Which loans train and which test.

The test set is out-of-time when the data has an application date: the newest loans
(whole months, about ``test_fraction`` of rows) are kept back, as a model is judged on
loans issued after it was built. Without a date the split is stratified by the label.
Every training-period row trains the model; cross-validation (``training.tuning``) works
inside the training period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split


@dataclass
class TestSplit:
    """Row positions of the training period and of the test set."""

    train_positions: np.ndarray
    test_positions: np.ndarray
    method: str  # "out_of_time" | "stratified"
    cutoff: str | None = None  # first test month for the out-of-time split

    def describe(self) -> str:
        if self.method == "out_of_time":
            return (f"out-of-time: loans issued from {self.cutoff} on are the test set "
                    f"({len(self.test_positions):,} rows); older loans train "
                    f"({len(self.train_positions):,} rows)")
        return (f"stratified random: {len(self.train_positions):,} train / "
                f"{len(self.test_positions):,} test rows")


def split_test(frame: pd.DataFrame, label: np.ndarray, date_column: str | None,
               test_fraction: float, seed: int) -> TestSplit:
    """Out-of-time split on ``date_column`` if it has usable dates, else stratified."""
    if date_column and date_column in frame.columns:
        dates = pd.to_datetime(frame[date_column], errors="coerce")
        months = dates.dt.to_period("M")
        if months.notna().mean() > 0.95 and months.nunique() >= 4:
            split = _out_of_time(months, test_fraction)
            if split is not None:
                return split
    positions = np.arange(len(frame))
    train, test = train_test_split(positions, test_size=test_fraction, stratify=label,
                                   random_state=seed)
    return TestSplit(np.sort(train), np.sort(test), "stratified")


def _out_of_time(months: pd.Series, test_fraction: float) -> TestSplit | None:
    share_per_month = months.value_counts(normalize=True).sort_index()
    share_from_month = share_per_month[::-1].cumsum()[::-1]
    eligible = share_from_month[share_from_month >= test_fraction]
    if eligible.empty or len(eligible) == len(share_from_month):
        return None
    cutoff = eligible.index[-1]
    is_test = (months >= cutoff).to_numpy()
    # Rows without a date cannot be placed in time: they train.
    is_test &= months.notna().to_numpy()
    positions = np.arange(len(months))
    if is_test.sum() == 0 or (~is_test).sum() == 0:
        return None
    return TestSplit(positions[~is_test], positions[is_test], "out_of_time", str(cutoff))
