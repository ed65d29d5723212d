"""The console serving a Home Credit model: everything it shows comes from that model's card.

A small Home Credit model is trained once per session on generated files; decision records
are made from the generated applications exactly as the worker makes them (the card's
event schema, the hc_bureau view's values, the same encoder, model and policy).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_console import FakeDataSource, _app, _button, _charts, _texts

from console.card import ConsoleCard
from console.data import ScoreOutcome
from features.normalize import utc_timestamp
from features.views import aggregate_view
from onnx_models.registry import Registry
from replay.core import EventLayout, application_event
from stream.decisions import DecisionRecord
from stream.model_runtime import LoadedModel, load_serving_model
from stream.pipeline import build_decision
from stream.validation import ValidApplication, validate_application

# Run the page as `creditrisk console` does, bound to 127.0.0.1 (tests/test_stream/conftest.py).
pytestmark = pytest.mark.usefixtures("console_on_loopback")

ROWS = 3_000
RECORDS = 160
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def home_credit_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.generate_home_credit import generate_home_credit_files

    folder = tmp_path_factory.mktemp("home-credit")
    generate_home_credit_files(rows=ROWS, seed=31, out_dir=folder, show_progress=False)
    return folder


@pytest.fixture(scope="session")
def home_credit_model(home_credit_files: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    from quick_training import quick_config  # tests/quick_training.py

    from training.pipeline import run_training

    root = tmp_path_factory.mktemp("home-credit-registry")
    run_training(home_credit_files / "application_train.csv", "home_credit", registry_dir=root,
                 config=quick_config(folds=2), report_dir=root / "_report", progress=False,
                 log=lambda _line: None)
    registry = Registry(root)
    return load_serving_model(registry, registry.live_version() or "")


def _decide(model: LoadedModel, row: dict[str, Any], bureau: pd.DataFrame,
            moment: datetime) -> DecisionRecord:
    """One record as the worker stores it, read back as the console reads it."""
    event = application_event(row, EventLayout.from_card(model.card), now=moment)
    valid = validate_application(json.dumps(event).encode(), model.event_schema)
    assert isinstance(valid, ValidApplication), valid
    view_fields = list(bureau.columns)
    known = valid.customer_id in bureau.index
    stored = {name: float(value) for name, value in bureau.loc[valid.customer_id].items()
              if pd.notna(value)} if known else {}
    features = {**valid.application, **stored}
    (verdict,) = model.score(model.encoder.transform_records([features]), [not known])
    decision = build_decision(valid, verdict, model, [] if known else view_fields,
                              utc_timestamp(moment + timedelta(seconds=1)))
    record = DecisionRecord(decision, dict(valid.application), features, [],
                            {"applications_24h": 1, "applications_7d": 1})
    return DecisionRecord.from_json(record.to_json())


@pytest.fixture(scope="session")
def home_credit_records(home_credit_model: LoadedModel, home_credit_files: Path,
                        ) -> list[DecisionRecord]:
    """Decisions of the last generated applicants (not trained on ... the split is random, so
    some were), newest first."""
    (view,) = home_credit_model.serving.views
    bureau = aggregate_view(pd.read_csv(home_credit_files / "bureau.csv"), view)
    rows = pd.read_csv(home_credit_files / "application_train.csv", dtype=str,
                       keep_default_na=False).tail(RECORDS).to_dict("records")
    records = [_decide(home_credit_model, row, bureau, START + timedelta(hours=index))
               for index, row in enumerate(rows)]
    return sorted(records, key=lambda item: item.decision.decided_at, reverse=True)


@pytest.fixture
def hc_source(home_credit_model: LoadedModel,
              home_credit_records: list[DecisionRecord]) -> FakeDataSource:
    return FakeDataSource(home_credit_model.card, home_credit_records, home_credit_model)


def _declined(records: list[DecisionRecord]) -> DecisionRecord:
    return next(item for item in records if item.decision.decision == "decline"
                and not item.decision.missing_features)


def test_find_filters_on_the_cards_fields(hc_source, home_credit_records):
    app = _app(hc_source)
    labels = [item.label for item in app.multiselect]
    assert {"Decision", "Risk grade", "Contract type", "Income type"} <= set(labels)
    assert "Purpose" not in labels and "Home ownership" not in labels
    assert {"Credit amount from", "Credit amount to"} <= {item.label for item in app.number_input}
    table = app.dataframe[0].value
    assert {"NAME_CONTRACT_TYPE", "NAME_INCOME_TYPE", "AMT_CREDIT"} <= set(table.columns)
    next(item for item in app.multiselect if item.label == "Contract type") \
        .set_value(["Revolving loans"]).run()
    shown = app.dataframe[0].value
    expected = sum(item.application.get("NAME_CONTRACT_TYPE") == "Revolving loans"
                   for item in home_credit_records)
    assert len(shown) == expected > 0 and set(shown["NAME_CONTRACT_TYPE"]) == {"Revolving loans"}


def test_a_home_credit_decline_is_explained_in_the_configs_words(hc_source, home_credit_records):
    from training.datasets import load_dataset_config

    target = _declined(home_credit_records).decision
    app = _app(hc_source)
    app.text_input(key="lookup_id").input(target.application_id)
    _button(app, "Look up").click().run()
    texts = _texts(app)
    assert "Bad credit — decline" in texts
    described = {text for text, _ in load_dataset_config("home_credit").feature_descriptions.values()}
    for reason in target.reasons:
        assert reason.text in texts and reason.text.split(":")[0] in described
    shown = [item.value for item in app.markdown]
    if "**What pulled the risk down:**" in shown:
        lowering = shown[shown.index("**What pulled the risk down:**") + 1]
        labels = {ConsoleCard(hc_source.card).input_label(name) for name in
                  hc_source.card.feature_names}
        assert all(line[2:].split(":")[0] in labels | described
                   for line in lowering.splitlines())


def test_the_profile_shows_the_application_and_the_bureau_view(hc_source, home_credit_records):
    target = _declined(home_credit_records)
    app = _app(hc_source, view="Profile", application_id=target.decision.application_id)
    subheaders = [item.value for item in app.subheader]
    assert subheaders == ["Application", "Credits at other lenders reported by the credit bureau",
                          "Recent activity"]
    application, bureau, velocity = (table.value.set_index("Field") for table in app.table)
    assert "Total income" in application.index and "Contract type" in application.index
    assert application.loc["Contract type", "Value"] == target.application["NAME_CONTRACT_TYPE"]
    assert "Credits at other lenders" in bureau.index
    assert set(bureau["Status"]) <= {"ok", "MISSING"}
    assert "Applications in the last 24 hours" in velocity.index
    missing = next(item for item in home_credit_records if item.decision.missing_features)
    app = _app(hc_source, view="Profile", application_id=missing.decision.application_id)
    assert set(app.table[1].value["Status"]) == {"MISSING"}


def test_compare_groups_by_contract_and_income_type(hc_source, home_credit_records):
    target = _declined(home_credit_records)
    application = target.application
    app = _app(hc_source, view="Compare", application_id=target.decision.application_id)
    texts = _texts(app)
    assert "the same contract type and the same income type" in texts
    assert (f"Contract type “{application['NAME_CONTRACT_TYPE']}”, "
            f"Income type “{application['NAME_INCOME_TYPE']}”") in texts
    compared = ConsoleCard(hc_source.card).compare_features()
    assert len(compared) == 6 and len(_charts(app)) == 6
    importance = hc_source.card.model.feature_importance
    assert compared[0].name == max((f.name for f in hc_source.card.features
                                    if f.type == "numeric"), key=importance.__getitem__)
    assert all(f"**{feature.label}:" in texts for feature in compared)
    assert "of all customers" in texts
    assert "Loan purpose" not in texts and "annual income" not in texts.lower()


def test_the_form_asks_for_the_cards_event_fields(hc_source, home_credit_records):
    declined = _declined(home_credit_records).decision
    hc_source.outcome = ScoreOutcome("decided", decision=declined)
    app = _app(hc_source, view="New application")
    numbers = {item.label for item in app.number_input}
    choices = {item.label: list(item.options) for item in app.selectbox}
    assert {"Total income (optional)", "Credit amount (optional)",
            "External credit score 2 (optional)"} <= numbers
    assert "Cash loans" in choices["Contract type (optional)"]
    assert "Loan amount" not in numbers and "Purpose" not in choices
    next(item for item in app.text_input if item.label == "Customer ID").input("hc-new-1")
    next(item for item in app.selectbox if item.label == "Contract type (optional)") \
        .set_value("Revolving loans")
    _button(app, "Score application").click().run()
    assert "Result: :red[**Bad credit — decline**]" in _texts(app)
    (event,) = hc_source.scored
    assert event["customer_id"] == "hc-new-1" and event["NAME_CONTRACT_TYPE"] == "Revolving loans"
    assert isinstance(event["AMT_CREDIT"], int | float)
    assert set(event) - {"application_id", "customer_id", "submitted_at"} == \
        set(ConsoleCard(hc_source.card).serving.event_field_names)
