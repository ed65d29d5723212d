"""Fault-injection runs, the data side: what is sent, what comes back, and the one count.

A fault run replays application events (valid ones from a loan file, plus malformed and
poison ones) into Kafka while something breaks, reads the decisions and dead-letter topics
back and counts, per message sent: decided, dead-lettered, lost, duplicated, and duplicated
with a different content. DESIGN principle 6 says lost and non-identical must both be 0.
The scenarios themselves are in :mod:`infra.faults.scenarios`; the processes they break in
:mod:`infra.faults.servers`.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from config.json_types import JSONObject, JSONValue
from config.kafka_auth import kafka_python_options
from config.settings import Settings

if TYPE_CHECKING:
    from kafka import KafkaConsumer

DECISION = "decision"
DEAD_LETTER = "dead_letter"

MALFORMED_KINDS = ["not_json", "missing_field", "wrong_type", "negative_amount", "unknown_term",
                   "oversize"]
# Dead-letter code each malformed kind must get.
MALFORMED_CODES = {"not_json": "not_json", "missing_field": "missing_field",
                   "wrong_type": "wrong_type", "negative_amount": "invalid_value",
                   "unknown_term": "invalid_value", "oversize": "oversize"}


@dataclass(frozen=True)
class PlannedMessage:
    """One message a fault run sends, and how it must end (DECISION or DEAD_LETTER)."""

    key: bytes | None
    value: bytes
    kind: str                    # "valid", "malformed:<kind>", "poison:<kind>"
    expect: str
    application_id: str | None = None   # the decision's key, for events that validate
    error: str | None = None            # the dead letter's code, when one is expected


@dataclass(frozen=True)
class SentMessage:
    """A planned message and where Kafka put it (None: Kafka never acknowledged it)."""

    planned: PlannedMessage
    partition: int | None
    offset: int | None

    @property
    def acknowledged(self) -> bool:
        return self.offset is not None


@dataclass(frozen=True)
class Received:
    """A message read back from the decisions or dead-letter topic."""

    key: bytes | None
    value: JSONObject
    published_ms: int | None = None  # the record's Kafka timestamp: when the worker sent it


# -- what is sent -------------------------------------------------------------------------
def application_events(loans_csv: Path, registry_dir: Path, count: int, start: int = 0,
                       ) -> list[JSONObject]:
    """``count`` application events built from the loan file's rows (as ``creditrisk produce``
    builds them) that the live model's event contract accepts, one per application id."""
    from onnx_models.registry import Registry
    from replay.core import application_event, live_event_layout, read_loan_rows
    from stream.event_schema import EventSchema
    from stream.validation import Rejection, validate_application

    registry = Registry(registry_dir)
    card = registry.load(registry.live_version() or "").card
    schema = EventSchema.from_spec(card.serving_spec())
    layout = live_event_layout(registry_dir)
    events: dict[str, JSONObject] = {}
    for row in read_loan_rows(loans_csv, layout, start):
        event = application_event(row, layout)
        application_id = event["application_id"]
        if not isinstance(application_id, str) or application_id in events:
            continue
        if isinstance(validate_application(json.dumps(event).encode(), schema), Rejection):
            continue
        events[application_id] = event
        if len(events) == count:
            break
    return list(events.values())


def malformed_event(kind: str, index: int, template: JSONObject) -> bytes:
    """An event the validator must dead-letter (one of MALFORMED_KINDS), from a valid one."""
    event = dict(template, application_id=f"bad-{kind}-{index}")
    if kind == "not_json":
        return b"{this is not json " + str(index).encode()
    if kind == "missing_field":
        event.pop("customer_id")
    elif kind == "wrong_type":
        event["loan_amnt"] = "twelve thousand"
    elif kind == "negative_amount":
        event["loan_amnt"] = -5000
    elif kind == "unknown_term":
        event["term"] = 48
    elif kind == "oversize":
        event["notes"] = "x" * 200_000
    return json.dumps(event).encode()


