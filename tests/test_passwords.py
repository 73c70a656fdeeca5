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
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy.engine import URL, make_url

from conftest import ALEMBIC, NXALEMBIC, BotProject, Result, run
from mariadb_server import MariaDBServer
from postgres_server import PostgresServer

#: Every character that needs quoting in a URL, between two markers that nothing else prints.
SPECIAL_PASSWORD = "Lk4Qz8-p@ss:w/rd%#?&=+ -Mv7Rt2"
SPECIAL_USER = "nx_secret_user"
DRIVERS = ["asyncpg", "psycopg"]
#: What stands for a password wherever a URL is shown (documented in docs/configuration.rst).
MASK = "***"


def forms_of(password: str) -> set[str]:
    """Every way *password* could be printed: as written, as ``repr`` shows it, URL-quoted by urllib
    (each ``safe`` choice) and by SQLAlchemy, and its alphanumeric runs of 6+ characters (what is
    left of it when a parser quotes a string from the point where it choked)."""
    runs = re.findall(r"[A-Za-z0-9]{6,}", password)
    assert runs, f"{password!r} has no fragment long enough to search for"
    sqlalchemy = URL.create("d", username="u", password=password, host="h").render_as_string(
        hide_password=False
    )
    return {
        password,
        repr(password)[1:-1],
        quote(password),
        quote(password, safe=""),
        quote_plus(password),
        sqlalchemy.removeprefix("d://u:").removesuffix("@h"),
        *runs,
    }


def assert_hidden(result: Result, *passwords: str) -> None:
    leaked = sorted(form for password in passwords for form in forms_of(password) if form in result.output)
    assert not leaked, f"{' '.join(result.args)} printed {leaked}:\n{result.output}"


def assert_masked(result: Result, user: str) -> None:
    """Wherever *user*'s URL is shown, its password is shown as the mask (not left out, not shortened)."""
    for found in re.finditer(rf"(?<![\w%]){re.escape(user)}:", result.output):
        shown = result.output[found.end() : found.end() + len(MASK) + 1]
        assert shown == f"{MASK}@", f"{' '.join(result.args)} shows {user}:{shown}...:\n{result.output}"


@pytest.fixture(scope="module")
def special_user(pg_server: PostgresServer) -> tuple[str, str]:
    """A superuser whose password holds every character that needs URL-quoting."""
    literal = SPECIAL_PASSWORD.replace("'", "''")
    pg_server.psql(f"DROP ROLE IF EXISTS {SPECIAL_USER}")
    pg_server.psql(f"CREATE ROLE {SPECIAL_USER} LOGIN SUPERUSER PASSWORD '{literal}'")
    return SPECIAL_USER, SPECIAL_PASSWORD


@pytest.fixture
def credentials(request: pytest.FixtureRequest, pg_server: PostgresServer) -> tuple[str, str]:
    """``server``: the suite server's own login (a password with nothing to quote);
    ``special``: the login whose password needs every kind of quoting."""
    if request.param == "server":
        return pg_server.user, pg_server.password
    return request.getfixturevalue("special_user")


def pg_url(
    server: PostgresServer,
    driver: str,
    user: str,
    password: str,
    database: str,
    port: int | str | None = None,
    quoted: bool = True,
) -> str:
    secret = quote(password, safe="") if quoted else password
    port = server.port if port is None else port
    return f"postgresql+{driver}://{user}:{secret}@{server.host}:{port}/{database}"


def masked_url(
    server: PostgresServer, driver: str, user: str, database: str, port: int | str | None = None
) -> str:
    """The URL as a message must show it."""
    port = server.port if port is None else port
    return f"postgresql+{driver}://{user}:{MASK}@{server.host}:{port}/{database}"


def database_name(project: BotProject) -> str:
    return str(make_url(project.db.url).database)


def debug_logging(project: BotProject) -> None:
    """Turn every logger of the project's alembic.ini up to DEBUG, SQLAlchemy's engine included."""
    ini = project.path / "alembic.ini"
    text = re.sub(r"^level = \w+$", "level = DEBUG", ini.read_text(), flags=re.M)
    assert text != ini.read_text()
    ini.write_text(text)


