"""Clients of the shared local stack for tests (a test's own servers: infra.stack.private)."""

from __future__ import annotations

from typing import Any

import redis

from config.settings import RedisRole, Settings
from features.store import redis_login


def redis_as(settings: Settings, role: RedisRole = "admin", **options: Any) -> redis.Redis:
    """A plain client of the stack's Redis logged in as ``role`` (default: the admin, who may
    do anything), e.g. with ``decode_responses=True``."""
    return redis.Redis.from_url(settings.redis_url, **redis_login(settings, role), **options)
