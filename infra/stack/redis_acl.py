"""Who may do what in Redis: the ACL users of the local stack (and of docker-compose).

One user per role (:data:`config.settings.RedisRole`), each with the least it needs:

- ``admin``: everything (the stack itself, clean-up by tests and benchmarks);
- ``materializer``: writes the feature views (the ``WRITE_IF_NEWER`` script);
- ``worker``: reads every feature view, writes only the velocity view (the
  ``READ_CUSTOMER`` script) and the decision records, and may ``WAIT`` for a replica to
  hold them (the decision store does on a Redis Cluster);
- ``ledger`` and ``console``: read the decision records;
- ``default`` (a client that does not log in): off, so it is refused (NOAUTH).

Key patterns start with ``*`` because every key starts with ``CREDITRISK_KEY_PREFIX``
(tests give each test its own). Entity ids cannot contain ':'
(:func:`features.views.checked_entity_id`), so the velocity pattern matches no other view.
Commands run by a Lua script are checked against the same rules, so a user's command list
holds what its scripts call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from config.settings import RedisRole
from features.views import VELOCITY_VIEW, view_key_prefix
from stream.decisions import decision_key

ROLES: tuple[RedisRole, ...] = ("admin", "materializer", "worker", "ledger", "console")

FEATURE_VIEWS = "*fs:*"  # every view: features.views.view_key_prefix is {prefix}fs:{schema}:{view}:
VELOCITY = view_key_prefix(VELOCITY_VIEW, "*", "*") + "*"
DECISIONS = decision_key("*", "*")
RECENT_DECISIONS = "*decisions:recent"

# Every client pings (redis-py's health check and the services' probes). A Redis Cluster
# client also asks a node for the slot map (CLUSTER SLOTS, or SHARDS/NODES), the command
# table to find a command's keys (COMMAND, COMMAND GETKEYS), follows a slot in migration
# (ASKING) and may read from replicas (READONLY/READWRITE); a single Redis ignores these.
_CONNECTION = ("+ping", "+cluster|slots", "+cluster|shards", "+cluster|nodes", "+cluster|info",
               "+cluster|myid", "+command", "+asking", "+readonly", "+readwrite")
_SCRIPTS = ("+script|load", "+evalsha")

# What each role may do, after its user is reset to nothing: keys (~ read and write,
# %R~ read only) and commands.
PERMISSIONS: dict[RedisRole, tuple[str, ...]] = {
    "admin": ("~*", "&*", "+@all"),
    "materializer": (f"~{FEATURE_VIEWS}", *_CONNECTION, *_SCRIPTS,
                     "+hget", "+del", "+hset", "+expire"),
    "worker": (f"%R~{FEATURE_VIEWS}", f"~{VELOCITY}", f"~{DECISIONS}", f"~{RECENT_DECISIONS}",
               *_CONNECTION, *_SCRIPTS,
               "+hgetall", "+zadd", "+zremrangebyscore", "+zcount", "+expire",  # READ_CUSTOMER
               "+mget", "+set", "+zremrangebyrank",  # decision records
               "+wait"),  # on a Redis Cluster, a batch's records reach a replica first
    "ledger": (f"%R~{DECISIONS}", *_CONNECTION, "+mget"),
    "console": (f"%R~{DECISIONS}", f"%R~{RECENT_DECISIONS}", *_CONNECTION,
                "+get", "+mget", "+zrevrange"),
}

# A client that does not log in is refused; nobody can log in as ``default`` (off, no
# password). Its permissions stay whole because Redis replays the append-only file as
# ``default``: with ``-@all`` the transactions there (every write-if-newer script's effects)
# are refused at load and their keys silently lost on a restart (redis/redis#14541, fixed in
# later Redis releases); the fault suite's Redis restart proves the data comes back.
DEFAULT_USER: tuple[str, ...] = ("default", "off", "resetpass", "resetchannels", "~*", "&*", "+@all")


def password_hash(password: str) -> str:
    """The form Redis keeps a password in (``#<sha256>``): the ACL file holds no password."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_users(passwords: Mapping[RedisRole, str]) -> list[tuple[str, ...]]:
    """The arguments of ``ACL SETUSER`` for every user: the default user first (off), then
    one user per role with its password (as a hash) and its permissions."""
    missing = [role for role in ROLES if not passwords.get(role)]
    if missing:
        raise ValueError(f"no Redis password for the role(s) {', '.join(missing)}")
    users: list[tuple[str, ...]] = [DEFAULT_USER]
    for role in ROLES:
        users.append((role, "reset", "on", password_hash(passwords[role]), "resetchannels",
                      *PERMISSIONS[role]))
    return users


def acl_file(passwords: Mapping[RedisRole, str]) -> str:
    """The users as an ACL file (``aclfile`` in redis.conf; ``ACL LOAD`` re-reads it)."""
    return "".join("user " + " ".join(user) + "\n" for user in acl_users(passwords))
