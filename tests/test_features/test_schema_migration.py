"""Migrating the feature store from key schema v1 to v2 on one Redis, as docs/runbook.md says:
materialize v2 beside v1, copy the worker's velocity sets, switch the worker's setting; v1 keys
stay readable until they expire."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import typer
from prometheus_client import CollectorRegistry

from config.settings import Settings
from features.definitions import BUREAU_FIELDS
from features.materialize import copy_velocity, materialize_bureau_features
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineFeatureReader, OnlineFeatures
from features.serving import LENDING_CLUB_SERVING
from features.store import async_client, sync_client
from features.views import VELOCITY_VIEW, feature_key
from infra.stack.private import PrivateRedis
from training.materialize_cli import _schema_for

CUSTOMERS = ["c1", "c2", "c3"]


@pytest.fixture
def redis_with_users(tmp_path: Path) -> Iterator[Settings]:
    server = PrivateRedis(tmp_path / "redis", settings=Settings(key_prefix="mig:"), users=True)
    server.start()
    yield server.settings
    server.kill()


def _materialize(settings: Settings, schema: str, path: Path) -> int:
    as_of = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    rows = [{"customer_id": customer, "earliest_cr_line": "2004-05-01", "delinq_2yrs": 0,
             "inq_last_6mths": 1, "open_acc": 9, "total_acc": 20, "pub_rec": 0,
             "revol_bal": 8000.5, "revol_util": 41.2, "monthly_debt": 950.25, "as_of": as_of}
            for customer in CUSTOMERS]
    pd.DataFrame(rows).reindex(columns=["customer_id", *BUREAU_FIELDS, "as_of"]).to_csv(path, index=False)
    client = sync_client(settings, "materializer")
    try:
        return materialize_bureau_features(path, client, schema, settings.key_prefix).written
    finally:
        client.close()


def _score(settings: Settings, schema: str, tag: str) -> list[OnlineFeatures]:
    """What a worker reading ``schema`` gets for one new application of each customer."""
    async def go() -> list[OnlineFeatures]:
        client = async_client(settings, "worker")
        try:
            reader = OnlineFeatureReader(client, schema, settings.key_prefix,
                                         metrics=FeatureStoreMetrics(CollectorRegistry()))
            moment = datetime.now(UTC)
            batch = await reader.read([FeatureRequest(f"{tag}-{customer}", customer, moment, {})
                                       for customer in CUSTOMERS], serving=LENDING_CLUB_SERVING)
            return batch.features
        finally:
            await client.aclose()
    return asyncio.run(go())


@pytest.mark.integration
def test_v2_beside_v1_then_switching_keeps_values_and_velocity(redis_with_users: Settings,
                                                                tmp_path: Path) -> None:
    settings = redis_with_users
    assert _materialize(settings, "v1", tmp_path / "v1.csv") == len(CUSTOMERS)
    _score(settings, "v1", "before-1")
    _score(settings, "v1", "before-2")  # two applications each, counted in v1's velocity sets

    assert _materialize(settings, "v2", tmp_path / "v2.csv") == len(CUSTOMERS)  # beside v1
    admin = sync_client(settings, "admin")
    try:
        first = copy_velocity(admin, admin, "v1", "v2", settings.key_prefix)
        assert (first.customers, first.applications, first.skipped) == (3, 6, 0)
        again = copy_velocity(admin, admin, "v1", "v2", settings.key_prefix)  # idempotent
        assert again.applications == 6
        assert admin.zcard(feature_key(VELOCITY_VIEW, "c1", "v2", settings.key_prefix)) == 2
        assert 0 < admin.ttl(feature_key(VELOCITY_VIEW, "c1", "v2", settings.key_prefix)) <= int(
            VELOCITY_VIEW.ttl.total_seconds())
    finally:
        admin.close()

    after_switch = _score(settings, "v2", "after")
    assert all(item.views_found for item in after_switch)
    assert [item.velocity["applications_24h"] for item in after_switch] == [3, 3, 3]
    still_v1 = _score(settings, "v1", "rollback")  # a worker rolled back still reads v1
    assert all(item.views_found for item in still_v1)


def test_materializing_v1_keys_into_a_cluster_is_refused() -> None:
    cluster = Settings(redis_cluster_nodes="127.0.0.1:7001", feature_schema_version="v2")
    assert _schema_for(cluster, None) == "v2"
    with pytest.raises(typer.Exit):
        _schema_for(cluster, "v1")
    with pytest.raises(typer.Exit):
        _schema_for(Settings(), "v7")
