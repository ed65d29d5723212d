"""POST /score behind a bearer token, on a real worker process and the real stack: no token or
a wrong one is refused (401, counted by reason), the token gets a decision, /health and
/metrics stay open, and the token appears neither in the worker's log nor in /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from worker_harness import (  # tests/test_stream/worker_harness.py
    WorkerProcess,
    load_fresh_bureau,
    metric_sum,
    valid_events,
)

from config.settings import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "e2e-token-7f3a9c1d5b2e8f40a6"
WRONG = "e2e-wrong-token-0000000000"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def worker(namespace, registry_dir: Path, generated_data: Path, tmp_path: Path):
    """A worker with CREDITRISK_API_TOKEN, logging at debug level (the most it ever logs)."""
    load_fresh_bureau(namespace.settings, generated_data / "bureau.csv", tmp_path)
    process = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log",
                            command=[sys.executable, "-m", "cli.main", "worker", "--loglevel", "debug"],
                            CREDITRISK_API_TOKEN=TOKEN)
    process.start()
    yield process
    process.stop()


def test_score_needs_the_token_and_the_token_is_never_written_anywhere(
        worker: WorkerProcess, clean_frame: pd.DataFrame, stack_secrets: list[str]) -> None:
    body = json.dumps(valid_events(clean_frame, 1)[0]).encode()
    refused = {
        "missing": worker.http("POST", "/score", body, headers=JSON),
        "wrong": worker.http("POST", "/score", body, headers={**JSON, "Authorization": f"Bearer {WRONG}"}),
        "malformed": worker.http("POST", "/score", body, headers={**JSON, "Authorization": f"Basic {TOKEN}"}),
    }
    for reason, (status, answer) in refused.items():
        assert status == 401, (reason, answer)
        assert json.loads(answer)["error"] == "unauthorized"
        assert WRONG.encode() not in answer and TOKEN.encode() not in answer

    status, answer = worker.http("POST", "/score", body,
                                 headers={**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert status == 200, answer
    assert json.loads(answer)["decision"] in ("approve", "review", "decline")

    # Probes and Prometheus need no credential.
    assert worker.http("GET", "/health", headers={})[0] == 200
    status, metrics_text = worker.http("GET", "/metrics", headers={})
    assert status == 200
    samples = worker.metrics()
    for reason in refused:
        assert metric_sum(samples, "creditrisk_score_requests_unauthorized_total", reason=reason) == 1

    worker.stop()  # everything the worker will ever log is in the file now
    log_text = worker.log_path.read_text(errors="replace")
    assert len(log_text.splitlines()) > 20, "the worker logged too little to prove anything"
    for secret in (TOKEN, WRONG):
        assert secret not in log_text, "a token was written to the worker's log"
        assert secret.encode() not in metrics_text, "a token is in /metrics"
    # Nor the Kafka and Redis passwords the worker logged in with (handed over in its env).
    for n, secret in enumerate(stack_secrets):
        assert secret not in log_text, f"stack secret #{n} was written to the worker's log"
        assert secret.encode() not in metrics_text, f"stack secret #{n} is in /metrics"


def test_the_worker_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CREDITRISK_API_TOKEN"}
    env |= {"CREDITRISK_WORKER_HOST": "0.0.0.0", "CREDITRISK_STACK_DIR": str(tmp_path),
            "PYTHONPATH": str(REPO_ROOT)}
    finished = subprocess.run([sys.executable, "-m", "cli.main", "worker"], env=env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 2, finished.stderr
    assert "CREDITRISK_API_TOKEN is not set" in finished.stderr
