"""Fast tier: the migration lock, read-only sessions and the partial-revision note on real servers.

In-process against a throwaway PostgreSQL and MariaDB (tests/servers.py: started once per
session, or by ``make mutation`` once for all mutants), the package's functions called
directly on real connections: a second connection in this process plays the other process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import servers
from nxalembic_templates import engines, locking
from nxalembic_templates.errors import LockTimeout, NXAlembicError

KEY = locking.ADVISORY_LOCK_KEY


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from servers.server_url("postgresql", request)


@pytest.fixture(scope="session")
def mariadb_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from servers.server_url("mariadb", request)


@pytest.fixture(scope="module")
def pg(pg_server_url: str) -> Iterator[str]:
    with servers.database(pg_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def maria(mariadb_server_url: str) -> Iterator[str]:
    with servers.database(mariadb_server_url) as url:
        yield url


def shown(url: str) -> str:
    """How a message names the database of *url*: its password masked."""
    return url.replace(":s3cret-pw@", ":***@")


def engine(url: str, read_only: bool = False, **policy: Any) -> sa.Engine:
    made = engines.create_engine(
        url, read_only=read_only, lock=locking.LockPolicy(**policy) if policy else None
    )
    assert isinstance(made, sa.Engine)
    return made


@pytest.fixture
def plain(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Engines made elsewhere (a caller's): ``plain(url)``; disposed afterwards."""
    made: list[sa.Engine] = []

    def make(url: str) -> sa.Engine:
        made.append(sa.create_engine(url, poolclass=sa.pool.NullPool))
        return made[-1]

    yield make
    for each in made:
        each.dispose()


def later(seconds: float, action: Any) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


# -- PostgreSQL: the advisory lock ---------------------------------------------------------------


def pg_free(url: str) -> bool:
    """Whether another session could take the advisory lock now (and gives it back)."""
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with probe.connect() as connection:
        free = connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({KEY})").scalar()
        if free:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({KEY})")
    probe.dispose()
    return bool(free)


def test_pg_session_lock_is_held_across_commits_until_the_connection_closes(pg: str) -> None:
    own = engine(pg)
    with own.connect() as connection:
        assert locking.configure_options(connection) == {}
        assert not locking.is_read_only(connection)
        with connection.begin():
            locking.acquire(connection)
        assert not pg_free(pg)  # survives the commit
        with connection.begin():
            locking.acquire(connection)  # the next cog: taken once only
        assert connection.info[locking._HOLDS_LOCK] is True
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({KEY})")
        connection.commit()
        assert pg_free(pg)  # one unlock frees it: it was not taken twice
        connection.info.pop(locking._HOLDS_LOCK)
        with connection.begin():
            locking.acquire(connection)
        assert not pg_free(pg)
        locking.release(connection)  # PostgreSQL: closing the connection frees it
        assert not pg_free(pg)
    assert pg_free(pg)
    own.dispose()


def test_pg_a_callers_connection_holds_the_lock_for_its_transaction(pg: str, plain: Any) -> None:
    with plain(pg).connect() as connection:
        with connection.begin():
            locking.acquire(connection)
            assert not pg_free(pg)
            locking.acquire(connection)
        assert pg_free(pg)  # released at commit
        assert locking._HOLDS_LOCK not in connection.info


