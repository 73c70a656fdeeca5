"""Eight shards of one bot starting together on one database: every revision runs exactly once.

A rolling restart or a sharded bot starts many processes at the same moment, each migrating
at start-up.  Eight real processes on one copy of the example bot wait at a barrier (each
announces itself, then blocks reading its stdin until the test closes them all), so they
start migrating together.  Each revision records its run in ``shard_log`` and creates a
table (a second run would fail on it); the first revision stops at a gate inside
``upgrade()``, holding the migration lock, until the test has seen the seven others wait:

* PostgreSQL: seven lock requests in ``pg_locks`` that are not granted;
* MariaDB: seven sessions in the state ``User lock`` inside ``GET_LOCK('nxalembic:...')``;
* SQLite: each of the seven others' last words are the lock-wait report
  (``waiting for the write lock on ...``).

If two processes ever stand inside the revision at once, the test fails.  Afterwards every
process exited 0 and is at head, and each revision was applied by exactly one of them and ran
once (on SQLite a later cog may be applied by another process: the write lock ends with
each cog's transaction, while PostgreSQL's advisory lock and MariaDB's GET_LOCK last the whole
run).  Both ways of migrating are tested: the start-up API in the bot process, and
``nxalembic upgrade`` as the deploy step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import BotProject
from startup_bots import STEP_TIMEOUT, Starter, create_table, start, stop, wait_for

SHARDS = 8
#: What a process waiting for SQLite's write lock reports (see nxalembic_templates.locking).
SQLITE_WAIT_LINE = "waiting for the write lock on "
REVISIONS = {"core": "shard0001", "music": "shard0002", "economy": "shard0003"}

GATE = """
folder = Path(os.environ["SHARD_GATE"])
(folder / f"inside-{os.getpid()}").touch()
deadline = time.monotonic() + 120
while not (folder / "release").exists():  # the test releases the gate once it saw the others wait
    if time.monotonic() > deadline:
        raise RuntimeError("the test never released the gate")
    time.sleep(0.05)
"""


def write_revisions(project: BotProject) -> None:
    for cog, revision in REVISIONS.items():
        body = (
            f"{create_table(f'{cog}_shard')}\n"
            f"op.execute(\"INSERT INTO shard_log (revision) VALUES ('{revision}')\")"
        )
        project.write_revision(cog, revision, None, body + (GATE if cog == "core" else ""))
    project.db.execute("CREATE TABLE shard_log (revision VARCHAR(40) NOT NULL)")


def waiting_sessions(project: BotProject) -> int:
    if project.db.backend == "mysql":  # sessions of this database blocked in GET_LOCK('nxalembic:...')
        return int(
            project.db.scalar(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                "AND STATE = 'User lock' AND INFO LIKE '%GET_LOCK(''nxalembic:%'"
            )
        )
    return int(
        project.db.scalar(
            "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
            "WHERE NOT pg_locks.granted AND pg_stat_activity.datname = current_database()"
        )
    )


@pytest.mark.parametrize("mode", ["api", "cli"])
@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"])
def test_eight_processes_starting_together_apply_each_revision_once(
    make_project: Callable[..., BotProject],
    tmp_path: Path,
    backend: str,
    mode: str,
) -> None:
    project = make_project(backend)
    write_revisions(project)
    gate = tmp_path / "gate"
    gate.mkdir()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    starters: list[Starter] = []
    try:
        starters += [
            start(project, mode, barrier, f"shard{n}", env={"SHARD_GATE": str(gate)}, barrier=True)
            for n in range(SHARDS)
        ]
        wait_for(
            lambda: len(list(barrier.glob("ready-*"))) == SHARDS or None,
            "every shard at the barrier",
            starters,
        )
        for starter in starters:  # go
            assert starter.process.stdin is not None
            starter.process.stdin.close()

        def inside() -> int | None:
            pids = [int(p.name.split("-")[1]) for p in gate.glob("inside-*")]
            assert len(pids) < 2, "two processes inside the same revision at once"
            return pids[0] if pids else None

        holder = wait_for(inside, "a process inside core's first revision", starters)
        others = [s for s in starters if s.pid != holder]
        if project.db.backend in ("postgresql", "mysql"):
            wait_for(
                lambda: waiting_sessions(project) == SHARDS - 1 or None, "seven sessions waiting", starters
            )
        else:
            wait_for(
                lambda: all(SQLITE_WAIT_LINE in s.last_line() for s in others) or None,
                "seven processes reporting that they wait for the write lock",
                starters,
            )
        inside()
        (gate / "release").touch()
        for starter in starters:
            assert starter.process.wait(timeout=STEP_TIMEOUT) == 0, starter.output()
    finally:
        stop(starters)

    with project.db.engine.connect() as conn:
        runs = dict(conn.execute(sa.text("SELECT revision, count(*) FROM shard_log GROUP BY revision")).all())
    assert runs == {revision: 1 for revision in REVISIONS.values()}
    for cog, revision in REVISIONS.items():
        assert project.versions(cog) == [revision]
        assert f"{cog}_shard" in project.db.tables()
    appliers: dict[str, list[int]] = {}
    for starter in starters:
        for cog, revision in applied_by(starter, mode).items():
            assert REVISIONS[cog] == revision
            appliers.setdefault(cog, []).append(starter.pid)
    assert appliers["core"] == [holder]
    if project.db.backend in ("postgresql", "mysql"):  # one lock for the whole run: the holder did every cog
        assert appliers == {cog: [holder] for cog in REVISIONS}
    else:  # SQLite's write lock ends with each cog's transaction: another process may take a later cog
        assert sorted(appliers) == sorted(REVISIONS) and all(len(pids) == 1 for pids in appliers.values()), (
            appliers
        )


def applied_by(starter: Starter, mode: str) -> dict[str, str]:
    """Which revision each cog got from this process (checking that it ended at head)."""
    if mode == "api":
        report = starter.report()
        assert {cog: result["now"] for cog, result in report.items()} == {
            cog: [revision] for cog, revision in REVISIONS.items()
        }
        return {cog: result["applied"][0] for cog, result in report.items() if result["applied"]}
    out = starter.output()
    assert "upgraded 3 cogs" in out, out
    return {cog: revision for cog, revision in REVISIONS.items() if f"{cog}: 1 revision applied" in out}
