"""A realistic Lending Club 2007-2014-shaped loan file and the matching bureau table.

Each loan gets a hidden risk: a part the applicant's data reveals (dti, utilisation,
inquiries, delinquencies, public records, credit-history length, income, loan-to-income,
term, purpose, housing) and a larger part it does not, as in real lending. Default follows
a logistic link whose intercept is solved so about 11 % of resolved loans are bad. Lending
Club's grade and rate are a noisy reading of the same risk (a prior model's verdict), and
the payment columns follow from the outcome, so they leak it exactly as the real file does.

Then the dirt of real files: placeholders, blanks, '13.5%' strings, outliers, mixed case,
stray spaces, unparseable dates, exact duplicates and repeated ids with different content.

Deterministic: the same rows and seed give byte-identical files. Rows are generated in
chunks of ``CHUNK_ROWS`` with one random stream per chunk, so memory stays flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from config.settings import REPO_ROOT
from training import generate_tables as tables

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 100_000
TARGET_BAD_RATE = 0.11
EXACT_DUPLICATE_SHARE = 0.01
CONFLICTING_ID_SHARE = 0.001
FIRST_MONTH = 2007 * 12          # Jan-2007, months counted from year 0
LAST_MONTH = 2014 * 12 + 11      # Dec-2014
SNAPSHOT_MONTH = 2016 * 12       # the file's extraction date, Jan-2016
SIXTY_MONTH_TERMS_FROM = 2010 * 12 + 4
MONTHLY_GROWTH = np.log(2.3) / 12  # loan volume roughly doubled every year


@dataclass
class GenerationSummary:
    """What ``generate_loan_files`` wrote."""

    rows: int
    customers: int
    exact_duplicates: int
    conflicting_ids: int
    resolved_loans: int = 0
    bad_loans: int = 0
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def bad_rate_resolved(self) -> float:
        return self.bad_loans / self.resolved_loans if self.resolved_loans else float("nan")


# ---------------------------------------------------------------- population

def _draw_issue_months(rng: np.random.Generator, size: int) -> np.ndarray:
    """Issue months with exponential growth of volume over 2007-2014."""
    span = LAST_MONTH - FIRST_MONTH + 1
    weights = np.exp(MONTHLY_GROWTH * np.arange(span))
    return FIRST_MONTH + rng.choice(span, size=size, p=weights / weights.sum())


@dataclass
class _Population:
    """Who borrows: customers, their loans, and which loan is each customer's latest."""

    customer_of_row: np.ndarray
    issue_month: np.ndarray
    application_id: np.ndarray
    member_id: np.ndarray          # per customer
    earliest_credit_month: np.ndarray  # per customer: when the first credit line opened
    income_level: np.ndarray       # per customer: log annual income
    state_index: np.ndarray        # per customer
    is_latest: np.ndarray          # per row


def _draw_population(rng: np.random.Generator, loans: int) -> _Population:
    # Most customers borrow once; some come back for a second or third loan.
    loans_each = np.where(rng.random(loans) < 0.9, 1, 2 + rng.geometric(0.6, loans) - 1)
    loans_each = np.minimum(loans_each, 5)
    customers = int(np.searchsorted(np.cumsum(loans_each), loans) + 1)
    loans_each = loans_each[:customers]
    customer_of_row = np.repeat(np.arange(customers), loans_each)[:loans]
    sequence = np.arange(loans) - np.repeat(np.cumsum(loans_each) - loans_each, loans_each)[:loans]

    first_month = _draw_issue_months(rng, customers)
    gaps = rng.integers(6, 30, size=loans) * (sequence > 0)
    offsets = _cumulative_within_customer(customer_of_row, gaps)
    issue_month = np.minimum(first_month[customer_of_row] + offsets, LAST_MONTH)

    order = rng.permutation(loans)
    customer_of_row, issue_month, sequence = (customer_of_row[order], issue_month[order],
                                              sequence[order])
    by_time = np.lexsort((rng.random(loans), issue_month))
    application_id = np.empty(loans, dtype=np.int64)
    application_id[by_time] = 54_734 + np.cumsum(rng.integers(1, 25, size=loans))

    latest_key = np.lexsort((sequence, customer_of_row))
    last_of_customer = np.r_[customer_of_row[latest_key][1:] != customer_of_row[latest_key][:-1], True]
    is_latest = np.zeros(loans, dtype=bool)
    is_latest[latest_key[last_of_customer]] = True

    return _Population(
        customer_of_row=customer_of_row,
        issue_month=issue_month,
        application_id=application_id,
        member_id=70_473 + np.cumsum(rng.integers(1, 30, size=customers))[rng.permutation(customers)],
        earliest_credit_month=first_month - _draw_history_months(rng, customers),
        income_level=rng.normal(11.05, 0.55, size=customers),
        state_index=rng.choice(len(tables.STATES), size=customers, p=tables.STATE_WEIGHTS),
        is_latest=is_latest,
    )


