"""Documented behaviour of the Python API and of PostgreSQL specifics.

The API tests write a small user script into a copy of the example bot and run it with the
test environment's Python in a subprocess (so the bot's modules and ormar's model registry
stay out of the test process): a connection handed in through ``config.attributes``, an
``AsyncEngine`` handed in there, and an Alembic command in a process that already ran
``asyncio.run()``.  Schema-qualified ormar models run through the real ``alembic`` and
``nxalembic`` executables on PostgreSQL.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from conftest import BotProject, run, sync_url
from test_concurrency import documented_lock_name
from test_documented_configuration import created_tables, load_extension, write

#: pg_locks row of the migration lock, as docs/concurrency.rst documents it.
LOCK_QUERY = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = 1545819336 AND granted"
)

BORROWED_CONNECTION = """
import argparse, json, sys, types

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import create_async_engine

url, async_url = sys.argv[1:]
LOCK_QUERY = {lock_query!r}
PID_QUERY = {pid_query!r}
watcher = sa.create_engine(url, poolclass=sa.pool.NullPool).connect()  # another session


def holders():
    pids = [row[0] for row in watcher.execute(sa.text(LOCK_QUERY)) if row[0] is not None]
    watcher.rollback()
    return pids


# the revision "probe" calls lockprobe.look() from inside its upgrade()
probe = types.ModuleType("lockprobe")
probe.seen = []
probe.look = lambda: probe.seen.append(holders())
sys.modules["lockprobe"] = probe


def config():
    return Config("alembic.ini", cmd_opts=argparse.Namespace(x=["cog=core"]))


report = {{}}
engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    report["pid"] = connection.exec_driver_sql(PID_QUERY).scalar()
    connection.commit()

    # 1. the caller's own transaction: the lock is held until the caller commits
    transaction = connection.begin()
    cfg = config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "users")
    report["inside_callers_transaction"] = holders()
    transaction.commit()
    report["after_callers_commit"] = holders()

    # 2. no transaction of the caller's: Alembic's transaction; the lock ends with it, not with the session
    cfg = config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    report["inside_revision"] = probe.seen
    report["after_command"] = holders()
    report["connection_still_open"] = not connection.closed

# 3. an AsyncEngine is refused
cfg = config()
cfg.attributes["connection"] = create_async_engine(async_url)
try:
    command.downgrade(cfg, "base")
except CommandError as exc:
    report["async_engine"] = str(exc)
print(json.dumps(report))
"""


def borrowed_connection_report(project: BotProject, lock_query: str, pid_query: str) -> dict[str, Any]:
    """Run BORROWED_CONNECTION on *project*: where the lock (*lock_query*: its holders) is held."""
    project.cog("core", "revision", "--autogenerate", "-m", "users", "--rev-id", "users")
    project.cog("core", "revision", "-m", "probe", "--rev-id", "probe")
    [probe] = [p for p in project.revisions("core") if p.name.startswith("probe_")]
    probe.write_text(
        probe.read_text().replace(
            "def upgrade() -> None:\n", "def upgrade() -> None:\n    __import__('lockprobe').look()\n", 1
        )
    )
    script = BORROWED_CONNECTION.format(lock_query=lock_query, pid_query=pid_query)
    (project.path / "borrow.py").write_text(script)
    driver = make_url(project.db.url).drivername
    async_url = project.db.url.replace(
        driver, "postgresql+asyncpg" if "postgresql" in driver else "mysql+aiomysql"
    )
    result = run(
        [sys.executable, "borrow.py", sync_url(project.db.url), async_url], cwd=project.path, env=project.env
    )
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    pid = report["pid"]
    assert report["inside_callers_transaction"] == [pid], report
    assert report["after_callers_commit"] == [], report
    assert report["inside_revision"] == [[pid]], report
    assert report["after_command"] == [] and report["connection_still_open"], report
    assert report["async_engine"] == (
        "config.attributes['connection'] holds an async engine; hand over a sync Engine or Connection "
        "(e.g. sqlalchemy.create_engine with a sync driver such as psycopg)"
    )
    assert project.db.versions("alembic_version_core") == ["probe"]  # the async engine changed nothing
    assert "core_users" in project.db.tables()
    return report


def test_a_borrowed_connection_gets_the_transaction_level_lock(make_project) -> None:
    """concurrency.rst: on a connection handed in through config.attributes["connection"] the
    advisory lock is transaction-level and ends with that transaction; an AsyncEngine there
    is refused."""
    borrowed_connection_report(make_project("postgresql+psycopg"), LOCK_QUERY, "SELECT pg_backend_pid()")


def test_on_mariadb_a_borrowed_connection_holds_get_lock_until_its_transaction_ends(make_project) -> None:
    """The MariaDB twin: GET_LOCK belongs to the session, so on a caller's connection (which may
    go back to a pool) it is released when the migration transaction ends, as concurrency.rst
    says; IS_USED_LOCK names the holding session's id, the caller's CONNECTION_ID()."""
    project: BotProject = make_project("mysql+pymysql")
    name = documented_lock_name(str(make_url(project.db.url).database))
    borrowed_connection_report(project, f"SELECT IS_USED_LOCK('{name}')", "SELECT CONNECTION_ID()")


EVENT_LOOP = """
import argparse, asyncio

from alembic import command
from alembic.config import Config


async def main():
    return "the process ran asyncio.run() before"


