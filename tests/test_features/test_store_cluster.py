"""The feature store, the decision store and the console's Redis reads with the same code on a
single Redis and on a Redis Cluster (three primaries, one replica each), both with key schema
v2 and the stack's ACL users; and a primary SIGKILLed mid-read: the reader says "unavailable,
retry" until the replica takes over, then reads again — nothing an event could be blamed for."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from config.settings import RedisRole, Settings
from features.definitions import BUREAU_FIELDS
from features.materialize import materialize_bureau_features
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineBatch, OnlineFeatureReader
from features.serving import LENDING_CLUB_SERVING
from features.store import (
    READ_CUSTOMER,
    FeatureStoreRefused,
    FeatureStoreUnavailable,
    async_client,
    is_cluster,
    sync_client,
)
from features.views import BUREAU_VIEW, VELOCITY_VIEW, feature_key
from stream.decisions import Decision, DecisionRecord, DecisionStore, decision_id
from stream.failures import outage_dependency
from stream.warm_start import warm_redis

CUSTOMERS = [f"cust-{i:04d}" for i in range(200)]
AS_OF = datetime.now(UTC) - timedelta(days=1)
APPLICATION = {"loan_amnt": 12000.0, "term": 36, "purpose": "debt_consolidation",
               "annual_inc": 65000.0, "emp_length": 4.0, "home_ownership": "RENT",
               "verification_status": "Verified", "addr_state": "CA"}


@dataclass
class Store:
    """A Redis of the test's own (single or cluster) and settings that reach it."""

    kind: str
    settings: Settings
    server: object  # PrivateRedis or PrivateRedisCluster


@pytest.fixture(scope="module", params=[
    pytest.param("single", marks=pytest.mark.integration),
    pytest.param("cluster", marks=[pytest.mark.cluster, pytest.mark.e2e]),
])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[Store]:
    workdir = tmp_path_factory.mktemp(f"redis-{request.param}")
    base = Settings(key_prefix="fs-test:")
    server: object
    if request.param == "cluster":
        from infra.stack.private import PrivateRedisCluster

        cluster = PrivateRedisCluster(workdir, settings=base, users=True)
        cluster.start()
        server, settings = cluster, cluster.settings
    else:
        from infra.stack.private import PrivateRedis

        single = PrivateRedis(workdir, settings=base, users=True)
        single.start()
        server = single
        settings = single.settings.model_copy(update={"feature_schema_version": "v2"})
    materialize(settings, workdir / "bureau.csv", AS_OF)
    yield Store(request.param, settings, server)
    server.stop()  # type: ignore[attr-defined]


def materialize(settings: Settings, path: Path, as_of: datetime) -> tuple[int, int]:
    rows = [{"customer_id": customer, "earliest_cr_line": "2004-05-01", "delinq_2yrs": 0,
             "inq_last_6mths": 1, "open_acc": 9, "total_acc": 20, "pub_rec": 0,
             "revol_bal": 8000.5, "revol_util": 41.2, "mths_since_last_delinq": "",
             "monthly_debt": 950.25 + number, "as_of": as_of.isoformat()}
            for number, customer in enumerate(CUSTOMERS)]
    pd.DataFrame(rows).reindex(columns=["customer_id", *BUREAU_FIELDS, "as_of"]).to_csv(path, index=False)
    client = sync_client(settings, "materializer")
    try:
        report = materialize_bureau_features(path, client, settings.feature_schema_version,
                                             settings.key_prefix, batch_size=64)
    finally:
        client.close()
    return report.written, report.kept_newer


def requests(tag: str) -> list[FeatureRequest]:
    moment = datetime.now(UTC)
    return [FeatureRequest(f"{tag}-{customer}", customer, moment, APPLICATION)
            for customer in CUSTOMERS]


async def read_batch(settings: Settings, tag: str) -> OnlineBatch:
    client = async_client(settings, "worker")
    try:
        reader = OnlineFeatureReader(client, settings.feature_schema_version, settings.key_prefix,
                                     metrics=FeatureStoreMetrics(CollectorRegistry()))
        return await reader.read(requests(tag), serving=LENDING_CLUB_SERVING)
    finally:
        await client.aclose()


def test_the_client_is_a_cluster_client_exactly_when_cluster_nodes_are_set(store: Store) -> None:
    client = sync_client(store.settings, "admin")
    try:
        assert is_cluster(client) == (store.kind == "cluster")
        if store.kind == "cluster":  # the 200 customers live on every primary
            nodes = {client.get_node_from_key(feature_key(BUREAU_VIEW, customer, "v2",
                                                          store.settings.key_prefix)).name
                     for customer in CUSTOMERS}
            assert len(nodes) == 3
    finally:
        client.close()


