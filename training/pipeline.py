"""``run_training``: loan file → cleaned, labelled frame → features → cross-validated search
(LightGBM with and without SMOTE, and the baseline scorecard) and the fixed reference
LightGBM → final models refitted on every training row → calibration on out-of-fold
predictions → evaluation → ONNX (parity-checked) → registry (+ report).

When bad loans are few (``TrainingConfig.small_file``), the search takes its small-file
form, there is no test split: every labelled row is cross-validated and fits the final
model, and the test figures are the out-of-fold predictions (each fold calibrated on the
others'), since a split of a few dozen bad loans would judge nothing.

Each step is a function of its own module; this one only orders them and records what
happened (timings, warnings) so the CLI and the report can show it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from config.json_types import JSONObject
from features.definitions import FeatureEncoder
from onnx_models.policy import apply_calibration, decide
from onnx_models.registry import MODEL_CARD, MODEL_ONNX, RegisteredModel, Registry, make_version
from training.calibration import fit_platt
from training.diagnostics import AnalystWarning, RunFigures, analyst_warnings
from training.evaluate import (
    BinaryMetrics,
    DecisionOutcomes,
    FoldSummary,
    decision_outcomes,
    evaluate_probabilities,
)
from training.export import ParityResult, booster_to_onnx, check_parity
from training.fairness_report import fairness_on_rows
from training.leakage import LeakagePolicy, check_features, leakage_alarm
from training.model import FittedVariant, float32_safe_booster, train_booster
from training.split import TestSplit, split_test
from training.thresholds import CostThresholds, thresholds_from_costs
from training.training_config import TrainingConfig
from training.tuning import (
    Candidate,
    CandidateScore,
    CrossValidator,
    SearchResult,
    cross_fitted_metrics,
    cross_fitted_probabilities,
    run_search,
    smote_candidates,
)

if TYPE_CHECKING:
    from training.datasets import DatasetConfig

Log = Callable[[str], None]
LABEL_COLUMN = "bad"
OUT_OF_FOLD = "out_of_fold"
TEST_FIGURES = {
    OUT_OF_FOLD: "out-of-fold: few bad loans, so no test split was kept; every labelled row "
                 "was cross-validated and fits the final model, and the test figures are the "
                 "fold models' predictions on the rows each did not train on (calibrated on "
                 "the other folds' rows)",
    "holdout": "the held-out test set: loans that took no part in the search, the fit or the "
               "calibration",
}
# The same rows, as the fairness section names them ("<n> rows of ...").
FAIRNESS_ROWS = {
    OUT_OF_FOLD: "the labelled file, each scored by the fold model that did not train on it "
                 "(few bad loans: no test split was kept)",
    "holdout": "the held-out test set (loans that took no part in the search, the fit or the "
               "calibration)",
}


@dataclass
class TrainingResult:
    """What a training run produced."""

    version: str
    card: dict[str, Any]
    registered: RegisteredModel
    promoted: bool
    report_path: Path | None
    warnings: list[AnalystWarning] = field(default_factory=list)


@dataclass
class _Prepared:
    frame: pd.DataFrame
    encoder: FeatureEncoder
    matrix: np.ndarray
    label: np.ndarray
    categorical_indices: list[int]


def data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the cleaned, labelled rows (column order independent)."""
    ordered = frame[sorted(frame.columns, key=str)]
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in ordered.columns]).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def run_training(data_path: str | Path, dataset: str | Path | DatasetConfig = "generated",
                 registry_dir: str | Path | None = None, promote: bool = True,
                 config: TrainingConfig | None = None, report_dir: str | Path | None = None,
                 progress: bool = True, log: Log = print) -> TrainingResult:
    """Train from a loan file described by ``dataset`` (built-in name, TOML path or config)."""
    from training.datasets import load_clean_labelled, load_dataset_config

    dataset_config = load_dataset_config(dataset) if isinstance(dataset, (str, Path)) else dataset
    checked_encoder(dataset_config, config or TrainingConfig())  # fail fast, before reading
    started = time.perf_counter()
    log(f"Reading and cleaning {data_path} (dataset config {dataset_config.name!r}) ...")
    frame, cleaning_report, label_report = load_clean_labelled(data_path, dataset_config)
    log(f"  {cleaning_report.rows_in:,} rows read, {len(frame):,} labelled loans "
        f"({label_report.bad_rate:.1%} bad) in {time.perf_counter() - started:.1f}s")
    return train_from_frame(frame, dataset_config, cleaning_report.to_dict(),
                            label_report.to_dict(), registry_dir=registry_dir, promote=promote,
                            config=config, report_dir=report_dir, progress=progress, log=log,
                            data_path=str(data_path))


