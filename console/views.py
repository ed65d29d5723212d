"""One render function per console view. Views read through a :class:`DataSource` and may
raise :class:`ConsoleUnavailable`; the app shows its message."""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import streamlit as st

from console import charts
from console.card import UNKNOWN_CHOICE, CompareFeature, ConsoleCard, FormField
from console.data import (
    MIN_GROUP_SIZE,
    DataSource,
    Factor,
    application_event,
    decision_bands,
    display_value,
    form_problems,
    grade_bands_text,
    model_inputs,
    percentile_in_reference,
    percentile_in_sample,
    reading,
    reference_quantiles,
    risk_lowering_factors,
    risk_raising_factors,
    score_meaning,
)
from console.find import PAGE_SIZE, DecisionFilters, decisions_table
from console.records import Parsed, UnreadableRecord, unreadable_notice
from onnx_models.card import ModelCard
from stream.decisions import Decision, DecisionRecord

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

VIEWS = ("Find", "Decision", "Profile", "Compare", "New application", "Model performance")
DECISION_TEXT_COLOURS = {"approve": "green", "review": "orange", "decline": "red"}
TABLE_HEADINGS = {
    "application_id": "Application ID", "customer_id": "Customer ID", "decided_at": "Decided at",
    "decision": "Decision", "risk_grade": "Risk grade", "score": "Score",
    "probability_of_default_pct": "Probability of default (%)", "model_version": "Model version"}
FIND_FALLBACK = ("The decision ledger (PostgreSQL) does not answer, so only the {count:,} most "
                 "recent decisions kept in Redis are searched; older decisions are not shown. "
                 "Start the stack (`creditrisk stack up`) and the ledger writer (`creditrisk "
                 "ledger run`), then reload this page.")
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
    render_search(source)


def render_lookup(source: DataSource) -> None:
    with st.form("lookup"):
        wanted = st.text_input("Application ID or customer ID", key="lookup_id").strip()
        submitted = st.form_submit_button("Look up")
    if submitted and wanted:
        if _is_decided(source, wanted):
            go_to("Decision", wanted)
        st.session_state["customer_matches"] = (wanted, source.customer_application_ids(wanted))
    matches: tuple[str, Parsed[str]] | None = st.session_state.get("customer_matches")
    if not matches:
        return
    customer_id, found = matches
    if found.unreadable:
        st.warning(unreadable_notice(found.unreadable))
    application_ids = found.items
    if not application_ids:
        st.warning(f"No decision found for application or customer “{customer_id}”. Check the "
                   "ID.")
        return
    st.success(f"Customer {customer_id} has {len(application_ids)} decision(s).")
    chosen = st.selectbox("Applications of this customer (newest first)", application_ids,
                          key="customer_application")
    if st.button("Open this application", key="open_customer_application"):
        go_to("Decision", chosen)


def _is_decided(source: DataSource, application_id: str) -> bool:
    try:
        return source.record(application_id) is not None
    except UnreadableRecord:
        return True  # stored but unreadable: the Decision view says so


