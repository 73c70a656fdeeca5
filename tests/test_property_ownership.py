"""Property: no autogenerate for any cog, with any flags, touches a table that cog does not own.

Random bots (cogs, tables, cross-cog foreign keys), random loaded subsets, random removed
models and added columns, random hand-made tables, random flags.  Runs Alembic's command API
in-process with exactly the inputs stock ``alembic -x cog=NAME revision --autogenerate``
builds (``config.cmd_opts``), on real databases: a sync SQLite file, an async SQLite file
and PostgreSQL (the suite's throwaway server).

``make test`` runs a short profile (20 cases per backend); ``make test-long`` runs thousands
(``NXALEMBIC_PROPERTY_EXAMPLES``, with a fixed ``--hypothesis-seed`` so a failure reproduces).
Each case gets a fresh SQLite file, or an emptied PostgreSQL ``public`` schema, and its own
temp folder; what one case leaves in the process (the imported bot packages, their folder on
``sys.path``) is removed after it, so case 3,334 costs what case 1 did.
"""

from __future__ import annotations

import gc
import itertools
import os
import re
import shutil
import sys
import time
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nxalembic_templates import TEMPLATE_DIR

#: Cases per backend; ``make test-long`` raises it (3,334 per backend by default: 10,002 in all).
EXAMPLES = int(os.environ.get("NXALEMBIC_PROPERTY_EXAMPLES", "20"))
#: One line per finished backend (cases, wall time), appended here when set (``make test-long``).
REPORT = os.environ.get("NXALEMBIC_PROPERTY_REPORT")

BACKENDS = {
    "sqlite_sync": "sqlite",
    "sqlite_async": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "mariadb": "mysql+aiomysql",
}
REPO = Path(__file__).resolve().parents[1]

_counter = itertools.count()
_forgotten = itertools.count(1)


@dataclass(frozen=True)
class World:
    tables: tuple[int, ...]  # number of tables per cog
    fks: frozenset[tuple[int, int]]  # (cog, table) -> references table 0 of an earlier cog
    loaded: frozenset[int]
    removed: frozenset[tuple[int, int]]  # tables (never table 0) whose model is removed later
    added: frozenset[tuple[int, int]]  # tables that get a new nullable column later
    foreign: int  # hand-made tables
    allow_drops: bool
    offline: bool


@st.composite
def worlds(draw: st.DrawFn) -> World:
    tables = tuple(draw(st.lists(st.integers(1, 3), min_size=2, max_size=4)))
    cells = [(c, t) for c, n in enumerate(tables) for t in range(n)]
    fks = draw(st.frozensets(st.sampled_from([(c, t) for c, t in cells if c > 0])))
    loaded = draw(st.frozensets(st.integers(0, len(tables) - 1), min_size=1))
    removable = [(c, t) for c, t in cells if t > 0]
    removed = draw(st.frozensets(st.sampled_from(removable))) if removable else frozenset()
    added = draw(st.frozensets(st.sampled_from(cells)))
    return World(
        tables, fks, loaded, removed, added, draw(st.integers(0, 3)), draw(st.booleans()), draw(st.booleans())
    )


def table_name(c: int, t: int) -> str:
    return f"c{c}_t{t}"


def write_bot(root: Path, package: str, world: World, phase: int) -> None:
    pkg = root / package
    (pkg / "cogs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cogs" / "__init__.py").write_text("")
    (pkg / "db.py").write_text(  # the URL migrations use is the -x url= of each command
        "import ormar, sqlalchemy\n"
        f"base = ormar.OrmarConfig(database=ormar.DatabaseConnection('sqlite:///{root / 'unused.db'}'),"
        " metadata=sqlalchemy.MetaData())\n"
    )
    for c, count in enumerate(world.tables):
        lines = ["import ormar", "from typing import Optional", "from ..db import base"]
        lines += [f"from .c{c} import T0 as C{c}T0" for c in sorted({c2 for c2 in range(c)})]
        for t in range(count):
            if phase == 2 and (c, t) in world.removed:
                continue
            lines += [
                f"class T{t}(ormar.Model):",
                f"    ormar_config = base.copy(tablename={table_name(c, t)!r})",
                "    id: int = ormar.Integer(primary_key=True)",
                "    label: Optional[str] = ormar.String(max_length=40, nullable=True)",
            ]
            if (c, t) in world.fks:
                target = max(range(c))  # the nearest earlier cog
                lines.append(
                    f"    ref: Optional[C{target}T0] = ormar.ForeignKey(C{target}T0, nullable=True,"
                    f" related_name='c{c}_t{t}_refs')"
                )
            if phase == 2 and (c, t) in world.added:
                lines.append("    extra: Optional[int] = ormar.Integer(nullable=True)")
        lines += ["def setup(bot):", "    pass"]
        (pkg / "cogs" / f"c{c}.py").write_text("\n".join(lines) + "\n")
    loaded = range(len(world.tables)) if phase == 1 else sorted(world.loaded)
    (pkg / "main.py").write_text(
        "import nextcord\nfrom nextcord.ext import commands\n"
        "bot = commands.Bot(intents=nextcord.Intents.none())\n"
        + "".join(f"bot.load_extension('{package}.cogs.c{c}')\n" for c in loaded)
    )