def checked_encoder(dataset_config: DatasetConfig, config: TrainingConfig) -> FeatureEncoder:
    """The (unfitted) feature encoder the dataset asks for, after the leakage guard."""
    encoder = FeatureEncoder(
        feature_set=dataset_config.feature_set,
        columns=dataset_config.model_features or None,
        descriptions=dataset_config.feature_descriptions,
        include_addr_state=config.include_addr_state,
        allow_pricing=bool(dataset_config.allow_pricing),
        reference_annual_rate=config.reference_annual_rate,
        min_category_count=config.min_category_count)
    check_features(encoder.specs(), LeakagePolicy.from_config(dataset_config))
    return encoder


def prepare_features(frame: pd.DataFrame, dataset_config: DatasetConfig,
                     config: TrainingConfig) -> _Prepared:
    """Leakage check, then the shared feature definitions fitted on the frame."""
    encoder = checked_encoder(dataset_config, config)
    if LABEL_COLUMN not in frame.columns:
        raise ValueError("the labelled frame has no 'bad' column; label the data first")
    frame = frame.reset_index(drop=True)
    encoder.fit(frame)
    matrix = encoder.transform(frame)
    categorical = [i for i, spec in enumerate(encoder.feature_specs_)
                   if spec.kind == "categorical"]
    return _Prepared(frame, encoder, matrix, frame[LABEL_COLUMN].to_numpy().astype(int),
                     categorical)


@dataclass(frozen=True)
class VariantComparison:
    """A fitted variant's figures: test metrics before and after calibration and the
    cross-validation of its procedure (model.json ``baseline`` and ``smote.variants``)."""

    variant: FittedVariant
    raw: BinaryMetrics
    calibrated: BinaryMetrics
    cv: FoldSummary

    def to_dict(self) -> JSONObject:
        variant = self.variant
        return {"raw": self.raw.to_dict(), "calibrated": self.calibrated.to_dict(),
                "cv": self.cv.to_dict(), "trees": variant.trees,
                "fitted_on_rows": variant.training_rows, "synthetic_rows": variant.synthetic_rows,
                "settings": variant.settings, "calibration": variant.calibration}


@dataclass
class BaselineSearch:
    """The baseline scorecard's search: each L2 strength's CV AUC (mean over the folds, in the
    order tried) and the one chosen."""

    chosen: float
    max_bins: int
    cv_auc: dict[float, float]

    @property
    def chosen_auc(self) -> float:
        return self.cv_auc[self.chosen]

    def to_dict(self) -> JSONObject:
        return {"chosen": {"regularization_C": self.chosen, "cv_auc": self.chosen_auc,
                           "max_bins": self.max_bins},
                "tried": [{"regularization_C": strength, "cv_auc": auc}
                          for strength, auc in self.cv_auc.items()]}


@dataclass
class ReferenceFigures:
    """The fixed, regularised LightGBM fitted beside the search's choice on the same rows and
    columns: its cross-validation on the search's folds (small files) and its test figures
    (out-of-fold, or the held-out test set where it was fitted once on the training rows)."""

    settings: JSONObject
    trees: int
    test: BinaryMetrics
    test_figures: str
    fitted_on_rows: int
    cv: FoldSummary | None = None
    cv_auc_se: float | None = None

    def to_dict(self) -> JSONObject:
        return {"settings": self.settings, "trees": self.trees, "test": self.test.to_dict(),
                "test_figures": self.test_figures, "fitted_on_rows": self.fitted_on_rows,
                "cv": self.cv.to_dict() if self.cv else None, "cv_auc_se": self.cv_auc_se}


