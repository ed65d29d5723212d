"""Files that hold a secret: written whole, readable by their owner only (mode 0600)."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_private(path: Path, content: str | bytes) -> None:
    """Replace ``path`` with ``content``, created mode 0600 (never briefly readable by others,
    whatever mode an older file had)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)


def create_private_once(path: Path, content: str) -> str:
    """``path``'s content, creating it mode 0600 with ``content`` when it does not exist.

    Several threads or processes may do this at once (the nodes of a quorum are formatted
    side by side, each reading the admin password and the cluster id): the file appears
    whole or not at all, and the first writer's content is what every caller gets."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        write_private(draft, content)
        try:
            os.link(draft, path)  # atomic; fails when another writer came first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
