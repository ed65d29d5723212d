"""The demo picks the model that can read its data file, and refuses an unknown dataset."""

from __future__ import annotations

from pathlib import Path

from cards import model_card  # tests/cards.py
from typer.testing import CliRunner

from cli.demo import DEMO_DATASETS, _reads
from cli.main import app
from onnx_models.card import ModelCard


def _card(id_column: str, fields: list[str], target: str | None = "TARGET") -> ModelCard:
    return model_card(dataset={"id_column": id_column, "customer_id_column": id_column,
                               "target_column": target},
                      serving={"event_fields": [{"name": name, "kind": "numeric",
                                                 "check": "number"} for name in fields]})


def test_a_model_serves_a_demo_file_only_when_the_file_has_its_event_columns(tmp_path: Path) -> None:
    applications = tmp_path / "application_train.csv"
    applications.write_text("SK_ID_CURR,TARGET,EXT_SOURCE_2,AMT_CREDIT\n100002,0,0.3,1000.0\n")
    assert _reads(_card("SK_ID_CURR", ["EXT_SOURCE_2", "AMT_CREDIT"]), applications)
    assert not _reads(_card("id", ["loan_amnt"]), applications)
    assert not _reads(model_card(), applications)  # a card without serving
    # a card written before outcome columns were recorded: the back-test could not run
    assert not _reads(_card("SK_ID_CURR", ["EXT_SOURCE_2"], target=None), applications)


def test_demo_offers_lending_club_by_default_and_home_credit() -> None:
    assert DEMO_DATASETS["generated"].loan_file == "loans.csv"
    assert DEMO_DATASETS["home_credit"].loan_file == "application_train.csv"
    result = CliRunner().invoke(app, ["demo", "--dataset", "nope"])
    assert result.exit_code == 2 and "home_credit" in result.output
