"""``creditrisk``: the one command line of the product.

Each package contributes its own sub-commands; this module only assembles them. Heavy
libraries are imported inside the commands so ``creditrisk --help`` stays instant.
"""

from __future__ import annotations

import typer

from cli.demo import demo
from cli.model_compare import compare_command
from cli.model_roles import (
    challenger_command,
    history_command,
    promote_command,
    rollback_command,
)
from cli.notices import notices_app
from console.cli import console_command
from infra.bench.suites import bench
from infra.stack.cli import stack_app
from ledger.cli import ledger_app, monitor_command
from replay.cli import decisions_app, produce_command
from review.cli import users_app
from stream.cli import worker_command
from training.data_cli import data_app
from training.materialize_cli import features_app
from training.train_cli import model_app, train_command

app = typer.Typer(
    name="creditrisk",
    help="Real-time credit-risk scoring: train models, run the stack, score loan applications.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback's locals may hold settings' secrets
)
app.add_typer(stack_app, name="stack")
app.add_typer(data_app, name="data")
app.command(name="train")(train_command)
model_app.command("challenger")(challenger_command)
model_app.command("promote")(promote_command)
model_app.command("rollback")(rollback_command)
model_app.command("history")(history_command)
model_app.command("compare")(compare_command)
app.add_typer(model_app, name="model")
app.command(name="demo")(demo)
app.add_typer(features_app, name="features")
app.command(name="bench")(bench)
app.command(name="worker")(worker_command)
app.command(name="console")(console_command)
app.command(name="produce")(produce_command)
app.add_typer(decisions_app, name="decisions")
app.add_typer(ledger_app, name="ledger")
app.command(name="monitor")(monitor_command)
app.add_typer(users_app, name="users")
app.add_typer(notices_app, name="notices")


if __name__ == "__main__":
    app()
