"""Each kind of dirt is cleaned as documented, and counted."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features.normalize import parse_date
from training.cleaning import CANONICAL_COLUMNS, clean_loans
from training.datasets import DatasetConfig, load_dataset_config

LENDING_CLUB = load_dataset_config("lending_club")

CLEAN_ROW = {
    "id": "1", "member_id": "100", "loan_amnt": "10000", "term": " 36 months",
    "int_rate": "13.5", "installment": "339.37", "grade": "C", "sub_grade": "C1",
    "emp_length": "10+ years", "home_ownership": "RENT", "annual_inc": "60000",
    "verification_status": "Verified", "issue_d": "Dec-11", "loan_status": "Fully Paid",
    "purpose": "debt_consolidation", "addr_state": "CA", "dti": "12.0", "delinq_2yrs": "0",
    "earliest_cr_line": "Jan-98", "inq_last_6mths": "1", "mths_since_last_delinq": "",
    "open_acc": "8", "pub_rec": "0", "revol_bal": "5000", "revol_util": "53.4%",
    "total_acc": "20", "recoveries": "0.0",
}


def raw_frame(*changes: dict[str, str]) -> pd.DataFrame:
    """One clean row per change set, each with its own id unless the change names one."""
    rows = [{**CLEAN_ROW, "id": str(index + 1), **change} for index, change in enumerate(changes)]
    return pd.DataFrame(rows, dtype=str)


def clean(*changes: dict[str, str]):
    return clean_loans(raw_frame(*changes), LENDING_CLUB)


def test_clean_row_becomes_the_canonical_frame() -> None:
    frame, report = clean({})
    row = frame.iloc[0]
    assert list(frame.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    assert (row["application_id"], row["customer_id"]) == ("1", "100")
    assert row["term"] == 36 and frame["term"].dtype == "int64"
    assert row["emp_length"] == 10.0
    assert row["revol_util"] == 53.4 and row["int_rate"] == 13.5
    assert row["issue_d"] == pd.Timestamp("2011-12-01")
    assert row["earliest_cr_line"] == pd.Timestamp("1998-01-01")
    assert row["monthly_debt"] == pytest.approx(12.0 * 60000 / 1200)
    assert math.isnan(row["mths_since_last_delinq"])
    assert row["recoveries"] == "0.0"  # post-origination columns kept as read
    assert report.rows_out == 1 and report.dropped == {} and report.coerced == {}


def test_duplicates_are_dropped_and_counted() -> None:
    frame, report = clean({"id": "7"}, {"id": "7"}, {"id": "7", "annual_inc": "61000"}, {"id": "8"})
    assert frame["application_id"].tolist() == ["7", "8"]
    assert frame["annual_inc"].iloc[0] == 60000  # the first of the conflicting rows is kept
    assert report.dropped == {"exact_duplicate": 1, "duplicate_application_id_conflicting_content": 1}


def test_placeholders_become_missing_and_are_counted_per_column() -> None:
    frame, report = clean({"annual_inc": "n/a", "revol_util": "NULL", "dti": ""},
                          {"annual_inc": "  ", "emp_length": "n/a"})
    assert frame["annual_inc"].isna().all()
    assert frame["revol_util"].isna().iloc[0] and frame["emp_length"].isna().iloc[1]
    assert report.coerced[("annual_inc", "placeholder_to_missing")] == 1
    assert report.coerced[("revol_util", "placeholder_to_missing")] == 1
    assert report.coerced[("emp_length", "placeholder_to_missing")] == 1
    assert ("dti", "placeholder_to_missing") not in report.coerced  # a blank is simply missing
    assert math.isnan(frame["monthly_debt"].iloc[0])


def test_formats_and_mixed_case_are_normalised() -> None:
    frame, report = clean({"term": "60 Months", "emp_length": "< 1 year", "int_rate": " 7.9 %",
                           "home_ownership": " mortgage", "verification_status": "SOURCE VERIFIED",
                           "purpose": "Credit Card", "addr_state": "ny "})
    row = frame.iloc[0]
    assert (row["term"], row["emp_length"], row["int_rate"]) == (60, 0.0, 7.9)
    assert (row["home_ownership"], row["verification_status"]) == ("MORTGAGE", "Source Verified")
    assert (row["purpose"], row["addr_state"]) == ("credit_card", "NY")
    for column in ("home_ownership", "verification_status", "purpose", "addr_state"):
        assert report.coerced[(column, "case_or_whitespace_normalised")] == 1


def test_rows_without_issue_date_amount_or_term_are_dropped_with_reason() -> None:
    frame, report = clean({}, {"issue_d": "Dce-11"}, {"issue_d": "n/a"}, {"loan_amnt": "-500"},
                          {"loan_amnt": "NULL"}, {"term": " 48 months"})
    assert len(frame) == 1
    assert report.dropped == {"unparseable_issue_d": 2, "missing_or_non_positive_loan_amnt": 2,
                              "term_not_36_or_60_months": 1}
    assert report.rows_in == report.rows_out + sum(report.dropped.values())


def test_impossible_values_and_outliers_are_set_missing_or_capped() -> None:
    frame, report = clean({"annual_inc": "0", "revol_util": "-2", "dti": "999"},
                          {"annual_inc": "9999999", "revol_util": "412.5%", "delinq_2yrs": "-1"},
                          {"annual_inc": "-40000", "earliest_cr_line": "Jan-15"})
    assert frame["annual_inc"].isna().all()
    assert math.isnan(frame["revol_util"].iloc[0]) and frame["revol_util"].iloc[1] == 150.0
    assert math.isnan(frame["dti"].iloc[0]) and math.isnan(frame["delinq_2yrs"].iloc[1])
    assert pd.isna(frame["earliest_cr_line"].iloc[2])
    assert report.coerced[("annual_inc", "non_positive_to_missing")] == 2
    assert report.coerced[("annual_inc", "above_max_to_missing")] == 1
    assert report.coerced[("revol_util", "negative_to_missing")] == 1
    assert report.coerced[("revol_util", "capped_at_max")] == 1
    assert report.coerced[("dti", "above_max_to_missing")] == 1
    assert report.coerced[("delinq_2yrs", "negative_to_missing")] == 1
    assert report.coerced[("earliest_cr_line", "after_issue_d_to_missing")] == 1
    assert report.rows_out == 3


def test_unparseable_numbers_and_dates_are_counted() -> None:
    frame, report = clean({"open_acc": "eight", "earliest_cr_line": "someday", "revol_bal": "1,200"})
    assert math.isnan(frame["open_acc"].iloc[0]) and pd.isna(frame["earliest_cr_line"].iloc[0])
    assert frame["revol_bal"].iloc[0] == 1200.0
    assert report.coerced[("open_acc", "unparseable_to_missing")] == 1
    assert report.coerced[("earliest_cr_line", "unparseable_date_to_missing")] == 1


def test_summary_lines_of_published_files_are_dropped() -> None:
    raw = raw_frame({}, {})
    footer = dict.fromkeys(raw.columns, "") | {"id": "Total amount funded in policy code 1: 123"}
    raw = pd.concat([raw, pd.DataFrame([footer])], ignore_index=True)
    frame, report = clean_loans(raw, LENDING_CLUB)
    assert len(frame) == 2 and report.dropped == {"blank_or_summary_line": 1}


def test_frame_read_with_pandas_defaults_cleans_the_same() -> None:
    raw = raw_frame({}, {"id": "2", "annual_inc": "n/a"})
    typed = raw.copy()
    typed["loan_amnt"] = [10000.0, 10000.0]
    typed.loc[1, "mths_since_last_delinq"] = float("nan")
    typed.loc[0, "loan_status"] = "Fully Paid"
    from_text, _ = clean_loans(raw, LENDING_CLUB)
    from_typed, _ = clean_loans(typed, LENDING_CLUB)
    pd.testing.assert_frame_equal(from_text, from_typed)


def test_report_tables_for_the_html_report() -> None:
    _, report = clean({"id": "1"}, {"id": "1"}, {"id": "2", "annual_inc": "n/a"})
    table = report.to_frame()
    assert list(table.columns) == ["kind", "column", "reason", "count"]
    assert {"dropped row", "coerced value"} == set(table["kind"])
    as_dict = report.to_dict()
    assert as_dict["rows_in"] == 3 and as_dict["rows_out"] == 2 and as_dict["rows_dropped"] == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("Dec-11", "2011-12-01"), ("Jan-62", "1962-01-01"), ("Mar-2009", "2009-03-01"),
    ("2013-05-01", "2013-05-01"), ("Dce-11", None), ("", None),
])
def test_parse_date_reads_loan_file_formats(text: str, expected: str | None) -> None:
    parsed = parse_date(text)
    assert (parsed.strftime("%Y-%m-%d") if parsed else None) == expected


def test_generic_config_coerces_declared_types_and_unifies_case() -> None:
    config = DatasetConfig(name="book", id_column="ref", target_column="outcome",
                           bad_values=("bad",), good_values=("good",),
                           features={"amount": "numeric", "region": "categorical"},
                           missing_values={"amount": ("-1",)}, date_column="applied")
    raw = pd.DataFrame({"ref": ["a", "b", "c", "c", "d"],
                        "amount": ["10", "-1", "ten", "5", "7"],
                        "region": ["North", "north ", "NORTH", "South", " South"],
                        "outcome": ["good", "bad", "good", "good", "bad"],
                        "applied": ["2020-01-05", "2020-02-05", "2020-03-05", "2020-03-05", "later"]},
                       dtype=str)
    frame, report = clean_loans(raw, config)
    assert frame["application_id"].tolist() == ["a", "b", "c"]
    assert frame["amount"].tolist()[0] == 10.0 and frame["amount"].isna().tolist()[1:] == [True, True]
    assert frame["region"].tolist() == ["North", "North", "North"]
    assert report.dropped == {"duplicate_application_id_conflicting_content": 1, "unparseable_applied": 1}
    assert report.coerced[("amount", "placeholder_to_missing")] == 1
    assert report.coerced[("amount", "unparseable_to_missing")] == 1
    assert report.rows_in == report.rows_out + sum(report.dropped.values())


def test_generated_file_cleans_with_every_row_accounted_for(tmp_path) -> None:
    from training.datasets import load_raw
    from training.generate import generate_loan_files

    generate_loan_files(rows=3_000, seed=5, out_dir=tmp_path, show_progress=False)
    config = load_dataset_config("generated")
    frame, report = clean_loans(load_raw(tmp_path / "loans.csv", config), config)
    assert report.rows_in == 3_000 == report.rows_out + sum(report.dropped.values())
    assert report.dropped["exact_duplicate"] == 30
    assert frame["application_id"].is_unique
    assert set(frame["home_ownership"].dropna()) <= {"RENT", "OWN", "MORTGAGE", "OTHER", "NONE", "ANY"}
    assert frame["revol_util"].max() <= 150 and frame["annual_inc"].max() < 9_999_999
