"""`creditrisk worker` with a fault forced into the feature encoder, for the failure-policy
tests: any record whose loan amount is POISON_AMOUNT makes encoding raise, as a value the
encoder cannot handle would. Everything else is the real worker on the real stack."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from features.definitions import FeatureEncoder

POISON_AMOUNT = 31_337.0
_transform_records = FeatureEncoder.transform_records


def _failing_transform_records(self: FeatureEncoder,
                               records: Iterable[Mapping[str, Any]]) -> np.ndarray:
    records = list(records)
    if any(record.get("loan_amnt") == POISON_AMOUNT for record in records):
        raise ValueError(f"cannot encode loan amount {POISON_AMOUNT}")
    return _transform_records(self, records)


if __name__ == "__main__":
    FeatureEncoder.transform_records = _failing_transform_records  # type: ignore[method-assign]
    from infra.cli import app

    sys.argv = ["creditrisk", "worker"]
    app()
