"""Replay a loan file of the live model's dataset into Kafka as application events, and read
decisions.

``replay_applications`` plays the part of the upstream origination systems: each row of the
file becomes one application event (DESIGN.md, "Application event"), keyed by its
application id and sent at a steady rate. The file's dirt is kept: a row whose amount cannot
be read is sent with the text it has, so the worker's validation and dead-letter path see
what real upstream data looks like. Exact duplicate rows are sent twice, as a retrying
upstream would. The card's monitored fields (protected characteristics, e.g. Home Credit's
CODE_GENDER and DAYS_BIRTH) ride on each event when the file has those columns, as an
origination system would send them: the worker reads them into groups for fairness
monitoring only.

``tail_decisions`` follows the decisions topic without a consumer group (it never moves any
service's offsets) and prints one line per decision.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, TextIO

from config.json_types import JSONObject, JSONValue
from config.kafka_auth import kafka_python_options
from config.settings import Settings
from features.normalize import (
    is_missing,
    parse_date,
    parse_emp_length,
    parse_number,
    parse_term,
    utc_timestamp,
)
from features.serving import EventField, SourceColumns
from onnx_models.card import ModelCard
from stream.decisions import Decision, DecisionError

SubmittedAt = Literal["now", "original"]
# One row of a loan file: column name -> cell (text as read from a CSV, or any value a frame
# holds); every reader checks the cell it reads.
LoanRow = Mapping[str, object]


@dataclass(frozen=True)
class EventLayout:
    """Which columns of a loan file make a model's application event: its event fields (with
    the check each must pass) and the identity columns, as the model card records them."""

    fields: tuple[EventField, ...]
    columns: SourceColumns
    # The portfolio the file's loans belong to (the card's dataset name): outcomes name it,
    # so the ledger keeps them apart from another portfolio's loans with the same ids.
    portfolio: str = ""
    # The card's monitored fields: sent when the file has them, never required.
    monitored_fields: tuple[str, ...] = ()

    @classmethod
    def from_card(cls, card: ModelCard) -> EventLayout:
        return cls(card.serving_spec().event_fields, card.source_columns(), card.dataset.name,
                   card.monitoring_spec().fields)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return (self.columns.id_column, self.columns.customer_id_column,
                *(item.name for item in self.fields))


@dataclass(frozen=True)
class ReplaySummary:
    """What ``replay_applications`` did."""

    topic: str
    requested: int
    sent: int           # acknowledged by Kafka (acks=all)
    failed: int         # refused or timed out; the error of the first one is in first_error
    seconds: float
    first_error: str | None = None
    kind: str = "application events"

    @property
    def events_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        failures = f", {self.failed} failed ({self.first_error})" if self.failed else ""
        return (f"sent {self.sent:,} {self.kind} to {self.topic} in {self.seconds:.2f} s "
                f"({self.events_per_second:,.0f} events/s){failures}")


# ---------------------------------------------------------------- row -> event

def parse_issue_month(value: object) -> datetime | None:
    """First of the issue month, UTC, from 'Dec-11', 'Dec-2011', '2011-12-01' ...; else None."""
    parsed = parse_date(value)
    return parsed.replace(day=1, tzinfo=UTC) if parsed else None


def _number_or_text(value: object) -> int | float | str | None:
    """A JSON number when the text is one (integers stay integers), else the text itself,
    so the worker sees and dead-letters what the file really holds."""
    number = parse_number(value)
    if number is None:
        return _text(value)
    return int(number) if number.is_integer() and abs(number) < 2 ** 53 else number


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _term_or_text(value: object) -> int | str | None:
    term = parse_term(value)
    return term if term is not None else _text(value)


# How a file's text becomes a JSON value, by the field's check: numbers become JSON numbers
# where they read as numbers, everything else is sent as the file has it, so the worker
# sees (and dead-letters) what the file really holds.
_JSON_VALUE: dict[str, Callable[[object], JSONValue]] = {"term": _term_or_text,
                                                      "emp_length": parse_emp_length}


def _json_value(field: EventField, value: object) -> JSONValue:
    convert = _JSON_VALUE.get(field.check)
    if convert is not None:
        return convert(value)
    return _number_or_text(value) if field.kind == "numeric" else _text(value)


def application_event(row: LoanRow, layout: EventLayout,
                      submitted_at: SubmittedAt = "now",
                      now: datetime | None = None) -> JSONObject:
    """The application event for one raw loan-file row (values as read from the CSV)."""
    date_column = layout.columns.date_column
    if submitted_at == "original" and date_column:
        issued = parse_issue_month(row.get(date_column))
        submitted = utc_timestamp(issued) if issued else _text(row.get(date_column))
    else:
        submitted = utc_timestamp(now or datetime.now(UTC))
    event: JSONObject = {
        "application_id": _text(row.get(layout.columns.id_column)),
        "customer_id": _text(row.get(layout.columns.customer_id_column)),
        "submitted_at": submitted,
        **{item.name: _json_value(item, row.get(item.name)) for item in layout.fields},
    }
    for optional in ("emp_title", "title"):
        value = row.get(optional)
        if not is_missing(value):
            event[optional] = str(value)
    for monitored in layout.monitored_fields:
        if monitored in row:
            value = row.get(monitored)
            event[monitored] = None if is_missing(value) else _number_or_text(value)
    return event


def encode_event(event: Mapping[str, JSONValue]) -> tuple[bytes | None, bytes]:
    """Kafka key (the application id, UTF-8; None when the row has none) and JSON value."""
    application_id = event.get("application_id")
    key = application_id.encode() if isinstance(application_id, str) and application_id else None
    return key, json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def read_loan_rows(path: Path, layout: EventLayout, start: int = 0,
                   ) -> Iterator[LoanRow]:
    """Rows of a loan file from data row ``start`` on, as text exactly as written ('' for blank;
    None for cells a short line lacks, e.g. the summary lines at the end of real LC files).
    The file and its header are checked at once; rows are then streamed (constant memory)."""
    return _stream_rows(_checked_file(path, layout.required_columns), start)


def _checked_file(path: Path, required: tuple[str, ...]) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"no loan file at {path}: pass a file of the live model's "
                                "dataset, e.g. loans.csv from `creditrisk data generate`.")
    with _open_text(path) as handle:
        header = set(next(csv.reader(handle), []))
    absent = [column for column in required if column not in header]
    if absent:
        raise ValueError(f"{path} lacks the column(s) {', '.join(absent)} the live model's "
                         "events need. Is this a file of the model's dataset?")
    return path


def _open_text(path: Path) -> TextIO:
    # Undecodable bytes become U+FFFD rather than stopping a replay of a real file.
    return path.open(newline="", encoding="utf-8", errors="replace")


def _stream_rows(path: Path, start: int) -> Iterator[LoanRow]:
    # The csv module rather than pandas: several times faster for row-by-row use.
    with _open_text(path) as handle:
        yield from itertools.islice(csv.DictReader(handle), start, None)


def repeated_loan_rows(path: Path, layout: EventLayout, start: int = 0) -> Iterator[LoanRow]:
    """The file's rows, then the whole file again and again, without end, from row ``start``
    of that endless stream on (a ``start`` past the file's end starts in a later pass).
    Pass n (from 2) suffixes each application id with ``-rN``: every event stays a fresh
    application (a repeated id would meet its stored decision and skip the scoring), while
    the customer, and so the customer's stored features, stay the same. Runs that each start
    where the last one ended therefore never send the same application twice."""
    yield from itertools.islice(_passes(path, layout), start, None)


def _passes(path: Path, layout: EventLayout) -> Iterator[LoanRow]:
    id_column = layout.columns.id_column
    checked = _checked_file(path, layout.required_columns)
    yield from _stream_rows(checked, 0)
    for repeat in itertools.count(2):
        passed = 0
        for row in _stream_rows(checked, 0):
            passed += 1
            application_id = row.get(id_column)
            yield {**row, id_column: f"{application_id}-r{repeat}"} if application_id else row
        if passed == 0:
            return  # a file without data rows repeats to nothing


# ---------------------------------------------------------------- sending

# A paced replay wakes at most this often and sends every event due by then: one wake per
# event (1,000 a second at --rate 1000) cost more CPU than building and sending the events,
# and each wake contended for the interpreter with the Kafka client's sending thread.
PACE_TICK_S = 0.005


class _SteadyPace:
    """Event i is due at start + i / rate (0 = no limit). :meth:`due` sleeps until the next
    event is due, but wakes at most once per tick, and says how many events are due by then.

    Scheduling against the start time (not the previous send) keeps the long-run rate exact
    even though each sleep overshoots a little; a producer that fell behind sends everything
    that is due at once and is back on schedule."""

    def __init__(self, events_per_second: float, tick_s: float = PACE_TICK_S) -> None:
        self.interval = 1.0 / events_per_second if events_per_second > 0 else 0.0
        self.tick_s = tick_s
        self.started = time.perf_counter()
        self.woke = self.started - tick_s
        self.count = 0

    def due(self) -> int:
        if not self.interval:
            return 1
        wake = max(self.started + self.count * self.interval, self.woke + self.tick_s)
        delay = wake - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self.woke = time.perf_counter()
        due = max(int((self.woke - self.started) / self.interval) + 1 - self.count, 1)
        self.count += due
        return due


class _Acknowledgements:
    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.first_error: str | None = None

    def on_sent(self, _metadata: object) -> None:
        self.sent += 1

    def on_failed(self, error: BaseException) -> None:
        self.failed += 1
        if self.first_error is None:
            self.first_error = f"{type(error).__name__}: {error}"


def live_event_layout(registry_dir: Path) -> EventLayout:
    """The event layout of the model the registry serves (what the worker will accept)."""
    from onnx_models.registry import Registry

    registry = Registry(registry_dir)
    version = registry.live_version()
    if version is None:
        raise ValueError(f"no live model in {registry_dir}: the events are built for the live "
                         "model's fields; train or promote a model first")
    return EventLayout.from_card(registry.load(version).card)


def replay_applications(data: Path, settings: Settings, topic: str, count: int, rate: float = 0.0,
                        start: int = 0, submitted_at: SubmittedAt = "now", *,
                        layout: EventLayout, repeat: bool = False,
                        progress: bool = True, producer_options: Mapping[str, object] | None = None
                        ) -> ReplaySummary:
    """Send ``count`` application events from the loan file ``data`` (rows ``start`` on) to
    ``topic`` at ``rate`` events/s (0 = as fast as possible). Stops early at the end of the
    file, unless ``repeat`` (:func:`repeated_loan_rows`: the file again, with fresh
    application ids). Returns once Kafka has acknowledged (or refused) every event."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}.")
    if rate < 0 or start < 0:
        raise ValueError(f"rate and start must not be negative (got rate={rate}, start={start}).")
    if submitted_at not in ("now", "original"):
        raise ValueError(f"submitted_at must be 'now' or 'original', got {submitted_at!r}.")
    rows = (repeated_loan_rows if repeat else read_loan_rows)(Path(data), layout, start)
    # submitted_at is the moment of sending: the event is built after the pace's wait.
    return _send_rows(rows, lambda row: encode_event(application_event(row, layout, submitted_at)),
                      settings, topic, count, rate, progress, "application events",
                      producer_options)


