"""Drift (PSI) of the live stream vs the reference that training writes into model.json.

The card is built with training's own reference functions, so a change of the recorded
format breaks these tests rather than the worker's metrics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cards import model_card  # tests/cards.py

from features.definitions import FeatureSpec
from onnx_models.card import ModelCard
from onnx_models.policy import score_points
from stream.drift import DriftMonitor, key_features, population_stability_index
from training.reference import feature_references, score_reference

SCALE = {"base_score": 600.0, "base_odds": 30.0, "points_to_double_odds": 20.0}
PURPOSES = ["car", "credit_card", "debt_consolidation", "other"]
SPECS = [
    FeatureSpec("loan_amnt", "numeric", "Large loan amount", "higher_is_riskier", ("loan_amnt",)),
    FeatureSpec("dti", "numeric", "High debt", "higher_is_riskier", ("dti",)),
    FeatureSpec("revol_util", "numeric", "High utilisation", "higher_is_riskier", ("revol_util",)),
    FeatureSpec("log_annual_inc", "numeric", "Low income", "lower_is_riskier", ("annual_inc",)),
    FeatureSpec("inq_last_6mths", "numeric", "Inquiries", "higher_is_riskier", ("inq_last_6mths",)),
    FeatureSpec("purpose", "categorical", "Purpose", "depends", ("purpose",)),
]
COLUMN = {spec.name: index for index, spec in enumerate(SPECS)}


def population(seed: int, rows: int, revol_shift: float = 0.0, dti_missing: float = 0.002,
               purpose_weights: tuple[float, ...] = (0.1, 0.25, 0.55, 0.1)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs (float32, card order), PDs and scores of a Lending Club-like population."""
    rng = np.random.default_rng(seed)
    matrix = np.column_stack([
        np.clip(np.round(rng.lognormal(9.4, 0.6, rows), -2), 1000, 35000),
        np.where(rng.random(rows) < dti_missing, np.nan, rng.gamma(4.0, 4.3, rows).round(2)),
        (rng.beta(2.2, 1.8, rows) * 104).round(1) + revol_shift,
        rng.normal(11.05, 0.55, rows),
        rng.negative_binomial(1.2, 0.6, rows).astype(float),
        rng.choice(len(PURPOSES), rows, p=purpose_weights).astype(float),
    ]).astype(np.float32)
    log_odds = -2.3 + 0.03 * (matrix[:, 1].astype(float) - 17) + 0.01 * (matrix[:, 2] - 55)
    pd_values = 1 / (1 + np.exp(-np.nan_to_num(log_odds) - rng.normal(0, 0.5, rows)))
    return matrix, pd_values, score_points(pd_values, SCALE)


def _card(**sections: Any) -> ModelCard:
    matrix, pd_values, scores = population(seed=1, rows=30_000)
    return model_card(
        features=[{"name": spec.name, "type": spec.kind,
                   **({"categories": PURPOSES} if spec.kind == "categorical" else {})}
                  for spec in SPECS],
        reference={"features": feature_references(matrix, SPECS, {"purpose": PURPOSES}),
                   "score": score_reference(pd_values, scores)},
        **sections)


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return _card()


def fed(card: ModelCard, batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        batch_size: int = 100, **options) -> DriftMonitor:
    monitor = DriftMonitor(card, **options)
    for matrix, pd_values, scores in batches:
        for start in range(0, len(scores), batch_size):
            part = slice(start, start + batch_size)
            monitor.observe(matrix[part], scores[part], pd_values[part])
    return monitor


def test_same_population_is_stable(card: ModelCard) -> None:
    psi = fed(card, [population(seed=2, rows=5000)]).psi()
    assert set(psi) == {*key_features(card), "score", "probability_of_default"}
    assert {"dti", "revol_util", "log_annual_inc", "purpose"} <= set(psi)
    assert max(psi.values()) < 0.02, psi


def test_the_watched_inputs_are_the_models_most_important_ones(card: ModelCard) -> None:
    ranked = _card(model={"feature_importance": {"purpose": 0.5, "dti": 0.3, "term": 0.2}})
    assert key_features(ranked, count=2) == ("purpose", "dti")
    assert DriftMonitor(ranked).monitored[:2] == ("purpose", "dti")


def test_utilisation_shift_is_significant_and_only_where_it_happened(card: ModelCard) -> None:
    psi = fed(card, [population(seed=3, rows=5000, revol_shift=30.0)]).psi()
    assert psi["revol_util"] > 0.25
    assert psi["dti"] < 0.02 and psi["log_annual_inc"] < 0.02 and psi["purpose"] < 0.02
    assert psi["score"] > 0.1  # utilisation raises PD, so the score distribution moves too


