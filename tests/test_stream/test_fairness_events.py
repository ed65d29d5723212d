"""Monitored attributes on the application event: known fields read only into groups, never
checked, stored or scored on. An event is decided exactly alike with its protected
characteristics, without them, or with values outside the declared bands — and counted under
its group (or ``unknown``), never dead-lettered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from test_pipeline import FakeModel, Harness, event  # tests/test_stream/test_pipeline.py

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from features.serving import LENDING_CLUB_SERVING, SourceColumns
from replay.core import EventLayout, application_event
from stream.decisions import DecisionRecord
from stream.event_schema import ROLE_MONITORED, EventSchema
from stream.validation import Rejection, ValidApplication, validate_application

GENDER = MonitoredAttribute(name="gender", field="CODE_GENDER", reference="male",
                            values={"F": "female", "M": "male"})
AGE = MonitoredAttribute(name="age_band", field="DAYS_BIRTH", reference="35-44",
                         bands=(18, 25, 35, 45, 55, 65), source="days_relative")
SPEC = MonitoringSpec((GENDER, AGE), min_group_size=1)
SCHEMA = EventSchema.from_spec(LENDING_CLUB_SERVING, SPEC)
DAYS_OF_A_40_YEAR_OLD = -14_700
# Values a careless upstream might send: none of them may change a decision or be refused.
OUT_OF_BAND: list[dict[str, Any]] = [
    {"CODE_GENDER": "XNA", "DAYS_BIRTH": 400},           # a birth in the future
    {"CODE_GENDER": 1, "DAYS_BIRTH": "forty"},           # wrong types
    {"CODE_GENDER": None, "DAYS_BIRTH": -3_000},         # null; eight years old
    {"CODE_GENDER": {"sex": "F"}, "DAYS_BIRTH": [1, 2]},  # objects and arrays
    {"CODE_GENDER": "F" * 10_000, "DAYS_BIRTH": 1e308},  # oversized text, huge number
]


def payload(**fields: Any) -> bytes:
    body = {"application_id": "APP-1", "customer_id": "c1",
            "submitted_at": "2026-11-20T10:00:00Z", "loan_amnt": 12000, "term": 36,
            "purpose": "credit_card", "annual_inc": 60000, "emp_length": 5,
            "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "CA"}
    return json.dumps(body | fields).encode()


def valid(raw: bytes, schema: EventSchema = SCHEMA) -> ValidApplication:
    result = validate_application(raw, schema)
    assert isinstance(result, ValidApplication), result
    return result


# ---- the contract -----------------------------------------------------------------------

def test_monitored_fields_give_groups_and_are_not_kept_or_counted_as_unknown() -> None:
    app = valid(payload(CODE_GENDER="F", DAYS_BIRTH=DAYS_OF_A_40_YEAR_OLD))
    assert app.groups == {"gender": "female", "age_band": "35-44"}
    assert "CODE_GENDER" not in app.application and "DAYS_BIRTH" not in app.application
    assert app.unknown_fields == ()


def test_without_monitoring_the_same_fields_are_unknown_extras() -> None:
    plain = EventSchema.from_spec(LENDING_CLUB_SERVING)
    app = valid(payload(CODE_GENDER="F", DAYS_BIRTH=DAYS_OF_A_40_YEAR_OLD), plain)
    assert app.groups == {}
    assert set(app.unknown_fields) == {"CODE_GENDER", "DAYS_BIRTH"}


@pytest.mark.parametrize("fields", [{}, *OUT_OF_BAND])
def test_missing_or_unusable_values_are_the_unknown_group_never_a_rejection(
        fields: dict[str, Any]) -> None:
    app = valid(payload(**fields))
    assert app.groups["age_band"] == UNKNOWN
    assert app.groups["gender"] == UNKNOWN


def test_a_broken_event_is_rejected_for_its_own_fault_not_for_its_characteristics() -> None:
    result = validate_application(payload(CODE_GENDER="F", loan_amnt=-5), SCHEMA)
    assert isinstance(result, Rejection) and result.error == "invalid_value"
    assert "CODE_GENDER" not in result.detail and "F" not in result.detail.split()


def test_the_contract_marks_monitored_fields_as_not_used_for_scoring() -> None:
    roles = dict(SCHEMA.field_roles())
    assert SCHEMA.monitored_fields == ("CODE_GENDER", "DAYS_BIRTH")
    assert roles["CODE_GENDER"] == roles["DAYS_BIRTH"] == ROLE_MONITORED == \
        "monitored, not used for scoring"
    assert roles["loan_amnt"] == "required"
    assert "CODE_GENDER" not in SCHEMA.field_names


def test_a_field_both_scored_and_monitored_is_refused_by_name() -> None:
    clash = MonitoringSpec((MonitoredAttribute(name="state", field="addr_state", reference="CA",
                                               values={"CA": "CA", "NY": "NY"}),))
    with pytest.raises(ValueError, match="addr_state"):
        EventSchema.from_spec(LENDING_CLUB_SERVING, clash)


# ---- the decision -----------------------------------------------------------------------

def decide_alone(**fields: Any) -> tuple[dict[str, Any], Harness]:
    """One event with ``fields`` added, decided by a fresh worker that monitors SPEC."""
    harness = Harness(FakeModel(monitoring=SPEC))
    outcome = harness.process([event("APP-1", **fields)])
    assert outcome.dead_letters == []
    (published,) = harness.kafka.decisions
    return published, harness


def without_time(decision: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in decision.items() if name != "decided_at"}


@pytest.mark.parametrize("fields", OUT_OF_BAND)
def test_a_decision_is_identical_with_without_and_with_unusable_characteristics(
        fields: dict[str, Any]) -> None:
    with_them, _ = decide_alone(CODE_GENDER="F", DAYS_BIRTH=DAYS_OF_A_40_YEAR_OLD)
    without, _ = decide_alone()
    unusable, harness = decide_alone(**fields)
    assert without_time(with_them) == without_time(without) == without_time(unusable)
    for name in ("decision", "probability_of_default", "score", "reasons"):
        assert with_them[name] == without[name] == unusable[name]
    harness.pipeline.fairness.publish()
    for attribute in ("gender", "age_band"):
        assert harness.metric("creditrisk_fairness_group_decisions", attribute=attribute,
                              group=UNKNOWN, window="1h") == 1


def test_the_groups_are_kept_with_the_decision_record_not_published_nor_the_values() -> None:
    published, harness = decide_alone(CODE_GENDER="F", DAYS_BIRTH=DAYS_OF_A_40_YEAR_OLD)
    assert "groups" not in published
    assert "CODE_GENDER" not in json.dumps(published)
    record = harness.store.records["APP-1"]
    assert record.groups == {"gender": "female", "age_band": "35-44"}
    stored = record.to_json().decode()
    assert "DAYS_BIRTH" not in stored and str(DAYS_OF_A_40_YEAR_OLD) not in stored
    assert DecisionRecord.from_json(record.to_json()).groups == record.groups


def test_a_record_stored_before_monitoring_still_reads() -> None:
    _published, harness = decide_alone()
    old = json.loads(harness.store.records["APP-1"].to_json())
    del old["groups"]
    assert DecisionRecord.from_json(json.dumps(old)).groups == {}


def test_only_new_champion_decisions_are_counted() -> None:
    harness = Harness(FakeModel(monitoring=SPEC))
    first = event("APP-1", CODE_GENDER="F", DAYS_BIRTH=DAYS_OF_A_40_YEAR_OLD)
    harness.process([first])
    harness.process([first])  # redelivered: the stored decision, published again
    asyncio.run(harness.pipeline.score_many([event("APP-2", CODE_GENDER="F").value or b""]))
    harness.pipeline.fairness.publish()  # POST /score above: answered, never counted
    assert harness.metric("creditrisk_fairness_decisions_total", attribute="gender",
                          group="female", decision="approve") == 1
    assert harness.metric("creditrisk_fairness_group_decisions", attribute="gender",
                          group="female", window="24h") == 1


def test_a_promoted_model_brings_its_monitoring_declaration() -> None:
    harness = Harness(FakeModel())
    harness.process([event("APP-1", CODE_GENDER="F")])
    harness.pipeline.fairness.publish()
    assert harness.metric("creditrisk_fairness_min_group_size") == 0
    assert harness.registry.get_sample_value("creditrisk_fairness_min_group_size") is None
    harness.holder.promote(FakeModel("v2", monitoring=SPEC))
    harness.process([event("APP-2", CODE_GENDER="F")])
    harness.pipeline.fairness.publish()
    assert harness.metric("creditrisk_fairness_min_group_size") == 1
    assert harness.metric("creditrisk_fairness_group_decisions", attribute="gender",
                          group="female", window="1h") == 1
    assert harness.metric("creditrisk_event_unknown_fields_total") == 1  # only under v1


# ---- the replay ----------------------------------------------------------------------------

LAYOUT = EventLayout(LENDING_CLUB_SERVING.event_fields,
                     SourceColumns(id_column="id", customer_id_column="member_id"),
                     monitored_fields=SPEC.fields)
ROW = {"id": "1", "member_id": "c1", "loan_amnt": "12000", "term": " 36 months",
       "purpose": "credit_card", "annual_inc": "60000", "emp_length": "5 years",
       "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "CA"}


def test_produce_sends_the_monitored_columns_the_file_has() -> None:
    sent = application_event(ROW | {"CODE_GENDER": "F", "DAYS_BIRTH": "-14700"}, LAYOUT)
    assert sent["CODE_GENDER"] == "F" and sent["DAYS_BIRTH"] == -14700
    app = valid(json.dumps(sent).encode())
    assert app.groups == {"gender": "female", "age_band": "35-44"}


def test_produce_sends_null_for_a_blank_cell_and_nothing_for_an_absent_column() -> None:
    sent = application_event(ROW | {"CODE_GENDER": ""}, LAYOUT)
    assert sent["CODE_GENDER"] is None and "DAYS_BIRTH" not in sent
    assert valid(json.dumps(sent).encode()).groups == {"gender": UNKNOWN, "age_band": UNKNOWN}
