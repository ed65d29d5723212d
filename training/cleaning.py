"""Dirty loan file -> canonical loan frame, with a report of every row dropped and value changed.

Two passes. The structural pass removes rows that are not loans (blank or summary lines,
exact duplicates, missing or repeated application ids). The value pass parses each column
the model may read, using the shared per-value functions of ``features.normalize`` (the ones
the real-time service applies to events), and drops rows whose issue date, amount or term is
unusable. Every drop and every coercion is counted with its reason in ``CleaningReport``:
``rows_in == rows_out + sum(dropped.values())`` always holds.

Columns the cleaner does not parse (post-origination payments, free text ...) stay as read,
so the leakage guard can still see them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from config.json_types import JSONObject
from features import normalize
from features.definitions import APPLICANT_FIELDS, BUREAU_FIELDS, PRICING_FIELDS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from training.datasets import DatasetConfig

CUSTOMER_ID = "customer_id"
APPLICATION_ID = "application_id"
# The fields the applicant types; the application date is issue_d, listed apart below.
CANONICAL_COLUMNS = (APPLICATION_ID, CUSTOMER_ID, "issue_d", *APPLICANT_FIELDS, *BUREAU_FIELDS, "dti",
                     *PRICING_FIELDS, "loan_status")
BUREAU_COUNT_COLUMNS = ("delinq_2yrs", "inq_last_6mths", "open_acc", "total_acc", "pub_rec",
                        "revol_bal", "mths_since_last_delinq")
_LENDING_CLUB_TEXT_INPUTS = ("issue_d", "loan_amnt", "term", "home_ownership", "verification_status",
                             "purpose", "addr_state", "emp_length", "annual_inc", "revol_util", "dti",
                             "earliest_cr_line", "int_rate", "installment", "grade", "sub_grade",
                             *BUREAU_COUNT_COLUMNS)
_CATEGORICAL_NORMALISERS: dict[str, Callable[[object], str | None]] = {
    "home_ownership": normalize.normalize_home_ownership,
    "verification_status": normalize.normalize_verification_status,
    "purpose": normalize.normalize_purpose,
    "addr_state": normalize.normalize_addr_state,
}


@dataclass
class CleaningReport:
    """What cleaning did: rows in and out, rows dropped and values coerced, each with a reason."""

    rows_in: int
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    coerced: dict[tuple[str, str], int] = field(default_factory=dict)
    missing_after: dict[str, int] = field(default_factory=dict)
    dropped_columns: list[str] = field(default_factory=list)

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def coerce(self, column: str, reason: str, count: int) -> None:
        if count:
            key = (column, reason)
            self.coerced[key] = self.coerced.get(key, 0) + int(count)

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def check_balanced(self) -> None:
        """Fail loudly if a row went missing without a reason."""
        if self.rows_in != self.rows_out + self.rows_dropped:
            raise RuntimeError(f"Cleaning lost rows without a reason: {self.rows_in} in, "
                               f"{self.rows_out} out, {self.rows_dropped} dropped {self.dropped}.")

    def to_dict(self) -> JSONObject:
        """Plain JSON-ready form (coercions as a list of column/reason/count records)."""
        dropped_most_first = sorted(self.dropped.items(), key=lambda item: -item[1])
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_dropped": self.rows_dropped,
            "dropped": dict(dropped_most_first),
            "coerced": [{"column": column, "reason": reason, "count": count}
                        for (column, reason), count in sorted(self.coerced.items())],
            "missing_after": dict(self.missing_after),
            "dropped_columns": list(self.dropped_columns),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per action: kind (dropped row / coerced value), column, reason, count."""
        import pandas as pd

        records = [{"kind": "dropped row", "column": "", "reason": reason, "count": count}
                   for reason, count in self.dropped.items()]
        records += [{"kind": "coerced value", "column": column, "reason": reason, "count": count}
                    for (column, reason), count in sorted(self.coerced.items())]
        return pd.DataFrame(records, columns=["kind", "column", "reason", "count"])


