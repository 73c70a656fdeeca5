"""Issue 9, the ``nxalembic`` runner's part: no silent wrong answers, through the real executables.

* ``-x`` given to ``nxalembic`` is honoured (``-x cog=`` is ``--app``) or refused, never ignored;
* ``status``, ``check`` and ``migrate`` never change the database: a pending revision that
  commits on its own (``autocommit_block()``), that fails, whose tables already exist, or a
  read-only SQLite file make a cog's row say what was compared (or why nothing was), never
  a failed or changing command;
* tables that exist while the version table is empty: ``upgrade`` suggests ``stamp``;
* a SQLite lock wait is announced at once; Ctrl-C ends a command with one line and 130;
* ``nxalembic init`` below an existing ``alembic.ini`` refuses without ``--force``.

Waits are observed, never timed: the test holds SQLite's write lock itself and reads the
command's stderr until the command says it waits.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import ALEMBIC, EXAMPLES, NXALEMBIC, BotProject, Database, migrated, run
from test_bad_input import LOG_LINE, assert_one_clear_line

COGS = ("core", "music", "economy")
PENDING = "ffff0000aaaa"
#: Safety net for a subprocess step (a hung command fails the test instead of hanging it).
STEP_TIMEOUT = 120


# -- projects ------------------------------------------------------------------------------------


def _copy_example(path: Path) -> None:
    shutil.copytree(
        EXAMPLES / "demobot", path / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
    )
    shutil.copy(EXAMPLES / "nxalembic.ini", path / "nxalembic.ini")


def _create_revisions(project: BotProject) -> None:
    for cog in COGS:
        project.cog(cog, "revision", "--autogenerate", "-m", "create")


def _revisions_applied(project: BotProject) -> None:
    """Every cog's first revision written and applied (prepared once per backend, then copied)."""
    _create_revisions(project)
    project.nxalembic("upgrade")


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory, initialised_template: Path) -> Path:
    """The example bot on SQLite, every cog's first revision written and applied."""
    path = tmp_path_factory.mktemp("safety-runner") / "bot"
    shutil.copytree(initialised_template, path)
    _copy_example(path)
    project = BotProject(path, Database(f"sqlite+aiosqlite:///{path / 'bot.db'}"))
    _create_revisions(project)
    project.nxalembic("upgrade")
    project.db.dispose()
    return path


@pytest.fixture
def at_head(base_project: Path, tmp_path: Path, make_project: Any) -> Any:
    """Factory: a project at head on *backend* (SQLite: a copy of the module's project)."""
    made: list[BotProject] = []

    def make(backend: str = "sqlite+aiosqlite") -> BotProject:
        if backend.startswith("sqlite"):
            path = tmp_path / "bot"
            shutil.copytree(base_project, path, ignore=shutil.ignore_patterns("__pycache__"))
            project = BotProject(path, Database(f"{backend}:///{path / 'bot.db'}"))
        else:
            project = make_project(backend, prepared=_revisions_applied)
        made.append(project)
        return project

    yield make
    for project in made:
        project.db.dispose()


def head_of(project: BotProject, cog: str) -> str:
    [first] = project.revisions(cog)
    return re.search(r"^revision: str = '(\w+)'", first.read_text(), re.M).group(1)  # type: ignore[union-attr]


def add_pending_music_revision(project: BotProject, body: str) -> None:
    """A hand-written revision of music after its head, not applied."""
    down = head_of(project, "music")
    (project.path / "migrations" / "versions" / "music" / f"{PENDING}_pending.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = {PENDING!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )


def status_row(project: BotProject, cog: str) -> dict[str, Any]:
    result = project.nxalembic("status", "--json")
    [row] = [c for c in json.loads(result.stdout)["cogs"] if c["cog"] == cog]
    return row


def version(project: BotProject, cog: str) -> list[str]:
    return project.db.versions(f"alembic_version_{cog}")


# -- item 2: -x given to nxalembic -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("-x", "cog=music", "upgrade"), ("upgrade", "-x", "cog=music")],
    ids=["before the command", "after the command"],
)
def test_x_cog_upgrades_only_that_cog(make_project: Any, args: tuple[str, ...]) -> None:
    project = make_project("sqlite+aiosqlite", prepared=migrated)  # every cog's first revision, none applied

    result = project.nxalembic(*args)

    assert version(project, "music") == [head_of(project, "music")]
    assert version(project, "core") == [] and version(project, "economy") == []
    assert "core" not in result.stdout and "economy" not in result.stdout


