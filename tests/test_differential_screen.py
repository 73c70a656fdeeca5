"""Differential: the shared comparison of ``nxalembic check`` agrees with stock Alembic, cog by cog.

``nxalembic status`` / ``check`` compare every cog at its head in one autogenerate pass
(``scope.Screen``, ``compare.screened``) and only the cogs it finds changed on their own.  Its
verdict for each cog (in sync, differs, could not be compared) must be the one
``alembic -x cog=NAME check`` gives.  Generated drifts of a database at head (hypothesis):
columns added and removed, types, nullability, server defaults, indexes, unique and foreign
keys, hand-dropped and hand-made tables, a table in a named schema (PostgreSQL), and an
env.py ``compare_type`` hook that raises on one table, on SQLite and PostgreSQL.

The project is built and migrated once per backend; each example starts from a copy of that
database (a file copy, or ``CREATE DATABASE ... TEMPLATE``), drifts it by hand with Alembic's
operations, and runs ``nxalembic check`` plus stock ``check`` for every cog (a process per
cog, forked from one interpreter start per example: conftest's alembic_forked).  ``make test``
runs a few examples; ``make test-long`` more (``NXALEMBIC_DIFFERENTIAL_EXAMPLES``).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from conftest import BotProject, Database, alembic_forked, copy_example_bot

#: Generated examples per backend, besides the explicit ones; ``make test-long`` raises it.
EXAMPLES = int(os.environ.get("NXALEMBIC_DIFFERENTIAL_EXAMPLES", "5"))

#: env.py: server defaults compared too, and a compare_type hook that raises on VARCHAR(66).
ENV_TAIL = """
def _compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    if getattr(inspected_type, "length", None) == 66:
        raise ValueError(f"compare_type cannot handle {inspected_column.table.name}")
    return None


run_migrations(context, compare_server_default=True, compare_type=_compare_type)
"""

#: A cog whose table lives in the PostgreSQL schema "radio" (ormar's schema= option).
RADIO = '''"""Radio: a table in a named schema."""
from typing import Optional

import ormar

from ..db import base_config
from ..models import User


class Station(ormar.Model):
    ormar_config = base_config.copy(tablename="stations", schema="radio")

    id: int = ormar.Integer(primary_key=True)
    name: str = ormar.String(max_length=50)
    owner: Optional[User] = ormar.ForeignKey(User)


def setup(bot):
    pass
'''


@dataclass(frozen=True)
class Target:
    """A modelled table and one plain column of it (neither key nor indexed)."""

    table: str
    schema: str | None
    column: str
    type_: sa.types.TypeEngine[Any]
    nullable: bool


TARGETS = [
    Target("core_users", None, "name", sa.String(100), False),
    Target("music_songs", None, "artist", sa.String(200), True),
    Target("music_playlists", None, "name", sa.String(100), False),
    Target("economy_wallets", None, "balance", sa.Integer(), True),
    Target("economy_purchases", None, "price", sa.Integer(), False),
]
RADIO_TARGET = Target("stations", "radio", "name", sa.String(50), False)

Op = Callable[[Operations, Target, str], None]
_names = itertools.count()


def _batch(op: Operations, target: Target) -> Any:
    return op.batch_alter_table(target.table, schema=target.schema)


def add_column(op: Operations, t: Target, _backend: str) -> None:
    with _batch(op, t) as batch:
        batch.add_column(sa.Column("stray", sa.Integer(), nullable=True))


def drop_column(op: Operations, t: Target, _backend: str) -> None:
    with _batch(op, t) as batch:
        batch.drop_column(t.column)


def change_type(op: Operations, t: Target, _backend: str) -> None:
    new = sa.String(t.type_.length + 7) if isinstance(t.type_, sa.String) else sa.BigInteger()
    with _batch(op, t) as batch:
        batch.alter_column(t.column, type_=new, existing_type=t.type_, existing_nullable=t.nullable)


def raising_type(op: Operations, t: Target, _backend: str) -> None:
    """VARCHAR(66): env.py's compare_type hook raises on it."""
    new = sa.String(66) if isinstance(t.type_, sa.String) else sa.BigInteger()
    with _batch(op, t) as batch:
        batch.alter_column(t.column, type_=new, existing_type=t.type_, existing_nullable=t.nullable)


