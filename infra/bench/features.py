"""Feature-store benchmarks: materialization rate and online read latency on real Redis.

Benchmarks print figures; they never pass or fail on a timing.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from config.settings import Settings
from features.definitions import BUREAU_FIELDS, FeatureEncoder
from features.materialize import materialize_bureau_features
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineFeatureReader
from features.serving import LENDING_CLUB_SERVING
from features.store import async_client, sync_client

BENCH_PREFIX = "bench:"
APPLICATION = {"loan_amnt": 15000.0, "term": 36, "purpose": "credit_card", "annual_inc": 72000.0,
               "emp_length": 5.0, "home_ownership": "MORTGAGE",
               "verification_status": "Verified", "addr_state": "NY"}


def write_bureau_table(path: Path, customers: int, seed: int = 1) -> None:
    """A bureau table of the generated layout with ``customers`` rows (values plausible)."""
    rng = np.random.default_rng(seed)
    years = rng.integers(1970, 2012, customers)
    frame = pd.DataFrame({
        "customer_id": [f"b{i}" for i in range(customers)],
        "earliest_cr_line": [f"{y}-{m:02d}-01"
                             for y, m in zip(years, rng.integers(1, 13, customers), strict=True)],
        "delinq_2yrs": rng.poisson(0.3, customers).astype(float),
        "inq_last_6mths": rng.poisson(1.0, customers).astype(float),
        "open_acc": rng.integers(2, 30, customers).astype(float),
        "total_acc": rng.integers(5, 60, customers).astype(float),
        "pub_rec": rng.poisson(0.1, customers).astype(float),
        "revol_bal": rng.gamma(2.0, 8000.0, customers).round(0),
        "revol_util": rng.uniform(0, 100, customers).round(1),
        "mths_since_last_delinq": np.where(rng.random(customers) < 0.5, np.nan,
                                           rng.integers(0, 120, customers)),
        "monthly_debt": rng.gamma(2.0, 500.0, customers).round(2),
        "as_of": "2026-11-01T00:00:00Z",
    })
    frame[["customer_id", *BUREAU_FIELDS, "as_of"]].to_csv(path, index=False)


def bench_materialize(settings: Settings, customers: int, echo: Callable[[str], None]) -> None:
    client = sync_client(settings, "materializer")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bureau.csv"
        started = time.perf_counter()
        write_bureau_table(path, customers)
        echo(f"  bureau table of {customers:,} customers written in {time.perf_counter() - started:.1f}s")
        for run in ("first load", "re-run (idempotent)"):
            report = materialize_bureau_features(path, client, settings.feature_schema_version,
                                                 BENCH_PREFIX, batch_size=5000)
            echo(f"  materialize, {run}: {report.rows_read:,} rows in {report.seconds:.1f}s = "
                 f"{report.rows_per_second:,.0f} rows/s (written {report.written:,})")
    client.close()
    admin = sync_client(settings, "admin")  # INFO is for the admin alone
    used = admin.info("memory")["used_memory"]
    admin.close()
    echo(f"  Redis memory after load: {used / 2**20:,.0f} MiB ({used / customers:,.0f} bytes/customer)")


def bench_online_reads(settings: Settings, customers: int, echo: Callable[[str], None],
                       rounds: dict[int, int] | None = None) -> None:
    rounds = rounds or {1: 3000, 100: 300}
    encoder = _bench_encoder()
    metrics = FeatureStoreMetrics(registry=_fresh_registry())

    async def measure(batch_size: int, iterations: int, with_inputs: bool) -> list[float]:
        client = async_client(settings, "worker")
        reader = OnlineFeatureReader(client, settings.feature_schema_version, BENCH_PREFIX,
                                     metrics=metrics)
        rng = random.Random(batch_size)
        now = datetime(2026, 11, 20, tzinfo=UTC)
        timings = []
        try:
            for i in range(iterations + 20):
                requests = [FeatureRequest(f"bench-{i}-{j}", f"b{rng.randrange(customers)}", now,
                                           APPLICATION) for j in range(batch_size)]
                started = time.perf_counter()
                batch = await reader.read(requests, serving=LENDING_CLUB_SERVING,
                                          record_velocity=True)
                if with_inputs:
                    encoder.transform_records([item.record for item in batch.features])
                if i >= 20:  # warm-up rounds fill the connection pool and caches
                    timings.append(time.perf_counter() - started)
        finally:
            await client.aclose()
        return timings

    for batch_size, iterations in rounds.items():
        for with_inputs in (False, True):
            timings = asyncio.run(measure(batch_size, iterations, with_inputs))
            what = "round trip + model inputs" if with_inputs else "round trip only"
            echo(f"  online read, batch {batch_size:>3}, {what:<26}: "
                 f"p50 {_ms(timings, 50)} ms, p99 {_ms(timings, 99)} ms, "
                 f"mean {statistics.fmean(timings) * 1000:.2f} ms ({iterations} batches)")


def clear_bench_keys(settings: Settings) -> None:
    client = sync_client(settings, "admin")
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{BENCH_PREFIX}*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)
    client.close()


def _bench_encoder() -> FeatureEncoder:
    frame = pd.DataFrame([APPLICATION] * 30)
    return FeatureEncoder(min_category_count=1).fit(frame)


def _fresh_registry() -> CollectorRegistry:
    return CollectorRegistry()


def _ms(timings: list[float], percentile: int) -> str:
    return f"{np.percentile(timings, percentile) * 1000:.2f}"
