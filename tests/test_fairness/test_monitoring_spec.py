"""Monitored attributes: how an event's raw value becomes its group, and how a declaration
that cannot work is refused. Whatever the value, group_of answers a declared group or
``unknown`` and never raises: bad input must never change how an event is decided."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringConfigError, MonitoringSpec

GENDER = MonitoredAttribute(name="gender", field="CODE_GENDER", label="Gender",
                            values={"F": "female", "M": "male"}, reference="male")
AGE_DAYS = MonitoredAttribute(name="age_band", field="DAYS_BIRTH", source="days_relative",
                              bands=(18, 25, 35, 45, 55, 65), reference="35-44")
AGE_YEARS = MonitoredAttribute(name="age_band", field="age", bands=(18, 30, 45, 62),
                               reference="30-44")
BIRTH_DATE = MonitoredAttribute(name="owner_age_band", field="owner_birth_date",
                                source="birth_date", bands=(18, 30, 45, 62), reference="30-44")
ON = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def days_before(years: float) -> float:
    return -years * 365.25


# -- categories ----------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "group"), [
    ("F", "female"), ("M", "male"), ("f", "female"), (" m ", "male"), ("XNA", UNKNOWN),
    ("", UNKNOWN), (None, UNKNOWN), (True, UNKNOWN), (3, UNKNOWN), (float("nan"), UNKNOWN),
    (["F"], UNKNOWN), ({"F": 1}, UNKNOWN)])
def test_a_category_maps_declared_values_case_folded_and_anything_else_to_unknown(
        value: object, group: str) -> None:
    assert GENDER.group_of(value) == group


def test_numeric_category_keys_match_numbers_as_their_text() -> None:
    coded = MonitoredAttribute(name="sex", field="sex", values={"1": "female", "2": "male"},
                               reference="male")
    assert coded.group_of(1) == "female" and coded.group_of("2") == "male"
    assert coded.group_of(3) == UNKNOWN


# -- bands ---------------------------------------------------------------------------------
def test_bands_are_labelled_with_inclusive_whole_years_and_an_open_top() -> None:
    assert AGE_DAYS.groups == ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
    fractional = MonitoredAttribute(name="ratio", field="r", bands=(0.5, 1.5), reference="1.5+")
    assert fractional.groups == ("0.5 to under 1.5", "1.5+")


@pytest.mark.parametrize(("years", "group"), [
    (18, "18-24"), (24.99, "18-24"), (25, "25-34"), (40, "35-44"), (64.9, "55-64"),
    (65, "65+"), (101, "65+"), (17.9, UNKNOWN), (-3, UNKNOWN)])
def test_days_before_the_application_fall_into_age_bands(years: float, group: str) -> None:
    assert AGE_DAYS.group_of(days_before(years)) == group


@pytest.mark.parametrize("value", [None, "", "abc", "12 years", float("nan"), float("inf"),
                                   float("-inf"), True, False, [1], {}, object(), 10**400])
def test_a_number_that_is_missing_malformed_or_infinite_is_unknown(value: object) -> None:
    assert AGE_DAYS.group_of(value) == UNKNOWN
    assert AGE_YEARS.group_of(value) == UNKNOWN


def test_a_positive_day_count_is_a_birth_in_the_future_hence_unknown() -> None:
    assert AGE_DAYS.group_of(12_000) == UNKNOWN


def test_numbers_may_arrive_as_text() -> None:
    assert AGE_DAYS.group_of(" -14610 ") == "35-44"    # 40 years
    assert AGE_YEARS.group_of("29.5") == "18-29"
    assert AGE_YEARS.group_of(62) == "62+"


# -- birth dates ---------------------------------------------------------------------------
@pytest.mark.parametrize(("born", "group"), [
    ("1995-06-15", "30-44"),          # 30 on the day itself
    ("1995-06-16", "18-29"),          # 30 tomorrow
    ("1980-06-16T00:00:00Z", "30-44"),  # a timestamp's date part; 44 until tomorrow
    ("1980-06-15", "45-61"),
    ("1963-06-15", "62+"),
    ("2010-01-01", UNKNOWN),          # 15: below the first band
    ("2030-01-01", UNKNOWN),          # not born yet
    ("1995-13-01", UNKNOWN), ("15/06/1995", UNKNOWN), ("", UNKNOWN), ("yesterday", UNKNOWN)])
def test_a_birth_date_is_aged_on_the_day_the_application_was_submitted(
        born: str, group: str) -> None:
    assert BIRTH_DATE.group_of(born, ON) == group


def test_a_birth_date_without_the_application_date_or_not_as_text_is_unknown() -> None:
    assert BIRTH_DATE.group_of("1990-01-01") == UNKNOWN
    assert BIRTH_DATE.group_of(19900101, ON) == UNKNOWN
    assert BIRTH_DATE.group_of(None, ON) == UNKNOWN


def test_a_leap_day_birthday_counts_from_the_first_of_march_in_other_years() -> None:
    assert BIRTH_DATE.group_of("1995-02-29", ON) == UNKNOWN   # no such date
    born = "1996-02-29"
    assert BIRTH_DATE.group_of(born, datetime(2026, 2, 28, tzinfo=UTC)) == "18-29"
    assert BIRTH_DATE.group_of(born, datetime(2026, 3, 1, tzinfo=UTC)) == "30-44"


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                 st.lists(st.integers(), max_size=3), st.dates().map(str)))
def test_group_of_never_raises_and_answers_a_declared_group_or_unknown(value: object) -> None:
    for attribute in (GENDER, AGE_DAYS, AGE_YEARS, BIRTH_DATE):
        assert attribute.group_of(value, ON) in (*attribute.groups, UNKNOWN)


# -- the spec ------------------------------------------------------------------------------
def test_groups_of_reads_every_attribute_from_the_event() -> None:
    spec = MonitoringSpec((GENDER, AGE_DAYS))
    assert spec.groups_of({"CODE_GENDER": "F", "DAYS_BIRTH": days_before(50)}) == {
        "gender": "female", "age_band": "45-54"}
    assert spec.groups_of({}) == {"gender": UNKNOWN, "age_band": UNKNOWN}
    assert spec.fields == ("CODE_GENDER", "DAYS_BIRTH")


def test_a_spec_survives_the_model_card_round_trip() -> None:
    spec = MonitoringSpec((GENDER, AGE_DAYS, BIRTH_DATE), min_group_size=50, confidence=0.9,
                          air_threshold=0.75, note="declared by the lender")
    again = MonitoringSpec.from_table(spec.to_card(), "model.json")
    assert again.to_card() == spec.to_card()
    assert [attribute.groups for attribute in again.attributes] == \
        [attribute.groups for attribute in spec.attributes]
    assert again.attributes[1].group_of(days_before(40)) == "35-44"


def test_no_table_means_nothing_is_monitored() -> None:
    spec = MonitoringSpec.from_table(None, "lending_club.toml")
    assert spec.attributes == () and spec.fields == ()


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "Gender", "field": "g", "values": {"F": "f"}, "reference": "f"}, "lower-case"),
    ({"name": "g", "field": " ", "values": {"F": "f"}, "reference": "f"}, "'field'"),
    ({"name": "g", "field": "g", "reference": "f"}, "either 'values'"),
    ({"name": "g", "field": "g", "values": {"F": "f"}, "bands": [1, 2], "reference": "f"},
     "either 'values'"),
    ({"name": "a", "field": "a", "bands": [30, 18], "reference": "18+"}, "ascending"),
    ({"name": "a", "field": "a", "bands": [18], "reference": "18+"}, "at least two"),
    ({"name": "a", "field": "a", "bands": [18, 30], "source": "months", "reference": "30+"},
     "source 'months'"),
    ({"name": "g", "field": "g", "values": {"F": "female"}, "reference": "male"},
     "reference group 'male'"),
    ({"name": "g", "field": "g", "values": {"X": "unknown", "F": "f"}, "reference": "f"},
     "'unknown' is kept"),
    ({"name": "g", "field": "g", "values": {"F": "f/emale"}, "reference": "f/emale"},
     "not allowed"),
    ({"name": "g", "field": "g", "values": {"F": "f"}, "reference": "f", "colour": 1},
     "unknown keys ['colour']"),
    ({"name": "g", "values": {"F": "f"}, "reference": "f"}, "needs ['field']"),
    ({"name": "a", "field": "a", "bands": ["18", "30"], "reference": "30+"}, "numbers"),
])
def test_a_declaration_that_cannot_work_is_refused_saying_what_to_change(
        entry: dict[str, object], message: str) -> None:
    with pytest.raises(MonitoringConfigError, match=message.replace("[", r"\[").replace(
            "]", r"\]").replace("(", r"\(")):
        MonitoringSpec.from_table({"attributes": [entry]}, "lender.toml")


@pytest.mark.parametrize(("table", "message"), [
    ({"attributes": [{"name": "g", "field": "f", "values": {"F": "f"}, "reference": "f"},
                     {"name": "g", "field": "h", "values": {"F": "f"}, "reference": "f"}]},
     "names"),
    ({"attributes": [{"name": "g", "field": "f", "values": {"F": "f"}, "reference": "f"},
                     {"name": "h", "field": "f", "values": {"F": "f"}, "reference": "f"}]},
     "fields"),
    ({"min_group_size": 0}, "min_group_size"),
    ({"min_group_size": "100"}, "must be numbers"),
    ({"confidence": 95}, "confidence"),
    ({"air_threshold": 1.2}, "air_threshold"),
    ({"threshold": 0.8}, "unknown keys"),
    ({"attributes": {"name": "g"}}, "list of tables"),
    ("gender", "must be a table"),
])
def test_a_monitoring_table_that_cannot_work_is_refused(table: object, message: str) -> None:
    with pytest.raises(MonitoringConfigError, match=message):
        MonitoringSpec.from_table(table, "lender.toml")


def test_the_title_defaults_to_the_name_in_words() -> None:
    assert AGE_DAYS.title == "Age band" and GENDER.title == "Gender"
    assert math.isclose(days_before(1), -365.25)
