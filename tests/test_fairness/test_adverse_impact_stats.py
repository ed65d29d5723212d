"""Approval rate, adverse impact ratio and parity difference with their intervals, against
published worked examples and hand computations: a fair-lending reviewer must be able to
recompute every figure the report, the dashboards and the back-test show."""

from __future__ import annotations

import math

import pytest

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from fairness.stats import (
    GroupCount,
    adverse_impact_ratio,
    attribute_figures,
    parity_difference,
    spec_figures,
    wilson_interval,
    z_value,
)

GENDER = MonitoredAttribute(name="gender", field="CODE_GENDER",
                            values={"F": "female", "M": "male"}, reference="male")


def test_z_of_the_usual_confidence_levels() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_value(0.90) == pytest.approx(1.644854, abs=1e-6)


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in
# Medicine 17:857-872, Table I, method 3 (Wilson score, no continuity correction).
@pytest.mark.parametrize(("successes", "count", "low", "high"), [
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718)])
def test_wilson_interval_matches_newcombes_published_examples(
        successes: int, count: int, low: float, high: float) -> None:
    interval = wilson_interval(successes, count)
    assert interval is not None
    assert interval.value == pytest.approx(successes / count)
    assert (interval.low, interval.high) == (pytest.approx(low, abs=5e-5),
                                             pytest.approx(high, abs=5e-5))


def test_wilson_interval_by_hand_and_at_the_edges() -> None:
    # 30 of 100, z = 1.96: centre (0.3 + 1.96²/200) / (1 + 1.96²/100); half-width
    # 1.96·sqrt(0.3·0.7/100 + 1.96²/40000) / (1 + 1.96²/100).
    z = z_value(0.95)
    centre = (0.3 + z * z / 200) / (1 + z * z / 100)
    half = z * math.sqrt(0.21 / 100 + z * z / 40_000) / (1 + z * z / 100)
    interval = wilson_interval(30, 100)
    assert interval is not None
    assert (interval.low, interval.high) == (pytest.approx(centre - half),
                                             pytest.approx(centre + half))
    everyone = wilson_interval(20, 20)
    assert everyone is not None and everyone.high == 1.0 and everyone.low < 1.0
    assert wilson_interval(0, 0) is None


def test_wilson_interval_narrows_with_more_decisions_and_widens_with_confidence() -> None:
    small, large = wilson_interval(30, 100), wilson_interval(300, 1000)
    wide = wilson_interval(30, 100, confidence=0.99)
    assert small and large and wide
    assert large.high - large.low < small.high - small.low < wide.high - wide.low


def test_adverse_impact_ratio_katz_interval_by_hand() -> None:
    # 30/100 approved against 60/100: ratio 0.5; log standard error
    # sqrt(1/30 − 1/100 + 1/60 − 1/100) = sqrt(0.03); interval 0.5·exp(±1.96·sqrt(0.03)).
    interval = adverse_impact_ratio(GroupCount(100, 30), GroupCount(100, 60))
    assert interval is not None
    spread = z_value(0.95) * math.sqrt(0.03)
    assert interval.value == pytest.approx(0.5)
    assert interval.low == pytest.approx(0.5 * math.exp(-spread))     # 0.3561
    assert interval.high == pytest.approx(0.5 * math.exp(spread))     # 0.7021
    assert interval.text() == "0.500 [0.356, 0.702]"


def test_adverse_impact_ratio_with_an_empty_cell_adds_a_half_everywhere() -> None:
    # Nobody in the group approved: ratio 0, interval from (0.5/101) / (60.5/101).
    interval = adverse_impact_ratio(GroupCount(100, 0), GroupCount(100, 60))
    assert interval is not None and interval.value == 0.0
    centre = math.log(0.5 / 60.5)
    spread = z_value(0.95) * math.sqrt(1 / 0.5 - 1 / 101 + 1 / 60.5 - 1 / 101)
    assert interval.low == pytest.approx(math.exp(centre - spread))
    assert interval.high == pytest.approx(math.exp(centre + spread))
    assert math.isfinite(interval.high) and interval.high < 0.8


def test_adverse_impact_ratio_has_no_meaning_without_a_reference_approval() -> None:
    assert adverse_impact_ratio(GroupCount(100, 30), GroupCount(100, 0)) is None
    assert adverse_impact_ratio(GroupCount(0, 0), GroupCount(100, 60)) is None
    assert adverse_impact_ratio(GroupCount(100, 30), GroupCount(0, 0)) is None


