"""The relationship-manager console, driven through Streamlit's AppTest.

Unit tests give the app an in-memory :class:`FakeDataSource` (through
``st.session_state["data_source"]``) holding decision records made by the real trained
model of the session registry, exactly as the worker stores them. The integration test
reads records written to the real local Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from console_session import sign_in_as  # tests/test_console/console_session.py
from streamlit.testing.v1 import AppTest

from console import data
from console.card import ConsoleCard, SimilarGroup
from console.data import ConsoleUnavailable, ScoreOutcome
from console.find import PAGE_SIZE, DecisionFilters, DecisionPage, find_in_records
from console.records import Parsed
from features.normalize import utc_timestamp
from onnx_models.card import ModelCard
from onnx_models.policy import ScoreScale
from onnx_models.registry import Registry
from stream.decisions import Decision, DecisionRecord
from stream.model_runtime import LoadedModel, load_serving_model
from stream.pipeline import build_decision
from stream.validation import ValidApplication, validate_application

APP = str(Path(__file__).resolve().parents[2] / "console" / "app.py")
RUN_TIMEOUT_S = 60
START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
TARGET = "app-target"          # a risky debt-consolidation applicant, income 50-75k
MISSING_BUREAU = "app-nobureau"
STALE_BUREAU = "app-stale"


# ---- realistic records ------------------------------------------------------------------

def _application(index: int, rng: np.random.Generator, **overrides: Any) -> dict[str, Any]:
    purpose = "debt_consolidation" if index % 2 == 0 else rng.choice(
        ["credit_card", "home_improvement", "car"])
    event = {
        "application_id": f"app-{index:03d}", "customer_id": f"cust-{index % 17:03d}",
        "submitted_at": utc_timestamp(START + timedelta(hours=index)),
        "loan_amnt": float(rng.choice([5000, 8000, 12000, 15000, 24000])),
        "term": int(rng.choice([36, 60])), "purpose": str(purpose),
        "annual_inc": float(rng.choice([52_000, 60_000, 68_000, 90_000, 120_000])),
        "emp_length": int(rng.integers(0, 11)), "home_ownership": str(rng.choice(["RENT", "MORTGAGE", "OWN"])),
        "verification_status": "Verified", "addr_state": "CA",
    }
    return event | overrides


def _bureau(rng: np.random.Generator, **overrides: Any) -> dict[str, Any]:
    annual_debt_share = float(rng.uniform(0.05, 0.35))
    values = {
        "earliest_cr_line": f"{int(rng.integers(1990, 2020))}-0{int(rng.integers(1, 9))}-01",
        "delinq_2yrs": float(rng.choice([0, 0, 0, 1])), "inq_last_6mths": float(rng.integers(0, 4)),
        "open_acc": float(rng.integers(3, 20)), "total_acc": float(rng.integers(8, 40)),
        "pub_rec": 0.0, "revol_bal": float(rng.integers(1000, 30000)),
        "revol_util": float(rng.uniform(5, 95)), "mths_since_last_delinq": None,
        "monthly_debt": round(annual_debt_share * 60_000 / 12, 2),
    }
    return values | overrides


def _decide(model: LoadedModel, event: dict[str, Any], bureau: dict[str, Any] | None,
            stale: bool = False) -> DecisionRecord:
    """One record as the worker stores it (same encoder, model, policy and JSON), read back
    as the console reads it."""
    valid = validate_application(json.dumps(event).encode(), model.event_schema)
    assert isinstance(valid, ValidApplication)
    features: dict[str, Any] = {**valid.application, "issue_d": valid.submitted_at,
                                "applications_24h": 1, "applications_7d": 2}
    bureau_fields = list(_bureau(np.random.default_rng(0)))
    if bureau is not None and not stale:
        features.update({name: value for name, value in bureau.items() if value is not None})
    inputs = model.encoder.transform_records([features])
    usable = bureau is not None and not stale
    (verdict,) = model.score(inputs, [not usable])
    missing = [] if usable else bureau_fields
    decision = build_decision(valid, verdict, model, missing,
                              utc_timestamp(valid.submitted_at + timedelta(seconds=1)))
    record = DecisionRecord(decision, dict(valid.application), features,
                            bureau_fields if stale else [], {"applications_24h": 1,
                                                             "applications_7d": 2})
    return DecisionRecord.from_json(record.to_json())


@pytest.fixture(scope="session")
def serving_model(trained_registry_template: Path) -> LoadedModel:
    registry = Registry(trained_registry_template)
    return load_serving_model(registry, registry.live_version() or "")


@pytest.fixture(scope="session")
def decision_records(serving_model: LoadedModel) -> list[DecisionRecord]:
    """40 decisions, newest first, incl. a declined target with 14 similar customers, one
    without bureau data and one with stale bureau data."""
    rng = np.random.default_rng(7)
    records = [_decide(serving_model, _application(index, rng), _bureau(rng))
               for index in range(36)]
    for index in range(36, 38):  # more of the target's group
        records.append(_decide(serving_model, _application(
            index, rng, purpose="debt_consolidation", annual_inc=55_000.0), _bureau(rng)))
    risky = _bureau(rng, revol_util=99.0, inq_last_6mths=6.0, delinq_2yrs=3.0,
                    monthly_debt=2400.0, mths_since_last_delinq=3.0,
                    earliest_cr_line="2019-01-01")
    records.append(_decide(serving_model, _application(
        38, rng, application_id=TARGET, customer_id="cust-target", purpose="debt_consolidation",
        annual_inc=55_000.0, loan_amnt=30_000.0, term=60, emp_length=0, home_ownership="RENT"),
        risky))
    records.append(_decide(serving_model, _application(39, rng, application_id=MISSING_BUREAU),
                           None))
    records.append(_decide(serving_model, _application(40, rng, application_id=STALE_BUREAU),
                           _bureau(rng), stale=True))
    return sorted(records, key=lambda item: item.decision.decided_at, reverse=True)


class FakeDataSource:
    """In-memory DataSource: records newest first, the real card, a canned score answer."""

    def __init__(self, card: ModelCard, records: list[DecisionRecord],
                 model: LoadedModel | None = None, outcome: ScoreOutcome | None = None,
                 failure: Exception | None = None, ledger_down: bool = False,
                 unreadable: int = 0) -> None:
        self.card = card
        self.ledger_down = ledger_down
        self.records = {item.decision.application_id: item for item in records}
        self.order = [item.decision.application_id for item in records]
        self.unreadable = unreadable  # stored records that "did not parse" (skipped)
        self.model = model
        self.outcome = outcome or ScoreOutcome("unavailable", detail="no worker in this test")
        self.failure = failure
        self.scored: list[dict[str, Any]] = []

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def model_card(self) -> ModelCard:
        return self.card

    def served_model(self, version: str) -> LoadedModel | None:
        return self.model if self.model is not None and self.model.version == version else None

    def recent_records(self, limit: int = data.RECENT_LIMIT) -> Parsed[DecisionRecord]:
        self._check()
        return Parsed([self.records[app_id] for app_id in self.order[:limit]], self.unreadable)

    def record(self, application_id: str) -> DecisionRecord | None:
        self._check()
        return self.records.get(application_id)

    def customer_application_ids(self, customer_id: str) -> Parsed[str]:
        self._check()
        return Parsed([app_id for app_id in self.order
                       if self.records[app_id].decision.customer_id == customer_id], self.unreadable)

    def find(self, card: ConsoleCard, filters: DecisionFilters, limit: int = PAGE_SIZE,
             offset: int = 0) -> DecisionPage:
        """The ledger's answer over these records (the same filters); the recent ones when
        the ledger is down."""
        self._check()
        if self.ledger_down:
            return find_in_records(self.recent_records(), card, filters, limit, offset)
        everything = Parsed([self.records[a] for a in self.order], self.unreadable)
        page = find_in_records(everything, card, filters, limit, offset)
        return dataclasses.replace(page, searched="ledger", searched_count=None)

    def score(self, event: dict[str, Any]) -> ScoreOutcome:
        self.scored.append(event)
        return self.outcome

    def similar(self, card: ConsoleCard, group: SimilarGroup, exclude_application: str | None,
                ) -> data.SimilarCustomers:
        self._check()
        records = data.similar_records([self.records[a] for a in self.order], card, group,
                                       exclude_application)
        return data.SimilarCustomers(records, data.SIMILAR_GROUP_DEFINITION.format(
            definition=card.group_definition(), count="5,000"), self.unreadable)

    def backtest(self) -> list[Any]:
        """The back-test of these records, each loan bad with its own PD's odds (seeded)."""
        import pandas as pd

        from ledger.backtest import auc_estimate, backtest_version

        self._check()
        rng = np.random.default_rng(5)
        decisions = [self.records[a].decision for a in self.order]
        frame = pd.DataFrame({
            "probability_of_default": [d.probability_of_default for d in decisions],
            "score": [d.score for d in decisions], "risk_grade": [d.risk_grade for d in decisions],
            "decision": [d.decision for d in decisions],
            "month": pd.to_datetime([d.submitted_at[:7] + "-01" for d in decisions])})
        frame["outcome"] = np.where(rng.random(len(frame)) < frame["probability_of_default"], "bad", "good")
        return [backtest_version(decisions[0].model_version, frame,
                                 reference_auc=auc_estimate(0.70, 2_000, 8_000))]


