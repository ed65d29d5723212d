"""Dataset configs load, validate with clear errors, and read real-file quirks."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.serving import ServingSpec
from training.datasets import (
    BUILT_IN_CONFIG_DIR,
    DatasetConfig,
    built_in_dataset_names,
    load_clean_labelled,
    load_dataset_config,
    load_raw,
)

PRICING = ("grade", "sub_grade", "int_rate", "installment")


def test_built_in_configs_load() -> None:
    assert {"generated", "lending_club", "home_credit"} <= set(built_in_dataset_names())
    lending_club = load_dataset_config("lending_club")
    assert lending_club.is_lending_club and lending_club.date_column == "issue_d"
    assert lending_club.pricing_columns == PRICING and not lending_club.allow_pricing
    assert {"recoveries", "total_rec_prncp", "last_pymnt_d", "out_prncp"} <= set(
        lending_club.leakage_columns)
    home_credit = load_dataset_config("home_credit")
    assert home_credit.feature_set == "generic" and home_credit.date_column is None
    assert home_credit.bad_values == ("1",) and home_credit.features["EXT_SOURCE_2"] == "numeric"


def test_generated_inherits_lending_club_through_base() -> None:
    generated, lending_club = load_dataset_config("generated"), load_dataset_config("lending_club")
    assert generated.name == "generated"
    assert generated.leakage_columns == lending_club.leakage_columns
    assert generated.bad_values == lending_club.bad_values


def test_documented_example_toml_loads() -> None:
    config = load_dataset_config(str(BUILT_IN_CONFIG_DIR / "example.toml"))
    assert config.name == "sme_book" and config.date_column == "applied_on"
    assert config.features == {"turnover": "numeric", "years_trading": "numeric",
                               "requested_amount": "numeric", "sector": "categorical",
                               "region": "categorical"}
    assert config.missing_values == {"years_trading": ("-1",)}
    assert config.leakage_columns == ("days_past_due", "collections_amount")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "book.toml"
    path.write_text(text)
    return str(path)


MINIMAL = """
id_column = "ref"
[target]
column = "status"
bad_values = ["bad"]
good_values = ["good"]
[features]
amount = "numeric"
"""


def test_a_minimal_user_toml_loads_with_defaults(tmp_path: Path) -> None:
    config = load_dataset_config(write(tmp_path, MINIMAL))
    assert config.name == "book" and config.feature_set == "generic"
    assert config.features == {"amount": "numeric"} and config.excluded_values == ()
    assert config.date_column is None and not config.allow_pricing


def test_a_user_toml_can_extend_a_built_in(tmp_path: Path) -> None:
    config = load_dataset_config(write(tmp_path, 'base = "lending_club"\nname = "lc_priced"\n'
                                                  "allow_pricing = true\n[cleaning]\ndti_max = 60\n"))
    assert config.allow_pricing and config.cleaning.dti_max == 60
    assert config.cleaning.annual_inc_max == 5_000_000


@pytest.mark.parametrize(("toml", "message"), [
    (MINIMAL.replace('"numeric"', '"text"'), "feature 'amount' has type 'text'"),
    (MINIMAL.replace('column = "status"', ""), r"missing \[target\] table"),
    (MINIMAL.replace('bad_values = ["bad"]', "bad_values = []"), "bad_values is empty"),
    (MINIMAL.replace('good_values = ["good"]', 'good_values = ["bad"]'), "more than one"),
    ('feature_set = "deep"\n' + MINIMAL, "feature_set 'deep' is unknown"),
    ('colour = "red"\n' + MINIMAL, r"unknown keys \['colour'\]"),
    (MINIMAL.replace("[features]\namount = \"numeric\"\n", ""), "needs a \\[features\\] table"),
    ('exclude_columns = ["amount"]\n' + MINIMAL, "listed in exclude_columns and also used"),
    ("id_column = ", "not valid TOML"),
])
def test_config_errors_name_the_problem(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_dataset_config(write(tmp_path, toml))


def test_unknown_config_name_lists_the_built_ins() -> None:
    with pytest.raises(FileNotFoundError, match="generated, home_credit, lending_club"):
        load_dataset_config("lendingclub")


def test_config_in_code_is_validated() -> None:
    with pytest.raises(ValueError, match="id_column"):
        DatasetConfig(name="x", id_column="", target_column="t", bad_values=("1",),
                      good_values=("0",), features={"a": "numeric"})


def test_known_at_application_is_read(tmp_path: Path) -> None:
    config = load_dataset_config(write(tmp_path, 'known_at_application = ["funded_amnt"]\n'
                                       + MINIMAL))
    assert config.known_at_application == ("funded_amnt",)


def test_excluded_columns_never_reach_the_frame(tmp_path: Path) -> None:
    (tmp_path / "book.csv").write_text("ref,status,amount,gender\nr1,good,100,F\nr2,bad,50,M\n")
    config = load_dataset_config(write(tmp_path, 'exclude_columns = ["gender"]\n' + MINIMAL))
    frame = load_raw(tmp_path / "book.csv", config)
    assert "gender" not in frame.columns and "amount" in frame.columns


LC_NOTICE_FILE = """Notes offered by Prospectus (https://www.lendingclub.com/info/prospectus.action)
"",id,member_id,loan_amnt,term,int_rate,installment,grade,sub_grade,emp_length,home_ownership,annual_inc,verification_status,issue_d,loan_status,purpose,addr_state,dti,delinq_2yrs,earliest_cr_line,inq_last_6mths,mths_since_last_delinq,open_acc,pub_rec,revol_bal,revol_util,total_acc,recoveries
0,1077501,1296599,5000, 36 months,10.65%,162.87,B,B2,10+ years,RENT,24000,Verified,Dec-11,Fully Paid,credit_card,AZ,27.65,0,Jan-85,1,,3,0,13648,83.7%,9,0
1,1077430,1314167,2500, 60 months,15.27%,59.83,C,C4,< 1 year,RENT,30000,Source Verified,Dec-11,Charged Off,car,GA,1,0,Apr-99,5,,3,0,1687,9.4%,4,117.08
2,1077175,1313524,2400, 36 months,15.96%,84.33,C,C5,10+ years,RENT,12252,Not Verified,Dec-11,Current,small_business,IL,8.72,0,Nov-01,2,,2,0,2956,98.5%,10,0

Total amount funded in policy code 1: 7900
"""


def test_published_lending_club_file_reads_cleans_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "LoanStats.csv"
    path.write_text(LC_NOTICE_FILE)
    config = load_dataset_config("lending_club")
    raw = load_raw(path, config)
    assert "id" in raw.columns and not any(c.startswith("Unnamed") for c in raw.columns)
    frame, cleaning, label = load_clean_labelled(path, config)
    assert frame["application_id"].tolist() == ["1077501", "1077430"]
    assert frame["bad"].tolist() == [0, 1]
    assert frame["int_rate"].tolist() == [10.65, 15.27]
    assert cleaning.dropped == {"blank_or_summary_line": 1}
    assert label.indeterminate == {"Current": 1}


def test_missing_file_and_wrong_id_column_are_clear_errors(tmp_path: Path) -> None:
    config = load_dataset_config("lending_club")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_raw(tmp_path / "nope.csv", config)
    path = tmp_path / "other.csv"
    path.write_text("ref,status\n1,good\n")
    with pytest.raises(ValueError, match="id column 'id'"):
        load_raw(path, config)


# ---- serving: what a dataset config tells the worker --------------------------------------

def test_lending_club_is_served_through_its_config() -> None:
    from features.serving import LENDING_CLUB_SERVING
    from features.views import BUREAU_VIEW

    for name in ("lending_club", "generated"):
        spec = load_dataset_config(name).serving_spec()
        assert spec.event_contract() == LENDING_CLUB_SERVING.event_contract()
        (view,) = spec.views
        assert (view.name, view.fields, view.max_age, view.ttl) == (
            BUREAU_VIEW.name, BUREAU_VIEW.fields, BUREAU_VIEW.max_age, BUREAU_VIEW.ttl)
        assert spec.date_field == "issue_d" and spec.similar_by == ("purpose",)


VIEWS_CONFIG = '''
name = "book"
id_column = "ref"
customer_id_column = "client"
[target]
column = "status"
bad_values = ["bad"]
good_values = ["good"]
[features]
income = { type = "numeric", description = "Low income", direction = "lower_is_riskier" }
segment = "categorical"
[missing_values]
income = ["-1"]
[serving]
similar_by = ["segment"]
free_text_fields = ["officer_note"]
[[views]]
name = "credits"
source = "credits.csv"
entity_column = "client"
max_age_days = 30
[views.aggregations]
OPEN_CREDITS = { column = "state", function = "count_value", value = "open" }
TOTAL_DEBT = { column = "debt", function = "sum" }
'''


def test_a_generic_config_declares_its_event_its_views_and_its_words(tmp_path: Path) -> None:
    path = tmp_path / "book.toml"
    path.write_text(VIEWS_CONFIG)
    config = load_dataset_config(path)
    spec = config.serving_spec()
    assert [(f.name, f.kind, f.check, f.missing_values) for f in spec.event_fields] == [
        ("income", "numeric", "number", ("-1",)), ("segment", "categorical", "category", ())]
    (view,) = spec.views
    assert view.field_names == ("OPEN_CREDITS", "TOTAL_DEBT") and view.max_age.days == 30
    assert config.model_features == {"income": "numeric", "segment": "categorical",
                                     "OPEN_CREDITS": "numeric", "TOTAL_DEBT": "numeric"}
    assert config.feature_descriptions == {"income": ("Low income", "lower_is_riskier")}
    assert spec.similar_by == ("segment",)
    assert spec.free_text_fields == ("officer_note",)  # allowed on the event, then dropped
    assert ServingSpec.from_section(spec.to_card(), config.feature_set) == spec


@pytest.mark.parametrize(("change", "complaint"), [
    (("customer_id_column = \"client\"\n", ""), "customer_id_column"),
    ((", value = \"open\" }", " }"), "count_value"),
    (("function = \"sum\"", "function = \"median\""), "median"),
    (("max_age_days = 30", "max_age_days = 30\nrefresh = \"daily\""), "refresh"),
    (("similar_by = [\"segment\"]", "similar_by = [\"region\"]"), "region"),
])
def test_a_bad_view_or_serving_table_is_explained(tmp_path: Path, change: tuple[str, str],
                                                  complaint: str) -> None:
    path = tmp_path / "book.toml"
    path.write_text(VIEWS_CONFIG.replace(*change))
    with pytest.raises(ValueError, match=complaint):
        load_dataset_config(path)


def test_home_credit_serves_its_bureau_view_with_plain_language_reasons() -> None:
    config = load_dataset_config("home_credit")
    assert config.customer_id_column == "SK_ID_CURR"
    (view,) = config.views
    assert view.name == "hc_bureau" and view.entity_column == "SK_ID_CURR"
    assert view.aggregations["BUREAU_ACTIVE_CREDITS"].value == "Active"
    spec = config.serving_spec()
    assert spec.similar_by == ("NAME_CONTRACT_TYPE", "NAME_INCOME_TYPE")
    assert "BUREAU_TOTAL_DEBT" not in spec.event_field_names  # read from Redis, not the event
    assert config.model_features["BUREAU_TOTAL_DEBT"] == "numeric"
    assert config.feature_descriptions["BUREAU_TOTAL_OVERDUE"] == (
        "Amount overdue at other lenders", "higher_is_riskier")
    assert config.feature_descriptions["EXT_SOURCE_2"][1] == "lower_is_riskier"
    assert not {"CODE_GENDER", "DAYS_BIRTH", "NAME_FAMILY_STATUS"} & set(config.model_features)


def test_an_aggregation_with_an_unknown_key_is_refused(tmp_path) -> None:
    path = tmp_path / "book.toml"
    path.write_text('id_column = "ref"\ncustomer_id_column = "cust"\n'
                    '[target]\ncolumn = "s"\nbad_values = ["1"]\ngood_values = ["0"]\n'
                    '[features]\namount = "numeric"\n'
                    '[[views]]\nname = "v"\nsource = "t.csv"\n'
                    '[views.aggregations]\nN = { column = "x", function = "count", colour = "red" }\n')
    with pytest.raises(ValueError, match="colour"):
        load_dataset_config(path)


def test_a_monitored_attribute_listed_as_a_feature_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "gendered.toml"
    path.write_text(
        'base = "home_credit"\nname = "gendered"\nexclude_columns = []\n'
        '[features]\nCODE_GENDER = "categorical"\n')
    with pytest.raises(ValueError, match=r"monitoring attribute 'gender' \(field 'CODE_GENDER'\)"):
        load_dataset_config(path)


def test_home_credit_monitors_gender_and_age_band_and_lending_club_nothing() -> None:
    home_credit = load_dataset_config("home_credit").monitoring
    assert [a.name for a in home_credit.attributes] == ["gender", "age_band"]
    assert home_credit.attributes[1].group_of(-40 * 365.25) == "35-44"
    lending_club = load_dataset_config("lending_club").monitoring
    assert lending_club.attributes == () and "no protected" in lending_club.note
