"""From a generated loan file to a registered ONNX model that scores, and the CLI around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from infra.cli import app


@pytest.fixture(scope="module")
def loan_file(tmp_path_factory) -> Path:
    from training.generate import generate_loan_files

    folder = tmp_path_factory.mktemp("generated")
    generate_loan_files(rows=12000, seed=11, out_dir=folder, show_progress=False)
    return folder / "loans.csv"


@pytest.mark.slow
def test_train_register_and_score_with_onnxruntime(loan_file: Path, tmp_path: Path):
    from sklearn.metrics import roc_auc_score

    from onnx_models.registry import Registry
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.pipeline import run_training
    from training.training_config import TrainingConfig

    result = run_training(loan_file, "generated", registry_dir=tmp_path / "registry",
                          config=TrainingConfig(folds=3), report_dir=tmp_path / "report",
                          progress=False, log=lambda _message: None)

    registry = Registry(tmp_path / "registry")
    assert registry.live_version() == result.version
    model = registry.load(result.version)
    card = model.card
    for key in ("version", "created_at", "features", "calibration", "thresholds", "score_scale",
                "risk_grades", "parity", "data_fingerprint", "reference", "smote"):
        assert key in card, key
    for part in ("test", "cv"):
        assert set(card["metrics"][part]) >= {"auc", "ks", "gini", "brier", "ece"}
    assert card["parity"]["max_abs_diff"] <= 1e-5
    assert (model.path / "model.txt").is_file()

    # Score every labelled loan through the serving path: model.json encoder → ONNX → PD.
    frame, _, _ = load_clean_labelled(loan_file, load_dataset_config("generated"))
    matrix = model.encoder().transform_records(frame.to_dict("records"))
    probability_of_default = model.probability_of_default(matrix)
    assert np.all((probability_of_default >= 0) & (probability_of_default <= 1))
    assert roc_auc_score(frame["bad"], probability_of_default) > 0.6
    assert card["metrics"]["test"]["auc"] > 0.6

    report = result.report_path
    assert report is not None and report.is_file()
    html = report.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    for plot in ("roc", "ks", "calibration", "score_distribution", "feature_importance",
                 "smote_comparison", "loan_amount", "purpose", "bad_rate_by_grade"):
        assert (report.parent / f"{plot}.png").stat().st_size > 5000, plot


def test_cli_refuses_a_leaking_feature_naming_it(loan_file: Path, tmp_path: Path):
    config = tmp_path / "leaky.toml"
    config.write_text('base = "generated"\nname = "leaky"\n[features]\nrecoveries = "numeric"\n')
    outcome = CliRunner().invoke(app, ["train", "--data", str(loan_file), "--dataset",
                                       str(config), "--registry", str(tmp_path / "r")])
    assert outcome.exit_code == 1
    assert "'recoveries'" in outcome.output and "post-origination" in outcome.output
    assert not (tmp_path / "r").exists()


def test_cli_reports_a_missing_data_file(tmp_path: Path):
    outcome = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nope.csv")])
    assert outcome.exit_code == 1 and "does not exist" in outcome.output


def test_model_cli_lists_shows_and_refuses_unknown_versions(tmp_path: Path):
    runner = CliRunner()
    empty = runner.invoke(app, ["model", "list", "--registry", str(tmp_path)])
    assert empty.exit_code == 0 and "No models registered" in empty.output
    missing = runner.invoke(app, ["model", "promote", "20261122T000000Z-00000000",
                                  "--registry", str(tmp_path)])
    assert missing.exit_code == 1 and "not in the registry" in missing.output


@pytest.mark.slow
def test_generic_dataset_without_dates_trains_with_a_stratified_split(tmp_path: Path):
    import pandas as pd

    from training.pipeline import run_training
    from training.training_config import TrainingConfig

    rng = np.random.default_rng(5)
    rows = 3000
    turnover = rng.lognormal(11, 1, rows)
    sector = rng.choice(["retail", "farming", "tech"], rows)
    risk = -2.2 - 0.6 * (np.log(turnover) - 11) + 0.8 * (sector == "retail")
    status = np.where(rng.random(rows) < 1 / (1 + np.exp(-risk)), "written_off", "repaid")
    turnover_text = np.where(rng.random(rows) < 0.05, "", np.round(turnover, 2).astype(str))
    pd.DataFrame({"ref": [f"r{i}" for i in range(rows)], "turnover": turnover_text,
                  "sector": sector, "status": status}).to_csv(tmp_path / "book.csv", index=False)
    (tmp_path / "book.toml").write_text(
        'name = "book"\nfeature_set = "generic"\nid_column = "ref"\n'
        '[target]\ncolumn = "status"\nbad_values = ["written_off"]\ngood_values = ["repaid"]\n'
        '[features]\nturnover = "numeric"\nsector = "categorical"\n')

    result = run_training(tmp_path / "book.csv", tmp_path / "book.toml",
                          registry_dir=tmp_path / "registry", config=TrainingConfig(folds=3),
                          report_dir=tmp_path / "report", progress=False,
                          log=lambda _message: None)
    card = result.card
    assert card["split"]["method"] == "stratified"
    assert [f["name"] for f in card["features"]] == ["turnover", "sector"]
    assert card["features"][1]["categories"] == ["farming", "retail", "tech"]
    assert card["metrics"]["test"]["auc"] > 0.6
    assert not result.warnings  # not Lending Club data: no leakage alarm logic applies
