"""The console in a real headless Chromium, against a running console, worker and stack.

Screenshots are kept as test artifacts in artifacts/console/; with
CREDITRISK_UPDATE_SCREENSHOTS=1 they also replace the ones in docs/console/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ledger_harness import LedgerProcess, private_database, wait_for_rows
from test_console_home_credit import ROWS as HOME_CREDIT_ROWS
from test_console_home_credit import home_credit_files, home_credit_model  # noqa: F401 - pytest fixtures
from worker_harness import (  # tests/test_stream/worker_harness.py
    TopicReader,
    WorkerProcess,
    free_port,
    keyed,
    load_fresh_bureau,
    produce,
    valid_events,
)

from config.settings import REPO_ROOT, Settings
from infra.faults.servers import redis_environment
from stream.decisions import Decision

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "artifacts" / "console"
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "console"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1440,1100"]
PASSWORDS = {"vera": "vera-views-decisions", "rita": "rita-reviews-applications",
             "alan": "alan-approves-overrides"}
VIEWER = ("vera", "viewer")
VIEWER_SIGN_IN = ("vera", PASSWORDS["vera"])
NOTICE_ENVIRONMENT = {
    "CREDITRISK_NOTICE_CREDITOR_NAME": "Example Lending Co.",
    "CREDITRISK_NOTICE_CREDITOR_ADDRESS": "1 Main Street, Springfield, IL 62701",
    "CREDITRISK_NOTICE_CREDITOR_PHONE": "1-800-555-0100",
    "CREDITRISK_NOTICE_AGENCY_NAME": "Consumer Financial Protection Bureau",
    "CREDITRISK_NOTICE_AGENCY_ADDRESS": "1700 G Street NW, Washington, DC 20552",
    "CREDITRISK_NOTICE_BUREAU_NAME": "Example Credit Bureau",
    "CREDITRISK_NOTICE_BUREAU_ADDRESS": "PO Box 1000, Atlanta, GA 30348",
    "CREDITRISK_NOTICE_BUREAU_PHONE": "1-800-555-0199"}


@pytest.fixture
def decided_home_credit(namespace, home_credit_model, home_credit_files: Path,  # noqa: F811 - fixtures
                        tmp_path: Path) -> Iterator[tuple[WorkerProcess, dict[str, Decision]]]:
    """A worker serving the Home Credit model that has decided 300 replayed applications, its
    bureau view materialized into Redis, and a ledger writer that has kept them."""
    from features.materialize import materialize_view
    from features.store import sync_client
    from replay.core import live_event_layout, replay_applications

    registry = tmp_path / "registry"
    shutil.copytree(home_credit_model.registered.path.parent, registry,
                    ignore=shutil.ignore_patterns("_report"))
    _judge_groups_of(registry / home_credit_model.registered.path.name, FAIRNESS_MIN_GROUP)
    (view,) = home_credit_model.serving.views
    client = sync_client(namespace.settings, "materializer")
    try:
        materialize_view(home_credit_files / "bureau.csv", client, view,
                         namespace.settings.feature_schema_version, namespace.settings.key_prefix)
    finally:
        client.close()
    with private_database(namespace.settings) as ledger_settings:
        _add_users(ledger_settings, VIEWER)
        worker = WorkerProcess(namespace, registry, tmp_path / "worker.log",
                               CREDITRISK_POSTGRES_DATABASE=ledger_settings.postgres_database,
                               CREDITRISK_POSTGRES_PASSWORD=ledger_settings.postgres_password_file.read_text())
        ledger = LedgerProcess(namespace, ledger_settings, registry, tmp_path / "ledger.log")
        worker.start()
        ledger.start()
        reader = TopicReader(namespace.settings, namespace.topic_decisions)
        replay_applications(home_credit_files / "application_train.csv",
                            namespace.settings, namespace.topic_applications,
                            count=300, start=HOME_CREDIT_ROWS - 300, progress=False,
                            layout=live_event_layout(registry))
        reader.wait_for(lambda r: len(r.by_key) >= 300, 180, "300 decisions")
        reader.close()
        wait_for_rows(ledger_settings, 300, 60, "SELECT count(*) FROM decisions")
        yield worker, {key: Decision.from_dict(copies[0]) for key, copies in reader.by_key.items()}
        ledger.stop()
        worker.stop()


FAIRNESS_MIN_GROUP = 50  # 300 replayed decisions: groups of 50 are judged, smaller ones named


def _judge_groups_of(model_dir: Path, min_group_size: int) -> None:
    """The card's monitoring minimum lowered so a few hundred decisions have groups to judge."""
    import json

    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text())
    card["monitoring"]["min_group_size"] = min_group_size
    card_path.write_text(json.dumps(card))


