"""Issue 9, configuration: version tables, nxalembic.ini values and which database is migrated.

Everything runs through the real ``alembic`` and ``nxalembic`` executables on real databases:

* no model table may be named like a version table (any cog's, loaded or not);
* ``version_table`` is validated by what it produces (one legal name per cog), every value
  of nxalembic.ini is free of control characters, inline comments are comments;
* a relative SQLite path means the same file from every working directory, and ``nxalembic``
  names the database it migrates on the first line of stderr;
* the remaining mistakes are rows of a bad-input table, as in ``test_bad_input.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from conftest import ALEMBIC, BIN, NXALEMBIC, REPO, BotProject, Database, Result, at_head, run
from test_bad_input import (  # noqa: F401  (base_project and project are fixtures used below)
    Case,
    assert_one_clear_line,
    base_project,
    check_case,
    project,
)

UPGRADE_MUSIC = ("-x", "cog=music", "upgrade", "head")


def write_ini(path: Path, *lines: str) -> None:
    """An nxalembic.ini for the example bot, plus *lines*."""
    (path / "nxalembic.ini").write_text(
        "\n".join(["[nxalembic]", "module = demobot.main", "bot = bot", *lines]) + "\n"
    )


def one_failed_line(result: Result, words: tuple[str, ...]) -> None:
    assert_one_clear_line(result.output, result.returncode, words)


# -- 1. a model table named like a version table ------------------------------------------------

ECONOMY, MUSIC_MODELS, CORE = "demobot/cogs/economy.py", "demobot/cogs/music/models.py", "demobot/models.py"


def rename_table(p: BotProject, file: str, old: str, new: str) -> None:
    p.edit(file, f'tablename="{old}"', f'tablename="{new}"')


def test_model_named_like_another_cogs_version_table_is_refused(
    make_project, backend_pg_or_sqlite: str
) -> None:
    """The issue's case: economy's model takes music's version table (upgrade used to drop its column)."""
    p = make_project(backend_pg_or_sqlite, prepared=at_head)
    music_version = p.db.versions("alembic_version_music")
    assert music_version
    rename_table(p, ECONOMY, "economy_wallets", "alembic_version_music")
    before, files = p.db.snapshot(), sorted(p.path.glob("migrations/versions/*/*.py"))
    words = (
        "model demobot.cogs.economy.Wallet",
        "cog 'economy'",
        "table 'alembic_version_music'",
        "the version table of cog 'music'",
        "another tablename",
    )
    for args in (("migrate",), ("upgrade",), ("status",), ("check",)):
        one_failed_line(p.nxalembic(*args, check=False), words)
    for args in (
        ("-x", "cog=economy", "revision", "--autogenerate", "-m", "x"),
        ("-x", "cog=economy", "upgrade", "head"),
        ("-x", "cog=music", "check"),
        ("-x", "cog=music", "current"),
    ):
        one_failed_line(p.alembic(*args, check=False), words)
    assert p.db.snapshot() == before
    assert p.db.versions("alembic_version_music") == music_version
    assert sorted(p.path.glob("migrations/versions/*/*.py")) == files


