"""The console's Challenger page (Streamlit AppTest): the swap matrix, the swap sets' bad rates
and both models on the same loans; with a data source of the test's own (no servers) and on
the real PostgreSQL through the console's own ledger role."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from console_session import ADMIN, APPROVER, REVIEWER, VIEWER, sign_in_as
from streamlit.testing.v1 import AppTest

from config.settings import Settings
from ledger.challenger import SHADOWED_COLUMNS, ShadowPair
from review.users import User

if TYPE_CHECKING:
    from collections.abc import Callable

    from stream.decisions import Decision, DecisionRecord

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
DECISIONS = ("approve", "review", "decline")
WHEN = datetime(2026, 6, 1, tzinfo=UTC)


def _decision(probability: float) -> str:
    return "approve" if probability < 0.15 else "decline" if probability >= 0.3 else "review"


def shadowed_book(count: int = 400, seed: int = 7, outcomes: bool = True) -> pd.DataFrame:
    """Applications both models decided (``SHADOWED_COLUMNS``), the loans' outcomes known for
    most of them when ``outcomes``."""
    generator = random.Random(seed)
    rows = []
    for index in range(count):
        risk = generator.uniform(0.02, 0.5)
        champion = min(max(risk + generator.uniform(-0.25, 0.25), 0.001), 0.999)
        challenger = min(max(risk + generator.uniform(-0.1, 0.1), 0.001), 0.999)
        bad = generator.random() < risk
        status = (None if not outcomes or index % 10 == 0 else
                  "Charged Off" if bad else "Fully Paid")
        outcome = None if status is None else ("bad" if bad else "good")
        rows.append((f"app-{index}", _decision(champion), _decision(challenger), champion,
                     challenger, status, outcome))
    return pd.DataFrame(rows, columns=SHADOWED_COLUMNS)


def _bad_rate(book: pd.DataFrame, champion: str, challenger: str) -> tuple[int, int]:
    """(bad, matured) of the applications the two models decided so: the test's own count."""
    picked = book[(book["champion_decision"] == champion)
                  & (book["challenger_decision"] == challenger) & book["outcome"].notna()]
    return int((picked["outcome"] == "bad").sum()), len(picked)


class BookSource:
    """The page's data source over a frame of the test's own."""

    def __init__(self, book: pd.DataFrame, pairs: list[ShadowPair], live: str | None) -> None:
        self.book, self._pairs, self.live = book, pairs, live
        self.asked: list[tuple[str, str]] = []

    def pairs(self) -> list[ShadowPair]:
        return self._pairs

    def live_version(self) -> str | None:
        return self.live

    def shadowed(self, champion: str, challenger: str) -> pd.DataFrame:
        self.asked.append((champion, challenger))
        return self.book


PAIRS = [ShadowPair("m-2", "m-4", 400, WHEN), ShadowPair("m-1", "m-3", 300, WHEN),
         ShadowPair("m-2", "m-3", 200, WHEN)]


def _page(source: object | None, settings: Settings | None = None) -> AppTest:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), VIEWER, settings)
    if source is not None:
        app.session_state["challenger_source"] = source
    app.session_state["view"] = "Challenger"
    app.run()
    assert not app.exception, app.exception
    return app


def _assert_shows(app: AppTest, book: pd.DataFrame) -> None:
    matrix = Counter(zip(book["champion_decision"], book["challenger_decision"], strict=True))
    assert app.dataframe[0].value.to_numpy().tolist() == [[matrix[(a, b)] for b in DECISIONS]
                                                          for a in DECISIONS]
    rates = app.dataframe[1].value.set_index("Group")
    for group, (champion, challenger) in {"Swap-ins": ("decline", "approve"),
                                          "Swap-outs": ("approve", "decline"),
                                          "Unchanged": ("approve", "approve")}.items():
        bad, matured = _bad_rate(book, champion, challenger)
        assert matured >= 5  # the book exercises every swap set
        assert rates.loc[group, "Matured loans"] == matured
        assert rates.loc[group, "Applications"] == matrix[(champion, challenger)]
        assert str(rates.loc[group, "Bad rate [95 % interval]"]).startswith(f"{bad / matured:.3f} [")


@pytest.mark.parametrize("user", [VIEWER, REVIEWER, APPROVER, ADMIN], ids=lambda user: user.role)
def test_every_role_sees_the_challenger_page(user: User) -> None:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), user)
    app.session_state["challenger_source"] = BookSource(shadowed_book(), [], live=None)
    app.run()
    assert "Challenger" in app.sidebar.radio(key="view").options


