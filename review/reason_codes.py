"""The controlled list of reasons a reviewer may give for a final decision.

A decline's reason is printed on the applicant's adverse-action notice, so its words are
the applicant's plain words (what was wrong, never "internal standards"); an approval's is
for the audit. A lender replaces the list by editing it here: codes are stable, so the
audit rows keep meaning what they meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ReasonUse = Literal["approve", "decline"]


@dataclass(frozen=True)
class ReasonCode:
    code: str
    use: ReasonUse
    text: str


REASON_CODES: tuple[ReasonCode, ...] = (
    ReasonCode("DC01", "decline", "Income insufficient for the amount of credit requested"),
    ReasonCode("DC02", "decline", "Unable to verify income"),
    ReasonCode("DC03", "decline", "Excessive obligations in relation to income"),
    ReasonCode("DC04", "decline", "Delinquent past or present credit obligations with others"),
    ReasonCode("DC05", "decline", "Limited credit experience"),
    ReasonCode("DC06", "decline", "Unable to verify information on the application"),
    ReasonCode("DC07", "decline", "Too many recent requests for credit"),
    ReasonCode("DC08", "decline", "Length of employment too short"),
    ReasonCode("AP01", "approve", "Income and employment verified by documents"),
    ReasonCode("AP02", "approve", "Adverse credit history explained and resolved"),
    ReasonCode("AP03", "approve", "Additional security or a guarantor provided"),
    ReasonCode("AP04", "approve", "Credit bureau information found to be wrong and corrected"),
    ReasonCode("AP05", "approve", "Long relationship with a good repayment record"),
)
BY_CODE = {reason.code: reason for reason in REASON_CODES}


class UnknownReasonCode(ValueError):
    """A reason code outside the controlled list, or one for the other kind of decision."""


def reason_for(code: str, decision: ReasonUse) -> ReasonCode:
    """The listed reason ``code`` for a final ``decision``; refused otherwise."""
    reason = BY_CODE.get(code)
    if reason is None:
        raise UnknownReasonCode(f"unknown reason code {code!r}; the list has "
                                f"{', '.join(BY_CODE)}")
    if reason.use != decision:
        raise UnknownReasonCode(f"reason code {code} ({reason.text}) is a reason to "
                                f"{reason.use}, not to {decision}")
    return reason


def choices(decision: ReasonUse) -> list[ReasonCode]:
    return [reason for reason in REASON_CODES if reason.use == decision]
