"""``creditrisk worker`` with faults forced in, for fault-injection runs. Everything else is
the real worker. ``python -m infra.faults.injected_worker worker``.

- A record whose loan amount is POISON_AMOUNT makes encoding raise, as a value the encoder
  cannot read would (the event contract lets no such value through, so one has to be
  injected).
- With ``STALL_ONCE`` naming a file that does not exist yet, the batch after
  ``STALL_AFTER_BATCHES`` never completes, as when a Kafka send never resolves; the file is
  made then, so the worker started in its place runs normally.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from features.definitions import FeatureEncoder
from stream.pipeline import BatchOutcome, IncomingEvent, ScoringPipeline

POISON_AMOUNT = 31_337.0
STALL_ONCE = "CREDITRISK_FAULT_STALL_ONCE"
STALL_AFTER_BATCHES = 5
_transform_records = FeatureEncoder.transform_records
_process = ScoringPipeline.process
_batches_seen = [0]  # in this process


def _failing_transform_records(self: FeatureEncoder,
                               records: Iterable[Mapping[str, object]]) -> np.ndarray:
    records = list(records)
    if any(record.get("loan_amnt") == POISON_AMOUNT for record in records):
        raise ValueError(f"cannot encode loan amount {POISON_AMOUNT}")
    return _transform_records(self, records)


async def _process_stalling_once(self: ScoringPipeline,
                                 events: Sequence[IncomingEvent]) -> BatchOutcome:
    _batches_seen[0] += 1
    marker = os.environ.get(STALL_ONCE)
    if marker and _batches_seen[0] > STALL_AFTER_BATCHES and not Path(marker).exists():
        Path(marker).touch()
        await asyncio.Event().wait()  # the batch's sends never resolve
    return await _process(self, events)


def main() -> None:
    FeatureEncoder.transform_records = _failing_transform_records  # type: ignore[method-assign]
    ScoringPipeline.process = _process_stalling_once  # type: ignore[method-assign]
    from stream.cli import run_worker

    run_worker("info")


if __name__ == "__main__":
    main()
