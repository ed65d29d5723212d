"""``creditrisk users add | disable | list``: the console's named users (an administrator's
tool; it connects as the ledger's owner, never as the console)."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, NoReturn

import typer

from config.settings import get_settings

if TYPE_CHECKING:
    from ledger.store import Ledger

users_app = typer.Typer(help="Console users and their roles (viewer, reviewer, approver, admin).",
                        no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _connect() -> Ledger:
    import psycopg

    settings = get_settings()
    try:
        return psycopg.connect(settings.postgres_conninfo())
    except psycopg.OperationalError as error:
        _fail(f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} is not reachable or "
              f"refused the login ({type(error).__name__}). Is the stack up (`creditrisk stack up`)?")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        _fail("the two passwords differ; nothing was changed")
    return first


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="sign-in name: a-z, 0-9, '.', '_', '-'"),
    role: str = typer.Option(..., "--role", help="viewer, reviewer, approver or admin"),
    display_name: str = typer.Option(None, "--name", help="the name shown in the console"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="read the password from the first line of stdin"),
    created_by: str = typer.Option(getpass.getuser(), "--by", help="who adds the user (audit)"),
) -> None:
    """Add a console user; the password is asked twice (or read from stdin), never an argument."""
    from review.users import UserError, add_user

    password = _password(password_stdin)
    with _connect() as connection:
        try:
            user = add_user(connection, username, role, password, created_by, display_name)
        except UserError as error:
            _fail(f"{error}; nothing was changed")
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("disable")
def users_disable(username: str = typer.Argument(..., help="the user to disable")) -> None:
    """Disable a user: they can no longer sign in or act; their past actions stay theirs."""
    from review.users import UserError, disable_user

    with _connect() as connection:
        try:
            disable_user(connection, username)
        except UserError as error:
            _fail(str(error))
    typer.echo(f"disabled {username}")


@users_app.command("list")
def users_list() -> None:
    """Every user with their role, state and creation date."""
    from review.users import list_users

    with _connect() as connection:
        users = list_users(connection)
    if not users:
        typer.echo("no console users yet: add one with `creditrisk users add NAME --role admin`")
    for user, created in users:
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.username:<24} {user.role:<9} {state:<9} {created:%Y-%m-%d}  "
                   f"{user.display_name}")
