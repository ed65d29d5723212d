"""Application events: what is accepted (normalised exactly like training cleaning), what goes
to the dead-letter topic with which reason, and that nothing about a bad event crashes the
worker or leaks the submitted values."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import normalize
from features.definitions import APPLICANT_FIELDS
from features.serving import LENDING_CLUB_SERVING, EventField, ServingSpec
from features.views import BUREAU_VIEW, SCHEMA_VERSIONS, feature_key
from stream.event_schema import EventSchema
from stream.validation import (
    DEFAULT_DEAD_LETTER_PAYLOAD_BYTES,
    DEFAULT_MAX_BYTES,
    MAX_UNKNOWN_FIELDS,
    REJECTION_CODES,
    DeadLetter,
    DeadLetterRecord,
    Rejection,
    ValidApplication,
)
from stream.validation import validate_application as validate_with_schema

SCHEMA = EventSchema.from_spec(LENDING_CLUB_SERVING)
REQUIRED_FIELDS = SCHEMA.required
KNOWN_FIELDS = SCHEMA.known


def validate_application(payload: bytes | None) -> ValidApplication | Rejection:
    """The Lending Club event contract, as a Lending Club model's card declares it."""
    return validate_with_schema(payload, SCHEMA)

RECEIVED_AT = datetime(2024, 5, 1, 12, 31, 5, 250000, tzinfo=UTC)


def dead_letter(rejection: Rejection, payload: bytes | None, topic: str, partition: int,
                offset: int, received_at: datetime,
                payload_limit: int = DEFAULT_DEAD_LETTER_PAYLOAD_BYTES) -> DeadLetterRecord:
    """The record on the dead-letter topic for a rejected message."""
    letter = DeadLetter(error=rejection.error, detail=rejection.detail, payload=payload,
                        received_at=received_at, topic=topic, partition=partition,
                        offset=offset)
    return letter.record(payload_limit)
DROP = object()  # marks a field to leave out of the event