def stock_config(root: Path, package: str, x: list[str], cmd: object, autogenerate: bool = False) -> Config:
    """The Config stock ``alembic -x ... <cmd>`` builds, for the bot *package*."""
    (root / "nxalembic.ini").write_text(f"[nxalembic]\nmodule = {package}.main\nbot = bot\n")
    config = Config(str(root / "alembic.ini"))
    config.cmd_opts = Namespace(x=x, cmd=(cmd, [], []), autogenerate=autogenerate, quiet=True)
    config.attributes["configure_logger"] = False
    return config


def revision_files(root: Path) -> set[Path]:
    return set((root / "migrations" / "versions").rglob("*.py"))


def autogenerate(root: Path, package: str, x: list[str], message: str) -> list[Path]:
    """``alembic -x ... revision --autogenerate -m MESSAGE``; the revision files it wrote.

    What Alembic returns and what appeared on disk must agree: a file written but not
    reported (or reported but not written) is a failure too.
    """
    before = revision_files(root)
    config = stock_config(root, package, x, command.revision, autogenerate=True)
    returned = command.revision(config, message=message, autogenerate=True)
    scripts = [s for s in (returned if isinstance(returned, list) else [returned]) if s is not None]
    written = revision_files(root) - before
    assert {Path(s.path).resolve() for s in scripts} == {p.resolve() for p in written}, (
        f"{' '.join(x)}: Alembic returned {[s.path for s in scripts]}, the disk gained {sorted(written)}"
    )
    return sorted(written)


def touched_tables(script_path: Path, universe: set[str]) -> set[str]:
    quoted = set(re.findall(r"'([A-Za-z0-9_]+)'", script_path.read_text()))
    return quoted & universe