def _send_rows(rows: Iterator[LoanRow],
               message: Callable[[LoanRow], tuple[bytes | None, bytes] | None],
               settings: Settings, topic: str, count: int, rate: float, progress: bool, kind: str,
               producer_options: Mapping[str, object] | None = None) -> ReplaySummary:
    """Send one message per row (None: skip the row) at ``rate`` per second, up to ``count``
    rows; return once Kafka has acknowledged (or refused) every message."""
    from kafka import KafkaProducer
    from tqdm import tqdm

    # Batches of up to 128 KiB (~400 events) cut kafka-python's per-send cost by about a
    # third at full speed. A paced replay sends each event when it is due; the events due in
    # one tick of the pace go in one request (linger of one tick), not one request each.
    # Idempotent with acks=all: a send retried after a lost acknowledgment is written once,
    # and an option that would quietly turn idempotence off raises instead.
    options = {"acks": "all", "enable_idempotence": True,
               "linger_ms": int(PACE_TICK_S * 1000) if rate > 0 else 5,
               "batch_size": 128 * 1024, "compression_type": None} | dict(producer_options or {})
    producer = KafkaProducer(**kafka_python_options(settings, "producer"), **options)
    acknowledgements = _Acknowledgements()
    try:
        # Fetch the topic's metadata now, so the first send does not block inside the
        # paced loop (the schedule would then burst to catch up).
        producer.partitions_for(topic)
        pace = _SteadyPace(rate)
        started = time.perf_counter()
        with tqdm(total=count, unit=kind.rsplit(maxsplit=1)[-1], desc=f"produce → {topic}",
                  disable=not progress) as bar:
            handed_over = 0
            while handed_over < count:
                due = list(itertools.islice(rows, min(pace.due(), count - handed_over)))
                for row in due:
                    # Built when sent: an application's submitted_at is the moment it leaves.
                    built = message(row)
                    if built is not None:
                        future = producer.send(topic, key=built[0], value=built[1])
                        future.add_callback(acknowledgements.on_sent)
                        future.add_errback(acknowledgements.on_failed)
                handed_over += len(due)
                bar.update(len(due))
                if not due:
                    break  # the file ended
        producer.flush()
    finally:
        producer.close()
    return ReplaySummary(topic=topic, requested=count, sent=acknowledgements.sent,
                         failed=acknowledgements.failed, seconds=time.perf_counter() - started,
                         first_error=acknowledgements.first_error, kind=kind)


