"""Internal: engines that migrate atomically and one process at a time.

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
* **MariaDB / MySQL**: ``GET_LOCK()`` on one name per database (:func:`mysql_lock_name`; the
  server's user locks are server-wide, so the database's name is part of it).  Taken on the
  migration connection itself and held by its session for the whole command, across every
  cog and every commit; ``RELEASE_LOCK`` when it ends, and the server frees it when the
  session goes, so a killed process never leaves it behind.  On a connection handed in by
  the caller it is released again at the end of the migration transaction.  DDL is **not**
  transactional there: every ``CREATE`` / ``ALTER`` commits by itself, so a revision failing
  half-way leaves its earlier statements applied (see :func:`record_partial`).
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
PostgreSQL's advisory lock is likewise tried first (``pg_try_advisory_lock``) and the wait
announced the same way; so is ``GET_LOCK(name, 0)`` on MariaDB / MySQL.

**Lock timeout** (:class:`LockPolicy`, ``nxalembic upgrade --lock-timeout``, the start-up
API): how long to wait before giving up with :class:`~.errors.LockTimeout`.  On SQLite it
bounds the sliced wait above.  On PostgreSQL the server itself bounds the wait: ``SET LOCAL
lock_timeout`` around the blocking ``pg_advisory_lock``, so the waiter keeps its place in
the lock's queue (first come, first served) and gets the lock the moment it is free, which
polling ``pg_try_advisory_lock`` could not promise; the setting is put back right after, so
the revisions themselves run under the session's own ``lock_timeout``.
On MariaDB / MySQL the timeout is ``GET_LOCK``'s own argument (no limit: a year).

Connections handed in by the caller are otherwise used as they are: the caller owns their
transaction handling (on SQLite, whether DDL is transactional is then up to the caller).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from . import _compat
from .errors import LockTimeout, hide_password

__all__ = [
    "MAX_LOCK_TIMEOUT",
    "MYSQL_DIALECTS",
    "SQLITE_LOCK_TIMEOUT",
    "LockPolicy",
    "StatementLog",
    "acquire",
    "check_timeout",
    "clear_partial",
    "configure_options",
    "explain_partial",
    "is_read_only",
    "non_transactional",
    "one_in_process",
    "prepare",
    "read_partial",
    "record_partial",
    "release",
]

#: One advisory-lock key for every nxalembic migration in a PostgreSQL database.
ADVISORY_LOCK_KEY = zlib.crc32(b"nxalembic-templates migration lock")

#: MariaDB / MySQL: the prefix of the ``GET_LOCK`` name, followed by the database's name.
MYSQL_LOCK_PREFIX = "nxalembic:"

#: MariaDB / MySQL: ``GET_LOCK`` names are at most this long.
MYSQL_LOCK_NAME_MAX = 64

#: MariaDB / MySQL: the wait when no timeout is set, in seconds (GET_LOCK has no "forever").
MYSQL_NO_LIMIT = 365 * 24 * 3600

#: The dialect names of MySQL and MariaDB (``mysql+...://`` and ``mariadb+...://`` URLs).
MYSQL_DIALECTS = ("mysql", "mariadb")

#: How long a second SQLite process waits for the first one's write lock, in seconds.
SQLITE_LOCK_TIMEOUT = 300

#: The longest lock timeout, in milliseconds: PostgreSQL's ``lock_timeout`` (and SQLite's busy
#: timeout) is a C ``int`` of milliseconds.
MAX_LOCK_TIMEOUT_MS = 2**31 - 1

#: The longest lock timeout, in seconds (:data:`MAX_LOCK_TIMEOUT_MS`).
MAX_LOCK_TIMEOUT = MAX_LOCK_TIMEOUT_MS / 1000

#: How long one attempt at SQLite's write lock may block, in milliseconds (see module doc).
SQLITE_WAIT_SLICE = 200

#: The (sync) engines :func:`prepare` was given; their connections close after one command.
_OWN_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()

#: The subset of :data:`_OWN_ENGINES` prepared with ``read_only=True``.
_READ_ONLY_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()

#: ``Connection.info`` key: this connection already holds the session-level advisory lock.
_HOLDS_LOCK = "nxalembic.holds_migration_lock"


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration waits for the lock, and who is told that it waits.

    The command line keeps the defaults (wait, say so on stderr); the start-up API sets a
    timeout when asked and reports through :mod:`logging`, since a bot prints nothing.
    """

    #: Seconds to wait at most; ``None``: :data:`SQLITE_LOCK_TIMEOUT` on SQLite, no limit on PostgreSQL.
    timeout: float | None = None
    #: Called with one line when the lock is held by another process and the wait begins.
    report: Callable[[str], None] = _to_stderr

    def __post_init__(self) -> None:
        check_timeout(self.timeout)

    @overload
    def limit(self, default: float) -> float: ...

    @overload
    def limit(self, default: float | None) -> float | None: ...

    def limit(self, default: float | None) -> float | None:
        """The timeout in seconds: this policy's, else *default* (``None``: no limit)."""
        return self.timeout if self.timeout is not None else default

    def describe(self, default: float | None) -> str:
        limit = self.limit(default)
        return "no time limit" if limit is None else f"up to {limit:g} s"

    def milliseconds(self, default: float) -> int:
        """The timeout in whole milliseconds, rounded up: at least 1 (PostgreSQL reads 0 as "no limit")."""
        return min(MAX_LOCK_TIMEOUT_MS, max(1, math.ceil(self.limit(default) * 1000)))


