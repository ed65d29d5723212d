"""The registry: register, list, promote, refuse bad models, keep the live pointer safe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from onnx_models.registry import (
    LIVE_POINTER,
    ModelRejectedError,
    Registry,
    RegistryError,
    VersionNotFoundError,
    make_version,
)

METRICS = {"auc": 0.7, "ks": 0.3, "gini": 0.4, "brier": 0.08, "ece": 0.01}


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    from training.export import booster_to_onnx
    from training.model import train_booster
    from training.training_config import TrainingConfig

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(400, 3))
    label = (rows[:, 0] + rng.normal(size=400) > 1).astype(int)
    config = TrainingConfig()
    config.lightgbm.min_child_samples = 10
    return booster_to_onnx(train_booster(rows, label, [], config, seed=0, rounds=10), 3)


def _card(version: str, n_features: int = 3, parity_passed: bool = True) -> dict:
    return {
        "version": version, "created_at": "2026-11-22T13:15:00+00:00",
        "features": [{"name": f"f{i}", "type": "numeric"} for i in range(n_features)],
        "feature_set": "generic", "calibration": {"method": "none"},
        "feature_params": {"feature_set": "generic", "reference_annual_rate": 0.12},
        "thresholds": {"approve_below": 0.1, "decline_at_or_above": 0.2},
        "score_scale": {"base_score": 600, "base_odds": 30, "points_to_double_odds": 20},
        "risk_grades": [{"grade": "A", "max_pd": 1.0}],
        "metrics": {"test": dict(METRICS), "cv": dict(METRICS)},
        "parity": {"max_abs_diff": 1e-7, "rows": 10, "passed": parity_passed},
        "data_fingerprint": {"sha256": "ab" * 32, "rows": 10}, "dataset": {"name": "t"},
        "reference": {},
    }


def _files(onnx_bytes: bytes, card: dict) -> dict[str, bytes]:
    return {"model.onnx": onnx_bytes, "model.json": json.dumps(card).encode()}


V1 = "20261122T131500Z-0123abcd"
V2 = "20261122T141500Z-0123abcd"


def test_register_list_promote(tmp_path: Path, onnx_bytes: bytes):
    registry = Registry(tmp_path)
    registry.register(V2, _files(onnx_bytes, _card(V2)))
    registry.register(V1, _files(onnx_bytes, _card(V1)))
    assert registry.versions() == [V1, V2]
    assert registry.live_version() is None
    registry.promote(V1)
    assert registry.live_version() == V1
    listed = registry.list()
    assert [(item.version, item.live, item.test_auc) for item in listed] == [
        (V1, True, 0.7), (V2, False, 0.7)]
    model = registry.load(V1)
    assert model.version == V1
    pd_values = model.probability_of_default(np.zeros((2, 3), dtype=np.float32))
    assert pd_values.shape == (2,) and np.all((pd_values >= 0) & (pd_values <= 1))


def test_versions_are_immutable(tmp_path: Path, onnx_bytes: bytes):
    registry = Registry(tmp_path)
    registry.register(V1, _files(onnx_bytes, _card(V1)))
    with pytest.raises(RegistryError, match="immutable"):
        registry.register(V1, _files(onnx_bytes, _card(V1)))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda card: card.pop("thresholds"), "thresholds"),
    (lambda card: card["features"].pop(), "input width 3 differs from the 2 features"),
    (lambda card: card["parity"].update(passed=False), "parity"),
    (lambda card: card["metrics"]["test"].pop("ks"), "metrics.test lacks"),
])
def test_a_bad_model_is_refused_and_leaves_nothing_behind(tmp_path, onnx_bytes, damage, message):
    card = _card(V1)
    damage(card)
    registry = Registry(tmp_path)
    with pytest.raises(ModelRejectedError, match=message):
        registry.register(V1, _files(onnx_bytes, card))
    assert registry.versions() == [] and not any(tmp_path.iterdir())


def test_promote_refuses_a_corrupted_version_and_keeps_the_live_one(tmp_path, onnx_bytes):
    registry = Registry(tmp_path)
    registry.register(V1, _files(onnx_bytes, _card(V1)))
    registry.register(V2, _files(onnx_bytes, _card(V2)))
    registry.promote(V1)
    (tmp_path / V2 / "model.onnx").write_bytes(b"not an onnx graph")
    with pytest.raises(ModelRejectedError, match="does not load"):
        registry.promote(V2)
    (tmp_path / V2 / "model.onnx").unlink()
    with pytest.raises(ModelRejectedError, match=r"missing file model\.onnx"):
        registry.promote(V2)
    assert registry.live_version() == V1
    with pytest.raises(VersionNotFoundError):
        registry.promote("20991231T000000Z-ffffffff")


def test_pointer_is_replaced_atomically(tmp_path, onnx_bytes, monkeypatch):
    registry = Registry(tmp_path)
    registry.register(V1, _files(onnx_bytes, _card(V1)))
    registry.register(V2, _files(onnx_bytes, _card(V2)))
    registry.promote(V1)

    import onnx_models.registry as module

    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(module.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.promote(V2)
    # The old pointer is intact and no temporary file is left beside it.
    assert registry.live_version() == V1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([V1, V2, LIVE_POINTER])


def test_version_names_sort_by_time():
    early = make_version(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "deadbeef" * 8)
    late = make_version(datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC), "00000000" * 8)
    assert early == "20260102T030405Z-deadbeef" and sorted([late, early]) == [early, late]
