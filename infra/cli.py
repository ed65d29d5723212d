"""``creditrisk``: the one command line of the product.

Each package contributes its own sub-commands; this module only assembles them. Heavy
libraries are imported inside the commands so ``creditrisk --help`` stays instant.
"""

from __future__ import annotations

import typer

from features.cli import features_app
from infra.bench import bench
from infra.demo import demo
from infra.stack_cli import stack_app
from stream.cli import console_command, worker_command
from stream.replay_cli import decisions_app, produce_command
from training.data_cli import data_app
from training.train_cli import model_app, train_command

app = typer.Typer(
    name="creditrisk",
    help="Real-time credit-risk scoring: train models, run the stack, score loan applications.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(stack_app, name="stack")
app.add_typer(data_app, name="data")
app.command(name="train")(train_command)
app.add_typer(model_app, name="model")
app.command(name="demo")(demo)
app.add_typer(features_app, name="features")
app.command(name="bench")(bench)
app.command(name="worker")(worker_command)
app.command(name="console")(console_command)
app.command(name="produce")(produce_command)
app.add_typer(decisions_app, name="decisions")


def _not_available(name: str, issue: str) -> None:
    typer.echo(f"`creditrisk {name}` is not available yet ({issue}).", err=True)
    raise typer.Exit(code=2)


def _register_placeholders() -> None:
    """Commands of capabilities still being built say so instead of failing oddly."""
    placeholders = {
        "data": ("Generate Lending Club-shaped loan data and the bureau table.", "offline training"),
        "train": ("Train, evaluate and register a model.", "offline training"),
        "model": ("List, show and promote registered models.", "offline training"),
        "features": ("Materialize bureau features into Redis.", "feature store"),
        "worker": ("Run the Faust scoring worker.", "stream worker"),
        "produce": ("Replay loan applications into Kafka.", "stream worker"),
        "decisions": ("Follow the decisions topic.", "stream worker"),
        "console": ("Run the relationship-manager console.", "console"),
        "bench": ("Run the benchmark suite.", "benchmarks"),
        "demo": ("Run the whole flow from nothing.", "stream worker"),
    }
    registered = {info.name for info in app.registered_commands} | {
        info.name for info in app.registered_groups
    }
    for name, (help_text, capability) in placeholders.items():
        if name in registered:
            continue

        app.command(name=name, help=f"{help_text} [not available yet]")(
            _placeholder(name, capability)
        )


def _placeholder(name: str, capability: str):  # noqa: ANN202 - a typer callback
    def command() -> None:
        _not_available(name, f"arrives with the {capability} capability")

    return command


_register_placeholders()

if __name__ == "__main__":
    app()
