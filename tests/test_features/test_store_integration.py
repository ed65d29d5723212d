"""The feature store on real Redis: materialize, online reads, freshness, velocity, failures."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
import redis.asyncio
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from servers import redis_as  # tests/servers.py

from config.settings import Settings
from features.definitions import APPLICANT_FIELDS, BUREAU_FIELDS, FeatureEncoder
from features.materialize import materialize_bureau_features
from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineFeatureReader
from features.serving import LENDING_CLUB_SERVING
from features.store import FeatureStoreRefused, FeatureStoreUnavailable, async_client, sync_client

pytestmark = pytest.mark.integration

BUREAU_HEADER = ["customer_id", *BUREAU_FIELDS, "as_of"]
APPLICATION = {"loan_amnt": 12000.0, "term": 36, "purpose": "debt_consolidation",
               "annual_inc": 65000.0, "emp_length": 4.0, "home_ownership": "RENT",
               "verification_status": "Verified", "addr_state": "CA"}


def _bureau_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    pd.DataFrame(rows).reindex(columns=BUREAU_HEADER).to_csv(path, index=False)
    return path


def _bureau_row(customer_id: str, as_of: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {"customer_id": customer_id, "earliest_cr_line": "2004-05-01",
                              "delinq_2yrs": 0, "inq_last_6mths": 1, "open_acc": 9,
                              "total_acc": 20, "pub_rec": 0, "revol_bal": 8000.5,
                              "revol_util": 41.2, "mths_since_last_delinq": "",
                              "monthly_debt": 950.25, "as_of": as_of}
    row.update(values)
    return row


def _settings(namespace, **overrides: object) -> Settings:
    return namespace.settings.model_copy(update=overrides)


def _read(settings: Settings, requests: list[FeatureRequest], metrics: FeatureStoreMetrics,
          record_velocity: bool = True):
    async def go():
        client = async_client(settings, "worker")
        try:
            reader = OnlineFeatureReader(client, settings.feature_schema_version,
                                         settings.key_prefix, metrics=metrics)
            return await reader.read(requests, serving=LENDING_CLUB_SERVING,
                                     record_velocity=record_velocity)
        finally:
            await client.aclose()
    return asyncio.run(go())


def _request(customer_id: str, submitted_at: datetime, application_id: str = "app-1") -> FeatureRequest:
    return FeatureRequest(application_id, customer_id, submitted_at, APPLICATION)


def _counter(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_materialize_writes_reruns_idempotently_and_never_lets_older_values_win(namespace, tmp_path) -> None:
    settings = namespace.settings
    client = sync_client(settings, "materializer")
    inspect = sync_client(settings, "admin")  # the materializer may write views, not read them
    prefix = settings.key_prefix
    rows = [_bureau_row(f"c{i}", "2026-10-01T00:00:00Z") for i in range(50)]
    rows.append(_bureau_row("bad-number", "2026-10-01T00:00:00Z", revol_bal="12k"))
    rows.append(_bureau_row("bad-date", "not a date"))
    rows.append(_bureau_row("", "2026-10-01T00:00:00Z"))
    rows.append(_bureau_row("negative", "2026-10-01T00:00:00Z", open_acc=-3))
    path = _bureau_csv(tmp_path / "bureau.csv", rows)

    first = materialize_bureau_features(path, client, key_prefix=prefix, batch_size=7)
    assert (first.rows_read, first.written, first.kept_newer) == (54, 50, 0)
    assert dict(first.malformed) == {"bad_revol_bal": 1, "bad_as_of": 1, "bad_customer_id": 1,
                                     "bad_open_acc": 1}
    for rejected in ("bad-number", "bad-date", "negative"):
        assert not inspect.exists(f"{prefix}fs:v1:bureau:{rejected}"), "a malformed row was written"
    stored = inspect.hgetall(f"{prefix}fs:v1:bureau:c7")
    assert stored[b"revol_util"] == b"41.2" and stored[b"earliest_cr_line"] == b"2004-05-01"
    assert b"mths_since_last_delinq" not in stored  # empty = never delinquent: not stored
    assert stored[b"_event_ts"] == b"2026-10-01T00:00:00.000000Z"
    assert 364 * 86400 < inspect.ttl(f"{prefix}fs:v1:bureau:c7") <= 365 * 86400

    again = materialize_bureau_features(path, client, key_prefix=prefix)
    assert (again.written, again.kept_newer) == (50, 0)
    assert {k: v for k, v in inspect.hgetall(f"{prefix}fs:v1:bureau:c7").items()
            if k != b"_written_ts"} == {k: v for k, v in stored.items() if k != b"_written_ts"}

    older = _bureau_csv(tmp_path / "older.csv",
                        [_bureau_row("c7", "2025-01-01T00:00:00Z", revol_util=99.9)])
    result = materialize_bureau_features(older, client, key_prefix=prefix)
    assert (result.written, result.kept_newer) == (0, 1)
    assert inspect.hget(f"{prefix}fs:v1:bureau:c7", "revol_util") == b"41.2"

    newer = _bureau_csv(tmp_path / "newer.csv",
                        [_bureau_row("c7", "2026-11-01T00:00:00Z", revol_util=12.5, pub_rec="")])
    assert materialize_bureau_features(newer, client, key_prefix=prefix).written == 1
    latest = inspect.hgetall(f"{prefix}fs:v1:bureau:c7")
    assert latest[b"revol_util"] == b"12.5" and b"pub_rec" not in latest  # replaced, not merged
    client.close()
    inspect.close()


def test_online_read_reports_fresh_stale_and_missing_and_counts_them(namespace, tmp_path) -> None:
    settings = namespace.settings
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    client = sync_client(settings, "materializer")
    materialize_bureau_features(_bureau_csv(tmp_path / "b.csv", [
        _bureau_row("fresh", (now - timedelta(days=10)).isoformat()),
        _bureau_row("stale", (now - timedelta(days=200)).isoformat()),
        _bureau_row("partial", (now - timedelta(days=1)).isoformat(), revol_util="", pub_rec=""),
    ]), client, key_prefix=settings.key_prefix)
    client.close()
    registry = CollectorRegistry()
    metrics = FeatureStoreMetrics(registry)

    batch = _read(settings, [_request("fresh", now, "a1"), _request("stale", now, "a2"),
                             _request("absent", now, "a3"), _request("partial", now, "a4")], metrics)
    fresh, stale, absent, partial = batch.features

    assert fresh.missing == [] and fresh.stale == [] and fresh.views_found
    assert fresh.record["revol_util"] == 41.2 and fresh.record["loan_amnt"] == 12000.0
    assert fresh.age_seconds["bureau"] == pytest.approx(10 * 86400)
    assert stale.stale == list(BUREAU_FIELDS) and "revol_util" not in stale.record
    assert absent.missing == list(BUREAU_FIELDS) and absent.age_seconds["bureau"] is None
    assert partial.missing == ["pub_rec", "revol_util"]

    assert _counter(registry, "creditrisk_feature_store_lookups_total", view="bureau", outcome="hit") == 2
    assert _counter(registry, "creditrisk_feature_store_lookups_total", view="bureau", outcome="stale") == 1
    assert _counter(registry, "creditrisk_feature_store_lookups_total", view="bureau", outcome="missing") == 1
    assert _counter(registry, "creditrisk_feature_store_missing_features_total",
                    view="bureau", feature="revol_util") == 3
    assert _counter(registry, "creditrisk_feature_age_seconds_count", view="bureau") == 3
    assert _counter(registry, "creditrisk_feature_store_read_seconds_count") == 1


def test_velocity_counts_applications_in_sliding_windows_and_ignores_replays(namespace) -> None:
    settings = namespace.settings
    metrics = FeatureStoreMetrics(CollectorRegistry())
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    timeline = [("a1", start), ("a2", start + timedelta(hours=1)),
                ("a3", start + timedelta(hours=30)), ("a4", start + timedelta(days=9))]
    seen = []
    for application_id, moment in timeline:
        (result,) = _read(settings, [_request("cust-v", moment, application_id)], metrics).features
        seen.append((result.velocity["applications_24h"], result.velocity["applications_7d"]))
    assert seen == [(1, 1), (2, 2), (1, 3), (1, 1)]

    (replayed,) = _read(settings, [_request("cust-v", start + timedelta(days=9), "a4")], metrics).features
    assert replayed.velocity == {"applications_24h": 1, "applications_7d": 1}


def test_online_inputs_equal_offline_inputs_for_10000_customers(namespace, tmp_path) -> None:
    """No training/serving skew: Redis + event gives the float32 rows training builds."""
    from training.cleaning import clean_loans
    from training.datasets import load_dataset_config, load_raw
    from training.generate import generate_loan_files

    config = load_dataset_config("generated")
    generate_loan_files(rows=13_000, seed=11, out_dir=tmp_path, show_progress=False)
    frame, _ = clean_loans(load_raw(tmp_path / "loans.csv", config), config)
    frame = frame.drop_duplicates("customer_id").head(10_000).reset_index(drop=True)
    assert len(frame) == 10_000

    encoder = FeatureEncoder(min_category_count=5).fit(frame)
    offline = encoder.transform(frame)

    submitted = [ts.to_pydatetime().replace(tzinfo=UTC) for ts in frame["issue_d"]]
    bureau = frame[["customer_id", *BUREAU_FIELDS]].copy()
    bureau["earliest_cr_line"] = bureau["earliest_cr_line"].dt.strftime("%Y-%m-%d")
    bureau["as_of"] = [moment.isoformat() for moment in submitted]
    client = sync_client(namespace.settings, "materializer")
    report = materialize_bureau_features(_bureau_csv(tmp_path / "parity.csv", bureau.to_dict("records")),
                                         client, key_prefix=namespace.settings.key_prefix)
    client.close()
    assert report.written == 10_000 and not report.malformed

    application_columns = list(APPLICANT_FIELDS)
    requests = [
        FeatureRequest(str(row["application_id"]), str(row["customer_id"]), moment,
                       {c: (None if pd.isna(row[c]) else row[c]) for c in application_columns})
        for row, moment in zip(frame.to_dict("records"), submitted, strict=True)
    ]
    metrics = FeatureStoreMetrics(CollectorRegistry())
    online = np.vstack([
        encoder.transform_records([item.record for item in
                                   _read(namespace.settings, requests[i:i + 500], metrics).features])
        for i in range(0, len(requests), 500)
    ])
    assert online.dtype == np.float32 and online.shape == offline.shape
    np.testing.assert_array_equal(online, offline)  # NaN in the same places, values bit-equal


def test_password_and_acl_user_are_used_and_wrong_credentials_are_a_clear_error(password_redis, tmp_path) -> None:
    base = Settings(redis_url=password_redis.url, key_prefix="")
    path = _bureau_csv(tmp_path / "b.csv", [_bureau_row("c1", "2026-11-01T00:00:00Z")])

    scorer = base.model_copy(update={"redis_username": "scorer", "redis_password": SecretStr("scorer-pw")})
    client = sync_client(scorer, "materializer")
    assert materialize_bureau_features(path, client).written == 1
    client.close()
    metrics = FeatureStoreMetrics(CollectorRegistry())
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    (found,) = _read(scorer, [_request("c1", moment)], metrics).features
    assert found.views_found

    default_user = base.model_copy(update={"redis_password": SecretStr("s3cret-default")})
    assert _read(default_user, [_request("c1", moment)], metrics).features[0].views_found

    wrong = base.model_copy(update={"redis_username": "scorer", "redis_password": SecretStr("nope")})
    with pytest.raises(FeatureStoreRefused, match="CREDITRISK_REDIS_PASSWORD") as error:
        _read(wrong, [_request("c1", moment)], metrics)
    assert "nope" not in str(error.value)


def test_redis_stopped_mid_test_gives_a_typed_error_quickly_then_recovers(private_redis, tmp_path) -> None:
    settings = Settings(redis_url=private_redis.url, redis_timeout_s=0.3)
    client = sync_client(settings, "materializer")
    materialize_bureau_features(_bureau_csv(tmp_path / "b.csv", [_bureau_row("c1", "2026-11-01T00:00:00Z")]),
                                client)
    client.close()
    registry = CollectorRegistry()
    metrics = FeatureStoreMetrics(registry)
    moment = datetime(2026, 11, 2, tzinfo=UTC)

    async def scenario() -> tuple[bool, float, bool]:
        aclient = async_client(settings, "worker")
        reader = OnlineFeatureReader(aclient, metrics=metrics)
        try:
            before = (await reader.read([_request("c1", moment)], serving=LENDING_CLUB_SERVING)).features[0].views_found
            private_redis.kill()
            started = time.monotonic()
            with pytest.raises(FeatureStoreUnavailable, match=r"could not be reached|did not answer"):
                await reader.read([_request("c1", moment)], serving=LENDING_CLUB_SERVING)
            waited = time.monotonic() - started
            private_redis.start()
            await private_redis_answers(aclient)
            after = (await reader.read([_request("c1", moment)], serving=LENDING_CLUB_SERVING)).features
            return before, waited, after[0].age_seconds["bureau"] is None
        finally:
            await aclient.aclose()

    found_before, waited, empty_after_restart = asyncio.run(scenario())
    assert found_before
    assert waited < 5.0, f"the worker waited {waited:.1f}s for a dead Redis"
    assert empty_after_restart  # a restarted Redis without persistence holds nothing: reported missing
    assert _counter(registry, "creditrisk_feature_store_errors_total", kind="connection") == 1


async def private_redis_answers(client: redis.asyncio.Redis) -> None:
    for _ in range(50):
        try:
            await client.ping()
            return
        except redis.RedisError:
            await asyncio.sleep(0.1)
    raise AssertionError("restarted Redis did not answer")


def test_tls_redis_is_used_with_the_configured_ca_and_refused_without_it(tls_redis, tmp_path) -> None:
    server, ca_file = tls_redis
    url = f"rediss://127.0.0.1:{server.port}/0"
    settings = Settings(redis_url=url, redis_tls_ca_cert=ca_file)
    client = sync_client(settings, "materializer")
    path = _bureau_csv(tmp_path / "b.csv", [_bureau_row("c1", "2026-11-01T00:00:00Z")])
    assert materialize_bureau_features(path, client).written == 1
    client.close()
    metrics = FeatureStoreMetrics(CollectorRegistry())
    moment = datetime(2026, 11, 2, tzinfo=UTC)
    assert _read(settings, [_request("c1", moment)], metrics).features[0].views_found

    untrusted = Settings(redis_url=url)  # the system CAs do not know the test CA
    with pytest.raises(FeatureStoreUnavailable, match="could not be reached"):
        _read(untrusted, [_request("c1", moment)], metrics)


def test_cli_materializes_a_lending_club_loan_file_keyed_by_member_id(namespace, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from config.settings import get_settings
    from features.materialize import _lending_club_chunk, _valid_rows
    from features.views import BUREAU_VIEW
    from training.generate import generate_loan_files

    generate_loan_files(rows=2_000, seed=5, out_dir=tmp_path, show_progress=False)
    loans = pd.read_csv(tmp_path / "loans.csv", dtype=str, keep_default_na=False)
    monkeypatch.setenv("CREDITRISK_KEY_PREFIX", namespace.key_prefix)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["features", "materialize", "--data", str(tmp_path / "loans.csv")])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"rows read: {len(loans):,}" in result.output
    assert "rows/s" in result.output

    client = redis_as(namespace.settings, "admin", decode_responses=True)
    keys = list(client.scan_iter(match=f"{namespace.key_prefix}fs:v1:bureau:*", count=1000))
    valid_rows = _valid_rows(_lending_club_chunk(loans), BUREAU_VIEW, Counter())
    assert {key.rsplit(":", 1)[1] for key in keys} == {row.customer_id for row in valid_rows}
    malformed = int(result.output.split("malformed (not written): ")[1].split()[0].replace(",", ""))
    assert malformed < len(loans) * 0.05
    sample = client.hgetall(keys[0])
    assert {"_event_ts", "_written_ts", "earliest_cr_line", "monthly_debt"} <= set(sample)
    client.close()
