"""Every panel of every Grafana dashboard shows data from a real worker on the real stack.

A worker scores replayed load (valid and malformed events, customers with fresh, stale and
no bureau data, a promotion, a refused corrupt model, Redis stalling) while the stack's
Prometheus scrapes it. Its model card monitors two characteristics the events carry (a
gender and an age band; some events carry neither), so the Fairness dashboard has groups to
show. Then every target of every dashboard is run against that Prometheus,
restricted to this worker with the dashboards' own ``$instance`` variable, and must return
at least one finite value: a panel whose query returns nothing, or only NaN, shows nothing.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from worker_harness import (  # tests/test_stream/worker_harness.py
    MALFORMED_KINDS,
    TopicReader,
    WorkerProcess,
    keyed,
    malformed_event,
    produce,
    register_copy,
    valid_events,
)

from features.materialize import materialize_bureau_features
from features.store import sync_client
from onnx_models.registry import MODEL_CARD, Registry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "dashboards"
SCRAPE_INTERVAL_S = 5.0
# What Grafana would put in place of its variables for a short "last 5 minutes" view, and the
# dashboards' own variables at their defaults (every monitored attribute, the 1 h window).
GRAFANA_WINDOWS = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s",
                   "$attribute": ".*", "$window": "1h"}
# The Fairness dashboard's groups: characteristics the generated loans do not have, set on
# each replayed event (fairness.spec; the card of the test's own registry copy declares them).
MONITORING = {
    "attributes": [
        {"name": "gender", "field": "applicant_sex", "label": "Gender", "reference": "male",
         "values": {"F": "female", "M": "male"}},
        {"name": "age_band", "field": "applicant_age", "label": "Age band", "reference": "35-54",
         "bands": [18, 35, 55]},
    ],
    "min_group_size": 50, "confidence": 0.95, "air_threshold": 0.8,
}


def bureau_with_gaps(bureau_csv: Path, target: Path) -> Path:
    """Every 25th customer absent, the next one 100 days old (stale: the view allows 45)."""
    frame = pd.read_csv(bureau_csv, dtype=str, keep_default_na=False)
    now = datetime.now(UTC)
    position = pd.Series(range(len(frame)), index=frame.index)
    frame["as_of"] = (now - timedelta(days=1)).isoformat()
    frame.loc[position % 25 == 1, "as_of"] = (now - timedelta(days=100)).isoformat()
    frame[position % 25 != 0].to_csv(target, index=False)
    return target


def materialize(redis_url: str, namespace: Any, bureau_csv: Path) -> None:
    settings = namespace.settings.model_copy(update={"redis_url": redis_url})
    client = sync_client(settings, "materializer")
    materialize_bureau_features(bureau_csv, client, schema_version=settings.feature_schema_version,
                                key_prefix=namespace.key_prefix)
    client.close()


def stall_redis_writes(redis_url: str, seconds: float) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.execute_command("CLIENT", "PAUSE", int(seconds * 1000), "WRITE")
    client.close()


def monitor_on_card(registry_dir: Path) -> None:
    """The live version's card declares MONITORING (a card the test writes for itself)."""
    version = Registry(registry_dir).live_version() or ""
    path = registry_dir / version / MODEL_CARD
    card = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(card | {"monitoring": MONITORING}), encoding="utf-8")