class Raw:
    """A JSON literal json.dumps cannot write (1e400, NaN)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def base_event() -> dict[str, Any]:
    return {
        "application_id": "APP-2024-000123", "customer_id": "CUST-98765",
        "submitted_at": "2024-05-01T12:30:00Z", "loan_amnt": 12000, "term": 36,
        "purpose": "debt_consolidation", "annual_inc": 65000.0, "emp_length": 4,
        "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "CA",
        "emp_title": "Senior nurse", "title": "Card refinancing",
    }


def event_bytes(**changes: Any) -> bytes:
    event = base_event()
    literals = {}
    for name, value in changes.items():
        if value is DROP:
            event.pop(name, None)
        elif isinstance(value, Raw):
            marker = f"@@raw-{name}@@"
            literals[json.dumps(marker)] = value.literal
            event[name] = marker
        else:
            event[name] = value
    text = json.dumps(event)
    for marker, literal in literals.items():
        text = text.replace(marker, literal)
    return text.encode("utf-8")


VALID = event_bytes()

# (case id, payload, expected code, field the detail must name or None)
REJECTED: list[tuple[str, bytes | None, str, str | None]] = [
    ("tombstone", None, "empty", None),
    ("zero bytes", b"", "empty", None),
    ("oversize", event_bytes(emp_title="x" * DEFAULT_MAX_BYTES), "oversize", None),
    ("form encoded", b"loan_amnt=12000&term=36", "not_json", None),
    ("truncated json", VALID[:-25], "not_json", None),
    ("latin-1 bytes", VALID.replace(b"Senior nurse", "Infirmi\u00e8re".encode("latin-1")),
     "not_json", None),
    ("utf-16", VALID.decode().encode("utf-16"), "not_json", None),
    ("NaN literal", event_bytes(annual_inc=Raw("NaN")), "not_json", None),
    ("two objects", VALID + VALID, "not_json", None),
    ("deep nesting", b"[" * 20000 + b"]" * 20000, "not_json", None),
    ("json array", b"[" + VALID + b"]", "not_an_object", None),
    ("json number", b"12000", "not_an_object", None),
    ("json string", b'"APP-1"', "not_an_object", None),
    ("json null", b"null", "not_an_object", None),
    ("null amount", event_bytes(loan_amnt=None), "missing_field", "loan_amnt"),
    ("amount as text", event_bytes(loan_amnt="12000"), "wrong_type", "loan_amnt"),
    ("amount as true", event_bytes(loan_amnt=True), "wrong_type", "loan_amnt"),
    ("income as array", event_bytes(annual_inc=[65000]), "wrong_type", "annual_inc"),
    ("term as true", event_bytes(term=True), "wrong_type", "term"),
    ("term as object", event_bytes(term={"months": 36}), "wrong_type", "term"),
    ("purpose as number", event_bytes(purpose=7), "wrong_type", "purpose"),
    ("id as number", event_bytes(application_id=123), "wrong_type", "application_id"),
    ("epoch timestamp", event_bytes(submitted_at=1714566600), "wrong_type", "submitted_at"),
    ("emp_length as true", event_bytes(emp_length=True), "wrong_type", "emp_length"),
    ("emp_title as number", event_bytes(emp_title=42), "wrong_type", "emp_title"),
    ("negative amount", event_bytes(loan_amnt=-5000), "invalid_value", "loan_amnt"),
    ("zero amount", event_bytes(loan_amnt=0), "invalid_value", "loan_amnt"),
    ("absurd amount", event_bytes(loan_amnt=10**30), "invalid_value", "loan_amnt"),
    ("overflowing amount", event_bytes(loan_amnt=Raw("1e400")), "invalid_value", "loan_amnt"),
    ("huge integer income", event_bytes(annual_inc=Raw("9" * 400)), "invalid_value",
     "annual_inc"),
    ("zero income", event_bytes(annual_inc=0), "invalid_value", "annual_inc"),
    ("15 years employed", event_bytes(emp_length=15), "invalid_value", "emp_length"),
    ("negative employment", event_bytes(emp_length=-1), "invalid_value", "emp_length"),
    ("employment in words", event_bytes(emp_length="fifteen years"), "invalid_value",
     "emp_length"),
    ("unknown ownership", event_bytes(home_ownership="CASTLE"), "invalid_value",
     "home_ownership"),
    ("unknown verification", event_bytes(verification_status="maybe"), "invalid_value",
     "verification_status"),
    ("state spelled out", event_bytes(addr_state="California"), "invalid_value", "addr_state"),
    ("blank purpose", event_bytes(purpose="   "), "invalid_value", "purpose"),
    ("very long purpose", event_bytes(purpose="a" * 500), "invalid_value", "purpose"),
    ("term 48", event_bytes(term=48), "invalid_value", "term"),
    ("term '48 months'", event_bytes(term="48 months"), "invalid_value", "term"),
    ("term 36.5", event_bytes(term=36.5), "invalid_value", "term"),
    ("term in words", event_bytes(term="three years"), "invalid_value", "term"),
    ("naive timestamp", event_bytes(submitted_at="2024-05-01T12:30:00"), "bad_timestamp",
     "submitted_at"),
    ("date only", event_bytes(submitted_at="2024-05-01"), "bad_timestamp", "submitted_at"),
    ("timestamp in words", event_bytes(submitted_at="yesterday"), "bad_timestamp",
     "submitted_at"),
    ("last century", event_bytes(submitted_at="1999-12-31T23:59:59Z"), "bad_timestamp",
     "submitted_at"),
    ("year one east of utc", event_bytes(submitted_at="0001-01-01T00:00:00+14:00"),
     "bad_timestamp", "submitted_at"),
    ("customer id with colon", event_bytes(customer_id="CUST:98765"), "bad_id", "customer_id"),
    ("customer id with space", event_bytes(customer_id="CUST 98765"), "bad_id", "customer_id"),
    ("customer id with tab", event_bytes(customer_id="CUST\t98765"), "bad_id", "customer_id"),
    ("customer id with an opening brace", event_bytes(customer_id="CUST{98765"), "bad_id",
     "customer_id"),
    ("customer id with a closing brace", event_bytes(customer_id="CUST-98765}"), "bad_id",
     "customer_id"),
    ("customer id as a hash tag", event_bytes(customer_id="{CUST-98765}"), "bad_id",
     "customer_id"),
    ("empty application id", event_bytes(application_id=""), "bad_id", "application_id"),
    ("blank application id", event_bytes(application_id="   "), "bad_id", "application_id"),
    ("padded application id", event_bytes(application_id=" APP-1"), "bad_id", "application_id"),
    ("control char in id", event_bytes(application_id="APP\x00-1"), "bad_id", "application_id"),
    ("overlong id", event_bytes(application_id="A" * 129), "bad_id", "application_id"),
]


@pytest.mark.parametrize(("payload", "code", "field"), [case[1:] for case in REJECTED],
                         ids=[case[0] for case in REJECTED])
def test_malformed_events_are_rejected_with_their_reason(payload, code, field) -> None:
    result = validate_application(payload)
    assert isinstance(result, Rejection)
    assert result.error == code
    if field is not None:
        assert field in result.detail


@pytest.mark.parametrize("customer_id", ["CUST{98765", "{CUST-98765}", "CUST-}{-1"])
def test_a_customer_id_with_braces_is_refused_for_the_hash_tag_it_would_break(
        customer_id: str) -> None:
    """Schema v2 keys hold the customer id as a Redis Cluster hash tag: a brace in it would
    move some of one customer's keys to other slots, and the feature read would be refused."""
    result = validate_application(event_bytes(customer_id=customer_id))
    assert isinstance(result, Rejection) and result.error == "bad_id"
    assert "hash tag" in result.detail and "customer_id" in result.detail


