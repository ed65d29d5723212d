"""``creditrisk console``: run the relationship-manager console (Streamlit)."""

from __future__ import annotations

from pathlib import Path

import typer

from stream.cli import refuse_without_credential


def console_command(
    port: int = typer.Option(None, "--port", help="HTTP port (default CREDITRISK_CONSOLE_PORT)"),
) -> None:
    """Run the relationship-manager console (Streamlit) on http://127.0.0.1:PORT.

    With CREDITRISK_CONSOLE_PASSWORD set every session logs in first; binding an address
    beyond loopback (CREDITRISK_CONSOLE_HOST) without it is refused.
    """
    import os
    import sys

    from config.settings import get_settings

    settings = get_settings()
    refuse_without_credential(settings.console_host, settings.console_password,
                               "CREDITRISK_CONSOLE_PASSWORD", "console")
    script = Path(__file__).resolve().parent / "app.py"
    argv = [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.port", str(port or settings.console_port), "--server.address", settings.console_host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    os.execv(sys.executable, argv)
