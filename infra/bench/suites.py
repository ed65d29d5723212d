"""``creditrisk bench``: the benchmark suite. Prints figures; never fails on a timing."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import typer

from config.settings import Settings

SUITES = ("all", "feature-store", "worker", "throughput", "ledger", "training", "faults", "soak")
SOAK_FIGURE = Path("reports") / "bench" / "soak.png"
# Customers loaded into the private single Redis and Redis Cluster the feature-store suite
# compares (~40 s in all, the cluster's start ~8 s of it): a batch read's latency does not
# depend on how many other customers are stored, and loading a million into each would
# take minutes.
CLUSTER_READ_CUSTOMERS = 20_000


def bench(
    customers: int = typer.Option(1_000_000, min=1000, help="customers to materialize"),
    suite: str = typer.Option("all", help="which suite: all, feature-store, worker, throughput, "
                                          "ledger, training, or faults or soak (neither part "
                                          "of all)"),
    training_rows: str = typer.Option("8000,50000,200000,1000000",
                                      help="training suite: generated file sizes (rows)"),
    training_seeds: str = typer.Option("1,2,3,4,5",
                                       help="training suite: generator seeds per size"),
    training_large_seeds: str = typer.Option("1", help="training suite: seeds from 1M rows"),
    ledger_rows: int = typer.Option(1_000_000, min=1000,
                                    help="decisions in the ledger for the look-up benchmark"),
    throughput_events: int = typer.Option(30_000, min=1000,
                                          help="throughput suite: applications each consumer drains"),
    scale_out_events: int = typer.Option(90_000, min=1000,
                                         help="throughput suite: applications of the scale-out runs"),
    fault_applications: int = typer.Option(3_000, min=100,
                                           help="faults suite: applications per scenario"),
    soak_minutes: float = typer.Option(10.0, min=0.5, help="soak suite: how long the soak runs"),
    soak_rate: int = typer.Option(0, min=0, help="soak suite: applications/s (0 = the highest "
                                  "rate a short ramp finds the worker keeps up with)"),
    soak_interval: float = typer.Option(60.0, min=5.0,
                                        help="soak suite: seconds per printed interval"),
    cluster: bool = typer.Option(False, "--cluster", help="on the clustered stack (three Kafka "
                                 "brokers, a Redis Cluster; the faults suite runs the cluster "
                                 "scenarios); the same as CREDITRISK_PROFILE=cluster"),
) -> None:
    """Run the benchmarks and print the figures (the local stack is started if a suite
    needs it; the training suite does not)."""
    import os

    from config.settings import get_settings
    from infra.bench import features as feature_bench
    from infra.stack import services as stack

    if suite not in SUITES:
        typer.secho(f"Error: unknown suite {suite!r}; use one of {', '.join(SUITES)}.",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    if cluster:  # the workers and tools the suites start inherit the profile
        os.environ["CREDITRISK_PROFILE"] = "cluster"
        get_settings.cache_clear()
    settings = get_settings()
    if suite != "training":
        stack.up(settings, echo=lambda line: None)
    typer.echo(f"machine: {platform.machine()}, {_cpus()} cores, Python {platform.python_version()}")
    if suite in ("all", "feature-store"):
        typer.secho(f"\n== feature store ({customers:,} customers)", bold=True)
        started = time.monotonic()
        try:
            feature_bench.bench_materialize(settings, customers, typer.echo)
            feature_bench.bench_online_reads(settings, customers, typer.echo)
        finally:
            feature_bench.clear_bench_keys(settings)
        cluster_customers = min(customers, CLUSTER_READ_CUSTOMERS)
        typer.echo(f"  -- the same batch reads, a single Redis beside a Redis Cluster (both "
                   f"private, {cluster_customers:,} customers, key schema v2)")
        feature_bench.bench_cluster_reads(cluster_customers, typer.echo)
        typer.echo(f"  ({time.monotonic() - started:.0f}s)")
    if suite in ("all", "worker"):
        _bench_worker(settings)
    if suite in ("all", "throughput"):
        _bench_throughput(settings, throughput_events, scale_out_events)
    if suite in ("all", "ledger"):
        _bench_ledger(settings, ledger_rows)
    if suite == "faults":  # minutes of deliberate outages: only when asked for
        _bench_faults(settings, fault_applications)
    if suite == "soak":  # ten minutes or more: only when asked for
        _bench_soak(settings, soak_minutes, soak_rate or None, soak_interval)
    if suite in ("all", "training"):
        _bench_training(_integers(training_rows), _integers(training_seeds),
                        _integers(training_large_seeds))


def _bench_ledger(settings: Settings, rows: int) -> None:
    from infra.bench import ledger as ledger_bench

    typer.secho("\n== decision ledger (PostgreSQL)", bold=True)
    started = time.monotonic()
    with ledger_bench.bench_database(settings) as own:
        ledger_bench.bench_write_throughput(own, typer.echo)
    with ledger_bench.bench_database(settings) as own:
        ledger_bench.bench_similar_lookup(own, typer.echo, rows)
    typer.echo(f"  ({time.monotonic() - started:.0f}s)")


def _integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _bench_training(sizes: list[int], seeds: list[int], large_seeds: list[int]) -> None:
    from infra.bench.training import bench_training
    from training.generate import DEMO_DATA

    typer.secho("\n== training (generate → clean → search → final fits → ONNX; no report)",
                bold=True)
    started = time.monotonic()
    bench_training(DEMO_DATA.parent / "bench", sizes, seeds, large_seeds, 1_000_000, typer.echo)
    typer.echo(f"  ({time.monotonic() - started:.0f}s)")


def _bench_worker(settings: Settings) -> None:
    from infra.bench import worker as worker_bench

    typer.secho("\n== scoring worker (Kafka → Faust → Redis → ONNX → Kafka)", bold=True)
    if not _live_model(settings):
        return
    started = time.monotonic()
    worker_bench.bench_worker(settings, _demo_loans(), typer.echo)
    typer.echo(f"  ({time.monotonic() - started:.0f}s)")


def _bench_throughput(settings: Settings, events: int, scale_out_events: int) -> None:
    from infra.bench import throughput as throughput_bench
    from onnx_models.registry import Registry
    from training.pipeline import run_training

    typer.secho("\n== throughput (drain rates, latency ladder, HTTP, scale-out)", bold=True)
    loans = _demo_loans()
    if Registry(settings.registry_dir).live_version() is None:
        typer.echo(f"  no live model: training one on {loans} (as `creditrisk train` does)")
        run_training(loans, "generated", registry_dir=settings.registry_dir, progress=False,
                     log=lambda line: None)
    started = time.monotonic()
    throughput_bench.bench_throughput(settings, loans, typer.echo, events, scale_out_events)
    typer.echo(f"  ({time.monotonic() - started:.0f}s)")


def _bench_faults(settings: Settings, applications: int) -> None:
    from infra.faults import suite as faults_bench

    typer.secho("\n== faults (every application ends as one decision or one dead letter)",
                bold=True)
    if not _live_model(settings):
        return
    started = time.monotonic()
    faults_bench.bench_faults(settings, _demo_loans(), typer.echo, applications)
    typer.echo(f"  ({time.monotonic() - started:.0f}s)")


def _bench_soak(settings: Settings, minutes: float, rate: int | None, interval_s: float) -> None:
    from infra.bench.soak import run_soak

    typer.secho(f"\n== soak (one worker, a live producer, {minutes:g} minutes; per interval: sent, "
                "decided, lag, latency, CPU and RSS of each process)", bold=True)
    started = time.monotonic()
    run_soak(settings, _demo_loans(), typer.echo, minutes, rate, interval_s, SOAK_FIGURE)
    typer.echo(f"  ({time.monotonic() - started:.0f}s)")


def _live_model(settings: Settings) -> bool:
    from onnx_models.registry import Registry

    if Registry(settings.registry_dir).live_version() is None:
        typer.echo("  skipped: no live model (run `make demo` or `creditrisk train` first)")
        return False
    return True


def _demo_loans() -> Path:
    """The demo's generated loan file, generated first if it is not there."""
    from training.generate import demo_loans

    return demo_loans()


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
