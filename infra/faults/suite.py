"""``creditrisk bench --suite faults``: the fault-injection scenarios of
:mod:`infra.faults.scenarios` on the local stack (private broker and Redis for the scenarios
that stop them), one table row each; on the clustered stack (``CREDITRISK_PROFILE=cluster``)
those of :mod:`infra.faults.cluster_scenarios`, with each fault's time to recover. Prints
the counts; a lost or non-identical application is printed as a problem, never turned into
an exit status (benchmarks do not fail builds; the tests in
tests/test_infra/test_fault_suite_e2e.py and test_cluster_faults_e2e.py do)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from config.settings import Settings
from infra.faults.cluster_scenarios import CLUSTER_SCENARIOS
from infra.faults.harness import fault_table
from infra.faults.scenarios import SCENARIOS, FaultRig, ScenarioResult


def bench_faults(settings: Settings, loans_csv: Path, echo: Callable[[str], None],
                 applications: int = 3_000, scenarios: list[str] | None = None) -> list[ScenarioResult]:
    """Run the scenarios on a private copy of the live model (the broken-model scenario
    promotes into it) and print the table: the cluster's scenarios when ``settings`` are on
    a Redis Cluster (the clustered stack), else the single-node ones."""
    from onnx_models.registry import LIVE_POINTER, Registry

    live = Registry(settings.registry_dir).live_version()
    if live is None:
        raise ValueError(f"no live model in {settings.registry_dir}")
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="creditrisk-faults-") as folder:
        workdir = Path(folder)
        registry = workdir / "registry"
        shutil.copytree(settings.registry_dir / live, registry / live)
        shutil.copy(settings.registry_dir / LIVE_POINTER, registry / LIVE_POINTER)
        rig = FaultRig(settings.model_copy(update={"registry_dir": registry}), workdir,
                       loans_csv, loans_csv.parent / "bureau.csv", applications=applications)
        suite = CLUSTER_SCENARIOS if settings.redis_cluster_nodes else SCENARIOS
        for name in scenarios or list(suite):
            echo(f"  {name} …")
            result = suite[name](rig)
            results.append(result)
            for problem in [*result.counts.problems, *result.failures]:
                echo(f"    problem: {problem}")
            echo(f"    notes: {result.notes}")
    echo("")
    recovery = ([r.recovery_s for r in results] if any(r.recovery_s is not None for r in results)
                else None)
    for line in fault_table([(r.name, r.counts, r.seconds) for r in results], recovery):
        echo(f"  {line}")
    return results
