"""``creditrisk features materialize``: a dataset's feature views into Redis.

It lives with the dataset configs (``training``) because a view is declared there; the
loading itself is ``features.materialize``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from features.views import FeatureView

features_app = typer.Typer(help="The Redis feature store: materialize feature views.",
                           no_args_is_help=True)


@features_app.command("materialize")
def materialize(
    data: Path = typer.Option(..., "--data", help="the view's source table: e.g. bureau.csv from "
                              "`creditrisk data generate`, or a Lending Club loan file (bureau "
                              "columns keyed by member_id)"),
    dataset: str = typer.Option("generated", "--dataset",
                                help="built-in dataset name or a dataset config TOML declaring "
                                     "the view"),
    view_name: str | None = typer.Option(None, "--view",
                                         help="which declared view (needed when there are several)"),
    batch_size: int = typer.Option(2000, min=1, help="rows per pipelined round trip"),
    as_of: str = typer.Option("file", "--as-of",
                              help="when the values were true: 'file' (the file's own dates), "
                                   "'now', or an ISO-8601 UTC time"),
) -> None:
    """Load a declared feature view into Redis (idempotent; older values never overwrite
    newer ones)."""
    from redis.exceptions import RedisError
    from tqdm import tqdm

    from config.settings import get_settings
    from features.materialize import count_rows, materialize_view
    from features.store import REFUSED_ERRORS, refused, sync_client

    settings = get_settings()
    moment = _as_of(as_of)
    view = _declared_view(dataset, view_name)
    if not data.is_file():
        typer.secho(f"no file at {data}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    client = sync_client(settings, "materializer")
    try:
        with tqdm(total=count_rows(data), unit="rows", desc="materialize") as bar:
            report = materialize_view(
                data, client, view, settings.feature_schema_version, settings.key_prefix,
                batch_size=batch_size, on_progress=bar.update, as_of=moment)
    except (ValueError, FileNotFoundError) as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    except REFUSED_ERRORS as error:
        typer.secho(str(refused(error, client)), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    except RedisError as error:
        typer.secho(f"Redis at {settings.redis_address} failed: {type(error).__name__}. "
                    "Is the stack up (`creditrisk stack up`)?", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    finally:
        client.close()
    typer.echo(report.summary())


def _declared_view(dataset: str, name: str | None) -> FeatureView:
    from training.datasets import load_dataset_config

    try:
        config = load_dataset_config(dataset)
    except (FileNotFoundError, ValueError) as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    views = config.serving_spec().views
    chosen = [view for view in views if name in (None, view.name)]
    if len(chosen) != 1:
        known = ", ".join(view.name for view in views) or "none"
        typer.secho(f"dataset {config.name!r} declares the views: {known}; "
                    + ("choose one with --view NAME" if len(chosen) > 1 else
                       f"there is no view {name!r}"), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    return chosen[0]


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
