"""Beyond Alembic's limits: offline autogenerate, owned-table drops, renames, guard, naming."""

from __future__ import annotations

import re

import pytest

from conftest import BotProject, alembic_forked, at_head, stock_at_head

SONG_TITLE = "    title: str = ormar.String(max_length=200)\n"


def upgrade_body(path) -> str:
    return upgrade_body_text(path.read_text())


def downgrade_body(path) -> str:
    return path.read_text().split("def downgrade() -> None:\n", 1)[1]


def autogenerate_both(project: BotProject, cog: str, step: int, *extra: str) -> tuple[str, str]:
    """Autogenerate offline (no database) and live (database at head), keep the live file and apply it.

    The three stock commands run in a row by conftest's alembic_forked (one interpreter start); the
    offline file is moved out of the cog's folder before the live autogenerate."""
    aside = project.path / f"off{step}.txt"
    message = ("revision", "--autogenerate", "-m", f"step {step}", "--rev-id")
    alembic_forked(
        project,
        ["-x", f"cog={cog}", "-x", "offline=true", *extra, *message, f"off{step}"],
        ["mv", f"{project.revisions_folder(cog)}/off{step}_*.py", str(aside)],
        ["-x", f"cog={cog}", *extra, *message, f"live{step}"],
        ["-x", f"cog={cog}", "upgrade", "head"],
    )
    [live] = [p for p in project.revisions(cog) if p.name.startswith(f"live{step}_")]
    normalise = lambda text, rid: text.replace(rid, "REV")  # noqa: E731
    return normalise(aside.read_text(), f"off{step}"), normalise(live.read_text(), f"live{step}")


MUSIC = "demobot/cogs/music/models.py"
CORE = "demobot/models.py"

# (cog, file, old, new, extra -x options): nine model evolutions of the example bot
EVOLUTIONS = [
    ("core", None, None, None, ()),  # create core_users
    ("music", None, None, None, ()),  # create music tables, FK to core and m2m through table
    (
        "music",
        MUSIC,
        SONG_TITLE,
        SONG_TITLE + "    plays: Optional[int] = ormar.Integer(nullable=True)\n",
        (),
    ),
    (
        "music",
        MUSIC,
        "    artist: Optional[str] = ormar.String(max_length=200, nullable=True)\n",
        "    artist: Optional[str] = ormar.String(max_length=200, nullable=True, index=True)\n",
        (),
    ),
    (
        "music",
        MUSIC,
        SONG_TITLE,
        SONG_TITLE
        + (
            "    added_by: Optional[User] = "
            'ormar.ForeignKey(User, nullable=True, related_name="added_songs")\n'
        ),
        (),
    ),
    ("core", CORE, "max_length=100)", "max_length=150)", ()),
    (
        "music",
        MUSIC,
        "    plays: Optional[int] = ormar.Integer(nullable=True)\n",
        "    play_count: Optional[int] = ormar.Integer(nullable=True)\n",
        ("-x", "rename=music_songs.plays:play_count"),
    ),
    (
        "music",
        MUSIC,
        "class Playlist(ormar.Model):",
        'class Album(ormar.Model):\n    ormar_config = base_config.copy(tablename="music_albums")\n\n'
        "    id: int = ormar.Integer(primary_key=True)\n    name: str = ormar.String(max_length=100)\n\n\n"
        "class Playlist(ormar.Model):",
        (),
    ),
    (
        "music",
        MUSIC,
        'class Album(ormar.Model):\n    ormar_config = base_config.copy(tablename="music_albums")\n\n'
        "    id: int = ormar.Integer(primary_key=True)\n    name: str = ormar.String(max_length=100)\n\n\n",
        "",
        ("-x", "allow_drops=true"),
    ),
]


#: Not on MariaDB yet: there live autogenerate writes existing_type=mysql.VARCHAR(...) where offline
#: writes sa.VARCHAR(...), and a column rename adds type_=sa.Integer() over INTEGER(display_width=11).
@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_offline_autogenerate_equals_live_at_every_step(make_project, backend: str) -> None:
    project = make_project(backend)
    for step, (cog, path, old, new, extra) in enumerate(EVOLUTIONS):
        if path:
            project.edit(path, old, new)
        offline, live = autogenerate_both(project, cog, step, *extra)
        assert upgrade_body_text(offline) == upgrade_body_text(live), f"step {step} ({cog}): upgrade differs"
        assert "pass" not in upgrade_body_text(live).split("###")[1], f"step {step} produced no operation"
    tables = project.db.tables()
    assert "music_albums" not in tables and "music_songs" in tables
    columns = {c[0] for c in project.db.snapshot({"music_songs"})["music_songs"]["columns"]}
    assert {"play_count", "added_by"} <= columns and "plays" not in columns


