"""Internal: one migration at a time, atomic where the database allows, and what a failed one leaves.

Every online run takes one database-wide lock before Alembic reads the version table
(:func:`acquire`): PostgreSQL's advisory lock (session-level on our own connections,
transaction-level on a caller's), MariaDB / MySQL's ``GET_LOCK()`` on one name per database, and
SQLite's ``BEGIN IMMEDIATE`` (:func:`begin_immediate`).  A crashed process's lock goes with its
connection; read-only runs take none.  The lock is first tried without waiting; a wait is
announced in one line (:class:`LockPolicy`) and bounded by its timeout.  A revision failing half-way
on MariaDB / MySQL (DDL commits statement by statement) leaves a note (:func:`record_partial`).
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from .errors import LockTimeout, NXAlembicError, hide_password

__all__ = [
    "MAX_LOCK_TIMEOUT",
    "MYSQL_DIALECTS",
    "SQLITE_LOCK_TIMEOUT",
    "LockPolicy",
    "StatementLog",
    "acquire",
    "begin_immediate",
    "check_timeout",
    "clear_partial",
    "configure_options",
    "driver_execute",
    "explain_partial",
    "is_lock_timeout",
    "is_read_only",
    "non_transactional",
    "one_in_process",
    "own",
    "read_partial",
    "record_partial",
    "release",
    "sqlite_where",
    "to_stderr",
]

#: One advisory-lock key for every nxalembic migration in a PostgreSQL database.
ADVISORY_LOCK_KEY = zlib.crc32(b"nxalembic-templates migration lock")
#: MariaDB / MySQL: the ``GET_LOCK`` name (:func:`mysql_lock_name`), and the wait without a timeout.
MYSQL_LOCK_PREFIX = "nxalembic:"
MYSQL_LOCK_NAME_MAX = 64
MYSQL_NO_LIMIT = 365 * 24 * 3600
#: The dialect names of MySQL and MariaDB.
MYSQL_DIALECTS = ("mysql", "mariadb")
#: How long a second SQLite process waits for the first one's write lock, in seconds.
SQLITE_LOCK_TIMEOUT = 300
#: How long one attempt at SQLite's write lock may block, in milliseconds (so that Ctrl-C is seen).
SQLITE_WAIT_SLICE = 200
#: The longest lock timeout: PostgreSQL's ``lock_timeout`` and SQLite's busy timeout are C ``int`` ms.
MAX_LOCK_TIMEOUT_MS = 2**31 - 1
#: The same in seconds.
MAX_LOCK_TIMEOUT = MAX_LOCK_TIMEOUT_MS / 1000

#: A default timeout of :meth:`LockPolicy.limit`: seconds, or ``None`` (no limit).
Default = TypeVar("Default", bound=float | None)

#: The engines :func:`.engines.prepare` was given (their connections close after one command):
#: whether read-only, and their policy.
_OWN_ENGINES: WeakKeyDictionary[sa.Engine, tuple[bool, LockPolicy | None]] = WeakKeyDictionary()

#: ``Connection.info`` key: this connection already holds the session-level lock (its name on MariaDB).
_HOLDS_LOCK = "nxalembic.holds_migration_lock"


def to_stderr(text: str) -> None:
    """Print *text* as one line of the command's progress on stderr."""
    print(text, file=sys.stderr, flush=True)  # sys.stderr when called: pytest's capture sees it


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration waits for the lock, and who is told (stderr, or the start-up API's log)."""

    #: Seconds to wait at most; ``None``: :data:`SQLITE_LOCK_TIMEOUT` on SQLite, no limit on PostgreSQL.
    timeout: float | None = None
    #: Called with one line when the lock is held by another process and the wait begins.
    report: Callable[[str], None] = to_stderr

    def __post_init__(self) -> None:
        check_timeout(self.timeout)

    def limit(self, default: Default) -> float | Default:
        """The timeout in seconds: this policy's, else *default* (``None``: no limit)."""
        return self.timeout if self.timeout is not None else default

    def describe(self, default: float | None) -> str:
        limit = self.limit(default)
        return "no time limit" if limit is None else f"up to {limit:g} s"

    def milliseconds(self, default: float) -> int:
        """The timeout in whole milliseconds, rounded up: at least 1 (PostgreSQL reads 0 as "no limit")."""
        return min(MAX_LOCK_TIMEOUT_MS, max(1, math.ceil(self.limit(default) * 1000)))


def check_timeout(timeout: object, name: str = "lock timeout") -> None:
    """Refuse, in one line, a lock timeout that is not ``None`` or 0 to :data:`MAX_LOCK_TIMEOUT` s."""
    if timeout is None or (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and 0 <= timeout <= MAX_LOCK_TIMEOUT
    ):
        return
    shown = repr(timeout)
    shown = shown if len(shown) <= 25 else shown[:22] + "..."
    raise ValueError(f"{name} must be a number of seconds from 0 to {MAX_LOCK_TIMEOUT}, not {shown}")


#: One migration at a time in this process; re-entrant: a command holding it may run others.
_IN_PROCESS = threading.RLock()


@contextmanager
def one_in_process(policy: LockPolicy | None = None) -> Iterator[None]:
    """Let one migration (anything that runs ``env.py``) run in this process at a time: Alembic's
    ``context`` and ``op`` are one per process.  The second waits (told by *policy*, bounded by its
    timeout) before its connection opens, so it never holds a database lock meanwhile."""
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


def own(engine: sa.Engine, read_only: bool, policy: LockPolicy | None) -> None:
    """Remember *engine* as prepared by :func:`.engines.prepare`: its connections get the lock handling."""
    _OWN_ENGINES[engine] = (read_only, policy)


def _policy(connection: Connection) -> LockPolicy:
    return _OWN_ENGINES.get(connection.engine, (False, None))[1] or LockPolicy()


def driver_execute(dbapi_connection: Any, sql: str) -> None:
    """Run *sql* on the driver's connection (sync, or an async driver's adapter)."""
    with closing(dbapi_connection.cursor()) as cursor:
        cursor.execute(sql)


def sqlite_where(engine: sa.Engine) -> str:
    """How messages name a SQLite database: its absolute path, or the in-memory database."""
    database = engine.url.database
    return str(Path(database).resolve()) if database and database != ":memory:" else "the in-memory database"


def configure_options(connection: Connection) -> dict[str, Any]:
    """Extra ``context.configure()`` options for a connection of an engine :func:`.engines.prepare` made."""
    if connection.dialect.name == "sqlite" and connection.engine in _OWN_ENGINES:
        return {"transactional_ddl": True}
    return {}


def is_read_only(connection: Connection) -> bool:
    """Whether *connection* comes from an engine :func:`.engines.prepare` made read-only."""
    return _OWN_ENGINES.get(connection.engine, (False, None))[0]


def acquire(connection: Connection) -> None:
    """Take the migration lock inside the already begun migration transaction."""
    if is_read_only(connection):
        return
    if connection.dialect.name in MYSQL_DIALECTS:
        _acquire_user_lock(connection)
    elif connection.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE (see engines.prepare) holds the write lock.
    elif connection.engine not in _OWN_ENGINES:
        _advisory_lock(connection, "pg_advisory_xact_lock")
    elif not connection.info.get(_HOLDS_LOCK):
        _advisory_lock(connection, "pg_advisory_lock")
        connection.info[_HOLDS_LOCK] = True


def begin_immediate(connection: Connection) -> None:
    """``BEGIN IMMEDIATE``; when another process holds the write lock, say so, then wait in slices
    (on the driver's connection: a failed attempt leaves SQLAlchemy's bookkeeping alone)."""
    dbapi_connection = connection.connection.dbapi_connection
    policy = _policy(connection)
    limit = policy.limit(SQLITE_LOCK_TIMEOUT)
    deadline = time.monotonic() + limit
    timeout_ms = 0
    try:
        while True:
            driver_execute(dbapi_connection, f"PRAGMA busy_timeout = {timeout_ms}")
            try:
                driver_execute(dbapi_connection, "BEGIN IMMEDIATE")
                return
            except Exception as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
            where = sqlite_where(connection.engine)
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
        driver_execute(dbapi_connection, f"PRAGMA busy_timeout = {policy.milliseconds(SQLITE_LOCK_TIMEOUT)}")


def _announce_wait(connection: Connection) -> tuple[LockPolicy, str]:
    """The server's lock is held by another process: say so; the policy, and the database named."""
    policy = _policy(connection)
    where = hide_password(connection.engine.url)
    policy.report(
        f"waiting for the migration lock on {where}, held by another process "
        f"({policy.describe(None)}; Ctrl-C to stop)..."
    )
    return policy, where


def _gave_up(limit: float | None, where: str) -> LockTimeout:
    return LockTimeout(
        f"gave up after {limit:g} s waiting for the migration lock on {where}: another process is "
        "migrating this database (or holds the lock); let it finish, raise the lock timeout, or try "
        "again later"
    )


def _advisory_lock(connection: Connection, function: str) -> None:
    """PostgreSQL's advisory lock: at once if free, else announce the wait and queue for it, with
    ``lock_timeout`` set (``SET LOCAL``) for that one statement; the caller rolls back on expiry."""
    try_function = function.replace("pg_advisory", "pg_try_advisory")
    if connection.exec_driver_sql(f"SELECT {try_function}({ADVISORY_LOCK_KEY})").scalar():
        return
    policy, where = _announce_wait(connection)
    if policy.timeout is None:
        connection.exec_driver_sql(f"SELECT {function}({ADVISORY_LOCK_KEY})")
        return
    before = connection.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar()
    set_lock_timeout = sa.text("SELECT set_config('lock_timeout', :value, true)")
    connection.execute(set_lock_timeout, {"value": f"{policy.milliseconds(policy.timeout)}ms"})
    try:
        connection.exec_driver_sql(f"SELECT {function}({ADVISORY_LOCK_KEY})")
    except sa.exc.DBAPIError as exc:
        if not is_lock_timeout(exc.orig):
            raise
        raise _gave_up(policy.timeout, where) from None
    connection.execute(set_lock_timeout, {"value": before})


def is_lock_timeout(orig: BaseException | None) -> bool:
    """A driver's exception is a lock wait that timed out: PostgreSQL's SQLSTATE 55P03
    (lock_not_available, as psycopg and asyncpg expose it), MariaDB / MySQL's error 1205."""
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    mysql_code = getattr(orig, "args", None) or (None,)
    return code == "55P03" or mysql_code[0] == 1205 or "lock timeout" in str(orig)


def mysql_lock_name(database: str | None) -> str:
    """The ``GET_LOCK`` name of *database* (user locks are server-wide); a long name by its SHA-1."""
    name = MYSQL_LOCK_PREFIX + (database or "")
    if len(name) > MYSQL_LOCK_NAME_MAX:
        name = MYSQL_LOCK_PREFIX + hashlib.sha1((database or "").encode()).hexdigest()
    return name


def _acquire_user_lock(connection: Connection) -> None:
    """``GET_LOCK``: at once if free, else announce the wait and queue for it; held until
    :func:`release` on our own connections, until the transaction ends on a caller's."""
    if connection.engine in _OWN_ENGINES and connection.info.get(_HOLDS_LOCK):
        return
    name = mysql_lock_name(connection.exec_driver_sql("SELECT DATABASE()").scalar())
    get_lock = sa.text("SELECT GET_LOCK(:name, :timeout)")
    if not connection.execute(get_lock, {"name": name, "timeout": 0}).scalar():
        policy, where = _announce_wait(connection)
        limit = policy.limit(None)
        got = connection.execute(
            get_lock, {"name": name, "timeout": MYSQL_NO_LIMIT if limit is None else limit}
        ).scalar()
        if got is None:  # GET_LOCK's NULL: the wait was killed, or the server failed
            raise NXAlembicError(
                f"could not take the migration lock on {where}: the server ended the wait (the session "
                "was killed, or the server is out of memory); try again"
            )
        if not got:
            raise _gave_up(limit, where)
    if connection.engine in _OWN_ENGINES:
        connection.info[_HOLDS_LOCK] = name
    else:
        _release_when_transaction_ends(connection, name)


#: Callers' connections whose transaction end releases user locks, and the lock names to release.
_RELEASE_AT_END: WeakKeyDictionary[Connection, set[str]] = WeakKeyDictionary()


def _release_when_transaction_ends(connection: Connection, name: str) -> None:
    """A caller's connection may go back to its pool: free the lock as its transaction ends, on the
    driver's connection (not to begin another).  The listeners stay: none can be removed while it runs."""
    pending = _RELEASE_AT_END.get(connection)
    if pending is None:
        pending = _RELEASE_AT_END[connection] = set()

        def release(conn: Connection) -> None:
            for held in sorted(pending):
                literal = "'" + held.replace("\\", "\\\\").replace("'", "''") + "'"
                driver_execute(conn.connection.dbapi_connection, f"DO RELEASE_LOCK({literal})")
            pending.clear()

        event.listen(connection, "commit", release)
        event.listen(connection, "rollback", release)
    pending.add(name)


def release(connection: Connection) -> None:
    """MariaDB / MySQL: give the lock back at the end of a command, before the connection closes."""
    name = connection.info.pop(_HOLDS_LOCK, None)
    if isinstance(name, str) and connection.dialect.name in MYSQL_DIALECTS and not connection.closed:
        connection.execute(sa.text("DO RELEASE_LOCK(:name)"), {"name": name})


# -- A revision failing half-way on MariaDB / MySQL: what it sent (StatementLog), in the error and
# on the version table's comment, shown by ``status`` until the version moves (clear_partial).

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
    text = " ".join(statement.split())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class StatementLog:
    """The schema statements of the revision now running, as the connection sends them."""

    version_table: str
    done: list[str] = field(default_factory=list)

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

    def applied(self) -> str:
        return f"{len(self.done)} schema statement{'' if len(self.done) == 1 else 's'}"


def _failed(exc: BaseException) -> str | None:
    failed = getattr(exc, "statement", None)
    return short(failed) if isinstance(failed, str) else None


def explain_partial(log: StatementLog, exc: BaseException, revision: str, before: list[str]) -> str:
    """The error message's tail: where the database is left (*before*: the version rows at the start)
    and what to do; empty when no statement was committed."""
    if not log.done:
        return ""
    failed = _failed(exc)
    return (
        f"{f'; the statement that failed: {failed}' if failed else ''}; this database commits DDL "
        f"statement by statement, so it is now between revisions: {log.applied()} of revision "
        f"{revision} stayed applied ({'; '.join(log.done)}) while {log.version_table} still says "
        f"{', '.join(before) or 'no revision'}; fix revision {revision} so that it can run on this "
        "partial state (or undo those statements by hand), then upgrade again"
    )


def record_partial(connection: Connection, log: StatementLog, revision: str, exc: BaseException) -> None:
    """Leave the partial state on the version table's comment, for ``status`` to show later."""
    failed = _failed(exc)
    note = (
        f"{MARKER}revision {revision} failed part-way: {log.applied()} of it applied "
        f"({'; '.join(log.done)}){f', then failed: {failed}' if failed else ''}"
    )
    _set_comment(connection, log.version_table, note[:MAX_NOTE])


def read_partial(connection: Connection, version_table: str) -> str | None:
    """The note :func:`record_partial` left on *version_table* (without its marker), or None."""
    if not non_transactional(connection) or not sa.inspect(connection).has_table(version_table):
        return None
    text = sa.inspect(connection).get_table_comment(version_table).get("text") or ""
    return text[len(MARKER) :] if text.startswith(MARKER) else None


def clear_partial(connection: Connection, version_table: str) -> None:
    """The cog's version moved on: drop the note.  The read's implicit transaction is ended (the next
    cog's Alembic context would take it for the caller's, and never commit)."""
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