# ---------------------------------------------------------------- outcomes

def outcome_event(row: LoanRow, columns: SourceColumns, today: datetime | None = None,
                  portfolio: str = "") -> dict[str, str] | None:
    """What servicing reports for one loan-file row of ``portfolio``: its status as of the
    file's outcome date (e.g. the last payment month), else its application date, else today;
    None when the row has no id or status."""
    application_id = _text(row.get(columns.id_column))
    status = _text(row.get(columns.target_column)) if columns.target_column else None
    dates = [parse_issue_month(row.get(name)) for name in
             (columns.outcome_date_column, columns.date_column) if name]
    as_of = next((moment for moment in dates if moment is not None), None) or \
        (today or datetime.now(UTC))
    if not application_id or not status:
        return None
    event = {"application_id": application_id, "loan_status": status,
             "as_of": as_of.date().isoformat()}
    return event | {"portfolio": portfolio} if portfolio else event


def _outcome_message(row: LoanRow, layout: EventLayout) -> tuple[bytes, bytes] | None:
    event = outcome_event(row, layout.columns, portfolio=layout.portfolio)
    if event is None:
        return None
    return event["application_id"].encode(), json.dumps(event, separators=(",", ":")).encode()


def replay_outcomes(data: Path, settings: Settings, topic: str, count: int, start: int = 0,
                    progress: bool = True, *, layout: EventLayout) -> ReplaySummary:
    """Send the outcome of up to ``count`` loans of the file (rows ``start`` on) to ``topic``,
    keyed by application id, as fast as Kafka takes them; rows without one are skipped."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}.")
    columns = layout.columns
    if columns.target_column is None:
        raise ValueError("the live model's card does not name the file's outcome column; "
                         "retrain it with this version of `creditrisk train`")
    rows = _stream_rows(_checked_file(Path(data), (columns.id_column, columns.target_column)),
                        start)
    return _send_rows(rows, lambda row: _outcome_message(row, layout), settings, topic, count,
                      0.0, progress, "loan outcomes")


# ---------------------------------------------------------------- decisions

class ConsumedMessage(Protocol):
    """What this module reads of a message kafka-python's consumer returns."""

    @property
    def value(self) -> bytes | None: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


