"""The one command line: every DESIGN.md subcommand is there and explains itself."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

DESIGN_COMMANDS = ["stack", "data", "train", "model", "features", "worker", "produce",
                   "decisions", "console", "bench", "demo"]


def test_top_level_help_lists_every_design_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in DESIGN_COMMANDS:
        assert f" {name} " in result.output, f"`creditrisk {name}` missing from --help"


@pytest.mark.parametrize("name", DESIGN_COMMANDS)
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("sub", ["up", "down", "status", "topics"])
def test_stack_subcommands_have_help(sub: str) -> None:
    result = CliRunner().invoke(app, ["stack", sub, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
