"""``creditrisk features materialize``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

features_app = typer.Typer(help="The Redis feature store: materialize bureau features.",
                           no_args_is_help=True)


@features_app.command("materialize")
def materialize(
    data: Path = typer.Option(..., "--data", help="bureau.csv from `creditrisk data generate`, "
                              "or a Lending Club loan file (bureau columns keyed by member_id)"),
    batch_size: int = typer.Option(2000, min=1, help="rows per pipelined round trip"),
    as_of: str = typer.Option("file", "--as-of",
                              help="when the values were true: 'file' (the file's own dates), "
                                   "'now', or an ISO-8601 UTC time"),
) -> None:
    """Load a bureau table into Redis (idempotent; older values never overwrite newer ones)."""
    from redis.exceptions import RedisError
    from tqdm import tqdm

    from config.settings import get_settings
    from features.materialize import count_rows, materialize_bureau_features
    from features.store import sync_client

    settings = get_settings()
    moment = _as_of(as_of)
    if not data.is_file():
        typer.secho(f"no file at {data}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    client = sync_client(settings)
    try:
        with tqdm(total=count_rows(data), unit="rows", desc="materialize") as bar:
            report = materialize_bureau_features(
                data, client, settings.feature_schema_version, settings.key_prefix,
                batch_size=batch_size, on_progress=bar.update, as_of=moment)
    except (ValueError, FileNotFoundError) as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    except RedisError as error:
        typer.secho(f"Redis at {settings.redis_url} failed: {type(error).__name__}. "
                    "Is the stack up (`creditrisk stack up`)?", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    finally:
        client.close()
    typer.echo(report.summary())


def _as_of(text: str) -> datetime | None:

    if text == "file":
        return None
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        typer.secho(f"--as-of {text!r}: give 'file', 'now' or an ISO-8601 time with a zone, "
                    "e.g. 2026-11-01T00:00:00Z", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    return moment
