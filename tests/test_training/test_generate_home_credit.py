"""Generated Home Credit files look like application_train.csv and bureau.csv, carry their dirt,
relate to the target as the real data does, and are what the home_credit config reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from training.generate_home_credit import (
    APPLICATION_COLUMNS,
    BUREAU_COLUMNS,
    EMPLOYED_SENTINEL,
    generate_home_credit_files,
)

ROWS = 20_000


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("home-credit")
    generate_home_credit_files(rows=ROWS, seed=5, out_dir=out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def applications(generated: Path) -> pd.DataFrame:
    return pd.read_csv(generated / "application_train.csv")


@pytest.fixture(scope="module")
def bureau(generated: Path) -> pd.DataFrame:
    return pd.read_csv(generated / "bureau.csv")


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((first, 3), (second, 3), (other, 4)):
        generate_home_credit_files(rows=1_500, seed=seed, out_dir=out, show_progress=False)
    for name in ("application_train.csv", "bureau.csv"):
        assert _digest(first / name) == _digest(second / name)
        assert _digest(first / name) != _digest(other / name)


def test_has_the_real_columns_and_formats(generated: Path, applications: pd.DataFrame,
                                          bureau: pd.DataFrame) -> None:
    assert list(applications.columns) == list(APPLICATION_COLUMNS)
    assert list(bureau.columns) == list(BUREAU_COLUMNS)
    assert len(applications) == ROWS and applications["SK_ID_CURR"].is_unique
    assert applications["SK_ID_CURR"].min() == 100002
    assert bureau["SK_ID_BUREAU"].is_unique
    text = pd.read_csv(generated / "application_train.csv", dtype=str, keep_default_na=False)
    assert text["AMT_INCOME_TOTAL"].str.fullmatch(r"\d+\.\d+").all()  # '202500.0'
    assert text["DAYS_BIRTH"].str.fullmatch(r"-\d+").all()
    assert set(text["FLAG_OWN_CAR"]) == {"Y", "N"} and set(text["TARGET"]) == {"0", "1"}
    assert set(applications["NAME_CONTRACT_TYPE"]) == {"Cash loans", "Revolving loans"}
    assert set(bureau["CREDIT_ACTIVE"]) >= {"Active", "Closed", "Sold"}
    assert bureau["CREDIT_CURRENCY"].str.fullmatch(r"currency \d").all()
    assert (bureau["DAYS_CREDIT"] <= 0).all()
    # Closed credits ended in the past; active ones have no end date yet.
    closed = bureau["CREDIT_ACTIVE"] == "Closed"
    assert (bureau.loc[closed, "DAYS_ENDDATE_FACT"] <= 0).all()
    assert bureau.loc[bureau["CREDIT_ACTIVE"] == "Active", "DAYS_ENDDATE_FACT"].isna().all()


def test_carries_the_dirt_of_the_real_file(applications: pd.DataFrame, bureau: pd.DataFrame) -> None:
    no_job = applications["DAYS_EMPLOYED"] == EMPLOYED_SENTINEL
    assert 0.1 < no_job.mean() < 0.3
    assert (applications.loc[no_job, "ORGANIZATION_TYPE"] == "XNA").all()
    assert (applications.loc[~no_job, "DAYS_EMPLOYED"] < 0).all()
    assert (applications[["DAYS_REGISTRATION", "DAYS_ID_PUBLISH"]] <= 0).all().all()
    assert 0.5 < applications["EXT_SOURCE_1"].isna().mean() < 0.62
    assert applications["EXT_SOURCE_2"].isna().mean() < 0.01
    assert 0.15 < applications["EXT_SOURCE_3"].isna().mean() < 0.25
    assert applications.loc[applications["FLAG_OWN_CAR"] == "N", "OWN_CAR_AGE"].isna().all()
    assert applications["OCCUPATION_TYPE"].isna().mean() > 0.2
    assert applications["AMT_REQ_CREDIT_BUREAU_YEAR"].isna().mean() > 0.1
    without_bureau = ~applications["SK_ID_CURR"].isin(bureau["SK_ID_CURR"])
    assert 0.1 < without_bureau.mean() < 0.18


def test_risk_follows_the_external_scores_and_the_bureau(applications: pd.DataFrame,
                                                         bureau: pd.DataFrame) -> None:
    target = applications["TARGET"]
    assert 0.07 < target.mean() < 0.09
    ext2 = applications["EXT_SOURCE_2"].fillna(0.5)
    assert roc_auc_score(target, -ext2) > 0.62  # the strongest single signal, as in the real data
    assert roc_auc_score(target, -applications["AMT_INCOME_TOTAL"]) < roc_auc_score(target, -ext2)
    late = bureau.loc[bureau["CREDIT_DAY_OVERDUE"] > 0, "SK_ID_CURR"].unique()
    is_late = applications["SK_ID_CURR"].isin(late)
    assert is_late.sum() > 100
    assert target[is_late].mean() > 1.5 * target[~is_late].mean()
    debt = bureau.groupby("SK_ID_CURR")["AMT_CREDIT_SUM_DEBT"].sum()
    heavy = applications["SK_ID_CURR"].map(debt).fillna(0) > 3 * applications["AMT_INCOME_TOTAL"]
    assert target[heavy].mean() > target[~heavy].mean()


def test_the_home_credit_config_reads_it_and_joins_the_bureau_view(generated: Path) -> None:
    from training.datasets import load_clean_labelled, load_dataset_config

    config = load_dataset_config("home_credit")
    frame, cleaning, labels = load_clean_labelled(generated / "application_train.csv", config)
    assert len(frame) == ROWS and labels.bad_rate == pytest.approx(frame["bad"].mean())
    assert cleaning.coerced[("DAYS_EMPLOYED", "placeholder_to_missing")] > 0
    # Protected characteristics: the unmonitored ones are dropped on read; gender and birth
    # days stay beside the rows for the fairness section, never as features.
    assert not {"NAME_FAMILY_STATUS", "CNT_CHILDREN"} & set(frame.columns)
    assert {"CODE_GENDER", "DAYS_BIRTH"} <= set(frame.columns)
    assert not {"CODE_GENDER", "DAYS_BIRTH"} & set(config.model_features)
    credits = frame["BUREAU_CREDITS"]
    assert 0.1 < credits.isna().mean() < 0.18  # applicants without bureau rows have no values
    assert (credits.dropna() >= 1).all()
    assert np.isfinite(frame["BUREAU_TOTAL_DEBT"].dropna()).all()


def test_the_command_line_writes_home_credit_files(tmp_path: Path) -> None:
    from cli.main import app

    result = CliRunner().invoke(app, ["data", "generate", "--dataset", "home_credit", "--rows",
                                      "500", "--seed", "2", "--out", str(tmp_path),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "applicants written:    500" in result.output
    assert (tmp_path / "application_train.csv").is_file() and (tmp_path / "bureau.csv").is_file()
    refused = CliRunner().invoke(app, ["data", "generate", "--dataset", "nope", "--out",
                                       str(tmp_path)])
    assert refused.exit_code == 2
