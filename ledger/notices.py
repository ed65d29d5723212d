"""Stored adverse-action notices: every final decline gets one, produced once.

A notice belongs to one final decision (``final_id``): the application's current one, its
highest revision. It is built from the ledger's rows — the final decision's reason, the
model decision's reasons, lineage, date and application — by :mod:`notices`, and stored
with the date it was produced in ``adverse_action_notices`` (append-only, one per final
decision). Producing it again returns the stored one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from config.settings import Settings
from ledger.finals import FinalDecisionMessage
from notices.content import NoticeContent, NoticeError, NoticeSettingsMissing, build_notice
from notices.render import to_html, to_pdf
from stream.reasons import Reason

if TYPE_CHECKING:
    from ledger.store import Ledger

log = logging.getLogger(__name__)

# ledger: notices produced by the ledger writer's loop; else the console user who asked.
LEDGER = "ledger"


class NoticeRefused(RuntimeError):
    """No notice can be produced for the application: why, and nothing was changed."""


@dataclass(frozen=True)
class StoredNotice:
    application_id: str
    final_id: int
    produced_at: datetime
    produced_by: str
    reasons: tuple[str, ...]
    html: str
    pdf: bytes


_CURRENT_FINAL = ("SELECT final_id, message FROM final_decisions WHERE application_id = %s "
                  "ORDER BY revision DESC LIMIT 1")
_NOTICE_COLUMNS = "application_id, final_id, produced_at, produced_by, reasons, html, pdf"
# Current final declines (no higher revision) without a notice, oldest first.
_MISSING_NOTICES = (
    "SELECT f.final_id, f.application_id FROM final_decisions f "
    "WHERE f.final_decision = 'decline' AND f.final_id <> ALL(%s) "
    "AND NOT EXISTS (SELECT 1 FROM final_decisions later WHERE later.application_id = "
    "f.application_id AND later.revision > f.revision) "
    "AND NOT EXISTS (SELECT 1 FROM adverse_action_notices n WHERE n.final_id = f.final_id) "
    "ORDER BY f.decided_at, f.final_id LIMIT %s")
_MODEL_DECISION = ("SELECT reasons, feature_age_seconds, submitted_at, application, "
                   "model_version FROM decisions WHERE decision_id = %s")


def produce_notice(connection: Ledger, settings: Settings, application_id: str,
                   produced_by: str) -> StoredNotice:
    """The notice of the application's current final decision, produced and stored now
    unless it already was. :class:`NoticeRefused` when the application has no final
    decision, was approved, or its notice cannot be written (reasons, settings)."""
    with connection.transaction():
        final_id, final = _current_final(connection, application_id)
        stored = _notice_of(connection, final_id)
        if stored is not None:
            return stored
        try:
            content = _content(connection, settings, final,
                               _now(connection).date())
        except NoticeError as error:
            raise NoticeRefused(f"no notice for application {application_id}: {error}") from error
        row = connection.execute(
            f"INSERT INTO adverse_action_notices ({_NOTICE_COLUMNS}) "
            "VALUES (%s, %s, now(), %s, %s, %s, %s) ON CONFLICT (final_id) DO NOTHING "
            f"RETURNING {_NOTICE_COLUMNS}",
            (application_id, final_id, produced_by, json.dumps(list(content.reasons)),
             to_html(content), to_pdf(content))).fetchone()
    if row is None:  # another process stored it first
        stored = _notice_of(connection, final_id)
        if stored is None:
            raise NoticeRefused(f"the notice of application {application_id} was stored by "
                                "someone else and cannot be read back")
        return stored
    return _stored(row)


def stored_notice(connection: Ledger, application_id: str) -> StoredNotice | None:
    """The stored notice of the application's current final decision, or None (no final
    decision, an approval, or not produced yet)."""
    row = connection.execute(
        f"SELECT {', '.join('n.' + c for c in _NOTICE_COLUMNS.split(', '))} "
        "FROM adverse_action_notices n JOIN (SELECT final_id FROM final_decisions "
        "WHERE application_id = %s ORDER BY revision DESC LIMIT 1) f USING (final_id)",
        (application_id,)).fetchone()
    return None if row is None else _stored(row)


# Final declines whose notice could not be written (their reasons were refused), per
# database: skipped by later calls of this process, so they never hold up the others nor
# fill the log. They stay without a notice, which the overdue-notice alert reports.
_refused_finals: dict[tuple[str, int, str], set[int]] = {}


def produce_missing_notices(connection: Ledger, settings: Settings, limit: int = 500) -> int:
    """A notice for every current final decline that has none (oldest first, at most
    ``limit``), each produced by ``'ledger'`` in a transaction of its own; how many were
    produced. Missing creditor or agency settings raise :class:`NoticeSettingsMissing`."""
    info = connection.info
    refused = _refused_finals.setdefault((info.host, info.port, info.dbname), set())
    with connection.transaction():
        rows = connection.execute(_MISSING_NOTICES, (sorted(refused), limit)).fetchall()
    produced = 0
    for final_id, application_id in rows:
        try:
            produce_notice(connection, settings, str(application_id), LEDGER)
        except NoticeRefused as error:
            if isinstance(error.__cause__, NoticeSettingsMissing):
                raise error.__cause__ from None
            refused.add(int(str(final_id)))
            log.warning("%s", error)
            continue
        produced += 1
    return produced


@dataclass(frozen=True)
class DeclineNotice:
    """A current final decline and when its notice was produced (None: not yet)."""

    application_id: str
    declined_at: datetime
    declined_by: str
    notice_produced_at: datetime | None


def final_declines(connection: Ledger, missing_only: bool = False,
                   limit: int = 100) -> list[DeclineNotice]:
    """Current final declines with their notice's date, oldest decision first."""
    rows = connection.execute(
        "SELECT f.application_id, f.decided_at, f.decided_by, n.produced_at "
        "FROM final_decisions f LEFT JOIN adverse_action_notices n USING (final_id) "
        "WHERE f.final_decision = 'decline' AND NOT EXISTS (SELECT 1 FROM final_decisions "
        "later WHERE later.application_id = f.application_id AND later.revision > f.revision) "
        "AND (NOT %s OR n.final_id IS NULL) ORDER BY f.decided_at, f.final_id LIMIT %s",
        (missing_only, limit)).fetchall()
    return [DeclineNotice(str(application_id), _utc(declined_at), str(declined_by),
                          None if produced_at is None else _utc(produced_at))
            for application_id, declined_at, declined_by, produced_at in rows]


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a time from PostgreSQL, got {type(value).__name__}")
    return value.astimezone(UTC)