def check_timeout(timeout: object, name: str = "lock timeout") -> None:
    """Refuse a lock timeout no database can wait for, in one line, when it is parsed.

    Seconds from 0 to :data:`MAX_LOCK_TIMEOUT` (PostgreSQL's longest ``lock_timeout``), or
    ``None`` (the default wait).  NaN, infinities and integers too large for a float fail the
    range test too; a bool is no number of seconds.
    """
    if timeout is None:
        return
    if (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and 0 <= timeout <= MAX_LOCK_TIMEOUT
    ):
        return
    shown = repr(timeout)
    shown = shown if len(shown) <= 25 else shown[:22] + "..."
    raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_LOCK_TIMEOUT}, not {shown}")


#: One migration at a time in this process (:func:`one_in_process`); re-entrant, so that a
#: command holding it may run others that take it again in the same thread.
_IN_PROCESS = threading.RLock()


@contextlib.contextmanager
def one_in_process(policy: LockPolicy | None = None) -> Iterator[None]:
    """Let one migration (anything that runs Alembic's ``env.py``) run in this process at a time.

    Alembic's ``context`` and ``op`` are module-level proxies, one per process: two
    migrations in two threads (two ``upgrade(bot)`` gathered, a retry after a timed-out call
    whose worker thread goes on, ``upgrade_sync`` from two threads) would swap each other's
    configuration and connection mid-run.  The database lock cannot keep them apart, since
    it is taken only once Alembic runs.  So the second caller waits here, is told so
    (*policy*'s report), and then finds the first one's work done.  Held from before the
    connection is opened until it is closed, so a waiter never holds a database lock that
    the holder needs.  *policy*'s timeout bounds the wait (:class:`~.errors.LockTimeout`).
    """
    if not _IN_PROCESS.acquire(blocking=False):
        policy = policy or LockPolicy()
        limit = policy.limit(None)
        policy.report(f"waiting for another migration in this process to finish ({policy.describe(None)})...")
        if not _IN_PROCESS.acquire(timeout=-1 if limit is None else limit):
            raise LockTimeout(
                f"gave up after {limit:g} s waiting for another migration in this process to finish; let "
                "it finish, raise the lock timeout, or try again later"
            )
    try:
        yield
    finally:
        _IN_PROCESS.release()


#: The policy of each engine given to :func:`prepare` (engines made elsewhere get the default).
_POLICIES: weakref.WeakKeyDictionary[sa.Engine, LockPolicy] = weakref.WeakKeyDictionary()


def _policy(connection: Connection) -> LockPolicy:
    return _POLICIES.get(connection.engine) or LockPolicy()


def prepare(engine: sa.Engine, read_only: bool = False, policy: LockPolicy | None = None) -> None:
    """Make *engine* (made by :func:`.engines.create_engine`) migrate atomically, or only read.

    Its connections then get the lock and transaction handling described above; connections
    of other engines (handed in by a caller) are left as they are.  *policy*: the lock timeout
    and where the wait is reported (default: no timeout but SQLite's, stderr).
    """
    if engine.dialect.name == "sqlite":
        _make_sqlite_transactional(engine, read_only)
    elif read_only:
        _make_read_only(engine)
    _OWN_ENGINES.add(engine)
    if read_only:
        _READ_ONLY_ENGINES.add(engine)
        _bound_reads(engine, policy or LockPolicy())
    if policy is not None:
        _POLICIES[engine] = policy


