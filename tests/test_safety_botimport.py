"""Importing the bot for migrations, and secrets in output (issue 9: items 6, 7, 11, 12, 14).

Through the real ``alembic`` and ``nxalembic`` executables:

* a bot module that calls ``sys.exit()``, starts the bot (``bot.run()`` outside
  ``if __name__ == "__main__":``), or fails inside a library gets one line naming the
  user's own file and line, never exit 0 and never a connection to Discord;
* ``-x cog=fun`` (an extension without models) and a table defined twice on one MetaData
  are named for what they are;
* a password in a URL's query is masked everywhere, as is whatever the bot prints or raises;
  what the bot prints goes to stderr, so ``status --json`` and ``--sql`` output stay clean.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from conftest import ALEMBIC, NXALEMBIC, BotProject, Result, run
from mariadb_server import MariaDBServer
from postgres_server import PostgresServer
from test_bad_input import assert_one_clear_line, base_project, project  # noqa: F401  (fixtures)
from test_passwords import assert_hidden, debug_logging

#: A safety net only: a bot that really starts would hang; the guarded one fails in seconds.
TIMEOUT = 120
IF_MAIN = 'if __name__ == "__main__":'
MAIN_END = f"\n\n{IF_MAIN}\n"


def at_import(p: BotProject, code: str) -> None:
    """Put *code* at the end of demobot/main.py, outside ``if __name__ == "__main__":``."""
    p.edit("demobot/main.py", MAIN_END, f"\n{code}\n{MAIN_END}")


def line_of(p: BotProject, relpath: str, text: str) -> str:
    """``relpath:N`` of the first line of *relpath* that contains *text*."""
    lines = (p.path / relpath).read_text().splitlines()
    return f"{relpath}:{next(n for n, line in enumerate(lines, 1) if text in line)}"


# -- the mistakes ----------------------------------------------------------------------------


def exits(p: BotProject) -> None:
    at_import(p, "import sys\nsys.exit(0)")


def runs_fake_token(p: BotProject) -> None:
    at_import(p, 'bot.run("fake-token")')


def runs_token_from_env(p: BotProject) -> None:
    at_import(p, 'bot.run(os.environ["DISCORD_TOKEN"])')


def runs_and_swallows(p: BotProject) -> None:
    at_import(p, 'try:\n    bot.run("fake-token")\nexcept Exception:\n    pass')


def starts_in_asyncio(p: BotProject) -> None:
    at_import(p, 'import asyncio\nasyncio.run(bot.start("fake-token"))')


def library_fails(p: BotProject) -> None:
    """An extension's import-time call fails deep inside the standard library."""
    p.edit(
        "demobot/cogs/economy.py",
        "from ..db import base_config\n",
        'from ..db import base_config\n\nimport json\nPRICES = json.loads("{not json")\n',
    )


def table_twice(p: BotProject) -> None:
    with (p.path / "demobot/cogs/economy.py").open("a") as fh:
        fh.write(
            "\n\nclass OldWallet(ormar.Model):\n"
            '    ormar_config = base_config.copy(tablename="economy_wallets")\n\n'
            "    id: int = ormar.Integer(primary_key=True)\n"
        )


@dataclass
class Case:
    id: str
    setup: object
    alembic: tuple[str, ...]
    nxalembic: tuple[str, ...]
    #: key words of the FAILED line; ``{where}`` is replaced by the expected file:line
    words: tuple[str, ...]
    #: (file, text): the user's line the message must name
    where: tuple[str, str] | None = None
    nx_words: tuple[str, ...] | None = None
    absent: tuple[str, ...] = ()


