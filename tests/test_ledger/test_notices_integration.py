"""Adverse-action notices on the stack's real PostgreSQL: every final decline gets one notice,
stored once and never changed; an approval gets none; `creditrisk notices render` writes it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
import pytest
from cards import card_document  # tests/cards.py
from ledger_harness import private_database, synthetic_decision
from test_notices.notice_text import NOTICE_SETTINGS, html_text, pdf_text

from config.settings import Settings
from ledger.finals import insert_final, model_final, record_model_outcomes
from ledger.notices import NoticeRefused, produce_missing_notices, produce_notice, stored_notice
from ledger.rows import decision_row
from ledger.store import insert_decisions
from stream.decisions import Decision
from stream.reasons import Reason

pytestmark = pytest.mark.integration

MODEL_VERSION = "m-test"
REASONS = (Reason("R03", "revol_util", "Revolving credit utilization too high", 0.31),
           Reason("R07", "dti", "Debt-to-income ratio too high", 0.22))
REVIEWER_REASON = "Excessive obligations in relation to income"
COMMENT = "Spoke with the branch manager; internal note only"


@dataclass(frozen=True)
class _Source:
    topic: str = "loan-decisions"
    partition: int = 0
    offset: int = 0


@pytest.fixture
def ledger_settings(live_stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A private ledger, notice settings, and a registry whose card names the amount field."""
    card = tmp_path / "registry" / MODEL_VERSION / "model.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps(card_document(
        feature_set="lending_club",
        feature_params={"feature_set": "lending_club", "reference_annual_rate": 0.12})))
    with private_database(live_stack) as own:
        yield own.model_copy(update={**NOTICE_SETTINGS, "registry_dir": tmp_path / "registry"})


@pytest.fixture
def ledger(ledger_settings: Settings) -> Iterator[psycopg.Connection]:
    with psycopg.connect(ledger_settings.postgres_conninfo(), autocommit=True) as connection:
        yield connection


def _decided(connection: psycopg.Connection, index: int, outcome: str, *,
             lineage: bool = True, reasons: tuple[Reason, ...] = REASONS) -> Decision:
    """A model decision stored as the ledger writer stores it, with its final decision or
    review item."""
    decision, record = synthetic_decision(index, model_version=MODEL_VERSION)
    decision = msgspec.structs.replace(
        decision, decision=outcome, reasons=reasons if outcome != "approve" else ())
    record = dataclasses.replace(record, decision=decision)
    with connection.transaction():
        insert_decisions(connection, [decision_row(decision, record if lineage else None,
                                                   _Source(offset=index))])
        record_model_outcomes(connection, [decision], timedelta(hours=24))
    return decision


def _reviewer_declines(connection: psycopg.Connection, decision: Decision) -> None:
    insert_final(connection, msgspec.structs.replace(
        model_final(msgspec.structs.replace(decision, decision="decline")),
        model_decision="review", decided_by="rita", reason_code="DC03", reason=REVIEWER_REASON,
        comment=COMMENT, decided_at=datetime.now(UTC).isoformat()))


def _count(connection: psycopg.Connection, sql: str = "SELECT count(*) FROM "
           "adverse_action_notices") -> int:
    row = connection.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_every_final_decline_gets_one_stored_notice_and_a_second_run_adds_none(
        ledger: psycopg.Connection, ledger_settings: Settings) -> None:
    declined = [_decided(ledger, index, "decline") for index in (2, 5)]
    _decided(ledger, 8, "decline", lineage=False)
    _decided(ledger, 3, "approve")
    reviewed = _decided(ledger, 4, "review")
    _reviewer_declines(ledger, reviewed)

    assert produce_missing_notices(ledger, ledger_settings) == 4
    assert produce_missing_notices(ledger, ledger_settings) == 0
    assert _count(ledger) == 4

    model_notice = stored_notice(ledger, declined[0].application_id)
    assert model_notice is not None
    assert model_notice.produced_by == "ledger"
    assert model_notice.produced_at.date() == datetime.now(UTC).date()
    assert model_notice.reasons == tuple(reason.text for reason in REASONS)
    text = pdf_text(model_notice.pdf)
    assert f"Applicant: application {declined[0].application_id}" in text
    assert "for credit of 1,002.00" in text  # the card's amount field, loan_amnt
    assert "1. Revolving credit utilization too high 2. Debt-to-income ratio too high" in text
    assert "Equifax Information Services LLC" in text  # the bureau's data was used
    assert "Revolving credit utilization too high" in html_text(model_notice.html)


def test_a_reviewers_decline_prints_their_reason_first_and_never_their_comment(
        ledger: psycopg.Connection, ledger_settings: Settings) -> None:
    _reviewer_declines(ledger, _decided(ledger, 7, "review"))

    notice = produce_notice(ledger, ledger_settings, "app-7", "rita")
    assert notice.reasons == (REVIEWER_REASON, *(reason.text for reason in REASONS))
    assert f"1. {REVIEWER_REASON} 2. Revolving credit utilization too high" in pdf_text(notice.pdf)
    for text in (pdf_text(notice.pdf), html_text(notice.html)):
        assert "branch manager" not in text and "internal note" not in text
    assert produce_notice(ledger, ledger_settings, "app-7", "someone-else") == notice  # stored


