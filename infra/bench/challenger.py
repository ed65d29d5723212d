"""A scratch registry for the throughput suite's runs with a challenger.

The live model of the settings' registry is copied twice into a temporary folder, under two
new version names: one live there (the champion: a version of its own, so a run never reuses
the decisions another run stored for the original version), the other set as a challenger
(the same model: it costs what the champion costs to encode, score and explain). The user's
registry is never touched.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from config.settings import Settings
from onnx_models.challengers import set_challenger
from onnx_models.registry import MODEL_CARD, Registry

CHAMPION_SUFFIX, CHALLENGER_SUFFIX = "c0ffee01", "c0ffee02"


@contextmanager
def registry_with_challenger(settings: Settings, percent: float = 100.0,
                             ) -> Iterator[tuple[Path, str]]:
    """(the scratch registry folder, the challenger's version), removed afterwards."""
    source = Registry(settings.registry_dir)
    live = source.live_version()
    if not live:
        raise RuntimeError(f"no live model in {settings.registry_dir}: run `creditrisk train`")
    folder = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        registry = Registry(folder)
        created = live.split("-", 1)[0]
        champion = _copy(source.root / live, registry, f"{created}-{CHAMPION_SUFFIX}")
        registry.promote(champion)
        challenger = _copy(source.root / live, registry, f"{created}-{CHALLENGER_SUFFIX}")
        set_challenger(registry, challenger, percent)
        yield folder, challenger
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy(version_folder: Path, registry: Registry, version: str) -> str:
    files = {path.name: path.read_bytes() for path in version_folder.iterdir() if path.is_file()}
    card = json.loads(files[MODEL_CARD])
    card["version"] = version
    files[MODEL_CARD] = json.dumps(card).encode()
    registry.register(version, files)
    return version
