"""The training report's fairness section on a generated Home Credit file: groups come from the
raw monitored columns kept beside the rows, every figure is the rows' own, a group too small
is shown by its count only, and adverse impact at the upper bound is flagged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from training.datasets import DatasetConfig, load_clean_labelled, load_dataset_config
from training.fairness_report import (
    approval_rate_by_group,
    fairness_on_rows,
    fairness_section_html,
    write_fairness_plot,
)

DAYS_PER_YEAR = 365.25


@pytest.fixture(scope="module")
def home_credit() -> DatasetConfig:
    return load_dataset_config("home_credit")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory, home_credit: DatasetConfig) -> pd.DataFrame:
    """Cleaned, labelled Home Credit rows with their monitored columns, as training holds them."""
    from training.generate_home_credit import generate_home_credit_files

    folder = tmp_path_factory.mktemp("home_credit")
    generate_home_credit_files(rows=2_000, seed=11, out_dir=folder, show_progress=False)
    frame, _cleaning, _labels = load_clean_labelled(folder / "application_train.csv", home_credit)
    return frame


def skewed_decisions(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """PDs with women's pushed up, approval below 0.1: women approved markedly less often."""
    rng = np.random.default_rng(4)
    female = (rows["CODE_GENDER"] == "F").to_numpy()
    probabilities = np.clip(rng.beta(2, 20, len(rows)) + 0.05 * female, 0, 1)
    return probabilities, probabilities < 0.1


def entry_for(rows: pd.DataFrame, spec: MonitoringSpec) -> dict:
    probabilities, approved = skewed_decisions(rows)
    return fairness_on_rows(rows, probabilities, approved, rows["bad"].to_numpy(), spec, None)


def groups(entry: dict, attribute: str) -> dict[str, dict]:
    (found,) = [item for item in entry["attributes"] if item["name"] == attribute]
    return {group["group"]: group for group in found["groups"]}


def test_home_credit_lists_gender_and_age_band_as_monitored_not_used(
        rows: pd.DataFrame, home_credit: DatasetConfig) -> None:
    entry = entry_for(rows, home_credit.monitoring)
    assert entry["monitored_not_used"] == "gender (CODE_GENDER), age band (DAYS_BIRTH)"
    assert [item["name"] for item in entry["attributes"]] == ["gender", "age_band"]
    assert entry["spec"] == home_credit.monitoring.to_card()
    assert f"{len(rows):,} rows of the test set" in entry["rows"]
    json.dumps(entry, allow_nan=False)   # the model card is plain JSON


def test_group_counts_and_rates_are_those_of_the_raw_columns(
        rows: pd.DataFrame, home_credit: DatasetConfig) -> None:
    _probabilities, approved = skewed_decisions(rows)
    entry = entry_for(rows, home_credit.monitoring)
    gender = groups(entry, "gender")
    for code, group in (("F", "female"), ("M", "male")):
        mine = (rows["CODE_GENDER"] == code).to_numpy()
        assert gender[group]["decisions"] == int(mine.sum())
        assert gender[group]["approved"] == int(approved[mine].sum())
        assert gender[group]["approval_rate"][0] == pytest.approx(approved[mine].mean())
    years = -rows["DAYS_BIRTH"].to_numpy() / DAYS_PER_YEAR
    in_reference = (years >= 35) & (years < 45)
    assert groups(entry, "age_band")["35-44"]["decisions"] == int(in_reference.sum())


def test_the_skewed_group_is_flagged_and_the_reference_has_no_ratio_to_itself(
        rows: pd.DataFrame, home_credit: DatasetConfig) -> None:
    entry = entry_for(rows, home_credit.monitoring)
    (gender,) = [item for item in entry["attributes"] if item["name"] == "gender"]
    assert gender["adverse_impact_flagged"] == ["female"]
    female, male = groups(entry, "gender")["female"], groups(entry, "gender")["male"]
    assert female["adverse_impact_ratio"][2] < 0.8
    assert male["adverse_impact_ratio"] is None and male["parity_difference"] is None
    assert female["auc"] is not None and female["calibration_error"] is not None
    assert female["equal_opportunity_gap"] == pytest.approx(
        female["good_approval_rate"] - male["good_approval_rate"])


