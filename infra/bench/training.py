"""Training benchmark (``creditrisk bench --suite training``): the whole training procedure
on generated files of several sizes and seeds, LightGBM and the baseline scorecard side by
side, next to the fixed regularised reference LightGBM fitted on the same rows; then small
files (3,000, 8,000 and 20,000 labelled loans at 5 % bad) judged on a holdout of other loans
of the same generated book, the search's AUC minus the fixed reference's on that holdout.

Benchmarks print figures; they never pass or fail a build. The columns marked ``ok?``
compare each run with the product's quality targets so a regression stands out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

Echo = Callable[[str], None]
# The yardstick (issue #25): a regularised LightGBM with fixed settings, no search and no
# early stopping.
REFERENCE_PARAMS = {"objective": "binary", "learning_rate": 0.02, "num_leaves": 15,
                    "min_child_samples": 100, "feature_fraction": 0.5, "verbose": -1,
                    "num_threads": 2, "seed": 1}
REFERENCE_ROUNDS = 300
# Small files: labelled loans at this bad rate, judged on a holdout of HOLDOUT_ROWS other
# loans at the same rate, drawn from one generated book per seed.
SMALL_BAD_RATE = 0.05
SMALL_HOLDOUT_ROWS = 20_000
SMALL_BOOK_ROWS = 120_000
SMALL_SIZES = (3_000, 8_000, 20_000)
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
                           test: np.ndarray, categorical: Sequence[int],
                           test_matrix: np.ndarray | None = None,
                           test_label: np.ndarray | None = None) -> float:
    """The fixed reference fitted on ``train`` rows, its AUC on ``test`` rows (or on
    ``test_matrix``/``test_label``, rows of another frame)."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    booster = lgb.train(REFERENCE_PARAMS, lgb.Dataset(matrix[train], label[train],
                                                      categorical_feature=list(categorical)),
                        REFERENCE_ROUNDS)
    if test_matrix is None or test_label is None:
        test_matrix, test_label = matrix[test], label[test]
    return float(roc_auc_score(test_label, booster.predict(test_matrix)))


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
    if card["evaluation"]["test_figures"] == "out_of_fold":
        # Every row fitted the model and the test figures are out-of-fold: so are the
        # reference's, cross-validated by the run on the same folds.
        split = type(split)(np.arange(len(frame)), np.arange(len(frame)), "out_of_fold")
        reference = float(card["fixed_reference"]["test"]["auc"])
    else:
        reference = reference_lightgbm_auc(prepared.matrix, prepared.label,
                                           split.train_positions, split.test_positions,
                                           prepared.categorical_indices)
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
          "| reference LGBM AUC | no-SMOTE AUC | ok? |")


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
                   large_seeds: Sequence[int], large_from: int, echo: Echo,
                   small_sizes: Sequence[int] = SMALL_SIZES) -> list[TrainingBenchRun]:
    """Every size × seed (sizes of ``large_from`` rows or more use ``large_seeds``); one
    markdown table, a row per model as each run finishes. Then the small files
    (``SMALL_SIZES`` at 5 % bad, each of ``seeds``; :func:`bench_small_files`)."""
    import tempfile

    runs = []
    if sizes:
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
    if small_sizes:
        echo(f"\nSmall files ({SMALL_BAD_RATE:.0%} bad), judged on a holdout of "
             f"{SMALL_HOLDOUT_ROWS:,} other loans of the same generated book:")
        bench_small_files(folder, small_sizes, seeds, echo)
    return runs


@dataclass
class SmallFileRun:
    """One small file: the search's promoted model and the fixed reference, both fitted on
    its rows and judged on the same holdout."""

    rows: int
    seed: int
    bad_loans: int
    promoted_trees: int
    smote_strength: float | None
    smote_cv_auc: float
    plain_cv_auc: float
    plain_cv_auc_se: float
    holdout_auc: float
    reference_holdout_auc: float
    test_figures: str
    seconds_train: float
    warnings: list[str]

    @property
    def difference(self) -> float:
        return self.holdout_auc - self.reference_holdout_auc

    @property
    def smote_within_one_se(self) -> bool:
        return self.plain_cv_auc - self.smote_cv_auc <= self.plain_cv_auc_se

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "difference": self.difference,
                "smote_within_one_se": self.smote_within_one_se}


def small_file_book(folder: Path, seed: int) -> pd.DataFrame:
    """The cleaned, labelled loans of one generated book (``SMALL_BOOK_ROWS`` rows)."""
    from training.datasets import load_clean_labelled, load_dataset_config

    frame, _, _ = load_clean_labelled(generated_file(folder, SMALL_BOOK_ROWS, seed),
                                      load_dataset_config("generated"))
    return frame.reset_index(drop=True)


def draw_small_files(book: pd.DataFrame, sizes: Sequence[int], seed: int
                     ) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    """A holdout of ``SMALL_HOLDOUT_ROWS`` loans, then for each size a file of that many
    other loans, all at ``SMALL_BAD_RATE`` bad (bad loans drawn at random from the book)."""
    rng = np.random.default_rng([seed, 25])
    bad = rng.permutation(np.flatnonzero(book["bad"].to_numpy() == 1))
    good = rng.permutation(np.flatnonzero(book["bad"].to_numpy() == 0))

    def take(rows: int, bad_pool: np.ndarray, good_pool: np.ndarray) -> np.ndarray:
        bad_rows = round(rows * SMALL_BAD_RATE)
        if bad_rows > len(bad_pool) or rows - bad_rows > len(good_pool):
            raise ValueError(f"the generated book has too few loans for {rows:,} rows at "
                             f"{SMALL_BAD_RATE:.0%} bad; raise SMALL_BOOK_ROWS")
        return np.sort(np.concatenate([bad_pool[:bad_rows], good_pool[:rows - bad_rows]]))

    holdout_bad = round(SMALL_HOLDOUT_ROWS * SMALL_BAD_RATE)
    holdout = take(SMALL_HOLDOUT_ROWS, bad, good)
    bad_rest, good_rest = bad[holdout_bad:], good[SMALL_HOLDOUT_ROWS - holdout_bad:]
    files = {rows: book.iloc[take(rows, rng.permutation(bad_rest), rng.permutation(good_rest))]
             .reset_index(drop=True) for rows in sizes}
    return book.iloc[holdout].reset_index(drop=True), files


