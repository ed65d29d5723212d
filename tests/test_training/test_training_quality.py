"""What a new user sees on a small generated file (8,000 rows, the size of a first real
sample, a few hundred bad loans) and on a larger one: never a handful of trees, ranking as
good as the fixed regularised reference LightGBM on the same rows (the small file: every
labelled row fits the model and the test figures are out-of-fold; the larger one: a plain
LightGBM fitted here on the same training rows, judged on the same test set), honest PDs.

The models are trained with the quick search (tests/quick_training.py: the first candidate
of each stage, the product's default settings), so what is checked is the pipeline around
the search (tree count, SMOTE, calibration, the final fit), not the luck of a wider search;
the search itself is tests/test_training/test_tuning.py's. The multi-seed, 200k- and 1M-row
figures with the full search are the training benchmark's (``creditrisk bench --suite
training``, docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from quick_training import quick_config  # tests/quick_training.py


@dataclass
class TrainedFile:
    card: dict[str, Any]
    train_rows: int
    plain_auc: float   # a plain LightGBM with fixed settings, fitted by this test


def _plain_lightgbm_auc(matrix: np.ndarray, label: np.ndarray, train: np.ndarray,
                        test: np.ndarray, categorical: list[int]) -> float:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15,
              "min_child_samples": 50, "lambda_l2": 1.0, "feature_fraction": 0.8,
              "bagging_fraction": 0.8, "bagging_freq": 1, "verbose": -1, "num_threads": 1,
              "seed": 1}
    booster = lgb.train(params, lgb.Dataset(matrix[train], label[train],
                                            categorical_feature=categorical), 300)
    return float(roc_auc_score(label[test], booster.predict(matrix[test])))


def _train(folder: Path, rows: int, seed: int) -> TrainedFile:
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.generate import generate_loan_files
    from training.pipeline import prepare_features, train_from_frame
    from training.split import split_test

    generate_loan_files(rows=rows, seed=seed, out_dir=folder, show_progress=False)
    dataset, config = load_dataset_config("generated"), quick_config()
    frame, cleaning, labelling = load_clean_labelled(folder / "loans.csv", dataset)
    result = train_from_frame(frame, dataset, cleaning.to_dict(), labelling.to_dict(),
                              registry_dir=folder / "registry", promote=False, config=config,
                              progress=False, log=lambda _line: None, write_report_files=False)
    prepared = prepare_features(frame, dataset, config)
    split = split_test(prepared.frame, prepared.label, dataset.date_column,
                       config.test_fraction, config.seed)
    if result.card["evaluation"]["test_figures"] == "out_of_fold":  # no test split to judge on
        return TrainedFile(result.card, len(prepared.label), float("nan"))
    plain = _plain_lightgbm_auc(prepared.matrix, prepared.label, split.train_positions,
                                split.test_positions, prepared.categorical_indices)
    return TrainedFile(result.card, len(split.train_positions), plain)


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda seed: f"8k-seed{seed}")
def small_file(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> TrainedFile:
    return _train(tmp_path_factory.mktemp("small"), 8000, request.param)


@pytest.mark.slow
def test_a_small_file_gets_a_real_model_that_ranks_like_the_fixed_reference(small_file):
    card = small_file.card
    assert card["model"]["trees"] >= 50
    reference = card["fixed_reference"]
    # Both judged out-of-fold on the same rows.
    assert reference["test_figures"] == card["evaluation"]["test_figures"] == "out_of_fold"
    assert card["metrics"]["test"]["auc"] >= reference["test"]["auc"] - 0.01
    # Its PDs spread out: not a handful of distinct values that all get approved.
    assert 0.05 < card["metrics"]["decisions_at_thresholds"]["approval_rate"] < 0.95
    assert not {"few_trees", "approval_rate"} & {w["code"] for w in card["warnings"]}


@pytest.mark.slow
def test_a_small_file_model_uses_every_labelled_row_and_its_cv_describes_it(small_file):
    card = small_file.card
    assert card["search"]["small_file_search"] and card["search"]["learning_rate"] == 0.02
    assert card["model"]["fitted_on_rows"] == small_file.train_rows == \
        card["data_fingerprint"]["rows"]
    assert card["split"]["model_fitted_on_rows"] == card["split"]["train_rows"]
    assert card["calibration"]["fitted_on_rows"] == small_file.train_rows  # out-of-fold
    chosen = card["search"]["smote"]["chosen"]
    assert chosen["trees"] == card["model"]["trees"]
    assert card["metrics"]["cv"]["auc"] == pytest.approx(chosen["cv_auc"], abs=1e-9)
    assert card["metrics"]["cv"]["folds"] == 5
    # The promoted SMOTE strength costs at most one CV standard error against none.
    plain = card["search"]["no_smote"]["chosen"]
    assert plain["cv_auc"] - chosen["cv_auc"] <= plain["cv_auc_se"]


@pytest.mark.slow
def test_a_small_file_gets_honest_probabilities(small_file):
    test = small_file.card["metrics"]["test"]
    assert abs(test["mean_pd"] / test["bad_rate"] - 1) <= 0.10
    # ~800 test loans: a perfectly calibrated model itself shows an ECE near 0.02 here
    # (the benchmark prints this noise floor), so 0.015 is checked on the larger file.
    assert test["ece"] <= 0.03
    assert small_file.card["metrics"]["cv"]["ece"] <= 0.03


@pytest.mark.slow
def test_on_40k_rows_smote_keeps_its_ranking_and_the_probabilities_stay_honest(tmp_path):
    trained = _train(tmp_path, 40_000, 1)
    card = trained.card
    smote = card["smote"]["variants"]
    assert card["model"]["variant"] == "smote" and card["model"]["synthetic_rows"] > 0
    assert smote["smote"]["calibrated"]["auc"] >= smote["no_smote"]["calibrated"]["auc"] - 0.01
    assert card["metrics"]["test"]["auc"] >= trained.plain_auc - 0.01
    assert card["metrics"]["test"]["ece"] <= 0.015
    assert abs(card["metrics"]["test"]["mean_pd"] / card["metrics"]["test"]["bad_rate"] - 1) \
        <= 0.10
    assert card["model"]["trees"] >= 10
