"""Internal: database URLs and the engines and connections migrations run on.

* URLs: which database a project migrates (:func:`database_url`, the one precedence every
  route asks), parsing with one masked line for every way a URL can be wrong, and relative
  SQLite paths anchored at the project folder;
* engines: pool-less, sync or async by the URL's driver, prepared for migrating
  (:func:`prepare`: transactional SQLite, read-only sessions, reads bounded by the lock
  timeout) so that :mod:`.locking` can take the lock on their connections;
* the sync/async bridge: Alembic always gets a plain sync :class:`Connection`, also on
  ``sqlite+aiosqlite``, ``postgresql+asyncpg`` and ``mysql+asyncmy`` (through ``run_sync``;
  ``aiosqlite`` and ``aiomysql`` URLs open the same database through their sync driver);
* connect errors: one line naming the database, with the password masked.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from . import _compat, locking
from .errors import LockTimeout, NXAlembicError, first_line, hide_password, remember_url
from .settings import Settings, setting_hint

if TYPE_CHECKING:
    from .discovery import BotSchema

__all__ = [
    "anchor_sqlite_path",
    "database_url",
    "missing_sqlite_file",
    "models_url",
    "parse_url",
    "refuse_another_sqlite_file",
    "require_database",
    "with_connection",
]

T = TypeVar("T")


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


#: Async drivers whose database the sync driver of the same dialect opens just the same:
#: ``sqlite+aiosqlite`` runs the standard library's ``sqlite3`` in a worker thread, and
#: ``aiomysql`` is PyMySQL's protocol code driven by asyncio (it depends on PyMySQL and takes
#: the same connect options), on MySQL and MariaDB alike.
SYNC_EQUIVALENT = {
    ("sqlite", "aiosqlite"): "sqlite+pysqlite",
    ("mysql", "aiomysql"): "mysql+pymysql",
    ("mariadb", "aiomysql"): "mariadb+pymysql",
}


def migration_url(parsed: URL) -> URL:
    """The URL migrations connect with: *parsed*, or its sync equivalent (:data:`SYNC_EQUIVALENT`).

    Alembic is synchronous: through an async driver every statement crosses the async bridge
    (``run_sync``, and for aiosqlite a hop to its worker thread and back), which made a
    50-cog ``nxalembic upgrade`` a third slower than the same run through ``sqlite://``.
    ``sqlite+aiosqlite`` is the standard library's ``sqlite3`` behind a thread, so the same
    file is opened with the same SQLite library, options and query parameters either way;
    ``aiomysql`` is PyMySQL under asyncio, so ``mysql+pymysql`` connects the same way.
    Other async drivers (asyncpg, asyncmy) take other connect options than their sync
    counterparts, so they are used as given.
    """
    sync = SYNC_EQUIVALENT.get((parsed.get_backend_name(), parsed.get_driver_name()))
    return parsed.set(drivername=sync) if sync else parsed


def create_engine(
    url: str, read_only: bool = False, lock: locking.LockPolicy | None = None
) -> sa.Engine | AsyncEngine:
    """A pool-less engine for migrations (async when the URL's driver is async).

    *read_only* engines are for comparing only: they never lock and cannot write.  *lock*:
    how long to wait for the migration lock (:class:`.locking.LockPolicy`).
    Credentials in the URL's query (``?password=``) go to the driver as connect arguments
    instead: ``engine.url`` is what Alembic and SQLAlchemy print (``alembic current
    --verbose``, logs), and they mask only the password before the host.  An async SQLite
    URL gets a sync engine on the same file (:func:`migration_url`).
    """
    parsed = migration_url(parse_url(url))
    is_sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {"timeout": locking.SQLITE_LOCK_TIMEOUT} if is_sqlite else {}
    secrets = {
        key: value
        for key, value in parsed.query.items()
        if key in QUERY_CREDENTIALS and isinstance(value, str)
    }
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
    prepare(sync_engine, read_only, lock)
    return engine


#: The placeholder Alembic's own templates write; it means "no URL configured".
PLACEHOLDER_URL = "driver://user:pass@localhost/dbname"


def database_url(
    settings: Settings,
    given: str | None,
    ini_url: Callable[[], str | None],
    models_url: Callable[[], str | None],
) -> str:
    """The database of a project: the one precedence of database URLs, on every route.

    *given* (``-x url=``, the start-up API's ``url=``), then ``url`` of the settings, then
    alembic.ini's ``sqlalchemy.url`` (*ini_url*: Alembic's ``Config`` on Alembic's route,
    :func:`.settings.read_alembic_ini` on the start-up fast path, which reads it the same
    way), then the models' ormar database (*models_url*, :func:`models_url`); each source
    is asked only if needed.  Alembic's placeholder URL counts as unset.  A relative SQLite
    path is anchored at the folder of the settings, so ``alembic -c project/alembic.ini``
    run from elsewhere migrates the project's file.
    """
    if given is not None and not given.strip():
        raise NXAlembicError(
            "-x url= is empty; give a database URL (-x url=sqlite+aiosqlite:///bot.db) or leave -x url= "
            f"out to use url in {settings.path.name}, sqlalchemy.url in alembic.ini or your ormar database"
        )
    sources: tuple[Callable[[], str | None], ...] = (lambda: given, lambda: settings.url, ini_url, models_url)
    for source in sources:
        url = (source() or "").strip()
        if url and url != PLACEHOLDER_URL:
            return anchor_sqlite_path(url, settings.root)
    raise NXAlembicError(
        f"no database URL: set {setting_hint(settings.path, ('url', 'sqlite+aiosqlite:///bot.db'))}, "
        "sqlalchemy.url in alembic.ini, pass -x url=..., or give your ormar models a database"
    )


def models_url(schema: BotSchema) -> str | None:
    """The URL of the models' ormar database: the last source, and the database the bot opens."""
    for cog in schema.cogs.values():
        for model in cog.models:
            database = getattr(model.ormar_config, "database", None)
            url = getattr(database, "url", None)
            if url:
                return str(url)
    return None


def refuse_another_sqlite_file(url: str, schema: BotSchema) -> None:
    """In the bot's own process: the SQLite file migrated must be the one the bot opens.

    The bot's ormar database opens a relative SQLite path against the process's working
    folder, while the migration URL's is anchored at the folder of nxalembic.ini (documented
    for the command line, where the working folder is anyone's guess).  Started elsewhere,
    the bot would find "at head" for a file it never opens and fail on ``no such table``; so
    two different files are refused, naming both.  Other backends are not compared.
    """
    bot_url = models_url(schema)
    if bot_url is None:
        return
    opened = sqlite_file(bot_url, Path.cwd())
    migrated = sqlite_file(url, schema.settings.root)
    if opened is None or migrated is None or opened == migrated:
        return
    raise NXAlembicError(
        f"the bot opens the SQLite database {opened} (its ormar database, a relative path is relative "
        f"to the working folder {Path.cwd()}) but the migrations would go to {migrated} (a relative "
        f"path is relative to {schema.settings.root}, the folder of {schema.settings.path.name}); "
        f"use one absolute path for both, or start the bot in {schema.settings.root}"
    )


def _sqlite_path(url: str) -> tuple[URL, str] | None:
    """*url* parsed and the path of its SQLite file as written (a URI filename without ``file:``).

    ``None`` for in-memory databases (``sqlite://``, ``:memory:``, ``mode=memory``), every
    other backend and a URL that does not parse (that is reported when the engine is made).
    """
    try:
        parsed = make_url(url)
    except Exception:
        return None
    path = (parsed.database or "").removeprefix("file:").split("?", 1)[0]  # file:: ?uri=true
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("mode") == "memory":
        return None
    return None if path in ("", ":memory:") else (parsed, path)


def sqlite_file(url: str, root: Path) -> Path | None:
    """The file a SQLite *url* opens (a relative path against *root*); ``None``: not a SQLite file."""
    found = _sqlite_path(anchor_sqlite_path(url, root))
    return None if found is None else Path(found[1]).resolve()


def anchor_sqlite_path(url: str, root: Path) -> str:
    """*url* with a relative SQLite file path made absolute against *root*; any other *url* unchanged."""
    found = _sqlite_path(url)
    if found is None or Path(found[1]).is_absolute():
        return url
    parsed, path = found
    prefix = "file:" if (parsed.database or "").startswith("file:") else ""
    return parsed.set(database=f"{prefix}{(root / path).resolve()}").render_as_string(hide_password=False)


def missing_sqlite_file(url: str) -> Path | None:
    """The file of SQLite *url* when it does not exist (connecting would create it), else ``None``."""
    found = _sqlite_path(url)
    if found is None or Path(found[1]).exists():
        return None
    return Path(found[1]).absolute()


def require_database(url: str) -> None:
    """Refuse to read a SQLite file that does not exist: reading would create an empty one.

    ``status``, ``check`` and the start-up API's ``verify`` only read; a missing file means
    no migration ever ran, and ``upgrade`` is what creates it.
    """
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise NXAlembicError(f"database {missing} does not exist; run 'nxalembic upgrade' to create it")


def with_connection(
    url: str, work: Callable[[Connection], T], read_only: bool = False, lock: locking.LockPolicy | None = None
) -> T:
    """Open one migration connection to *url* (sync or async driver) and run *work* on it.

    Async URLs (``sqlite+aiosqlite``, ``postgresql+asyncpg``) get an async engine and *work*
    runs through ``run_sync``, so Alembic itself always sees a plain sync connection.
    A *read_only* connection can only compare (see :mod:`.locking`).

    The async route runs its own event loop (``asyncio.run``), so it must not be called from
    a thread whose loop is running: the start-up API (:mod:`.startup`) calls it from a worker
    thread, which has none.
    """
    engine = create_engine(url, read_only=read_only, lock=lock)
    if isinstance(engine, AsyncEngine):
        return asyncio.run(_with_async_connection(engine, url, work))
    try:
        try:
            connection = engine.connect()
        except Exception as exc:
            raise connect_error(url, exc) from exc
        with connection:
            try:
                return work(connection)
            finally:
                locking.release(connection)
    finally:
        engine.dispose()


async def _with_async_connection(engine: AsyncEngine, url: str, work: Callable[[Connection], T]) -> T:
    try:
        try:
            connection = await engine.connect()
        except Exception as exc:
            raise connect_error(url, exc) from exc
        try:
            return await connection.run_sync(work)
        finally:
            await connection.run_sync(locking.release)
            await connection.close()
    finally:
        await engine.dispose()


def connect_error(url: str, exc: BaseException) -> NXAlembicError:
    """The database at *url* cannot be reached: say which (masked), why, and what to check."""
    return NXAlembicError(
        hide_password(
            url,
            f"cannot connect to database {hide_password(url)}: {first_line(exc)}; check the URL "
            "(-x url=, nxalembic.ini url, alembic.ini sqlalchemy.url or your ormar database) "
            "and that the server is running",
        )
    )


# -- Preparing an engine for migrating (the lock itself is locking.py's) ----------------------


def prepare(engine: sa.Engine, read_only: bool, policy: locking.LockPolicy | None) -> None:
    """Make *engine* (of :func:`create_engine`) migrate atomically, or only read (see :mod:`.locking`).

    SQLite: the driver's own transaction handling off, every transaction ``BEGIN IMMEDIATE``
    (:func:`.locking.begin_immediate`), or, *read_only*, a deferred ``BEGIN`` and ``PRAGMA
    query_only``; the servers: *read_only* sessions.  Reads are bounded by *policy*'s timeout
    (default: no timeout but SQLite's; the wait is reported on stderr).  Connections of other
    engines (handed in by a caller) are left as they are.
    """
    if engine.dialect.name == "sqlite":
        _prepare_sqlite(engine, read_only)
    elif read_only:
        _make_read_only(engine)
    locking.own(engine, read_only, policy)
    if read_only:
        _prepare_reads(engine, policy or locking.LockPolicy())


def _prepare_reads(engine: sa.Engine, policy: locking.LockPolicy) -> None:
    """A read waits for another process's lock no longer than *policy*'s timeout, then LockTimeout.

    A writer can hold a read off (SQLite's exclusive lock; PostgreSQL's ``ACCESS EXCLUSIVE`` on a
    version table): SQLite's busy timeout (default :data:`.locking.SQLITE_LOCK_TIMEOUT`) and,
    when a timeout is given, PostgreSQL's session ``lock_timeout`` and MariaDB / MySQL's
    ``lock_wait_timeout`` (whole seconds, rounded up) bound the start-up fast path's read,
    ``verify`` and ``status``.  Its expiry is one line naming the database.
    """
    sqlite = engine.dialect.name == "sqlite"
    mysql = engine.dialect.name in locking.MYSQL_DIALECTS
    limit = policy.limit(locking.SQLITE_LOCK_TIMEOUT if sqlite else None)
    if mysql and limit is not None:
        limit = max(1, math.ceil(limit))  # lock_wait_timeout counts whole seconds
    if sqlite or (limit is not None and (mysql or engine.dialect.name == "postgresql")):
        if sqlite:
            setting = f"PRAGMA busy_timeout = {policy.milliseconds(locking.SQLITE_LOCK_TIMEOUT)}"
        elif mysql:
            setting = f"SET SESSION lock_wait_timeout = {limit}"
        else:
            setting = f"SET lock_timeout = {policy.milliseconds(locking.SQLITE_LOCK_TIMEOUT)}"

        @sa.event.listens_for(engine, "connect")
        def _wait_no_longer(dbapi_connection: Any, _record: Any) -> None:
            locking.driver_execute(dbapi_connection, setting)

    @sa.event.listens_for(engine, "handle_error")
    def _lock_wait_expired(context: sa.engine.ExceptionContext) -> None:
        error = context.original_exception
        if not (("database is locked" in str(error)) if sqlite else locking.is_lock_timeout(error)):
            return
        where = locking.sqlite_where(engine) if sqlite else hide_password(engine.url)
        raise LockTimeout(
            f"gave up {'' if limit is None else f'after {limit:g} s '}waiting to read {where}: another "
            "process holds a lock on it (a migration, or a long transaction); let it finish, raise the "
            "lock timeout, or try again later"
        )


def _make_read_only(engine: sa.Engine) -> None:
    """PostgreSQL, MariaDB / MySQL: every transaction of this engine's connections is READ ONLY."""

    @sa.event.listens_for(engine, "connect")
    def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
        if engine.dialect.name in locking.MYSQL_DIALECTS:
            locking.driver_execute(dbapi_connection, "SET SESSION TRANSACTION READ ONLY")
            return
        with suppress(NotImplementedError):  # a driver SQLAlchemy cannot switch: the code still only reads
            _compat.set_read_only(engine.dialect, dbapi_connection)  # PostgreSQL's dialects only


def _prepare_sqlite(engine: sa.Engine, read_only: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        if read_only:
            locking.driver_execute(dbapi_connection, "PRAGMA query_only = ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        if read_only:
            connection.exec_driver_sql("BEGIN")  # deferred: reads need no write lock
        else:
            locking.begin_immediate(connection)
