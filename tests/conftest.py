"""Shared fixtures: real executables in subprocesses, real SQLite files, a real PostgreSQL and MariaDB.

The suite runs against the installed package: an editable install of this checkout
(``make install``), where one test runs on its own, or the wheel, as users get it
(``make install-wheel``; ``make test`` does that).  Only the wheel registers the ``nxcog``
templates with stock Alembic: the tests of that registration are marked ``wheel`` and skip
in an editable install, and ``make test`` (``NXALEMBIC_TEST_WHEEL=1``) refuses to start without
an up-to-date wheel instead, so that they never skip there.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mariadb_server import MariaDBServer
from postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
BIN = Path(sys.executable).parent
ALEMBIC = str(BIN / "alembic")
NXALEMBIC = str(BIN / "nxalembic")

SQLITE_BACKENDS = ["sqlite", "sqlite+aiosqlite"]
POSTGRES_BACKENDS = ["postgresql+asyncpg", "postgresql+psycopg"]
#: The full matrix runs MariaDB through one driver, aiomysql (the one ormar's docs use; the CI
#: budget has room for one): asyncmy and the sync pymysql are covered by targeted tests.
MYSQL_BACKENDS = ["mysql+aiomysql"]
ALL_BACKENDS = SQLITE_BACKENDS + POSTGRES_BACKENDS + MYSQL_BACKENDS
#: The ``backend`` fixture's default: one driver per database, the one the example bot and the
#: docs use (aiosqlite; asyncpg and aiomysql, the async route through ``run_sync``).  A test whose
#: behaviour differs by driver (the sync/async bridge, URL and password handling, locking through
#: the driver's connection) is marked ``every_driver`` and runs on ``ALL_BACKENDS``; the sync
#: drivers (sqlite, psycopg, pymysql) are covered there and by tests that name them.
DEFAULT_BACKENDS = ["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"]
#: The servers (not files): PostgreSQL and MariaDB, one async driver each.
SERVER_BACKENDS = ["postgresql+asyncpg", "mysql+aiomysql"]

#: The reason the ``wheel`` tests give when they skip.
NEEDS_THE_WHEEL = "needs the wheel: run make install-wheel (this is an editable install of the source tree)"
#: Where a standard wheel puts each template folder of the package (see hatch_build.py).
WHEEL_TEMPLATES = {"percog": "nxcog", "percog_pyproject": "nxcog_pyproject"}


@functools.cache
def installed_package() -> Path:
    """The folder ``import nxalembic_templates`` loads the package from."""
    import nxalembic_templates

    return Path(nxalembic_templates.__file__).resolve().parent


@functools.cache
def wheel_installed() -> bool:
    """Whether the package comes from an installed wheel (not this source tree, as in ``make install``)."""
    import alembic

    nxcog = Path(alembic.__file__).parent / "templates" / "nxcog" / "env.py"
    return installed_package() != REPO / "nxalembic_templates" and nxcog.is_file()


def _files(root: Path) -> dict[str, Path]:
    return {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def stale_wheel_files() -> list[str]:
    """The files where the installed wheel differs from this checkout (package and templates)."""
    import alembic

    pairs = [(REPO / "nxalembic_templates", installed_package(), "nxalembic_templates")]
    for folder, template in WHEEL_TEMPLATES.items():
        installed = Path(alembic.__file__).parent / "templates" / template
        pairs.append((REPO / "nxalembic_templates" / folder, installed, f"alembic/templates/{template}"))
    stale = []
    for source, installed, name in pairs:
        ours, theirs = _files(source), _files(installed)
        stale += [
            f"{name}/{relpath}"
            for relpath in sorted(ours.keys() | theirs.keys())
            if relpath not in ours
            or relpath not in theirs
            or ours[relpath].read_bytes() != theirs[relpath].read_bytes()
        ]
    return stale


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wheel: tests the templates the wheel registers with stock Alembic (alembic list_templates, "
        f"alembic init -t nxcog); skipped in an editable install ({NEEDS_THE_WHEEL})",
    )
    config.addinivalue_line(
        "markers",
        "every_driver: run on every driver of ALL_BACKENDS (sqlite, sqlite+aiosqlite, postgresql+asyncpg,"
        " postgresql+psycopg, mysql+aiomysql), not one driver per database (DEFAULT_BACKENDS)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse an installed wheel older than the source; with NXALEMBIC_TEST_WHEEL=1, refuse any but the wheel.

    ``make test`` and the matrix and library legs set NXALEMBIC_TEST_WHEEL=1: there the
    ``wheel`` tests must run, never skip.
    """
    if wheel_installed():
        stale = stale_wheel_files()
        if stale:
            shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
            pytest.exit(
                f"the installed wheel is older than the source (it differs in {shown}): "
                "run 'make install-wheel' (or 'make install' for an editable install)",
                returncode=3,
            )
    elif os.environ.get("NXALEMBIC_TEST_WHEEL") == "1":
        pytest.exit(
            f"NXALEMBIC_TEST_WHEEL=1: the suite must test the installed wheel, but nxalembic_templates is "
            f"imported from {installed_package()}; run 'make test' (it builds and installs the wheel)",
            returncode=3,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not wheel_installed():
        skip = pytest.mark.skip(reason=NEEDS_THE_WHEEL)
        for item in items:
            if item.get_closest_marker("wheel"):
                item.add_marker(skip)


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout: float = 300
) -> Result:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    result = Result(list(args), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n{result.output}")
    return result


def sync_url(url: str) -> str:
    """The same database through a sync driver, for inspecting it from the test process."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}[
        parsed.get_backend_name()
    ]
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _ansi_quotes(dbapi_connection: Any, _record: Any) -> None:
    """MariaDB: the tests' own SQL quotes names with "double quotes", as on PostgreSQL and SQLite.

    Only the test's inspection connections get ``ANSI_QUOTES`` (SQLAlchemy notices it and quotes
    accordingly); the package's own connections see the server as users have it.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
    cursor.close()