@pytest.mark.parametrize("driver", DRIVERS)
def test_no_output_shows_the_password_when_commands_succeed(
    make_project, pg_server: PostgresServer, special_user: tuple[str, str], driver: str
) -> None:
    user, password = special_user
    project = make_project(f"postgresql+{driver}")
    url = pg_url(pg_server, driver, user, password, database_name(project))
    masked = masked_url(pg_server, driver, user, database_name(project))
    nowhere = "sqlite:////nonexistent/x.db"  # ormar's URL when another route must carry the password
    debug_logging(project)
    results: list[Result] = []

    def alembic(*args: str, env_url: str = url) -> Result:
        results.append(run([ALEMBIC, *args], cwd=project.path, env={"DEMOBOT_DATABASE_URL": env_url}))
        return results[-1]

    def nxalembic(*args: str, env_url: str = url) -> Result:
        results.append(run([NXALEMBIC, *args], cwd=project.path, env={"DEMOBOT_DATABASE_URL": env_url}))
        if "--sql" not in args:  # nxalembic names the database it connects to first, on stderr, masked
            assert f"database: {masked}" in results[-1].stderr.splitlines(), results[-1].output
        return results[-1]

    # The URL as ormar's database URL (the bot's own setting).
    alembic("-x", "cog=core", "revision", "--autogenerate", "-m", "users")
    alembic("-x", "cog=core", "upgrade", "head")
    current = alembic("-x", "cog=core", "current", "--verbose")
    assert f"Current revision(s) for {masked}:" in current.stdout.splitlines(), current.output
    alembic("-x", "cog=core", "history", "--verbose")
    alembic("-x", "cog=core", "check")
    if driver == DRIVERS[0]:  # --sql never connects: the same output for each driver, checked once
        alembic("-x", "cog=core", "upgrade", "base:head", "--sql")
    alembic("-x", "cog=core", "downgrade", "-1")
    # The URL on the command line, with ormar's URL pointing at nothing that exists.
    alembic("-x", f"url={url}", "-x", "cog=core", "upgrade", "head", env_url=nowhere)
    current = alembic("-x", f"url={url}", "-x", "cog=core", "current", "--verbose", env_url=nowhere)
    assert f"Current revision(s) for {masked}:" in current.stdout.splitlines(), current.output
    nxalembic("-x", f"url={url}", "status", "--json", env_url=nowhere)
    # The URL in nxalembic.ini, again with ormar's URL pointing at nothing.
    with (project.path / "nxalembic.ini").open("a") as ini:
        ini.write(f"url = {url}\n")
    nxalembic("migrate", env_url=nowhere)
    nxalembic("upgrade", env_url=nowhere)
    nxalembic("status", env_url=nowhere)
    nxalembic("check", env_url=nowhere)
    if driver == DRIVERS[0]:  # as above
        nxalembic("upgrade", "--sql", env_url=nowhere)
    nxalembic("downgrade", "economy", env_url=nowhere)
    nxalembic("--raiseerr", "status", env_url=nowhere)
    current = alembic("-x", "cog=core", "current", "--verbose", env_url=nowhere)
    assert f"Current revision(s) for {masked}:" in current.stdout.splitlines(), current.output

    assert {
        "core_users",
        "music_songs",
    } <= project.db.tables()  # the commands really ran against the database
    for result in results:
        assert_hidden(result, password)
        assert_masked(result, user)


#: Each way a user gets a URL wrong: the URL (from the login, driver, server and database),
#: what its FAILED line says, and whether that line shows the URL (masked).
WrongURL = Callable[[PostgresServer, str, str, str, str], tuple[str, str, bool]]
WRONG_URLS: dict[str, WrongURL] = {
    "wrong database": lambda pg, driver, user, password, database: (
        pg_url(pg, driver, user, password, "no_such_db"),
        "does not exist",
        True,
    ),
    "wrong password": lambda pg, driver, user, password, database: (
        pg_url(pg, driver, user, password + WRONG, database),
        "password authentication failed",
        True,
    ),
    "nothing listens on the port": lambda pg, driver, user, password, database: (
        pg_url(pg, driver, user, password, database, port=1),
        "cannot connect",
        True,
    ),
    "port is not a number": lambda pg, driver, user, password, database: (
        pg_url(pg, driver, user, password, database, port="5x32"),
        "cannot be parsed",
        False,
    ),
    "unknown driver": lambda pg, driver, user, password, database: (
        pg_url(pg, "nosuchdriver", user, password, database),
        "postgresql.nosuchdriver",
        False,
    ),
    # Only a password with something to quote can be left unquoted: these run with the special login.
    "password not URL-quoted": lambda pg, driver, user, password, database: (
        pg_url(pg, driver, user, password, database, quoted=False),
        "cannot be parsed",
        False,
    ),
    "only its '@' not URL-quoted": lambda pg, driver, user, password, database: (
        pg_url(pg, driver, user, password, database).replace("%40", "@"),
        "%40",
        False,
    ),
}
WRONG = "-Wr0ngPw"
NEEDS_QUOTING = {"password not URL-quoted", "only its '@' not URL-quoted"}


