"""Bad input, one row per mistake, through the real ``alembic`` and ``nxalembic`` executables.

Every row must give: a non-zero exit; exactly one line besides Alembic's log lines, a
``FAILED:`` line naming the problem and the fix (its key words are asserted); no traceback;
no password; and a database left exactly as it was.  Every cog has a pending revision, so a
command that wrongly went ahead would change the version tables.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ALEMBIC, NXALEMBIC, BotProject, Database, copy_example_bot, run

COGS = ("core", "music", "economy")
PASSWORD = "s3cretpw"
LOG_LINE = re.compile(r"^(INFO|WARNI|WARNING|DEBUG) +\[")


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory, initialised_template: Path) -> Path:
    """The example bot with every cog at its first revision and one more revision pending."""
    path = tmp_path_factory.mktemp("bad-input") / "bot"
    project = copy_example_bot(path, initialised_template)
    for cog in COGS:
        project.cog(cog, "revision", "--autogenerate", "-m", "create")
        project.cog(cog, "upgrade", "head")
        project.cog(cog, "revision", "-m", "pending")
    project.db.dispose()
    return path


@pytest.fixture
def project(base_project: Path, tmp_path: Path) -> BotProject:
    path = tmp_path / "bot"
    shutil.copytree(base_project, path, ignore=shutil.ignore_patterns("__pycache__"))
    project = BotProject(path, Database(f"sqlite+aiosqlite:///{path / 'bot.db'}"))
    yield project
    project.db.dispose()


# -- the mistakes ----------------------------------------------------------------------------


def no_ini(p: BotProject) -> None:
    (p.path / "nxalembic.ini").unlink()


def no_section(p: BotProject) -> None:
    (p.path / "nxalembic.ini").write_text("[bot]\nmodule = demobot.main\n")


def no_module(p: BotProject) -> None:
    (p.path / "nxalembic.ini").write_text("[nxalembic]\nbot = bot\n")


def import_fails(p: BotProject) -> None:
    p.edit(
        "demobot/main.py",
        "import nextcord\n",
        "import nextcord\nraise RuntimeError('DISCORD_TOKEN file missing')\n",
    )


def no_bot_attribute(p: BotProject) -> None:
    p.edit("nxalembic.ini", "bot = bot", "bot = robot")


def module_as_path(p: BotProject) -> None:
    p.edit("nxalembic.ini", "module = demobot.main", "module = demobot/main.py")


def not_a_bot(p: BotProject) -> None:
    p.edit("nxalembic.ini", "bot = bot", "bot = intents")


def one_cog_name_twice(p: BotProject) -> None:
    p.edit(
        "demobot/cogs/economy.py",
        "from typing import Optional\n",
        "from typing import Optional\n\n__nxalembic_cog__ = 'music'\n",
    )


def stamped_unknown(p: BotProject) -> None:
    with sqlite3.connect(p.path / "bot.db") as db:
        db.execute("UPDATE alembic_version_music SET version_num = 'deadbeef1234'")


def syntax_error(p: BotProject) -> None:
    [pending] = [f for f in p.revisions("music") if f.name.endswith("_pending.py")]
    pending.write_text(pending.read_text() + "\ndef broken(:\n")


def two_heads(p: BotProject) -> None:
    [first] = [f for f in p.revisions("music") if f.name.endswith("_create.py")]
    base = re.search(r"^revision: str = '(\w+)'", first.read_text(), re.M).group(1)  # type: ignore[union-attr]
    p.cog("music", "revision", "-m", "fork", "--head", base, "--splice")


def env_passes_version_table(p: BotProject) -> None:
    p.edit(
        "migrations/env.py",
        "run_migrations(context)",
        "run_migrations(context, version_table='alembic_version_music')",
    )


def env_passes_version_table_schema(p: BotProject) -> None:
    p.edit(
        "migrations/env.py",
        "run_migrations(context)",
        "run_migrations(context, version_table_schema='main')",
    )


def unreadable_version_table(p: BotProject) -> None:
    p.db.execute("DROP TABLE alembic_version_music")
    p.db.execute("CREATE TABLE alembic_version_music (other VARCHAR(32))")
    p.db.execute("INSERT INTO alembic_version_music VALUES ('not a version')")


def unreachable(p: BotProject) -> None:
    (p.path / "nxalembic.ini").write_text(
        f"[nxalembic]\nmodule = demobot.main\nbot = bot\nurl = postgresql+asyncpg://u:{PASSWORD}@127.0.0.1:1/x\n"
    )


def unreachable_mariadb(driver: str) -> Callable[[BotProject], None]:
    def setup(p: BotProject) -> None:
        (p.path / "nxalembic.ini").write_text(
            f"[nxalembic]\nmodule = demobot.main\nbot = bot\nurl = mysql+{driver}://u:{PASSWORD}@127.0.0.1:1/x\n"
        )

    return setup


@dataclass
class Case:
    id: str
    setup: Callable[[BotProject], None] | None
    alembic: tuple[str, ...]
    words: tuple[str, ...]
    nxalembic: tuple[str, ...] | None = ("upgrade",)
    #: key words of the nxalembic line, when they differ from the alembic line's
    nx_words: tuple[str, ...] | None = None
    extra: dict = field(default_factory=dict)


UPGRADE_MUSIC = ("-x", "cog=music", "upgrade", "head")
# `nxalembic upgrade` commits cog by cog and core comes before music: a broken music history
# must be found before core's pending revision goes in (every history is checked first).
# The stamped-revision row needs the database, so it names the cog.
NX_MUSIC = ("upgrade", "--app", "music")
NX_ALL = ("upgrade",)

CASES = [
    Case(
        "missing nxalembic.ini",
        no_ini,
        UPGRADE_MUSIC,
        (
            "no nxalembic.ini and no [tool.nxalembic] in pyproject.toml found",
            "module = yourbot.main",
            "nxalembic init",
        ),
    ),
    Case(
        "missing [nxalembic] section",
        no_section,
        UPGRADE_MUSIC,
        ("has no [nxalembic] section", "add 'module = yourbot.main'", "under [nxalembic] in nxalembic.ini"),
    ),
    Case(
        "missing module key",
        no_module,
        UPGRADE_MUSIC,
        ("needs 'module = yourbot.main'", "the module that creates your bot"),
    ),
    Case(
        "module fails to import",
        import_fails,
        UPGRADE_MUSIC,
        (
            "importing bot module 'demobot.main'",
            "RuntimeError: DISCORD_TOKEN file missing",
            "main.py:",
            "fix the error",
        ),
    ),
    Case(
        "missing bot attribute",
        no_bot_attribute,
        UPGRADE_MUSIC,
        ("has no attribute 'robot' (it has 'bot')", "set 'bot = NAME'"),
    ),
    Case(
        "module given as a file path",
        module_as_path,
        UPGRADE_MUSIC,
        ("module = 'demobot/main.py' is not a dotted Python module path", "write 'module = demobot.main'"),
    ),
    Case(
        "object is not a bot",
        not_a_bot,
        UPGRADE_MUSIC,
        ("demobot.main.intents is of type Intents, not a discord bot", "point 'bot ='", "commands.Bot"),
    ),
    Case(
        "two extensions, one cog name",
        one_cog_name_twice,
        UPGRADE_MUSIC,
        (
            "cog name 'music' is claimed by both",
            "demobot.cogs.economy",
            "demobot.cogs.music",
            "__nxalembic_cog__",
        ),
    ),
    Case(
        "cog name with a semicolon",
        None,
        ("-x", "cog=music;drop", "upgrade", "head"),
        ("invalid cog name 'music;drop'", "[A-Za-z_][A-Za-z0-9_]*", "known cogs: core, economy, music"),
        ("upgrade", "--app", "music;drop"),
        ("unknown cog 'music;drop'", "known cogs: core, economy, music", "--cog"),
    ),
    Case(
        "cog name with a path",
        None,
        ("-x", "cog=../x", "upgrade", "head"),
        ("invalid cog name '../x'", "known cogs: core, economy, music"),
        ("upgrade", "--app", "../x"),
        ("unknown cog '../x'", "known cogs: core, economy, music", "--cog"),
    ),
    Case(
        "unknown cog",
        None,
        ("-x", "cog=musik", "upgrade", "head"),
        ("unknown cog 'musik'", "known cogs: core, economy, music", "-x cog=NAME"),
        ("upgrade", "--app", "musik"),
        ("unknown cog 'musik'", "known cogs: core, economy, music", "--cog"),
    ),
    Case(
        "no cog selected", None, ("upgrade", "head"), ("no cog selected", "known cogs", "-x cog=NAME"), None
    ),
    Case(
        "unreachable database",
        unreachable,
        UPGRADE_MUSIC,
        (
            "cannot connect to database postgresql+asyncpg://u:***@127.0.0.1:1/x",
            "check the URL",
            "server is running",
        ),
    ),
    *(
        Case(
            f"unreachable MariaDB ({driver})",
            unreachable_mariadb(driver),
            UPGRADE_MUSIC,
            (
                f"cannot connect to database mysql+{driver}://u:***@127.0.0.1:1/x",
                "check the URL",
                "server is running",
            ),
        )
        for driver in ("aiomysql", "asyncmy")
    ),
    Case(
        "database stamped with an unknown revision",
        stamped_unknown,
        UPGRADE_MUSIC,
        (
            "cog 'music'",
            "alembic_version_music",
            "deadbeef1234",
            "restore that revision file",
            "stamp --purge",
        ),
        NX_MUSIC,
    ),
    Case(
        "revision file with a syntax error",
        syntax_error,
        UPGRADE_MUSIC,
        ("cannot load revision file", "_pending.py:", "SyntaxError", "fix or remove that file"),
        NX_ALL,
    ),
    Case(
        "two heads in one cog",
        two_heads,
        UPGRADE_MUSIC,
        ("cog 'music' has 2 heads", "merge heads", "alembic -x cog=music"),
        NX_ALL,
    ),
    Case(
        "version table passed with -x",
        None,
        ("-x", "cog=economy", "-x", "version_table=alembic_version_music", "upgrade", "head"),
        ("-x version_table= is not accepted", "version_table", "nxalembic.ini"),
        ("-x", "version_table=alembic_version_music", "upgrade"),
    ),
    Case(
        "version table passed in env.py",
        env_passes_version_table,
        UPGRADE_MUSIC,
        (
            "passes version_table='alembic_version_music' to run_migrations()",
            "every cog one version table",
            "nxalembic.ini",
        ),
    ),
    Case(
        "version table that is not one",
        unreadable_version_table,
        UPGRADE_MUSIC,
        ("version_num",),
        nx_words=("cog 'music': its version table alembic_version_music cannot be read", "version_num"),
    ),
    Case(
        "version table schema passed in env.py",
        env_passes_version_table_schema,
        UPGRADE_MUSIC,
        (
            "passes version_table_schema='main' to run_migrations()",
            "start-up check",
            "remove it",
        ),
    ),
]


def the_line(output: str) -> str:
    """The one line that is not an Alembic log line (or nxalembic's ``database:`` line); exactly one."""
    lines = [
        line
        for line in output.splitlines()
        if line.strip() and not LOG_LINE.match(line) and not line.startswith("database: ")
    ]
    assert len(lines) == 1, "expected one line besides log lines, got:\n" + output
    return lines[0]


def assert_one_clear_line(output: str, returncode: int, words: tuple[str, ...]) -> None:
    assert returncode != 0, output
    assert "Traceback" not in output, output
    assert PASSWORD not in output
    line = the_line(output)
    assert line.startswith("FAILED: "), line
    for word in words:
        assert word in line, f"{word!r} not in: {line}"


def check_case(project: BotProject, case: Case) -> None:
    """Set the mistake up, run both executables, and assert one clear line and no change."""
    if case.setup is not None:
        case.setup(project)
    before = project.db.snapshot()
    assert before["alembic_version_music"]["rows"], "the fixture's database must have version rows"

    result = project.alembic(*case.alembic, check=False)
    assert_one_clear_line(result.output, result.returncode, case.words)
    assert project.db.snapshot() == before

    if case.nxalembic is not None:
        result = project.nxalembic(*case.nxalembic, check=False)
        assert_one_clear_line(result.output, result.returncode, case.nx_words or case.words)
        assert project.db.snapshot() == before


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_and_changes_nothing(project: BotProject, case: Case) -> None:
    check_case(project, case)


@pytest.mark.parametrize("executable", [ALEMBIC, NXALEMBIC])
def test_raiseerr_shows_the_traceback(project: BotProject, executable: str) -> None:
    no_bot_attribute(project)
    args = ("-x", "cog=music", "upgrade", "head") if executable == ALEMBIC else ("upgrade",)
    result = run([executable, "--raiseerr", *args], cwd=project.path, env=project.env, check=False)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.output
    assert "has no attribute 'robot'" in result.output