def test_missing_or_impossible_values_are_counted_unknown(
        rows: pd.DataFrame, home_credit: DatasetConfig) -> None:
    broken = rows.copy()
    broken["CODE_GENDER"] = broken["CODE_GENDER"].astype(object)
    broken.loc[broken.index[:30], "CODE_GENDER"] = "XNA"
    broken.loc[broken.index[30:40], "CODE_GENDER"] = None
    broken["DAYS_BIRTH"] = broken["DAYS_BIRTH"].astype(float)
    broken.loc[broken.index[:25], "DAYS_BIRTH"] = np.nan
    broken.loc[broken.index[25:30], "DAYS_BIRTH"] = 400.0   # born in the future
    entry = entry_for(broken, home_credit.monitoring)
    (gender, age) = entry["attributes"]
    assert groups(entry, "gender")[UNKNOWN]["decisions"] == gender["unknown"] == 40
    assert not groups(entry, "gender")[UNKNOWN]["judged"]
    assert age["unknown"] == 30 and age["unknown_share"] == pytest.approx(30 / len(rows))


def test_a_dataset_without_protected_characteristics_says_so() -> None:
    spec = load_dataset_config("lending_club").monitoring
    entry = fairness_on_rows(pd.DataFrame({"x": [1, 2]}), np.array([0.1, 0.2]),
                             np.array([True, False]), np.array([0, 1]), spec, "issue_d")
    assert entry["attributes"] == [] and entry["monitored_not_used"] == ""
    assert "no protected characteristics" in entry["note"]
    section = fairness_section_html({"fairness": entry})
    assert "<h2>Fairness</h2>" in section and "no protected characteristics" in section
    assert write_fairness_plot(Path("/nonexistent"), entry) is None


def test_birth_dates_are_aged_on_each_rows_application_date() -> None:
    owner = MonitoredAttribute(name="owner_age_band", field="owner_birth_date",
                               source="birth_date", bands=(18, 30, 45), reference="30-44")
    spec = MonitoringSpec((owner,), min_group_size=1)
    rows = pd.DataFrame({"owner_birth_date": ["1990-03-01", "1990-03-01", "bad", None],
                         "applied_on": [datetime(2020, 2, 28, tzinfo=UTC),
                                        datetime(2020, 3, 1, tzinfo=UTC), "2020-01-01",
                                        "2020-01-01"]})
    entry = fairness_on_rows(rows, np.full(4, 0.1), np.ones(4, bool), np.zeros(4), spec,
                             "applied_on")
    counts = {name: group["decisions"] for name, group in groups(entry, "owner_age_band").items()}
    assert counts == {"18-29": 1, "30-44": 1, "45+": 0, UNKNOWN: 2}
    # Without the date column nobody can be aged.
    undated = fairness_on_rows(rows, np.full(4, 0.1), np.ones(4, bool), np.zeros(4), spec, None)
    assert groups(undated, "owner_age_band")[UNKNOWN]["decisions"] == 4


def test_the_section_shows_small_groups_by_count_and_flags_adverse_impact(
        rows: pd.DataFrame, home_credit: DatasetConfig) -> None:
    entry = entry_for(rows, home_credit.monitoring)
    html = fairness_section_html({"fairness": entry})
    assert "Fairness (monitored, not used: gender (CODE_GENDER), age band (DAYS_BIRTH))" in html
    assert 'class="warning"' in html and "group female" in html and "(below 0.8)" in html
    small = [group for group in groups(entry, "age_band").values() if not group["judged"]]
    assert small, "the generated ages leave at least one band below 100 rows"
    for group in small:
        assert (f'<tr class="not-judged"><td>{group["group"]}</td>'
                f'<td>{group["decisions"]:,}</td>') in html
    assert html.count("not judged: fewer than 100 rows") == len(small)


def test_a_card_from_before_fairness_monitoring_says_it_has_no_figures() -> None:
    assert "no fairness figures" in fairness_section_html({"version": "old"})


def test_the_plot_is_written_as_a_png(rows: pd.DataFrame, home_credit: DatasetConfig,
                                      tmp_path: Path) -> None:
    entry = entry_for(rows, home_credit.monitoring)
    path = write_fairness_plot(tmp_path, entry)
    assert path is not None and path.name == "fairness_approval_rate.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    figure = approval_rate_by_group(entry)
    assert len(figure.axes) == 2


def test_rows_and_arrays_of_different_lengths_are_refused(home_credit: DatasetConfig) -> None:
    with pytest.raises(ValueError, match="same rows"):
        fairness_on_rows(pd.DataFrame({"CODE_GENDER": ["F"]}), np.array([0.1, 0.2]),
                         np.array([True]), np.array([0]), home_credit.monitoring, None)