@pytest.fixture
def source(serving_model: LoadedModel, decision_records: list[DecisionRecord]) -> FakeDataSource:
    return FakeDataSource(serving_model.card, decision_records, serving_model)


def _app(source: Any, **state: Any) -> AppTest:
    app = sign_in_as(AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S))
    app.session_state["data_source"] = source
    for name, value in state.items():
        app.session_state[name] = value
    app.run()
    assert not app.exception, app.exception
    return app


def _texts(app: AppTest) -> str:
    parts = [item.value for kind in ("markdown", "header", "subheader", "caption", "info",
                                     "warning", "error", "success")
             for item in getattr(app, kind)]
    parts += [f"{metric.label}: {metric.value}" for metric in app.metric]
    return "\n".join(str(part) for part in parts)


def _charts(app: AppTest) -> list[Any]:
    return app.get("plotly_chart")


def _button(app: AppTest, label: str) -> Any:
    return next(button for button in app.button if button.label == label)


# ---- Find ------------------------------------------------------------------------------

def test_no_decisions_yet_shows_an_empty_state(serving_model):
    app = _app(FakeDataSource(serving_model.card, []))
    assert "No decisions yet" in _texts(app)


def test_decisions_are_listed_newest_first_and_filtered(source, decision_records):
    app = _app(source)
    table = app.dataframe[0].value
    assert len(table) == len(decision_records)
    assert table["decided_at"].is_monotonic_decreasing
    assert f"{len(decision_records)} decisions in the ledger match" in _texts(app)
    next(item for item in app.multiselect if item.label == "Decision").set_value(["decline"]).run()
    declined = app.dataframe[0].value
    expected = sum(item.decision.decision == "decline" for item in decision_records)
    assert len(declined) == expected > 0
    assert set(declined["decision"]) == {"decline"}
    assert f"{expected} decisions in the ledger match the filters" in _texts(app)


