"""``run_training``: loan file → cleaned, labelled frame → features → SMOTE + LightGBM →
calibration → evaluation → ONNX (parity-checked) → registry (+ report).

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
from typing import Any

import numpy as np
import pandas as pd

from features.definitions import FeatureEncoder
from features.scoring import apply_calibration, score_points
from onnx_models.registry import MODEL_CARD, MODEL_ONNX, RegisteredModel, Registry, make_version
from training.calibration import fit_platt
from training.evaluate import decision_outcomes, evaluate_probabilities, summarize_folds
from training.export import ParityResult, booster_to_onnx, check_parity
from training.leakage import LeakagePolicy, check_features, leakage_alarm
from training.model import FittedVariant, fit_variant, train_booster
from training.reference import feature_references, group_statistics, score_reference
from training.split import (
    TestSplit,
    TrainingPeriodSplit,
    split_test,
    split_training_period,
    stratified_holdout,
)
from training.thresholds import thresholds_from_costs
from training.training_config import TrainingConfig

Log = Callable[[str], None]
LABEL_COLUMN = "bad"


@dataclass
class TrainingResult:
    """What a training run produced."""

    version: str
    card: dict[str, Any]
    registered: RegisteredModel
    promoted: bool
    report_path: Path | None
    warnings: list[str] = field(default_factory=list)


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


def run_training(data_path: str | Path, dataset: Any = "generated",
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


def checked_encoder(dataset_config: Any, config: TrainingConfig) -> FeatureEncoder:
    """The (unfitted) feature encoder the dataset asks for, after the leakage guard."""
    encoder = FeatureEncoder(
        feature_set=dataset_config.feature_set, columns=dict(dataset_config.features) or None,
        include_addr_state=config.include_addr_state,
        allow_pricing=bool(dataset_config.allow_pricing),
        reference_annual_rate=config.reference_annual_rate,
        min_category_count=config.min_category_count)
    check_features(encoder.specs(), LeakagePolicy.from_config(dataset_config))
    return encoder


def prepare_features(frame: pd.DataFrame, dataset_config: Any,
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


def cross_validate(prepared: _Prepared, positions: np.ndarray, rounds: int,
                   config: TrainingConfig, progress: bool, use_smote: bool = True
                   ) -> dict[str, Any]:
    """Stratified k-fold on the training period: each fold SMOTE-balances its fit part (when
    the exported variant uses SMOTE), calibrates on an untouched slice of its training part,
    and scores its validation part."""
    from sklearn.model_selection import StratifiedKFold
    from tqdm import tqdm

    from training.resampling import MissingAwareSMOTE

    label = prepared.label[positions]
    folds = StratifiedKFold(config.folds, shuffle=True, random_state=config.seed)
    results = []
    for fold, (train_idx, valid_idx) in enumerate(tqdm(
            list(folds.split(positions, label)), desc="CV folds", unit="fold",
            disable=not progress)):
        train_rows, valid_rows = positions[train_idx], positions[valid_idx]
        fit_rows, calibration_rows = stratified_holdout(
            train_rows, prepared.label[train_rows], config.calibration_fraction,
            config.seed + fold)
        sampler = MissingAwareSMOTE(prepared.categorical_indices, config.smote_sampling_strategy,
                                    config.smote_k_neighbors, random_state=config.seed + fold)
        features, fold_label = prepared.matrix[fit_rows], prepared.label[fit_rows]
        if use_smote:
            features, fold_label = sampler.fit_resample(features, fold_label)
        booster = train_booster(features, fold_label, prepared.categorical_indices, config,
                                config.seed + fold, rounds=rounds)
        variant = FittedVariant("cv", booster, {}, rounds, len(fold_label), 0)
        calibration = fit_platt(variant.raw_probability(prepared.matrix[calibration_rows]),
                                prepared.label[calibration_rows])
        probability = apply_calibration(variant.raw_probability(prepared.matrix[valid_rows]),
                                        calibration)
        results.append(evaluate_probabilities(prepared.label[valid_rows], probability,
                                              config.calibration_bins))
    return summarize_folds(results)


def _variant_metrics(variant: FittedVariant, matrix: np.ndarray, label: np.ndarray,
                     config: TrainingConfig) -> dict[str, Any]:
    raw = variant.raw_probability(matrix)
    calibrated = apply_calibration(raw, variant.calibration)
    return {"raw": evaluate_probabilities(label, raw, config.calibration_bins).to_dict(),
            "calibrated": evaluate_probabilities(label, calibrated,
                                                 config.calibration_bins).to_dict(),
            "best_iteration": variant.best_iteration, "training_rows": variant.training_rows,
            "synthetic_rows": variant.synthetic_rows, "calibration": variant.calibration}


@dataclass
class _Run:
    """What the steps of one training run produce, in order."""

    prepared: _Prepared
    dataset_config: Any
    config: TrainingConfig
    split: TestSplit
    period: TrainingPeriodSplit
    fingerprint: str
    timings: dict[str, float] = field(default_factory=dict)
    variants: dict[str, FittedVariant] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    test_pd: np.ndarray | None = None
    onnx_bytes: bytes = b""
    parity: ParityResult | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def exported(self) -> FittedVariant:
        return self.variants[self.config.exported_variant]

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


def _fit_variants(run: _Run, watch: _Stopwatch, progress: bool, log: Log) -> None:
    from tqdm import tqdm

    log("Fitting LightGBM with SMOTE on the fit rows (early stopping and calibration on "
        "untouched slices), then without SMOTE ...")
    for name, use_smote in tqdm((("smote", True), ("no_smote", False)), unit="model",
                                desc="LightGBM variants", disable=not progress):
        run.variants[name] = fit_variant(
            name, run.prepared.matrix, run.prepared.label, run.period.fit,
            run.period.early_stopping, run.period.calibration,
            run.prepared.categorical_indices, run.config, use_smote)
        watch.lap(f"fit_{name}")
    smote, plain = run.variants["smote"], run.variants["no_smote"]
    log(f"  SMOTE added {smote.synthetic_rows:,} synthetic bad loans; best iteration with "
        f"SMOTE {smote.best_iteration}, without {plain.best_iteration}; exported: "
        f"{run.config.exported_variant}")


def _evaluate(run: _Run) -> None:
    config, exported = run.config, run.exported
    run.comparison = {name: _variant_metrics(variant, run.test_matrix, run.test_label, config)
                      for name, variant in run.variants.items()}
    run.test_pd = apply_calibration(exported.raw_probability(run.test_matrix),
                                    exported.calibration)
    run.thresholds = thresholds_from_costs(config.cost_bad_loan, config.cost_rejected_good,
                                           config.review_band_fraction)
    run.decisions = decision_outcomes(run.test_label, run.test_pd, run.thresholds)
    lending_club_shaped = run.dataset_config.feature_set == "lending_club"
    alarm = leakage_alarm(max(run.comparison[exported.name]["calibrated"]["auc"],
                              run.cv["auc"]), lending_club_shaped, config.leakage_alarm_auc)
    run.warnings = [alarm] if alarm else []


def _model_card(run: _Run, version: str, created_at: datetime, cleaning: dict[str, Any],
                labelling: dict[str, Any], data_path: str | None) -> dict[str, Any]:
    prepared, config, split, period = run.prepared, run.config, run.split, run.period
    exported, dataset_config = run.exported, run.dataset_config
    assert run.test_pd is not None and run.parity is not None
    return {
        "version": version,
        "created_at": created_at.isoformat(),
        "model_type": "lightgbm",
        "onnx": {"file": MODEL_ONNX, "input": "features", "output": "probabilities",
                 "output_column_bad": 1, "dtype": "float32",
                 "missing_values": "NaN (numeric missing and unknown categories)"},
        **prepared.encoder.to_model_card(),
        "feature_set": dataset_config.feature_set,
        "calibration": exported.calibration,
        "thresholds": run.thresholds,
        "score_scale": dict(config.score_scale),
        "risk_grades": [dict(band) for band in config.risk_grades],
        "metrics": {"test": run.comparison[exported.name]["calibrated"],
                    "test_raw": run.comparison[exported.name]["raw"], "cv": run.cv,
                    "decisions_at_thresholds": run.decisions},
        "smote": {"exported": exported.name, "sampling_strategy": config.smote_sampling_strategy,
                  "k_neighbors": config.smote_k_neighbors, "variants": run.comparison},
        "parity": run.parity.to_dict(),
        "data_fingerprint": {"sha256": run.fingerprint, "rows": len(prepared.frame),
                             "source": data_path},
        "dataset": {"name": dataset_config.name, "source": getattr(dataset_config, "source", ""),
                    "date_column": dataset_config.date_column,
                    "allow_pricing": dataset_config.allow_pricing},
        "split": {"method": split.method, "test_from": split.cutoff,
                  "train_rows": len(split.train_positions),
                  "test_rows": len(split.test_positions),
                  "fit_rows": len(period.fit),
                  "early_stopping_rows": len(period.early_stopping),
                  "calibration_rows": len(period.calibration)},
        "reference": {
            "features_population": "training period",
            "features": feature_references(prepared.matrix[split.train_positions],
                                           prepared.encoder.feature_specs_,
                                           prepared.encoder.categories_),
            "score_population": "test set",
            "score": score_reference(run.test_pd, score_points(run.test_pd, config.score_scale)),
            "groups": group_statistics(prepared.frame.iloc[split.test_positions],
                                       run.test_label, run.test_pd),
        },
        "training": {"config": config.to_dict(), "timings_s": run.timings,
                     "cleaning": cleaning, "label": labelling, "warnings": run.warnings,
                     "train_bad_rate": float(prepared.label[split.train_positions].mean())},
        "explanations": {"file": "model.txt", "format": "lightgbm text model",
                         "method": "TreeSHAP contributions in raw log-odds (pred_contrib)"},
    }


def train_from_frame(frame: pd.DataFrame, dataset_config: Any, cleaning: dict[str, Any],
                     labelling: dict[str, Any], registry_dir: str | Path | None = None,
                     promote: bool = True, config: TrainingConfig | None = None,
                     report_dir: str | Path | None = None, progress: bool = True,
                     log: Log = print, data_path: str | None = None,
                     write_report_files: bool = True) -> TrainingResult:
    """The pipeline from a cleaned, labelled frame (``bad`` column) to a registered model."""
    config = config or TrainingConfig()
    timings: dict[str, float] = {}
    watch = _Stopwatch(timings)
    prepared = prepare_features(frame, dataset_config, config)
    log(f"Features: {len(prepared.encoder.feature_names_)} "
        f"({dataset_config.feature_set} feature set); leakage guard passed")
    split = split_test(prepared.frame, prepared.label, dataset_config.date_column,
                       config.test_fraction, config.seed)
    period = split_training_period(split.train_positions, prepared.label[split.train_positions],
                                   config.calibration_fraction, config.early_stopping_fraction,
                                   config.seed)
    log(f"Split: {split.describe()}")
    run = _Run(prepared, dataset_config, config, split, period,
               data_fingerprint(prepared.frame), timings)
    watch.lap("features_and_split")

    _fit_variants(run, watch, progress, log)
    log(f"Cross-validating ({config.folds} folds) ...")
    run.cv = cross_validate(prepared, split.train_positions, run.exported.best_iteration,
                            config, progress, use_smote=run.exported.name == "smote")
    watch.lap("cross_validation")
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
    card = _model_card(run, version, created_at, cleaning, labelling, data_path)
    report_path = None
    if write_report_files:
        from training.report import write_report

        assert run.test_pd is not None, "the test split is scored before the report"
        log("Writing the report ...")
        report_path = write_report(
            Path(report_dir) if report_dir else Path.cwd() / "reports" / version, card,
            full_frame=prepared.frame, test_label=run.test_label, test_pd=run.test_pd,
            variants=run.variants, test_matrix=run.test_matrix, encoder=prepared.encoder)
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


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
