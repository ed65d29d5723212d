"""Challengers in the ledger on the real PostgreSQL and Redis: the writer stores shadow
decisions beside the champion's (idempotently, never in the review queue nor as final
decisions), and `creditrisk model compare` prints the swap matrix and the swap sets' bad
rates the test computes itself from the rows it wrote (the console's page:
tests/test_console/test_challenger_view.py)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from ledger_harness import private_database, synthetic_decision

from config.settings import Settings
from ledger.cards import OutcomeClass, OutcomeLabels
from ledger.challenger import compare
from ledger.metrics import LedgerMetrics
from ledger.writer import LedgerMessage, LedgerWriter
from stream.decisions import Decision, ShadowDecision, decision_id

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
CHAMPION, CHALLENGER = "m-champion", "m-challenger"
APPLICATIONS = 900
LABELS = OutcomeLabels(bad_values=("Charged Off",), good_values=("Fully Paid",),
                       excluded_values=("Current",))


class Cards:
    """Lending Club's outcome lists for every portfolio; no registered card."""

    default_portfolio = ""

    def classify(self, portfolio: str, status: str) -> OutcomeClass:
        return LABELS.classify(status)

    def portfolio(self, version: str) -> str:
        return ""

    def card_test(self, version: str) -> None:
        return None

    def version_labels(self, version: str) -> OutcomeLabels:
        return OutcomeLabels()


def _decision_of(probability: float) -> str:
    return "approve" if probability < 0.15 else "decline" if probability >= 0.3 else "review"


@dataclass
class Book:
    """What the test wrote: both models' decisions and the loans' statuses."""

    champion: list[Decision]
    shadows: list[ShadowDecision]
    statuses: dict[str, str | None]   # application id → loan status (None: no outcome)

    def matured(self, application_id: str) -> bool:
        return self.statuses[application_id] in ("Charged Off", "Fully Paid")

    def swap_set(self, champion: str, challenger: str) -> tuple[int, int]:
        """(bad, matured) of the applications the two models decided so."""
        ids = [s.application_id for c, s in zip(self.champion, self.shadows, strict=True)
               if c.decision == champion and s.decision == challenger
               and self.matured(s.application_id)]
        return sum(self.statuses[i] == "Charged Off" for i in ids), len(ids)


def make_book(seed: int = 23) -> Book:
    generator = random.Random(seed)
    champion, shadows, statuses = [], [], {}
    for index in range(APPLICATIONS):
        risk = generator.uniform(0.02, 0.5)
        champion_pd = min(max(risk + generator.uniform(-0.25, 0.25), 0.001), 0.999)
        challenger_pd = min(max(risk + generator.uniform(-0.1, 0.1), 0.001), 0.999)
        base, _record = synthetic_decision(index, application_id=f"cmp-{index}")
        mine = msgspec.structs.replace(
            base, model_version=CHAMPION, decision_id=decision_id(base.application_id, CHAMPION),
            probability_of_default=round(champion_pd, 6), decision=_decision_of(champion_pd))
        theirs = ShadowDecision(**{
            **msgspec.structs.asdict(base), "model_version": CHALLENGER,
            "decision_id": decision_id(base.application_id, CHALLENGER),
            "probability_of_default": round(challenger_pd, 6),
            "decision": _decision_of(challenger_pd), "champion_decision_id": mine.decision_id,
            "champion_model_version": CHAMPION, "champion_decision": mine.decision})
        roll = generator.random()
        statuses[base.application_id] = (None if roll < 0.1 else "Current" if roll < 0.15 else
                                         "Charged Off" if generator.random() < risk else
                                         "Fully Paid")
        champion.append(mine)
        shadows.append(theirs)
    return Book(champion, shadows, statuses)


def _messages(topic: str, values: list[bytes], first_offset: int = 0) -> list[LedgerMessage]:
    return [LedgerMessage(topic, index % 3, first_offset + index, value)
            for index, value in enumerate(values)]


def _outcome(application_id: str, status: str) -> bytes:
    return json.dumps({"application_id": application_id, "loan_status": status,
                       "as_of": "2026-06-01"}).encode()


@pytest.fixture
def ledger(namespace: Any) -> Iterator[Settings]:
    with private_database(namespace.settings) as settings:
        yield settings


@pytest.fixture
def book() -> Book:
    return make_book()


