"""Challenger roles: up to two registered versions scored in the shadow of the live model
(the champion), each on a share of the applications.

The roles live in the registry folder beside the live pointer, in ``challengers.json``
(``{"challengers": [{"version": …, "percent": …, "since": …}]}``), written atomically, so
the worker reads them the way it reads the live pointer. Which applications a challenger
shadows depends on the application id alone (:func:`shadowed`): a re-delivered application
is shadowed the same way, and two challengers at the same share shadow the same
applications (their decisions can be compared with each other, too).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from onnx_models.registry import (
    Registry,
    RegistryError,
    VersionNotFoundError,
    _atomic_write,
    validate_model_dir,
)

CHALLENGERS_FILE = "challengers.json"
MAX_CHALLENGERS = 2
_BUCKETS = 10_000  # shares are honoured to 0.01 %


@dataclass(frozen=True)
class Challenger:
    version: str
    percent: float  # 0-100: the share of applications it shadows
    since: str = ""  # ISO-8601 UTC: when it was set


def share_of(application_id: str) -> float:
    """Where an application falls in [0, 100): stable for an id, uniform over ids."""
    digest = hashlib.sha256(application_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS * 100 / _BUCKETS


def shadowed(application_id: str, percent: float) -> bool:
    """True when a challenger at ``percent`` % scores this application."""
    return share_of(application_id) < percent


def challengers(registry: Registry) -> list[Challenger]:
    """The challengers the registry names, in the order they were set."""
    try:
        document = json.loads((registry.root / CHALLENGERS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as error:
        raise RegistryError(f"{registry.root / CHALLENGERS_FILE} is unreadable ({error}); "
                            "set the challengers again with `creditrisk model challenger`") from None
    return [Challenger(str(entry["version"]), float(entry["percent"]), str(entry.get("since", "")))
            for entry in document.get("challengers", [])]


def set_challenger(registry: Registry, version: str, percent: float) -> Challenger:
    """Make ``version`` a challenger at ``percent`` % (or change its share). Refused for the
    champion, an unknown or invalid version, a share outside 0-100, or a third challenger.
    (Whether the events carry the challenger's event contract is checked by the caller,
    which knows the champion's.)"""
    if not 0 <= percent <= 100:
        raise RegistryError(f"--percent {percent:g}: a share is between 0 and 100")
    if version == registry.live_version():
        raise RegistryError(f"{version} is the champion (the live model); a challenger is "
                            "another version")
    path = registry.root / version
    if not path.is_dir():
        raise VersionNotFoundError(version, registry.root)
    validate_model_dir(path)
    current = [c for c in challengers(registry) if c.version != version]
    if len(current) >= MAX_CHALLENGERS:
        raise RegistryError(f"at most {MAX_CHALLENGERS} challengers: clear one of "
                            f"{', '.join(c.version for c in current)} first")
    chosen = Challenger(version, percent, datetime.now(UTC).isoformat(timespec="seconds"))
    _write(registry.root, [*current, chosen])
    return chosen


def clear_challenger(registry: Registry, version: str) -> Challenger:
    """Stop shadowing ``version``; the challenger it was."""
    current = challengers(registry)
    found = [c for c in current if c.version == version]
    if not found:
        raise RegistryError(f"{version} is not a challenger (challengers: "
                            f"{', '.join(c.version for c in current) or 'none'})")
    _write(registry.root, [c for c in current if c.version != version])
    return found[0]


def _write(root: Path, chosen: list[Challenger]) -> None:
    document = {"challengers": [{"version": c.version, "percent": c.percent, "since": c.since}
                                for c in chosen]}
    _atomic_write(root / CHALLENGERS_FILE, json.dumps(document, indent=2).encode())
