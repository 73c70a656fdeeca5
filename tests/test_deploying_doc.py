"""docs/deploying.rst: every file on the page runs as written, against a small generated bot.

The files are taken from the page itself (each ``code-block`` with a ``:caption:`` is one
file, named by its caption; ``start.py (discord.py)`` is the file ``start.py`` for that
library), so the page cannot drift from what is tested.  The bot is generated once per
session: ``mybot`` with one cog, ``notes``, an environment made by the real ``alembic init
-t nxcog`` and the cog's first revision written by the real ``nxalembic migrate``.  Each file
then runs in a real process (``python start.py``, ``sh entrypoint.sh``...) on a fresh database.

``NXALEMBIC_LIBRARY`` names the library, as in ``tests/test_libraries.py``: nextcord (the
default: its bot loads its extension when imported) in ``make test``, discord.py (its bot
loads its extension in ``setup_hook``, ``extensions = mybot.cogs`` in the settings) in
``make test-discordpy``.

Only the Discord login is replaced, as the page says: ``sitecustomize.py`` (on
``PYTHONPATH``) swaps the library's ``Client.start`` for a stand-in that, instead of
connecting, runs ``setup_hook`` (as the real login does) and checks with
``upgrade(bot, mode="verify")`` that the database is at head at the moment the bot would
have connected, and prints ``STARTED`` with what it found and the bot's extensions.
``bot.run`` goes through ``Client.start`` too, so every start-up style meets the stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import BIN, NXALEMBIC, REPO, BotProject, Database, Spawned, _database_for, run
from startup_bots import STEP_TIMEOUT, stop, wait_for

PAGE = REPO / "docs" / "deploying.rst"
TOKEN = "not-a-real-token"
NOTES_TABLE = "notes_notes"
LIBRARY = os.environ.get("NXALEMBIC_LIBRARY", "nextcord")
#: The package each library installs.
PACKAGES = {"nextcord": "nextcord", "discord.py": "discord", "disnake": "disnake", "py-cord": "discord"}
PACKAGE = PACKAGES[LIBRARY]

#: The stand-in for the Discord login (see the module docstring).
SITECUSTOMIZE = f'''
"""Test stand-in: {PACKAGE}.Client.start checks the database instead of logging in."""
import json

import {PACKAGE}


async def _start_without_discord(self, token, *args, **kwargs):
    import nxalembic_templates

    if hasattr(self, "setup_hook"):
        await self.setup_hook()  # what the real login runs before connecting
    results = await nxalembic_templates.upgrade(self, mode="verify")  # raises CogsBehind if not at head
    found = {{"token": token, "at": {{r.cog: r.now for r in results}}, "extensions": sorted(self.extensions)}}
    print("STARTED " + json.dumps(found), flush=True)


{PACKAGE}.Client.start = _start_without_discord
'''

NOTES = f'''
        import ormar
        from {PACKAGE}.ext import commands

        from ..db import base_config


        class Note(ormar.Model):
            ormar_config = base_config.copy(tablename="{NOTES_TABLE}")

            id: int = ormar.Integer(primary_key=True)
            text: str = ormar.String(max_length=200)
'''

#: nextcord, disnake and py-cord: the bot loads its extension when the module is imported.
BOT = {
    "mybot/__init__.py": "",
    "mybot/db.py": """
        import os

        import ormar
        import sqlalchemy

        database = ormar.DatabaseConnection(os.environ["MYBOT_DATABASE_URL"])
        base_config = ormar.OrmarConfig(database=database, metadata=sqlalchemy.MetaData())
    """,
    "mybot/cogs/__init__.py": "",
    "mybot/cogs/notes.py": NOTES
    + """

        def setup(bot: commands.Bot) -> None:
            bot.add_cog(commands.Cog())
    """,
    "mybot/main.py": f"""
        import os

        import {PACKAGE}
        from {PACKAGE}.ext import commands

        bot = commands.Bot(command_prefix="!", intents={PACKAGE}.Intents.default())
        bot.load_extension("mybot.cogs.notes")

        if __name__ == "__main__":
            bot.run(os.environ["DISCORD_TOKEN"])
    """,
    "nxalembic.ini": """
        [nxalembic]
        module = mybot.main
        bot = bot
    """,
}
if LIBRARY == "discord.py":  # the extension is loaded in setup_hook: the settings name it
    BOT |= {
        "mybot/cogs/notes.py": NOTES
        + """

        async def setup(bot: commands.Bot) -> None:
            await bot.add_cog(commands.Cog())
    """,
        "mybot/main.py": """
        import os

        import discord
        from discord.ext import commands


        class MyBot(commands.Bot):
            async def setup_hook(self) -> None:
                await self.load_extension("mybot.cogs.notes")


        bot = MyBot(command_prefix="!", intents=discord.Intents.default())

        if __name__ == "__main__":
            bot.run(os.environ["DISCORD_TOKEN"])
    """,
        "nxalembic.ini": BOT["nxalembic.ini"] + "    extensions = mybot.cogs\n",
    }
#: The extensions the bot loads itself, which the start-up API must leave as they are.
OWN_EXTENSIONS = ["mybot.cogs.notes"]


def documented_files(page: Path = PAGE) -> dict[str, str]:
    """Every ``code-block`` of *page* that has a ``:caption:``, by caption (the whole line after it)."""
    files = {}
    pattern = re.compile(r"^\.\. code-block:: \S+\n   :caption: ([^\n]+)\n\n((?:   .*\n|\n)+)", re.M)
    for caption, body in pattern.findall(page.read_text()):
        files[caption] = textwrap.dedent(body).strip() + "\n"
    return files


def documented_commands(page: Path) -> list[str]:
    """Every ``$ `` line of the ``console`` code-blocks of *page*, in page order (the prompt cut off).

    Pages whose commands a test runs as written (docs/pyproject.rst) take them from here, so
    the page cannot drift from what is tested.
    """
    blocks = re.findall(r"^\.\. code-block:: console\n\n((?:   .*\n|\n)+)", page.read_text(), re.MULTILINE)
    return [
        line.strip()[2:] for block in blocks for line in block.splitlines() if line.strip().startswith("$ ")
    ]


def files_for(library: str, files: dict[str, str]) -> dict[str, str]:
    """The files of *files* for *library*: plain captions, and ``name (lib, lib...)`` naming it."""
    chosen = {}
    for caption, text in files.items():
        name, _, libraries = caption.partition(" (")
        if not libraries or library in libraries.rstrip(")").split(", "):
            chosen[name] = text
    return chosen


FILES = files_for(LIBRARY, documented_files())


def deployed_bot(path: Path, db: Database) -> BotProject:
    """The generated bot in *path* on *db*, with the page's files and the stand-in login.

    A :class:`BotProject` whose bot reads ``MYBOT_DATABASE_URL``; every command also gets the
    token and the stand-in (``PYTHONPATH``), since the page's files start the bot itself.
    """
    stand_in = path / "stand_in"
    stand_in.mkdir()
    (stand_in / "sitecustomize.py").write_text(SITECUSTOMIZE)
    for name, text in FILES.items():
        (path / name).write_text(text)
    return BotProject(
        path,
        db,
        url_variable="MYBOT_DATABASE_URL",
        extra_env={
            "DISCORD_TOKEN": TOKEN,
            "PYTHONPATH": str(stand_in),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # python and nxalembic of the test environment
        },
    )


def started(output: str) -> dict:
    """What the stand-in found when the bot would have connected."""
    [line] = [line for line in output.splitlines() if line.startswith("STARTED ")]
    return json.loads(line.removeprefix("STARTED "))


def at_head(bot: BotProject) -> dict:
    """What the stand-in finds when the bot starts at head, with only its own extensions loaded."""
    return {"token": TOKEN, "at": {"notes": [bot.head("notes")]}, "extensions": OWN_EXTENSIONS}


#: What Alembic itself logs while migrating (the start-up API keeps it out unless asked).
ALEMBIC_LINES = re.compile(r"^INFO:alembic", re.M)
#: The line the page gives for seeing Alembic's lines too.
ALEMBIC_OPT_IN = 'logging.getLogger("alembic").setLevel(logging.INFO)'


@pytest.fixture(scope="session")
def generated_bot(initialised_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated bot with an nxcog environment and its first revision, made once per session."""
    path = tmp_path_factory.mktemp("deploying") / "project"
    shutil.copytree(initialised_template, path)
    for name, text in BOT.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(textwrap.dedent(text).lstrip())
    scratch = path.parent / "scratch.db"
    run([NXALEMBIC, "migrate"], cwd=path, env={"MYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{scratch}"})
    scratch.unlink(missing_ok=True)
    return path


