"""The start-up API: a running bot migrates (or verifies) its own database, off its event loop.

Every test runs a real bot process: ``start.py`` imports the example bot, loads its
extensions (plus one more at run time, which only the bot *object* knows about), and calls
``nxalembic_templates.upgrade(bot)`` inside ``asyncio.run(main())``, the way a bot's own
start-up code does before ``await bot.start(TOKEN)``.  It runs from a folder outside the
project, so ``alembic.ini`` is found from the bot's code, not from the working directory.

"The loop is not blocked" is shown, not timed: one revision's ``upgrade()`` (running in the
migration's thread) asks the bot's loop to run a coroutine and then waits for what only that
coroutine does.  Were the migration run on the loop itself, the coroutine could not run and
the revision would give up (a safety timeout that fails the test instead of hanging it).
Waits for a lock are observed through the lock-wait report the API logs; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import BotProject, create_table_op

#: One SQLite (async driver, as the example bot uses) and one PostgreSQL (asyncpg) leg.
BACKENDS = ["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"]
#: How long a bot process may take before the test fails (never reached when things work).
PROCESS_TIMEOUT = 180
#: What the API logs while another process holds the lock (see nxalembic_templates.locking).
WAIT_REPORT = "waiting for the "

START = '''\
"""The bot's own script: it builds the bot, and when run, loads one more extension and migrates.

nxalembic.ini names this module (module = start), as for a bot whose entry script defines it:
a second import of it would build a second bot, without the extension loaded at run time.
"""
import asyncio
import json
import logging
import os
import sys

import nextcord
from nextcord.ext import commands

import nxalembic_templates
from demobot import models  # noqa: F401  (the core cog)

bot = commands.Bot(command_prefix="!", intents=nextcord.Intents.default())
for extension in ("demobot.cogs.music", "demobot.cogs.economy", "demobot.cogs.fun"):
    bot.load_extension(extension)


def report(outcome):
    print("OUTCOME " + json.dumps(outcome), flush=True)


def outcome_of(results):
    # "alembic": whether the call needed Alembic at all (the fast path at head does not import it)
    return {
        "results": [[r.cog, r.applied, r.now, r.behind] for r in results],
        "alembic": "alembic" in sys.modules,
    }


def failure(exc):
    return {"error": type(exc).__name__, "message": str(exc), "behind": getattr(exc, "behind", None)}


async def on_ready_upgrade(keywords):
    """Migrate in an on_ready listener, dispatched as nextcord does once connected (as a task)."""
    done = asyncio.get_running_loop().create_future()

    @bot.listen("on_ready")
    async def migrate_when_ready():
        try:
            done.set_result(await nxalembic_templates.upgrade(bot, **keywords))
        except Exception as exc:
            done.set_exception(exc)

    bot.dispatch("ready")
    return await done


async def main(keywords):
    import gate

    gate.LOOP = asyncio.get_running_loop()
    gate.ARRIVED = asyncio.Event()

    async def opener():
        await gate.ARRIVED.wait()
        gate.OPEN.set()

    opener_task = asyncio.create_task(opener())
    try:
        if os.environ.get("STARTUP_ON_READY"):
            results = await on_ready_upgrade(keywords)
        else:  # in main(), before 'await bot.start(TOKEN)'
            results = await nxalembic_templates.upgrade(bot, **keywords)
        report(outcome_of(results))
    except Exception as exc:
        report(failure(exc))
    finally:
        opener_task.cancel()
    try:
        nxalembic_templates.upgrade_sync(bot, **keywords)
    except RuntimeError as exc:
        report({"inside_loop": str(exc)})


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="LOG %(name)s %(levelname)s %(message)s"
    )
    for extension in os.environ.get("EXTRA_EXTENSIONS", "").split():
        bot.load_extension(extension)
    keywords = json.loads(os.environ.get("STARTUP_KEYWORDS", "{}"))
    if os.environ.get("STARTUP_SYNC"):  # a bot.run()-style start: no loop running yet
        try:
            report(outcome_of(nxalembic_templates.upgrade_sync(bot, **keywords)))
        except Exception as exc:
            report(failure(exc))
    else:
        asyncio.run(main(keywords))
'''

GATE = '''\
"""Shared by start.py (the bot's loop) and a revision (the migration's thread)."""
import threading

OPEN = threading.Event()
LOOP = None
ARRIVED = None


def wait_for_the_loop():
    """Ask the bot's loop to open the gate, and wait until it has."""
    LOOP.call_soon_threadsafe(ARRIVED.set)
    if not OPEN.wait(60):
        raise RuntimeError("the bot's event loop never ran the opener: the migration blocked it")