@dataclass
class TrainingRun:
    """What the steps of one training run produce, in order."""

    prepared: _Prepared
    dataset_config: DatasetConfig
    config: TrainingConfig
    split: TestSplit
    fingerprint: str
    timings: dict[str, float] = field(default_factory=dict)
    validator: CrossValidator | None = None
    searches: dict[str, SearchResult] = field(default_factory=dict)
    baseline_search: BaselineSearch | None = None
    out_of_fold: dict[str, np.ndarray] = field(default_factory=dict)
    variants: dict[str, FittedVariant] = field(default_factory=dict)
    comparison: dict[str, VariantComparison] = field(default_factory=dict)
    decisions: DecisionOutcomes | None = None
    thresholds: CostThresholds | None = None
    test_pd: np.ndarray | None = None
    reference: ReferenceFigures | None = None
    reference_score: CandidateScore | None = None
    # Calibrated PDs of every fitted variant on the rows the test figures describe.
    test_pds: dict[str, np.ndarray] = field(default_factory=dict)
    test_raw: dict[str, np.ndarray] = field(default_factory=dict)  # before calibration
    onnx_bytes: bytes = b""
    parity: ParityResult | None = None
    warnings: list[AnalystWarning] = field(default_factory=list)
    # Approval rate, adverse impact, AUC and calibration by monitored group on test_rows.
    fairness: JSONObject = field(default_factory=dict)

    @property
    def exported_name(self) -> str:
        """The variant served: as configured, except that rows already as balanced as any
        SMOTE target leave no SMOTE variant, and the plain LightGBM is served."""
        name = self.config.exported_variant
        return "no_smote" if name == "smote" and name not in self.variants else name

    @property
    def exported(self) -> FittedVariant:
        return self.variants[self.exported_name]

    @property
    def test_figures(self) -> str:
        """``out_of_fold`` (small files: no test split) or ``holdout``."""
        return OUT_OF_FOLD if self.split.method == OUT_OF_FOLD else "holdout"

    @property
    def test_rows(self) -> pd.DataFrame:
        """The frame rows (monitored columns included) the test figures and ``test_pd``
        describe, in the same order: a report section by group is computed on these."""
        return self.prepared.frame.iloc[self.split.test_positions]

    @property
    def test_population(self) -> str:
        return TEST_FIGURES[self.test_figures]

    @property
    def train_matrix(self) -> np.ndarray:
        return self.prepared.matrix[self.split.train_positions]

    @property
    def train_label(self) -> np.ndarray:
        return self.prepared.label[self.split.train_positions]

    @property
    def test_matrix(self) -> np.ndarray:
        return self.prepared.matrix[self.split.test_positions]

    @property
    def test_label(self) -> np.ndarray:
        return self.prepared.label[self.split.test_positions]


class _Stopwatch:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings, self.started = timings, time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = round(now - self.started, 2)
        self.started = now