def render_search(source: DataSource) -> None:
    """Every decision in the ledger, filtered in SQL, newest first, a page at a time."""
    st.subheader("Decisions")
    card = ConsoleCard(source.model_card())
    filters = search_filters(card)
    wanted_page = int(st.session_state.get("find_page") or 1)
    page = source.find(card, filters, PAGE_SIZE, (wanted_page - 1) * PAGE_SIZE)
    pages = max(1, -(-page.total // PAGE_SIZE))
    if wanted_page > pages:  # the filters narrowed the list below the page that was open
        st.session_state["find_page"] = wanted_page = pages
        page = source.find(card, filters, PAGE_SIZE, (pages - 1) * PAGE_SIZE)
    if page.searched == "recent":
        st.warning(FIND_FALLBACK.format(count=page.searched_count or 0))
    if page.unreadable:
        st.warning(unreadable_notice(page.unreadable))
    if page.total == 0:
        if filters.is_empty:
            st.info("No decisions yet. They appear here as soon as the scoring worker decides "
                    "applications (`creditrisk worker`, then `creditrisk produce --data PATH`), "
                    "or score one by hand in **New application**.")
        else:
            st.info("No decision matches these filters.")
        return
    shown = f"showing {page.offset + 1:,}–{page.offset + len(page.records):,}, newest first"
    if page.searched == "ledger":
        noun = "decision" if page.total == 1 else "decisions"
        st.caption(f"{page.total:,} {noun} in the ledger match the filters; {shown}.")
    else:
        st.caption(f"{page.total:,} of the {page.searched_count or 0:,} most recent decisions "
                   f"match the filters; {shown}.")
    table = decisions_table(page.records, card)
    headings = TABLE_HEADINGS | {name: card.field_label(name) for name in table.columns
                                 if name not in TABLE_HEADINGS}
    st.dataframe(table, hide_index=True, width="stretch", key="found_table",
                 column_config=headings)
    if pages > 1:
        st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1,
                        key="find_page")
    chosen = st.selectbox("Open a decision from the list", table["application_id"].tolist(),
                          key="found_choice")
    if st.button("Open decision", key="open_found"):
        go_to("Decision", chosen)


def search_filters(card: ConsoleCard) -> DecisionFilters:
    """Decision, grade, score, dates, IDs, model version, and the card's categorical event
    fields and amount field (no field is named here: they come from the card)."""
    columns = st.columns(4)
    filters = DecisionFilters(
        decisions=columns[0].multiselect("Decision", ["approve", "review", "decline"],
                                         key="find-decision"),
        grades=columns[1].multiselect("Risk grade", card.risk_grades(), key="find-grade"),
        customer_id=columns[2].text_input("Customer ID", key="find-customer"),
        application_id=columns[3].text_input("Application ID", key="find-application"))
    names = card.find_columns()
    for index, name in enumerate(names):
        column = columns[index % len(columns)]
        choices = card.category_choices(name)
        label = card.field_label(name)
        if choices:
            filters.categories[name] = column.multiselect(label, choices, key=f"filter-{name}")
        else:  # a free-text field: the exact value typed
            typed = column.text_input(label, key=f"filter-{name}").strip()
            filters.categories[name] = [typed] if typed else []
    columns = st.columns(4)
    filters.score_range = (
        _whole(columns[0].number_input("Score from", value=None, step=1, key="find-score-low")),
        _whole(columns[1].number_input("Score to", value=None, step=1, key="find-score-high")))
    filters.date_range = (columns[2].date_input("Decided from", value=None, key="find-from"),
                          columns[3].date_input("Decided to", value=None, key="find-to"))
    columns = st.columns(4)
    if card.amount_field:
        label = card.field_label(card.amount_field)
        filters.amount_field = card.amount_field
        filters.amount_range = (
            columns[0].number_input(f"{label} from", value=None, key="find-amount-low"),
            columns[1].number_input(f"{label} to", value=None, key="find-amount-high"))
    filters.model_version = columns[2].text_input("Model version", key="find-model")
    return filters


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


# ---- Decision --------------------------------------------------------------------------

def on_selected_application(page: Callable[[DataSource, DecisionRecord, ConsoleCard], None],
                            ) -> Callable[[DataSource], None]:
    """A page about the selected application, drawn with its record and the serving model's
    card; when none is selected (or it cannot be read) the page shows only a note."""
    @functools.wraps(page)
    def render(source: DataSource) -> None:
        record = selected_record(source)
        if record is not None:
            page(source, record, ConsoleCard(source.model_card()))
    return render


def selected_record(source: DataSource) -> DecisionRecord | None:
    application_id = st.session_state.get("application_id")
    if not application_id:
        st.info("No application selected. Look one up in **Find** first.")
        return None
    try:
        record = source.record(application_id)
    except UnreadableRecord as error:
        st.warning(str(error))
        return None
    if record is None:
        st.warning(f"No decision found for application “{application_id}”. It may be older "
                   "than 90 days or not decided yet; look it up again in **Find**.")
    return record


def render_decision(source: DataSource) -> None:
    record = selected_record(source)
    if record is not None:
        show_decision(source, record)


def show_decision(source: DataSource, record: DecisionRecord) -> None:
    """An application's decision explained: the verdict, its score on the model's scale, and
    what pushed the risk up and pulled it down (the Decision view, the review queue)."""
    decision = record.decision
    card = source.model_card()
    render_verdict(decision, card)
    st.subheader("Why")
    lowering = _lowering_factors(source, card, record)
    render_factors(decision, lowering)
    st.caption(f"Model {decision.model_version} · policy {decision.policy_version}"
               f" · submitted {decision.submitted_at} · decided "
               f"{decision.decided_at} · decision ID {decision.decision_id}")


def render_verdict(decision: Decision, card: ModelCard) -> None:
    outcome = decision.decision
    colour = DECISION_TEXT_COLOURS.get(outcome, "gray")
    st.header(f"Application {decision.application_id}")
    st.markdown(f"### Decision: :{colour}[**{CREDIT_WORDS.get(outcome, outcome)}**]")
    probability = decision.probability_of_default
    columns = st.columns(3)
    columns[0].metric("Probability of default", f"{100 * probability:.1f} %")
    columns[1].metric("Score", f"{decision.score} points")
    columns[2].metric("Risk grade", decision.risk_grade)
    st.markdown(f"About **{round(100 * probability)} in 100** borrowers like this one are "
                "expected not to repay.")
    score = decision.score
    bands, axis_range = decision_bands(card, score)
    st.plotly_chart(charts.score_gauge(score, outcome, bands, axis_range), key="score_gauge")
    st.write(score_meaning(score, card.score_scale))
    st.caption("Risk grades in points: " + grade_bands_text(card))


def _lowering_factors(source: DataSource, card: ModelCard,
                      record: DecisionRecord) -> list[Factor]:
    version = record.decision.model_version
    if card.version != version:
        return []  # another version decided: its own contributions are not at hand
    try:
        model = source.served_model(version)
        return [] if model is None else risk_lowering_factors(model, record.features)
    except Exception:  # noqa: BLE001 - an extra explanation must never hide the decision
        return []


def render_factors(decision: Decision, lowering: list[Factor]) -> None:
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
                        key=f"factors-{decision.application_id}")
        st.caption("A bar's length is the factor's effect on the odds of default (hover for "
                   "'multiplied the odds by ...'). Missing bureau data is listed first and "
                   "has no bar: it sends the application to review.")


