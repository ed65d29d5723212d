"""Model cards for unit tests: a valid model.json document around the sections a test cares
about, parsed exactly as the registry parses a registered version's card."""

from __future__ import annotations

from typing import Any

from onnx_models.card import ModelCard

METRICS = {"auc": 0.7, "ks": 0.3, "gini": 0.4, "brier": 0.05, "ece": 0.01}


def card_document(**sections: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": "20260101T000000Z-00000000", "created_at": "2026-01-01T00:00:00+00:00",
        "feature_set": "generic", "features": [{"name": "x", "type": "numeric"}],
        "feature_params": {"feature_set": "generic", "reference_annual_rate": 0.12},
        "calibration": {"method": "none"},
        "thresholds": {"approve_below": 0.1, "decline_at_or_above": 0.3},
        "score_scale": {"base_score": 600.0, "base_odds": 30.0, "points_to_double_odds": 20.0},
        "risk_grades": [{"grade": "A", "max_pd": 0.05}, {"grade": "B", "max_pd": 1.0}],
        "metrics": {"test": METRICS, "cv": METRICS}, "dataset": {"name": "test"},
        "reference": {},
    }
    document.update(sections)
    return document


def model_card(**sections: Any) -> ModelCard:
    return ModelCard.parse(card_document(**sections))
