"""The ledger keeps an applicant's monitored groups (labels only) from the worker's record;
a decision written without that record has none (NULL), never a guess."""

from __future__ import annotations

import json
from types import SimpleNamespace

from ledger_harness import synthetic_decision

from ledger.rows import DECISION_COLUMNS, decision_row

SOURCE = SimpleNamespace(topic="loan-decisions", partition=0, offset=7)
GROUPS = DECISION_COLUMNS.index("monitoring_groups")


def test_a_decision_without_lineage_has_no_groups() -> None:
    decision, _record = synthetic_decision(1)
    row = decision_row(decision, None, SOURCE)
    assert row[GROUPS] is None
    assert row[DECISION_COLUMNS.index("lineage_complete")] is False


def test_a_record_of_another_decision_gives_no_groups_either() -> None:
    decision, _ = synthetic_decision(1)
    _, other = synthetic_decision(1, model_version="m-other")
    other.groups.update({"gender": "female"})
    assert decision_row(decision, other, SOURCE)[GROUPS] is None


def test_the_records_group_labels_are_kept_and_nothing_else() -> None:
    decision, record = synthetic_decision(2, CODE_GENDER="F", DAYS_BIRTH=-12_000)
    record.groups.update({"gender": "female", "age_band": "25-34"})
    row = decision_row(decision, record, SOURCE)
    assert json.loads(str(row[GROUPS])) == {"gender": "female", "age_band": "25-34"}
    assert "12000" not in str(row[GROUPS]) and "F\"" not in str(row[GROUPS])


def test_a_model_that_monitors_nothing_records_an_empty_set_of_groups() -> None:
    decision, record = synthetic_decision(3)
    assert json.loads(str(decision_row(decision, record, SOURCE)[GROUPS])) == {}
