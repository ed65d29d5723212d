"""Fairness by group of a scored frame (fairlearn's MetricFrame underneath): each figure equals
the one a reviewer computes by hand from the rows of the group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fairness.frames import GroupOutcomes, outcomes_by_group
from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from fairness.stats import GroupCount, adverse_impact_ratio

GENDER = MonitoredAttribute(name="gender", field="CODE_GENDER",
                            values={"F": "female", "M": "male"}, reference="male")
SPEC = MonitoringSpec((GENDER,), min_group_size=50)


def mean_gap(bad: np.ndarray, predicted: np.ndarray) -> float:
    """A stand-in calibration error: |mean PD − bad rate|."""
    return float(abs(predicted.mean() - bad.mean()))


def scored_frame(seed: int = 5) -> pd.DataFrame:
    """300 women approved less often than 200 men; 20 rows of no usable gender; a tenth of
    the loans still open (bad = NaN)."""
    rng = np.random.default_rng(seed)
    groups = ["female"] * 300 + ["male"] * 200 + ["XNA"] * 10 + [None] * 10
    predicted = rng.uniform(0.01, 0.4, len(groups))
    bad = (rng.uniform(size=len(groups)) < predicted).astype(float)
    bad[rng.uniform(size=len(groups)) < 0.1] = np.nan
    approved = predicted < np.where(np.array(groups, dtype=object) == "female", 0.15, 0.3)
    return pd.DataFrame({"gender": groups, "approved": approved,
                         "probability_of_default": predicted, "bad": bad})


def by_group(frame: pd.DataFrame, spec: MonitoringSpec = SPEC) -> dict[str, GroupOutcomes]:
    return {outcome.group: outcome for outcome in outcomes_by_group(frame, spec, mean_gap)}


def test_each_groups_figures_equal_the_hand_computation_on_its_rows() -> None:
    frame = scored_frame()
    outcomes = by_group(frame)
    assert list(outcomes) == ["female", "male", UNKNOWN]
    for group in ("female", "male"):
        rows = frame[frame["gender"] == group]
        matured = rows[rows["bad"].notna()]
        outcome = outcomes[group]
        figures = outcome.figures
        assert (figures.decisions, figures.approved) == (len(rows), int(rows["approved"].sum()))
        assert figures.approval_rate.value == pytest.approx(rows["approved"].mean())
        assert outcome.matured == len(matured)
        assert outcome.matured_bad == int(matured["bad"].sum())
        approved = matured[matured["approved"]]
        assert outcome.approved_bad_rate == pytest.approx(approved["bad"].mean())
        assert outcome.auc == pytest.approx(roc_auc_score(
            matured["bad"], matured["probability_of_default"]))
        assert outcome.calibration_error == pytest.approx(mean_gap(
            matured["bad"].to_numpy(), matured["probability_of_default"].to_numpy()))
        good = matured[matured["bad"] == 0]
        assert outcome.good_approval_rate == pytest.approx(good["approved"].mean())


def test_adverse_impact_and_the_equal_opportunity_gap_are_against_the_reference() -> None:
    frame = scored_frame()
    outcomes = by_group(frame)
    female, male = outcomes["female"], outcomes["male"]
    counts = {group: GroupCount(int((frame["gender"] == group).sum()),
                                int(frame.loc[frame["gender"] == group, "approved"].sum()))
              for group in ("female", "male")}
    expected = adverse_impact_ratio(counts["female"], counts["male"])
    assert female.figures.adverse_impact_ratio == expected
    assert female.equal_opportunity_gap == pytest.approx(
        female.good_approval_rate - male.good_approval_rate)
    assert female.equal_opportunity_gap < 0
    assert male.equal_opportunity_gap is None


def test_missing_and_undeclared_values_are_unknown_and_never_judged() -> None:
    unknown = by_group(scored_frame())[UNKNOWN]
    assert unknown.figures.decisions == 20 and not unknown.judged
    assert unknown.auc is None and unknown.approved_bad_rate is None


def test_a_group_below_the_minimum_shows_its_counts_only() -> None:
    frame = scored_frame()
    small = frame[(frame["gender"] != "female") | (frame.index < 30)]
    female = by_group(small)["female"]
    assert female.figures.decisions == 30 and not female.judged
    assert female.auc is None and female.equal_opportunity_gap is None
    assert female.to_dict()["approval_rate"] is None


def test_an_attribute_without_its_column_counts_every_row_unknown() -> None:
    frame = scored_frame().drop(columns="gender")
    assert [(o.group, o.figures.decisions) for o in outcomes_by_group(frame, SPEC, mean_gap)] \
        == [("female", 0), ("male", 0), (UNKNOWN, len(frame))]


def test_open_loans_count_for_decisions_but_not_for_outcomes() -> None:
    frame = scored_frame()
    frame["bad"] = np.nan
    male = by_group(frame)["male"]
    assert male.figures.decisions == 200 and male.matured == 0
    assert male.auc is None and male.good_approval_rate is None


def test_a_group_of_one_outcome_has_no_auc() -> None:
    frame = scored_frame()
    frame.loc[frame["gender"] == "male", "bad"] = 0.0
    male = by_group(frame)["male"]
    assert male.auc is None and male.approved_bad_rate == 0.0


def test_a_frame_without_the_decision_columns_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"\['bad'\]"):
        outcomes_by_group(scored_frame().drop(columns="bad"), SPEC, mean_gap)


def test_to_dict_is_json_ready() -> None:
    import json

    for outcome in outcomes_by_group(scored_frame(), SPEC, mean_gap):
        json.dumps(outcome.to_dict(), allow_nan=False)
