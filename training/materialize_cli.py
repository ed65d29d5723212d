"""``creditrisk features materialize``: a dataset's feature views into Redis.

It lives with the dataset configs (``training``) because a view is declared there; the
loading itself is ``features.materialize``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from features.views import FeatureView

if TYPE_CHECKING:
    from config.settings import Settings

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
    schema_version: str | None = typer.Option(
        None, "--schema-version",
        help="key schema to write (v1, or v2 for a Redis Cluster); default "
             "CREDITRISK_FEATURE_SCHEMA_VERSION. Migrating: write v2 beside v1, then switch "
             "the worker (docs/runbook.md)"),
) -> None:
    """Load a declared feature view into Redis (idempotent; older values never overwrite
    newer ones)."""
    from redis.exceptions import RedisClusterException, RedisError
    from tqdm import tqdm

    from config.settings import get_settings
    from features.materialize import count_rows, materialize_view
    from features.store import REFUSED_ERRORS, SyncRedis, refusal_in, refused_user, sync_client

    settings = get_settings()
    schema = _schema_for(settings, schema_version)
    moment = _as_of(as_of)
    view = _declared_view(dataset, view_name)
    if not data.is_file():
        typer.secho(f"no file at {data}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    client: SyncRedis | None = None
    try:
        client = sync_client(settings, "materializer")  # a cluster client finds its nodes now
        with tqdm(total=count_rows(data), unit="rows", desc="materialize") as bar:
            report = materialize_view(
                data, client, view, schema, settings.key_prefix,
                batch_size=batch_size, on_progress=bar.update, as_of=moment)
    except (ValueError, FileNotFoundError) as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    except (*REFUSED_ERRORS, RedisError, RedisClusterException) as error:
        refusal = refusal_in(error)  # a cluster client's "cannot connect" may be a refusal
        if refusal is not None:
            user, _ = settings.redis_credentials("materializer")
            typer.secho(str(refused_user(refusal, user)), fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from None
        typer.secho(f"Redis at {settings.redis_address} failed: {type(error).__name__}. "
                    "Is the stack up (`creditrisk stack up`)?", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    finally:
        if client is not None:
            client.close()
    typer.echo(report.summary())


@features_app.command("copy-velocity")
def copy_velocity_command(
    from_schema: str = typer.Option("v1", "--from", help="key schema the workers wrote so far"),
    to_schema: str | None = typer.Option(None, "--to", help="key schema to add them to (default "
                                         "CREDITRISK_FEATURE_SCHEMA_VERSION)"),
    from_redis_url: str | None = typer.Option(
        None, "--from-redis-url",
        help="read from another single Redis (credentials in the URL, e.g. "
             "redis://admin:PASSWORD@host:6379/0); default the configured Redis"),
) -> None:
    """Copy the customers' recent applications (the velocity view, which the worker writes
    itself) from one key schema into another: run before switching the worker to the new
    schema and again right after (idempotent; docs/runbook.md)."""
    from redis.exceptions import RedisClusterException, RedisError

    from config.settings import get_settings
    from features.materialize import copy_velocity
    from features.store import REFUSED_ERRORS, SyncRedis, refusal_in, refused_user, sync_client

    settings = get_settings()
    target_schema = _schema_for(settings, to_schema)
    clients: list[SyncRedis] = []
    try:
        target = sync_client(settings, "admin")  # SCAN and PTTL: an operator's job
        clients.append(target)
        source = target if from_redis_url is None else sync_client(
            settings.model_copy(update={"redis_url": from_redis_url, "redis_cluster_nodes": ""}),
            "admin")
        if source is not target:
            clients.append(source)
        report = copy_velocity(source, target, from_schema, target_schema, settings.key_prefix)
    except (*REFUSED_ERRORS, RedisError, RedisClusterException) as error:
        refusal = refusal_in(error)
        if refusal is not None:
            typer.secho(str(refused_user(refusal, "admin")), fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1) from None
        typer.secho(f"Redis failed: {type(error).__name__}. Is the stack up (`creditrisk stack "
                    "up`)?", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    finally:
        for client in clients:
            client.close()
    typer.echo(report.summary())


def _schema_for(settings: Settings, chosen: str | None) -> str:
    """The key schema to write: ``chosen``, else the setting; a Redis Cluster needs one whose
    keys carry a hash tag (the read script touches two keys of a customer)."""
    from features.views import HASH_TAGGED_SCHEMAS, SCHEMA_VERSIONS

    schema = chosen or settings.feature_schema_version
    if schema not in SCHEMA_VERSIONS:
        typer.secho(f"key schema {schema!r} is unknown; use one of {', '.join(SCHEMA_VERSIONS)}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    if settings.redis_cluster_seeds and schema not in HASH_TAGGED_SCHEMAS:
        typer.secho(f"key schema {schema} carries no hash tag, so a Redis Cluster would refuse "
                    "the feature read; write v2 keys to a cluster", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    return schema


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
