"""``creditrisk train`` and ``creditrisk model list | show``.

The role changes that leave an audit row in the ledger (``model challenger | promote |
rollback | history``) are the command line's own (``cli.model_roles``): training does not
reach the ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from onnx_models.registry import Registry

model_app = typer.Typer(help="The model registry: versions, their roles (champion, challengers) "
                             "and the audited role changes.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _metric_line(name: str, values: Mapping[str, float]) -> str:
    return (f"  {name:<28} AUC {values['auc']:.4f}  KS {values['ks']:.4f}  "
            f"Gini {values['gini']:.4f}  Brier {values['brier']:.4f}  ECE {values['ece']:.4f}"
            + (f"  mean PD {values['mean_pd']:.4f} vs bad rate {values['bad_rate']:.4f}"
               if "mean_pd" in values else ""))


MODEL_LABELS = {"smote": "LightGBM + SMOTE", "no_smote": "LightGBM, no SMOTE",
                "baseline": "baseline scorecard"}


def _comparison(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Test and CV figures per fitted model (cards written before the baseline existed
    have only the two LightGBM variants)."""
    models = dict(card["smote"]["variants"])
    if "baseline" in card:
        models["baseline"] = card["baseline"]
    return models


def format_warnings(card: dict[str, Any]) -> list[str]:
    return [f"WARNING [{w['code']}] {w['message']}" for w in card.get("warnings", [])]


def _cv_text(fold_figures: dict[str, Any] | None) -> str:
    return (f"CV AUC {fold_figures['auc']:.4f} ± {fold_figures['auc_std']:.4f}"
            if fold_figures else "CV AUC    n/a         ")


def format_summary(card: dict[str, Any]) -> str:
    """The metrics block the CLI prints after training and for ``model show``."""
    metrics, cv = card["metrics"], card["metrics"]["cv"]
    model = card.get("model", {})
    promoted = model.get("variant", card["smote"]["exported"])
    lines = [f"Model: {model.get('description', promoted)}"
             + (f", {model['trees']} trees, fitted on all {model['fitted_on_rows']:,} training "
                f"rows" + (f" (+{model['synthetic_rows']:,} SMOTE rows)"
                           if model.get("synthetic_rows") else "")
                if model else ""),
             "LightGBM and the baseline side by side — cross-validation AUC (mean ± std over "
             f"{cv['folds']} folds) and test set, calibrated:"]
    for name, figures in _comparison(card).items():
        mark = "*" if name == promoted else " "
        cv_text = _cv_text(figures.get("cv"))
        test = figures["calibrated"]
        lines.append(f"{mark} {MODEL_LABELS.get(name, name):<20} {cv_text}  | test AUC "
                     f"{test['auc']:.4f}  KS {test['ks']:.4f}  Brier {test['brier']:.4f}  "
                     f"ECE {test['ece']:.4f}  mean PD {test['mean_pd']:.4f}")
    reference = card.get("fixed_reference")
    if reference:
        cv_text = _cv_text(reference.get("cv"))
        test = reference["test"]
        lines.append(f"  {'fixed reference':<20} {cv_text}  | test AUC {test['auc']:.4f}  "
                     f"KS {test['ks']:.4f}  ({reference['trees']} trees, learning rate "
                     f"{reference['settings']['learning_rate']:g}, no search)")
    evaluation = card.get("evaluation", {})
    test_set = ("Out-of-fold test figures (few bad loans: every labelled row fitted the model)"
                if evaluation.get("test_figures") == "out_of_fold" else "Test set")
    lines += ["  (* = promoted)",
              f"{test_set}, promoted model (bad rate {metrics['test']['bad_rate']:.4f}):",
              _metric_line("calibrated", metrics["test"]),
              _metric_line("before calibration", metrics.get("test_raw", metrics["test"]))]
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
    model_type: str = typer.Option("lightgbm", "--model-type",
                                   help="Model to register: 'lightgbm' (default) or "
                                        "'baseline' (the scorecard fitted next to it)."),
    no_smote: bool = typer.Option(False, "--no-smote",
                                  help="Register LightGBM trained without SMOTE (both are "
                                       "trained and compared in the report)."),
    search_budget: float = typer.Option(240.0, "--search-budget", min=1.0,
                                        help="Seconds the cross-validated search may take."),
    export: str | None = typer.Option(None, "--export", hidden=True,
                                      help="Former spelling: 'no_smote' = --no-smote."),
) -> None:
    """Train, evaluate and register a model (clean → label → features → cross-validated
    LightGBM with SMOTE, and a baseline scorecard → calibrate → ONNX), then make it live
    unless --no-promote."""
    from onnx_models.registry import RegistryError
    from training.datasets import load_dataset_config
    from training.export import ParityError
    from training.leakage import LeakageError
    from training.pipeline import run_training
    from training.training_config import SearchSettings, TrainingConfig

    if not data.is_file():
        _fail(f"the loan file {data} does not exist or is not a file; pass a CSV with --data "
              "(e.g. `creditrisk data generate --out DIR` writes DIR/loans.csv).")
    try:
        dataset_config = load_dataset_config(dataset)
    except (FileNotFoundError, ValueError, TypeError) as error:
        _fail(f"dataset config {dataset!r}: {error}")
    if export not in (None, "smote", "no_smote"):
        _fail(f"--export must be 'smote' or 'no_smote', got {export!r}; prefer --no-smote.")
    try:
        config = TrainingConfig(seed=seed, folds=folds, cost_bad_loan=cost_bad_loan,
                                cost_rejected_good=cost_rejected_good, model_type=model_type,
                                smote=not (no_smote or export == "no_smote"),
                                search=SearchSettings(budget_seconds=search_budget))
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
    for line in format_warnings(result.card):
        typer.secho(line, fg=typer.colors.RED)
    typer.echo(f"\nTrained in {time.perf_counter() - started:.0f}s.")
    state = "registered and promoted (live)" if result.promoted else "registered (not live)"
    typer.echo(f"Model version: {result.version} — {state} in {result.registered.path.parent}")
    typer.echo(f"Report: {result.report_path}")