#: The URLs refused before a driver is loaded (engines.parse_url: one that does not parse, an '@'
#: left in the host, a driver that does not exist, which names no driver of DRIVERS): the same
#: test for each driver, so these run once.
BEFORE_THE_DRIVER = {"unknown driver", "port is not a number", *NEEDS_QUOTING}
WRONG_URL_CASES = [
    (login, case, driver)
    for case in WRONG_URLS
    for login in ("server", "special")
    for driver in DRIVERS
    if (login == "special" or case not in NEEDS_QUOTING)
    and (case not in BEFORE_THE_DRIVER or driver == DRIVERS[0])
]


@pytest.mark.parametrize(
    ("credentials", "case", "driver"),
    WRONG_URL_CASES,
    ids=[f"{login}-{case}-{driver}" for login, case, driver in WRONG_URL_CASES],
    indirect=["credentials"],
)
def test_no_output_shows_the_password_when_the_url_is_wrong(
    make_project, pg_server: PostgresServer, credentials: tuple[str, str], case: str, driver: str
) -> None:
    user, password = credentials
    project = make_project(f"postgresql+{driver}")
    database = database_name(project)
    url, expected, shows_url = WRONG_URLS[case](pg_server, driver, user, password, database)
    assert url != pg_url(pg_server, driver, user, password, database), (
        f"{case}: {password!r} has nothing to get wrong"
    )
    env = {"DEMOBOT_DATABASE_URL": url}
    for args in (
        [ALEMBIC, "-x", "cog=core", "upgrade", "head"],
        [NXALEMBIC, "status"],
        [ALEMBIC, "--raiseerr", "-x", "cog=core", "current"],
    ):  # a traceback, still no password
        result = run(args, cwd=project.path, env=env, check=False)
        assert result.returncode != 0, f"{case}: {' '.join(args)} succeeded:\n{result.output}"
        assert_hidden(result, password, password + WRONG)
        assert_masked(result, user)
        if "--raiseerr" in args:
            assert "Traceback (most recent call last)" in result.output, f"{case}:\n{result.output}"
            line = result.output.splitlines()[-1]  # the exception, after the traceback
        else:
            [line] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
            assert "Traceback" not in result.output, f"{case}:\n{result.output}"
        assert expected in line, f"{case}: {line}"
        if shows_url:
            port = 1 if case == "nothing listens on the port" else None
            shown = masked_url(
                pg_server, driver, user, "no_such_db" if case == "wrong database" else database, port
            )
            assert shown in line, f"{case}: {line}"
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
        assert_masked(result, user)
        [line] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
        assert "sqlalchemy.url in alembic.ini" in line and "'%%'" in line, line

    # Escaped as the message says, the same URL works and still is not printed.
    project.edit("alembic.ini", f"sqlalchemy.url = {url}", f"sqlalchemy.url = {url.replace('%', '%%')}")
    masked = masked_url(pg_server, "psycopg", user, database_name(project))
    current = run([ALEMBIC, "-x", "cog=core", "current", "--verbose"], cwd=project.path, env=env)
    assert f"Current revision(s) for {masked}:" in current.stdout.splitlines(), current.output
    status = run([NXALEMBIC, "status"], cwd=project.path, env=env)
    assert f"database: {masked}" in status.stderr.splitlines(), status.output
    for result in (current, status):
        assert_hidden(result, password)
        assert_masked(result, user)


