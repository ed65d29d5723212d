"""The online reader on values someone wrote to Redis by hand: junk is read as missing, counted,
and never stops the read (a fake client answers the one pipelined round trip)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from features.metrics import FeatureStoreMetrics
from features.online import FeatureRequest, OnlineFeatureReader
from features.serving import LENDING_CLUB_SERVING

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FRESH = "2026-11-01T00:00:00.000000Z"


class FakePipeline:
    def __init__(self, hashes: dict[str, dict[str, str]]) -> None:
        self.hashes = hashes
        self.calls: list[str] = []

    def execute_command(self, command: str, _sha: str, _keys: int, velocity_key: str,
                        *_args: Any) -> None:
        assert command == "EVALSHA"
        self.calls.append(velocity_key)

    async def execute(self) -> list[Any]:
        replies = []
        for key in self.calls:
            stored = self.hashes.get(key.rsplit(":", 1)[1], {})
            flat = [item.encode() for pair in stored.items() for item in pair]
            replies.append([flat, [0, 0]])
        return replies


class FakeRedis:
    def __init__(self, hashes: dict[str, dict[str, str]]) -> None:
        self.hashes = hashes

    async def script_load(self, _script: str) -> str:
        return "sha"

    def pipeline(self, transaction: bool = False) -> FakePipeline:
        return FakePipeline(self.hashes)


def read(hashes: dict[str, dict[str, str]], *customers: str) -> tuple[Any, CollectorRegistry]:
    registry = CollectorRegistry()
    reader = OnlineFeatureReader(FakeRedis(hashes), metrics=FeatureStoreMetrics(registry))
    requests = [FeatureRequest(f"a-{c}", c, NOW, {"loan_amnt": 1000.0}) for c in customers]
    return asyncio.run(reader.read(requests, serving=LENDING_CLUB_SERVING)), registry


def bureau(**values: str) -> dict[str, str]:
    base = {"_event_ts": FRESH, "_written_ts": FRESH, "earliest_cr_line": "2001-05-01",
            "delinq_2yrs": "0.0", "inq_last_6mths": "1.0", "open_acc": "5.0", "total_acc": "9.0",
            "pub_rec": "0.0", "revol_bal": "1200.0", "revol_util": "35.5", "monthly_debt": "400.0"}
    return {**base, **values}


def test_a_corrupt_number_is_read_as_missing_counted_and_the_rest_is_kept() -> None:
    batch, registry = read({"bad": bureau(delinq_2yrs="not-a-number"), "good": bureau()},
                           "bad", "good")
    bad, good = batch.features
    assert bad.corrupt == ["delinq_2yrs"] and "delinq_2yrs" not in bad.record
    assert bad.record["open_acc"] == 5.0
    assert bad.incomplete and "delinq_2yrs" in bad.unavailable
    assert good.corrupt == [] and not good.incomplete and good.record["delinq_2yrs"] == 0.0
    assert registry.get_sample_value("creditrisk_feature_store_corrupt_values_total",
                                     {"view": "bureau", "feature": "delinq_2yrs"}) == 1


def test_infinite_numbers_and_unreadable_dates_are_corrupt_too() -> None:
    batch, _ = read({"c": bureau(revol_util="inf", earliest_cr_line="May-2001")}, "c")
    assert sorted(batch.features[0].corrupt) == ["earliest_cr_line", "revol_util"]


def test_a_hash_without_a_readable_event_time_is_treated_as_no_bureau_data() -> None:
    batch, registry = read({"c": bureau(_event_ts="yesterday")}, "c")
    (item,) = batch.features
    assert not item.views_found and item.incomplete
    assert item.corrupt == ["_event_ts"]
    assert registry.get_sample_value("creditrisk_feature_store_corrupt_values_total",
                                     {"view": "bureau", "feature": "_event_ts"}) == 1
