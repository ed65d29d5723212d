"""Files that hold a secret: written whole, readable by their owner only (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, content: str | bytes) -> None:
    """Replace ``path`` with ``content``, created mode 0600 (never briefly readable by others,
    whatever mode an older file had)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)
