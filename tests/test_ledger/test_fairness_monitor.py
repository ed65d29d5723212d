"""`creditrisk monitor --fairness` on the real PostgreSQL: decisions with their applicants'
groups and the loans' outcomes go into a ledger of the test's own; the command prints, per
group, the figures the test computes itself from the ledger's rows (plain SQL and numpy), and
never an application id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np
import pytest
from ledger_harness import private_database, synthetic_decision

from config.settings import Settings
from onnx_models.registry import Registry

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
MIN_GROUP = 60
MONITORING = {
    "min_group_size": MIN_GROUP, "confidence": 0.95, "air_threshold": 0.8, "note": "",
    "attributes": [
        {"name": "gender", "field": "applicant_gender", "label": "Gender", "reference": "male",
         "values": {"F": "female", "M": "male"}},
        {"name": "age_band", "field": "applicant_age", "label": "Age band", "reference": "35-44",
         "bands": [18, 25, 35, 45, 55, 65], "source": "value"}]}
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
BAD, GOOD = "Charged Off", "Fully Paid"


@pytest.fixture
def monitored_registry(registry_dir: Path) -> tuple[Path, str, str]:
    """The registry's live model, its card declaring gender and age band as monitored; and
    its portfolio."""
    registry = Registry(registry_dir)
    version = registry.live_version() or ""
    card_path = registry_dir / version / "model.json"
    card = json.loads(card_path.read_text())
    card["monitoring"] = MONITORING
    card_path.write_text(json.dumps(card))
    return registry_dir, version, str(card["dataset"]["name"])


def _book(version: str, seed: int = 5) -> tuple[list[tuple], list[tuple]]:
    """1,300 decisions of ``version`` (women approved less often on purpose, a small 65+ band,
    100 decisions without lineage), a third of them older than a day; most loans matured, each
    bad with its own PD's odds. Returns (decision rows, outcome rows)."""
    from ledger.rows import decision_row
    from stream.decisions import decision_id

    rng = np.random.default_rng(seed)
    decisions, outcomes = [], []
    for index in range(1_300):
        gender = "female" if index % 2 else "male"
        band = "65+" if index % 40 == 0 else AGE_BANDS[1 + index % 4]
        probability = float(rng.uniform(0.02, 0.45))
        approve_below = 0.18 if gender == "female" else 0.3
        verdict = "approve" if probability < approve_below else "decline" if probability > 0.35 \
            else "review"
        decided = NOW - timedelta(hours=30 if index % 3 == 0 else 1, seconds=index)
        decision, record = synthetic_decision(index, decided_at=decided, model_version=version,
                                              application_id=f"fair-{index:05d}")
        decision = msgspec.structs.replace(
            decision, decision=verdict, probability_of_default=round(probability, 6),
            decision_id=decision_id(decision.application_id, version))
        record = replace(record, decision=decision, groups={"gender": gender, "age_band": band})
        lineage = index % 13 != 0  # 100 decisions written without the worker's record
        decisions.append(decision_row(decision, record if lineage else None,
                                      _Source(index)))
        if index % 10 != 0:  # one loan in ten still running
            status = BAD if rng.random() < probability else GOOD
            outcomes.append(("", decision.application_id, status, "unknown", NOW.date(), "o", 0,
                             index))
    return decisions, outcomes


class _Source:
    topic, partition = "loan-decisions", 0

    def __init__(self, offset: int) -> None:
        self.offset = offset


def _write(settings: Settings, decisions: list[tuple], outcomes: list[tuple]) -> None:
    import psycopg

    from ledger.store import insert_decisions, upsert_outcomes

    with psycopg.connect(settings.postgres_conninfo()) as connection, connection.transaction():
        insert_decisions(connection, decisions)
        upsert_outcomes(connection, outcomes)


