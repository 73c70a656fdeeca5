"""One reader of version-table state (``headcheck.version_rows``), with Alembic's own read as the reference.

The start-up fast path, ``nxalembic upgrade`` / ``status`` / verify mode all ask "which revisions
is this cog's database at?" through :func:`nxalembic_templates.headcheck.version_rows`.  Here each
state a version table can be in is made with Alembic itself (``MigrationContext.stamp`` on a real
history with a fork), and the reader's answer is compared with
``MigrationContext.get_current_heads()`` for the same table, all tables read together.
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


def alembics_answer(engine: sa.Engine, table: str) -> list[str] | type[SQLAlchemyError]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": table})
        try:
            return sorted(context.get_current_heads())
        except SQLAlchemyError:
            return SQLAlchemyError


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_the_reader_answers_what_alembic_answers_for_every_state(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
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
    assert {*STAMPED, UNREADABLE} <= db.tables() and MISSING not in db.tables()

    tables = {f"cog_{table}": table for table in (*STAMPED, MISSING, UNREADABLE)}
    monkeypatch.setattr(headcheck, "UNION_BATCH", 2)  # several statements, one of them failing
    with db.engine.connect() as connection:
        found = headcheck.version_rows(connection, tables)
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1  # still usable after the failure

    answers = {cog: alembics_answer(db.engine, table) for cog, table in tables.items()}
    assert answers["cog_v_two_heads"] == ["bbbb00000002", "cccc00000003"]  # the states are the ones named
    assert answers["cog_v_base"] == answers["cog_v_missing"] == []
    for cog, answer in answers.items():
        if answer is SQLAlchemyError:
            assert isinstance(found[cog], SQLAlchemyError), (cog, found[cog])
        else:
            assert found[cog] == answer, cog
    assert answers[f"cog_{UNREADABLE}"] is SQLAlchemyError


def test_the_fast_path_reads_every_table_in_one_statement_when_all_exist(tmp_path: Path) -> None:
    """The common case (every cog upgraded before) costs one statement, not one per cog."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'v.db'}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        for index in range(5):
            connection.execute(sa.text(f"CREATE TABLE v{index} (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(sa.text(f"INSERT INTO v{index} VALUES ('r{index}')"))
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.connect() as connection:
        found = headcheck.version_rows(connection, {f"c{index}": f"v{index}" for index in range(5)})
    assert found == {f"c{index}": [f"r{index}"] for index in range(5)}
    assert len(statements) == 1 and statements[0].count("UNION ALL") == 4, statements
    engine.dispose()
