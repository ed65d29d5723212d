"""model.json of a training run: what the worker reads to serve (feature order and encodings,
calibration, thresholds, score scale, grades, reference distributions) and what an analyst
reads to trust it (metrics next to the baseline's, the search, warnings, lineage)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from config.json_types import JSONObject
from onnx_models.policy import score_points
from onnx_models.registry import MODEL_ONNX
from training.diagnostics import warnings_to_card
from training.reference import feature_references, group_statistics, score_reference

if TYPE_CHECKING:
    from training.pipeline import TrainingRun

MODEL_TYPE = {"smote": "lightgbm", "no_smote": "lightgbm", "baseline": "scorecard"}
VARIANT_LABEL = {"smote": "LightGBM with SMOTE", "no_smote": "LightGBM without resampling",
                 "baseline": "baseline scorecard"}


def _explanations(variant: str) -> dict[str, str]:
    if variant == "baseline":
        return {"file": "model.txt",
                "format": "lightgbm text model: the scorecard as one tree per feature whose "
                          "leaves are the bins' points",
                "method": "TreeSHAP contributions in raw log-odds (pred_contrib): a "
                          "feature's bin points minus the population's average points"}
    return {"file": "model.txt", "format": "lightgbm text model",
            "method": "TreeSHAP contributions in raw log-odds (pred_contrib)"}


def _search(run: TrainingRun) -> JSONObject:
    return {"folds": run.config.folds, "budget_seconds": run.config.search.budget_seconds,
            "seconds": run.timings.get("search"),
            "selection": "highest AUC averaged over the folds; trees where that mean peaks",
            **{name: search.to_dict() for name, search in run.searches.items()},
            "baseline": run.baseline_search.to_dict() if run.baseline_search else {}}


def _feature_importance(run: TrainingRun) -> dict[str, float]:
    """Each input's share of the exported model's split gain (the console compares customers
    on the most important ones)."""
    booster = getattr(run.exported, "booster", None)
    if booster is None or not hasattr(booster, "feature_importance"):
        return {}
    gain = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
    total = max(float(gain.sum()), 1e-12)
    names = [spec.name for spec in run.prepared.encoder.feature_specs_]
    return {name: round(float(share) / total, 6) for name, share in zip(names, gain, strict=True)}


def _model(run: TrainingRun) -> JSONObject:
    name, exported = run.exported_name, run.exported
    return {"type": MODEL_TYPE[name], "variant": name, "description": VARIANT_LABEL[name],
            "trees": exported.trees, "fitted_on_rows": exported.training_rows,
            "synthetic_rows": exported.synthetic_rows, "settings": exported.settings,
            "learning_rate": run.config.lightgbm.learning_rate if name != "baseline" else None,
            "feature_importance": dict(_feature_importance(run)),
            "cv_describes": "the same settings and number of trees fitted on each fold's "
                            "training part; the promoted model is that procedure on every "
                            "training row"}


def build_model_card(run: TrainingRun, version: str, created_at: datetime,
                     cleaning: JSONObject, labelling: JSONObject,
                     data_path: str | None) -> dict[str, Any]:
    prepared, config, split = run.prepared, run.config, run.split
    dataset_config, name = run.dataset_config, run.exported_name
    assert run.test_pd is not None and run.parity is not None
    smote = run.searches.get("smote")
    chosen_smote = smote.best.candidate.smote if smote else None
    return {
        "version": version,
        "created_at": created_at.isoformat(),
        "model_type": MODEL_TYPE[name],
        "model": _model(run),
        "warnings": warnings_to_card(run.warnings),
        "onnx": {"file": MODEL_ONNX, "input": "features", "output": "probabilities",
                 "output_column_bad": 1, "dtype": "float32",
                 "missing_values": "NaN (numeric missing and unknown categories)"},
        **prepared.encoder.to_model_card(),
        "feature_set": dataset_config.feature_set,
        "serving": dataset_config.serving_spec().to_card(),
        # Protected characteristics watched for adverse impact: monitored, never model inputs.
        "monitoring": dataset_config.monitoring.to_card(),
        # Approval rate, adverse impact and parity, AUC and calibration by group on the rows
        # the test figures come from.
        "fairness": run.fairness,
        "calibration": run.exported.calibration,
        "thresholds": run.thresholds,
        "score_scale": dict(config.score_scale),
        "risk_grades": [dict(band) for band in config.risk_grades],
        "metrics": {"test": run.comparison[name].calibrated.to_dict(),
                    "test_raw": run.comparison[name].raw.to_dict(),
                    "cv": run.comparison[name].cv.to_dict(),
                    "decisions_at_thresholds": run.decisions},
        "baseline": run.comparison["baseline"].to_dict(),
        "smote": {"exported": name if name != "baseline" else None,
                  "sampling_strategy": chosen_smote.sampling_strategy if chosen_smote else None,
                  "k_neighbors": chosen_smote.k_neighbors if chosen_smote else None,
                  "variants": {key: run.comparison[key].to_dict() for key in ("smote", "no_smote")
                               if key in run.comparison}},
        "search": _search(run),
        "parity": run.parity.to_dict(),
        "data_fingerprint": {"sha256": run.fingerprint, "rows": len(prepared.frame),
                             "source": data_path},
        "dataset": {"name": dataset_config.name, "source": getattr(dataset_config, "source", ""),
                    "id_column": dataset_config.id_column,
                    "customer_id_column": dataset_config.customer_id_column,
                    "target_column": dataset_config.target_column,
                    # How the ledger classes an outcome servicing reports for this portfolio.
                    "bad_values": [str(value) for value in dataset_config.bad_values],
                    "good_values": [str(value) for value in dataset_config.good_values],
                    "excluded_values": [str(value) for value in dataset_config.excluded_values],
                    # Lending Club files date an outcome by the last payment month.
                    "outcome_date_column": "last_pymnt_d" if dataset_config.is_lending_club
                    else None,
                    "date_column": dataset_config.date_column,
                    "allow_pricing": dataset_config.allow_pricing,
                    "known_at_application": list(getattr(dataset_config,
                                                         "known_at_application", ())),
                    "exclude_columns": list(getattr(dataset_config, "exclude_columns", ()))},
        "split": {"method": split.method, "test_from": split.cutoff,
                  "train_rows": len(split.train_positions),
                  "test_rows": len(split.test_positions),
                  "train_bad_loans": int(run.train_label.sum()),
                  "model_fitted_on_rows": run.exported.training_rows},
        "reference": {
            "features_population": "training period",
            "features": feature_references(prepared.matrix[split.train_positions],
                                           prepared.encoder.feature_specs_,
                                           prepared.encoder.categories_),
            "score_population": ("out-of-fold predictions on every labelled row"
                                 if run.test_figures == "out_of_fold" else "test set"),
            "score": score_reference(run.test_pd, score_points(run.test_pd, config.score_scale)),
            "groups": group_statistics(prepared.frame.iloc[split.test_positions],
                                       run.test_label, run.test_pd,
                                       dataset_config.serving_spec()),
        },
        "training": {"config": config.to_dict(), "timings_s": run.timings,
                     "cleaning": cleaning, "label": labelling,
                     "train_bad_rate": float(run.train_label.mean())},
        "explanations": _explanations(name),
    }
