"""What an adverse-action notice says: every element 12 CFR 1002.9(a)(2) requires, and the
FCRA §615(a) block when consumer-report (bureau) data was used.

:func:`build_notice` checks everything once — the creditor's, agency's and bureau's details
from settings, the principal reasons — and returns a :class:`NoticeContent`; its
:meth:`NoticeContent.sections` are the notice's text, element by element, in the order it is
printed. The HTML and the PDF (:mod:`notices.render`) print exactly these sections, so the
two never say different things.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from config.settings import Settings
from stream.reasons import MAX_REASONS, Reason

TITLE = "Statement of Credit Denial"

ECOA_STATEMENT = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against "
    "credit applicants on the basis of race, color, religion, national origin, sex, marital "
    "status, age (provided the applicant has the capacity to enter into a binding contract); "
    "because all or part of the applicant's income derives from any public assistance program; "
    "or because the applicant has in good faith exercised any right under the Consumer Credit "
    "Protection Act. The Federal agency that administers compliance with this law concerning "
    "this creditor is:")

FCRA_BASIS = (
    "Our credit decision was based in whole or in part on information obtained in a report from "
    "the consumer reporting agency listed below. You have a right under the Fair Credit "
    "Reporting Act to know the information contained in your credit file at the consumer "
    "reporting agency.")
FCRA_NO_PART = (
    "The reporting agency played no part in our decision and is unable to supply specific "
    "reasons why we have denied credit to you.")
FCRA_FREE_REPORT = (
    "You have a right to a free copy of your report from the reporting agency, if you request "
    "it no later than 60 days after you receive this notice.")
FCRA_DISPUTE = (
    "In addition, if you find that any information contained in the report you receive is "
    "inaccurate or incomplete, you have the right to dispute the matter with the reporting "
    "agency.")

MAILING_ADDRESS_BLOCK = "[Applicant's name and mailing address: added by the mailing system]"

# Reasons 12 CFR 1002.9(b)(2) calls insufficient: the creditor's internal standards or
# policies, or a failure to reach a qualifying score on its scoring system.
_VAGUE_ANYWHERE = re.compile(
    r"internal (standard|polic|criteri|guideline|rule)|qualifying score|scoring system|"
    r"credit scoring|(did|does) not (meet|qualify)|not eligible", re.IGNORECASE)
_VAGUE_WHOLE = re.compile(
    r"(an? )?((insufficient|low|poor|inadequate|unacceptable|bad) )?(credit |risk )?"
    r"(score|rating|grade)s?( (too low|insufficient|not high enough))?|"
    r"(other|miscellaneous|policy|credit policy|underwriting)( reasons?)?", re.IGNORECASE)


class NoticeError(ValueError):
    """A notice that cannot be produced as asked: what is wrong and what to do."""


class NoticeSettingsMissing(NoticeError):
    """Creditor, agency or bureau details a notice must print are not configured."""

    def __init__(self, variables: Sequence[str]) -> None:
        self.variables = tuple(variables)
        super().__init__("an adverse-action notice needs these settings, which are not set: "
                         f"{', '.join(self.variables)} (environment variables; see "
                         "docs/notices.md)")


class NoticeReasonsRefused(NoticeError):
    """The principal reasons are missing or not specific enough for a notice."""


@dataclass(frozen=True)
class Party:
    """A name and address printed on the notice (creditor, agency or bureau)."""

    name: str
    address: str
    phone: str | None = None


@dataclass(frozen=True)
class Section:
    """One element of the notice: ``element`` names it (docs/notices.md lists them),
    ``heading`` is printed above it, ``lines`` are its paragraphs and ``items`` a list."""

    element: str
    heading: str | None
    lines: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoticeContent:
    """Everything an adverse-action notice for one declined application prints."""

    application_id: str
    application_date: date
    notice_date: date
    amount: float | None
    creditor: Party
    agency: Party
    reasons: tuple[str, ...]
    bureau: Party | None   # None: no consumer-report data was used, no FCRA block

    def action_taken(self) -> str:
        amount = f" for credit of {self.amount:,.2f}" if self.amount is not None else ""
        return (f"Thank you for your recent application{amount}, received on "
                f"{_day(self.application_date)}. After careful review, we have declined your "
                "application for credit.")

    def sections(self) -> tuple[Section, ...]:
        """The notice's elements in the order they are printed."""
        sections = [
            Section("creditor_name_and_address", None, _party_lines(self.creditor)),
            Section("notice_date", None, (f"Date: {_day(self.notice_date)}",)),
            Section("applicant", None, (f"Applicant: application {self.application_id}",
                                        MAILING_ADDRESS_BLOCK)),
            Section("action_taken", "Action taken", (self.action_taken(),)),
            Section("principal_reasons", "Principal reasons for credit denial",
                    ("Our decision was based on the following principal reasons, the most "
                     "important first:",), self.reasons),
        ]
        if self.bureau is not None:
            sections.append(Section(
                "fcra_disclosure", "Your rights under the Fair Credit Reporting Act",
                (FCRA_BASIS, *_party_lines(self.bureau, "Toll-free telephone"), FCRA_NO_PART,
                 FCRA_FREE_REPORT, FCRA_DISPUTE)))
        sections.append(Section("ecoa_statement", "Notice", (ECOA_STATEMENT,
                                                             *_party_lines(self.agency))))
        return tuple(sections)