def valid_message(event: JSONObject, kind: str = "valid") -> PlannedMessage:
    application_id = event_text(event, "application_id")
    return PlannedMessage(application_id.encode(), json.dumps(event).encode(), kind, DECISION,
                          application_id)


def malformed_messages(count: int, template: JSONObject, unkeyed_every: int = 5,
                       ) -> list[PlannedMessage]:
    """``count`` malformed events, every kind in turn; most are keyed (their dead letter must
    carry the key), every ``unkeyed_every``-th has no key."""
    messages = []
    for index in range(count):
        kind = MALFORMED_KINDS[index % len(MALFORMED_KINDS)]
        key = None if index % unkeyed_every == 0 else f"bad-{kind}-{index}".encode()
        messages.append(PlannedMessage(key, malformed_event(kind, index, template),
                                       f"malformed:{kind}", DEAD_LETTER,
                                       error=MALFORMED_CODES[kind]))
    return messages


def shuffled(messages: Iterable[PlannedMessage], seed: int = 7) -> list[PlannedMessage]:
    mixed = list(messages)
    random.Random(seed).shuffle(mixed)
    return mixed


def event_text(event: JSONObject, name: str) -> str:
    """A text field of a valid event (its ids): what validation guarantees, checked."""
    value = event[name]
    if not isinstance(value, str):
        raise ValueError(f"the event's {name} is {value!r}, not text")
    return value


# -- sending ------------------------------------------------------------------------------
class Producing:
    """Sends planned messages at a steady rate on a thread of its own (acks=all, retried
    while the broker is away, idempotent so a retry is never written twice)."""

    def __init__(self, settings: Settings, topic: str, messages: Sequence[PlannedMessage],
                 rate_per_s: float) -> None:
        self.settings = settings
        self.topic = topic
        self.messages = list(messages)
        self.rate_per_s = rate_per_s
        self._placed: list[tuple[int | None, int | None]] = [(None, None)] * len(self.messages)
        self.handed_over = 0
        # Wall-clock time each message was handed to the producer (0: not yet), to time how
        # long an application waited for its outcome through a fault.
        self.handed_at: list[float] = [0.0] * len(self.messages)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fault-producer", daemon=True)

    def start(self) -> Producing:
        self._thread.start()
        return self

    def result(self, timeout_s: float = 300.0) -> list[SentMessage]:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"producing did not finish within {timeout_s:.0f} s")
        if self.error is not None:
            raise self.error
        return [SentMessage(message, *placed) for message, placed in zip(self.messages, self._placed,
                                                                         strict=True)]

    def _run(self) -> None:
        from kafka import KafkaProducer

        try:
            producer = KafkaProducer(**kafka_python_options(self.settings, "producer"), acks="all",
                                     linger_ms=5, max_request_size=2_000_000,
                                     delivery_timeout_ms=180_000, max_block_ms=180_000)
            try:
                producer.partitions_for(self.topic)
                started = time.monotonic()
                for index, message in enumerate(self.messages):
                    if self.rate_per_s:
                        ahead = index / self.rate_per_s - (time.monotonic() - started)
                        if ahead > 0:
                            time.sleep(ahead)
                    self.handed_at[index] = time.time()
                    future = producer.send(self.topic, key=message.key, value=message.value)
                    future.add_callback(self._placed_at, index)
                    self.handed_over = index + 1
                producer.flush(timeout=180)
            finally:
                producer.close(timeout=10)
        except Exception as error:  # noqa: BLE001 - reported by result()
            self.error = error

    def _placed_at(self, index: int, metadata: _Placement) -> None:
        self._placed[index] = (metadata.partition, metadata.offset)


