"""Training settings: what the search may try, the business choices a model version records,
and the levels at which a run warns the analyst.

The business constants (costs, score scale, grade bands) are defaults of this dataclass and
are copied into model.json; nothing that serves decisions reads them from code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TypedDict

MODEL_TYPES = ("lightgbm", "baseline")


class RiskGradeBand(TypedDict):
    """A grade and the highest PD it takes (model.json ``risk_grades``)."""

    grade: str
    max_pd: float


def _default_risk_grades() -> list[RiskGradeBand]:
    bands = (("A", 0.03), ("B", 0.06), ("C", 0.10), ("D", 0.15), ("E", 0.22), ("F", 0.32),
             ("G", 1.0))
    return [{"grade": grade, "max_pd": max_pd} for grade, max_pd in bands]


@dataclass(frozen=True)
class TreeSettings:
    """The LightGBM settings that matter most on small data: tree size, rows per leaf, L2."""

    num_leaves: int
    min_child_samples: int
    reg_lambda: float

    def describe(self) -> str:
        return (f"{self.num_leaves} leaves, ≥{self.min_child_samples} rows per leaf, "
                f"L2 {self.reg_lambda:g}")


def _default_tree_candidates() -> list[TreeSettings]:
    # Tried in this order until the search budget runs out: the first is the former fixed
    # setting, then smaller and larger trees, more and less regularised.
    return [TreeSettings(15, 100, 5.0), TreeSettings(7, 50, 5.0), TreeSettings(4, 30, 1.0),
            TreeSettings(31, 200, 10.0), TreeSettings(15, 30, 1.0), TreeSettings(7, 200, 10.0)]


@dataclass(frozen=True)
class SmoteSettings:
    """How much SMOTE oversamples: bad:good ratio after resampling, neighbours interpolated."""

    sampling_strategy: float
    k_neighbors: int

    def describe(self) -> str:
        return f"bad:good {self.sampling_strategy:.2f} after SMOTE, {self.k_neighbors} neighbours"


@dataclass
class LightGBMSettings:
    """Fixed boosting settings; the tree settings come from the search (``trees``)."""

    learning_rate: float = 0.05
    trees: TreeSettings = field(default_factory=lambda: _default_tree_candidates()[0])
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    max_rounds: int = 2000
    # The search stops this many rounds after the fold-mean validation AUC (smoothed over
    # ``smoothing_rounds``) peaked, and never before ``min_rounds`` (training.tuning).
    early_stopping_rounds: int = 100
    min_rounds: int = 200
    smoothing_rounds: int = 9
    # The fewest trees a cross-validated LightGBM keeps: a curve that peaks earlier is flat
    # and noisy there (few bad loans), and a handful of trees ranks worse on new loans.
    min_trees: int = 50
    # None: one thread below ``single_thread_below_rows`` training rows, else two. On small
    # data a second OpenMP thread gains little, and on a busy machine its spin-waits cost
    # 100× (measured: 105 s instead of 0.4 s for one 5-fold candidate on 2,300 rows).
    num_threads: int | None = None
    single_thread_below_rows: int = 100_000

    def with_trees(self, trees: TreeSettings) -> LightGBMSettings:
        return replace(self, trees=trees)

    def threads_for(self, rows: int) -> int:
        if self.num_threads is not None:
            return self.num_threads
        return 1 if rows < self.single_thread_below_rows else 2

    def params(self, seed: int, rows: int = 0) -> dict[str, str | float | bool]:
        """LightGBM ``train`` parameters for ``rows`` training rows (deterministic for a
        seed)."""
        return {"objective": "binary", "metric": "auc", "learning_rate": self.learning_rate,
                "num_leaves": self.trees.num_leaves,
                "min_child_samples": self.trees.min_child_samples,
                "lambda_l2": self.trees.reg_lambda, "feature_fraction": self.feature_fraction,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": self.bagging_freq,
                "num_threads": self.threads_for(rows), "seed": seed, "deterministic": True,
                "force_row_wise": True, "verbose": -1, "max_cat_to_onehot": 8,
                "cat_smooth": 20.0, "min_data_per_group": 100, "feature_pre_filter": False}


def _reference_settings() -> LightGBMSettings:
    return LightGBMSettings(learning_rate=0.02, trees=TreeSettings(15, 100, 0.0),
                            feature_fraction=0.5, bagging_fraction=1.0, bagging_freq=0,
                            max_rounds=300)


@dataclass
class SmallFileSettings:
    """How the search changes when bad loans are few (fewer than ``bad_loans_below`` among
    the labelled rows). The fold-mean AUC curve is then flat and noisy, and a test split
    holds a few dozen bad loans: a lower learning rate, half the columns per tree, leaves
    holding at least ``min_bad_loans_per_leaf`` bad loans on average, repeated folds, every
    choice on cross-validated figures, and the final model fitted on every labelled row
    (the test figures are then out-of-fold)."""

    bad_loans_below: int = 1500
    learning_rate: float = 0.02
    feature_fraction: float = 0.5
    bagging_fraction: float = 0.8
    # Repeats of the folds, when the search budget is at least ``repeats_from_budget``
    # seconds (a short search, as in quick trainings, runs one pass).
    repeats: int = 3
    repeats_from_budget: float = 120.0
    min_bad_loans_per_leaf: float = 5.0
    max_rounds: int = 1500
    early_stopping_rounds: int = 150
    min_rounds: int = 200
    smoothing_rounds: int = 25
    # Leaves, L2 and the smallest leaf before it is tied to the bad loans; the first is the
    # fixed reference's shape, tried first and kept unless another beats it by more than
    # ``switch_margin_se`` CV standard errors (a noisy maximum among a few candidates is
    # optimistic).
    tree_candidates: list[TreeSettings] = field(default_factory=lambda: [
        TreeSettings(15, 100, 5.0), TreeSettings(7, 100, 5.0), TreeSettings(31, 200, 10.0)])
    switch_margin_se: float = 0.5
    # Light SMOTE targets first (multiples of the rows' own bad:good ratio), one neighbour
    # count: the chosen one costs at most one CV standard error against no resampling.
    smote_oversampling_factors: tuple[float, ...] = (1.1, 1.25, 1.5)
    smote_k_neighbors: tuple[int, ...] = (5,)

    def tree_candidates_for(self, bad_rate: float) -> list[TreeSettings]:
        """The candidates with each leaf large enough to hold ``min_bad_loans_per_leaf`` bad
        loans at this bad rate (at 5 % bad: 100 rows), duplicates dropped."""
        rows_per_leaf = math.ceil(self.min_bad_loans_per_leaf / max(bad_rate, 1e-6))
        tied = [replace(trees, min_child_samples=max(trees.min_child_samples, rows_per_leaf))
                for trees in self.tree_candidates]
        return list(dict.fromkeys(tied))


@dataclass
class SearchSettings:
    """What cross-validation may try, and for how long."""

    tree_candidates: list[TreeSettings] = field(default_factory=_default_tree_candidates)
    # SMOTE targets, as multiples of the training rows' own bad:good ratio (capped at 1:1),
    # plus full balance; each with each neighbour count, the first ones tried first. On
    # generated data every step up costs ranking (5-fold CV AUC on 18k rows: 1.5× −0.005,
    # 2× −0.011, 3× −0.017, 1:1 −0.030 against no resampling), so mild ones come first.
    smote_oversampling_factors: tuple[float, ...] = (1.5, 1.25, 2.0, 3.0)
    smote_balanced: bool = True
    smote_k_neighbors: tuple[int, ...] = (5, 25)
    # Wall-clock budget for the whole search; candidates left when it runs out are skipped
    # (and listed in model.json). The first candidate of each stage always runs.
    budget_seconds: float = 240.0
    # Scorecard (baseline) L2 strengths tried: scikit-learn's C, larger = weaker penalty.
    scorecard_regularization: tuple[float, ...] = (0.03, 0.3, 3.0)
    scorecard_max_bins: int = 10
    # Repeats of the stratified folds (the small-file search sets its own).
    cv_repeats: int = 1
    # A later tree candidate replaces the first only if its CV AUC is higher by more than
    # this many CV standard errors (0: the highest mean wins).
    switch_margin_se: float = 0.0


@dataclass
class WarningLevels:
    """When a run warns the analyst (CLI, report top, model.json ``warnings``)."""

    min_trees: int = 10
    min_bad_loans: int = 200
    max_approval_rate: float = 0.95
    min_approval_rate: float = 0.05
    # Test AUC this far from the CV AUC (and beyond twice their combined standard error).
    auc_gap: float = 0.05
    # SMOTE's CV AUC this far below the plain model's.
    smote_auc_cost: float = 0.01
    # Test mean PD this far (relative) from the test bad rate.
    pd_level_relative: float = 0.10


@dataclass
class TrainingConfig:
    """Everything ``run_training`` needs besides the data and the dataset config."""

    seed: int = 42
    folds: int = 5
    test_fraction: float = 0.2
    # The product's default: LightGBM trained on SMOTE-balanced rows. ``model_type =
    # "baseline"`` promotes the scorecard instead; ``smote = False`` the plain LightGBM.
    model_type: str = "lightgbm"
    smote: bool = True
    lightgbm: LightGBMSettings = field(default_factory=LightGBMSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    small_file: SmallFileSettings = field(default_factory=SmallFileSettings)
    # The fixed, regularised LightGBM fitted in every run beside the search's choice
    # (learning rate 0.02, 15 leaves, ≥100 rows per leaf, half the columns, 300 trees).
    reference: LightGBMSettings = field(default_factory=_reference_settings)
    # Set by :meth:`for_bad_loans`: the search runs in its small-file form.
    small_file_search: bool = False
    warning_levels: WarningLevels = field(default_factory=WarningLevels)
    reference_annual_rate: float = 0.12
    min_category_count: int = 20
    include_addr_state: bool = False
    # Cost of approving a loan that goes bad vs rejecting one that would have been repaid.
    cost_bad_loan: float = 5.0
    cost_rejected_good: float = 1.0
    review_band_fraction: float = 0.25
    score_scale: dict[str, float] = field(default_factory=lambda: {
        "base_score": 600.0, "base_odds": 30.0, "points_to_double_odds": 20.0})
    risk_grades: list[RiskGradeBand] = field(default_factory=_default_risk_grades)
    leakage_alarm_auc: float = 0.80
    parity_tolerance: float = 1e-5
    calibration_bins: int = 10

    def __post_init__(self) -> None:
        self._check_parameters()

    def _check_parameters(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if not 0 < self.test_fraction < 0.5:
            raise ValueError(f"test_fraction must be between 0 and 0.5, got {self.test_fraction}")
        if self.cost_bad_loan <= 0 or self.cost_rejected_good <= 0:
            raise ValueError("cost_bad_loan and cost_rejected_good must both be positive")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got "
                             f"{self.model_type!r}")
        if not 0 <= self.review_band_fraction < 1:
            raise ValueError("review_band_fraction must be in [0, 1)")
        if not self.search.tree_candidates:
            raise ValueError("search.tree_candidates needs at least one TreeSettings")
        if self.search.budget_seconds <= 0:
            raise ValueError(f"search.budget_seconds must be positive, got "
                             f"{self.search.budget_seconds}")

    def for_bad_loans(self, bad_loans: int, bad_rate: float) -> TrainingConfig:
        """This config as the search runs it on a file with ``bad_loans`` labelled bad loans:
        unchanged from ``small_file.bad_loans_below`` on, else the small-file form (the
        tree candidates and SMOTE targets keep their length limits, so a short search
        stays short)."""
        small = self.small_file
        if bad_loans >= small.bad_loans_below or self.small_file_search:
            return self
        lightgbm = replace(self.lightgbm, learning_rate=small.learning_rate,
                           feature_fraction=small.feature_fraction,
                           bagging_fraction=small.bagging_fraction, bagging_freq=1,
                           max_rounds=small.max_rounds,
                           early_stopping_rounds=small.early_stopping_rounds,
                           min_rounds=small.min_rounds, smoothing_rounds=small.smoothing_rounds)
        search = self.search
        trees = small.tree_candidates_for(bad_rate)[:len(search.tree_candidates)]
        factors = small.smote_oversampling_factors[:len(search.smote_oversampling_factors)]
        neighbours = small.smote_k_neighbors[:len(search.smote_k_neighbors)]
        repeats = small.repeats if search.budget_seconds >= small.repeats_from_budget else 1
        search = replace(search, tree_candidates=trees, smote_oversampling_factors=factors,
                         smote_balanced=False, smote_k_neighbors=neighbours,
                         cv_repeats=repeats, switch_margin_se=small.switch_margin_se)
        return replace(self, lightgbm=lightgbm, search=search, small_file_search=True)

    @property
    def exported_variant(self) -> str:
        """Which fitted model is served: ``smote``, ``no_smote`` or ``baseline``."""
        if self.model_type == "baseline":
            return "baseline"
        return "smote" if self.smote else "no_smote"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
