"""A database password never reaches a terminal or a log: not on success, not on failure.

Every command here runs with a PostgreSQL URL that carries a real password, through every
route a URL can take (ormar's database URL, ``-x url=``, nxalembic.ini ``url``, alembic.ini
``sqlalchemy.url``), with alembic's logging turned up to DEBUG, and also with URLs that fail
in each way a user can get them wrong.  The output is searched for the password as written
and in its URL-quoted forms, and for fragments of it (parsers like to quote the rest of a
string from the point where they choke).
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy.engine import make_url

from conftest import ALEMBIC, NXALEMBIC, BotProject, Result, run
from postgres_server import PostgresServer

#: Every character that needs quoting in a URL, between two markers that nothing else prints.
SPECIAL_PASSWORD = "Lk4Qz8-p@ss:w/rd%#?&=+ -Mv7Rt2"
SPECIAL_USER = "nx_secret_user"
DRIVERS = ["asyncpg", "psycopg"]


def forms_of(password: str) -> set[str]:
    """The password as written, URL-quoted both ways, and its alphanumeric runs of 6+ characters."""
    return {password, quote(password, safe=""), quote_plus(password), *re.findall(r"[A-Za-z0-9]{6,}", password)}


def assert_hidden(result: Result, password: str) -> None:
    leaked = sorted(form for form in forms_of(password) if form in result.output)
    assert not leaked, f"{' '.join(result.args)} printed {leaked}:\n{result.output}"


@pytest.fixture(scope="module")
def special_user(pg_server: PostgresServer) -> tuple[str, str]:
    """A superuser whose password holds every character that needs URL-quoting."""
    literal = SPECIAL_PASSWORD.replace("'", "''")
    pg_server.psql(f"DROP ROLE IF EXISTS {SPECIAL_USER}")
    pg_server.psql(f"CREATE ROLE {SPECIAL_USER} LOGIN SUPERUSER PASSWORD '{literal}'")
    return SPECIAL_USER, SPECIAL_PASSWORD


@pytest.fixture(params=["server", "special"])
def credentials(request: pytest.FixtureRequest, pg_server: PostgresServer) -> tuple[str, str]:
    """The suite server's own login (pg_server.password) and the special-character one."""
    if request.param == "server":
        return pg_server.user, pg_server.password
    return request.getfixturevalue("special_user")


def pg_url(server: PostgresServer, driver: str, user: str, password: str, database: str,
           port: int | str | None = None, quoted: bool = True) -> str:
    secret = quote(password, safe="") if quoted else password
    return f"postgresql+{driver}://{user}:{secret}@{server.host}:{server.port if port is None else port}/{database}"


def database_name(project: BotProject) -> str:
    return str(make_url(project.db.url).database)


def debug_logging(project: BotProject) -> None:
    """Turn every logger of the project's alembic.ini up to DEBUG, SQLAlchemy's engine included."""
    ini = project.path / "alembic.ini"
    text = re.sub(r"^level = \w+$", "level = DEBUG", ini.read_text(), flags=re.M)
    ini.write_text(text)


@pytest.mark.parametrize("driver", DRIVERS)
def test_no_output_shows_the_password_when_commands_succeed(
    make_project, pg_server: PostgresServer, special_user: tuple[str, str], driver: str
) -> None:
    user, password = special_user
    project = make_project(f"postgresql+{driver}")
    url = pg_url(pg_server, driver, user, password, database_name(project))
    debug_logging(project)
    results: list[Result] = []

    def alembic(*args: str, env_url: str = url, ok: bool = True) -> None:
        results.append(run([ALEMBIC, *args], cwd=project.path, env={"DEMOBOT_DATABASE_URL": env_url}, check=ok))

    def nxalembic(*args: str, ok: bool = True) -> None:
        results.append(run([NXALEMBIC, *args], cwd=project.path, env={"DEMOBOT_DATABASE_URL": url}, check=ok))

    # The URL as ormar's database URL (the bot's own setting).
    alembic("-x", "cog=core", "revision", "--autogenerate", "-m", "users")
    alembic("-x", "cog=core", "upgrade", "head")
    alembic("-x", "cog=core", "current", "--verbose")
    alembic("-x", "cog=core", "history", "--verbose")
    alembic("-x", "cog=core", "check")
    alembic("-x", "cog=core", "upgrade", "base:head", "--sql")
    alembic("-x", "cog=core", "downgrade", "-1")
    # The URL on the command line, with ormar's URL pointing at nothing that exists.
    alembic("-x", f"url={url}", "-x", "cog=core", "upgrade", "head", env_url="sqlite:////nonexistent/x.db")
    nxalembic("-x", f"url={url}", "status", "--json")
    # The URL in nxalembic.ini.
    with (project.path / "nxalembic.ini").open("a") as ini:
        ini.write(f"url = {url}\n")
    nxalembic("migrate")
    nxalembic("upgrade")
    nxalembic("status")
    nxalembic("check")
    nxalembic("upgrade", "--sql")
    nxalembic("downgrade", "economy")
    nxalembic("--raiseerr", "status")

    assert "core_users" in project.db.tables()  # the commands really ran against the database
    for result in results:
        assert_hidden(result, password)
    assert any("***" in result.output for result in results)  # current --verbose names the masked URL


