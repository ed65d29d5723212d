"""Training settings: model hyper-parameters and the business choices a model version records.

The business constants (costs, score scale, grade bands) are defaults of this dataclass and
are copied into model.json; nothing that serves decisions reads them from code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _default_risk_grades() -> list[dict[str, Any]]:
    bands = (("A", 0.03), ("B", 0.06), ("C", 0.10), ("D", 0.15), ("E", 0.22), ("F", 0.32),
             ("G", 1.0))
    return [{"grade": grade, "max_pd": max_pd} for grade, max_pd in bands]


@dataclass
class LightGBMSettings:
    """Deliberately conservative: small trees, many samples per leaf, L2 penalty."""

    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 100
    reg_lambda: float = 5.0
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    max_rounds: int = 800
    early_stopping_rounds: int = 50
    num_threads: int = 2

    def params(self, seed: int) -> dict[str, Any]:
        """LightGBM ``train`` parameters (deterministic for a seed)."""
        return {"objective": "binary", "metric": "auc", "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "lambda_l2": self.reg_lambda, "feature_fraction": self.feature_fraction,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": self.bagging_freq,
                "num_threads": self.num_threads, "seed": seed, "deterministic": True,
                "force_row_wise": True, "verbose": -1, "max_cat_to_onehot": 8,
                "cat_smooth": 20.0, "min_data_per_group": 100}


@dataclass
class TrainingConfig:
    """Everything ``run_training`` needs besides the data and the dataset config."""

    seed: int = 42
    folds: int = 5
    test_fraction: float = 0.2
    calibration_fraction: float = 0.15
    early_stopping_fraction: float = 0.10
    smote_sampling_strategy: float = 1.0
    smote_k_neighbors: int = 5
    # Which of the two fitted variants becomes the served model ("smote" or "no_smote").
    exported_variant: str = "smote"
    lightgbm: LightGBMSettings = field(default_factory=LightGBMSettings)
    reference_annual_rate: float = 0.12
    min_category_count: int = 20
    include_addr_state: bool = False
    # Cost of approving a loan that goes bad vs rejecting one that would have been repaid.
    cost_bad_loan: float = 5.0
    cost_rejected_good: float = 1.0
    review_band_fraction: float = 0.25
    score_scale: dict[str, float] = field(default_factory=lambda: {
        "base_score": 600.0, "base_odds": 30.0, "points_to_double_odds": 20.0})
    risk_grades: list[dict[str, Any]] = field(default_factory=_default_risk_grades)
    leakage_alarm_auc: float = 0.80
    parity_tolerance: float = 1e-5
    calibration_bins: int = 10

    def __post_init__(self) -> None:
        self._check_parameters()

    def _check_parameters(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        for name in ("test_fraction", "calibration_fraction", "early_stopping_fraction"):
            value = getattr(self, name)
            if not 0 < value < 0.5:
                raise ValueError(f"{name} must be between 0 and 0.5, got {value}")
        if self.cost_bad_loan <= 0 or self.cost_rejected_good <= 0:
            raise ValueError("cost_bad_loan and cost_rejected_good must both be positive")
        if self.exported_variant not in ("smote", "no_smote"):
            raise ValueError(f"exported_variant must be 'smote' or 'no_smote', got "
                             f"{self.exported_variant!r}")
        if not 0 <= self.review_band_fraction < 1:
            raise ValueError("review_band_fraction must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