@dataclass
class Database:
    """A real database the test owns, with schema inspection helpers."""

    url: str
    _engine: sa.Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(sync_url(self.url), poolclass=sa.pool.NullPool)
            if self.backend == "mysql":
                sa.event.listen(self._engine, "connect", _ansi_quotes, insert=True)
        return self._engine

    @property
    def backend(self) -> str:
        return make_url(self.url).get_backend_name()

    def quote(self, name: str) -> str:
        """*name* quoted for this database's SQL (MariaDB quotes with backticks)."""
        return self.engine.dialect.identifier_preparer.quote_identifier(name)

    def tables(self) -> set[str]:
        return set(sa.inspect(self.engine).get_table_names())

    def versions(self, table: str) -> list[str]:
        if table not in self.tables():
            return []
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {self.quote(table)}")))

    def execute(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql))

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()

    def snapshot(self, tables: set[str] | None = None) -> dict[str, Any]:
        """Columns, indexes, foreign keys and version rows of *tables* (default: all)."""
        inspector = sa.inspect(self.engine)
        names = sorted(tables if tables is not None else inspector.get_table_names())
        snap: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for name in names:
                if not inspector.has_table(name):
                    snap[name] = None
                    continue
                snap[name] = {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
                    ],
                    "indexes": sorted(
                        (i["name"] or "", tuple(i["column_names"])) for i in inspector.get_indexes(name)
                    ),
                    "fks": sorted(
                        (tuple(f["constrained_columns"]), f["referred_table"])
                        for f in inspector.get_foreign_keys(name)
                    ),
                    "rows": sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {self.quote(name)}")))),
                }
        return snap

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session; failing to start it fails the PostgreSQL tests."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """One MariaDB server for the session; failing to start it fails (errors) the MariaDB tests."""
    with MariaDBServer() as server:
        yield server


def _database_for(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, db_name: str = "bot"
) -> Database:
    if backend.startswith("sqlite"):
        return Database(f"{backend}:///{tmp_path / (db_name + '.db')}")
    server: PostgresServer | MariaDBServer = request.getfixturevalue(
        "mariadb_server" if backend.startswith("mysql") else "pg_server"
    )
    name = "t_" + uuid.uuid4().hex[:12]
    server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    return Database(server.url(name, driver=backend.split("+", 1)[1]))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def initialised_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``alembic init -t nxcog migrations`` run once with the real executable; copied per test.

    An editable install registers no ``nxcog`` with stock Alembic: there ``nxalembic init``
    writes the same files from the package's own template (and an nxalembic.ini, removed).
    """
    folder = tmp_path_factory.mktemp("init")
    if wheel_installed():
        run([ALEMBIC, "init", "-t", "nxcog", "migrations"], cwd=folder)
    else:
        run([NXALEMBIC, "init", "migrations"], cwd=folder)
        (folder / "nxalembic.ini").unlink()
    return folder