def test_the_page_shows_the_swap_matrix_and_the_swap_sets_bad_rates() -> None:
    book = shadowed_book()
    source = BookSource(book, PAIRS, live="m-2")
    app = _page(source)
    # Defaults: the live version, and the challenger that shadowed it latest.
    assert app.selectbox(key="challenger_champion").value == "m-2"
    assert app.selectbox(key="challenger_version").options == ["m-4", "m-3"]
    assert source.asked == [("m-2", "m-4")]
    _assert_shows(app, book)
    models = app.dataframe[2].value.set_index("Figure")
    matured = int(book["outcome"].notna().sum())
    assert list(models.index) == ["Realised AUC", "KS", "Calibration error"]
    assert (models["Loans"] == f"{matured:,}").all()
    assert "Applications decided by both" in [metric.label for metric in app.metric]
    assert app.metric[0].value == "400"


def test_before_outcomes_arrive_the_page_shows_the_matrix_and_says_why_no_bad_rates() -> None:
    book = shadowed_book(outcomes=False)
    app = _page(BookSource(book, PAIRS, live="m-1"))
    assert app.selectbox(key="challenger_champion").value == "m-1"
    assert len(app.dataframe) == 1
    assert "No loan of these applications has a known outcome" in app.info[0].value


def test_without_challenger_decisions_the_page_says_how_to_get_them() -> None:
    app = _page(BookSource(shadowed_book(), [], live="m-1"))
    assert "creditrisk model challenger VERSION --percent P" in app.info[0].value
    assert not app.dataframe


def test_the_page_says_when_the_ledger_is_down() -> None:
    app = _page(None)  # the console's settings: a ledger that answers nowhere
    assert "The Challenger page needs the decision ledger" in app.error[0].value


@pytest.mark.integration
def test_the_page_shows_what_the_ledger_holds(live_stack: Settings, tmp_path: Path) -> None:
    from ledger_harness import private_database, synthetic_decision

    with private_database(live_stack) as ledger:
        book = _write(ledger, shadowed_book(seed=11), synthetic_decision)
        (tmp_path / "registry").mkdir()
        settings = ledger.model_copy(update={"registry_dir": tmp_path / "registry",
                                             "console_metrics_port": 0})
        app = _page(None, settings)
        assert not app.error, [error.value for error in app.error]
        assert app.selectbox(key="challenger_champion").value == "m-champion"
        assert app.selectbox(key="challenger_version").value == "m-challenger"
        _assert_shows(app, book)


def _write(settings: Settings, book: pd.DataFrame,
           synthetic_decision: Callable[..., tuple[Decision, DecisionRecord]]) -> pd.DataFrame:
    """The book as ledger rows: champion decisions, shadow decisions, outcomes."""
    import msgspec
    import psycopg

    from ledger.challenger import insert_shadow_decisions
    from ledger.rows import decision_row, shadow_row
    from ledger.store import insert_decisions, upsert_outcomes
    from stream.decisions import ShadowDecision, decision_id

    source = SimpleNamespace(topic="t", partition=0, offset=0)
    decisions, shadows, outcomes = [], [], []
    for index, row in enumerate(book.to_dict("records")):
        application_id = str(row["application_id"])
        base, _record = synthetic_decision(index, application_id=application_id)
        mine = msgspec.structs.replace(
            base, model_version="m-champion", probability_of_default=row["champion_pd"],
            decision_id=decision_id(application_id, "m-champion"),
            decision=row["champion_decision"])
        theirs = ShadowDecision(**{
            **msgspec.structs.asdict(base), "model_version": "m-challenger",
            "decision_id": decision_id(application_id, "m-challenger"),
            "probability_of_default": row["challenger_pd"],
            "decision": row["challenger_decision"], "champion_decision_id": mine.decision_id,
            "champion_model_version": "m-champion", "champion_decision": mine.decision})
        decisions.append(decision_row(mine, None, source))
        shadows.append(shadow_row(theirs, source))
        if row["loan_status"] is not None:
            outcomes.append(("", application_id, str(row["loan_status"]), str(row["outcome"]),
                             WHEN.date(), "o", 0, index))
    with psycopg.connect(settings.postgres_conninfo()) as connection, connection.transaction():
        insert_decisions(connection, decisions)
        insert_shadow_decisions(connection, shadows)
        upsert_outcomes(connection, outcomes)
    return book