def _draw_history_months(rng: np.random.Generator, size: int) -> np.ndarray:
    return (12 * (1.5 + rng.gamma(2.2, 6.2, size=size))).astype(np.int64)


def _cumulative_within_customer(customer_of_row: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    total = np.cumsum(gaps)
    starts = np.r_[0, np.flatnonzero(np.diff(customer_of_row)) + 1]
    before_start = np.r_[0, total][starts]
    return total - np.repeat(before_start, np.diff(np.r_[starts, len(gaps)]))


# ---------------------------------------------------------------- applications and risk

def _draw_applications(rng: np.random.Generator, issue_month: np.ndarray,
                       history_months: np.ndarray, income_level: np.ndarray) -> dict[str, np.ndarray]:
    """Application and bureau values (clean, true) and the visible part of the risk."""
    n = len(issue_month)
    annual_inc = np.exp(income_level + rng.normal(0, 0.08, n))
    annual_inc = np.where(rng.random(n) < 0.7, np.round(annual_inc, -3), np.round(annual_inc, -2))
    annual_inc = np.maximum(annual_inc, 4_000.0)
    loan_amnt = np.exp(rng.normal(np.log(0.19 * annual_inc), 0.55))
    loan_amnt = np.clip(np.where(rng.random(n) < 0.6, np.round(loan_amnt, -3),
                                 np.round(loan_amnt / 25) * 25), 1_000, 35_000)
    sixty_allowed = issue_month >= SIXTY_MONTH_TERMS_FROM
    term = np.where(sixty_allowed & (rng.random(n) < 0.12 + 0.45 * (loan_amnt > 18_000)), 60, 36)
    emp_length = rng.choice(len(tables.EMP_LENGTHS), size=n, p=tables.EMP_LENGTH_WEIGHTS)
    income_rank = (income_level - 11.05) / 0.55
    mortgage_share = np.clip(0.45 + 0.15 * income_rank, 0.05, 0.9)
    u_home = rng.random(n)
    home = np.where(u_home < mortgage_share, 0, np.where(u_home < mortgage_share + 0.1, 2, 1))
    home = np.where(rng.random(n) < 0.003, 3, home)  # OTHER / NONE, early years mostly
    purpose = rng.choice(len(tables.PURPOSES), size=n, p=tables.PURPOSE_WEIGHTS)
    verification = np.where(rng.random(n) < 0.25 + 0.35 * (loan_amnt > 15_000),
                            rng.integers(0, 2, n), 2)

    dti = np.clip(rng.gamma(4.0, 4.3, n), 0, 39.99).round(2)
    revol_util = (rng.beta(2.2, 1.8, n) * 104).round(1)
    inq = rng.negative_binomial(1.2, 0.6, n).astype(float)
    delinq = np.where(rng.random(n) < 0.18, rng.poisson(1.2, n) + 1, 0).astype(float)
    recent_delinq = rng.integers(0, 24, n)
    old_delinq = rng.integers(24, 140, n)
    mths_since_delinq = np.where(delinq > 0, recent_delinq,
                                 np.where(rng.random(n) < 0.3, old_delinq, np.nan)).astype(float)
    pub_rec = np.where(rng.random(n) < 0.13, rng.geometric(0.75, n), 0).astype(float)
    mths_since_record = np.where(pub_rec > 0, rng.integers(1, 120, n), np.nan).astype(float)
    open_acc = (rng.poisson(9.5, n) + 1).astype(float)
    total_acc = open_acc + rng.poisson(14, n)
    credit_limit = np.exp(rng.normal(np.log(0.35 * annual_inc), 0.6))
    revol_bal = np.round(credit_limit * revol_util / 100)
    history_years = history_months / 12.0

    # Log-odds of default from what the file shows; scaled so a good model on these columns
    # reaches an AUC near 0.72, as on the real file (the rest of the risk stays hidden).
    visible_risk = 1.6 * (0.030 * (dti - 17) + 0.010 * (revol_util - 55) + 0.20 * inq
                    + 0.15 * np.minimum(delinq, 3) + 0.25 * (pub_rec > 0)
                    + 0.25 * (mths_since_delinq < 12)
                    - 0.25 * np.log(np.clip(history_years, 1, None) / 15)
                    - 0.35 * np.log(annual_inc / 65_000) + 1.2 * (loan_amnt / annual_inc - 0.2)
                    + 0.45 * (term == 60) + tables.PURPOSE_RISK[purpose] + tables.HOME_RISK[home]
                    + 0.25 * (emp_length == len(tables.EMP_LENGTHS) - 1)
                    + 0.30 * (issue_month < 2009 * 12))
    return {
        "annual_inc": annual_inc, "loan_amnt": loan_amnt, "term": term, "emp_length": emp_length,
        "home": home, "purpose": purpose, "verification": verification, "dti": dti,
        "revol_util": revol_util, "inq_last_6mths": inq, "delinq_2yrs": delinq,
        "mths_since_last_delinq": mths_since_delinq, "pub_rec": pub_rec,
        "mths_since_last_record": mths_since_record, "open_acc": open_acc,
        "total_acc": total_acc, "revol_bal": revol_bal, "credit_limit": credit_limit,
        "visible_risk": visible_risk,
    }


@dataclass(frozen=True)
class _Calibration:
    intercept: float
    grade_cuts: np.ndarray  # 34 cut points on the grading score: 35 sub-grades A1..G5


def _outcome_draws(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The random numbers behind outcomes, drawn once so the intercept search is smooth."""
    return {"hidden": rng.normal(0, 0.8, n), "u_default": rng.random(n),
            "default_fraction": rng.beta(1.3, 2.4, n), "prepay": rng.geometric(0.022, n),
            "u_state": rng.random(n), "grading_noise": rng.normal(0, 0.7, n)}


def _default_month(draws: dict[str, np.ndarray], term: np.ndarray) -> np.ndarray:
    return np.maximum(1, np.ceil(draws["default_fraction"] * term)).astype(np.int64)


def _resolved_bad_rate(intercept: float, visible_risk: np.ndarray, draws: dict[str, np.ndarray],
                       term: np.ndarray, elapsed: np.ndarray) -> float:
    defaults = draws["u_default"] < _probability(intercept, visible_risk, draws)
    resolved_bad = defaults & (_default_month(draws, term) + 2 <= elapsed)
    paid_month = np.minimum(draws["prepay"], term)
    resolved_good = ~defaults & (paid_month <= elapsed)
    return resolved_bad.sum() / max(1, resolved_bad.sum() + resolved_good.sum())


def _probability(intercept: float, visible_risk: np.ndarray, draws: dict[str, np.ndarray]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(intercept + visible_risk + draws["hidden"])))


def _calibrate(seed: int) -> _Calibration:
    """Solve the intercept for the target bad rate and the grade cut points, on a fixed sample."""
    rng = np.random.default_rng([seed, 0])
    n = 60_000
    issue_month = _draw_issue_months(rng, n)
    apps = _draw_applications(rng, issue_month, _draw_history_months(rng, n),
                              rng.normal(11.05, 0.55, n))
    draws = _outcome_draws(rng, n)
    elapsed = SNAPSHOT_MONTH - issue_month
    low, high = -8.0, 2.0
    for _ in range(40):
        middle = (low + high) / 2
        if _resolved_bad_rate(middle, apps["visible_risk"], draws, apps["term"], elapsed) < TARGET_BAD_RATE:
            low = middle
        else:
            high = middle
    grading = _grading_score(apps["visible_risk"], draws)
    cuts = np.quantile(grading, np.cumsum(tables.SUB_GRADE_SHARES)[:-1])
    return _Calibration(intercept=(low + high) / 2, grade_cuts=cuts)


def _grading_score(visible_risk: np.ndarray, draws: dict[str, np.ndarray]) -> np.ndarray:
    # Lending Club saw part of what the file hides (FICO, full bureau report): its grade
    # is a noisy reading of the visible risk plus some of the hidden risk.
    return visible_risk + 0.3 * draws["hidden"] + draws["grading_noise"]


# ---------------------------------------------------------------- outcomes and payments

def _remaining_balance(principal: np.ndarray, monthly_rate: np.ndarray, term: np.ndarray,
                       payments_made: np.ndarray) -> np.ndarray:
    growth_term = (1 + monthly_rate) ** term
    growth_paid = (1 + monthly_rate) ** np.minimum(payments_made, term)
    return principal * (growth_term - growth_paid) / (growth_term - 1)


def _draw_outcomes(rng: np.random.Generator, apps: dict[str, np.ndarray], issue_month: np.ndarray,
                   calibration: _Calibration) -> dict[str, np.ndarray]:
    """Status, pricing and every post-origination column, consistent with the outcome."""
    n = len(issue_month)
    draws = _outcome_draws(rng, n)
    term = apps["term"]
    elapsed = SNAPSHOT_MONTH - issue_month
    defaults = draws["u_default"] < _probability(calibration.intercept, apps["visible_risk"], draws)
    default_month = _default_month(draws, term)
    paid_month = np.minimum(draws["prepay"], term)

    sub_grade = np.searchsorted(calibration.grade_cuts, _grading_score(apps["visible_risk"], draws))
    int_rate = (6.0 + 0.56 * sub_grade + 0.9 * (issue_month < 2009 * 12)
                + 0.6 * ((issue_month >= 2012 * 12) & (issue_month < 2014 * 12))
                + rng.normal(0, 0.25, n)).round(2)
    funded = np.where(rng.random(n) < 0.03,
                      np.round(apps["loan_amnt"] * rng.uniform(0.6, 0.95, n) / 25) * 25,
                      apps["loan_amnt"])
    investor_share = np.where(rng.random(n) < 0.25, rng.uniform(0.85, 1.0, n), 1.0)
    funded_inv = np.round(funded * investor_share / 25) * 25
    monthly_rate = int_rate / 1200
    installment = (funded * monthly_rate / (1 - (1 + monthly_rate) ** -term)).round(2)

    status = np.full(n, "Current", dtype=object)
    months_late = elapsed - default_month
    charged_off = defaults & (months_late >= 5)
    status[defaults & (months_late == 4)] = "Default"
    status[defaults & (months_late >= 2) & (months_late <= 3)] = "Late (31-120 days)"
    status[defaults & (months_late == 1)] = np.where(draws["u_state"][defaults & (months_late == 1)]
                                                     < 0.5, "In Grace Period", "Late (16-30 days)")
    status[charged_off] = "Charged Off"
    fully_paid = ~defaults & (paid_month <= elapsed)
    status[fully_paid] = "Fully Paid"
    running_good = ~defaults & ~fully_paid
    status[running_good & (draws["u_state"] < 0.006)] = "In Grace Period"
    status[running_good & (draws["u_state"] > 0.996)] = "Late (16-30 days)"
    policy_exception = (issue_month < 2010 * 12 + 10) & (draws["u_state"] > 0.5) & (
        rng.random(n) < 0.14) & (charged_off | fully_paid)
    status[policy_exception] = "Does not meet the credit policy. Status:" + status[policy_exception]

    payments = np.where(defaults, np.minimum(default_month, elapsed),
                        np.where(fully_paid, paid_month, elapsed - 1))
    balance = _remaining_balance(funded, monthly_rate, term, payments)
    balance = np.where(fully_paid, 0.0, balance)
    principal_paid = funded - balance
    interest_paid = np.maximum(installment * payments - (funded - _remaining_balance(
        funded, monthly_rate, term, payments)), 0).round(2)
    late_fee = np.where(rng.random(n) < np.where(defaults, 0.3, 0.02), 15.0, 0.0)
    recoveries = np.where(charged_off & (rng.random(n) < 0.7),
                          (balance * rng.uniform(0.02, 0.3, n)).round(2), 0.0)
    collection_fee = (recoveries * np.where(rng.random(n) < 0.6, 0.18, 0.0)).round(2)
    out_prncp = np.where(charged_off | fully_paid, 0.0, balance).round(2)
    total_pymnt = (principal_paid + interest_paid + late_fee + recoveries).round(2)
    prepaid = fully_paid & (paid_month < term)
    last_payment = np.where(prepaid, _remaining_balance(funded, monthly_rate, term, paid_month - 1),
                            installment).round(2)
    return {
        "status": status, "sub_grade": sub_grade, "int_rate": int_rate, "installment": installment,
        "funded": funded, "funded_inv": funded_inv, "investor_share": investor_share,
        "out_prncp": out_prncp, "total_pymnt": total_pymnt,
        "total_rec_prncp": principal_paid.round(2),
        "total_rec_int": interest_paid, "late_fee": late_fee, "recoveries": recoveries,
        "collection_fee": collection_fee, "last_payment_amount": last_payment,
        "last_payment_month": np.where(payments > 0, issue_month + payments, -1),
        "is_running": ~(charged_off | fully_paid),
        "resolved_bad": charged_off | np.isin(status, ["Default", "Late (31-120 days)"]),
        "resolved_good": fully_paid,
    }


# ---------------------------------------------------------------- the loan file

def _month_text(months: np.ndarray) -> np.ndarray:
    """'Dec-11' for each absolute month; '' where the month is unknown (negative)."""
    names = np.array(tables.MONTH_NAMES, dtype=object)
    years = np.char.zfill((np.maximum(months, 0) // 12 % 100).astype(str), 2).astype(object)
    return np.where(months >= 0, names[np.maximum(months, 0) % 12] + "-" + years, "")


def _iso_month(months: np.ndarray) -> np.ndarray:
    years = (months // 12).astype(str).astype(object)
    return years + "-" + np.char.zfill((months % 12 + 1).astype(str), 2).astype(object) + "-01"


def _loan_columns(rng: np.random.Generator, ids: np.ndarray, member_ids: np.ndarray,
                  issue_month: np.ndarray, earliest_month: np.ndarray, state_index: np.ndarray,
                  apps: dict[str, np.ndarray], outcomes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(ids)
    pre_2012 = issue_month < 2012 * 12
    running = outcomes["is_running"]
    pull_month = np.where(rng.random(n) < 0.85, SNAPSHOT_MONTH,
                          rng.integers(issue_month, SNAPSHOT_MONTH + 1))
    title = np.where(rng.random(n) < 0.15, rng.choice(tables.FREE_TEXT_TITLES, n),
                     tables.PURPOSE_TITLES[apps["purpose"]])
    emp_title = np.where(rng.random(n) < 0.06, "", rng.choice(tables.EMP_TITLES, n))
    missing_late_bureau = np.where(pre_2012, np.nan, 1.0)
    return {
        "id": ids, "member_id": member_ids, "loan_amnt": apps["loan_amnt"].astype(np.int64),
        "funded_amnt": outcomes["funded"].astype(np.int64), "funded_amnt_inv": outcomes["funded_inv"],
        "term": np.where(apps["term"] == 60, " 60 months", " 36 months").astype(object),
        "int_rate": outcomes["int_rate"], "installment": outcomes["installment"],
        "grade": np.array(list(tables.GRADES), dtype=object)[outcomes["sub_grade"] // 5],
        "sub_grade": tables.SUB_GRADES[outcomes["sub_grade"]], "emp_title": emp_title,
        "emp_length": np.array(tables.EMP_LENGTHS, dtype=object)[apps["emp_length"]],
        "home_ownership": tables.HOME_OWNERSHIP[apps["home"]],
        "annual_inc": apps["annual_inc"], "verification_status": tables.VERIFICATION[apps["verification"]],
        "issue_d": _month_text(issue_month), "loan_status": outcomes["status"],
        "pymnt_plan": np.where(running & (rng.random(n) < 0.002), "y", "n"),
        "purpose": np.array(tables.PURPOSES, dtype=object)[apps["purpose"]], "title": title,
        "zip_code": np.char.add(np.char.zfill(rng.integers(10, 999, n).astype(str), 3), "xx"),
        "addr_state": np.array(tables.STATES, dtype=object)[state_index], "dti": apps["dti"],
        "delinq_2yrs": apps["delinq_2yrs"], "earliest_cr_line": _month_text(earliest_month),
        "inq_last_6mths": apps["inq_last_6mths"],
        "mths_since_last_delinq": apps["mths_since_last_delinq"],
        "mths_since_last_record": apps["mths_since_last_record"], "open_acc": apps["open_acc"],
        "pub_rec": apps["pub_rec"], "revol_bal": apps["revol_bal"], "revol_util": apps["revol_util"],
        "total_acc": apps["total_acc"],
        "initial_list_status": np.where((issue_month >= 2012 * 12 + 8) & (rng.random(n) < 0.4), "w", "f"),
        "out_prncp": outcomes["out_prncp"],
        "out_prncp_inv": (outcomes["out_prncp"] * outcomes["investor_share"]).round(2),
        "total_pymnt": outcomes["total_pymnt"],
        "total_pymnt_inv": (outcomes["total_pymnt"] * outcomes["investor_share"]).round(2),
        "total_rec_prncp": outcomes["total_rec_prncp"], "total_rec_int": outcomes["total_rec_int"],
        "total_rec_late_fee": outcomes["late_fee"], "recoveries": outcomes["recoveries"],
        "collection_recovery_fee": outcomes["collection_fee"],
        "last_pymnt_d": _month_text(outcomes["last_payment_month"]),
        "last_pymnt_amnt": outcomes["last_payment_amount"],
        "next_pymnt_d": np.where(running, _month_text(np.full(n, SNAPSHOT_MONTH + 1)), ""),
        "last_credit_pull_d": _month_text(pull_month),
        "collections_12_mths_ex_med": (rng.random(n) < 0.01).astype(float),
        "policy_code": np.ones(n, dtype=np.int64), "application_type": np.full(n, "INDIVIDUAL"),
        "acc_now_delinq": (rng.random(n) < 0.003).astype(float),
        "tot_coll_amt": np.where(rng.random(n) < 0.12, rng.integers(50, 3000, n), 0) * missing_late_bureau,
        "tot_cur_bal": (np.round(np.exp(rng.normal(np.log(1.5 * apps["annual_inc"]), 0.9)))
                        * missing_late_bureau),
        "total_rev_hi_lim": np.round(apps["credit_limit"]) * missing_late_bureau,
    }


def _sprinkle(rng: np.random.Generator, values: np.ndarray, share: float,
              replacements: list[object]) -> np.ndarray:
    """Replace a random ``share`` of ``values`` by random picks from ``replacements``."""
    hit = rng.random(len(values)) < share
    if not hit.any():
        return values
    dirty = values.astype(object)
    dirty[hit] = np.array(replacements, dtype=object)[rng.integers(0, len(replacements), hit.sum())]
    return dirty


def _add_dirt(rng: np.random.Generator, columns: dict[str, np.ndarray]) -> None:
    """The mess real loan files have, at roughly the rates seen in them."""
    def percent_strings(values: np.ndarray, share: float) -> np.ndarray:
        as_text = rng.random(len(values)) < share
        dirty = values.astype(object)
        dirty[as_text] = np.char.add(values[as_text].astype(str), "%")
        return dirty

    columns["int_rate"] = percent_strings(columns["int_rate"], 0.03)
    columns["revol_util"] = percent_strings(columns["revol_util"], 0.40)
    sprinkles: dict[str, tuple[float, list[object]]] = {
        "revol_util": (0.0015, ["", "", "NULL", -3.5, 180.4]),
        "annual_inc": (0.0012, ["", "n/a", 9_999_999.0, 0.0, -45_000.0]),
        "loan_amnt": (0.0002, [-5_000, "", "NULL"]),
        "dti": (0.0008, [999.0, -1.0, "NULL", ""]),
        "open_acc": (0.0004, ["", "NULL"]), "total_acc": (0.0004, ["", "NULL"]),
        "inq_last_6mths": (0.0004, ["", "n/a"]), "delinq_2yrs": (0.0004, ["", "NULL", -1.0]),
        "revol_bal": (0.0003, ["", "NULL", "n/a"]),
        "issue_d": (0.0005, ["", "n/a", "Dce-11", "2011/13", "13-2012"]),
        "earliest_cr_line": (0.0008, ["", "n/a", "Jan-", "00-0000"]),
        "emp_title": (0.01, ["  Teacher", "MANAGER ", "n/a", "NULL"]),
    }
    for column, (share, replacements) in sprinkles.items():
        columns[column] = _sprinkle(rng, columns[column], share, replacements)
    # Same value, different spelling: what hand-keyed and merged files look like.
    respellings = {"term": 0.005, "home_ownership": 0.02, "verification_status": 0.01,
                   "purpose": 0.01, "addr_state": 0.005, "emp_length": 0.003, "loan_status": 0.004}
    for column, share in respellings.items():
        columns[column] = _respell(rng, columns[column], share)


_RESPELLINGS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    np.char.lower, np.char.upper, np.char.title, np.char.strip,
                lambda text: np.char.add(" ", text), lambda text: np.char.add(text, "  "))


def _respell(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Change case or spacing of a random ``share`` of the text values, keeping their meaning."""
    hit = np.flatnonzero((rng.random(len(values)) < share)
                         & np.array([isinstance(v, str) and v != "" for v in values]))
    dirty = values.astype(object)
    how = rng.integers(0, len(_RESPELLINGS), len(hit))
    for index, respell in enumerate(_RESPELLINGS):
        chosen = hit[how == index]
        if len(chosen):
            dirty[chosen] = respell(dirty[chosen].astype(str)).astype(object)
    return dirty


def _with_duplicates(rng: np.random.Generator, frame: pd.DataFrame, exact: int,
                     conflicting: int) -> pd.DataFrame:
    """Append exact copies of some rows and same-id rows with different content, then shuffle."""
    import pandas as pd

    copies = frame.iloc[rng.choice(len(frame), exact, replace=False)]
    conflicts = frame.iloc[rng.choice(len(frame), conflicting, replace=False)].copy()
    conflicts["annual_inc"] = [round(float(v) * 1.1, 0) if isinstance(v, float) else 52_000.0
                               for v in conflicts["annual_inc"]]
    conflicts["loan_amnt"] = 1_000
    combined = pd.concat([frame, copies, conflicts], ignore_index=True)
    return combined.iloc[rng.permutation(len(combined))]


# ---------------------------------------------------------------- driver

BUREAU_COLUMNS = ("customer_id", "earliest_cr_line", "delinq_2yrs", "inq_last_6mths", "open_acc",
                  "total_acc", "pub_rec", "revol_bal", "revol_util", "mths_since_last_delinq",
                  "monthly_debt", "as_of")


def _bureau_rows(member_ids: np.ndarray, issue_month: np.ndarray, earliest_month: np.ndarray,
                 apps: dict[str, np.ndarray], latest: np.ndarray) -> pd.DataFrame:
    """Clean bureau values of each customer's latest application, as the feature store holds them."""
    import pandas as pd

    return pd.DataFrame({
        "customer_id": member_ids[latest],
        "earliest_cr_line": _iso_month(earliest_month[latest]),
        **{column: apps[column][latest] for column in (
            "delinq_2yrs", "inq_last_6mths", "open_acc", "total_acc", "pub_rec", "revol_bal",
            "revol_util", "mths_since_last_delinq")},
        "monthly_debt": (apps["dti"] * apps["annual_inc"] / 1200).round(2)[latest],
        "as_of": _iso_month(issue_month[latest]) + "T00:00:00Z",
    })


def _split_evenly(total: int, parts: int) -> np.ndarray:
    edges = np.linspace(0, total, parts + 1).round().astype(np.int64)
    return np.diff(edges)


def prepared_output(rows: int, out_dir: str | Path) -> Path:
    """Check a generator's row count and create its output folder."""
    if not isinstance(rows, int) or rows < 100:
        raise ValueError(f"rows must be an integer of at least 100, got {rows!r}.")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def generate_loan_files(rows: int, seed: int, out_dir: str | Path,
                        show_progress: bool = True) -> GenerationSummary:
    """Write ``loans.csv`` (dirty, Lending Club layout) and ``bureau.csv`` (clean) into ``out_dir``."""
    import pandas as pd
    from tqdm import tqdm

    out_dir = prepared_output(rows, out_dir)
    started = time.perf_counter()
    loans_path, bureau_path = out_dir / "loans.csv", out_dir / "bureau.csv"

    exact_total = int(rows * EXACT_DUPLICATE_SHARE)
    conflicting_total = int(rows * CONFLICTING_ID_SHARE)
    unique_rows = rows - exact_total - conflicting_total
    calibration = _calibrate(seed)
    population = _draw_population(np.random.default_rng([seed, 1]), unique_rows)
    chunks = max(1, -(-unique_rows // CHUNK_ROWS))
    chunk_sizes = _split_evenly(unique_rows, chunks)
    exact_sizes = _split_evenly(exact_total, chunks)
    conflicting_sizes = _split_evenly(conflicting_total, chunks)
    summary = GenerationSummary(rows=rows, customers=len(population.member_id),
                                exact_duplicates=exact_total, conflicting_ids=conflicting_total)
    bureau_parts = []
    start = 0
    with tqdm(total=rows, unit="rows", desc="generating loans", disable=not show_progress) as bar:
        for index, size in enumerate(chunk_sizes):
            rng = np.random.default_rng([seed, 2, index])
            rows_here = slice(start, start + size)
            start += size
            customers = population.customer_of_row[rows_here]
            issue_month = population.issue_month[rows_here]
            earliest_month = population.earliest_credit_month[customers]
            apps = _draw_applications(rng, issue_month, issue_month - earliest_month,
                                      population.income_level[customers])
            outcomes = _draw_outcomes(rng, apps, issue_month, calibration)
            summary.resolved_loans += int((outcomes["resolved_bad"] | outcomes["resolved_good"]).sum())
            summary.bad_loans += int(outcomes["resolved_bad"].sum())
            member_ids = population.member_id[customers]
            columns = _loan_columns(rng, population.application_id[rows_here], member_ids,
                                    issue_month, earliest_month, population.state_index[customers],
                                    apps, outcomes)
            bureau_parts.append(_bureau_rows(member_ids, issue_month, earliest_month, apps,
                                             population.is_latest[rows_here]))
            _add_dirt(rng, columns)
            frame = _with_duplicates(rng, pd.DataFrame(columns), int(exact_sizes[index]),
                                     int(conflicting_sizes[index]))
            frame.to_csv(loans_path, mode="w" if index == 0 else "a", header=index == 0,
                         index=False, lineterminator="\n")
            bar.update(len(frame))

    bureau = pd.concat(bureau_parts, ignore_index=True).sort_values("customer_id", kind="stable")
    bureau.to_csv(bureau_path, index=False, lineterminator="\n", columns=list(BUREAU_COLUMNS))
    summary.files = [str(loans_path), str(bureau_path)]
    summary.seconds = time.perf_counter() - started
    return summary


# The demo's generated Lending Club-shaped file (`creditrisk demo`, and the benchmarks that
# run on the same loans).
DEMO_DATA = REPO_ROOT / "data" / "demo"
DEMO_ROWS = 100_000
DEMO_SEED = 7


def demo_loans() -> Path:
    """The demo's generated loan file, generated first if it is not there."""
    loans = DEMO_DATA / "loans.csv"
    if not loans.is_file():
        generate_loan_files(rows=DEMO_ROWS, seed=DEMO_SEED, out_dir=DEMO_DATA)
    return loans
