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

from conftest import BIN, REPO, BotProject, Database, Result, run, run_demo
from test_deploying_doc import documented_commands, documented_files

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


# -- docs/discordpy-pyproject.rst: the discord.py + pyproject.toml user's path, as the page writes it --

WALK_PAGE = REPO / "docs" / "discordpy-pyproject.rst"
WALK_EDIT = "pyproject.toml, [tool.nxalembic] after the edit"

#: The stand-in login of the walk: setup_hook (as discord.py's login runs it), then what the bot has.
WALK_SITECUSTOMIZE = """
import json

import discord
import nxalembic_templates


async def _setup_hook_then_report(self, token, *args, **kwargs):
    await self.setup_hook()
    at = {r.cog: r.now for r in await nxalembic_templates.upgrade(self, mode="verify")}
    print("STARTED " + json.dumps({"token": token, "extensions": sorted(self.extensions), "at": at}))


discord.Client.start = _setup_hook_then_report
"""


def walk_shell(path: Path, command: str, **env: str) -> Result:
    """*command* as the page writes it, through the shell, with this environment's executables first."""
    stand_in = path.parent / "stand_in"
    variables = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(stand_in), **env}
    return run(["sh", "-c", command], cwd=path, env=variables)


def revision_of(path: Path, cog: str) -> str:
    [file] = (path / "migrations" / "versions" / cog).glob("*.py")
    return file.name.split("_", 1)[0]


@pytest.mark.skipif(
    LIBRARY != "discord.py", reason="the page's bot is a discord.py bot (make test-discordpy)"
)
def test_discordpy_pyproject_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """init, the page's edit, migrate, upgrade, status, check and the start-up in setup_hook, as written."""
    monkeypatch.delenv("MYBOT_DATABASE_URL", raising=False)
    files = documented_files(WALK_PAGE)
    commands = documented_commands(WALK_PAGE)
    assert commands[0] == 'pip install "nxalembic-templates[discordpy,sqlite]"'  # this venv has it
    assert [c.split()[:2] for c in commands[1:6]] == [["nxalembic", "init"]] + [
        ["nxalembic", name] for name in ("migrate", "upgrade", "status", "check")
    ]
    [start] = commands[6:]
    assert "--pyproject" in commands[1] and start.endswith("python -m mybot.main"), commands
    (tmp_path / "stand_in").mkdir()
    (tmp_path / "stand_in" / "sitecustomize.py").write_text(WALK_SITECUSTOMIZE)
    path = tmp_path / "project"
    edit = files.pop(WALK_EDIT)
    write_files(path, files)

    walk_shell(path, commands[1])  # nxalembic init --pyproject: [tool.alembic] and the skeleton
    pyproject = (path / "pyproject.toml").read_text()
    assert pyproject.startswith(files["pyproject.toml"]) and "\n[tool.alembic]\n" in pyproject, pyproject
    table = re.compile(r"^\[tool\.nxalembic\]\n(?:[^\[\n].*\n|\n)*", re.M)
    assert 'module = "mybot.main"' in table.search(pyproject).group(0), pyproject  # type: ignore[union-attr]
    (path / "pyproject.toml").write_text(table.sub(lambda _: edit + "\n", pyproject))

    migrate = walk_shell(path, commands[2]).output
    assert "notes: wrote" in migrate and "tags: wrote" in migrate and "fun:" not in migrate, migrate
    heads = {cog: revision_of(path, cog) for cog in ("notes", "tags")}
    walk_shell(path, commands[3])
    db = Database(f"sqlite:///{path / 'mybot.db'}")
    try:
        assert db.tables() == {"notes", "tags", "alembic_version_notes", "alembic_version_tags"}
        assert foreign_keys(db, "tags") == [(("note",), "notes")]
        assert {cog: db.versions(f"alembic_version_{cog}") for cog in heads} == {
            cog: [head] for cog, head in heads.items()
        }
    finally:
        db.dispose()
    status = walk_shell(path, commands[4]).stdout
    for cog, head in heads.items():
        assert re.search(rf"^{cog}\s+alembic_version_{cog}\s+{head}\s+{head}\s+0\s+in sync$", status, re.M), (
            status
        )
    assert "all cogs: models match their migrations" in walk_shell(path, commands[5]).output

    # the start-up: at head on mybot.db, then a new server (an empty database) the bot migrates itself
    bot_extensions = ["mybot.cogs.fun", "mybot.cogs.notes", "mybot.cogs.tags"]
    restart = started(walk_shell(path, start).output)
    assert restart == {
        "token": "your-bot-token",
        "extensions": bot_extensions,
        "at": {c: [h] for c, h in heads.items()},
    }
    fresh = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        first = started(walk_shell(path, start, MYBOT_DATABASE_URL=fresh.url).output)
        assert first == restart
        assert fresh.tables() == {"notes", "tags", "alembic_version_notes", "alembic_version_tags"}
        assert foreign_keys(fresh, "tags") == [(("note",), "notes")]
        assert fresh.versions("alembic_version_tags") == [heads["tags"]]
    finally:
        fresh.dispose()


@pytest.mark.skipif(
    LIBRARY != "discord.py", reason="the demo's bot is a discord.py bot (make test-discordpy)"
)
def test_make_demo_lib_discordpy(tmp_path: Path) -> None:
    """``make demo LIB=discordpy``: the discord.py bot with pyproject.toml, migrating in setup_hook."""
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^ifeq \(\$\(LIB\),discordpy\)\ndemo:\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe and recipe.group(1).endswith("\t$(DEMO_VENV)/bin/python examples/demo.py discordpy\n")
    out = run_demo(tmp_path, "discordpy")
    assert 'extensions = "dpybot.cogs"' in out  # the pyproject.toml it starts from, printed
    written = dict(re.findall(r"^  (\w+): wrote migrations/versions/\w+/(\w+?)_\w+\.py$", out, re.M))
    assert set(written) == {"notes", "reminders"}, out
    assert "upgraded 2 cogs: 2 revisions applied" in out and "all cogs: models match their migrations" in out
    for cog, head in written.items():
        assert re.search(rf"^  {cog}\s+alembic_version_{cog}\s+{head}\s+{head}\s+0\s+in sync$", out, re.M), (
            out
        )
    # reminders down again, then the bot's own start-up: setup_hook applies it; a restart finds both at head
    first_start, restart = out.split("$ python -m dpybot.main")[1:]
    assert f"cog reminders: 1 revision applied, now at {written['reminders']}" in first_start, out
    for cog, head in written.items():
        assert f"cog {cog}: at head {head}, nothing to do" in restart, out
    assert "setup_hook ran, the database is ready; not connecting to Discord" in restart
    final = out.split("Tables in dpybot.db:")[-1].split("\n\n")[0]
    tables = dict(re.findall(r"^  (\w+) +(.*)$", final, re.M))
    assert tables == {
        "alembic_version_notes": f"version table -> {written['notes']}",
        "alembic_version_reminders": f"version table -> {written['reminders']}",
        "notes_notes": "(id, author_id, text)",
        "reminders_reminders": "(id, note, due)",
    }, out


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
