"""Every element 12 CFR 1002.9(a)(2) and FCRA §615(a) require, read back from the PDF (as
pypdf extracts it) and from the HTML page, each checked by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from notice_text import html_text, notice_settings, pdf_text

from notices.content import NoticeContent, build_notice
from notices.render import to_html, to_pdf
from stream.reasons import Reason

# The standard text of 12 CFR 1002.9(b)(1), written out here so a change of wording fails.
ECOA_TEXT = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against "
    "credit applicants on the basis of race, color, religion, national origin, sex, marital "
    "status, age (provided the applicant has the capacity to enter into a binding contract); "
    "because all or part of the applicant's income derives from any public assistance program; "
    "or because the applicant has in good faith exercised any right under the Consumer Credit "
    "Protection Act. The Federal agency that administers compliance with this law concerning "
    "this creditor is: Consumer Financial Protection Bureau 1700 G Street NW Washington, DC 20552")

MODEL_REASONS = (
    Reason("R03", "revol_util", "Revolving credit utilization too high", 0.31),
    Reason("R07", "dti", "Debt-to-income ratio too high", 0.22),
    Reason("R11", "purpose", "Loan purpose: small_business", 0.08),
)

ELEMENTS: dict[str, tuple[str, ...]] = {
    "action_taken": ("we have declined your application for credit",),
    "amount_applied_for": ("for credit of 12,500.00",),
    "application_date": ("received on November 20, 2026",),
    "notice_date": ("Date: November 22, 2026",),
    "applicant": ("Applicant: application app-4711",),
    "creditor_name_and_address": ("Prairie Lending Co. 100 Main Street Springfield, IL 62701",),
    "creditor_phone": ("Telephone: 1-217-555-0100",),
    "ecoa_statement": (ECOA_TEXT,),
    "agency_name_and_address": ("Consumer Financial Protection Bureau 1700 G Street NW "
                                "Washington, DC 20552",),
    "principal_reasons": ("Revolving credit utilization too high", "Debt-to-income ratio too high",
                          "Loan purpose: small_business"),
    "fcra_based_on_consumer_report": (
        "Our credit decision was based in whole or in part on information obtained in a report "
        "from the consumer reporting agency listed below",),
    "fcra_bureau_name": ("Equifax Information Services LLC",),
    "fcra_bureau_address": ("P.O. Box 740241 Atlanta, GA 30374",),
    "fcra_bureau_toll_free_phone": ("Toll-free telephone: 1-800-685-1111",),
    "fcra_agency_did_not_decide": (
        "The reporting agency played no part in our decision and is unable to supply specific "
        "reasons why we have denied credit to you",),
    "fcra_free_report_60_days": (
        "You have a right to a free copy of your report from the reporting agency, if you "
        "request it no later than 60 days after you receive this notice",),
    "fcra_dispute_right": (
        "if you find that any information contained in the report you receive is inaccurate or "
        "incomplete, you have the right to dispute the matter with the reporting agency",),
}
_WITH_BUREAU: dict[str, float | None] = {"bureau": 3_600.0, "velocity": None}
FCRA_ELEMENTS = [name for name in ELEMENTS if name.startswith("fcra_")]


def _notice(amount: float | None = 12_500.0, feature_age_seconds: dict[str, float | None] | None
            = _WITH_BUREAU) -> NoticeContent:
    return build_notice(notice_settings(), application_id="app-4711",
                        application_date=date(2026, 11, 20), notice_date=date(2026, 11, 22),
                        amount=amount, model_reasons=MODEL_REASONS, reviewer_reason=None,
                        feature_age_seconds=feature_age_seconds)


@pytest.fixture(scope="module")
def printed() -> dict[str, str]:
    content = _notice()
    return {"pdf": pdf_text(to_pdf(content)), "html": html_text(to_html(content))}


@pytest.fixture(scope="module")
def printed_without_bureau() -> dict[str, str]:
    content = _notice(feature_age_seconds={"bureau": None, "velocity": None})
    return {"pdf": pdf_text(to_pdf(content)), "html": html_text(to_html(content))}


@pytest.mark.parametrize("form", ["pdf", "html"])
@pytest.mark.parametrize("element", list(ELEMENTS))
def test_the_notice_prints_each_required_element(printed: dict[str, str], form: str,
                                                 element: str) -> None:
    for expected in ELEMENTS[element]:
        assert expected in printed[form], f"{element} missing from the {form}"


@pytest.mark.parametrize("form", ["pdf", "html"])
def test_no_fcra_block_when_no_bureau_data_was_used(printed_without_bureau: dict[str, str],
                                                    form: str) -> None:
    text = printed_without_bureau[form]
    for element in FCRA_ELEMENTS:
        assert not any(expected in text for expected in ELEMENTS[element]), element
    assert "Fair Credit Reporting Act" not in text
    assert ECOA_TEXT in text  # the rest of the notice is all there


def test_a_decision_without_lineage_gets_the_fcra_block() -> None:
    content = _notice(feature_age_seconds=None)
    assert ELEMENTS["fcra_free_report_60_days"][0] in pdf_text(to_pdf(content))


def test_no_amount_is_printed_when_it_is_unknown() -> None:
    text = html_text(to_html(_notice(amount=None)))
    assert "Thank you for your recent application, received on November 20, 2026" in text
    assert "12,500" not in text


def test_the_pdf_numbers_the_reasons_most_important_first(printed: dict[str, str]) -> None:
    assert ("1. Revolving credit utilization too high 2. Debt-to-income ratio too high "
            "3. Loan purpose: small_business") in printed["pdf"]


def test_elements_appear_in_the_order_of_the_notice(printed: dict[str, str]) -> None:
    text = printed["pdf"]
    order: list[Callable[[], int]] = [
        lambda: text.index("Prairie Lending Co."), lambda: text.index("Action taken"),
        lambda: text.index("1. Revolving"), lambda: text.index("3. Loan purpose"),
        lambda: text.index("The Federal Equal Credit Opportunity Act")]
    positions = [where() for where in order]
    assert positions == sorted(positions)
