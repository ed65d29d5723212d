"""The Prometheus configuration and alert rules load, and every alert is proven by promtool.

`promtool check config` runs on the configuration as each deployment sees it: the local
stack's rendering (infra/stack/services.py) and the docker-compose one, where ./infra/prometheus is
mounted at /etc/prometheus. Rules that name a metric the worker never exposes, or a runbook
section that does not exist, are alerts that can never help anyone; they are refused here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from config.settings import REPO_ROOT, Settings
from features.metrics import FeatureStoreMetrics
from infra.stack.services import Prometheus
from ledger.metrics import LedgerMetrics
from stream.metrics import WorkerMetrics

PROMETHEUS_DIR = REPO_ROOT / "infra" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTS = RULES_DIR / "creditrisk-alerts.yml"
TESTS_DIR = PROMETHEUS_DIR / "tests"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
COMPOSE_MOUNT = "/etc/prometheus/"
REQUIRED_ALERTS = {
    "NoDecisionsWhileEventsArrive", "DeadLetterRateHigh", "EndToEndLatencyP99High",
    "ConsumerLagGrowing", "ScoreDriftHigh", "FeatureDriftHigh", "FeatureStoreMissRateHigh",
    "FeatureStoreStaleRateHigh", "ModelNotLoaded", "ModelReloadFailing", "WorkerDown", "WorkerStalled",
    "ChallengerFailing", "FairLendingAdverseImpact",
}
SEVERITIES = {"critical", "warning"}
TARGET_LABELS = {"job", "instance", "service", "le"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("`promtool` was not found on PATH. Install it with `make install` "
                    "(Debian package `prometheus`), then run the tests again.")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False,
                          timeout=120)


def assert_succeeds(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}{result.stderr}"


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def all_rules() -> list[dict[str, Any]]:
    return [rule for path in rule_files() for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def promtool_test_cases() -> list[dict[str, Any]]:
    return [case for path in sorted(TESTS_DIR.glob("*.yml"))
            for test in yaml.safe_load(path.read_text())["tests"]
            for case in test.get("alert_rule_test", [])]


# -- promtool --------------------------------------------------------------------------
def test_local_stack_config_loads_every_rule_file(tmp_path: Path) -> None:
    service = Prometheus(Settings(stack_dir=tmp_path))
    service.prepare()
    result = promtool("check", "config", str(service.home / "prometheus.yml"))
    assert_succeeds(result)
    assert f"SUCCESS: {len(rule_files())} rule files found" in result.stdout


def test_compose_config_loads_every_rule_file(tmp_path: Path) -> None:
    """The compose file refers to /etc/prometheus, where compose mounts ./infra/prometheus."""
    config = CONFIG.read_text()
    assert f"{COMPOSE_MOUNT}rules/" in config, "rule_files must use the compose mount path"
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(config.replace(COMPOSE_MOUNT, f"{PROMETHEUS_DIR}/"))
    result = promtool("check", "config", str(rendered))
    assert_succeeds(result)
    assert f"SUCCESS: {len(rule_files())} rule files found" in result.stdout


def test_rule_files_are_valid() -> None:
    assert_succeeds(promtool("check", "rules", *map(str, rule_files())))


def test_alert_unit_tests_pass() -> None:
    tests = sorted(TESTS_DIR.glob("*.yml"))
    assert tests, f"no promtool unit tests in {TESTS_DIR}"
    assert_succeeds(promtool("test", "rules", *map(str, tests)))


# -- what the rules say ------------------------------------------------------------------
def test_every_required_alert_exists() -> None:
    missing = REQUIRED_ALERTS - {rule["alert"] for rule in alert_rules()}
    assert not missing, f"alerts missing from {ALERTS.name}: {sorted(missing)}"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    cases = promtool_test_cases()
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    for rule in alert_rules():
        assert rule["alert"] in firing, f"no promtool test where {rule['alert']} fires"
        assert rule["alert"] in quiet, f"no promtool test where {rule['alert']} stays quiet"


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)}
    for rule in alert_rules():
        name, annotations = rule["alert"], rule.get("annotations", {})
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        assert annotations.get("summary"), f"{name}: no summary"
        assert "$value" in annotations.get("description", ""), f"{name}: description without the value"
        url = annotations.get("runbook_url", "")
        assert url.startswith("docs/runbook.md#"), f"{name}: runbook_url {url!r}"
        assert url.split("#", 1)[1] in anchors, f"{name}: {url} names no section of {RUNBOOK.name}"


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name the worker and the ledger writer can expose, with its label names."""
    registry = CollectorRegistry()
    worker, store = WorkerMetrics(registry), FeatureStoreMetrics(registry)
    ledger = LedgerMetrics(registry)
    names: dict[str, set[str]] = {}
    collectors = [*vars(worker).values(), *vars(store).values(), *vars(ledger).values()]
    for metric in [c for c in collectors if hasattr(c, "_labelnames")]:
        # prometheus_client has no public accessor for a metric's declared label names.
        labels = set(metric._labelnames)
        kind, base = metric._type, metric._name
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        for suffix in suffixes.get(kind, [""]):
            names[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def test_rules_query_only_what_the_worker_exposes() -> None:
    exposed = exposed_metrics()
    for rule in all_rules():
        name = rule.get("alert") or rule["record"]
        for metric, matchers in re.findall(r"(?<![:\w])(creditrisk_\w+)(?:\{([^}]*)\})?", rule["expr"]):
            assert metric in exposed, f"{name}: the worker exposes no metric {metric}"
            for label in re.findall(r"(\w+)\s*[=!]~?", matchers):
                assert label in exposed[metric] | TARGET_LABELS, f"{name}: {metric} has no label {label}"


def test_rule_files_are_referenced_by_the_config() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert f"{COMPOSE_MOUNT}rules/*.yml" in config["rule_files"]