def upgrade_body_text(text: str) -> str:
    return re.search(r"def upgrade\(\) -> None:\n(.*?)\n\ndef downgrade", text, re.S).group(1)


def music_and_core_at_head(project: BotProject) -> None:
    """A set-up (``make_project(..., prepared=music_and_core_at_head)``: built once per database kind)."""
    alembic_forked(  # in a row, in one interpreter start
        project,
        *(
            ["-x", f"cog={cog}", *command]
            for cog in ("core", "music")
            for command in (["revision", "--autogenerate", "-m", f"create {cog}"], ["upgrade", "head"])
        ),
    )


def remove_playlists(project: BotProject) -> None:
    text = (project.path / MUSIC).read_text()
    (project.path / MUSIC).write_text(text[: text.index("class Playlist")])
    project.edit(
        "demobot/cogs/music/__init__.py", "from .models import Playlist, Song", "from .models import Song"
    )
    project.edit(
        "demobot/cogs/music/__init__.py",
        "count = await Playlist.objects.filter(owner__id=ctx.author.id).count()",
        "count = 0",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql+psycopg", "mysql+pymysql"])
def test_removed_model_is_reported_and_dropped_only_on_opt_in(make_project, backend: str) -> None:
    project = make_project(backend, prepared=music_and_core_at_head)
    project.db.execute("CREATE TABLE hand_made (id INTEGER PRIMARY KEY)")
    remove_playlists(project)
    project.unload("demobot.cogs.economy")
    # in a row, in one interpreter start (conftest's alembic_forked): stock commands all the same
    plain, check, opted, upgrade = alembic_forked(
        project,
        ["-x", "cog=music", "revision", "--autogenerate", "-m", "without opt-in"],
        ["-x", "cog=music", "check"],
        ["-x", "cog=music", "-x", "allow_drops=true", "revision", "--autogenerate", "-m", "drop playlists"],
        ["-x", "cog=music", "upgrade", "head"],
        check=False,
    )
    assert plain.returncode == 0 and opted.returncode == 0 and upgrade.returncode == 0, (
        plain.output + opted.output + upgrade.output
    )
    assert (
        "music_playlists, playlists_songs created by this cog's revisions are no longer modelled"
        in plain.output
    )
    assert check.returncode != 0 and "music_playlists" in check.output
    # the first file and the opted-in one: none without the opt-in
    assert "no revision written" in plain.output and len(project.revisions("music")) == 2
    [drop] = [p for p in project.revisions("music") if "drop_playlists" in p.name]
    body = upgrade_body(drop)
    assert body.count("op.drop_table(") == 2
    assert body.index("'playlists_songs'") < body.index("'music_playlists'")  # referencing table first
    assert "core_users" not in body and "hand_made" not in body and "economy" not in body
    assert not ({"music_playlists", "playlists_songs"} & project.db.tables())
    assert {"core_users", "hand_made", "music_songs"} <= project.db.tables()
    project.cog("music", "downgrade", "-1")
    assert {"music_playlists", "playlists_songs"} <= project.db.tables()


def test_tables_of_other_cogs_are_never_proposed_for_drops(make_project) -> None:
    project = make_project("sqlite+aiosqlite", prepared=stock_at_head)
    project.unload("demobot.cogs.economy")
    for cog in ("core", "music"):
        result = project.cog(cog, "-x", "allow_drops=true", "revision", "--autogenerate", "-m", "again")
        assert "no revision written" in result.output and "no longer modelled" not in result.output


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"])
def test_renamed_column_keeps_its_data(make_project, backend: str) -> None:
    project = make_project(backend, prepared=music_and_core_at_head)
    project.db.execute("INSERT INTO music_songs (id, title, artist) VALUES (1, 'Blue', 'Joni')")
    project.edit(MUSIC, SONG_TITLE, "    name: str = ormar.String(max_length=200)\n")
    refused = project.cog("music", "revision", "--autogenerate", "-m", "rename", check=False)
    assert refused.returncode != 0 and "-x rename=music_songs.title:name" in refused.output
    project.cog("music", "-x", "rename=music_songs.title:name", "revision", "--autogenerate")
    [rename] = [p for p in project.revisions("music") if "rename_music_songs_title_to_name" in p.name]
    assert "new_column_name='name'" in upgrade_body(rename) and "drop_column" not in rename.read_text()
    project.cog("music", "upgrade", "head")
    assert project.db.scalar("SELECT name FROM music_songs WHERE id = 1") == "Blue"
    project.cog("music", "downgrade", "-1")
    assert project.db.scalar("SELECT title FROM music_songs WHERE id = 1") == "Blue"
    project.cog("music", "upgrade", "head")
    assert project.db.scalar("SELECT name FROM music_songs WHERE id = 1") == "Blue"


def test_renamed_table_keeps_its_data(make_project) -> None:
    project = make_project("sqlite", prepared=music_and_core_at_head)
    project.db.execute("INSERT INTO music_songs (id, title) VALUES (1, 'Blue')")
    project.edit(MUSIC, 'tablename="music_songs"', 'tablename="music_tracks"')
    project.cog("music", "-x", "rename=music_songs:music_tracks", "revision", "--autogenerate")
    [rename] = [p for p in project.revisions("music") if "rename_music_songs_to_music_tracks" in p.name]
    assert "op.rename_table('music_songs', 'music_tracks')" in upgrade_body(rename)
    assert "op.rename_table('music_tracks', 'music_songs')" in downgrade_body(rename)
    project.cog("music", "upgrade", "head")
    assert project.db.scalar("SELECT title FROM music_tracks WHERE id = 1") == "Blue"
    project.cog("music", "downgrade", "-1")
    assert project.db.scalar("SELECT title FROM music_songs WHERE id = 1") == "Blue"


def test_not_null_column_without_default_is_refused(make_project) -> None:
    project = make_project("sqlite+aiosqlite", prepared=music_and_core_at_head)
    project.edit(
        CORE,
        "    name: str = ormar.String(max_length=100)\n",
        "    name: str = ormar.String(max_length=100)\n    locale: str = ormar.String(max_length=10)\n",
    )
    result = project.cog("core", "revision", "--autogenerate", "-m", "locale", check=False)
    assert result.returncode != 0 and "Traceback" not in result.output
    assert (
        "core_users.locale" in result.output
        and "nullable=True" in result.output
        and "server_default" in result.output
    )
    assert len(project.revisions("core")) == 1
    project.edit(
        CORE,
        "locale: str = ormar.String(max_length=10)",
        "locale: str = ormar.String(max_length=10, server_default='en')",
    )
    project.cog("core", "revision", "--autogenerate")
    assert any("add_core_users_locale" in p.name for p in project.revisions("core"))


def test_revision_message_is_derived_from_operations(make_project) -> None:
    project = make_project("sqlite")
    project.cog("core", "revision", "--autogenerate")
    assert [p.name.split("_", 1)[1] for p in project.revisions("core")] == ["create_core_users.py"]


def test_nxalembic_migrate_offline_needs_no_database(make_project) -> None:
    project = make_project("sqlite+aiosqlite")
    db_file = project.path.parent / "bot.db"
    out = project.nxalembic("migrate", "--offline").stdout
    assert "core: wrote" in out and "music: wrote" in out and "economy: wrote" in out
    assert not db_file.exists()
    assert "no changes" in project.nxalembic("migrate", "--offline").stdout
    assert not db_file.exists()
    project.nxalembic("upgrade")
    assert {"core_users", "music_songs", "economy_wallets"} <= project.db.tables()


def test_nxalembic_migrate_allow_drops_and_rename(make_project) -> None:
    project = make_project("sqlite", prepared=at_head)
    project.db.execute("INSERT INTO music_songs (id, title) VALUES (1, 'Blue')")
    project.edit(MUSIC, SONG_TITLE, "    name: str = ormar.String(max_length=200)\n")
    project.nxalembic("migrate", "--cog", "music", "--rename", "music_songs.title:name")
    remove_playlists(project)
    project.unload("demobot.cogs.economy")
    kept = project.nxalembic("migrate")
    assert "no longer modelled" in kept.output and "music: no changes" in kept.stdout
    project.nxalembic("migrate", "--allow-drops", "-m", "drop playlists")
    [drop] = [p for p in project.revisions("music") if "drop_playlists" in p.name]
    assert upgrade_body(drop).count("op.drop_table(") == 2
    project.nxalembic("upgrade")
    assert project.db.scalar("SELECT name FROM music_songs WHERE id = 1") == "Blue"
    assert "music_playlists" not in project.db.tables() and "economy_wallets" in project.db.tables()


def test_nxalembic_migrate_asks_about_renames_at_a_terminal(make_project) -> None:
    import os
    import pty
    import subprocess

    from conftest import NXALEMBIC

    project = make_project("sqlite+aiosqlite", prepared=at_head)
    project.edit(MUSIC, SONG_TITLE, "    name: str = ormar.String(max_length=200)\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [NXALEMBIC, "migrate", "--cog", "music"],
        cwd=project.path,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **project.env},
    )
    os.close(slave)
    seen = b""
    while b"[y/N]" not in seen:
        chunk = os.read(master, 1024)
        assert chunk, f"no prompt; output so far: {seen!r}"
        seen += chunk
    assert b"Did you rename music_songs.title to name? [y/N]" in seen
    os.write(master, b"y\n")
    try:
        while chunk := os.read(master, 1024):
            seen += chunk
    except OSError:  # the pty is closed when the process exits
        pass
    assert proc.wait(timeout=60) == 0, seen.decode()
    [rename] = [p for p in project.revisions("music") if "rename_music_songs_title_to_name" in p.name]
    assert "new_column_name='name'" in upgrade_body(rename)


