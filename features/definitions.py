"""The one definition of the model inputs, shared by training and the scoring worker.

Raw canonical fields (the application the customer typed + the bureau hash from the feature
store) become one float32 row per application, in the order that ``model.json`` lists.
Training calls :meth:`FeatureEncoder.transform` on the cleaned loan frame; the worker calls
:meth:`FeatureEncoder.transform_records` on the enriched events. Both run the same code, so
the two paths give identical float32 rows for the same raw values.

Encoding rules (also written into ``model.json`` so the worker needs nothing else):

- numeric features are float; a missing or unparsable raw value stays NaN (LightGBM routes
  missing values down the branch it learnt for them; nothing is imputed);
- a categorical feature is the index of its value in the category list learnt at fit time
  (categories seen at least ``min_category_count`` times, sorted); an unknown or missing
  value is NaN, which the model treats as "missing" rather than as any known category.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypeVar, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from config.json_types import JSONObject, JSONValue

FeatureKind = Literal["numeric", "categorical"]
RiskDirection = Literal["higher_is_riskier", "lower_is_riskier", "depends"]

FEATURE_SET_LENDING_CLUB = "lending_club"
FEATURE_SET_GENERIC = "generic"

# Fields the applicant types on the application event and fields the bureau hash carries:
# the serving inputs of the ``lending_club`` feature set.
APPLICANT_FIELDS: tuple[str, ...] = (
    "loan_amnt", "term", "purpose", "annual_inc", "emp_length",
    "home_ownership", "verification_status", "addr_state",
)
# What the model reads from an application: what the applicant typed plus its date.
APPLICATION_INPUT_FIELDS: tuple[str, ...] = ("issue_d", *APPLICANT_FIELDS)
BUREAU_FIELDS: tuple[str, ...] = (
    "earliest_cr_line", "delinq_2yrs", "inq_last_6mths", "open_acc", "total_acc", "pub_rec",
    "revol_bal", "revol_util", "mths_since_last_delinq", "monthly_debt",
)
PRICING_FIELDS: tuple[str, ...] = ("grade", "sub_grade", "int_rate", "installment")


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: what it is called, how it is encoded and what it means to a person."""

    name: str
    kind: FeatureKind
    description: str
    direction: RiskDirection
    source_columns: tuple[str, ...]
    # A neutral name for showing the customer's own value ("Revolving utilisation (%)"),
    # where the description names the risky side; empty: the console derives one.
    label: str = ""
    # "exp": the input is the log of what a person reads (shown as exp(value)).
    display: str = "value"


class CardFeature(BaseModel):
    """One model input as ``model.json`` records it (its ``features`` list, in the order of
    the ONNX ``features`` tensor): the serialized :class:`FeatureSpec` plus what the fit
    learnt (its categories) and its reason code."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    type: FeatureKind
    description: str = ""
    reason_code: str | None = None
    direction: RiskDirection = "depends"
    source_columns: tuple[str, ...] = ()
    label: str = ""
    display: str = "value"
    categories: tuple[str, ...] | None = None

    @property
    def described(self) -> str:
        """The plain-language description (the name when the card has none)."""
        return self.description or self.name

    @property
    def inputs(self) -> tuple[str, ...]:
        """The event and feature-view fields this input is built from."""
        return self.source_columns or (self.name,)


class FeatureParams(BaseModel):
    """The encoder's parameters as ``model.json`` records them (``feature_params``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    feature_set: str
    reference_annual_rate: float
    min_category_count: int = 20
    include_addr_state: bool = False
    allow_pricing: bool = False
    columns: dict[str, str] | None = None


class _EncoderSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    features: tuple[CardFeature, ...]
    feature_params: FeatureParams


def _numeric(name: str, description: str, direction: RiskDirection,
             *sources: str) -> FeatureSpec:
    return FeatureSpec(name, "numeric", description, direction, sources or (name,),
                       label=LENDING_CLUB_INPUT_LABELS.get(name, ""),
                       display="exp" if name.startswith("log_") else "value")