def test_an_ordinary_customer_id_is_a_feature_key_of_every_schema() -> None:
    result = validate_application(event_bytes(customer_id="CUST-98765_a.b"))
    assert isinstance(result, ValidApplication)
    assert [feature_key(BUREAU_VIEW, result.customer_id, schema) for schema in SCHEMA_VERSIONS] \
        == ["fs:v1:bureau:CUST-98765_a.b", "fs:v2:bureau:{CUST-98765_a.b}"]


def test_every_rejection_code_is_produced_by_some_event() -> None:
    assert {case[2] for case in REJECTED} == set(REJECTION_CODES)


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
def test_each_missing_required_field_is_named(field: str) -> None:
    result = validate_application(event_bytes(**{field: DROP}))
    assert isinstance(result, Rejection)
    assert result.error == "missing_field"
    assert field in result.detail


def test_all_missing_fields_are_listed_together() -> None:
    result = validate_application(event_bytes(loan_amnt=DROP, term=DROP, addr_state=None))
    assert isinstance(result, Rejection) and result.error == "missing_field"
    for field in ("loan_amnt", "term", "addr_state"):
        assert field in result.detail


def test_rejection_carries_the_application_id_for_the_dead_letter_key() -> None:
    assert validate_application(event_bytes(term=48)).application_id == "APP-2024-000123"
    assert validate_application(event_bytes(application_id="A:1", term=48)).application_id \
        == "A:1"
    assert validate_application(b"not json").application_id is None
    assert validate_application(event_bytes(application_id=" ", term=48)).application_id is None


# Too long and multi-line, so even the fields that take free-form text refuse it.
SECRET_TEXT = "Jane Q Doe 4111-1111-1111-1111\n" + "x" * 130
SECRET_NUMBER = -987654.321


