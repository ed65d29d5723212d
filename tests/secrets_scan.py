"""Look for credentials where they must never be: logs, metrics, messages."""

from __future__ import annotations

from pathlib import Path


def files_with_secrets(folders: list[Path], secrets: list[str]) -> list[str]:
    """``file: secret #n`` for every log, output or JSON file under ``folders`` that holds one
    of ``secrets`` (the secret files themselves and the servers' own configs are not logs)."""
    hits = []
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in (".log", ".txt", ".json", ".out"):
                text = path.read_text(errors="replace")
                hits += [f"{path}: secret #{n}" for n, secret in enumerate(secrets) if secret in text]
    return hits
