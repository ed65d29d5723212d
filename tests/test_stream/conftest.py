"""Fixtures for the stream worker: a small trained model in a registry of the test's own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def generated_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated loans.csv + bureau.csv (deterministic)."""
    from training.generate import generate_loan_files

    folder = tmp_path_factory.mktemp("stream-data")
    generate_loan_files(rows=14000, seed=21, out_dir=folder, show_progress=False)
    return folder


@pytest.fixture(scope="session")
def trained_registry_template(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding one trained, promoted model (trained once per session)."""
    from training.pipeline import run_training
    from training.training_config import TrainingConfig

    root = tmp_path_factory.mktemp("registry-template")
    run_training(generated_data / "loans.csv", "generated", registry_dir=root,
                 config=TrainingConfig(folds=2), report_dir=root / "_report",
                 progress=False, log=lambda _line: None)
    return root


@pytest.fixture
def registry_dir(trained_registry_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained registry a test may promote into or break."""
    target = tmp_path / "registry"
    shutil.copytree(trained_registry_template, target, ignore=shutil.ignore_patterns("_report"))
    return target


@pytest.fixture(scope="session")
def clean_frame(generated_data: Path) -> pd.DataFrame:
    """The generated loans, cleaned as training cleans them, one row per application."""
    from training.cleaning import clean_loans
    from training.datasets import load_dataset_config, load_raw

    config = load_dataset_config("generated")
    frame, _ = clean_loans(load_raw(generated_data / "loans.csv", config), config)
    return frame.drop_duplicates("application_id").reset_index(drop=True)


@pytest.fixture
def console_on_loopback() -> Iterator[None]:
    """The console as `creditrisk console` runs it (bound to 127.0.0.1): with no address,
    Streamlit listens everywhere and the page then asks for a password."""
    from streamlit import config as streamlit_config

    before = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", "127.0.0.1")
    yield
    streamlit_config.set_option("server.address", before)
