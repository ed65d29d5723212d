"""Feature-store benchmarks: materialization rate and online read latency on real Redis, and
the same batch reads on a single Redis beside a Redis Cluster (:func:`bench_cluster_reads`).

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
from features.store import SyncRedis, async_client, is_cluster, sync_client
from infra.stack.redis_keys import delete_keys

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
    used = _used_memory(admin)
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
    try:
        delete_keys(client, BENCH_PREFIX, batch=10_000)
    finally:
        client.close()


def _used_memory(admin: SyncRedis) -> int:
    """Bytes Redis uses for data: every primary's, on a cluster."""
    if is_cluster(admin):
        per_node = admin.info("memory", target_nodes="primaries")
        return sum(int(info["used_memory"]) for info in per_node.values())
    return int(admin.info("memory")["used_memory"])


def bench_cluster_reads(customers: int, echo: Callable[[str], None], batch_size: int = 200,
                        iterations: int = 300, workdir: Path | None = None) -> None:
    """Batch reads of ``batch_size`` customers on a Redis of its own beside a Redis Cluster of
    its own (three primaries, one replica each), key schema v2 and the stack's ACL users on
    both, measured in alternating rounds so that the machine's load falls on both alike."""
    from infra.stack.private import PrivateRedis, PrivateRedisCluster

    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        root = Path(folder)
        single = PrivateRedis(root / "single", users=True)
        cluster = PrivateRedisCluster(root / "cluster", users=True)
        single.start()
        cluster.start()
        try:
            stores = {"single Redis": single.settings.model_copy(
                          update={"feature_schema_version": "v2"}),
                      "Redis Cluster": cluster.settings}
            write_bureau_table(root / "bureau.csv", customers)
            for name, settings in stores.items():
                client = sync_client(settings, "materializer")
                report = materialize_bureau_features(root / "bureau.csv", client, "v2",
                                                     BENCH_PREFIX, batch_size=5000)
                client.close()
                echo(f"  {name}: materialized {report.rows_read:,} rows at "
                     f"{report.rows_per_second:,.0f} rows/s")
            timings: dict[str, list[float]] = {name: [] for name in stores}
            for round_number in range(4):  # alternate, a quarter of the batches each time
                for name, settings in stores.items():
                    timings[name] += asyncio.run(_timed_batches(
                        settings, customers, batch_size, iterations // 4, seed=round_number))
            reference = statistics.median(timings["single Redis"])
            for name, values in timings.items():
                echo(f"  batch read of {batch_size} customers, {name:<13}: p50 {_ms(values, 50)} ms, "
                     f"p99 {_ms(values, 99)} ms ({statistics.median(values) / reference:.2f}x "
                     f"the single Redis's p50, {len(values)} batches)")
        finally:
            cluster.stop()
            single.stop()


async def _timed_batches(settings: Settings, customers: int, batch_size: int, iterations: int,
                         seed: int) -> list[float]:
    client = async_client(settings, "worker")
    reader = OnlineFeatureReader(client, "v2", BENCH_PREFIX,
                                 metrics=FeatureStoreMetrics(registry=_fresh_registry()))
    rng = random.Random(seed)
    now = datetime(2026, 11, 20, tzinfo=UTC)
    timings = []
    try:
        for i in range(iterations + 10):
            requests = [FeatureRequest(f"bench-{seed}-{i}-{j}", f"b{rng.randrange(customers)}",
                                       now, APPLICATION) for j in range(batch_size)]
            started = time.perf_counter()
            await reader.read(requests, serving=LENDING_CLUB_SERVING, record_velocity=True)
            if i >= 10:  # warm-up: connections to every node, the script loaded
                timings.append(time.perf_counter() - started)
    finally:
        await client.aclose()
    return timings


def _bench_encoder() -> FeatureEncoder:
    frame = pd.DataFrame([APPLICATION] * 30)
    return FeatureEncoder(min_category_count=1).fit(frame)


def _fresh_registry() -> CollectorRegistry:
    return CollectorRegistry()


def _ms(timings: list[float], percentile: int) -> str:
    return f"{np.percentile(timings, percentile) * 1000:.2f}"
