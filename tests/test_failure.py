"""A revision that fails half-way leaves the database exactly where the command found it.

Every online run is one transaction (see ``nxalembic_templates.locking``).  These tests make
the *second* operation of a revision raise, after a first one that already ran DDL, and check
on every backend that nothing of the run survives: no new table, no new column, no version
row; the error is one ``FAILED:`` line naming the cog and the revision.  SQLite gives the same
guarantee as PostgreSQL here because our engines wrap the run in ``BEGIN IMMEDIATE``.

MariaDB cannot give it: its DDL commits statement by statement.  There the same tests assert
what docs/concurrency.rst promises instead: earlier revisions stay applied and recorded, the
failing revision's statements before the failure stay, its version row does not, and the error
line says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, BotProject

#: Rolling back goes through the driver's own transaction handling (sqlite3's, aiosqlite's on the
#: same file, psycopg's, asyncpg's through run_sync): every driver, not one per database.
pytestmark = pytest.mark.every_driver
#: The operation that makes a revision fail: it reads a table that no backend has.
FAILING_OPERATION = 'op.execute("SELECT * FROM does_not_exist")'


def failed_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAILED")]


CORE_USERS = """
op.create_table(
    "core_users",
    sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)
"""

#: Rebuilds core_users (SQLite "move and copy" on every backend), then adds an index.
ADD_LOCALE = """
with op.batch_alter_table("core_users", recreate="always") as batch:
    batch.add_column(sa.Column("locale", sa.String(10), nullable=True))
op.create_index("ix_core_users_locale", "core_users", ["locale"])
"""

CREATE_BADGES_THEN_FAIL = f"""
op.create_table("core_badges", sa.Column("id", sa.Integer(), primary_key=True))
{FAILING_OPERATION}
"""


def test_a_failing_revision_rolls_back_the_whole_upgrade(project: BotProject) -> None:
    project.write_revision("core", "aaaa00000001", None, CORE_USERS)
    project.cog("core", "upgrade", "head")
    project.db.execute("INSERT INTO core_users (id, name) VALUES (1, 'ada')")
    project.write_revision("core", "aaaa00000002", "aaaa00000001", ADD_LOCALE)
    bad = project.write_revision("core", "aaaa00000003", "aaaa00000002", CREATE_BADGES_THEN_FAIL)
    before = project.db.snapshot()

    result = project.cog("core", "upgrade", "head", check=False)

    assert result.returncode != 0
    [line] = failed_lines(result.output)
    assert line.startswith("FAILED: cog 'core': revision aaaa00000003 failed: "), line
    assert "does_not_exist" in line
    assert "Traceback" not in result.output
    if project.db.backend == "mysql":
        mariadb_keeps_the_committed_ddl(project, line, bad)
        return
    # Nothing of the run is left: not revision 2's rebuilt table and index, not revision 3's
    # table, not a version row.  The snapshot covers every table, its columns, indexes and rows.
    assert project.db.snapshot() == before
    assert project.versions("core") == ["aaaa00000001"]
    assert "core_badges" not in project.db.tables()
    assert "_alembic_tmp_core_users" not in project.db.tables()

    # Fixed, the same revisions apply cleanly: nothing half-made is in their way.
    bad.write_text(bad.read_text().replace(FAILING_OPERATION, "pass"))
    project.cog("core", "upgrade", "head")
    assert project.versions("core") == ["aaaa00000003"]
    assert "core_badges" in project.db.tables()
    snap = project.db.snapshot({"core_users"})["core_users"]
    assert "locale" in [column[0] for column in snap["columns"]]
    assert snap["rows"] == [(1, "ada", None)]


def mariadb_keeps_the_committed_ddl(project: BotProject, line: str, bad: Path) -> None:
    """Revision 2 committed as a whole, revision 3's create_table committed by itself."""
    assert (
        "this database commits DDL statement by statement, so it is now between revisions: 1 schema "
        "statement of revision aaaa00000003 stayed applied (CREATE TABLE core_badges" in line
    ), line
    assert project.versions("core") == ["aaaa00000002"]
    assert "core_badges" in project.db.tables()
    snap = project.db.snapshot({"core_users"})["core_users"]
    assert "locale" in [column[0] for column in snap["columns"]]
    # The fix has to run on that state: the table is there already.
    bad.write_text(
        bad.read_text()
        .replace(FAILING_OPERATION, "pass")
        .replace(
            'op.create_table("core_badges"',
            'if not sa.inspect(op.get_bind()).has_table("core_badges"):\n'
            '        op.create_table("core_badges"',
        )
    )
    project.cog("core", "upgrade", "head")
    assert project.versions("core") == ["aaaa00000003"]
    assert project.db.snapshot({"core_users"})["core_users"]["rows"] == [(1, "ada", None)]