def _bound_reads(engine: sa.Engine, policy: LockPolicy) -> None:
    """A read waits for another process's lock no longer than *policy*'s timeout, then LockTimeout.

    A writer can hold a read off: SQLite's exclusive lock (a commit, ``BEGIN EXCLUSIVE``),
    PostgreSQL's ``ACCESS EXCLUSIVE`` on a version table (``ALTER`` / ``DROP`` / ``LOCK
    TABLE``).  The start-up fast path's one read, ``verify`` and ``status`` read on these
    connections, so the timeout the caller gave bounds them as it bounds the migration lock:
    SQLite's busy timeout (default :data:`SQLITE_LOCK_TIMEOUT`), PostgreSQL's ``lock_timeout``
    for the session (when a timeout is given).  Its expiry is one line naming the database.
    """
    sqlite = engine.dialect.name == "sqlite"
    default = SQLITE_LOCK_TIMEOUT if sqlite else None
    if sqlite or (engine.dialect.name == "postgresql" and policy.timeout is not None):
        setting = "PRAGMA busy_timeout = {}" if sqlite else "SET lock_timeout = {}"
        milliseconds = policy.milliseconds(SQLITE_LOCK_TIMEOUT)

        @event.listens_for(engine, "connect")
        def _wait_no_longer(dbapi_connection: Any, _record: Any) -> None:
            _driver_execute(dbapi_connection, setting.format(milliseconds))

    @event.listens_for(engine, "handle_error")
    def _lock_wait_expired(context: sa.engine.ExceptionContext) -> None:
        error = context.original_exception
        if not (("database is locked" in str(error)) if sqlite else _is_lock_timeout_error(error)):
            return
        limit = policy.limit(default)
        where = _sqlite_path(engine) if sqlite else hide_password(engine.url)
        raise LockTimeout(
            f"gave up {'' if limit is None else f'after {limit:g} s '}waiting to read {where}: another "
            "process holds a lock on it (a migration, or a long transaction); let it finish, raise the "
            "lock timeout, or try again later"
        )


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
    """PostgreSQL, MariaDB / MySQL: every transaction of this engine's connections is READ ONLY."""

    @event.listens_for(engine, "connect")
    def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
        if engine.dialect.name in MYSQL_DIALECTS:
            _driver_execute(dbapi_connection, "SET SESSION TRANSACTION READ ONLY")
            return
        try:
            _compat.set_read_only(engine.dialect, dbapi_connection)  # PostgreSQL's dialects only
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
    :data:`SQLITE_WAIT_SLICE` ms up to the policy's timeout (default
    :data:`SQLITE_LOCK_TIMEOUT` s): the driver's busy handler blocks in C (in a worker thread
    for aiosqlite), and a short slice is what lets Ctrl-C end the command promptly.  The
    statements go to the driver connection directly, so a failed attempt leaves SQLAlchemy's
    transaction bookkeeping alone.
    """
    dbapi_connection = connection.connection.dbapi_connection
    policy = _policy(connection)
    limit = policy.limit(SQLITE_LOCK_TIMEOUT)
    deadline = time.monotonic() + limit
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
            left_ms = math.ceil((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise LockTimeout(
                    f"gave up after {limit:g} s waiting for the write lock on {where}: another "
                    "process (a migration, or the bot itself in a long transaction) still holds it; "
                    "stop that process or run the command again later"
                )
            if timeout_ms == 0:
                policy.report(
                    f"waiting for the write lock on {where}, held by another process "
                    f"({policy.describe(SQLITE_LOCK_TIMEOUT)}; Ctrl-C to stop)..."
                )
            timeout_ms = min(SQLITE_WAIT_SLICE, left_ms)
    finally:
        _driver_execute(dbapi_connection, f"PRAGMA busy_timeout = {policy.milliseconds(SQLITE_LOCK_TIMEOUT)}")


def _sqlite_file(connection: Connection) -> str:
    return _sqlite_path(connection.engine)


def _sqlite_path(engine: sa.Engine) -> str:
    database = engine.url.database
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
    if is_read_only(connection):
        return
    if connection.dialect.name in MYSQL_DIALECTS:
        _acquire_user_lock(connection)
        return
    if connection.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE (see _make_sqlite_transactional) holds the write lock.
    if not _is_own(connection):
        _advisory_lock(connection, "pg_advisory_xact_lock")
    elif not connection.info.get(_HOLDS_LOCK):
        _advisory_lock(connection, "pg_advisory_lock")
        connection.info[_HOLDS_LOCK] = True


def _advisory_lock(connection: Connection, function: str) -> None:
    """Take the advisory lock: at once if free, else announce the wait and queue for it.

    With a timeout, ``lock_timeout`` is set for the one blocking statement (``SET LOCAL``
    semantics through ``set_config(..., true)``) and put back right after; its expiry
    (SQLSTATE 55P03) becomes :class:`~.errors.LockTimeout`.  The transaction it aborted is
    rolled back by the caller, as after any failed migration.
    """
    try_function = function.replace("pg_advisory", "pg_try_advisory")
    if connection.exec_driver_sql(f"SELECT {try_function}({ADVISORY_LOCK_KEY})").scalar():
        return
    policy = _policy(connection)
    where = hide_password(connection.engine.url)
    policy.report(
        f"waiting for the migration lock on {where}, held by another process "
        f"({policy.describe(None)}; Ctrl-C to stop)..."
    )
    if policy.timeout is None:
        connection.exec_driver_sql(f"SELECT {function}({ADVISORY_LOCK_KEY})")
        return
    before = connection.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar()
    wait_ms = policy.milliseconds(policy.timeout)
    connection.execute(sa.text("SELECT set_config('lock_timeout', :value, true)"), {"value": f"{wait_ms}ms"})
    try:
        connection.exec_driver_sql(f"SELECT {function}({ADVISORY_LOCK_KEY})")
    except sa.exc.DBAPIError as exc:
        if not _is_lock_timeout(exc):
            raise
        raise LockTimeout(
            f"gave up after {policy.timeout:g} s waiting for the migration lock on {where}: another process "
            "is migrating this database (or holds the lock); let it finish, raise the lock timeout, or "
            "try again later"
        ) from None
    connection.execute(sa.text("SELECT set_config('lock_timeout', :value, true)"), {"value": before})


def _is_lock_timeout(exc: sa.exc.DBAPIError) -> bool:
    """SQLSTATE 55P03 (lock_not_available), as psycopg and asyncpg each expose it."""
    return _is_lock_timeout_error(exc.orig)


def _is_lock_timeout_error(orig: BaseException | None) -> bool:
    """:func:`_is_lock_timeout` of the driver's own exception."""
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code == "55P03" or "lock timeout" in str(orig)