def test_find_filters_by_score_category_customer_and_model_version(source, decision_records):
    app = _app(source)
    assert {"Decision", "Risk grade", "Purpose", "Home ownership"} <= {item.label for item in app.multiselect}
    next(item for item in app.multiselect if item.label == "Purpose") \
        .set_value(["debt_consolidation"]).run()
    app.number_input(key="find-score-high").set_value(600).run()
    table = app.dataframe[0].value
    expected = [item.decision.application_id for item in decision_records
                if item.application["purpose"] == "debt_consolidation"
                and item.decision.score <= 600]
    assert table["application_id"].tolist() == expected and expected
    app.text_input(key="find-customer").input("cust-target").run()
    assert app.dataframe[0].value["application_id"].tolist() == [TARGET]
    app.text_input(key="find-model").input("no-such-version").run()
    assert "No decision matches these filters." in _texts(app)


def test_find_pages_through_every_match(serving_model, decision_records):
    many = []
    for copy in range(3):  # 123 decisions: three pages of 50
        for item in decision_records:
            many.append(dataclasses.replace(item, decision=msgspec.structs.replace(
                item.decision, application_id=f"{item.decision.application_id}-{copy}")))
    app = _app(FakeDataSource(serving_model.card, many))
    assert len(app.dataframe[0].value) == PAGE_SIZE
    assert f"{len(many)} decisions in the ledger match the filters; showing 1–50" in _texts(app)
    app.number_input(key="find_page").set_value(3).run()
    last = app.dataframe[0].value
    assert last["application_id"].tolist() == [r.decision.application_id for r in many[100:]]
    next(item for item in app.multiselect if item.label == "Decision").set_value(["decline"]).run()
    assert not app.exception and len(app.dataframe[0].value) > 0  # back to a page that exists


