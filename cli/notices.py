"""``creditrisk notices render | list``: adverse-action notices of final declines, from the
ledger (produced and stored on first use, then always the stored one)."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from config.settings import get_settings
from ledger.cli import connect_or_exit, fail

notices_app = typer.Typer(help="Adverse-action notices (Regulation B, FCRA 615(a)) of final "
                               "declines.", no_args_is_help=True)


@notices_app.command("render")
def notices_render(
    application_id: str = typer.Argument(..., help="the declined application's id"),
    out: Path = typer.Option(..., "--out", help="the file to write: .pdf or .html"),
    produced_by: str = typer.Option(getpass.getuser(), "--by",
                                    help="who produces the notice, if it is new (audit)"),
) -> None:
    """Write the notice of a final decline to a PDF or HTML file.

    A notice not produced yet is produced and stored first; then the stored one is written."""
    from ledger.notices import NoticeRefused, produce_notice

    suffix = _suffix(out)
    with connect_or_exit(get_settings()) as connection:
        try:
            notice = produce_notice(connection, get_settings(), application_id, produced_by)
        except NoticeRefused as error:
            fail(str(error))
    _write(out, notice.pdf if suffix == ".pdf" else notice.html)
    typer.echo(f"{out}  (notice of application {notice.application_id}, produced "
               f"{notice.produced_at:%Y-%m-%d %H:%M} UTC by {notice.produced_by})")


@notices_app.command("list")
def notices_list(
    missing: bool = typer.Option(False, "--missing",
                                 help="only the final declines that have no notice yet"),
    limit: int = typer.Option(100, "--limit", min=1, help="at most this many rows"),
) -> None:
    """Final declines with the date their notice was produced.

    The current final decision of each application, the oldest first."""
    from ledger.notices import final_declines

    with connect_or_exit(get_settings()) as connection:
        declines = final_declines(connection, missing_only=missing, limit=limit)
    if not declines:
        typer.echo("no final declines without a notice" if missing else "no final declines")
    for decline in declines:
        produced = (f"notice {decline.notice_produced_at:%Y-%m-%d}"
                    if decline.notice_produced_at is not None else "NO NOTICE")
        typer.echo(f"{decline.application_id:<32} declined {decline.declined_at:%Y-%m-%d} by "
                   f"{decline.declined_by:<16} {produced}")


@notices_app.command("preview")
def notices_preview(
    out: Path = typer.Option(..., "--out", help="the file to write: .pdf or .html"),
) -> None:
    """Write a sample notice with the current settings (an invented application).

    Nothing is read from or stored in the ledger: check the creditor's, agency's and bureau's
    details before the first decline."""
    from datetime import UTC, datetime

    from notices.content import NoticeError, sample_notice
    from notices.render import to_html, to_pdf

    suffix = _suffix(out)
    try:
        content = sample_notice(get_settings(), datetime.now(UTC).date())
    except NoticeError as error:
        fail(str(error))
    _write(out, to_pdf(content) if suffix == ".pdf" else to_html(content))
    typer.echo(f"{out}  (sample notice)")


def _suffix(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm"):
        fail(f"--out {out}: the file must end in .pdf or .html")
    return ".pdf" if suffix == ".pdf" else ".html"


def _write(out: Path, content: bytes | str) -> None:
    try:
        if isinstance(content, bytes):
            out.write_bytes(content)
        else:
            out.write_text(content, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror}")
