"""Documented command behaviour that no other test covers, through the real executables.

Stock ``alembic`` commands that never run env.py (``heads``, ``branches``, ``show``, ``edit``)
and those that need ``-x cog=`` (``merge``, ``history``), offline ``--sql`` downgrades, offline
autogenerate against a chosen scratch database, the table-rename prompt at a terminal,
repeated table renames, ``status`` on a bot whose cogs reference each other in a cycle, and
``make demo`` itself.
"""

from __future__ import annotations

import json
import os
import pty
import re
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import ALEMBIC, NXALEMBIC, REPO, BotProject, Database, at_head, run, run_demo
from test_bad_input import assert_one_clear_line
from test_cli import close_a_cycle

MUSIC = "demobot/cogs/music/models.py"
LOCALE = (
    "    name: str = ormar.String(max_length=100)\n",
    "    name: str = ormar.String(max_length=100)\n"
    "    locale: str | None = ormar.String(max_length=10, nullable=True)\n",
)


def revision_id(path: Path) -> str:
    return re.search(r"^revision: str = '(\w+)'", path.read_text(), re.M).group(1)  # type: ignore[union-attr]


def revision_file(project: BotProject, cog: str, rev: str) -> Path:
    [path] = [p for p in project.revisions(cog) if p.name.startswith(f"{rev}_")]
    return path


def with_body(path: Path, body: str) -> None:
    """Replace the ``pass`` of a blank revision's upgrade() by *body*."""
    text = path.read_text()
    path.write_text(
        re.sub(
            r"(def upgrade\(\) -> None:\n(?:    #.*\n)*)    pass\n",
            lambda m: f"{m.group(1)}    {body}\n",
            text,
            count=1,
        )
    )
    assert body in path.read_text(), text


# -- -x scratch_url= ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scratch",
    [
        "postgresql+psycopg://nx:S3cretScratch@127.0.0.1:1/x",
        "mysql+pymysql://nx:S3cretScratch@127.0.0.1:1/x",
        "nonsense://nx:S3cretScratch@h/x",
        "sqlite:////no/such/folder/S3cretScratch.db",
    ],
)
def test_a_scratch_database_that_cannot_be_opened_is_one_line(make_project, scratch: str) -> None:
    project = make_project("sqlite+aiosqlite")
    before = project.db.snapshot()
    for result in (
        project.cog(
            "music",
            "-x",
            "offline=true",
            "-x",
            f"scratch_url={scratch}",
            "revision",
            "--autogenerate",
            "-m",
            "x",
            check=False,
        ),
        project.nxalembic("-x", f"scratch_url={scratch}", "migrate", "--offline", check=False),
    ):
        assert_one_clear_line(result.output, result.returncode, ("scratch",))
        assert "S3cretScratch" not in result.output or scratch.startswith("sqlite")
    assert project.revisions("music") == [] and project.db.snapshot() == before


def test_offline_autogenerate_replays_mariadb_only_sql_into_a_mariadb_scratch_database(
    make_project, mariadb_server
) -> None:
    """The MariaDB twin of the PostgreSQL part below: a revision with MariaDB-only SQL (a table
    comment in MariaDB's syntax) cannot be replayed into SQLite; -x scratch_url= pointing at a
    throwaway MariaDB database replays it there."""
    project = make_project("sqlite")
    offline = ("-x", "cog=core", "-x", "offline=true")
    project.alembic(*offline, "revision", "--autogenerate", "-m", "users", "--rev-id", "users")
    project.cog("core", "revision", "-m", "comment", "--rev-id", "comment")
    with_body(
        revision_file(project, "core", "comment"),
        "op.execute(\"ALTER TABLE core_users COMMENT = 'Discord users'\")",
    )
    project.edit("demobot/models.py", *LOCALE)
    refused = project.alembic(*offline, "revision", "--autogenerate", "-m", "locale", check=False)
    assert_one_clear_line(
        refused.output,
        refused.returncode,
        ("replaying revision comment into the scratch database 'sqlite://' failed", "-x scratch_url="),
    )
    name = "t_" + uuid.uuid4().hex[:12]
    mariadb_server.create_database(name)
    scratch = Database(mariadb_server.url(name, driver="pymysql"))
    try:
        project.alembic(
            *offline, "-x", f"scratch_url={scratch.url}", "revision", "--autogenerate", "--rev-id", "locale"
        )
        assert scratch.versions("alembic_version_core") == ["comment"]
        assert (
            scratch.scalar(
                "SELECT table_comment FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'core_users'"
            )
            == "Discord users"
        )
    finally:
        scratch.dispose()
        mariadb_server.drop_database(name)
    body = project.revision_ops(revision_file(project, "core", "locale"))
    assert "batch_op.add_column(sa.Column('locale'" in body  # written for the live database, SQLite


