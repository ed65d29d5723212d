"""The leakage guard: a model may only use what is known when the application arrives.

Post-origination columns (payments, recoveries, settlement and hardship fields ...) are
refused as features. A lender who does know one of the built-in list's columns when the
application arrives (say ``funded_amnt``, fixed up front) declares it in the dataset
config's ``known_at_application``, which also overrides ``leakage_columns`` (a config built
on ``base = "lending_club"`` inherits that list); the choice is recorded in model.json. The
outcome, the target and the ids are always refused. Lending Club's pricing
outputs (grade, sub_grade, int_rate, installment) are features only when the dataset config
says ``allow_pricing = true``. A validation AUC above the
alarm level on Lending Club-shaped data is reported as a probable leak, not a success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from features.definitions import PRICING_FIELDS, FeatureSpec

# Known whatever the dataset config says: the config can add to these, never remove.
POST_ORIGINATION_COLUMNS: frozenset[str] = frozenset({
    "loan_status", "funded_amnt", "funded_amnt_inv", "pymnt_plan", "initial_list_status",
    "out_prncp", "out_prncp_inv", "total_pymnt", "total_pymnt_inv", "total_rec_prncp",
    "total_rec_int", "total_rec_late_fee", "recoveries", "collection_recovery_fee",
    "last_pymnt_d", "last_pymnt_amnt", "next_pymnt_d", "last_credit_pull_d",
    "last_fico_range_high", "last_fico_range_low", "debt_settlement_flag",
    "debt_settlement_flag_date", "hardship_flag", "bad",
})
POST_ORIGINATION_PREFIXES: tuple[str, ...] = (
    "total_rec_", "last_pymnt", "next_pymnt", "out_prncp", "hardship_", "settlement_",
    "debt_settlement", "recover", "collection_recovery", "total_pymnt",
)
# The outcome itself: refused even when a config declares it known at application time.
OUTCOME_COLUMNS: frozenset[str] = frozenset({"loan_status", "bad"})
LEAKAGE_ALARM_AUC = 0.80


class LeakageError(ValueError):
    """A requested feature is not known at application time (or is a disallowed price)."""

    def __init__(self, column: str, reason: str, feature: str | None = None) -> None:
        self.column = column
        self.reason = reason
        self.feature = feature
        via = f" (needed by feature {feature!r})" if feature and feature != column else ""
        super().__init__(f"Column {column!r}{via} cannot be a model feature: {reason}")


@dataclass(frozen=True)
class LeakagePolicy:
    """Which columns are refused: the built-in post-origination list plus the config's."""

    leakage_columns: frozenset[str]
    pricing_columns: frozenset[str]
    allow_pricing: bool
    target_column: str | None = None
    id_columns: frozenset[str] = frozenset()
    known_at_application: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, config: object) -> LeakagePolicy:
        """Read the guard's inputs from a dataset config (``training.datasets.DatasetConfig``)."""
        pricing = tuple(getattr(config, "pricing_columns", ())) or PRICING_FIELDS
        ids = {getattr(config, "id_column", None), getattr(config, "customer_id_column", None)}
        return cls(
            leakage_columns=frozenset(getattr(config, "leakage_columns", ())),
            pricing_columns=frozenset(pricing),
            allow_pricing=bool(getattr(config, "allow_pricing", False)),
            target_column=getattr(config, "target_column", None),
            id_columns=frozenset(name for name in ids if name),
            known_at_application=frozenset(getattr(config, "known_at_application", ())),
        )

    def refusal(self, column: str) -> str | None:
        """Why ``column`` may not be used, or None when it may."""
        lowered = column.lower()
        if column == self.target_column:
            return "it is the target (the outcome the model predicts)."
        if column in self.id_columns:
            return "it is an identifier, not a property of the applicant."
        post_origination = lowered in POST_ORIGINATION_COLUMNS or \
            lowered.startswith(POST_ORIGINATION_PREFIXES)
        if lowered in OUTCOME_COLUMNS or (
                (post_origination or column in self.leakage_columns)
                and column not in self.known_at_application):
            hint = "" if lowered in OUTCOME_COLUMNS else (
                "; if your file really records it when the application arrives, declare it "
                f"with known_at_application = [\"{column}\"] in the dataset config")
            return ("it is only known after the loan was funded (post-origination), so it "
                    f"would leak the outcome. Remove it from the dataset config's [features]{hint}.")
        if column in self.pricing_columns and not self.allow_pricing:
            return ("it is a pricing output of a previous credit model. Set allow_pricing = "
                    "true in the dataset config if you really want to use it.")
        return None


def check_features(specs: Sequence[FeatureSpec], policy: LeakagePolicy) -> None:
    """Raise :class:`LeakageError` for the first feature built from a refused column."""
    for spec in specs:
        for column in (spec.name, *spec.source_columns):
            reason = policy.refusal(column)
            if reason is not None:
                raise LeakageError(column, reason, feature=spec.name)


def leakage_alarm(auc: float, lending_club_shaped: bool,
                  alarm_auc: float = LEAKAGE_ALARM_AUC) -> str | None:
    """A warning when a validation AUC is implausibly high for application-time data."""
    if not lending_club_shaped or auc <= alarm_auc:
        return None
    return (f"LEAKAGE ALARM: validation AUC {auc:.3f} is above {alarm_auc:.2f}. Application-time "
            "data on Lending Club loans rarely exceeds ~0.72; check the features for "
            "post-origination or pricing columns before trusting this model.")


