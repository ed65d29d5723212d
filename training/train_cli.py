"""``creditrisk train`` and ``creditrisk model list | show | promote``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

model_app = typer.Typer(help="List, show and promote registered models.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _metric_line(name: str, values: dict[str, Any]) -> str:
    return (f"  {name:<28} AUC {values['auc']:.4f}  KS {values['ks']:.4f}  "
            f"Gini {values['gini']:.4f}  Brier {values['brier']:.4f}  ECE {values['ece']:.4f}"
            + (f"  mean PD {values['mean_pd']:.4f} vs bad rate {values['bad_rate']:.4f}"
               if "mean_pd" in values else ""))


def format_summary(card: dict[str, Any]) -> str:
    """The metrics block the CLI prints after training and for ``model show``."""
    metrics, cv = card["metrics"], card["metrics"]["cv"]
    lines = [f"Test set (exported: {card['smote']['exported']} + calibration):",
             _metric_line("test", metrics["test"]),
             f"Cross-validation ({cv['folds']} folds, mean ± std):",
             "  " + "  ".join(f"{label} {cv[n]:.4f} ± {cv[n + '_std']:.4f}" for n, label in (
                 ("auc", "AUC"), ("ks", "KS"), ("gini", "Gini"), ("brier", "Brier"),
                 ("ece", "ECE"))),
             "SMOTE vs no SMOTE, before / after calibration (test set):"]
    for name, variant in card["smote"]["variants"].items():
        for stage in ("raw", "calibrated"):
            lines.append(_metric_line(f"{name} {stage}", variant[stage]))
    thresholds, decisions = card["thresholds"], metrics["decisions_at_thresholds"]
    lines += [
        f"Thresholds (cost bad loan {thresholds['cost_bad_loan']:g} : rejected good "
        f"{thresholds['cost_rejected_good']:g} → break-even PD {thresholds['break_even_pd']:.4f}):"
        f" approve PD < {thresholds['approve_below']:.4f}, decline PD ≥ "
        f"{thresholds['decline_at_or_above']:.4f}, review between",
        f"  approval rate {decisions['approval_rate']:.1%}, review {decisions['review_rate']:.1%},"
        f" decline {decisions['decline_rate']:.1%}; bad rate among approved "
        f"{decisions['bad_rate_among_approved']:.2%} (overall {decisions['bad_rate_overall']:.2%})",
        f"ONNX parity: max |ΔPD| {card['parity']['max_abs_diff']:.2e} over "
        f"{card['parity']['rows']:,} test rows (raw {card['parity']['max_abs_diff_raw']:.2e})",
    ]
    return "\n".join(lines)


def train_command(
    data: Path = typer.Option(..., "--data", help="Loan file (CSV) to train on."),
    dataset: str = typer.Option("generated", "--dataset",
                                help="Built-in dataset name (generated, lending_club, "
                                     "home_credit) or a dataset config TOML file."),
    registry: Path | None = typer.Option(None, "--registry",
                                            help="Registry folder (default: the repo's "
                                                 "onnx_models/, CREDITRISK_REGISTRY_DIR)."),
    no_promote: bool = typer.Option(False, "--no-promote",
                                    help="Register the model but leave the live one live."),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds."),
    seed: int = typer.Option(42, "--seed", help="Random seed (splits, SMOTE, LightGBM)."),
    report_dir: Path | None = typer.Option(None, "--report-dir",
                                              help="Report folder (default reports/<version>)."),
    cost_bad_loan: float = typer.Option(5.0, "--cost-bad-loan",
                                        help="Cost of approving a loan that goes bad."),
    cost_rejected_good: float = typer.Option(1.0, "--cost-rejected-good",
                                             help="Cost of declining a loan that would be repaid."),
    export: str = typer.Option("smote", "--export",
                               help="Variant to serve: 'smote' or 'no_smote' (both are "
                                    "trained and reported)."),
) -> None:
    """Train, evaluate and register a model (clean → label → features → SMOTE + LightGBM →
    calibrate → ONNX), then make it live unless --no-promote."""
    from onnx_models.registry import RegistryError
    from training.datasets import load_dataset_config
    from training.export import ParityError
    from training.leakage import LeakageError
    from training.pipeline import run_training
    from training.training_config import TrainingConfig

    if not data.is_file():
        _fail(f"the loan file {data} does not exist or is not a file; pass a CSV with --data "
              "(e.g. `creditrisk data generate --out DIR` writes DIR/loans.csv).")
    try:
        dataset_config = load_dataset_config(dataset)
    except (FileNotFoundError, ValueError, TypeError) as error:
        _fail(f"dataset config {dataset!r}: {error}")
    try:
        config = TrainingConfig(seed=seed, folds=folds, cost_bad_loan=cost_bad_loan,
                                cost_rejected_good=cost_rejected_good, exported_variant=export)
    except ValueError as error:
        _fail(str(error))
    started = time.perf_counter()
    try:
        result = run_training(data, dataset_config, registry_dir=registry,
                              promote=not no_promote, config=config, report_dir=report_dir,
                              log=typer.echo)
    except LeakageError as error:
        _fail(str(error))
    except (ParityError, RegistryError) as error:
        _fail(str(error))
    except (FileNotFoundError, ValueError) as error:
        _fail(f"{data}: {error}")
    typer.echo("")
    typer.echo(format_summary(result.card))
    for warning in result.warnings:
        typer.secho(warning, fg=typer.colors.RED, err=True)
    typer.echo(f"\nTrained in {time.perf_counter() - started:.0f}s.")
    state = "registered and promoted (live)" if result.promoted else "registered (not live)"
    typer.echo(f"Model version: {result.version} — {state} in {result.registered.path.parent}")
    typer.echo(f"Report: {result.report_path}")


def _registry(path: Path | None) -> Any:
    from onnx_models.registry import Registry

    return Registry(path)


REGISTRY_OPTION = typer.Option(None, "--registry", help="Registry folder (default: onnx_models/).")


@model_app.command("list")
def list_command(registry: Path | None = REGISTRY_OPTION) -> None:
    """Registered versions (oldest first) with test AUC / KS; * marks the live one."""
    summaries = _registry(registry).list()
    if not summaries:
        typer.echo("No models registered yet; run `creditrisk train --data PATH`.")
        return
    typer.echo(f"  {'version':<27} {'created':<26} {'dataset':<14} {'AUC':>7} {'KS':>7}")
    for item in summaries:
        auc = f"{item.test_auc:.4f}" if item.test_auc is not None else "?"
        ks = f"{item.test_ks:.4f}" if item.test_ks is not None else "?"
        typer.echo(f"{'*' if item.live else ' '} {item.version:<27} {item.created_at:<26} "
                   f"{item.dataset:<14} {auc:>7} {ks:>7}")


@model_app.command("show")
def show_command(version: str = typer.Argument(..., help="Version to show ('live' for the "
                                                         "live one)."),
                 registry: Path | None = REGISTRY_OPTION,
                 raw: bool = typer.Option(False, "--json", help="Print model.json as is.")
                 ) -> None:
    """A readable summary of a version's model.json."""
    from onnx_models.registry import RegistryError

    store = _registry(registry)
    try:
        if version == "live":
            version = store.live_version() or ""
            if not version:
                _fail("no live model yet; promote one with `creditrisk model promote V`.")
        model = store.load(version)
    except RegistryError as error:
        _fail(str(error))
    card = model.card
    if raw:
        typer.echo(json.dumps(card, indent=2))
        return
    live = " (live)" if store.live_version() == version else ""
    typer.echo(f"Model {version}{live}, created {card['created_at']}")
    typer.echo(f"Dataset {card['dataset']['name']}: {card['data_fingerprint']['rows']:,} rows, "
               f"sha256 {card['data_fingerprint']['sha256'][:16]}…; split {card['split']['method']}")
    typer.echo(f"Features ({len(card['features'])}, {card['feature_set']} set): " +
               ", ".join(f["name"] for f in card["features"]))
    calibration = card["calibration"]
    typer.echo(f"Calibration: {calibration['method']}" + (
        f" (slope {calibration['slope']:.4f}, intercept {calibration['intercept']:.4f})"
        if calibration["method"] == "platt" else ""))
    scale = card["score_scale"]
    typer.echo(f"Score scale: {scale['base_score']:g} points at {scale['base_odds']:g}:1 "
               f"good:bad odds, {scale['points_to_double_odds']:g} points to double the odds")
    typer.echo("Risk grades: " + ", ".join(f"{g['grade']} < {g['max_pd']:g}"
                                           for g in card["risk_grades"]))
    typer.echo(format_summary(card))


@model_app.command("promote")
def promote_command(version: str = typer.Argument(..., help="Version to make live."),
                    registry: Path | None = REGISTRY_OPTION) -> None:
    """Make a registered version live (checked first; a bad model is refused)."""
    from onnx_models.registry import RegistryError

    try:
        model = _registry(registry).promote(version)
    except RegistryError as error:
        _fail(str(error))
    typer.echo(f"Model {model.version} is now live.")
