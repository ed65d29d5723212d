"""The Grafana dashboards load as Grafana's JSON model and query only what the worker exposes.

No Grafana runs here: the checks are the ones Grafana applies when it provisions a file
(uid, schema version, panels with a type, a place on the 24-column grid and targets) plus
what makes a panel show nothing — a datasource uid that provisioning does not define, a
metric or label name the worker never exposes, a job that Prometheus does not scrape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from features.metrics import FeatureStoreMetrics
from ledger.metrics import LedgerMetrics
from stream.metrics import WorkerMetrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "infra" / "grafana" / "dashboards"
PROVISIONING_DIR = REPO / "infra" / "grafana" / "provisioning"
DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
EXPECTED_DASHBOARDS = {"creditrisk-service.json", "creditrisk-model.json",
                       "creditrisk-feature-store.json", "creditrisk-ledger.json",
                       "creditrisk-review.json", "creditrisk-challenger.json",
                       "creditrisk-fairness.json"}
PANEL_TYPES = {"timeseries", "stat", "bargauge", "table"}
METRIC_NAME = re.compile(r"creditrisk_[a-z_]+")
# Labels Prometheus adds to every scraped series, plus the histogram bucket bound.
TARGET_LABELS = {"job", "instance", "le"}
SELECTOR = re.compile(r"(creditrisk_[a-z_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)\s*\(\s*\w+\((creditrisk_[a-z_]+)")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _exposed_metrics() -> dict[str, set[str]]:
    """Series names the worker exposes, with the label names each carries."""
    registry = CollectorRegistry()
    owners = [WorkerMetrics(registry), FeatureStoreMetrics(registry), LedgerMetrics(registry)]
    exposed: dict[str, set[str]] = {}
    for owner in owners:
        for metric in vars(owner).values():
            if not isinstance(metric, MetricWrapperBase) and hasattr(metric, "describe"):
                # A collector of the worker's own (a gauge absent until set): no labels.
                exposed.update({family.name: set() for family in metric.describe()})
                continue
            if not isinstance(metric, MetricWrapperBase):
                continue
            # Label names live only on the wrapper: a labelled metric has no samples to
            # collect until its first increment.
            name, kind = metric._name, metric._type
            labels = set(metric._labelnames)
            if kind == "counter":
                exposed[f"{name}_total"] = labels
            elif kind == "histogram":
                for suffix in ("_bucket", "_sum", "_count"):
                    exposed[f"{name}{suffix}"] = labels
            else:
                exposed[name] = labels
    return exposed


def _targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [(path.name, panel, target) for path in DASHBOARD_FILES
            for panel in _panels(_load(path)) for target in panel.get("targets", [])]


def test_the_dashboards_are_there() -> None:
    assert {path.name for path in DASHBOARD_FILES} == EXPECTED_DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.name)
def test_dashboard_is_a_provisionable_grafana_model(path: Path) -> None:
    dashboard = _load(path)
    assert isinstance(dashboard.get("uid"), str) and 0 < len(dashboard["uid"]) <= 40
    assert dashboard.get("title")
    assert dashboard.get("schemaVersion") == 39
    assert dashboard.get("id") is None, "a provisioned dashboard must not carry a database id"
    assert "creditrisk" in dashboard.get("tags", [])
    assert dashboard.get("refresh") == "10s"
    assert dashboard.get("time", {}).get("from") and dashboard["time"].get("to")

    panels = _panels(dashboard)
    assert panels, f"{path.name} has no panels"
    ids = [panel.get("id") for panel in panels]
    assert all(isinstance(panel_id, int) for panel_id in ids), ids
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat: {ids}"
    for panel in panels:
        where = f"{path.name} panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("title"), where
        assert panel.get("type") in PANEL_TYPES, f"{where}: type {panel.get('type')!r}"
        assert len(panel.get("description", "")) >= 20, f"{where}: say what the panel shows"
        grid = panel.get("gridPos", {})
        assert {"x", "y", "w", "h"} <= set(grid), f"{where}: gridPos {grid}"
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0, f"{where}: gridPos {grid}"
        assert grid["x"] + grid["w"] <= 24, f"{where} is wider than the 24-column grid"
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{where}: no unit"
        targets = panel.get("targets", [])
        assert targets, f"{where} has no query"
        refs = [target.get("refId") for target in targets]
        assert all(refs) and len(refs) == len(set(refs)), f"{where}: refIds {refs}"
        assert all(target.get("expr", "").strip() for target in targets), f"{where}: empty expr"


def test_panels_do_not_overlap() -> None:
    for path in DASHBOARD_FILES:
        cells: dict[tuple[int, int], str] = {}
        for panel in _panels(_load(path)):
            grid = panel["gridPos"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    other = cells.setdefault((x, y), panel["title"])
                    assert other == panel["title"], f"{path.name}: {panel['title']!r} covers {other!r}"


def _provisioned_datasources() -> dict[str, str]:
    uids = {}
    for path in sorted((PROVISIONING_DIR / "datasources").glob("*.y*ml")):
        for source in yaml.safe_load(path.read_text()).get("datasources", []):
            uids[source["uid"]] = source["type"]
    return uids


def test_every_datasource_reference_resolves_to_a_provisioned_datasource() -> None:
    provisioned = _provisioned_datasources()
    assert provisioned, "no datasource is provisioned"
    for path in DASHBOARD_FILES:
        dashboard = _load(path)
        references = [(f"variable {variable['name']}", variable.get("datasource"))
                      for variable in dashboard.get("templating", {}).get("list", [])
                      if variable.get("type") == "query"]
        for panel in _panels(dashboard):
            references.append((f"panel {panel['title']!r}", panel.get("datasource")))
            references += [(f"panel {panel['title']!r} target {target.get('refId')}",
                            target.get("datasource", panel.get("datasource")))
                           for target in panel.get("targets", [])]
        for where, reference in references:
            assert isinstance(reference, dict), f"{path.name} {where}: datasource {reference!r}"
            assert reference.get("uid") in provisioned, f"{path.name} {where}: unknown {reference}"
            assert reference.get("type") == provisioned[reference["uid"]], f"{path.name} {where}"


def test_the_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts.get("./infra/grafana/provisioning") == "/etc/grafana/provisioning"
    mounted_at = mounts.get("./infra/grafana/dashboards")
    assert mounted_at, "docker-compose does not mount infra/grafana/dashboards into Grafana"
    providers = [provider for path in sorted((PROVISIONING_DIR / "dashboards").glob("*.y*ml"))
                 for provider in yaml.safe_load(path.read_text()).get("providers", [])]
    assert [provider["options"]["path"] for provider in providers if provider["type"] == "file"] \
        == [mounted_at]


def test_every_metric_in_a_query_is_one_the_worker_exposes() -> None:
    exposed = _exposed_metrics()
    unknown = [f"{name}: {panel['title']!r} {target['refId']}: {metric}"
               for name, panel, target in _targets()
               for metric in METRIC_NAME.findall(target["expr"]) if metric not in exposed]
    assert not unknown, "queries use metrics the worker does not expose:\n" + "\n".join(unknown)


def test_every_label_in_a_query_is_one_the_metric_carries() -> None:
    exposed = _exposed_metrics()
    wrong = []
    for name, panel, target in _targets():
        uses = [(metric, matcher.split("=")[0].strip(" !~"))
                for metric, matchers in SELECTOR.findall(target["expr"])
                for matcher in matchers.split(",") if matcher.strip()]
        uses += [(metric, label.strip()) for labels, metric in GROUPING.findall(target["expr"])
                 for label in labels.split(",") if label.strip()]
        wrong += [f"{name}: {panel['title']!r}: {metric} has no label {label!r}"
                  for metric, label in uses
                  if metric in exposed and label not in exposed[metric] | TARGET_LABELS]
    assert not wrong, "\n".join(wrong)


def test_queries_select_the_job_prometheus_scrapes() -> None:
    config = yaml.safe_load((REPO / "infra" / "prometheus" / "prometheus.yml").read_text())
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    used = {job for _, _, target in _targets() for job in re.findall(r'job="([^"]+)"', target["expr"])}
    assert used and used <= jobs, f"dashboards select jobs {used}; Prometheus scrapes {jobs}"


def test_every_query_has_a_metric_and_rates_use_the_grafana_interval() -> None:
    for name, panel, target in _targets():
        expr = target["expr"]
        where = f"{name}: {panel['title']!r} {target['refId']}"
        assert METRIC_NAME.search(expr) or expr.startswith(("sum(up{", "max by (instance) (up{")), where
        for window in re.findall(r"\b(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr):
            assert window in ("$__rate_interval", "$__range"), f"{where}: fixed window [{window}]"
