"""Faults a cluster must survive, on the clustered stack (``make test-cluster``): the broker
leading the applications' partitions SIGKILLed, a Redis primary SIGKILLed and its replica
promoted, one of three workers SIGKILLed. Through each, every application sent ends as
exactly one decision or one dead letter, and a copy of a decision is identical to the first;
the time to recover (infra/faults/recovery.py) is printed with the counts. What a scenario
kills is a private cluster of its own, so the clustered stack keeps every node.

The same scenarios are ``CREDITRISK_PROFILE=cluster creditrisk bench --suite faults``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_harness import cluster_stack  # noqa: F401  # tests/cluster_harness.py: the fixture
from fault_harness import fault_rig  # tests/fault_harness.py
from secrets_scan import files_with_secrets  # tests/secrets_scan.py

from config.settings import Settings
from infra.faults.cluster_scenarios import CLUSTER_SCENARIOS
from infra.faults.harness import fault_table
from infra.faults.scenarios import ScenarioResult

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.slow]

# 1,200 applications at the rig's 300 a second: about four seconds of stream, the fault
# landing a third of the way through with most events still to be sent.
APPLICATIONS = 1_200


def _report(result: ScenarioResult) -> str:
    """The scenario's row with its time to recover, its notes and what went wrong."""
    row = fault_table([(result.name, result.counts, result.seconds)], [result.recovery_s])
    return "\n".join([*row, f"notes: {result.notes}", *result.counts.problems,
                      *result.failures])


@pytest.mark.parametrize("scenario", list(CLUSTER_SCENARIOS))
def test_every_application_ends_once_through_a_cluster_fault(
        scenario: str, cluster_stack: Settings, registry_dir: Path,  # noqa: F811
        generated_data: Path, tmp_path: Path) -> None:
    rig = fault_rig(cluster_stack, registry_dir, generated_data, tmp_path,
                    applications=APPLICATIONS)
    result = CLUSTER_SCENARIOS[scenario](rig)
    print(_report(result))  # the table row and the time to recover, in the captured output
    counts = result.counts
    assert counts.sent == len(rig.messages()), _report(result)
    assert counts.lost == 0, _report(result)
    assert counts.non_identical == 0, _report(result)
    assert counts.wrong_outcome == 0 and counts.unmatched == 0, _report(result)
    assert counts.decided + counts.dead_lettered == counts.sent, _report(result)
    assert not result.failures, _report(result)
    assert result.recovery_s is not None, _report(result)
    # The workers' logs and the private servers' hold no password of the clustered stack.
    secrets = [path.read_text().strip()
               for path in sorted((cluster_stack.stack_dir / "secrets").iterdir()) if path.is_file()]
    assert not files_with_secrets([tmp_path], [secret for secret in secrets if secret])
