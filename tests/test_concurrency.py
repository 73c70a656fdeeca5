"""Two migration processes started at the same moment: one migrates, the other waits and finds nothing to do.

The race is made real and observable, without timing assertions:

* each revision records itself in ``race_log`` (a row per run of its ``upgrade()``) and then
  stops at a *gate* inside ``upgrade()`` — while still holding the migration lock — until the
  test releases it;
* before releasing, the test sees the other process blocked: on PostgreSQL as a lock request
  in ``pg_locks`` that is not granted; on MariaDB as a session in the state ``User lock``
  inside ``GET_LOCK('nxalembic:...')`` (``information_schema.PROCESSLIST``); on SQLite (which
  has no such view) as the other process's own report, ``waiting for the write lock on ...``,
  being the last thing it said
  (while the gated process holds the write lock, the other can only be waiting for it);
* if both processes ever stand inside the same revision at once, the test fails at once.

Afterwards both processes must have exited 0, every revision's ``upgrade()`` must have run
exactly once (one ``race_log`` row each) and each version table must hold one row.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa

from conftest import ALEMBIC, NXALEMBIC, BotProject, Database, Spawned, create_table_op

T = TypeVar("T")

#: How long any single step of the choreography may take before the test gives up.
STEP_TIMEOUT = 120.0
#: What a process waiting for SQLite's write lock says on stderr (see nxalembic_templates.locking).
SQLITE_WAIT_LINE = "waiting for the write lock on "

GATE = '''
def _gate(revision: str) -> None:
    """Stand inside upgrade(), holding the migration lock, until the test says go."""
    folder = Path(os.environ["RACE_GATE"])
    (folder / f"inside-{revision}-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (folder / f"release-{revision}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test never released {revision}")
        time.sleep(0.05)
'''


def racing_revision(
    project: BotProject, cog: str, revision: str, down: str | None, upgrade: str, gate: bool = False
) -> None:
    """A revision (``project.write_revision``) logging its run in race_log; it stops at the gate if asked."""
    body = (
        textwrap.dedent(upgrade).strip()
        + f"\nop.execute(\"INSERT INTO race_log (revision) VALUES ('{revision}')\")"
    )
    if gate:
        body += f"\n_gate({revision!r})"
    project.write_revision(cog, revision, down, body, name="race", preamble=GATE)


create_table = create_table_op


def user_lock_waiter(db: Database, name: str) -> int | None:
    """MariaDB: the connection id of a session of this database blocked in ``GET_LOCK('name...', ...)``."""
    return db.scalar(
        "SELECT MIN(ID) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
        f"AND STATE = 'User lock' AND INFO LIKE '%GET_LOCK(''{name}%'"
    )


class Racer(Spawned):
    """One migration process (output in a file, see Spawned)."""

    def waits_for_sqlite_lock(self) -> bool:
        """Whether the last thing this process said is that it waits for SQLite's write lock."""
        lines = [line for line in self.output().splitlines() if line.strip()]
        return bool(lines) and SQLITE_WAIT_LINE in lines[-1]