# -- MariaDB / MySQL -------------------------------------------------------------------------


def mysql_lock_name(database: str | None) -> str:
    """The ``GET_LOCK`` name of *database*: :data:`MYSQL_LOCK_PREFIX` and its name.

    User locks are server-wide, so two databases on one server get two names; a database
    name too long for :data:`MYSQL_LOCK_NAME_MAX` is replaced by its SHA-1.
    """
    name = MYSQL_LOCK_PREFIX + (database or "")
    if len(name) > MYSQL_LOCK_NAME_MAX:
        name = MYSQL_LOCK_PREFIX + hashlib.sha1((database or "").encode()).hexdigest()
    return name


def _acquire_user_lock(connection: Connection) -> None:
    """``GET_LOCK`` for the migration: at once if free, else announce the wait and queue for it.

    On our own connections it is taken once and held until the connection closes at the end
    of the command (released by :func:`release`, and by the server when the session dies).
    On a caller's connection it is released when the migration transaction ends.
    """
    if _is_own(connection) and connection.info.get(_HOLDS_LOCK):
        return
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar()
    name = mysql_lock_name(database)
    if not _get_lock(connection, name, 0):
        policy = _policy(connection)
        where = hide_password(connection.engine.url)
        policy.report(
            f"waiting for the migration lock on {where}, held by another process "
            f"({policy.describe(None)}; Ctrl-C to stop)..."
        )
        limit = policy.limit(None)
        if not _get_lock(connection, name, MYSQL_NO_LIMIT if limit is None else limit):
            raise LockTimeout(
                f"gave up after {limit:g} s waiting for the migration lock on {where}: another process "
                "is migrating this database (or holds the lock); let it finish, raise the lock timeout, "
                "or try again later"
            )
    if _is_own(connection):
        connection.info[_HOLDS_LOCK] = name
    else:
        _release_when_transaction_ends(connection, name)


def _get_lock(connection: Connection, name: str, timeout: float) -> bool:
    """``GET_LOCK(name, timeout)``: 1 when taken, 0 when the timeout ran out."""
    got = connection.execute(sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout})
    return bool(got.scalar())


#: Callers' connections whose transaction end releases user locks, and the lock names to release.
_RELEASE_AT_END: weakref.WeakKeyDictionary[Connection, set[str]] = weakref.WeakKeyDictionary()


