"""Revisions that fail half-way on a database whose DDL is not transactional (MariaDB / MySQL).

There every ``CREATE`` / ``ALTER`` / ``DROP`` commits by itself, so a revision failing at its
second statement cannot be rolled back: its first statement stays applied while the cog's
version table still names the revision before (Alembic writes the version only after the
whole ``upgrade()`` ran).  Nothing can undo that for the user, but it can be told exactly:

* while a revision runs, :class:`StatementLog` notes the schema statements it sends; when it
  fails, :func:`explain` names the statement that failed, the ones that were committed before
  it, and what to do;
* :func:`record` leaves that state on the version table itself, as its table comment (no
  extra table, nothing a cog could own), so that ``nxalembic status`` in any later process
  can show it (:func:`read`); the next run that moves the cog's version clears it (:func:`clear`).

What can be known is what this package saw: the statements sent through the migration
connection before the failure.  A process killed part-way (``kill -9``, a lost server) leaves
no such note; its partial state shows only as tables ahead of the version table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from .locking import MYSQL_DIALECTS

#: How a note of ours starts in the version table's comment (other comments are left alone).
MARKER = "nxalembic: "

#: MariaDB allows 2048 characters in a table comment; the note is kept well below.
MAX_NOTE = 1000

#: Statements that change the schema and, on MariaDB / MySQL, commit by themselves.
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.I)


def non_transactional(connection: Connection) -> bool:
    """Whether *connection*'s database commits every DDL statement by itself."""
    return connection.dialect.name in MYSQL_DIALECTS


def short(statement: str, width: int = 120) -> str:
    """One line of at most *width* characters of an SQL statement."""
    text = " ".join(statement.split())
    return text if len(text) <= width else text[: width - 3] + "..."


class StatementLog:
    """The schema statements of the revision now running, as the connection sends them."""

    def __init__(self, version_table: str) -> None:
        self.version_table = version_table
        self.done: list[str] = []

    def reset(self, **_: Any) -> None:
        """A revision finished (Alembic's ``on_version_apply``): the next one starts empty."""
        self.done = []

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _DDL.match(statement) and self.version_table not in statement:
            self.done.append(short(statement))

    @contextmanager
    def watching(self, connection: Connection) -> Iterator[StatementLog]:
        event.listen(connection, "after_cursor_execute", self._after)
        try:
            yield self
        finally:
            event.remove(connection, "after_cursor_execute", self._after)


def explain(log: StatementLog, exc: BaseException, revision: str, before: list[str]) -> str:
    """The tail of the error message: where the database is left, and what to do.

    *before*: the version table's rows when the run started (the revision before *revision*).
    Empty when none of the revision's schema statements had been committed.
    """
    if not log.done:
        return ""
    failed = getattr(exc, "statement", None)
    at = f"; the statement that failed: {short(failed)}" if isinstance(failed, str) else ""
    count = f"{len(log.done)} schema statement{'' if len(log.done) == 1 else 's'}"
    return (
        f"{at}; this database commits DDL statement by statement, so it is now between revisions: "
        f"{count} of revision {revision} stayed applied ({'; '.join(log.done)}) while "
        f"{log.version_table} still says {', '.join(before) or 'no revision'}; fix revision {revision} "
        "so that it can run on this partial state (or undo those statements by hand), then upgrade again"
    )


def record(connection: Connection, log: StatementLog, revision: str, exc: BaseException) -> None:
    """Leave the partial state on the version table's comment, for ``status`` to show later."""
    failed = getattr(exc, "statement", None)
    note = (
        f"{MARKER}revision {revision} failed part-way: {len(log.done)} schema statement"
        f"{'' if len(log.done) == 1 else 's'} of it applied ({'; '.join(log.done)})"
        + (f", then failed: {short(failed)}" if isinstance(failed, str) else "")
    )
    _set_comment(connection, log.version_table, note[:MAX_NOTE])


def read(connection: Connection, version_table: str) -> str | None:
    """The note :func:`record` left on *version_table* (without its marker), or None."""
    if not non_transactional(connection):
        return None
    inspector = sa.inspect(connection)
    if not inspector.has_table(version_table):
        return None
    text = inspector.get_table_comment(version_table).get("text") or ""
    return text[len(MARKER) :] if text.startswith(MARKER) else None


def clear(connection: Connection, version_table: str) -> None:
    """The cog's version moved on: the note of an earlier failure no longer holds.

    The read's implicit transaction is ended again: the next cog's Alembic context must find
    the connection outside a transaction, or it would take it for the caller's and never commit.
    """
    began = not connection.in_transaction()
    try:
        if read(connection, version_table) is not None:
            _set_comment(connection, version_table, "")
    finally:
        if began and connection.in_transaction():
            connection.rollback()


def _set_comment(connection: Connection, table: str, text: str) -> None:
    quoted = connection.dialect.identifier_preparer.quote_identifier(table)
    connection.execute(sa.text(f"ALTER TABLE {quoted} COMMENT = :note"), {"note": text})
    connection.commit()
