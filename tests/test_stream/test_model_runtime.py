"""The serving model: verdicts, policy from model.json, reasons consistent with the model,
and hot reload that refuses broken versions."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.definitions import REASON_CODES
from onnx_models.card import ModelCard, policy_version
from onnx_models.policy import logit
from onnx_models.registry import LIVE_POINTER, RegisteredModel, Registry
from stream.model_runtime import LoadedModel, ModelEvent, ModelHolder, NoLiveModelError
from stream.reasons import MAX_REASONS, MISSING_BUREAU_CODE


@pytest.fixture(scope="module")
def live_model(trained_registry_template: Path) -> LoadedModel:
    registered = Registry(trained_registry_template).load(
        Registry(trained_registry_template).live_version() or "")
    assert registered is not None
    return LoadedModel.load(registered)


@pytest.fixture(scope="module")
def realistic_inputs(generated_data: Path, live_model: LoadedModel) -> np.ndarray:
    """Model inputs of real-looking applications (the generated loan file, cleaned)."""
    from training.datasets import load_clean_labelled, load_dataset_config

    frame, _, _ = load_clean_labelled(generated_data / "loans.csv",
                                      load_dataset_config("generated"))
    return live_model.encoder.transform(frame.head(2000))


def _with_card(model: LoadedModel, change: Callable[[dict[str, Any]], None]) -> LoadedModel:
    card = model.card.to_document()
    change(card)
    return LoadedModel.load(RegisteredModel(model.version, model.registered.path,
                                            ModelCard.parse(card)))


def _verdicts(model: LoadedModel, inputs: np.ndarray, missing: bool = False) -> list:
    return model.score(inputs, [missing] * len(inputs))


# ---- verdicts and policy -----------------------------------------------------------------

def test_verdicts_carry_calibrated_pd_score_grade_and_decision(live_model, realistic_inputs):
    verdicts = _verdicts(live_model, realistic_inputs)
    assert len(verdicts) == len(realistic_inputs)
    reference = live_model.registered.probability_of_default(realistic_inputs)
    published = np.array([verdict.probability_of_default for verdict in verdicts])
    # Same graph and calibration as the registry's reference path; only onnxruntime's
    # threading changes the float32 summation order.
    np.testing.assert_allclose(published, reference, rtol=0, atol=1e-6)
    grades = [band.grade for band in live_model.card.risk_grades]
    for verdict in verdicts:
        assert 0.0 < verdict.probability_of_default < 1.0
        assert isinstance(verdict.score, int) and 300 < verdict.score < 900
        assert verdict.risk_grade in grades
        assert verdict.decision in ("approve", "review", "decline")
    # A riskier applicant never gets a better score.
    order = np.argsort(published)
    scores = np.array([verdicts[row].score for row in order])
    assert np.all(np.diff(scores) <= 0)
    assert set(Counter(verdict.decision for verdict in verdicts)) == {"approve", "review",
                                                                      "decline"}


def test_a_row_gets_the_identical_verdict_whatever_batch_it_is_scored_in(live_model,
                                                                         realistic_inputs):
    """Replays regroup events into other micro-batches; decisions must not change by a bit."""
    batch = realistic_inputs[:300]
    together = _verdicts(live_model, batch)
    alone = [live_model.score(batch[row:row + 1], [False])[0] for row in range(len(batch))]
    assert alone == together


def test_decisions_follow_the_thresholds_written_in_model_json(live_model, realistic_inputs):
    published = np.array([v.probability_of_default
                          for v in _verdicts(live_model, realistic_inputs)])
    approve_below, decline_from = np.quantile(published, [0.5, 0.8])

    def stricter(card: dict[str, Any]) -> None:
        card["thresholds"].update(approve_below=float(approve_below),
                                  decline_at_or_above=float(decline_from))

    edited = _with_card(live_model, stricter)
    decisions = [v.decision for v in _verdicts(edited, realistic_inputs)]
    expected = np.where(published < approve_below, "approve",
                        np.where(published >= decline_from, "decline", "review"))
    assert decisions == list(expected)
    assert decisions != [v.decision for v in _verdicts(live_model, realistic_inputs)]
    assert edited.policy_version != live_model.policy_version


def test_missing_bureau_data_never_approves(live_model, realistic_inputs):
    normal = _verdicts(live_model, realistic_inputs)
    without_bureau = _verdicts(live_model, realistic_inputs, missing=True)
    for before, after in zip(normal, without_bureau, strict=False):
        assert after.decision == ("review" if before.decision == "approve" else before.decision)
        assert after.probability_of_default == before.probability_of_default
        assert after.reasons[0].code == MISSING_BUREAU_CODE
        assert after.reasons[0].impact == 0.0
        assert 1 <= len(after.reasons) <= MAX_REASONS


def test_mixed_batch_flags_apply_to_their_own_rows(live_model, realistic_inputs):
    batch = realistic_inputs[:50]
    flags = [row % 2 == 0 for row in range(len(batch))]
    for flag, verdict in zip(flags, live_model.score(batch, flags), strict=False):
        assert (verdict.reasons[:1] != () and verdict.reasons[0].code == MISSING_BUREAU_CODE) \
            == flag
        assert not (flag and verdict.decision == "approve")


def test_policy_version_is_stable_and_tracks_policy_only(live_model):
    card = live_model.card.to_document()
    assert policy_version(card) == live_model.policy_version
    card["metrics"] = {}
    card["created_at"] = "another time"
    assert policy_version(card) == live_model.policy_version
    for key, change in [("thresholds", {"approve_below": 0.01}),
                        ("score_scale", {"base_score": 500.0}),
                        ("calibration", {"intercept": 0.5})]:
        edited = live_model.card.to_document()
        edited[key].update(change)
        assert policy_version(edited) != live_model.policy_version


def test_wrong_input_shape_is_refused_with_what_to_do(live_model):
    width = len(live_model.feature_names)
    with pytest.raises(ValueError, match=f"shape \\[rows, {width}\\]"):
        live_model.score(np.zeros((2, width - 1), dtype=np.float32), [False, False])
    with pytest.raises(ValueError, match="one flag per row"):
        live_model.score(np.zeros((2, width), dtype=np.float32), [False])
    assert live_model.score(np.zeros((0, width), dtype=np.float32), []) == []


# ---- reasons -------------------------------------------------------------------------------

def test_contributions_add_up_to_the_onnx_models_log_odds(live_model, realistic_inputs):
    """The consistency proof: the explainer (model.txt) decomposes exactly the score the
    ONNX graph served, row by row; with the Platt slope and intercept, the same terms add up
    to the log-odds of the published PD."""
    contributions = live_model.contributions(realistic_inputs)
    raw = live_model.raw_probability(realistic_inputs)
    assert np.max(np.abs(contributions.sum(axis=1) - logit(raw))) < 1e-4
    calibration = live_model.card.calibration
    published = np.array([v.probability_of_default
                          for v in _verdicts(live_model, realistic_inputs)])
    calibrated_terms = calibration.log_odds_factor * contributions.sum(axis=1) \
        + calibration.intercept
    assert np.max(np.abs(calibrated_terms - logit(published))) < 1e-4


def test_every_review_and_decline_carries_its_largest_risk_raising_factors(live_model,
                                                                            realistic_inputs):
    verdicts = _verdicts(live_model, realistic_inputs)
    contributions = live_model.contributions(realistic_inputs)[:, :-1]
    impacts = contributions * live_model.card.calibration.log_odds_factor
    names = live_model.feature_names
    adverse = 0
    for verdict, row_impacts in zip(verdicts, impacts, strict=False):
        if verdict.decision == "approve":
            assert verdict.reasons == ()
            continue
        adverse += 1
        assert 1 <= len(verdict.reasons) <= MAX_REASONS
        positive = [names[i] for i in np.argsort(-row_impacts, kind="stable")
                    if row_impacts[i] > 0]
        listed = [reason.feature for reason in verdict.reasons]
        if positive:
            assert listed == positive[:MAX_REASONS]
        else:
            assert listed == [names[int(np.argmax(row_impacts))]]
        for reason in verdict.reasons:
            assert reason.code == REASON_CODES[reason.feature]
            assert reason.impact == round(float(row_impacts[names.index(reason.feature)]), 4)
            assert reason.text
    assert adverse > 50


# ---- hot reload ----------------------------------------------------------------------------

MODEL_FILES = ("model.onnx", "model.json", "model.txt")


def _variant_files(registry: Registry, new_version: str,
                   change: Callable[[dict[str, Any]], None]) -> dict[str, bytes]:
    source = registry.root / registry.live_version()
    files = {name: (source / name).read_bytes() for name in MODEL_FILES}
    card = json.loads(files["model.json"])
    card["version"] = new_version
    change(card)
    files["model.json"] = json.dumps(card).encode()
    return files


def _write_pointer(registry: Registry, version: str) -> None:
    (registry.root / LIVE_POINTER).write_text(json.dumps({"version": version}))


def _write_unregistered(registry: Registry, version: str, files: dict[str, bytes]) -> None:
    """A version folder put in place by hand, bypassing the registry's checks."""
    folder = registry.root / version
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)