def test_pg_a_callers_connection_waits_and_says_so_on_stderr(
    pg: str, plain: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, held = hold_pg_lock(pg)
    timer = None
    try:
        with plain(pg).connect() as connection, connection.begin():
            timer, started = later(0.3, held.close), time.monotonic()
            locking.acquire(connection)
            assert 0.2 <= time.monotonic() - started < 5
    finally:
        if timer is not None:
            timer.join()
        held.close()
        holder.dispose()
    assert capsys.readouterr().err == (
        f"waiting for the migration lock on {shown(pg)}, held by another process (no time limit; Ctrl-C to "
        "stop)...\n"
    )


def hold_pg_lock(url: str) -> tuple[sa.Engine, sa.Connection]:
    holder = sa.create_engine(url, poolclass=sa.pool.NullPool)
    connection = holder.connect()
    connection.exec_driver_sql(f"SELECT pg_advisory_lock({KEY})")
    return holder, connection


def test_pg_a_second_migration_waits_says_so_and_gives_up(pg: str) -> None:
    said: list[str] = []
    own = engine(pg, timeout=0.3, report=said.append)
    holder, held = hold_pg_lock(pg)
    try:
        with own.connect() as connection:
            before = connection.exec_driver_sql("SHOW lock_timeout").scalar()
            connection.commit()
            started = time.monotonic()
            with pytest.raises(LockTimeout) as error, connection.begin():
                locking.acquire(connection)
            assert 0.25 <= time.monotonic() - started < 5
            assert locking._HOLDS_LOCK not in connection.info
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == before == "0"
    finally:
        held.close()
        holder.dispose()
    assert str(error.value) == (
        f"gave up after 0.3 s waiting for the migration lock on {shown(pg)}: another process is migrating "
        "this database (or holds the lock); let it finish, raise the lock timeout, or try again later"
    )
    assert said == [
        f"waiting for the migration lock on {shown(pg)}, held by another process (up to 0.3 s; Ctrl-C to "
        "stop)..."
    ]
    own.dispose()


@pytest.mark.parametrize("timeout", [None, 5])
def test_pg_a_second_migration_gets_the_lock_when_it_is_freed(pg: str, timeout: float | None) -> None:
    said: list[str] = []
    own = engine(pg, timeout=timeout, report=said.append)
    holder, held = hold_pg_lock(pg)
    timer = None
    try:
        with own.connect() as connection:
            with connection.begin():
                timer, started = later(0.3, held.close), time.monotonic()
                locking.acquire(connection)
                assert 0.2 <= time.monotonic() - started < 5
                # the revisions run under the session's own lock_timeout again
                assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
            assert not pg_free(pg)
    finally:
        if timer is not None:
            timer.join()
        held.close()
        holder.dispose()
    limit = "no time limit" if timeout is None else "up to 5 s"
    assert said == [
        f"waiting for the migration lock on {shown(pg)}, held by another process ({limit}; Ctrl-C to stop)..."
    ]
    assert pg_free(pg)
    own.dispose()


def test_pg_the_sessions_own_lock_timeout_is_put_back(pg: str) -> None:
    own = engine(pg, timeout=5, report=lambda _line: None)
    holder, held = hold_pg_lock(pg)
    timer = None
    try:
        with own.connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '7s'")
            connection.commit()
            with connection.begin():
                timer = later(0.3, held.close)
                locking.acquire(connection)
                assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "7s"
    finally:
        if timer is not None:
            timer.join()
        held.close()
        holder.dispose()
        own.dispose()


def test_pg_an_error_while_waiting_is_not_a_timeout(pg: str) -> None:
    own = engine(pg, timeout=5, report=lambda _line: None)
    holder, held = hold_pg_lock(pg)
    try:
        with own.connect() as connection:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            connection.commit()
            later(0.3, lambda: held.exec_driver_sql(f"SELECT pg_cancel_backend({pid})"))
            with pytest.raises(sa.exc.OperationalError, match="canceling statement due to user request"):
                with connection.begin():
                    locking.acquire(connection)
    finally:
        time.sleep(0.1)
        held.close()
        holder.dispose()
        own.dispose()


def test_pg_read_only_engines_take_no_lock_and_cannot_write(pg: str) -> None:
    reader = engine(pg, read_only=True)
    holder, held = hold_pg_lock(pg)
    try:
        with reader.connect() as connection:
            assert locking.is_read_only(connection)
            assert locking.configure_options(connection) == {}
            started = time.monotonic()
            with connection.begin():
                locking.acquire(connection)  # does not wait for the holder
            assert time.monotonic() - started < 2
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "0"  # no timeout given
            with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
                connection.exec_driver_sql("CREATE TABLE ro_t (id INTEGER)")
    finally:
        held.close()
        holder.dispose()
        reader.dispose()


def test_pg_a_read_gives_up_after_the_timeout(pg: str) -> None:
    writer = sa.create_engine(pg, poolclass=sa.pool.NullPool)
    with writer.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE read_t (id INTEGER)")
    reader = engine(pg, read_only=True, timeout=0.2)
    locker = writer.connect()
    locker.begin()
    locker.exec_driver_sql("LOCK TABLE read_t IN ACCESS EXCLUSIVE MODE")
    try:
        with reader.connect() as connection:
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == "200ms"
            with pytest.raises(LockTimeout) as error:
                connection.exec_driver_sql("SELECT count(*) FROM read_t")
            connection.rollback()
            with pytest.raises(sa.exc.ProgrammingError, match="nowhere"):  # other errors pass
                connection.exec_driver_sql("SELECT * FROM nowhere")
    finally:
        locker.close()
        writer.dispose()
        reader.dispose()
    assert str(error.value) == (
        f"gave up after 0.2 s waiting to read {shown(pg)}: another process holds a lock on it (a migration, "
        "or a long transaction); let it finish, raise the lock timeout, or try again later"
    )


# -- MariaDB: GET_LOCK -------------------------------------------------------------------------------


def lock_name(url: str) -> str:
    return locking.mysql_lock_name(sa.engine.make_url(url).database)


def maria_free(url: str) -> bool:
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with probe.connect() as connection:
        free = connection.execute(sa.text("SELECT IS_FREE_LOCK(:name)"), {"name": lock_name(url)}).scalar()
    probe.dispose()
    return bool(free)


def test_maria_session_lock_is_held_for_the_command_and_released(maria: str) -> None:
    own = engine(maria)
    with own.connect() as connection:
        assert locking.non_transactional(connection)
        with connection.begin():
            locking.acquire(connection)
        assert not maria_free(maria)  # survives the commit
        with connection.begin():
            locking.acquire(connection)  # the next cog: not taken again (GET_LOCK would count twice)
        assert connection.info[locking._HOLDS_LOCK] == lock_name(maria)
        locking.release(connection)
        assert maria_free(maria)
        assert locking._HOLDS_LOCK not in connection.info
        locking.release(connection)  # nothing held: nothing to do
    with own.connect() as connection, connection.begin():
        locking.acquire(connection)
    assert maria_free(maria)  # the connection closed: the server freed it
    own.dispose()


def test_maria_a_callers_connection_releases_at_the_end_of_each_transaction(maria: str, plain: Any) -> None:
    with plain(maria).connect() as connection:
        for end in ("commit", "rollback", "commit"):
            connection.begin()
            locking.acquire(connection)
            assert not maria_free(maria)
            assert locking._HOLDS_LOCK not in connection.info
            getattr(connection, end)()
            assert maria_free(maria)


def test_maria_lock_names_are_quoted_when_released(mariadb_server_url: str, plain: Any) -> None:
    with servers.database(mariadb_server_url, suffix="'q\\b") as url, plain(url).connect() as connection:
        assert lock_name(url).endswith("'q\\b")
        connection.begin()
        locking.acquire(connection)
        assert not maria_free(url)
        connection.commit()
        assert maria_free(url)


def hold_maria_lock(url: str) -> tuple[sa.Engine, sa.Connection]:
    holder = sa.create_engine(url, poolclass=sa.pool.NullPool)
    connection = holder.connect()
    assert connection.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": lock_name(url)}).scalar() == 1
    return holder, connection


def test_maria_a_second_migration_waits_says_so_and_gives_up(maria: str) -> None:
    said: list[str] = []
    own = engine(maria, timeout=0.5, report=said.append)
    holder, held = hold_maria_lock(maria)
    try:
        with own.connect() as connection:
            started = time.monotonic()
            with pytest.raises(LockTimeout) as error, connection.begin():
                locking.acquire(connection)
            assert 0.4 <= time.monotonic() - started < 5
            assert locking._HOLDS_LOCK not in connection.info
    finally:
        held.close()
        holder.dispose()
    assert str(error.value) == (
        f"gave up after 0.5 s waiting for the migration lock on {shown(maria)}: another process is "
        "migrating this database (or holds the lock); let it finish, raise the lock timeout, or try again "
        "later"
    )
    assert said == [
        f"waiting for the migration lock on {shown(maria)}, held by another process (up to 0.5 s; Ctrl-C to "
        "stop)..."
    ]
    own.dispose()


@pytest.mark.parametrize("timeout", [None, 5])
def test_maria_a_second_migration_gets_the_lock_when_it_is_freed(maria: str, timeout: float | None) -> None:
    said: list[str] = []
    own = engine(maria, timeout=timeout, report=said.append)
    holder, held = hold_maria_lock(maria)
    timer = None
    try:
        with own.connect() as connection:
            with connection.begin():
                timer, started = later(0.3, held.close), time.monotonic()
                locking.acquire(connection)
            assert 0.2 <= time.monotonic() - started < 5
            assert not maria_free(maria)
            locking.release(connection)
    finally:
        if timer is not None:
            timer.join()
        held.close()
        holder.dispose()
        own.dispose()
    limit = "no time limit" if timeout is None else "up to 5 s"
    assert said == [
        f"waiting for the migration lock on {shown(maria)}, held by another process ({limit}; Ctrl-C to "
        "stop)..."
    ]


def test_maria_read_only_engines_take_no_lock_and_cannot_write(maria: str) -> None:
    writer = sa.create_engine(maria, poolclass=sa.pool.NullPool)
    with writer.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE ro_m (id INTEGER)")
    writer.dispose()
    reader = engine(maria, read_only=True)
    with reader.connect() as connection:
        assert locking.is_read_only(connection)
        with connection.begin():
            locking.acquire(connection)
        assert maria_free(maria)
        with pytest.raises(sa.exc.DBAPIError, match="READ ONLY transaction"):
            connection.exec_driver_sql("INSERT INTO ro_m VALUES (1)")
    reader.dispose()


# -- MariaDB: the note a revision failing part-way leaves --------------------------------------------


def test_maria_partial_note_is_recorded_read_and_cleared(maria: str) -> None:
    own = engine(maria)
    table = "alembic_version_music"
    with own.connect() as connection:
        assert locking.read_partial(connection, table) is None  # no version table yet
        connection.exec_driver_sql(
            f"CREATE TABLE {table} (version_num VARCHAR(32)) COMMENT = 'ours, not a note'"
        )
        connection.commit()
        assert locking.read_partial(connection, table) is None  # another comment
        log = locking.StatementLog(table)
        with log.watching(connection):
            connection.exec_driver_sql("CREATE TABLE music_songs (id INTEGER)")
            with pytest.raises(sa.exc.DBAPIError) as failed:
                connection.exec_driver_sql("CREATE TABLE music_songs (id INTEGER)")
        connection.rollback()
        locking.record_partial(connection, log, "r2", failed.value)
        note = (
            "revision r2 failed part-way: 1 schema statement of it applied (CREATE TABLE music_songs "
            "(id INTEGER)), then failed: CREATE TABLE music_songs (id INTEGER)"
        )
        assert not connection.in_transaction()
        assert locking.read_partial(connection, table) == note
        connection.rollback()
    with own.connect() as connection:  # another process reads it
        assert locking.read_partial(connection, table) == note
        connection.rollback()
        locking.clear_partial(connection, table)
        assert not connection.in_transaction()
        assert locking.read_partial(connection, table) is None
        comment = connection.exec_driver_sql(
            f"SELECT table_comment FROM information_schema.tables WHERE table_name = '{table}'"
        ).scalar()
        assert comment == ""
        connection.rollback()
        # a transaction the caller began stays open
        connection.begin()
        locking.clear_partial(connection, table)
        assert connection.in_transaction()
        connection.rollback()
        locking.clear_partial(connection, table)  # nothing to clear: the read's transaction ends too
        assert not connection.in_transaction()
        log = locking.StatementLog(table)
        log.done = ["CREATE TABLE a", "CREATE TABLE b"]
        locking.record_partial(connection, log, "r4", RuntimeError("no statement"))
        assert locking.read_partial(connection, table) == (
            "revision r4 failed part-way: 2 schema statements of it applied (CREATE TABLE a; CREATE TABLE b)"
        )
        connection.rollback()
        log.done = ["ALTER TABLE t ADD COLUMN c INTEGER"] * 100
        locking.record_partial(connection, log, "r3", RuntimeError("no statement"))
        long_note = locking.read_partial(connection, table)
        assert long_note is not None
        assert len(long_note) == locking.MAX_NOTE - len(locking.MARKER)
        assert long_note.startswith("revision r3 failed part-way: 100 schema statements of it applied (ALTER")
        connection.rollback()
    own.dispose()


def test_maria_a_read_gives_up_after_the_timeout(maria: str) -> None:
    """A table another session holds (LOCK TABLES ... WRITE: a metadata lock, as an ALTER takes) keeps a
    read waiting no longer than the lock timeout, rounded up to MariaDB's whole seconds."""
    writer = sa.create_engine(maria, poolclass=sa.pool.NullPool)
    with writer.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE read_m (id INTEGER)")
    reader = engine(maria, read_only=True, timeout=0.2)
    locker = writer.connect()
    locker.exec_driver_sql("LOCK TABLES read_m WRITE")
    try:
        with reader.connect() as connection:
            assert connection.exec_driver_sql("SELECT @@SESSION.lock_wait_timeout").scalar() == 1
            with pytest.raises(LockTimeout) as error:
                connection.exec_driver_sql("SELECT count(*) FROM read_m")
            connection.rollback()
            with pytest.raises(sa.exc.ProgrammingError):  # other errors pass
                connection.exec_driver_sql("SELECT * FROM nowhere")
    finally:
        locker.exec_driver_sql("UNLOCK TABLES")
        locker.close()
        writer.dispose()
        reader.dispose()
    assert str(error.value) == (
        f"gave up after 1 s waiting to read {shown(maria)}: another process holds a lock on it (a migration, "
        "or a long transaction); let it finish, raise the lock timeout, or try again later"
    )


def test_maria_a_killed_wait_for_the_lock_is_one_clear_error(maria: str) -> None:
    """GET_LOCK answers NULL (not 0) when its wait is killed: an error, not "gave up after None s"."""
    said: list[str] = []
    own = engine(maria, report=said.append)  # no timeout: the wait is ended by the kill only
    holder, held = hold_maria_lock(maria)
    found: dict[str, BaseException] = {}

    def migrate() -> None:
        with own.connect() as connection:
            try:
                with connection.begin():
                    locking.acquire(connection)
            except BaseException as exc:  # reported by the test's thread
                found["error"] = exc

    waiter = threading.Thread(target=migrate)
    waiter.start()
    waiting = sa.text(
        "SELECT id FROM information_schema.PROCESSLIST"
        " WHERE state = 'User lock' AND info LIKE 'SELECT GET_LOCK%'"
    )
    try:
        session = None
        while session is None and waiter.is_alive():  # the waiter's GET_LOCK, seen waiting by the server
            session = held.execute(waiting).scalar()
        assert session is not None, found
        held.exec_driver_sql(f"KILL QUERY {int(session)}")
        waiter.join()
    finally:
        held.close()
        holder.dispose()
        own.dispose()
    assert said and said[0].startswith("waiting for the migration lock on ")
    error = found.get("error")
    assert isinstance(error, NXAlembicError) and not isinstance(error, LockTimeout), repr(error)
    assert str(error) == (
        f"could not take the migration lock on {shown(maria)}: the server ended the wait (the session was "
        "killed, or the server is out of memory); try again"
    )