def _add_users(settings: Settings, *users: tuple[str, str]) -> None:
    """Console users (name, role), each with the password PASSWORDS gives it."""
    import psycopg

    from review.users import add_user

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        for name, role in users:
            add_user(connection, name, role, PASSWORDS[name], "test")


def _console_environment(worker: WorkerProcess, port: int, metrics_port: int) -> dict[str, str]:
    return {**worker.env, "CREDITRISK_CONSOLE_PORT": str(port),
            "CREDITRISK_CONSOLE_METRICS_PORT": str(metrics_port),
            "CREDITRISK_WORKER_URL": f"http://127.0.0.1:{worker.port}",
            # the console's own ledger role (the worker's stack folder holds no secrets)
            "CREDITRISK_CONSOLE_POSTGRES_PASSWORD": Settings().stack_secret("postgres-console") or "",
            **NOTICE_ENVIRONMENT,
            # the console's own Redis user (read-only), not the worker's
            **redis_environment(worker.settings, "console", worker.env.get("CREDITRISK_REDIS_URL"))}


def _start_console(worker: WorkerProcess, tmp_path: Path,
                   metrics_port: int | None = None) -> Iterator[str]:
    port = free_port()
    env = _console_environment(worker, port, metrics_port or free_port())
    log = (tmp_path / "console.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "console"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        raise AssertionError("the console did not start: " + (tmp_path / "console.log").read_text()[-2000:])
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def home_credit_console_url(decided_home_credit, tmp_path: Path) -> Iterator[str]:
    worker, _ = decided_home_credit
    yield from _start_console(worker, tmp_path)


def _chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.implicitly_wait(0)
    return driver


@pytest.fixture
def browser() -> Iterator[Any]:
    driver = _chromium()
    yield driver
    driver.quit()


class Page:
    """Small helpers to drive a Streamlit page by what a person sees."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def wait_for_text(self, text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.driver.find_element("tag name", "body").text:
                return
            time.sleep(0.3)
        self.screenshot("failed-wait")
        body = self.driver.find_element("tag name", "body").text
        raise AssertionError(f"{text!r} never appeared on the page; it shows:\n{body[-1500:]}")

    def wait_for(self, css: str, timeout_s: float = 30.0, count: int = 1) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.driver.find_elements("css selector", css)
            if len(found) >= count:
                return found
            time.sleep(0.3)
        raise AssertionError(f"no {css} on the page")

    def type_into(self, label: str, text: str, enter: bool = False) -> None:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.keys import Keys

        for _ in range(5):
            try:
                field = self.wait_for(f'input[aria-label="{label}"], '
                                      f'textarea[aria-label="{label}"]')[0]
                field.clear()
                # React keeps a typed value that clear() alone does not take away
                field.send_keys(Keys.CONTROL, "a")
                field.send_keys(Keys.DELETE)
                # committed when the form's button is clicked, or by Enter outside a form
                field.send_keys(text + (Keys.ENTER if enter else ""))
                return
            except StaleElementReferenceException:
                time.sleep(0.5)
        raise AssertionError(f"could not type into {label!r}")

    def click(self, text: str) -> None:
        """Click the button, tab or radio option showing exactly this text."""
        xpath = (f"//button[normalize-space(.)='{text}'] | //*[@role='tab'][normalize-space(.)='{text}']"
                 f" | //label[normalize-space(.)='{text}']")
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            StaleElementReferenceException,
        )

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = self.driver.find_elements("xpath", xpath)
            try:
                if found:
                    found[0].click()
                    return
            except (StaleElementReferenceException, ElementClickInterceptedException):
                pass  # Streamlit re-rendered the page under us: look again
            time.sleep(0.3)
        raise AssertionError(f"nothing to click showing {text!r}")

    def sign_in(self, user: str, password: str, expect: str = "Signed in as") -> None:
        self.wait_for_text("Sign in")
        self.type_into("User name", user)
        self.type_into("Password", password)
        self.click("Sign in")
        self.wait_for_text(expect)

    def body(self) -> str:
        return str(self.driver.find_element("tag name", "body").text)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        time.sleep(1.0)  # let charts finish drawing
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        if os.environ.get("CREDITRISK_UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS_SCREENSHOTS / f"{name}.png")


def test_a_relationship_manager_reads_a_home_credit_decline_profile_and_comparison(
        decided_home_credit, home_credit_console_url: str, browser: Any,
        home_credit_files: Path) -> None:  # noqa: F811 - the pytest fixture imported above
    from training.datasets import load_dataset_config

    _, decisions = decided_home_credit
    decline = next(d for d in decisions.values()
                   if d.decision == "decline" and not d.missing_features)
    described = {text for text, _ in load_dataset_config("home_credit").feature_descriptions.values()}
    page = Page(browser)

    browser.get(home_credit_console_url)
    page.sign_in(*VIEWER_SIGN_IN)
    page.wait_for_text("decisions in the ledger match the filters")
    page.wait_for_text("Contract type")
    body = browser.find_element("tag name", "body").text
    assert "Purpose" not in body and "Home ownership" not in body
    page.screenshot("home-credit-find")

    page.type_into("Application ID or customer ID", decline.application_id)
    page.click("Look up")
    page.wait_for_text("Bad credit — decline")
    for reason in decline.reasons:
        assert reason.text.split(":")[0] in described  # the config's plain words
        page.wait_for_text(reason.text)
    page.wait_for('[data-testid="stPlotlyChart"]', count=2)
    page.screenshot("home-credit-decision")

    page.click("Profile")
    page.wait_for_text("Credits at other lenders reported by the credit bureau")
    page.wait_for_text("Total income")
    page.screenshot("home-credit-profile")

    page.click("Compare")
    page.wait_for_text("the same contract type and the same income type")
    applications = pd.read_csv(home_credit_files / "application_train.csv", dtype=str,
                               keep_default_na=False).set_index("SK_ID_CURR")
    applied = applications.loc[decline.application_id]
    page.wait_for_text(f"Contract type “{applied['NAME_CONTRACT_TYPE']}”, "
                       f"Income type “{applied['NAME_INCOME_TYPE']}”")
    assert len(page.wait_for('[data-testid="stPlotlyChart"]', count=6)) >= 6
    page.wait_for_text("% of all customers")
    page.wait_for_text("% of similar customers")
    page.screenshot("home-credit-compare")

    # Fairness: approval rate and adverse impact ratio by gender and age band, groups only
    page.click("Fairness")
    page.wait_for_text("Gender (reference group: male)")
    page.wait_for_text("Age band (reference group: 35-44)")
    assert len(page.wait_for('[data-testid="stPlotlyChart"]', count=2)) >= 2
    page.wait_for_text(f"at least {FAIRNESS_MIN_GROUP:,} decisions")
    shown = browser.find_element("css selector", '[data-testid="stMain"]').text
    assert not any(application in shown for application in decisions)  # never an applicant
    page.screenshot("home-credit-fairness")


# ---- the review queue and overrides ----------------------------------------------------------

@dataclass(frozen=True)
class Casework:
    """One worker, ledger writer and console on a private database, after 300 decisions and
    servicing's outcomes of those loans."""

    url: str
    metrics_url: str
    ledger: Settings
    console_log: Path
    decisions: dict[str, Decision]  # by application id, as the worker published them

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        import psycopg

        with psycopg.connect(self.ledger.postgres_conninfo()) as connection:
            row = connection.execute(sql, params).fetchone()
        assert row is not None, sql
        return row[0] if len(row) == 1 else row


@pytest.fixture
def casework(namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
             tmp_path: Path) -> Iterator[Casework]:
    """A worker that has decided 300 applications (records in Redis for the console), a ledger
    writer that has kept them and servicing's outcomes of those loans, and the console; its
    users are a viewer, a reviewer and an approver."""
    import json

    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)
    with private_database(namespace.settings) as ledger_settings:
        _add_users(ledger_settings, VIEWER, ("rita", "reviewer"), ("alan", "approver"))
        worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log",
                               CREDITRISK_POSTGRES_DATABASE=ledger_settings.postgres_database,
                               CREDITRISK_POSTGRES_PASSWORD=ledger_settings.postgres_password_file.read_text())
        ledger = LedgerProcess(namespace, ledger_settings, registry_dir, tmp_path / "ledger.log")
        ledger.env.update({"CREDITRISK_TOPIC_FINAL_DECISIONS": namespace.topic_final_decisions,
                           **NOTICE_ENVIRONMENT})
        worker.start()
        ledger.start()
        events = valid_events(clean_frame, 300)
        produce(namespace.settings, namespace.topic_applications, keyed(events))
        reader = TopicReader(namespace.settings, namespace.topic_decisions)
        reader.wait_for(lambda r: len(r.by_key) >= 300, 120, "300 decisions")
        reader.close()
        wait_for_rows(ledger_settings, 300, 120)
        statuses = dict(zip(clean_frame["application_id"].astype(str), clean_frame["loan_status"], strict=True))
        outcomes = [(e["application_id"].encode(), json.dumps(
            {"application_id": e["application_id"], "as_of": "2015-01-01",
             "loan_status": str(statuses[e["application_id"].removeprefix("app-")])}).encode())
            for e in events]
        produce(namespace.settings, namespace.topic_outcomes, outcomes)
        wait_for_rows(ledger_settings, 300, 60, "SELECT count(*) FROM loan_outcomes")
        metrics_port = free_port()
        console = _start_console(worker, tmp_path, metrics_port)
        url = next(console)
        yield Casework(url, f"http://127.0.0.1:{metrics_port}/metrics", ledger_settings,
                       tmp_path / "console.log",
                       {key: Decision.from_dict(copies[0]) for key, copies in reader.by_key.items()})
        next(console, None)
        ledger.stop()
        worker.stop()