def toggle_null(op: Operations, t: Target, _backend: str) -> None:
    with _batch(op, t) as batch:
        batch.alter_column(t.column, nullable=not t.nullable, existing_type=t.type_)


def server_default(op: Operations, t: Target, _backend: str) -> None:
    default = "'x'" if isinstance(t.type_, sa.String) else "7"
    with _batch(op, t) as batch:
        batch.alter_column(
            t.column, server_default=sa.text(default), existing_type=t.type_, existing_nullable=t.nullable
        )


def add_index(op: Operations, t: Target, _backend: str) -> None:
    op.create_index(f"ix_drift_{next(_names)}", t.table, [t.column], schema=t.schema)


def add_unique(op: Operations, t: Target, _backend: str) -> None:
    with _batch(op, t) as batch:
        batch.create_unique_constraint(f"uq_drift_{next(_names)}", [t.column])


def drop_foreign_keys(op: Operations, t: Target, _backend: str) -> None:
    keys = sa.inspect(op.get_bind()).get_foreign_keys(t.table, schema=t.schema)
    with _batch(op, t) as batch:
        for key in keys:
            if key["name"]:
                batch.drop_constraint(key["name"], type_="foreignkey")


def drop_indexes(op: Operations, t: Target, _backend: str) -> None:
    for index in sa.inspect(op.get_bind()).get_indexes(t.table, schema=t.schema):
        op.drop_index(index["name"], table_name=t.table, schema=t.schema)


def drop_table(op: Operations, t: Target, backend: str) -> None:
    name = f"{t.schema}.{t.table}" if t.schema else t.table
    op.execute(f"DROP TABLE {name}{' CASCADE' if backend == 'postgresql' else ''}")


def hand_made_table(op: Operations, t: Target, _backend: str) -> None:
    op.create_table(f"hand_{t.table}", sa.Column("id", sa.Integer(), primary_key=True), schema=t.schema)


DRIFTS: list[Op] = [
    add_column,
    drop_column,
    change_type,
    raising_type,
    toggle_null,
    server_default,
    add_index,
    add_unique,
    drop_foreign_keys,
    drop_indexes,
    drop_table,
    hand_made_table,
]


@dataclass
class Built:
    """The project at head on *backend*, and how to get a fresh copy of its database."""

    path: Path
    backend: str
    targets: list[Target]
    fresh: Callable[[], Database]
    forget: Callable[[Database], None]
    cogs: tuple[str, ...]


def _build(
    path: Path, initialised_template: Path, url: str, radio: bool
) -> tuple[BotProject, tuple[str, ...]]:
    project = copy_example_bot(path, initialised_template)
    project.db = Database(url)
    cogs = ("core", "music", "economy")
    if radio:
        (path / "demobot" / "cogs" / "radio.py").write_text(RADIO, encoding="utf-8")
        project.edit(
            "demobot/main.py", '    "demobot.cogs.fun",', '    "demobot.cogs.fun",\n    "demobot.cogs.radio",'
        )
        project.db.execute("CREATE SCHEMA radio")
        cogs += ("radio",)
    project.edit("migrations/env.py", "\nrun_migrations(context)\n", ENV_TAIL)
    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    assert project.nxalembic("check").returncode == 0
    project.db.dispose()
    return project, cogs


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, initialised_template: Path
) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("differential")
    if request.param == "sqlite":
        base = folder / "base.db"
        project, cogs = _build(folder / "bot", initialised_template, f"sqlite:///{base}", radio=False)

        def fresh() -> Database:
            copy = folder / f"{uuid.uuid4().hex[:8]}.db"
            shutil.copy(base, copy)
            return Database(f"sqlite:///{copy}")

        def forget(db: Database) -> None:
            db.dispose()
            Path(sa.make_url(db.url).database or "").unlink(missing_ok=True)

        yield Built(project.path, "sqlite", TARGETS, fresh, forget, cogs)
        return
    server = request.getfixturevalue("pg_server")
    base_name = "diff_" + uuid.uuid4().hex[:10]
    server.create_database(base_name)
    project, cogs = _build(
        folder / "bot", initialised_template, server.url(base_name, driver="psycopg"), radio=True
    )

    def fresh_pg() -> Database:
        name = "diff_" + uuid.uuid4().hex[:10]
        server.psql(f'CREATE DATABASE "{name}" TEMPLATE "{base_name}"')
        return Database(server.url(name, driver="psycopg"))

    def forget_pg(db: Database) -> None:
        db.dispose()
        server.drop_database(sa.make_url(db.url).database)

    yield Built(project.path, "postgresql", [*TARGETS, RADIO_TARGET], fresh_pg, forget_pg, cogs)
    server.drop_database(base_name)


