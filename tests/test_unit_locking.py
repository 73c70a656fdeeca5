"""Fast tier: the migration lock and its timeout, read-only connections, and the record of a
revision that failed part-way on a database without transactional DDL.

In-process on real SQLite files: two connections (in two threads where one must wait) take and
hold SQLite's locks for real.  The PostgreSQL and MariaDB routes need their servers: the server
tests cover them (tests/test_concurrency.py, tests/test_mariadb.py, tests/test_crash_safety.py).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg.exceptions
import psycopg.errors
import pytest
import sqlalchemy as sa

from nxalembic_templates import engines, locking
from nxalembic_templates.errors import LockTimeout

# -- LockPolicy and the timeout ------------------------------------------------------------------------


def test_policy_limit_and_description() -> None:
    default = locking.LockPolicy()
    assert default.timeout is None
    assert default.limit(300) == 300
    assert default.limit(None) is None
    assert default.describe(None) == "no time limit"
    assert default.describe(300) == "up to 300 s"
    assert default.describe(0.5) == "up to 0.5 s"
    given = locking.LockPolicy(timeout=0)
    assert given.limit(300) == 0
    assert given.describe(None) == "up to 0 s"


def test_policy_milliseconds() -> None:
    assert locking.LockPolicy(timeout=1.5).milliseconds(300) == 1500
    assert locking.LockPolicy(timeout=0.0001).milliseconds(300) == 1  # rounded up
    assert locking.LockPolicy(timeout=0).milliseconds(300) == 1  # 0 would be "no limit" on PostgreSQL
    assert locking.LockPolicy().milliseconds(2.0005) == 2001
    assert locking.LockPolicy(timeout=locking.MAX_LOCK_TIMEOUT).milliseconds(1) == locking.MAX_LOCK_TIMEOUT_MS
    assert locking.MAX_LOCK_TIMEOUT_MS == 2**31 - 1
    assert locking.MAX_LOCK_TIMEOUT == 2147483.647


def test_policy_reports_to_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    locking.LockPolicy().report("waiting")
    assert capsys.readouterr().err == "waiting\n"


@pytest.mark.parametrize("timeout", [None, 0, 0.0, 1, 2.5, 2147483, 2147483.647])
def test_timeouts_accepted(timeout: object) -> None:
    locking.check_timeout(timeout)
    assert locking.LockPolicy(timeout=timeout).timeout == timeout  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timeout", "shown"),
    [
        (-1, "-1"),
        (-0.001, "-0.001"),
        (2147483.648, "2147483.648"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (10**400, "1000000000000000000000..."),
        (True, "True"),
        ("5", "'5'"),
        ([5], "[5]"),
        (1234567890123456789012345, "1234567890123456789012345"),
        (12345678901234567890123456, "1234567890123456789012..."),
    ],
)
def test_timeouts_refused(timeout: object, shown: str) -> None:
    with pytest.raises(ValueError) as error:
        locking.check_timeout(timeout)
    assert str(error.value) == f"lock timeout must be a number of seconds from 0 to 2147483.647, not {shown}"
    with pytest.raises(ValueError, match=r"^--lock-timeout must be"):
        locking.check_timeout(timeout, "--lock-timeout")
    with pytest.raises(ValueError):
        locking.LockPolicy(timeout=timeout)  # type: ignore[arg-type]


# -- one migration at a time in this process ------------------------------------------------------------


def hold_in_thread(context: Any) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """Enter *context* in another thread and hold it until the returned ``release`` is set."""
    entered, release = threading.Event(), threading.Event()

    def holder() -> None:
        with context:
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    assert entered.wait(10)
    return entered, release, thread


def test_one_in_process_is_reentrant() -> None:
    with locking.one_in_process(), locking.one_in_process():
        pass
    # released: another thread gets it at once
    said: list[str] = []

    def other() -> None:
        with locking.one_in_process(locking.LockPolicy(timeout=0, report=said.append)):
            said.append("ran")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert said == ["ran"]


def test_one_in_process_waits_and_says_so() -> None:
    _entered, release, thread = hold_in_thread(locking.one_in_process())
    said: list[str] = []
    timer = threading.Timer(0.2, release.set)
    timer.start()
    started = time.monotonic()
    with locking.one_in_process(locking.LockPolicy(report=said.append)):
        waited = time.monotonic() - started
    thread.join()
    assert waited >= 0.15
    assert said == ["waiting for another migration in this process to finish (no time limit)..."]


def test_one_in_process_gives_up_after_the_timeout() -> None:
    _entered, release, thread = hold_in_thread(locking.one_in_process())
    said: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as error:
            with locking.one_in_process(locking.LockPolicy(timeout=0.2, report=said.append)):
                pass
        assert 0.15 <= time.monotonic() - started < 5
    finally:
        release.set()
        thread.join()
    assert str(error.value) == (
        "gave up after 0.2 s waiting for another migration in this process to finish; let it finish, raise "
        "the lock timeout, or try again later"
    )
    assert said == ["waiting for another migration in this process to finish (up to 0.2 s)..."]


def test_one_in_process_reports_to_stderr_without_a_policy(capsys: pytest.CaptureFixture[str]) -> None:
    _entered, release, thread = hold_in_thread(locking.one_in_process())
    timer = threading.Timer(0.1, release.set)
    timer.start()
    with locking.one_in_process():
        pass
    thread.join()
    assert (
        capsys.readouterr().err
        == "waiting for another migration in this process to finish (no time limit)...\n"
    )


# -- SQLite: atomic, one process at a time, read-only -----------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


def engine_for(
    database: Path, read_only: bool = False, policy: locking.LockPolicy | None = None
) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{database}", poolclass=sa.pool.NullPool)
    engines.prepare(engine, read_only, policy)
    return engine


@pytest.fixture
def writer(database: Path) -> Iterator[sa.Engine]:
    engine = engine_for(database)
    yield engine
    engine.dispose()


def test_ddl_of_a_failed_run_is_rolled_back(writer: sa.Engine, database: Path) -> None:
    with writer.connect() as connection:
        assert locking.configure_options(connection) == {"transactional_ddl": True}
        assert not locking.is_read_only(connection)
        with pytest.raises(RuntimeError), connection.begin():
            locking.acquire(connection)  # SQLite: BEGIN IMMEDIATE holds the write lock already
            connection.exec_driver_sql("CREATE TABLE a (id INTEGER)")
            connection.exec_driver_sql("CREATE TABLE b (id INTEGER)")
            raise RuntimeError("revision failed")
        assert sa.inspect(connection).get_table_names() == []
    # the driver's own transaction handling is off: a plain engine sees nothing either
    plain = sa.create_engine(f"sqlite:///{database}")
    with plain.connect() as connection:
        assert sa.inspect(connection).get_table_names() == []
    plain.dispose()


def test_engines_made_elsewhere_are_left_alone(database: Path) -> None:
    plain = sa.create_engine(f"sqlite:///{database}")
    with plain.connect() as connection:
        assert locking.configure_options(connection) == {}
        assert not locking.is_read_only(connection)
        assert locking._policy(connection) == locking.LockPolicy()
    plain.dispose()


def hold_write_lock(database: Path) -> tuple[threading.Event, threading.Thread]:
    """Another connection holding SQLite's write lock (a migration running elsewhere)."""
    holder = sa.create_engine(f"sqlite:///{database}", poolclass=sa.pool.NullPool)
    raw = holder.raw_connection()
    raw.driver_connection.isolation_level = None
    raw.driver_connection.execute("BEGIN IMMEDIATE")
    release = threading.Event()

    def wait() -> None:
        release.wait(10)
        raw.driver_connection.execute("ROLLBACK")
        raw.close()
        holder.dispose()

    thread = threading.Thread(target=wait)
    thread.start()
    return release, thread