class _Placement(Protocol):
    """Where Kafka wrote a message (kafka-python's ``RecordMetadata``)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


# -- reading back -------------------------------------------------------------------------
class OutcomeReader:
    """Reads the decisions and dead-letter topics from the beginning (no consumer group)."""

    def __init__(self, settings: Settings, decisions_topic: str, dead_letters_topic: str) -> None:
        self.settings = settings
        self.topics = {decisions_topic: DECISION, dead_letters_topic: DEAD_LETTER}
        self.consumer = self._consumer()
        self.decisions: list[Received] = []
        self.dead_letters: list[Received] = []
        self.decided_keys: set[bytes] = set()

    def _consumer(self) -> KafkaConsumer:
        from kafka import KafkaConsumer

        return KafkaConsumer(*self.topics, **kafka_python_options(self.settings, "reader"),
                             group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_bytes=8_000_000,
                             max_partition_fetch_bytes=4_000_000)

    def reread(self) -> None:
        """Forget what was read and read both topics again from the beginning with a new
        consumer. kafka-python's consumer can stop fetching for good after its broker was
        killed and restarted, while the topics hold every outcome."""
        self.consumer.close()
        self.consumer = self._consumer()
        self.decisions, self.dead_letters = [], []
        self.decided_keys = set()

    def poll(self, timeout_ms: int = 500) -> int:
        got = 0
        for partition, records in self.consumer.poll(timeout_ms=timeout_ms, max_records=5000).items():
            target = (self.decisions if self.topics[partition.topic] == DECISION
                      else self.dead_letters)
            for record in records:
                target.append(Received(record.key, json.loads(record.value), record.timestamp))
                if target is self.decisions and record.key:
                    self.decided_keys.add(record.key)
                got += 1
        return got

    @property
    def outputs(self) -> int:
        return len(self.decisions) + len(self.dead_letters)

    def wait_for(self, predicate: Callable[[OutcomeReader], bool], timeout_s: float,
                 what: str) -> None:
        if not poll_until(self.poll, lambda: predicate(self), timeout_s):
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}; read "
                               f"{len(self.decisions)} decisions and {len(self.dead_letters)} dead letters")

    def settle(self, quiet_s: float = 3.0) -> None:
        """Read until nothing new arrived for ``quiet_s`` (late duplicates included)."""
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            if self.poll():
                last = time.monotonic()

    def close(self) -> None:
        self.consumer.close()


# -- the count ----------------------------------------------------------------------------
def poll_until(poll: Callable[[], object], done: Callable[[], bool], timeout_s: float) -> bool:
    """Call ``poll`` and then ``done`` until ``done()`` holds (True) or ``timeout_s`` has
    passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        poll()
        if done():
            return True
    return False


@dataclass
class FaultCounts:
    """What became of the messages of one fault run."""

    sent: int = 0            # acknowledged by Kafka
    decided: int = 0         # ended as a decision
    dead_lettered: int = 0   # ended as a dead letter
    lost: int = 0            # sent, and neither decided nor dead-lettered
    duplicates: int = 0      # outputs beyond one per message
    non_identical: int = 0   # messages whose copies differ (or got both a decision and a letter)
    wrong_outcome: int = 0   # decided where a dead letter was expected, or the wrong code
    wrong_key: int = 0       # dead letters not keyed like their message
    unmatched: int = 0       # outputs that belong to no message sent
    not_acknowledged: int = 0  # planned messages Kafka never took (not part of `sent`)
    problems: list[str] = field(default_factory=list)  # the first few, for the report

    @property
    def ok(self) -> bool:
        return not (self.lost or self.non_identical or self.wrong_outcome or self.wrong_key
                    or self.unmatched)


# What must be equal in two copies of one dead letter (received_at is when it was written).
_LETTER_IDENTITY = ("error", "detail", "source", "payload")


