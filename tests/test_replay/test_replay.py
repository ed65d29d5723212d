"""Replaying a loan file as application events, and following the decisions topic."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from features.serving import LENDING_CLUB_COLUMNS, LENDING_CLUB_SERVING
from replay import core as replay
from replay.cli import decisions_app, produce_command
from replay.core import EventLayout, decision_line, encode_event, tail_decisions
from stream.decisions import Decision
from stream.reasons import Reason

# The layout a Lending Club model's card declares.
LAYOUT = EventLayout(LENDING_CLUB_SERVING.event_fields, LENDING_CLUB_COLUMNS)


def application_event(row: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    return replay.application_event(row, LAYOUT, *args, **kwargs)


def read_loan_rows(path: Path, start: int = 0) -> Any:
    return replay.read_loan_rows(path, LAYOUT, start)


def replay_applications(*args: Any, **kwargs: Any) -> Any:
    return replay.replay_applications(*args, layout=LAYOUT, **kwargs)


CONTRACT_FIELDS = {"application_id", "customer_id", "submitted_at", "loan_amnt", "term", "purpose",
                   "annual_inc", "emp_length", "home_ownership", "verification_status", "addr_state"}


@pytest.fixture(scope="module")
def loans_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.generate import generate_loan_files

    folder = tmp_path_factory.mktemp("replay-data")
    generate_loan_files(rows=1500, seed=8, out_dir=folder, show_progress=False)
    return folder / "loans.csv"


def raw_row(**changes: str) -> dict[str, str]:
    row = {"id": "1077501", "member_id": "1296599", "loan_amnt": "5000", "term": " 36 months",
           "purpose": "credit_card", "annual_inc": "24000.0", "emp_length": "10+ years",
           "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "AZ",
           "issue_d": "Dec-11", "emp_title": "", "title": "Computer"}
    return row | changes


def test_generated_rows_become_contract_events(loans_csv: Path) -> None:
    events = [application_event(row) for row in read_loan_rows(loans_csv)]
    assert len(events) == 1500  # every row, dirty or duplicated
    for event in events:
        assert CONTRACT_FIELDS <= set(event) <= CONTRACT_FIELDS | {"emp_title", "title"}
        assert isinstance(event["application_id"], str) and event["application_id"]
        assert isinstance(event["customer_id"], str) and event["customer_id"]
        assert event["term"] in (36, 60)
        assert event["emp_length"] is None or 0 <= event["emp_length"] <= 10
        assert datetime.fromisoformat(event["submitted_at"]).tzinfo == UTC
        for text_field in ("purpose", "home_ownership", "verification_status", "addr_state"):
            assert isinstance(event[text_field], str)
    amounts = Counter(type(event["loan_amnt"]).__name__ for event in events)
    assert amounts["int"] + amounts["float"] >= 1490


def test_worker_accepts_the_events_of_all_but_the_rows_the_file_broke(loans_csv: Path) -> None:
    from features.serving import LENDING_CLUB_SERVING
    from stream.event_schema import EventSchema
    from stream.validation import ValidApplication, validate_application

    schema = EventSchema.from_spec(LENDING_CLUB_SERVING)
    rows = list(read_loan_rows(loans_csv))
    accepted = [isinstance(validate_application(encode_event(application_event(row))[1], schema),
                           ValidApplication) for row in rows]
    assert sum(accepted) >= 0.99 * len(rows)
    for row, ok in zip(rows, accepted, strict=False):
        if not ok:  # the generator's dirt: unreadable or impossible amounts and incomes
            assert row["loan_amnt"] in ("", "NULL", "-5000") or \
                row["annual_inc"] in ("", "n/a", "0.0", "-45000.0", "9999999.0")


@pytest.mark.parametrize(("raw", "expected"), [
    (" 36 months", 36), ("60 months", 60), ("60", 60), ("12 months", "12 months")])
def test_term_in_months(raw: str, expected: object) -> None:
    assert application_event(raw_row(term=raw))["term"] == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("10+ years", 10), ("< 1 year", 0), ("3 years", 3), ("n/a", None), ("", None)])
def test_employment_length_in_years_or_null(raw: str, expected: object) -> None:
    assert application_event(raw_row(emp_length=raw))["emp_length"] == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("5000", 5000), ("12,500.50", 12500.5), ("-5000", -5000), ("NULL", "NULL"), ("", "")])
def test_amounts_are_numbers_and_broken_ones_are_sent_as_they_are(raw: str, expected: object) -> None:
    event = application_event(raw_row(loan_amnt=raw))
    assert event["loan_amnt"] == expected and type(event["loan_amnt"]) is type(expected)


def test_text_fields_are_passed_as_in_the_file() -> None:
    event = application_event(raw_row(purpose="Debt Consolidation", addr_state="ca ",
                                      home_ownership="rent", emp_title=""))
    assert (event["purpose"], event["addr_state"], event["home_ownership"]) == \
        ("Debt Consolidation", "ca ", "rent")
    assert "emp_title" not in event and event["title"] == "Computer"


def test_submitted_at_now_or_original_issue_month() -> None:
    moment = datetime(2026, 11, 22, 14, 3, 7, 123456, tzinfo=UTC)
    assert application_event(raw_row(), "now", now=moment)["submitted_at"] == "2026-11-22T14:03:07.123Z"
    assert application_event(raw_row(), "original")["submitted_at"] == "2011-12-01T00:00:00.000Z"
    assert application_event(raw_row(issue_d="Jan-2008"), "original")["submitted_at"] == \
        "2008-01-01T00:00:00.000Z"
    # an issue date the file has broken travels as it is; the worker dead-letters it
    assert application_event(raw_row(issue_d="Dce-11"), "original")["submitted_at"] == "Dce-11"


def test_key_is_the_application_id_and_value_json() -> None:
    event = application_event(raw_row())
    key, value = encode_event(event)
    assert key == b"1077501"
    assert json.loads(value) == event
    assert encode_event(application_event(raw_row(id="")))[0] is None


def test_start_skips_rows(loans_csv: Path) -> None:
    everything = [row["id"] for row in read_loan_rows(loans_csv)]
    assert [row["id"] for row in read_loan_rows(loans_csv, start=1000)] == everything[1000:]


def test_file_without_lending_club_columns_is_explained(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("SK_ID_CURR,TARGET\n1,0\n")
    with pytest.raises(ValueError, match=r"lacks the column.*loan_amnt"):
        read_loan_rows(other)


def test_decision_line_is_compact() -> None:
    line = decision_line(Decision(
        application_id="77", customer_id="c", decision_id="d77", decision="decline",
        probability_of_default=0.2512, score=541, risk_grade="F",
        reasons=(Reason("R03", "revol_util", "High utilisation of revolving credit", 0.3),
                 Reason("R01", "loan_amnt", "Large loan amount", 0.1)),
        model_version="v9", policy_version="p", submitted_at="2026-11-20T10:00:00Z",
        decided_at="2026-11-20T10:00:01Z"))
    assert line.split() == ["77", "decline", "PD", "0.251", "score", "541", "grade", "F", "R03",
                            "High", "utilisation", "of", "revolving", "credit", "(+1)", "model", "v9"]


# ---------------------------------------------------------------- on the real Kafka

def read_back(settings, topic: str) -> list:
    """Every message in the applications topic (read as its consumer, the worker), up to
    the end offsets Kafka reports."""
    from kafka import KafkaConsumer, TopicPartition

    from config.kafka_auth import kafka_python_options

    consumer = KafkaConsumer(**kafka_python_options(settings, "worker"), group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end_offsets = consumer.end_offsets(partitions)
        messages = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end_offsets[tp] for tp in partitions):
            assert time.monotonic() < deadline, "timed out reading the topic back"
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
        return messages
    finally:
        consumer.close()


@pytest.mark.integration
def test_replay_sends_every_row_once_keyed_by_application_id(namespace, loans_csv: Path) -> None:
    summary = replay_applications(loans_csv, namespace.settings, namespace.topic_applications, count=500,
                                  rate=0, start=100, progress=False)
    assert (summary.sent, summary.failed) == (500, 0)
    messages = read_back(namespace.settings, namespace.topic_applications)
    assert len(messages) == 500
    expected_ids = [row["id"] for row in read_loan_rows(loans_csv, start=100)][:500]
    assert Counter(message.key.decode() for message in messages) == Counter(expected_ids)
    for message in messages:
        assert json.loads(message.value)["application_id"] == message.key.decode()


@pytest.mark.integration
def test_replay_keeps_the_requested_rate(namespace, loans_csv: Path) -> None:
    started = time.perf_counter()
    summary = replay_applications(loans_csv, namespace.settings,
                                  namespace.topic_applications, count=200, rate=400, progress=False)
    assert summary.sent == 200
    assert time.perf_counter() - started >= 0.45 and summary.seconds >= 0.45
    assert summary.events_per_second <= 420


@pytest.mark.integration
def test_produce_command_stops_at_end_of_file(namespace, loans_csv: Path, tmp_path: Path,
                                              registry_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from config.settings import get_settings

    short = tmp_path / "short.csv"
    short.write_text("".join(loans_csv.open().readlines()[:31]))
    monkeypatch.setenv("CREDITRISK_KAFKA_BOOTSTRAP", namespace.settings.kafka_bootstrap)
    monkeypatch.setenv("CREDITRISK_REGISTRY_DIR", str(registry_dir))  # events for its model
    get_settings.cache_clear()
    app = typer.Typer()
    app.command()(produce_command)
    try:
        result = CliRunner().invoke(app, ["--data", str(short), "--count", "100", "--rate", "0",
                                          "--topic", namespace.topic_applications])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"sent 30 application events to {namespace.topic_applications}" in result.output
    assert len(read_back(namespace.settings, namespace.topic_applications)) == 30


@pytest.mark.integration
def test_produce_to_a_misspelt_topic_is_a_clear_error_and_creates_no_topic(
        namespace, loans_csv: Path, registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from config.settings import get_settings
    from infra.stack.kafka_access import admin_client

    typo = namespace.topic_applications.replace("applications", "aplications")
    monkeypatch.setenv("CREDITRISK_REGISTRY_DIR", str(registry_dir))
    get_settings.cache_clear()
    app = typer.Typer()
    app.command()(produce_command)
    try:
        result = CliRunner().invoke(app, ["--data", str(loans_csv), "--count", "5", "--topic", typo])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "does not exist" in result.output and "--topic" in result.output
    with admin_client(namespace.settings) as admin:
        assert typo not in admin.list_topics()


@pytest.mark.integration
def test_decisions_tail_prints_one_line_per_decision(namespace, monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka import KafkaProducer

    from config.settings import get_settings

    decisions = [Decision(application_id=f"A{index}", customer_id="C1", decision_id=f"d{index}",
                          decision=outcome, probability_of_default=pd_value, score=score,
                          risk_grade=grade, reasons=reasons, model_version="20261122T000000Z-test",
                          policy_version="p", submitted_at="2026-11-22T10:00:00.000Z",
                          decided_at="2026-11-22T10:00:00.100Z")
                 for index, (outcome, pd_value, score, grade, reasons) in enumerate([
                     ("approve", 0.05, 620, "B", ()),
                     ("decline", 0.31, 541, "F", (Reason("R03", "revol_util",
                                                         "High utilisation of revolving credit",
                                                         0.04),))])]
    from config.kafka_auth import kafka_python_options

    producer = KafkaProducer(**kafka_python_options(namespace.settings, "worker"), acks="all")
    for decision in decisions:
        producer.send(namespace.topic_decisions, key=decision.application_id.encode(),
                      value=decision.to_json(), partition=0)
    producer.send(namespace.topic_decisions, value=b"\xff not json", partition=0)
    producer.flush()
    producer.close()

    lines: list[str] = []
    # Stops at the third line; the idle timeout only bounds a tail that never gets there (a
    # busy machine can leave seconds between the first fetch and the next).
    printed = tail_decisions(namespace.settings, namespace.topic_decisions,
                             lines.append, from_beginning=True, count=3, idle_timeout_s=30)
    assert printed == 3
    assert lines[0].split()[:8] == ["A0", "approve", "PD", "0.050", "score", "620", "grade", "B"]
    assert "R03 High utilisation of revolving credit" in lines[1] and "decline" in lines[1]
    assert lines[1].endswith("model 20261122T000000Z-test")
    assert "not a decision" in lines[2] and "offset 2" in lines[2]

    import typer

    cli = typer.Typer()
    cli.add_typer(decisions_app, name="decisions")
    monkeypatch.setenv("CREDITRISK_KAFKA_BOOTSTRAP", namespace.settings.kafka_bootstrap)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["decisions", "tail", "--from-beginning", "--count", "2",
                                                    "--json", "--timeout", "10",
                                                    "--topic", namespace.topic_decisions])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == [d.to_dict() for d in decisions]