def _search(run: TrainingRun, progress: bool, log: Log) -> None:
    """The scorecard's regularisation first (always runs, cheap), then stage 1: tree
    settings without resampling; stage 2: SMOTE strengths with the chosen trees. The two
    LightGBM stages share what the budget has left, half each."""
    config, prepared = run.config, run.prepared
    validator = CrossValidator(prepared.matrix, prepared.label, run.split.train_positions,
                               prepared.categorical_indices, config)
    run.validator = validator
    started, budget = time.monotonic(), config.search.budget_seconds
    log(f"Cross-validating the baseline scorecard ({config.folds} folds on all "
        f"{len(validator.label):,} training rows) ...")
    baseline = _search_baseline(run, validator, progress)
    log(f"  scorecard, L2 C = {baseline.chosen:g} (best of {len(baseline.cv_auc)}): "
        f"CV AUC {baseline.chosen_auc:.4f}")
    left = max(budget - (time.monotonic() - started), 0.0)
    log(f"Cross-validating LightGBM settings (trees chosen where the mean validation AUC "
        f"over the folds peaks; {left:.0f}s of the {budget:.0f}s budget left) ...")
    plain = run_search(validator, [Candidate(trees) for trees in
                                   config.search.tree_candidates],
                       time.monotonic() + left / 2, progress, log,
                       switch_margin_se=config.search.switch_margin_se)
    run.searches["no_smote"] = plain
    candidates = smote_candidates(plain.best.candidate.trees, validator.bad_to_good, config)
    if candidates:
        log("Cross-validating SMOTE strengths (synthetic rows from each fold's training part "
            "only; the best costing at most one CV standard error against no resampling) ...")
        run.searches["smote"] = run_search(validator, candidates, started + budget,
                                           progress, log, against=plain.best)
    if run.test_figures == OUT_OF_FOLD:
        reference = run.config.reference
        log(f"Cross-validating the fixed reference LightGBM ({reference.max_rounds} trees, "
            f"learning rate {reference.learning_rate:g}) on the same folds ...")
        run.reference_score = validator.score_fixed(Candidate(reference.trees), reference,
                                                    progress)


def _search_baseline(run: TrainingRun, validator: CrossValidator,
                     progress: bool) -> BaselineSearch:
    from training.scorecard import fit_scorecard_cv

    search = run.config.search
    by_strength = fit_scorecard_cv(validator.features, validator.label, validator.folds,
                                   validator.categorical_indices, search.scorecard_max_bins,
                                   search.scorecard_regularization, progress)
    scores = {strength: float(np.mean([
        evaluate_probabilities(validator.label[valid], predictions[valid]).auc
        for _, valid in validator.folds])) for strength, predictions in by_strength.items()}
    chosen = max(scores, key=lambda strength: scores[strength])
    run.baseline_search = BaselineSearch(chosen, search.scorecard_max_bins, scores)
    run.out_of_fold["baseline"] = by_strength[chosen]
    return run.baseline_search


def _fit_final_models(run: TrainingRun, progress: bool, log: Log) -> None:
    """Every variant refitted on all training rows with what the search chose, and
    calibrated on its out-of-fold predictions (which SMOTE never touched)."""
    from tqdm import tqdm

    from training.resampling import MissingAwareSMOTE

    config, prepared = run.config, run.prepared
    features, label = run.train_matrix, run.train_label
    steps = [("no_smote", run.searches["no_smote"])]
    if "smote" in run.searches:
        steps.append(("smote", run.searches["smote"]))
    log(f"Fitting the chosen models on all {len(label):,} training rows ...")
    for name, search in tqdm(steps, desc="Final models", unit="model", disable=not progress):
        best = search.best
        fit_features, fit_label = features, label
        if best.candidate.smote is not None:
            smote = best.candidate.smote
            fit_features, fit_label = MissingAwareSMOTE(
                prepared.categorical_indices, smote.sampling_strategy, smote.k_neighbors,
                random_state=config.seed).fit_resample(features, label)
        booster = train_booster(fit_features, fit_label, prepared.categorical_indices,
                                config.lightgbm.with_trees(best.candidate.trees), config.seed,
                                rounds=best.trees)
        run.out_of_fold[name] = best.out_of_fold
        run.variants[name] = FittedVariant(
            name, booster, fit_platt(best.out_of_fold, label), best.trees, len(label),
            len(fit_label) - len(label), best.candidate.to_dict())
    run.variants["baseline"] = _fit_baseline(run)
    run.reference = _reference_figures(run)