def test_x_cog_writes_only_that_cogs_revision(at_head: Any) -> None:
    project = at_head()
    project.nxalembic("-x", "cog=economy", "migrate", "--empty", "-m", "only economy")
    assert [len(project.revisions(cog)) for cog in COGS] == [1, 1, 2]


def test_x_cog_downgrades_that_cog(at_head: Any) -> None:
    project = at_head()
    project.nxalembic("-x", "cog=music", "downgrade")
    assert version(project, "music") == []
    assert version(project, "economy") == [head_of(project, "economy")]


@pytest.mark.parametrize(
    "args, words",
    [
        (("-x", "cog=music", "downgrade", "economy"), ("downgrade takes the cog once", "economy", "music")),
        (
            ("-x", "cog=music", "upgrade", "--app", "economy"),
            ("given twice", "--cog economy", "-x cog=music"),
        ),
        (("-x", "cog=music", "-x", "cog=economy", "upgrade"), ("-x cog= is given 2 times",)),
        (
            ("-x", "offline=true", "upgrade"),
            ("-x offline= is not used by 'nxalembic upgrade'", "-x cog=, -x url="),
        ),
        (
            ("-x", "cog=music", "status"),
            ("-x cog= is not used by 'nxalembic status'", "every cog", "-x url="),
        ),
        (("-x", "colour=blue", "check"), ("-x colour= is not used by 'nxalembic check'", "-x scratch_url=")),
        (("-x", "allow_drops=maybe", "migrate"), ("-x allow_drops=maybe is not true or false",)),
        (("-x", "cog", "upgrade"), ("-x cog has no value", "-x cog=VALUE")),
    ],
    ids=[
        "cog and APP",
        "cog and --app",
        "two cogs",
        "unused by upgrade",
        "cog for status",
        "unknown key",
        "not a boolean",
        "no value",
    ],
)
def test_x_not_honoured_is_refused(at_head: Any, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    project = at_head()
    before = project.db.snapshot()
    result = project.nxalembic(*args, check=False)
    assert_one_clear_line(result.output, result.returncode, words)
    assert project.db.snapshot() == before


def test_x_offline_is_honoured_by_migrate(at_head: Any) -> None:
    """``-x offline=true``: no database is opened, so an unreachable ``-x url=`` does not matter."""
    project = at_head()
    result = project.nxalembic(
        "-x", "offline=true", "-x", "url=postgresql+psycopg://u:pw@127.0.0.1:1/x", "migrate"
    )
    assert "0 revision files written" in result.stdout
    assert [len(project.revisions(cog)) for cog in COGS] == [1, 1, 1]


def test_unknown_cog_advice_names_the_form_used(at_head: Any) -> None:
    project = at_head()
    result = project.nxalembic("downgrade", "musik", check=False)
    assert_one_clear_line(
        result.output, result.returncode, ("unknown cog 'musik'", "nxalembic downgrade COG")
    )
    assert "--app" not in result.output
    result = project.nxalembic("-x", "cog=musik", "upgrade", check=False)
    assert_one_clear_line(result.output, result.returncode, ("unknown cog 'musik'", "-x cog=NAME"))


# -- item 9: status, check and migrate change nothing and always report --------------------------

AUTOCOMMIT = """\
    with op.get_context().autocommit_block():
        op.execute("DELETE FROM music_songs")"""
FAILS = """\
    op.execute("INSERT INTO no_such_table VALUES (1)")"""


def _song(project: BotProject) -> None:
    project.db.execute("INSERT INTO music_songs (id, title) VALUES (1, 'kept')")


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_pending_autocommit_block_is_replayed_not_run(at_head: Any, backend: str) -> None:
    """A pending revision that commits on its own runs in the scratch replay only."""
    project = at_head(backend)
    _song(project)
    add_pending_music_revision(project, AUTOCOMMIT)
    before = project.db.snapshot()

    row = status_row(project, "music")
    assert (row["pending"], row["compared_with"], row["model_changes"], row["not_compared"]) == (
        1,
        "replayed history",
        [],
        None,
    )
    text = project.nxalembic("status").stdout
    assert re.search(r"^music .* 1 +in sync \(vs replayed history\)$", text, re.M), text
    assert project.nxalembic("check").returncode == 0
    result = project.nxalembic("migrate")
    assert "0 revision files written" in result.stdout
    assert "scratch replay" in result.stderr and "scratch replay" not in result.stdout
    assert project.db.snapshot() == before


@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg"])
def test_pending_revision_that_fails_is_reported_per_row(at_head: Any, backend: str) -> None:
    project = at_head(backend)
    add_pending_music_revision(project, FAILS)
    before = project.db.snapshot()

    row = status_row(project, "music")
    assert row["compared_with"] is None
    assert f"replaying revision {PENDING}" in row["not_compared"] and "no_such_table" in row["not_compared"]
    assert status_row(project, "core")["compared_with"] == "database"
    text = project.nxalembic("status").stdout
    assert re.search(r"^music .* not compared \(see below\)$", text, re.M), text
    assert f"music: models not compared: cog 'music': replaying revision {PENDING}" in text

    check = project.nxalembic("check", check=False)
    assert check.returncode == 1, check.output
    assert "music: models not compared" in check.stdout and "could not be compared: music" in check.stderr

    migrate = project.nxalembic("migrate", check=False)
    assert migrate.returncode == 1 and "Traceback" not in migrate.output
    failed = [line for line in migrate.stderr.splitlines() if line.startswith("FAILED: ")]
    assert len(failed) == 1 and f"replaying revision {PENDING}" in failed[0] and "no_such_table" in failed[0]
    assert [len(project.revisions(cog)) for cog in COGS] == [1, 2, 1]
    assert project.db.snapshot() == before


def test_tables_without_version_rows(at_head: Any) -> None:
    """The cog's tables exist, its version table is empty: status notes it, upgrade says stamp."""
    project = at_head()
    project.db.execute("DELETE FROM alembic_version_music")
    before = project.db.snapshot()

    row = status_row(project, "music")
    assert (row["pending"], row["compared_with"], row["model_changes"]) == (1, "replayed history", [])
    assert "alembic -x cog=music stamp head" in row["note"]
    assert project.nxalembic("check").returncode == 0
    assert project.db.snapshot() == before

    words = (
        "table music_songs already exists",
        "alembic_version_music is empty",
        "'alembic -x cog=music stamp head'",
    )
    for result in (
        project.nxalembic("upgrade", "--app", "music", check=False),
        project.cog("music", "upgrade", "head", check=False),
    ):
        assert_one_clear_line(result.output, result.returncode, words)
    assert project.db.snapshot() == before


@pytest.fixture
def read_only(tmp_path: Path) -> Any:
    """Make a file read-only for this process (root ignores permissions: chattr +i then)."""
    frozen: list[Path] = []

    def freeze(path: Path) -> None:
        path.chmod(0o444)
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
                pytest.skip("running as root without chattr: cannot make a file read-only")
            frozen.append(path)

    yield freeze
    for path in frozen:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("backend", ["sqlite", "sqlite+aiosqlite"])
def test_read_only_sqlite_file(at_head: Any, read_only: Any, backend: str) -> None:
    project = at_head(backend)
    add_pending_music_revision(project, "    pass")
    before = project.db.snapshot()
    read_only(project.path / "bot.db")

    assert status_row(project, "core")["compared_with"] == "database"
    assert status_row(project, "music")["compared_with"] == "replayed history"
    assert project.nxalembic("check").returncode == 0
    assert "0 revision files written" in project.nxalembic("migrate").stdout
    assert project.cog("core", "check").returncode == 0
    assert project.db.snapshot() == before


# -- item 14: a SQLite lock wait is announced at once; item 15: Ctrl-C ---------------------------


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Waiting:
    """A migration command started while the test holds SQLite's write lock."""

    def __init__(self, project: BotProject, args: list[str]) -> None:
        self.db_file = project.path / "bot.db"
        self.holder = sqlite3.connect(self.db_file, isolation_level=None)
        self.holder.execute("BEGIN IMMEDIATE")
        self.process = subprocess.Popen(
            args,
            cwd=project.path,
            env={**os.environ, **project.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C reaches the command as at a terminal, also when the suite itself runs in the
            # background (a shell starts background jobs with SIGINT ignored, and so their children)
            preexec_fn=_default_sigint,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def until_waiting(self) -> str:
        """Read stderr up to the line that says the command waits for the lock."""
        expected = f"waiting for the write lock on {self.db_file.resolve()}, held by another process"
        while True:
            try:
                line = self.lines.get(timeout=STEP_TIMEOUT)
            except queue.Empty:
                self.process.kill()
                pytest.fail("the command never said that it waits for the lock:\n" + "".join(self.stderr))
            if line is None:
                pytest.fail("the command ended without saying that it waits:\n" + "".join(self.stderr))
            self.stderr.append(line)
            if line.startswith(expected):
                return line

    def finish(self) -> tuple[int, str, str]:
        returncode = self.process.wait(timeout=STEP_TIMEOUT)
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()
        while (line := self.lines.get(timeout=STEP_TIMEOUT)) is not None:
            self.stderr.append(line)
        self.holder.close()
        return returncode, stdout, "".join(self.stderr)


COMMANDS = {"nxalembic": [NXALEMBIC, "upgrade"], "alembic": [ALEMBIC, "-x", "cog=music", "upgrade", "head"]}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("backend", ["sqlite", "sqlite+aiosqlite"])
def test_lock_wait_is_announced_then_the_command_goes_on(at_head: Any, backend: str, command: str) -> None:
    project = at_head(backend)
    add_pending_music_revision(project, '    op.add_column("music_songs", sa.Column("plays", sa.Integer()))')
    waiting = Waiting(project, COMMANDS[command])
    waiting.until_waiting()
    waiting.holder.execute("COMMIT")

    returncode, stdout, stderr = waiting.finish()
    assert returncode == 0, stdout + stderr
    assert version(project, "music") == [PENDING]
    assert "plays" in {c[0] for c in project.db.snapshot({"music_songs"})["music_songs"]["columns"]}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("backend", ["sqlite", "sqlite+aiosqlite"])
def test_ctrl_c_gives_one_line_and_130(at_head: Any, backend: str, command: str) -> None:
    project = at_head(backend)
    add_pending_music_revision(project, '    op.add_column("music_songs", sa.Column("plays", sa.Integer()))')
    before = project.db.snapshot()
    waiting = Waiting(project, COMMANDS[command])
    waiting.until_waiting()
    waiting.process.send_signal(signal.SIGINT)

    returncode, stdout, stderr = waiting.finish()
    assert returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    after_wait = stderr.split("Ctrl-C to stop)...\n", 1)[1]
    lines = [line for line in after_wait.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert lines == ["FAILED: interrupted (Ctrl-C); the migration in progress, if any, was rolled back"], (
        stderr
    )
    assert project.db.snapshot() == before


# -- item 16: init below an existing alembic.ini ---------------------------------------------------


def test_init_below_an_alembic_ini(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    below = tmp_path / "bot" / "src"
    below.mkdir(parents=True)

    result = run([NXALEMBIC, "init"], cwd=below, check=False)
    assert_one_clear_line(
        result.output,
        result.returncode,
        (f"{tmp_path / 'alembic.ini'} already exists", "second Alembic environment", "--force"),
    )
    assert sorted(p.name for p in below.iterdir()) == []

    run([NXALEMBIC, "init", "--force"], cwd=below)
    assert (below / "alembic.ini").is_file() and (below / "migrations" / "env.py").is_file()
