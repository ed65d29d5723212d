"""``creditrisk ledger run | migrate | purge`` and ``creditrisk monitor``.

Which loan statuses are bad, good or still open comes from the model cards of each
portfolio (the lists training labelled with, see :mod:`ledger.cards`); an outcome that
names no portfolio belongs to ``CREDITRISK_OUTCOME_DATASET``.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, NoReturn

import typer

from config.settings import Settings, get_settings
from ledger.cards import RegistryCards

if TYPE_CHECKING:
    from ledger.store import Ledger

ledger_app = typer.Typer(help="The decision ledger (PostgreSQL): writer, schema and retention.",
                         no_args_is_help=True)


def registry_cards(settings: Settings) -> RegistryCards:
    """The registry's model cards, as the writer and the back-test read them."""
    return RegistryCards(settings.registry_dir, settings.outcome_dataset)


def fail(message: str) -> NoReturn:
    """Print ``message`` in red on stderr and exit 1."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def connect_or_exit(settings: Settings) -> Ledger:
    """A connection to the ledger as its owner, or a clear exit when PostgreSQL does not let
    us in (administrators' commands: users, notices)."""
    import psycopg

    try:
        return psycopg.connect(settings.postgres_conninfo())
    except psycopg.OperationalError as error:
        fail(_postgres_unreachable(settings, error))


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
        run_ledger(settings, registry_cards(settings), stop)
    except psycopg.OperationalError as error:
        fail(_postgres_unreachable(settings, error))


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
        fail(_postgres_unreachable(settings, error))


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
        fail(_postgres_unreachable(settings, error))
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
    fairness: bool = typer.Option(False, "--fairness",
                                  help="instead: approval rate, adverse impact ratio and parity by "
                                       "monitored group (last 24 h, all time) and, among matured "
                                       "loans, bad rate, AUC, calibration and the "
                                       "equal-opportunity gap by group (exit 2 on adverse impact)"),
) -> None:
    """Back-test every model version on what became of its own portfolio's loans, each figure
    with its 95 % confidence interval and count, and the bad rate of the overridden approvals
    beside the model's own (exit 2 on drift). With --fairness: the fair-lending back-test by
    monitored group instead (exit 2 when a group's adverse impact ratio is below the model
    card's threshold even at its upper confidence bound)."""
    import psycopg

    if fairness:
        fairness_report()
        return

    from ledger.backtest import (
        approval_bad_rates,
        approval_report_lines,
        load_approvals,
        report_lines,
        run_backtest,
    )

    settings = get_settings()
    try:
        with psycopg.connect(settings.postgres_conninfo()) as connection:
            results = run_backtest(connection, registry_cards(settings))
            approvals = approval_bad_rates(load_approvals(connection))
    except psycopg.OperationalError as error:
        fail(_postgres_unreachable(settings, error))
    for line in [*report_lines(results), *approval_report_lines(approvals)]:
        typer.echo(line)
    problems = [f"model {r.model_version}: {problem}" for r in results
                for problem in r.drift_problems(auc_drop, calibration_threshold, min_matured)]
    for problem in problems:
        typer.secho(f"DRIFT {problem}", fg=typer.colors.RED, err=True)
    if problems:
        raise typer.Exit(code=2)


def fairness_report() -> None:
    """``creditrisk monitor --fairness``: figures by group label and count only, never an
    application; a group under the card's minimum shows its count only."""
    import psycopg

    from ledger.fairness import adverse_impact_lines, fairness_lines, run_fairness

    settings = get_settings()
    try:
        with psycopg.connect(settings.postgres_conninfo()) as connection:
            results = run_fairness(connection, registry_cards(settings))
    except psycopg.OperationalError as error:
        fail(_postgres_unreachable(settings, error))
    for line in fairness_lines(results):
        typer.echo(line)
    problems = adverse_impact_lines(results)
    for problem in problems:
        typer.secho(f"ADVERSE IMPACT {problem}", fg=typer.colors.RED, err=True)
    if problems:
        raise typer.Exit(code=2)