def _ledger_rows(settings: Settings, version: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(settings.postgres_conninfo()) as connection:
        return connection.execute(
            "SELECT coalesce(d.monitoring_groups->>'gender', 'unknown'), "
            "coalesce(d.monitoring_groups->>'age_band', 'unknown'), d.decision = 'approve', "
            "d.probability_of_default, o.loan_status, d.decided_at >= now() - interval '24 hours' "
            "FROM decisions d LEFT JOIN loan_outcomes o USING (application_id) "
            "WHERE d.model_version = %s", (version,)).fetchall()


# -- the test's own figures ------------------------------------------------------------------

def _auc(bad: np.ndarray, predicted: np.ndarray) -> float:
    """P(a bad loan's PD > a good one's), ties half: every pair compared."""
    bads, goods = predicted[bad == 1], predicted[bad == 0]
    greater = (bads[:, None] > goods[None, :]).mean()
    ties = (bads[:, None] == goods[None, :]).mean()
    return float(greater + 0.5 * ties)


def _calibration_error(bad: np.ndarray, predicted: np.ndarray, bins: int = 10) -> float:
    """Loan-weighted mean |mean PD - bad rate| over PD deciles (rank-ordered bins)."""
    order = np.argsort(predicted, kind="mergesort")
    total = 0.0
    for which in range(bins):
        members = order[(np.arange(len(order)) * bins // len(order)) == which]
        if len(members):
            total += len(members) * abs(predicted[members].mean() - bad[members].mean())
    return total / len(predicted)


def _expected(rows: list[tuple], column: int, reference: str, recent: bool) -> dict[str, dict]:
    groups = np.array([row[column] for row in rows])
    approved = np.array([row[2] for row in rows], dtype=bool)
    predicted = np.array([row[3] for row in rows], dtype=float)
    status = np.array([row[4] or "" for row in rows])
    inside = np.array([row[5] for row in rows], dtype=bool) if recent else np.ones(len(rows), bool)
    matured = np.isin(status, [BAD, GOOD])
    bad = (status == BAD).astype(int)
    figures: dict[str, dict] = {}
    for group in np.unique(groups):
        mine = (groups == group) & inside
        figures[str(group)] = {"decisions": int(mine.sum()),
                               "rate": approved[mine].mean() if mine.any() else None}
        grown = (groups == group) & matured
        good = grown & (bad == 0)
        chosen = grown & approved
        figures[str(group)] |= {
            "matured": int(grown.sum()), "approved_matured": int(chosen.sum()),
            "approved_bad_rate": bad[chosen].mean() if chosen.any() else None,
            "auc": _auc(bad[grown], predicted[grown]) if grown.any() else None,
            "calibration": _calibration_error(bad[grown], predicted[grown]) if grown.any() else None,
            "good_rate": approved[good].mean() if good.any() else None}
    base = figures[reference]
    for figure in figures.values():
        if figure["rate"] is not None:
            figure["air"] = figure["rate"] / base["rate"]
            figure["spd"] = figure["rate"] - base["rate"]
        if figure["good_rate"] is not None:
            figure["gap"] = figure["good_rate"] - base["good_rate"]
    return figures


def _section(stdout: str, title: str, heading: str) -> list[str]:
    """The group lines under ``heading`` inside the attribute ``title``'s block (up to the
    next heading)."""
    block = stdout.split(f"  {title} (reference")[1]
    found = []
    for line in block.split(heading)[1].splitlines()[1:]:
        if not line.startswith("      "):
            break
        found.append(line.strip())
    return found


def _line_of(lines: list[str], group: str) -> str:
    return next(line for line in lines if line.split(":")[0].removesuffix(" (reference)") == group)


def test_monitor_fairness_prints_the_figures_the_ledger_rows_give(
        live_stack: Settings, monitored_registry: tuple[Path, str, str]) -> None:
    registry, version, _portfolio = monitored_registry
    decisions, outcomes = _book(version)
    other, _ = synthetic_decision(1, model_version="m-retired", application_id="fair-retired")
    from ledger.rows import decision_row

    decisions.append(decision_row(other, None, _Source(9_999)))
    with private_database(live_stack) as settings:
        _write(settings, decisions, outcomes)
        rows = _ledger_rows(settings, version)
        password = (settings.postgres_password.get_secret_value() if settings.postgres_password
                    else settings.postgres_password_file.read_text().strip())
        env = {**os.environ, "CREDITRISK_POSTGRES_DATABASE": settings.postgres_database,
               "CREDITRISK_POSTGRES_HOST": settings.postgres_host,
               "CREDITRISK_POSTGRES_PORT": str(settings.postgres_port),
               "CREDITRISK_POSTGRES_PASSWORD": password, "CREDITRISK_REGISTRY_DIR": str(registry)}
        run = subprocess.run([sys.executable, "-m", "cli.main", "monitor", "--fairness"],
                             env=env, capture_output=True, text=True, check=False, timeout=120)
    out = run.stdout
    assert sum(1 for row in rows if row[4]) == len(outcomes), "every outcome joins its decision"

    assert "fair-" not in out + run.stderr  # group labels and counts only, never an application
    assert f"model {version} (portfolio" in out
    assert "model m-retired: 1 decision; nothing monitored: its model card is not in the registry" \
        in out

    gender_all = _expected(rows, 0, "male", recent=False)
    gender_day = _expected(rows, 0, "male", recent=True)
    for heading, expected in (("decisions, all time:", gender_all),
                              ("decisions, last 24 h:", gender_day)):
        lines = _section(out, "Gender", heading)
        for group in ("female", "male"):
            line, figure = _line_of(lines, group), expected[group]
            assert f"{group}{' (reference)' if group == 'male' else ''}: " \
                   f"{figure['decisions']:,} decisions, approval rate {figure['rate']:.3f} [" in line
            if group == "female":
                assert f"AIR {figure['air']:.3f} [" in line and f"SPD {figure['spd']:.3f} [" in line
        # the 100 decisions written without lineage have no groups: counted, never judged
        assert _line_of(lines, "unknown").startswith(
            f"unknown: {expected['unknown']['decisions']:,} decisions (unknown group")
    # women are approved far less often: the four-fifths test fails beyond chance, and says so
    assert gender_all["female"]["air"] < 0.7
    assert "ADVERSE IMPACT" in _line_of(_section(out, "Gender", "decisions, all time:"), "female")
    assert run.returncode == 2 and "gender female (all time): AIR " in run.stderr

    outcome_lines = _section(out, "Gender", "matured loans, all time")
    for group in ("female", "male"):
        line, figure = _line_of(outcome_lines, group), gender_all[group]
        assert line.startswith(f"{group}: {figure['matured']:,} matured")
        assert (f"approved bad rate {figure['approved_bad_rate']:.3f} "
                f"(of {figure['approved_matured']:,})") in line
        assert f"AUC {figure['auc']:.3f}" in line
        assert f"calibration error {figure['calibration']:.3f}" in line
    assert f"equal-opportunity gap {gender_all['female']['gap']:+.3f}" in \
        _line_of(outcome_lines, "female")

    ages = _expected(rows, 1, "35-44", recent=False)
    age_lines = _section(out, "Age band", "decisions, all time:")
    assert ages["65+"]["decisions"] < MIN_GROUP  # a small group: its count only
    assert _line_of(age_lines, "65+") == (
        f"65+: {ages['65+']['decisions']:,} decisions (fewer than {MIN_GROUP:,} decisions here or "
        "in the reference: not judged)")
    assert f"approval rate {ages['25-34']['rate']:.3f} [" in _line_of(age_lines, "25-34")
    assert _line_of(age_lines, "18-24") == "18-24: 0 decisions (fewer than 60 decisions here or " \
                                           "in the reference: not judged)"
