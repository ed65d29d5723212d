"""Training benchmark (``creditrisk bench --suite training``): the whole training procedure
on generated files of several sizes and seeds, LightGBM and the baseline scorecard side by
side, next to a plain LightGBM with fixed parameters fitted on the same rows.

Benchmarks print figures; they never pass or fail a build. The columns marked ``ok?``
compare each run with the product's quality targets so a regression stands out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

Echo = Callable[[str], None]
# The yardstick: a plain, regularised LightGBM with fixed settings and no search.
REFERENCE_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15,
                    "min_child_samples": 50, "lambda_l2": 1.0, "feature_fraction": 0.8,
                    "bagging_fraction": 0.8, "bagging_freq": 1, "verbose": -1,
                    "num_threads": 2, "seed": 1}
REFERENCE_ROUNDS = 300
# The product's quality targets (issue #12), checked per run in the "ok?" column.
TARGET_MIN_TREES = 10
TARGET_AUC_BELOW_PLAIN = 0.01
TARGET_MAX_ECE = 0.015
TARGET_MEAN_PD_RELATIVE = 0.10
TARGET_SMOTE_AUC_COST = 0.01


@dataclass
class TrainingBenchRun:
    """One generated file trained with the product's defaults."""

    rows_generated: int
    seed: int
    labelled_rows: int
    train_rows: int
    test_rows: int
    train_bad_rate: float
    test_bad_rate: float
    seconds_clean: float
    seconds_train: float
    seconds_search: float
    promoted_trees: int
    fitted_on_rows: int
    lightgbm: dict[str, float]       # promoted (SMOTE) model, calibrated, test split
    lightgbm_cv_auc: float
    lightgbm_cv_ece: float
    ece_noise_floor: float           # expected ECE of perfectly calibrated PDs, same test rows
    no_smote_auc: float
    baseline: dict[str, float]       # scorecard, calibrated, test split
    baseline_cv_auc: float
    reference_auc: float             # plain LightGBM, fixed parameters
    warnings: list[str]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def reference_lightgbm_auc(matrix: np.ndarray, label: np.ndarray, train: np.ndarray,
                           test: np.ndarray, categorical: Sequence[int]) -> float:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    booster = lgb.train(REFERENCE_PARAMS, lgb.Dataset(matrix[train], label[train],
                                                      categorical_feature=list(categorical)),
                        REFERENCE_ROUNDS)
    return float(roc_auc_score(label[test], booster.predict(matrix[test])))


def ece_noise_floor(probability_of_default: np.ndarray, draws: int = 200) -> float:
    """The ECE a perfectly calibrated model would still show on this many test loans: the
    mean ECE of outcomes drawn from the PDs themselves."""
    from training.evaluate import expected_calibration_error

    rng = np.random.default_rng(0)
    return float(np.mean([expected_calibration_error(
        rng.random(len(probability_of_default)) < probability_of_default, probability_of_default)
        for _ in range(draws)]))


def generated_file(folder: Path, rows: int, seed: int) -> Path:
    """``folder/gen_<rows>_s<seed>/loans.csv``, generated once and reused."""
    from training.generate import generate_loan_files

    target = folder / f"gen_{rows}_s{seed}"
    if not (target / "loans.csv").is_file():
        generate_loan_files(rows=rows, seed=seed, out_dir=target, show_progress=False)
    return target / "loans.csv"


