"""The leakage guard refuses post-origination columns, and prices unless allowed."""

from __future__ import annotations

import pytest

from features.definitions import FeatureEncoder
from training.datasets import load_dataset_config
from training.leakage import LeakageError, LeakagePolicy, check_features, leakage_alarm


def _policy(name: str = "generated", **changes) -> LeakagePolicy:
    from dataclasses import replace

    return LeakagePolicy.from_config(replace(load_dataset_config(name), **changes))


def test_recoveries_as_a_feature_fails_naming_the_column():
    specs = FeatureEncoder("lending_club", {"recoveries": "numeric"}).specs()
    with pytest.raises(LeakageError) as error:
        check_features(specs, _policy())
    assert error.value.column == "recoveries"
    assert "'recoveries'" in str(error.value) and "post-origination" in str(error.value)


@pytest.mark.parametrize("column", ["total_rec_prncp", "last_pymnt_d", "out_prncp",
                                    "hardship_flag", "debt_settlement_flag", "loan_status"])
def test_post_origination_columns_are_refused_even_if_the_config_forgets_them(column):
    specs = FeatureEncoder("generic", {column: "numeric"}).specs()
    with pytest.raises(LeakageError, match=column):
        check_features(specs, _policy("home_credit"))


def test_pricing_columns_need_allow_pricing():
    refused = FeatureEncoder("lending_club", allow_pricing=True).specs()
    with pytest.raises(LeakageError, match="allow_pricing"):
        check_features(refused, _policy(allow_pricing=False))
    check_features(refused, _policy(allow_pricing=True))


def test_the_shared_feature_set_passes():
    check_features(FeatureEncoder("lending_club").specs(), _policy())


def test_high_auc_on_lending_club_data_raises_the_alarm():
    assert "LEAKAGE ALARM" in leakage_alarm(0.93, lending_club_shaped=True)
    assert leakage_alarm(0.70, lending_club_shaped=True) is None
    assert leakage_alarm(0.93, lending_club_shaped=False) is None


def test_a_post_origination_column_declared_known_at_application_is_allowed():
    specs = FeatureEncoder("generic", {"funded_amnt": "numeric", "annual_inc": "numeric"}).specs()
    with pytest.raises(LeakageError, match='known_at_application = \\["funded_amnt"\\]'):
        check_features(specs, _policy("home_credit"))
    check_features(specs, _policy("home_credit", known_at_application=("funded_amnt",)))
    # A config built on lending_club inherits its leakage_columns; the declaration wins.
    lending_club_specs = FeatureEncoder("lending_club", {"funded_amnt": "numeric"}).specs()
    check_features(lending_club_specs, _policy(known_at_application=("funded_amnt",)))


def test_the_outcome_is_refused_even_when_declared_known():
    specs = FeatureEncoder("generic", {"loan_status": "categorical"}).specs()
    with pytest.raises(LeakageError, match="post-origination") as error:
        check_features(specs, _policy("home_credit", known_at_application=("loan_status",)))
    assert "known_at_application" not in str(error.value)
