"""The paced replay stays on schedule with few wakes, and --repeat sends fresh applications."""

from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path

import pytest

from features.serving import LENDING_CLUB_COLUMNS, LENDING_CLUB_SERVING
from replay import core as replay
from replay.core import EventLayout

LAYOUT = EventLayout(LENDING_CLUB_SERVING.event_fields, LENDING_CLUB_COLUMNS)


@pytest.fixture
def three_loans(tmp_path: Path) -> Path:
    """A loan file of three loans of three customers."""
    row = {"id": "1077501", "member_id": "1296599", "loan_amnt": "5000", "term": " 36 months",
           "purpose": "credit_card", "annual_inc": "24000.0", "emp_length": "10+ years",
           "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "AZ",
           "issue_d": "Dec-11"}
    loans = tmp_path / "loans.csv"
    with loans.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(row | {"id": f"{row['id']}{n}", "member_id": f"{row['member_id']}{n}"}
                         for n in range(3))
    return loans


def test_pace_sends_at_the_rate_with_one_wake_per_tick() -> None:
    pace = replay._SteadyPace(2_000, tick_s=0.005)
    sent, wakes = 0, 0
    started = time.perf_counter()
    while sent < 400:
        sent += pace.due()
        wakes += 1
    elapsed = time.perf_counter() - started
    assert 0.15 < elapsed < 0.35  # 400 events at 2,000/s: 0.2 s, not early and not drifting
    assert wakes <= 0.35 / 0.005 + 1  # about one wake per 5 ms, not one per event


def test_pace_without_a_rate_never_waits() -> None:
    pace = replay._SteadyPace(0)
    started = time.perf_counter()
    assert sum(pace.due() for _ in range(10_000)) == 10_000
    assert time.perf_counter() - started < 0.5


def test_repeat_starts_again_with_fresh_application_ids_of_the_same_customers(
        three_loans: Path) -> None:
    rows = list(itertools.islice(replay.repeated_loan_rows(three_loans, LAYOUT, start=1), 8))
    ids = [str(row["id"]) for row in rows]
    first_pass = [str(row["id"]) for row in replay.read_loan_rows(three_loans, LAYOUT)]
    assert ids[:2] == first_pass[1:]
    assert ids[2:5] == [f"{loan}-r2" for loan in first_pass]
    assert ids[5:8] == [f"{loan}-r3" for loan in first_pass]
    assert len(set(ids)) == len(ids)  # every event a fresh application
    customers = [row["member_id"] for row in rows]
    assert customers[2:5] == customers[5:8]  # the same customers, so their stored features


def test_runs_that_start_where_the_last_ended_never_send_an_application_twice(
        three_loans: Path) -> None:
    loan_a, loan_b, loan_c = (str(row["id"]) for row in replay.read_loan_rows(three_loans, LAYOUT))
    first = list(itertools.islice(replay.repeated_loan_rows(three_loans, LAYOUT), 4))
    second = list(itertools.islice(replay.repeated_loan_rows(three_loans, LAYOUT, start=4), 4))
    assert [str(row["id"]) for row in first] == [loan_a, loan_b, loan_c, f"{loan_a}-r2"]
    assert [str(row["id"]) for row in second] == [f"{loan_b}-r2", f"{loan_c}-r2",
                                                  f"{loan_a}-r3", f"{loan_b}-r3"]


def test_repeated_events_pass_the_workers_id_check(three_loans: Path) -> None:
    from stream.event_schema import check_application_id

    row = list(itertools.islice(replay.repeated_loan_rows(three_loans, LAYOUT), 4))[-1]
    event = replay.application_event(row, LAYOUT)
    assert check_application_id(event["application_id"]).endswith("-r2")
