"""Engines that migrate atomically and one process at a time.

Several shards or processes of a bot often start, and migrate, at the same moment.  Every
online run therefore takes a database-level lock for the whole run, inside the migration
transaction:

* **PostgreSQL**: ``pg_advisory_xact_lock`` on one fixed key; PostgreSQL releases it at
  commit or rollback, so a crashed process can never leave it behind.  DDL is transactional,
  so a revision that fails half-way leaves nothing behind.
* **SQLite**: the Python driver normally lets DDL auto-commit statement by statement.  Engines
  made here switch the driver's own transaction handling off and start every transaction
  with ``BEGIN IMMEDIATE``: SQLite's write lock is then held for the whole run (a second
  process waits for it) and the DDL of a failed run is rolled back as a whole.

Connections handed in by the caller (``config.attributes["connection"]``) are used as they
are: the caller owns their transaction handling.
"""

from __future__ import annotations

import zlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

#: One advisory-lock key for every nxalembic migration in a PostgreSQL database.
ADVISORY_LOCK_KEY = zlib.crc32(b"nxalembic-templates migration lock")

#: How long a second SQLite process waits for the first one's write lock, in seconds.
SQLITE_LOCK_TIMEOUT = 300


def create_engine(url: str) -> sa.Engine | AsyncEngine:
    """A pool-less engine for migrations (async when the URL's driver is async)."""
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {"timeout": SQLITE_LOCK_TIMEOUT} if is_sqlite else {}
    engine: sa.Engine | AsyncEngine
    if parsed.get_dialect().is_async:
        engine = create_async_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
        sync_engine = engine.sync_engine
    else:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
        sync_engine = engine
    if is_sqlite:
        _make_sqlite_transactional(sync_engine)
    return engine


def _make_sqlite_transactional(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.info = {"nxalembic.transactional_sqlite": True}  # type: ignore[attr-defined]


def configure_options(connection: Connection) -> dict[str, Any]:
    """Extra ``context.configure()`` options for a connection made by :func:`create_engine`."""
    if getattr(connection.engine, "info", {}).get("nxalembic.transactional_sqlite"):
        return {"transactional_ddl": True}
    return {}


def acquire(connection: Connection) -> None:
    """Take the migration lock inside the already begun migration transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    # SQLite: BEGIN IMMEDIATE (see _make_sqlite_transactional) already holds the write lock.