SONG_ARTIST = "    artist: Optional[str] = ormar.String(max_length=200, nullable=True)\n"


def test_a_renamed_column_is_refused_at_no_terminal_naming_the_rename(make_project) -> None:
    """Written as add + drop it would lose the column's data: migrate (stdin is no terminal
    here), stock autogenerate and check all name the rename hint and --allow-drops."""
    project = make_project("sqlite", prepared=at_head)
    project.db.execute("INSERT INTO music_songs (id, title, artist) VALUES (1, 'Blue', 'Joni')")
    project.edit(MUSIC, SONG_ARTIST, SONG_ARTIST.replace("artist", "performer"))
    files = project.revisions("music")
    refused = project.nxalembic("migrate", check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.output
    [line] = [line for line in refused.stderr.splitlines() if "music_songs.artist" in line]
    assert "would drop column music_songs.artist" in line, line
    assert "pass --rename music_songs.artist:performer" in line and "pass --allow-drops" in line, line
    stock = project.cog("music", "revision", "--autogenerate", check=False)
    assert stock.returncode != 0 and "Traceback" not in stock.output
    assert "-x rename=music_songs.artist:performer" in stock.output and "-x allow_drops=true" in stock.output
    assert project.revisions("music") == files
    check = project.nxalembic("check", check=False)
    assert check.returncode == 1
    assert (
        "run 'nxalembic migrate --cog music' to write the revision of music: if renamed, pass --rename "
        "music_songs.artist:performer; to drop, pass --allow-drops" in check.stderr
    ), check.stderr
    project.nxalembic("migrate", "--cog", "music", "--rename", "music_songs.artist:performer")
    project.nxalembic("upgrade")
    assert project.db.scalar("SELECT performer FROM music_songs WHERE id = 1") == "Joni"
    assert project.nxalembic("check").returncode == 0


def test_a_removed_column_is_dropped_only_with_allow_drops(make_project) -> None:
    project = make_project("sqlite", prepared=at_head)
    project.edit(MUSIC, SONG_ARTIST, "")
    refused = project.nxalembic("migrate", check=False)
    assert refused.returncode != 0 and "--rename" not in refused.stderr
    assert (
        "would drop column music_songs.artist and lose the data; to drop, pass --allow-drops"
        in refused.stderr
    )
    stock = project.cog("music", "revision", "--autogenerate", check=False)
    assert stock.returncode != 0 and "to drop, pass -x allow_drops=true" in stock.output
    check = project.nxalembic("check", check=False)
    assert "of music: to drop, pass --allow-drops" in check.stderr, check.stderr
    project.nxalembic("migrate", "--cog", "music", "--allow-drops")
    [dropped] = [p for p in project.revisions("music") if "drop" in p.name]
    assert "drop_column('artist')" in upgrade_body(dropped)
    project.nxalembic("upgrade")
    assert project.nxalembic("check").returncode == 0


def test_check_advice_for_a_removed_model_is_what_migrate_needs(make_project) -> None:
    project = make_project("sqlite", prepared=at_head)
    remove_playlists(project)
    check = project.nxalembic("check", check=False)
    assert check.returncode == 1
    [advice] = [line for line in check.stderr.splitlines() if line.startswith("run 'nxalembic migrate")]
    assert (
        advice
        == "run 'nxalembic migrate --cog music' to write the revision of music: to drop, pass --allow-drops"
    )
    project.nxalembic("migrate", "--cog", "music", "--allow-drops")  # what the advice says
    project.nxalembic("upgrade")
    assert project.nxalembic("check").returncode == 0
