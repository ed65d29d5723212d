"""The shared feature definitions: engineered values, missing values, category encoding,
and the records path the worker uses giving the same float32 rows as the frame path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.definitions import FeatureEncoder, monthly_payment


def _application(**overrides):
    row = {
        "issue_d": pd.Timestamp("2014-06-01"), "loan_amnt": 12000.0, "term": 36,
        "purpose": "debt_consolidation", "annual_inc": 60000.0, "emp_length": 4.0,
        "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "CA",
        "earliest_cr_line": pd.Timestamp("2004-01-01"), "delinq_2yrs": 0.0,
        "inq_last_6mths": 2.0, "open_acc": 8.0, "total_acc": 20.0, "pub_rec": 0.0,
        "revol_bal": 15000.0, "revol_util": 53.4, "mths_since_last_delinq": np.nan,
        "monthly_debt": 1000.0,
    }
    row.update(overrides)
    return row


@pytest.fixture
def encoder() -> FeatureEncoder:
    rows = [_application(home_ownership=h, purpose=p)
            for h in ("RENT", "OWN", "MORTGAGE") for p in ("debt_consolidation", "car")]
    return FeatureEncoder(min_category_count=1).fit(pd.DataFrame(rows))


def _values(encoder: FeatureEncoder, **overrides) -> dict[str, float]:
    frame = encoder.transform_frame(pd.DataFrame([_application(**overrides)]))
    return frame.iloc[0].to_dict()


def test_engineered_values_match_hand_computation(encoder):
    values = _values(encoder)
    assert values["credit_history_months"] == 125  # Jan 2004 → Jun 2014
    assert values["loan_to_income"] == pytest.approx(0.2)
    assert values["dti"] == pytest.approx(1000.0 / 5000.0 * 100)  # monthly debt / income
    payment = 12000 * 0.01 / (1 - 1.01 ** -36)  # 12 % reference rate, 36 months
    assert values["payment_to_income"] == pytest.approx(payment / 5000.0)
    assert values["revol_bal_to_income"] == pytest.approx(0.25)
    assert values["log_annual_inc"] == pytest.approx(math.log1p(60000))
    assert values["ever_delinquent"] == 0.0
    assert values["term"] == 36


def test_mid_month_event_date_gives_the_training_history_length(encoder):
    trained = _values(encoder)["credit_history_months"]
    served = _values(encoder, issue_d="2014-06-17T10:31:00Z",
                     earliest_cr_line="2004-01-01")["credit_history_months"]
    assert served == trained
    event = _application(submitted_at="2014-06-30T23:59:59Z")
    del event["issue_d"]
    assert encoder.transform_frame(pd.DataFrame([event]))["credit_history_months"].iloc[0] == trained


def test_missing_bureau_values_stay_missing(encoder):
    values = _values(encoder, revol_util=None, monthly_debt=np.nan, earliest_cr_line=None,
                     delinq_2yrs=np.nan, annual_inc=0.0)
    for name in ("revol_util", "dti", "credit_history_months", "ever_delinquent",
                 "loan_to_income", "log_annual_inc", "payment_to_income"):
        assert math.isnan(values[name]), name


def test_recent_delinquency_sets_the_flag_and_keeps_months(encoder):
    values = _values(encoder, mths_since_last_delinq=7.0, delinq_2yrs=1.0)
    assert values["mths_since_last_delinq"] == 7.0
    assert values["ever_delinquent"] == 1.0


def test_categories_are_sorted_codes_and_unknown_is_missing(encoder):
    assert encoder.categories_["home_ownership"] == ["MORTGAGE", "OWN", "RENT"]
    assert _values(encoder, home_ownership="OWN")["home_ownership"] == 1.0
    assert math.isnan(_values(encoder, home_ownership="SPACESHIP")["home_ownership"])
    assert math.isnan(_values(encoder, purpose=None)["purpose"])


def test_rare_categories_are_not_learnt():
    rows = [_application()] * 5 + [_application(purpose="wedding")]
    fitted = FeatureEncoder(min_category_count=2).fit(pd.DataFrame(rows))
    assert fitted.categories_["purpose"] == ["debt_consolidation"]


def test_records_path_equals_frame_path_bit_for_bit(encoder):
    rows = [_application(), _application(revol_util=None, purpose="car", term=60),
            _application(home_ownership="OTHER", mths_since_last_delinq=3.0)]
    from_frame = encoder.transform(pd.DataFrame(rows))
    from_records = encoder.transform_records(rows)
    assert from_frame.dtype == np.float32
    np.testing.assert_array_equal(from_frame, from_records)


def test_model_card_round_trip_rebuilds_the_same_encoder(encoder):
    card = encoder.to_model_card()
    rebuilt = FeatureEncoder.from_section(card)
    rows = [_application(), _application(purpose="car", annual_inc=None)]
    np.testing.assert_array_equal(encoder.transform_records(rows),
                                  rebuilt.transform_records(rows))
    names = [entry["name"] for entry in card["features"]]
    assert names == encoder.feature_names_
    assert all(entry["description"] for entry in card["features"])


def test_generic_feature_set_uses_listed_columns():
    frame = pd.DataFrame({"turnover": ["100", "x", None], "sector": ["a", "b", "a"]})
    fitted = FeatureEncoder("generic", {"turnover": "numeric", "sector": "categorical"},
                            min_category_count=1).fit(frame)
    matrix = fitted.transform(frame)
    assert matrix.shape == (3, 2)
    assert matrix[0, 0] == 100 and np.isnan(matrix[1, 0]) and np.isnan(matrix[2, 0])
    assert list(matrix[:, 1]) == [0.0, 1.0, 0.0]


def test_payment_without_interest_is_amount_over_term():
    payment = monthly_payment(pd.Series([3600.0]), pd.Series([36.0]), 0.0)
    assert payment.iloc[0] == pytest.approx(100.0)


def test_the_serving_section_round_trips_and_a_wrong_entry_says_which() -> None:
    from features.serving import LENDING_CLUB_SERVING, ServingSpec

    section = LENDING_CLUB_SERVING.to_card()
    assert ServingSpec.from_section(section, "lending_club") == LENDING_CLUB_SERVING
    fields = section["event_fields"]
    assert isinstance(fields, list) and isinstance(fields[0], dict)
    wrong_kind = {**section, "event_fields": [{**fields[0], "kind": "text"}, *fields[1:]]}
    with pytest.raises(ValueError, match="kind is 'text'"):
        ServingSpec.from_section(wrong_kind, "lending_club")
    with pytest.raises(ValueError, match=r"serving\.similar_by must be a list"):
        ServingSpec.from_section({**section, "similar_by": "purpose"}, "lending_club")
