"""Fixtures for the feature store: a private redis-server a test may stop and restart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.stack.private import PrivateRedis


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """Redis with a default-user password and an ACL user ``scorer``."""
    server = PrivateRedis(tmp_path, "--requirepass", "s3cret-default", users=False)
    server.start()
    admin = redis.Redis(port=server.port, password="s3cret-default")
    admin.acl_setuser("scorer", enabled=True, passwords=["+scorer-pw"], keys=["*"],
                      commands=["+@all"])
    admin.close()
    yield server
    server.kill()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[PrivateRedis, Path]]:
    """Redis speaking only TLS, with a certificate from a throw-away CA; yields (server, CA file)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=creditrisk-test-ca", cwd=tmp_path)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=tmp_path)
    (tmp_path / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=tmp_path)
    server = PrivateRedis(tmp_path, "--tls-cert-file", str(tmp_path / "server.crt"),
                          "--tls-key-file", str(tmp_path / "server.key"),
                          "--tls-ca-cert-file", str(tmp_path / "ca.crt"), "--tls-auth-clients", "no",
                          users=False)
    server.extra_args = ("--port", "0", "--tls-port", str(server.port), *server.extra_args)
    server.start()
    yield server, tmp_path / "ca.crt"
    server.kill()
