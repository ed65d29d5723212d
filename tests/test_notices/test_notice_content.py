"""What goes into a notice: the principal reasons, the bureau block's condition, the settings
it needs, and text any applicant data may bring."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from notice_text import html_text, notice_settings, pdf_text

from notices.content import (
    NoticeContent,
    NoticeReasonsRefused,
    NoticeSettingsMissing,
    build_notice,
    bureau_data_used,
    principal_reasons,
)
from notices.render import to_html, to_pdf
from stream.reasons import MISSING_BUREAU_REASON, Reason


def _reason(text: str, code: str = "R01") -> Reason:
    return Reason(code, "feature", text, 0.1)


SIX = tuple(_reason(f"Reason number {n}", f"R0{n}") for n in range(1, 7))


def test_at_most_four_reasons_most_important_first() -> None:
    assert principal_reasons(SIX, None) == tuple(f"Reason number {n}" for n in range(1, 5))


def test_the_reviewers_reason_comes_first_then_the_models_without_repeats() -> None:
    reasons = principal_reasons(
        (_reason("Debt-to-income ratio too high"), _reason("Excessive obligations in relation "
                                                           "to income"), *SIX),
        "Excessive obligations in relation to income")
    assert reasons == ("Excessive obligations in relation to income",
                       "Debt-to-income ratio too high", "Reason number 1", "Reason number 2")


def test_an_override_of_an_approval_has_only_the_reviewers_reason() -> None:
    assert principal_reasons((), "Unable to verify income") == ("Unable to verify income",)


def test_missing_bureau_data_is_a_specific_reason() -> None:
    assert principal_reasons((MISSING_BUREAU_REASON,), None) == (
        "Credit bureau information unavailable",)


@pytest.mark.parametrize("text", ["", "   ", "Internal standards", "Does not meet internal "
                                  "standards", "Insufficient credit score", "Credit score",
                                  "low score", "Failed our internal policy", "Other",
                                  "Did not meet the qualifying score"])
def test_vague_or_empty_reasons_are_refused(text: str) -> None:
    with pytest.raises(NoticeReasonsRefused, match="specific"):
        principal_reasons((_reason("Debt-to-income ratio too high"), _reason(text)), None)


def test_a_reviewers_vague_reason_is_refused_too() -> None:
    with pytest.raises(NoticeReasonsRefused, match="internal standards"):
        principal_reasons((_reason("Debt-to-income ratio too high"),), "Internal standards")


def test_a_named_external_score_is_a_specific_reason() -> None:
    assert principal_reasons((_reason("Low external credit score 2"),), None) == (
        "Low external credit score 2",)


def test_a_decline_without_reasons_is_refused() -> None:
    with pytest.raises(NoticeReasonsRefused, match="no reasons"):
        principal_reasons((), None)


@pytest.mark.parametrize(("ages", "used"), [
    ({"bureau": 86_400.0}, True), ({"bureau": 0.0, "velocity": None}, True),
    ({"bureau": None, "velocity": None}, False), ({}, False), (None, True)])
def test_bureau_data_counts_as_used_when_a_view_had_values_or_the_lineage_is_gone(
        ages: dict[str, float | None] | None, used: bool) -> None:
    assert bureau_data_used(ages) is used


def _build(settings_changes: dict[str, str | None], ages: dict[str, float | None] | None) -> None:
    build_notice(notice_settings(**settings_changes), application_id="a-1",
                 application_date=date(2026, 1, 2), notice_date=date(2026, 1, 3), amount=None,
                 model_reasons=(_reason("Debt-to-income ratio too high"),),
                 reviewer_reason=None, feature_age_seconds=ages)


def test_missing_creditor_and_agency_settings_name_the_variables_to_set() -> None:
    with pytest.raises(NoticeSettingsMissing) as refused:
        _build({"notice_creditor_name": None, "notice_agency_address": "  "}, {"bureau": None})
    assert refused.value.variables == ("CREDITRISK_NOTICE_CREDITOR_NAME",
                                       "CREDITRISK_NOTICE_AGENCY_ADDRESS")
    assert "CREDITRISK_NOTICE_CREDITOR_NAME, CREDITRISK_NOTICE_AGENCY_ADDRESS" in str(refused.value)


def test_bureau_settings_are_required_only_when_bureau_data_was_used() -> None:
    no_bureau = {"notice_bureau_name": None, "notice_bureau_address": None,
                 "notice_bureau_phone": None}
    _build(no_bureau, {"bureau": None})  # no FCRA block: not needed
    with pytest.raises(NoticeSettingsMissing) as refused:
        _build(no_bureau, {"bureau": 10.0})
    assert refused.value.variables == ("CREDITRISK_NOTICE_BUREAU_NAME",
                                       "CREDITRISK_NOTICE_BUREAU_ADDRESS",
                                       "CREDITRISK_NOTICE_BUREAU_PHONE")


def test_the_creditors_phone_is_optional() -> None:
    content = build_notice(notice_settings(notice_creditor_phone=None), application_id="a-2",
                           application_date=date(2026, 1, 2), notice_date=date(2026, 1, 3),
                           amount=None, model_reasons=(_reason("Too many recent inquiries"),),
                           reviewer_reason=None, feature_age_seconds={"bureau": None})
    assert "Telephone" not in html_text(to_html(content))


def _with_reason(text: str) -> NoticeContent:
    return build_notice(notice_settings(), application_id="a-<3>", application_date=date(2026, 1, 2),
                        notice_date=date(2026, 1, 3), amount=None,
                        model_reasons=(_reason(text),), reviewer_reason=None,
                        feature_age_seconds={"bureau": None})


def test_any_characters_print_in_the_pdf_with_dejavu_or_the_core_font(tmp_path: Path) -> None:
    content = _with_reason("Loan purpose: “rénovation” — Łódź")
    embedded = pdf_text(to_pdf(content))
    core = pdf_text(to_pdf(content, font_dir=tmp_path))  # no fonts there
    if Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file():
        assert "Loan purpose: “rénovation” — Łódź" in embedded
    assert '1. Loan purpose: "rénovation" - Lódz' in core  # the closest Latin-1 form


def test_html_escapes_what_it_prints() -> None:
    page = to_html(_with_reason("Purpose: <script>alert(1)</script> & co"))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "Applicant: application a-&lt;3&gt;" in page