@pytest.fixture(params=["sqlite+aiosqlite", "postgresql+asyncpg"])
def backend_pg_or_sqlite(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize(
    ("ini", "file", "old", "new", "whose"),
    [
        pytest.param(
            (),
            MUSIC_MODELS,
            "music_songs",
            "alembic_version_music",
            "the version table of cog 'music'",
            id="its own cog's",
        ),
        pytest.param(
            (),
            ECONOMY,
            "economy_wallets",
            "alembic_version_trivia",
            "the version table of cog 'trivia'",
            id="a cog that is not loaded",
        ),
        pytest.param(
            (), CORE, "core_users", "alembic_version", "stock Alembic's version table", id="stock alembic"
        ),
        pytest.param(
            ("version_table = alembic.{cog}",),
            ECONOMY,
            "economy_wallets",
            "alembic.music",
            "the version table of cog 'music'",
            id="configured pattern",
        ),
        pytest.param(
            ("version_table = alembic.{cog}",),
            ECONOMY,
            "economy_wallets",
            "alembic_version_music",
            "the version table of cog 'music'",
            id="default pattern under another pattern",
        ),
    ],
)
def test_every_version_table_name_is_refused_as_a_model_table(
    make_project, ini: tuple[str, ...], file: str, old: str, new: str, whose: str
) -> None:
    if ini:
        p = make_project("sqlite+aiosqlite")
        write_ini(p.path, *ini)
        p.nxalembic("migrate")
        p.nxalembic("upgrade")
    else:  # the example's nxalembic.ini: every cog migrated and upgraded (prepared once, copied)
        p = make_project("sqlite+aiosqlite", prepared=at_head)
    rename_table(p, file, old, new)
    before = p.db.snapshot()
    words = (f"table {new!r}", whose, "another tablename")
    one_failed_line(p.nxalembic("status", check=False), words)  # its own cog's used to say "in sync"
    one_failed_line(p.cog("music", "upgrade", "head", check=False), words)
    assert p.db.snapshot() == before


# -- 3. version_table: what it produces must be one legal name per cog ---------------------------

#: 54 characters before {cog}: core (58) and music (59) fit PostgreSQL, whose limit of 63 must hold
#: the primary key name <table>_pkc too; economy (61) does not.
LONG_VERSION_TABLE = "alembic_version_" + "x" * 37 + "_{cog}"


@pytest.mark.parametrize(("backend", "allows"), [("postgresql+asyncpg", 59), ("mysql+aiomysql", 60)])
def test_version_table_longer_than_the_server_allows_is_refused_before_any_cog(
    make_project, backend: str, allows: int
) -> None:
    """PostgreSQL allows 63 characters, MariaDB 64, in a name: the primary key's <table>_pkc must fit."""
    p = make_project(backend)
    write_ini(p.path, f"version_table = {LONG_VERSION_TABLE}")
    p.nxalembic("migrate", "--offline")  # no database needed to write the revisions
    words = (
        "cog 'economy'",
        "61 characters long",
        f"{p.db.backend} allows {allows}",
        "version_table",
        "__nxalembic_cog__",
    )
    for args in (("upgrade",), ("upgrade", "--sql"), ("status",)):
        result = p.nxalembic(*args, check=False)
        assert re.fullmatch(r"(database: [^\n]*\n)?FAILED: [^\n]*\n", result.stderr), result.output
        assert all(word in result.stderr for word in words), result.output
        assert "CREATE TABLE" not in result.stdout
    one_failed_line(p.cog("economy", "upgrade", "head", check=False), words)
    one_failed_line(p.cog("economy", "upgrade", "head", "--sql", check=False), words)
    assert p.db.tables() == set()  # core and music (which fit) were not upgraded either
    p.cog("core", "upgrade", "head")  # a name that fits works
    assert "alembic_version_" + "x" * 37 + "_core" in p.db.tables()


def test_long_version_table_is_fine_on_sqlite(make_project) -> None:
    p = make_project("sqlite")
    write_ini(p.path, f"version_table = {LONG_VERSION_TABLE}")
    p.nxalembic("migrate")
    p.nxalembic("upgrade")
    assert "alembic_version_" + "x" * 37 + "_economy" in p.db.tables()


# -- 4. a line break in version_table never reaches the SQL ---------------------------------------


def test_continuation_line_in_version_table_never_reaches_sql_output(make_project) -> None:
    p = make_project("sqlite+aiosqlite")
    write_ini(p.path, "version_table = alembic_version_{cog}", "  DROP TABLE core_users; --")
    words = ("nxalembic.ini", "version_table", "line break", "on one line")
    for result in (
        p.cog("core", "upgrade", "head", "--sql", check=False),
        p.nxalembic("upgrade", "--sql", check=False),
    ):
        one_failed_line(result, words)
        assert "DROP TABLE" not in result.stdout


# -- 8. relative SQLite paths, and the database line -----------------------------------------------

RELATIVE = "sqlite+aiosqlite:///data/bot.db"


def relative_url_from(p: BotProject, source: str) -> tuple[list[str], dict[str, str]]:
    """Configure RELATIVE in *source*; return the -x arguments and environment to use."""
    env = dict(p.env)
    if source == "-x url":
        return ["-x", f"url={RELATIVE}"], env
    if source == "nxalembic.ini":
        write_ini(p.path, f"url = {RELATIVE}")
    elif source == "alembic.ini":
        p.edit("alembic.ini", "# sqlalchemy.url =", f"sqlalchemy.url = {RELATIVE}\n# was:")
    else:  # the models' ormar database, the last source
        env["DEMOBOT_DATABASE_URL"] = RELATIVE
    return [], env


@pytest.mark.parametrize("source", ["-x url", "nxalembic.ini", "alembic.ini", "ormar"])
def test_relative_sqlite_path_is_anchored_at_nxalembic_ini(make_project, tmp_path: Path, source: str) -> None:
    p = make_project("sqlite+aiosqlite")
    (p.path / "data").mkdir()
    x, env = relative_url_from(p, source)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)  # so that a wrong, cwd-relative path would also "work"
    ini = str(p.path / "alembic.ini")
    target = (p.path / "data" / "bot.db").resolve()
    expected = f"database: sqlite+aiosqlite:///{target}"

    def nx(*args: str) -> Result:
        return run([NXALEMBIC, "-c", ini, *x, *args], cwd=elsewhere, env=env)

    for args in (("migrate",), ("upgrade",), ("status",), ("check",), ("downgrade", "economy")):
        result = nx(*args)
        assert result.stderr.splitlines()[0] == expected, result.output
        assert "database:" not in result.stdout
    assert nx("-q", "upgrade").output == ""
    db = Database(f"sqlite:///{target}")
    assert {"core_users", "music_songs", "economy_wallets"} <= db.tables()
    run([ALEMBIC, "-c", ini, *x, "-x", "cog=core", "downgrade", "base"], cwd=elsewhere, env=env)
    assert "core_users" not in db.tables() and "music_songs" in db.tables()
    db.dispose()
    assert list(elsewhere.rglob("*")) == [elsewhere / "data"], (
        "a database was created in the working directory"
    )


