"""The stream's fairness windows and gauges (stream.fairness): what an operator reads on
/metrics — approval rate, adverse impact ratio and parity by group over 1 h and 24 h, only for
groups large enough to judge, never an applicant's value in a label."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fairness.spec import UNKNOWN, MonitoredAttribute, MonitoringSpec
from fairness.stats import GroupCount, attribute_figures
from stream.fairness import FairnessMonitor
from stream.metrics import WorkerMetrics

GENDER = MonitoredAttribute(name="gender", field="CODE_GENDER", reference="male",
                            values={"F": "female", "M": "male"})
AGE = MonitoredAttribute(name="age_band", field="DAYS_BIRTH", reference="35-44",
                         bands=(18, 25, 35, 45, 55, 65), source="days_relative")
SPEC = MonitoringSpec((GENDER, AGE), min_group_size=20)


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Rig:
    def __init__(self, spec: MonitoringSpec = SPEC) -> None:
        self.registry = CollectorRegistry()
        self.metrics = WorkerMetrics(self.registry)
        self.clock = Clock()
        self.monitor = FairnessMonitor(self.metrics, spec, clock=self.clock)

    def decide(self, count: int, outcome: str, **groups: str) -> None:
        self.monitor.observe([(groups, outcome)] * count)

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def air(self, group: str, bound: str = "high", window: str = "1h",
            attribute: str = "gender") -> float | None:
        return self.value("creditrisk_fairness_adverse_impact_ratio", attribute=attribute,
                          group=group, window=window, bound=bound)

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(sample.labels) for family in self.registry.collect()
                for sample in family.samples if sample.name == name]

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def skewed(rig: Rig, female: int = 40, male: int = 40) -> None:
    """Women approved one time in four, men three times in four."""
    rig.decide(female // 4, "approve", gender="female", age_band="25-34")
    rig.decide(female - female // 4, "decline", gender="female", age_band="25-34")
    rig.decide(male * 3 // 4, "approve", gender="male", age_band="35-44")
    rig.decide(male - male * 3 // 4, "review", gender="male", age_band="35-44")


def test_a_skewed_window_shows_the_adverse_impact_with_its_interval() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.publish()
    expected = attribute_figures(GENDER, {"female": GroupCount(40, 10), "male": GroupCount(40, 30)},
                                 20)[0]
    assert expected.adverse_impact_ratio is not None and expected.parity_difference is not None
    for window in ("1h", "24h"):
        assert rig.air("female", "estimate", window) == pytest.approx(1 / 3)
        assert rig.air("female", "high", window) == pytest.approx(expected.adverse_impact_ratio.high)
        assert rig.air("female", "low", window) == pytest.approx(expected.adverse_impact_ratio.low)
        assert (rig.air("female", "high", window) or 1.0) < 0.8  # the alert condition
        assert rig.value("creditrisk_fairness_parity_difference", attribute="gender",
                         group="female", window=window, bound="estimate") == pytest.approx(-0.5)
        assert rig.value("creditrisk_fairness_approval_rate", attribute="gender", group="male",
                         window=window, bound="estimate") == pytest.approx(0.75)
        assert rig.value("creditrisk_fairness_group_decisions", attribute="gender",
                         group="female", window=window) == 40
    assert rig.value("creditrisk_fairness_decisions_total", attribute="gender", group="female",
                     decision="decline") == 30
    assert rig.value("creditrisk_fairness_min_group_size") == 20


def test_the_reference_group_has_an_approval_rate_but_no_ratio_of_its_own() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.publish()
    assert rig.air("male", "estimate") is None
    assert rig.value("creditrisk_fairness_parity_difference", attribute="gender", group="male",
                     window="1h", bound="estimate") is None
    assert rig.value("creditrisk_fairness_approval_rate", attribute="gender", group="male",
                     window="1h", bound="high") is not None


def test_groups_below_the_minimum_size_are_counted_but_not_judged() -> None:
    rig = Rig()
    skewed(rig, female=19, male=40)  # one woman short of the minimum
    rig.monitor.publish()
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group="female",
                     window="1h") == 19
    assert rig.series("creditrisk_fairness_adverse_impact_ratio") == []
    assert not [labels for labels in rig.series("creditrisk_fairness_approval_rate")
                if labels["group"] == "female"]
    rig.decide(1, "decline", gender="female", age_band="25-34")
    rig.monitor.publish()
    assert rig.air("female") is not None


def test_a_small_reference_group_means_nobody_is_judged_against_it() -> None:
    rig = Rig()
    skewed(rig, female=40, male=19)
    rig.monitor.publish()
    assert rig.series("creditrisk_fairness_adverse_impact_ratio") == []
    assert rig.series("creditrisk_fairness_approval_rate") == []


def test_decisions_roll_out_of_the_hour_but_stay_in_the_day() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.publish()
    assert rig.air("female", window="1h") is not None
    rig.clock.advance(59 * 60)
    rig.monitor.publish()
    assert rig.air("female", window="1h") is not None  # still inside the last hour
    rig.clock.advance(2 * 60)
    rig.monitor.publish()
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group="female",
                     window="1h") == 0
    assert rig.air("female", window="1h") is None  # the series is gone, not left stale
    assert rig.value("creditrisk_fairness_approval_rate", attribute="gender", group="male",
                     window="1h", bound="estimate") is None
    assert rig.air("female", "estimate", "24h") == pytest.approx(1 / 3)
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group="female",
                     window="24h") == 40
    rig.clock.advance(23 * 3600)
    rig.monitor.publish()
    assert rig.series("creditrisk_fairness_adverse_impact_ratio") == []
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group="female",
                     window="24h") == 0
    # The counter is not a window: it keeps every decision ever counted.
    assert rig.value("creditrisk_fairness_decisions_total", attribute="gender", group="female",
                     decision="decline") == 30


def test_new_decisions_after_the_old_ones_left_are_judged_on_their_own() -> None:
    rig = Rig()
    skewed(rig)
    rig.clock.advance(2 * 3600)
    rig.decide(40, "approve", gender="female", age_band="25-34")
    rig.decide(40, "approve", gender="male", age_band="35-44")
    rig.monitor.publish()
    assert rig.air("female", "estimate", "1h") == pytest.approx(1.0)
    assert rig.air("female", "estimate", "24h") == pytest.approx((50 / 80) / (70 / 80))


def test_every_declared_group_and_unknown_has_a_count_from_the_start() -> None:
    rig = Rig()
    rig.monitor.publish()
    groups = {(labels["attribute"], labels["group"], labels["window"])
              for labels in rig.series("creditrisk_fairness_group_decisions")}
    expected = {(attribute.name, group, window) for attribute in SPEC.attributes
                for group in (*attribute.groups, UNKNOWN) for window in ("1h", "24h")}
    assert groups == expected
    assert rig.value("creditrisk_fairness_decisions_total", attribute="age_band", group="65+",
                     decision="approve") == 0


def test_missing_and_undeclared_groups_count_as_unknown_and_are_never_judged() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.observe([({"gender": "X-19750312"}, "approve")] * 30)  # no age band at all
    rig.monitor.publish()
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group=UNKNOWN,
                     window="1h") == 30
    assert rig.value("creditrisk_fairness_group_decisions", attribute="age_band", group=UNKNOWN,
                     window="1h") == 30
    assert not [labels for labels in rig.series("creditrisk_fairness_approval_rate")
                if labels["group"] == UNKNOWN]
    assert "X-19750312" not in rig.text()


def test_labels_hold_only_declared_names_never_an_applicant_value() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.observe([({"gender": "F", "age_band": "-12045"}, "approve"),
                         ({"gender": "jane.doe@example.com", "age_band": "41"}, "decline")])
    rig.monitor.publish()
    allowed = {"attribute": {"gender", "age_band"},
               "group": {group for attribute in SPEC.attributes
                         for group in (*attribute.groups, UNKNOWN)},
               "window": {"1h", "24h"}, "bound": {"estimate", "low", "high"},
               "decision": {"approve", "review", "decline"}}
    names = [line.split("{")[0] for line in rig.text().splitlines()
             if line.startswith("creditrisk_fairness")]
    assert names
    for name in set(names):
        for labels in rig.series(name):
            for key, value in labels.items():
                assert value in allowed[key], (name, key, value)
    assert not re.search(r"jane|-12045|\"F\"|\"41\"", rig.text())


def test_a_model_without_monitoring_exports_no_fairness_series() -> None:
    rig = Rig(MonitoringSpec(note="the file carries no protected characteristics"))
    rig.monitor.observe([({}, "approve")] * 50)
    rig.monitor.publish()
    samples = [line for line in rig.text().splitlines()
               if line.startswith("creditrisk_fairness")]
    assert samples == []


def test_a_promoted_model_brings_its_own_declaration() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.publish()
    assert rig.air("female") is not None
    stricter = MonitoringSpec((GENDER, AGE), min_group_size=50)
    rig.monitor.use(stricter)  # same attributes: the windows carry on, judged at 50
    rig.monitor.publish()
    assert rig.series("creditrisk_fairness_adverse_impact_ratio") == []
    assert rig.value("creditrisk_fairness_min_group_size") == 50
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group="female",
                     window="1h") == 40
    rig.monitor.use(MonitoringSpec())  # a model that monitors nothing
    rig.monitor.publish()
    assert [line for line in rig.text().splitlines()
            if line.startswith(("creditrisk_fairness_min", "creditrisk_fairness_group",
                                "creditrisk_fairness_adverse"))] == []


def test_a_promoted_model_with_other_attributes_starts_new_windows() -> None:
    rig = Rig()
    skewed(rig)
    rig.monitor.use(MonitoringSpec((GENDER,), min_group_size=20))
    rig.monitor.publish()
    assert rig.value("creditrisk_fairness_group_decisions", attribute="gender", group="female",
                     window="24h") == 0
    assert rig.series("creditrisk_fairness_approval_rate") == []
