"""Home Credit Default Risk-shaped files: ``application_train.csv`` and ``bureau.csv``.

The columns are the real files' (a subset of the 122 application columns, in their order, and
all 17 bureau columns), in their formats: ``DAYS_*`` counted backwards from the application
(negative), money as ``202500.0``, flags as ``Y``/``N`` or ``1``/``0``. The real dirt is kept:
``DAYS_EMPLOYED = 365243`` for pensioners and the unemployed (whose ``ORGANIZATION_TYPE`` is
``XNA``), a few ``XNA`` genders and ``Unknown`` family statuses, ``EXT_SOURCE_1`` missing for
about half the applicants, ``OWN_CAR_AGE`` only for car owners, blank bureau-enquiry counts,
a few absurd incomes, and about 14 % of applicants without any credit in the bureau.

Risk: each applicant has a hidden creditworthiness; the three external scores are noisy
readings of it (the strongest signals, as in the real data). The credit-bureau record follows
a distress that shares part of it, so current overdue days and amounts, bad debt and heavy
active debt raise the risk. Education, income type, occupation, job tenure, region rating,
defaults in the social circle and the loan's affordability add smaller effects, age and sex
too (as in the real file; they are excluded from scoring), plus a larger unseen part. The
intercept is solved so about 8 % of applicants have ``TARGET = 1``.

Deterministic: the same rows and seed give byte-identical files. Applicants are generated
in chunks of ``CHUNK_ROWS`` with one random stream per chunk, so memory stays flat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit

from training.generate import prepared_output

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 50_000
TARGET_BAD_RATE = 0.08
NO_BUREAU_SHARE = 0.14
EMPLOYED_SENTINEL = 365243  # Home Credit's code for "no current employment"
FIRST_APPLICANT_ID = 100_002
FIRST_BUREAU_ID = 5_000_000

APPLICATION_FILE = "application_train.csv"
BUREAU_FILE = "bureau.csv"
APPLICATION_COLUMNS = (
    "SK_ID_CURR", "TARGET", "NAME_CONTRACT_TYPE", "CODE_GENDER", "FLAG_OWN_CAR",
    "FLAG_OWN_REALTY", "CNT_CHILDREN", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY",
    "AMT_GOODS_PRICE", "NAME_TYPE_SUITE", "NAME_INCOME_TYPE", "NAME_EDUCATION_TYPE",
    "NAME_FAMILY_STATUS", "NAME_HOUSING_TYPE", "REGION_POPULATION_RELATIVE", "DAYS_BIRTH",
    "DAYS_EMPLOYED", "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "OWN_CAR_AGE", "FLAG_MOBIL",
    "FLAG_EMP_PHONE", "FLAG_WORK_PHONE", "FLAG_CONT_MOBILE", "FLAG_PHONE", "FLAG_EMAIL",
    "OCCUPATION_TYPE", "CNT_FAM_MEMBERS", "REGION_RATING_CLIENT", "REGION_RATING_CLIENT_W_CITY",
    "WEEKDAY_APPR_PROCESS_START", "HOUR_APPR_PROCESS_START", "REG_REGION_NOT_LIVE_REGION",
    "REG_REGION_NOT_WORK_REGION", "LIVE_REGION_NOT_WORK_REGION", "REG_CITY_NOT_LIVE_CITY",
    "REG_CITY_NOT_WORK_CITY", "LIVE_CITY_NOT_WORK_CITY", "ORGANIZATION_TYPE", "EXT_SOURCE_1",
    "EXT_SOURCE_2", "EXT_SOURCE_3", "OBS_30_CNT_SOCIAL_CIRCLE", "DEF_30_CNT_SOCIAL_CIRCLE",
    "OBS_60_CNT_SOCIAL_CIRCLE", "DEF_60_CNT_SOCIAL_CIRCLE", "DAYS_LAST_PHONE_CHANGE",
    "AMT_REQ_CREDIT_BUREAU_HOUR", "AMT_REQ_CREDIT_BUREAU_DAY", "AMT_REQ_CREDIT_BUREAU_WEEK",
    "AMT_REQ_CREDIT_BUREAU_MON", "AMT_REQ_CREDIT_BUREAU_QRT", "AMT_REQ_CREDIT_BUREAU_YEAR",
)
BUREAU_COLUMNS = (
    "SK_ID_CURR", "SK_ID_BUREAU", "CREDIT_ACTIVE", "CREDIT_CURRENCY", "DAYS_CREDIT",
    "CREDIT_DAY_OVERDUE", "DAYS_CREDIT_ENDDATE", "DAYS_ENDDATE_FACT", "AMT_CREDIT_MAX_OVERDUE",
    "CNT_CREDIT_PROLONG", "AMT_CREDIT_SUM", "AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM_LIMIT",
    "AMT_CREDIT_SUM_OVERDUE", "CREDIT_TYPE", "DAYS_CREDIT_UPDATE", "AMT_ANNUITY",
)

# Category shares close to the real application_train.csv.
INCOME_TYPES = {"Working": 0.635, "Commercial associate": 0.285, "State servant": 0.0785,
                "Unemployed": 0.0005, "Student": 0.0003, "Businessman": 0.0002,
                "Maternity leave": 0.0005}
EDUCATION = {"Secondary / secondary special": 0.71, "Higher education": 0.243,
             "Incomplete higher": 0.033, "Lower secondary": 0.0124, "Academic degree": 0.0006}
FAMILY_STATUS = {"Married": 0.639, "Single / not married": 0.148, "Civil marriage": 0.097,
                 "Separated": 0.064, "Widow": 0.052}
HOUSING = {"House / apartment": 0.887, "With parents": 0.048, "Municipal apartment": 0.036,
           "Rented apartment": 0.016, "Office apartment": 0.009, "Co-op apartment": 0.004}
SUITE = {"Unaccompanied": 0.81, "Family": 0.131, "Spouse, partner": 0.037, "Children": 0.011,
         "Other_B": 0.006, "Other_A": 0.003, "Group of people": 0.001}
OCCUPATIONS = {"Laborers": 0.26, "Sales staff": 0.152, "Core staff": 0.131, "Managers": 0.101,
               "Drivers": 0.088, "High skill tech staff": 0.054, "Accountants": 0.046,
               "Medicine staff": 0.04, "Security staff": 0.031, "Cooking staff": 0.028,
               "Cleaning staff": 0.022, "Private service staff": 0.013,
               "Low-skill Laborers": 0.01, "Waiters/barmen staff": 0.007, "Secretaries": 0.006,
               "Realty agents": 0.004, "HR staff": 0.003, "IT staff": 0.002}
ORGANIZATIONS = {"Business Entity Type 3": 0.27, "Self-employed": 0.152, "Other": 0.066,
                 "Medicine": 0.044, "Business Entity Type 2": 0.042, "Government": 0.041,
                 "School": 0.035, "Trade: type 7": 0.031, "Kindergarten": 0.027,
                 "Construction": 0.027, "Business Entity Type 1": 0.024,
                 "Transport: type 4": 0.021, "Trade: type 3": 0.014, "Industry: type 9": 0.013,
                 "Industry: type 3": 0.013, "Security": 0.013, "Housing": 0.012,
                 "Industry: type 11": 0.011, "Military": 0.011, "Bank": 0.01, "Agriculture": 0.01,
                 "Police": 0.009, "Transport: type 2": 0.009, "Postal": 0.009,
                 "Security Ministries": 0.008, "Trade: type 2": 0.007, "Restaurant": 0.007,
                 "Services": 0.006, "University": 0.005, "Industry: type 7": 0.005,
                 "Transport: type 3": 0.005, "Electricity": 0.004, "Hotel": 0.004,
                 "Telecom": 0.002, "Emergency": 0.002, "Insurance": 0.002, "Culture": 0.002,
                 "Mobile": 0.001, "Realtor": 0.001, "Legal Services": 0.001}
WEEKDAYS = {"TUESDAY": 0.175, "WEDNESDAY": 0.169, "MONDAY": 0.165, "THURSDAY": 0.164,
            "FRIDAY": 0.164, "SATURDAY": 0.11, "SUNDAY": 0.053}
CREDIT_TYPES = {"Consumer credit": 0.729, "Credit card": 0.234, "Car loan": 0.016,
                "Mortgage": 0.011, "Microloan": 0.0073, "Loan for business development": 0.0012,
                "Another type of loan": 0.0006}
CURRENCIES = {"currency 1": 0.9992, "currency 2": 0.0007, "currency 3": 0.00008,
              "currency 4": 0.00002}
REGION_DENSITIES = (0.0358, 0.0353, 0.0311, 0.0287, 0.0265, 0.0252, 0.0228, 0.0201, 0.0188,
                    0.0107, 0.0105, 0.0101, 0.0091, 0.0084, 0.0073, 0.0066, 0.0060, 0.0050,
                    0.0046, 0.0038, 0.0031, 0.0025, 0.0020, 0.0010, 0.0003)

# Risk shifts (log-odds) by category; categories not named shift nothing.
EDUCATION_RISK = {"Higher education": -0.35, "Incomplete higher": 0.05,
                  "Lower secondary": 0.3, "Academic degree": -0.7}
INCOME_TYPE_RISK = {"Unemployed": 1.2, "Maternity leave": 1.2, "Pensioner": -0.2,
                    "State servant": -0.3, "Businessman": -0.8, "Student": -0.5}
OCCUPATION_RISK = {"Laborers": 0.2, "Drivers": 0.3, "Low-skill Laborers": 0.6,
                   "Waiters/barmen staff": 0.3, "Security staff": 0.2, "Cooking staff": 0.15,
                   "Accountants": -0.3, "Core staff": -0.2, "High skill tech staff": -0.2,
                   "Managers": -0.15, "HR staff": -0.2, "IT staff": -0.2}


@dataclass
class HomeCreditSummary:
    """What ``generate_home_credit_files`` wrote."""

    rows: int
    bureau_rows: int = 0
    applicants_without_bureau: int = 0
    bad: int = 0
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def bad_rate(self) -> float:
        return self.bad / self.rows if self.rows else float("nan")


def _choice(rng: np.random.Generator, shares: dict[str, float], size: int) -> np.ndarray:
    weights = np.array(list(shares.values()))
    return np.array(list(shares), dtype=object)[rng.choice(len(shares), size=size,
                                                           p=weights / weights.sum())]


def _shift(values: np.ndarray, shifts: dict[str, float]) -> np.ndarray:
    out = np.zeros(len(values))
    for name, shift in shifts.items():
        out[values == name] = shift
    return out


def _blank(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Numbers with a share set to missing (a blank cell in the file)."""
    out = values.astype("float64")
    out[rng.random(len(out)) < share] = np.nan
    return out