@pytest.mark.parametrize("field", sorted(KNOWN_FIELDS))
@pytest.mark.parametrize("secret", [SECRET_TEXT, SECRET_NUMBER, [SECRET_TEXT]])
def test_rejection_detail_never_echoes_the_submitted_value(field: str, secret: Any) -> None:
    payload = event_bytes(**{field: secret})
    result = validate_application(payload)
    if field in ("emp_title", "title") and isinstance(secret, str):
        assert isinstance(result, ValidApplication)  # free text is allowed, and dropped
        assert SECRET_TEXT not in repr(result)
        return
    assert isinstance(result, Rejection), field
    letter = json.dumps(dead_letter(result, payload, "loan-applications", 0, 1, RECEIVED_AT))
    fragments = ("987654",) if secret == SECRET_NUMBER else ("Jane", "4111")
    for fragment in fragments:
        assert fragment not in result.detail
        assert letter.count(fragment) == 1  # only inside the preserved payload


# ---- accepted forms ---------------------------------------------------------------------

ACCEPTED_FORMS: list[tuple[str, str, Any, Any]] = [
    # (field, value as sent, normalised value, the shared normaliser's output for it)
    ("loan_amnt", 12000, 12000.0, normalize.parse_number(12000)),
    ("loan_amnt", 12000.5, 12000.5, normalize.parse_number(12000.5)),
    ("term", 36, 36, normalize.parse_term(36)),
    ("term", 60.0, 60, normalize.parse_term(60.0)),
    ("term", " 36 months", 36, normalize.parse_term(" 36 months")),
    ("term", " 60 months", 60, normalize.parse_term(" 60 months")),
    ("purpose", "debt_consolidation", "debt_consolidation",
     normalize.normalize_purpose("debt_consolidation")),
    ("purpose", "Debt Consolidation", "debt_consolidation",
     normalize.normalize_purpose("Debt Consolidation")),
    ("purpose", " Home improvement ", "home_improvement",
     normalize.normalize_purpose(" Home improvement ")),
    ("emp_length", None, None, None),
    ("emp_length", 0, 0.0, normalize.parse_emp_length(0)),
    ("emp_length", 10, 10.0, normalize.parse_emp_length(10)),
    ("emp_length", "10+ years", 10.0, normalize.parse_emp_length("10+ years")),
    ("emp_length", "< 1 year", 0.0, normalize.parse_emp_length("< 1 year")),
    ("emp_length", "3 years", 3.0, normalize.parse_emp_length("3 years")),
    ("emp_length", "n/a", None, normalize.parse_emp_length("n/a")),
    ("home_ownership", " Mortgage", "MORTGAGE", normalize.normalize_home_ownership(" Mortgage")),
    ("home_ownership", "rent", "RENT", normalize.normalize_home_ownership("rent")),
    ("verification_status", "source verified", "Source Verified",
     normalize.normalize_verification_status("source verified")),
    ("verification_status", "NOT_VERIFIED", "Not Verified",
     normalize.normalize_verification_status("NOT_VERIFIED")),
    ("addr_state", "ny ", "NY", normalize.normalize_addr_state("ny ")),
    ("annual_inc", 65000, 65000.0, normalize.parse_number(65000)),
]


@pytest.mark.parametrize(("field", "sent", "expected", "shared"), ACCEPTED_FORMS,
                         ids=[f"{case[0]}={case[1]!r}" for case in ACCEPTED_FORMS])
def test_accepted_forms_normalise_like_training_cleaning(field, sent, expected, shared) -> None:
    result = validate_application(event_bytes(**{field: sent}))
    assert isinstance(result, ValidApplication), getattr(result, "detail", "")
    assert result.application[field] == expected == shared
    assert type(result.application[field]) is type(expected)


def test_valid_event_gives_the_canonical_application_only() -> None:
    result = validate_application(VALID)
    assert isinstance(result, ValidApplication)
    assert result.application_id == "APP-2024-000123"
    assert result.customer_id == "CUST-98765"
    assert result.submitted_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert result.application == {
        "loan_amnt": 12000.0, "term": 36, "purpose": "debt_consolidation",
        "annual_inc": 65000.0, "emp_length": 4.0, "home_ownership": "RENT",
        "verification_status": "Verified", "addr_state": "CA"}
    assert result.unknown_fields == ()
    assert "Senior nurse" not in repr(result)  # free text is personal data, never passed on


@pytest.mark.parametrize("stamp", ["2024-05-01T14:30:00+02:00", "2024-05-01T12:30:00Z",
                                   "2024-05-01T12:30:00.000+00:00", "2024-05-01 07:30:00-05:00"])
def test_submitted_at_is_converted_to_utc(stamp: str) -> None:
    result = validate_application(event_bytes(submitted_at=stamp))
    assert isinstance(result, ValidApplication)
    assert result.submitted_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert result.submitted_at.utcoffset() == timedelta(0)


def test_free_text_is_whatever_the_serving_spec_declares() -> None:
    fields = (EventField("amount", "numeric", "number", required=True),)
    with_notes = EventSchema.from_spec(ServingSpec(fields, free_text_fields=("notes",)))
    without = EventSchema.from_spec(ServingSpec(fields))
    event = {"application_id": "a1", "customer_id": "c1", "submitted_at": "2024-05-01T12:30:00Z",
             "amount": 10, "notes": "call after 5"}
    accepted = validate_with_schema(json.dumps(event).encode(), with_notes)
    assert isinstance(accepted, ValidApplication) and accepted.unknown_fields == ()
    assert "call after 5" not in repr(accepted)
    rejected = validate_with_schema(json.dumps({**event, "notes": 5}).encode(), with_notes)
    assert isinstance(rejected, Rejection) and rejected.error == "wrong_type"
    undeclared = validate_with_schema(json.dumps(event).encode(), without)
    assert isinstance(undeclared, ValidApplication) and undeclared.unknown_fields == ("notes",)
    assert "emp_title" not in without.known  # no dataset's names unless its spec says so


def test_unknown_fields_are_ignored_named_and_capped() -> None:
    extras = {f"extra_{index}": index for index in range(50)}
    extras["x" * 500] = "long name"
    result = validate_application(event_bytes(channel="mobile", **extras))
    assert isinstance(result, ValidApplication)
    assert result.unknown_fields[0] == "channel"
    assert len(result.unknown_fields) == MAX_UNKNOWN_FIELDS
    assert set(result.application) == set(APPLICANT_FIELDS)


# ---- dead letters -----------------------------------------------------------------------

def test_dead_letter_has_the_design_shape_and_keeps_utf8_payload_as_text() -> None:
    payload = event_bytes(term=48, emp_title="Infirmi\u00e8re")
    rejection = validate_application(payload)
    assert isinstance(rejection, Rejection)
    letter = dead_letter(rejection, payload, "loan-applications", 3, 1042, RECEIVED_AT)
    assert json.loads(json.dumps(letter)) == letter
    assert letter["error"] == "invalid_value" and letter["detail"] == rejection.detail
    assert letter["source"] == {"topic": "loan-applications", "partition": 3, "offset": 1042}
    assert letter["payload"].encode("utf-8") == payload
    assert letter["payload_encoding"] == "utf-8" and letter["payload_truncated"] is False
    assert letter["received_at"] == "2024-05-01T12:31:05.250Z"


def test_dead_letter_of_non_utf8_bytes_is_base64_of_the_original() -> None:
    payload = b"\x00\xff\xfe" + VALID.replace(b"Senior nurse", "Infirmi\u00e8re".encode("cp1252"))
    rejection = validate_application(payload)
    assert isinstance(rejection, Rejection) and rejection.error == "not_json"
    letter = dead_letter(rejection, payload, "loan-applications", 0, 7, RECEIVED_AT)
    assert letter["payload_encoding"] == "base64"
    assert base64.b64decode(letter["payload"]) == payload


def test_dead_letter_of_a_tombstone_has_no_payload() -> None:
    letter = dead_letter(validate_application(None), None, "loan-applications", 1, 2, RECEIVED_AT)
    assert letter["error"] == "empty"
    assert letter["payload"] is None and letter["payload_encoding"] is None


def test_oversize_payload_is_kept_truncated_and_fits_a_kafka_message() -> None:
    # Control characters are valid UTF-8 but JSON writes each as six bytes (\u0001).
    payload = b'{"emp_title": "' + b"\x01" * (3 * DEFAULT_MAX_BYTES) + b'"}'
    rejection = validate_application(payload)
    assert isinstance(rejection, Rejection) and rejection.error == "oversize"
    letter = dead_letter(rejection, payload, "loan-applications", 0, 9, RECEIVED_AT)
    assert letter["payload_truncated"] is True
    assert letter["payload_bytes"] == len(payload)
    assert payload.startswith(letter["payload"].encode("utf-8"))
    assert len(letter["payload"]) == DEFAULT_DEAD_LETTER_PAYLOAD_BYTES
    assert len(json.dumps(letter).encode("utf-8")) < 1024 * 1024


def test_truncation_never_splits_a_character() -> None:
    payload = ("\u00e9" * 100).encode("utf-8")  # two bytes per character
    letter = dead_letter(Rejection("not_json", "x"), payload, "t", 0, 0, RECEIVED_AT,
                         payload_limit=51)
    assert letter["payload"] == "\u00e9" * 25 and letter["payload_truncated"] is True


def test_dead_letter_refuses_a_naive_received_at() -> None:
    with pytest.raises(ValueError, match="time zone"):
        dead_letter(Rejection("empty", "x"), None, "t", 0, 0, datetime(2024, 5, 1))


# ---- properties: nothing crashes, every answer is one of the two kinds ---------------------

def assert_well_formed(result: object) -> None:
    if isinstance(result, Rejection):
        assert result.error in REJECTION_CODES
        assert result.detail
        return
    assert isinstance(result, ValidApplication)
    assert set(result.application) == set(APPLICANT_FIELDS)
    assert result.application["term"] in (36, 60)
    assert result.application["loan_amnt"] > 0 and result.application["annual_inc"] > 0
    assert result.submitted_at.utcoffset() == timedelta(0)
    for schema in SCHEMA_VERSIONS:  # usable as a feature-store key, whichever the schema
        feature_key(BUREAU_VIEW, result.customer_id, schema)


JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=10), children, max_size=4),
                           max_leaves=12)
FIELD_NAMES = st.sampled_from(sorted(KNOWN_FIELDS)) | st.text(max_size=12)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash(payload: bytes) -> None:
    assert_well_formed(validate_application(payload))


@FAST
@given(JSON_VALUES)
def test_arbitrary_json_never_crashes(value: Any) -> None:
    assert_well_formed(validate_application(json.dumps(value).encode("utf-8")))


@FAST
@given(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=16))
def test_arbitrary_json_objects_never_crash(event: dict[str, Any]) -> None:
    assert_well_formed(validate_application(json.dumps(event).encode("utf-8")))


@FAST
@given(field=st.sampled_from(sorted(KNOWN_FIELDS)), value=JSON_VALUES)
def test_one_bad_field_is_rejected_by_name_or_accepted(field: str, value: Any) -> None:
    result = validate_application(event_bytes(**{field: value}))
    assert_well_formed(result)
    if isinstance(result, Rejection) and result.error != "not_json":  # NaN/Infinity floats
        assert field in result.detail


@FAST
@given(st.text(max_size=140))
def test_any_accepted_customer_id_is_a_valid_feature_key(customer_id: str) -> None:
    result = validate_application(event_bytes(customer_id=customer_id))
    if isinstance(result, ValidApplication):
        for schema in SCHEMA_VERSIONS:
            feature_key(BUREAU_VIEW, result.customer_id, schema)
        assert result.customer_id == customer_id
    else:
        assert result.error in ("bad_id", "not_json")


@FAST
@given(moment=st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
       offset_minutes=st.integers(-14 * 60, 14 * 60))
def test_any_zoned_timestamp_is_the_same_instant_in_utc(moment: datetime,
                                                        offset_minutes: int) -> None:
    zoned = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    result = validate_application(event_bytes(submitted_at=zoned.isoformat()))
    assert isinstance(result, ValidApplication)
    assert result.submitted_at == zoned and result.submitted_at.tzinfo == UTC
