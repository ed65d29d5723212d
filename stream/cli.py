"""``creditrisk worker``: run the Faust scoring worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from pydantic import SecretStr


def worker_command(
    loglevel: str = typer.Option("info", "--loglevel", help="debug, info, warning or error"),
    processes: int = typer.Option(1, "--processes", min=1,
                                  help="worker processes on this machine, one consumer group "
                                       "(one per core); HTTP ports from the worker port up"),
) -> None:
    """Run the Faust scoring worker: applications in, decisions and dead letters out.

    HTTP on the worker port: /health, /metrics (Prometheus) and POST /score. With
    --processes N, N workers share the consumer group, on ports worker port + 0..N-1; more
    machines join the group by running `creditrisk worker` with the same settings.
    """
    from config.settings import get_settings
    from onnx_models.registry import Registry

    settings = get_settings()
    refuse_without_credential(settings.worker_host, settings.api_token, "CREDITRISK_API_TOKEN",
                               "worker's HTTP server (POST /score)")
    if Registry(settings.registry_dir).live_version() is None:
        typer.secho(f"No live model in {settings.registry_dir}: train one first "
                    "(`creditrisk train --data PATH`) or promote one (`creditrisk model promote V`).",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    if processes > 1:
        raise typer.Exit(code=_supervise(processes, loglevel))
    run_worker(loglevel)


def refuse_without_credential(host: str, credential: SecretStr | None, setting: str,
                               server: str) -> None:
    """Exit 2 with the reason when ``server`` would be reachable beyond loopback unprotected."""
    from stream.http_auth import CredentialRequired, require_credential_beyond_loopback

    try:
        require_credential_beyond_loopback(host, credential, setting, server)
    except CredentialRequired as error:
        typer.secho(f"Refusing to start: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None


# The local stack's Prometheus file_sd folder (infra.stack.services.Prometheus.targets_dir; a test
# keeps the two in step): stream/ does not import infra/.
def prometheus_targets_dir(stack_dir: Path) -> Path:
    return stack_dir / "prometheus" / "targets"


def _supervise(processes: int, loglevel: str) -> int:
    from config.settings import get_settings
    from stream.supervisor import run_worker_processes

    settings = get_settings()
    try:
        return run_worker_processes(processes, settings.worker_port, settings.worker_host, loglevel,
                                    prometheus_targets_dir(settings.stack_dir), echo=typer.echo)
    except ValueError as error:
        typer.secho(f"Error: {error}", fg=typer.colors.RED, err=True)
        return 2


def run_worker(loglevel: str) -> None:
    from config.settings import get_settings
    from stream.app import create_app
    from stream.log_limits import QuietOutagesWorker

    settings = get_settings()
    app = create_app(settings)
    worker = QuietOutagesWorker(app, loglevel=loglevel.upper(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        liveness = app.creditrisk_state.liveness  # type: ignore[attr-defined]  # set by create_app
        if liveness.fatal_error and liveness.exit_status is not None:
            typer.secho(f"The worker stopped: {liveness.fatal_error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=liveness.exit_status) from None
        raise exit_
