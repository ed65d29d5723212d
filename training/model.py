"""Fitting one LightGBM variant: optional SMOTE on the fit rows, early stopping and
calibration on untouched slices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.calibration import fit_platt
from training.resampling import MissingAwareSMOTE
from training.training_config import TrainingConfig


@dataclass
class FittedVariant:
    """A trained booster with its calibration (model.json form)."""

    name: str  # "smote" | "no_smote"
    booster: Any  # lightgbm.Booster
    calibration: dict[str, Any]
    best_iteration: int
    training_rows: int  # after resampling
    synthetic_rows: int

    def raw_probability(self, features: np.ndarray) -> np.ndarray:
        """The booster's uncalibrated probability (float64 input, as ONNX sees float32)."""
        return self.booster.predict(np.asarray(features, dtype=np.float32).astype(np.float64))


def train_booster(features: np.ndarray, label: np.ndarray, categorical_indices: Sequence[int],
                  config: TrainingConfig, seed: int, rounds: int | None = None,
                  early_stopping: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """LightGBM on float32-representable inputs, so the ONNX graph sees identical values."""
    import lightgbm as lgb

    settings = config.lightgbm
    params = settings.params(seed)
    train_set = lgb.Dataset(np.asarray(features, dtype=np.float32).astype(np.float64), label,
                            categorical_feature=list(categorical_indices) or "auto",
                            free_raw_data=True)
    valid_sets: list[lgb.Dataset] = []
    callbacks: list[Callable[..., Any]] = []
    if early_stopping is not None:
        valid_sets = [lgb.Dataset(np.asarray(early_stopping[0], dtype=np.float32)
                                  .astype(np.float64), early_stopping[1], reference=train_set)]
        callbacks = [lgb.early_stopping(settings.early_stopping_rounds, verbose=False)]
    booster = lgb.train(params, train_set, num_boost_round=rounds or settings.max_rounds,
                        valid_sets=valid_sets, callbacks=callbacks)
    best = int(booster.best_iteration or booster.current_iteration())
    safe = lgb.Booster(model_str=float32_safe_thresholds(
        booster.model_to_string(num_iteration=best)))
    safe.best_iteration = best
    return safe


def _float32_floor(threshold: float) -> float:
    """The largest float32 value not above ``threshold`` (as a double)."""
    rounded = np.float32(threshold)
    if float(rounded) > threshold:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


def float32_safe_thresholds(model_text: str) -> str:
    """LightGBM text model whose numeric split thresholds are float32 values.

    LightGBM compares ``x <= t`` in double; the ONNX tree ensemble stores ``t`` as float32.
    A double threshold between two adjacent float32 values can round up onto an input value
    and send that row the other way. For float32 inputs (the only ones training and serving
    use) ``x <= t`` equals ``x <= floor32(t)``, so rewriting thresholds this way changes no
    native prediction and makes the ONNX graph take exactly the same paths.
    """
    lines = model_text.split("\n")
    threshold_line: int | None = None
    for index, line in enumerate(lines):
        if line.startswith("Tree="):
            threshold_line = None
        elif line.startswith("threshold="):
            threshold_line = index
        elif line.startswith("decision_type=") and threshold_line is not None:
            kinds = [int(value) for value in line.split("=", 1)[1].split()]
            thresholds = lines[threshold_line].split("=", 1)[1].split()
            # Bit 0 of decision_type marks a categorical split, whose "threshold" is an index.
            rewritten = [value if kind & 1 else repr(_float32_floor(float(value)))
                         for value, kind in zip(thresholds, kinds, strict=False)]
            lines[threshold_line] = "threshold=" + " ".join(rewritten)
    # Tree byte sizes in the header no longer match; without them LightGBM reads trees in order.
    lines = [line for line in lines if not line.startswith("tree_sizes=")]
    return "\n".join(lines)


def fit_variant(name: str, features: np.ndarray, label: np.ndarray,
                fit_rows: np.ndarray, early_stopping_rows: np.ndarray,
                calibration_rows: np.ndarray, categorical_indices: Sequence[int],
                config: TrainingConfig, use_smote: bool) -> FittedVariant:
    """Train on ``fit_rows`` (SMOTE-balanced if asked), stop early on ``early_stopping_rows``,
    calibrate on ``calibration_rows``; neither slice is ever resampled."""
    fit_features, fit_label = features[fit_rows], label[fit_rows]
    synthetic = 0
    if use_smote:
        sampler = MissingAwareSMOTE(categorical_indices, config.smote_sampling_strategy,
                                    config.smote_k_neighbors, random_state=config.seed)
        resampled, resampled_label = sampler.fit_resample(fit_features, fit_label)
        synthetic = len(resampled_label) - len(fit_label)
        fit_features, fit_label = resampled, resampled_label
    booster = train_booster(fit_features, fit_label, categorical_indices, config, config.seed,
                            early_stopping=(features[early_stopping_rows],
                                            label[early_stopping_rows]))
    best = int(booster.best_iteration or booster.current_iteration())
    variant = FittedVariant(name, booster, {"method": "none"}, best, len(fit_label), synthetic)
    variant.calibration = fit_platt(variant.raw_probability(features[calibration_rows]),
                                    label[calibration_rows])
    return variant
