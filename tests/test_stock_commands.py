"""The stock command matrix: every row through the real ``alembic -x cog=NAME`` executable.

Each test runs on SQLite, PostgreSQL and MariaDB through one driver each (see the ``backend``
fixture); the ones marked ``every_driver`` (an online upgrade and downgrade, a live comparison)
also through plain SQLite and psycopg, the sync route.  The projects a test starts from (core
at head; music with two revisions) are built once per backend and copied (``prepared=``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import BotProject, migrated

MUSIC_TABLES = {"music_songs", "music_playlists", "playlists_songs"}


def revision_id(path) -> str:
    return re.search(r"^revision: str = '(\w+)'", path.read_text(), re.M).group(1)


def core_at_head(project: BotProject) -> None:
    """Music's playlists reference core users; PostgreSQL needs that table first."""
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    project.cog("core", "upgrade", "head")


def music_with_two_revisions(project: BotProject) -> None:
    """Core at head; music's first revision applied, its second (a new column) written only."""
    core_at_head(project)
    project.cog("music", "revision", "--autogenerate", "-m", "create music")
    project.cog("music", "upgrade", "head")
    project.edit(
        "demobot/cogs/music/models.py",
        "    title: str = ormar.String(max_length=200)\n",
        "    title: str = ormar.String(max_length=200)\n"
        "    plays: int | None = ormar.Integer(nullable=True)\n",
    )
    project.cog("music", "revision", "--autogenerate", "-m", "add plays")


def music_project(make_project: Any, backend: str) -> tuple[BotProject, str, str]:
    """A copy of music_with_two_revisions' project, and music's two revision ids (base, top)."""
    project = make_project(backend, prepared=music_with_two_revisions)
    ids = {revision_id(p): p for p in project.revisions("music")}
    down = {
        rid: re.search(r"^down_revision: .* = (.*)$", p.read_text(), re.M).group(1) for rid, p in ids.items()
    }
    base = next(r for r, d in down.items() if d == "None")
    top = next(r for r in ids if r != base)
    return project, base, top


def test_revision_autogenerate_writes_only_the_cogs_tables(make_project: Any, backend: str) -> None:
    project = make_project(backend, prepared=core_at_head)
    out = project.cog("music", "revision", "--autogenerate", "-m", "create music")
    [path] = project.revisions("music")
    body = project.revision_ops(path)
    for table in MUSIC_TABLES:
        assert f"op.create_table('{table}'" in body
    assert "core_users'" not in body.replace("['core_users.id']", "") and "economy" not in body
    assert "drop_table" not in body
    assert "Generating" in out.output and "/versions/music/" in out.output
    assert project.revisions("economy") == []


def test_autogenerate_with_no_change_writes_no_file(make_project: Any, backend: str) -> None:
    project = make_project(backend, prepared=core_at_head)
    result = project.cog("core", "revision", "--autogenerate", "-m", "nothing")
    assert result.returncode == 0
    assert "No changes in schema detected for cog 'core'; no revision written." in result.output
    assert len(project.revisions("core")) == 1


def test_blank_revision_lands_in_the_cogs_folder_on_top_of_its_head(make_project: Any, backend: str) -> None:
    project = make_project(backend, prepared=core_at_head)
    [first] = project.revisions("core")
    project.cog("core", "revision", "-m", "by hand")
    [second] = [p for p in project.revisions("core") if p != first]
    text = second.read_text()
    assert f"down_revision: str | Sequence[str] | None = '{revision_id(first)}'" in text
    assert "    pass" in project.revision_ops(second)