def write_book(settings: Settings, book: Book) -> tuple[LedgerWriter, LedgerMetrics]:
    """The book through the writer's own batches: champion decisions and shadow decisions
    interleaved, then the outcomes, then the shadow decisions once more (a redelivery)."""
    from features.store import sync_client

    metrics = LedgerMetrics()
    writer = LedgerWriter(settings, Cards(), metrics, sync_client(settings, "ledger"))
    champion = _messages(settings.topic_decisions, [d.to_json() for d in book.champion])
    shadow = _messages(settings.topic_shadow_decisions, [d.to_json() for d in book.shadows])
    outcomes = _messages(settings.topic_outcomes, [
        _outcome(application_id, status) for application_id, status in book.statuses.items()
        if status is not None])
    half = APPLICATIONS // 2
    first = writer.write([*champion[:half], *shadow[:half],
                          LedgerMessage(settings.topic_shadow_decisions, 0, 99_999, b"{}")])
    assert first.shadow_new == half and first.unreadable == 1
    writer.write([*champion[half:], *shadow[half:], *outcomes])
    again = writer.write(shadow)
    assert again.shadow_new == 0 and again.shadow_duplicate == APPLICATIONS
    return writer, metrics


def _count(settings: Settings, sql: str) -> int:
    with psycopg.connect(settings.postgres_conninfo()) as connection:
        found = connection.execute(sql).fetchone()
    assert found is not None
    return int(found[0])


def test_the_writer_stores_each_shadow_decision_once_and_never_as_casework(
        ledger: Settings, book: Book) -> None:
    writer, metrics = write_book(ledger, book)
    writer.close()
    assert _count(ledger, "SELECT count(*) FROM shadow_decisions") == APPLICATIONS
    assert _count(ledger, "SELECT count(DISTINCT application_id) FROM shadow_decisions "
                          f"WHERE model_version = '{CHALLENGER}' "
                          f"AND champion_model_version = '{CHAMPION}'") == APPLICATIONS
    reviews = sum(d.decision == "review" for d in book.champion)
    assert _count(ledger, "SELECT count(*) FROM review_items") == reviews
    assert _count(ledger, "SELECT count(*) FROM final_decisions") == APPLICATIONS - reviews
    # Nothing of the challenger's reached the queue, the finals or the champion's decisions.
    for table in ("review_items", "final_decisions", "decisions"):
        assert _count(ledger, f"SELECT count(*) FROM {table} t JOIN shadow_decisions s "
                              "USING (decision_id)") == 0
    assert _count(ledger, "SELECT count(*) FROM decisions") == APPLICATIONS
    registry = metrics.registry
    assert registry.get_sample_value("creditrisk_ledger_rows_written_total",
                                     {"table": "shadow_decisions"}) == APPLICATIONS
    assert registry.get_sample_value("creditrisk_ledger_errors_total",
                                     {"kind": "unreadable_shadow_decision"}) == 1
    assert registry.get_sample_value("creditrisk_ledger_messages_total",
                                     {"stream": "shadow_decisions"}) == 2 * APPLICATIONS + 1
    # The console's role may read them.
    with psycopg.connect(ledger.console_postgres_conninfo()) as console:
        found = console.execute("SELECT count(*) FROM shadow_decisions").fetchone()
    assert found is not None and found[0] == APPLICATIONS


def _expected(book: Book) -> dict[str, tuple[int, int]]:
    sets = {"swap_in": book.swap_set("decline", "approve"),
            "swap_out": book.swap_set("approve", "decline"),
            "unchanged": book.swap_set("approve", "approve")}
    assert all(matured >= 10 for _bad, matured in sets.values()), sets  # the data exercises each
    return sets


def test_the_comparison_equals_the_tests_own_count_of_the_rows_it_wrote(
        ledger: Settings, book: Book) -> None:
    write_book(ledger, book)[0].close()
    with psycopg.connect(ledger.postgres_conninfo()) as connection:
        comparison = compare(connection, Cards(), CHAMPION, CHALLENGER)

    matrix = Counter((c.decision, s.decision) for c, s in zip(book.champion, book.shadows,
                                                              strict=True))
    assert comparison.swap_matrix == {(a, b): matrix[(a, b)] for a in ("approve", "review",
                                                                        "decline")
                                      for b in ("approve", "review", "decline")}
    assert comparison.shadowed == APPLICATIONS
    assert comparison.agreement == pytest.approx(
        sum(c.decision == s.decision for c, s in zip(book.champion, book.shadows, strict=True))
        / APPLICATIONS)
    assert comparison.matured == sum(book.matured(i) for i in book.statuses)
    for name, (bad, matured) in _expected(book).items():
        rate, counted, _applications = comparison.swap_set(name)
        assert counted == matured and rate is not None and rate.count == matured
        assert rate.value == pytest.approx(bad / matured)
        assert rate.low is not None and rate.high is not None and rate.low < rate.value < rate.high
    # Both models on the same matured loans; the challenger's PDs are the less noisy ones.
    for estimate in (comparison.champion_auc, comparison.challenger_auc, comparison.champion_ks,
                     comparison.challenger_ks, comparison.champion_calibration_error,
                     comparison.challenger_calibration_error):
        assert estimate is not None and estimate.count == comparison.matured
    assert comparison.challenger_auc.value > comparison.champion_auc.value  # type: ignore[union-attr]


