"""The console's Fairness page (Streamlit AppTest, no servers): approval rate and adverse
impact ratio by group with the four-fifths line, the outcome table once loans matured, small
groups named without figures, and a plain-language explanation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from console_session import ADMIN, APPROVER, REVIEWER, VIEWER, sign_in_as
from streamlit.testing.v1 import AppTest

from fairness.spec import MonitoredAttribute, MonitoringSpec
from ledger.fairness import VersionFairness, version_fairness
from review.users import User

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SPEC = MonitoringSpec((
    MonitoredAttribute("gender", "CODE_GENDER", "male", "Gender", {"F": "female", "M": "male"}),
    MonitoredAttribute("age_band", "DAYS_BIRTH", "35-44", "Age band",
                       bands=(18, 25, 35, 45, 55, 65), source="days_relative")),
    min_group_size=100)
NOTHING = MonitoringSpec(note="The Lending Club file carries no protected characteristics")


def book(count: int = 1_000, seed: int = 3, outcomes: bool = True) -> pd.DataFrame:
    """Scored decisions as ledger.fairness.scored_frame gives them: women approved less often
    on purpose; 65+ a small band; most loans matured when ``outcomes``."""
    rng = np.random.default_rng(seed)
    gender = np.where(np.arange(count) % 5 < 2, "female", "male")
    band = np.where(np.arange(count) % 25 == 0, "65+",
                    np.array(["25-34", "35-44", "45-54"])[np.arange(count) % 3])
    predicted = rng.uniform(0.02, 0.45, count)
    approved = predicted < np.where(gender == "female", 0.15, 0.3)
    bad = (rng.random(count) < predicted).astype(float)
    if not outcomes:
        bad[:] = np.nan
    else:
        bad[np.arange(count) % 10 == 0] = np.nan
    return pd.DataFrame({"gender": gender, "age_band": band, "approved": approved,
                         "probability_of_default": predicted, "bad": bad,
                         "decided_at": [NOW - timedelta(hours=1)] * count})


class BookSource:
    def __init__(self, results: list[VersionFairness], live: str | None) -> None:
        self._results, self.live = results, live

    def results(self) -> list[VersionFairness]:
        return self._results

    def live_version(self) -> str | None:
        return self.live


def _results(outcomes: bool = True) -> list[VersionFairness]:
    return [VersionFairness("lc-1", "lending_club", NOTHING, 500, note=NOTHING.note),
            version_fairness("hc-2", "home_credit", SPEC, book(outcomes=outcomes), NOW)]


def _page(source: object | None, window: str | None = None) -> AppTest:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), VIEWER)
    if source is not None:
        app.session_state["fairness_source"] = source
    app.session_state["view"] = "Fairness"
    app.run()
    if window is not None:
        app.radio(key="fairness_window").set_value(window).run()
    assert not app.exception, app.exception
    return app


def _texts(app: AppTest) -> str:
    return "\n".join([*(c.value for c in app.caption), *(m.value for m in app.markdown),
                      *(i.value for i in app.info), *(w.value for w in app.warning)])


@pytest.mark.parametrize("user", [VIEWER, REVIEWER, APPROVER, ADMIN], ids=lambda user: user.role)
def test_every_role_sees_the_fairness_page(user: User) -> None:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=60), user)
    app.session_state["fairness_source"] = BookSource(_results(), live=None)
    app.run()
    assert "Fairness" in app.sidebar.radio(key="view").options


def test_the_page_shows_approval_and_adverse_impact_of_each_large_enough_group() -> None:
    frame = book()
    app = _page(BookSource(_results(), live="hc-2"))

    assert app.selectbox(key="fairness_version").value == "hc-2"
    # approval rate and AIR per attribute, both drawn
    assert len(app.get("plotly_chart")) == 4
    gender = app.dataframe[0].value.set_index("Group")
    female, male = (frame[frame["gender"] == name]["approved"] for name in ("female", "male"))
    assert gender.loc["female", "Decisions"] == len(female)
    assert gender.loc["male (reference)", "Decisions"] == len(male)
    assert str(gender.loc["female", "Approval rate [95 %]"]).startswith(f"{female.mean():.3f} [")
    air = female.mean() / male.mean()
    assert str(gender.loc["female", "Adverse impact ratio [95 %]"]).startswith(f"{air:.3f} [")
    assert gender.loc["female", "Four-fifths test"] == "below 0.8 beyond chance"
    assert any("Adverse impact (all time): female" in w.value for w in app.warning)

    # 65+ holds 40 decisions: named, with no figure of its own
    ages = app.dataframe[2].value
    assert "65+" not in set(ages["Group"]) and "18-24" not in set(ages["Group"])
    assert "fewer than 100 decisions (in the group or in the reference): 18-24, 55-64, 65+" \
        in _texts(app)

    # once loans matured: the outcome table, judged groups only
    outcomes = app.dataframe[1].value.set_index("Group")
    matured = frame[frame["gender"] == "female"].dropna(subset=["bad"])
    approved = matured[matured["approved"]]
    assert outcomes.loc["female", "Matured loans"] == len(matured)
    assert outcomes.loc["female", "Bad rate of approved loans"] == f"{approved['bad'].mean():.3f}"
    assert outcomes.loc["male (reference)", "Equal-opportunity gap"] == "0 (reference)"


def test_the_page_explains_the_adverse_impact_ratio_and_the_four_fifths_rule() -> None:
    app = _page(BookSource(_results(), live="hc-2"))
    explanation = app.expander[0]
    assert "four-fifths" in explanation.label
    text = "\n".join(m.value for m in explanation.markdown)
    assert "approval rate divided by the reference group's" in text
    assert "below 0.8" in text


def test_before_loans_mature_the_page_says_the_outcomes_come_later() -> None:
    app = _page(BookSource(_results(outcomes=False), live="hc-2"))
    assert len(app.dataframe) == 2  # the decision tables only
    assert "appears here once servicing reports outcomes" in _texts(app)


def test_a_model_that_monitors_nothing_says_why() -> None:
    app = _page(BookSource(_results(), live="lc-1"))
    assert "Model lc-1 monitors nothing: The Lending Club file carries no protected" \
        in app.info[0].value
    assert not app.dataframe


def test_a_window_too_small_to_judge_says_so() -> None:
    results = [version_fairness("hc-2", "home_credit", SPEC,
                                book().assign(decided_at=NOW - timedelta(days=3)), NOW)]
    app = _page(BookSource(results, live="hc-2"), window="last 24 h")
    assert not app.dataframe
    assert "No group of gender holds 100 decisions (last 24 h)" in _texts(app)


def test_the_page_says_when_the_ledger_is_down() -> None:
    app = _page(None)  # the console's settings: a ledger that answers nowhere
    assert "The Fairness page needs the decision ledger" in app.error[0].value
