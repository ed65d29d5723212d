"""``creditrisk produce`` and ``creditrisk decisions tail``.

Register with ``app.command(name="produce")(produce_command)`` and
``app.add_typer(decisions_app, name="decisions")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer

decisions_app = typer.Typer(help="Follow the decisions the worker publishes.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _kafka_failed(bootstrap: str, error: Exception) -> str:
    """What went wrong with Kafka and what to check (never a credential)."""
    from kafka.errors import TopicAuthorizationFailedError

    if isinstance(error, TopicAuthorizationFailedError):
        return ("Kafka refused the topic: it does not exist (topics are not created on first "
                "use; `creditrisk stack topics` creates the configured ones — is --topic "
                "spelt right?) or this principal may not use it (README: Kafka principals).")
    return (f"Kafka at {bootstrap} could not be reached or refused the login "
            f"({type(error).__name__}). Is the stack up (`creditrisk stack up`), is "
            "CREDITRISK_KAFKA_BOOTSTRAP right, and are CREDITRISK_KAFKA_USERNAME and "
            "CREDITRISK_KAFKA_PASSWORD (unset: the stack's .stack/secrets/kafka-<principal>) right?")


def produce_command(
    data: Path = typer.Option(..., "--data", help="Loan file of the live model's dataset (e.g. "
                              "loans.csv from `creditrisk data generate`): each row becomes an "
                              "event with the fields the live model expects, and its monitored "
                              "fields (protected characteristics) when the file has them."),
    rate: float = typer.Option(100.0, "--rate", min=0, help="events per second (0 = as fast as possible)"),
    count: int = typer.Option(1000, "--count", min=1, help="events to send (fewer if the file ends)"),
    start: int = typer.Option(
        0, "--start", min=0, help="skip this many data rows first (with --repeat, rows of the "
        "repeated file: a run started where another ended sends no application twice)"),
    submitted_at: str = typer.Option("now", "--submitted-at",
                                     help="'now' (UTC, at sending) or 'original' (the row's issue month)"),
    topic: str | None = typer.Option(None, "--topic", help="default: CREDITRISK_TOPIC_APPLICATIONS "
                                     "(CREDITRISK_TOPIC_OUTCOMES with --outcomes)"),
    outcomes: bool = typer.Option(False, "--outcomes", help="send what became of each loan (status "
                                  "and as-of date, as servicing would) instead of its application"),
    repeat: bool = typer.Option(False, "--repeat", help="at the end of the file start again at its "
                                "top, application ids suffixed -r2, -r3 ... (fresh applications "
                                "of the same customers), until --count events are sent"),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="show a progress bar (off: nothing but the summary line)"),
) -> None:
    """Replay loan applications (or, with --outcomes, the loans' outcomes) from a file into Kafka."""
    from kafka.errors import KafkaError

    from config.kafka_auth import KafkaCredentialsMissing
    from config.settings import get_settings
    from replay.core import SubmittedAt, live_event_layout, replay_applications, replay_outcomes

    settings = get_settings()
    if outcomes and repeat:
        _fail("--repeat sends fresh applications; outcomes of loans that were never applied "
              "for would mean nothing. Drop --repeat with --outcomes.")
    if not outcomes and submitted_at not in ("now", "original"):
        _fail(f"--submitted-at must be 'now' or 'original', not {submitted_at!r}.")
    try:
        layout = live_event_layout(settings.registry_dir)
        if outcomes:
            summary = replay_outcomes(data, settings,
                                      topic or settings.topic_outcomes, count=count, start=start,
                                      layout=layout, progress=progress)
        else:
            summary = replay_applications(data, settings,
                                          topic or settings.topic_applications, count=count,
                                          rate=rate, start=start,
                                          submitted_at=cast(SubmittedAt, submitted_at),
                                          layout=layout, repeat=repeat, progress=progress)
    except (FileNotFoundError, ValueError, KafkaCredentialsMissing) as error:
        _fail(str(error))
    except KafkaError as error:
        _fail(_kafka_failed(settings.kafka_bootstrap, error))
    typer.echo(summary.line())
    if summary.failed:
        raise typer.Exit(code=1)


@decisions_app.command("tail")
def tail_command(
    from_beginning: bool = typer.Option(False, "--from-beginning",
                                        help="start at the oldest decision kept, not the next new one"),
    count: int | None = typer.Option(None, "--count", min=1, help="stop after this many decisions"),
    timeout: float | None = typer.Option(None, "--timeout", min=0.1,
                                            help="stop after this many seconds without a decision"),
    as_json: bool = typer.Option(False, "--json", help="print each decision's full JSON"),
    topic: str | None = typer.Option(None, "--topic", help="default: CREDITRISK_TOPIC_DECISIONS"),
) -> None:
    """Print one line per decision: id, decision, PD, score, grade, first reason, model version.

    Reads without a consumer group, so it never moves the offsets of any service."""
    from kafka.errors import KafkaError

    from config.kafka_auth import KafkaCredentialsMissing
    from config.settings import get_settings
    from replay.core import tail_decisions

    settings = get_settings()
    try:
        tail_decisions(settings, topic or settings.topic_decisions, typer.echo,
                       from_beginning=from_beginning, count=count, idle_timeout_s=timeout,
                       as_json=as_json)
    except KafkaCredentialsMissing as error:
        _fail(str(error))
    except KafkaError as error:
        _fail(_kafka_failed(settings.kafka_bootstrap, error))
    except KeyboardInterrupt:
        pass