def _final_message(reader: TopicReader, application_id: str, revision: int) -> dict[str, Any]:
    def found(r: TopicReader) -> bool:
        return any(m["revision"] == revision for m in r.by_key.get(application_id, []))

    reader.wait_for(found, 60, f"revision {revision} of {application_id}'s final decision")
    return next(m for m in reader.by_key[application_id] if m["revision"] == revision)


def test_a_relationship_manager_then_a_reviewer_and_an_approver_work_on_one_ledger(
        namespace, casework: Casework, browser: Any) -> None:
    """One worker, ledger writer and console serve both: the relationship manager's reading
    (find, explain, compare, score a form, model performance), then the reviewer's and the
    approver's casework, each signed in on a page of their own."""
    _a_relationship_manager_finds_a_decision_compares_the_customer_and_scores_a_form(
        casework, browser)
    _a_reviewer_declines_the_oldest_item_and_an_override_takes_a_second_person(
        namespace, casework, browser)


def _a_relationship_manager_finds_a_decision_compares_the_customer_and_scores_a_form(
        casework: Casework, browser: Any) -> None:
    decisions = casework.decisions
    decline = next(d for d in decisions.values() if d.decision == "decline")
    page = Page(browser)

    browser.get(casework.url)
    page.sign_in(*VIEWER_SIGN_IN)
    page.wait_for_text(f"{len(decisions)} decisions in the ledger match the filters")
    page.screenshot("find")
    # The Find page's filters run in the ledger: this customer's decisions only.
    theirs = sum(d.customer_id == decline.customer_id for d in decisions.values())
    page.type_into("Customer ID", decline.customer_id, enter=True)
    page.wait_for_text(f"{theirs} decision{'' if theirs == 1 else 's'} in the ledger match the filters")

    page.type_into("Application ID or customer ID", decline.application_id)
    page.click("Look up")
    page.wait_for_text("Bad credit — decline")
    page.wait_for_text("What pushed the risk up")
    for reason in decline.reasons:
        page.wait_for_text(reason.text)
    page.wait_for('[data-testid="stPlotlyChart"]', count=2)
    page.screenshot("decision")

    page.click("Profile")
    page.wait_for_text(decline.customer_id)
    page.screenshot("profile")

    page.click("Compare")
    page.wait_for_text("Similar customers")
    charts = page.wait_for('[data-testid="stPlotlyChart"]', count=6)
    assert len(charts) >= 6
    page.wait_for_text("% of all customers")
    page.screenshot("compare")

    page.click("New application")
    page.type_into("Customer ID", decline.customer_id)
    page.type_into("State", "CA")  # a free-text event field: the card lists no states
    page.click("Score application")
    page.wait_for_text("Result:", timeout_s=30)
    body = browser.find_element("tag name", "body").text
    assert any(outcome in body for outcome in ("Good credit — approve", "Bad credit — decline",
                                               "Borderline — refer for review"))
    page.screenshot("new-application")

    page.click("Model performance")
    page.wait_for_text("Realised AUC")
    page.wait_for_text("matured", timeout_s=10)
    assert len(page.wait_for('[data-testid="stPlotlyChart"]', count=4)) >= 4
    page.screenshot("model-performance")