# ---- Profile ---------------------------------------------------------------------------

@on_selected_application
def render_profile(source: DataSource, record: DecisionRecord, card: ConsoleCard) -> None:
    decision = record.decision
    missing = set(decision.missing_features)
    stale = set(record.stale_features)
    st.header(f"Customer {decision.customer_id} — application {decision.application_id}")
    for section in card.profile_sections():
        st.subheader(section.title)
        values = _record_part(record, section.record_part)
        if not section.marks_missing:
            st.table(pd.DataFrame([{"Field": row.label, "Value": _shown(values.get(row.name))}
                                   for row in section.rows]))
            continue
        names = {row.name for row in section.rows}
        if names & (missing | stale):
            st.warning(f"Some values of “{section.title}” were missing or stale (older than "
                       "allowed); the model scored without them and such an application is "
                       "never approved automatically.")
        st.table(pd.DataFrame([{"Field": row.label, "Value": _shown(values.get(row.name)),
                                "Status": _status(row.name, values.get(row.name), row.nullable,
                                                  missing, stale)}
                               for row in section.rows]))


def _record_part(record: DecisionRecord,
                 part: Literal["application", "features", "velocity"]) -> Mapping[str, object]:
    if part == "application":
        return record.application
    if part == "features":
        return record.features
    return record.velocity