def count_outcomes(sent: Sequence[SentMessage], decisions: Sequence[Received],
                   dead_letters: Sequence[Received]) -> FaultCounts:
    """The one count of a fault run: every acknowledged message must end as exactly one
    decision or one dead letter; copies (at-least-once) must be identical."""
    counts = FaultCounts(sent=sum(message.acknowledged for message in sent),
                         not_acknowledged=sum(not message.acknowledged for message in sent))
    by_application = {m.planned.application_id: m for m in sent
                      if m.acknowledged and m.planned.application_id}
    by_source = {(m.partition, m.offset): m for m in sent if m.acknowledged}
    by_key = {m.planned.key: m for m in sent if m.acknowledged and m.planned.key}
    outputs: dict[int, list[tuple[str, Received]]] = defaultdict(list)
    for decision in decisions:
        owner = by_application.get((decision.key or b"").decode())
        if owner is None:
            counts.unmatched += 1
            _note(counts, f"a decision keyed {decision.key!r} matches no message sent")
            continue
        outputs[id(owner)].append((DECISION, decision))
    for letter in dead_letters:
        source = letter.value.get("source") or {}
        owner = by_source.get(_source_place(source))
        if owner is None and letter.key:
            owner = by_key.get(letter.key)
        if owner is None:
            counts.unmatched += 1
            _note(counts, f"a dead letter from {source} matches no message sent")
            continue
        if letter.key != owner.planned.key:
            counts.wrong_key += 1
            _note(counts, f"dead letter of {owner.planned.kind} keyed {letter.key!r}, "
                          f"its message {owner.planned.key!r}")
        outputs[id(owner)].append((DEAD_LETTER, letter))
    for message in sent:
        if message.acknowledged:
            _count_message(counts, message.planned, outputs.get(id(message), []))
    return counts


def _source_place(source: JSONValue) -> tuple[int | None, int | None]:
    """The partition and offset a dead letter names as its source message's."""
    if not isinstance(source, dict):
        return None, None
    partition, offset = source.get("partition"), source.get("offset")
    return (partition if isinstance(partition, int) else None,
            offset if isinstance(offset, int) else None)


def _count_message(counts: FaultCounts, planned: PlannedMessage,
                   copies: list[tuple[str, Received]]) -> None:
    if not copies:
        counts.lost += 1
        _note(counts, f"lost: {planned.kind} {planned.application_id or planned.key!r}")
        return
    counts.duplicates += len(copies) - 1
    kinds = {kind for kind, _ in copies}
    first_kind, first = copies[0]
    if len(kinds) > 1 or any(_identity(kind, copy) != _identity(first_kind, first)
                             for kind, copy in copies[1:]):
        counts.non_identical += 1
        _note(counts, f"copies differ: {planned.kind} {planned.application_id or planned.key!r}")
    if first_kind == DECISION:
        counts.decided += 1
    else:
        counts.dead_lettered += 1
    if first_kind != planned.expect or (
            planned.error is not None and first.value.get("error") != planned.error):
        counts.wrong_outcome += 1
        _note(counts, f"{planned.kind} ended as {first_kind} "
                      f"{first.value.get('error', '')}, expected {planned.expect} {planned.error or ''}")


def _identity(kind: str, received: Received) -> JSONObject:
    if kind == DECISION:
        return received.value  # every field: same decision_id, PD, reasons, decided_at …
    return {name: received.value.get(name) for name in _LETTER_IDENTITY}


def _note(counts: FaultCounts, problem: str, keep: int = 10) -> None:
    if len(counts.problems) < keep:
        counts.problems.append(problem)


# -- the report ---------------------------------------------------------------------------
TABLE_COLUMNS = ("scenario", "sent", "decided", "dead-lettered", "lost", "duplicates",
                 "non-identical", "seconds")
RECOVERY_COLUMN = "recovery s"


def fault_table(rows: Sequence[tuple[str, FaultCounts, float]],
                recovery_s: Sequence[float | None] | None = None) -> list[str]:
    """A Markdown table, one row per scenario (name, counts, seconds it took); with
    ``recovery_s`` (one per row, None: not measured) a column of each fault's time to
    recover (:mod:`infra.faults.recovery` defines it)."""
    columns = [*TABLE_COLUMNS, *([RECOVERY_COLUMN] if recovery_s is not None else [])]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    for index, (name, counts, seconds) in enumerate(rows):
        cells = [name, *(f"{value:,}" for value in (
            counts.sent, counts.decided, counts.dead_lettered, counts.lost, counts.duplicates,
            counts.non_identical)), f"{seconds:.0f}"]
        if recovery_s is not None:
            recovered = recovery_s[index]
            cells.append("-" if recovered is None else f"{recovered:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
