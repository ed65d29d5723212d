"""Console users and their roles, and the throttled sign-in.

Roles, each including the one before: ``viewer`` reads decisions; ``reviewer`` works the
review queue and asks for overrides; ``approver`` also approves or rejects someone else's
override; ``admin`` also manages users (``creditrisk users``).

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's
recommendation); neither a password nor its hash is ever logged or put in a metric. Sign-in
is throttled per user name: after ``login_max_failures`` failures within
``login_lockout_minutes`` further attempts are refused, without checking the password,
until the window has passed. Every attempt on a known user name is an append-only
``login_attempts`` row; an unknown name is not stored (it may be a password typed in the
wrong field) and is checked against a dummy hash so it takes as long as a known one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["viewer", "reviewer", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "reviewer", "approver", "admin")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 12

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class Cursor(Protocol):
    def fetchone(self) -> tuple[object, ...] | None: ...
    def fetchall(self) -> list[tuple[object, ...]]: ...


class Connection(Protocol):
    def execute(self, query: str, params: tuple[object, ...] | None = ...) -> Cursor: ...


class UserError(ValueError):
    """A user could not be added or changed; the message says why."""


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: Role
    disabled: bool = False

    def may(self, needed: Role) -> bool:
        """True when this user's role includes ``needed``."""
        return not self.disabled and ROLES.index(self.role) >= ROLES.index(needed)


SignInOutcome = Literal["signed_in", "wrong", "throttled", "disabled"]


@dataclass(frozen=True)
class SignIn:
    outcome: SignInOutcome
    user: User | None = None
    retry_after_s: float = 0.0   # when throttled: how long until the window has passed


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def add_user(connection: Connection, username: str, role: str, password: str,
             created_by: str, display_name: str | None = None) -> User:
    if not USERNAME.match(username):
        raise UserError(f"user names are 2-64 characters of a-z, 0-9, '.', '_' and '-', starting "
                        f"with a letter or digit: {username!r} is not one")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if connection.execute("SELECT 1 FROM console_users WHERE username = %s",
                          (username,)).fetchone() is not None:
        raise UserError(f"user {username} exists already")
    connection.execute(
        "INSERT INTO console_users (username, display_name, role, password_hash, created_by) "
        "VALUES (%s, %s, %s, %s, %s)",
        (username, display_name or username, role, hash_password(password), created_by))
    return User(username, display_name or username, _role(role))


def disable_user(connection: Connection, username: str) -> None:
    row = connection.execute("UPDATE console_users SET disabled_at = now() WHERE username = %s "
                             "AND disabled_at IS NULL RETURNING 1", (username,)).fetchone()
    if row is None:
        known = connection.execute("SELECT 1 FROM console_users WHERE username = %s",
                                   (username,)).fetchone()
        raise UserError(f"user {username} is already disabled" if known
                        else f"no user {username}")


def list_users(connection: Connection) -> list[tuple[User, datetime]]:
    """Every user (disabled ones too) with when it was created, by name."""
    rows = connection.execute("SELECT username, display_name, role, disabled_at IS NOT NULL, "
                              "created_at FROM console_users ORDER BY username").fetchall()
    return [(User(str(r[0]), str(r[1]), _role(str(r[2])), bool(r[3])), as_datetime(r[4]))
            for r in rows]


def find_user(connection: Connection, username: str) -> User | None:
    row = connection.execute("SELECT username, display_name, role, disabled_at IS NOT NULL "
                             "FROM console_users WHERE username = %s", (username,)).fetchone()
    return None if row is None else User(str(row[0]), str(row[1]), _role(str(row[2])),
                                         bool(row[3]))


def sign_in(connection: Connection, username: str, password: str, max_failures: int,
            window: timedelta) -> SignIn:
    """Check a sign-in, throttled, and record the attempt (the caller commits)."""
    row = connection.execute(
        "SELECT u.username, u.display_name, u.role, u.disabled_at IS NOT NULL, u.password_hash, "
        "  (SELECT count(*) FROM login_attempts a WHERE a.username = u.username "
        "     AND NOT a.succeeded AND a.attempted_at > now() - %s "
        "     AND a.attempted_at > coalesce((SELECT max(s.attempted_at) FROM login_attempts s "
        "                                    WHERE s.username = u.username AND s.succeeded), "
        "                                   '-infinity')), "
        "  (SELECT extract(epoch FROM min(a.attempted_at) + %s - now()) FROM ("
        "     SELECT attempted_at FROM login_attempts WHERE username = u.username "
        "       AND NOT succeeded AND attempted_at > now() - %s "
        "     ORDER BY attempted_at DESC LIMIT %s) a) "
        "FROM console_users u WHERE u.username = %s",
        (window, window, window, max_failures, username)).fetchone()
    if row is None:
        _verify(_DUMMY_HASH, password)  # as long as a known name takes
        return SignIn("wrong")
    user = User(str(row[0]), str(row[1]), _role(str(row[2])), bool(row[3]))
    failures = int(str(row[5]))
    if failures >= max_failures:
        return SignIn("throttled", retry_after_s=max(float(str(row[6] or 0)), 1.0))
    ok = _verify(str(row[4]), password)
    connection.execute("INSERT INTO login_attempts (username, succeeded) VALUES (%s, %s)",
                       (user.username, ok and not user.disabled))
    if not ok:
        return SignIn("wrong")
    if user.disabled:
        return SignIn("disabled")
    return SignIn("signed_in", user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _role(text: str) -> Role:
    for role in ROLES:
        if role == text:
            return role
    raise UserError(f"unknown role {text!r}")


def as_datetime(value: object) -> datetime:
    """A timestamp column's value, checked."""
    if not isinstance(value, datetime):
        raise TypeError("expected a timestamp")
    return value