def test_no_live_model_is_a_clear_error(registry_dir: Path):
    (registry_dir / LIVE_POINTER).unlink()
    with pytest.raises(NoLiveModelError, match="run `creditrisk train`"):
        ModelHolder(Registry(registry_dir))


def test_promoting_a_new_version_switches_later_scores(registry_dir, realistic_inputs):
    registry = Registry(registry_dir)
    events: list[ModelEvent] = []
    holder = ModelHolder(registry, on_event=events.append)
    first = holder.current
    assert holder.refresh() is False and holder.current is first

    second = f"{first.version}-2"

    def decline_everything(card: dict[str, Any]) -> None:
        card["thresholds"].update(approve_below=0.0, decline_at_or_above=0.0)

    registry.register(second, _variant_files(registry, second, decline_everything))
    registry.promote(second)
    assert holder.refresh() is True
    assert holder.version == second and holder.current.version == second
    assert holder.current.policy_version != first.policy_version
    assert {v.decision for v in _verdicts(holder.current, realistic_inputs[:100])} == {"decline"}
    assert {v.decision for v in _verdicts(first, realistic_inputs[:100])} != {"decline"}
    assert [(event.kind, event.version) for event in events] == [
        ("loaded", first.version), ("loaded", second)]
    assert holder.refresh() is False and holder.reload_failures == 0