def test_a_failing_first_revision_leaves_no_version_table(project: BotProject) -> None:
    project.write_revision("core", "bbbb00000001", None, CORE_USERS + FAILING_OPERATION)

    result = project.cog("core", "upgrade", "head", check=False)

    assert result.returncode != 0
    [line] = failed_lines(result.output)
    assert line.startswith("FAILED: cog 'core': revision bbbb00000001 failed: "), line
    if project.db.backend == "mysql":  # the version table and core_users committed as they were made
        assert project.db.tables() == {"core_users", "alembic_version_core"}
        assert project.versions("core") == []
        assert "between revisions" in line
        return
    assert project.db.tables() == set()


def test_nxalembic_upgrade_keeps_finished_cogs_and_rolls_back_the_failing_one(project: BotProject) -> None:
    project.write_revision("core", "cccc00000001", None, CORE_USERS)
    project.write_revision(
        "music",
        "cccc00000002",
        None,
        f"""
        op.create_table("music_songs", sa.Column("id", sa.Integer(), primary_key=True))
        {FAILING_OPERATION}
    """,
    )
    project.write_revision(
        "economy",
        "cccc00000003",
        None,
        """
        op.create_table("economy_wallets", sa.Column("id", sa.Integer(), primary_key=True))
    """,
    )

    result = project.nxalembic("upgrade", check=False)

    assert result.returncode == 1
    [line] = failed_lines(result.output)
    assert line.startswith("FAILED: cog 'music': revision cccc00000002 failed: "), line
    assert line.endswith("; not touched: economy"), line
    assert "Traceback" not in result.output
    # Cogs are committed one by one: core (upgraded before music) stays, music left nothing
    # (on MariaDB: nothing but what its DDL committed, its version table empty).
    if project.db.backend == "mysql":
        assert project.db.tables() == {
            "core_users",
            "alembic_version_core",
            "music_songs",
            "alembic_version_music",
        }
        assert project.versions("music") == []
    else:
        assert project.db.tables() == {"core_users", "alembic_version_core"}
    assert project.versions("core") == ["cccc00000001"]


NO_SERVER_PLUGIN = '''
"""Pretend the PostgreSQL binaries are missing, as on a CI machine where installing failed."""
import sys


def pytest_configure(config):
    sys.path.insert(0, {tests!r})
    import postgres_server

    postgres_server.find_pg_bindir = lambda: None
'''


def test_postgresql_tests_error_instead_of_skipping_when_no_server_starts(tmp_path: Path) -> None:
    """A skipped backend is not a passing one: without a server the run must fail, loudly."""
    (tmp_path / "no_server_plugin.py").write_text(NO_SERVER_PLUGIN.format(tests=str(REPO / "tests")))
    test_id = "tests/test_passwords.py::test_an_unescaped_percent_in_alembic_ini_does_not_print_the_password"
    proc = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pytest",
            "-p",
            "no_server_plugin",
            "-p",
            "no:cacheprovider",
            "-rA",
            test_id,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "1 error" in output and "skipped" not in output, output
    assert "PostgreSQL server binaries (initdb, pg_ctl) not found" in output, output
