"""Platt calibration on the log-odds of the raw probability.

SMOTE shifts a model's log-odds roughly by a constant (the prior changes from ~11 % to
50 % bad), and a logistic fit on the raw log-odds undoes such a shift exactly while
keeping the ranking. It is smooth, so a float32 ONNX output and the float64 native output
stay within the parity tolerance after calibration, and it is two numbers in model.json.
Applied with :func:`onnx_models.policy.apply_calibration`, the worker's function too.
"""

from __future__ import annotations

import numpy as np

from config.json_types import JSONObject
from onnx_models.policy import logit


def fit_platt(raw_probability: np.ndarray, label: np.ndarray) -> JSONObject:
    """model.json ``calibration`` entry fitted on rows SMOTE never touched (the pipeline
    passes out-of-fold predictions for every training row)."""
    from sklearn.linear_model import LogisticRegression

    log_odds = logit(raw_probability).reshape(-1, 1)
    if len(np.unique(label)) < 2:
        raise ValueError("the rows to calibrate on hold only one class (no bad loans or no "
                         "good ones); the file needs both")
    # Almost no penalty: two parameters on thousands of rows need none.
    regression = LogisticRegression(C=1e6, solver="lbfgs", max_iter=1000)
    regression.fit(log_odds, label)
    return {"method": "platt", "slope": float(regression.coef_[0, 0]),
            "intercept": float(regression.intercept_[0]),
            "fitted_on_rows": len(label),
            "formula": "PD = 1 / (1 + exp(-(slope * logit(raw) + intercept)))"}
