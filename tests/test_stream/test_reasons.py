"""Reason codes: stable codes, the largest positive factors first, plain-language texts."""

from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from features.definitions import (
    LENDING_CLUB_FEATURES,
    OPTIONAL_LENDING_CLUB_FEATURES,
    PRICING_FEATURES,
    REASON_CODES,
    reason_code,
)
from onnx_models.card import CardFeature
from onnx_models.policy import Calibration
from stream.reasons import MAX_REASONS, MISSING_BUREAU_CODE, ReasonBuilder

FEATURES = [
    {"name": "revol_util", "type": "numeric", "description": "High utilisation of revolving credit"},
    {"name": "dti", "type": "numeric", "description": "High existing debt relative to income"},
    {"name": "purpose", "type": "categorical", "description": "Purpose of the loan",
     "categories": ["car", "debt_consolidation", "small_business"]},
    {"name": "inq_last_6mths", "type": "numeric", "description": "Many recent credit inquiries"},
    {"name": "term", "type": "numeric", "description": "Long repayment term"},
    {"name": "pub_rec", "type": "numeric", "description": "Derogatory public records"},
]
VALUES = np.array([90.0, 30.0, 2.0, 3.0, 60.0, 1.0], dtype=np.float32)


def _builder(slope: float = 1.0) -> ReasonBuilder:
    return ReasonBuilder([CardFeature.model_validate(entry) for entry in FEATURES], slope)


def test_every_lending_club_feature_has_its_own_fixed_code():
    names = [spec.name for spec in
             LENDING_CLUB_FEATURES + OPTIONAL_LENDING_CLUB_FEATURES + PRICING_FEATURES]
    assert set(names) <= set(REASON_CODES)
    codes = list(REASON_CODES.values())
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"R\d\d", code) for code in codes)
    assert MISSING_BUREAU_CODE not in codes
    # Codes are part of the decision contract: a few pinned so a reorder cannot slip through.
    assert (REASON_CODES["loan_amnt"], REASON_CODES["revol_util"],
            REASON_CODES["purpose"]) == ("R01", "R09", "R20")


def test_unknown_feature_gets_a_deterministic_code_of_its_own():
    code = reason_code("EXT_SOURCE_2")
    assert re.fullmatch(r"RX[0-9A-F]{4}", code)
    assert code == reason_code("EXT_SOURCE_2")
    assert code != reason_code("EXT_SOURCE_3")
    assert reason_code("revol_util") == "R09"


def test_reasons_are_the_largest_positive_contributions_most_important_first():
    contributions = np.array([0.30, -0.50, 0.10, 0.45, 0.0, 0.05])
    reasons = _builder().reasons(contributions, VALUES)
    assert [reason.feature for reason in reasons] == ["inq_last_6mths", "revol_util",
                                                      "purpose", "pub_rec"]
    assert [reason.impact for reason in reasons] == [0.45, 0.3, 0.1, 0.05]
    assert [reason.code for reason in reasons] == ["R12", "R09", "R20", "R13"]
    assert reasons[1].text == "High utilisation of revolving credit"


def test_non_positive_contributions_are_never_listed_when_a_positive_one_exists():
    reasons = _builder().reasons(np.array([-0.3, 0.02, -0.1, 0.0, -0.2, -0.4]), VALUES)
    assert [reason.feature for reason in reasons] == ["dti"]


def test_without_any_positive_contribution_the_largest_one_is_given():
    reasons = _builder().reasons(np.array([-0.3, -0.02, -0.1, -0.5, -0.2, -0.4]), VALUES)
    assert [(reason.feature, reason.impact) for reason in reasons] == [("dti", -0.02)]


def test_categorical_reason_names_the_category_and_missing_values_are_said():
    values = VALUES.copy()
    reasons = _builder().reasons(np.array([0, 0, 0.2, 0, 0, 0.0]), values)
    assert reasons[0].text == "Purpose of the loan: small_business"
    values[[0, 2]] = np.nan
    reasons = _builder().reasons(np.array([0.3, 0, 0.2, 0, 0, 0.0]), values)
    assert [reason.text for reason in reasons] == [
        "High utilisation of revolving credit: not available",
        "Purpose of the loan: not available"]


def test_missing_bureau_data_comes_first_and_keeps_at_most_four_reasons():
    reasons = _builder().reasons(np.array([0.3, 0.2, 0.1, 0.4, 0.5, 0.6]), VALUES,
                                 bureau_missing=True)
    assert reasons[0].code == MISSING_BUREAU_CODE
    assert reasons[0].text == "Credit bureau information unavailable"
    assert reasons[0].impact == 0.0
    assert [reason.feature for reason in reasons[1:]] == ["pub_rec", "term", "inq_last_6mths"]
    alone = _builder().reasons(-np.ones(6), VALUES, bureau_missing=True)
    assert [reason.code for reason in alone] == [MISSING_BUREAU_CODE]


def test_impact_is_in_calibrated_log_odds():
    assert Calibration(method="platt", slope=1.5, intercept=-2.0).log_odds_factor == 1.5
    assert Calibration(method="none").log_odds_factor == 1.0
    reasons = _builder(slope=1.5).reasons(np.array([0.123456, 0, 0, 0, 0, 0.0]), VALUES)
    assert reasons[0].impact == round(1.5 * 0.123456, 4)


@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=6, max_size=6), st.booleans())
def test_every_adverse_decision_gets_one_to_four_ordered_reasons(contributions: list[float],
                                                                 bureau_missing: bool):
    reasons = _builder().reasons(np.array(contributions), VALUES, bureau_missing)
    assert 1 <= len(reasons) <= MAX_REASONS
    factors = [reason for reason in reasons if reason.code != MISSING_BUREAU_CODE]
    impacts = [reason.impact for reason in factors]
    assert impacts == sorted(impacts, reverse=True)
    positive = sorted((value for value in contributions if value > 0), reverse=True)
    if positive:
        assert all(reason.impact >= 0 for reason in factors)
        assert len(factors) == min(len(positive), MAX_REASONS - bureau_missing)
        assert math.isclose(factors[0].impact, round(positive[0], 4))
    elif not bureau_missing:
        assert len(factors) == 1 and math.isclose(factors[0].impact,
                                                  round(max(contributions), 4))
