"""The credential rules of the HTTP surfaces, without servers: the bearer-token check of
POST /score and the refusal to listen beyond loopback without a credential."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from config.settings import Settings, get_settings
from stream.http_auth import (
    CredentialRequired,
    bearer_header,
    bearer_refusal,
    is_loopback,
    refusal_detail,
    require_credential_beyond_loopback,
)

TOKEN = SecretStr("s3cret-token-for-the-tests-0123456789")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.20", "worker.bank.internal",
                                  "localhost.example.com", "128.0.0.1"])
def test_anything_else_is_reachable_beyond_this_machine(host: str) -> None:
    assert not is_loopback(host)


def test_no_credential_beyond_loopback_is_refused_naming_the_setting() -> None:
    with pytest.raises(CredentialRequired, match="CREDITRISK_API_TOKEN is not set") as refused:
        require_credential_beyond_loopback("0.0.0.0", None, "CREDITRISK_API_TOKEN", "worker")
    assert "0.0.0.0" in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_a_credential_or_loopback_is_enough_to_start() -> None:
    require_credential_beyond_loopback("0.0.0.0", TOKEN, "CREDITRISK_API_TOKEN", "worker")
    require_credential_beyond_loopback("127.0.0.1", None, "CREDITRISK_API_TOKEN", "worker")


@pytest.mark.parametrize(("header", "reason"), [
    (None, "missing"),
    ("", "missing"),
    ("   ", "missing"),
    ("Bearer", "malformed"),
    ("Bearer   ", "malformed"),
    (f"Basic {TOKEN.get_secret_value()}", "malformed"),
    (TOKEN.get_secret_value(), "malformed"),
    ("Bearer not-the-token", "wrong"),
    (f"Bearer {TOKEN.get_secret_value()}x", "wrong"),
    ("Bearer tökén-ünicode", "wrong"),  # non-ASCII compared as bytes, not a TypeError
    (f"Bearer {TOKEN.get_secret_value()}", None),
    (f"bearer {TOKEN.get_secret_value()}", None),  # the scheme is case-insensitive (RFC 7235)
    (f"  Bearer {TOKEN.get_secret_value()}  ", None),
])
def test_bearer_check(header: str | None, reason: str | None) -> None:
    assert bearer_refusal(header, TOKEN) == reason


def test_the_header_clients_send_passes_the_check() -> None:
    assert bearer_refusal(bearer_header(TOKEN)["Authorization"], TOKEN) is None
    assert bearer_header(None) == {}


@given(st.text(min_size=1, max_size=80))
def test_a_refusal_never_quotes_what_was_presented(presented: str) -> None:
    reason = bearer_refusal(f"Bearer {presented}", TOKEN)
    if reason is not None and len(presented.strip()) > 3:
        assert presented.strip() not in refusal_detail(reason)


def test_short_secrets_are_refused_without_being_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_API_TOKEN", "tooshort-1234")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "tooshort-1234" not in str(refused.value)
    assert "CREDITRISK_API_TOKEN must be at least 16 characters" in str(refused.value)


def test_settings_never_print_the_secrets() -> None:
    settings = Settings(api_token=TOKEN,
                        console_postgres_password=SecretStr("console-password-1"))
    assert TOKEN.get_secret_value() not in repr(settings) + str(settings.model_dump())
    assert "console-password-1" not in repr(settings) + str(settings.model_dump())


def test_the_worker_app_refuses_to_bind_beyond_loopback_without_a_token(tmp_path) -> None:
    from stream.app import create_app

    with pytest.raises(CredentialRequired, match="CREDITRISK_API_TOKEN"):
        create_app(Settings(worker_host="0.0.0.0", stack_dir=tmp_path))


@pytest.mark.parametrize(("command", "host_setting", "credential_setting"), [
    ("worker", "CREDITRISK_WORKER_HOST", "CREDITRISK_API_TOKEN"),
])
def test_the_commands_refuse_to_start_beyond_loopback_without_a_credential(
        monkeypatch: pytest.MonkeyPatch, command: str, host_setting: str,
        credential_setting: str) -> None:
    from cli.main import app

    monkeypatch.setenv(host_setting, "0.0.0.0")
    monkeypatch.delenv(credential_setting, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, [command])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "Refusing to start" in result.output and credential_setting in result.output