def clean_loans(raw: pd.DataFrame, config: DatasetConfig) -> tuple[pd.DataFrame, CleaningReport]:
    """The canonical loan frame (Lending Club configs) or the typed generic frame, and the report."""
    report = CleaningReport(rows_in=len(raw))
    frame = _drop_non_loan_rows(raw, config, report)
    if config.is_lending_club:
        frame = _clean_lending_club_values(frame, config, report)
    else:
        frame = _clean_generic_values(frame, config, report)
    frame = frame.reset_index(drop=True)
    report.rows_out = len(frame)
    report.missing_after = {column: int(count) for column, count in frame.isna().sum().items()
                            if count and column in _reported_columns(config)}
    report.check_balanced()
    return frame, report


def _reported_columns(config: DatasetConfig) -> set[str]:
    if config.is_lending_club:
        return set(CANONICAL_COLUMNS)
    return set(config.features) | {APPLICATION_ID, config.target_column}


def columns_read_as_text(config: DatasetConfig) -> set[str]:
    """The raw columns this cleaner parses itself: read them as text, dirt included."""
    named = {config.id_column, config.target_column, config.customer_id_column,
             config.date_column} | set(config.missing_values)
    if config.is_lending_club:
        named |= set(_LENDING_CLUB_TEXT_INPUTS)
    else:
        named |= set(config.features)
    return {column for column in named if column}


# ---------------------------------------------------------------- structural pass

def _drop_non_loan_rows(raw: pd.DataFrame, config: DatasetConfig,
                        report: CleaningReport) -> pd.DataFrame:
    import numpy as np

    drop_reason = np.full(len(raw), "", dtype=object)

    def flag(mask: npt.ArrayLike, reason: str) -> None:
        fresh = np.asarray(mask, dtype=bool) & (drop_reason == "")
        drop_reason[fresh] = reason

    flag(_blank_or_summary_lines(raw, config), "blank_or_summary_line")
    flag(raw.duplicated(keep="first").to_numpy(), "exact_duplicate")
    ids = raw[config.id_column].fillna("").astype(str).str.strip()
    flag(ids.eq("").to_numpy() | ids.str.lower().isin(normalize.PLACEHOLDER_TOKENS).to_numpy(),
         "missing_application_id")
    alive = drop_reason == ""
    repeated = np.zeros(len(raw), dtype=bool)
    repeated[alive] = ids[alive].duplicated(keep="first").to_numpy()
    flag(repeated, "duplicate_application_id_conflicting_content")

    for reason, count in Counter(drop_reason[drop_reason != ""]).items():
        report.drop(reason, count)
    frame = raw.loc[drop_reason == ""].copy()
    frame[config.id_column] = ids[drop_reason == ""]
    return frame


def _blank_or_summary_lines(raw: pd.DataFrame, config: DatasetConfig) -> npt.NDArray[np.bool_]:
    """Lines with no outcome and almost nothing else: LC's footer totals, section titles, blanks."""
    import numpy as np

    target_blank = raw[config.target_column].fillna("").astype(str).str.strip().eq("").to_numpy()
    result = np.zeros(len(raw), dtype=bool)
    if target_blank.any():
        candidates = raw.loc[target_blank]
        filled = candidates.apply(lambda column: column.fillna("").astype(str).str.strip().ne("")
                                  ).sum(axis=1)
        result[np.flatnonzero(target_blank)] = (filled <= 2).to_numpy()
    return result


# ---------------------------------------------------------------- column parsers

def _text(frame: pd.DataFrame, column: str, config: DatasetConfig,
          report: CleaningReport) -> pd.Series:
    """Stripped text, with blanks and placeholder tokens ('n/a', 'NULL', ...) as missing."""
    import numpy as np
    import pandas as pd

    if column not in frame:
        raise ValueError(f"Column {column!r} (needed by dataset config {config.name!r}) "
                         "is not in the file.")
    # Work on the distinct values only: a million rows hold a few thousand spellings.
    codes, distinct = pd.factorize(frame[column].to_numpy(dtype=object))
    # A frame read without dtype=str may hold numbers: read them as their text.
    stripped = pd.Index([v if isinstance(v, str) else str(v) for v in distinct],
                        dtype=object).str.strip()
    placeholders = set(normalize.PLACEHOLDER_TOKENS) | {v.lower() for v in
                                                        config.missing_values.get(column, ())}
    is_placeholder = np.asarray(stripped.str.lower().isin(placeholders), dtype=bool)
    occurrences = np.bincount(codes[codes >= 0], minlength=len(distinct))
    report.coerce(column, "placeholder_to_missing", int(occurrences[is_placeholder].sum()))
    cleaned = stripped.to_numpy(dtype=object)
    cleaned[is_placeholder | np.asarray(stripped == "", dtype=bool)] = np.nan
    values = np.append(cleaned, np.nan)[codes]  # code -1 (missing) takes the last slot
    return pd.Series(values, index=frame.index, dtype=object)


