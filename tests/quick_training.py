"""Training settings for tests that train a model to use it (serve it, export it, read its
card), not to judge the search: the search tries one candidate per stage, the product's
defaults (the first LightGBM trees, then the mildest SMOTE target; the middle scorecard
strength), so a training takes seconds instead of the full search and always tries the same
candidates. Tests of the search
itself (tests/test_training/test_tuning.py) keep the full candidate lists.
"""

from __future__ import annotations

from typing import Any

from training.training_config import SearchSettings, TrainingConfig


def quick_search(**overrides: Any) -> SearchSettings:
    """The first tree candidate, the first SMOTE target and neighbour count, the middle
    scorecard strength, a short budget."""
    defaults = SearchSettings()
    strengths = defaults.scorecard_regularization
    settings: dict[str, Any] = {
        "tree_candidates": defaults.tree_candidates[:1],
        "smote_oversampling_factors": defaults.smote_oversampling_factors[:1],
        "smote_balanced": False,
        "smote_k_neighbors": defaults.smote_k_neighbors[:1],
        "scorecard_regularization": strengths[len(strengths) // 2:][:1],
        "budget_seconds": 30.0,
    }
    settings.update(overrides)
    return SearchSettings(**settings)


def quick_config(**overrides: Any) -> TrainingConfig:
    """``TrainingConfig(**overrides)`` with :func:`quick_search`."""
    return TrainingConfig(search=quick_search(), **overrides)


# The same for `creditrisk train` (its --search-budget option; the candidates stay the CLI's).
QUICK_CLI_BUDGET = ["--search-budget", "1"]
