"""The shared per-value parsers never raise, and read every spelling files and events use."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features import normalize

PARSERS = [normalize.parse_term, normalize.parse_emp_length, normalize.parse_percent,
           normalize.parse_number, normalize.normalize_home_ownership,
           normalize.normalize_verification_status, normalize.normalize_purpose,
           normalize.normalize_addr_state]
ANY_VALUE = st.one_of(st.text(), st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                      st.none(), st.booleans())


@pytest.mark.parametrize("parse", PARSERS, ids=lambda parse: parse.__name__)
@given(value=ANY_VALUE)
def test_parsers_never_raise(parse, value) -> None:
    parse(value)


@given(term=st.sampled_from([36, 60]), spaces=st.text(" ", max_size=2),
       unit=st.sampled_from(["", " months", " Months", "MONTHS", " month"]))
def test_term_round_trips_from_any_spelling(term: int, spaces: str, unit: str) -> None:
    assert normalize.parse_term(f"{spaces}{term}{unit}{spaces}") == term
    assert normalize.parse_term(term) == term and normalize.parse_term(float(term)) == term


@given(st.integers())
def test_only_36_and_60_month_terms_exist(months: int) -> None:
    assert normalize.parse_term(f"{months} months") == (months if months in (36, 60) else None)


@given(years=st.integers(1, 9))
def test_emp_length_round_trips(years: int) -> None:
    label = f"{years} year" + ("s" if years > 1 else "")
    assert normalize.parse_emp_length(label) == years
    assert normalize.parse_emp_length(label.upper()) == years
    assert normalize.parse_emp_length(years) == years


@pytest.mark.parametrize(("text", "years"), [("10+ years", 10.0), ("< 1 year", 0.0),
                                             ("<1 year", 0.0), ("n/a", None), ("", None),
                                             ("11 years", None), (-1, None), ("ten", None)])
def test_emp_length_lending_club_codes(text, years) -> None:
    assert normalize.parse_emp_length(text) == years


@given(st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 2)))
def test_percent_round_trips_with_or_without_sign(value: float) -> None:
    assert normalize.parse_percent(f"{value}%") == value
    assert normalize.parse_percent(f" {value} % ") == value
    assert normalize.parse_percent(str(value)) == value
    assert normalize.parse_percent(value) == value


@pytest.mark.parametrize("value", ["n/a", "NULL", "", "  ", None, float("nan"), "abc%", "1e999"])
def test_missing_or_bad_percent_is_none(value) -> None:
    assert normalize.parse_percent(value) is None


@given(st.sampled_from(sorted(normalize.HOME_OWNERSHIP_VALUES)),
       st.sampled_from([str.lower, str.upper, str.title, lambda s: f"  {s} "]))
def test_home_ownership_case_and_space_insensitive(value: str, respell) -> None:
    assert normalize.normalize_home_ownership(respell(value)) == value


@given(st.sampled_from(list(normalize.VERIFICATION_STATUS_VALUES.values())),
       st.sampled_from([str.lower, str.upper, lambda s: s.replace(" ", "  "), lambda s: f" {s}"]))
def test_verification_status_canonical_spelling(value: str, respell) -> None:
    assert normalize.normalize_verification_status(respell(value)) == value


@given(st.from_regex(r"[a-z]{1,8}(_[a-z]{1,8}){0,2}", fullmatch=True).filter(
    lambda purpose: not normalize.is_placeholder(purpose)))  # 'na' means "not available"
def test_purpose_snake_case_is_a_fixed_point(purpose: str) -> None:
    assert normalize.normalize_purpose(purpose) == purpose
    assert normalize.normalize_purpose(purpose.replace("_", " ").title()) == purpose


@given(st.from_regex(r"[A-Z]{2}", fullmatch=True).filter(
    lambda code: not normalize.is_placeholder(code)))  # 'NA' means "not available", not a state
def test_state_codes_round_trip(state: str) -> None:
    assert normalize.normalize_addr_state(f" {state.lower()} ") == state


@pytest.mark.parametrize("value", ["California", "C", "", None, 12])
def test_invalid_state_is_none(value) -> None:
    assert normalize.normalize_addr_state(value) is None


def test_placeholders_are_recognised() -> None:
    for token in ["n/a", "N/A", " NULL ", "nan", "-"]:
        assert normalize.is_placeholder(token) and normalize.is_missing(token)
    assert normalize.is_missing(float("nan")) and normalize.is_missing(None)
    assert not normalize.is_missing("0") and not normalize.is_missing(0)
    assert math.isclose(normalize.parse_number("1,200.5"), 1200.5)
