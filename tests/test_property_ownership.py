"""Property: no autogenerate for any cog, with any flags, touches a table that cog does not own.

Random bots (cogs, tables, cross-cog foreign keys), random loaded subsets, random removed
models and added columns, random hand-made tables, random flags.  Runs Alembic's command API
in-process (real Alembic, real SQLite files) so that hypothesis can try many worlds quickly.
"""

from __future__ import annotations

import itertools
import re
import shutil
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nxalembic_templates import TEMPLATE_DIR
from nxalembic_templates.autogen import AUTOGENERATE_KEY
from nxalembic_templates.environment import COG_KEY

_counter = itertools.count()


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
    return World(tables, fks, loaded, removed, added, draw(st.integers(0, 3)), draw(st.booleans()), draw(st.booleans()))


def table_name(c: int, t: int) -> str:
    return f"c{c}_t{t}"


def write_bot(root: Path, package: str, world: World, phase: int, db: Path) -> None:
    pkg = root / package
    (pkg / "cogs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cogs" / "__init__.py").write_text("")
    (pkg / "db.py").write_text(
        "import ormar, sqlalchemy\n"
        f"base = ormar.OrmarConfig(database=ormar.DatabaseConnection('sqlite:///{db}'),"
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
                lines.append(f"    ref: Optional[C{target}T0] = ormar.ForeignKey(C{target}T0, nullable=True,"
                             f" related_name='c{c}_t{t}_refs')")
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


def config_for(root: Path, package: str, cog: str, x: list[str]) -> Config:
    (root / "nxalembic.ini").write_text(f"[nxalembic]\nmodule = {package}.main\nbot = bot\n")
    config = Config(str(root / "alembic.ini"))
    config.cmd_opts = Namespace(x=x, quiet=True)
    config.attributes.update({COG_KEY: cog, "nxalembic.command": "revision", "configure_logger": False})
    return config


def touched_tables(script_path: Path, universe: set[str]) -> set[str]:
    quoted = set(re.findall(r"'([A-Za-z0-9_]+)'", script_path.read_text()))
    return quoted & universe


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_autogenerate_only_touches_owned_tables(tmp_path_factory, world: World) -> None:
    root = tmp_path_factory.mktemp("world")
    shutil.copy(Path(__file__).parent.parent / "alembic.ini.sample", root / "alembic.ini")
    (root / "migrations").mkdir()
    for name in ("env.py", "script.py.mako"):
        shutil.copy(TEMPLATE_DIR / name, root / "migrations" / name)
    db = root / "bot.db"
    run_id = next(_counter)
    one, two = f"pw{run_id}a", f"pw{run_id}b"
    write_bot(root, one, world, 1, db)
    write_bot(root, two, world, 2, db)

    # Phase 1: every cog loaded, every cog migrated: this is the history that defines ownership.
    for c in range(len(world.tables)):
        config = config_for(root, one, f"c{c}", [])
        config.attributes[AUTOGENERATE_KEY] = True
        command.revision(config, message="initial", autogenerate=True)
        config = config_for(root, one, f"c{c}", [])
        command.upgrade(config, "head")

    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        for k in range(world.foreign):
            conn.exec_driver_sql(f"CREATE TABLE hand_{k} (id INTEGER PRIMARY KEY)")
    engine.dispose()

    universe = {table_name(c, t) for c, n in enumerate(world.tables) for t in range(n)}
    universe |= {f"hand_{k}" for k in range(world.foreign)} | {f"alembic_version_c{c}" for c in range(len(world.tables))}
    flags = (["offline=true"] if world.offline else []) + (["allow_drops=true"] if world.allow_drops else [])

    # Phase 2: a subset loaded, models removed and changed; autogenerate every loaded cog.
    for c in sorted(world.loaded):
        history = {table_name(c, t) for t in range(world.tables[c])}
        modelled = {table_name(c, t) for t in range(world.tables[c]) if (c, t) not in world.removed}
        config = config_for(root, two, f"c{c}", flags)
        config.attributes[AUTOGENERATE_KEY] = True
        written = command.revision(config, message=f"phase two {c}", autogenerate=True)
        scripts = [s for s in (written if isinstance(written, list) else [written]) if s is not None]
        # A script is due exactly when a modelled table gained a column, or owned tables lost
        # their models and drops were asked for; a run that writes nothing must not pass.
        grown = {(c, t) for t in range(world.tables[c]) if (c, t) in world.added and (c, t) not in world.removed}
        due = bool(grown) or (world.allow_drops and bool(history - modelled))
        assert len(scripts) == (1 if due else 0), f"cog c{c}: expected {int(due)} script(s), got {len(scripts)}"
        for script in scripts:
            touched = touched_tables(Path(script.path), universe)
            assert touched <= history | modelled, f"cog c{c} touched {touched - history - modelled}"
            text = Path(script.path).read_text()
            dropped = set(re.findall(r"op\.drop_table\('([A-Za-z0-9_]+)'\)", text.split("def downgrade")[0]))
            for c2, t2 in grown:
                assert f"'{table_name(c2, t2)}'" in text and "'extra'" in text, "the new column must be written"
            if world.allow_drops:
                assert dropped == history - modelled
            else:
                assert not dropped
