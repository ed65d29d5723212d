"""Per-value normalisation of the application fields, shared by training and serving.

Offline cleaning applies these functions to every distinct value of a column; the real-time
service applies them to the value in an incoming event. One definition, so a loan typed as
``" 36 months"`` in a Lending Club file and ``36`` in a Kafka event become the same input.

Every function is total: it never raises, and returns ``None`` when the value cannot be
understood (the caller decides whether that is a missing value or a dead letter).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

# Not "none": Lending Club uses NONE as a home_ownership value.
PLACEHOLDER_TOKENS = frozenset({"n/a", "na", "null", "nan", "-", "--", "?", "#n/a"})
VALID_TERMS_MONTHS = frozenset({36, 60})
HOME_OWNERSHIP_VALUES = frozenset({"RENT", "OWN", "MORTGAGE", "OTHER", "NONE", "ANY"})
VERIFICATION_STATUS_VALUES = {
    "verified": "Verified",
    "source verified": "Source Verified",
    "not verified": "Not Verified",
}
MAX_EMP_LENGTH_YEARS = 10.0

_WHITESPACE = re.compile(r"\s+")
_TERM = re.compile(r"^(\d+(?:\.0+)?)\s*(?:months?|mths?|m)?$", re.IGNORECASE)
_EMP_LESS_THAN_ONE = re.compile(r"^<\s*1\s*(?:years?|yrs?)?$", re.IGNORECASE)
_EMP_YEARS = re.compile(r"^(\d+(?:\.\d+)?)\s*(\+)?\s*(?:years?|yrs?)?$", re.IGNORECASE)
_PERCENT = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*%?$")
_STATE = re.compile(r"^[A-Z]{2}$")
_INTEGRAL_NUMBER = re.compile(r"^([-+]?\d+)\.0*$")


def is_placeholder(value: object) -> bool:
    """True for the text files use to say "unknown": 'n/a', 'NULL', 'None', 'nan', '-', ..."""
    return isinstance(value, str) and value.strip().lower() in PLACEHOLDER_TOKENS


def is_missing(value: object) -> bool:
    """True for None, NaN, blank text and placeholder tokens."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return value.strip() == "" or is_placeholder(value)
    return False


def _clean_text(value: object) -> str | None:
    """Stripped text with inner whitespace collapsed, or None when missing."""
    if is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None
    if not isinstance(value, str):
        return None
    return _WHITESPACE.sub(" ", value.strip())


def _finite_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def parse_number(value: object) -> float | None:
    """A finite float from a number or numeric text ('1,200.50' is accepted), else None."""
    number = _finite_number(value)
    if number is not None or not isinstance(value, str):
        return number
    text = value.strip().replace(",", "")
    if not text or is_placeholder(text):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_term(value: object) -> int | None:
    """Loan term in months (36 or 60) from ' 36 months', '60', 36 or 60.0; else None."""
    number = _finite_number(value)
    if number is None:
        text = _clean_text(value)
        match = _TERM.match(text) if text is not None else None
        if match is None:
            return None
        number = float(match.group(1))
    if not number.is_integer() or int(number) not in VALID_TERMS_MONTHS:
        return None
    return int(number)


def parse_emp_length(value: object) -> float | None:
    """Employment length in years 0-10 from '10+ years', '< 1 year', '3 years' or 3; else None.

    '< 1 year' is 0 and '10+ years' is 10, the Lending Club coding; 'n/a' is unknown (None).
    """
    number = _finite_number(value)
    if number is None:
        text = _clean_text(value)
        if text is None:
            return None
        if _EMP_LESS_THAN_ONE.match(text):
            return 0.0
        match = _EMP_YEARS.match(text)
        if match is None:
            return None
        number = float(match.group(1))
    if number < 0 or number > MAX_EMP_LENGTH_YEARS:
        return None
    return float(number)


def parse_percent(value: object) -> float | None:
    """A percentage as a number of percent: '13.5%', ' 13.5 % ', '13.5' and 13.5 give 13.5."""
    number = _finite_number(value)
    if number is not None:
        return number
    text = _clean_text(value)
    if text is None:
        return None
    match = _PERCENT.match(text)
    if match is None:
        return None
    number = float(match.group(1))
    return number if math.isfinite(number) else None


def normalize_home_ownership(value: object) -> str | None:
    """RENT / OWN / MORTGAGE / OTHER / NONE / ANY from any case and spacing; else None."""
    text = _clean_text(value)
    if text is None:
        return None
    upper = text.upper()
    return upper if upper in HOME_OWNERSHIP_VALUES else None


def normalize_verification_status(value: object) -> str | None:
    """'Verified', 'Source Verified' or 'Not Verified' from any case and spacing; else None."""
    text = _clean_text(value)
    if text is None:
        return None
    return VERIFICATION_STATUS_VALUES.get(text.lower().replace("_", " "))


def normalize_purpose(value: object) -> str | None:
    """Lower snake case ('Debt Consolidation' -> 'debt_consolidation'); None when blank."""
    text = _clean_text(value)
    if text is None:
        return None
    snake = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return snake or None


def normalize_addr_state(value: object) -> str | None:
    """Two upper-case letters ('ca ' -> 'CA'); None for anything else."""
    text = _clean_text(value)
    if text is None:
        return None
    upper = text.upper()
    return upper if _STATE.match(upper) else None


# Lending Club writes dates as 'Dec-11'; other exports use 'Dec-2011' or ISO dates.
DATE_FORMATS = ("%b-%y", "%b-%Y", "%Y-%m-%d", "%Y-%m", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S")
# Two-digit years after this are last century: a credit line opened 'Jan-62' is 1962, not 2062.
TWO_DIGIT_YEAR_PIVOT = 2030


def parse_date(value: object) -> datetime | None:
    """A date from the formats loan files use ('Dec-11', 'Dec-2011', '2011-12-01', ...), else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for date_format in DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, date_format)
        except ValueError:
            continue
        if "%y" in date_format and parsed.year > TWO_DIGIT_YEAR_PIVOT:
            parsed = parsed.replace(year=parsed.year - 100)
        return parsed
    return None


def utc_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with a 'Z' suffix, millisecond precision: '2026-11-22T14:03:07.123Z'."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone; pass an aware one, e.g. "
                         "datetime.now(UTC)")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outcome_key(value: object) -> str:
    """A loan outcome as compared with a dataset's outcome lists: without caring for case,
    spacing or '1' vs '1.0' (training labels with it; the ledger classes outcomes with it)."""
    text = _WHITESPACE.sub(" ", str(value).strip()).casefold()
    integral = _INTEGRAL_NUMBER.match(text)
    return integral.group(1) if integral else text