def decision_line(decision: Decision) -> str:
    """One compact line: id, decision, PD, score, grade, first reason, model version."""
    reasons = decision.reasons
    reason = f"{reasons[0].code} {reasons[0].text}" if reasons else "-"
    if len(reasons) > 1:
        reason += f" (+{len(reasons) - 1})"
    return (f"{decision.application_id}  {decision.decision:<7}  "
            f"PD {decision.probability_of_default:.3f}  score {decision.score}  "
            f"grade {decision.risk_grade}  {reason}  model {decision.model_version}")


def tail_decisions(settings: Settings, topic: str, echo: Callable[[str], None],
                   from_beginning: bool = False, count: int | None = None,
                   idle_timeout_s: float | None = None, as_json: bool = False) -> int:
    """Print decisions from ``topic`` until ``count`` were printed or none arrived for
    ``idle_timeout_s`` seconds (None = follow forever). Returns how many were printed."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, **kafka_python_options(settings, "reader"), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        consumer_timeout_ms=int(idle_timeout_s * 1000) if idle_timeout_s else float("inf"))
    printed = 0
    try:
        for message in consumer:  # ends after idle_timeout_s without a message
            echo(_message_line(message, as_json))
            printed += 1
            if count is not None and printed >= count:
                break
    finally:
        consumer.close()
    return printed


def _message_line(message: ConsumedMessage, as_json: bool) -> str:
    value = message.value or b""
    try:
        decision = Decision.from_json(value)
    except DecisionError as error:
        return (f"[partition {message.partition} offset {message.offset}: not a decision "
                f"({error}), {len(value)} bytes]")
    return value.decode("utf-8") if as_json else decision_line(decision)
