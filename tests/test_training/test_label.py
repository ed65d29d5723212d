"""Outcomes map to bad / good / excluded exactly as the dataset config says."""

from __future__ import annotations

import pandas as pd
import pytest

from training.datasets import DatasetConfig, load_dataset_config
from training.label import assign_label

LENDING_CLUB = load_dataset_config("lending_club")


def statuses(*values: object) -> pd.DataFrame:
    return pd.DataFrame({"application_id": [str(i) for i in range(len(values))],
                         "loan_status": list(values)})


def test_lending_club_statuses_become_bad_good_or_excluded() -> None:
    frame, report = assign_label(statuses(
        "Charged Off", "Default", "Late (31-120 days)",
        "Does not meet the credit policy. Status:Charged Off",
        "Fully Paid", "Does not meet the credit policy. Status:Fully Paid",
        "Current", "In Grace Period", "Late (16-30 days)", "Issued", "Current"), LENDING_CLUB)
    assert frame["bad"].tolist() == [1, 1, 1, 1, 0, 0]
    assert frame["bad"].dtype == "int8"
    assert (report.bad, report.good, report.rows_out) == (4, 2, 6)
    assert report.indeterminate == {"Current": 2, "In Grace Period": 1, "Late (16-30 days)": 1,
                                    "Issued": 1}
    assert report.unknown == {}
    assert report.bad_rate == pytest.approx(4 / 6)


def test_case_and_spacing_do_not_change_the_label() -> None:
    frame, report = assign_label(statuses(" charged off", "FULLY  PAID", "current "), LENDING_CLUB)
    assert frame["bad"].tolist() == [1, 0]
    assert report.indeterminate == {"Current": 1}


def test_unknown_and_missing_outcomes_are_excluded_and_listed() -> None:
    frame, report = assign_label(statuses("Fully Paid", "Written off?", "Written off?", None, ""),
                                 LENDING_CLUB)
    assert len(frame) == 1
    assert report.unknown == {"Written off?": 2, "<missing>": 2}
    assert report.rows_in == 5 == report.rows_out + sum(report.unknown.values())


def test_generic_numeric_target_accepts_integral_spellings() -> None:
    config = load_dataset_config("home_credit")
    frame = pd.DataFrame({"application_id": ["1", "2", "3", "4"], "TARGET": ["1", "0", "1.0", "2"]})
    labelled, report = assign_label(frame, config)
    assert labelled["bad"].tolist() == [1, 0, 1]
    assert report.unknown == {"2": 1}


def test_configured_values_define_the_label() -> None:
    config = DatasetConfig(name="book", id_column="ref", target_column="status",
                           bad_values=("90dpd", "written_off"), good_values=("repaid",),
                           excluded_values=("open",), features={"amount": "numeric"})
    frame = pd.DataFrame({"application_id": list("abcd"),
                          "status": ["repaid", "90dpd", "open", "written_off"]})
    labelled, report = assign_label(frame, config)
    assert labelled["bad"].tolist() == [0, 1, 1]
    assert report.indeterminate == {"open": 1}
    assert report.to_dict()["bad"] == 2


def test_missing_target_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="loan_status"):
        assign_label(pd.DataFrame({"application_id": ["1"]}), LENDING_CLUB)