def _numeric(text: pd.Series, column: str, report: CleaningReport) -> pd.Series:
    import pandas as pd

    numbers = pd.to_numeric(text, errors="coerce")
    failed = numbers.isna() & text.notna()
    if failed.any():
        # The slow, shared parser only for the few values the vectorised one rejects.
        numbers[failed] = text[failed].map(normalize.parse_number).astype("float64")
        still_failed = numbers.isna() & text.notna()
        report.coerce(column, "unparseable_to_missing", int(still_failed.sum()))
    return numbers.astype("float64")


def _mapped(text: pd.Series, column: str, parse: Callable[[object], object],
            report: CleaningReport, count_changes: bool = False) -> pd.Series:
    """Apply a per-value parser once per distinct value, count failures (and changes)."""
    distinct = text.dropna().unique()
    lookup = {value: parse(value) for value in distinct}
    parsed = text.map(lookup)
    failed = parsed.isna() & text.notna()
    report.coerce(column, "unparseable_to_missing", int(failed.sum()))
    if count_changes:
        changed = {value for value, result in lookup.items()
                   if result is not None and result != value}
        report.coerce(column, "case_or_whitespace_normalised", int(text.isin(changed).sum()))
    return parsed


def _dates(text: pd.Series, column: str, report: CleaningReport) -> pd.Series:
    import pandas as pd

    lookup = {value: normalize.parse_date(value) for value in text.dropna().unique()}
    parsed = pd.to_datetime(text.map(lookup)).astype("datetime64[ns]")
    report.coerce(column, "unparseable_date_to_missing", int((parsed.isna() & text.notna()).sum()))
    return parsed


def _set_missing(values: pd.Series, mask: pd.Series, column: str, reason: str,
                 report: CleaningReport) -> pd.Series:
    import numpy as np

    mask = mask & values.notna()
    report.coerce(column, reason, int(mask.sum()))
    return values.mask(mask, np.nan)


# ---------------------------------------------------------------- Lending Club value pass

