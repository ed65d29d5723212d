"""The model registry: immutable ``<version>/`` folders and a pointer to the live one.

Layout of a registry folder (by default ``settings.registry_dir``, the repo's onnx_models/)::

    <version>/model.onnx    the serving graph (input ``features`` float32 [N, n_features])
    <version>/model.json    the model card: features, calibration, thresholds, metrics, ...
    <version>/model.txt     LightGBM text dump (exact tree contributions for reason codes)
    live.json               {"version": ..., "promoted_at": ...}, replaced atomically

Versions are ``YYYYMMDDTHHMMSSZ-<8 hex of the data fingerprint>``: they sort by time and
are never rewritten. A model is checked before it is registered and again before it is
promoted; a bad one is refused with :class:`ModelRejectedError` and the live pointer stays.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from features.definitions import FeatureEncoder
from onnx_models.card import CardError, ModelCard

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

MODEL_ONNX = "model.onnx"
MODEL_CARD = "model.json"
LIVE_POINTER = "live.json"
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}(-\d+)?$")
REQUIRED_CARD_KEYS = ("version", "created_at", "features", "feature_set", "calibration",
                      "thresholds", "score_scale", "risk_grades", "metrics", "parity",
                      "data_fingerprint", "dataset", "reference")
METRIC_NAMES = ("auc", "ks", "gini", "brier", "ece")


class RegistryError(RuntimeError):
    """Base class of registry errors."""


class VersionNotFoundError(RegistryError):
    def __init__(self, version: str, root: Path) -> None:
        super().__init__(f"Model version {version!r} is not in the registry {root}; "
                         "`creditrisk model list` shows the registered versions.")


class ModelRejectedError(RegistryError):
    """A model folder that must not be served; says which file and what is wrong."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        listed = "; ".join(problems)
        super().__init__(f"Model {where} refused: {listed}. The live model is unchanged; "
                         "retrain or register a valid model.")


def make_version(created_at: datetime, fingerprint: str) -> str:
    """Sortable, immutable version name from the creation time and the data fingerprint."""
    return f"{created_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{fingerprint[:8]}"


def validate_card(card: Mapping[str, object]) -> list[str]:
    """Schema problems of a model.json (empty when it is fine)."""
    problems = [f"model.json has no {key!r}" for key in REQUIRED_CARD_KEYS if key not in card]
    features = card.get("features")
    if not isinstance(features, list) or not features:
        problems.append("model.json 'features' must be a non-empty ordered list")
    else:
        for position, feature in enumerate(features):
            if not isinstance(feature, dict) or "name" not in feature or \
                    feature.get("type") not in ("numeric", "categorical"):
                problems.append(f"feature #{position} needs a name and a type "
                                "(numeric|categorical)")
            elif feature["type"] == "categorical" and not isinstance(
                    feature.get("categories"), list):
                problems.append(f"categorical feature {feature['name']!r} has no category list")
    metrics = _section(card, "metrics")
    for part in ("test", "cv"):
        measured = _section(metrics, part)
        missing = [name for name in METRIC_NAMES
                   if not isinstance(measured.get(name), (int, float))]
        if missing:
            problems.append(f"metrics.{part} lacks {missing}")
    thresholds = _section(card, "thresholds")
    if not {"approve_below", "decline_at_or_above"} <= set(thresholds):
        problems.append("thresholds need approve_below and decline_at_or_above")
    parity = card.get("parity", {})
    if not _section(card, "parity").get("passed", False):
        problems.append(f"the ONNX parity check did not pass ({parity})")
    return problems


def _section(document: Mapping[str, object], key: str) -> Mapping[str, object]:
    """A JSON object inside the document (empty when it is missing or not an object)."""
    value = document.get(key)
    return value if isinstance(value, dict) else {}


def validate_model_dir(path: Path, where: str | None = None) -> ModelCard:
    """The model card of a model folder, or :class:`ModelRejectedError` with every problem."""
    where = where or str(path)
    onnx_path, card_path = path / MODEL_ONNX, path / MODEL_CARD
    missing = [name for name in (MODEL_ONNX, MODEL_CARD) if not (path / name).is_file()]
    if missing:
        raise ModelRejectedError(where, [f"missing file {name}" for name in missing])
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelRejectedError(where, [f"model.json is not valid JSON ({error})"]) from None
    problems = validate_card(card) if isinstance(card, dict) else ["model.json is not an object"]
    if problems:
        raise ModelRejectedError(where, problems)
    try:
        parsed = ModelCard.parse(card)
    except CardError as error:
        raise ModelRejectedError(where, error.problems) from None
    problems += _onnx_problems(onnx_path, len(parsed.features))
    if problems:
        raise ModelRejectedError(where, problems)
    return parsed


