"""The demo picks the model that can read its data file, replays only loans that model did
not train on, and refuses an unknown dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

from cards import model_card  # tests/cards.py
from typer.testing import CliRunner

from cli.demo import DEMO_DATASETS, DEMO_EVENTS, DemoDataset, _reads, _write_replayed
from cli.main import app
from onnx_models.card import ModelCard


def _card(id_column: str, fields: list[str], target: str | None = "TARGET",
          outcomes: bool = True) -> ModelCard:
    lists = {"bad_values": ["1"], "good_values": ["0"]} if outcomes else {}
    return model_card(dataset={"id_column": id_column, "customer_id_column": id_column,
                               "target_column": target, **lists},
                      serving={"event_fields": [{"name": name, "kind": "numeric",
                                                 "check": "number"} for name in fields]},
                      split={"method": "stratified", "test_rows": 1})


def test_a_model_serves_a_demo_file_only_when_the_file_has_its_event_columns(tmp_path: Path) -> None:
    applications = tmp_path / "application_train.csv"
    applications.write_text("SK_ID_CURR,TARGET,EXT_SOURCE_2,AMT_CREDIT\n100002,0,0.3,1000.0\n")
    assert _reads(_card("SK_ID_CURR", ["EXT_SOURCE_2", "AMT_CREDIT"]), applications)
    assert not _reads(_card("id", ["loan_amnt"]), applications)
    assert not _reads(model_card(), applications)  # a card without serving
    # a card written before outcome columns were recorded: the back-test could not run
    assert not _reads(_card("SK_ID_CURR", ["EXT_SOURCE_2"], target=None), applications)
    # nor one written before its outcome lists were: the ledger could not class the outcomes
    assert not _reads(_card("SK_ID_CURR", ["EXT_SOURCE_2"], outcomes=False), applications)


def test_the_demo_replays_only_loans_issued_after_the_models_training_period(
        generated_data: Path, tmp_path: Path) -> None:
    import pandas as pd

    from training.cleaning import clean_loans
    from training.datasets import load_dataset_config, load_raw

    config = load_dataset_config("generated")
    frame, _ = clean_loans(load_raw(generated_data / "loans.csv", config), config)
    months = pd.to_datetime(frame["issue_d"]).dt.to_period("M")
    test_from = str(sorted(months.dropna().unique())[-3])  # the last three months: out of time
    dataset = DemoDataset("generated", "Lending Club-shaped", tmp_path, "loans.csv", 0)
    shutil.copy(generated_data / "loans.csv", dataset.loans)
    card = model_card(split={"method": "out_of_time", "test_from": test_from})

    said = _write_replayed(card, dataset)

    sent = pd.read_csv(dataset.replayed, dtype=str, keep_default_na=False)
    replayed, _ = clean_loans(load_raw(dataset.replayed, config), config)
    issued = pd.to_datetime(replayed["issue_d"]).dt.to_period("M")
    assert len(sent) == DEMO_EVENTS < int((months >= pd.Period(test_from, "M")).sum())
    assert (months < pd.Period(test_from, "M")).sum() > 10_000  # the training period, left out
    assert len(replayed) > 0.95 * DEMO_EVENTS and (issued >= pd.Period(test_from, "M")).all()
    assert said.startswith(f"{DEMO_EVENTS:,} loans issued from {test_from} on, after the live "
                           "model's training period")


def test_demo_offers_lending_club_by_default_and_home_credit() -> None:
    assert DEMO_DATASETS["generated"].loan_file == "loans.csv"
    assert DEMO_DATASETS["home_credit"].loan_file == "application_train.csv"
    result = CliRunner().invoke(app, ["demo", "--dataset", "nope"])
    assert result.exit_code == 2 and "home_credit" in result.output


def test_the_demo_reads_each_groups_air_from_the_workers_fairness_gauges() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from cli.demo import fairness_gauge_lines
    from fairness.spec import MonitoredAttribute, MonitoringSpec
    from stream.fairness import FairnessMonitor
    from stream.metrics import WorkerMetrics

    spec = MonitoringSpec((MonitoredAttribute("gender", "CODE_GENDER", "male", "Gender",
                                              {"F": "female", "M": "male"}),), min_group_size=50)
    registry = CollectorRegistry()
    monitor = FairnessMonitor(WorkerMetrics(registry), spec, clock=lambda: 1_000_000.0)
    # women approved 30 of 100, men 60 of 100; 7 applicants without the field; 20 "other"
    decided = ([({"gender": "female"}, "approve")] * 30 + [({"gender": "female"}, "decline")] * 70
               + [({"gender": "male"}, "approve")] * 60 + [({"gender": "male"}, "review")] * 40
               + [({}, "approve")] * 7)
    monitor.observe(decided)
    monitor.publish()

    (line,) = fairness_gauge_lines(generate_latest(registry).decode(), "24h")

    assert line.startswith("gender: ")
    parts = dict(part.split(" ", 1) for part in line.removeprefix("gender: ").split("; "))
    assert parts["female"].startswith(f"AIR {0.3 / 0.6:.2f} [") and "(100 decisions)" in parts["female"]
    # the reference: no AIR of its own
    assert parts["male"].startswith("reference (approval rate 0.60 [") and "100 decisions" in parts["male"]
    assert parts["unknown"] == "7 decisions"
    assert fairness_gauge_lines("", "24h")[0].startswith("no fairness series yet")


def test_the_demo_summary_gives_air_by_group_and_names_small_groups_without_figures() -> None:
    from datetime import UTC, datetime

    import numpy as np
    import pandas as pd

    from fairness.spec import MonitoredAttribute, MonitoringSpec
    from ledger.fairness import VersionFairness, summary_lines, version_fairness

    spec = MonitoringSpec((MonitoredAttribute("gender", "CODE_GENDER", "male", "Gender",
                                              {"F": "female", "M": "male", "X": "other"}),),
                          min_group_size=50)
    gender = ["female"] * 100 + ["male"] * 100 + ["other"] * 10
    approved = [i < 30 for i in range(100)] + [i < 60 for i in range(100)] + [True] * 10
    frame = pd.DataFrame({"gender": gender, "approved": approved,
                          "probability_of_default": 0.1, "bad": np.nan,
                          "decided_at": datetime(2026, 1, 1, tzinfo=UTC)})
    (line,) = summary_lines(version_fairness("v", "home_credit", spec, frame,
                                             datetime(2026, 1, 1, 1, tzinfo=UTC)))
    assert line.startswith("Gender, all time: female AIR 0.50 [")
    assert "ADVERSE IMPACT" in line and "other fewer than 50 decisions" in line
    assert "male reference (approval rate 0.60 [" in line
    nothing = VersionFairness("lc", "lending_club", MonitoringSpec(), 3, note="no such field")
    assert summary_lines(nothing) == ["nothing monitored: no such field"]