def bench_small_file(frame: pd.DataFrame, holdout: pd.DataFrame, rows: int, seed: int,
                     registry: Path) -> SmallFileRun:
    """Train ``frame`` with the product's defaults; score the promoted model and the fixed
    reference (fitted on the rows the promoted model was fitted on) on ``holdout``."""
    from sklearn.metrics import roc_auc_score

    from training.datasets import load_dataset_config
    from training.pipeline import prepare_features, train_from_frame
    from training.split import split_test
    from training.training_config import TrainingConfig

    config, dataset = TrainingConfig(), load_dataset_config("generated")
    started = time.perf_counter()
    result = train_from_frame(frame, dataset, {}, {}, registry_dir=registry, promote=False,
                              config=config, progress=False, log=lambda _line: None,
                              write_report_files=False)
    seconds = time.perf_counter() - started
    card = result.card
    prepared = prepare_features(frame, dataset, config)
    if card["evaluation"]["test_figures"] == "out_of_fold":
        fitted = np.arange(len(prepared.label))
    else:
        fitted = split_test(prepared.frame, prepared.label, dataset.date_column,
                            config.test_fraction, config.seed).train_positions
    holdout_matrix = prepared.encoder.transform(holdout)
    holdout_label = holdout["bad"].to_numpy().astype(int)
    promoted = roc_auc_score(holdout_label,
                             result.registered.probability_of_default(holdout_matrix))
    reference = reference_lightgbm_auc(prepared.matrix, prepared.label, fitted, fitted,
                                       prepared.categorical_indices, holdout_matrix,
                                       holdout_label)
    search = card["search"]
    smote = search.get("smote", {}).get("chosen", {})
    plain = search["no_smote"]["chosen"]
    return SmallFileRun(
        rows=rows, seed=seed, bad_loans=int(prepared.label.sum()),
        promoted_trees=card["model"]["trees"],
        smote_strength=smote.get("smote_sampling_strategy"),
        smote_cv_auc=smote.get("cv_auc", plain["cv_auc"]), plain_cv_auc=plain["cv_auc"],
        plain_cv_auc_se=plain["cv_auc_se"], holdout_auc=float(promoted),
        reference_holdout_auc=reference, test_figures=card["evaluation"]["test_figures"],
        seconds_train=round(seconds, 1), warnings=[w["code"] for w in card["warnings"]])


SMALL_HEADER = ("| rows | seed | bad loans | trees | SMOTE bad:good | CV AUC SMOTE / none (s.e.) "
                "| SMOTE within 1 s.e. | holdout AUC | reference holdout AUC | difference "
                "| test figures | train time | warnings |")


def format_small_row(run: SmallFileRun) -> str:
    strength = f"{run.smote_strength:.3f}" if run.smote_strength is not None else "none"
    return (f"| {run.rows:,} | {run.seed} | {run.bad_loans:,} | {run.promoted_trees} "
            f"| {strength} | {run.smote_cv_auc:.4f} / {run.plain_cv_auc:.4f} "
            f"({run.plain_cv_auc_se:.4f}) | {'yes' if run.smote_within_one_se else 'no'} "
            f"| {run.holdout_auc:.4f} | {run.reference_holdout_auc:.4f} "
            f"| {run.difference:+.4f} | {run.test_figures} | {run.seconds_train:.0f} s "
            f"| {', '.join(run.warnings) or '–'} |")


def format_small_summary(runs: Sequence[SmallFileRun]) -> list[str]:
    """Per size: mean difference against the reference, fewest trees, SMOTE within 1 s.e."""
    lines = ["| rows | runs | mean AUC − reference (holdout) | fewest trees "
             "| SMOTE within 1 s.e. |", "|---|---|---|---|---|"]
    for rows in sorted({run.rows for run in runs}):
        mine = [run for run in runs if run.rows == rows]
        lines.append(f"| {rows:,} | {len(mine)} "
                     f"| {np.mean([run.difference for run in mine]):+.4f} "
                     f"| {min(run.promoted_trees for run in mine)} "
                     f"| {sum(run.smote_within_one_se for run in mine)}/{len(mine)} |")
    return lines


def bench_small_files(folder: Path, sizes: Sequence[int], seeds: Sequence[int], echo: Echo
                      ) -> list[SmallFileRun]:
    """Every small size × seed, a row as each finishes, then the summary per size."""
    import tempfile

    runs = []
    echo(SMALL_HEADER)
    echo("|" + "---|" * (SMALL_HEADER.count("|") - 1))
    with tempfile.TemporaryDirectory() as registry:
        for seed in seeds:
            holdout, files = draw_small_files(small_file_book(folder, seed), sizes, seed)
            for rows, frame in files.items():
                run = bench_small_file(frame, holdout, rows, seed, Path(registry))
                runs.append(run)
                echo(format_small_row(run))
    echo("")
    for line in format_small_summary(runs):
        echo(line)
    return runs
