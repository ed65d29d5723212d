"""The Redis ACL users as rendered (no server): who exists, what each may touch, no password
on disk, and which credentials a process picks."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Settings
from infra.stack.redis_acl import PERMISSIONS, ROLES, acl_file, acl_users, password_hash
from infra.stack.services import Redis

PASSWORDS = {role: f"pw-of-{role}-0123456789" for role in ROLES}


def _users() -> dict[str, tuple[str, ...]]:
    return {user[0]: user[1:] for user in acl_users(PASSWORDS)}


def test_the_default_user_is_off_and_cannot_log_in() -> None:
    default = _users()["default"]
    assert "off" in default and "resetpass" in default
    assert "nopass" not in default and not any(rule.startswith(">") for rule in default)
    assert acl_users(PASSWORDS)[0][0] == "default"


def test_the_acl_file_holds_password_hashes_only() -> None:
    text = acl_file(PASSWORDS)
    for role, password in PASSWORDS.items():
        assert password not in text
        assert f"user {role} reset on {password_hash(password)} " in text


def test_a_role_without_password_is_refused() -> None:
    with pytest.raises(ValueError, match="worker"):
        acl_users({**PASSWORDS, "worker": ""})


def _writable(role: str, key: str) -> bool:
    return any(rule.startswith("~") and fnmatch.fnmatchcase(key, rule[1:])
               for rule in PERMISSIONS[role])  # type: ignore[index]


def _readable(role: str, key: str) -> bool:
    return _writable(role, key) or any(
        rule.startswith("%R~") and fnmatch.fnmatchcase(key, rule[3:])
        for rule in PERMISSIONS[role])  # type: ignore[index]


@pytest.mark.parametrize("prefix", ["", "t-some-test-1a2b:", "tenant:x:"])
def test_key_patterns_give_each_role_its_keys_whatever_the_prefix(prefix: str) -> None:
    bureau, velocity = f"{prefix}fs:v1:bureau:c1", f"{prefix}fs:v1:velocity:c1"
    decision, recent = f"{prefix}decision:app-1", f"{prefix}decisions:recent"
    assert _writable("materializer", bureau) and not _writable("materializer", decision)
    assert _readable("worker", bureau) and not _writable("worker", bureau)
    assert all(_writable("worker", key) for key in (velocity, decision, recent))
    assert _readable("console", decision) and _readable("console", recent)
    assert not any(_writable("console", key) for key in (bureau, velocity, decision, recent))
    assert _readable("ledger", decision) and not _writable("ledger", decision)
    assert not _readable("ledger", bureau) and not _readable("console", bureau)


def test_only_the_worker_may_wait_for_a_replica_to_hold_its_records() -> None:
    """On a Redis Cluster the decision store WAITs after a batch's writes; a refused WAIT
    costs the records' durability through a primary failover."""
    assert "+wait" in PERMISSIONS["worker"]
    assert not any("+wait" in PERMISSIONS[role] for role in ("materializer", "ledger", "console"))


def test_the_stack_writes_the_acl_file_private_and_clients_pick_their_role(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path / "stack", redis_url="redis://127.0.0.1:6390/0")
    assert settings.redis_credentials("worker") == (None, None)  # no stack Redis yet
    redis = Redis(settings)
    redis.write_acl_file()
    assert redis.acl_path.stat().st_mode & 0o777 == 0o600
    secret = settings.stack_secret_path("redis-worker")
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text() not in redis.acl_path.read_text()

    username, password = settings.redis_credentials("worker")
    assert username == "worker" and password is not None
    assert password.get_secret_value() == secret.read_text()
    # The same stack folder, another Redis (a test's own): no stack credentials.
    other = settings.model_copy(update={"redis_url": "redis://127.0.0.1:7777/0"})
    assert other.redis_credentials("worker") == (None, None)
    # Explicit settings win (a deployment gives each process its own).
    explicit = settings.model_copy(update={"redis_username": "svc",
                                           "redis_password": SecretStr("given")})
    assert explicit.redis_credentials("console") == ("svc", SecretStr("given"))
