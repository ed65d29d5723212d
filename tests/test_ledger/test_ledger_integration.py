"""The decision ledger on the real stack: Kafka → ledger writer → the stack's PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cards import model_card  # tests/cards.py
from ledger_harness import (
    LedgerProcess,
    ledger_count,
    private_database,
    store_records,
    synthetic_decision,
    wait_for_rows,
)
from worker_harness import metric_sum, produce

from config.settings import Settings
from stream.decisions import Decision

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger_settings(namespace) -> Settings:
    with private_database(namespace.settings) as settings:
        yield settings


def _keyed(decisions: list[Decision]) -> list[tuple[bytes, bytes]]:
    return [(d.application_id.encode(), d.to_json()) for d in decisions]


@pytest.mark.slow
def test_ledger_writer_killed_mid_stream_loses_nothing_and_replays_do_not_duplicate(
        namespace, ledger_settings: Settings, tmp_path: Path) -> None:
    pairs = [synthetic_decision(i) for i in range(6_000)]
    decisions = [decision for decision, _ in pairs]
    store_records(namespace.settings, [record for _, record in pairs[:-200]])  # 200 records gone
    ledger = LedgerProcess(namespace, ledger_settings, tmp_path / "registry", tmp_path / "ledger.log")
    ledger.start()
    producer = threading.Thread(target=produce, args=(namespace.settings, namespace.topic_decisions,
                                                      _keyed(decisions), 1_500, "worker"))
    producer.start()
    wait_for_rows(ledger_settings, 1_200, 60)
    ledger.kill()  # SIGKILL mid-stream: an uncommitted batch is read again on restart
    assert ledger_count(ledger_settings) < 6_000
    ledger.start()
    producer.join()
    # A replay of the first 1,000 decisions, as after an upstream re-send, and a bad message.
    produce(namespace.settings, namespace.topic_decisions,
            [*_keyed(decisions[:1_000]), (b"x", b"{not a decision")], role="worker")
    wait_for_rows(ledger_settings, 6_000, 120)
    samples = _metrics_once_read_to_the_end(ledger)

    assert ledger_count(ledger_settings) == 6_000
    assert ledger_count(ledger_settings, "SELECT count(DISTINCT application_id) FROM decisions") == 6_000
    assert ledger_count(ledger_settings, "SELECT count(*) FROM decisions WHERE lineage_complete "
                        "AND application->>'purpose' = 'car' AND features ? 'revol_util' "
                        "AND feature_age_seconds->>'bureau' = '86400.0' AND model_version = 'm-test' "
                        "AND jsonb_array_length(reasons) = 1") == 5_800
    assert ledger_count(ledger_settings, "SELECT count(*) FROM decisions WHERE NOT lineage_complete "
                        "AND application IS NULL") == 200
    assert metric_sum(samples, "creditrisk_ledger_duplicate_decisions_total") >= 1_000
    assert metric_sum(samples, "creditrisk_ledger_errors_total", kind="unreadable_decision") == 1
    assert metric_sum(samples, "creditrisk_ledger_lag_messages", stream="decisions") >= 0
    ledger.stop()


def _metrics_once_read_to_the_end(ledger: LedgerProcess) -> dict[str, float]:
    """The restarted writer's metrics once it has read the bad message and the replayed
    decisions (they sit on different partitions, so either may come last)."""
    import time

    deadline = time.monotonic() + 60
    while True:
        samples = ledger.metrics()
        if (metric_sum(samples, "creditrisk_ledger_errors_total", kind="unreadable_decision") >= 1
                and metric_sum(samples, "creditrisk_ledger_duplicate_decisions_total") >= 1_000) \
                or time.monotonic() > deadline:
            return samples
        time.sleep(0.5)


def test_retention_removes_decisions_older_than_the_period_and_nothing_younger(
        ledger_settings: Settings) -> None:
    import psycopg

    from ledger.rows import decision_row
    from ledger.store import insert_decisions, purge_older_than, upsert_outcomes
    from ledger.writer import LedgerMessage

    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    ages = {"older-26m": now - timedelta(days=26 * 31), "just-older": now - timedelta(days=762),
            "just-younger": now - timedelta(days=760), "recent": now - timedelta(days=3)}
    # 25 months before 2026-06-15 12:00 is 2024-05-15 12:00, 761 days: one day either side
    rows = []
    for index, (name, decided) in enumerate(ages.items()):
        decision, _record = synthetic_decision(index, decided_at=decided, application_id=name)
        rows.append(decision_row(decision, None, LedgerMessage("t", 0, index, None)))
    with psycopg.connect(ledger_settings.postgres_conninfo()) as connection:
        with connection.transaction():
            insert_decisions(connection, rows)
            upsert_outcomes(connection, [("", "older-26m", "Charged Off", "bad",
                                          (now - timedelta(days=800)).date(), "o", 0, 0),
                                         ("", "recent", "Current", "open", now.date(), "o", 0, 1)])
        report = purge_older_than(connection, 25, now=now)
        kept = {row[0] for row in connection.execute("SELECT application_id FROM decisions")}
        outcomes = {row[0] for row in connection.execute("SELECT application_id FROM loan_outcomes")}
    assert report.decisions_removed == 2 and report.outcomes_removed == 1
    assert kept == {"just-younger", "recent"}
    assert outcomes == {"recent"}


def test_purge_command_keeps_the_configured_months(ledger_settings: Settings, tmp_path: Path) -> None:
    import psycopg

    from ledger.rows import decision_row
    from ledger.store import insert_decisions
    from ledger.writer import LedgerMessage

    now = datetime.now(UTC)
    rows = []
    for index, days in enumerate((10, 200, 400)):
        decision, _ = synthetic_decision(index, decided_at=now - timedelta(days=days))
        rows.append(decision_row(decision, None, LedgerMessage("t", 0, index, None)))
    with psycopg.connect(ledger_settings.postgres_conninfo()) as connection, connection.transaction():
        insert_decisions(connection, rows)
    env = {"CREDITRISK_POSTGRES_DATABASE": ledger_settings.postgres_database,
           "CREDITRISK_STACK_DIR": str(ledger_settings.stack_dir), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "cli.main", "ledger", "purge", "--months", "12"],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "removed 1 decisions" in result.stdout
    assert ledger_count(ledger_settings) == 2
    password = ledger_settings.postgres_password_file.read_text().strip()
    assert password not in result.stdout + result.stderr


def test_console_similar_customers_come_from_every_decision_in_the_ledger(ledger_settings: Settings) -> None:
    import psycopg

    from console.card import ConsoleCard, SimilarGroup
    from console.data import RedisDataSource
    from ledger.rows import decision_row
    from ledger.store import insert_decisions
    from ledger.writer import LedgerMessage

    rows = []
    for index in range(1_200):  # more than the few hundred recent records Redis lists
        decision, record = synthetic_decision(
            index, annual_inc=40_000.0 if index % 2 else 90_000.0,
            purpose="car" if index % 3 else "wedding")
        rows.append(decision_row(decision, record, LedgerMessage("t", 0, index, None)))
    with psycopg.connect(ledger_settings.postgres_conninfo()) as connection, connection.transaction():
        insert_decisions(connection, rows)
    source = RedisDataSource(ledger_settings)
    card = ConsoleCard(model_card(feature_set="lending_club"))  # purpose and income band
    similar = source.similar(card, SimilarGroup({"purpose": "car"}, "annual_inc", (30_000.0, 50_000.0)),
                             exclude_application="app-1").records
    expected = {f"app-{i}" for i in range(1_200) if i % 2 and i % 3 and i != 1}
    assert {item.application_id for item in similar} == expected
    assert all(item.application["purpose"] == "car" and item.features for item in similar)
    assert source.similar(card, SimilarGroup({"purpose": "car"}, "annual_inc", (100_000.0, None)),
                          None).records == []


def test_console_find_filters_every_decision_in_the_ledger_newest_first(ledger_settings: Settings) -> None:
    import psycopg

    from console.card import ConsoleCard
    from console.data import RECENT_LIMIT, RedisDataSource
    from console.find import DecisionFilters
    from ledger.rows import decision_row
    from ledger.store import insert_decisions
    from ledger.writer import LedgerMessage

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    expected: list[dict] = []
    rows = []
    for index in range(1_500):  # three times the recent decisions Redis lists
        decision, record = synthetic_decision(
            index, decided_at=now - timedelta(hours=index),
            model_version="m-old" if index >= 1_200 else "m-test",
            purpose=("car", "wedding", "medical")[index % 3 if index % 5 else 1])
        rows.append(decision_row(decision, record, LedgerMessage("t", 0, index, None)))
        expected.append({**decision.to_dict(), **record.application})
    with psycopg.connect(ledger_settings.postgres_conninfo()) as connection, connection.transaction():
        insert_decisions(connection, rows)
    source = RedisDataSource(ledger_settings)
    card = ConsoleCard(model_card(feature_set="lending_club"))

    def found(filters: DecisionFilters, limit: int = 5_000, offset: int = 0) -> list[str]:
        page = source.find(card, filters, limit, offset)
        assert page.searched == "ledger"
        return [record.application_id for record in page.records]

    def wanted(keep) -> list[str]:  # newest first, as the page lists them
        return [d["application_id"] for d in expected if keep(d)]

    everything = source.find(card, DecisionFilters(), 50, 0)
    assert everything.total == 1_500 > RECENT_LIMIT
    assert [r.application_id for r in everything.records] == wanted(lambda d: True)[:50]
    assert everything.records[0].decided_at == datetime.fromisoformat(expected[0]["decided_at"])
    assert everything.unreadable == 0
    assert found(DecisionFilters(), 50, 1_450) == wanted(lambda d: True)[1_450:]  # the oldest page

    declined_e = DecisionFilters(decisions=["decline"], grades=["E"])
    assert found(declined_e) == wanted(lambda d: d["decision"] == "decline" and d["risk_grade"] == "E")
    wedding = DecisionFilters(categories={"purpose": ["wedding", "medical"]}, score_range=(600, 650))
    assert found(wedding) == wanted(lambda d: d["purpose"] in ("wedding", "medical")
                                    and 600 <= d["score"] <= 650)
    assert len(found(wedding)) > 100
    old_days = DecisionFilters(date_range=(date(2026, 10, 1), date(2026, 10, 10)), model_version="m-old")
    assert found(old_days) == wanted(lambda d: d["model_version"] == "m-old"
                                     and "2026-10-01" <= d["decided_at"][:10] <= "2026-10-10")
    assert found(old_days)  # older than the recent decisions in Redis
    customer = expected[1_400]["customer_id"]
    assert found(DecisionFilters(customer_id=customer)) == wanted(lambda d: d["customer_id"] == customer)
    assert found(DecisionFilters(application_id="app-1499")) == ["app-1499"]
    amount = DecisionFilters(amount_field="loan_amnt", amount_range=(2_000.0, 2_010.0))
    assert found(amount) == wanted(lambda d: 2_000.0 <= d["loan_amnt"] <= 2_010.0)
    assert source.find(card, declined_e, 10, 0).total == len(found(declined_e))


def test_console_find_falls_back_to_the_recent_decisions_in_redis(ledger_settings: Settings) -> None:
    from console.card import ConsoleCard
    from console.data import RedisDataSource
    from console.find import DecisionFilters

    pairs = [synthetic_decision(i) for i in range(30)]
    store_records(ledger_settings, [record for _, record in pairs])
    down = ledger_settings.model_copy(update={"postgres_port": 9})
    page = RedisDataSource(down).find(ConsoleCard(model_card(feature_set="lending_club")),
                                      DecisionFilters(decisions=["decline"]))
    assert page.searched == "recent" and page.total == 0  # nothing in decisions:recent


def test_console_finds_a_customer_and_an_old_decision_in_the_ledger(ledger_settings: Settings) -> None:
    """Redis keeps decisions 90 days; the ledger keeps them for the retention period: the
    console reads a customer's applications and a decision gone from Redis from the ledger."""
    import psycopg

    from console.data import RedisDataSource
    from ledger.rows import decision_row
    from ledger.store import insert_decisions
    from ledger.writer import LedgerMessage

    now = datetime.now(UTC)
    pairs = [synthetic_decision(index, decided_at=now - timedelta(days=400 - index))
             for index in (5_000 * k + 7 for k in range(3))]  # one customer: cust-7
    with psycopg.connect(ledger_settings.postgres_conninfo()) as connection, connection.transaction():
        insert_decisions(connection, [decision_row(decision, record, LedgerMessage("t", 0, i, None))
                                      for i, (decision, record) in enumerate(pairs)])
    source = RedisDataSource(ledger_settings)
    assert source.customer_application_ids("cust-7").items == ["app-10007", "app-5007", "app-7"]
    assert source.customer_application_ids("cust-8").items == []
    old = source.record("app-7")  # 400 days old: not in Redis
    assert old is not None
    assert old.decision.decision_id == pairs[0][0].decision_id
    assert old.decision.score == pairs[0][0].score
    assert old.application["purpose"] == "car" and old.features["revol_util"] == 55.0
    assert old.decision.reasons[0].code == "R03"
    worker = pairs[0][1]  # the worker's record (the ledger keeps times to the millisecond)
    assert old.decision.reasons == worker.decision.reasons
    assert (old.application, old.features, old.velocity, old.feature_age_seconds) == \
        (worker.application, worker.features, worker.velocity, worker.feature_age_seconds)
    assert source.record("never-decided") is None
