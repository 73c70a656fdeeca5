"""The safety rule: migrating one cog never changes another cog's tables or version table."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import BotProject, Result, alembic_forked, stock_at_head

CORE = {"core_users", "alembic_version_core"}
MUSIC = {"music_songs", "music_playlists", "playlists_songs", "alembic_version_music"}


TABLES = {
    "core": CORE,
    "music": MUSIC,
    "economy": {"economy_wallets", "economy_purchases", "alembic_version_economy"},
}
#: One row per table, so that a snapshot compares data as well as schema.
ROWS = {
    "core": ["INSERT INTO core_users (id, name) VALUES (1, 'ann')"],
    "music": [
        "INSERT INTO music_songs (id, title) VALUES (1, 'song')",
        "INSERT INTO music_playlists (id, name, owner) VALUES (1, 'mix', 1)",
        "INSERT INTO playlists_songs (id, song, playlist) VALUES (1, 1, 1)",
    ],
    "economy": [
        "INSERT INTO economy_wallets (id, user_id, balance) VALUES (1, 1, 5)",
        "INSERT INTO economy_purchases (id, wallet, song, price) VALUES (1, 1, 1, 2)",
    ],
}


def create_and_upgrade(cog: str) -> list[list[str]]:
    """``alembic -x cog=COG revision --autogenerate -m "create COG"``, then ``upgrade head``: for
    conftest's alembic_forked (stock commands in a row, one interpreter start)."""
    return [
        ["-x", f"cog={cog}", "revision", "--autogenerate", "-m", f"create {cog}"],
        ["-x", f"cog={cog}", "upgrade", "head"],
    ]


def two_cogs_at_head(project: BotProject) -> None:
    alembic_forked(project, *create_and_upgrade("core"), *create_and_upgrade("music"))


def head_of(project: BotProject, cog: str) -> str:
    [path] = project.revisions(cog)
    return re.search(r"^revision: str = '(\w+)'", path.read_text(), re.M).group(1)  # type: ignore[union-attr]


def test_each_cog_has_its_own_folder_and_version_table(project: BotProject) -> None:
    two_cogs_at_head(project)
    assert len(project.revisions("core")) == 1 and len(project.revisions("music")) == 1
    assert "alembic_version" not in project.db.tables()
    for cog in ("core", "music"):
        assert project.db.versions(f"alembic_version_{cog}") == [head_of(project, cog)]


#: The cogs each one needs (foreign keys): economy -> music -> core.
NEEDS = {"core": ["core"], "music": ["core", "music"], "economy": ["core", "music", "economy"]}
#: Every command a cog's run can take, one after the other from head: each starts where the one
#: before left the acted cog (an upgrade from base after the downgrade, a stamp to head after the
#: stamp to base), so that each has work to do.
EVERY_ACTION = (("downgrade", "base"), ("upgrade", "head"), ("stamp", "base"), ("stamp", "head"))
# (cog acted on, cog watched, actions).  The watched cog's tables never reference the acted
# cog's, so the acted cog can go down on PostgreSQL while the watched one stays at head; core
# is referenced by music, so core is only stamped.
CASES = [
    ("music", "core", EVERY_ACTION),
    ("economy", "music", EVERY_ACTION),
    ("core", "economy", (("stamp", "base"), ("stamp", "head"))),
]


#: MariaDB (one case per kind of command, the CI budget is tight): a downgrade that drops, an
#: upgrade that creates, a stamp of the cog the watched one references.
MARIADB_CASES = [
    ("economy", "music", (("downgrade", "base"),)),
    ("music", "core", (("downgrade", "base"), ("upgrade", "head"))),
    ("core", "economy", (("stamp", "base"),)),
]
BACKEND_CASES = [
    *((backend, *case) for backend in ("sqlite+aiosqlite", "postgresql+psycopg") for case in CASES),
    *(("mysql+aiomysql", *case) for case in MARIADB_CASES),
]


def at_head_with_rows(project: BotProject, cogs: tuple[str, ...]) -> None:
    alembic_forked(project, *(command for cog in cogs for command in create_and_upgrade(cog)))
    for statement in (statement for cog in cogs for statement in ROWS[cog]):
        project.db.execute(statement)


