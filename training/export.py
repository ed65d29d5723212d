"""LightGBM → ONNX, and the parity check that makes the ONNX file the serving path.

The graph takes one float32 tensor ``features`` [N, n_features] (model.json feature order;
NaN for missing values and unknown categories) and returns ``probabilities`` [N, 2] (the
raw, uncalibrated probability of good and of bad). Calibration is applied afterwards from
model.json with :func:`onnx_models.policy.apply_calibration`, exactly as the worker does, so
parity is checked on the calibrated PD the service publishes (and on the raw output).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from config.json_types import JSONObject, JSONValue
from onnx_models.policy import apply_calibration

if TYPE_CHECKING:
    import lightgbm as lgb
    import onnxruntime as ort

ONNX_INPUT_NAME = "features"
ONNX_OUTPUT_NAME = "probabilities"
ONNX_TARGET_OPSET = 15


class ParityError(RuntimeError):
    """The ONNX model does not reproduce the native model within the tolerance."""

    def __init__(self, max_abs_diff: float, tolerance: float, rows: int) -> None:
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.rows = rows
        super().__init__(
            f"ONNX export failed the parity check: max |ΔPD| = {max_abs_diff:.3g} over {rows:,} "
            f"test rows exceeds the tolerance {tolerance:g}. The model was not registered; "
            "check the onnxmltools/onnxruntime versions or report the model as a bug.")


@dataclass
class ParityResult:
    max_abs_diff: float  # calibrated PD, what the service publishes
    max_abs_diff_raw: float
    rows: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.max_abs_diff_raw <= self.tolerance

    def to_dict(self) -> JSONObject:
        return {"max_abs_diff": self.max_abs_diff, "max_abs_diff_raw": self.max_abs_diff_raw,
                "rows": self.rows, "tolerance": self.tolerance, "passed": self.passed,
                "compared": "calibrated PD from onnxruntime vs native LightGBM"}


def booster_to_onnx(booster: lgb.Booster, n_features: int) -> bytes:
    """Serialized ONNX graph of a binary LightGBM booster (input ``features``)."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_lightgbm(booster, initial_types=[(ONNX_INPUT_NAME,
                                                      FloatTensorType([None, n_features]))],
                             target_opset=ONNX_TARGET_OPSET, zipmap=False)
    # Only the probabilities are served; the class label output (declared with a fixed
    # shape by the converter) is dropped from the graph outputs.
    kept = [output for output in model.graph.output if output.name == ONNX_OUTPUT_NAME]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    model.doc_string = "creditrisk LightGBM: raw P(bad) = probabilities[:, 1]"
    return model.SerializeToString()


def onnx_raw_probability(session: ort.InferenceSession, matrix: np.ndarray, batch_rows: int = 50_000,
                         progress: bool = False) -> np.ndarray:
    """Raw P(bad) from an onnxruntime session, in batches."""
    from tqdm import tqdm

    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    starts = range(0, len(matrix), batch_rows)
    parts = [session.run([ONNX_OUTPUT_NAME], {ONNX_INPUT_NAME: matrix[start:start + batch_rows]}
                         )[0][:, 1]
             for start in tqdm(starts, desc="ONNX parity", unit="batch", disable=not progress)]
    return np.concatenate(parts).astype(np.float64) if parts else np.empty(0)


def check_parity(onnx_bytes: bytes, booster: lgb.Booster, matrix: np.ndarray,
                 calibration: Mapping[str, JSONValue], tolerance: float = 1e-5,
                 progress: bool = False) -> ParityResult:
    """Score ``matrix`` both ways; raise :class:`ParityError` beyond ``tolerance``."""
    import onnxruntime

    # One thread: on a shared machine a second one's spin-waits cost far more than it gains.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(onnx_bytes, options,
                                           providers=["CPUExecutionProvider"])
    matrix32 = np.asarray(matrix, dtype=np.float32)
    onnx_raw = onnx_raw_probability(session, matrix32, progress=progress)
    native_raw = np.asarray(booster.predict(matrix32.astype(np.float64)))
    result = ParityResult(
        max_abs_diff=float(np.max(np.abs(apply_calibration(onnx_raw, calibration)
                                         - apply_calibration(native_raw, calibration)),
                                  initial=0.0)),
        max_abs_diff_raw=float(np.max(np.abs(onnx_raw - native_raw), initial=0.0)),
        rows=len(matrix32), tolerance=tolerance)
    if not result.passed:
        raise ParityError(max(result.max_abs_diff, result.max_abs_diff_raw), tolerance,
                          result.rows)
    return result
