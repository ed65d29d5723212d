"""The README stays true to the code it documents."""

from __future__ import annotations

from config.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    for name in Settings.model_fields:
        assert f"`CREDITRISK_{name.upper()}`" in README, f"CREDITRISK_{name.upper()} undocumented"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