def _reference_figures(run: TrainingRun) -> ReferenceFigures:
    """The fixed reference's figures. Small files: its out-of-fold predictions on the search's
    folds. Otherwise one fit on the training rows (no cross-validation, which would cost as
    much as a search candidate on a large file), judged uncalibrated on the test set (AUC and
    KS do not depend on calibration)."""
    reference, config = run.config.reference, run.config
    settings: JSONObject = {"learning_rate": reference.learning_rate,
                            "num_leaves": reference.trees.num_leaves,
                            "min_child_samples": reference.trees.min_child_samples,
                            "reg_lambda": reference.trees.reg_lambda,
                            "feature_fraction": reference.feature_fraction,
                            "bagging_fraction": reference.bagging_fraction,
                            "early_stopping": False}
    score, validator = run.reference_score, run.validator
    if score is not None and validator is not None:
        calibrated = cross_fitted_probabilities(score.out_of_fold, validator.label,
                                                validator.fold_of_row)
        return ReferenceFigures(
            settings, score.trees,
            evaluate_probabilities(validator.label, calibrated, config.calibration_bins),
            OUT_OF_FOLD, len(validator.label),
            cross_fitted_metrics(score.out_of_fold, validator.label, validator.fold_of_row,
                                 config.calibration_bins), score.auc_se)
    booster = train_booster(run.train_matrix, run.train_label,
                            run.prepared.categorical_indices, reference, config.seed)
    raw = np.asarray(booster.predict(run.test_matrix))
    return ReferenceFigures(settings, reference.max_rounds,
                            evaluate_probabilities(run.test_label, raw, config.calibration_bins),
                            "holdout", len(run.train_label))


def _fit_baseline(run: TrainingRun) -> FittedVariant:
    import lightgbm as lgb

    from training.scorecard import BinnedScorecard

    search = run.baseline_search
    assert search is not None, "the scorecard's search runs before the final models"
    scorecard = BinnedScorecard(run.prepared.categorical_indices, search.max_bins,
                                search.chosen).fit(run.train_matrix, run.train_label)
    booster = float32_safe_booster(lgb.Booster(model_str=scorecard.to_lightgbm_text()))
    return FittedVariant("baseline", booster,
                         fit_platt(run.out_of_fold["baseline"], run.train_label),
                         booster.num_trees(), len(run.train_label), 0,
                         {"type": "binned logistic-regression scorecard",
                          "max_bins": search.max_bins,
                          "regularization_C": search.chosen,
                          "bins": int(sum(len(points) for points in scorecard.points_))})


def _evaluate(run: TrainingRun) -> None:
    config, validator = run.config, run.validator
    assert validator is not None, "the search runs before the evaluation"
    run.comparison = {}
    out_of_fold = run.test_figures == OUT_OF_FOLD
    for name, variant in run.variants.items():
        if out_of_fold:  # the rows are the validator's, in the same order
            raw = run.out_of_fold[name]
            calibrated = cross_fitted_probabilities(raw, validator.label, validator.fold_of_row)
        else:
            raw = variant.raw_probability(run.test_matrix)
            calibrated = apply_calibration(raw, variant.calibration)
        run.test_pds[name], run.test_raw[name] = calibrated, raw
        run.comparison[name] = VariantComparison(
            variant,
            raw=evaluate_probabilities(run.test_label, raw, config.calibration_bins),
            calibrated=evaluate_probabilities(run.test_label, calibrated,
                                              config.calibration_bins),
            cv=cross_fitted_metrics(run.out_of_fold[name], validator.label,
                                    validator.fold_of_row, config.calibration_bins))
    run.test_pd = run.test_pds[run.exported_name]
    thresholds = thresholds_from_costs(config.cost_bad_loan, config.cost_rejected_good,
                                       config.review_band_fraction)
    decisions = decision_outcomes(run.test_label, run.test_pd, thresholds)
    run.thresholds, run.decisions = thresholds, decisions
    run.fairness = fairness_on_rows(
        run.test_rows, run.test_pd, decide(run.test_pd, thresholds) == "approve",
        run.test_label, run.dataset_config.monitoring, run.dataset_config.date_column,
        population=FAIRNESS_ROWS[run.test_figures], calibration_bins=config.calibration_bins)
    run.warnings = _warnings(run, thresholds, decisions)


