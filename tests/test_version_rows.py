"""One reader of version-table state (``headcheck.version_rows``), with Alembic's own read as the reference.

The start-up fast path, ``nxalembic upgrade`` / ``status`` / verify mode all ask "which revisions
is this cog's database at?" through :func:`nxalembic_templates.headcheck.version_rows`.  Here each
state a version table can be in is made with Alembic itself (``MigrationContext.stamp`` on a real
history with a fork), beside 600 more cogs' tables in every state, and the reader's answer is
compared with ``MigrationContext.get_current_heads()`` for the same table, all tables read
together: as many cogs as a big bot has, more than one statement reads (docs/performance.rst:
batches of 200 tables).  How fast that one read is: ``benchmarks/bench_startup_check.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from conftest import _database_for
from nxalembic_templates import headcheck

#: a, then b and c both on a: a fork, as two people each adding one revision make it.
FORK = (("aaaa00000001", None), ("bbbb00000002", "aaaa00000001"), ("cccc00000003", "aaaa00000001"))

#: version table -> the revision stamped into it (None: created, then stamped back to base).
STAMPED = {
    "v_base": None,
    "v_one_head": "bbbb00000002",
    "v_two_heads": "heads",
}
#: a version table that does not exist (a cog never upgraded): base, as Alembic reads it.
MISSING = "v_missing"
#: a table with the version table's name but not its column: it cannot be read.
UNREADABLE = "v_unreadable"
#: More cogs, each version table in one of four states by its number: missing, empty, one row,
#: two rows.  The unreadable table sits among them, in the middle.
MANY = 600


def many_cogs(connection: sa.Connection) -> dict[str, str]:
    """Create the MANY cogs' version tables in their states; cog -> table, UNREADABLE's cog in the middle."""
    tables = {}
    for number in range(MANY):
        table = f"v_many_{number:03d}"
        tables[f"cog_{number:03d}"] = table
        if number == MANY // 2:
            tables[f"cog_{UNREADABLE}"] = UNREADABLE
        if number % 4 == 0:
            continue  # missing
        connection.execute(sa.text(f"CREATE TABLE {table} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        for row in range(number % 4 - 1):  # none, one, two
            connection.execute(sa.text(f"INSERT INTO {table} (version_num) VALUES ('r{number:03d}x{row}')"))
    return tables


def forked_history(folder: Path) -> ScriptDirectory:
    versions = folder / "versions"
    versions.mkdir(parents=True)
    for revision, down in FORK:
        (versions / f"{revision}.py").write_text(
            f"revision = {revision!r}\ndown_revision = {down!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n",
            encoding="utf-8",
        )
    return ScriptDirectory(str(folder))


def alembics_answer(connection: sa.Connection, table: str) -> list[str] | type[SQLAlchemyError]:
    context = MigrationContext.configure(connection, opts={"version_table": table})
    try:
        return sorted(context.get_current_heads())
    except SQLAlchemyError:
        connection.rollback()
        return SQLAlchemyError


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_the_reader_answers_what_alembic_answers_for_every_state(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _database_for(backend, tmp_path, request)
    request.addfinalizer(db.dispose)
    script = forked_history(tmp_path / "scripts")
    with db.engine.begin() as connection:
        for table, revision in STAMPED.items():
            context = MigrationContext.configure(connection, opts={"version_table": table})
            context.stamp(script, revision or "aaaa00000001")
            if revision is None:
                context.stamp(script, "base")
        connection.execute(sa.text(f"CREATE TABLE {UNREADABLE} (other_column INTEGER)"))
        many = many_cogs(connection)
    assert {*STAMPED, UNREADABLE} <= db.tables() and MISSING not in db.tables()

    tables = {f"cog_{table}": table for table in (*STAMPED, MISSING)} | many
    assert len(tables) == len(STAMPED) + 1 + MANY + 1
    with db.engine.connect() as connection:
        found = headcheck.version_rows(connection, tables)
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1  # still usable after the failure

    with db.engine.connect() as connection:
        answers = {cog: alembics_answer(connection, table) for cog, table in tables.items()}
    assert answers["cog_v_two_heads"] == ["bbbb00000002", "cccc00000003"]  # the states are the ones named
    assert answers["cog_v_base"] == answers["cog_v_missing"] == []
    assert [len(answers[f"cog_{number:03d}"]) for number in range(4, 8)] == [0, 0, 1, 2]
    for cog, answer in answers.items():
        if answer is SQLAlchemyError:
            assert isinstance(found[cog], SQLAlchemyError), (cog, found[cog])
        else:
            assert found[cog] == answer, cog
    assert answers[f"cog_{UNREADABLE}"] is SQLAlchemyError