def test_a_second_writer_waits_says_so_and_gives_up(database: Path) -> None:
    said: list[str] = []
    engine = engine_for(database, policy=locking.LockPolicy(timeout=0.3, report=said.append))
    release, thread = hold_write_lock(database)
    try:
        started = time.monotonic()
        with pytest.raises(LockTimeout) as error, engine.connect() as connection, connection.begin():
            pass
        assert 0.25 <= time.monotonic() - started < 5
    finally:
        release.set()
        thread.join()
    assert str(error.value) == (
        f"gave up after 0.3 s waiting for the write lock on {database.resolve()}: another process (a "
        "migration, or the bot itself in a long transaction) still holds it; stop that process or run the "
        "command again later"
    )
    assert said == [
        f"waiting for the write lock on {database.resolve()}, held by another process "
        "(up to 0.3 s; Ctrl-C to stop)..."
    ]
    # the lock is free again: at once, and nothing is said
    said.clear()
    with engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        # the busy timeout is the policy's again for the statements of the run
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300
    assert said == []
    engine.dispose()


def test_a_second_writer_gets_the_lock_when_it_is_freed(database: Path) -> None:
    said: list[str] = []
    engine = engine_for(database, policy=locking.LockPolicy(report=said.append))
    release, thread = hold_write_lock(database)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    started = time.monotonic()
    with engine.connect() as connection, connection.begin():
        waited = time.monotonic() - started
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        assert (
            connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == locking.SQLITE_LOCK_TIMEOUT * 1000
        )
    thread.join()
    assert 0.4 <= waited < 5
    assert said == [
        f"waiting for the write lock on {database.resolve()}, held by another process "
        "(up to 300 s; Ctrl-C to stop)..."
    ]
    engine.dispose()