def test_find_says_when_only_the_recent_decisions_in_redis_are_searched(serving_model,
                                                                       decision_records):
    app = _app(FakeDataSource(serving_model.card, decision_records, ledger_down=True))
    warning = " ".join(item.value for item in app.warning)
    assert "decision ledger (PostgreSQL) does not answer" in warning
    assert f"only the {len(decision_records)} most recent decisions kept in Redis" in warning
    assert f"{len(decision_records)} of the {len(decision_records)} most recent" in _texts(app)


def test_the_filters_select_the_same_decisions_in_redis_as_in_the_ledger_sql():
    from datetime import date

    from console.find import ledger_conditions

    filters = DecisionFilters(decisions=["decline"], grades=["E", "F"], score_range=(550, None),
                              date_range=(date(2026, 11, 1), date(2026, 11, 2)),
                              customer_id=" cust-1 ", model_version="v9",
                              categories={"purpose": ["car", "it's"], "term": []},
                              amount_field="loan_amnt", amount_range=(None, 20_000.0))
    conditions, parameters = ledger_conditions(filters)
    assert conditions == [
        "decision = ANY(%s)", "risk_grade = ANY(%s)", "score >= %s", "decided_at >= %s",
        "decided_at < %s", "customer_id = %s", "model_version = %s",
        "(application @> %s::jsonb OR application @> %s::jsonb)",
        "CASE WHEN jsonb_typeof(application -> %s) = 'number' THEN (application ->> %s)::double "
        "precision END <= %s"]
    assert parameters == [
        ["decline"], ["E", "F"], 550, datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 3, tzinfo=UTC), "cust-1", "v9",
        '{"purpose": "car"}', '{"purpose": "it\'s"}', "loan_amnt", "loan_amnt", 20_000.0]
    assert ledger_conditions(DecisionFilters()) == ([], [])
    assert DecisionFilters().is_empty and not filters.is_empty


def test_looking_up_an_application_id_opens_its_decision_with_reasons(source, decision_records):
    app = _app(source)
    app.text_input(key="lookup_id").input(TARGET)
    _button(app, "Look up").click().run()
    assert not app.exception
    assert app.sidebar.radio(key="view").value == "Decision"
    target = next(item for item in decision_records
                  if item.decision.application_id == TARGET).decision
    assert target.decision == "decline"
    texts = _texts(app)
    assert "Bad credit — decline" in texts
    for reason in target.reasons:
        assert reason.text in texts
    assert f"{100 * target.probability_of_default:.1f} %" in texts
    assert len(_charts(app)) == 2  # the score gauge and the factor bars


def test_looking_up_a_customer_lists_their_applications(source, decision_records):
    app = _app(source)
    app.text_input(key="lookup_id").input("cust-003")
    _button(app, "Look up").click().run()
    expected = [item.decision.application_id for item in decision_records
                if item.decision.customer_id == "cust-003"]
    choice = app.selectbox(key="customer_application")
    assert list(choice.options) == expected and len(expected) >= 2
    choice.set_value(expected[1])
    _button(app, "Open this application").click().run()
    assert app.session_state["application_id"] == expected[1]
    assert app.sidebar.radio(key="view").value == "Decision"


def test_an_unknown_id_says_nothing_was_found(source):
    app = _app(source)
    app.text_input(key="lookup_id").input("nobody-42")
    _button(app, "Look up").click().run()
    assert "No decision found for application or customer “nobody-42”" in _texts(app)


# ---- Decision --------------------------------------------------------------------------

def test_decision_view_says_what_the_score_means_and_what_lowered_the_risk(source):
    app = _app(source, view="Decision", application_id=TARGET)
    texts = _texts(app)
    assert "600 points means 30:1" in texts and "every 20 points more doubles" in texts
    assert "Risk grade" in texts and "What pushed the risk up" in texts
    assert "What pulled the risk down" in texts
    shown = [item.value for item in app.markdown]
    lowering = shown[shown.index("**What pulled the risk down:**") + 1]
    # A factor that lowered the risk shows the customer's own value, not a risky-side text.
    assert all(re.fullmatch(r"- [^:]+: \S.*", line) for line in lowering.splitlines())
    gauge = _charts(app)[0].proto.spec
    assert '"steps"' in gauge and "Score" in gauge
    assert "Model " in texts and "decided" in texts