def _shown(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _status(name: str, value: object, nullable: bool, missing: set[str], stale: set[str],
            ) -> str:
    if name in stale:
        return "STALE — too old, not used"
    if name in missing:
        return "MISSING"
    if value is None and nullable:
        return "none on record"
    if value is None:
        return "MISSING"
    return "ok"


# ---- Compare ---------------------------------------------------------------------------

def show_comparison(source: DataSource, record: DecisionRecord, card: ConsoleCard) -> None:
    """The application beside all customers and similar ones (the Compare view, the review
    queue)."""
    application = record.application
    group = card.similar_group(application)
    application_id = record.decision.application_id
    similar = source.similar(card, group, application_id)
    st.header(f"Compare application {application_id}")
    st.info(f"{similar.definition} Here: {card.group_text(group)} — {len(similar.records)} "
            f"customers." + card.group_training_text(group))
    if similar.unreadable:
        st.warning(unreadable_notice(similar.unreadable))
    customer = model_inputs(card.card, [record.features]).iloc[0]
    group_inputs = model_inputs(card.card, [item.features for item in similar.records]) \
        if len(similar.records) >= MIN_GROUP_SIZE else None
    if group_inputs is None:
        st.warning(f"Only {len(similar.records)} similar customers found (at least "
                   f"{MIN_GROUP_SIZE} are needed): the plots show all customers only.")
    columns = st.columns(2)
    raw = {**record.features, **application}
    for index, feature in enumerate(card.compare_features()):
        value = float(customer.get(feature.name, np.nan))
        exact = raw.get(feature.source) if feature.source else None
        if feature.show_as_exp and isinstance(exact, int | float) and exact > 0:
            value = math.log(float(exact))  # exact, not float32-rounded
        with columns[index % 2]:
            render_comparison(card.card, feature, value, group_inputs)


render_compare = on_selected_application(show_comparison)


def render_comparison(card: ModelCard, feature: CompareFeature, value: float,
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
        lines.append(reading(percentile_in_reference(shown_value, *reference), "all customers"))
    if sample is not None and len(sample):
        lines.append(reading(percentile_in_sample(shown_value, sample), "similar customers"))
    st.markdown(f"**{feature.label}: {_shown(round(shown_value, 2))}.** " + " ".join(lines))


# ---- New application -------------------------------------------------------------------

def render_new_application(source: DataSource) -> None:
    st.header("Score a new application")
    card = ConsoleCard(source.model_card())
    fields = card.form_fields()
    values = application_form(fields)
    if values is None:
        return
    problems = form_problems(values, fields)
    if problems:
        st.error("The application cannot be scored yet:\n\n" +
                 "\n".join(f"- {problem}" for problem in problems))
        return
    outcome = source.score(application_event(values, fields))
    if outcome.kind == "rejected":
        st.error(f"The scoring service refused the application: {outcome.detail}. Correct "
                 "that field and submit again.")
    elif outcome.kind == "unavailable":
        st.error(outcome.detail)
    elif outcome.decision is not None:
        render_form_result(outcome.decision, card.card)


def application_form(fields: list[FormField]) -> dict[str, object] | None:
    """The form's values when submitted, else None: one input per event field of the card."""
    # One suggested id per session: a default that changed on every run would make
    # Streamlit treat the field as a new widget and drop what was typed.
    suggested_id = st.session_state.setdefault("suggested_application_id",
                                               f"manual-{uuid.uuid4().hex[:10]}")
    with st.form("new_application"):
        columns = st.columns(2)
        values: dict[str, object] = {
            "application_id": columns[0].text_input("Application ID", value=suggested_id),
            "customer_id": columns[1].text_input("Customer ID"),
        }
        for index, item in enumerate(fields):
            values[item.name] = _form_input(columns[index % 2], item)
        submitted = st.form_submit_button("Score application")
    return values if submitted else None


def _form_input(column: DeltaGenerator, item: FormField) -> str | float | None:
    label = f"{item.label} (optional)" if item.nullable else item.label
    if item.kind == "number":
        return column.number_input(label, value=item.default, key=f"form-{item.name}",
                                   placeholder="unknown" if item.nullable else None)
    if item.kind == "choice":
        options = [*item.choices, UNKNOWN_CHOICE] if item.nullable else list(item.choices)
        chosen = column.selectbox(label, options, key=f"form-{item.name}")
        return None if chosen == UNKNOWN_CHOICE else chosen
    return column.text_input(label, key=f"form-{item.name}") or None


def render_form_result(decision: Decision, card: ModelCard) -> None:
    outcome = decision.decision
    colour = DECISION_TEXT_COLOURS.get(outcome, "gray")
    st.markdown(f"### Result: :{colour}[**{CREDIT_WORDS.get(outcome, outcome)}**]")
    columns = st.columns(3)
    columns[0].metric("Probability of default",
                      f"{100 * decision.probability_of_default:.1f} %")
    columns[1].metric("Score", f"{decision.score} points")
    columns[2].metric("Risk grade", decision.risk_grade)
    st.write(score_meaning(decision.score, card.score_scale))
    if decision.missing_features:
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
    columns[2].metric("Realised AUC", "n/a" if result.auc is None else result.auc.text())
    columns[3].metric("KS", "n/a" if result.ks is None else result.ks.text())
    columns[4].metric("Calibration error", "n/a" if result.calibration_error is None
                      else result.calibration_error.text())
    st.caption(f"{result.comparison()}. In brackets: 95 % confidence intervals (AUC by "
               "Hanley-McNeil, KS and calibration error by bootstrap); a difference inside "
               "them is noise, not news.")
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