def build_notice(settings: Settings, *, application_id: str, application_date: date,
                 notice_date: date, amount: float | None, model_reasons: Sequence[Reason],
                 reviewer_reason: str | None,
                 feature_age_seconds: Mapping[str, float | None] | None) -> NoticeContent:
    """The notice of one declined application.

    ``model_reasons``: the model decision's own reasons; ``reviewer_reason``: the plain words
    of the reason code a person declined with (never their free-text comment);
    ``feature_age_seconds``: the decision's lineage (None when it is no longer known).
    Raises :class:`NoticeSettingsMissing` or :class:`NoticeReasonsRefused`."""
    bureau_needed = bureau_data_used(feature_age_seconds)
    creditor, agency, bureau = notice_parties(settings, bureau_needed)
    return NoticeContent(
        application_id=application_id, application_date=application_date,
        notice_date=notice_date, amount=amount, creditor=creditor, agency=agency,
        reasons=principal_reasons(model_reasons, reviewer_reason), bureau=bureau)


def bureau_data_used(feature_age_seconds: Mapping[str, float | None] | None) -> bool:
    """Whether consumer-report data went into the decision: some feature view had values.
    Without lineage it cannot be ruled out, so the FCRA block is printed."""
    if feature_age_seconds is None:
        return True
    return any(age is not None for age in feature_age_seconds.values())


def principal_reasons(model_reasons: Sequence[Reason], reviewer_reason: str | None,
                      ) -> tuple[str, ...]:
    """At most four reasons, most important first: the reviewer's, then the model's, each
    text once. Refuses an empty list, an empty text, and non-specific phrases."""
    candidates = ([reviewer_reason] if reviewer_reason is not None else []) + [
        reason.text for reason in model_reasons]
    chosen: list[str] = []
    for text in (" ".join(candidate.split()) for candidate in candidates):
        if not text:
            raise NoticeReasonsRefused("a principal reason has no text; a notice must state "
                                       "specific reasons")
        if _VAGUE_ANYWHERE.search(text) or _VAGUE_WHOLE.fullmatch(text.rstrip(".")):
            raise NoticeReasonsRefused(f"the reason {text!r} is not specific: a notice must "
                                       "state the specific reasons for the decline (12 CFR "
                                       "1002.9(b)(2)), not internal standards or a score")
        if text.casefold() not in {kept.casefold() for kept in chosen}:
            chosen.append(text)
    if not chosen:
        raise NoticeReasonsRefused("the decision carries no reasons; a notice must state the "
                                   "specific reasons for the decline")
    return tuple(chosen[:MAX_REASONS])


def notice_parties(settings: Settings, bureau_needed: bool,
                   ) -> tuple[Party, Party, Party | None]:
    """The creditor, the agency and (when needed) the bureau from settings; every missing
    one is named in one :class:`NoticeSettingsMissing`."""
    required = ["notice_creditor_name", "notice_creditor_address", "notice_agency_name",
                "notice_agency_address"]
    if bureau_needed:
        required += ["notice_bureau_name", "notice_bureau_address", "notice_bureau_phone"]
    values = {name: _text(getattr(settings, name)) for name in
              (*required, "notice_creditor_phone")}
    missing = [f"CREDITRISK_{name.upper()}" for name in required if values[name] is None]
    if missing:
        raise NoticeSettingsMissing(missing)

    def party(prefix: str) -> Party:
        return Party(str(values[f"notice_{prefix}_name"]), str(values[f"notice_{prefix}_address"]),
                     values.get(f"notice_{prefix}_phone"))

    return party("creditor"), party("agency"), party("bureau") if bureau_needed else None


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _party_lines(party: Party, phone_label: str = "Telephone") -> tuple[str, ...]:
    address = tuple(line.strip() for line in re.split(r"\n|;", party.address) if line.strip())
    phone = (f"{phone_label}: {party.phone}",) if party.phone else ()
    return (party.name, *address, *phone)


def _day(moment: date) -> str:
    return f"{moment:%B} {moment.day}, {moment.year}"


SAMPLE_REASONS = (
    Reason("R09", "revol_util", "High utilisation of revolving credit", 0.41),
    Reason("R08", "dti", "High existing debt relative to income", 0.27),
    Reason("R12", "inq_last_6mths", "Many recent credit inquiries", 0.12),
    Reason("R05", "earliest_cr_line", "Short credit history", 0.05),
)


def sample_notice(settings: Settings, notice_date: date) -> NoticeContent:
    """A notice of an invented application (``sample``) with these settings: how a real one
    will look, with the FCRA block, before any application is declined."""
    return build_notice(settings, application_id="sample", application_date=notice_date,
                        notice_date=notice_date, amount=12_000.0, model_reasons=SAMPLE_REASONS,
                        reviewer_reason=None, feature_age_seconds={"bureau": 0.0})
