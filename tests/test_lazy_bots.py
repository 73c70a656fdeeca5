"""Bots that load their extensions, or are built, only when they start (docs/libraries.rst, nextcord).

The bot of docs/libraries.rst loads its extensions under ``if __name__ == "__main__":``;
``tests/test_libraries.py`` runs the whole workflow on it through the ``extensions =
mybot.cogs`` setting.  Here: the page's factory (``bot = create_bot``, sync and async), the
start-up API loading what the given bot lacks, the error for a bot without extensions, and
wrong ``extensions`` entries, each through the real executables on a real SQLite file.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Result
from test_libraries import FILES, LibraryBot, foreign_keys, make_library_bot

NO_EXTENSIONS = (
    "bot mybot.main.bot has no extensions loaded: importing mybot.main loads none",
    'under if __name__ == "__main__":, in main() or in setup_hook',
    "'extensions = mybot.cogs.music, mybot.cogs.games' or 'extensions = mybot.cogs' under [nxalembic] in "
    "nxalembic.ini",
    "'bot = create_bot'",
)


@pytest.fixture
def lazy_bot(initialised_template: Path, tmp_path: Path) -> Iterator[LibraryBot]:
    """The page's nextcord bot, with the factory module and its nxalembic.ini beside it."""
    path = tmp_path / "project"
    shutil.copytree(initialised_template, path)
    bot = make_library_bot(path, "nextcord")
    (path / "mybot" / "app.py").write_text(FILES["mybot/app.py (factory)"])
    yield bot
    bot.db.dispose()


def use_factory(bot: LibraryBot) -> None:
    (bot.path / "nxalembic.ini").write_text(FILES["nxalembic.ini (factory)"])


def one_failed_line(result: Result, *words: str) -> str:
    """The run failed with exactly one ``FAILED:`` line, no traceback, and the line has *words*."""
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("FAILED: ")]
    for word in words:
        assert word in line, f"{word!r} not in: {line}"
    return line


def status(bot: LibraryBot) -> dict:
    return json.loads(bot.nxalembic("status", "--json").stdout)


def test_a_factory_builds_the_bot_and_the_setting_loads_what_it_did_not(lazy_bot: LibraryBot) -> None:
    bot = lazy_bot
    use_factory(bot)
    assert "mybot.cogs.notes" in FILES["nxalembic.ini (factory)"]  # loaded by create_bot: skipped
    assert "tags: wrote" in bot.nxalembic("migrate").output
    out = bot.nxalembic("upgrade").output
    assert "notes: 1 revision applied" in out and "tags: 1 revision applied" in out, out
    assert foreign_keys(bot.db, "tags") == [(("note",), "notes")]
    assert bot.versions("tags") == [bot.head("tags")]
    assert bot.head("tags") in bot.alembic("-x", "cog=tags", "current").stdout

    # the same factory as a coroutine function (awaited), the list written with commas
    app = bot.path / "mybot" / "app.py"
    app.write_text(app.read_text().replace("def create_bot()", "async def create_bot()"))
    assert "async def create_bot()" in app.read_text()
    ini = bot.path / "nxalembic.ini"
    ini.write_text(
        ini.read_text().split("extensions =")[0] + "extensions = mybot.cogs.tags, mybot.cogs.notes\n"
    )
    assert {c["cog"]: c["pending"] for c in status(bot)["cogs"]} == {"notes": 0, "tags": 0}