class CaseDatabase:
    """A fresh, empty database for every case of one backend."""

    def __init__(self, backend: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.engine: sa.Engine | None = None
        if backend.startswith("postgresql"):
            server = request.getfixturevalue("pg_server")
            name = f"property_{next(_counter)}_{os.getpid()}"
            server.create_database(name)
            request.addfinalizer(lambda: server.drop_database(name))
            self.url = server.url(name, driver="psycopg")
            self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            request.addfinalizer(self.engine.dispose)
        elif backend.startswith("mysql"):
            server = request.getfixturevalue("mariadb_server")
            self.database = f"property_{next(_counter)}_{os.getpid()}"
            server.create_database(self.database)
            request.addfinalizer(lambda: server.drop_database(self.database))
            self.url = server.url(self.database, driver="aiomysql")
            self.engine = sa.create_engine(
                server.url(self.database, driver="pymysql"), poolclass=sa.pool.NullPool
            )
            request.addfinalizer(self.engine.dispose)

    def fresh(self, root: Path) -> tuple[str, sa.Engine]:
        """The URL for this case and a sync engine on it, to create hand-made tables."""
        if self.engine is None:
            path = root / "bot.db"
            return f"{self.backend}:///{path}", sa.create_engine(
                f"sqlite:///{path}", poolclass=sa.pool.NullPool
            )
        with self.engine.begin() as conn:  # the previous case's tables, version tables and all
            if self.backend.startswith("mysql"):
                conn.exec_driver_sql(f"DROP DATABASE `{self.database}`")
                conn.exec_driver_sql(f"CREATE DATABASE `{self.database}`")
                conn.exec_driver_sql(f"USE `{self.database}`")
            else:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
        assert sa.inspect(self.engine).get_table_names() == []
        return self.url, self.engine


def forget_case(packages: tuple[str, ...], path: list[str]) -> None:
    """Remove what a case left in this process: its bot packages and what it put on sys.path.

    Otherwise every later discovery walks all earlier cases' ormar models, and every import
    searches all earlier cases' folders (discovery puts the bot's folder on sys.path, and
    Alembic prepends alembic.ini's ``prepend_sys_path`` on every command): cases would get
    slower and slower.
    """
    for name in [m for m in sys.modules if m.split(".", 1)[0] in packages]:
        del sys.modules[name]
    for entry in set(sys.path) - set(path):
        sys.path_importer_cache.pop(entry, None)
    sys.path[:] = path
    if next(_forgotten) % 50 == 0:
        gc.collect()  # the models' classes are in reference cycles; every case would cost ~0.2 s


def check_world(root: Path, database: CaseDatabase, world: World) -> None:
    shutil.copy(REPO / "alembic.ini.sample", root / "alembic.ini")
    (root / "migrations").mkdir()
    for name in ("env.py", "script.py.mako"):
        shutil.copy(TEMPLATE_DIR / name, root / "migrations" / name)
    url, engine = database.fresh(root)
    path = list(sys.path)
    run_id = next(_counter)
    one, two = f"pw{run_id}a", f"pw{run_id}b"
    write_bot(root, one, world, 1)
    write_bot(root, two, world, 2)
    try:
        # Phase 1: every cog loaded, every cog migrated: this is the history that defines ownership.
        for c in range(len(world.tables)):
            written = autogenerate(root, one, [f"cog=c{c}", f"url={url}"], "initial")
            assert len(written) == 1, f"cog c{c}: the initial revision was not written"
            command.upgrade(stock_config(root, one, [f"cog=c{c}", f"url={url}"], command.upgrade), "head")

        with engine.begin() as conn:
            for k in range(world.foreign):
                conn.exec_driver_sql(f"CREATE TABLE hand_{k} (id INTEGER PRIMARY KEY)")

        universe = {table_name(c, t) for c, n in enumerate(world.tables) for t in range(n)}
        universe |= {f"hand_{k}" for k in range(world.foreign)}
        universe |= {f"alembic_version_c{c}" for c in range(len(world.tables))}
        flags = (["offline=true"] if world.offline else []) + (
            ["allow_drops=true"] if world.allow_drops else []
        )

        # Phase 2: a subset loaded, models removed and changed; autogenerate every loaded cog.
        for c in sorted(world.loaded):
            history = {table_name(c, t) for t in range(world.tables[c])}
            modelled = {table_name(c, t) for t in range(world.tables[c]) if (c, t) not in world.removed}
            scripts = autogenerate(root, two, [f"cog=c{c}", f"url={url}", *flags], f"phase two {c}")
            # A script is due exactly when a modelled table gained a column, or owned tables lost
            # their models and drops were asked for; a run that writes nothing must not pass.
            grown = {
                (c, t)
                for t in range(world.tables[c])
                if (c, t) in world.added and (c, t) not in world.removed
            }
            due = bool(grown) or (world.allow_drops and bool(history - modelled))
            assert len(scripts) == (1 if due else 0), (
                f"cog c{c}: expected {int(due)} script(s), got {len(scripts)}"
            )
            for script in scripts:
                touched = touched_tables(script, universe)
                assert touched <= history | modelled, f"cog c{c} touched {touched - history - modelled}"
                text = script.read_text()
                dropped = set(
                    re.findall(r"op\.drop_table\('([A-Za-z0-9_]+)'\)", text.split("def downgrade")[0])
                )
                for c2, t2 in grown:
                    assert f"'{table_name(c2, t2)}'" in text and "'extra'" in text, (
                        "the new column must be written"
                    )
                if world.allow_drops:
                    assert dropped == history - modelled
                else:
                    assert not dropped
    finally:
        if engine is not database.engine:
            engine.dispose()
        forget_case((one, two), path)
    shutil.rmtree(root)  # kept when the case fails, for a look


@pytest.mark.parametrize("backend", list(BACKENDS.values()), ids=list(BACKENDS))
def test_autogenerate_only_touches_owned_tables(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    database = CaseDatabase(backend, request)
    cases = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(world=worlds())
    def property_holds(world: World) -> None:
        nonlocal cases
        cases += 1
        check_world(tmp_path_factory.mktemp("world"), database, world)

    started, failed = time.perf_counter(), True
    try:
        property_holds()
        failed = False
    finally:
        if REPORT:
            with open(REPORT, "a") as report:
                report.write(
                    f"{request.node.callspec.id}: cases={cases} failed={int(failed)} "
                    f"seconds={time.perf_counter() - started:.1f}\n"
                )