def test_offline_autogenerate_replays_into_the_scratch_database_given(
    make_project, pg_server, tmp_path: Path
) -> None:
    """migrations.rst: ``-x scratch_url=`` picks the scratch database of offline autogenerate,
    e.g. a throwaway PostgreSQL database for revisions SQLite cannot replay."""
    project = make_project("sqlite")
    offline = ("-x", "cog=core", "-x", "offline=true")
    project.alembic(*offline, "revision", "--autogenerate", "-m", "users", "--rev-id", "users")
    project.edit("demobot/models.py", *LOCALE)

    scratch_file = tmp_path / "scratch.db"
    project.alembic(
        *offline,
        "-x",
        f"scratch_url=sqlite:///{scratch_file}",
        "revision",
        "--autogenerate",
        "-m",
        "locale",
        "--rev-id",
        "locale",
    )
    assert "batch_op.add_column(sa.Column('locale'" in project.revision_ops(
        revision_file(project, "core", "locale")
    )
    with sqlite3.connect(scratch_file) as scratch:  # the history was replayed there, to its head
        assert scratch.execute("SELECT version_num FROM alembic_version_core").fetchall() == [("users",)]
        assert [r[1] for r in scratch.execute("PRAGMA table_info(core_users)")] == ["id", "name"]
    assert not (tmp_path / "bot.db").exists(), "offline autogenerate must not open the live database"

    # a hand-written revision with PostgreSQL-only SQL: the default scratch (SQLite in memory)
    # cannot replay it
    project.cog("core", "revision", "-m", "comment", "--rev-id", "comment")
    with_body(
        revision_file(project, "core", "comment"),
        "op.execute(\"COMMENT ON TABLE core_users IS 'Discord users'\")",
    )
    project.edit(
        "demobot/models.py", LOCALE[1], LOCALE[1] + "    level: int | None = ormar.Integer(nullable=True)\n"
    )
    refused = project.alembic(*offline, "revision", "--autogenerate", "-m", "level", check=False)
    assert_one_clear_line(
        refused.output,
        refused.returncode,
        ("replaying revision comment into the scratch database 'sqlite://' failed", "-x scratch_url="),
    )
    (tmp_path / "bot.db").unlink()  # the blank revision's environment run opened it, as stock Alembic does

    name = "t_" + uuid.uuid4().hex[:12]
    pg_server.create_database(name)
    scratch = Database(pg_server.url(name, driver="psycopg"))
    try:
        project.alembic(
            *offline,
            "-x",
            f"scratch_url={scratch.url}",
            "revision",
            "--autogenerate",
            "-m",
            "level",
            "--rev-id",
            "level",
        )
        assert scratch.versions("alembic_version_core") == ["comment"]
        assert scratch.scalar("SELECT obj_description('core_users'::regclass)") == "Discord users"
    finally:
        scratch.dispose()
        pg_server.drop_database(name)
    body = project.revision_ops(revision_file(project, "core", "level"))
    assert "batch_op.add_column(sa.Column('level'" in body and "locale" not in body
    assert not (tmp_path / "bot.db").exists(), "offline autogenerate must not open the live database"


# -- stock commands that never run env.py, and merge / history ---------------------------------------


