"""A cog with models and no revisions (a new cog before its first ``nxalembic migrate``) is never "ready".

Its tables would never be created, so every route that answers "is the database ready?" says
so, naming the cog and the fix: ``nxalembic upgrade`` (after upgrading the other cogs),
``status --exit-code``, and the start-up API in both modes (its fast path included: it must not
find such a cog "at head").
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import test_startup
from conftest import BotProject, create_table_op
from test_startup import start_bot, startup_lines

# the start-up tests' fixtures: the example bot with start.py and a history for every cog
bot_project = test_startup.bot_project


#: An extension whose only models are another cog's (imported): it is no cog, so needs no revisions.
PLAYLIST = """from nextcord.ext import commands

from .music.models import Song  # noqa: F401


def setup(bot: commands.Bot) -> None:
    pass
"""


def fix_for(cog: str) -> str:
    return f"run 'nxalembic migrate --cog {cog}', then 'nxalembic upgrade'"


def test_upgrade_and_status_exit_code_fail_naming_the_cogs_without_revisions(
    make_project: Callable[..., BotProject],
) -> None:
    project = make_project("sqlite+aiosqlite")
    (project.path / "demobot" / "cogs" / "playlist.py").write_text(PLAYLIST)
    project.edit(
        "demobot/main.py", '    "demobot.cogs.fun",', '    "demobot.cogs.fun",\n    "demobot.cogs.playlist",'
    )
    project.write_revision("economy", "ec0000000001", None, create_table_op("economy_t"))
    # core (the pseudo-cog of the bot's own models) and music: models, no revisions yet

    upgrade = project.nxalembic("upgrade", check=False)
    assert upgrade.returncode == 1, upgrade.output
    assert "Traceback" not in upgrade.output
    assert "nothing to do" not in upgrade.stdout
    assert "economy: 1 revision applied" in upgrade.stdout  # the others are upgraded first
    failed = [line for line in upgrade.stderr.splitlines() if line.startswith("FAILED: ")]
    assert failed == [
        "FAILED: cogs 'core', 'music' have models but no revisions, so their tables would never be "
        "created; run 'nxalembic migrate --cog NAME' for each, then 'nxalembic upgrade'"
    ], upgrade.output
    assert project.db.versions("alembic_version_economy") == ["ec0000000001"]
    tables = project.db.tables()
    assert not tables & {"alembic_version_core", "alembic_version_music", "music_songs"}, tables

    one = project.nxalembic("upgrade", "--cog", "music", check=False)
    assert one.returncode == 1
    music = "FAILED: cog 'music' has models but no revisions, so its tables would never be created"
    assert f"{music}; {fix_for('music')}" in one.stderr
    assert project.nxalembic("upgrade", "--cog", "economy").returncode == 0  # a cog that has them

    status = project.nxalembic("status", "--exit-code", check=False)
    assert status.returncode == 1, status.output
    assert "'core', 'music' have models but no revisions" in status.stderr
    assert "nxalembic migrate --cog NAME" in status.stderr
    assert "music: has models but no revisions" in status.stdout
    assert (
        "playlist" not in status.stderr and "demobot.cogs.playlist" in status.stdout
    )  # no models of its own

    # the fix it names works
    project.nxalembic("migrate", "--cog", "core")
    project.nxalembic("migrate", "--cog", "music")
    project.nxalembic("upgrade")
    assert project.nxalembic("status", "--exit-code").returncode == 0  # playlist: no cog, no revisions
    assert "music_songs" in project.db.tables()


@pytest.mark.parametrize("bot_project", ["sqlite+aiosqlite"], indirect=True)
def test_start_up_api_fails_in_both_modes_and_its_fast_path_never_says_ready(
    bot_project: BotProject, elsewhere: Path
) -> None:
    project = bot_project
    shutil.rmtree(project.path / "migrations" / "versions" / "extra")  # a cog added, not migrated yet
    message = (
        f"cog 'extra' has models but no revisions, so its tables would never be created; {fix_for('extra')}"
    )

    before = project.db.snapshot()
    outcome, _stdout, _logs = start_bot(project, elsewhere, mode="verify")
    assert (outcome["error"], outcome["message"]) == ("CogsWithoutRevisions", message), outcome
    assert project.db.snapshot() == before

    for _attempt in range(2):  # the second start finds the others at head (the fast path's case)
        outcome, _stdout, logs = start_bot(project, elsewhere)
        assert (outcome["error"], outcome["message"]) == ("CogsWithoutRevisions", message), outcome
        assert "cog extra: at head base, nothing to do" not in startup_lines(logs)
        tables = project.db.tables()
        assert {"core_t", "music_t", "economy_t"} <= tables
        assert not tables & {"extra_badges", "extra_t", "alembic_version_extra"}, tables
        outcome, _stdout, _logs = start_bot(project, elsewhere, mode="verify")
        assert outcome["error"] == "CogsWithoutRevisions", outcome
