"""Guards that hold within one process: migrations one at a time, bounded waits, honest answers.

* Two migrations in one process (``asyncio.gather`` of two ``upgrade(bot)``, a retry after a
  timed-out one whose thread goes on, ``upgrade_sync`` from two threads) run one after the
  other: Alembic's ``context`` / ``op`` are one per process.  That the second *waits* is
  observed, not timed: the first stands inside a revision until the test has seen the
  second report its wait.
* ``lock_timeout`` bounds every wait, the start-up fast path's read too, and values that
  PostgreSQL's ``lock_timeout`` cannot take are refused when parsed.
* A version row no revision file has, and a SQLite file that does not exist, get one line
  naming the fix, whatever route asks.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import nxalembic_templates
import test_startup as startup
from conftest import BotProject, create_table_op
from test_startup import PROCESS_TIMEOUT, heads, start_bot

HOLD = '''\
"""Shared by twice.py and economy's last revision: it holds the first migration inside it."""
import threading

INSIDE = threading.Event()
RELEASE = threading.Event()
RUNS = []


def hold():
    RUNS.append(threading.get_ident())
    INSIDE.set()
    if not RELEASE.wait(60):
        raise RuntimeError("the test never let the first migration go on")
'''

TWICE = '''\
"""Two migrations of one bot in this one process (argv[1]: gather, threads or retry).

An observer thread waits until one migration stands inside the held revision and the other
has reported its wait, notes what holds at that moment, then lets the first go on.
"""
import asyncio, json, logging, sys, threading

import nxalembic_templates
import hold
from start import bot

bot.load_extension("demobot.cogs.extra")
WAITING = threading.Event()
FINISHED = []


class Waits(logging.Handler):
    def emit(self, record):
        if "waiting for another migration in this process" in record.getMessage():
            WAITING.set()


logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="LOG %(name)s %(levelname)s %(message)s")
logging.getLogger("nxalembic_templates.startup").addHandler(Waits())


def observe():
    seen = {"inside": hold.INSIDE.wait(60), "waiting": WAITING.wait(60)}
    seen["runs_while_waiting"] = len(hold.RUNS)
    seen["finished_while_waiting"] = len(FINISHED)
    hold.RELEASE.set()
    return seen


def outcome(call):
    try:
        result = {"results": [[r.cog, r.applied, r.now, r.behind] for r in call()]}
    except BaseException as exc:
        result = {"error": type(exc).__name__, "message": str(exc)}
    FINISHED.append(result)
    return result


async def awaited(coroutine):
    try:
        result = {"results": [[r.cog, r.applied, r.now, r.behind] for r in await coroutine]}
    except BaseException as exc:
        result = {"error": type(exc).__name__, "message": str(exc)}
    FINISHED.append(result)
    return result


async def gather():
    *calls, seen = await asyncio.gather(
        awaited(nxalembic_templates.upgrade(bot)),
        awaited(nxalembic_templates.upgrade(bot)),
        asyncio.to_thread(observe),
    )
    return calls, seen


async def retry():
    try:  # the first cannot finish: it is held inside a revision until the retry waits
        await asyncio.wait_for(nxalembic_templates.upgrade(bot), timeout=0.5)
        timed_out = False
    except TimeoutError:
        timed_out = True
    again, seen = await asyncio.gather(awaited(nxalembic_templates.upgrade(bot)), asyncio.to_thread(observe))
    return [{"timed_out": timed_out}, again], seen


def threads():
    calls = []
    workers = [
        threading.Thread(target=lambda: calls.append(outcome(lambda: nxalembic_templates.upgrade_sync(bot))))
        for _ in range(2)
    ]
    seen = {}
    observer = threading.Thread(target=lambda: seen.update(observe()))
    for thread in (*workers, observer):
        thread.start()
    for thread in (*workers, observer):
        thread.join(120)
    return calls, seen


scenario = sys.argv[1]
if scenario == "threads":
    calls, seen = threads()
else:
    calls, seen = asyncio.run(gather() if scenario == "gather" else retry())
