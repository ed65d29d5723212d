"""The console's connection to the decision ledger, as its own database role
(``creditrisk_console``: it reads the ledger, claims and releases queue items, and inserts
audit rows, final decisions and notices, but may never update or delete them).

Every failure to reach the ledger becomes a :class:`LedgerUnavailable` whose text says what
to do; each block runs in one transaction, committed when the block ends normally.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from config.settings import Settings
from console.data import ConsoleUnavailable

if TYPE_CHECKING:
    from ledger.store import Ledger
    from review import queue


class LedgerUnavailable(ConsoleUnavailable):
    """The ledger does not answer (or refuses the console's role)."""


def unavailable_text(settings: Settings, needed_for: str) -> str:
    return (f"{needed_for} needs the decision ledger (PostgreSQL at {settings.postgres_host}:"
            f"{settings.postgres_port}, database {settings.postgres_database}, role "
            f"{settings.console_postgres_user}), which does not answer. Check it with "
            "`creditrisk stack status` (start it with `creditrisk stack up`), then try again.")


@contextmanager
def console_connection(settings: Settings, needed_for: str = "This page") -> Iterator[Ledger]:
    """A connection as the console's role; committed when the block ends normally, rolled
    back when it raises."""
    import psycopg

    try:
        with psycopg.connect(settings.console_postgres_conninfo(), connect_timeout=3) as connection:
            yield connection
    except psycopg.OperationalError:
        raise LedgerUnavailable(unavailable_text(settings, needed_for)) from None


@contextmanager
def review_connection(settings: Settings, needed_for: str = "This page",
                      ) -> Iterator[queue.Connection]:
    """:func:`console_connection` as :mod:`review.queue` takes it."""
    with console_connection(settings, needed_for) as connection:
        yield connection
