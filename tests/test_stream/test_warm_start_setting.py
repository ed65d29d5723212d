"""``CREDITRISK_WARM_START`` is a setting like every other (no server): on by default, off
with the variable, and the worker's choice reads only the settings it is given."""

from __future__ import annotations

import pytest

from config.settings import Settings


def test_a_worker_warms_up_unless_told_not_to() -> None:
    assert Settings().warm_start is True
    assert not Settings(warm_start=False).warm_start


@pytest.mark.parametrize("text", ["false", "0", "off", "no", "FALSE"])
def test_the_variable_turns_it_off(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_WARM_START", text)
    assert not Settings().warm_start


def test_the_settings_given_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    monkeypatch.setenv("CREDITRISK_WARM_START", "false")
    assert settings.warm_start  # one source: what the process was configured with


def test_a_value_that_is_not_a_yes_or_no_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_WARM_START", "sometimes")
    with pytest.raises(ValueError, match="warm_start"):
        Settings()