def test_an_approved_or_undecided_application_is_refused_and_nothing_is_stored(
        ledger: psycopg.Connection, ledger_settings: Settings) -> None:
    _decided(ledger, 3, "approve")
    _decided(ledger, 6, "review")  # still in the queue

    with pytest.raises(NoticeRefused, match=r"app-3 was approved .*only for a decline"):
        produce_notice(ledger, ledger_settings, "app-3", "rita")
    with pytest.raises(NoticeRefused, match="app-6 has no final decision"):
        produce_notice(ledger, ledger_settings, "app-6", "rita")
    assert _count(ledger) == 0
    assert stored_notice(ledger, "app-3") is None


def test_a_decline_overridden_to_approve_owes_no_notice_and_one_overridden_to_decline_does(
        ledger: psycopg.Connection, ledger_settings: Settings) -> None:
    declined = _decided(ledger, 2, "decline")
    approved = _decided(ledger, 3, "approve")
    for decision, outcome, reason in ((declined, "approve", "Income and employment verified by "
                                       "documents"), (approved, "decline", REVIEWER_REASON)):
        insert_final(ledger, msgspec.structs.replace(
            model_final(decision), revision=2, final_decision=outcome, decided_by="rita",
            approved_by="alex", reason_code="X", reason=reason))

    assert produce_missing_notices(ledger, ledger_settings) == 1
    assert stored_notice(ledger, "app-2") is None
    overridden = stored_notice(ledger, "app-3")
    assert overridden is not None and overridden.reasons == (REVIEWER_REASON,)
    with pytest.raises(NoticeRefused, match="approved"):
        produce_notice(ledger, ledger_settings, "app-2", "rita")


def test_a_decline_with_a_vague_reason_is_refused_without_holding_up_the_others(
        ledger: psycopg.Connection, ledger_settings: Settings) -> None:
    _decided(ledger, 2, "decline", reasons=(Reason("R99", "x", "Insufficient credit score", 0.5),))
    _decided(ledger, 5, "decline")

    assert produce_missing_notices(ledger, ledger_settings, limit=1) == 0  # app-2, refused
    assert produce_missing_notices(ledger, ledger_settings, limit=1) == 1  # app-5
    assert produce_missing_notices(ledger, ledger_settings) == 0
    with pytest.raises(NoticeRefused, match="'Insufficient credit score' is not specific"):
        produce_notice(ledger, ledger_settings, "app-2", "rita")
    assert stored_notice(ledger, "app-2") is None and stored_notice(ledger, "app-5") is not None


def test_a_notice_row_cannot_be_changed_or_deleted(ledger: psycopg.Connection,
                                                   ledger_settings: Settings) -> None:
    _decided(ledger, 2, "decline")
    produce_missing_notices(ledger, ledger_settings)
    for statement in ("UPDATE adverse_action_notices SET html = 'changed'",
                      "DELETE FROM adverse_action_notices"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            ledger.execute(statement)
    assert _count(ledger, "SELECT count(*) FROM adverse_action_notices WHERE html <> 'changed'") == 1


def test_missing_settings_stop_the_run_and_name_the_variables(
        ledger: psycopg.Connection, ledger_settings: Settings) -> None:
    from notices.content import NoticeSettingsMissing

    _decided(ledger, 2, "decline")
    unset = ledger_settings.model_copy(update={"notice_agency_name": None})
    with pytest.raises(NoticeSettingsMissing, match="CREDITRISK_NOTICE_AGENCY_NAME"):
        produce_missing_notices(ledger, unset)
    assert _count(ledger) == 0


def _creditrisk(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CREDITRISK_POSTGRES_DATABASE": settings.postgres_database,
                   "CREDITRISK_POSTGRES_PORT": str(settings.postgres_port),
                   "CREDITRISK_REGISTRY_DIR": str(settings.registry_dir),
                   **{f"CREDITRISK_{name.upper()}": value for name, value in NOTICE_SETTINGS.items()}}
    return subprocess.run([sys.executable, "-m", "cli.main", *arguments], env=environment,
                          capture_output=True, text=True, timeout=120, check=False)


def test_creditrisk_notices_render_writes_the_pdf_and_html_with_the_reasons(
        ledger: psycopg.Connection, ledger_settings: Settings, tmp_path: Path) -> None:
    _decided(ledger, 2, "decline")
    _decided(ledger, 3, "approve")
    pdf, page = tmp_path / "notice.pdf", tmp_path / "notice.html"

    rendered = _creditrisk(ledger_settings, "notices", "render", "app-2", "--out", str(pdf),
                           "--by", "rita")
    assert rendered.returncode == 0, rendered.stderr
    assert str(pdf) in rendered.stdout and f"{datetime.now(UTC):%Y-%m-%d}" in rendered.stdout
    text = pdf_text(pdf.read_bytes())
    assert "1. Revolving credit utilization too high 2. Debt-to-income ratio too high" in text
    assert "The Federal Equal Credit Opportunity Act prohibits creditors" in text
    assert _creditrisk(ledger_settings, "notices", "render", "app-2", "--out",
                       str(page)).returncode == 0
    assert "Debt-to-income ratio too high" in html_text(page.read_text())
    assert _count(ledger) == 1  # produced once, by rita; the HTML is the stored notice's

    refused = _creditrisk(ledger_settings, "notices", "render", "app-3", "--out",
                          str(tmp_path / "approved.pdf"))
    assert refused.returncode == 1
    assert "app-3 was approved" in refused.stderr
    assert not (tmp_path / "approved.pdf").exists()

    listed = _creditrisk(ledger_settings, "notices", "list")
    assert "app-2" in listed.stdout and "app-3" not in listed.stdout