def test_the_start_up_api_migrates_the_extensions_the_bot_lacks_without_loading_them(
    lazy_bot: LibraryBot,
) -> None:
    """The bot loads notes; the setting names tags too: migrated, never loaded into the bot (issue 25).

    The live models stay as they were (tags' foreign key to Note adds no relation to the live
    Note), and the bot can load tags itself afterwards (its models not defined twice).
    """
    bot = lazy_bot
    use_factory(bot)
    bot.nxalembic("migrate")
    script = bot.path / "start_lazily.py"
    script.write_text(
        "import asyncio, sys\n"
        "import nxalembic_templates\n"
        "from mybot.app import create_bot\n\n"
        "bot = create_bot()  # loads notes only\n"
        "fields = bot.extensions['mybot.cogs.notes'].Note.ormar_config.model_fields\n"
        "if sys.argv[1] == 'sync':\n"
        "    results = nxalembic_templates.upgrade_sync(bot)\n"
        "else:\n"
        "    results = asyncio.run(nxalembic_templates.upgrade(bot))\n"
        "print('LOADED', sorted(bot.extensions), [r.cog for r in results], 'tags' in fields)\n"
        "bot.load_extension('mybot.cogs.tags')\n"
        "print('THEN', sorted(bot.extensions), 'tags' in fields)\n"
    )
    for how in ("sync", "async"):
        bot.db.engine.dispose()
        (bot.path / "bot.db").unlink(missing_ok=True)
        out = bot.run(sys.executable, str(script), how).output
        assert "LOADED ['mybot.cogs.notes'] ['notes', 'tags'] False" in out, out
        assert "THEN ['mybot.cogs.notes', 'mybot.cogs.tags'] True" in out, out
        assert foreign_keys(bot.db, "tags") == [(("note",), "notes")], how
        assert bot.versions("tags") == [bot.head("tags")], how


def test_a_bot_without_extensions_is_an_error_that_says_why(lazy_bot: LibraryBot) -> None:
    bot = lazy_bot
    ini = bot.path / "nxalembic.ini"
    ini.write_text(ini.read_text().replace("extensions = mybot.cogs\n", ""))
    assert "extensions" not in ini.read_text()
    for result in (
        bot.nxalembic("upgrade", check=False),
        bot.nxalembic("status", check=False),
        bot.alembic("-x", "cog=notes", "upgrade", "head", check=False),
    ):
        one_failed_line(result, *NO_EXTENSIONS)
    assert bot.db.tables() == set()

    # with models outside every extension, the core cog is found: the reason comes with it
    (bot.path / "mybot" / "models.py").write_text(
        "import ormar\n\nfrom .db import base_config\n\n\nclass Setting(ormar.Model):\n"
        '    ormar_config = base_config.copy(tablename="settings")\n\n'
        "    id: int = ormar.Integer(primary_key=True)\n"
    )
    main = bot.path / "mybot" / "main.py"
    main.write_text(
        main.read_text().replace("from nextcord.ext", "from . import models  # noqa\nfrom nextcord.ext")
    )
    note = bot.nxalembic("status").stdout
    assert f"note: {' '.join(NO_EXTENSIONS[:1])}" in note, note
    one_failed_line(
        bot.alembic("-x", "cog=notes", "upgrade", "head", check=False), "unknown cog 'notes'", *NO_EXTENSIONS
    )
    assert bot.db.tables() == set()


@pytest.mark.parametrize(
    ("extensions", "words"),
    [
        ("mybot.cogs.nope", ("extensions: no module named 'mybot.cogs.nope'",)),
        ("mybot.cogs.helpers", ("extensions: module mybot.cogs.helpers has no setup function",)),
        ("mybot", ("extensions: package mybot has no module with a setup function",)),
        ("mybot/cogs", ("extensions: 'mybot/cogs' is not a dotted module name",)),
        (
            "mybot.cogs.broken",
            (
                "loading extension 'mybot.cogs.broken' (extensions = in nxalembic.ini) failed",
                "RuntimeError: no config",
                "broken.py:5",
            ),
        ),
    ],
)
def test_wrong_extensions_are_one_line(lazy_bot: LibraryBot, extensions: str, words: tuple[str, ...]) -> None:
    bot = lazy_bot
    (bot.path / "mybot" / "cogs" / "broken.py").write_text(
        "from nextcord.ext import commands\n\n\ndef setup(bot: commands.Bot) -> None:\n"
        "    raise RuntimeError('no config')\n"
    )
    ini = bot.path / "nxalembic.ini"
    ini.write_text(ini.read_text().replace("extensions = mybot.cogs\n", f"extensions = {extensions}\n"))
    one_failed_line(bot.nxalembic("upgrade", check=False), *words)
    assert bot.db.tables() == set()


def test_a_factory_that_returns_no_bot_is_one_line(lazy_bot: LibraryBot) -> None:
    bot = lazy_bot
    use_factory(bot)
    app = bot.path / "mybot" / "app.py"
    app.write_text(app.read_text().replace("    return bot\n", "    print(bot)\n"))
    one_failed_line(
        bot.nxalembic("upgrade", check=False), "mybot.app.create_bot() returned NoneType, not a discord bot"
    )
    assert bot.db.tables() == set()
