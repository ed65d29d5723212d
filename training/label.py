"""The bad-loan label: which outcomes are bad, which good, which too early to tell.

Lending Club: bad = Charged Off, Default, Late (31-120 days) and the "Does not meet the
credit policy" charged-off variant; good = Fully Paid and its variant; loans still running
(Current, In Grace Period, Late 16-30, Issued) have no outcome yet and are excluded. The
lists come from the dataset config, so another book can define its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from config.json_types import JSONObject
from features.normalize import outcome_key

if TYPE_CHECKING:
    import pandas as pd

    from training.datasets import DatasetConfig

LABEL_COLUMN = "bad"
MISSING_OUTCOME = "<missing>"


@dataclass
class LabelReport:
    """How many loans became good, bad, and how many were left out and why."""

    target_column: str
    rows_in: int
    good: int = 0
    bad: int = 0
    indeterminate: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        return self.good + self.bad

    @property
    def bad_rate(self) -> float:
        return self.bad / self.rows_out if self.rows_out else float("nan")

    def to_dict(self) -> JSONObject:
        return {"target_column": self.target_column, "rows_in": self.rows_in,
                "rows_out": self.rows_out, "good": self.good, "bad": self.bad,
                "bad_rate": self.bad_rate, "indeterminate": dict(self.indeterminate),
                "unknown": dict(self.unknown)}


def assign_label(frame: pd.DataFrame, config: DatasetConfig) -> tuple[pd.DataFrame, LabelReport]:
    """Rows with a known outcome, with ``bad`` (int8, 1 = bad); the rest counted in the report."""
    import numpy as np

    column = "loan_status" if config.is_lending_club else config.target_column
    if column not in frame:
        raise ValueError(f"Target column {column!r} of dataset config {config.name!r} is not "
                         "in the cleaned frame; check [target] column in the config.")
    outcome_text = frame[column]
    distinct = outcome_text.dropna().unique()
    key_of = {value: MISSING_OUTCOME if _is_missing(value) else outcome_key(value) for value in distinct}
    keys = outcome_text.map(key_of).fillna(MISSING_OUTCOME)
    bad_keys = {outcome_key(value) for value in config.bad_values}
    good_keys = {outcome_key(value) for value in config.good_values}
    excluded_keys = {outcome_key(value) for value in config.excluded_values}

    is_bad = keys.isin(bad_keys).to_numpy()
    is_good = keys.isin(good_keys).to_numpy()
    is_excluded = keys.isin(excluded_keys).to_numpy()
    is_unknown = ~(is_bad | is_good | is_excluded)

    report = LabelReport(target_column=column, rows_in=len(frame),
                         good=int(is_good.sum()), bad=int(is_bad.sum()))
    spelling = {outcome_key(value): value for value in config.excluded_values}
    report.indeterminate = _counts_by_text(keys[is_excluded].map(spelling))
    unknown_keys = keys[is_unknown]
    report.unknown = _counts_by_text(outcome_text[is_unknown].where(
        unknown_keys != MISSING_OUTCOME, MISSING_OUTCOME))

    labelled = frame.loc[is_bad | is_good].copy()
    labelled[LABEL_COLUMN] = is_bad[is_bad | is_good].astype(np.int8)
    return labelled.reset_index(drop=True), report


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _counts_by_text(values: pd.Series) -> dict[str, int]:
    return {str(value): int(count) for value, count in values.astype(str).str.strip()
            .value_counts().items()}
