"""Glue between the fault-injection scenarios (``infra.faults.scenarios``, shared with
``creditrisk bench --suite faults``) and the test fixtures: the session's generated data and
trained model, a folder of the test's own."""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings
from infra.faults.harness import fault_table
from infra.faults.scenarios import FaultRig, ScenarioResult


def fault_rig(stack: Settings, registry_dir: Path, generated_data: Path, workdir: Path,
              applications: int = 3_000) -> FaultRig:
    """A rig on the shared stack serving the test's registry; scenarios that stop Kafka or
    Redis start private ones themselves."""
    return FaultRig(stack.model_copy(update={"registry_dir": registry_dir}), workdir,
                    generated_data / "loans.csv", generated_data / "bureau.csv",
                    applications=applications)


def explain(result: ScenarioResult) -> str:
    """The scenario's table row, its notes and what went wrong, for an assertion message."""
    lines = [*fault_table([(result.name, result.counts, result.seconds)]),
             f"notes: {result.notes}", *result.counts.problems, *result.failures]
    return "\n".join(lines)
