"""Revision files and histories, through the real ``alembic`` and ``nxalembic`` executables.

What is written must always import and say what it was given: messages from ``-m`` and
names derived from (hostile) table and column names are escaped, file names are cut at whole
operation names, a first revision names its parent as none.  What is read must not pass
falsely: a revision that calls ``sys.exit()``, points into another cog's history or shares an
id with another file gives one ``FAILED:`` line naming the file, and changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import BotProject, run
from test_bad_input import (  # noqa: F401  (base_project and project are fixtures)
    NX_ALL,
    NX_MUSIC,
    UPGRADE_MUSIC,
    Case,
    assert_one_clear_line,
    base_project,
    project,
)

MUSIC_MODELS = "demobot/cogs/music/models.py"
ECONOMY = "demobot/cogs/economy.py"
PRICE = "    price: int = ormar.Integer()\n"
SONG_TITLE = "    title: str = ormar.String(max_length=200)\n"
MUSIC_TABLES = {"music_songs", "music_playlists", "playlists_songs"}
ALL_TABLES = {"core_users", "economy_wallets", "economy_purchases", *MUSIC_TABLES}

#: Closes the docstring of the old template and runs code when the file is imported.
HOSTILE_TABLE = 'x"""\nopen("INJECTED", "w")\n"""'
#: Quotes and a backslash (backslashes that break the file outright are in MESSAGES).
HOSTILE_COLUMN = 'say "hi" \\o/'


def revision_id(path: Path) -> str:
    return re.search(r"^revision: str = '(\w+)'", path.read_text(), re.M).group(1)  # type: ignore[union-attr]


def new_revision(project: BotProject, cog: str, before: list[Path]) -> Path:
    [path] = [p for p in project.revisions(cog) if p not in before]
    return path


def docstrings(project: BotProject, paths: list[Path]) -> dict[str, str | None]:
    """Import each revision file in a fresh interpreter (it must import) and return its ``__doc__``."""
    code = (
        "import json, runpy, sys; print(json.dumps({p: runpy.run_path(p)['__doc__'] for p in sys.argv[1:]}))"
    )
    result = run([sys.executable, "-c", code, *map(str, paths)], cwd=project.path)
    return json.loads(result.stdout)


def add_song_columns(project: BotProject, *names: str) -> None:
    columns = "".join(
        f"    c{i}: int | None = ormar.Integer(nullable=True, name={name!r})\n"
        for i, name in enumerate(names)
    )
    project.edit(MUSIC_MODELS, SONG_TITLE, SONG_TITLE + columns)


# -- everything written into a revision is escaped ------------------------------------------------

MESSAGES = [
    "store C:\\Users paths",  # \U starts a unicode escape
    'say """hi""" twice',
    "ends in a backslash \\",
    "two\nlines",
    "naïve café ☕ 日本",
    "tab\t, CR\r, ESC\x1b, \\N{BULLET} and \\x00 as text",
    os.fsdecode(b"latin-1 caf\xe9"),  # a byte that is not UTF-8 arrives as a lone surrogate
]


def test_hostile_messages_are_written_as_given_through_every_command(make_project: Any) -> None:
    project = make_project("sqlite+aiosqlite")
    expected: dict[Path, str] = {}

    def write(cog: str, message: str, command: Callable[..., Any], *args: str) -> Path:
        before = project.revisions(cog)
        command(*args)
        path = new_revision(project, cog, before)
        expected[path] = message
        return path

    before = {cog: project.revisions(cog) for cog in ("core", "music", "economy")}
    project.nxalembic("migrate", "-m", MESSAGES[0])
    for cog, old in before.items():
        expected[new_revision(project, cog, old)] = MESSAGES[0]
    [first_music] = project.revisions("music")
    write("music", MESSAGES[1], project.cog, "music", "revision", "-m", MESSAGES[1])
    write("music", MESSAGES[2], project.nxalembic, "migrate", "--app", "music", "--empty", "-m", MESSAGES[2])
    project.nxalembic("upgrade")
    add_song_columns(project, "plays")
    write("music", MESSAGES[3], project.cog, "music", "revision", "--autogenerate", "-m", MESSAGES[3])
    project.cog("music", "upgrade", "head")
    project.edit(
        MUSIC_MODELS, SONG_TITLE, SONG_TITLE + "    likes: int | None = ormar.Integer(nullable=True)\n"
    )
    write("music", MESSAGES[4], project.nxalembic, "migrate", "--app", "music", "-m", MESSAGES[4])
    write(
        "music",
        MESSAGES[5],
        project.cog,
        "music",
        "revision",
        "--head",
        revision_id(first_music),
        "--splice",
        "-m",
        MESSAGES[5],
    )
    merge = write("music", MESSAGES[6], project.cog, "music", "merge", "heads", "-m", MESSAGES[6])

    docs = docstrings(project, list(expected))
    for path, message in expected.items():
        assert docs[str(path)].startswith(message + "\n\nCog revision "), (path.name, docs[str(path)])
    assert "_c_users_paths.py" in " ".join(p.name for p in expected), "the file name keeps the words"

    project.nxalembic("upgrade")
    assert project.db.tables() == ALL_TABLES | {f"alembic_version_{c}" for c in ("core", "music", "economy")}
    assert project.db.versions("alembic_version_music") == [revision_id(merge)]
    columns = {c["name"] for c in sa.inspect(project.db.engine).get_columns("music_songs")}
    assert {"plays", "likes"} <= columns


@pytest.mark.parametrize("backend", ["sqlite", "postgresql+psycopg"])
def test_hostile_table_and_column_names_are_written_as_literals(make_project: Any, backend: str) -> None:
    """A table name closing the docstring used to run its code when the revision was imported.

    The table is economy's purchases, which no foreign key references (SQLite cannot reflect
    a foreign key to such a name, so autogenerate would see a spurious change there).
    """
    project = make_project(backend)
    project.edit(ECONOMY, 'tablename="economy_purchases"', f"tablename={HOSTILE_TABLE!r}")
    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    note = f"    note: int | None = ormar.Integer(nullable=True, name={HOSTILE_COLUMN!r})\n"
    project.edit(ECONOMY, PRICE, PRICE + note)
    before = project.revisions("economy")
    project.cog("economy", "revision", "--autogenerate")
    added = new_revision(project, "economy", before)
    project.cog("economy", "upgrade", "head")

    assert not (project.path / "INJECTED").exists(), "a revision file ran code from a table name"
    docs = docstrings(project, [added, *before])
    assert docs[str(added)].startswith(f"add_{HOSTILE_TABLE}_{HOSTILE_COLUMN}\n\nCog revision "), docs[
        str(added)
    ]
    tables = ALL_TABLES - {"economy_purchases"} | {HOSTILE_TABLE}
    assert project.db.tables() == tables | {f"alembic_version_{c}" for c in ("core", "music", "economy")}
    columns = {c["name"] for c in sa.inspect(project.db.engine).get_columns(HOSTILE_TABLE)}
    assert columns == {"id", "wallet", "song", "price", HOSTILE_COLUMN}


# -- file names and docstrings -----------------------------------------------------------------------


def slug_of(path: Path) -> str:
    return path.stem.split("_", 1)[1]


def test_derived_file_names_end_at_whole_operation_names(make_project: Any) -> None:
    project = make_project("sqlite")
    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    add_song_columns(project, "plays", "likes")

    ini = project.path / "alembic.ini"
    original = ini.read_text()

    def derived_name(slug_length: int | None) -> str:
        if slug_length is not None:
            ini.write_text(
                original.replace("[alembic]\n", f"[alembic]\ntruncate_slug_length = {slug_length}\n")
            )
        before = project.revisions("music")
        project.cog("music", "revision", "--autogenerate")
        path = new_revision(project, "music", before)
        path.unlink()
        return slug_of(path)

    # Alembic's default (40) used to cut this to add_music_songs_plays_and_add_music_
    assert derived_name(None) == "add_music_songs_plays_and_1_more"
    assert derived_name(60) == "add_music_songs_plays_and_add_music_songs_likes"
    assert derived_name(25) == "add_music_songs_plays"
    assert derived_name(20) == "add_music_songs"
    for path in project.revisions("music") + project.revisions("core") + project.revisions("economy"):
        assert not path.stem.endswith("_"), path.name


def test_a_first_revision_names_its_parent_as_none(make_project: Any) -> None:
    project = make_project("sqlite")
    project.nxalembic("migrate", "--app", "music", "--empty", "-m", "first")
    [first] = project.revisions("music")
    project.cog("music", "revision", "-m", "second")
    [second] = [p for p in project.revisions("music") if p != first]
    assert (
        f"Cog revision {revision_id(first)}, parent: (none: first revision of cog music)\n"
        in first.read_text()
    )
    assert f"Cog revision {revision_id(second)}, parent: {revision_id(first)}\n" in second.read_text()


# -- bad revision files and histories: one line, nothing changed -------------------------------------


def music_file(p: BotProject, suffix: str) -> Path:
    [path] = [f for f in p.revisions("music") if f.name.endswith(suffix)]
    return path


def edit_pending(p: BotProject, old: str, new: str) -> None:
    path = music_file(p, "_pending.py")
    text = path.read_text()
    assert re.search(old, text, re.M), old
    path.write_text(re.sub(old, new, text, count=1, flags=re.M))


def exit_at_import(p: BotProject) -> None:
    edit_pending(p, r"^from alembic import op$", "from alembic import op\nimport sys\nsys.exit(0)")


def exit_in_upgrade(p: BotProject) -> None:
    edit_pending(p, r"^def upgrade\(\) -> None:$", "def upgrade() -> None:\n    import sys\n    sys.exit(0)")


def core_first_id(p: BotProject) -> str:
    [first] = [f for f in p.revisions("core") if f.name.endswith("_create.py")]
    return revision_id(first)


def down_revision_into_core(p: BotProject) -> None:
    edit_pending(p, r"^(down_revision: .*) = .*$", rf"\1 = '{core_first_id(p)}'")


def depends_on_into_core(p: BotProject) -> None:
    edit_pending(p, r"^(depends_on: .*) = .*$", rf"\1 = '{core_first_id(p)}'")


def down_revision_unknown(p: BotProject) -> None:
    edit_pending(p, r"^(down_revision: .*) = .*$", r"\1 = 'cafe0000beef'")


def one_id_twice(p: BotProject) -> None:
    shutil.copy(music_file(p, "_create.py"), music_file(p, "_create.py").parent / "copy_of_create.py")


EXITED = (
    "cog 'music'",
    "failed: sys.exit(0) was called at",
    "_pending.py:",
    "a revision must not end the process",
    "remove that call",
)
CHECK_MUSIC = ("-x", "cog=music", "check")

CASES = [
    Case(
        "revision file calls sys.exit() when imported",
        exit_at_import,
        UPGRADE_MUSIC,
        ("cannot load revision file", "_pending.py:", "calls sys.exit(0) when imported", "remove that call"),
        NX_ALL,
    ),
    Case("revision calls sys.exit() in upgrade(): upgrade", exit_in_upgrade, UPGRADE_MUSIC, EXITED, NX_MUSIC),
    # nxalembic check/status report the cog as not compared: see the test after the table
    Case("revision calls sys.exit() in upgrade(): check", exit_in_upgrade, CHECK_MUSIC, EXITED, None),
    Case(
        "down_revision points into another cog",
        down_revision_into_core,
        UPGRADE_MUSIC,
        (
            "cog 'music': revision file",
            "_pending.py: down_revision",
            "is a revision of cog 'core'",
            "_create.py",
            "each cog has its own history",
            "point down_revision at a revision of cog 'music'",
        ),
        NX_ALL,
    ),
    Case(
        "depends_on points into another cog",
        depends_on_into_core,
        UPGRADE_MUSIC,
        ("cog 'music': revision file", "_pending.py: depends_on", "is a revision of cog 'core'", "remove it"),
        NX_ALL,
    ),
    Case(
        "down_revision that no cog has",
        down_revision_unknown,
        UPGRADE_MUSIC,
        (
            "_pending.py: down_revision 'cafe0000beef' is not a revision of this or any other cog",
            "restore the revision file",
        ),
        NX_ALL,
    ),
    Case(
        "two revision files with one id",
        one_id_twice,
        UPGRADE_MUSIC,
        (
            "cog 'music': revision files",
            "copy_of_create.py",
            "_create.py",
            "have the same revision id",
            "give one of them a new id",
        ),
        NX_ALL,
    ),
    Case(
        "revision id that is not a name",
        None,
        ("-x", "cog=music", "revision", "--rev-id", 'x"""y', "-m", "m"),
        ("revision id 'x\"\"\"y' may only hold letters, digits and '_'", "pass another --rev-id"),
        None,
    ),
]