def _onnx_problems(onnx_path: Path, n_features: int) -> list[str]:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(onnx_path),
                                               providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises several unrelated types
        return [f"model.onnx does not load in onnxruntime ({type(error).__name__}: "
                f"{str(error)[:200]})"]
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != "features":
        return [f"model.onnx must have one input named 'features', has "
                f"{[item.name for item in inputs]}"]
    width = inputs[0].shape[1] if len(inputs[0].shape) == 2 else None
    if width != n_features:
        return [f"model.onnx input width {width} differs from the {n_features} features in "
                "model.json"]
    return []


@dataclass
class ModelSummary:
    version: str
    created_at: str
    dataset: str
    test_auc: float | None
    test_ks: float | None
    live: bool


@dataclass
class RegisteredModel:
    """A registered version's files and card; ``session()`` / ``encoder()`` for serving."""

    version: str
    path: Path
    card: ModelCard

    @property
    def onnx_path(self) -> Path:
        return self.path / MODEL_ONNX

    def session(self) -> InferenceSession:
        """An onnxruntime session of ``model.onnx``."""
        import onnxruntime

        return onnxruntime.InferenceSession(str(self.onnx_path),
                                            providers=["CPUExecutionProvider"])

    def probability_of_default(self, matrix: np.ndarray,
                               session: InferenceSession | None = None) -> np.ndarray:
        """Calibrated PD of rows built by :meth:`encoder` (ONNX graph, then model.json
        calibration): the same computation the export parity check covers."""
        from onnx_models.policy import apply_calibration

        session = session or self.session()
        raw = session.run(["probabilities"],
                          {"features": np.asarray(matrix, dtype=np.float32)})[0][:, 1]
        return apply_calibration(raw, self.card.calibration)

    def encoder(self) -> FeatureEncoder:
        """The fitted :class:`features.definitions.FeatureEncoder` of this version."""
        return self.card.encoder()


class Registry:
    """A registry folder. Safe to read while another process registers or promotes."""

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            from config.settings import get_settings

            root = get_settings().registry_dir
        self.root = Path(root)

    # ---- writing -------------------------------------------------------------------

    def register(self, version: str, files: Mapping[str, bytes]) -> RegisteredModel:
        """Write a new version folder atomically (staged, checked, then renamed into place).

        ``files`` maps file names (``model.onnx``, ``model.json``, ``model.txt`` ...) to bytes.
        """
        if not VERSION_PATTERN.match(version):
            raise ValueError(f"version {version!r} does not look like YYYYMMDDTHHMMSSZ-xxxxxxxx")
        target = self.root / version
        if target.exists():
            raise RegistryError(f"Model version {version} already exists in {self.root}; "
                                "versions are immutable, train again for a new one.")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=self.root))
        try:
            for name, content in files.items():
                (staging / name).write_bytes(content)
            validate_model_dir(staging, where=f"version {version} (not registered)")
            staging.chmod(0o755)  # mkdtemp makes it private; the worker may be another user
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.load(version)

    def promote(self, version: str) -> RegisteredModel:
        """Make ``version`` live after checking it again; the pointer is replaced atomically."""
        path = self.root / version
        if not path.is_dir():
            raise VersionNotFoundError(version, self.root)
        card = validate_model_dir(path)
        if card.version != version:
            raise ModelRejectedError(str(path), [f"model.json names version "
                                                 f"{card.version!r}, folder is {version!r}"])
        pointer = {"version": version,
                   "promoted_at": datetime.now(UTC).isoformat(timespec="seconds")}
        _atomic_write(self.root / LIVE_POINTER, json.dumps(pointer, indent=2).encode())
        return RegisteredModel(version, path, card)

    # ---- reading -------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Registered versions, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in self.root.iterdir()
                      if entry.is_dir() and VERSION_PATTERN.match(entry.name))

    def live_version(self) -> str | None:
        """The version the pointer names, or None when nothing was promoted yet."""
        try:
            pointer = json.loads((self.root / LIVE_POINTER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as error:
            raise RegistryError(f"The live pointer {self.root / LIVE_POINTER} is unreadable "
                                f"({error}); run `creditrisk model promote VERSION`.") from None
        return pointer.get("version")

    def load(self, version: str) -> RegisteredModel:
        """A version's card and paths (the card is checked; the ONNX graph too)."""
        path = self.root / version
        if not path.is_dir():
            raise VersionNotFoundError(version, self.root)
        return RegisteredModel(version, path, validate_model_dir(path))

    def list(self) -> list[ModelSummary]:
        """One summary per version, oldest first; unreadable cards show as blanks."""
        live = self.live_version()
        summaries = []
        for version in self.versions():
            try:
                card = json.loads((self.root / version / MODEL_CARD).read_text("utf-8"))
            except (OSError, json.JSONDecodeError):
                card = {}
            test = card.get("metrics", {}).get("test", {})
            summaries.append(ModelSummary(version, card.get("created_at", "?"),
                                          card.get("dataset", {}).get("name", "?"),
                                          test.get("auc"), test.get("ks"), version == live))
        return summaries


def _atomic_write(path: Path, content: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