@pytest.mark.parametrize("driver", DRIVERS)
def test_no_output_shows_the_password_when_the_url_is_wrong(
    make_project, pg_server: PostgresServer, credentials: tuple[str, str], driver: str
) -> None:
    user, password = credentials
    project = make_project(f"postgresql+{driver}")
    database = database_name(project)
    wrong_password = password + "-Wr0ngPw"
    cases = {
        "wrong database": (pg_url(pg_server, driver, user, password, "no_such_db"), "does not exist"),
        "wrong password": (pg_url(pg_server, driver, user, wrong_password, database), "password authentication failed"),
        "nothing listens on the port": (pg_url(pg_server, driver, user, password, database, port=1), "cannot connect"),
        "port is not a number": (pg_url(pg_server, driver, user, password, database, port="5x32"), "cannot be parsed"),
        "password not URL-quoted": (pg_url(pg_server, driver, user, password, database, quoted=False), "cannot be parsed"),
        "only its '@' not URL-quoted": (pg_url(pg_server, driver, user, password, database).replace("%40", "@"), "%40"),
        "unknown driver": (pg_url(pg_server, "nosuchdriver", user, password, database), "postgresql.nosuchdriver"),
    }
    for case, (url, expected) in cases.items():
        if "URL-quoted" in case and "%40" not in quote(password, safe=""):
            continue  # nothing to get wrong in this password
        env = {"DEMOBOT_DATABASE_URL": url}
        for args in ([ALEMBIC, "-x", "cog=core", "upgrade", "head"],
                     [NXALEMBIC, "status"],
                     [ALEMBIC, "--raiseerr", "-x", "cog=core", "current"]):  # a traceback, still no password
            result = run(args, cwd=project.path, env=env, check=False)
            assert result.returncode != 0, f"{case}: {' '.join(args)} succeeded:\n{result.output}"
            assert_hidden(result, wrong_password if case == "wrong password" else password)
            if "--raiseerr" not in args:
                [line] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
                assert "Traceback" not in result.output, f"{case}:\n{result.output}"
                assert expected in line, f"{case}: {line}"
    assert project.db.tables() == set()


def test_an_unescaped_percent_in_alembic_ini_does_not_print_the_password(
    make_project, pg_server: PostgresServer, special_user: tuple[str, str]
) -> None:
    """configparser quotes a bad value from its first ``%`` on: for a quoted password, the password."""
    user, password = special_user
    project = make_project("postgresql+psycopg")
    url = pg_url(pg_server, "psycopg", user, password, database_name(project))
    project.edit("alembic.ini", "# sqlalchemy.url =", f"sqlalchemy.url = {url}\n#")
    env = {"DEMOBOT_DATABASE_URL": ""}  # alembic.ini's URL is the only one
    for args in ([ALEMBIC, "-x", "cog=core", "current"], [NXALEMBIC, "status"]):
        result = run(args, cwd=project.path, env=env, check=False)
        assert result.returncode != 0
        assert_hidden(result, password)
        [line] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
        assert "sqlalchemy.url in alembic.ini" in line and "'%%'" in line, line

    # Escaped as the message says, the same URL works and still is not printed.
    project.edit("alembic.ini", f"sqlalchemy.url = {url}", f"sqlalchemy.url = {url.replace('%', '%%')}")
    for args in ([ALEMBIC, "-x", "cog=core", "current", "--verbose"], [NXALEMBIC, "status"]):
        result = run(args, cwd=project.path, env=env)
        assert_hidden(result, password)