def _warnings(run: TrainingRun, thresholds: CostThresholds,
              decisions: DecisionOutcomes) -> list[AnalystWarning]:
    config, comparison, name = run.config, run.comparison, run.exported_name
    exported = comparison[name]
    lightgbm_name = "smote" if config.smote and "smote" in comparison else "no_smote"
    figures = RunFigures(
        model_name=name, model_is_trees=name != "baseline", trees=run.exported.trees,
        training_bad_loans=int(run.train_label.sum()), training_rows=len(run.train_label),
        approval_rate=decisions["approval_rate"],
        approve_below=thresholds["approve_below"],
        decline_at_or_above=thresholds["decline_at_or_above"],
        test_auc=exported.calibrated.auc, test_bad_loans=int(run.test_label.sum()),
        test_good_loans=int(len(run.test_label) - run.test_label.sum()),
        cv_auc=exported.cv.auc, cv_auc_std=exported.cv.auc_std,
        folds=config.folds, lightgbm_cv_auc=comparison[lightgbm_name].cv.auc,
        baseline_cv_auc=comparison["baseline"].cv.auc,
        smote_cv_auc=comparison["smote"].cv.auc if "smote" in comparison else None,
        plain_cv_auc=comparison["no_smote"].cv.auc,
        test_mean_pd=exported.calibrated.mean_pd,
        test_bad_rate=exported.calibrated.bad_rate,
        train_bad_rate=float(run.train_label.mean()))
    found = analyst_warnings(figures, config.warning_levels)
    alarm = leakage_alarm(max(exported.calibrated.auc, exported.cv.auc),
                          run.dataset_config.feature_set == "lending_club",
                          config.leakage_alarm_auc)
    if alarm:
        found.insert(0, AnalystWarning("leakage_alarm", alarm))
    found += _reference_warning(run, lightgbm_name)
    if "smote" not in run.searches:
        found.append(AnalystWarning("smote_not_applicable", (
            "the training rows are already at least as balanced as every SMOTE target "
            "tried; no SMOTE model was fitted and the plain LightGBM is served.")))
    return found


def _reference_warning(run: TrainingRun, lightgbm_name: str) -> list[AnalystWarning]:
    """``below_reference`` when the search's LightGBM ranks worse than the fixed reference by
    more than the CV standard error of its mean AUC: on the same folds (small files) or on
    the test set (otherwise, where the reference is fitted once)."""
    reference, search = run.reference, run.searches.get(lightgbm_name)
    if reference is None or search is None:
        return []
    chosen_se = search.best.auc_se
    if reference.cv is not None:
        ours, theirs, where = search.best.mean_auc, reference.cv.auc, "cross-validation AUC"
    else:
        ours = run.comparison[lightgbm_name].calibrated.auc
        theirs, where = reference.test.auc, "test AUC"
    if theirs - ours <= chosen_se:
        return []
    return [AnalystWarning("below_reference", (
        f"the search's LightGBM ({where} {ours:.4f}) ranks below the fixed regularised "
        f"reference LightGBM ({theirs:.4f}) by more than the CV standard error "
        f"({chosen_se:.4f}): the search's choice is not to be trusted over the reference; "
        "check the report's search table.")) ]


def _out_of_fold_split(label: np.ndarray) -> TestSplit:
    """Every labelled row trains and is judged out-of-fold."""
    everything = np.arange(len(label))
    return TestSplit(everything, everything, OUT_OF_FOLD)


def _card_additions(run: TrainingRun, card: dict[str, Any]) -> None:
    """What the card needs beyond :func:`training.model_card.build_model_card`: how the test
    figures were obtained, the fixed reference, and the search's form."""
    config = run.config
    card["evaluation"] = {"test_figures": run.test_figures, "description": run.test_population,
                          "rows": len(run.test_label), "bad_loans": int(run.test_label.sum())}
    if run.reference is not None:
        card["fixed_reference"] = run.reference.to_dict()
    card["search"]["selection"] = (
        "trees where the fold-mean validation AUC, smoothed over "
        f"{config.lightgbm.smoothing_rounds} rounds, peaks (at least "
        f"{config.lightgbm.min_trees}); tree settings: "
        + run.searches["no_smote"].rule
        + ("; SMOTE strength: " + run.searches["smote"].rule if "smote" in run.searches else ""))
    card["search"]["small_file_search"] = config.small_file_search
    card["search"]["cv_repeats"] = config.search.cv_repeats
    card["search"]["learning_rate"] = config.lightgbm.learning_rate
    card["search"]["feature_fraction"] = config.lightgbm.feature_fraction


