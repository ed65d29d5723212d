"""Fault injection on the real servers: while a worker, the broker, Redis or the model
breaks, every application sent ends as exactly one decision or one dead letter, and a copy
of a decision (at-least-once) is identical to the first. The same scenarios are
``creditrisk bench --suite faults`` (docs/benchmarks.md, "Faults").

Each scenario also checks what the worker shows through its fault (``result.failures``):
worker-sigkill, every application decided once after a SIGKILL and restart; broken-model,
the corrupt version refused and counted (/health's last_reload_error, the reload-failure
metric), only the serving and then the promoted version deciding, /health naming the
promoted one; redis-restart, batches retried on Redis and no data lost; poison, a corrupt
bureau value decided without that feature (never approved) and counted by the
corrupt-values metric, an event the encoder refuses dead-lettered alone as a processing
error naming the step and the field but not the value, with the event as sent, the batches
not broken up and /health green afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_harness import explain, fault_rig  # tests/fault_harness.py
from secrets_scan import files_with_secrets  # tests/secrets_scan.py

from config.settings import Settings
from infra.faults.scenarios import SCENARIOS

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault(
        scenario: str, live_stack: Settings, registry_dir: Path, generated_data: Path,
        tmp_path: Path, stack_secrets: list[str]) -> None:
    rig = fault_rig(live_stack, registry_dir, generated_data, tmp_path)
    result = SCENARIOS[scenario](rig)
    print(explain(result))  # the table row, in the test's captured output
    counts = result.counts
    assert counts.sent == len(rig.messages()) or scenario == "poison", explain(result)
    assert counts.lost == 0, explain(result)
    assert counts.non_identical == 0, explain(result)
    assert counts.wrong_outcome == 0 and counts.unmatched == 0, explain(result)
    assert counts.wrong_key == 0, explain(result)  # a keyed message's dead letter keeps its key
    assert counts.decided + counts.dead_lettered == counts.sent, explain(result)
    assert not result.failures, explain(result)
    # The workers' logs (outages, refusals, crashes included) and the private servers' hold
    # no password of the stack, nor do the stack's own logs.
    assert not files_with_secrets([tmp_path, live_stack.stack_dir / "logs"], stack_secrets)
