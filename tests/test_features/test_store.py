"""Feature-store encoding and key rules (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.definitions import BUREAU_FIELDS
from features.store import encode_column, format_timestamp, parse_timestamp
from features.views import BUREAU_VIEW, VELOCITY_VIEW, feature_key


def test_keys_are_versioned_readable_and_prefixed() -> None:
    assert feature_key(BUREAU_VIEW, "cust-42", "v1") == "fs:v1:bureau:cust-42"
    assert feature_key(VELOCITY_VIEW, "cust-42", "v1", prefix="t1:") == "t1:fs:v1:velocity:cust-42"
    assert feature_key(VELOCITY_VIEW, "cust-42", "v2", prefix="t1:") == "t1:fs:v2:velocity:{cust-42}"


@pytest.mark.parametrize("bad", ["", "a:b", "a b", "tab\there"])
def test_ids_that_would_break_the_key_layout_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="entity id"):
        feature_key(BUREAU_VIEW, bad, "v1")


def test_bureau_view_holds_every_bureau_field_with_limits() -> None:
    assert BUREAU_VIEW.field_names == BUREAU_FIELDS
    assert BUREAU_VIEW.max_age < BUREAU_VIEW.ttl
    nullable = [spec.name for spec in BUREAU_VIEW.fields if spec.nullable]
    assert nullable == ["mths_since_last_delinq"]


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, float("inf")])
def test_missing_values_are_not_stored(missing: object) -> None:
    assert encode_column(pd.Series([missing, 1.0]), "number") == [None, "1.0"]


def test_missing_dates_are_not_stored() -> None:
    assert encode_column(pd.Series([pd.NaT, pd.Timestamp("1998-01-01")]), "date") == [None, "1998-01-01"]


def test_values_are_stored_as_exact_text() -> None:
    assert encode_column(pd.Series([53.4]), "number") == ["53.4"]
    (text,) = encode_column(pd.Series([0.1 + 0.2]), "number")
    assert float(text) == 0.1 + 0.2
    assert encode_column(pd.Series([pd.Timestamp("1998-01-01")]), "date") == ["1998-01-01"]


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
       st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3000)))
def test_timestamps_compare_as_text_in_time_order(moment: datetime, step: timedelta) -> None:
    """The write-if-newer script compares _event_ts as text, so text order must be time order."""
    earlier = moment.replace(tzinfo=UTC)
    later = earlier + step
    assert format_timestamp(earlier) < format_timestamp(later)
    assert parse_timestamp(format_timestamp(earlier)) == earlier


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2024, 1, 1))


def test_an_aggregated_view_has_one_row_per_entity_with_each_aggregate() -> None:
    import pandas as pd

    from features.views import Aggregation, FeatureView, FieldSpec, aggregate_view

    view = FeatureView("credits", "customer_id",
                       tuple(FieldSpec(n) for n in ("N", "OPEN", "DEBT", "WORST")),
                       max_age=timedelta(days=30), ttl=timedelta(days=60), entity_column="client",
                       aggregations={"N": Aggregation("id", "count"),
                                     "OPEN": Aggregation("state", "count_value", "open"),
                                     "DEBT": Aggregation("debt", "sum"),
                                     "WORST": Aggregation("overdue", "max")})
    table = pd.DataFrame({"client": [1, 1, 2, 3], "id": [10, 11, 12, 13],
                          "state": ["open", "closed", " open", "closed"],
                          "debt": ["100.5", "", "7", "x"], "overdue": [0, 30, None, 5]})
    values = aggregate_view(table, view)
    assert values.loc["1"].tolist() == [2.0, 1.0, 100.5, 30.0]
    assert values.loc["2"].tolist()[:3] == [1.0, 1.0, 7.0] and pd.isna(values.loc["2", "WORST"])
    assert values.loc["3", "DEBT"] == 0.0  # nothing readable to add: sum of no values