def revision_files(p: BotProject) -> dict[str, str]:
    return {str(f): f.read_text() for f in sorted((p.path / "migrations" / "versions").rglob("*.py"))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_revision_files_give_one_line_and_change_nothing(project: BotProject, case: Case) -> None:
    if case.setup is not None:
        case.setup(project)
    before, files = project.db.snapshot(), revision_files(project)
    assert before["alembic_version_music"]["rows"], "the fixture's database must have version rows"

    runs = []
    if case.alembic:
        runs.append((project.alembic(*case.alembic, check=False), case.words))
    if case.nxalembic is not None:
        runs.append((project.nxalembic(*case.nxalembic, check=False), case.nx_words or case.words))
    for result, words in runs:
        assert_one_clear_line(result.output, result.returncode, words)
        assert project.db.snapshot() == before
        assert revision_files(project) == files


def test_sys_exit_in_a_pending_revision_leaves_the_cog_uncompared(project: BotProject) -> None:
    """status still reports every cog and says why music was not compared; check fails naming it."""
    exit_in_upgrade(project)
    before = project.db.snapshot()
    status = project.nxalembic("status", check=False)
    assert status.returncode == 0 and "Traceback" not in status.output
    assert re.search(r"^music .* not compared", status.stdout, re.M), status.output
    assert "sys.exit(0) was called at" in status.output and "_pending.py:" in status.output
    check = project.nxalembic("check", check=False)
    assert check.returncode == 1 and "Traceback" not in check.output
    assert "sys.exit(0) was called at" in check.output
    assert "check failed: 1 cog could not be compared: music" in check.stderr
    assert project.db.snapshot() == before