print("OUTCOME " + json.dumps({"calls": calls, "seen": seen, "runs": len(hold.RUNS)}), flush=True)
'''


@pytest.fixture
def bot_project(make_project: Callable[..., BotProject], request: pytest.FixtureRequest) -> BotProject:
    """test_startup's bot: a run-time cog, start.py, and a history for every cog."""
    project = startup.with_start_script(make_project(request.param))
    (project.path / "demobot" / "cogs" / "extra.py").write_text(startup.EXTRA_COG)
    for cog, revisions in startup.HISTORY.items():
        down = None
        for revision, body in revisions:
            project.write_revision(cog, revision, down, body)
            down = revision
    return project


def run_twice(project: BotProject, scenario: str) -> tuple[dict[str, Any], str]:
    """Run twice.py's *scenario* in a real process; its outcome and its stderr."""
    (project.path / "hold.py").write_text(HOLD)
    (project.path / "twice.py").write_text(TWICE)
    env = {**os.environ, **project.env, "PYTHONPATH": str(project.path)}
    env.pop("ALEMBIC_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "twice.py", scenario],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("OUTCOME ")]
    return json.loads(line[len("OUTCOME ") :]), proc.stderr


# -- D: two migrations in one process ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "bot_project"),
    [
        ("gather", "sqlite+aiosqlite"),
        ("gather", "postgresql+asyncpg"),
        ("threads", "sqlite+aiosqlite"),
        ("retry", "sqlite+aiosqlite"),
    ],
    indirect=["bot_project"],
)
def test_two_migrations_in_one_process_run_one_after_the_other(
    bot_project: BotProject, scenario: str
) -> None:
    project = bot_project
    project.write_revision("economy", "ec0000000003", "ec0000000002", "import hold\nhold.hold()")
    every_head = {cog: [revision] for cog, revision in heads().items()} | {"economy": ["ec0000000003"]}

    outcome, stderr = run_twice(project, scenario)

    seen = outcome["seen"]
    # while the first stood inside its revision, the second had said it waits and had not finished
    assert seen == {"inside": True, "waiting": True, "runs_while_waiting": 1, "finished_while_waiting": 0}, (
        outcome,
        stderr,
    )
    assert outcome["runs"] == 1
    calls = outcome["calls"]
    if scenario == "retry":
        assert calls[0] == {"timed_out": True}
        calls = calls[1:]  # the first went on in its thread; the database says how it ended
    assert all("error" not in call for call in calls), (calls, stderr)
    waited = (
        calls[-1] if scenario == "retry" else min(calls, key=lambda c: sum(len(r[1]) for r in c["results"]))
    )
    assert sorted(waited["results"]) == sorted([cog, [], now, 0] for cog, now in every_head.items())
    assert {cog: project.versions(cog) for cog in startup.HISTORY} == every_head
    assert "Traceback" not in stderr and "stamp" not in stderr


# -- no recovery advice that the database did not confirm --------------------------------------


def test_already_exists_gets_no_stamp_advice_unless_the_cogs_tables_are_there(
    make_project: Callable[..., BotProject],
) -> None:
    """'stamp head' assumes the cog's tables exist and its version table is empty: both are read."""
    project = make_project("sqlite")
    project.db.execute("CREATE TABLE stray_t (id INTEGER PRIMARY KEY)")  # not a table of economy's models
    project.write_revision("economy", "ec0000000001", None, create_table_op("stray_t"))
    before = project.db.snapshot()

    for result in (
        project.nxalembic("upgrade", "--cog", "economy", check=False),
        project.cog("economy", "upgrade", "head", check=False),
    ):
        assert result.returncode != 0, result.output
        assert "already exists" in result.output and "Traceback" not in result.output
        assert "stamp" not in result.output, result.output
    assert project.db.snapshot() == before


# -- G: lock_timeout bounds every wait ---------------------------------------------------------


@pytest.mark.parametrize("bot_project", ["sqlite+aiosqlite"], indirect=True)
def test_the_lock_timeout_bounds_the_fast_paths_read(bot_project: BotProject, elsewhere: Path) -> None:
    project = bot_project
    start_bot(project, elsewhere)  # at head: verify takes the fast path, one read
    holder = project.db.engine.connect()
    raw = holder.connection.dbapi_connection
    raw.isolation_level = None
    raw.execute("BEGIN EXCLUSIVE")  # no reader gets in
    try:
        started = time.monotonic()
        outcome, _stdout, _logs = start_bot(project, elsewhere, mode="verify", lock_timeout=1)
        took = time.monotonic() - started
    finally:
        raw.execute("ROLLBACK")
        holder.close()

    assert outcome["error"] == "LockTimeout", outcome
    assert outcome["message"].startswith(
        f"gave up after 1 s waiting to read {project.db.engine.url.database}"
    )
    assert "\n" not in outcome["message"]
    assert took < 20  # SQLite's own busy timeout is 300 s


#: Lock timeouts PostgreSQL's lock_timeout (at most 2147483647 ms) cannot take, or no number at all.
OUT_OF_RANGE = ["3000000", "1e300", "inf", "nan", "-1"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_nxalembic_upgrade_refuses_a_lock_timeout_postgresql_cannot_take(
    make_project: Callable[..., BotProject], value: str
) -> None:
    project = make_project("sqlite")
    result = project.nxalembic("upgrade", "--lock-timeout", value, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"FAILED: argument --lock-timeout: {value!r} is not a number of seconds from 0 to 2147483.647; "
        "see 'nxalembic upgrade --help'"
    ]
    assert not Path(project.db.engine.url.database).exists()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3_000_000, "3000000"),
        (1e300, "1e+300"),
        (10**400, "1000000000000000000000..."),
        (math.inf, "inf"),
        (math.nan, "nan"),
        (-1, "-1"),
        (True, "True"),
        ("5", "'5'"),
    ],
)
def test_the_start_up_api_refuses_a_lock_timeout_postgresql_cannot_take(value: Any, shown: str) -> None:
    not_a_project = SimpleNamespace(extensions={})  # refused before the bot or any file is looked at
    expected = f"lock_timeout must be a number of seconds from 0 to 2147483.647, not {shown}"
    with pytest.raises(ValueError) as refused:
        nxalembic_templates.upgrade_sync(not_a_project, lock_timeout=value)
    assert str(refused.value) == expected
    with pytest.raises(ValueError) as refused:
        asyncio.run(nxalembic_templates.upgrade(not_a_project, lock_timeout=value))
    assert str(refused.value) == expected


# -- A7: a version row no revision file has ----------------------------------------------------


@pytest.mark.parametrize("bot_project", ["sqlite+aiosqlite"], indirect=True)
def test_an_unknown_version_row_gets_one_message_in_apply_and_verify(
    bot_project: BotProject, elsewhere: Path
) -> None:
    project = bot_project
    start_bot(project, elsewhere)
    project.db.execute("UPDATE alembic_version_economy SET version_num = 'feedfacecafe'")
    before = project.db.snapshot()

    verify, _stdout, _logs = start_bot(project, elsewhere, mode="verify")
    apply, _stdout, _logs = start_bot(project, elsewhere)

    folder = project.path / "migrations" / "versions" / "economy"
    message = (
        f"cog 'economy': the database (alembic_version_economy) is at revision feedfacecafe, which is not "
        f"in {folder}; restore that revision file, or if it is gone for good, 'alembic -x cog=economy "
        "stamp --purge REVISION' records where the database really is"
    )
    assert verify["error"] == apply["error"] == "NXAlembicError", (verify, apply)
    assert verify["message"] == message
    assert apply["message"] == f"{message}; not touched: extra"  # apply also says what it left alone
    assert project.db.snapshot() == before


# -- A8: a SQLite file that does not exist -----------------------------------------------------


@pytest.mark.parametrize("bot_project", ["sqlite+aiosqlite"], indirect=True)
def test_a_sqlite_file_that_does_not_exist_is_reported_not_created(
    bot_project: BotProject, elsewhere: Path
) -> None:
    project = bot_project
    shutil.rmtree(project.path / "migrations" / "versions" / "extra")  # the command line's bot has no extra
    database = Path(project.db.engine.url.database)  # type: ignore[arg-type]
    line = f"database {database} does not exist; run 'nxalembic upgrade' to create it"

    for args in (["status"], ["status", "--exit-code"], ["status", "--json"], ["check"]):
        result = project.nxalembic(*args, check=False)
        assert result.returncode == 1, result.output
        failed = [text for text in result.stderr.splitlines() if text.startswith("FAILED")]
        assert failed == [f"FAILED: {line}"] and "Traceback" not in result.output, result.output
        assert not database.exists()

    verify, _stdout, _logs = start_bot(project, elsewhere, extra=False, mode="verify")
    assert (verify["error"], verify["message"]) == ("NXAlembicError", line)
    assert not database.exists()

    project.nxalembic("upgrade")  # creates it
    assert database.exists()
    assert project.nxalembic("status", "--exit-code").returncode == 0
