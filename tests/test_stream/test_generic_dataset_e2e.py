"""A lender's own file, described by a dataset config, trained and served end to end: every
feature comes from the application event, and the worker's probabilities equal offline
scoring of the same rows (real Kafka, Redis and worker process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
from worker_harness import TopicReader, WorkerProcess, produce  # tests/test_stream/worker_harness.py

from onnx_models.card import ModelCard
from onnx_models.policy import apply_calibration
from onnx_models.registry import Registry
from replay.core import live_event_layout, replay_applications

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = """
name = "sme_book"
feature_set = "generic"
id_column = "application_ref"
customer_id_column = "company_id"
exclude_columns = ["contact_email"]

[target]
column = "status"
bad_values = ["written_off"]
good_values = ["repaid"]

[features]
turnover = { type = "numeric", description = "Low annual turnover", direction = "lower_is_riskier" }
years_trading = { type = "numeric", description = "Few years in business", direction = "lower_is_riskier" }
requested_amount = { type = "numeric", description = "Large amount requested", direction = "higher_is_riskier" }
sector = { type = "categorical", description = "Business sector" }
region = "categorical"

[missing_values]
years_trading = ["-1"]

[serving]
similar_by = ["sector"]
"""


def _book(rows: int, seed: int, start: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    turnover = rng.lognormal(11, 1, rows)
    years = rng.integers(0, 30, rows).astype(float)
    amount = rng.lognormal(9.5, 0.7, rows)
    sector = rng.choice(["retail", "farming", "tech", "hospitality"], rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    risk = (-2.0 - 0.6 * (np.log(turnover) - 11) - 0.05 * years + 0.5 * (np.log(amount) - 9.5)
            + 0.7 * (sector == "hospitality"))
    status = np.where(rng.random(rows) < 1 / (1 + np.exp(-risk)), "written_off", "repaid")
    years_text = np.where(rng.random(rows) < 0.05, "-1", years.astype(int).astype(str))
    turnover_text = np.where(rng.random(rows) < 0.03, "", np.round(turnover, 2).astype(str))
    # The dirt a hand-keyed book has: case and spacing variants of a category.
    sector_text = np.where(rng.random(rows) < 0.05, np.char.upper(sector.astype(str)), sector)
    return pd.DataFrame({
        "application_ref": [f"sme-{start + i}" for i in range(rows)],
        "company_id": [f"co-{start + i}" for i in range(rows)],
        "turnover": turnover_text, "years_trading": years_text,
        "requested_amount": np.round(amount, 2), "sector": sector_text, "region": region,
        "contact_email": [f"owner{i}@example.com" for i in range(rows)], "status": status})


def _offline_probabilities(card: ModelCard, model_dir: Path, frame: pd.DataFrame) -> dict[str, float]:
    """Offline scoring: the training cleaner, the card's encoder, the ONNX model, calibration."""
    from training.cleaning import clean_loans
    from training.datasets import load_dataset_config

    config = load_dataset_config(model_dir / "sme_book.toml")
    cleaned, _report = clean_loans(frame, config)
    inputs = card.encoder().transform(cleaned)
    session = onnxruntime.InferenceSession(str(model_dir / card.version / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    raw = session.run(["probabilities"], {"features": inputs})[0][:, 1].astype(np.float64)
    probability = apply_calibration(raw, card.calibration)
    return dict(zip(cleaned["application_id"], probability, strict=True))


def test_a_generic_config_model_is_served_with_offline_probabilities(
        namespace, tmp_path: Path) -> None:
    from quick_training import quick_config  # tests/quick_training.py

    from training.pipeline import run_training

    registry_dir = tmp_path / "registry"
    registry_dir.mkdir()
    (registry_dir / "sme_book.toml").write_text(CONFIG)
    _book(5000, 1, 0).to_csv(tmp_path / "book.csv", index=False)
    held_out = _book(600, 2, 100_000)
    held_out.to_csv(tmp_path / "held_out.csv", index=False)
    run_training(tmp_path / "book.csv", registry_dir / "sme_book.toml", registry_dir=registry_dir,
                 config=quick_config(folds=3), report_dir=tmp_path / "report", progress=False,
                 log=lambda _line: None)
    registry = Registry(registry_dir)
    card = registry.load(registry.live_version() or "").card
    assert card.serving is not None
    assert [entry["name"] for entry in card.serving["event_fields"]] == [
        "turnover", "years_trading", "requested_amount", "sector", "region"]

    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    worker.start()
    try:
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        letters = TopicReader(namespace.settings, namespace.topic_dead_letters)
        summary = replay_applications(tmp_path / "held_out.csv", namespace.settings,
                                      namespace.topic_applications, count=600, progress=False,
                                      layout=live_event_layout(registry_dir))
        assert summary.sent == 600
        bad = [{"application_ref": "x"},  # no identity
               {"application_id": "bad-1", "customer_id": "c", "submitted_at": "2026-11-20T10:00:00Z",
                "turnover": "plenty"},
               {"application_id": "bad-2", "customer_id": "c", "submitted_at": "2026-11-20T10:00:00Z",
                "sector": ["retail"]}]
        produce(namespace.settings, namespace.topic_applications,
                [(None, json.dumps(event).encode()) for event in bad] + [(None, b"{not json")])
        decisions.wait_for(lambda r: len(r.by_key) >= 600, 180, "600 decisions")
        letters.wait_for(lambda r: len(r.messages) >= 4, 60, "4 dead letters")

        offline = _offline_probabilities(card, registry_dir, held_out)
        assert set(decisions.by_key) == set(held_out["application_ref"]) == set(offline)
        gaps = [abs(copies[0]["probability_of_default"] - offline[app_id])
                for app_id, copies in decisions.by_key.items()]
        assert max(gaps) <= 1e-6
        adverse = [copies[0] for copies in decisions.by_key.values()
                   if copies[0]["decision"] != "approve"]
        assert adverse and all(1 <= len(d["reasons"]) <= 4 for d in adverse)
        texts = {reason["text"].split(":")[0] for d in adverse for reason in d["reasons"]}
        assert texts & {"Low annual turnover", "Few years in business", "Large amount requested"}
        assert sorted(letter["error"] for letter in letters.messages) == [
            "missing_field", "not_json", "wrong_type", "wrong_type"]
        assert all("plenty" not in letter["detail"] for letter in letters.messages)
        decisions.close()
        letters.close()
    finally:
        worker.stop()
