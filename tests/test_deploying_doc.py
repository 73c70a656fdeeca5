"""docs/deploying.rst: every file on the page runs as written, against a small generated bot.

The files are taken from the page itself (each ``code-block`` with a ``:caption:`` is one
file, named by its caption), so the page cannot drift from what is tested.  The bot is
generated once per session: ``mybot`` with one cog, ``notes``, an environment made by the real
``alembic init -t nxcog`` and the cog's first revision written by the real
``nxalembic migrate``.  Each file then runs in a real process (``python start.py``,
``sh entrypoint.sh``...) on a fresh database.

Only the Discord login is replaced, as the page says: ``sitecustomize.py`` (on
``PYTHONPATH``) swaps nextcord's ``Client.start`` for a stand-in that, instead of
connecting, checks with ``upgrade(bot, mode="verify")`` that the database is at head at the
moment the bot would have connected, and prints ``STARTED`` with what it found.  ``bot.run``
goes through ``Client.start`` too, so both start-up styles meet the stand-in.
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

#: The stand-in for the Discord login (see the module docstring).
SITECUSTOMIZE = '''
"""Test stand-in: nextcord's Client.start checks the database instead of logging in."""
import json

import nextcord


async def _start_without_discord(self, token, *, reconnect=True):
    import nxalembic_templates

    results = await nxalembic_templates.upgrade(self, mode="verify")  # raises CogsBehind if not at head
    print("STARTED " + json.dumps({"token": token, "at": {r.cog: r.now for r in results}}), flush=True)


nextcord.Client.start = _start_without_discord
'''

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
    "mybot/cogs/notes.py": f'''
        import ormar
        from nextcord.ext import commands

        from ..db import base_config


        class Note(ormar.Model):
            ormar_config = base_config.copy(tablename="{NOTES_TABLE}")

            id: int = ormar.Integer(primary_key=True)
            text: str = ormar.String(max_length=200)


        def setup(bot: commands.Bot) -> None:
            bot.add_cog(commands.Cog())
    ''',
    "mybot/main.py": """
        import os

        import nextcord
        from nextcord.ext import commands

        bot = commands.Bot(command_prefix="!", intents=nextcord.Intents.default())
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


FILES = documented_files()


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
    assert sorted(FILES) == ["entrypoint.sh", "probe.yaml", "start.py", "start_shard.py", "start_sync.py"]


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_recipe_1_start_py_migrates_before_connecting(
    make_bot: Callable[[str], BotProject], backend: str
) -> None:
    bot = make_bot(backend)
    first = bot.run(sys.executable, "start.py").output
    assert started(first) == {"token": TOKEN, "at": {"notes": [bot.head("notes")]}}, first
    assert f"nxalembic_templates.startup:cog notes: 1 revision applied, now at {bot.head('notes')}" in first
    assert bot.versions("notes") == [bot.head("notes")] and NOTES_TABLE in bot.db.tables()

    restart = bot.run(sys.executable, "start.py").output
    assert f"cog notes: at head {bot.head('notes')}, nothing to do" in restart and "STARTED" in restart


def test_recipe_1_start_sync_py_migrates_before_bot_run(make_bot: Callable[[str], BotProject]) -> None:
    bot = make_bot("sqlite+aiosqlite")
    out = bot.run(sys.executable, "start_sync.py").output
    assert started(out) == {"token": TOKEN, "at": {"notes": [bot.head("notes")]}}, out
    assert f"cog notes: 1 revision applied, now at {bot.head('notes')}" in out
    assert bot.versions("notes") == [bot.head("notes")]


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
    assert started(out) == {"token": TOKEN, "at": {"notes": [bot.head("notes")]}}, out
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
    assert started(shard1.output()) == {"token": TOKEN, "at": {"notes": [bot.head("notes")]}}
    assert "applied" not in shard1.output()
