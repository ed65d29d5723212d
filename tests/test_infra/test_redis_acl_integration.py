"""The local stack's Redis with its ACL users: nobody gets in without logging in, and each
role (materializer, worker, ledger, console) can do its job and nothing more."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from config.settings import RedisRole
from features.materialize import materialize_bureau_features
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineFeatureReader
from features.serving import LENDING_CLUB_SERVING
from features.store import WRITE_IF_NEWER, FeatureStoreRefused, async_client, sync_client
from features.views import BUREAU_VIEW, feature_key
from stream.decisions import DecisionStore

pytestmark = pytest.mark.integration

MOMENT = datetime(2026, 11, 2, tzinfo=UTC)
APPLICATION = {"loan_amnt": 12000.0, "term": 36, "purpose": "debt_consolidation",
               "annual_inc": 65000.0, "emp_length": 4.0, "home_ownership": "RENT",
               "verification_status": "Verified", "addr_state": "CA"}


def _bureau_csv(path: Path, customer: str) -> Path:
    path.write_text(
        "customer_id,earliest_cr_line,delinq_2yrs,inq_last_6mths,open_acc,total_acc,pub_rec,"
        "revol_bal,revol_util,mths_since_last_delinq,monthly_debt,as_of\n"
        f"{customer},2010-03-01,0,1,8,20,0,5400,43.1,,850.0,2026-11-01T00:00:00Z\n")
    return path


def _read(settings, role: RedisRole, customer: str):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        client = async_client(settings, role)
        try:
            reader = OnlineFeatureReader(client, settings.feature_schema_version,
                                         settings.key_prefix,
                                         metrics=FeatureStoreMetrics(CollectorRegistry()))
            return await reader.read([FeatureRequest(f"app-{customer}", customer, MOMENT,
                                                     APPLICATION)], serving=LENDING_CLUB_SERVING)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_client_that_does_not_log_in_is_refused(live_stack) -> None:
    client = redis.Redis.from_url(live_stack.redis_url, socket_timeout=2)
    with pytest.raises(redis.AuthenticationError):
        client.ping()
    client.close()


def test_a_wrong_password_is_a_clear_error_without_the_password(namespace) -> None:
    wrong = namespace.settings.model_copy(update={
        "redis_username": "worker", "redis_password": SecretStr("not-the-Pa55word")})
    with pytest.raises(FeatureStoreRefused, match="CREDITRISK_REDIS_PASSWORD") as error:
        _read(wrong, "worker", "c1")
    assert "not-the-Pa55word" not in str(error.value)
    assert "'worker'" in str(error.value)


def test_the_materializer_writes_views_and_nothing_else(namespace, tmp_path: Path) -> None:
    settings = namespace.settings
    client = sync_client(settings, "materializer")
    try:
        report = materialize_bureau_features(_bureau_csv(tmp_path / "b.csv", "c1"), client,
                                             key_prefix=settings.key_prefix)
        assert report.written == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set(f"{settings.key_prefix}decision:app-1", b"{}")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushdb()
    finally:
        client.close()


def test_the_worker_reads_views_writes_velocity_and_decisions_but_no_bureau_hash(
        namespace, tmp_path: Path) -> None:
    settings = namespace.settings
    materializer = sync_client(settings, "materializer")
    materialize_bureau_features(_bureau_csv(tmp_path / "b.csv", "c1"), materializer,
                                key_prefix=settings.key_prefix)
    materializer.close()

    (found,) = _read(settings, "worker", "c1").features
    assert found.views_found and found.velocity["applications_24h"] == 1  # velocity written

    worker = sync_client(settings, "worker")
    bureau = feature_key(BUREAU_VIEW, "c1", settings.feature_schema_version, settings.key_prefix)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker.hset(bureau, "delinq_2yrs", "9")
        script = worker.script_load(WRITE_IF_NEWER)  # a script cannot lend it the right
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker.evalsha(script, 1, bureau, "2030-01-01T00:00:00.000000Z", "x", 60, "a", "1")
        worker.set(f"{settings.key_prefix}decision:app-c1", b"{}", ex=60)
        worker.zadd(f"{settings.key_prefix}decisions:recent", {"app-c1": 1.0})
    finally:
        worker.close()
    assert _admin_hget(settings, bureau, "delinq_2yrs") == "0.0"


def _admin_hget(settings, key: str, field: str) -> str | None:  # type: ignore[no-untyped-def]
    client = sync_client(settings, "admin")
    try:
        value = client.hget(key, field)
        return value.decode() if value is not None else None
    finally:
        client.close()


def test_console_and_ledger_read_decisions_and_cannot_write(namespace) -> None:
    settings = namespace.settings
    key = f"{settings.key_prefix}decision:app-1"
    worker = sync_client(settings, "worker")
    worker.set(key, b'{"stored": true}', ex=60)
    worker.close()
    for role in ("console", "ledger"):
        client = sync_client(settings, role)  # type: ignore[arg-type]
        try:
            assert client.mget([key]) == [b'{"stored": true}']
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.set(key, b"{}")
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.hgetall(feature_key(BUREAU_VIEW, "c1", settings.feature_schema_version,
                                           settings.key_prefix))
        finally:
            client.close()


def test_a_decision_store_without_write_rights_raises_the_clear_refusal(namespace) -> None:
    settings = namespace.settings

    async def save_as_console() -> None:
        client = async_client(settings, "console")
        try:
            await DecisionStore(client, settings.key_prefix).save([_record()])
        finally:
            await client.aclose()

    with pytest.raises(FeatureStoreRefused, match="NOPERM") as error:
        asyncio.run(save_as_console())
    assert "'console'" in str(error.value)


def _record():  # type: ignore[no-untyped-def]
    from stream.decisions import Decision, DecisionRecord

    decision = Decision(application_id="app-1", customer_id="c1", decision_id="d-1",
                        decision="approve", probability_of_default=0.05, score=700,
                        risk_grade="A", model_version="v1", policy_version="p1",
                        submitted_at="2026-11-02T00:00:00.000Z",
                        decided_at="2026-11-02T00:00:01.000Z")
    return DecisionRecord(decision, {}, {}, [], {})


def test_the_stack_refuses_to_reuse_a_redis_without_acl_users(private_redis, tmp_path: Path) -> None:
    """A Redis already on the port that lets anyone in (Debian's own service, say) would
    leave the feature store open: `stack up` stops with what to do instead of using it."""
    from config.settings import Settings
    from infra.stack.services import Redis, StackError

    open_redis = Redis(Settings(stack_dir=tmp_path / "stack", redis_url=private_redis.url))
    with pytest.raises(StackError, match="has no ACL users"):
        open_redis.start(echo=lambda line: None)