def test_other_errors_of_begin_immediate_are_raised(database: Path) -> None:
    database.write_bytes(b"not a database" * 100)
    engine = engine_for(database, policy=locking.LockPolicy(report=pytest.fail))
    with pytest.raises(sqlite3.DatabaseError, match="file is not a database"):
        with engine.connect() as connection, connection.begin():
            pass
    engine.dispose()


def test_read_only_engines_only_read(database: Path, writer: sa.Engine) -> None:
    with writer.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    reader = engine_for(database, read_only=True)
    with reader.connect() as connection:
        assert locking.is_read_only(connection)
        assert locking.configure_options(connection) == {"transactional_ddl": True}
        locking.acquire(connection)  # no lock at all
        with pytest.raises(sa.exc.OperationalError, match="attempt to write a readonly database"):
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        connection.rollback()
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        assert (
            connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == locking.SQLITE_LOCK_TIMEOUT * 1000
        )
    reader.dispose()


def test_a_reader_does_not_wait_for_a_writer_lock(database: Path, writer: sa.Engine) -> None:
    with writer.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    release, thread = hold_write_lock(database)
    reader = engine_for(database, read_only=True, policy=locking.LockPolicy(timeout=5))
    try:
        started = time.monotonic()
        with reader.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert time.monotonic() - started < 2
    finally:
        release.set()
        thread.join()
        reader.dispose()


def test_a_read_gives_up_after_the_timeout(database: Path, writer: sa.Engine) -> None:
    with writer.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    # an exclusive lock (a commit in progress, BEGIN EXCLUSIVE) holds readers off
    holder = sa.create_engine(f"sqlite:///{database}", poolclass=sa.pool.NullPool)
    raw = holder.raw_connection()
    raw.driver_connection.isolation_level = None
    raw.driver_connection.execute("BEGIN EXCLUSIVE")
    reader = engine_for(database, read_only=True, policy=locking.LockPolicy(timeout=0.2))
    try:
        with pytest.raises(LockTimeout) as error, reader.connect() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM t").scalar()
    finally:
        raw.driver_connection.execute("ROLLBACK")
        raw.close()
        holder.dispose()
        reader.dispose()
    assert str(error.value) == (
        f"gave up after 0.2 s waiting to read {database.resolve()}: another process holds a lock on it (a "
        "migration, or a long transaction); let it finish, raise the lock timeout, or try again later"
    )


def test_other_read_errors_pass(database: Path) -> None:
    reader = engine_for(database, read_only=True, policy=locking.LockPolicy(timeout=0.2))
    with reader.connect() as connection, pytest.raises(sa.exc.OperationalError, match="no such table"):
        connection.exec_driver_sql("SELECT * FROM nowhere")
    reader.dispose()


def test_in_memory_database_name() -> None:
    assert locking.sqlite_where(sa.create_engine("sqlite://")) == "the in-memory database"
    assert locking.sqlite_where(sa.create_engine("sqlite:///:memory:")) == "the in-memory database"
    assert locking.sqlite_where(sa.create_engine("sqlite:///x.db")) == str(Path("x.db").resolve())


def test_release_on_sqlite_only_forgets(writer: sa.Engine) -> None:
    with writer.connect() as connection:
        connection.info[locking._HOLDS_LOCK] = "nxalembic:x"
        locking.release(connection)
        assert locking._HOLDS_LOCK not in connection.info
        locking.release(connection)


# -- names and errors of the server routes ------------------------------------------------------------


def test_mysql_lock_name() -> None:
    assert locking.mysql_lock_name("bot") == "nxalembic:bot"
    assert locking.mysql_lock_name(None) == "nxalembic:"
    longest = "d" * (64 - len("nxalembic:"))
    assert locking.mysql_lock_name(longest) == "nxalembic:" + longest
    # too long: the name's SHA-1, so that two long names stay two locks
    too_long = longest + "d"
    assert locking.mysql_lock_name(too_long) == "nxalembic:" + hashlib.sha1(too_long.encode()).hexdigest()
    assert locking.mysql_lock_name(too_long) != locking.mysql_lock_name(longest + "e")


