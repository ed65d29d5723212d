"""The clustered local stack for tests marked ``cluster`` (``make test-cluster``).

``cluster_stack`` is the session fixture: it reuses a running ``creditrisk stack up
--cluster`` or starts it (and then stops what it started at the end), one session at a time
under a lock in the cluster's stack folder, as ``live_stack`` does for the single-node
stack. A test module takes it with ``from cluster_harness import cluster_stack``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

import pytest

from config.settings import Settings

# As tests/conftest.py's live_stack notes them: the servers an xdist worker started, which the
# run's controller stops at the end (conftest's pytest_sessionfinish, for this stack folder too).
STARTED_BY_TESTS = "started-by-tests"


@pytest.fixture(scope="session")
def cluster_stack() -> Iterator[Settings]:
    """Three Kafka brokers, a six-node Redis Cluster, PostgreSQL and Prometheus of the
    cluster profile, up for the whole session."""
    from infra.stack import services as stack

    settings = Settings(profile="cluster")
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    in_worker = "PYTEST_XDIST_WORKER" in os.environ
    with (settings.stack_dir / "tests-up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = [service for service in stack.services(settings)
                   if service.our_pid() is None and not service.answering()]
        try:
            stack.up(settings, echo=lambda line: None)
        except stack.StackError as error:
            pytest.fail(f"the clustered stack could not start: {error}")
        if in_worker and started:  # for the controller of the run to stop at its end
            with (settings.stack_dir / STARTED_BY_TESTS).open("a") as noted:
                noted.writelines(f"{service.name}\n" for service in started)
    yield settings
    if not in_worker:  # a worker's siblings may still use it
        # Under the lock: a session starting meanwhile waits until the stop is done, then
        # starts the stack afresh, rather than finding nodes up that are being stopped.
        with (settings.stack_dir / "tests-up.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for service in reversed(started):
                service.stop()