'''

EXTRA_COG = '''\
"""A cog loaded at run time by start.py: only the running bot object knows it."""
import ormar
from nextcord.ext import commands

from ..db import base_config


class Badge(ormar.Model):
    ormar_config = base_config.copy(tablename="extra_badges")

    id: int = ormar.Integer(primary_key=True)


def setup(bot: commands.Bot) -> None:
    pass
'''


table = create_table_op


#: cog -> its revisions, oldest first: (revision id, body of upgrade()).
HISTORY: dict[str, list[tuple[str, str]]] = {
    "core": [("c0re00000001", table("core_t"))],
    "music": [("mus100000001", table("music_t"))],
    "economy": [
        ("ec0000000001", table("economy_t")),
        ("ec0000000002", 'op.add_column("economy_t", sa.Column("coins", sa.Integer()))'),
    ],
    "extra": [("extra0000001", table("extra_t"))],
}


@pytest.fixture
def bot_project(make_project: Callable[..., BotProject], request: pytest.FixtureRequest) -> BotProject:
    """The example bot with a run-time cog, start.py, and a history for every cog."""
    project = with_start_script(make_project(request.param))
    (project.path / "demobot" / "cogs" / "extra.py").write_text(EXTRA_COG)
    for cog, revisions in HISTORY.items():
        down = None
        for revision, body in revisions:
            project.write_revision(cog, revision, down, body)
            down = revision
    return project


def with_start_script(project: BotProject) -> BotProject:
    """The bot's entry script start.py, named by nxalembic.ini, and the gate its revision uses."""
    (project.path / "start.py").write_text(START)
    (project.path / "gate.py").write_text(GATE)
    (project.path / "nxalembic.ini").write_text("[nxalembic]\nmodule = start\nbot = bot\n")
    return project


def start_bot(
    project: BotProject,
    cwd: Path,
    *,
    sync: bool = False,
    extra: bool = True,
    on_ready: bool = False,
    **keywords: Any,
) -> tuple[dict[str, Any], str, list[str]]:
    """Run start.py in a real process; return its outcome, its stdout, and its log lines.

    *sync*: ``upgrade_sync`` before any loop runs (``bot.run()`` style); *on_ready*: ``await
    upgrade()`` in an ``on_ready`` listener; otherwise ``await upgrade()`` in ``main()``.
    """
    env = {
        **os.environ,
        **project.env,
        "PYTHONPATH": str(project.path),
        "STARTUP_KEYWORDS": json.dumps(keywords),
        "EXTRA_EXTENSIONS": "demobot.cogs.extra" if extra else "",
        "STARTUP_SYNC": "1" if sync else "",
        "STARTUP_ON_READY": "1" if on_ready else "",
    }
    env.pop("ALEMBIC_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, str(project.path / "start.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcomes = [
        json.loads(line[len("OUTCOME ") :])
        for line in proc.stdout.splitlines()
        if line.startswith("OUTCOME ")
    ]
    assert outcomes, proc.stdout + proc.stderr
    merged: dict[str, Any] = {}
    for outcome in outcomes:
        merged.update(outcome)
    logs = [line[len("LOG ") :] for line in proc.stderr.splitlines() if line.startswith("LOG ")]
    return merged, proc.stdout, logs


def startup_lines(logs: list[str]) -> list[str]:
    prefix = "nxalembic_templates.startup INFO "
    return [line[len(prefix) :] for line in logs if line.startswith(prefix)]


def heads() -> dict[str, str]:
    return {cog: revisions[-1][0] for cog, revisions in HISTORY.items()}


# -- apply -------------------------------------------------------------------------------------


#: ``main()`` on every database; an ``on_ready`` listener (the same loop, later) on SQLite: the
#: database's driver runs in the migration's thread either way, so the two do not cross.
WHERE = [*((backend, "main") for backend in BACKENDS), ("sqlite+aiosqlite", "on_ready")]


@pytest.mark.parametrize(("bot_project", "where"), WHERE, indirect=["bot_project"])
def test_upgrade_in_the_running_loop_migrates_the_given_bot_without_blocking_its_loop(
    bot_project: BotProject,
    elsewhere: Path,
    where: str,
) -> None:
    project = bot_project
    # economy's last revision stands in the migration's thread until the bot's loop lets it go
    project.write_revision(
        "economy",
        "ec0000000003",
        "ec0000000002",
        """
        import gate
        gate.wait_for_the_loop()
        op.create_index("ix_economy_t_coins", "economy_t", ["coins"])
    """,
    )
    outcome, stdout, logs = start_bot(project, elsewhere, on_ready=where == "on_ready")

    assert "error" not in outcome, outcome
    results = {cog: (applied, now, behind) for cog, applied, now, behind in outcome["results"]}
    expected = {cog: [r for r, _ in revisions] for cog, revisions in HISTORY.items()}
    expected["economy"].append("ec0000000003")
    assert results == {cog: (revs, [revs[-1]], 0) for cog, revs in expected.items()}
    assert [cog for cog, *_ in outcome["results"]].index("music") < [c for c, *_ in outcome["results"]].index(
        "economy"
    )
    # the run-time cog was migrated: the API used the bot object, not a second import of its module
    assert {cog: project.versions(cog) for cog in expected} == {
        cog: [revs[-1]] for cog, revs in expected.items()
    }
    inspector = sa.inspect(project.db.engine)
    assert {"core_t", "music_t", "economy_t", "extra_t"} <= set(inspector.get_table_names())
    assert "coins" in {c["name"] for c in inspector.get_columns("economy_t")}
    assert "ix_economy_t_coins" in {i["name"] for i in inspector.get_indexes("economy_t")}
    # one INFO line per cog under the documented logger; nothing printed but start.py's own line
    assert sorted(startup_lines(logs)) == sorted(
        [
            "cog core: 1 revision applied, now at c0re00000001",
            "cog economy: 3 revisions applied, now at ec0000000003",
            "cog extra: 1 revision applied, now at extra0000001",
            "cog music: 1 revision applied, now at mus100000001",
        ]
    )
    assert [line for line in stdout.splitlines() if not line.startswith("OUTCOME ")] == []
    assert "upgrade_sync() was called inside a running event loop" in outcome["inside_loop"]
    assert "await nxalembic_templates.upgrade(bot)" in outcome["inside_loop"]


@pytest.mark.parametrize("bot_project", BACKENDS, indirect=True)
def test_a_bot_at_head_takes_the_fast_path_and_runs_no_alembic_command(
    bot_project: BotProject,
    elsewhere: Path,
) -> None:
    project = bot_project
    start_bot(project, elsewhere, sync=True)  # bot.run()-style start-up: migrates everything
    before = project.db.snapshot()

    outcome, _stdout, logs = start_bot(project, elsewhere, sync=True)

    assert sorted(outcome["results"]) == sorted([cog, [], [rev], 0] for cog, rev in heads().items())
    assert sorted(startup_lines(logs)) == sorted(
        f"cog {cog}: at head {rev}, nothing to do" for cog, rev in heads().items()
    )
    # A mechanism the documentation promises (docs/performance.rst, "The start-up check of a bot
    # at head"): the check at head does not even import Alembic (a fifth of a 50-cog bot's own
    # import time), so it opens no migration context either (Alembic logs "Context impl ...").
    assert [line for line in logs if line.startswith("alembic.runtime.migration")] == [], logs
    assert outcome["alembic"] is False
    assert project.db.snapshot() == before

    outcome, _stdout, logs = start_bot(project, elsewhere, sync=True, mode="verify")
    assert sorted(outcome["results"]) == sorted([cog, [], [rev], 0] for cog, rev in heads().items())
    assert sorted(startup_lines(logs)) == sorted(f"cog {cog}: at head {rev}" for cog, rev in heads().items())
    assert outcome["alembic"] is False  # the same promise, in verify mode


def test_what_the_fast_path_cannot_tell_for_certain_goes_through_alembic(
    make_project: Callable[..., BotProject], elsewhere: Path
) -> None:
    """The fast path reads revision ids without running the files; whatever it cannot read that
    way, or a database it does not recognise, is left to Alembic's route, which answers right:
    the answers here are ones a reading of the literals alone would get wrong."""
    project = with_start_script(make_project("sqlite+aiosqlite"))
    (project.path / "demobot" / "cogs" / "extra.py").write_text(EXTRA_COG)
    for cog, revisions in HISTORY.items():
        down = None
        for revision, body in revisions:
            project.write_revision(cog, revision, down, body)
            down = revision
    start_bot(project, elsewhere, sync=True)
    at_head = sorted([cog, [], [rev], 0] for cog, rev in heads().items())

    # an id that is not a plain literal: only running the file tells it
    [music] = project.revisions("music")
    text = music.read_text()
    music.write_text(text.replace("revision = 'mus100000001'", "revision = 'mus1' + '00000001'", 1))
    assert music.read_text() != text
    outcome, _stdout, _logs = start_bot(project, elsewhere, sync=True)
    assert sorted(outcome["results"]) == at_head
    # an id set again below its literal: the file's revision is not the one the database is at,
    # which only Alembic's route (running the file) finds; nothing changes
    music.write_text(text + '\nif True:\n    revision = "mus100000002"\n')
    before = project.db.snapshot()
    outcome, _stdout, _logs = start_bot(project, elsewhere, sync=True)
    assert outcome.get("error") == "NXAlembicError" and "mus100000001" in outcome["message"], outcome
    assert project.db.snapshot() == before
    music.write_text(text)

    # a cog behind (economy's last revision undone): Alembic applies it
    with project.db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version_economy SET version_num = 'ec0000000001'"))
        connection.execute(sa.text("ALTER TABLE economy_t DROP COLUMN coins"))
    outcome, _stdout, _logs = start_bot(project, elsewhere, sync=True)
    assert ["economy", ["ec0000000002"], ["ec0000000002"], 0] in outcome["results"]
    assert "coins" in {c["name"] for c in sa.inspect(project.db.engine).get_columns("economy_t")}

    # a database at a revision the files do not have: Alembic's route says so, nothing changes
    with project.db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version_music SET version_num = 'mus100000009'"))
    before = project.db.snapshot()
    outcome, _stdout, _logs = start_bot(project, elsewhere, sync=True)
    assert outcome["error"] == "NXAlembicError" and "mus100000009" in outcome["message"], outcome
    assert project.db.snapshot() == before


# -- verify ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bot_project", BACKENDS, indirect=True)
def test_verify_names_every_cog_behind_and_by_how_many_and_changes_nothing(
    bot_project: BotProject,
    elsewhere: Path,
) -> None:
    project = bot_project
    # the database is at economy's first revision and knows nothing of extra
    start_bot(project, elsewhere, extra=False)
    project.db.execute("UPDATE alembic_version_economy SET version_num = 'ec0000000001'")
    project.db.execute("ALTER TABLE economy_t DROP COLUMN coins")
    before = project.db.snapshot()

    outcome, _stdout, logs = start_bot(project, elsewhere, mode="verify")

    assert outcome["error"] == "CogsBehind", outcome
    assert outcome["behind"] == {"economy": 1, "extra": 1}
    assert outcome["message"] == (
        "the database is behind the bot's revisions: economy by 1 revision, extra by 1 revision; run "
        "'nxalembic upgrade' (or start one process with mode='apply') before starting processes in "
        "verify mode"
    )
    assert "\n" not in outcome["message"]
    assert project.db.snapshot() == before
    assert "extra_t" not in project.db.tables()
    assert sorted(startup_lines(logs)) == sorted(
        [
            "cog core: at head c0re00000001",
            "cog economy: 1 revision behind (at ec0000000001, head ec0000000002)",
            "cog extra: 1 revision behind (at base, head extra0000001)",
            "cog music: at head mus100000001",
        ]
    )

    start_bot(project, elsewhere)  # the migrator
    outcome, _stdout, _logs = start_bot(project, elsewhere, mode="verify")
    assert sorted(outcome["results"]) == sorted([cog, [], [rev], 0] for cog, rev in heads().items())


def test_bad_arguments_are_one_clear_error_before_anything_runs(
    make_project: Callable[..., BotProject],
    elsewhere: Path,
) -> None:
    project = with_start_script(make_project("sqlite+aiosqlite"))
    outcome, _stdout, _logs = start_bot(project, elsewhere, extra=False, mode="dry-run")
    assert outcome["error"] == "ValueError"
    assert outcome["message"] == "mode='dry-run' is not a mode; use one of 'apply', 'verify'"
    outcome, _stdout, _logs = start_bot(project, elsewhere, extra=False, lock_timeout=-1)
    assert outcome["error"] == "ValueError"
    assert "lock_timeout must be a number of seconds from 0 to 2147483.647, not -1" in outcome["message"]
    outcome, _stdout, _logs = start_bot(project, elsewhere, extra=False, config=str(elsewhere))
    assert outcome == {
        "error": "NXAlembicError",
        "behind": None,
        "inside_loop": outcome["inside_loop"],
        "message": f"no Alembic config at {elsewhere / 'alembic.ini'}; pass config= the project's "
        "alembic.ini",
    }
    assert project.db.tables() == set()


# -- lock timeout ------------------------------------------------------------------------------


@pytest.fixture
def lock_held(bot_project: BotProject) -> Iterator[None]:
    """The test process holds the migration lock: PostgreSQL's advisory lock, MariaDB's GET_LOCK,
    SQLite's write lock."""
    from nxalembic_templates.locking import ADVISORY_LOCK_KEY

    connection = project_connection = bot_project.db.engine.connect()
    if bot_project.db.backend == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})")
        connection.commit()
    elif bot_project.db.backend == "mysql":
        name = f"nxalembic:{connection.exec_driver_sql('SELECT DATABASE()').scalar()}"
        assert connection.exec_driver_sql(f"SELECT GET_LOCK('{name}', 0)").scalar() == 1
        connection.commit()
    else:
        raw = connection.connection.dbapi_connection
        raw.isolation_level = None
        raw.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        if bot_project.db.backend == "sqlite":
            connection.connection.dbapi_connection.execute("ROLLBACK")
        project_connection.close()


@pytest.mark.parametrize("bot_project", BACKENDS, indirect=True)
def test_the_lock_timeout_expires_with_one_line_naming_the_database(
    bot_project: BotProject,
    elsewhere: Path,
    lock_held: None,
) -> None:
    project = bot_project
    outcome, _stdout, logs = start_bot(project, elsewhere, lock_timeout=0.5)

    assert outcome["error"] == "LockTimeout", outcome
    message = outcome["message"]
    assert "\n" not in message
    if project.db.backend in ("postgresql", "mysql"):
        assert message.startswith(
            f"gave up after 0.5 s waiting for the migration lock on {project.db.backend}+"
            f"{'asyncpg' if project.db.backend == 'postgresql' else 'pymysql'}://"
        )
        assert ":***@" in message and project.db.engine.url.password not in message
    else:
        assert message.startswith(
            f"gave up after 0.5 s waiting for the write lock on {project.db.engine.url.database}"
        )
    # it did wait: the wait was reported (a WARNING of the start-up logger) before giving up
    assert [line for line in logs if WAIT_REPORT in line and "up to 0.5 s" in line], logs
    assert {cog: project.versions(cog) for cog in HISTORY} == {cog: [] for cog in HISTORY}
    assert not {"core_t", "music_t", "economy_t", "extra_t"} & project.db.tables()


@pytest.mark.parametrize(
    "bot_project", [*BACKENDS, "postgresql+psycopg", "mysql+asyncmy", "mysql+pymysql"], indirect=True
)
def test_nxalembic_upgrade_lock_timeout_exits_non_zero_with_one_line(
    bot_project: BotProject,
    lock_held: None,
) -> None:
    project = bot_project
    result = project.nxalembic("upgrade", "--lock-timeout", "0.5", check=False)

    assert result.returncode == 1, result.output
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and failed[0].startswith("FAILED: gave up after 0.5 s waiting for the "), (
        result.output
    )
    assert "Traceback" not in result.output
    assert any(WAIT_REPORT in line and "up to 0.5 s" in line for line in result.stderr.splitlines())
    assert {cog: project.versions(cog) for cog in ("core", "music", "economy")} == {
        "core": [],
        "music": [],
        "economy": [],
    }


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_nxalembic_upgrade_refuses_a_lock_timeout_that_is_not_seconds(
    make_project: Callable[..., BotProject],
    value: str,
) -> None:
    project = make_project("sqlite")
    result = project.nxalembic("upgrade", f"--lock-timeout={value}", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"FAILED: argument --lock-timeout: {value!r} is not a number of seconds from 0 to 2147483.647; "
        "see 'nxalembic upgrade --help'"
    ]
    assert project.db.tables() == set()


# -- status --exit-code ------------------------------------------------------------------------


@pytest.mark.parametrize("bot_project", BACKENDS, indirect=True)
def test_status_exit_code_says_which_cogs_are_behind_and_changes_nothing(bot_project: BotProject) -> None:
    project = bot_project
    shutil.rmtree(
        project.path / "migrations" / "versions" / "extra"
    )  # the command line's bot has no extra cog
    assert project.db.tables() == set()  # an empty database (a SQLite file that does not exist is an error)
    result = project.nxalembic("status", "--exit-code", check=False)
    assert result.returncode == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "behind: core by 1 revision; economy by 2 revisions; music by 1 revision; run 'nxalembic upgrade'"
    )
    assert project.db.tables() == set()

    project.nxalembic("upgrade")
    before = project.db.snapshot()
    result = project.nxalembic("status", "--exit-code", "--json", check=False)
    assert result.returncode == 0, result.output
    assert all(cog["pending"] == 0 for cog in json.loads(result.stdout)["cogs"])
    assert project.db.snapshot() == before
