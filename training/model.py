"""A fitted model as the pipeline handles it (booster + calibration), LightGBM training on
float32 values, and the float32-safe text form that makes ONNX take the native paths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from config.json_types import JSONObject
from training.training_config import LightGBMSettings, TrainingConfig

if TYPE_CHECKING:
    import lightgbm as lgb


@dataclass
class FittedVariant:
    """A trained model in LightGBM form with its calibration (model.json form).

    The baseline scorecard is held the same way: its text form is an additive tree model
    (see :mod:`training.scorecard`), so export, parity and reason codes treat both alike.
    """

    name: str  # "smote" | "no_smote" | "baseline"
    booster: lgb.Booster
    calibration: JSONObject
    trees: int
    training_rows: int  # real rows the final model was fitted on
    synthetic_rows: int  # SMOTE rows added to them
    settings: JSONObject  # what the search chose (model.json form)

    def raw_probability(self, features: np.ndarray) -> np.ndarray:
        """The booster's uncalibrated probability (float64 input, as ONNX sees float32)."""
        return np.asarray(self.booster.predict(as_float32_values(features)))


def train_booster(features: np.ndarray, label: np.ndarray, categorical_indices: Sequence[int],
                  config: TrainingConfig | LightGBMSettings, seed: int,
                  rounds: int | None = None) -> lgb.Booster:
    """LightGBM on float32-representable inputs (so the ONNX graph sees identical values),
    ``rounds`` trees (default: the settings' ``max_rounds``)."""
    import lightgbm as lgb

    settings = config.lightgbm if isinstance(config, TrainingConfig) else config
    train_set = lgb.Dataset(as_float32_values(features), label,
                            categorical_feature=list(categorical_indices) or "auto",
                            free_raw_data=True)
    booster = lgb.train(settings.params(seed, len(label)), train_set,
                        num_boost_round=rounds or settings.max_rounds)
    return float32_safe_booster(booster)


def as_float32_values(features: np.ndarray) -> np.ndarray:
    """Float64 array holding the float32 values ONNX sees (training and parity use this)."""
    return np.asarray(features, dtype=np.float32).astype(np.float64)


def float32_safe_booster(booster: lgb.Booster) -> lgb.Booster:
    """The booster rebuilt from :func:`float32_safe_thresholds` text."""
    import lightgbm as lgb

    safe = lgb.Booster(model_str=float32_safe_thresholds(booster.model_to_string()))
    safe.best_iteration = safe.current_iteration()
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
