"""Shared fixtures: real executables in subprocesses, real SQLite files, a real PostgreSQL and MariaDB.

The suite runs against the package as users get it: the wheel installed into the test
environment (``make test`` does that), so stock ``alembic -t nxcog`` finds the template.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
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
#: The servers (not files): PostgreSQL and MariaDB, one async driver each.
SERVER_BACKENDS = ["postgresql+asyncpg", "mysql+aiomysql"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a source checkout: the template must come from the installed wheel."""
    import alembic

    import nxalembic_templates

    installed = Path(alembic.__file__).parent / "templates" / "nxcog" / "env.py"
    from_source = Path(nxalembic_templates.__file__).resolve().parent == REPO / "nxalembic_templates"
    if not installed.is_file() or from_source:
        pytest.exit(
            "the suite tests the installed wheel; run 'make test' (it builds and installs it)", returncode=3
        )


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
    """``alembic init -t nxcog migrations`` run once with the real executable; copied per test."""
    folder = tmp_path_factory.mktemp("init")
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], cwd=folder)
    return folder


@dataclass
class BotProject:
    """A copy of the example bot with an nxcog migrations folder, in a temp directory."""

    path: Path
    db: Database

    @property
    def env(self) -> dict[str, str]:
        return {"DEMOBOT_DATABASE_URL": self.db.url}

    def alembic(self, *args: str, check: bool = True) -> Result:
        return run([ALEMBIC, *args], cwd=self.path, env=self.env, check=check)

    def cog(self, cog: str, *args: str, check: bool = True) -> Result:
        """``alembic -x cog=COG ARGS...``"""
        return self.alembic("-x", f"cog={cog}", *args, check=check)

    def nxalembic(self, *args: str, check: bool = True) -> Result:
        return run([NXALEMBIC, *args], cwd=self.path, env=self.env, check=check)

    def revisions(self, cog: str) -> list[Path]:
        folder = self.path / "migrations" / "versions" / cog
        return sorted(folder.glob("*.py")) if folder.is_dir() else []

    def edit(self, relpath: str, old: str, new: str) -> None:
        path = self.path / relpath
        text = path.read_text()
        assert old in text, f"{old!r} not in {relpath}"
        path.write_text(text.replace(old, new))

    def unload(self, extension: str) -> None:
        """Remove an extension from the bot, as a user commenting out load_extension would."""
        self.edit("demobot/main.py", f'    "{extension}",', f'    # "{extension}",')

    def write_revision(
        self, cog: str, revision: str, down: str | None, body: str, *, name: str = "hand", preamble: str = ""
    ) -> Path:
        """A hand-written revision file of *cog*: *body* is upgrade()'s code, *preamble* goes above it.

        The module imports ``os``, ``time``, ``Path``, ``sa`` and ``op`` for the body to use.
        """
        folder = self.path / "migrations" / "versions" / cog
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{revision}_{name}.py"
        path.write_text(
            "import os\nimport threading\nimport time\nfrom pathlib import Path\n\n"
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n"
            f"{preamble}\n\n"
            f"def upgrade() -> None:\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n\n\n"
            "def downgrade() -> None:\n    pass\n",
            encoding="utf-8",
        )
        return path

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


def create_table_op(name: str) -> str:
    """The ``op.create_table`` line of a one-column table, for hand-written revisions."""
    return f'op.create_table("{name}", sa.Column("id", sa.Integer(), primary_key=True))'


@pytest.fixture
def make_project(tmp_path: Path, initialised_template: Path, request: pytest.FixtureRequest) -> Any:
    """Factory: ``make_project(backend)`` gives a fresh example bot on a fresh database.

    SQLite projects share ``bot.db`` unless *db_name* differs; PostgreSQL always gets a new database.
    """
    made: list[Database] = []

    def make(backend: str = "sqlite+aiosqlite", name: str = "bot", db_name: str = "bot") -> BotProject:
        path = tmp_path / name
        shutil.copytree(initialised_template, path)
        shutil.copytree(
            EXAMPLES / "demobot", path / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
        )
        shutil.copy(EXAMPLES / "nxalembic.ini", path / "nxalembic.ini")
        db = _database_for(backend, tmp_path, request, db_name)
        made.append(db)
        return BotProject(path, db)

    yield make
    for db in made:
        db.dispose()


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
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