def _registry(path: Path | None) -> Registry:
    from onnx_models.registry import Registry

    return Registry(path)


REGISTRY_OPTION = typer.Option(None, "--registry", help="Registry folder (default: onnx_models/).")


@model_app.command("list")
def list_command(registry: Path | None = REGISTRY_OPTION) -> None:
    """Registered versions with test AUC / KS and their roles (champion *, challengers).

    Oldest first; the champion is the live model, each challenger shows the share of the
    applications it shadows."""
    from onnx_models.challengers import challengers
    from onnx_models.registry import RegistryError

    store = _registry(registry)
    summaries = store.list()
    if not summaries:
        typer.echo("No models registered yet; run `creditrisk train --data PATH`.")
        return
    try:
        shares = {c.version: c.percent for c in challengers(store)}
    except RegistryError as error:
        _fail(str(error))
    typer.echo(f"  {'version':<27} {'created':<26} {'dataset':<14} {'AUC':>7} {'KS':>7}  role")
    for item in summaries:
        auc = f"{item.test_auc:.4f}" if item.test_auc is not None else "?"
        ks = f"{item.test_ks:.4f}" if item.test_ks is not None else "?"
        role = ("champion" if item.live else f"challenger ({shares[item.version]:g} %)"
                if item.version in shares else "")
        typer.echo(f"{'*' if item.live else ' '} {item.version:<27} {item.created_at:<26} "
                   f"{item.dataset:<14} {auc:>7} {ks:>7}  {role}".rstrip())


def _monitored_line(card: dict[str, Any]) -> str:
    """The protected characteristics the card watches (never features), or why none."""
    from fairness.spec import MonitoringSpec
    from training.fairness_report import monitored_not_used

    spec = MonitoringSpec.from_table(card.get("monitoring"), "model.json")
    if spec.attributes:
        return f"Monitored, not used for scoring: {monitored_not_used(spec)}"
    return "Monitored: nothing" + (f" ({spec.note})" if spec.note else "")


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
    card = model.card.to_document()  # the whole card, training's report sections included
    if raw:
        typer.echo(json.dumps(card, indent=2))
        return
    live = " (live)" if store.live_version() == version else ""
    typer.echo(f"Model {version}{live}, created {card['created_at']}")
    typer.echo(f"Dataset {card['dataset']['name']}: {card['data_fingerprint']['rows']:,} rows, "
               f"sha256 {card['data_fingerprint']['sha256'][:16]}…; split {card['split']['method']}")
    typer.echo(f"Features ({len(card['features'])}, {card['feature_set']} set): " +
               ", ".join(f["name"] for f in card["features"]))
    typer.echo(_monitored_line(card))
    for line in format_warnings(card):
        typer.secho(line, fg=typer.colors.RED)
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
