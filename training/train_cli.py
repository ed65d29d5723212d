"""``creditrisk train`` and ``creditrisk model ...`` (being built)."""

import typer

model_app = typer.Typer(help="List, show and promote registered models.", no_args_is_help=True)


def train_command() -> None:
    """Train, evaluate and register a model."""
    raise typer.Exit(code=2)