def _current_final(connection: Ledger, application_id: str) -> tuple[int, FinalDecisionMessage]:
    row = connection.execute(_CURRENT_FINAL, (application_id,)).fetchone()
    if row is None:
        raise NoticeRefused(f"application {application_id} has no final decision in the ledger "
                            "(not decided yet, still in review, or an unknown id); no notice")
    final = msgspec.convert(_json(row[1]), FinalDecisionMessage)
    if final.final_decision != "decline":
        by = "the model" if final.decided_by == "model" else final.decided_by
        raise NoticeRefused(f"application {application_id} was approved (final decision revision "
                            f"{final.revision}, by {by}): an adverse-action notice is only for a "
                            "decline; nothing was produced")
    return int(str(row[0])), final


def _content(connection: Ledger, settings: Settings, final: FinalDecisionMessage,
             notice_date: date) -> NoticeContent:
    row = connection.execute(_MODEL_DECISION, (final.decision_id,)).fetchone()
    if row is None:
        raise NoticeRefused(f"the model decision {final.decision_id} of application "
                            f"{final.application_id} is no longer in the ledger (purged?); "
                            "its reasons are unknown, so no notice can be written")
    reasons_value, ages, submitted_at, application, model_version = row
    reasons = msgspec.convert(_json(reasons_value), list[Reason])
    if not isinstance(submitted_at, datetime):
        raise NoticeRefused(f"application {final.application_id}: submitted_at is not a time")
    # The reviewer's reason is the plain words of their reason code; their comment is
    # internal and never printed.
    return build_notice(
        settings, application_id=final.application_id,
        application_date=submitted_at.astimezone(UTC).date(), notice_date=notice_date,
        amount=_amount(settings.registry_dir, str(model_version), _json(application)),
        model_reasons=reasons, reviewer_reason=final.reason,
        feature_age_seconds=None if ages is None else msgspec.convert(
            _json(ages), dict[str, float | None]))


def _amount(registry_dir: Path, model_version: str, application: object) -> float | None:
    """The amount applied for: the application's field the model card names as its amount
    (``serving.amount_field``); None when either is unknown."""
    field = _amount_field(registry_dir, model_version)
    if field is None or not isinstance(application, dict):
        return None
    value = application.get(field)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@lru_cache(maxsize=64)
def _amount_field(registry_dir: Path, model_version: str) -> str | None:
    from onnx_models.card import CardError, ModelCard
    from onnx_models.registry import MODEL_CARD

    try:
        document = json.loads((registry_dir / model_version / MODEL_CARD).read_text("utf-8"))
        return ModelCard.parse(document).serving_spec().amount_field
    except (OSError, ValueError, CardError):
        return None


def _notice_of(connection: Ledger, final_id: int) -> StoredNotice | None:
    row = connection.execute(f"SELECT {_NOTICE_COLUMNS} FROM adverse_action_notices "
                             "WHERE final_id = %s", (final_id,)).fetchone()
    return None if row is None else _stored(row)


def _stored(row: tuple[object, ...]) -> StoredNotice:
    application_id, final_id, produced_at, produced_by, reasons, html, pdf = row
    if not isinstance(pdf, bytes | memoryview):
        raise TypeError("an adverse_action_notices row whose pdf is not bytes")
    return StoredNotice(str(application_id), int(str(final_id)), _utc(produced_at),
                        str(produced_by),
                        tuple(str(reason) for reason in msgspec.convert(_json(reasons), list[str])),
                        str(html), bytes(pdf))


def _now(connection: Ledger) -> datetime:
    row = connection.execute("SELECT now()").fetchone()
    return _utc(row[0] if row else None)


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str | bytes) else value