def test_upgrade_head_creates_tables_and_the_cogs_version_table_downgrade_base_removes_them(
    make_project: Any, backend: str
) -> None:
    project, _base, top = music_project(make_project, backend)
    project.cog("music", "upgrade", "head")
    db = project.db
    assert MUSIC_TABLES <= db.tables()
    assert db.versions("alembic_version_music") == [top]
    assert "plays" in {c[0] for c in db.snapshot({"music_songs"})["music_songs"]["columns"]}
    assert "alembic_version" not in db.tables()

    # downgrade base removes the cog's tables and version rows, and only those
    before = db.snapshot({"core_users", "alembic_version_core"})
    project.cog("music", "downgrade", "base")
    assert not (MUSIC_TABLES & db.tables())
    assert db.versions("alembic_version_music") == []
    assert db.snapshot({"core_users", "alembic_version_core"}) == before


@pytest.mark.every_driver
def test_upgrade_plus_one_and_downgrade_minus_one(make_project: Any, backend: str) -> None:
    project, base, top = music_project(make_project, backend)
    project.cog("music", "upgrade", "+1")
    assert project.db.versions("alembic_version_music") == [top]
    project.cog("music", "downgrade", "-1")
    assert project.db.versions("alembic_version_music") == [base]
    assert "plays" not in {c[0] for c in project.db.snapshot({"music_songs"})["music_songs"]["columns"]}


def test_current_and_history_are_per_cog(make_project: Any, backend: str) -> None:
    project, base, top = music_project(make_project, backend)
    assert base in project.cog("music", "current").stdout
    history = project.cog("music", "history").stdout
    assert base in history and top in history
    [core_rev] = [revision_id(p) for p in project.revisions("core")]
    assert core_rev not in history
    assert core_rev in project.cog("core", "current").stdout


def test_stamp_head_writes_the_version_table_only(make_project: Any, backend: str) -> None:
    project = make_project(backend, prepared=migrated)  # every cog's first revision written, none applied
    [rev] = [revision_id(p) for p in project.revisions("core")]
    project.cog("core", "stamp", "head")
    assert project.db.versions("alembic_version_core") == [rev]
    assert "core_users" not in project.db.tables()


@pytest.mark.every_driver
def test_check_passes_in_sync_and_fails_on_a_model_change(make_project: Any, backend: str) -> None:
    project = make_project(backend, prepared=core_at_head)
    ok = project.cog("core", "check")
    assert "No new upgrade operations detected" in ok.output
    project.edit(
        "demobot/models.py",
        "    name: str = ormar.String(max_length=100)\n",
        "    name: str = ormar.String(max_length=100)\n"
        "    locale: str | None = ormar.String(max_length=10, nullable=True)\n",
    )
    failed = project.cog("core", "check", check=False)
    assert failed.returncode != 0
    assert "New upgrade operations detected" in failed.output and "locale" in failed.output


def test_upgrade_sql_emits_the_cogs_ddl_and_version_table(make_project: Any, backend: str) -> None:
    project, _base, _top = music_project(make_project, backend)
    sql = project.cog("music", "upgrade", "head", "--sql").stdout
    assert "CREATE TABLE music_songs" in sql and "CREATE TABLE playlists_songs" in sql
    assert "alembic_version_music" in sql
    assert "CREATE TABLE core_users" not in sql and "alembic_version_core" not in sql


# The cog is chosen before env.py connects (a wrong one fails the same way on every database): SQLite only.
@pytest.mark.parametrize("backend", ["sqlite+aiosqlite"])
def test_commands_without_a_known_cog_fail_with_one_line(project: BotProject) -> None:
    for args in (("current",), ("-x", "cog=nope", "upgrade", "head")):
        result = project.alembic(*args, check=False)
        assert result.returncode != 0
        assert "known cogs: core, economy, music" in result.output
        assert "-x cog=NAME" in result.output
        assert "Traceback" not in result.output
        assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output


# ``alembic heads`` reads the revision files only, never the database: SQLite only.
@pytest.mark.parametrize("backend", ["sqlite+aiosqlite"])
def test_heads_lists_one_head_per_cog(make_project: Any, backend: str) -> None:
    project = make_project(backend, prepared=core_at_head)
    project.cog("music", "revision", "--autogenerate", "-m", "create music")
    heads = project.alembic("heads").stdout
    assert heads.count("(head)") == 2
