"""Shared fixtures.

Unit tests need nothing. Tests marked ``integration`` or ``e2e`` get the real local stack:
the session fixture ``live_stack`` reuses a running one or starts it (and then stops it at
the end). Each test gets its own topic names and Redis key prefix so tests never see each
other's data.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from servers import redis_as  # tests/servers.py

from config.settings import Settings
from infra.stack.private import PrivateRedis

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class StackNamespace:
    """Names private to one test on the shared stack."""

    settings: Settings
    topic_applications: str
    topic_decisions: str
    topic_dead_letters: str
    key_prefix: str
    topic_outcomes: str = ""
    topic_final_decisions: str = ""
    topic_shadow_decisions: str = ""

    @property
    def topics(self) -> list[str]:
        return [self.topic_applications, self.topic_decisions, self.topic_dead_letters,
                self.topic_outcomes, self.topic_final_decisions, self.topic_shadow_decisions]


# -- the stack tier's order ------------------------------------------------------------------
# pytest-xdist hands tests to its workers in collection order (`--dist load`; the Makefile's
# `--maxschedchunk 1` keeps one test queued per worker). The longest stack tests therefore go
# first: started last, one of them would keep a single worker busy while the others sit idle.
# Seconds (setup and teardown included) from a stack-tier run with --durations on the 2-core
# machine, loaded by other work; only their order matters. A test not listed is short and
# keeps its place in its file's order after these. Refresh the figures when a test's length
# changes by much (`make test` prints the longest under --durations).
EXPECTED_SECONDS: dict[str, float] = {
    "test_console_e2e.py::test_a_relationship_manager_then_a_reviewer_and_an_approver_work_on_one_ledger":
        300,
    "test_console_e2e.py::test_a_relationship_manager_reads_a_home_credit_decline_profile_and_comparison":
        177,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[broker-restart]":
        141,
    "test_portfolios_e2e.py::test_each_model_is_back_tested_on_its_own_portfolios_loans": 140,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[stuck-client]":
        127,
    "test_backtest_e2e.py::test_realised_auc_of_matured_loans_matches_offline_evaluation": 108,
    "test_challenger_e2e.py::test_a_challenger_shadows_every_decision_then_its_share_and_its_panels_show_it":
        106,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[two-workers]":
        99,
    "test_stack_integration.py::test_a_second_stack_comes_up_twice_and_down_leaves_no_process": 91,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[broken-model]":
        88,
    "test_challenger_ledger.py::test_model_compare_prints_the_same_numbers_and_writes_the_report":
        87,
    "test_notices_integration.py::test_creditrisk_notices_render_writes_the_pdf_and_html_with_the_reasons":
        86,
    "test_ledger_integration.py::test_ledger_writer_killed_mid_stream_loses_nothing_and_replays_do_not_duplicate":
        84,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[poison]":
        79,
    "test_home_credit_e2e.py::test_home_credit_is_served_with_offline_probabilities_and_plain_reasons":
        78,
    "test_dashboards_e2e.py::test_every_dashboard_panel_shows_data_from_a_real_worker": 77,
    "test_worker_e2e.py::test_ten_thousand_events_end_as_exactly_one_decision_or_dead_letter": 66,
    "test_ledger_dashboard_e2e.py::test_every_ledger_dashboard_panel_shows_data_from_a_real_ledger_writer":
        63,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[redis-restart]":
        60,
    "test_fault_suite_e2e.py::test_every_application_ends_as_one_decision_or_one_dead_letter_through_the_fault[worker-sigkill]":
        58,
    "test_challenger_e2e.py::test_a_challenger_broken_while_shadowing_changes_no_champion_decision":
        57,
    "test_worker_processes_e2e.py::test_two_processes_in_one_group_split_six_partitions_and_decide_every_application_once":
        50,
    "test_generic_dataset_e2e.py::test_a_generic_config_model_is_served_with_offline_probabilities":
        48,
    "test_failure_policy_e2e.py::test_a_stalled_agent_turns_health_red_within_the_configured_time":
        44,
    "test_outbox_e2e.py::test_every_review_dashboard_panel_shows_data_from_a_real_ledger_writer":
        42,
    "test_fairness_e2e.py::test_decisions_skewed_against_women_make_the_alert_condition_hold_and_balanced_groups_do_not":
        42,
    "test_fairness_monitor.py::test_monitor_fairness_prints_the_figures_the_ledger_rows_give": 38,
    "test_worker_auth_e2e.py::test_score_needs_the_token_and_the_token_is_never_written_anywhere":
        38,
    # The cluster tier (make test-cluster): its own run, the same longest-first order.
    "test_cluster_faults_e2e.py::test_every_application_ends_once_through_a_cluster_fault[cluster-broker-sigkill]":
        100,
    "test_cluster_faults_e2e.py::test_every_application_ends_once_through_a_cluster_fault[cluster-three-workers]":
        60,
    "test_cluster_faults_e2e.py::test_every_application_ends_once_through_a_cluster_fault[cluster-redis-primary-sigkill]":
        55,
}


# The tier that needs no server hands out whole files (`--dist loadfile`): the files that
# train models go first, for the same reason. Seconds of a `make test-fast` run, summed per file.
EXPECTED_FILE_SECONDS: dict[str, float] = {
    "test_training_quality.py": 37,
    "test_pipeline_e2e.py": 36,
    "test_console.py": 19,
    "test_fairness_view.py": 8,
    "test_model_runtime.py": 8,
    "test_console_home_credit.py": 8,
}


def _expected_seconds(item: pytest.Item) -> float:
    return EXPECTED_SECONDS.get(item.nodeid.rsplit("/", 1)[-1], 0.0)


def _expected_file_seconds(item: pytest.Item) -> float:
    return EXPECTED_FILE_SECONDS.get(item.path.name, 0.0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files, then the longest tests first (a stable sort: the others keep their
    order, and a file's tests stay in theirs)."""
    items.sort(key=lambda item: (-_expected_file_seconds(item), -_expected_seconds(item)))