@pytest.mark.parametrize("url", ["sqlite://", "sqlite+aiosqlite:///:memory:"])
def test_in_memory_sqlite_stays_in_memory(make_project, url: str) -> None:
    p = make_project("sqlite+aiosqlite")
    result = p.nxalembic("-x", f"url={url}", "status")
    shown = result.stderr.splitlines()[0].removeprefix("database: ")
    assert make_url(shown) == make_url(url), result.output  # rendered by SQLAlchemy: ':' may be quoted
    assert not list(p.path.glob("*.db")) and not (p.path / ":memory:").exists()


def test_database_line_masks_the_password(make_project, pg_server) -> None:
    p = make_project("postgresql+psycopg")
    result = p.nxalembic("status")
    line = result.stderr.splitlines()[0]
    assert line.startswith("database: postgresql+psycopg://nxtest:***@127.0.0.1:"), result.output
    assert pg_server.password not in result.output


# -- 13. inline comments, exactly as the README writes them: the README's first steps, run as written ---


def readme_first_steps() -> str:
    """The README's first console block after ``alembic init``, as a script for the example bot.

    The lines after ``$ `` are the commands, the others the body of the heredoc that writes
    ``nxalembic.ini`` (with inline comments, the form an earlier issue reported).
    """
    block = re.search(r"^```console\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)
    lines = block.group(1).splitlines()  # type: ignore[union-attr]
    [start] = [i for i, line in enumerate(lines) if line.startswith("$ alembic init ")]
    assert lines[start].split("#")[0].split() == ["$", "alembic", "init", "-t", "nxcog", "migrations"]
    script = "\n".join(line.removeprefix("$ ") for line in lines[start + 1 :]) + "\n"
    assert re.search(r"^module = mybot\.main +# ", script, re.M), script
    return script.replace("mybot.main", "demobot.main")


def test_readme_first_steps_run_as_written(make_project) -> None:
    """Each command of the README's first block does what it says (after ``alembic init``: the fixture)."""
    p = make_project("sqlite+aiosqlite")
    (p.path / "nxalembic.ini").unlink()
    script = readme_first_steps()
    result = p.run("sh", "-e", "-c", script, env={"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert (p.path / "nxalembic.ini").read_text().startswith("[nxalembic]\nmodule = demobot.main   ")
    assert "music: no changes" in result.output and "core: wrote" in result.output, result.output
    assert {cog: p.versions(cog) for cog in ("core", "music", "economy")} == {
        cog: [p.head(cog)] for cog in ("core", "music", "economy")
    }
    assert re.search(r"^music\s+alembic_version_music\s+(\w+)\s+\1\s+0\s+in sync$", result.stdout, re.M)
    assert result.stdout.rstrip().endswith("all cogs: models match their migrations"), result.output


def test_semicolon_comments_and_hashes_inside_values(make_project) -> None:
    p = make_project("sqlite+aiosqlite")
    write_ini(
        p.path,
        "url = sqlite+aiosqlite:///bot#1.db   ; a '#' inside a value is kept",
        "core_cog = shared ; the models outside extensions",
    )
    p.nxalembic("migrate")
    p.nxalembic("upgrade")
    assert "core_users" in Database(f"sqlite:///{p.path / 'bot#1.db'}").tables()
    assert len(list((p.path / "migrations/versions/shared").glob("*.py"))) == 1


# -- bad input: one line naming the file or key and the fix, database unchanged ----------------------


def ini_with(*lines: str):
    return lambda p: write_ini(p.path, *lines)


def ini_bytes(data: bytes):
    return lambda p: (p.path / "nxalembic.ini").write_bytes(data)


def model_named_like_version_table(p: BotProject) -> None:
    rename_table(p, ECONOMY, "economy_wallets", "alembic_version_music")


CASES = [
    Case(
        "version_table with doubled braces",
        ini_with("version_table = alembic_version_{{cog}}"),
        UPGRADE_MUSIC,
        (
            "nxalembic.ini",
            "version_table = 'alembic_version_{{cog}}'",
            "'alembic_version_{cog}' for every cog",
            "single braces",
        ),
    ),
    Case(
        "version_table with a format spec",
        ini_with("version_table = v_{cog:.1}"),
        UPGRADE_MUSIC,
        ("version_table = 'v_{cog:.1}'", "no other placeholder or format spec"),
    ),
    Case(
        "version_table with a quote and a semicolon",
        ini_with('version_table = v_{cog}";drop'),
        UPGRADE_MUSIC,
        ("version_table", "not a plain table name", "letters, digits, '_' and '.'"),
    ),
    Case(
        "version_table with a space",
        ini_with("version_table = alembic version {cog}"),
        UPGRADE_MUSIC,
        ("version_table", "'alembic version first_cog'", "not a plain table name"),
    ),
    Case(
        "version_table with an unclosed brace",
        ini_with("version_table = alembic_version_{cog"),
        UPGRADE_MUSIC,
        ("nxalembic.ini", "version_table = 'alembic_version_{cog'", "not a valid pattern", "both braces"),
    ),
    Case(
        "version_table on a continuation line",
        ini_with("version_table = alembic_version_{cog}", "  x"),
        UPGRADE_MUSIC,
        ("nxalembic.ini", "version_table", "line break", "on one line"),
    ),
    Case(
        "control character in url",
        ini_with("url = sqlite:///bot.db\x07"),
        UPGRADE_MUSIC,
        ("nxalembic.ini", "the value of url", "control character '\\x07'"),
    ),
    Case(
        "no section header",
        ini_bytes(b"module = demobot.main\nbot = bot\n"),
        UPGRADE_MUSIC,
        ("nxalembic.ini does not start with a section header", "[nxalembic]"),
    ),
    Case(
        "nxalembic.ini not UTF-8",
        ini_bytes("[nxalembic]\nmodule = demobot.main  # café\n".encode("latin-1")),
        UPGRADE_MUSIC,
        ("nxalembic.ini is not UTF-8", "0xe9", "save it with UTF-8"),
    ),
    Case(
        "version_location = {cog_dir}",
        ini_with("version_location = {cog_dir}"),
        UPGRADE_MUSIC,
        (
            "version_location = {cog_dir}",
            "the source folder of cog",
            "load those files as revisions",
            "{cog_dir}/migrations",
        ),
    ),
    Case(
        "version_location above a cog's folder",
        ini_with("version_location = {cog_dir}/.."),
        UPGRADE_MUSIC,
        ("version_location = {cog_dir}/..", "contains the sources of cog", "{cog_dir}/migrations"),
    ),
    Case(
        "version_location = the scripts folder",
        ini_with("version_location = {script_location}/{cog}/.."),
        UPGRADE_MUSIC,
        ("revisions of cog", "the scripts folder", "env.py", "a folder of their own"),
    ),
    Case(
        "empty -x url=",
        None,
        ("-x", "cog=music", "-x", "url=", "upgrade", "head"),
        ("-x url= is empty", "give a database URL", "leave -x url= out"),
        ("-x", "url=", "upgrade"),
    ),
    Case(
        "empty -x url= with offline autogenerate",
        None,
        ("-x", "cog=music", "-x", "url=", "-x", "offline=true", "revision", "--autogenerate", "-m", "x"),
        ("-x url= is empty",),
        ("-x", "url=", "migrate", "--offline"),
    ),
    Case(
        "model table named like a version table",
        model_named_like_version_table,
        UPGRADE_MUSIC,
        (
            "model demobot.cogs.economy.Wallet",
            "cog 'economy'",
            "'alembic_version_music'",
            "version table of cog 'music'",
            "another tablename",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_config_mistakes_give_one_line_and_change_nothing(project: BotProject, case: Case) -> None:
    check_case(project, case)