def drift(db: Database, backend: str, changes: list[tuple[Op, Target]]) -> None:
    with db.engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection, opts={"render_as_batch": backend == "sqlite"}))
        for change, target in changes:
            change(op, target, backend)


def stock_verdicts(project: BotProject, cogs: tuple[str, ...]) -> dict[str, str]:
    """Each cog's verdict by stock ``alembic -x cog=NAME check``: each check in a process of its own,
    forked from one interpreter start per example (conftest's alembic_forked)."""
    checks = alembic_forked(project, *(["-x", f"cog={cog}", "check"] for cog in cogs), check=False)
    verdicts = {}
    for cog, result in zip(cogs, checks, strict=True):
        if result.returncode == 0:
            verdicts[cog] = "in sync"
        else:
            verdicts[cog] = (
                "differs" if "New upgrade operations detected" in result.output else "not compared"
            )
    return verdicts


def nxalembic_verdicts(project: BotProject, cogs: tuple[str, ...]) -> dict[str, str]:
    result = project.nxalembic("check", check=False)
    assert "Traceback" not in result.output, result.output
    verdicts = {cog: "in sync" for cog in cogs}
    for cog, what in re.findall(r"^(\w+): models (differ|not compared)", result.stdout, re.M):
        verdicts[cog] = "differs" if what == "differ" else "not compared"
    assert result.returncode == (0 if set(verdicts.values()) == {"in sync"} else 1), result.output
    return verdicts


def test_the_shared_comparison_agrees_with_stock_check_cog_by_cog(built: Built) -> None:
    # one change per table: a later change never meets a table or column an earlier one dropped
    changes = st.tuples(st.sampled_from(DRIFTS), st.sampled_from(built.targets))
    cases = st.lists(changes, max_size=3, unique_by=lambda change: change[1].table)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        print_blob=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing drift is printed as it is
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(changes=cases)
    # always: the raising hook, a dropped column beside an added index, a hand-dropped and a hand-made table
    @example(changes=[(raising_type, TARGETS[1])])
    @example(changes=[(drop_column, TARGETS[0]), (add_index, TARGETS[3])])
    @example(changes=[(drop_table, TARGETS[1]), (hand_made_table, TARGETS[4])])
    # the last target: on PostgreSQL the table in the named schema
    @example(changes=[(drop_column, built.targets[-1]), (change_type, TARGETS[2])])
    def agrees(changes: list[tuple[Op, Target]]) -> None:
        db = built.fresh()
        try:
            drift(db, built.backend, changes)
            project = BotProject(built.path, db)
            shared = nxalembic_verdicts(project, built.cogs)
            stock = stock_verdicts(project, built.cogs)
            assert shared == stock, [(change.__name__, target.table) for change, target in changes]
        finally:
            built.forget(db)

    agrees()