def _categorical(name: str, description: str) -> FeatureSpec:
    return FeatureSpec(name, "categorical", description, "depends", (name,),
                       label=LENDING_CLUB_INPUT_LABELS.get(name, ""))


# Plain-language names of the Lending Club raw fields (the console's profile and form).
LENDING_CLUB_FIELD_LABELS: dict[str, str] = {
    "loan_amnt": "Loan amount", "term": "Term (months)", "purpose": "Purpose",
    "annual_inc": "Annual income", "emp_length": "Years in current job",
    "home_ownership": "Home ownership", "verification_status": "Income verification",
    "addr_state": "State",
    "earliest_cr_line": "First credit line opened", "delinq_2yrs": "Delinquencies (2 years)",
    "inq_last_6mths": "Credit inquiries (6 months)", "open_acc": "Open credit lines",
    "total_acc": "Credit lines in total", "pub_rec": "Derogatory public records",
    "revol_bal": "Revolving balance", "revol_util": "Revolving utilisation (%)",
    "mths_since_last_delinq": "Months since last delinquency",
    "monthly_debt": "Existing monthly debt payments",
}
# Neutral names of the Lending Club model inputs (the console shows a customer's own value
# with them; the descriptions above are the reasons' risky-side wording): a raw field's own
# name where the input is that field, then the engineered inputs.
LENDING_CLUB_INPUT_LABELS: dict[str, str] = {
    **LENDING_CLUB_FIELD_LABELS,
    "log_annual_inc": "Annual income", "credit_history_months": "Credit history (months)",
    "loan_to_income": "Loan amount / annual income",
    "payment_to_income": "Monthly payment / income",
    "dti": "Debt-to-income ratio (%)", "revol_util": "Revolving credit utilisation (%)",
    "revol_bal_to_income": "Revolving balance / income",
    "inq_last_6mths": "Credit inquiries, last 6 months",
    "ever_delinquent": "Ever delinquent (1 = yes)",
}


LENDING_CLUB_FEATURES: tuple[FeatureSpec, ...] = (
    _numeric("loan_amnt", "Large loan amount", "higher_is_riskier"),
    _numeric("term", "Long repayment term", "higher_is_riskier"),
    _numeric("log_annual_inc", "Low annual income", "lower_is_riskier", "annual_inc"),
    _numeric("emp_length", "Short time in current employment", "lower_is_riskier"),
    _numeric("credit_history_months", "Short credit history", "lower_is_riskier",
             "issue_d", "earliest_cr_line"),
    _numeric("loan_to_income", "Loan large relative to income", "higher_is_riskier",
             "loan_amnt", "annual_inc"),
    _numeric("payment_to_income", "Monthly payment high relative to income",
             "higher_is_riskier", "loan_amnt", "term", "annual_inc"),
    _numeric("dti", "High existing debt relative to income", "higher_is_riskier",
             "monthly_debt", "annual_inc"),
    _numeric("revol_util", "High utilisation of revolving credit", "higher_is_riskier"),
    _numeric("revol_bal_to_income", "High revolving balance relative to income",
             "higher_is_riskier", "revol_bal", "annual_inc"),
    _numeric("delinq_2yrs", "Delinquencies in the last two years", "higher_is_riskier"),
    _numeric("inq_last_6mths", "Many recent credit inquiries", "higher_is_riskier"),
    _numeric("pub_rec", "Derogatory public records", "higher_is_riskier"),
    _numeric("open_acc", "Number of open credit lines", "depends"),
    _numeric("total_acc", "Few credit lines in total", "lower_is_riskier"),
    _numeric("mths_since_last_delinq", "Recent delinquency", "lower_is_riskier"),
    _numeric("ever_delinquent", "Has been delinquent before", "higher_is_riskier",
             "mths_since_last_delinq", "delinq_2yrs"),
    _categorical("home_ownership", "Home ownership status"),
    _categorical("verification_status", "Income verification status"),
    _categorical("purpose", "Purpose of the loan"),
)