class Race:
    """Two (or more) migration commands on one project, started together and refereed."""

    def __init__(self, project: BotProject, tmp_path: Path) -> None:
        self.project = project
        self.gate = tmp_path / "gate"
        self.gate.mkdir()
        project.db.execute("CREATE TABLE race_log (revision VARCHAR(40) NOT NULL)")
        self.racers: list[Racer] = []

    def start(self, *commands: list[str]) -> None:
        """Start every command before waiting for any of them."""
        env = {**os.environ, **self.project.env, "RACE_GATE": str(self.gate)}
        for number, args in enumerate(commands):
            out = self.gate.parent / f"racer{number}.log"
            handle = out.open("w")
            process = subprocess.Popen(
                args,
                cwd=self.project.path,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            handle.close()
            self.racers.append(Racer(process, out))

    def referee(self, revision: str) -> Racer:
        """Wait until one racer is inside *revision* and the other waits for the lock; release it."""

        def holders() -> list[int] | None:
            pids = [int(p.name.rsplit("-", 1)[1]) for p in self.gate.glob(f"inside-{revision}-*")]
            assert len(pids) < 2, f"both processes are inside revision {revision} at once\n{self.outputs()}"
            return pids or None

        [holder] = self.wait_for(holders, f"a process inside revision {revision}")
        [other] = [r for r in self.racers if r.pid != holder]
        if self.project.db.backend in ("postgresql", "mysql"):
            self.wait_for(self.someone_waits_for_a_lock, "the other process to wait for a lock")
        else:
            self.wait_for(
                lambda: other.waits_for_sqlite_lock() or None, "the other process to wait for the lock"
            )
            holders()
        (self.gate / f"release-{revision}").touch()
        return next(r for r in self.racers if r.pid == holder)

    def someone_waits_for_a_lock(self) -> bool | None:
        if self.project.db.backend == "mysql":
            return user_lock_waiter(self.project.db, "nxalembic:") and True
        waiting = self.project.db.scalar(
            "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
            "WHERE NOT pg_locks.granted AND pg_stat_activity.datname = current_database()"
        )
        return True if waiting else None

    def wait_for(self, condition: Callable[[], T | None], what: str) -> T:
        """Poll *condition*; no racer may finish meanwhile (each is gated or waiting for a lock)."""
        deadline = time.monotonic() + STEP_TIMEOUT
        while (result := condition()) is None:
            ended = any(r.process.poll() is not None for r in self.racers)
            assert not ended and time.monotonic() < deadline, f"gave up waiting for {what}\n{self.outputs()}"
            time.sleep(0.05)
        return result

    def finish(self) -> list[str]:
        """Wait for every racer; return their outputs (asserting each exited 0)."""
        for racer in self.racers:
            racer.process.wait(timeout=STEP_TIMEOUT)
        for racer in self.racers:
            assert racer.process.returncode == 0, self.outputs()
        return [r.output() for r in self.racers]

    def kill(self) -> None:
        for racer in self.racers:
            if racer.process.poll() is None:
                racer.process.kill()
                racer.process.wait()

    def outputs(self) -> str:
        return "\n".join(f"--- process {r.pid} ---\n{r.output()}" for r in self.racers)

    def runs(self) -> dict[str, int]:
        """How many times each revision's upgrade() ran (committed)."""
        with self.project.db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT revision, count(*) FROM race_log GROUP BY revision"))
            return {revision: count for revision, count in rows}


@pytest.mark.every_driver  # the lock is taken on the driver's own connection
def test_two_alembic_upgrades_at_once_migrate_exactly_once(project: BotProject, tmp_path: Path) -> None:
    racing_revision(
        project,
        "core",
        "feed00000001",
        None,
        """
        op.create_table(
            "core_users",
            sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("name", sa.String(100), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    """,
        gate=True,
    )
    racing_revision(
        project,
        "core",
        "feed00000002",
        "feed00000001",
        """
        op.add_column("core_users", sa.Column("locale", sa.String(10), nullable=True))
        op.create_index("ix_core_users_locale", "core_users", ["locale"])
    """,
    )
    race = Race(project, tmp_path)
    command = [ALEMBIC, "-x", "cog=core", "upgrade", "head"]
    try:
        race.start(command, command)
        migrator = race.referee("feed00000001")
        outputs = race.finish()
    finally:
        race.kill()

    assert race.runs() == {"feed00000001": 1, "feed00000002": 1}
    assert project.versions("core") == ["feed00000002"]
    assert {"core_users", "alembic_version_core"} <= project.db.tables()
    ran = [out for out in outputs if "Running upgrade  -> feed00000001" in out]
    assert ran == [migrator.output()], race.outputs()
    idle = next(out for out in outputs if out != migrator.output())
    assert "Running upgrade" not in idle


@pytest.mark.every_driver  # the lock is taken on the driver's own connection
def test_two_nxalembic_upgrades_at_once_migrate_every_cog_exactly_once(
    project: BotProject, tmp_path: Path
) -> None:
    revisions = {"core": "beef00000001", "music": "beef00000002", "economy": "beef00000003"}
    for cog, revision in revisions.items():
        racing_revision(project, cog, revision, None, create_table(f"{cog}_race"), gate=True)
    race = Race(project, tmp_path)
    try:
        race.start([NXALEMBIC, "upgrade"], [NXALEMBIC, "upgrade"])
        migrators = {cog: race.referee(revision) for cog, revision in revisions.items()}
        outputs = race.finish()
    finally:
        race.kill()

    assert race.runs() == {revision: 1 for revision in revisions.values()}
    for cog, revision in revisions.items():
        assert project.versions(cog) == [revision]
        assert f"{cog}_race" in project.db.tables()
        applied = [out for out in outputs if f"{cog}: 1 revision applied" in out]
        assert applied == [migrators[cog].output()], race.outputs()
    for out in outputs:
        assert "upgraded 3 cogs" in out


#: Advisory-lock keys the test holds as gates; revisions wait on them (never our migration key).
CORE_GATE, ECONOMY_GATE = 424201, 424203


def documented_lock_key() -> int:
    """The key docs/concurrency.rst promises; the test checks the server sees exactly that."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "concurrency.rst").read_text()
    return int(re.search(r"advisory lock on one fixed key, ``(\d+)``", text).group(1))  # type: ignore[union-attr]


def take_and_hold(engine: sa.Engine, key: int, until: threading.Event) -> None:
    """Queue for *key*, and once it is ours hold it until *until* is set."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        until.wait(STEP_TIMEOUT)
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")


def test_one_nxalembic_run_holds_one_lock_with_the_documented_key_across_its_cogs(
    make_project: Callable[..., BotProject],
) -> None:
    project = make_project("postgresql+asyncpg")
    racing_revision(
        project,
        "core",
        "cafe00000001",
        None,
        f"{create_table('core_race')}\nop.execute('SELECT pg_advisory_xact_lock({CORE_GATE})')",
    )
    racing_revision(project, "music", "cafe00000002", None, create_table("music_race"))
    racing_revision(
        project,
        "economy",
        "cafe00000003",
        None,
        f"{create_table('economy_race')}\nop.execute('SELECT pg_advisory_xact_lock({ECONOMY_GATE})')",
    )
    project.db.execute("CREATE TABLE race_log (revision VARCHAR(40) NOT NULL)")
    key = documented_lock_key()

    def locks(sql_filter: str) -> list[tuple[int, bool]]:
        with project.db.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.text(  # type: ignore[misc]
                        "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                        + sql_filter
                    )
                )
            ]

    def waiter_on(gate: int) -> int | None:
        rows = locks(f"AND classid = 0 AND objid = {gate} AND NOT granted")
        return rows[0][0] if rows else None

    done = threading.Event()
    gates = project.db.engine.connect()
    gates.exec_driver_sql(f"SELECT pg_advisory_lock({CORE_GATE}), pg_advisory_lock({ECONOMY_GATE})")
    gates.commit()
    out = project.path / "nxalembic.log"
    with out.open("w") as handle:
        process = subprocess.Popen(
            [NXALEMBIC, "upgrade"],
            cwd=project.path,
            env={**os.environ, **project.env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:

        def wait_for(condition: Callable[[], T | None], what: str) -> T:
            deadline = time.monotonic() + STEP_TIMEOUT
            while (result := condition()) is None:
                running = process.poll() is None or what.startswith("the contender to get")
                assert running and time.monotonic() < deadline, f"gave up on {what}\n{out.read_text()}"
                time.sleep(0.05)
            return result

        in_core = wait_for(lambda: waiter_on(CORE_GATE), "nxalembic to stand inside core's revision")
        assert locks(f"AND classid = 0 AND objid = {key} AND objsubid = 1") == [(in_core, True)]
        # A contender queues for the migration lock.  Were the lock given up between cogs, the
        # contender would take it when core commits and nxalembic would then wait for it.
        contender = threading.Thread(
            target=take_and_hold, args=(project.db.engine, key, done), name="contender", daemon=True
        )
        contender.start()
        wait_for(lambda: locks(f"AND objid = {key} AND NOT granted") or None, "the contender to queue")
        gates.exec_driver_sql(f"SELECT pg_advisory_unlock({CORE_GATE})")
        gates.commit()

        def inside_economy() -> int | None:
            assert (in_core, False) not in locks(f"AND objid = {key}"), (
                "nxalembic gave the lock up between cogs"
            )
            return waiter_on(ECONOMY_GATE)

        in_economy = wait_for(inside_economy, "nxalembic to stand inside economy's revision")
        assert in_economy == in_core, "every cog must run on the one connection of the run"
        # core and music are committed by now, and the run still holds its one lock
        assert project.versions("music") == ["cafe00000002"]
        assert locks(f"AND classid = 0 AND objid = {key} AND objsubid = 1 AND granted") == [(in_core, True)]
        gates.exec_driver_sql(f"SELECT pg_advisory_unlock({ECONOMY_GATE})")
        gates.commit()
        assert process.wait(timeout=STEP_TIMEOUT) == 0, out.read_text()
        wait_for(lambda: locks(f"AND objid = {key} AND granted") or None, "the contender to get the lock")
    finally:
        done.set()
        for thread in threading.enumerate():
            if thread.name == "contender":
                thread.join(timeout=STEP_TIMEOUT)
        if process.poll() is None:
            process.kill()
            process.wait()
        gates.close()
    assert locks(f"AND objid = {key}") == [], "the lock ends with the run"
    assert project.versions("economy") == ["cafe00000003"]


def documented_lock_name(database: str) -> str:
    """The GET_LOCK name docs/concurrency.rst promises for MariaDB / MySQL."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "concurrency.rst").read_text()
    prefix = re.search(r"``GET_LOCK\('([a-z]+:)<database>', \.\.\.\)``", text).group(1)  # type: ignore[union-attr]
    return prefix + database


def test_on_mariadb_one_nxalembic_run_holds_one_get_lock_with_the_documented_name_across_its_cogs(
    make_project: Callable[..., BotProject],
) -> None:
    """As the PostgreSQL test above: gates are user locks the test holds, revisions wait on them."""
    project = make_project("mysql+aiomysql")
    gate = "SELECT GET_LOCK('test_gate_{}', 120)"
    racing_revision(
        project,
        "core",
        "cafe00000001",
        None,
        f"{create_table('core_race')}\nop.execute({gate.format('core')!r})",
    )
    racing_revision(project, "music", "cafe00000002", None, create_table("music_race"))
    racing_revision(
        project,
        "economy",
        "cafe00000003",
        None,
        f"{create_table('economy_race')}\nop.execute({gate.format('economy')!r})",
    )
    project.db.execute("CREATE TABLE race_log (revision VARCHAR(40) NOT NULL)")
    name = documented_lock_name(str(project.db.engine.url.database))

    def holder() -> int | None:
        return project.db.scalar(f"SELECT IS_USED_LOCK('{name}')")

    gates = project.db.engine.connect()
    assert (
        gates.exec_driver_sql(
            "SELECT GET_LOCK('test_gate_core', 0) + GET_LOCK('test_gate_economy', 0)"
        ).scalar()
        == 2
    )
    contender = project.db.engine.connect()
    out = project.path / "nxalembic.log"
    with out.open("w") as handle:
        process = subprocess.Popen(
            [NXALEMBIC, "upgrade"],
            cwd=project.path,
            env={**os.environ, **project.env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    done = threading.Event()
    try:

        def wait_for(condition: Callable[[], T | None], what: str) -> T:
            deadline = time.monotonic() + STEP_TIMEOUT
            while (result := condition()) is None:
                assert time.monotonic() < deadline, f"gave up on {what}\n{out.read_text()}"
                time.sleep(0.05)
            return result

        in_core = wait_for(
            lambda: user_lock_waiter(project.db, "test_gate_core"), "nxalembic inside core's revision"
        )
        assert holder() == in_core
        # a contender queues for the migration lock; were it given up between cogs, it would get it
        thread = threading.Thread(
            target=lambda: (
                contender.exec_driver_sql(f"SELECT GET_LOCK('{name}', 120)"),
                done.wait(STEP_TIMEOUT),
            ),
            name="contender",
            daemon=True,
        )
        thread.start()
        wait_for(lambda: user_lock_waiter(project.db, name), "the contender to queue")
        gates.exec_driver_sql("DO RELEASE_LOCK('test_gate_core')")

        def inside_economy() -> int | None:
            assert holder() == in_core, "nxalembic gave the lock up between cogs"
            return user_lock_waiter(project.db, "test_gate_economy")

        assert wait_for(inside_economy, "nxalembic inside economy's revision") == in_core
        assert project.versions("music") == ["cafe00000002"]
        gates.exec_driver_sql("DO RELEASE_LOCK('test_gate_economy')")
        assert process.wait(timeout=STEP_TIMEOUT) == 0, out.read_text()
        # RELEASE_LOCK at the end of the run: the contender holds it now
        contender_id = project.db.scalar(
            f"SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> {in_core} "
            f"AND ID = (SELECT IS_USED_LOCK('{name}'))"
        )
        assert contender_id is not None and contender_id != in_core
    finally:
        done.set()
        if process.poll() is None:
            process.kill()
            process.wait()
        for thread_ in threading.enumerate():
            if thread_.name == "contender":
                thread_.join(timeout=STEP_TIMEOUT)
        contender.close()
        gates.close()
    assert holder() is None, "the lock ends with the run"
    assert project.versions("economy") == ["cafe00000003"]
