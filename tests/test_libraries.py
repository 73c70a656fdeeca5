"""docs/libraries.rst: the core workflow with a small bot of one discord library, as the page writes it.

``NXALEMBIC_LIBRARY`` names the library (``nextcord``, the default, in ``make test``;
``discord.py``, ``disnake`` or ``py-cord`` in the CI leg of each: ``make test-discordpy``...).
The bot is the page's own files for that library (each ``code-block`` with a caption
``path (library)`` or a plain ``path``), plus a second cog, ``tags``, a package whose model
references ``notes`` (so the order of cogs matters), and a module without ``setup`` in the
cogs package (which the ``extensions = mybot.cogs`` setting must skip).  Every bot loads its
extensions only when it starts, so every command here depends on the ``extensions`` setting.

The start-up check runs the bot's real entry point (``python -m mybot.main``); only the
Discord login is replaced (``sitecustomize.py`` on ``PYTHONPATH``): the library's
``Client.start`` runs ``setup_hook`` when the library has one (as the real login does before
the gateway connects), then checks in ``verify`` mode that the database is at head, prints
``STARTED`` with what it found, and returns instead of connecting.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import BIN, REPO, BotProject, Database, Result
from test_deploying_doc import documented_files

PAGE = REPO / "docs" / "libraries.rst"

#: NXALEMBIC_LIBRARY value -> (distribution, the package it installs).
LIBRARIES = {
    "nextcord": ("nextcord", "nextcord"),
    "discord.py": ("discord.py", "discord"),
    "disnake": ("disnake", "disnake"),
    "py-cord": ("py-cord", "discord"),
}
LIBRARY = os.environ.get("NXALEMBIC_LIBRARY", "nextcord")
TOKEN = "not-a-real-token"

SITECUSTOMIZE = '''
"""Test stand-in: {package}.Client.start checks the database instead of logging in."""
import json

import {package}


async def _start_without_discord(self, token, *args, **kwargs):
    import nxalembic_templates

    if hasattr(self, "setup_hook"):
        await self.setup_hook()  # what the real login runs before connecting
    results = await nxalembic_templates.upgrade(self, mode="verify")  # raises CogsBehind if not at head
    found = {{"token": token, "at": {{r.cog: r.now for r in results}}, "extensions": sorted(self.extensions)}}
    print("STARTED " + json.dumps(found), flush=True)


{package}.Client.start = _start_without_discord
'''


#: The page's files, by caption: ``path``, ``path (library)`` or a name such as ``commands``.
FILES = documented_files(PAGE)


def library_files(library: str) -> dict[str, str]:
    """The page's files of the example bot for *library*: shared ones and ``path (library)``."""
    files = {}
    for caption, text in FILES.items():
        path, _, label = caption.partition(" (")
        if label.rstrip(")") == library or (not label and ("/" in path or path == "nxalembic.ini")):
            files[path] = text
    return files


def tags_cog(notes: str) -> dict[str, str]:
    """A package cog ``tags`` whose setup is written as the library's ``notes`` cog writes it."""
    imports = re.search(r"^from \S+\.ext import commands$", notes, re.M).group(0)  # type: ignore[union-attr]
    setup = re.search(r"^(async )?def setup.*", notes, re.M | re.S).group(0)  # type: ignore[union-attr]
    return {
        "mybot/cogs/tags/__init__.py": f"{imports}\n\nfrom . import models  # noqa: F401\n\n\n"
        f"class Tags(commands.Cog):\n    pass\n\n\n{setup.replace('Notes()', 'Tags()')}",
        "mybot/cogs/tags/models.py": textwrap.dedent(
            """
            import ormar

            from ...db import base_config
            from ..notes import Note


            class Tag(ormar.Model):
                ormar_config = base_config.copy(tablename="tags")

                id: int = ormar.Integer(primary_key=True)
                name: str = ormar.String(max_length=50)
                note: Note | None = ormar.ForeignKey(Note)
            """
        ),
        "mybot/cogs/helpers.py": "def shorten(text: str) -> str:\n    return text[:20]\n",
    }