OPTIONAL_LENDING_CLUB_FEATURES: tuple[FeatureSpec, ...] = (
    _categorical("addr_state", "State of residence"),
)

# A prior model's verdict: only ever used when a dataset config explicitly allows pricing.
PRICING_FEATURES: tuple[FeatureSpec, ...] = (
    _categorical("grade", "Lending Club grade"),
    _categorical("sub_grade", "Lending Club sub-grade"),
    _numeric("int_rate", "High interest rate", "higher_is_riskier"),
    _numeric("installment", "High monthly instalment", "higher_is_riskier"),
)


def lending_club_feature_specs(include_addr_state: bool = False,
                               allow_pricing: bool = False) -> tuple[FeatureSpec, ...]:
    """The feature list of the ``lending_club`` feature set, in model input order."""
    specs = LENDING_CLUB_FEATURES
    if include_addr_state:
        specs += OPTIONAL_LENDING_CLUB_FEATURES
    if allow_pricing:
        specs += PRICING_FEATURES
    return specs


def generic_feature_specs(columns: Mapping[str, str],
                          descriptions: Mapping[str, tuple[str, str]] | None = None,
                          ) -> tuple[FeatureSpec, ...]:
    """Specs for the ``generic`` feature set: the dataset config's columns taken as they are,
    described in plain language (and with a risk direction) where the config says so."""
    specs = []
    for name, kind in columns.items():
        if kind not in ("numeric", "categorical"):
            raise ValueError(
                f"feature column {name!r} has type {kind!r}; use 'numeric' or 'categorical'"
            )
        description, direction = (descriptions or {}).get(
            name, (name.replace("_", " ").capitalize(), "depends"))
        if direction not in ("higher_is_riskier", "lower_is_riskier", "depends"):
            raise ValueError(f"feature {name!r}: direction {direction!r} must be "
                             "higher_is_riskier, lower_is_riskier or depends")
        specs.append(FeatureSpec(name, cast(FeatureKind, kind), description,
                                 cast(RiskDirection, direction), (name,)))
    return tuple(specs)


# Never renumber: downstream systems and customer letters key on these codes.
REASON_CODES: Mapping[str, str] = {
    "loan_amnt": "R01",
    "term": "R02",
    "log_annual_inc": "R03",
    "emp_length": "R04",
    "credit_history_months": "R05",
    "loan_to_income": "R06",
    "payment_to_income": "R07",
    "dti": "R08",
    "revol_util": "R09",
    "revol_bal_to_income": "R10",
    "delinq_2yrs": "R11",
    "inq_last_6mths": "R12",
    "pub_rec": "R13",
    "open_acc": "R14",
    "total_acc": "R15",
    "mths_since_last_delinq": "R16",
    "ever_delinquent": "R17",
    "home_ownership": "R18",
    "verification_status": "R19",
    "purpose": "R20",
    "addr_state": "R21",
    "grade": "R22",
    "sub_grade": "R23",
    "int_rate": "R24",
    "installment": "R25",
}


def reason_code(feature_name: str) -> str:
    """The feature's code from :data:`REASON_CODES`, else the name-hash fallback ``RXhhhh``."""
    known = REASON_CODES.get(feature_name)
    if known is not None:
        return known
    digest = hashlib.sha256(feature_name.encode("utf-8")).hexdigest()
    return "RX" + digest[:4].upper()


# --------------------------------------------------------------------------------------
# Engineered values (pure, deterministic functions of raw columns)
# --------------------------------------------------------------------------------------

def _numeric_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[name], errors="coerce").astype("float64")