def core_and_music_with_rows(project: BotProject) -> None:
    """Prepared once per database kind (``make_project(prepared=...)``): core and music at head, a row in
    every table."""
    at_head_with_rows(project, ("core", "music"))


@pytest.mark.parametrize(
    "backend,acted,watched,actions",
    BACKEND_CASES,
    ids=[f"{a}-{'+'.join('-'.join(x) for x in xs)}-watch-{w}-{b}" for b, a, w, xs in BACKEND_CASES],
)
def test_one_cogs_commands_leave_the_other_cog_alone(
    make_project: Any, backend: str, acted: str, watched: str, actions: tuple[tuple[str, str], ...]
) -> None:
    # Only the cogs the two need (economy's tables would keep music from going down on PostgreSQL).
    needed = tuple(dict.fromkeys(NEEDS[acted] + NEEDS[watched]))
    if "economy" in needed:
        project = make_project(backend, prepared=stock_at_head)  # every cog, by the same commands
        for statement in ROWS["core"] + ROWS["music"] + ROWS["economy"]:
            project.db.execute(statement)
    else:
        project = make_project(backend, prepared=core_and_music_with_rows)
    before = project.db.snapshot(TABLES[watched])
    assert all(before[t] is not None for t in TABLES[watched]), "the watched cog must have its tables"
    assert before[f"alembic_version_{watched}"]["rows"], "the watched cog must be at head"

    for action in actions:  # one command at a time, the watched cog checked after each
        project.cog(acted, *action)

        assert project.db.snapshot(TABLES[watched]) == before, action
        expected = [head_of(project, acted)] if action[1] == "head" else []
        assert project.db.versions(f"alembic_version_{acted}") == expected, f"{action} must have run"


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_autogenerate_ignores_the_tables_of_an_unloaded_cog(make_project, backend: str) -> None:
    """SQLite and PostgreSQL (a server's reflection): which tables are left alone is decided by the
    cogs the bot loads, before any SQL is written.  On MariaDB, autogenerate with economy unloaded
    leaves its tables, core's and a hand-made one alone in test_autogen's
    test_removed_model_is_reported_and_dropped_only_on_opt_in[mysql+pymysql]."""
    project = make_project(backend, prepared=stock_at_head)
    before = project.db.snapshot()
    project.unload("demobot.cogs.economy")
    # core gets a real change so that autogenerate writes a file we can read
    project.edit(
        "demobot/models.py",
        "    name: str = ormar.String(max_length=100)\n",
        "    name: str = ormar.String(max_length=100)\n"
        "    locale: str | None = ormar.String(max_length=10, nullable=True)\n",
    )
    *revisions, unknown, upgrade_core, upgrade_music = alembic_forked(
        project,
        *(
            ["-x", f"cog={cog}", "revision", "--autogenerate", "-m", "after unload"]
            for cog in ("core", "music")
        ),
        ["-x", "cog=economy", "current"],
        *(["-x", f"cog={cog}", "upgrade", "head"] for cog in ("core", "music")),
        check=False,
    )
    for done in (*revisions, upgrade_core, upgrade_music):
        assert done.returncode == 0, done.output
    [newest] = [p for p in project.revisions("core") if "after_unload" in p.name]
    body = project.revision_ops(newest)
    assert "locale" in body and "economy" not in body and "drop" not in body
    assert len(project.revisions("music")) == 1  # nothing to do for music: no file
    assert unknown.returncode != 0 and "unknown cog 'economy'" in unknown.output
    after = project.db.snapshot()
    for table in ("economy_wallets", "economy_purchases", "alembic_version_economy"):
        assert after[table] == before[table]


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_a_hand_made_table_is_never_touched(make_project, backend: str) -> None:
    """Every cog's revision, upgrade, check and downgrade beside a table no cog models.

    SQLite (batch mode rebuilds tables) and PostgreSQL (transactional DDL, its own reflection).
    On MariaDB, a hand-made table is left out of a drop revision and in place after its upgrade
    in test_autogen's test_removed_model_is_reported_and_dropped_only_on_opt_in[mysql+pymysql].
    """
    project = make_project(backend)
    project.db.execute("CREATE TABLE legacy_stats (id INTEGER PRIMARY KEY, note VARCHAR(20))")
    project.db.execute("INSERT INTO legacy_stats (id, note) VALUES (7, 'keep me')")
    before = project.db.snapshot({"legacy_stats"})
    alembic_forked(  # each cog's revision, upgrade and check, in a row (check fails on a difference)
        project,
        *(
            command
            for cog in ("core", "music", "economy")
            for command in [*create_and_upgrade(cog), ["-x", f"cog={cog}", "check"]]
        ),
    )
    for cog in ("core", "music", "economy"):
        for path in project.revisions(cog):
            assert "legacy_stats" not in path.read_text()
    alembic_forked(
        project, *(["-x", f"cog={cog}", "downgrade", "base"] for cog in ("economy", "music", "core"))
    )
    assert project.db.snapshot({"legacy_stats"}) == before


