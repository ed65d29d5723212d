"""``creditrisk demo``: the whole flow from nothing, as far as the product reaches today.

Each step prints what it did; a step that fails stops the demo with its own message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import typer

from features.settings import REPO_ROOT, Settings, get_settings
from infra import stack

DEMO_DATA = REPO_ROOT / "data" / "demo"
DEMO_ROWS = 100_000
DEMO_SEED = 7


def _step(title: str, action: Callable[[Settings], None], settings: Settings) -> None:
    typer.secho(f"\n== {title}", bold=True)
    started = time.monotonic()
    action(settings)
    typer.echo(f"   ({time.monotonic() - started:.1f}s)")


def _stack_up(settings: Settings) -> None:
    stack.up(settings, echo=lambda line: typer.echo(f"   {line}"))


def _data(settings: Settings) -> None:
    from training.generate import generate_loan_files

    if (DEMO_DATA / "loans.csv").is_file() and (DEMO_DATA / "bureau.csv").is_file():
        typer.echo(f"   reusing {DEMO_DATA}/loans.csv and bureau.csv (delete the folder to regenerate)")
        return
    summary = generate_loan_files(rows=DEMO_ROWS, seed=DEMO_SEED, out_dir=DEMO_DATA)
    typer.echo(f"   {summary.rows:,} loan applications of {summary.customers:,} customers, "
               f"bad rate {summary.bad_rate_resolved:.1%} among resolved loans, with the dirt of "
               f"real files; written to {DEMO_DATA}")


def _model(settings: Settings) -> None:
    from onnx_models.registry import Registry
    from training.pipeline import run_training

    registry = Registry(settings.registry_dir)
    live = registry.live_version()
    if live is None:
        typer.echo("   no live model: training one (clean, label, features, SMOTE + LightGBM, "
                   "calibration, ONNX export)")
        result = run_training(DEMO_DATA / "loans.csv", "generated", registry_dir=settings.registry_dir,
                              log=lambda line: typer.echo(f"   {line}"))
        typer.echo(f"   report: {result.report_path}")
        live = result.version
    test = registry.load(live).card["metrics"]["test"]
    typer.echo(f"   live model {live}: test AUC {test['auc']:.3f}, KS {test['ks']:.3f}, "
               f"Brier {test['brier']:.4f} (creditrisk model show live)")


def _features(settings: Settings) -> None:
    from features.materialize import materialize_bureau_features
    from features.store import sync_client

    client = sync_client(settings)
    try:
        report = materialize_bureau_features(DEMO_DATA / "bureau.csv", client,
                                             settings.feature_schema_version, settings.key_prefix)
    finally:
        client.close()
    for line in report.summary().splitlines():
        typer.echo(f"   {line}")


def _show_where_to_look(settings: Settings) -> None:
    typer.echo(f"   Kafka bootstrap:  {settings.kafka_bootstrap} "
               f"(topics {settings.topic_applications}, {settings.topic_decisions}, "
               f"{settings.topic_dead_letters})")
    typer.echo(f"   Redis:            {settings.redis_url}")
    typer.echo(f"   Prometheus:       http://127.0.0.1:{settings.prometheus_port}")
    typer.echo(f"   Model registry:   {settings.registry_dir} (creditrisk model list)")
    typer.echo("   Scoring applications from Kafka arrives with the stream worker "
               "(`creditrisk worker`).")
    typer.echo("   Stop it all with: creditrisk stack down")


def demo() -> None:
    """Run the whole flow from nothing: stack, data, model, feature store (scoring comes with
    the stream worker)."""
    settings = get_settings()
    try:
        _step("Local stack (Kafka, Redis, Prometheus)", _stack_up, settings)
        _step("Loan data (Lending Club-shaped) and the bureau table", _data, settings)
        _step("Model (trained offline, served from the ONNX registry)", _model, settings)
        _step("Bureau features into the Redis feature store", _features, settings)
        _step("Where to look", _show_where_to_look, settings)
    except stack.StackError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