def _month_index(values: pd.Series) -> pd.Series:
    """Months since year 0 of a date column; whole months so a mid-month event date and the
    first-of-month issue date of training give the same credit-history length."""
    dates = pd.to_datetime(values, errors="coerce", utc=True)
    return (dates.dt.year * 12 + dates.dt.month).astype("float64")


def _positive(values: pd.Series) -> pd.Series:
    return values.where(values > 0)


Column = TypeVar("Column", pd.Series, np.ndarray)  # a frame's column or a records' array


def monthly_payment(loan_amount: Column, term_months: Column,
                    reference_annual_rate: float) -> Column:
    """Level monthly payment of an amortising loan at a reference rate.

    The applicant's own interest rate is a pricing output, so a fixed reference rate
    (stored in model.json) stands in for it: the feature measures affordability, not price.
    """
    monthly_rate = reference_annual_rate / 12.0
    if monthly_rate == 0:
        return loan_amount / term_months
    return loan_amount * monthly_rate / (1.0 - (1.0 + monthly_rate) ** (-term_months))


def engineer_lending_club(frame: pd.DataFrame, reference_annual_rate: float) -> pd.DataFrame:
    """The numeric engineered columns of the ``lending_club`` feature set (float64)."""
    loan_amount = _numeric_column(frame, "loan_amnt")
    term = _numeric_column(frame, "term")
    annual_income = _positive(_numeric_column(frame, "annual_inc"))
    monthly_income = annual_income / 12.0
    months_since_delinquency = _numeric_column(frame, "mths_since_last_delinq")
    delinquencies = _numeric_column(frame, "delinq_2yrs")

    # The application date: ``issue_d`` in loan files, ``submitted_at`` in a live event.
    as_of_column = next((name for name in ("issue_d", "submitted_at") if name in frame.columns),
                        None)
    history = pd.Series(np.nan, index=frame.index, dtype="float64")
    if as_of_column is not None and "earliest_cr_line" in frame.columns:
        history = _month_index(frame[as_of_column]) - _month_index(frame["earliest_cr_line"])
        history = history.where(history >= 0)

    # NaN months-since-delinquency means "never"; the flag only stays unknown when the
    # bureau record itself is missing (no delinquency count either).
    ever = pd.Series(np.where(months_since_delinquency.notna() | (delinquencies > 0), 1.0, 0.0),
                     index=frame.index)
    ever = ever.where(months_since_delinquency.notna() | delinquencies.notna())

    engineered = lending_club_table(
        partial(_numeric_column, frame), loan_amount=loan_amount, term=term,
        annual_income=annual_income, monthly_income=monthly_income,
        payment=monthly_payment(loan_amount, term, reference_annual_rate), history=history,
        months_since_delinquency=months_since_delinquency, ever=ever)
    result = pd.DataFrame(engineered, index=frame.index)
    return result.replace([np.inf, -np.inf], np.nan)


def lending_club_table(numeric: Callable[[str], Column], *, loan_amount: Column, term: Column,
                       annual_income: Column, monthly_income: Column, payment: Column,
                       history: Column, months_since_delinquency: Column,
                       ever: Column) -> dict[str, Column]:
    """The ``lending_club`` engineered columns from their parts and ``numeric`` (a raw field
    as numbers): one table for a frame (``engineer_lending_club``) and for records
    (``features.records``), so training and serving compute the same features."""
    engineered = {
        "loan_amnt": loan_amount,
        "term": term,
        "log_annual_inc": np.log1p(annual_income),
        "emp_length": numeric("emp_length"),
        "credit_history_months": history,
        "loan_to_income": loan_amount / annual_income,
        "payment_to_income": payment / monthly_income,
        "dti": numeric("monthly_debt") / monthly_income * 100.0,
        "revol_util": numeric("revol_util"),
        "revol_bal_to_income": numeric("revol_bal") / annual_income,
        "mths_since_last_delinq": months_since_delinquency,
        "ever_delinquent": ever,
    }
    for name in ("delinq_2yrs", "inq_last_6mths", "pub_rec", "open_acc", "total_acc",
                 "int_rate", "installment"):
        engineered[name] = numeric(name)
    return engineered