print(asyncio.run(main()))  # leaves no current event loop behind
config = Config("alembic.ini", cmd_opts=argparse.Namespace(x=["cog=core"]))
command.upgrade(config, "head")  # imports the bot: nextcord's Bot() asks for an event loop
print("upgraded")
"""


def test_an_alembic_command_after_asyncio_run_in_the_same_process(make_project) -> None:
    """extensions.ensure_event_loop: tools that migrate in-process after asyncio.run() (such as
    pytest-alembic) can still import the bot."""
    project: BotProject = make_project("sqlite+aiosqlite")
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    (project.path / "after_asyncio_run.py").write_text(EVENT_LOOP)
    result = run([sys.executable, "after_asyncio_run.py"], cwd=project.path, env=project.env)
    assert result.stdout.split()[-1] == "upgraded", result.output
    assert "core_users" in project.db.tables() and len(project.db.versions("alembic_version_core")) == 1


# -- schema-qualified models on PostgreSQL -----------------------------------------------------------

RADIO = """
    \"\"\"A cog whose table lives in the PostgreSQL schema "radio" (ormar's schema= option).\"\"\"
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
"""


def radio_project(make_project) -> BotProject:
    project: BotProject = make_project("postgresql+asyncpg")
    write(project, "demobot/cogs/radio.py", RADIO)
    load_extension(project, "demobot.cogs.radio")
    project.db.execute("CREATE SCHEMA radio")
    return project


def migrate_radio(project: BotProject) -> Path:
    """Migrate and upgrade every cog; return radio's first revision."""
    project.nxalembic("migrate")
    [first] = project.revisions("radio")
    assert "op.create_table('stations'" in first.read_text() and "schema='radio'" in first.read_text()
    assert created_tables(project.revisions("core")) == {"core_users"}
    project.nxalembic("upgrade")
    assert (
        project.db.scalar(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'radio' AND table_name = 'stations'"
        )
        == 1
    )
    return first


def test_schema_qualified_models_with_include_schemas(make_project) -> None:
    """ormar's ``schema=`` puts a cog's table in a PostgreSQL schema; with
    ``run_migrations(context, include_schemas=True)`` the cog migrates it like any other table,
    and a foreign table in the same schema stays out of its revisions."""
    project = radio_project(make_project)
    project.edit(
        "migrations/env.py", "run_migrations(context)", "run_migrations(context, include_schemas=True)"
    )
    first = migrate_radio(project)
    project.db.execute("CREATE TABLE radio.jingles (id integer PRIMARY KEY)")  # no cog models it
    again = project.cog("radio", "revision", "--autogenerate", "-m", "again")
    assert "No changes in schema detected for cog 'radio'" in again.output
    project.edit(
        "demobot/cogs/radio.py",
        "    name: str = ormar.String(max_length=50)\n",
        "    name: str = ormar.String(max_length=50)\n"
        "    genre: Optional[str] = ormar.String(max_length=20, nullable=True)\n",
    )
    project.nxalembic("migrate", "--cog", "radio")
    [change] = [p for p in project.revisions("radio") if p != first]
    body = project.revision_ops(change)
    assert "op.add_column('stations', sa.Column('genre'" in body and "schema='radio'" in body
    assert "jingles" not in change.read_text()
    project.nxalembic("upgrade")
    status = {c["cog"]: c for c in json.loads(project.nxalembic("status", "--json").stdout)["cogs"]}
    assert not status["radio"]["differs"] and status["radio"]["pending"] == 0
    assert project.db.scalar("SELECT count(*) FROM radio.jingles") == 0


def test_schema_qualified_models_with_the_default_env_py(make_project) -> None:
    project = radio_project(make_project)
    migrate_radio(project)
    again = project.cog("radio", "revision", "--autogenerate", "-m", "again")
    assert "No changes in schema detected for cog 'radio'" in again.output, textwrap.shorten(
        again.output, 500
    )


def test_on_mariadb_a_schema_qualified_model_lives_in_another_database(make_project, mariadb_server) -> None:
    """MariaDB has no schemas inside a database: ``schema="radio"`` names the database ``radio``
    on the same server (SQLAlchemy's and MariaDB's documented meaning).  The cog migrates its
    table there like any other, and its version table stays in the bot's own database."""
    assert "        owner: Optional[User] = ormar.ForeignKey(User)\n" in RADIO
    project: BotProject = make_project("mysql+aiomysql")
    radio = "radio_" + uuid.uuid4().hex[:8]  # a database is server-wide: unique per test
    # no foreign key to core_users: MariaDB reads REFERENCES core_users inside the table's own
    # database (radio_...), where there is no such table (docs/configuration.rst says so)
    station = RADIO.replace('schema="radio"', f'schema="{radio}"')
    station = station.replace("        owner: Optional[User] = ormar.ForeignKey(User)\n", "")
    write(project, "demobot/cogs/radio.py", station)
    load_extension(project, "demobot.cogs.radio")
    mariadb_server.create_database(radio)
    try:
        project.nxalembic("migrate")
        [first] = project.revisions("radio")
        assert "op.create_table('stations'" in first.read_text() and f"schema='{radio}'" in first.read_text()
        project.nxalembic("upgrade")
        assert mariadb_server.sql(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'stations'"
        ) == [(radio,)]
        assert "alembic_version_radio" in project.db.tables() and "stations" not in project.db.tables()
        again = project.cog("radio", "revision", "--autogenerate", "-m", "again")
        assert "No changes in schema detected for cog 'radio'" in again.output, again.output
    finally:
        mariadb_server.drop_database(radio)
