"""``creditrisk worker`` with a fault forced into the feature encoder, for fault-injection
runs: a record whose loan amount is POISON_AMOUNT makes encoding raise, as a value the
encoder cannot read would (the event contract lets no such value through, so one has to be
injected). Everything else is the real worker. ``python -m infra.fault_worker worker``.
"""

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


def main() -> None:
    FeatureEncoder.transform_records = _failing_transform_records  # type: ignore[method-assign]
    from infra.cli import app

    sys.argv = ["creditrisk", "worker"]
    app()


if __name__ == "__main__":
    main()