# -- what each test costs (opt-in) -----------------------------------------------------------
# CREDITRISK_TEST_CPU_LOG=<file>: one JSON line per test with its wall time and the CPU
# seconds of the test process and of the processes it started and waited for (workers,
# ledger writers, CLI runs; not servers left running), to see what a test spends, not only
# how long it waited on a busy machine.
def _cpu_seconds() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    log = os.environ.get("CREDITRISK_TEST_CPU_LOG")
    if not log:
        yield
        return
    started, (own, children) = time.monotonic(), _cpu_seconds()
    yield
    own_after, children_after = _cpu_seconds()
    line = {"test": item.nodeid, "wall_s": round(time.monotonic() - started, 1),
            "cpu_s": round(own_after - own, 1), "children_cpu_s": round(children_after - children, 1),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}
    with open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


# With pytest-xdist, the worker that starts a server of the stack notes it here; the
# controlling process stops those when the whole run is over (pytest_sessionfinish).
STARTED_BY_TESTS = "started-by-tests"


@pytest.fixture(scope="session")
def live_stack() -> Iterator[Settings]:
    """The real Kafka, Redis, PostgreSQL and Prometheus, up for the whole session: reused when
    running, else started (and stopped at the end). Several xdist workers bring it up one at
    a time, under a lock in the stack folder."""
    from infra.stack import services as stack

    settings = Settings()
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    in_worker = "PYTEST_XDIST_WORKER" in os.environ
    with (settings.stack_dir / "tests-up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Only a server with no process of the stack's is one this run starts (and stops): a
        # running one that a busy machine makes slow to answer stays the stack's own.
        started = [s for s in stack.services(settings)
                   if s.our_pid() is None and not s.answering()]
        try:
            stack.up(settings, echo=lambda line: None)
        except stack.StackError as error:
            pytest.fail(f"the local stack could not start: {error}")
        if in_worker and started:
            with (settings.stack_dir / STARTED_BY_TESTS).open("a") as noted:
                noted.writelines(f"{service.name}\n" for service in started)
    yield settings
    if not in_worker:
        for service in reversed(started):
            service.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller of an xdist run stops the servers its workers started: those of the
    single-node stack (``live_stack``) and of the clustered one (``cluster_stack`` in
    tests/cluster_harness.py notes them in its own stack folder the same way). A run without
    xdist has nothing noted: each session fixture stops what it started itself."""
    if hasattr(session.config, "workerinput"):
        return
    stopped_dirs: set[Path] = set()
    for settings in (Settings(), Settings(profile="cluster")):
        if settings.stack_dir not in stopped_dirs:  # one folder, one stack: never stopped twice
            stopped_dirs.add(settings.stack_dir)
            _stop_what_workers_started(settings)


def _stop_what_workers_started(settings: Settings) -> None:
    """Under the stack folder's start lock, as the session fixtures stop theirs: a session
    starting meanwhile waits, then starts afresh what it needs."""
    noted = settings.stack_dir / STARTED_BY_TESTS
    if not noted.exists():
        return
    from infra.stack import services as stack

    with (settings.stack_dir / "tests-up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not noted.exists():  # another controller stopped them meanwhile
            return
        names = set(noted.read_text().split())
        noted.unlink()
        for service in reversed(stack.services(settings)):
            if service.name in names:
                service.stop()


@pytest.fixture
def namespace(live_stack: Settings, request: pytest.FixtureRequest) -> Iterator[StackNamespace]:
    """Fresh topics (created, 3 partitions) and a Redis key prefix for one test."""
    from infra.stack.kafka_access import provision, retire_prefix

    tag = f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
    tag = "".join(c if c.isalnum() or c in "-_" else "-" for c in tag)
    ns = StackNamespace(
        settings=live_stack.model_copy(update={
            "topic_applications": f"t-{tag}-applications",
            "topic_decisions": f"t-{tag}-decisions",
            "topic_dead_letters": f"t-{tag}-dlq",
            "topic_outcomes": f"t-{tag}-outcomes",
            "topic_final_decisions": f"t-{tag}-finals",
            "topic_shadow_decisions": f"t-{tag}-shadow",
            "key_prefix": f"test:{tag}:",
            "worker_group": f"t-{tag}-scoring",
        }),
        topic_applications=f"t-{tag}-applications",
        topic_decisions=f"t-{tag}-decisions",
        topic_dead_letters=f"t-{tag}-dlq",
        key_prefix=f"test:{tag}:",
        topic_outcomes=f"t-{tag}-outcomes",
        topic_final_decisions=f"t-{tag}-finals",
        topic_shadow_decisions=f"t-{tag}-shadow",
    )
    provision(ns.settings, partitions=3)  # topics and each role's ACLs, as the stack does
    yield ns
    _delete_redis_keys(live_stack, ns.key_prefix)
    # Tests leave no topics or ACLs behind: a broker with thousands of partitions gets slow.
    retire_prefix(live_stack, f"t-{tag}-")


def _delete_redis_keys(settings: Settings, prefix: str) -> None:
    client = redis_as(settings, "admin")
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def stack_secrets(live_stack: Settings) -> list[str]:
    """Every credential the local stack generated (Kafka, Redis and PostgreSQL passwords), to
    prove none of them is ever written to a log, /metrics or an error message."""
    folder = live_stack.stack_secret_path("any").parent
    found = [path.read_text().strip() for path in sorted(folder.iterdir()) if path.is_file()]
    if live_stack.postgres_password_file.exists():
        found.append(live_stack.postgres_password_file.read_text().strip())
    assert len(found) >= 10, f"expected the stack's Kafka and Redis passwords in {folder}"
    return [secret for secret in found if secret]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """An open redis-server of the test's own (the test may stop and restart it)."""
    server = PrivateRedis(tmp_path, users=False)
    server.start()
    yield server
    server.kill()


# -- a small trained model, shared by the worker, ledger, console and replay tests ----------
@pytest.fixture(scope="session")
def generated_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated loans.csv + bureau.csv (deterministic)."""
    from training.generate import generate_loan_files

    return _built_once(tmp_path_factory, "stream-data", lambda folder: generate_loan_files(
        rows=14000, seed=21, out_dir=folder, show_progress=False))


@pytest.fixture(scope="session")
def trained_registry_template(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one trained, promoted model (trained once per session, with the
    quick search and no report: the tests serve the model, none reads its report)."""
    from quick_training import quick_config  # tests/quick_training.py

    from training.datasets import load_clean_labelled, load_dataset_config
    from training.pipeline import train_from_frame

    def train(root: Path) -> None:
        dataset = load_dataset_config("generated")
        frame, cleaning, labelling = load_clean_labelled(generated_data / "loans.csv", dataset)
        train_from_frame(frame, dataset, cleaning.to_dict(), labelling.to_dict(),
                         registry_dir=root, config=quick_config(folds=2), progress=False,
                         log=lambda _line: None, data_path=str(generated_data / "loans.csv"),
                         write_report_files=False)

    return _built_once(tmp_path_factory, "registry-template", train)


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
                build: Callable[[Path], object]) -> Path:
    """A folder that ``build`` fills once per test run. With pytest-xdist the workers share
    it: the first to ask builds it under a lock, the others wait and reuse it (tests only
    read these folders; ``registry_dir`` gives each test a private copy)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's
    folder = shared / name
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (shared / f"{name}.built").touch()
    return folder


@pytest.fixture
def registry_dir(trained_registry_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained registry a test may promote into or break."""
    target = tmp_path / "registry"
    shutil.copytree(trained_registry_template, target, ignore=shutil.ignore_patterns("_report"))
    return target


@pytest.fixture(scope="session")
def clean_frame(generated_data: Path) -> pd.DataFrame:
    """The generated loans, cleaned as training cleans them, one row per application."""
    from training.cleaning import clean_loans
    from training.datasets import load_dataset_config, load_raw

    config = load_dataset_config("generated")
    frame, _ = clean_loans(load_raw(generated_data / "loans.csv", config), config)
    return frame.drop_duplicates("application_id").reset_index(drop=True)


@pytest.fixture
def console_on_loopback() -> Iterator[None]:
    """The console as `creditrisk console` runs it (bound to 127.0.0.1): with no address,
    Streamlit listens everywhere and the page then asks for a password."""
    from streamlit import config as streamlit_config

    before = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", "127.0.0.1")
    yield
    streamlit_config.set_option("server.address", before)