# Newcombe (1998), "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Statistics in Medicine 17:873-890, Table II, method 10.
@pytest.mark.parametrize(("group", "reference", "low", "high"), [
    (GroupCount(70, 56), GroupCount(80, 48), 0.0524, 0.3339),
    (GroupCount(10, 9), GroupCount(10, 3), 0.1705, 0.8090),
    (GroupCount(7, 6), GroupCount(7, 2), 0.0582, 0.8062),
    (GroupCount(56, 5), GroupCount(29, 0), -0.0381, 0.1926),
    (GroupCount(10, 0), GroupCount(20, 0), -0.1611, 0.2775),
    (GroupCount(10, 0), GroupCount(10, 0), -0.2775, 0.2775),
    (GroupCount(10, 10), GroupCount(20, 0), 0.6791, 1.0),
    (GroupCount(10, 10), GroupCount(10, 0), 0.6075, 1.0),
])
def test_parity_difference_matches_newcombes_published_hybrid_score_intervals(
        group: GroupCount, reference: GroupCount, low: float, high: float) -> None:
    interval = parity_difference(group, reference)
    assert interval is not None
    assert interval.value == pytest.approx(group.approved / group.decisions
                                           - reference.approved / reference.decisions)
    assert (interval.low, interval.high) == (pytest.approx(low, abs=5e-5),
                                             pytest.approx(high, abs=5e-5))


def test_parity_difference_needs_decisions_on_both_sides() -> None:
    assert parity_difference(GroupCount(0, 0), GroupCount(10, 3)) is None


def test_a_count_cannot_approve_more_than_it_decided() -> None:
    with pytest.raises(ValueError, match="approved"):
        GroupCount(10, 11)


# -- figures of an attribute ---------------------------------------------------------------
def test_groups_below_the_minimum_are_counted_but_not_judged() -> None:
    figures = {figure.group: figure for figure in attribute_figures(
        GENDER, {"female": GroupCount(99, 30), "male": GroupCount(400, 240),
                 UNKNOWN: GroupCount(500, 100)}, min_group_size=100)}
    assert list(figures) == ["female", "male", UNKNOWN]
    female, male, unknown = figures["female"], figures["male"], figures[UNKNOWN]
    assert (female.decisions, female.approved, female.judged) == (99, 30, False)
    assert female.approval_rate is None and female.adverse_impact_ratio is None
    assert male.judged and male.is_reference and male.approval_rate is not None
    assert not unknown.judged and unknown.decisions == 500


def test_nothing_is_judged_while_the_reference_is_below_the_minimum() -> None:
    figures = attribute_figures(GENDER, {"female": GroupCount(5_000, 1_000),
                                         "male": GroupCount(50, 40)}, min_group_size=100)
    assert not any(figure.judged for figure in figures)
    assert not any(figure.adverse_impact_below(0.8) for figure in figures)


def test_the_four_fifths_test_reads_the_upper_bound() -> None:
    skewed = {figure.group: figure for figure in attribute_figures(
        GENDER, {"female": GroupCount(1_000, 300), "male": GroupCount(1_000, 600)}, 100)}
    assert skewed["female"].adverse_impact_below(0.8)          # 0.5 [0.45, 0.56]
    # 0.75 in the estimate but too few decisions to rule out 0.8: not flagged.
    uncertain = {figure.group: figure for figure in attribute_figures(
        GENDER, {"female": GroupCount(100, 45), "male": GroupCount(100, 60)}, 100)}
    female = uncertain["female"]
    assert female.adverse_impact_ratio is not None
    assert female.adverse_impact_ratio.value == pytest.approx(0.75)
    assert female.adverse_impact_ratio.high >= 0.8 and not female.adverse_impact_below(0.8)


def test_declared_groups_without_decisions_count_zero_and_unknown_only_when_seen() -> None:
    figures = attribute_figures(GENDER, {"male": GroupCount(200, 100)}, 100)
    assert [(figure.group, figure.decisions, figure.judged) for figure in figures] == [
        ("female", 0, False), ("male", 200, True)]


def test_spec_figures_cover_every_attribute_of_the_spec() -> None:
    age = MonitoredAttribute(name="age_band", field="age", bands=(18, 40), reference="18-39")
    spec = MonitoringSpec((GENDER, age), min_group_size=10)
    figures = spec_figures(spec, {"gender": {"female": GroupCount(20, 10),
                                             "male": GroupCount(20, 15)}})
    assert [(figure.attribute, figure.group) for figure in figures] == [
        ("gender", "female"), ("gender", "male"), ("age_band", "18-39"), ("age_band", "40+")]