# -- MariaDB / MySQL: the same promises through aiomysql and asyncmy ------------------------------

MYSQL_DRIVERS = ["aiomysql", "asyncmy"]


@pytest.fixture(scope="module")
def mariadb_special_user(mariadb_server: MariaDBServer) -> tuple[str, str]:
    """A MariaDB login whose password holds every character that needs URL-quoting."""
    mariadb_server.sql(f"DROP USER IF EXISTS '{SPECIAL_USER}'@'%'")
    mariadb_server.sql(f"CREATE USER '{SPECIAL_USER}'@'%%' IDENTIFIED BY %s", (SPECIAL_PASSWORD,))
    mariadb_server.sql(f"GRANT ALL PRIVILEGES ON *.* TO '{SPECIAL_USER}'@'%'")
    return SPECIAL_USER, SPECIAL_PASSWORD


def mysql_url(
    server: MariaDBServer, driver: str, user: str, password: str, database: str, port: int | None = None
) -> str:
    return (
        f"mysql+{driver}://{user}:{quote(password, safe='')}@{server.host}:{port or server.port}/{database}"
    )


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
def test_on_mariadb_no_output_shows_the_password_when_commands_succeed(
    make_project, mariadb_server: MariaDBServer, mariadb_special_user: tuple[str, str], driver: str
) -> None:
    user, password = mariadb_special_user
    project = make_project(f"mysql+{driver}")
    database = database_name(project)
    url = mysql_url(mariadb_server, driver, user, password, database)
    masked = f"mysql+{driver}://{user}:{MASK}@{mariadb_server.host}:{mariadb_server.port}/{database}"
    debug_logging(project)
    env = {"DEMOBOT_DATABASE_URL": url}
    results = [
        run(
            [ALEMBIC, "-x", "cog=core", "revision", "--autogenerate", "-m", "users"],
            cwd=project.path,
            env=env,
        ),
        run([ALEMBIC, "-x", "cog=core", "upgrade", "head"], cwd=project.path, env=env),
        run([ALEMBIC, "-x", "cog=core", "current", "--verbose"], cwd=project.path, env=env),
        run([NXALEMBIC, "migrate"], cwd=project.path, env=env),
        run([NXALEMBIC, "upgrade"], cwd=project.path, env=env),
        run([NXALEMBIC, "status", "--json"], cwd=project.path, env=env),
        run([NXALEMBIC, "check"], cwd=project.path, env=env),
        run([NXALEMBIC, "downgrade", "economy"], cwd=project.path, env=env),
    ]
    assert f"database: {masked}" in results[4].stderr.splitlines(), results[4].output
    assert "Current revision(s) for mysql+" in results[2].stdout, results[2].output
    assert {"core_users", "music_songs"} <= project.db.tables()  # the commands really ran
    for result in results:
        assert_hidden(result, password)
        assert_masked(result, user)


@pytest.mark.parametrize("driver", MYSQL_DRIVERS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong password", "Access denied"),
        ("wrong database", "Unknown database"),
        ("nothing listens", "cannot connect"),
    ],
)
def test_on_mariadb_no_output_shows_the_password_when_the_url_is_wrong(
    make_project,
    mariadb_server: MariaDBServer,
    mariadb_special_user: tuple[str, str],
    driver: str,
    case: str,
    expected: str,
) -> None:
    user, password = mariadb_special_user
    project = make_project(f"mysql+{driver}")
    database = "no_such_db" if case == "wrong database" else database_name(project)
    port = 1 if case == "nothing listens" else None
    url = mysql_url(
        mariadb_server, driver, user, password + (WRONG if case == "wrong password" else ""), database, port
    )
    masked = f"mysql+{driver}://{user}:{MASK}@{mariadb_server.host}:{port or mariadb_server.port}/{database}"
    for args in ([ALEMBIC, "-x", "cog=core", "upgrade", "head"], [NXALEMBIC, "status"]):
        result = run(args, cwd=project.path, env={"DEMOBOT_DATABASE_URL": url}, check=False)
        assert result.returncode != 0, result.output
        assert "Traceback" not in result.output
        assert_hidden(result, password, password + WRONG)
        assert_masked(result, user)
        [line] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
        assert expected in line and masked in line, line
    assert project.db.tables() == set()
