"""A bot killed with SIGKILL in the middle of a revision: the next start completes the upgrade.

A deployed bot can be killed at any moment (an OOM kill, ``docker kill``, a host going down).
The revision ``crash0002`` of cog ``core`` creates a table, inserts a row and adds a column,
then (only when ``CRASH_MARKER`` is set) creates the marker file and blocks for good: the
test waits for the marker, so the process is known to stand inside the revision with part of
its DDL done, and kills it with a real ``SIGKILL``.  Afterwards

* PostgreSQL is at the previous revision ``crash0001`` with none of ``crash0002``'s DDL (its
  first table does not exist), and the migration lock died with the process;
* the SQLite file passes ``PRAGMA integrity_check`` and is at ``crash0001`` likewise;
* the next start (without the marker) applies ``crash0002`` and ends at head;
* MariaDB, whose DDL commits by itself (docs/concurrency.rst), is honestly different: the lock
  died with the process and the version table is at ``crash0001``, but ``crash0002``'s first
  table, its row and its column stayed; the next start fails on the table that is already
  there, and once the revision is made to run on that partial state it ends at head.

Both ways a bot migrates are killed: the start-up API inside the bot's process, and the
``nxalembic upgrade`` deploy step.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import BotProject
from startup_bots import create_table, start, stop, wait_for

CRASHING = f"""
{create_table("core_crash_first")}
op.execute("INSERT INTO core_crash_log (note) VALUES ('inside crash0002')")
op.add_column("core_crash_log", sa.Column("extra", sa.Integer(), nullable=True))
if os.environ.get("CRASH_MARKER"):
    Path(os.environ["CRASH_MARKER"]).touch()
    threading.Event().wait()  # until the test kills this process
{create_table("core_crash_second")}
"""


#: crash0002 made to run on the state a kill left on MariaDB (what docs/concurrency.rst advises).
RERUNNABLE = f"""
inspector = sa.inspect(op.get_bind())
if not inspector.has_table("core_crash_first"):
    {create_table("core_crash_first")}
if "extra" not in [c["name"] for c in inspector.get_columns("core_crash_log")]:
    op.add_column("core_crash_log", sa.Column("extra", sa.Integer(), nullable=True))
{create_table("core_crash_second")}
"""


@pytest.mark.parametrize("mode", ["api", "cli"])
@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"])
def test_sigkill_inside_a_revision_leaves_the_previous_revision_and_the_next_start_completes(
    make_project: Callable[..., BotProject],
    tmp_path: Path,
    backend: str,
    mode: str,
) -> None:
    project = make_project(backend)
    project.write_revision(
        "core",
        "crash0001",
        None,
        """
        op.create_table("core_crash_log", sa.Column("note", sa.String(40), nullable=False))
    """,
    )
    for cog in ("music", "economy"):  # every cog has revisions: one without them is never ready
        project.write_revision(cog, f"{cog}0001", None, create_table(f"{cog}_crash_t"))
    project.nxalembic("upgrade")  # the bot as deployed before
    project.write_revision("core", "crash0002", "crash0001", CRASHING)  # the new release
    before = project.db.snapshot()

    marker = tmp_path / "inside-crash0002"
    starters = [start(project, mode, tmp_path, "crashing", env={"CRASH_MARKER": str(marker)})]
    try:
        wait_for(lambda: marker.exists() or None, "the process to stand inside crash0002", starters)
        os.kill(starters[0].pid, signal.SIGKILL)
        assert starters[0].process.wait(timeout=60) == -signal.SIGKILL
    finally:
        stop(starters)

    if project.db.backend == "sqlite":
        assert project.db.scalar("PRAGMA integrity_check") == "ok"
    else:  # the server ends the dead client's session, and its migration lock with it
        wait_for(lambda: None if migration_locks(project) else True, "the dead session's lock to go", [])
    assert project.versions("core") == ["crash0001"]
    if project.db.backend == "mysql":
        mariadb_keeps_what_was_done_and_a_fixed_revision_finishes(project, mode, tmp_path, before)
        return
    assert "core_crash_first" not in project.db.tables()
    assert project.db.snapshot() == before  # nothing of crash0002: no table, no row, no column

    restart = start(project, mode, tmp_path, "restart")
    assert restart.process.wait(timeout=300) == 0, restart.output()
    assert project.versions("core") == ["crash0002"]
    assert {"core_crash_first", "core_crash_second"} <= project.db.tables()
    columns = [c["name"] for c in sa.inspect(project.db.engine).get_columns("core_crash_log")]
    assert columns == ["note", "extra"]
    if mode == "api":
        assert restart.report()["core"] == {"applied": ["crash0002"], "now": ["crash0002"]}
    else:
        assert "core: 1 revision applied" in restart.output()


def mariadb_keeps_what_was_done_and_a_fixed_revision_finishes(
    project: BotProject, mode: str, tmp_path: Path, before: dict
) -> None:
    """MariaDB committed crash0002's DDL as it ran (and the row, with the ALTER after it)."""
    assert "core_crash_first" in project.db.tables() and "core_crash_second" not in project.db.tables()
    columns = [c["name"] for c in sa.inspect(project.db.engine).get_columns("core_crash_log")]
    assert columns == ["note", "extra"]
    assert project.db.snapshot({"core_crash_log"})["core_crash_log"]["rows"] == [("inside crash0002", None)]
    assert before["core_crash_log"]["rows"] == []

    again = start(project, mode, tmp_path, "again")  # the unchanged revision cannot run on that state
    assert again.process.wait(timeout=300) != 0, again.output()
    assert "Table 'core_crash_first' already exists" in again.output()
    assert project.versions("core") == ["crash0001"]

    project.write_revision("core", "crash0002", "crash0001", RERUNNABLE)
    restart = start(project, mode, tmp_path, "restart")
    assert restart.process.wait(timeout=300) == 0, restart.output()
    assert project.versions("core") == ["crash0002"]
    assert {"core_crash_first", "core_crash_second"} <= project.db.tables()


def migration_locks(project: BotProject) -> int:
    """Migration locks held in the project's database (only the migration lock is ever taken)."""
    if project.db.backend == "mysql":
        name = f"nxalembic:{project.db.engine.url.database}"
        return int(project.db.scalar(f"SELECT IS_USED_LOCK('{name}') IS NOT NULL"))
    return int(
        project.db.scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    )