def test_the_console_explains_a_decision_with_the_workers_own_contributions(
        serving_model, decision_records):
    """What pulled the risk down comes from the same contributions that made the worker's
    reasons: re-scoring the stored inputs gives the published reasons again, and no factor
    is shown both as raising and as lowering the risk."""
    record = next(item for item in decision_records if item.decision.application_id == TARGET)
    inputs = serving_model.encoder.transform_records([record.features])
    verdict = serving_model.score(inputs, [bool(record.decision.missing_features)])[0]
    assert verdict.reasons == record.decision.reasons
    lowering = data.risk_lowering_factors(serving_model, record.features)
    impacts = [factor.impact for factor in lowering]
    assert lowering and all(impact < 0 for impact in impacts) and impacts == sorted(impacts)
    raising = {reason.feature for reason in record.decision.reasons}
    contributions = serving_model.contributions(inputs)[0, :-1]
    slope = serving_model.card.calibration.log_odds_factor
    negative = sorted(round(float(value) * slope, 4) for value in contributions if value * slope < 0)
    assert impacts == negative[:len(impacts)]
    assert not raising & {name for name, value in zip(serving_model.feature_names, contributions,
                                                       strict=True) if value * slope < 0}


def test_missing_bureau_data_is_explained_as_the_first_reason(source):
    app = _app(source, view="Decision", application_id=MISSING_BUREAU)
    texts = _texts(app)
    assert "Credit bureau information unavailable" in texts
    assert "refer for review" in texts


def test_a_link_with_an_application_id_opens_that_view(source):
    app = sign_in_as(AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S))
    app.session_state["data_source"] = source
    app.query_params["application_id"] = TARGET
    app.query_params["view"] = "Profile"
    app.run()
    assert app.sidebar.radio(key="view").value == "Profile"
    assert f"Customer cust-target — application {TARGET}" in _texts(app)


def test_decision_view_without_a_selection_points_to_find(source):
    app = _app(source, view="Decision")
    assert "Look one up in **Find** first" in _texts(app)


# ---- Profile ---------------------------------------------------------------------------

def test_profile_marks_missing_and_stale_bureau_values(source):
    app = _app(source, view="Profile", application_id=STALE_BUREAU)
    bureau = app.table[1].value
    assert set(bureau["Status"]) == {"STALE — too old, not used"}
    app = _app(source, view="Profile", application_id=MISSING_BUREAU)
    assert set(app.table[1].value["Status"]) == {"MISSING"}
    app = _app(source, view="Profile", application_id=TARGET)
    application, bureau, velocity = (table.value for table in app.table)
    assert "Revolving utilisation (%)" in set(bureau["Field"])
    assert bureau.set_index("Field").loc["Revolving utilisation (%)", "Value"] == "99"
    assert set(velocity["Value"]) == {"1", "2"}
    assert application.set_index("Field").loc["Purpose", "Value"] == "debt_consolidation"


# ---- Compare ---------------------------------------------------------------------------

def test_compare_plots_the_customer_against_all_and_similar_customers(source):
    app = _app(source, view="Compare", application_id=TARGET)
    texts = _texts(app)
    assert "the same purpose and the same annual income band" in texts
    assert "Purpose “debt_consolidation”, Annual income 50,000–75,000" in texts
    compared = ConsoleCard(source.card).compare_features()
    assert len(compared) == 6 and len(_charts(app)) == 6
    assert "Revolving credit utilisation (%)" in [feature.label for feature in compared]
    # 99 % utilisation: above ~95 % of all customers.
    assert re.search(r"Revolving credit utilisation \(%\): 99\.\*\* Higher than 9\d % of all", texts)
    assert "of similar customers" in texts and "of all customers" in texts
    assert "this customer" in _charts(app)[0].proto.spec


def test_a_small_similar_group_is_said_so(source):
    app = _app(source, view="Compare", application_id="app-001")
    assert "similar customers found (at least 10 are needed)" in _texts(app)
    assert len(_charts(app)) == 6


# ---- New application -------------------------------------------------------------------

