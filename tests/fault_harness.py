"""Glue between the fault-injection scenarios (``infra.faults.scenarios``, shared with
``creditrisk bench --suite faults``) and the test fixtures: the session's generated data and
trained model, a folder of the test's own."""

from __future__ import annotations

from pathlib import Path

from config.settings import Settings
from infra.faults.harness import fault_table
from infra.faults.scenarios import FaultRig, ScenarioResult

# Half the bench's 3,000: at the rig's 300 events a second the stream still runs for five
# seconds, so every fault (at a third, a quarter or half of the outcomes) lands while events
# are in flight and still to be sent, and each malformed and poison kind is sent several
# times; what a scenario costs beyond its fixed waits (worker start-ups, session timeouts, a
# broker's restart) is the events, scored by the worker and read back by the test.
TEST_APPLICATIONS = 1_500


def fault_rig(stack: Settings, registry_dir: Path, generated_data: Path, workdir: Path,
              applications: int = TEST_APPLICATIONS) -> FaultRig:
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
