"""Role changes on the real PostgreSQL and a registry of the test's own: a challenger is set
with its audit row, the promotion gate refuses it (too few matured shadowed loans) and
names the criterion, --override --reason promotes it, and `creditrisk model history`
shows every step; the rows cannot be edited; no ledger, no role change."""

from __future__ import annotations

import getpass
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from ledger_harness import private_database, synthetic_decision
from typer.testing import CliRunner, Result

from cli.main import app
from config.json_types import JSONObject
from config.settings import Settings, get_settings
from onnx_models.card import ModelCard
from onnx_models.challengers import challengers
from onnx_models.registry import Registry

pytestmark = [pytest.mark.integration]

CHALLENGER = "20991231T000000Z-0000beef"
REASON = "the bureau's new fields are needed before the quarter closes"


@dataclass(frozen=True)
class Roles:
    settings: Settings  # the test's own ledger database
    registry: Registry
    champion: str


@pytest.fixture
def roles(live_stack: Settings, registry_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    """A private ledger and a registry with the trained champion and a second version."""
    registry = Registry(registry_dir)
    champion = registry.live_version()
    assert champion is not None
    _copy_version(registry, champion, CHALLENGER)
    with private_database(live_stack) as settings:
        monkeypatch.setenv("CREDITRISK_POSTGRES_DATABASE", settings.postgres_database)
        monkeypatch.setenv("CREDITRISK_REGISTRY_DIR", str(registry_dir))
        get_settings.cache_clear()
        try:
            yield Roles(settings, registry, champion)
        finally:
            get_settings.cache_clear()


def _copy_version(registry: Registry, source: str, version: str,
                  extra_event_field: JSONObject | None = None) -> None:
    shutil.copytree(registry.root / source, registry.root / version)
    card_path = registry.root / version / "model.json"
    card = json.loads(card_path.read_text())
    card["version"] = version
    if extra_event_field is not None:
        serving = ModelCard.parse(card).serving_spec().to_card()
        fields = serving["event_fields"]
        assert isinstance(fields, list)
        card["serving"] = {**serving, "event_fields": [*fields, extra_event_field]}
    card_path.write_text(json.dumps(card))


def _creditrisk(*arguments: str) -> Result:
    return CliRunner().invoke(app, list(arguments))


def _changes(settings: Settings) -> list[tuple[str, str, str, list[dict[str, object]], str]]:
    with psycopg.connect(settings.postgres_conninfo()) as connection:
        rows = connection.execute("SELECT action, changed_by, model_version, criteria, reason "
                                  "FROM model_role_changes ORDER BY change_id").fetchall()
    return [(str(a), str(b), str(v), list(c), str(r)) for a, b, v, c, r in rows]


def _shadowed_loans(settings: Settings, champion: str, challenger: str, count: int) -> None:
    """``count`` applications decided by the champion and shadowed by the challenger (the
    same decision and PD), every one with a matured loan, one in four bad."""
    from ledger.rows import decision_row
    from ledger.store import insert_decisions, upsert_outcomes
    from stream.decisions import decision_id

    @dataclass(frozen=True)
    class Read:
        topic: str = "t-roles"
        partition: int = 0
        offset: int = 0

    moment = datetime.now(UTC) - timedelta(days=400)
    decisions, shadows, outcomes = [], [], []
    for index in range(count):
        decision, record = synthetic_decision(index, moment, model_version=champion,
                                              application_id=f"roles-{uuid.uuid4().hex[:8]}")
        decisions.append(decision_row(decision, record, Read(offset=index)))
        shadows.append((decision_id(decision.application_id, challenger),
                        decision.application_id, decision.decision,
                        decision.probability_of_default, decision.score, decision.risk_grade,
                        "[]", challenger, decision.policy_version, decision.decided_at,
                        decision.decision_id, champion, decision.decision, "t-roles-shadow", 0,
                        index))
        bad = index % 4 == 0
        outcomes.append(("", decision.application_id, "Charged Off" if bad else "Fully Paid",
                         "bad" if bad else "good", date.today().isoformat(), "t-roles-outcomes",
                         0, index))
    with psycopg.connect(settings.postgres_conninfo()) as connection:
        insert_decisions(connection, decisions)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO shadow_decisions (decision_id, application_id, decision, "
                "probability_of_default, score, risk_grade, reasons, model_version, "
                "policy_version, decided_at, champion_decision_id, champion_model_version, "
                "champion_decision, source_topic, source_partition, source_offset) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", shadows)
        upsert_outcomes(connection, outcomes)


def _line_of(output: str, version: str) -> str:
    return next(line for line in output.splitlines() if version in line)


def test_a_challenger_failing_the_gate_is_refused_then_promoted_by_override(roles: Roles) -> None:
    set_ = _creditrisk("model", "challenger", CHALLENGER, "--percent", "100", "--by", "alice")
    assert set_.exit_code == 0, set_.output
    listed = _creditrisk("model", "list").output
    assert _line_of(listed, CHALLENGER).endswith("challenger (100 %)")
    assert _line_of(listed, roles.champion).endswith("champion")

    _shadowed_loans(roles.settings, roles.champion, CHALLENGER, 40)
    refused = _creditrisk("model", "promote", CHALLENGER, "--by", "bob")
    assert refused.exit_code == 1, refused.output
    assert f"Promotion of {CHALLENGER} refused" in refused.output
    assert "matured_shadowed_loans" in refused.output
    assert "matured shadowed loans: 40 (at least 500 needed" in refused.output
    assert roles.registry.live_version() == roles.champion  # nothing changed

    too_short = _creditrisk("model", "promote", CHALLENGER, "--override", "--reason", "because")
    assert too_short.exit_code == 1 and "at least 10 characters" in too_short.output

    promoted = _creditrisk("model", "promote", CHALLENGER, "--override", "--reason", REASON,
                           "--by", "carol")
    assert promoted.exit_code == 0, promoted.output
    assert roles.registry.live_version() == CHALLENGER
    assert challengers(roles.registry) == []  # a champion shadows nobody

    changes = _changes(roles.settings)
    assert [(action, who, version) for action, who, version, _, _ in changes] == [
        ("challenger_set", "alice", CHALLENGER), ("promotion_refused", "bob", CHALLENGER),
        ("promoted_by_override", "carol", CHALLENGER)]
    for _, _, _, criteria, _ in changes[1:]:
        assert {"name": "matured_shadowed_loans", "value": 40.0, "limit": 500.0,
                "passed": False} in criteria
    assert changes[2][4] == REASON

    history = _creditrisk("model", "history")
    assert history.exit_code == 0, history.output
    headlines = [line for line in history.output.splitlines() if not line.startswith(" ")]
    assert [line.split()[4] for line in headlines] == [
        "promoted_by_override", "promotion_refused", "challenger_set"]
    assert f"champion was {roles.champion}" in headlines[0] and "by carol" in headlines[0]
    assert "FAIL  matured_shadowed_loans: 40 (limit 500)" in history.output
    assert f"reason: {REASON}" in history.output


def test_a_version_that_never_shadowed_needs_an_override_and_can_be_rolled_back(
        roles: Roles) -> None:
    refused = _creditrisk("model", "promote", CHALLENGER)
    assert refused.exit_code == 1
    assert "no shadow decisions: run it as a challenger first" in refused.output
    promoted = _creditrisk("model", "promote", CHALLENGER, "--override", "--reason", REASON)
    assert promoted.exit_code == 0, promoted.output

    back = _creditrisk("model", "rollback", "--reason", "realised bad rate doubled in a week",
                       "--by", "dave")
    assert back.exit_code == 0, back.output
    assert roles.registry.live_version() == roles.champion
    last = _changes(roles.settings)[-1]
    assert last[:3] == ("rolled_back", "dave", roles.champion)


def test_history_rows_cannot_be_changed(roles: Roles) -> None:
    assert _creditrisk("model", "challenger", CHALLENGER, "--percent", "30").exit_code == 0
    with psycopg.connect(roles.settings.postgres_conninfo()) as connection:
        for statement in ("UPDATE model_role_changes SET changed_by = 'mallory'",
                          "DELETE FROM model_role_changes"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                connection.execute(statement)
            connection.rollback()
    # the row is as written: by the operating-system user, since no --by was given
    assert [change[:3] for change in _changes(roles.settings)] == [
        ("challenger_set", getpass.getuser(), CHALLENGER)]


def test_a_challenger_needing_fields_the_events_lack_is_refused(roles: Roles) -> None:
    other = "20991231T000001Z-0000f00d"
    _copy_version(roles.registry, roles.champion, other,
                  {"name": "bureau_score_v2", "kind": "numeric", "check": "number",
                   "required": True, "nullable": False, "missing_values": []})
    refused = _creditrisk("model", "challenger", other, "--percent", "10")
    assert refused.exit_code == 1
    assert "bureau_score_v2" in refused.output
    assert challengers(roles.registry) == [] and _changes(roles.settings) == []


def test_no_role_changes_without_the_audit_row(roles: Roles,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_POSTGRES_DATABASE", f"absent_{uuid.uuid4().hex[:8]}")
    get_settings.cache_clear()
    refused = _creditrisk("model", "challenger", CHALLENGER, "--percent", "50")
    assert refused.exit_code == 1
    assert "nothing was changed: a role change needs its audit row" in refused.output
    assert challengers(roles.registry) == []
