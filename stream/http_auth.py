"""Credentials of the HTTP surfaces: the worker's ``POST /score`` token and the console login.

Two rules, shared by the worker and the console:

- a configured secret is checked in constant time, and a refusal names what was wrong
  (``missing``, ``malformed``, ``wrong``) but never quotes what was presented;
- a server that binds an address other than loopback refuses to start without a credential
  (:func:`require_credential_beyond_loopback`): on loopback only this machine's users reach
  it, anywhere else the network does.

``/health`` and ``/metrics`` stay open (probes and Prometheus; they carry no secrets and no
personal data).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Literal

from pydantic import SecretStr

# Why a request was refused: the label values of creditrisk_score_requests_unauthorized_total.
RefusalReason = Literal["missing", "malformed", "wrong"]
REFUSAL_REASONS: tuple[RefusalReason, ...] = ("missing", "malformed", "wrong")

BEARER = "bearer"


class CredentialRequired(ValueError):
    """A server would be reachable beyond loopback with no credential configured."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the 127.0.0.0/8 and ::1 addresses; any other name, a
    wildcard (``0.0.0.0``, ``::``) or an empty host is reachable from elsewhere."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_credential_beyond_loopback(host: str, credential: SecretStr | None, setting: str,
                                       server: str) -> None:
    """Raise :class:`CredentialRequired` when ``server`` would bind ``host`` (not loopback)
    without the credential ``setting`` names."""
    if credential is None and not is_loopback(host):
        raise CredentialRequired(
            f"the {server} binds {host}, which is reachable beyond this machine, and "
            f"{setting} is not set. Set {setting} (a secret of your own, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) or bind 127.0.0.1.")


def secrets_match(presented: str, expected: SecretStr) -> bool:
    """Constant-time comparison (bytes: ``compare_digest`` refuses non-ASCII text)."""
    return hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())


def bearer_refusal(authorization: str | None, token: SecretStr) -> RefusalReason | None:
    """Why an ``Authorization`` header does not carry ``token``, or None when it does."""
    if not authorization or not authorization.strip():
        return "missing"
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != BEARER or not presented.strip():
        return "malformed"
    return None if secrets_match(presented.strip(), token) else "wrong"


def bearer_header(token: SecretStr | None) -> dict[str, str]:
    """The header a client of ``POST /score`` sends: none when no token is configured."""
    return {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}


def refusal_detail(reason: RefusalReason) -> str:
    """What the caller is told: what was wrong and what to send, never what was sent."""
    what = {"missing": "no Authorization header",
            "malformed": "an Authorization header that is not `Bearer <token>`",
            "wrong": "a token that is not the worker's"}[reason]
    return (f"POST /score needs `Authorization: Bearer <token>` with the token the worker was "
            f"given in CREDITRISK_API_TOKEN; this request had {what}.")