def write_files(path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for package in ("mybot", "mybot/cogs"):
        (path / package / "__init__.py").touch()


@dataclass
class LibraryBot(BotProject):
    """The page's bot for one library in a folder, with an nxcog environment and a database.

    A :class:`BotProject` whose bot reads ``MYBOT_DATABASE_URL`` (this environment's executables
    first on ``PATH``); it adds the library and :meth:`start`, which runs the bot itself with a
    stand-in for the library's login.
    """

    url_variable: str = "MYBOT_DATABASE_URL"
    library: str = "nextcord"

    def start(self, db: Database) -> Result:
        """``python -m mybot.main`` with the stand-in login, on *db*."""
        env = {"DISCORD_TOKEN": TOKEN, "PYTHONPATH": str(self.path / "stand_in")}
        return self.on(db).run(sys.executable, "-m", "mybot.main", env=env)


def make_library_bot(path: Path, library: str) -> LibraryBot:
    """The page's bot for *library* written into *path* (an nxcog environment already), on async SQLite."""
    write_files(path, library_files(library))
    write_files(path, tags_cog((path / "mybot/cogs/notes.py").read_text()))
    stand_in = path / "stand_in"
    stand_in.mkdir()
    (stand_in / "sitecustomize.py").write_text(SITECUSTOMIZE.format(package=LIBRARIES[library][1]))
    return LibraryBot(
        path,
        Database(f"sqlite+aiosqlite:///{path / 'bot.db'}"),
        extra_env={"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        library=library,
    )


def started(output: str) -> dict:
    [line] = [line for line in output.splitlines() if line.startswith("STARTED ")]
    return json.loads(line.removeprefix("STARTED "))


def foreign_keys(db: Database, table: str) -> list[tuple[tuple[str, ...], str]]:
    return [
        (tuple(fk["constrained_columns"]), fk["referred_table"])
        for fk in sa.inspect(db.engine).get_foreign_keys(table)
    ]


@pytest.fixture
def library_bot(initialised_template: Path, tmp_path: Path) -> Iterator[LibraryBot]:
    path = tmp_path / "project"
    shutil.copytree(initialised_template, path)
    bot = make_library_bot(path, LIBRARY)
    yield bot
    bot.db.dispose()


def test_the_library_under_test_is_installed() -> None:
    """A leg must test the library it names, not silently another one."""
    distribution, _package = LIBRARIES[LIBRARY]
    assert importlib.metadata.version(distribution), f"NXALEMBIC_LIBRARY={LIBRARY} is not installed"
    others = [d for d, _ in LIBRARIES.values() if d != distribution and _installed(d)]
    assert LIBRARY == "nextcord" or not others, f"{LIBRARY} leg also has {others} installed"


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_the_page_has_the_bot_of_every_library() -> None:
    for library in LIBRARIES:
        assert {"mybot/main.py", "mybot/cogs/notes.py", "mybot/db.py", "nxalembic.ini"} <= set(
            library_files(library)
        ), library


def test_core_workflow(library_bot: LibraryBot) -> None:
    """Every command of the page's ``commands`` block, in order, and the bot migrating at start-up."""
    bot = library_bot
    commands = [line.removeprefix("$ ").split() for line in FILES["commands"].splitlines()]
    assert [c[:4] for c in commands[:2]] == [
        ["alembic", "-x", "cog=notes", "revision"],
        ["alembic", "-x", "cog=notes", "upgrade"],
    ]
    assert [c[1] for c in commands[2:]] == ["migrate", "upgrade", "status", "check"]

    # stock alembic, one cog: the revision and the upgrade of notes only
    bot.alembic(*[arg.strip('"') for arg in commands[0][1:]])
    bot.alembic(*commands[1][1:])
    assert {"notes", "alembic_version_notes"} <= bot.db.tables() and "tags" not in bot.db.tables()
    assert bot.versions("notes") == [bot.head("notes")]

    # nxalembic, every cog: tags is written and applied after notes, which it references
    migrate = bot.nxalembic("migrate").output
    assert "notes: no changes" in migrate and "tags: wrote" in migrate, migrate
    upgrade = bot.nxalembic("upgrade").output
    assert re.search(r"^notes: nothing to do.*\ntags: 1 revision applied", upgrade, re.M), upgrade
    assert foreign_keys(bot.db, "tags") == [(("note",), "notes")]
    assert bot.versions("tags") == [bot.head("tags")]
    status = bot.nxalembic("status").stdout
    assert re.search(r"^notes\s+alembic_version_notes\s+(\w+)\s+\1\s+0\s+in sync$", status, re.M), status
    assert re.search(r"^tags\s+alembic_version_tags\s+(\w+)\s+\1\s+0\s+in sync$", status, re.M), status
    assert "helpers" not in status and "note:" not in status
    assert "all cogs: models match their migrations" in bot.nxalembic("check").output

    # the start-up API, from the bot's own entry point, on a fresh database
    fresh = Database(f"sqlite+aiosqlite:///{bot.path / 'fresh.db'}")
    try:
        out = bot.start(fresh).output
        assert started(out) == {
            "token": TOKEN,
            "at": {"notes": [bot.head("notes")], "tags": [bot.head("tags")]},
            "extensions": ["mybot.cogs.notes", "mybot.cogs.tags"],
        }, out
        assert foreign_keys(fresh, "tags") == [(("note",), "notes")]
        assert fresh.versions("alembic_version_notes") == [bot.head("notes")]
    finally:
        fresh.dispose()


def test_the_start_up_api_leaves_the_bots_extensions_as_they_are(library_bot: LibraryBot) -> None:
    """A third cog, weather, in the ``extensions`` package that the bot does not load (issue 25).

    The page's bot loads notes and tags (discord.py: in ``setup_hook``, then ``await
    upgrade(self)``; the others: then ``upgrade_sync(bot)``).  The start-up API loads nothing
    into it: its extensions stay the two, and the third cog, imported aside, is migrated like
    ``nxalembic upgrade`` would (docs/deploying.rst, "Which cogs").
    """
    bot = library_bot
    notes = (bot.path / "mybot/cogs/notes.py").read_text()
    imports = re.search(r"^from \S+\.ext import commands$", notes, re.M).group(0)  # type: ignore[union-attr]
    setup = re.search(r"^(async )?def setup.*", notes, re.M | re.S).group(0)  # type: ignore[union-attr]
    weather = (
        f"import ormar\n{imports}\n\nfrom ..db import base_config\nfrom .notes import Note\n\n\n"
        "class Weather(ormar.Model):\n"
        '    ormar_config = base_config.copy(tablename="weather")\n\n'
        "    id: int = ormar.Integer(primary_key=True)\n"
        "    note: Note | None = ormar.ForeignKey(Note)\n\n\n"
        f"class WeatherCog(commands.Cog):\n    pass\n\n\n{setup.replace('Notes()', 'WeatherCog()')}"
    )
    write_files(bot.path, {"mybot/cogs/weather.py": weather})
    assert "weather: wrote" in bot.nxalembic("migrate").output

    out = bot.start(bot.db).output
    assert started(out) == {
        "token": TOKEN,
        "at": {cog: [bot.head(cog)] for cog in ("notes", "tags", "weather")},
        "extensions": ["mybot.cogs.notes", "mybot.cogs.tags"],
    }, out
    assert foreign_keys(bot.db, "weather") == [(("note",), "notes")]
    assert "ExtensionAlreadyLoaded" not in out and "Traceback" not in out
