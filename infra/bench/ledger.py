"""Ledger benchmarks: write throughput of the ledger writer, and the console's similar-customer
look-up and Find page filters on a ledger of a million decisions. Runs in a database of its
own, dropped after."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from config.settings import Settings

if TYPE_CHECKING:
    from console.find import DecisionFilters
    from stream.decisions import Decision, DecisionRecord

PURPOSES = ("debt_consolidation", "credit_card", "home_improvement", "car", "small_business",
            "medical", "wedding", "moving")
INCOME_BANDS = ((0.0, 30_000.0), (30_000.0, 50_000.0), (50_000.0, 75_000.0), (75_000.0, 100_000.0),
                (100_000.0, 150_000.0), (150_000.0, None))


@contextmanager
def bench_database(settings: Settings) -> Iterator[Settings]:
    """A throw-away ledger database (and Redis key prefix) for one benchmark."""
    from ledger.schema import temporary_database

    with temporary_database(settings, "bench") as own:
        yield own.model_copy(update={"key_prefix": f"bench-ledger:{own.postgres_database}:"})


def _decision(index: int, moment: datetime) -> tuple[Decision, DecisionRecord]:
    from stream.decisions import Decision, DecisionRecord, decision_id
    from stream.reasons import Reason

    application_id = f"bench-{index}"
    probability = (index * 7919 % 1000) / 2000
    decision = Decision(
        application_id=application_id, customer_id=f"c{index % 400_000}",
        decision_id=decision_id(application_id, "bench"),
        decision=("approve", "review", "decline")[index % 3],
        probability_of_default=probability, score=700 - int(probability * 300),
        risk_grade="ABCDEFG"[index % 7],
        reasons=(Reason("R03", "revol_util", "High utilisation of revolving credit", 0.04),),
        model_version="bench", policy_version="bench",
        submitted_at=moment.isoformat(), decided_at=moment.isoformat())
    application = {"loan_amnt": 5_000.0 + index % 30_000, "term": 36,
                   "purpose": PURPOSES[index % len(PURPOSES)],
                   "annual_inc": float(20_000 + (index * 104_729) % 180_000), "emp_length": 5.0,
                   "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "CA"}
    features = {"revol_util": 41.2, "delinq_2yrs": 0, "inq_last_6mths": 1, "open_acc": 9,
                "total_acc": 20, "pub_rec": 0, "revol_bal": 8000.5, "monthly_debt": 950.0,
                "earliest_cr_line": "2004-05-01", "applications_24h": 1, "applications_7d": 1,
                **application}
    record = DecisionRecord(decision, application, features, [],
                            {"applications_24h": 1, "applications_7d": 1}, {"bureau": 86_400.0})
    return decision, record


def bench_write_throughput(settings: Settings, echo: Callable[[str], None], rows: int = 50_000,
                           batch: int = 1_000) -> float:
    """The writer's own path (Redis lineage read + COPY + INSERT … ON CONFLICT + commit) per
    batch, fed from memory so Kafka is not what is measured."""
    from features.store import sync_client
    from ledger.cards import RegistryCards
    from ledger.metrics import LedgerMetrics
    from ledger.writer import LedgerMessage, LedgerWriter
    from stream.decisions import decision_key

    client = sync_client(settings, "admin")
    now = datetime.now(UTC)
    pairs = [_decision(i, now) for i in range(rows)]
    pipe = client.pipeline(transaction=False)
    for decision, record in pairs:
        pipe.set(decision_key(settings.key_prefix, decision.application_id), record.to_json(),
                 ex=3600)
    pipe.execute()
    messages = [LedgerMessage(settings.topic_decisions, 0, i, d.to_json())
                for i, (d, _) in enumerate(pairs)]
    cards = RegistryCards(settings.registry_dir, settings.outcome_dataset)
    writer = LedgerWriter(settings, cards, LedgerMetrics(), client)
    try:
        started = time.perf_counter()
        for first in range(0, rows, batch):
            writer.write(messages[first:first + batch])
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        writer.write(messages[:batch])  # a redelivered batch: every row already there
        redelivered = time.perf_counter() - again
    finally:
        writer.close()
        keys = [decision_key(settings.key_prefix, d.application_id) for d, _ in pairs]
        for first in range(0, len(keys), 10_000):
            client.delete(*keys[first:first + 10_000])
        client.close()
    rate = rows / seconds
    echo(f"  ledger write: {rows:,} decisions in batches of {batch:,}: {seconds:.1f}s = "
         f"{rate:,.0f} rows/s ({seconds / (rows / batch) * 1000:.0f} ms per batch); "
         f"a redelivered batch of {batch:,}: {redelivered * 1000:.0f} ms")
    return rate


def bench_similar_lookup(settings: Settings, echo: Callable[[str], None],
                         rows: int = 1_000_000) -> None:
    """Fill the ledger to ``rows`` decisions with COPY, then time the console's query."""
    import psycopg

    from console.data import RedisDataSource
    from ledger.rows import DECISION_COLUMNS, decision_row
    from ledger.writer import LedgerMessage

    now = datetime.now(UTC)
    started = time.perf_counter()
    with psycopg.connect(settings.postgres_conninfo()) as connection:
        with connection.cursor() as cursor, \
                cursor.copy(f"COPY decisions ({', '.join(DECISION_COLUMNS)}) FROM STDIN") as copy:
            for index in range(rows):
                decision, record = _decision(index, now - timedelta(minutes=index))
                copy.write_row(decision_row(decision, record, LedgerMessage("bench", 0, index, None)))
        connection.commit()
        connection.execute("ANALYZE decisions")
        connection.commit()
        size = connection.execute("SELECT pg_size_pretty(pg_total_relation_size('decisions'))").fetchone()
    echo(f"  ledger filled with {rows:,} decisions by COPY in {time.perf_counter() - started:.0f}s "
         f"({size[0] if size else '?'} with indexes)")
    from console.card import ConsoleCard, SimilarGroup

    source = RedisDataSource(settings)
    from onnx_models.card import ModelCard

    # Only the Lending Club serving contract is needed to group customers: no model.
    contract: dict[str, Any] = {"feature_set": "lending_club", "features": (), "serving": None}
    card = ConsoleCard(ModelCard.model_construct(**contract))
    timings, sizes = [], []
    for round_ in range(3):
        for purpose in PURPOSES:
            for band in INCOME_BANDS:
                began = time.perf_counter()
                group = SimilarGroup({"purpose": purpose}, "annual_inc", band)
                found = source.similar(card, group, exclude_application="bench-0")
                if round_:  # the first round warms the cache
                    timings.append(time.perf_counter() - began)
                    sizes.append(len(found.records))
    timings.sort()
    echo(f"  similar-customer look-up (purpose + income band, newest {max(sizes):,} with their "
         f"features): median {statistics.median(timings) * 1000:.0f} ms, p95 "
         f"{timings[int(len(timings) * 0.95)] * 1000:.0f} ms over {len(timings)} look-ups "
         f"(groups of {min(sizes):,}–{max(sizes):,})")
    bench_find_filters(settings, echo, now)