def test_a_batch_read_finds_every_customer_and_counts_velocity(store: Store) -> None:
    first = asyncio.run(read_batch(store.settings, "first"))
    second = asyncio.run(read_batch(store.settings, "second"))
    assert all(item.views_found and not item.unavailable for item in first.features)
    assert [item.record["monthly_debt"] for item in first.features] == [
        950.25 + number for number in range(len(CUSTOMERS))]
    assert {item.velocity["applications_24h"] for item in first.features} == {1}
    assert {item.velocity["applications_24h"] for item in second.features} == {2}
    # the worker wrote each customer's velocity set beside its bureau hash (same tag)
    admin = sync_client(store.settings, "admin")
    try:
        key = feature_key(VELOCITY_VIEW, CUSTOMERS[0], "v2", store.settings.key_prefix)
        assert admin.zcard(key) == 2
    finally:
        admin.close()


def test_the_materializer_keeps_newer_values_on_a_rerun_with_older_ones(store: Store,
                                                                         tmp_path: Path) -> None:
    written, kept_newer = materialize(store.settings, tmp_path / "older.csv",
                                      AS_OF - timedelta(days=30))
    assert (written, kept_newer) == (0, len(CUSTOMERS))


def _record(application_id: str, customer: str) -> DecisionRecord:
    decision = Decision(application_id=application_id, customer_id=customer,
                        decision_id=decision_id(application_id, "m1"), decision="approve",
                        probability_of_default=0.04, score=710, risk_grade="A",
                        model_version="m1", policy_version="p1",
                        submitted_at="2026-11-20T10:00:00.000Z",
                        decided_at="2026-11-20T10:00:00.020Z")
    return DecisionRecord(decision=decision, application=dict(APPLICATION),
                          features={"open_acc": 9.0}, stale_features=[],
                          velocity={"applications_24h": 1})


def test_decisions_are_stored_found_again_and_read_by_the_ledger_and_console(store: Store) -> None:
    from console.data import RedisDataSource

    records = [_record(f"app-{store.kind}-{i}", customer)
               for i, customer in enumerate(CUSTOMERS[:120])]
    ids = [record.decision.application_id for record in records]

    async def save_then_find() -> tuple[dict[str, Decision], dict[str, Decision]]:
        client = async_client(store.settings, "worker")
        try:
            decisions = DecisionStore(client, store.settings.key_prefix)
            await decisions.save(records)
            found = await decisions.existing([*ids, "app-never-seen"], "m1")
            other_version = await decisions.existing(ids, "m2")
            return found, other_version
        finally:
            await client.aclose()

    found, other_version = asyncio.run(save_then_find())
    assert found == {record.decision.application_id: record.decision for record in records}
    assert other_version == {}

    ledger = sync_client(store.settings, "ledger")
    try:
        assert DecisionStore(ledger, store.settings.key_prefix).records([ids[5], "absent"]) == [
            records[5], None]
    finally:
        ledger.close()

    console = RedisDataSource(store.settings)
    recent = console.recent_records(limit=200)
    assert {record.decision.application_id for record in recent.items} >= set(ids)
    assert recent.unreadable == 0
    assert console.record(ids[7]) == records[7]


def _save_and_find(store: Store, role: RedisRole, tag: str) -> dict[str, Decision]:
    records = [_record(f"app-{tag}-{store.kind}-{i}", customer)
               for i, customer in enumerate(CUSTOMERS[:30])]

    async def go() -> dict[str, Decision]:
        client = async_client(store.settings, role)
        try:
            decisions = DecisionStore(client, store.settings.key_prefix)
            started = time.perf_counter()
            await decisions.save(records)
            assert time.perf_counter() - started < 1.0  # the replicas answer WAIT at once
            return await decisions.existing([r.decision.application_id for r in records], "m1")
        finally:
            await client.aclose()

    found = asyncio.run(go())
    assert len(found) == len(records)
    return found


def _refused_waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused WAIT" in r.getMessage()]


