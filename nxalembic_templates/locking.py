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

Connections handed in by the caller are otherwise used as they are: the caller owns their
transaction handling (on SQLite, whether DDL is transactional is then up to the caller).
"""

from __future__ import annotations

import weakref
import zlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .errors import NXAlembicError, hide_password, remember_url

#: One advisory-lock key for every nxalembic migration in a PostgreSQL database.
ADVISORY_LOCK_KEY = zlib.crc32(b"nxalembic-templates migration lock")

#: How long a second SQLite process waits for the first one's write lock, in seconds.
SQLITE_LOCK_TIMEOUT = 300

#: The (sync) engines made by :func:`create_engine`; their connections close after one command.
_OWN_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()

#: ``Connection.info`` key: this connection already holds the session-level advisory lock.
_HOLDS_LOCK = "nxalembic.holds_migration_lock"


def parse_url(url: str) -> URL:
    """Parse *url* and load its dialect, or fail with one line that never shows the password.

    A URL that cannot be parsed cannot be masked either, so that error repeats nothing of it
    (not even the parser's message, which quotes the part it choked on).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise NXAlembicError(
            f"the database URL cannot be parsed ({type(exc).__name__}); expected "
            "dialect+driver://user:password@host:port/database with special characters in the "
            "user name and password URL-quoted"
        ) from None
    remember_url(parsed)  # from now on no output of this process shows its credentials
    if parsed.host and "@" in parsed.host:
        raise NXAlembicError(
            "the database URL has an '@' after the password: write '@' inside the user name or "
            "password as %40 (URL-quote them, e.g. urllib.parse.quote(password, safe=''))"
        )
    try:
        parsed.get_dialect()
    except Exception as exc:
        raise NXAlembicError(
            hide_password(
                parsed,
                f"cannot use database URL {hide_password(parsed)}: {type(exc).__name__}: {exc}; "
                "check the dialect+driver part and that the driver package is installed",
            )
        ) from None
    return parsed


#: Query keys that carry a credential; :func:`create_engine` hands them to the driver directly.
QUERY_CREDENTIALS = ("password", "sslpassword", "passfile")


def create_engine(url: str) -> sa.Engine | AsyncEngine:
    """A pool-less engine for migrations (async when the URL's driver is async).

    Credentials in the URL's query (``?password=``) go to the driver as connect arguments
    instead: ``engine.url`` is what Alembic and SQLAlchemy print (``alembic current
    --verbose``, logs), and they mask only the password before the host.
    """
    parsed = parse_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {"timeout": SQLITE_LOCK_TIMEOUT} if is_sqlite else {}
    secrets = {key: value for key, value in parsed.query.items() if key in QUERY_CREDENTIALS and isinstance(value, str)}
    if secrets:
        connect_args.update(secrets)
        parsed = parsed.difference_update_query(secrets)
    engine: sa.Engine | AsyncEngine
    if parsed.get_dialect().is_async:
        engine = create_async_engine(parsed, poolclass=sa.pool.NullPool, connect_args=connect_args)
        sync_engine = engine.sync_engine
    else:
        engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool, connect_args=connect_args)
        sync_engine = engine
    if is_sqlite:
        _make_sqlite_transactional(sync_engine)
    _OWN_ENGINES.add(sync_engine)
    return engine


def _make_sqlite_transactional(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _is_own(connection: Connection) -> bool:
    return connection.engine in _OWN_ENGINES


def configure_options(connection: Connection) -> dict[str, Any]:
    """Extra ``context.configure()`` options for a connection made by :func:`create_engine`."""
    if connection.dialect.name == "sqlite" and _is_own(connection):
        return {"transactional_ddl": True}
    return {}


def acquire(connection: Connection) -> None:
    """Take the migration lock inside the already begun migration transaction."""
    if connection.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE (see _make_sqlite_transactional) holds the write lock.
    if not _is_own(connection):
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    elif not connection.info.get(_HOLDS_LOCK):
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})")
        connection.info[_HOLDS_LOCK] = True
