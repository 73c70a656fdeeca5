"""The safety rule: migrating one cog never changes another cog's tables or version table."""

from __future__ import annotations

import pytest

from conftest import ALL_BACKENDS, BotProject

CORE = {"core_users", "alembic_version_core"}
MUSIC = {"music_songs", "music_playlists", "playlists_songs", "alembic_version_music"}


def two_cogs_at_head(project: BotProject) -> None:
    for cog in ("core", "music"):
        project.cog(cog, "revision", "--autogenerate", "-m", f"create {cog}")
        project.cog(cog, "upgrade", "head")


def test_each_cog_has_its_own_folder_and_version_table(project: BotProject) -> None:
    two_cogs_at_head(project)
    assert len(project.revisions("core")) == 1 and len(project.revisions("music")) == 1
    tables = project.db.tables()
    assert {"alembic_version_core", "alembic_version_music"} <= tables
    assert project.db.versions("alembic_version_core") != project.db.versions("alembic_version_music")


@pytest.mark.parametrize("action", [("downgrade", "base"), ("stamp", "base"), ("upgrade", "head"), ("stamp", "head")])
def test_one_cogs_commands_leave_the_other_cog_alone(project: BotProject, action: tuple[str, str]) -> None:
    two_cogs_at_head(project)
    project.db.execute("INSERT INTO core_users (id, name) VALUES (1, 'ann')")
    before = project.db.snapshot(CORE)
    project.cog("music", "downgrade", "base")
    project.cog("music", *action)
    assert project.db.snapshot(CORE) == before
    before_music = project.db.snapshot(MUSIC)
    project.cog("core", *action)
    assert project.db.snapshot(MUSIC) == before_music


def test_autogenerate_ignores_the_tables_of_an_unloaded_cog(make_project, backend: str) -> None:
    project = make_project(backend)
    for cog in ("core", "music", "economy"):
        project.cog(cog, "revision", "--autogenerate", "-m", f"create {cog}")
        project.cog(cog, "upgrade", "head")
    before = project.db.snapshot()
    project.unload("demobot.cogs.economy")
    # core gets a real change so that autogenerate writes a file we can read
    project.edit("demobot/models.py", "    name: str = ormar.String(max_length=100)\n",
                 "    name: str = ormar.String(max_length=100)\n    locale: str | None = ormar.String(max_length=10, nullable=True)\n")
    for cog in ("core", "music"):
        project.cog(cog, "revision", "--autogenerate", "-m", "after unload")
    [newest] = [p for p in project.revisions("core") if "after_unload" in p.name]
    body = project.revision_ops(newest)
    assert "locale" in body and "economy" not in body and "drop" not in body
    assert len(project.revisions("music")) == 1  # nothing to do for music: no file
    result = project.cog("economy", "current", check=False)
    assert result.returncode != 0 and "unknown cog 'economy'" in result.output
    for cog in ("core", "music"):
        project.cog(cog, "upgrade", "head")
    after = project.db.snapshot()
    for table in ("economy_wallets", "economy_purchases", "alembic_version_economy"):
        assert after[table] == before[table]


def test_a_hand_made_table_is_never_touched(project: BotProject) -> None:
    project.db.execute("CREATE TABLE legacy_stats (id INTEGER PRIMARY KEY, note VARCHAR(20))")
    project.db.execute("INSERT INTO legacy_stats (id, note) VALUES (7, 'keep me')")
    before = project.db.snapshot({"legacy_stats"})
    for cog in ("core", "music", "economy"):
        project.cog(cog, "revision", "--autogenerate", "-m", f"create {cog}")
        project.cog(cog, "upgrade", "head")
        project.cog(cog, "check")
    for cog in ("core", "music", "economy"):
        for path in project.revisions(cog):
            assert "legacy_stats" not in path.read_text()
    for cog in ("economy", "music", "core"):
        project.cog(cog, "downgrade", "base")
    assert project.db.snapshot({"legacy_stats"}) == before


@pytest.mark.parametrize("backend", [b for b in ALL_BACKENDS if b.startswith("postgresql")])
def test_cross_cog_foreign_key_needs_the_referenced_cog_first(make_project, backend: str) -> None:
    project = make_project(backend)
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    project.cog("music", "revision", "--autogenerate", "-m", "songs")
    early = project.cog("music", "upgrade", "head", check=False)
    assert early.returncode != 0 and "cog 'music'" in early.output and "core_users" in early.output
    assert "Traceback" not in early.output
    assert not ({"music_songs", "music_playlists"} & project.db.tables())  # rolled back as a whole
    project.cog("core", "upgrade", "head")
    project.cog("music", "upgrade", "head")
    fks = project.db.snapshot({"music_playlists"})["music_playlists"]["fks"]
    assert (("owner",), "core_users") in fks


def test_cross_cog_foreign_key_on_sqlite(make_project) -> None:
    project = make_project("sqlite")
    for cog in ("core", "music"):
        project.cog(cog, "revision", "--autogenerate", "-m", cog)
        project.cog(cog, "upgrade", "head")
    fks = project.db.snapshot({"music_playlists"})["music_playlists"]["fks"]
    assert (("owner",), "core_users") in fks


def test_models_of_an_unloaded_cog_imported_by_a_loaded_one_are_left_alone(make_project) -> None:
    """economy imports music's models; with music unloaded they must not become core's."""
    project = make_project("sqlite+aiosqlite")
    project.unload("demobot.cogs.music")
    result = project.cog("music", "current", check=False)
    assert "unknown cog 'music'; known cogs: core, economy" in result.output
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    body = project.revision_ops(project.revisions("core")[0])
    assert "music" not in body and "playlists" not in body