def _clean_lending_club_values(frame: pd.DataFrame, config: DatasetConfig,
                               report: CleaningReport) -> pd.DataFrame:
    import numpy as np

    limits = config.cleaning
    out = frame.drop(columns=[c for c in frame.columns if c in CANONICAL_COLUMNS])
    out.insert(0, APPLICATION_ID, frame[config.id_column].astype(str))
    if config.customer_id_column and config.customer_id_column in frame:
        out.insert(1, CUSTOMER_ID, _text(frame, config.customer_id_column, config, report))
    else:
        out.insert(1, CUSTOMER_ID, out[APPLICATION_ID])
    out = out.drop(columns=[c for c in (config.id_column, config.customer_id_column)
                            if c and c in out and c not in (APPLICATION_ID, CUSTOMER_ID)])

    def text(column: str) -> pd.Series:
        return _text(frame, column, config, report)

    out["issue_d"] = _dates(text("issue_d"), "issue_d", report)
    out["loan_amnt"] = _numeric(text("loan_amnt"), "loan_amnt", report)
    out["term"] = _mapped(text("term"), "term", normalize.parse_term, report)
    for column, normaliser in _CATEGORICAL_NORMALISERS.items():
        out[column] = _mapped(text(column), column, normaliser, report, count_changes=True)
    out["emp_length"] = _mapped(text("emp_length"), "emp_length", normalize.parse_emp_length,
                                report).astype("float64")

    income = _numeric(text("annual_inc"), "annual_inc", report)
    income = _set_missing(income, income <= 0, "annual_inc", "non_positive_to_missing", report)
    out["annual_inc"] = _set_missing(income, income > limits.annual_inc_max, "annual_inc",
                                     "above_max_to_missing", report)

    for column in BUREAU_COUNT_COLUMNS:
        values = _numeric(text(column), column, report)
        out[column] = _set_missing(values, values < 0, column, "negative_to_missing", report)
    utilisation = _mapped(text("revol_util"), "revol_util", normalize.parse_percent,
                          report).astype("float64")
    utilisation = _set_missing(utilisation, utilisation < 0, "revol_util",
                               "negative_to_missing", report)
    above = utilisation > limits.revol_util_max
    report.coerce("revol_util", "capped_at_max", int(above.sum()))
    out["revol_util"] = utilisation.clip(upper=limits.revol_util_max)
    dti = _mapped(text("dti"), "dti", normalize.parse_percent, report).astype("float64")
    dti = _set_missing(dti, dti < 0, "dti", "negative_to_missing", report)
    out["dti"] = _set_missing(dti, dti > limits.dti_max, "dti", "above_max_to_missing", report)
    out["monthly_debt"] = out["dti"] * out["annual_inc"] / 1200.0

    earliest = _dates(text("earliest_cr_line"), "earliest_cr_line", report)
    out["earliest_cr_line"] = _set_missing(earliest, earliest > out["issue_d"],
                                           "earliest_cr_line", "after_issue_d_to_missing", report)

    out["int_rate"] = _mapped(text("int_rate"), "int_rate", normalize.parse_percent,
                              report).astype("float64")
    out["installment"] = _numeric(text("installment"), "installment", report)
    for column in ("grade", "sub_grade"):
        out[column] = text(column).str.upper()
    out["loan_status"] = text(config.target_column).str.replace(r"\s+", " ", regex=True)

    drop_reason = np.full(len(out), "", dtype=object)
    for mask, reason in ((out["issue_d"].isna(), "unparseable_issue_d"),
                         (~(out["loan_amnt"] > 0), "missing_or_non_positive_loan_amnt"),
                         (out["term"].isna(), "term_not_36_or_60_months")):
        drop_reason[mask.to_numpy() & (drop_reason == "")] = reason
    for reason, count in Counter(drop_reason[drop_reason != ""]).items():
        report.drop(reason, count)
    out = out.loc[drop_reason == ""]
    out["term"] = out["term"].astype("int64")
    ordered = [c for c in CANONICAL_COLUMNS if c in out] + [c for c in out if c not in CANONICAL_COLUMNS]
    return out[ordered]


# ---------------------------------------------------------------- generic value pass

def _clean_generic_values(frame: pd.DataFrame, config: DatasetConfig,
                          report: CleaningReport) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, APPLICATION_ID, frame[config.id_column].astype(str))
    if config.customer_id_column:
        out.insert(1, CUSTOMER_ID, _text(frame, config.customer_id_column, config, report))
    for column, kind in config.features.items():
        values = _text(frame, column, config, report)
        if kind == "numeric":
            out[column] = _numeric(values, column, report)
        else:
            out[column] = _unify_case_variants(values, column, report)
    out[config.target_column] = _text(frame, config.target_column, config, report)
    if config.date_column:
        dates = _dates(_text(frame, config.date_column, config, report), config.date_column, report)
        unusable = dates.isna()
        report.drop(f"unparseable_{config.date_column}", int(unusable.sum()))
        out[config.date_column] = dates
        out = out.loc[~unusable]
    return out


def _unify_case_variants(values: pd.Series, column: str, report: CleaningReport) -> pd.Series:
    """Collapse whitespace and spell each case-variant group ('rent', 'Rent') like its commonest member."""
    collapsed = values.str.replace(r"\s+", " ", regex=True)
    counts = collapsed.value_counts()
    spelling: dict[str, str] = {}
    for value in counts.index:  # most frequent first, so it names the group
        spelling.setdefault(value.casefold(), value)
    unified = collapsed.map(lambda value: spelling.get(value.casefold()) if isinstance(value, str)
                            else value)
    report.coerce(column, "case_or_whitespace_normalised",
                  int((unified.notna() & unified.ne(values)).sum()))
    return unified