@pytest.fixture
def make_bot(
    generated_bot: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[[str], BotProject]:
    """``make_bot(backend)``: a copy of the generated bot on a fresh, empty database."""
    made: list[Database] = []

    def make(backend: str) -> BotProject:
        path = tmp_path / "project"
        shutil.copytree(generated_bot, path)
        db = _database_for(backend, tmp_path, request)
        made.append(db)
        bot = deployed_bot(path, db)
        assert bot.versions("notes") == [] and NOTES_TABLE not in db.tables()
        return bot

    yield make
    for db in made:
        db.dispose()


def test_the_page_has_the_files_this_test_runs() -> None:
    for library in PACKAGES:
        assert sorted(files_for(library, documented_files())) == [
            "entrypoint.sh",
            "probe.yaml",
            "start.py",
            "start_shard.py",
            "start_sync.py",
        ], library
    assert "run_until_complete" not in files_for("discord.py", documented_files())["start.py"]


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_recipe_1_start_py_migrates_before_connecting(
    make_bot: Callable[[str], BotProject], backend: str
) -> None:
    bot = make_bot(backend)
    first = bot.run(sys.executable, "start.py").output
    assert started(first) == at_head(bot), first
    assert f"nxalembic_templates.startup:cog notes: 1 revision applied, now at {bot.head('notes')}" in first
    assert not ALEMBIC_LINES.search(first), first  # logging.basicConfig(level=INFO): one line per cog
    assert bot.versions("notes") == [bot.head("notes")] and NOTES_TABLE in bot.db.tables()

    restart = bot.run(sys.executable, "start.py").output
    assert f"cog notes: at head {bot.head('notes')}, nothing to do" in restart and "STARTED" in restart


def test_recipe_1_start_sync_py_migrates_before_bot_run(make_bot: Callable[[str], BotProject]) -> None:
    """With a bot that loads its extensions in setup_hook too (discord.py), after upgrade_sync loaded none."""
    bot = make_bot("sqlite+aiosqlite")
    out = bot.run(sys.executable, "start_sync.py").output
    assert started(out) == at_head(bot), out
    assert f"cog notes: 1 revision applied, now at {bot.head('notes')}" in out
    assert bot.versions("notes") == [bot.head("notes")]
    assert not ALEMBIC_LINES.search(out), out

    # Alembic's lines as well, the way the page says, on the database made fresh again
    assert ALEMBIC_OPT_IN in PAGE.read_text()
    script = FILES["start_sync.py"].replace(
        "logging.basicConfig(level=logging.INFO)",
        f"logging.basicConfig(level=logging.INFO)\n    {ALEMBIC_OPT_IN}",
    )
    assert ALEMBIC_OPT_IN in script
    (bot.path / "start_sync_alembic.py").write_text(script)
    bot.db.execute(f"DROP TABLE {NOTES_TABLE}")
    bot.db.execute("DROP TABLE alembic_version_notes")
    out = bot.run(sys.executable, "start_sync_alembic.py").output
    assert started(out) == at_head(bot), out
    assert f"INFO:alembic.runtime.migration:Running upgrade  -> {bot.head('notes')}" in out, out
    assert f"cog notes: 1 revision applied, now at {bot.head('notes')}" in out


def test_recipe_2_entrypoint_migrates_then_execs_the_bot_and_the_probe_follows(
    make_bot: Callable[[str], BotProject],
) -> None:
    bot = make_bot("sqlite+aiosqlite")
    probe = json.loads(re.search(r"command: (\[.*\])", FILES["probe.yaml"]).group(1))  # type: ignore[union-attr]
    assert probe[0] == "nxalembic"

    not_ready = bot.run(*probe, check=False)
    assert not_ready.returncode == 1 and "behind: notes by 1 revision" in not_ready.output, not_ready.output
    assert bot.versions("notes") == [] and NOTES_TABLE not in bot.db.tables()  # the probe changed nothing

    out = bot.run("sh", "entrypoint.sh").output
    assert "upgraded 1 cog: 1 revision applied" in out
    assert started(out) == at_head(bot), out
    assert bot.run(*probe).returncode == 0


def test_recipe_2_entrypoint_stops_before_the_bot_when_the_migration_fails(
    make_bot: Callable[[str], BotProject],
) -> None:
    bot = make_bot("sqlite+aiosqlite")
    bot.db.execute(f"CREATE TABLE {NOTES_TABLE} (id INTEGER PRIMARY KEY)")  # in the revision's way
    out = bot.run("sh", "entrypoint.sh", check=False)
    assert out.returncode == 1, out.output
    assert (
        "FAILED: cog 'notes'" in out.output and "STARTED" not in out.output and "Traceback" not in out.output
    )


def test_recipe_3_other_shards_wait_in_verify_mode_until_shard_0_migrated(
    make_bot: Callable[[str], BotProject],
) -> None:
    bot = make_bot("sqlite+aiosqlite")
    starters: list[Spawned] = []
    try:
        starters.append(
            shard1 := bot.spawn("shard1", sys.executable, "start_shard.py", env={"SHARD_ID": "1"})
        )
        wait_for(
            lambda: "waiting for shard 0 to migrate: {'notes': 1}" in shard1.output() or None,
            "shard 1 to wait for shard 0",
            starters,
        )
        assert bot.versions("notes") == []  # shard 1 only looked
        shard0 = bot.run(sys.executable, "start_shard.py", env={"SHARD_ID": "0"}).output
        assert f"cog notes: 1 revision applied, now at {bot.head('notes')}" in shard0 and "STARTED" in shard0
        assert shard1.process.wait(timeout=STEP_TIMEOUT) == 0, shard1.output()
    finally:
        stop(starters)
    assert started(shard1.output()) == at_head(bot)
    assert "applied" not in shard1.output()