def music_upgraded_before_core(project: BotProject) -> Result:
    """Both cogs' first revisions written, then music's upgrade run before core's (its result):
    stock commands in a row (conftest's alembic_forked)."""
    *written, early = alembic_forked(
        project,
        ["-x", "cog=core", "revision", "--autogenerate", "-m", "users"],
        ["-x", "cog=music", "revision", "--autogenerate", "-m", "songs"],
        ["-x", "cog=music", "upgrade", "head"],
        check=False,
    )
    assert [result.returncode for result in written] == [0, 0], [result.output for result in written]
    return early


def test_cross_cog_foreign_key_needs_the_referenced_cog_first(make_project) -> None:
    """PostgreSQL (transactional DDL: the failed run leaves nothing), through asyncpg.  That a failed
    revision is rolled back and reported in one line through every driver, psycopg's sync route as
    well, is test_failure's (marked every_driver); the referenced table is named by the server."""
    project = make_project("postgresql+asyncpg")
    early = music_upgraded_before_core(project)
    assert early.returncode != 0 and "cog 'music'" in early.output and "core_users" in early.output
    assert "Traceback" not in early.output
    assert not ({"music_songs", "music_playlists"} & project.db.tables())  # rolled back as a whole
    alembic_forked(project, ["-x", "cog=core", "upgrade", "head"], ["-x", "cog=music", "upgrade", "head"])
    fks = project.db.snapshot({"music_playlists"})["music_playlists"]["fks"]
    assert (("owner",), "core_users") in fks


def test_cross_cog_foreign_key_on_mariadb_needs_the_referenced_cog_first_and_leaves_a_partial_state(
    make_project,
) -> None:
    """The MariaDB twin of the test above: DDL commits statement by statement there, so the tables
    music's revision created before the one referencing core_users stay; the error and ``status``
    say so, and undoing them by hand (or fixing the revision) is the way on, as documented."""
    project = make_project("mysql+aiomysql")
    early = music_upgraded_before_core(project)
    assert early.returncode != 0 and "Traceback" not in early.output, early.output
    [failed] = [line for line in early.output.splitlines() if line.startswith("FAILED: ")]
    assert failed.startswith("FAILED: cog 'music': revision ") and "Foreign key constraint" in failed, failed
    assert "the statement that failed: CREATE TABLE music_playlists" in failed, failed
    assert "it is now between revisions: 1 schema statement of revision" in failed, failed
    assert project.db.tables() & {"music_songs", "music_playlists"} == {"music_songs"}  # not rolled back
    assert project.db.versions("alembic_version_music") == []
    status = project.nxalembic("status").stdout
    assert "music: BETWEEN REVISIONS: revision" in status
    assert "stamp head" not in status, status  # the tables are what the failed run left, not adopted ones
    project.db.execute("DROP TABLE music_songs")  # "or undo those statements by hand"
    alembic_forked(project, ["-x", "cog=core", "upgrade", "head"], ["-x", "cog=music", "upgrade", "head"])
    fks = project.db.snapshot({"music_playlists"})["music_playlists"]["fks"]
    assert (("owner",), "core_users") in fks
    assert "BETWEEN REVISIONS" not in project.nxalembic("status").stdout


def test_cross_cog_foreign_key_on_sqlite(make_project) -> None:
    project = make_project("sqlite")
    two_cogs_at_head(project)
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