def test_missing_values_suddenly_common_are_drift(card: ModelCard) -> None:
    psi = fed(card, [population(seed=4, rows=5000, dti_missing=0.3)]).psi()
    assert psi["dti"] > 0.25


def test_category_mix_shift_is_drift(card: ModelCard) -> None:
    psi = fed(card, [population(seed=5, rows=5000, purpose_weights=(0.4, 0.1, 0.3, 0.2))]).psi()
    assert psi["purpose"] > 0.25
    assert psi["revol_util"] < 0.02


def test_window_forgets_old_batches(card: ModelCard) -> None:
    monitor = fed(card, [population(seed=6, rows=5000, revol_shift=30.0),
                         population(seed=7, rows=2000)], window=2000)
    assert monitor.rows_in_window == 2000
    assert monitor.psi()["revol_util"] < 0.02


def test_no_psi_before_minimum_sample(card: ModelCard) -> None:
    matrix, pd_values, scores = population(seed=8, rows=199)
    monitor = DriftMonitor(card, min_sample=200)
    monitor.observe(matrix, scores, pd_values)
    assert monitor.psi() == {}
    monitor.observe(matrix[:1], scores[:1], pd_values[:1])
    assert "score" in monitor.psi()


def test_deterministic(card: ModelCard) -> None:
    batches = [population(seed=9, rows=3000, revol_shift=10.0)]
    assert fed(card, batches).psi() == fed(card, batches, batch_size=37).psi()


def test_features_missing_from_card_are_skipped(card: ModelCard) -> None:
    monitor = DriftMonitor(card, features=("revol_util", "loan_to_income"))
    assert monitor.skipped == ("loan_to_income",)
    assert monitor.monitored == ("revol_util", "score", "probability_of_default")


def test_pd_is_optional(card: ModelCard) -> None:
    matrix, _, scores = population(seed=10, rows=500)
    monitor = DriftMonitor(card)
    monitor.observe(matrix, scores)
    assert "score" in monitor.psi() and "probability_of_default" not in monitor.psi()


def test_wrong_input_shape_is_explained(card: ModelCard) -> None:
    matrix, pd_values, scores = population(seed=11, rows=10)
    with pytest.raises(ValueError, match=r"inputs must be \[10, 6\]"):
        DriftMonitor(card).observe(matrix[:, :5], scores, pd_values)


def test_psi_formula_on_known_values() -> None:
    # (0.6-0.5)ln(0.6/0.5) + (0.4-0.5)ln(0.4/0.5)
    assert population_stability_index(np.array([60, 40]), np.array([0.5, 0.5])) == \
        pytest.approx(0.1 * np.log(1.2) - 0.1 * np.log(0.8))
    # an empty bin on one side costs a bounded amount instead of infinity
    assert np.isfinite(population_stability_index(np.array([100, 0]), np.array([0.5, 0.5])))


def test_memory_stays_bounded_by_the_window(card: ModelCard) -> None:
    matrix, pd_values, scores = population(seed=12, rows=100)
    monitor = DriftMonitor(card, window=1000)
    for _ in range(300):
        monitor.observe(matrix, scores, pd_values)
    assert monitor.rows_in_window == 1000 and monitor.batches_in_window == 10


@pytest.mark.slow
def test_trained_model_sees_no_drift_on_a_fresh_sample_of_the_same_population(
        trained_registry_template, tmp_path) -> None:
    """The whole serving path: real card, real encoder, real ONNX PDs, a new generated file."""
    from onnx_models.registry import Registry
    from training.datasets import load_clean_labelled, load_dataset_config
    from training.generate import generate_loan_files

    generate_loan_files(rows=6000, seed=99, out_dir=tmp_path, show_progress=False)
    frame, _, _ = load_clean_labelled(tmp_path / "loans.csv", load_dataset_config("generated"))
    model = Registry(trained_registry_template).load(
        Registry(trained_registry_template).live_version() or "")
    inputs = model.encoder().transform(frame)
    pd_values = model.probability_of_default(inputs)
    monitor = DriftMonitor(model.card, window=len(inputs))
    for start in range(0, len(inputs), 100):
        part = slice(start, start + 100)
        monitor.observe(inputs[part], score_points(pd_values[part], model.card.score_scale),
                        pd_values[part])
    psi = monitor.psi()
    assert monitor.skipped == () and set(psi) == set(monitor.monitored)
    assert max(psi.values()) < 0.05, psi
