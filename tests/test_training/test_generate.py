"""The generated loan file looks and behaves like the Lending Club 2007-2014 file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from training.generate import BUREAU_COLUMNS, generate_loan_files

LC_COLUMNS = [
    "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate",
    "installment", "grade", "sub_grade", "emp_title", "emp_length", "home_ownership",
    "annual_inc", "verification_status", "issue_d", "loan_status", "pymnt_plan", "purpose",
    "title", "zip_code", "addr_state", "dti", "delinq_2yrs", "earliest_cr_line",
    "inq_last_6mths", "mths_since_last_delinq", "mths_since_last_record", "open_acc", "pub_rec",
    "revol_bal", "revol_util", "total_acc", "initial_list_status", "out_prncp", "out_prncp_inv",
    "total_pymnt", "total_pymnt_inv", "total_rec_prncp", "total_rec_int", "total_rec_late_fee",
    "recoveries", "collection_recovery_fee", "last_pymnt_d", "last_pymnt_amnt", "next_pymnt_d",
    "last_credit_pull_d", "collections_12_mths_ex_med", "policy_code", "application_type",
    "acc_now_delinq", "tot_coll_amt", "tot_cur_bal", "total_rev_hi_lim",
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate_loan_files(rows=20_000, seed=11, out_dir=out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def loans(generated: Path) -> pd.DataFrame:
    return pd.read_csv(generated / "loans.csv", dtype=str, keep_default_na=False)


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, 3), (second, 3), (other, 4)):
        generate_loan_files(rows=2_000, seed=seed, out_dir=out, show_progress=False)
    for name in ("loans.csv", "bureau.csv"):
        assert _digest(first / name) == _digest(second / name)
        assert _digest(first / name) != _digest(other / name)


def test_has_the_lending_club_columns_and_formats(loans: pd.DataFrame) -> None:
    assert list(loans.columns) == LC_COLUMNS
    assert len(loans) == 20_000
    assert loans["term"].value_counts().index[:2].tolist() in ([" 36 months", " 60 months"],)
    assert loans["issue_d"].str.fullmatch(r"[A-Z][a-z]{2}-\d{2}").mean() > 0.99
    assert loans["earliest_cr_line"].str.fullmatch(r"[A-Z][a-z]{2}-\d{2}").mean() > 0.99
    assert {"10+ years", "< 1 year", "3 years", "n/a"} <= set(loans["emp_length"])
    assert loans["zip_code"].str.fullmatch(r"\d{3}xx").all()
    years = loans["issue_d"].str[-2:].value_counts()
    assert set(years.index) >= {f"{y:02d}" for y in range(7, 15)}
    assert years["14"] > years["12"] > years["10"] > years["08"]  # volume grows over time
    assert {"Fully Paid", "Charged Off", "Current", "Late (31-120 days)",
            "Does not meet the credit policy. Status:Fully Paid"} <= set(loans["loan_status"])


def test_resolved_bad_rate_is_about_eleven_percent(loans: pd.DataFrame) -> None:
    status = loans["loan_status"].str.strip()
    bad = status.isin(["Charged Off", "Default", "Late (31-120 days)",
                       "Does not meet the credit policy. Status:Charged Off"])
    good = status.isin(["Fully Paid", "Does not meet the credit policy. Status:Fully Paid"])
    assert 0.08 <= bad.sum() / (bad.sum() + good.sum()) <= 0.14


def test_contains_the_dirt_a_cleaner_must_handle(loans: pd.DataFrame) -> None:
    assert loans.duplicated().sum() >= 150  # ~1 % exact duplicates
    assert loans["id"].duplicated().sum() > loans.duplicated().sum()  # plus conflicting ids
    assert loans["revol_util"].str.endswith("%").any()
    assert loans["int_rate"].str.endswith("%").any()
    assert (loans["mths_since_last_delinq"] == "").mean() > 0.4
    assert loans["annual_inc"].isin(["", "n/a"]).any()
    assert (pd.to_numeric(loans["annual_inc"], errors="coerce") >= 9_999_999).any()
    assert set(loans["home_ownership"]) - {"RENT", "OWN", "MORTGAGE", "OTHER"}  # mixed case


def test_post_origination_columns_follow_the_outcome(loans: pd.DataFrame) -> None:
    status = loans["loan_status"].str.strip()
    number = lambda column: pd.to_numeric(loans[column], errors="coerce")  # noqa: E731
    paid = status == "Fully Paid"
    assert (number("total_rec_prncp")[paid] == number("funded_amnt")[paid]).all()
    assert (number("out_prncp")[paid] == 0).all()
    charged_off = status == "Charged Off"
    assert (number("recoveries")[charged_off] > 0).mean() > 0.5
    assert (number("recoveries")[paid] == 0).all()
    assert (loans["next_pymnt_d"][status == "Current"] != "").all()


def test_bureau_has_one_row_per_customer_from_the_latest_loan(generated: Path,
                                                              loans: pd.DataFrame) -> None:
    bureau = pd.read_csv(generated / "bureau.csv", dtype={"customer_id": str})
    assert list(bureau.columns) == list(BUREAU_COLUMNS)
    assert bureau["customer_id"].is_unique
    assert set(bureau["customer_id"]) == set(loans["member_id"])
    assert loans["member_id"].nunique() < loans["id"].nunique()  # some customers borrow again
    assert bureau["as_of"].str.fullmatch(r"\d{4}-\d{2}-01T00:00:00Z").all()
    assert bureau["earliest_cr_line"].str.fullmatch(r"\d{4}-\d{2}-01").all()
    assert pd.to_datetime(bureau["earliest_cr_line"]).lt(
        pd.to_datetime(bureau["as_of"]).dt.tz_localize(None)).all()


def test_rejects_a_row_count_too_small(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 100"):
        generate_loan_files(rows=10, seed=1, out_dir=tmp_path, show_progress=False)


def test_bureau_values_are_those_of_the_customers_application(generated: Path,
                                                              loans: pd.DataFrame) -> None:
    bureau = pd.read_csv(generated / "bureau.csv", dtype={"customer_id": str}).set_index("customer_id")
    one_loan = loans[~loans["member_id"].duplicated(keep=False)]
    for column in ("open_acc", "revol_bal", "inq_last_6mths"):
        in_loan_file = pd.to_numeric(one_loan[column], errors="coerce")
        in_bureau = bureau.loc[one_loan["member_id"], column].to_numpy()
        readable = in_loan_file.notna().to_numpy()
        assert readable.mean() > 0.99
        assert (in_bureau[readable] == in_loan_file.to_numpy()[readable]).all()