def _compare_process(settings: Settings, tmp_path: Path, *args: str,
                     ) -> subprocess.CompletedProcess[str]:
    """``compare_command`` as its own process on the test's database (the command is
    registered as `creditrisk model compare` in cli/main.py)."""
    script = ("import typer; from cli.model_compare import compare_command; "
              "app = typer.Typer(); app.command()(compare_command); app()")
    (tmp_path / "registry").mkdir(exist_ok=True)
    password = (settings.postgres_password.get_secret_value() if settings.postgres_password
                else settings.postgres_password_file.read_text().strip())
    env = {**os.environ, "CREDITRISK_POSTGRES_DATABASE": settings.postgres_database,
           "CREDITRISK_POSTGRES_HOST": settings.postgres_host,
           "CREDITRISK_POSTGRES_PORT": str(settings.postgres_port),
           "CREDITRISK_POSTGRES_PASSWORD": password,
           "CREDITRISK_REGISTRY_DIR": str(tmp_path / "registry")}
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_model_compare_prints_the_same_numbers_and_writes_the_report(
        ledger: Settings, book: Book, tmp_path: Path) -> None:
    write_book(ledger, book)[0].close()
    report = tmp_path / "compare.html"
    done = _compare_process(ledger, tmp_path, CHAMPION, CHALLENGER, "--out", str(report))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    matrix = Counter((c.decision, s.decision) for c, s in zip(book.champion, book.shadows,
                                                              strict=True))
    for champion in ("approve", "review", "decline"):
        row = next(line for line in lines if line.strip().startswith(champion))
        assert row.split() == [champion, *(f"{matrix[(champion, c)]:,}"
                                          for c in ("approve", "review", "decline"))]
    words = {"swap_in": "swap-ins", "swap_out": "swap-outs", "unchanged": "unchanged"}
    for name, (bad, matured) in _expected(book).items():
        line = next(line for line in lines if line.strip().startswith(words[name]))
        assert f": {bad / matured:.3f} [" in line and f"on {matured:,} matured loans" in line
    assert any(line.strip().startswith("AUC: champion") for line in lines)
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 3
    assert f"<td>{matrix[('decline', 'approve')]:,}</td>" in page


def test_model_compare_says_which_pairs_exist_when_asked_for_another(
        ledger: Settings, book: Book, tmp_path: Path) -> None:
    write_book(ledger, book)[0].close()
    done = _compare_process(ledger, tmp_path, CHAMPION, "m-never", "--out",
                            str(tmp_path / "x.html"))
    assert done.returncode == 1
    assert "no application decided by champion m-champion and shadowed by challenger m-never" \
        in done.stderr
    assert f"{CHAMPION} vs {CHALLENGER} ({APPLICATIONS:,})" in done.stderr
    assert not (tmp_path / "x.html").exists()


def test_model_compare_says_when_postgres_is_unreachable(live_stack: Settings,
                                                         tmp_path: Path) -> None:
    down = live_stack.model_copy(update={"postgres_port": 9})
    done = _compare_process(down, tmp_path, CHAMPION, CHALLENGER)
    assert done.returncode == 1
    assert "PostgreSQL at" in done.stderr and "creditrisk stack up" in done.stderr



def test_the_ledger_writer_reads_the_shadow_topic(namespace: Any, ledger: Settings,
                                                  book: Book, tmp_path: Path) -> None:
    from ledger_harness import LedgerProcess, wait_for_rows
    from worker_harness import produce

    def keyed(decisions: list[Decision] | list[ShadowDecision]) -> list[tuple[bytes, bytes]]:
        return [(d.application_id.encode(), d.to_json()) for d in decisions]

    writer = LedgerProcess(namespace, ledger, tmp_path / "registry", tmp_path / "ledger.log")
    writer.start()
    try:
        produce(namespace.settings, namespace.topic_decisions, keyed(book.champion[:200]),
                role="worker")
        produce(namespace.settings, namespace.topic_shadow_decisions,
                [*keyed(book.shadows[:200]), *keyed(book.shadows[:50])], role="worker")
        wait_for_rows(ledger, 200, 90, "SELECT count(*) FROM shadow_decisions")
        wait_for_rows(ledger, 200, 30)
    finally:
        writer.stop()
    assert _count(ledger, "SELECT count(*) FROM shadow_decisions") == 200
    reviews = sum(d.decision == "review" for d in book.champion[:200])
    assert _count(ledger, "SELECT count(*) FROM review_items") == reviews
