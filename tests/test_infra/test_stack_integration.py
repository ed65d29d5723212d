"""The local stack's servers really work: Kafka with both clients, Redis, Prometheus scraping."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from servers import redis_as  # tests/servers.py

from config.kafka_auth import aiokafka_options, kafka_python_options
from config.settings import Settings
from infra.stack.kafka_access import retire_prefix
from infra.stack.services import process_alive

pytestmark = pytest.mark.integration


def test_kafka_python_produces_and_consumes_through_the_broker(namespace) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    settings = namespace.settings
    producer = KafkaProducer(**kafka_python_options(settings, "producer"), acks="all")
    sent = {f"app-{i}": {"loan_amnt": 1000 + i} for i in range(20)}
    for key, value in sent.items():
        producer.send(namespace.topic_applications, key=key.encode(), value=json.dumps(value).encode())
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(namespace.topic_applications, **kafka_python_options(settings, "worker"),
                             auto_offset_reset="earliest", group_id=settings.worker_group,
                             consumer_timeout_ms=15000)
    received = {}
    for record in consumer:
        received[record.key.decode()] = json.loads(record.value)
        if len(received) == len(sent):
            break
    consumer.close()
    assert received == sent


def test_aiokafka_produces_and_consumes_through_the_broker(namespace) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    settings = namespace.settings
    topic = namespace.topic_decisions
    group = f"{settings.reader_group_prefix}-{uuid.uuid4().hex}"  # a downstream reader's

    async def round_trip() -> list[tuple[str, str]]:
        producer = AIOKafkaProducer(**aiokafka_options(settings, "worker"), acks="all")
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **aiokafka_options(settings, "reader"),
                                    group_id=group, auto_offset_reset="earliest")
        await consumer.start()
        got: list[tuple[str, str]] = []
        try:
            async with asyncio.timeout(20):
                async for record in consumer:
                    got.append((record.key.decode(), record.value.decode()))
                    if len(got) == 10:
                        break
        finally:
            await consumer.stop()
        return got

    try:
        got = asyncio.run(round_trip())
    finally:
        retire_prefix(settings, group)  # the group lives outside the test's namespace
    assert sorted(got) == sorted((f"k{i}", f"v{i}") for i in range(10))


def test_redis_round_trips_a_hash(namespace) -> None:
    client = redis_as(namespace.settings, "admin", decode_responses=True)
    key = f"{namespace.key_prefix}fs:v1:bureau:cust-1"
    client.hset(key, mapping={"revol_util": "53.4", "_event_ts": "2024-01-01T00:00:00Z"})
    client.expire(key, 60)
    assert client.hgetall(key) == {"revol_util": "53.4", "_event_ts": "2024-01-01T00:00:00Z"}
    assert 0 < client.ttl(key) <= 60
    client.close()


def test_prometheus_scrapes_a_target_of_ours(live_stack: Settings) -> None:
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    from infra.stack.services import Prometheus

    registry = CollectorRegistry()
    marker = f"m{uuid.uuid4().hex[:10]}"
    Gauge("creditrisk_stack_probe", "probe gauge for the stack test", ["marker"],
          registry=registry).labels(marker=marker).set(42)
    port = _free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    target_file = Prometheus(live_stack).targets_dir / f"test-{marker}.json"
    target_file.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"]}]))
    try:
        value = _wait_for_query(live_stack.prometheus_port, f'creditrisk_stack_probe{{marker="{marker}"}}')
        assert value == 42.0
    finally:
        target_file.unlink()
        server.shutdown()


def test_stack_up_again_reuses_everything_and_status_reports_all_answering(live_stack: Settings) -> None:
    up = _cli("stack", "up")
    assert up.returncode == 0, up.stderr
    assert up.stdout.count("already answering") == 4
    assert "ledger schema 0001_ledger: applied" in up.stdout
    status = _cli("stack", "status")
    assert status.returncode == 0
    for name in ("kafka", "redis", "postgres", "prometheus"):
        line = next(line for line in status.stdout.splitlines() if line.startswith(name))
        assert " yes " in line


@pytest.mark.slow
def test_a_second_stack_comes_up_twice_and_down_leaves_no_process(live_stack: Settings) -> None:
    """A whole stack on other ports in its own folder: up, up again, status, down."""
    import shutil

    # Under the repository's .stack/ (not the private pytest tmp folder): as root, PostgreSQL
    # runs as the `postgres` user, which must be able to reach its data folder.
    folder = live_stack.stack_dir / f"second-{uuid.uuid4().hex[:8]}"
    try:
        _second_stack(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _second_stack(folder: Path) -> None:
    env = {
        "CREDITRISK_STACK_DIR": str(folder / "stack"),
        "CREDITRISK_POSTGRES_PORT": str(_free_port()),
        # the product's processes of this stack (none): not the ones a demo may be running
        "CREDITRISK_WORKER_PORT": str(_free_port()),
        "CREDITRISK_LEDGER_PORT": str(_free_port()),
        "CREDITRISK_CONSOLE_PORT": str(_free_port()),
        "CREDITRISK_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
        "CREDITRISK_KAFKA_CONTROLLER_PORT": str(_free_port()),
        "CREDITRISK_REDIS_URL": f"redis://127.0.0.1:{_free_port()}/0",
        "CREDITRISK_PROMETHEUS_PORT": str(_free_port()),
        "CREDITRISK_KAFKA_HEAP": "256m",
        "CREDITRISK_TOPIC_PARTITIONS": "2",
    }
    first = _cli("stack", "up", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("answering at") == 4
    assert "ledger schema 0001_ledger: applied now" in first.stdout
    second = _cli("stack", "up", env=env)
    assert second.returncode == 0 and second.stdout.count("already answering") == 4
    pids = [int(p.read_text()) for p in (folder / "stack" / "pids").glob("*.pid")]
    assert len(pids) == 4
    password = (folder / "stack" / "postgres" / "password").read_text()
    assert password not in first.stdout + second.stdout
    assert _cli("stack", "status", env=env).returncode == 0

    down = _cli("stack", "down", env=env)
    assert down.returncode == 0
    assert down.stdout.count("stopped") == 4
    assert not any(process_alive(pid) for pid in pids)
    after = _cli("stack", "status", env=env)
    assert after.returncode != 0 and " yes " not in after.stdout


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, env=full_env, timeout=300, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_query(port: int, query: str, timeout_s: float = 45.0) -> float:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        if result:
            return float(result[0]["value"][1])
        time.sleep(1)
    raise AssertionError(f"Prometheus returned nothing for {query} within {timeout_s}s")