def bench_one(path: Path, rows: int, seed: int, registry: Path) -> TrainingBenchRun:
    """Clean, train (search, final fits, export, registry; no report files) and measure."""
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.pipeline import prepare_features, train_from_frame
    from training.split import split_test
    from training.training_config import TrainingConfig

    config, dataset = TrainingConfig(), load_dataset_config("generated")
    started = time.perf_counter()
    frame, cleaning, labelling = load_clean_labelled(path, dataset)
    cleaned = time.perf_counter()
    result = train_from_frame(frame, dataset, cleaning.to_dict(), labelling.to_dict(),
                              registry_dir=registry, promote=False, config=config,
                              progress=False, log=lambda _line: None, write_report_files=False)
    trained = time.perf_counter()
    card = result.card
    prepared = prepare_features(frame, dataset, config)
    split = split_test(prepared.frame, prepared.label, dataset.date_column,
                       config.test_fraction, config.seed)
    reference = reference_lightgbm_auc(prepared.matrix, prepared.label, split.train_positions,
                                       split.test_positions, prepared.categorical_indices)
    return TrainingBenchRun(
        rows_generated=rows, seed=seed, labelled_rows=len(frame),
        train_rows=card["split"]["train_rows"], test_rows=card["split"]["test_rows"],
        train_bad_rate=card["training"]["train_bad_rate"],
        test_bad_rate=card["metrics"]["test"]["bad_rate"],
        seconds_clean=round(cleaned - started, 1), seconds_train=round(trained - cleaned, 1),
        seconds_search=card["training"]["timings_s"]["search"],
        promoted_trees=card["model"]["trees"], fitted_on_rows=card["model"]["fitted_on_rows"],
        lightgbm=card["metrics"]["test"], lightgbm_cv_auc=card["metrics"]["cv"]["auc"],
        lightgbm_cv_ece=card["metrics"]["cv"]["ece"],
        ece_noise_floor=ece_noise_floor(result.registered.probability_of_default(
            prepared.matrix[split.test_positions])),
        no_smote_auc=card["smote"]["variants"]["no_smote"]["calibrated"]["auc"],
        baseline=card["baseline"]["calibrated"], baseline_cv_auc=card["baseline"]["cv"]["auc"],
        reference_auc=reference, warnings=[w["code"] for w in card["warnings"]])


HEADER = ("| rows | seed | train rows | bad rate train → test | model | trees | CV AUC "
          "| test AUC | KS | Brier | ECE (noise floor) | CV ECE | mean PD / bad rate | train time "
          "| plain LGBM AUC | no-SMOTE AUC | ok? |")


def format_rows(run: TrainingBenchRun) -> list[str]:
    """Two markdown table rows (LightGBM, baseline) for one run."""
    lgbm, baseline = run.lightgbm, run.baseline
    checks = {
        "trees": run.promoted_trees >= TARGET_MIN_TREES,
        "vs plain": lgbm["auc"] >= run.reference_auc - TARGET_AUC_BELOW_PLAIN,
        "ECE": lgbm["ece"] <= TARGET_MAX_ECE,
        "mean PD": abs(lgbm["mean_pd"] / lgbm["bad_rate"] - 1) <= TARGET_MEAN_PD_RELATIVE,
        "SMOTE": lgbm["auc"] >= run.no_smote_auc - TARGET_SMOTE_AUC_COST,
    }
    failed = [name for name, passed in checks.items() if not passed]
    verdict = "yes" if not failed else "no: " + ", ".join(failed)

    def row(model: str, trees: str, cv: float, metrics: dict[str, float], middle: str,
            extra: str) -> str:
        return (f"| {run.rows_generated:,} | {run.seed} | {run.train_rows:,} "
                f"| {run.train_bad_rate:.1%} → {run.test_bad_rate:.1%} | {model} | {trees} "
                f"| {cv:.4f} | {metrics['auc']:.4f} | {metrics['ks']:.4f} "
                f"| {metrics['brier']:.4f} | {metrics['ece']:.4f}{middle} "
                f"| {metrics['mean_pd'] / metrics['bad_rate']:.3f} {extra}")

    return [row("LightGBM + SMOTE", str(run.promoted_trees), run.lightgbm_cv_auc, lgbm,
                f" ({run.ece_noise_floor:.4f}) | {run.lightgbm_cv_ece:.4f}",
                f"| {run.seconds_train:.0f} s (search {run.seconds_search:.0f} s) "
                f"| {run.reference_auc:.4f} | {run.no_smote_auc:.4f} | {verdict} |"),
            row("baseline scorecard", "–", run.baseline_cv_auc, baseline, " | ", "| | | | |")]


def bench_training(folder: Path, sizes: Sequence[int], seeds: Sequence[int],
                   large_seeds: Sequence[int], large_from: int, echo: Echo
                   ) -> list[TrainingBenchRun]:
    """Every size × seed (sizes of ``large_from`` rows or more use ``large_seeds``); one
    markdown table, a row per model as each run finishes."""
    import tempfile

    runs = []
    echo(HEADER)
    echo("|" + "---|" * (HEADER.count("|") - 1))
    with tempfile.TemporaryDirectory() as registry:
        for rows in sizes:
            for seed in (large_seeds if rows >= large_from else seeds):
                path = generated_file(folder, rows, seed)
                run = bench_one(path, rows, seed, Path(registry))
                runs.append(run)
                for line in format_rows(run):
                    echo(line)
    return runs
