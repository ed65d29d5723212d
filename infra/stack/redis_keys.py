"""Clearing a key prefix from the stack's Redis (benchmark and fault-suite runs clean up after
themselves this way), a single Redis or a Redis Cluster: a cluster client scans every primary
and splits the UNLINK by slot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from features.store import SyncRedis


def delete_keys(client: SyncRedis, prefix: str, batch: int = 5_000) -> None:
    """Unlink every key that starts with ``prefix``, ``batch`` keys a call."""
    for keys in _batches(client.scan_iter(match=f"{prefix}*", count=batch), batch):
        client.unlink(*keys)


def _batches(keys: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
