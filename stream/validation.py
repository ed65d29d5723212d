"""Validation of one application event: raw Kafka bytes in, a valid application or a
rejection with a reason code out; and the dead letter an event that cannot be decided becomes.

``validate_application`` never raises on any input: bad input must not stop the worker
(DESIGN principle 6). The first problem found decides the code (missing fields are all
listed together); the order is: payload, identity fields, then the application fields in
the order of the model's event fields (``EventSchema.checks``). Rejection details name the field and what
is allowed, never the value sent (principle 8).

The model's monitored fields (protected characteristics, :mod:`fairness.spec`) are read once
here into the event's groups (``ValidApplication.groups``) and otherwise ignored: a missing
or unusable value is the group ``unknown``, never a rejection, and the value itself is not
kept.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Literal, NoReturn, TypedDict

import msgspec

from features.normalize import utc_timestamp
from stream.event_schema import (
    EventSchema,
    FieldProblem,
    FieldValue,
    check_application_id,
    check_customer_id,
    check_free_text,
    check_submitted_at,
    json_type_name,
)

DEFAULT_MAX_BYTES = 64 * 1024
# Original bytes kept in a dead letter. Twice the default event limit keeps every payload the
# validator would size-accept whole, and even when JSON escapes every byte (6x) the record
# stays under Kafka's default 1 MiB message limit.
DEFAULT_DEAD_LETTER_PAYLOAD_BYTES = 2 * DEFAULT_MAX_BYTES
MAX_UNKNOWN_FIELDS = 20
MAX_UNKNOWN_FIELD_NAME_LENGTH = 64

REJECTION_CODES: tuple[str, ...] = (
    "empty",          # no value (tombstone) or zero bytes
    "oversize",       # more bytes than the limit
    "not_json",       # not UTF-8, not JSON, or JSON with NaN/Infinity
    "not_an_object",  # JSON, but an array, number, string, true/false or null
    "missing_field",  # a required field is absent or null
    "wrong_type",     # e.g. a string or true where a number is required
    "invalid_value",  # right type, a value the field does not allow (negative amount,
                      # unknown state, a term not offered ...)
    "bad_timestamp",  # submitted_at unreadable, without time zone, or out of range
    "bad_id",         # application_id / customer_id empty, too long or unusable as a key
)


@dataclass(frozen=True)
class ValidApplication:
    """An event that meets the contract, normalised like training cleaning."""

    application_id: str
    customer_id: str
    submitted_at: datetime  # timezone-aware, UTC
    # The model's event fields, checked and normalised by its EventSchema (None: missing).
    application: dict[str, FieldValue]
    # Names of extra fields (ignored; at most MAX_UNKNOWN_FIELDS, each name truncated).
    unknown_fields: tuple[str, ...] = ()
    # Monitored attribute name → the applicant's group ("unknown" when the value is missing
    # or unusable); empty when the model monitors nothing. Only the group, never the value.
    groups: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """Why an event cannot be scored; ``error`` is one of ``REJECTION_CODES``."""

    error: str
    detail: str
    # The event's application_id when it was readable and valid: the dead letter's key.
    application_id: str | None = None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"JSON does not allow {name}")


# One decoder for the process: json.loads(text, parse_constant=...) would build a new one
# per call. The C scanner is still used.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode(payload: bytes | None, max_bytes: int) -> object:
    if not payload:
        raise FieldProblem("empty", "the message has no value; an application event is a "
                                    "JSON object")
    if len(payload) > max_bytes:
        raise FieldProblem("oversize", f"the message is {len(payload)} bytes; an application "
                                       f"event may be at most {max_bytes} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FieldProblem("not_json", f"the message is not UTF-8 text (invalid byte at "
                                       f"offset {error.start})") from None
    try:
        decoded: object = _DECODER.decode(text)
        return decoded
    except json.JSONDecodeError as error:
        # error.msg is a fixed phrase of the parser ("Expecting value"), never input text.
        raise FieldProblem("not_json", f"the message is not valid JSON: {error.msg} at "
                                       f"character {error.pos}") from None
    except (ValueError, RecursionError):  # NaN/Infinity, >4300-digit integers, deep nesting
        raise FieldProblem("not_json", "the message is not valid JSON: it has NaN or Infinity, "
                                       "an integer too long to read, or nesting too deep") from None


def _missing_fields(event: dict[str, object], schema: EventSchema) -> list[str]:
    return [name for name in schema.required
            if name not in event or (event[name] is None and name not in schema.nullable)]


def _unknown_fields(event: dict[str, object], known: frozenset[str]) -> tuple[str, ...]:
    if known.issuperset(event):
        return ()  # the usual case, one set operation
    names = (name[:MAX_UNKNOWN_FIELD_NAME_LENGTH] for name in event if name not in known)
    return tuple(islice(names, MAX_UNKNOWN_FIELDS))


def _validate_event(event: dict[str, object], schema: EventSchema) -> ValidApplication:
    missing = _missing_fields(event, schema)
    if missing:
        raise FieldProblem("missing_field", "required field(s) absent or null: "
                                            + ", ".join(missing))
    application_id = check_application_id(event["application_id"])
    customer_id = check_customer_id(event["customer_id"])
    submitted_at = check_submitted_at(event["submitted_at"])
    application = {name: check(event.get(name)) for name, check in schema.checks}
    for name in schema.free_text:
        check_free_text(name, event.get(name))
    groups = (schema.monitoring.groups_of(event, submitted_at)
              if schema.monitoring.attributes else {})
    return ValidApplication(application_id, customer_id, submitted_at, application,
                            _unknown_fields(event, schema.known), groups)


def _readable_application_id(event: object) -> str | None:
    if not isinstance(event, dict):
        return None
    try:
        return check_application_id(event.get("application_id"))
    except FieldProblem:
        return None


def validate_application(payload: bytes | None, schema: EventSchema,
                         max_bytes: int = DEFAULT_MAX_BYTES) -> ValidApplication | Rejection:
    """Check one raw event against the application-event contract of a model (DESIGN.md)."""
    event: object = None
    try:
        event = _decode(payload, max_bytes)
        if not isinstance(event, dict):
            raise FieldProblem("not_an_object", f"the message is JSON but {json_type_name(event)};"
                                                " an application event is a JSON object")
        return _validate_event(event, schema)
    except FieldProblem as problem:
        return Rejection(problem.code, problem.detail, _readable_application_id(event))


# ---- dead letters -----------------------------------------------------------------------

def _payload_text(payload: bytes, limit: int) -> tuple[str, Literal["utf-8", "base64"]]:
    """(text, encoding): the payload as UTF-8 text when all of it is UTF-8, else base64."""
    head = payload[:limit]
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(head).decode("ascii"), "base64"
    # Truncation may split the last character; the rest is known to be valid UTF-8.
    return head.decode("utf-8", errors="ignore"), "utf-8"


class DeadLetterSource(TypedDict):
    topic: str | None
    partition: int | None
    offset: int | None


class DeadLetterRecord(TypedDict):
    """The message on the dead-letter topic (DESIGN.md shape, see :meth:`DeadLetter.record`)."""

    error: str
    detail: str
    source: DeadLetterSource
    payload: str | None
    payload_encoding: Literal["utf-8", "base64"] | None
    payload_bytes: int
    payload_truncated: bool
    received_at: str


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An event that leaves the path undecided: why (``error`` is one of the dead-letter
    codes, ``detail`` names the field and what is allowed, never a value), the message it
    came in and where from. Published keyed by the original message's key, so it lands
    beside what was sent."""

    error: str
    detail: str
    payload: bytes | None
    received_at: datetime
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    # The event's application_id when it was readable and valid.
    application_id: str | None = None

    def record(self, payload_limit: int = DEFAULT_DEAD_LETTER_PAYLOAD_BYTES) -> DeadLetterRecord:
        """The DESIGN.md dead-letter record (JSON-serialisable).

        Besides the DESIGN fields it carries ``payload_encoding`` ("utf-8", "base64", or null
        when the message had no value), ``payload_bytes`` (the original size) and
        ``payload_truncated`` (only the first ``payload_limit`` bytes are kept, so the dead
        letter itself fits in a Kafka message).
        """
        text: str | None = None
        encoding: Literal["utf-8", "base64"] | None = None
        if self.payload is not None:
            text, encoding = _payload_text(self.payload, payload_limit)
        size = len(self.payload or b"")
        return {
            "error": self.error,
            "detail": self.detail,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "payload": text,
            "payload_encoding": encoding,
            "payload_bytes": size,
            "payload_truncated": size > payload_limit,
            "received_at": utc_timestamp(self.received_at),
        }

    def to_json(self) -> bytes:
        return _ENCODER.encode(self.record())


_ENCODER = msgspec.json.Encoder()
