"""From a generated loan file to a registered ONNX model that scores, and the CLI around it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from quick_training import QUICK_CLI_BUDGET, quick_config  # tests/quick_training.py
from typer.testing import CliRunner

from cli.main import app


@pytest.fixture(scope="module")
def loan_file(tmp_path_factory) -> Path:
    from training.generate import generate_loan_files

    folder = tmp_path_factory.mktemp("generated")
    generate_loan_files(rows=6000, seed=11, out_dir=folder, show_progress=False)
    return folder / "loans.csv"


@pytest.mark.slow
def test_train_register_and_score_with_onnxruntime(loan_file: Path, tmp_path: Path):
    from sklearn.metrics import roc_auc_score

    from onnx_models.registry import Registry
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.pipeline import run_training

    result = run_training(loan_file, "generated", registry_dir=tmp_path / "registry",
                          config=quick_config(folds=3), report_dir=tmp_path / "report",
                          progress=False, log=lambda _message: None)

    registry = Registry(tmp_path / "registry")
    assert registry.live_version() == result.version
    model = registry.load(result.version)
    card = model.card.to_document()
    for key in ("version", "created_at", "features", "calibration", "thresholds", "score_scale",
                "risk_grades", "parity", "data_fingerprint", "reference", "smote", "baseline",
                "search", "warnings", "model"):
        assert key in card, key
    for part in ("test", "cv"):
        assert set(card["metrics"][part]) >= {"auc", "ks", "gini", "brier", "ece"}
    assert card["parity"]["max_abs_diff"] <= 1e-5
    assert (model.path / "model.txt").is_file()

    # The served model is LightGBM + SMOTE fitted on every training row, with enough trees,
    # and its CV figures are those of the procedure that made it.
    assert card["model_type"] == "lightgbm" and card["model"]["variant"] == "smote"
    assert card["model"]["fitted_on_rows"] == card["split"]["train_rows"]
    assert card["model"]["synthetic_rows"] > 0
    assert card["model"]["trees"] == card["search"]["smote"]["chosen"]["trees"] >= 10
    assert card["metrics"]["cv"] == card["smote"]["variants"]["smote"]["cv"]
    assert card["metrics"]["cv"]["folds"] == 3
    assert card["smote"]["variants"]["no_smote"]["synthetic_rows"] == 0
    assert card["calibration"]["fitted_on_rows"] == card["split"]["train_rows"]
    assert card["baseline"]["cv"]["auc"] > 0.6 and card["baseline"]["calibrated"]["auc"] > 0.6

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
    assert "The search's choice, the fixed reference and the baseline, side by side" in html
    assert "fixed reference LightGBM" in html
    # A 6,000-row file has a few hundred bad loans: no test split, out-of-fold test figures,
    # and the report says so.
    assert card["evaluation"]["test_figures"] == "out_of_fold"
    assert "Test figures: out-of-fold" in html
    assert card["model"]["fitted_on_rows"] == card["data_fingerprint"]["rows"]
    assert card["fixed_reference"]["trees"] == 300 and card["fixed_reference"]["cv"]["folds"] == 3
    assert "baseline scorecard" in html and "LightGBM + SMOTE (promoted)" in html
    assert "skipped (time budget)" not in html  # every candidate of the search was tried
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
    from training.training_config import SmallFileSettings

    # A few hundred bad loans: the small-file search would keep no test split at all.
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

    config = quick_config(folds=3, small_file=SmallFileSettings(bad_loans_below=0))
    result = run_training(tmp_path / "book.csv", tmp_path / "book.toml",
                          registry_dir=tmp_path / "registry", config=config,
                          report_dir=tmp_path / "report", progress=False,
                          log=lambda _message: None)
    card = result.card
    assert card["split"]["method"] == "stratified"
    assert [f["name"] for f in card["features"]] == ["turnover", "sector"]
    assert card["features"][1]["categories"] == ["farming", "retail", "tech"]
    assert card["metrics"]["test"]["auc"] > 0.6
    # Not Lending Club data: the leakage alarm logic does not apply.
    assert "leakage_alarm" not in [warning.code for warning in result.warnings]


@pytest.mark.slow
def test_cli_warns_when_the_policy_approves_nearly_everyone(loan_file: Path, tmp_path: Path):
    # A bad loan costing as little as 1/40 of a rejected good one: approve almost all.
    outcome = CliRunner().invoke(app, [
        "train", "--data", str(loan_file), "--registry", str(tmp_path / "registry"),
        "--report-dir", str(tmp_path / "report"), "--cost-bad-loan", "1",
        "--cost-rejected-good", "40", "--folds", "3", *QUICK_CLI_BUDGET])
    assert outcome.exit_code == 0, outcome.output
    assert re.search(r"WARNING \[approval_rate\] the policy approves (9[5-9]|100)\.\d%",
                     outcome.output)
    # LightGBM and the baseline side by side, with their CV and test AUC.
    assert "LightGBM + SMOTE" in outcome.output and "baseline scorecard" in outcome.output
    baseline_line = next(line for line in outcome.output.splitlines()
                         if "baseline scorecard" in line and "CV AUC" in line)
    assert "test AUC 0." in baseline_line
    html = (tmp_path / "report" / "report.html").read_text()
    warning_at = html.index('class="warning"')
    assert warning_at < html.index("<h2>") and "approval_rate" in html[warning_at:warning_at + 200]


@pytest.mark.slow
def test_the_baseline_can_be_promoted_and_the_worker_serves_and_explains_it(loan_file: Path,
                                                                            tmp_path: Path):
    from onnx_models.registry import Registry
    from stream.model_runtime import load_serving_model
    from training.datasets import load_clean_labelled, load_dataset_config

    registry_dir = tmp_path / "registry"
    outcome = CliRunner().invoke(app, [
        "train", "--data", str(loan_file), "--registry", str(registry_dir), "--model-type",
        "baseline", "--folds", "3", *QUICK_CLI_BUDGET, "--report-dir", str(tmp_path / "report")])
    assert outcome.exit_code == 0, outcome.output
    registry = Registry(registry_dir)
    card = registry.load(registry.live_version()).card.to_document()
    assert card["model_type"] == "scorecard" and card["model"]["variant"] == "baseline"
    assert card["metrics"]["test"] == card["baseline"]["calibrated"]
    assert card["parity"]["passed"]

    served = load_serving_model(registry, registry.live_version())
    frame, _, _ = load_clean_labelled(loan_file, load_dataset_config("generated"))
    matrix = served.encoder.transform_records(frame.head(400).to_dict("records"))
    verdicts = served.score(matrix, [False] * len(matrix))
    adverse = [verdict for verdict in verdicts if verdict.decision != "approve"]
    assert adverse and all(verdict.reasons for verdict in adverse)
    assert all(reason.impact > 0 for verdict in adverse for reason in verdict.reasons)


@pytest.mark.slow
def test_no_smote_registers_the_plain_model_and_keeps_the_comparison(loan_file: Path,
                                                                     tmp_path: Path):
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.pipeline import train_from_frame

    config = load_dataset_config("generated")
    frame, cleaning, labelling = load_clean_labelled(loan_file, config)
    result = train_from_frame(frame, config, cleaning.to_dict(), labelling.to_dict(),
                              registry_dir=tmp_path, promote=False,
                              config=quick_config(folds=3, smote=False),
                              progress=False,
                              log=lambda _line: None, write_report_files=False)
    card = result.card
    assert card["model"]["variant"] == "no_smote" and card["model"]["synthetic_rows"] == 0
    assert card["smote"]["variants"]["smote"]["synthetic_rows"] > 0  # still compared
    assert card["metrics"]["test"] == card["smote"]["variants"]["no_smote"]["calibrated"]


@pytest.mark.slow
def test_a_generic_config_on_a_lending_club_sample_declares_funded_amnt_known(loan_file: Path,
                                                                             tmp_path: Path):
    from training.pipeline import run_training

    (tmp_path / "sample.toml").write_text(
        'name = "lc_sample"\nfeature_set = "generic"\nid_column = "id"\n'
        'date_column = "issue_d"\nknown_at_application = ["funded_amnt"]\n'
        'exclude_columns = ["emp_title", "title", "zip_code"]\n'
        '[target]\ncolumn = "loan_status"\nbad_values = ["Charged Off", "Default"]\n'
        'good_values = ["Fully Paid"]\nexcluded_values = ["Current", "Issued"]\n'
        '[features]\nfunded_amnt = "numeric"\nannual_inc = "numeric"\ndti = "numeric"\n'
        'inq_last_6mths = "numeric"\ndelinq_2yrs = "numeric"\npurpose = "categorical"\n'
        'home_ownership = "categorical"\nterm = "categorical"\n')
    result = run_training(loan_file, tmp_path / "sample.toml", registry_dir=tmp_path / "registry",
                          promote=False, report_dir=tmp_path / "report", progress=False,
                          config=quick_config(),
                          log=lambda _message: None)
    card = result.card
    assert "funded_amnt" in [feature["name"] for feature in card["features"]]
    assert card["dataset"]["known_at_application"] == ["funded_amnt"]
    assert card["dataset"]["exclude_columns"] == ["emp_title", "title", "zip_code"]
    assert card["model"]["trees"] >= 10 and card["metrics"]["test"]["auc"] > 0.6
    assert "funded_amnt" in (tmp_path / "report" / "report.html").read_text()


@pytest.mark.slow
def test_an_already_balanced_file_serves_the_plain_model_and_says_why(tmp_path: Path):
    import pandas as pd

    from training.datasets import DatasetConfig
    from training.pipeline import train_from_frame

    rng = np.random.default_rng(8)
    rows = 1500
    signal = rng.normal(size=rows)
    frame = pd.DataFrame({"ref": [f"r{i}" for i in range(rows)], "signal": signal,
                          "noise": rng.normal(size=rows),
                          "bad": (rng.random(rows) < 1 / (1 + np.exp(-signal - 0.5))).astype(int)})
    config = DatasetConfig(name="balanced", id_column="ref", target_column="status",
                           bad_values=("1",), good_values=("0",),
                           features={"signal": "numeric", "noise": "numeric"})
    result = train_from_frame(frame, config, {}, {}, registry_dir=tmp_path, promote=False,
                              config=quick_config(), progress=False, log=lambda _line: None,
                              write_report_files=False)
    card = result.card
    assert card["model"]["variant"] == "no_smote" and "smote" not in card["search"]
    assert list(card["smote"]["variants"]) == ["no_smote"]
    assert "smote_not_applicable" in [warning.code for warning in result.warnings]
