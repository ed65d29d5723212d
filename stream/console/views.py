"""One render function per console view. Views read through a :class:`DataSource` and may
raise :class:`ConsoleUnavailable`; the app shows its message."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from stream.console import charts
from stream.console.data import (
    APPLICATION_LABELS,
    BUREAU_LABELS,
    COMPARE_FEATURES,
    EMP_LENGTH_UNKNOWN,
    MIN_GROUP_SIZE,
    RECENT_LIMIT,
    SIMILAR_GROUP_DEFINITION,
    SIMILAR_LIMIT,
    VELOCITY_LABELS,
    DataSource,
    DecisionFilters,
    application_event,
    band_text,
    category_choices,
    decision_bands,
    decisions_table,
    display_value,
    filter_decisions,
    form_problems,
    grade_bands_text,
    income_band,
    model_inputs,
    percentile_in_reference,
    percentile_in_sample,
    reading,
    reference_quantiles,
    risk_lowering_factors,
    risk_raising_factors,
    score_meaning,
)

VIEWS = ("Find", "Decision", "Profile", "Compare", "New application", "Model performance")
DECISION_TEXT_COLOURS = {"approve": "green", "review": "orange", "decline": "red"}
TABLE_HEADINGS = {
    "application_id": "Application ID", "customer_id": "Customer ID", "decided_at": "Decided at",
    "decision": "Decision", "risk_grade": "Risk grade", "score": "Score",
    "probability_of_default_pct": "Probability of default (%)", "loan_amnt": "Loan amount",
    "purpose": "Purpose", "home_ownership": "Home ownership"}
CREDIT_WORDS = {"approve": "Good credit — approve", "review": "Borderline — refer for review",
                "decline": "Bad credit — decline"}


def go_to(view: str, application_id: str | None = None) -> None:
    """Switch view on the next run (the navigation widget cannot change during this one)."""
    if application_id is not None:
        st.session_state["application_id"] = application_id
    st.session_state["pending_view"] = view
    st.rerun()


# ---- Find ------------------------------------------------------------------------------

def render_find(source: DataSource) -> None:
    st.header("Find a decision")
    render_lookup(source)
    st.divider()
    render_recent(source)


def render_lookup(source: DataSource) -> None:
    with st.form("lookup"):
        wanted = st.text_input("Application ID or customer ID", key="lookup_id").strip()
        submitted = st.form_submit_button("Look up")
    if submitted and wanted:
        if source.record(wanted) is not None:
            go_to("Decision", wanted)
        st.session_state["customer_matches"] = (wanted, source.customer_application_ids(wanted))
    matches = st.session_state.get("customer_matches")
    if not matches:
        return
    customer_id, application_ids = matches
    if not application_ids:
        st.warning(f"No decision found for application or customer “{customer_id}”. Check the "
                   "ID; decisions are kept for 90 days.")
        return
    st.success(f"Customer {customer_id} has {len(application_ids)} decision(s).")
    chosen = st.selectbox("Applications of this customer (newest first)", application_ids,
                          key="customer_application")
    if st.button("Open this application", key="open_customer_application"):
        go_to("Decision", chosen)


def render_recent(source: DataSource) -> None:
    st.subheader("Recent decisions")
    table = decisions_table(source.recent_records(RECENT_LIMIT))
    if table.empty:
        st.info("No decisions yet. They appear here as soon as the scoring worker decides "
                "applications (`creditrisk worker`, then `creditrisk produce --data PATH`), "
                "or score one by hand in **New application**.")
        return
    shown = filter_decisions(table, recent_filters(table))
    st.caption(f"{len(shown)} of the {len(table)} most recent decisions match the filters.")
    st.dataframe(shown, hide_index=True, width="stretch", key="recent_table",
                 column_config=TABLE_HEADINGS)
    if shown.empty:
        return
    chosen = st.selectbox("Open a decision from the list", shown["application_id"].tolist(),
                          key="recent_choice")
    if st.button("Open decision", key="open_recent"):
        go_to("Decision", chosen)


def recent_filters(table: pd.DataFrame) -> DecisionFilters:
    columns = st.columns(4)
    filters = DecisionFilters(
        decisions=columns[0].multiselect("Decision", ["approve", "review", "decline"]),
        grades=columns[1].multiselect("Risk grade", sorted(table["risk_grade"].dropna().unique())),
        purposes=columns[2].multiselect("Purpose", sorted(table["purpose"].dropna().unique())),
        home_ownership=columns[3].multiselect(
            "Home ownership", sorted(table["home_ownership"].dropna().unique())))
    amounts = table["loan_amnt"].dropna()
    low, high = float(amounts.min()), float(amounts.max())
    left, right = st.columns(2)
    if high > low:
        filters.amount_range = left.slider("Loan amount", low, high, (low, high))
    days = table["decided_at"].dropna().dt.date
    if len(days):
        picked = right.date_input("Decided between", (days.min(), days.max()))
        if isinstance(picked, tuple) and len(picked) == 2:
            filters.date_range = picked
    return filters


# ---- Decision --------------------------------------------------------------------------

def selected_record(source: DataSource) -> dict[str, Any] | None:
    application_id = st.session_state.get("application_id")
    if not application_id:
        st.info("No application selected. Look one up in **Find** first.")
        return None
    record = source.record(application_id)
    if record is None:
        st.warning(f"No decision found for application “{application_id}”. It may be older "
                   "than 90 days or not decided yet; look it up again in **Find**.")
    return record


def render_decision(source: DataSource) -> None:
    record = selected_record(source)
    if record is None:
        return
    decision = record["decision"]
    card = source.model_card()
    render_verdict(decision, card)
    st.subheader("Why")
    lowering = _lowering_factors(source, card, record)
    render_factors(decision, lowering)
    st.caption(f"Model {decision.get('model_version')} · policy {decision.get('policy_version')}"
               f" · submitted {decision.get('submitted_at')} · decided "
               f"{decision.get('decided_at')} · decision ID {decision.get('decision_id')}")


def render_verdict(decision: dict[str, Any], card: dict[str, Any]) -> None:
    outcome = str(decision["decision"])
    colour = DECISION_TEXT_COLOURS.get(outcome, "gray")
    st.header(f"Application {decision['application_id']}")
    st.markdown(f"### Decision: :{colour}[**{CREDIT_WORDS.get(outcome, outcome)}**]")
    probability = float(decision["probability_of_default"])
    columns = st.columns(3)
    columns[0].metric("Probability of default", f"{100 * probability:.1f} %")
    columns[1].metric("Score", f"{decision['score']} points")
    columns[2].metric("Risk grade", str(decision["risk_grade"]))
    st.markdown(f"About **{round(100 * probability)} in 100** borrowers like this one are "
                "expected not to repay.")
    score = int(decision["score"])
    bands, axis_range = decision_bands(card, score)
    st.plotly_chart(charts.score_gauge(score, outcome, bands, axis_range), key="score_gauge")
    st.write(score_meaning(score, card["score_scale"]))
    st.caption("Risk grades in points: " + grade_bands_text(card))


def _lowering_factors(source: DataSource, card: dict[str, Any],
                      record: dict[str, Any]) -> list[Any]:
    version = record["decision"].get("model_version")
    model_card = card if card.get("version") == version else None
    if model_card is None:
        return []  # another version decided: its own contributions are not at hand
    try:
        return risk_lowering_factors(model_card, source.model_dir(version), record["features"])
    except Exception:  # noqa: BLE001 - an extra explanation must never hide the decision
        return []


def render_factors(decision: dict[str, Any], lowering: list[Any]) -> None:
    raising = risk_raising_factors(decision)
    if raising:
        st.markdown("**What pushed the risk up** (most important first):")
        st.markdown("\n".join(f"- {factor.text}" for factor in raising))
    else:
        st.markdown("Nothing pushed the risk up enough to be listed.")
    if lowering:
        st.markdown("**What pulled the risk down:**")
        st.markdown("\n".join(f"- {factor.text}" for factor in lowering))
    shown = [factor for factor in raising if factor.impact != 0] + lowering
    if shown:
        st.plotly_chart(charts.factor_bars([f for f in raising if f.impact != 0], lowering),
                        key=f"factors-{decision['application_id']}")
        st.caption("A bar's length is the factor's effect on the odds of default (hover for "
                   "'multiplied the odds by ...'). Missing bureau data is listed first and "
                   "has no bar: it sends the application to review.")


# ---- Profile ---------------------------------------------------------------------------

def render_profile(source: DataSource) -> None:
    record = selected_record(source)
    if record is None:
        return
    decision, features = record["decision"], record.get("features", {})
    missing = set(decision.get("missing_features", []))
    stale = set(record.get("stale_features", []))
    st.header(f"Customer {decision['customer_id']} — application {decision['application_id']}")
    st.subheader("Application")
    application = record.get("application", {})
    st.table(pd.DataFrame([{"Field": label, "Value": _shown(application.get(name))}
                           for name, label in APPLICATION_LABELS.items()]))
    st.subheader("Credit bureau")
    if missing or stale:
        st.warning("Some bureau values were missing or stale (older than allowed); the model "
                   "scored without them and such an application is never approved "
                   "automatically.")
    st.table(pd.DataFrame([{"Field": label, "Value": _shown(features.get(name)),
                            "Status": _status(name, features.get(name), missing, stale)}
                           for name, label in BUREAU_LABELS.items()]))
    st.subheader("Recent activity")
    velocity = record.get("velocity", {})
    st.table(pd.DataFrame([{"Field": label, "Value": _shown(velocity.get(name))}
                           for name, label in VELOCITY_LABELS.items()]))


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _status(name: str, value: Any, missing: set[str], stale: set[str]) -> str:
    if name in stale:
        return "STALE — too old, not used"
    if name in missing:
        return "MISSING"
    if value is None and name == "mths_since_last_delinq":
        return "never delinquent"
    if value is None:
        return "MISSING"
    return "ok"


# ---- Compare ---------------------------------------------------------------------------

def render_compare(source: DataSource) -> None:
    record = selected_record(source)
    if record is None:
        return
    card = source.model_card()
    application = record.get("application", {})
    band = income_band(application.get("annual_inc"), card)
    purpose = application.get("purpose")
    similar = source.similar(purpose, band, record["decision"]["application_id"])
    st.header(f"Compare application {record['decision']['application_id']}")
    st.info(SIMILAR_GROUP_DEFINITION.format(count=f"{SIMILAR_LIMIT:,}") + f" Here: purpose "
            f"“{purpose}”, {band_text(band)} — {len(similar)} customers."
            + _group_training_text(card, purpose, band))
    customer = model_inputs(card, [record.get("features", {})]).iloc[0]
    group = model_inputs(card, [item.get("features", {}) for item in similar]) \
        if len(similar) >= MIN_GROUP_SIZE else None
    if group is None:
        st.warning(f"Only {len(similar)} similar customers in the ledger (at least "
                   f"{MIN_GROUP_SIZE} are needed): the plots show all customers only.")
    columns = st.columns(2)
    for index, feature in enumerate(COMPARE_FEATURES):
        value = float(customer.get(feature.name, np.nan))
        if feature.show_as_exp and application.get("annual_inc") is not None:
            value = math.log(float(application["annual_inc"]))  # exact, not float32-rounded
        with columns[index % 2]:
            render_comparison(card, feature, value, group)


def _group_training_text(card: dict[str, Any], purpose: str | None, band: Any) -> str:
    groups = card.get("reference", {}).get("groups", {})
    by_purpose = groups.get("purpose", {}).get(str(purpose))
    if not by_purpose:
        return ""
    return (f" In the training data {100 * by_purpose['bad_rate']:.0f} % of "
            f"“{purpose}” loans were not repaid.")


def render_comparison(card: dict[str, Any], feature: Any, value: float,
                      group: pd.DataFrame | None) -> None:
    shown_value = display_value(feature, value)
    reference = reference_quantiles(card, feature)
    sample = None
    if group is not None:
        sample = np.array([display_value(feature, item) for item in group[feature.name]])
        sample = sample[~np.isnan(sample)]
    st.plotly_chart(charts.comparison_curve(feature.label, shown_value, reference, sample,
                                            "Similar customers"),
                    key=f"compare-{feature.name}")
    if math.isnan(shown_value):
        st.markdown(f"**{feature.label}: not available for this customer.**")
        return
    lines = []
    if reference is not None:
        lines.append(reading(feature, percentile_in_reference(shown_value, *reference),
                             "all customers"))
    if sample is not None and len(sample):
        lines.append(reading(feature, percentile_in_sample(shown_value, sample),
                             "similar customers"))
    st.markdown(f"**{feature.label}: {_shown(round(shown_value, 2))}.** " + " ".join(lines))


# ---- New application -------------------------------------------------------------------

def render_new_application(source: DataSource) -> None:
    st.header("Score a new application")
    card = source.model_card()
    fields = application_form(card)
    if fields is None:
        return
    problems = form_problems(fields, card)
    if problems:
        st.error("The application cannot be scored yet:\n\n" +
                 "\n".join(f"- {problem}" for problem in problems))
        return
    outcome = source.score(application_event(fields))
    if outcome.kind == "rejected":
        st.error(f"The scoring service refused the application: {outcome.detail}. Correct "
                 "that field and submit again.")
    elif outcome.kind == "unavailable":
        st.error(outcome.detail)
    else:
        render_form_result(outcome.decision or {}, card)


def application_form(card: dict[str, Any]) -> dict[str, Any] | None:
    """The form's values when submitted, else None."""
    # One suggested id per session: a default that changed on every run would make
    # Streamlit treat the field as a new widget and drop what was typed.
    suggested_id = st.session_state.setdefault("suggested_application_id",
                                               f"manual-{uuid.uuid4().hex[:10]}")
    with st.form("new_application"):
        left, right = st.columns(2)
        fields = {
            "application_id": left.text_input("Application ID", value=suggested_id),
            "customer_id": right.text_input("Customer ID"),
            "loan_amnt": left.number_input("Loan amount", min_value=0.0, value=10_000.0,
                                           step=500.0),
            "term": right.selectbox("Term (months)", [36, 60]),
            "annual_inc": left.number_input("Annual income", min_value=0.0, value=60_000.0,
                                            step=1_000.0),
            "emp_length": right.selectbox("Years in current job",
                                          [EMP_LENGTH_UNKNOWN, *range(11)], index=6),
            "purpose": left.selectbox("Purpose", category_choices(card, "purpose")),
            "home_ownership": right.selectbox("Home ownership",
                                              category_choices(card, "home_ownership")),
            "verification_status": left.selectbox(
                "Income verification", category_choices(card, "verification_status")),
            "addr_state": right.text_input("State (2 letters)", value="CA", max_chars=2),
        }
        submitted = st.form_submit_button("Score application")
    return fields if submitted else None