def _fill_form(app: AppTest, customer_id: str = "cust-new", state: str = "NY",
               application_id: str = "app-manual-1") -> AppTest:
    next(item for item in app.text_input if item.label == "Application ID").input(application_id)
    next(item for item in app.text_input if item.label == "Customer ID").input(customer_id)
    next(item for item in app.text_input if item.label == "State").input(state)
    _button(app, "Score application").click().run()
    assert not app.exception
    return app


def test_form_refuses_invalid_input_without_calling_the_worker(source):
    app = _app(source, view="New application")
    _fill_form(app, customer_id="", state="")
    errors = _texts(app)
    assert "Customer ID is required." in errors and "State is required." in errors
    assert source.scored == []


def test_form_has_one_input_per_event_field_of_the_card(source):
    app = _app(source, view="New application")
    numbers = {item.label: item.value for item in app.number_input}
    choices = {item.label: list(item.options) for item in app.selectbox}
    assert set(numbers) == {"Loan amount", "Term (months)", "Annual income",
                            "Years in current job (optional)"}
    assert numbers["Term (months)"] in (36, 60) and numbers["Annual income"] > 10_000
    assert "debt_consolidation" in choices["Purpose"] and "RENT" in choices["Home ownership"]
    assert "Income verification" in choices


def test_form_shows_the_services_decision_with_reasons(source, decision_records):
    declined = next(item.decision for item in decision_records
                    if item.decision.application_id == TARGET)
    source.outcome = ScoreOutcome("decided", decision=declined)
    app = _fill_form(_app(source, view="New application"))
    texts = _texts(app)
    assert "Result: :red[**Bad credit — decline**]" in texts
    assert declined.reasons[0].text in texts
    (event,) = source.scored
    assert event["application_id"] == "app-manual-1"
    assert event["customer_id"] == "cust-new" and event["addr_state"] == "NY"
    assert event["term"] in (36, 60) and event["submitted_at"].endswith("Z")


def test_form_shows_the_workers_refusal_next_to_the_form(source):
    source.outcome = ScoreOutcome("rejected", detail="purpose must be a non-empty loan purpose")
    app = _fill_form(_app(source, view="New application"))
    assert "refused the application: purpose must be a non-empty loan purpose" in _texts(app)


def test_form_says_when_the_worker_is_down():
    outcome = data.post_score("http://127.0.0.1:9", {"application_id": "x"})
    assert outcome.kind == "unavailable" and "creditrisk worker" in outcome.detail


ANSWERED = Decision(application_id="a1", customer_id="c1", decision_id="d1", decision="approve",
                    probability_of_default=0.031, score=610, risk_grade="B", model_version="m1",
                    policy_version="p1", submitted_at="2026-11-01T09:00:00.000Z",
                    decided_at="2026-11-01T09:00:01.000Z").to_dict()