def _truncate_onnx(files: dict[str, bytes], card: dict[str, Any]) -> None:
    files["model.onnx"] = files["model.onnx"][: len(files["model.onnx"]) // 2]


def _drop_a_feature(files: dict[str, bytes], card: dict[str, Any]) -> None:
    card["features"].pop()


def _no_explainer(files: dict[str, bytes], card: dict[str, Any]) -> None:
    del files["model.txt"]


def _no_bureau_view(files: dict[str, bytes], card: dict[str, Any]) -> None:
    card["serving"]["views"] = []


def _other_event_contract(files: dict[str, bytes], card: dict[str, Any]) -> None:
    """A model that wants another event (another dataset's producers) on the same topic."""
    for field in card["serving"]["event_fields"]:
        if field["name"] == "term":
            field["check"] = "number"
            field["required"] = False


@pytest.mark.parametrize(("corrupt", "complaint"), [
    (_truncate_onnx, "model.onnx does not load"),
    (_drop_a_feature, "differs from the"),
    (_no_explainer, "missing file model.txt"),
    (_no_bureau_view, "not built from the application event and the declared feature views"),
    (_other_event_contract, "serve it with its own topics and worker group"),
])
def test_a_broken_promotion_keeps_the_current_model_serving(registry_dir, realistic_inputs,
                                                            corrupt, complaint):
    registry = Registry(registry_dir)
    events: list[ModelEvent] = []
    holder = ModelHolder(registry, on_event=events.append)
    serving = holder.current
    broken = f"{serving.version}-9"
    source = registry.root / serving.version
    files = {name: (source / name).read_bytes() for name in MODEL_FILES}
    card = json.loads(files["model.json"])
    card["version"] = broken
    corrupt(files, card)
    files["model.json"] = json.dumps(card).encode()
    _write_unregistered(registry, broken, files)
    _write_pointer(registry, broken)

    assert holder.refresh() is False
    assert holder.current is serving
    assert holder.reload_failures == 1
    assert broken in holder.last_reload_error and complaint in holder.last_reload_error
    assert events[-1].kind == "reload_failed" and events[-1].version == broken
    assert len(_verdicts(holder.current, realistic_inputs[:10])) == 10
    # The same broken pointer is not reloaded (and recounted) at every batch.
    assert holder.refresh() is False and holder.reload_failures == 1

    _write_pointer(registry, serving.version)  # rolled back
    assert holder.refresh() is False
    assert holder.last_reload_error is None and holder.reload_failures == 1


def test_a_version_refused_while_incomplete_is_retried_later(registry_dir):
    registry = Registry(registry_dir)
    holder = ModelHolder(registry, retry_failed_after_seconds=0.0)
    late = f"{holder.version}-3"
    files = _variant_files(registry, late, lambda card: None)
    _write_pointer(registry, late)  # pointer written before the files are copied
    assert holder.refresh() is False and holder.reload_failures == 1
    assert "not in the registry" in holder.last_reload_error
    _write_unregistered(registry, late, files)
    assert holder.refresh() is True
    assert holder.version == late and holder.last_reload_error is None


def test_a_failing_event_callback_does_not_stop_a_reload(registry_dir):
    registry = Registry(registry_dir)

    def broken_metrics(event: ModelEvent) -> None:
        raise RuntimeError("metrics backend down")

    holder = ModelHolder(registry, on_event=broken_metrics)
    newer = f"{holder.version}-4"
    registry.register(newer, _variant_files(registry, newer, lambda card: None))
    registry.promote(newer)
    assert holder.refresh() is True and holder.version == newer
    shutil.rmtree(registry.root / newer)  # a loaded model keeps serving from memory
    assert len(holder.current.score(np.full((1, len(holder.current.feature_names)), np.nan,
                                            dtype=np.float32), [False])) == 1


def test_a_promoted_version_scores_a_synthetic_batch_of_each_size_before_it_serves(
        registry_dir, monkeypatch):
    registry = Registry(registry_dir)
    holder = ModelHolder(registry, warm_batch_sizes=(1, 200))
    warmed: list[tuple[str, tuple[int, ...]]] = []
    real_warm_up = LoadedModel.warm_up

    def recording_warm_up(model: LoadedModel, sizes: Any) -> None:
        assert holder.current is not model  # not serving yet
        warmed.append((model.version, tuple(sizes)))
        real_warm_up(model, sizes)

    monkeypatch.setattr(LoadedModel, "warm_up", recording_warm_up)
    newer = f"{holder.version}-5"
    registry.register(newer, _variant_files(registry, newer, lambda card: None))
    registry.promote(newer)
    assert holder.refresh() is True and holder.version == newer
    assert warmed == [(newer, (1, 200))]