def _release_when_transaction_ends(connection: Connection, name: str) -> None:
    """A caller's connection may go back to its pool: free the lock as its transaction ends.

    Sent on the driver's connection, past SQLAlchemy: a statement through *connection* while
    it commits or rolls back would begin a new transaction.  The two listeners are added once
    per connection and stay: SQLAlchemy does not allow removing a listener while it runs (a
    caller migrating several times on one connection, as pytest-alembic does, would hit that).
    """
    pending = _RELEASE_AT_END.get(connection)
    if pending is None:
        pending = _RELEASE_AT_END[connection] = set()

        def release(conn: Connection) -> None:
            for held in sorted(pending):
                literal = "'" + held.replace("\\", "\\\\").replace("'", "''") + "'"
                _driver_execute(conn.connection.dbapi_connection, f"DO RELEASE_LOCK({literal})")
            pending.clear()

        event.listen(connection, "commit", release)
        event.listen(connection, "rollback", release)
    pending.add(name)


def release(connection: Connection) -> None:
    """Give the migration lock back at the end of a command on our own connection (MariaDB / MySQL).

    Closing the connection frees it too; releasing first makes the next waiter go on at
    once, before the connection's teardown.
    """
    name = connection.info.pop(_HOLDS_LOCK, None)
    if isinstance(name, str) and connection.dialect.name in MYSQL_DIALECTS and not connection.closed:
        connection.execute(sa.text("DO RELEASE_LOCK(:name)"), {"name": name})


# ------------------------------------------------------------------------------------------------
# Revisions that fail half-way on a database whose DDL is not transactional (MariaDB / MySQL).
#
# There every ``CREATE`` / ``ALTER`` / ``DROP`` commits by itself, so a revision failing at its
# second statement cannot be rolled back: its first statement stays applied while the cog's
# version table still names the revision before (Alembic writes the version only after the
# whole ``upgrade()`` ran).  Nothing can undo that for the user, but it can be told exactly:
#
# * while a revision runs, :class:`StatementLog` notes the schema statements it sends; when it
#   fails, :func:`explain` names the statement that failed, the ones that were committed before
#   it, and what to do;
# * :func:`record` leaves that state on the version table itself, as its table comment (no
#   extra table, nothing a cog could own), so that ``nxalembic status`` in any later process
#   can show it (:func:`read`); the next run that moves the cog's version clears it (:func:`clear`).
#
# What can be known is what this package saw: the statements sent through the migration
# connection before the failure.  A process killed part-way (``kill -9``, a lost server) leaves
# no such note; its partial state shows only as tables ahead of the version table.
# ------------------------------------------------------------------------------------------------

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


def explain_partial(log: StatementLog, exc: BaseException, revision: str, before: list[str]) -> str:
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


def record_partial(connection: Connection, log: StatementLog, revision: str, exc: BaseException) -> None:
    """Leave the partial state on the version table's comment, for ``status`` to show later."""
    failed = getattr(exc, "statement", None)
    note = (
        f"{MARKER}revision {revision} failed part-way: {len(log.done)} schema statement"
        f"{'' if len(log.done) == 1 else 's'} of it applied ({'; '.join(log.done)})"
        + (f", then failed: {short(failed)}" if isinstance(failed, str) else "")
    )
    _set_comment(connection, log.version_table, note[:MAX_NOTE])


def read_partial(connection: Connection, version_table: str) -> str | None:
    """The note :func:`record_partial` left on *version_table* (without its marker), or None."""
    if not non_transactional(connection):
        return None
    inspector = sa.inspect(connection)
    if not inspector.has_table(version_table):
        return None
    text = inspector.get_table_comment(version_table).get("text") or ""
    return text[len(MARKER) :] if text.startswith(MARKER) else None


def clear_partial(connection: Connection, version_table: str) -> None:
    """The cog's version moved on: the note of an earlier failure no longer holds.

    The read's implicit transaction is ended again: the next cog's Alembic context must find
    the connection outside a transaction, or it would take it for the caller's and never commit.
    """
    began = not connection.in_transaction()
    try:
        if read_partial(connection, version_table) is not None:
            _set_comment(connection, version_table, "")
    finally:
        if began and connection.in_transaction():
            connection.rollback()


def _set_comment(connection: Connection, table: str, text: str) -> None:
    quoted = connection.dialect.identifier_preparer.quote_identifier(table)
    connection.execute(sa.text(f"ALTER TABLE {quoted} COMMENT = :note"), {"note": text})
    connection.commit()