@pytest.mark.parametrize(("status", "body", "kind"), [
    (200, ANSWERED, "decided"),
    (200, {"decision": "approve", "score": 610}, "unavailable"),  # not the decision contract
    (422, {"error": "invalid_value", "detail": "addr_state must be a two-letter state code"},
     "rejected"),
    (503, {"error": "unavailable", "detail": "scoring failed: RedisError"}, "unavailable"),
])
def test_the_workers_answers_become_what_the_form_shows(status, body, kind):
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Worker(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's method naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Worker)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        outcome = data.post_score(f"http://127.0.0.1:{server.server_port}", {"customer_id": "c1"})
    finally:
        server.server_close()
    assert received == [{"customer_id": "c1"}] and outcome.kind == kind
    if kind == "decided":
        assert outcome.decision == Decision.from_dict(body)
    elif kind == "rejected":
        assert outcome.detail == body["detail"]
    elif status == 200:
        assert "answered with something that is not a decision" in outcome.detail
        assert "application_id" in outcome.detail and outcome.decision is None
    else:
        assert "answered 503" in outcome.detail and "/health" in outcome.detail


# ---- failures ----------------------------------------------------------------------------

def test_redis_down_shows_what_to_do_not_a_trace(serving_model):
    down = FakeDataSource(serving_model.card, [], failure=ConsoleUnavailable(
        "Redis at redis://127.0.0.1:6379 does not answer"))
    app = _app(down)
    assert any("does not answer" in item.value for item in app.error)


def test_an_unexpected_failure_is_a_message_not_a_trace(serving_model):
    app = _app(FakeDataSource(serving_model.card, [], failure=KeyError("decision")))
    assert not app.exception
    assert "This view could not be shown (KeyError)" in app.error[0].value


def test_the_real_source_turns_an_unreachable_redis_into_a_clear_error(trained_registry_template):
    from config.settings import Settings

    settings = Settings(redis_url="redis://127.0.0.1:9/0", registry_dir=trained_registry_template,
                        redis_timeout_s=0.2)
    with pytest.raises(ConsoleUnavailable, match="creditrisk stack up"):
        data.RedisDataSource(settings).recent_records()


# ---- pure helpers ------------------------------------------------------------------------

def test_percentile_reads_the_reference_quantiles():
    values, levels = [0.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0], list(data.QUANTILE_LEVELS)
    assert data.percentile_in_reference(30.0, values, levels) == pytest.approx(50.0)
    assert data.percentile_in_reference(25.0, values, levels) == pytest.approx(37.5)
    assert data.percentile_in_reference(1000.0, values, levels) == pytest.approx(99.0)
    assert data.percentile_in_reference(0.0, values, levels) == pytest.approx(3.0)


def test_score_meaning_follows_the_model_card_scale():
    scale = ScoreScale(base_score=600, base_odds=30, points_to_double_odds=20)
    assert "odds of about 60:1" in data.score_meaning(620, scale)
    assert "odds of about 15:1" in data.score_meaning(580, scale)


# ---- integration: the real Redis ---------------------------------------------------------

def _write_to_redis(settings: Any, decision_records: list[DecisionRecord]) -> None:
    from features.store import async_client
    from stream.decisions import DecisionStore

    async def write() -> None:
        client = async_client(settings, "worker")
        await DecisionStore(client, settings.key_prefix).save(decision_records)
        await client.aclose()

    asyncio.run(write())


@pytest.mark.integration
def test_console_finds_decisions_in_the_real_ledger_and_reads_them_from_redis(
        namespace, decision_records, trained_registry_template):
    import psycopg
    from ledger_harness import private_database

    from ledger.store import insert_decisions
    from ledger.writer import LedgerMessage, decision_row

    with private_database(namespace.settings) as ledger_settings:
        settings = ledger_settings.model_copy(update={"registry_dir": trained_registry_template})
        _write_to_redis(settings, decision_records)
        rows = [decision_row(item.decision, item, LedgerMessage("t", 0, index, None))
                for index, item in enumerate(decision_records)]
        with psycopg.connect(settings.postgres_conninfo()) as connection, connection.transaction():
            insert_decisions(connection, rows)
        app = _app(data.RedisDataSource(settings))
        table = app.dataframe[0].value
        assert table["application_id"].tolist() == [r.decision.application_id
                                                    for r in decision_records]
        assert f"{len(decision_records)} decisions in the ledger match" in _texts(app)
        next(item for item in app.multiselect if item.label == "Decision").set_value(["decline"]).run()
        assert set(app.dataframe[0].value["decision"]) == {"decline"}
        app.text_input(key="lookup_id").input(TARGET)
        _button(app, "Look up").click().run()
        assert "Bad credit — decline" in _texts(app)
        app.sidebar.radio(key="view").set_value("Compare").run()
        assert len(_charts(app)) == 6


@pytest.mark.integration
def test_console_lists_the_recent_decisions_in_redis_when_the_ledger_is_down(
        namespace, decision_records, trained_registry_template):
    settings = namespace.settings.model_copy(update={"registry_dir": trained_registry_template,
                                                     "postgres_port": 9})
    _write_to_redis(settings, decision_records)
    app = _app(data.RedisDataSource(settings))
    assert len(app.dataframe[0].value) == len(decision_records)
    assert "decision ledger (PostgreSQL) does not answer" in app.warning[0].value
    assert f"{len(decision_records)} of the {len(decision_records)} most recent" in _texts(app)


@pytest.mark.integration
def test_an_unreadable_record_in_redis_is_left_out_and_said_so(
        namespace, decision_records, trained_registry_template):
    from features.store import sync_client

    settings = namespace.settings.model_copy(update={"registry_dir": trained_registry_template,
                                                     "postgres_port": 9})
    _write_to_redis(settings, decision_records)
    client = sync_client(settings, "worker")
    try:  # a record in another shape (an older or newer worker), the newest of all
        client.set(f"{settings.key_prefix}decision:app-broken", b'{"decision": {"score": "high"}}')
        client.zadd(f"{settings.key_prefix}decisions:recent", {"app-broken": 4_000_000_000})
    finally:
        client.close()
    app = _app(data.RedisDataSource(settings))
    assert app.dataframe[0].value["application_id"].tolist() == [
        r.decision.application_id for r in decision_records]
    assert "1 stored decision record could not be read" in _texts(app)
    app.text_input(key="lookup_id").input("app-broken")
    _button(app, "Look up").click().run()
    assert not app.exception and not app.error
    assert app.sidebar.radio(key="view").value == "Decision"
    assert "The stored decision of application “app-broken” could not be read" in _texts(app)


class _LedgerAnswer:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


class FakeLedger:
    """A psycopg connection answering each query in turn with the rows given."""

    def __init__(self, *answers: list[tuple[Any, ...]]) -> None:
        self.answers = list(answers)

    def execute(self, sql: str, parameters: Any = ()) -> _LedgerAnswer:
        return _LedgerAnswer(self.answers.pop(0))

    def transaction(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


def test_ledger_rows_that_are_not_decisions_are_skipped_and_counted():
    from console.find import find_in_ledger
    from ledger.rows import latest_record
    from stream.decisions import DecisionError

    decided = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    good = ("app-1", "cust-1", decided, "decline", "E", 540, 0.31, "m1", {"purpose": "car"})
    bad = ("app-2", "cust-2", decided, "maybe", "E", 540, 0.31, "m1", None)
    page = find_in_ledger(FakeLedger([], [(2,)], [good, bad]), DecisionFilters())
    assert [r.application_id for r in page.records] == ["app-1"]
    assert page.records[0].decided_at == decided and page.records[0].application == {"purpose": "car"}
    assert page.total == 2 and page.unreadable == 1

    similar = data.similar_from_ledger(FakeLedger([
        ({"purpose": "car"}, {"revol_util": 55.0}, "app-1", "decline", "E"),
        ({"purpose": "car"}, {}, "app-2", "approve", 7)]), SimilarGroup({"purpose": "car"}), None, 10)
    assert [(c.application_id, c.features) for c in similar.items] == [("app-1", {"revol_util": 55.0})]
    assert similar.unreadable == 1

    row = ("d1", "app-1", "cust-1", "decline", 0.31, 540, "E", [{"code": "R03"}], [], "m1", "p1",
           decided, decided, {"purpose": "car"}, {}, [], {}, {})
    with pytest.raises(DecisionError, match="reasons"):
        latest_record(FakeLedger([row]), "app-1")


def test_records_left_out_as_unreadable_are_counted_on_each_page(serving_model, decision_records):
    source = FakeDataSource(serving_model.card, decision_records, unreadable=2)
    notice = "2 stored decision records could not be read"
    app = _app(source)
    assert notice in _texts(app) and len(app.dataframe[0].value) == len(decision_records)
    app.text_input(key="lookup_id").input("cust-003")
    _button(app, "Look up").click().run()
    assert notice in _texts(app) and "Customer cust-003 has" in _texts(app)
    app = _app(source, view="Compare", application_id=TARGET)
    assert notice in _texts(app) and len(_charts(app)) == 6
    assert notice not in _texts(_app(FakeDataSource(serving_model.card, decision_records)))


def test_model_performance_shows_the_back_test_of_matured_loans(source: FakeDataSource) -> None:
    app = _app(source, view="Model performance")
    assert app.header[0].value == "Model performance"
    shown = {metric.label: metric.value for metric in app.metric}
    expected = source.backtest()[0]
    assert shown["Matured"] == f"{expected.matured:,}"
    assert expected.auc is not None and expected.calibration_error is not None
    assert shown["Realised AUC"] == expected.auc.text()
    assert shown["Realised AUC"].startswith(f"{expected.auc.value:.3f} [")
    assert shown["Calibration error"] == expected.calibration_error.text()
    assert (f"realised AUC {expected.auc.text()} on {expected.matured:,} matured loans; model card "
            "test AUC 0.700 [0.686, 0.714] on 10,000 test loans") in _texts(app)
    assert len(app.get("plotly_chart")) == 4


def test_model_performance_says_what_to_run_when_the_ledger_is_empty(source: FakeDataSource) -> None:
    source.backtest = list  # an empty ledger: no model version to show
    app = _app(source, view="Model performance")
    assert "creditrisk ledger run" in app.info[0].value