def _unstated(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Categories with a share left blank."""
    out = values.copy()
    out[rng.random(len(out)) < share] = None
    return out


# ---------------------------------------------------------------- applicants

def _applicants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Who applies, and what they ask for. Also the hidden parts (``_*`` keys)."""
    age = np.clip(rng.normal(43.5, 11.9, n), 21, 69)
    pensioner = rng.random(n) < np.where(age > 57, 0.78, 0.015)
    income_type = np.where(pensioner, "Pensioner", _choice(rng, INCOME_TYPES, n))
    no_job = np.isin(income_type, ["Pensioner", "Unemployed"])
    education = _choice(rng, EDUCATION, n)
    # Creditworthiness: higher is better; education and age show a little of it.
    worth = rng.normal(size=n) + 0.25 * (education == "Higher education") + 0.01 * (age - 43)
    family = _choice(rng, FAMILY_STATUS, n)
    family[rng.random(n) < 2e-5] = "Unknown"
    gender = np.where(rng.random(n) < 0.658, "F", "M").astype(object)
    gender[rng.random(n) < 2e-5] = "XNA"
    children = rng.choice(5, size=n, p=[0.70, 0.199, 0.087, 0.012, 0.002])
    couple = np.isin(family, ["Married", "Civil marriage"])
    income_level = (np.log(147_150) + 0.25 * (education == "Higher education")
                    + 0.2 * (income_type == "Commercial associate") - 0.25 * pensioner
                    + 0.08 * worth + rng.normal(0, 0.45, n))
    income = np.round(np.exp(income_level) / 2250) * 2250
    income[rng.random(n) < 2e-5] *= 100  # keying errors, like the 117,000,000 of the real file
    revolving = rng.random(n) < 0.095
    goods = np.where(revolving, rng.choice([135_000, 180_000, 225_000, 270_000, 450_000], n),
                     np.round(np.exp(np.log(450_000) + 0.35 * (income_level - np.log(147_150))
                                     + rng.normal(0, 0.55, n)) / 4500) * 4500)
    goods = np.clip(goods, 40_500, 4_050_000)
    insured = (~revolving) & (rng.random(n) < 0.6)
    credit = np.round(goods * (1 + insured * rng.uniform(0.05, 0.25, n)) * 2) / 2
    months = rng.choice([12, 18, 24, 30, 36, 48, 60], size=n,
                        p=[0.08, 0.1, 0.27, 0.1, 0.25, 0.1, 0.1])
    monthly_rate = rng.uniform(0.008, 0.02, n)
    annuity = np.where(revolving, 0.05 * credit,
                       credit * monthly_rate / (1 - (1 + monthly_rate) ** -months))
    annuity = _blank(rng, np.round(annuity * 2) / 2, 4e-5)
    goods_price = np.where(revolving & (rng.random(n) < 0.003), np.nan, goods.astype("float64"))
    tenure_years = np.minimum(rng.gamma(1.3, 4.5, n), age - 18)
    days_employed = np.where(no_job, EMPLOYED_SENTINEL, -np.round(tenure_years * 365.25) - 1)
    occupation = _choice(rng, OCCUPATIONS, n)
    occupation[no_job | (rng.random(n) < 0.13)] = None
    organization = np.where(no_job, "XNA", _choice(rng, ORGANIZATIONS, n))
    own_car = rng.random(n) < expit(-0.7 + 0.6 * (income_level - np.log(147_150)))
    region_rating = rng.choice([1, 2, 3], size=n, p=[0.105, 0.738, 0.157])
    return {
        "_worth": worth, "_age": age, "_tenure": np.where(no_job, np.nan, tenure_years),
        "_months": months,
        "NAME_CONTRACT_TYPE": np.where(revolving, "Revolving loans", "Cash loans"),
        "CODE_GENDER": gender, "FLAG_OWN_CAR": np.where(own_car, "Y", "N"),
        "FLAG_OWN_REALTY": np.where(rng.random(n) < 0.69, "Y", "N"),
        "CNT_CHILDREN": children, "AMT_INCOME_TOTAL": income, "AMT_CREDIT": credit,
        "AMT_ANNUITY": annuity, "AMT_GOODS_PRICE": goods_price,
        "NAME_TYPE_SUITE": _unstated(rng, _choice(rng, SUITE, n), 0.004),
        "NAME_INCOME_TYPE": income_type, "NAME_EDUCATION_TYPE": education,
        "NAME_FAMILY_STATUS": family,
        "NAME_HOUSING_TYPE": np.where((age < 30) & (rng.random(n) < 0.15), "With parents",
                                      _choice(rng, HOUSING, n)),
        "REGION_POPULATION_RELATIVE": rng.choice(REGION_DENSITIES, n),
        "DAYS_BIRTH": -np.round(age * 365.25).astype(np.int64),
        "DAYS_EMPLOYED": days_employed.astype(np.int64),
        "DAYS_REGISTRATION": 0.0 - np.round(rng.uniform(0, 1, n) * (age - 18) * 365.25),
        "DAYS_ID_PUBLISH": -np.round(rng.uniform(0, 1, n) * np.minimum(age - 14, 20) * 365.25
                                     ).astype(np.int64),
        "OWN_CAR_AGE": np.where(own_car, np.round(rng.gamma(1.6, 7.5, n)), np.nan),
        "FLAG_MOBIL": np.ones(n, dtype=np.int64), "FLAG_EMP_PHONE": (~no_job).astype(np.int64),
        "FLAG_WORK_PHONE": (rng.random(n) < 0.2).astype(np.int64),
        "FLAG_CONT_MOBILE": (rng.random(n) < 0.998).astype(np.int64),
        "FLAG_PHONE": (rng.random(n) < 0.28).astype(np.int64),
        "FLAG_EMAIL": (rng.random(n) < 0.057).astype(np.int64),
        "OCCUPATION_TYPE": occupation,
        "CNT_FAM_MEMBERS": _blank(rng, children + 1.0 + couple, 1e-5),
        "REGION_RATING_CLIENT": region_rating,
        "REGION_RATING_CLIENT_W_CITY": np.where(rng.random(n) < 0.9, region_rating,
                                                rng.choice([1, 2, 3], size=n)),
        "WEEKDAY_APPR_PROCESS_START": _choice(rng, WEEKDAYS, n),
        "HOUR_APPR_PROCESS_START": np.clip(np.round(rng.normal(12, 3.3, n)), 0, 23
                                           ).astype(np.int64),
        **{name: (rng.random(n) < share).astype(np.int64) for name, share in (
            ("REG_REGION_NOT_LIVE_REGION", 0.015), ("REG_REGION_NOT_WORK_REGION", 0.05),
            ("LIVE_REGION_NOT_WORK_REGION", 0.04), ("REG_CITY_NOT_LIVE_CITY", 0.078),
            ("REG_CITY_NOT_WORK_CITY", 0.23), ("LIVE_CITY_NOT_WORK_CITY", 0.18))},
        "ORGANIZATION_TYPE": organization,
    }


def _external_scores(rng: np.random.Generator, worth: np.ndarray, age: np.ndarray,
                     ) -> dict[str, np.ndarray]:
    """Three scores from outside sources: noisy readings of the applicant's worth."""
    n = len(worth)

    def score(correlation: float, extra: np.ndarray) -> np.ndarray:
        reading = correlation * worth + np.sqrt(1 - correlation ** 2) * rng.normal(size=n)
        return np.clip(expit(0.05 + 1.1 * reading + extra), 1e-6, 0.9627)

    return {"EXT_SOURCE_1": _blank(rng, score(0.55, 0.02 * (age - 43)), 0.56),
            "EXT_SOURCE_2": _blank(rng, score(0.7, np.zeros(n)), 0.002),
            "EXT_SOURCE_3": _blank(rng, score(0.65, np.zeros(n)), 0.2)}


def _social_and_enquiries(rng: np.random.Generator, worth: np.ndarray) -> dict[str, np.ndarray]:
    n = len(worth)
    observed = rng.negative_binomial(0.6, 0.3, n).astype("float64")
    defaulted = rng.binomial(observed.astype(np.int64), np.clip(0.08 - 0.03 * worth, 0.01, 0.4))
    no_circle = rng.random(n) < 0.0033
    no_enquiries = rng.random(n) < 0.135
    out = {"OBS_30_CNT_SOCIAL_CIRCLE": observed, "DEF_30_CNT_SOCIAL_CIRCLE": defaulted,
           "OBS_60_CNT_SOCIAL_CIRCLE": observed - (rng.random(n) < 0.03) * (observed > 0),
           "DEF_60_CNT_SOCIAL_CIRCLE": np.maximum(defaulted - (rng.random(n) < 0.2), 0)}
    out = {name: np.where(no_circle, np.nan, values.astype("float64"))
           for name, values in out.items()}
    phone = 0.0 - np.round(rng.gamma(1.2, 800, n))
    out["DAYS_LAST_PHONE_CHANGE"] = np.where(rng.random(n) < 0.12, 0.0, phone)
    year = rng.poisson(1.9, n)
    for name, values in (("HOUR", rng.random(n) < 0.005), ("DAY", rng.random(n) < 0.005),
                         ("WEEK", rng.random(n) < 0.03), ("MON", rng.poisson(0.25, n)),
                         ("QRT", rng.binomial(year, 0.14)), ("YEAR", year)):
        out[f"AMT_REQ_CREDIT_BUREAU_{name}"] = np.where(no_enquiries, np.nan,
                                                        values.astype("float64"))
    return out


# ---------------------------------------------------------------- bureau

def _bureau(rng: np.random.Generator, ids: np.ndarray, worth: np.ndarray, income: np.ndarray,
            first_bureau_id: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Credits at other lenders, one row each, and per applicant what drives the risk."""
    n = len(ids)
    distress = -0.6 * worth + 0.8 * rng.normal(size=n)
    credits = np.where(rng.random(n) < NO_BUREAU_SHARE, 0,
                       1 + np.minimum(rng.negative_binomial(1.5, 0.25, n), 59))
    owner = np.repeat(np.arange(n), credits)
    rows = len(owner)
    row_distress = distress[owner]
    days_credit = -rng.integers(0, 2922, rows)
    credit_type = _choice(rng, CREDIT_TYPES, rows)
    p_active = np.clip(0.75 * np.exp(days_credit / 900) + 0.05 + 0.05 * row_distress, 0.02, 0.97)
    status = np.where(rng.random(rows) < p_active, "Active", "Closed").astype(object)
    status[rng.random(rows) < 0.004] = "Sold"
    status[rng.random(rows) < np.clip(3e-4 * np.exp(1.8 * row_distress), 0, 0.2)] = "Bad debt"
    active = status == "Active"
    card = credit_type == "Credit card"
    amount = np.round(np.exp(np.log(120_000) + 0.4 * np.log(income[owner] / 147_150)
                             + rng.normal(0, 1.0, rows)) / 4.5) * 4.5
    amount[card] = np.round(amount[card] / 2, -3) + 0.0
    duration = rng.integers(90, 3650, rows)
    end_date = _blank(rng, days_credit + duration, 0.06)
    closed = status == "Closed"
    ended = np.where(closed, days_credit + np.round(rng.uniform(0.2, 1.0, rows)
                                                    * np.minimum(duration, -days_credit)), np.nan)
    used = np.clip(rng.uniform(0.1, 1.0, rows) * (1 + 0.25 * row_distress), 0, 1.3)
    debt = np.where(active | (status == "Bad debt"), np.round(amount * used, 2), 0.0)
    overdue_days = np.where(active & (rng.random(rows) < expit(-4.8 + 1.5 * row_distress)),
                            1 + np.round(rng.gamma(1.0, 45, rows)), 0).astype(np.int64)
    overdue_amount = np.where(overdue_days > 0, np.round(debt * rng.uniform(0.02, 0.4, rows), 2),
                              0.0)
    max_overdue = np.where(rng.random(rows) < expit(-2.6 + 1.0 * row_distress),
                           np.round(rng.gamma(1.0, 9000, rows), 3), 0.0)
    limit = np.where(card & active, np.round(amount - debt, 2).clip(0), 0.0)
    update = np.round(days_credit * rng.uniform(0, 1, rows)).astype(np.int64)
    table = {
        "SK_ID_CURR": ids[owner],
        "SK_ID_BUREAU": first_bureau_id + np.cumsum(rng.integers(1, 3, rows)),
        "CREDIT_ACTIVE": status, "CREDIT_CURRENCY": _choice(rng, CURRENCIES, rows),
        "DAYS_CREDIT": days_credit, "CREDIT_DAY_OVERDUE": overdue_days,
        "DAYS_CREDIT_ENDDATE": end_date, "DAYS_ENDDATE_FACT": ended,
        "AMT_CREDIT_MAX_OVERDUE": _blank(rng, np.maximum(max_overdue, overdue_amount), 0.65),
        "CNT_CREDIT_PROLONG": rng.poisson(0.006, rows),
        "AMT_CREDIT_SUM": _blank(rng, amount, 1e-5),
        "AMT_CREDIT_SUM_DEBT": _blank(rng, debt, 0.15),
        "AMT_CREDIT_SUM_LIMIT": _blank(rng, limit, 0.34),
        "AMT_CREDIT_SUM_OVERDUE": overdue_amount, "CREDIT_TYPE": credit_type,
        "DAYS_CREDIT_UPDATE": update,
        "AMT_ANNUITY": _blank(rng, np.round(amount / rng.integers(6, 60, rows), 1), 0.71),
    }
    # What the bureau tells about each applicant (true values, before any blanking).
    drivers = {
        "credits": credits.astype("float64"),
        "active": np.bincount(owner, weights=active, minlength=n),
        "overdue_days": np.bincount(owner, weights=overdue_days, minlength=n),
        "overdue_amount": np.bincount(owner, weights=overdue_amount, minlength=n),
        "bad_debt": np.bincount(owner, weights=status == "Bad debt", minlength=n),
        "debt": np.bincount(owner, weights=debt, minlength=n),
        "past_overdue": np.bincount(owner, weights=max_overdue > 0, minlength=n),
    }
    order = rng.permutation(rows)  # the real file is not sorted by applicant
    return {name: values[order] for name, values in table.items()}, drivers


# ---------------------------------------------------------------- outcome

def _log_odds(apps: dict[str, np.ndarray], bureau: dict[str, np.ndarray],
              rng: np.random.Generator) -> np.ndarray:
    income = apps["AMT_INCOME_TOTAL"]
    goods_price = apps["AMT_GOODS_PRICE"]  # finite, or NaN: then the credit amount
    goods = np.where(np.isnan(goods_price), apps["AMT_CREDIT"], goods_price)
    annuity = np.nan_to_num(apps["AMT_ANNUITY"], nan=0.0)
    tenure = apps["_tenure"]
    return (-0.95 * apps["_worth"]
            + _shift(apps["NAME_EDUCATION_TYPE"], EDUCATION_RISK)
            + _shift(apps["NAME_INCOME_TYPE"], INCOME_TYPE_RISK)
            + _shift(apps["OCCUPATION_TYPE"], OCCUPATION_RISK)
            + 0.4 * (np.nan_to_num(tenure, nan=5.0) < 1) - 0.02 * np.nan_to_num(tenure, nan=5.0)
            + 0.28 * (apps["REGION_RATING_CLIENT"] - 2)
            + 0.35 * (np.nan_to_num(apps["DEF_30_CNT_SOCIAL_CIRCLE"]) > 0)
            - 0.3 * (apps["NAME_CONTRACT_TYPE"] == "Revolving loans")
            - 0.15 * (apps["FLAG_OWN_CAR"] == "Y")
            + 1.2 * np.clip(apps["AMT_CREDIT"] / goods - 1.1, -0.2, 0.5)
            + 1.5 * np.clip(12 * annuity / income - 0.2, -0.2, 0.6)
            + 0.02 * (43 - apps["_age"]) + 0.3 * (apps["CODE_GENDER"] == "M")
            # The bureau: current arrears weigh most, then bad debt, heavy debt, many open credits.
            + 0.8 * (bureau["overdue_days"] > 0) + 0.1 * np.log1p(bureau["overdue_amount"] / 100)
            + 1.2 * (bureau["bad_debt"] > 0) + 0.25 * np.minimum(bureau["past_overdue"], 3)
            + 0.1 * np.minimum(bureau["active"], 8)
            + 0.3 * np.log1p(bureau["debt"] / income) + 0.15 * (bureau["credits"] == 0)
            + 0.9 * rng.normal(size=len(income)))


def _solved_intercept(log_odds: np.ndarray, bad_rate: float) -> float:
    low, high = -15.0, 5.0
    for _ in range(60):
        middle = (low + high) / 2
        if expit(log_odds + middle).mean() > bad_rate:
            high = middle
        else:
            low = middle
    return (low + high) / 2


# ---------------------------------------------------------------- files

def _chunk(rng: np.random.Generator, first_row: int, size: int, first_bureau_id: int,
           ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    import pandas as pd

    ids = FIRST_APPLICANT_ID + first_row + np.arange(size) + (first_row + np.arange(size)) // 4
    apps = _applicants(rng, size)
    apps.update(_external_scores(rng, apps["_worth"], apps["_age"]))
    apps.update(_social_and_enquiries(rng, apps["_worth"]))
    table, drivers = _bureau(rng, ids, apps["_worth"], apps["AMT_INCOME_TOTAL"], first_bureau_id)
    log_odds = _log_odds(apps, drivers, rng)
    probability = expit(log_odds + _solved_intercept(log_odds, TARGET_BAD_RATE))
    apps["TARGET"] = (rng.random(size) < probability).astype(np.int64)
    apps["SK_ID_CURR"] = ids
    applications = pd.DataFrame({name: apps[name] for name in APPLICATION_COLUMNS})
    bureau = pd.DataFrame(table, columns=list(BUREAU_COLUMNS))
    return applications, bureau, int((drivers["credits"] == 0).sum())


def generate_home_credit_files(rows: int, seed: int, out_dir: str | Path,
                               show_progress: bool = True) -> HomeCreditSummary:
    """Write ``application_train.csv`` and ``bureau.csv`` (Home Credit's layout) into ``out_dir``."""
    from tqdm import tqdm

    out_dir = prepared_output(rows, out_dir)
    started = time.perf_counter()
    paths = out_dir / APPLICATION_FILE, out_dir / BUREAU_FILE
    summary = HomeCreditSummary(rows=rows)
    next_bureau_id = FIRST_BUREAU_ID
    with tqdm(total=rows, unit="rows", desc="generating Home Credit applicants",
              disable=not show_progress) as bar:
        for index, first_row in enumerate(range(0, rows, CHUNK_ROWS)):
            size = min(CHUNK_ROWS, rows - first_row)
            rng = np.random.default_rng([seed, 13, index])
            applications, bureau, without = _chunk(rng, first_row, size, next_bureau_id)
            if len(bureau):
                next_bureau_id = int(bureau["SK_ID_BUREAU"].max()) + 1
            for frame, path in zip((applications, bureau), paths, strict=True):
                frame.to_csv(path, mode="w" if index == 0 else "a", header=index == 0,
                             index=False, lineterminator="\n")
            summary.bureau_rows += len(bureau)
            summary.applicants_without_bureau += without
            summary.bad += int(applications["TARGET"].sum())
            bar.update(size)
    summary.files = [str(path) for path in paths]
    summary.seconds = time.perf_counter() - started
    return summary
