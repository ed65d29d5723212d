"""``creditrisk ledger run | migrate | purge`` and ``creditrisk monitor``.

The outcome labels (which loan statuses are bad, good or still open) come from the dataset
config named by ``CREDITRISK_OUTCOME_DATASET``: the same lists training labels with.
"""

from __future__ import annotations

import logging
import signal
import threading

import typer

from config.settings import Settings, get_settings

ledger_app = typer.Typer(help="The decision ledger (PostgreSQL): writer, schema and retention.",
                         no_args_is_help=True)


def outcome_classifier(dataset: str):  # type: ignore[no-untyped-def]  # returns ClassifyOutcome
    """Loan status → bad / good / open / unknown, by the dataset config's [target] lists."""
    from training.datasets import load_dataset_config
    from training.label import outcome_key

    config = load_dataset_config(dataset)
    meaning = {outcome_key(v): "open" for v in config.excluded_values}
    meaning.update({outcome_key(v): "good" for v in config.good_values})
    meaning.update({outcome_key(v): "bad" for v in config.bad_values})

    def classify(status: str) -> str:
        return meaning.get(outcome_key(status), "unknown")

    return classify


def reference_auc(settings: Settings):  # type: ignore[no-untyped-def]  # returns version → AUC
    """The test AUC each model card promised (None for a version no longer registered)."""
    from onnx_models.registry import Registry, RegistryError

    registry = Registry(settings.registry_dir)
    cache: dict[str, float | None] = {}

    def lookup(version: str) -> float | None:
        if version not in cache:
            try:
                cache[version] = registry.load(version).card.metrics.test.auc
            except (RegistryError, OSError):
                cache[version] = None
        return cache[version]

    return lookup


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _postgres_unreachable(settings: Settings, error: Exception) -> str:
    return (f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} is not reachable or "
            f"refused the login ({type(error).__name__}). Is the stack up (`creditrisk stack up`), "
            "and are CREDITRISK_POSTGRES_* right?")


@ledger_app.command("run")
def ledger_run(
    loglevel: str = typer.Option("info", "--loglevel", help="debug, info, warning or error"),
) -> None:
    """Write every decision (with its lineage) and every loan outcome to the ledger.

    HTTP on CREDITRISK_LEDGER_PORT: /metrics (Prometheus) and /health."""
    import psycopg

    from ledger.run import run_ledger

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    try:
        run_ledger(settings, outcome_classifier(settings.outcome_dataset), stop, reference_auc(settings))
    except psycopg.OperationalError as error:
        _fail(_postgres_unreachable(settings, error))


@ledger_app.command("migrate")
def ledger_migrate() -> None:
    """Apply the ledger's schema migrations not yet applied (stack up does this too)."""
    import psycopg

    from ledger.schema import migrate

    settings = get_settings()
    try:
        for line in migrate(settings.postgres_conninfo()):
            typer.echo(line)
    except psycopg.OperationalError as error:
        _fail(_postgres_unreachable(settings, error))


@ledger_app.command("purge")
def ledger_purge(
    months: int = typer.Option(None, "--months", min=1,
                               help="keep this many months (default CREDITRISK_LEDGER_RETENTION_MONTHS)"),
) -> None:
    """Remove decisions older than the retention period (25 months by default, Regulation B)."""
    import psycopg

    from ledger.store import purge_older_than

    settings = get_settings()
    keep = months or settings.ledger_retention_months
    try:
        with psycopg.connect(settings.postgres_conninfo()) as connection:
            report = purge_older_than(connection, keep)
    except psycopg.OperationalError as error:
        _fail(_postgres_unreachable(settings, error))
    typer.echo(f"kept {keep} months: removed {report.decisions_removed:,} decisions decided before "
               f"{report.cutoff:%Y-%m-%d %H:%M} UTC and {report.outcomes_removed:,} outcomes of "
               "loans no longer in the ledger")


def monitor_command(
    auc_drop: float = typer.Option(0.05, "--auc-drop", min=0,
                                   help="alarm when realised AUC is this far below the model card's"),
    calibration_threshold: float = typer.Option(0.05, "--calibration-threshold", min=0,
                                                help="alarm above this expected calibration error"),
    min_matured: int = typer.Option(500, "--min-matured", min=1,
                                    help="judge a model version only with this many matured loans"),
) -> None:
    """Back-test every model version on what became of its loans (exit 2 on drift)."""
    import psycopg

    from ledger.backtest import report_lines, run_backtest

    settings = get_settings()
    try:
        with psycopg.connect(settings.postgres_conninfo()) as connection:
            results = run_backtest(connection, reference_auc(settings))
    except psycopg.OperationalError as error:
        _fail(_postgres_unreachable(settings, error))
    for line in report_lines(results):
        typer.echo(line)
    problems = [f"model {r.model_version}: {problem}" for r in results
                for problem in r.drift_problems(auc_drop, calibration_threshold, min_matured)]
    for problem in problems:
        typer.secho(f"DRIFT {problem}", fg=typer.colors.RED, err=True)
    if problems:
        raise typer.Exit(code=2)
