"""``creditrisk console``: run the relationship-manager console (Streamlit)."""

from __future__ import annotations

from pathlib import Path

import typer


def console_command(
    port: int = typer.Option(None, "--port", help="HTTP port (default CREDITRISK_CONSOLE_PORT)"),
) -> None:
    """Run the relationship-manager and underwriter console (Streamlit) on
    http://CREDITRISK_CONSOLE_HOST:PORT, and its Prometheus /metrics on
    CREDITRISK_CONSOLE_METRICS_PORT.

    Every session signs in as a named user (`creditrisk users add`); users and sign-ins are
    checked in the decision ledger as the console's own role (CREDITRISK_CONSOLE_POSTGRES_*).
    """
    import os
    import sys

    from config.settings import get_settings

    settings = get_settings()
    script = Path(__file__).resolve().parent / "app.py"
    argv = [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.port", str(port or settings.console_port), "--server.address", settings.console_host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    os.execv(sys.executable, argv)
