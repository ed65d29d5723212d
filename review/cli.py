"""``creditrisk users add | disable | list``: the console's named users (an administrator's
tool; it connects as the ledger's owner, never as the console)."""

from __future__ import annotations

import getpass
import sys

import typer

from config.settings import get_settings
from ledger.cli import connect_or_exit, fail

users_app = typer.Typer(help="Console users and their roles (viewer, reviewer, approver, admin).",
                        no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        fail("the two passwords differ; nothing was changed")
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
    with connect_or_exit(get_settings()) as connection:
        try:
            user = add_user(connection, username, role, password, created_by, display_name)
        except UserError as error:
            fail(f"{error}; nothing was changed")
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("disable")
def users_disable(username: str = typer.Argument(..., help="the user to disable")) -> None:
    """Disable a user: they can no longer sign in or act; their past actions stay theirs."""
    from review.users import UserError, disable_user

    with connect_or_exit(get_settings()) as connection:
        try:
            disable_user(connection, username)
        except UserError as error:
            fail(str(error))
    typer.echo(f"disabled {username}")


@users_app.command("list")
def users_list() -> None:
    """Every user with their role, state and creation date."""
    from review.users import list_users

    with connect_or_exit(get_settings()) as connection:
        users = list_users(connection)
    if not users:
        typer.echo("no console users yet: add one with `creditrisk users add NAME --role admin`")
    for user, created in users:
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.username:<24} {user.role:<9} {state:<9} {created:%Y-%m-%d}  "
                   f"{user.display_name}")
