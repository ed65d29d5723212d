"""Key schema v2 (no server): one customer's keys share a Redis Cluster slot, so the read
script and the write script each run on one node; v1 stays as it was for the migration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from features.views import BUREAU_VIEW, VELOCITY_VIEW, entity_key_part, feature_key
from infra.stack.redis_acl import FEATURE_VIEWS, VELOCITY
from stream.decisions import decision_key, recent_decisions_key

# What a customer id may be once the event is validated (no ':' or whitespace, no braces).
CUSTOMER_IDS = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
                                     blacklist_characters=":{}"), min_size=1, max_size=40)
PREFIXES = st.sampled_from(["", "t1:", "tenant-a:", "bench:{x}:"])


def _slot(key: str) -> int:
    return key_slot(key.encode())


@given(customer=CUSTOMER_IDS, prefix=PREFIXES)
def test_a_customers_bureau_and_velocity_keys_share_a_slot(customer: str, prefix: str) -> None:
    bureau = feature_key(BUREAU_VIEW, customer, "v2", prefix)
    velocity = feature_key(VELOCITY_VIEW, customer, "v2", prefix)
    assert _slot(bureau) == _slot(velocity)


def test_v2_keys_are_readable_and_spread_customers_over_the_slots() -> None:
    assert feature_key(BUREAU_VIEW, "cust-42", "v2", "t1:") == "t1:fs:v2:bureau:{cust-42}"
    slots = {_slot(feature_key(BUREAU_VIEW, f"c{i}", "v2")) for i in range(1_000)}
    assert len(slots) > 900  # a hash tag per customer, not one for the whole store


def test_v1_keys_are_unchanged_so_a_store_can_migrate_beside_them() -> None:
    assert feature_key(BUREAU_VIEW, "cust-42", "v1") == "fs:v1:bureau:cust-42"
    assert feature_key(BUREAU_VIEW, "cust-42", "v1") != feature_key(BUREAU_VIEW, "cust-42", "v2")


@pytest.mark.parametrize("customer", ["}a", "a{b", "a}"])
def test_a_brace_that_would_break_the_hash_tag_is_refused_in_v2_only(customer: str) -> None:
    with pytest.raises(ValueError, match="hash tag"):
        feature_key(BUREAU_VIEW, customer, "v2")
    assert feature_key(BUREAU_VIEW, customer, "v1").endswith(customer)


def test_an_unknown_schema_version_names_the_setting() -> None:
    with pytest.raises(ValueError, match="CREDITRISK_FEATURE_SCHEMA_VERSION"):
        entity_key_part("c1", "v9")


@given(customer=CUSTOMER_IDS)
def test_the_worker_acl_patterns_match_v2_keys_and_only_the_velocity_one_is_writable(
        customer: str) -> None:
    from fnmatch import fnmatchcase

    bureau = feature_key(BUREAU_VIEW, customer, "v2", "t1:")
    velocity = feature_key(VELOCITY_VIEW, customer, "v2", "t1:")
    # Redis globs treat '[' specially as fnmatch does; braces are literal in both
    if "[" not in customer and "]" not in customer and "*" not in customer and "?" not in customer:
        assert fnmatchcase(bureau, FEATURE_VIEWS) and fnmatchcase(velocity, FEATURE_VIEWS)
        assert fnmatchcase(velocity, VELOCITY) and not fnmatchcase(bureau, VELOCITY)


def test_decision_records_spread_over_slots_and_the_recent_list_is_one_key() -> None:
    slots = {_slot(decision_key("t1:", f"app-{i}")) for i in range(200)}
    assert len(slots) > 150
    assert recent_decisions_key("t1:") == "t1:decisions:recent"