def render_form_result(decision: dict[str, Any], card: dict[str, Any]) -> None:
    outcome = str(decision.get("decision"))
    colour = DECISION_TEXT_COLOURS.get(outcome, "gray")
    st.markdown(f"### Result: :{colour}[**{CREDIT_WORDS.get(outcome, outcome)}**]")
    columns = st.columns(3)
    columns[0].metric("Probability of default",
                      f"{100 * float(decision['probability_of_default']):.1f} %")
    columns[1].metric("Score", f"{decision['score']} points")
    columns[2].metric("Risk grade", str(decision["risk_grade"]))
    st.write(score_meaning(int(decision["score"]), card["score_scale"]))
    if decision.get("missing_features"):
        st.warning("The customer has no usable credit-bureau record, so the application "
                   "cannot be approved automatically.")
    render_factors(decision, [])
    st.caption("Scored by the live service; nothing was published or stored.")


# ---- Model performance -------------------------------------------------------------------

def render_model_performance(source: DataSource) -> None:
    """The back-test: how each model version's decisions turned out (matured loans only)."""
    st.header("Model performance")
    st.caption("Loans whose outcome servicing has reported as good or bad (matured), by the "
               "model version that decided them. Loans still running are left out.")
    results = source.backtest()
    if not results:
        st.info("The ledger holds no decisions yet. Run the ledger writer (`creditrisk ledger "
                "run`) and replay outcomes (`creditrisk produce --outcomes --data PATH`).")
        return
    versions = [result.model_version for result in results]
    chosen = st.selectbox("Model version", versions, index=len(versions) - 1, key="performance_version")
    result = results[versions.index(chosen)]
    columns = st.columns(5)
    columns[0].metric("Decisions", f"{result.decisions:,}")
    columns[1].metric("Matured", f"{result.matured:,}")
    columns[2].metric("Realised AUC", "n/a" if result.auc is None else f"{result.auc:.3f}",
                      None if result.auc is None or result.reference_auc is None
                      else f"{result.auc - result.reference_auc:+.3f} vs model card")
    columns[3].metric("KS", "n/a" if result.ks is None else f"{result.ks:.3f}")
    columns[4].metric("Calibration error", "n/a" if result.calibration_error is None
                      else f"{result.calibration_error:.3f}")
    if not result.matured:
        st.info("No loan decided by this version has matured yet.")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.calibration_plot(result.calibration), key="calibration_plot")
    right.plotly_chart(charts.bad_rate_bars(result.by_grade, "risk_grade", "Risk grade"),
                       key="grade_plot")
    left, right = st.columns(2)
    left.plotly_chart(charts.bad_rate_bars(result.by_band, "score_band", "Score band"), key="band_plot")
    right.plotly_chart(charts.monthly_rates(result.by_month), key="month_plot")