def _a_reviewer_declines_the_oldest_item_and_an_override_takes_a_second_person(
        namespace, casework: Casework, browser: Any) -> None:
    reviews = casework.one("SELECT count(*) FROM decisions WHERE decision = 'review'")
    oldest = casework.one("SELECT application_id FROM review_items "
                          "ORDER BY entered_at, application_id LIMIT 1")
    approved = casework.one("SELECT application_id FROM final_decisions WHERE decided_by = "
                            "'model' AND final_decision = 'approve' ORDER BY final_id LIMIT 1")
    assert reviews > 0
    assert casework.one("SELECT count(*) FROM review_items") == reviews
    finals = TopicReader(namespace.settings, namespace.topic_final_decisions)
    page = Page(browser)

    browser.get(casework.url)
    page.wait_for_text("Sign in")
    page.screenshot("sign-in")
    page.sign_in("rita", "not rita's password", expect="Wrong user name or password")
    page.sign_in("rita", PASSWORDS["rita"])
    page.wait_for_text("role reviewer")

    # The queue: exactly the ledger's review decisions, oldest first.
    page.click("Review queue")
    page.wait_for_text(f"{reviews:,} item{'s wait' if reviews > 1 else ' waits'} for a decision")
    page.screenshot("review-queue")
    page.click("Claim")
    page.wait_for_text(f"You hold application {oldest}")
    page.wait_for_text("What pushed the risk up")
    page.click("decline")
    page.click("DC03 — Excessive obligations in relation to income")
    page.type_into("Comment", "Debts of 48 % of income on top of this loan")
    page.click("Submit decision")
    page.wait_for_text(f"Application {oldest} decided: decline (revision 1) by rita")
    # The ledger writer may already have produced the notice; else the reviewer produces it.
    # Wait for the page to show one or the other before choosing.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            text in page.body() for text in ("Adverse-action notice (PDF)",
                                             "Produce the adverse-action notice")):
        time.sleep(0.3)
    if "Produce the adverse-action notice" in page.body():
        page.click("Produce the adverse-action notice")
    page.wait_for_text("Adverse-action notice (PDF)")
    page.screenshot("review-decide")

    row = casework.one("SELECT final_decision, decided_by, reason_code, reason_text, revision "
                       "FROM final_decisions WHERE application_id = %s", (oldest,))
    assert row == ("decline", "rita", "DC03", "Debts of 48 % of income on top of this loan", 1)
    message = _final_message(finals, oldest, 1)
    assert (message["final_decision"], message["model_decision"], message["decided_by"],
            message["reason_code"]) == ("decline", "review", "rita", "DC03")
    assert casework.one("SELECT count(*) FROM adverse_action_notices WHERE application_id = %s",
                        (oldest,)) == 1

    # An override: rita asks, rita cannot approve it, alan approves it.
    page.click("Overrides")
    page.type_into("Application ID", approved)
    page.click("Look up")
    page.wait_for_text(f"Final decision on {approved}: approve (revision 1) by the model")
    page.type_into("Why (required)", "Three new credit lines opened since the application")
    page.click("DC07 — Too many recent requests for credit")
    page.click("Ask for the override")
    page.wait_for_text("recorded: " + approved)
    page.click("Approve")
    page.wait_for_text("may approve an override; rita is a reviewer. Nothing was changed.")
    page.screenshot("overrides")
    assert casework.one("SELECT max(revision) FROM final_decisions WHERE application_id = %s",
                        (approved,)) == 1

    second = _chromium()
    try:
        alan = Page(second)
        second.get(casework.url)
        alan.sign_in("alan", PASSWORDS["alan"])
        alan.click("Overrides")
        alan.wait_for_text("asked by rita")
        alan.click("Approve")
        alan.wait_for_text(f"Override approved: application {approved} is now decline "
                           "(revision 2) by rita, approved by alan")
    finally:
        second.quit()
    message = _final_message(finals, approved, 2)
    finals.close()
    assert (message["final_decision"], message["model_decision"], message["decided_by"],
            message["approved_by"], message["reason_code"]) == (
        "decline", "approve", "rita", "alan", "DC07")

    # Neither a password nor a hash in the console's log or on its /metrics.
    with urllib.request.urlopen(casework.metrics_url, timeout=5) as response:
        exposed = response.read().decode()
    assert 'creditrisk_console_sign_ins_total{outcome="wrong"} 1.0' in exposed
    # vera (the relationship manager), rita and alan
    assert 'creditrisk_console_sign_ins_total{outcome="signed_in"} 3.0' in exposed
    assert 'creditrisk_console_review_actions_total{action="decide"} 1.0' in exposed
    assert 'creditrisk_console_review_refusals_total{action="override_approve"} 1.0' in exposed
    import psycopg

    with psycopg.connect(casework.ledger.postgres_conninfo()) as connection:
        hashes = [str(h) for (h,) in connection.execute("SELECT password_hash FROM console_users")]
    log = casework.console_log.read_text()
    assert "console sign-in: rita (reviewer)" in log
    for secret in [*PASSWORDS.values(), "not rita's password", *hashes]:
        assert secret not in log and secret not in exposed
