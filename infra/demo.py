"""``creditrisk demo``: the whole flow from nothing, as far as the product reaches today.

Each step prints what it did; a step that fails stops the demo with its own message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import typer

from features.settings import Settings, get_settings
from infra import stack


def _step(title: str, action: Callable[[Settings], None], settings: Settings) -> None:
    typer.secho(f"\n== {title}", bold=True)
    started = time.monotonic()
    action(settings)
    typer.echo(f"   ({time.monotonic() - started:.1f}s)")


def _stack_up(settings: Settings) -> None:
    stack.up(settings, echo=lambda line: typer.echo(f"   {line}"))


def _show_where_to_look(settings: Settings) -> None:
    typer.echo(f"   Kafka bootstrap:  {settings.kafka_bootstrap} "
               f"(topics {settings.topic_applications}, {settings.topic_decisions}, "
               f"{settings.topic_dead_letters})")
    typer.echo(f"   Redis:            {settings.redis_url}")
    typer.echo(f"   Prometheus:       http://127.0.0.1:{settings.prometheus_port}")
    typer.echo("   Stop it all with: creditrisk stack down")


def demo() -> None:
    """Run the whole flow from nothing: stack, data, model, scoring (as far as available)."""
    settings = get_settings()
    try:
        _step("Local stack (Kafka, Redis, Prometheus)", _stack_up, settings)
        _step("Where to look", _show_where_to_look, settings)
    except stack.StackError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
