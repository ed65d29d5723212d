"""``creditrisk worker``: run the Faust scoring worker."""

from __future__ import annotations

from pathlib import Path

import typer


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
    if Registry(settings.registry_dir).live_version() is None:
        typer.secho(f"No live model in {settings.registry_dir}: train one first "
                    "(`creditrisk train --data PATH`) or promote one (`creditrisk model promote V`).",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    if processes > 1:
        raise typer.Exit(code=_supervise(processes, loglevel))
    _run_worker(loglevel)


# The local stack's Prometheus file_sd folder (infra.stack.Prometheus.targets_dir; a test
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


def _run_worker(loglevel: str) -> None:
    from config.settings import get_settings
    from stream.app import EXIT_BATCH_FAILED, create_app
    from stream.log_limits import QuietOutagesWorker

    settings = get_settings()
    app = create_app(settings)
    worker = QuietOutagesWorker(app, loglevel=loglevel.upper(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        fatal = app.creditrisk_state.fatal_error  # type: ignore[attr-defined]  # set by create_app
        if fatal:
            typer.secho(f"The worker stopped: {fatal}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=EXIT_BATCH_FAILED) from None
        raise exit_


def console_command(
    port: int = typer.Option(None, "--port", help="HTTP port (default CREDITRISK_CONSOLE_PORT)"),
) -> None:
    """Run the relationship-manager console (Streamlit) on http://127.0.0.1:PORT."""
    import os
    import sys

    from config.settings import get_settings

    settings = get_settings()
    script = Path(__file__).resolve().parent / "console" / "app.py"
    argv = [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.port", str(port or settings.console_port), "--server.address", settings.console_host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    os.execv(sys.executable, argv)