def test_stock_heads_branches_show_edit_merge_and_history(make_project, tmp_path: Path) -> None:
    """stock-alembic.rst: heads, branches, show and edit need no cog; heads lists one head per
    cog, branches prints nothing while histories are linear, show/edit take a revision id and
    ``head`` is ambiguous for them as soon as there are two cogs.  merge and history need
    ``-x cog=`` and work on that cog's revisions."""
    project = make_project("sqlite")
    project.cog("core", "revision", "--autogenerate", "-m", "users", "--rev-id", "users")
    project.cog("music", "revision", "--autogenerate", "-m", "songs", "--rev-id", "songs")
    assert sorted(project.alembic("heads").stdout.split()) == ["(head)", "(head)", "songs", "users"]
    assert project.alembic("branches").stdout.strip() == ""

    show = project.alembic("show", "songs").stdout
    assert "Rev: songs (head)" in show and f"Path: {revision_file(project, 'music', 'songs')}" in show
    ambiguous = project.alembic("show", "head", check=False)
    assert_one_clear_line(ambiguous.output, ambiguous.returncode, ("Multiple head revisions",))

    editor = tmp_path / "editor.sh"  # a harmless EDITOR: appends a marker to the file it is given
    editor.write_text('#!/bin/sh\necho "# edited" >> "$1"\n')
    editor.chmod(0o755)
    run([ALEMBIC, "edit", "users"], cwd=project.path, env={**project.env, "EDITOR": str(editor)})
    assert revision_file(project, "core", "users").read_text().endswith("# edited\n")
    assert not revision_file(project, "music", "songs").read_text().endswith("# edited\n")
    ambiguous = run(
        [ALEMBIC, "edit", "head"], cwd=project.path, env={**project.env, "EDITOR": str(editor)}, check=False
    )
    assert_one_clear_line(ambiguous.output, ambiguous.returncode, ("Multiple head revisions",))

    project.cog("music", "revision", "-m", "a", "--rev-id", "left")
    project.cog("music", "revision", "-m", "b", "--rev-id", "right", "--head", "songs", "--splice")
    assert sorted(project.alembic("heads").stdout.split()) == ["(head)"] * 3 + ["left", "right", "users"]
    branches = project.alembic("branches").stdout
    assert "songs (branchpoint)" in branches and "-> left" in branches and "-> right" in branches

    # merge and history run env.py: they need the cog, and the merge lands in the cog's folder
    for args in (("merge", "heads", "-m", "merge"), ("history",)):
        result = project.alembic(*args, check=False)
        assert_one_clear_line(result.output, result.returncode, ("no cog selected", "-x cog=NAME"))
    assert len(project.revisions("music")) == 3
    project.cog("music", "merge", "heads", "-m", "merge", "--rev-id", "merged")
    merged = revision_file(project, "music", "merged").read_text()
    assert re.search(r"^down_revision: .* = \('(left|right)', '(left|right)'\)$", merged, re.M), merged
    history = project.cog("music", "history").stdout
    assert "left, right -> merged (head) (mergepoint), merge" in history
    assert "<base> -> songs (branchpoint), songs" in history and "users" not in history
    project.cog("music", "upgrade", "head")
    assert project.db.versions("alembic_version_music") == ["merged"]
    assert sorted(project.alembic("heads").stdout.split()) == ["(head)", "(head)", "merged", "users"]


# -- --sql downgrades -------------------------------------------------------------------------------