def with_characteristics(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alternate genders, ages 20-69 (every band holds more than the minimum), and every 40th
    event without either (group unknown)."""
    for index, event in enumerate(events):
        if index % 40 != 39:
            event["applicant_sex"] = "F" if index % 2 else "M"
            event["applicant_age"] = 20 + (index * 7) % 50
    return events


def malformed(events: list[dict[str, Any]], count: int, start: int) -> list[tuple[bytes | None, bytes]]:
    return [(None, malformed_event(MALFORMED_KINDS[i % len(MALFORMED_KINDS)], i, events[0]))
            for i in range(start, start + count)]


LEDGER_DASHBOARD = "creditrisk-ledger.json"  # its panels: test_ledger_dashboard_e2e.py
# Dashboards proven by their own tests, not by a plain worker's: the ledger writer's
# (test_ledger_dashboard_e2e, test_outbox_e2e) and the challenger's, whose panels need a
# challenger shadowing (test_challenger_e2e).
LEDGER_DASHBOARDS = (LEDGER_DASHBOARD, "creditrisk-review.json", "creditrisk-challenger.json")


def dashboard_targets(names: tuple[str, ...] | None = None) -> list[tuple[str, str, str, str]]:
    """(dashboard, panel, refId, expr) for every target of the worker's dashboard files (or of
    the files named)."""
    targets = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        if (path.name not in names) if names else path.name in LEDGER_DASHBOARDS:
            continue
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                targets.append((dashboard["title"], panel["title"], target["refId"], target["expr"]))
    return targets


def for_prometheus(expr: str, instance: str) -> str:
    """The query as Grafana sends it, showing this one worker."""
    for variable, value in GRAFANA_WINDOWS.items():
        expr = expr.replace(variable, value)
    expr = expr.replace("$instance", instance)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", f"{expr}: {body}"
    result = body["data"]["result"]
    return result if isinstance(result, list) else [{"value": result}]


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    return [value for value in (float(item["value"][1]) for item in result) if math.isfinite(value)]


def wait_until_scraped(port: int, instance: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if finite_values(query(port, f'up{{job="creditrisk-worker", instance="{instance}"}} == 1')):
            return
        time.sleep(1.0)
    raise AssertionError(f"Prometheus did not scrape the worker at {instance} within {timeout_s}s")


def test_every_dashboard_panel_shows_data_from_a_real_worker(
        namespace, registry_dir: Path, generated_data: Path, clean_frame: pd.DataFrame,
        private_redis, live_stack, tmp_path: Path) -> None:
    from infra.stack.services import Prometheus

    bureau = bureau_with_gaps(generated_data / "bureau.csv", tmp_path / "bureau.csv")
    materialize(private_redis.url, namespace, bureau)
    monitor_on_card(registry_dir)
    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log",
                           CREDITRISK_REDIS_URL=private_redis.url)
    instance = f"127.0.0.1:{worker.port}"
    target_file = Prometheus(live_stack).targets_dir / f"test-dashboards-{uuid.uuid4().hex[:8]}.json"
    bootstrap, topic = namespace.settings, namespace.topic_applications
    events = with_characteristics(valid_events(clean_frame, 2_600))
    first, second, third = events[:1_000], events[1_000:1_600], events[1_600:]
    decisions = TopicReader(bootstrap, namespace.topic_decisions)
    try:
        worker.start()
        target_file.write_text(json.dumps([{"targets": [instance]}]))
        wait_until_scraped(live_stack.prometheus_port, instance)

        # Normal traffic with some contract violations.
        produce(bootstrap, topic, keyed(first) + malformed(first, 36, 0))
        decisions.wait_for(lambda r: len(r.by_key) >= len(first), 120, "the first decisions")

        # A promotion (a successful reload), then a corrupt model (a refused reload).
        registry = Registry(registry_dir)
        promoted = register_copy(registry, registry.live_version(), "20991231T000000Z-0000beef")
        registry.promote(promoted)
        produce(bootstrap, topic, keyed(second))
        decisions.wait_for(lambda r: any(m["model_version"] == promoted for m in r.messages), 60,
                           "a decision by the promoted model")
        corrupt = register_copy(registry, promoted, "20991231T000001Z-0000dead")
        (registry_dir / corrupt / "model.onnx").write_bytes(b"not an onnx model")
        (registry_dir / "live.json").write_text(json.dumps({"version": corrupt}))

        # Steady traffic while Redis stalls writes for a few seconds: reads of stored
        # decisions still answer, the feature-store script times out (errors, batch retries).
        producer = threading.Thread(target=produce, args=(bootstrap, topic, keyed(third)
                                                          + malformed(third, 12, 36), 80.0))
        producer.start()
        time.sleep(3)
        stall_redis_writes(private_redis.url, seconds=4)
        producer.join()
        decisions.wait_for(lambda r: len(r.by_key) >= len(events), 180, "every application decided")
        time.sleep(2.5 * SCRAPE_INTERVAL_S)  # at least two scrapes after the last batch

        port = live_stack.prometheus_port
        listed = query(port, 'up{job="creditrisk-worker"}')
        assert instance in {item["metric"].get("instance") for item in listed}, \
            "the dashboards' $instance variable would not offer this worker"
        targets = dashboard_targets()
        assert len(targets) >= 30
        empty = []
        for dashboard, panel, ref, expr in targets:
            if not finite_values(query(port, for_prometheus(expr, instance))):
                empty.append(f"{dashboard} / {panel} / {ref}: {for_prometheus(expr, instance)}")
        assert not empty, (f"{len(empty)} of {len(targets)} panel queries return no data:\n"
                           + "\n".join(empty) + f"\nworker log:\n{worker.log_tail()}")
    finally:
        target_file.unlink(missing_ok=True)
        decisions.close()
        worker.stop()