#: What a hand-written revision file imports, for its body and preamble to use.
REVISION_IMPORTS = (
    "import os\nimport threading\nimport time\nfrom pathlib import Path\n\n"
    "import sqlalchemy as sa\nfrom alembic import op\n"
)


def write_revision(
    folder: Path,
    revision: str,
    down: str | tuple[str, ...] | None,
    body: str = "pass",
    *,
    name: str = "hand",
    filename: str | None = None,
    preamble: str = "",
    depends_on: str | None = None,
) -> Path:
    """A hand-written revision file in *folder*, as a user would write one; returns its path.

    The file is ``{revision}_{name}.py`` unless *filename* names it.  Its ids are plain literals,
    each assigned once (what the start-up fast path reads with ``ast``); *preamble* goes below
    them, *body* is upgrade()'s code.  The module imports ``os``, ``threading``, ``time``,
    ``Path``, ``sa`` and ``op`` for them to use.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (filename or f"{revision}_{name}.py")
    path.write_text(
        f"{REVISION_IMPORTS}\n"
        f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
        f"depends_on = {depends_on!r}\n\n"
        f"{preamble}\n\n"
        f"def upgrade() -> None:\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n\n\n"
        "def downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    return path


@dataclass
class BotProject:
    """A bot in a temp directory beside an nxcog migrations folder, and its database.

    By default a copy of the example bot (``make_project``).  Other bots use the same class with
    their own *url_variable* (the environment variable their ``db.py`` reads the URL from),
    *extra_env*, and, for a bot with nxalembic.ini's ``version_location`` / ``version_table``
    set, the same two templates (``{cog}`` stands for the cog's name).
    """

    path: Path
    db: Database
    url_variable: str = "DEMOBOT_DATABASE_URL"
    extra_env: dict[str, str] = field(default_factory=dict)
    version_location: str = "migrations/versions/{cog}"
    version_table: str = "alembic_version_{cog}"

    @property
    def env(self) -> dict[str, str]:
        return {self.url_variable: self.db.url, **self.extra_env}

    def on(self, db: Database) -> BotProject:
        """The same project on another database."""
        return dataclasses.replace(self, db=db)

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Result:
        """Any command in the project's folder, with its environment (and *env*)."""
        return run(list(args), cwd=self.path, env={**self.env, **(env or {})}, check=check)

    def alembic(self, *args: str, check: bool = True) -> Result:
        return self.run(ALEMBIC, *args, check=check)

    def cog(self, cog: str, *args: str, check: bool = True) -> Result:
        """``alembic -x cog=COG ARGS...``"""
        return self.alembic("-x", f"cog={cog}", *args, check=check)

    def nxalembic(self, *args: str, check: bool = True) -> Result:
        return self.run(NXALEMBIC, *args, check=check)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> Spawned:
        """Start a command in the project's folder without waiting; its output goes to ``NAME.log`` there."""
        out = self.path / f"{name}.log"
        with out.open("w") as handle:
            process = subprocess.Popen(
                args,
                cwd=self.path,
                env={**os.environ, **self.env, **(env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return Spawned(process, out)

    def revisions_folder(self, cog: str) -> Path:
        """Where *cog*'s revision files are."""
        return self.path / self.version_location.format(cog=cog)

    def revisions(self, cog: str) -> list[Path]:
        folder = self.revisions_folder(cog)
        return sorted(folder.glob("*.py")) if folder.is_dir() else []

    def head(self, cog: str) -> str:
        """The revision id of *cog*'s one revision file (named ``{revision}_{slug}.py``)."""
        [revision] = self.revisions(cog)
        return revision.name.split("_", 1)[0]

    def versions(self, cog: str) -> list[str]:
        """The rows of *cog*'s version table (none when the table does not exist)."""
        return self.db.versions(self.version_table.format(cog=cog))

    def write_revision(
        self, cog: str, revision: str, down: str | tuple[str, ...] | None, body: str = "pass", **how: Any
    ) -> Path:
        """:func:`write_revision` in *cog*'s revisions folder."""
        return write_revision(self.revisions_folder(cog), revision, down, body, **how)

    def write(self, relpath: str, text: str) -> Path:
        """Write a file of the project (its folders made as needed)."""
        path = self.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def edit(self, relpath: str, old: str, new: str) -> None:
        path = self.path / relpath
        text = path.read_text()
        assert old in text, f"{old!r} not in {relpath}"
        path.write_text(text.replace(old, new))

    def unload(self, extension: str) -> None:
        """Remove an extension from the bot, as a user commenting out load_extension would."""
        self.edit("demobot/main.py", f'    "{extension}",', f'    # "{extension}",')

    def revision_ops(self, path: Path) -> str:
        """The body of upgrade() in a revision file."""
        text = path.read_text()
        return re.search(r"def upgrade\(\) -> None:\n(.*?)\ndef downgrade", text, re.S).group(1)  # type: ignore[union-attr]


def copy_example_bot(path: Path, initialised_template: Path) -> BotProject:
    """The example bot and its nxalembic.ini in *path*, beside an nxcog migrations folder, on async SQLite."""
    shutil.copytree(initialised_template, path)
    shutil.copytree(
        EXAMPLES / "demobot", path / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
    )
    shutil.copy(EXAMPLES / "nxalembic.ini", path / "nxalembic.ini")
    return BotProject(path, Database(f"sqlite+aiosqlite:///{path / 'bot.db'}"))


def run_demo(tmp_path: Path, *args: str) -> str:
    """``examples/demo.py ARGS`` (what ``make demo`` runs) in a copy of examples/; its output.

    It must succeed without a traceback or a ``FAILED`` line and remove its temporary folder.
    """
    copy = tmp_path / "repo"
    shutil.copytree(EXAMPLES, copy / "examples", ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.endswith("BOT_DATABASE_URL")}
    proc = subprocess.run(
        [sys.executable, "examples/demo.py", *args],
        cwd=copy,
        env={**env, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Traceback" not in out + proc.stderr and "FAILED" not in out
    assert list(temp.iterdir()) == [], "the demo must remove its temporary folder"
    return out


@dataclass
class Spawned:
    """A process a test started; its output goes to a file, so that it can never block on a pipe."""

    process: subprocess.Popen
    out: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.out.read_text(errors="replace")


#: ``alembic ARGS`` for each JSON list of ARGS in argv, in turn, each in a child forked from this
#: process once it has imported the libraries (Alembic, SQLAlchemy, ormar, nextcord: most of what
#: a start of the executable costs); if argv[1] is "stop", until one fails.  ``["mv", GLOB, PATH]``
#: moves the one file GLOB matches.  The child does what the ``alembic`` executable does
#: (``alembic.config.main``): it reads the configuration, imports the package and the bot and runs
#: env.py, and nothing of one command reaches the next.  Prints each exit code and output as JSON.
_FORKED_ALEMBIC = """
import glob, json, os, sys, tempfile, traceback

import alembic.autogenerate, alembic.config, nextcord, ormar, sqlalchemy  # noqa: F401

results = []
for args in map(json.loads, sys.argv[2:]):
    if args[0] == "mv":
        [source] = glob.glob(args[1])
        os.rename(source, args[2])
        results.append([0, ""])
        continue
    with tempfile.TemporaryFile() as out:
        sys.stdout.flush(), sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.dup2(out.fileno(), 1), os.dup2(out.fileno(), 2)
            code, sys.argv = 1, ["alembic", *args]
            try:
                alembic.config.main(argv=args, prog="alembic")
                code = 0
            except SystemExit as exit:
                code = 0 if exit.code in (None, 0) else 1
            except BaseException:  # the executable prints the traceback and exits 1
                traceback.print_exc()
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(code)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out.seek(0)
        results.append([status, out.read().decode(errors="replace")])
        if status and sys.argv[1] == "stop":
            break
print(json.dumps(results))
"""


def alembic_forked(project: BotProject, *commands: list[str], check: bool = True) -> list[Result]:
    """``alembic ARGS`` for each of *commands* in turn, in the project's folder, in one interpreter
    start (see _FORKED_ALEMBIC): for many stock commands in a row.  With *check*, stops at the first
    that fails and raises AssertionError, as :func:`run` does; without, runs them all."""
    how = "stop" if check else "all"
    driver = project.run(sys.executable, "-c", _FORKED_ALEMBIC, how, *map(json.dumps, commands))
    results = [
        Result(["alembic", *args], code, output, "")
        for args, (code, output) in zip(commands, json.loads(driver.stdout.splitlines()[-1]), strict=False)
    ]
    if check and results[-1].returncode != 0:
        raise AssertionError(
            f"{' '.join(results[-1].args)} exited {results[-1].returncode}\n{results[-1].output}"
        )
    return results


def create_table_op(name: str) -> str:
    """The ``op.create_table`` line of a one-column table, for hand-written revisions."""
    return f'op.create_table("{name}", sa.Column("id", sa.Integer(), primary_key=True))'


def stock_at_head(project: BotProject) -> None:
    """A prepared project: every cog's first revision written and applied by stock Alembic, cog by
    cog in dependency order (``alembic -x cog=NAME revision --autogenerate -m "create NAME"``,
    then ``upgrade head``: core, music, economy)."""
    for cog in ("core", "music", "economy"):
        project.cog(cog, "revision", "--autogenerate", "-m", f"create {cog}")
        project.cog(cog, "upgrade", "head")


def migrated(project: BotProject) -> None:
    """A prepared project (``make_project(..., prepared=migrated)``): every cog's first revision
    written by ``nxalembic migrate``; the database stays empty."""
    project.nxalembic("migrate")


def at_head(project: BotProject) -> None:
    """A prepared project (``make_project(..., prepared=at_head)``): every cog's first revision
    written by ``nxalembic migrate`` and applied by ``nxalembic upgrade``."""
    project.nxalembic("migrate")
    project.nxalembic("upgrade")


@dataclass
class Prepared:
    """A project folder and its database as a build left them, built once per session."""

    path: Path
    db: Database


def _clone_database(
    source: Database, backend: str, tmp_path: Path, request: pytest.FixtureRequest, db_name: str
) -> Database:
    """A new database of the test's, with *source*'s schema, data and version rows (a copy)."""
    if backend.startswith("sqlite"):
        target = tmp_path / (db_name + ".db")
        source_file = Path(make_url(source.url).database or "")
        if source_file.is_file():  # a build that never connected leaves no file
            shutil.copy(source_file, target)
        return Database(f"{backend}:///{target}")
    server: PostgresServer | MariaDBServer = request.getfixturevalue(
        "mariadb_server" if backend.startswith("mysql") else "pg_server"
    )
    name = "t_" + uuid.uuid4().hex[:12]
    source_name = str(make_url(source.url).database)
    if isinstance(server, PostgresServer):
        server.psql(f'CREATE DATABASE "{name}" TEMPLATE "{source_name}"')
        request.addfinalizer(lambda: server.drop_database(name))
        return Database(server.url(name, driver=backend.split("+", 1)[1]))  # type: ignore[arg-type]
    server.create_database(name)
    request.addfinalizer(lambda: server.drop_database(name))
    clone = Database(server.url(name, driver=backend.split("+", 1)[1]))  # type: ignore[arg-type]
    # MariaDB has no template databases: each table as SHOW CREATE TABLE gives it (columns, keys,
    # foreign keys, comment), then its rows.
    with source.engine.connect() as src, clone.engine.begin() as dst:
        dst.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        for table in sa.inspect(src).get_table_names():
            quoted = source.quote(table)
            create = src.exec_driver_sql(f"SHOW CREATE TABLE {quoted}").one()[1]
            dst.exec_driver_sql(create)
            dst.exec_driver_sql(f"INSERT INTO {quoted} SELECT * FROM `{source_name}`.{quoted}")
        dst.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
    source.dispose()
    return clone


@pytest.fixture(scope="session")
def prepared_project(
    tmp_path_factory: pytest.TempPathFactory, initialised_template: Path
) -> Iterator[Callable[[Callable[[BotProject], object], str, pytest.FixtureRequest], Prepared]]:
    """``prepared_project(build, backend, request)``: what *build* made of a fresh example bot on a
    fresh database of *backend*'s kind, built on first use and kept for the session (per xdist
    worker).  ``make_project(..., prepared=build)`` copies it.  One build per database kind, run
    through that kind's driver in DEFAULT_BACKENDS: the files and the database a build leaves do
    not depend on the driver that made them, and the test's own commands use the test's driver.
    """
    built: dict[tuple[str, str], Prepared] = {}
    drops: list[Callable[[], None]] = []

    def get(build: Callable[[BotProject], object], backend: str, request: pytest.FixtureRequest) -> Prepared:
        kind = make_url(f"{backend}://").get_backend_name()
        key = (f"{build.__module__}.{build.__qualname__}", kind)
        if key not in built:
            [backend] = [b for b in DEFAULT_BACKENDS if b.split("+")[0] == kind]
            folder = tmp_path_factory.mktemp("prepared")
            project = copy_example_bot(folder / "bot", initialised_template)
            if backend.startswith("sqlite"):
                project.db = Database(f"{backend}:///{folder / 'bot.db'}")
            else:
                server: PostgresServer | MariaDBServer = request.getfixturevalue(
                    "mariadb_server" if backend.startswith("mysql") else "pg_server"
                )
                name = "prepared_" + uuid.uuid4().hex[:12]
                server.create_database(name)
                drops.append(lambda: server.drop_database(name))
                project.db = Database(server.url(name, driver=backend.split("+", 1)[1]))  # type: ignore[arg-type]
            build(project)
            project.db.dispose()
            built[key] = Prepared(project.path, project.db)
        return built[key]

    yield get
    for prepared in built.values():
        prepared.db.dispose()
    for drop in drops:
        try:
            drop()
        except Exception:  # the server stopped first: its data went with it
            pass


@pytest.fixture
def make_project(
    tmp_path: Path,
    initialised_template: Path,
    prepared_project: Callable[[Callable[[BotProject], object], str, pytest.FixtureRequest], Prepared],
    request: pytest.FixtureRequest,
) -> Any:
    """Factory: ``make_project(backend)`` gives a fresh example bot on a fresh database.

    SQLite projects share ``bot.db`` unless *db_name* differs; PostgreSQL always gets a new database.
    ``prepared=build`` (``migrated``, ``at_head``, or any function of a ``BotProject``) starts from
    what *build* made of a fresh project instead: the build runs once per session and backend,
    and each test gets a copy of its folder and of its database (a file copy, a PostgreSQL
    template copy, a MariaDB table-by-table copy).  For a test's set-up, never for the commands
    the test is about.
    """
    made: list[Database] = []

    def make(
        backend: str = "sqlite+aiosqlite",
        name: str = "bot",
        db_name: str = "bot",
        prepared: Callable[[BotProject], object] | None = None,
    ) -> BotProject:
        path = tmp_path / name
        if prepared is None:
            shutil.copytree(initialised_template, path)
            shutil.copytree(
                EXAMPLES / "demobot", path / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
            )
            shutil.copy(EXAMPLES / "nxalembic.ini", path / "nxalembic.ini")
            db = _database_for(backend, tmp_path, request, db_name)
        else:
            source = prepared_project(prepared, backend, request)
            shutil.copytree(source.path, path, ignore=shutil.ignore_patterns("__pycache__"))
            db = _clone_database(source.db, backend, tmp_path, request, db_name)
        made.append(db)
        return BotProject(path, db)

    yield make
    for db in made:
        db.dispose()


def _parametrized_by_mark(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test using the ``backend`` fixture runs on DEFAULT_BACKENDS, or ALL_BACKENDS when marked
    ``every_driver``; a test that parametrizes ``backend`` itself keeps its own list."""
    if "backend" not in metafunc.fixturenames or _parametrized_by_mark(metafunc, "backend"):
        return
    every = metafunc.definition.get_closest_marker("every_driver") is not None
    metafunc.parametrize("backend", ALL_BACKENDS if every else DEFAULT_BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend URL prefix (``dialect+driver``) of the test's database: see pytest_generate_tests."""
    return str(request.param)


@pytest.fixture
def project(make_project: Any, backend: str) -> BotProject:
    return make_project(backend)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working folder outside the project (the start-up API finds it from the bot's code)."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder
