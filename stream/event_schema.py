"""The fields of an application event and the rule each one must meet.

Each check takes the value a JSON object carried and returns it normalised exactly as training
cleaning normalises a loan file (the ``features.normalize`` parsers), or raises
:class:`FieldProblem` with a reason code and a message that names the field and what is
allowed. Messages never contain the submitted value: events carry personal data.

Numbers must be JSON numbers: a JSON string where a number is required is a wrong type (an
upstream bug worth surfacing), except where a field's check reads a loan file's text form
too (a ``term`` check's ``" 36 months"``, an ``emp_length`` check's ``"10+ years"``), which
the shared parsers read the same way in files and events.

Free text a model's serving spec declares (``free_text_fields``) may arrive on the event: it
is checked for type only and then dropped (personal data, never a feature).

Monitored fields (the protected characteristics the model card's ``monitoring`` entry
declares, :mod:`fairness.spec`) may arrive on the event too: they are known fields, never
checked, never a reason to dead-letter, never part of the validated application (so the raw
value, e.g. days since birth, is stored nowhere); validation keeps only their groups.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Protocol, TypeAlias

from fairness.spec import MonitoringSpec
from features import normalize
from features.serving import EventField, ServingSpec

MAX_ID_LENGTH = 128
MAX_TIMESTAMP_LENGTH = 64
MAX_CATEGORY_TEXT_LENGTH = 100
# Sanity bounds, not credit policy: far above any real loan or income (the Lending Club
# maximum loan is 40,000 and the largest stated income under 10 million) and they keep
# inf and float overflow away from the feature code.
MAX_LOAN_AMOUNT = 10_000_000
MAX_ANNUAL_INCOME = 1_000_000_000
# Applications before online lending or after this century are clock or encoding errors.
EARLIEST_SUBMISSION_YEAR = 2000
LATEST_SUBMISSION_YEAR = 2099

IDENTITY_FIELDS: tuple[str, ...] = ("application_id", "customer_id", "submitted_at")

# A normalised application field: a number, a category's text, or None (missing).
FieldValue: TypeAlias = float | int | str | None
# One field's rule: the value a JSON object carried in, the normalised value out (or FieldProblem).
Check = Callable[[object], FieldValue]


class FieldProblem(Exception):
    """One field breaks the event contract; ``code`` is one of ``REJECTION_CODES``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def json_type_name(value: object) -> str:
    """The JSON type of a value in words, safe to show (it is not the value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _wrong_type(field: str, expected: str, value: object) -> FieldProblem:
    return FieldProblem("wrong_type", f"{field} must be {expected}, got {json_type_name(value)}")


# ---- identity ---------------------------------------------------------------------------

def _check_id_text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(field, "a string", value)
    if not value or value.isspace():
        raise FieldProblem("bad_id", f"{field} is empty; it must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise FieldProblem("bad_id", f"{field} is longer than {MAX_ID_LENGTH} characters")
    if not value.isprintable():
        raise FieldProblem("bad_id", f"{field} contains control or non-printable characters")
    if value != value.strip():
        raise FieldProblem("bad_id", f"{field} starts or ends with whitespace")
    return value


def check_application_id(value: object) -> str:
    """A printable, non-empty id of at most ``MAX_ID_LENGTH`` characters, without
    surrounding whitespace (it keys the decision and its id)."""
    return _check_id_text("application_id", value)


def check_customer_id(value: object) -> str:
    """Like the application id, and usable in a feature-store key of every schema version
    (the rules of ``features.views.feature_key``): no ':' or whitespace, and no '{' or '}',
    whichever schema the worker reads, so an event valid today stays valid after a switch."""
    text = _check_id_text("customer_id", value)
    if ":" in text or " " in text:
        raise FieldProblem("bad_id", "customer_id contains ':' or whitespace, which a "
                                     "feature-store key cannot hold")
    if "{" in text or "}" in text:
        raise FieldProblem("bad_id", "customer_id contains '{' or '}': in feature keys of "
                                     "schema v2 the customer id is the Redis Cluster hash tag "
                                     "between braces, and a brace in it would move some of the "
                                     "customer's keys to other slots")
    return text


def check_submitted_at(value: object) -> datetime:
    """An ISO-8601 timestamp with a time zone ('Z' or an offset), returned in UTC."""
    if not isinstance(value, str):
        raise _wrong_type("submitted_at", "an ISO-8601 string", value)
    if len(value) > MAX_TIMESTAMP_LENGTH:
        raise FieldProblem("bad_timestamp", "submitted_at is too long for an ISO-8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FieldProblem("bad_timestamp", "submitted_at is not an ISO-8601 timestamp, e.g. "
                                            "2024-05-01T12:30:00Z") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise FieldProblem("bad_timestamp", "submitted_at has no time zone; send UTC with a "
                                            "'Z' suffix or an explicit offset such as +02:00")
    utc: datetime | None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset
        utc = None
    if utc is None or not EARLIEST_SUBMISSION_YEAR <= utc.year <= LATEST_SUBMISSION_YEAR:
        raise FieldProblem("bad_timestamp", f"submitted_at must fall in the years "
                                            f"{EARLIEST_SUBMISSION_YEAR}-{LATEST_SUBMISSION_YEAR}")
    return utc


# ---- application fields -----------------------------------------------------------------

def _positive_amount(field: str, value: object, limit: int) -> float:
    expected = f"a JSON number greater than 0 and at most {limit:,}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(field, expected, value)
    # Compare before float(): a huge JSON integer would overflow the conversion.
    if not 0 < value <= limit or (isinstance(value, float) and not math.isfinite(value)):
        raise FieldProblem("invalid_value", f"{field} must be {expected}")
    return float(value)


def amount_check(limit: int) -> Callable[[EventField], Check]:
    """A positive JSON number up to ``limit`` (an amount of money)."""
    def factory(field: EventField) -> Check:
        return partial(_positive_amount, field.name, limit=limit)
    return factory


def term_check(field: EventField) -> Check:
    """36 or 60 as a number, or a loan-file text form such as ' 36 months'."""
    name = field.name

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _wrong_type(name, "36 or 60 (months)", value)
        term = normalize.parse_term(value)
        if term is None:
            raise FieldProblem("invalid_value", f"{name} must be 36 or 60 months")
        return term

    return check


def employment_years_check(field: EventField) -> Check:
    """Years 0-10 as a number, a loan-file text form ('10+ years', '< 1 year'), or null /
    'n/a' for unknown."""
    name = field.name

    def check(value: object) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _wrong_type(name, "a number of years 0-10 or null", value)
        years = normalize.parse_emp_length(value)
        if years is None and not normalize.is_missing(value):
            raise FieldProblem("invalid_value", f"{name} must be years between 0 and 10, a "
                                                "text such as '10+ years' or '< 1 year', or null")
        return years

    return check


# Distinct spellings of a category are few; caching the shared normaliser per spelling cuts
# the validation time of an event by a third. Bounded, so odd input cannot grow it.
CATEGORY_CACHE_SIZE = 1024


def normalised_category_check(normaliser: Callable[[str], str | None], allowed: str,
                              ) -> Callable[[EventField], Check]:
    """A category read by one of the shared loan-file normalisers (``features.normalize``)."""
    cached_normaliser = lru_cache(maxsize=CATEGORY_CACHE_SIZE)(normaliser)

    def factory(field: EventField) -> Check:
        name = field.name

        def check(value: object) -> str:
            if not isinstance(value, str):
                raise _wrong_type(name, "a string", value)
            normalised = (cached_normaliser(value) if len(value) <= MAX_CATEGORY_TEXT_LENGTH
                          else None)
            if normalised is None:
                raise FieldProblem("invalid_value", f"{name} must be {allowed}")
            return normalised

        return check

    return factory


def check_free_text(field: str, value: object) -> None:
    """Optional free text: a string or null. Checked for type only, then dropped."""
    if value is not None and not isinstance(value, str):
        raise _wrong_type(field, "a string or null", value)


# ---- any dataset's fields: numbers and categories as the file has them ------------------

def _missing_codes(field: EventField) -> tuple[frozenset[str], frozenset[float]]:
    texts = frozenset(code.strip().casefold() for code in field.missing_values)
    numbers = frozenset(n for n in (normalize.parse_number(code) for code in field.missing_values)
                        if n is not None)
    return texts, numbers


def number_check(field: EventField) -> Check:
    """A JSON number or numeric text ('1,200.50'); null, blanks, placeholders ('n/a') and the
    field's missing-value codes are missing (None), as training cleaning reads them."""
    texts, numbers = _missing_codes(field)
    expected = "a number (a JSON number or numeric text) or null"

    def check(value: object) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _wrong_type(field.name, expected, value)
        if isinstance(value, str):
            if normalize.is_missing(value) or value.strip().casefold() in texts:
                return None
            number = normalize.parse_number(value)
            if number is None:
                raise FieldProblem("wrong_type", f"{field.name} must be {expected}, got text "
                                                 "that is not a number")
        else:
            if isinstance(value, float) and not math.isfinite(value):
                raise FieldProblem("invalid_value", f"{field.name} must be a finite number")
            try:
                number = float(value)
            except OverflowError:
                raise FieldProblem("invalid_value", f"{field.name} is too large") from None
        return None if number in numbers else number

    return check


def category_check(field: EventField) -> Check:
    """Text (or a whole number, read as its digits); whitespace collapsed; null, blanks,
    placeholders and the field's missing-value codes are missing (None)."""
    texts, _numbers = _missing_codes(field)
    expected = "a string or null"

    def check(value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise _wrong_type(field.name, expected, value)
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_CATEGORY_TEXT_LENGTH:
            raise FieldProblem("invalid_value", f"{field.name} is longer than "
                                                f"{MAX_CATEGORY_TEXT_LENGTH} characters")
        cleaned = " ".join(text.split())
        if not cleaned or normalize.is_placeholder(cleaned) or cleaned.casefold() in texts:
            return None
        return cleaned

    return check


# Every check an event field may name in model.json (``serving.event_fields[].check``).
FIELD_CHECKS: dict[str, Callable[[EventField], Check]] = {
    "number": number_check,
    "category": category_check,
    "loan_amount": amount_check(MAX_LOAN_AMOUNT),
    "annual_income": amount_check(MAX_ANNUAL_INCOME),
    "term": term_check,
    "emp_length": employment_years_check,
    "purpose": normalised_category_check(
        normalize.normalize_purpose,
        f"a non-empty loan purpose of at most {MAX_CATEGORY_TEXT_LENGTH} characters, "
        "e.g. debt_consolidation"),
    "home_ownership": normalised_category_check(
        normalize.normalize_home_ownership,
        "one of " + ", ".join(sorted(normalize.HOME_OWNERSHIP_VALUES))),
    "verification_status": normalised_category_check(
        normalize.normalize_verification_status,
        "one of " + ", ".join(normalize.VERIFICATION_STATUS_VALUES.values())),
    "addr_state": normalised_category_check(
        normalize.normalize_addr_state, "a two-letter state code such as CA"),
}


# How the contract describes a field's role (see :meth:`EventSchema.field_roles`).
ROLE_IDENTITY = "identity, required"
ROLE_REQUIRED = "required"
ROLE_OPTIONAL = "optional"
ROLE_FREE_TEXT = "free text, checked for type, never used"
ROLE_MONITORED = "monitored, not used for scoring"


@dataclass(frozen=True)
class EventSchema:
    """The application-event contract of one model, built from its serving spec (and, for
    the monitored fields, its monitoring spec: :meth:`from_card`)."""

    # In the order problems are reported; the output ``application`` dict keeps this order.
    checks: tuple[tuple[str, Check], ...]
    required: tuple[str, ...]
    nullable: frozenset[str]
    known: frozenset[str]
    # Free text the spec declares: checked for type, then dropped.
    free_text: tuple[str, ...] = ()
    # The protected characteristics watched for adverse impact: read into groups, never
    # checked, never kept, never scored on.
    monitoring: MonitoringSpec = dataclasses.field(default_factory=MonitoringSpec)

    @classmethod
    def from_spec(cls, spec: ServingSpec, monitoring: MonitoringSpec | None = None,
                  ) -> EventSchema:
        unknown = sorted({item.check for item in spec.event_fields} - set(FIELD_CHECKS))
        if unknown:
            raise ValueError(f"event checks {unknown} are unknown to this worker; known: "
                             f"{', '.join(sorted(FIELD_CHECKS))}")
        checks = tuple((item.name, FIELD_CHECKS[item.check](item)) for item in spec.event_fields)
        required = IDENTITY_FIELDS + tuple(item.name for item in spec.event_fields
                                           if item.required)
        nullable = frozenset(item.name for item in spec.event_fields if item.nullable)
        free_text = tuple(spec.free_text_fields)
        known = frozenset(IDENTITY_FIELDS + spec.event_field_names + free_text)
        schema = cls(checks, required, nullable, known, free_text)
        return schema.with_monitoring(monitoring) if monitoring is not None else schema

    @classmethod
    def from_card(cls, card: ModelCardLike) -> EventSchema:
        """The contract of a model card: its serving spec's fields and its monitored fields."""
        return cls.from_spec(card.serving_spec(), card.monitoring_spec())

    def with_monitoring(self, monitoring: MonitoringSpec) -> EventSchema:
        """This contract with ``monitoring``'s fields known (and only read into groups). A
        field cannot be both scored and monitored: training refuses it, and so does this."""
        if monitoring == self.monitoring:
            return self
        scored = set(self.field_names) | set(IDENTITY_FIELDS) | set(self.free_text)
        both = sorted(scored & set(monitoring.fields))
        if both:
            raise ValueError(f"model.json declares {both} both as application field(s) and as "
                             "monitored attribute(s); a monitored characteristic is never used "
                             "to score: retrain without it as a feature")
        base = self.known - set(self.monitoring.fields)
        return dataclasses.replace(self, known=base | frozenset(monitoring.fields), monitoring=monitoring)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(name for name, _check in self.checks)

    @property
    def monitored_fields(self) -> tuple[str, ...]:
        return self.monitoring.fields

    def field_roles(self) -> list[tuple[str, str]]:
        """Every field of the contract with its role, in order: identity, application fields
        (required or optional), free text, monitored ("monitored, not used for scoring"). For
        whatever describes or prints the contract."""
        required = set(self.required)
        roles = [(name, ROLE_IDENTITY) for name in IDENTITY_FIELDS]
        roles += [(name, ROLE_REQUIRED if name in required else ROLE_OPTIONAL)
                  for name in self.field_names]
        roles += [(name, ROLE_FREE_TEXT) for name in self.free_text]
        roles += [(name, ROLE_MONITORED) for name in self.monitored_fields]
        return roles


class ModelCardLike(Protocol):
    """What :meth:`EventSchema.from_card` reads of a model card (``onnx_models.card``)."""

    def serving_spec(self) -> ServingSpec: ...

    def monitoring_spec(self) -> MonitoringSpec: ...