def find_filters_to_time(now: datetime) -> dict[str, DecisionFilters]:
    """The Find page's filters a relationship manager would set, by name."""
    from console.find import DecisionFilters

    last_month = ((now - timedelta(days=30)).date(), now.date())
    return {
        "no filter (newest 50 and the total)": DecisionFilters(),
        "decision = decline": DecisionFilters(decisions=["decline"]),
        "risk grade E or F": DecisionFilters(grades=["E", "F"]),
        "score 600-620": DecisionFilters(score_range=(600, 620)),
        "purpose wedding": DecisionFilters(categories={"purpose": ["wedding"]}),
        "purpose car + decline + last 30 days": DecisionFilters(
            decisions=["decline"], categories={"purpose": ["car"]}, date_range=last_month),
        "one customer": DecisionFilters(customer_id="c12345"),
        "model version + a day a year ago": DecisionFilters(
            model_version="bench", date_range=((now - timedelta(days=365)).date(),) * 2),
        "loan amount 10,000-10,100": DecisionFilters(amount_field="loan_amnt",
                                                     amount_range=(10_000.0, 10_100.0)),
    }


def bench_find_filters(settings: Settings, echo: Callable[[str], None], now: datetime,
                       rounds: int = 5) -> None:
    """The Find page's query (the total that match, then the newest page of 50) per filter."""
    import psycopg

    from console.find import PAGE_SIZE, find_in_ledger

    all_timings = []
    with psycopg.connect(settings.postgres_conninfo()) as connection:
        for name, filters in find_filters_to_time(now).items():
            timings = []
            for round_ in range(rounds + 1):
                began = time.perf_counter()
                page = find_in_ledger(connection, filters, PAGE_SIZE, 0)
                if round_:  # the first round warms the cache
                    timings.append(time.perf_counter() - began)
            all_timings += timings
            echo(f"  find page, {name}: {page.total:,} match, median "
                 f"{statistics.median(timings) * 1000:.0f} ms")
    all_timings.sort()
    echo(f"  find page over all filters: median {statistics.median(all_timings) * 1000:.0f} ms, "
         f"p95 {all_timings[int(len(all_timings) * 0.95)] * 1000:.0f} ms over {len(all_timings)} queries")