def test_records_are_confirmed_on_a_replica_before_the_batch_goes_on(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    _save_and_find(store, "admin", "wait")
    assert not _refused_waits(caplog)


@pytest.mark.parametrize("store", [pytest.param("cluster", marks=[pytest.mark.cluster,
                                                                    pytest.mark.e2e])],
                         indirect=True)
def test_the_workers_user_may_confirm_records_on_a_replica(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    _save_and_find(store, "worker", "wait-worker")
    assert not _refused_waits(caplog)


def test_a_wrong_password_or_a_missing_right_is_a_refusal_not_an_outage(store: Store) -> None:
    from console.data import ConsoleUnavailable, RedisDataSource

    wrong = store.settings.model_copy(update={"redis_username": "worker",
                                              "redis_password": SecretStr("not-the-password")})
    with pytest.raises(FeatureStoreRefused, match="CREDITRISK_REDIS_PASSWORD") as error:
        asyncio.run(read_batch(wrong, "wrong"))
    assert "not-the-password" not in str(error.value)

    async def look_up_decisions() -> None:
        client = async_client(wrong, "worker")
        try:
            await DecisionStore(client, wrong.key_prefix).existing(["app-1"], "m1")
        finally:
            await client.aclose()

    with pytest.raises(FeatureStoreRefused):
        asyncio.run(look_up_decisions())
    with pytest.raises(ConsoleUnavailable, match="refused the credentials"):
        RedisDataSource(wrong).recent_records()

    async def read_as_ledger() -> None:  # the ledger's user may not run the read script
        client = async_client(store.settings, "ledger")
        try:
            reader = OnlineFeatureReader(client, "v2", store.settings.key_prefix,
                                         metrics=FeatureStoreMetrics(CollectorRegistry()))
            await reader.read(requests("nope")[:1], serving=LENDING_CLUB_SERVING)
        finally:
            await client.aclose()

    with pytest.raises(FeatureStoreRefused, match="NOPERM"):
        asyncio.run(read_as_ledger())


def test_the_warm_start_leaves_the_read_script_on_every_primary(store: Store) -> None:
    """So that no customer's first read meets NOSCRIPT, whichever primary holds its slot."""
    admin = sync_client(store.settings, "admin")
    try:
        admin.script_flush()  # every primary's script cache, as after a restart

        async def warm() -> None:
            client = async_client(store.settings, "worker")
            try:
                await warm_redis(client)
            finally:
                await client.aclose()

        asyncio.run(warm())
        sha = hashlib.sha1(READ_CUSTOMER.encode()).hexdigest()
        primaries = admin.get_primaries() if isinstance(admin, RedisCluster) else [None]
        found = [admin.execute_command("SCRIPT EXISTS", sha, **_on(node)) for node in primaries]
        assert found == [[True]] * len(primaries), found
    finally:
        admin.close()


def _on(node: object) -> dict[str, object]:
    return {} if node is None else {"target_nodes": node}


@pytest.mark.parametrize("store", [pytest.param("cluster", marks=[pytest.mark.cluster,
                                                                    pytest.mark.e2e])],
                         indirect=True)
def test_a_primary_killed_mid_read_is_an_outage_until_its_replica_takes_over(store: Store) -> None:
    cluster = store.server
    victim_key = feature_key(BUREAU_VIEW, CUSTOMERS[0], "v2", store.settings.key_prefix)
    wait_for_replicas(store.settings)

    async def reads_through_failover() -> tuple[list[BaseException], OnlineBatch, float]:
        client = async_client(store.settings, "worker")
        reader = OnlineFeatureReader(client, "v2", store.settings.key_prefix,
                                     metrics=FeatureStoreMetrics(CollectorRegistry()))
        decisions = DecisionStore(client, store.settings.key_prefix)
        failures: list[BaseException] = []
        try:
            await reader.read(requests("warm"), serving=LENDING_CLUB_SERVING)
            cluster.kill_primary_of(victim_key)  # type: ignore[attr-defined]
            killed = time.monotonic()
            while time.monotonic() - killed < 60:
                try:
                    batch = await reader.read(requests(f"after-{len(failures)}"),
                                              serving=LENDING_CLUB_SERVING)
                    await decisions.existing([f"app-x-{i}" for i in range(50)], "m1")
                    return failures, batch, time.monotonic() - killed
                except (FeatureStoreUnavailable, RedisError, RedisClusterException) as error:
                    failures.append(error)
                    await asyncio.sleep(0.2)
            raise AssertionError(f"no read succeeded within 60 s of the kill: {failures[-3:]}")
        finally:
            await client.aclose()

    failures, batch, recovered_s = asyncio.run(reads_through_failover())
    assert failures, "the kill did not interrupt a single read"
    # what the worker's failure policy sees: an outage of Redis (retry), never a bad event
    assert all(outage_dependency(error) == "redis" for error in failures), {
        type(error).__name__ for error in failures}
    assert any(isinstance(error, FeatureStoreUnavailable) for error in failures)
    assert all(item.views_found for item in batch.features)  # the replica had every value
    assert recovered_s < 30
    print(f"failover: {len(failures)} failed reads "
          f"({sorted({type(error).__name__ for error in failures})}), read again {recovered_s:.1f} s "
          "after the kill")
    cluster.wait_until_ok()  # type: ignore[attr-defined]


def wait_for_replicas(settings: Settings, timeout_s: float = 10.0) -> None:
    """Until every replica has copied all of its primary's writes (INFO replication)."""
    client = sync_client(settings, "admin")
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            infos = client.info("replication", target_nodes=client.PRIMARIES)
            lagging = [node for node, info in infos.items()
                       if any(info[name]["offset"] < info["master_repl_offset"]
                              for name in info if name.startswith("slave"))]
            if not lagging:
                return
            time.sleep(0.1)
        raise AssertionError(f"replicas of {lagging} did not catch up in {timeout_s:.0f} s")
    finally:
        client.close()