def test_downgrade_sql_prints_the_cogs_sql_and_changes_nothing(make_project) -> None:
    """stock-alembic.rst / migrations.rst: ``--sql`` works as usual and prints the cog's SQL,
    version table included; offline mode does not touch the database."""
    project = make_project("sqlite+aiosqlite", prepared=at_head)
    music = revision_id(project.revisions("music")[0])
    before = project.db.snapshot()

    stock = project.cog("music", "downgrade", f"{music}:base", "--sql").stdout
    nx = project.nxalembic("downgrade", "music", f"{music}:base", "--sql").stdout
    assert nx.startswith("-- cog music: alembic_version_music\n") and stock in nx
    for sql in (stock, nx):
        drops = re.findall(r"^DROP TABLE (\w+);$", sql, re.M)
        assert drops == ["playlists_songs", "music_playlists", "music_songs"]  # referencing tables first
        assert (
            f"DELETE FROM alembic_version_music WHERE alembic_version_music.version_num = '{music}';" in sql
        )
        assert "core_users" not in sql and "economy" not in sql
    # "one step down" cannot be computed offline (Alembic needs FROM:TO): one line that says so
    one_step = project.nxalembic("downgrade", "music", "--sql", check=False)
    assert one_step.returncode != 0 and "Traceback" not in one_step.output
    [line] = one_step.stderr.strip().splitlines()
    assert line.startswith("FAILED: cog 'music': ") and "--sql" in line, line
    assert project.db.snapshot() == before


# -- renames ----------------------------------------------------------------------------------------


