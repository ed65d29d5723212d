"""The worker's Kafka clients as configured (no server): its producer is idempotent with
acks=all (a retried send is written once), and its consumer's fetch long-poll is short (an
event is not left waiting in the broker for Faust's fixed 1.5 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from config.settings import Settings
from stream.app import FETCH_MAX_WAIT_MS, create_app


def _settings(tmp_path: Path) -> Settings:
    return Settings(stack_dir=tmp_path, kafka_username="worker",
                    kafka_password="not-used: nothing connects")


def test_the_worker_s_producer_is_idempotent_with_acks_all(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    producer = app.producer
    options = {**producer._settings_default(), **producer._settings_extra()}  # type: ignore[attr-defined]
    assert options["enable_idempotence"] is True
    assert options["acks"] in ("all", -1)


def test_the_worker_s_consumer_fetches_with_a_short_long_poll(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))

    async def built_consumer_wait() -> int:
        thread = app.consumer._thread  # type: ignore[attr-defined]
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    assert asyncio.run(built_consumer_wait()) == FETCH_MAX_WAIT_MS < 1500
