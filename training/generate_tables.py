"""The marginal distributions the loan generator draws from, shaped on the 2007-2014 file."""

from __future__ import annotations

import numpy as np

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_STATE_SHARES = {
    "CA": 15.3, "NY": 8.6, "TX": 7.7, "FL": 6.8, "IL": 3.9, "NJ": 3.9, "PA": 3.5, "OH": 3.3,
    "GA": 3.2, "VA": 3.0, "NC": 2.8, "MI": 2.5, "MA": 2.4, "MD": 2.4, "AZ": 2.3, "WA": 2.3,
    "CO": 2.1, "MN": 1.8, "MO": 1.6, "CT": 1.5, "NV": 1.4, "IN": 1.4, "OR": 1.3, "WI": 1.3,
    "TN": 1.3, "AL": 1.2, "LA": 1.2, "SC": 1.2, "KY": 0.9, "KS": 0.9, "OK": 0.9, "UT": 0.8,
    "AR": 0.8, "HI": 0.5, "NM": 0.5, "WV": 0.5, "NH": 0.5, "RI": 0.4, "DC": 0.3, "MT": 0.3,
    "DE": 0.3, "AK": 0.3, "WY": 0.2, "SD": 0.2, "VT": 0.2, "MS": 0.2, "ID": 0.05, "NE": 0.05,
    "IA": 0.01, "ME": 0.01,
}
STATES = tuple(_STATE_SHARES)
STATE_WEIGHTS = np.array(list(_STATE_SHARES.values())) / sum(_STATE_SHARES.values())

# Lending Club's emp_length coding; 'n/a' is its "not stated".
EMP_LENGTHS = ("< 1 year", "1 year", "2 years", "3 years", "4 years", "5 years", "6 years",
               "7 years", "8 years", "9 years", "10+ years", "n/a")
_EMP_SHARES = np.array([7.9, 6.4, 8.9, 7.9, 6.1, 6.7, 5.8, 5.6, 4.7, 3.9, 31.6, 4.5])
EMP_LENGTH_WEIGHTS = _EMP_SHARES / _EMP_SHARES.sum()

# purpose, share %, log-odds shift of default, the title applicants typically typed
_PURPOSES = (
    ("debt_consolidation", 58.8, 0.05, "Debt consolidation"),
    ("credit_card", 22.3, -0.15, "Credit card refinancing"),
    ("home_improvement", 5.7, -0.05, "Home improvement"),
    ("other", 5.1, 0.20, "Other"),
    ("major_purchase", 2.1, -0.10, "Major purchase"),
    ("small_business", 1.5, 0.60, "Business"),
    ("car", 1.2, -0.15, "Car financing"),
    ("medical", 1.0, 0.20, "Medical expenses"),
    ("moving", 0.6, 0.25, "Moving and relocation"),
    ("vacation", 0.5, 0.05, "Vacation"),
    ("wedding", 0.5, -0.10, "Wedding"),
    ("house", 0.5, 0.15, "Home buying"),
    ("educational", 0.1, 0.30, "Learning and training"),
    ("renewable_energy", 0.1, 0.30, "Green loan"),
)
PURPOSES = tuple(p[0] for p in _PURPOSES)
PURPOSE_WEIGHTS = np.array([p[1] for p in _PURPOSES]) / sum(p[1] for p in _PURPOSES)
PURPOSE_RISK = np.array([p[2] for p in _PURPOSES])
PURPOSE_TITLES = np.array([p[3] for p in _PURPOSES], dtype=object)
FREE_TEXT_TITLES = np.array(["Loan", "Personal Loan", "Consolidation", "Debt Consolidation Loan",
                             "consolidate", "Payoff", "My Loan", "Freedom"], dtype=object)

HOME_OWNERSHIP = np.array(["MORTGAGE", "RENT", "OWN", "OTHER"], dtype=object)
HOME_RISK = np.array([-0.10, 0.15, 0.05, 0.30])
VERIFICATION = np.array(["Verified", "Source Verified", "Not Verified"], dtype=object)

GRADES = "ABCDEFG"
_GRADE_SHARES = np.array([16.0, 29.4, 26.9, 16.4, 7.7, 2.9, 0.7])
SUB_GRADE_SHARES = np.repeat(_GRADE_SHARES / _GRADE_SHARES.sum() / 5, 5)
SUB_GRADES = np.array([f"{g}{i}" for g in GRADES for i in range(1, 6)], dtype=object)

EMP_TITLES = np.array([
    "Teacher", "Manager", "Registered Nurse", "RN", "Supervisor", "Sales", "Project Manager",
    "Owner", "Driver", "Office Manager", "manager", "General Manager", "Director", "Engineer",
    "teacher", "Accountant", "Software Engineer", "Operations Manager", "US Army", "Nurse",
    "Store Manager", "Administrative Assistant", "Truck Driver", "Police Officer", "Analyst",
    "Customer Service", "Account Manager", "Sales Manager", "Paralegal", "Mechanic",
], dtype=object)
