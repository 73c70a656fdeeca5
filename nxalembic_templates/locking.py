"""Engines that migrate atomically and one process at a time.

Several shards or processes of a bot often start, and migrate, at the same moment.  Every
online run therefore takes one database-wide lock before Alembic reads the version table:

* **PostgreSQL**: an advisory lock on one fixed key (:data:`ADVISORY_LOCK_KEY`).  On the
  connections made here it is session-level, taken inside the first migration transaction
  and held until the connection closes at the end of the command: it survives the commit
  inside ``autocommit_block()`` and covers every cog of one ``nxalembic`` run.  PostgreSQL
  drops it when the connection goes, so a crashed process never leaves it behind.  On a
  connection handed in by the caller (``config.attributes["connection"]``), which may go
  back to a pool afterwards, it is ``pg_advisory_xact_lock``: released at commit/rollback.
  DDL is transactional, so a revision that fails half-way leaves nothing behind.
* **SQLite**: the Python driver normally lets DDL auto-commit statement by statement.  Engines
  made here switch the driver's own transaction handling off and start every transaction
  with ``BEGIN IMMEDIATE``: SQLite's write lock is then held for the whole run (a second
  process waits up to :data:`SQLITE_LOCK_TIMEOUT` for it) and the DDL of a failed run is
  rolled back as a whole.  A plain (deferred) ``BEGIN`` would not do: two processes would
  both read the version table and the second writer would fail with "database is locked".

**Read-only runs** (``status``, ``check``, ``migrate`` and stock ``check`` / ``revision
--autogenerate``) take no lock at all and are read-only at the database level: a deferred
``BEGIN`` and ``PRAGMA query_only`` on SQLite (so a read-only file works and nothing can be
written), a ``READ ONLY`` session on PostgreSQL.

When another process holds SQLite's write lock, ``BEGIN IMMEDIATE`` is first tried without
waiting; if the lock is taken, one line on stderr says so at once and the wait goes on in
short slices (:data:`SQLITE_WAIT_SLICE`), so that Ctrl-C is noticed quickly, also when an
async driver runs the wait in its worker thread (which nothing can interrupt mid-wait).

Connections handed in by the caller are otherwise used as they are: the caller owns their
transaction handling (on SQLite, whether DDL is transactional is then up to the caller).
"""

from __future__ import annotations

import sys
import time
import weakref
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from .errors import NXAlembicError

#: One advisory-lock key for every nxalembic migration in a PostgreSQL database.
ADVISORY_LOCK_KEY = zlib.crc32(b"nxalembic-templates migration lock")

#: How long a second SQLite process waits for the first one's write lock, in seconds.
SQLITE_LOCK_TIMEOUT = 300

#: How long one attempt at SQLite's write lock may block, in milliseconds (see module doc).
SQLITE_WAIT_SLICE = 200

#: The (sync) engines :func:`prepare` was given; their connections close after one command.
_OWN_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()

#: The subset of :data:`_OWN_ENGINES` prepared with ``read_only=True``.
_READ_ONLY_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()

#: ``Connection.info`` key: this connection already holds the session-level advisory lock.
_HOLDS_LOCK = "nxalembic.holds_migration_lock"


def prepare(engine: sa.Engine, read_only: bool = False) -> None:
    """Make *engine* (made by :func:`.engines.create_engine`) migrate atomically, or only read.

    Its connections then get the lock and transaction handling described above; connections
    of other engines (handed in by a caller) are left as they are.
    """
    if engine.dialect.name == "sqlite":
        _make_sqlite_transactional(engine, read_only)
    elif read_only:
        _make_read_only(engine)
    _OWN_ENGINES.add(engine)
    if read_only:
        _READ_ONLY_ENGINES.add(engine)


def _make_sqlite_transactional(engine: sa.Engine, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        if read_only:
            _driver_execute(dbapi_connection, "PRAGMA query_only = ON")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        if read_only:
            connection.exec_driver_sql("BEGIN")  # deferred: reads need no write lock
        else:
            _begin_immediate(connection)


def _make_read_only(engine: sa.Engine) -> None:
    """PostgreSQL: every transaction of this engine's connections is READ ONLY."""

    @event.listens_for(engine, "connect")
    def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
        try:
            engine.dialect.set_readonly(dbapi_connection, True)
        except NotImplementedError:  # a driver SQLAlchemy cannot switch: the code still only reads
            pass


def _driver_execute(dbapi_connection: Any, sql: str) -> None:
    """Run *sql* on the driver's connection (sync, or an async driver's adapter)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _begin_immediate(connection: Connection) -> None:
    """``BEGIN IMMEDIATE``; when another process holds the write lock, say so at once, then wait.

    The first attempt does not wait.  After that the wait goes on in slices of
    :data:`SQLITE_WAIT_SLICE` ms up to :data:`SQLITE_LOCK_TIMEOUT` s: the driver's busy
    handler blocks in C (in a worker thread for aiosqlite), and a short slice is what lets
    Ctrl-C end the command promptly.  The statements go to the driver connection directly,
    so a failed attempt leaves SQLAlchemy's transaction bookkeeping alone.
    """
    dbapi_connection = connection.connection.dbapi_connection
    deadline = time.monotonic() + SQLITE_LOCK_TIMEOUT
    timeout_ms = 0
    try:
        while True:
            _driver_execute(dbapi_connection, f"PRAGMA busy_timeout = {timeout_ms}")
            try:
                _driver_execute(dbapi_connection, "BEGIN IMMEDIATE")
                return
            except Exception as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            where = _sqlite_file(connection)
            if timeout_ms == 0:
                print(f"waiting for the write lock on {where}, held by another process "
                      f"(up to {SQLITE_LOCK_TIMEOUT} s; Ctrl-C to stop)...", file=sys.stderr, flush=True)
                timeout_ms = SQLITE_WAIT_SLICE
            elif time.monotonic() > deadline:
                raise NXAlembicError(
                    f"gave up after {SQLITE_LOCK_TIMEOUT} s waiting for the write lock on {where}: another "
                    "process (a migration, or the bot itself in a long transaction) still holds it; "
                    "stop that process or run the command again later"
                )
    finally:
        _driver_execute(dbapi_connection, f"PRAGMA busy_timeout = {SQLITE_LOCK_TIMEOUT * 1000}")


def _sqlite_file(connection: Connection) -> str:
    database = connection.engine.url.database
    return str(Path(database).resolve()) if database and database != ":memory:" else "the in-memory database"


def _is_own(connection: Connection) -> bool:
    return connection.engine in _OWN_ENGINES


def configure_options(connection: Connection) -> dict[str, Any]:
    """Extra ``context.configure()`` options for a connection of an engine given to :func:`prepare`."""
    if connection.dialect.name == "sqlite" and _is_own(connection):
        return {"transactional_ddl": True}
    return {}


def is_read_only(connection: Connection) -> bool:
    """Whether *connection* comes from an engine :func:`prepare` made read-only."""
    return connection.engine in _READ_ONLY_ENGINES


def acquire(connection: Connection) -> None:
    """Take the migration lock inside the already begun migration transaction."""
    if connection.dialect.name != "postgresql" or is_read_only(connection):
        return  # SQLite: BEGIN IMMEDIATE (see _make_sqlite_transactional) holds the write lock.
    if not _is_own(connection):
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    elif not connection.info.get(_HOLDS_LOCK):
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})")
        connection.info[_HOLDS_LOCK] = True