def test_lock_timeout_errors_of_the_postgresql_drivers() -> None:
    assert locking.is_lock_timeout(psycopg.errors.LockNotAvailable("canceling statement"))
    assert locking.is_lock_timeout(asyncpg.exceptions.LockNotAvailableError("x"))
    assert locking.is_lock_timeout(RuntimeError("canceling statement due to lock timeout"))
    assert not locking.is_lock_timeout(psycopg.errors.DeadlockDetected("deadlock"))
    assert not locking.is_lock_timeout(RuntimeError("x"))
    assert not locking.is_lock_timeout(None)

    class Psycopg2Error(Exception):  # psycopg2 names the SQLSTATE pgcode
        pgcode = "55P03"

    assert locking.is_lock_timeout(Psycopg2Error("canceling statement"))


# -- partial: what a revision that failed part-way left applied ---------------------------------------


def test_short_statements() -> None:
    assert locking.short("CREATE TABLE t (\n    id INTEGER\n)") == "CREATE TABLE t ( id INTEGER )"
    assert locking.short("x" * 120) == "x" * 120
    assert locking.short("x" * 121) == "x" * 117 + "..."
    assert locking.short("abcdef", width=5) == "ab..."


def test_statement_log_notes_schema_statements(writer: sa.Engine) -> None:
    log = locking.StatementLog("alembic_version_music")
    with writer.connect() as connection:
        with log.watching(connection) as watching:
            assert watching is log
            connection.exec_driver_sql("CREATE TABLE music_songs (id INTEGER)")
            connection.exec_driver_sql("  alter TABLE music_songs ADD COLUMN title VARCHAR")
            connection.exec_driver_sql("INSERT INTO music_songs VALUES (1, 'a')")
            connection.exec_driver_sql("SELECT 1")
            connection.exec_driver_sql("CREATE TABLE alembic_version_music (version_num VARCHAR(32))")
            connection.exec_driver_sql("DROP TABLE music_songs")
        connection.exec_driver_sql("CREATE TABLE after (id INTEGER)")  # no longer watched
    assert log.done == [
        "CREATE TABLE music_songs (id INTEGER)",
        "alter TABLE music_songs ADD COLUMN title VARCHAR",
        "DROP TABLE music_songs",
    ]
    log.reset(revision="r1")
    assert log.done == []


def test_statement_log_stops_watching_after_an_error(writer: sa.Engine) -> None:
    log = locking.StatementLog("alembic_version_music")
    with writer.connect() as connection:
        with pytest.raises(RuntimeError), log.watching(connection):
            raise RuntimeError
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    assert log.done == []


def test_explain() -> None:
    log = locking.StatementLog("alembic_version_music")
    assert locking.explain_partial(log, RuntimeError(), "r2", ["r1"]) == ""
    log.done = ["CREATE TABLE a (id INTEGER)"]
    assert locking.explain_partial(log, RuntimeError(), "r2", []) == (
        "; this database commits DDL statement by statement, so it is now between revisions: 1 schema "
        "statement of revision r2 stayed applied (CREATE TABLE a (id INTEGER)) while alembic_version_music "
        "still says no revision; fix revision r2 so that it can run on this partial state (or undo those "
        "statements by hand), then upgrade again"
    )
    log.done = ["CREATE TABLE a", "CREATE TABLE b"]
    failed = sa.exc.OperationalError("CREATE TABLE c (\n  id INT\n)", {}, RuntimeError("boom"))
    assert locking.explain_partial(log, failed, "r2", ["r1", "x1"]) == (
        "; the statement that failed: CREATE TABLE c ( id INT ); this database commits DDL statement by "
        "statement, so it is now between revisions: 2 schema statements of revision r2 stayed applied "
        "(CREATE TABLE a; CREATE TABLE b) while alembic_version_music still says r1, x1; fix revision r2 so "
        "that it can run on this partial state (or undo those statements by hand), then upgrade again"
    )


def test_partial_state_is_a_mysql_matter(writer: sa.Engine) -> None:
    with writer.connect() as connection:
        assert not locking.non_transactional(connection)
        assert locking.read_partial(connection, "alembic_version_music") is None
        # SQLite's DDL is transactional: nothing to read, even where the version table exists
        connection.exec_driver_sql("CREATE TABLE alembic_version_music (version_num VARCHAR(32))")
        assert locking.read_partial(connection, "alembic_version_music") is None
        began = connection.in_transaction()
        locking.clear_partial(connection, "alembic_version_music")
        assert connection.in_transaction() is began
    assert locking.MARKER == "nxalembic: "
    assert locking.MAX_NOTE < 2048