def _category_code(lookup: Mapping[str, float], value: str | None) -> float | None:
    return None if value is None else lookup.get(category_key(value))


def category_key(value: str) -> str:
    """A category spelling with case and spacing folded away."""
    return " ".join(value.split()).casefold()


def _category_text(values: pd.Series) -> pd.Series:
    """Category values as stripped text; missing stays missing."""
    return values.map(lambda value: None if pd.isna(value) else str(value).strip())


# --------------------------------------------------------------------------------------
# The encoder: fitted state is only the category lists, which model.json stores.
# --------------------------------------------------------------------------------------

class FeatureEncoder:
    """Turns canonical raw fields into the model input matrix (float32, model.json order).

    Follows the scikit-learn contract: ``__init__`` stores parameters, ``fit`` learns the
    category lists (``categories_``) and the ordered feature list (``feature_specs_``).
    """

    def __init__(self, feature_set: str = FEATURE_SET_LENDING_CLUB,
                 columns: Mapping[str, str] | None = None,
                 include_addr_state: bool = False, allow_pricing: bool = False,
                 reference_annual_rate: float = 0.12, min_category_count: int = 20,
                 descriptions: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.feature_set = feature_set
        self.columns = columns
        self.descriptions = descriptions
        self.include_addr_state = include_addr_state
        self.allow_pricing = allow_pricing
        self.reference_annual_rate = reference_annual_rate
        self.min_category_count = min_category_count

    def _check_parameters(self) -> None:
        if self.feature_set not in (FEATURE_SET_LENDING_CLUB, FEATURE_SET_GENERIC):
            raise ValueError(f"unknown feature_set {self.feature_set!r}; "
                             f"use {FEATURE_SET_LENDING_CLUB!r} or {FEATURE_SET_GENERIC!r}")
        if self.feature_set == FEATURE_SET_GENERIC and not self.columns:
            raise ValueError("the generic feature set needs the dataset's feature columns")
        if not 0 <= self.reference_annual_rate < 1:
            raise ValueError("reference_annual_rate is a fraction per year, e.g. 0.12")

    def specs(self) -> tuple[FeatureSpec, ...]:
        """The feature list this configuration asks for (before fitting)."""
        self._check_parameters()
        listed = generic_feature_specs(self.columns or {}, self.descriptions)
        if self.feature_set == FEATURE_SET_GENERIC:
            return listed
        shared = lending_club_feature_specs(self.include_addr_state, self.allow_pricing)
        # Columns a config lists on top of the shared set are taken as they are.
        shared_names = {spec.name for spec in shared}
        return shared + tuple(spec for spec in listed if spec.name not in shared_names)

    def fit(self, frame: pd.DataFrame, y: object = None) -> FeatureEncoder:
        specs = self.specs()
        categories: dict[str, list[str]] = {}
        for spec in specs:
            if spec.kind != "categorical":
                continue
            counts = _category_text(self._raw_column(frame, spec.name)).value_counts()
            kept = counts[counts >= self.min_category_count].index
            categories[spec.name] = sorted(str(value) for value in kept)
        self.feature_specs_ = specs
        self.categories_ = categories
        return self

    @property
    def feature_names_(self) -> list[str]:
        return [spec.name for spec in self.feature_specs_]

    @staticmethod
    def _raw_column(frame: pd.DataFrame, name: str) -> pd.Series:
        if name in frame.columns:
            return frame[name]
        return pd.Series(np.nan, index=frame.index, dtype="object")

    def transform_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model inputs as a named float64 frame (categoricals as codes, NaN missing)."""
        if not hasattr(self, "feature_specs_"):
            raise RuntimeError("FeatureEncoder is not fitted: call fit() or from_features()")
        engineered = (engineer_lending_club(frame, self.reference_annual_rate)
                      if self.feature_set == FEATURE_SET_LENDING_CLUB else None)
        columns: dict[str, pd.Series] = {}
        for spec in self.feature_specs_:
            if spec.kind == "categorical":
                # Spellings that differ only in case or spacing are one category, as
                # training cleaning unifies them: an event's "rent" finds "RENT".
                lookup = {category_key(value): float(code) for code, value in
                          enumerate(self.categories_[spec.name])}
                text = _category_text(self._raw_column(frame, spec.name))
                columns[spec.name] = text.map(partial(_category_code, lookup)).astype("float64")
            elif engineered is not None and spec.name in engineered.columns:
                columns[spec.name] = engineered[spec.name]
            else:
                columns[spec.name] = _numeric_column(frame, spec.name)
        result = pd.DataFrame(columns, index=frame.index)
        return result.replace([np.inf, -np.inf], np.nan)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The model input matrix: float32 [rows, features], the ONNX ``features`` tensor."""
        return self.transform_frame(frame).to_numpy(dtype=np.float32)

    def transform_records(self, records: Iterable[Mapping[str, object]]) -> np.ndarray:
        """Same as :meth:`transform` for a list of dicts (event fields merged with bureau
        fields); the worker's path, computed with numpy (:mod:`features.records`) when the
        values allow it, so a batch needs no other feature code."""
        from features.records import records_matrix

        rows = list(records)
        matrix = records_matrix(self, rows)
        return matrix if matrix is not None else self.transform(pd.DataFrame.from_records(rows))

    # ---- model.json round trip ------------------------------------------------------

    def to_model_card(self) -> JSONObject:
        """``features`` and ``feature_params`` entries of model.json."""
        features: list[JSONValue] = []
        for spec in self.feature_specs_:
            entry: JSONObject = {"name": spec.name, "type": spec.kind,
                                     "description": spec.description,
                                     "reason_code": reason_code(spec.name),
                                     "direction": spec.direction,
                                     "source_columns": list(spec.source_columns)}
            if spec.label:
                entry["label"] = spec.label
            if spec.display != "value":
                entry["display"] = spec.display
            if spec.kind == "categorical":
                entry["categories"] = list(self.categories_[spec.name])
                entry["unknown_category"] = "NaN"
            features.append(entry)
        params: JSONObject = {"feature_set": self.feature_set,
                  "reference_annual_rate": self.reference_annual_rate,
                  "min_category_count": self.min_category_count,
                  "include_addr_state": self.include_addr_state,
                  "allow_pricing": self.allow_pricing,
                  "columns": dict(self.columns) if self.columns else None}
        return {"features": features, "feature_params": params}

    @classmethod
    def from_section(cls, section: Mapping[str, object]) -> FeatureEncoder:
        """Rebuild the fitted encoder from the ``features`` / ``feature_params`` that
        :meth:`to_model_card` wrote (checked as the model card checks them): no pickles, no
        refit."""
        checked = _EncoderSection.model_validate(section)
        return cls.from_features(checked.features, checked.feature_params)

    @classmethod
    def from_features(cls, features: Sequence[CardFeature],
                      params: FeatureParams) -> FeatureEncoder:
        encoder = cls(feature_set=params.feature_set, columns=params.columns,
                      include_addr_state=params.include_addr_state,
                      allow_pricing=params.allow_pricing,
                      reference_annual_rate=params.reference_annual_rate,
                      min_category_count=params.min_category_count)
        encoder.feature_specs_ = tuple(
            FeatureSpec(feature.name, feature.type, feature.described, feature.direction,
                        feature.inputs, feature.label, feature.display)
            for feature in features)
        encoder.categories_ = {feature.name: list(feature.categories or ())
                               for feature in features if feature.type == "categorical"}
        return encoder
