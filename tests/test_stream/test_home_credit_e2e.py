"""Home Credit served end to end on the real stack: a model trained on generated
application_train.csv + bureau.csv, the bureau view materialized into Redis, the worker
process deciding held-out applications replayed from the file — with the probabilities of
offline scoring and reasons in the config's words for every review and decline."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
from worker_harness import TopicReader, WorkerProcess  # tests/test_stream/worker_harness.py

from onnx_models.card import ModelCard
from onnx_models.policy import apply_calibration
from onnx_models.registry import Registry
from replay.core import live_event_layout, replay_applications
from stream.reasons import MISSING_BUREAU_TEXT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TRAINING_ROWS = 6_000
HELD_OUT = 500


def _split(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Training applicants and held-out ones, each file with the bureau table beside it."""
    applications = pd.read_csv(source / "application_train.csv", dtype=str, keep_default_na=False)
    folders = []
    for name, rows in (("train", applications.iloc[:TRAINING_ROWS]),
                       ("held_out", applications.iloc[TRAINING_ROWS:])):
        folder = tmp_path / name
        folder.mkdir()
        rows.to_csv(folder / "application_train.csv", index=False)
        shutil.copy(source / "bureau.csv", folder / "bureau.csv")
        folders.append(folder / "application_train.csv")
    return folders[0], folders[1]


def _offline_probabilities(card: ModelCard, registry_dir: Path, path: Path) -> dict[str, float]:
    """Offline scoring: clean, join the bureau view, the card's encoder, ONNX, calibration."""
    from training.datasets import load_clean_labelled, load_dataset_config

    frame, _cleaning, _labels = load_clean_labelled(path, load_dataset_config("home_credit"))
    inputs = card.encoder().transform(frame)
    session = onnxruntime.InferenceSession(str(registry_dir / card.version / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    raw = session.run(["probabilities"], {"features": inputs})[0][:, 1].astype(np.float64)
    return dict(zip(frame["application_id"], apply_calibration(raw, card.calibration),
                    strict=True))


def test_home_credit_is_served_with_offline_probabilities_and_plain_reasons(
        namespace, tmp_path: Path) -> None:
    from quick_training import quick_config  # tests/quick_training.py

    from features.materialize import materialize_view
    from features.store import sync_client
    from training.datasets import load_dataset_config
    from training.generate_home_credit import generate_home_credit_files
    from training.pipeline import run_training

    generate_home_credit_files(rows=TRAINING_ROWS + HELD_OUT, seed=23, out_dir=tmp_path / "gen",
                               show_progress=False)
    train_file, held_out_file = _split(tmp_path / "gen", tmp_path)
    registry_dir = tmp_path / "registry"
    run_training(train_file, "home_credit", registry_dir=registry_dir,
                 config=quick_config(folds=3), report_dir=tmp_path / "report", progress=False,
                 log=lambda _line: None)
    registry = Registry(registry_dir)
    card = registry.load(registry.live_version() or "").card
    assert card.metrics.test.auc > 0.68
    # Gender and age band are monitored, never used: on the card, not among the features, and
    # the report's fairness section judged both on the test rows.
    monitored = card.monitoring_spec()
    assert [(a.name, a.field) for a in monitored.attributes] == [
        ("gender", "CODE_GENDER"), ("age_band", "DAYS_BIRTH")]
    assert not {"CODE_GENDER", "DAYS_BIRTH"} & set(card.feature_names)
    fairness = registry.load(registry.live_version() or "").card.to_document()["fairness"]
    assert fairness["monitored_not_used"] == "gender (CODE_GENDER), age band (DAYS_BIRTH)"
    assert {a["name"] for a in fairness["attributes"]} == {"gender", "age_band"}
    assert "Fairness (monitored, not used" in (tmp_path / "report" / "report.html").read_text()

    config = load_dataset_config("home_credit")
    (view,) = config.views
    client = sync_client(namespace.settings, "materializer")
    try:
        materialize_view(tmp_path / "gen" / "bureau.csv", client, view,
                         namespace.settings.feature_schema_version, namespace.settings.key_prefix)
    finally:
        client.close()

    worker = WorkerProcess(namespace, registry_dir, tmp_path / "worker.log")
    worker.start()
    try:
        decisions = TopicReader(namespace.settings, namespace.topic_decisions)
        summary = replay_applications(held_out_file, namespace.settings,
                                      namespace.topic_applications, count=HELD_OUT,
                                      progress=False, layout=live_event_layout(registry_dir))
        assert summary.sent == HELD_OUT
        decisions.wait_for(lambda r: len(r.by_key) >= HELD_OUT, 180, f"{HELD_OUT} decisions")
        decisions.close()
    finally:
        worker.stop()

    offline = _offline_probabilities(card, registry_dir, held_out_file)
    decided = {app_id: copies[0] for app_id, copies in decisions.by_key.items()}
    assert set(decided) == set(offline)
    assert max(abs(d["probability_of_default"] - offline[app_id])
               for app_id, d in decided.items()) <= 1e-6

    described = {text for text, _direction in config.feature_descriptions.values()}
    adverse = [d for d in decided.values() if d["decision"] != "approve"]
    assert adverse and any(d["decision"] == "approve" for d in decided.values())
    assert all(1 <= len(d["reasons"]) <= 4 for d in adverse)
    texts = [reason["text"].split(":")[0] for d in adverse for reason in d["reasons"]]
    assert set(texts) <= described | {MISSING_BUREAU_TEXT}
    assert any(text.startswith("Low external credit score") for text in texts)

    # Applicants without any bureau credit are decided, never auto-approved, and told why.
    bureau_ids = set(pd.read_csv(tmp_path / "gen" / "bureau.csv", usecols=["SK_ID_CURR"])
                     ["SK_ID_CURR"].astype(str))
    without = [d for app_id, d in decided.items() if app_id not in bureau_ids]
    assert without and all(d["decision"] != "approve" for d in without)
    assert all(d["reasons"][0]["text"] == MISSING_BUREAU_TEXT for d in without)