def train_from_frame(frame: pd.DataFrame, dataset_config: DatasetConfig, cleaning: JSONObject,
                     labelling: JSONObject, registry_dir: str | Path | None = None,
                     promote: bool = True, config: TrainingConfig | None = None,
                     report_dir: str | Path | None = None, progress: bool = True,
                     log: Log = print, data_path: str | None = None,
                     write_report_files: bool = True) -> TrainingResult:
    """The pipeline from a cleaned, labelled frame (``bad`` column) to a registered model."""
    from training.model_card import build_model_card

    config = config or TrainingConfig()
    timings: dict[str, float] = {}
    watch = _Stopwatch(timings)
    prepared = prepare_features(frame, dataset_config, config)
    log(f"Features: {len(prepared.encoder.feature_names_)} "
        f"({dataset_config.feature_set} feature set); leakage guard passed")
    bad_loans = int(prepared.label.sum())
    config = config.for_bad_loans(bad_loans, bad_loans / max(len(prepared.label), 1))
    if config.small_file_search:
        split = _out_of_fold_split(prepared.label)
        log(f"Few bad loans ({bad_loans:,}, fewer than {config.small_file.bad_loans_below:,}): "
            f"the small-file search (learning rate {config.lightgbm.learning_rate:g}, "
            f"{config.search.cv_repeats}× repeated {config.folds}-fold CV) on every labelled "
            "row; no test split, the test figures are out-of-fold")
    else:
        split = split_test(prepared.frame, prepared.label, dataset_config.date_column,
                           config.test_fraction, config.seed)
        log(f"Split: {split.describe()}")
    run = TrainingRun(prepared, dataset_config, config, split, data_fingerprint(prepared.frame),
                      timings)
    watch.lap("features_and_split")

    _search(run, progress, log)
    watch.lap("search")
    _fit_final_models(run, progress, log)
    watch.lap("final_models")
    _evaluate(run)
    watch.lap("evaluation")

    log("Exporting to ONNX and checking parity on the whole test set ...")
    run.onnx_bytes = booster_to_onnx(run.exported.booster, prepared.matrix.shape[1])
    run.parity = check_parity(run.onnx_bytes, run.exported.booster, run.test_matrix,
                              run.exported.calibration, config.parity_tolerance,
                              progress=progress)
    watch.lap("export_and_parity")

    created_at = datetime.now(UTC).replace(microsecond=0)
    version = make_version(created_at, run.fingerprint)
    card = build_model_card(run, version, created_at, cleaning, labelling, data_path)
    _card_additions(run, card)
    report_path = None
    if write_report_files:
        from training.report import write_report

        assert run.test_pd is not None, "the test split is scored before the report"
        log("Writing the report ...")
        report_path = write_report(
            Path(report_dir) if report_dir else Path.cwd() / "reports" / version, card,
            full_frame=prepared.frame, test_label=run.test_label, test_pds=run.test_pds,
            test_raw=run.test_raw[run.exported_name], variants=run.variants,
            encoder=prepared.encoder)
        watch.lap("report")

    registry = Registry(registry_dir)
    registered = registry.register(version, {
        MODEL_ONNX: run.onnx_bytes,
        MODEL_CARD: json.dumps(card, indent=2, default=_json_default).encode(),
        "model.txt": run.exported.booster.model_to_string().encode(),
    })
    if promote:
        registry.promote(version)
    return TrainingResult(version, card, registered, promote, report_path, run.warnings)


def _json_default(value: object) -> int | float | str:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
