"""MariaDB / MySQL where they differ from PostgreSQL: DDL that commits by itself, names, drivers.

Everything else (the race tests, bad input, adoption, the property test...) runs on MariaDB
through the ``backend`` matrix of the other test files; this file holds what only MariaDB has:

* a revision failing at its second statement leaves its first one applied: the error names the
  failed statement, what stayed, where the version table is and what to do; ``status`` shows it
  from a later process; fixing the revision and upgrading again finishes the job;
* the other drivers (asyncmy, the sync PyMySQL) migrate and lock as well as aiomysql.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from conftest import BotProject, create_table_op

FIRST, SECOND = "ab0000000001", "ab0000000002"

HALF_WAY = f"""
{create_table_op("core_two")}
op.execute("ALTER TABLE core_missing ADD COLUMN x INTEGER")
"""

#: The fix: the revision now runs on the state the failure left (core_two there) and on a fresh database.
FIXED = f"""
if not sa.inspect(op.get_bind()).has_table("core_two"):
    {create_table_op("core_two")}
{create_table_op("core_missing")}
"""


def comment(project: BotProject, table: str) -> str:
    return sa.inspect(project.db.engine).get_table_comment(table).get("text") or ""


def test_a_revision_failing_at_its_second_statement_says_where_it_left_the_database_and_status_shows_it(
    make_project,
) -> None:
    project = make_project("mysql+aiomysql")
    project.write_revision("core", FIRST, None, create_table_op("core_one"))
    second = project.write_revision("core", SECOND, FIRST, HALF_WAY)

    result = project.cog("core", "upgrade", "head", check=False)

    assert result.returncode != 0 and "Traceback" not in result.output, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAILED:")]
    database = project.db.engine.url.database
    assert failed == [
        f"FAILED: cog 'core': revision {SECOND} failed: ProgrammingError: (1146, \"Table "
        f"'{database}.core_missing' doesn't exist\"); the statement that failed: ALTER TABLE core_missing "
        "ADD COLUMN x INTEGER; this database commits DDL statement by statement, so it is now between "
        f"revisions: 1 schema statement of revision {SECOND} stayed applied (CREATE TABLE core_two ( id "
        "INTEGER NOT NULL AUTO_INCREMENT, PRIMARY KEY (id) )) while alembic_version_core still says "
        f"{FIRST}; fix revision {SECOND} so that it can run on this partial state (or undo those "
        "statements by hand), then upgrade again"
    ], result.output
    # MariaDB's documented behaviour: the first statement committed, the version did not move
    assert project.db.versions("alembic_version_core") == [FIRST]
    assert {"core_one", "core_two"} <= project.db.tables()

    status = project.nxalembic("status")  # a later process still knows
    assert (
        f"core: BETWEEN REVISIONS: revision {SECOND} failed part-way: 1 schema statement of it applied "
        "(CREATE TABLE core_two ( id INTEGER NOT NULL AUTO_INCREMENT, PRIMARY KEY (id) )), then failed: "
        "ALTER TABLE core_missing ADD COLUMN x INTEGER; the database commits DDL statement by statement, "
        "so those statements stayed while the version table did not move: fix that revision so it can "
        "run on this state (or undo them by hand), then upgrade"
    ) in status.stdout.splitlines(), status.output
    assert re.search(rf"^core\s+alembic_version_core\s+{FIRST}\s+{SECOND}\s+1\b", status.stdout, re.M)

    # the fix: make the revision run on the partial state, upgrade again
    assert project.write_revision("core", SECOND, FIRST, FIXED) == second
    project.cog("core", "upgrade", "head")
    assert project.db.versions("alembic_version_core") == [SECOND]
    assert {"core_one", "core_two", "core_missing"} <= project.db.tables()
    assert comment(project, "alembic_version_core") == ""
    assert "BETWEEN REVISIONS" not in project.nxalembic("status").stdout


def test_a_revision_failing_at_its_first_statement_changed_nothing_and_says_nothing_of_partial_state(
    make_project,
) -> None:
    project = make_project("mysql+aiomysql")
    project.write_revision("core", FIRST, None, 'op.execute("ALTER TABLE core_missing ADD COLUMN x INTEGER")')

    result = project.nxalembic("upgrade", check=False)

    assert result.returncode == 1 and "Traceback" not in result.output, result.output
    assert f"cog 'core': revision {FIRST} failed: ProgrammingError: (1146" in result.stderr
    assert "between revisions" not in result.output
    assert project.db.versions("alembic_version_core") == []
    assert comment(project, "alembic_version_core") == ""
    assert "BETWEEN REVISIONS" not in project.nxalembic("status").stdout


@pytest.mark.parametrize("backend", ["mysql+asyncmy", "mysql+pymysql"])
def test_the_other_drivers_migrate_every_cog_and_down_again(make_project, backend: str) -> None:
    project = make_project(backend)
    project.nxalembic("migrate")
    up = project.nxalembic("upgrade")
    assert len(project.db.versions("alembic_version_economy")) == 1, up.output
    tables = project.db.tables()
    assert {"economy_wallets", "alembic_version_core", "alembic_version_economy"} <= tables
    project.nxalembic("check")  # the models match the migrations
    down = project.cog("economy", "downgrade", "base")
    assert "economy_wallets" not in project.db.tables(), down.output
    assert project.db.versions("alembic_version_economy") == []
