"""The worker's numpy records path gives the frame path's float32 rows bit for bit, for any
mix of values the worker can hold (and hands what it cannot reproduce to the frame path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.definitions import FeatureEncoder
from features.records import records_matrix

NUMERIC = ("loan_amnt", "term", "annual_inc", "emp_length", "delinq_2yrs", "inq_last_6mths",
           "open_acc", "total_acc", "pub_rec", "revol_bal", "revol_util",
           "mths_since_last_delinq", "monthly_debt")
numbers = st.one_of(st.none(), st.just(float("nan")), st.just(0.0), st.just(-1.0),
                    st.floats(-1e9, 1e12, allow_nan=False), st.integers(-10, 10**9),
                    st.just(float("inf")))
categories = st.one_of(st.none(), st.just(float("nan")),
                       st.sampled_from(["RENT", " rent ", "Own", "MORTGAGE", "other", "car",
                                        "debt_consolidation", "Debt_Consolidation  ", ""]),
                       st.integers(0, 3))
dates = st.one_of(st.none(),
                  st.datetimes(datetime(1950, 1, 1), datetime(2030, 1, 1),
                               timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                                                          timezone(timedelta(hours=9))])),
                  st.dates(datetime(1950, 1, 1).date(), datetime(2030, 1, 1).date()).map(str))


@st.composite
def records(draw: st.DrawFn) -> dict:
    record = {name: draw(numbers) for name in NUMERIC if draw(st.booleans()) or name == "term"}
    record.update(home_ownership=draw(categories), purpose=draw(categories),
                  verification_status=draw(categories), addr_state=draw(categories),
                  submitted_at=draw(dates), earliest_cr_line=draw(dates))
    return record


@pytest.fixture(scope="module")
def lending_club() -> FeatureEncoder:
    rows = [{"issue_d": pd.Timestamp("2014-06-01"), "loan_amnt": 1000.0 * (i + 1), "term": 36,
             "purpose": ("car", "debt_consolidation")[i % 2],
             "home_ownership": ("RENT", "OWN", "MORTGAGE")[i % 3], "annual_inc": 5e4,
             "verification_status": "Verified", "addr_state": "CA",
             "earliest_cr_line": "2001-02-01", "delinq_2yrs": 0.0} for i in range(12)]
    return FeatureEncoder(min_category_count=1).fit(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def generic() -> FeatureEncoder:
    rows = [{"turnover": float(i), "sector": ("retail", "farming")[i % 2]} for i in range(10)]
    return FeatureEncoder(feature_set="generic", min_category_count=1,
                          columns={"turnover": "numeric", "sector": "categorical"}).fit(
        pd.DataFrame(rows))


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(records(), min_size=1, max_size=6))
def test_lending_club_records_give_the_frame_path_rows(lending_club: FeatureEncoder,
                                                       batch: list[dict]) -> None:
    fast = records_matrix(lending_club, batch)
    assert fast is not None  # every value above is one the worker holds
    np.testing.assert_array_equal(fast, lending_club.transform(pd.DataFrame.from_records(batch)))


@settings(max_examples=100, deadline=None)
@given(batch=st.lists(st.fixed_dictionaries({"turnover": numbers, "sector": categories}),
                      min_size=1, max_size=6))
def test_generic_records_give_the_frame_path_rows(generic: FeatureEncoder,
                                                  batch: list[dict]) -> None:
    np.testing.assert_array_equal(records_matrix(generic, batch),
                                  generic.transform(pd.DataFrame.from_records(batch)))


@pytest.mark.parametrize("odd", [{"loan_amnt": "12000"}, {"annual_inc": True},
                                 {"earliest_cr_line": "2004-02-31"},
                                 {"earliest_cr_line": "May 2004"}])
def test_values_pandas_coerces_its_own_way_go_to_the_frame_path(lending_club: FeatureEncoder,
                                                                 odd: dict) -> None:
    record = {"loan_amnt": 12000.0, "term": 36, "annual_inc": 6e4, "submitted_at":
              datetime(2014, 6, 17, tzinfo=UTC), "earliest_cr_line": "2004-01-01", **odd}
    assert records_matrix(lending_club, [record]) is None
    np.testing.assert_array_equal(lending_club.transform_records([record]),
                                  lending_club.transform(pd.DataFrame.from_records([record])))