def answer_prompts(project: BotProject, args: list[str], answers: dict[bytes, bytes]) -> str:
    """Run *args* at a terminal (a pty); answer each ``[y/N]`` question by the first key it contains."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        args, cwd=project.path, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **project.env}
    )
    os.close(slave)
    seen, answered = b"", 0
    try:
        while chunk := os.read(master, 1024):
            seen += chunk
            while seen.count(b"[y/N]") > answered:
                question = seen.split(b"[y/N]")[answered].rsplit(b"\n", 1)[-1]
                answered += 1
                os.write(master, next((a for q, a in answers.items() if q in question), b"n") + b"\n")
    except OSError:  # the pty is closed when the process exits
        pass
    output = seen.decode()
    assert proc.wait(timeout=120) == 0, output
    return output


def test_table_rename_prompt_at_a_terminal(make_project) -> None:
    """migrations.rst: at a terminal, nxalembic migrate asks about each removed table against
    each new one, and ``y`` writes a rename instead of a drop and a create."""
    project = make_project("sqlite+aiosqlite", prepared=at_head)
    project.db.execute("INSERT INTO music_songs (id, title) VALUES (1, 'Blue')")
    project.edit(MUSIC, 'tablename="music_songs"', 'tablename="music_tracks"')
    output = answer_prompts(
        project, [NXALEMBIC, "migrate", "--cog", "music"], {b"rename table music_songs to music_tracks": b"y"}
    )
    assert "Did you rename table music_songs to music_tracks? [y/N]" in output
    [rename] = [p for p in project.revisions("music") if "rename_music_songs_to_music_tracks" in p.name]
    body = project.revision_ops(rename)
    assert "op.rename_table('music_songs', 'music_tracks')" in body
    assert "create_table" not in body and "drop_table" not in body
    project.nxalembic("upgrade")
    assert project.db.scalar("SELECT title FROM music_tracks WHERE id = 1") == "Blue"


def test_a_table_renamed_twice_keeps_its_data_down_and_up(make_project) -> None:
    """Two renames over two revisions: the second one's history knows the first one's name."""
    project = make_project("sqlite", prepared=at_head)
    project.db.execute("INSERT INTO music_songs (id, title) VALUES (1, 'Blue')")
    title = "SELECT title FROM {} WHERE id = 1"
    for step, (old, new) in enumerate((("music_songs", "music_tracks"), ("music_tracks", "music_tunes"))):
        project.edit(MUSIC, f'tablename="{old}"', f'tablename="{new}"')
        project.cog(
            "music", "-x", f"rename={old}:{new}", "revision", "--autogenerate", "--rev-id", f"rename{step}"
        )
        body = project.revision_ops(revision_file(project, "music", f"rename{step}"))
        assert f"op.rename_table('{old}', '{new}')" in body and "drop_table" not in body
        project.cog("music", "upgrade", "head")
        assert project.db.scalar(title.format(new)) == "Blue"
    project.cog("music", "downgrade", "-1")
    assert project.db.scalar(title.format("music_tracks")) == "Blue"
    project.cog("music", "downgrade", "-1")
    assert project.db.scalar(title.format("music_songs")) == "Blue"
    assert not {"music_tracks", "music_tunes"} & project.db.tables()
    project.cog("music", "upgrade", "head")
    assert project.db.scalar(title.format("music_tunes")) == "Blue"
    assert "No changes in schema detected" in project.cog("music", "revision", "--autogenerate").output


# -- status with a foreign-key cycle ----------------------------------------------------------------


def test_status_works_with_a_foreign_key_cycle_between_cogs(make_project) -> None:
    """runner.py: migrate --app and status still work on a bot whose cogs reference each other in a cycle."""
    project = make_project("sqlite+aiosqlite")
    close_a_cycle(project)
    assert "core -> economy -> music -> core" in project.nxalembic("upgrade", check=False).stderr

    def status() -> dict:
        return {c["cog"]: c for c in json.loads(project.nxalembic("status", "--json").stdout)["cogs"]}

    for cog in ("core", "music", "economy"):
        project.nxalembic("migrate", "--app", cog)
    pending = status()
    assert {cog: (c["current"], c["pending"], c["differs"]) for cog, c in pending.items()} == {
        cog: ([], 1, False) for cog in ("core", "economy", "music")
    }
    for cog in ("core", "music", "economy"):
        project.cog(cog, "upgrade", "head")
    done = status()
    assert all(c["current"] == c["head"] and c["pending"] == 0 and not c["differs"] for c in done.values()), (
        done
    )


# -- make demo --------------------------------------------------------------------------------------


@pytest.mark.wheel  # the demo runs stock `alembic list_templates` and `alembic init -t nxcog`
def test_make_demo_runs_the_documented_workflow(tmp_path: Path) -> None:
    """README / quickstart.rst: ``make demo`` runs the whole workflow on the example bot on SQLite,
    and last the bot's own start-up migrates the database (deploying.rst)."""
    recipe = re.search(r"^demo: install-wheel\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe and recipe.group(1) == "\t$(BIN)/python examples/demo.py\n", "the demo target changed"
    out = run_demo(tmp_path)

    written = dict(re.findall(r"Generating \S+/migrations/versions/(\w+)/(\w+?)_\w+\.py", out))
    written.update(re.findall(r"^  (\w+): wrote migrations/versions/\w+/(\w+?)_\w+\.py$", out, re.M))
    assert set(written) == {"core", "music", "economy"}, out
    assert "No changes in schema detected for cog 'music'; no revision written." in out
    assert "upgraded 3 cogs: 1 revision applied" in out  # core and music were already at head
    assert "all cogs: models match their migrations" in out

    # the database after `alembic -x cog=economy downgrade base`, then after `nxalembic upgrade`
    after_downgrade, after_upgrade, after_start = out.split("Tables in demobot.db:")[1:]
    for listing, economy_rev in (
        (after_downgrade, "(empty)"),
        (after_upgrade, written["economy"]),
        (after_start, written["economy"]),
    ):
        tables = dict(re.findall(r"^  (\w+) +(.*)$", listing.split("\n\n")[0], re.M))
        assert tables["alembic_version_core"] == f"version table -> {written['core']}"
        assert tables["alembic_version_music"] == f"version table -> {written['music']}"
        assert tables["alembic_version_economy"] == f"version table -> {economy_rev}"
        assert tables["core_users"] == "(id, name)" and tables["music_songs"] == "(id, title, artist)"
        assert ("economy_wallets" in tables) == (economy_rev != "(empty)")
    # the bot's own start-up (python -m demobot.main, no token): economy was down again, the bot applied it
    first_start, restart = out.split("$ python -m demobot.main")[1:]
    assert f"cog economy: 1 revision applied, now at {written['economy']}" in first_start
    for start in (first_start, restart):
        assert f"cog core: at head {written['core']}, nothing to do" in start
        assert "not connecting to Discord" in start
    assert f"cog economy: at head {written['economy']}, nothing to do" in restart
    files = re.findall(r"^  (migrations/versions/\S+\.py)$", out, re.M)
    assert sorted(f.split("/")[2] for f in files) == ["core", "economy", "music"]
