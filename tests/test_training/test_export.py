"""ONNX export: the graph reproduces the native model, and a mismatch fails the export."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from training.export import ParityError, booster_to_onnx, check_parity, onnx_raw_probability
from training.model import train_booster
from training.training_config import TrainingConfig

CALIBRATION = {"method": "platt", "slope": 0.8, "intercept": -1.2}


@pytest.fixture(scope="module")
def booster_and_rows():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(1500, 4))
    rows[:, 3] = rng.integers(0, 5, 1500)
    rows[rng.random(rows.shape) < 0.1] = np.nan  # missing numerics and unknown categories
    label = (rng.random(1500) < 1 / (1 + np.exp(-(np.nan_to_num(rows[:, 0]) - 1.5)))).astype(int)
    config = TrainingConfig()
    config.lightgbm.min_child_samples = 20
    booster = train_booster(rows, label, [3], config, seed=1, rounds=60)
    return booster, rows.astype(np.float32)


def test_onnx_matches_native_within_tolerance(booster_and_rows):
    booster, rows = booster_and_rows
    onnx_bytes = booster_to_onnx(booster, rows.shape[1])
    result = check_parity(onnx_bytes, booster, rows, CALIBRATION, tolerance=1e-5)
    assert result.passed and result.rows == len(rows)
    assert result.max_abs_diff <= 1e-5
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["features"]
    raw = onnx_raw_probability(session, rows)
    assert np.all((raw >= 0) & (raw <= 1))


class _ShiftedBooster:
    """Stands for a native model that drifted from the exported graph."""

    def __init__(self, booster, shift: float) -> None:
        self.booster, self.shift = booster, shift

    def predict(self, rows):
        return np.clip(self.booster.predict(rows) + self.shift, 0, 1)


def test_parity_failure_raises_a_typed_error(booster_and_rows):
    booster, rows = booster_and_rows
    onnx_bytes = booster_to_onnx(booster, rows.shape[1])
    with pytest.raises(ParityError, match="parity") as error:
        check_parity(onnx_bytes, _ShiftedBooster(booster, 1e-3), rows, CALIBRATION, 1e-5)
    assert error.value.max_abs_diff > 1e-5


def test_thresholds_between_adjacent_float32_values_keep_parity():
    import lightgbm as lgb

    from training.model import float32_safe_thresholds

    # Two feature values one float32 step apart, with opposite outcomes: the double split
    # threshold between them rounds, in float32, onto the upper value.
    lower = np.nextafter(np.float32(1.0), np.float32(2.0))
    upper = np.nextafter(lower, np.float32(2.0))
    rows = np.repeat(np.array([[lower], [upper]], dtype=np.float32), 200, axis=0)
    label = np.repeat([0, 1], 200)
    params = {"objective": "binary", "verbose": -1, "min_child_samples": 5, "num_leaves": 2}
    booster = lgb.train(params, lgb.Dataset(rows.astype(np.float64), label), 3)
    session = onnxruntime.InferenceSession(booster_to_onnx(booster, 1),
                                           providers=["CPUExecutionProvider"])
    unsafe_gap = np.abs(onnx_raw_probability(session, rows) - booster.predict(rows)).max()

    safe = lgb.Booster(model_str=float32_safe_thresholds(booster.model_to_string()))
    np.testing.assert_array_equal(safe.predict(rows), booster.predict(rows))
    session = onnxruntime.InferenceSession(booster_to_onnx(safe, 1),
                                           providers=["CPUExecutionProvider"])
    assert np.abs(onnx_raw_probability(session, rows) - safe.predict(rows)).max() < 1e-6
    assert unsafe_gap > 1e-3  # the case the rewrite exists for