MAIN = "demobot/main.py"
START_WORDS = ("starts the bot", IF_MAIN)
CASES = [
    Case(
        "bot module calls sys.exit(0): check",
        exits,
        ("-x", "cog=music", "check"),
        ("check",),
        ("importing bot module 'demobot.main' called sys.exit(0)", "{where}", "nothing was checked"),
        (MAIN, "sys.exit(0)"),
    ),
    Case(
        "bot module calls sys.exit(0): upgrade/status",
        exits,
        ("-x", "cog=music", "upgrade", "head"),
        ("status",),
        ("called sys.exit(0)", "{where}", "nothing was checked or migrated"),
        (MAIN, "sys.exit(0)"),
    ),
    Case(
        "bot.run() at import",
        runs_fake_token,
        ("-x", "cog=music", "check"),
        ("check",),
        ("{where} starts the bot (Client.run)", *START_WORDS),
        (MAIN, 'bot.run("fake-token")'),
    ),
    Case(
        "bot.run() at import, error swallowed",
        runs_and_swallows,
        ("-x", "cog=music", "upgrade", "head"),
        ("upgrade",),
        ("{where} starts the bot (Client.run)", *START_WORDS),
        (MAIN, 'bot.run("fake-token")'),
    ),
    Case(
        "bot.start() in asyncio.run() at import",
        starts_in_asyncio,
        ("-x", "cog=music", "check"),
        ("status", "--json"),
        ("{where} starts the bot (Client.start)", *START_WORDS),
        (MAIN, "asyncio.run("),
    ),
    Case(
        "bot.run(os.environ['DISCORD_TOKEN']) without the variable",
        runs_token_from_env,
        ("-x", "cog=music", "check"),
        ("check",),
        ("KeyError: 'DISCORD_TOKEN'", "({where})", "that line starts the bot", IF_MAIN),
        (MAIN, "bot.run(os.environ"),
        absent=("<frozen",),
    ),
    Case(
        "error inside a library",
        library_fails,
        ("-x", "cog=music", "check"),
        ("check",),
        ("importing bot module 'demobot.main'", "JSONDecodeError", "({where})", "fix the error"),
        ("demobot/cogs/economy.py", "json.loads("),
        absent=("decoder.py",),
    ),
    Case(
        "-x cog=fun: an extension without models",
        None,
        ("-x", "cog=fun", "upgrade", "head"),
        ("upgrade", "--app", "fun"),
        (
            "extension demobot.cogs.fun is loaded but defines no ormar models",
            "has no migrations",
            "cogs with models: core, economy, music",
            "-x cog=NAME",
        ),
        nx_words=(
            "extension demobot.cogs.fun is loaded but defines no ormar models",
            "cogs with models: core, economy, music",
            "--cog",
        ),
        absent=("unknown cog",),
    ),
    Case(
        "a table defined twice on one MetaData",
        table_twice,
        ("-x", "cog=music", "upgrade", "head"),
        ("upgrade",),
        (
            "table 'economy_wallets' is defined twice on one MetaData",
            "model OldWallet ({where})",
            "give one of the two models another tablename",
        ),
        ("demobot/cogs/economy.py", "class OldWallet"),
        absent=("extend_existing",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bot_import_mistakes_give_one_line_and_change_nothing(
    project: BotProject,
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    if case.setup is not None:
        case.setup(project)  # type: ignore[operator]
    where = line_of(project, *case.where) if case.where else ""
    before = project.db.snapshot()
    for executable, args, words in (
        (ALEMBIC, case.alembic, case.words),
        (NXALEMBIC, case.nxalembic, case.nx_words or case.words),
    ):
        result = run([executable, *args], cwd=project.path, env=project.env, check=False, timeout=TIMEOUT)
        assert_one_clear_line(
            result.output, result.returncode, tuple(w.replace("{where}", where) for w in words)
        )
        for text in case.absent:
            assert text not in result.output, result.output
        assert project.db.snapshot() == before


def test_sys_exit_in_env_py_is_not_success_for_nxalembic(project: BotProject) -> None:
    """A stray ``sys.exit(0)`` outside the bot (here in env.py) still fails ``nxalembic``."""
    project.edit(
        "migrations/env.py", "run_migrations(context)", "import sys\nsys.exit(0)\nrun_migrations(context)"
    )
    before = project.db.snapshot()
    for args in (("check",), ("upgrade",), ("status", "--json")):
        result = project.nxalembic(*args, check=False)
        assert_one_clear_line(
            result.output,
            result.returncode,
            ("sys.exit(0) was called at", "env.py:", f"'nxalembic {args[0]}'"),
        )
        assert result.stdout == ""
    result = project.nxalembic("--raiseerr", "check", check=False)
    assert result.returncode == 1 and "Traceback" in result.output
    assert project.db.snapshot() == before

    # argparse's own exits still work.
    assert project.nxalembic("--version").stdout.startswith("nxalembic ")
    assert "COMMAND" in project.nxalembic("--help").stdout
    assert project.nxalembic("no-such-command", check=False).returncode == 2


def test_the_guard_is_gone_after_the_import(project: BotProject) -> None:
    """After discovery the Discord client is untouched: its methods and the import system restored."""
    script = (
        "import sys, nextcord\n"
        "before = {m: nextcord.Client.__dict__[m] for m in ('run', 'start', 'login', 'connect')}\n"
        "finders = list(sys.meta_path)\n"
        "from nxalembic_templates.discovery import discover\n"
        "from nxalembic_templates.settings import load_settings\n"
        "schema = discover(load_settings('nxalembic.ini'))\n"
        "assert sorted(schema.cogs) == ['core', 'economy', 'music'], schema.cogs\n"
        "assert {m: nextcord.Client.__dict__[m] for m in before} == before\n"
        "assert sys.meta_path == finders, sys.meta_path\n"
        "print('restored')\n"
    )
    result = run([sys.executable, "-c", script], cwd=project.path, env=project.env, timeout=TIMEOUT)
    assert result.stdout.strip() == "restored", result.output


# -- secrets and stdout ----------------------------------------------------------------------


def pg_project(make_project, driver: str = "psycopg") -> BotProject:
    project = make_project(f"postgresql+{driver}")
    project.nxalembic("migrate")
    return project


def printing_bot(project: BotProject) -> None:
    """The bot prints its URL, the bare password, and writes to stderr, all at import."""
    project.edit(
        "demobot/db.py",
        "database = ",
        "import sys\nfrom sqlalchemy.engine import make_url\n"
        "print('bot: connecting to', DATABASE_URL)\n"
        "print('bot: password', make_url(DATABASE_URL).password)\n"
        "print('bot: on stderr', DATABASE_URL, file=sys.stderr)\n"
        "database = ",
    )


def assert_no_bot_output(result: Result) -> None:
    assert "bot: " not in result.stdout, result.stdout
    assert "bot: connecting to" in result.stderr and "bot: password ***" in result.stderr, result.stderr


def test_what_the_bot_prints_goes_to_stderr_masked(make_project, pg_server: PostgresServer) -> None:
    project = pg_project(make_project)
    password = pg_server.password
    printing_bot(project)

    result = project.nxalembic("status", "--json")
    assert_no_bot_output(result)
    assert [c["cog"] for c in json.loads(result.stdout)["cogs"]] == ["core", "economy", "music"]

    result = project.nxalembic("upgrade", "--sql")
    assert_no_bot_output(result)
    assert result.stdout.startswith("-- cog core: alembic_version_core\n"), result.stdout
    assert "CREATE TABLE core_users" in result.stdout

    result = project.cog("music", "upgrade", "head", "--sql")
    assert_no_bot_output(result)
    assert result.stdout.startswith("BEGIN;\n"), result.stdout
    assert "CREATE TABLE music_songs" in result.stdout

    results = [result, project.nxalembic("upgrade"), project.cog("core", "current", "--verbose")]
    for result in results:
        assert_hidden(result, password)

    # What the bot raises is masked too, URL and bare password alike.
    project.edit(
        "demobot/main.py",
        "EXTENSIONS = (",
        "from .db import DATABASE_URL\nfrom sqlalchemy.engine import make_url\n"
        "raise RuntimeError(f'cannot reach {DATABASE_URL} as {make_url(DATABASE_URL).password}')\n"
        "EXTENSIONS = (",
    )
    for args in ((ALEMBIC, "-x", "cog=music", "check"), (NXALEMBIC, "status", "--json")):
        result = run(list(args), cwd=project.path, env=project.env, check=False)
        assert result.returncode != 0, result.output
        assert "bot: " not in result.stdout, result.stdout  # stock alembic prints its FAILED line on stdout
        [line] = [line for line in result.output.splitlines() if line.startswith("FAILED: ")]
        assert (
            "RuntimeError: cannot reach postgresql+psycopg://" in line
            and ":***@" in line
            and " as ***" in line
        ), line
        assert_hidden(result, password)


def query_url(server: PostgresServer, driver: str, database: str, **query: str) -> str:
    """A URL with no password before the host: the credentials are in the query."""
    params = "&".join(f"{key}={quote(value, safe='')}" for key, value in query.items())
    return f"postgresql+{driver}://{server.user}@{server.host}:{server.port}/{database}?{params}"


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg"])
def test_a_password_in_the_url_query_is_never_printed(
    make_project, pg_server: PostgresServer, driver: str
) -> None:
    project = make_project(f"postgresql+{driver}")
    database = str(make_url(project.db.url).database)
    password = pg_server.password
    debug_logging(project)
    url = query_url(pg_server, driver, database, password=password)
    env = {"DEMOBOT_DATABASE_URL": url}
    results: list[Result] = []

    def call(*args: str, ok: bool = True, env: dict[str, str] = env) -> Result:
        result = run(list(args), cwd=project.path, env=env, check=ok)
        results.append(result)
        return result

    # It works: the drivers read the password from the query.
    call(NXALEMBIC, "migrate")
    call(NXALEMBIC, "upgrade")
    call(NXALEMBIC, "status")
    call(NXALEMBIC, "-x", f"url={url}", "check")
    verbose = call(ALEMBIC, "-x", "cog=core", "current", "--verbose")  # Alembic prints the URL itself
    assert "Current revision(s) for postgresql" in verbose.output
    if driver == "asyncpg":  # --sql never connects: the same output for each driver, checked once
        call(ALEMBIC, "-x", "cog=core", "upgrade", "base:head", "--sql")
    assert "core_users" in project.db.tables()

    # And it fails in every way, still masked: each error names the masked URL or the cause.
    wrong = password + "-Wr0ngPw"
    failures = {
        "wrong database": (query_url(pg_server, driver, "no_such_db", password=password), "password=***"),
        "wrong password": (
            query_url(pg_server, driver, database, password=wrong),
            "password authentication failed",
        ),
        "nothing listens": (
            query_url(pg_server, driver, database, password=password).replace(f":{pg_server.port}/", ":1/"),
            "password=***",
        ),
        "sslpassword and passfile": (
            query_url(
                pg_server,
                driver,
                "no_such_db",
                password=password,
                sslpassword=password + "-ssl",
                passfile=f"/nonexistent/{password}.pgpass",
            ),
            "sslpassword=***",
        ),
    }
    if driver == "asyncpg":  # the URL names no driver of the two: the same case for each, run once
        failures["unknown driver"] = (
            query_url(pg_server, "nosuchdriver", database, password=password),
            "password=***",
        )
    for case, (bad_url, expected) in failures.items():
        for args in (
            (ALEMBIC, "-x", "cog=core", "upgrade", "head"),
            (NXALEMBIC, "status"),
            (NXALEMBIC, "-x", f"url={bad_url}", "check"),
        ):
            result = call(*args, ok=False, env={"DEMOBOT_DATABASE_URL": bad_url})
            assert result.returncode != 0, f"{case}: {result.output}"
            assert "Traceback" not in result.output, f"{case}: {result.output}"
            [line] = [line for line in result.output.splitlines() if line.startswith("FAILED: ")]
            assert expected in line, f"{case}: {line}"
            assert_hidden(result, wrong if case == "wrong password" else password)
    for result in results:
        assert_hidden(result, password)
        assert not re.search(r"password=(?!\*\*\*)", result.output), result.output


def mariadb_query_url(server: MariaDBServer, driver: str, database: str, **query: str) -> str:
    """query_url's MariaDB twin: the password in the query (the MySQL drivers take ``password=``)."""
    params = "&".join(f"{key}={quote(value, safe='')}" for key, value in query.items())
    return f"mysql+{driver}://{server.user}@{server.host}:{server.port}/{database}?{params}"


def test_on_mariadb_a_password_in_the_url_query_is_never_printed(
    make_project, mariadb_server: MariaDBServer
) -> None:
    """The MariaDB twin (aiomysql: PyMySQL, under it, reads the same keyword)."""
    driver = "aiomysql"
    project = make_project(f"mysql+{driver}")
    database = str(make_url(project.db.url).database)
    password = mariadb_server.password
    debug_logging(project)
    url = mariadb_query_url(mariadb_server, driver, database, password=password)
    results: list[Result] = []

    def call(*args: str, ok: bool = True, db_url: str = url) -> Result:
        result = run(list(args), cwd=project.path, env={"DEMOBOT_DATABASE_URL": db_url}, check=ok)
        results.append(result)
        return result

    # It works: the drivers read the password from the query.
    call(NXALEMBIC, "migrate")
    call(NXALEMBIC, "upgrade")
    verbose = call(ALEMBIC, "-x", "cog=core", "current", "--verbose")  # Alembic prints the URL itself
    assert "Current revision(s) for mysql" in verbose.output
    assert "core_users" in project.db.tables()

    # And it fails in every way, still masked.
    wrong = password + "-Wr0ngPw"
    failures = {
        "wrong database": (
            mariadb_query_url(mariadb_server, driver, "no_such_db", password=password),
            "1049",
        ),
        "wrong password": (mariadb_query_url(mariadb_server, driver, database, password=wrong), "1045"),
        "nothing listens": (
            mariadb_query_url(mariadb_server, driver, database, password=password).replace(
                f":{mariadb_server.port}/", ":1/"
            ),
            "password=***",
        ),
    }
    for case, (bad_url, expected) in failures.items():
        for args in ((ALEMBIC, "-x", "cog=core", "upgrade", "head"), (NXALEMBIC, "status")):
            result = call(*args, ok=False, db_url=bad_url)
            assert result.returncode != 0, f"{case}: {result.output}"
            assert "Traceback" not in result.output, f"{case}: {result.output}"
            [line] = [line for line in result.output.splitlines() if line.startswith("FAILED: ")]
            assert expected in line, f"{case}: {line}"
            assert_hidden(result, wrong if case == "wrong password" else password)
    for result in results:
        assert_hidden(result, password)
        assert not re.search(r"password=(?!\*\*\*)", result.output), result.output
