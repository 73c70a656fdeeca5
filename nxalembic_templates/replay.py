"""The scratch replay: a cog's own revisions run into a throwaway database.

It tells which tables the cog's history created (the tables it *owns*: the only ones a
drop or a rename may ever name), and gives ``offline`` autogenerate something to compare
with when there is no live database.  The live database is never opened here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from . import _compat
from .errors import NXAlembicError, described, failing_revision, hide_password
from .request import DEFAULT_SCRATCH_URL

log = logging.getLogger("nxalembic_templates")


def _sqlite_replay_operations(context: MigrationContext) -> Operations:
    """Operations that replay revisions written for any database on SQLite.

    SQLite cannot ALTER columns or constraints in place, and revisions written for
    PostgreSQL do so with plain ``op.alter_column`` and friends.  Here those go through
    batch mode (copy and move), which is what Alembic itself does for SQLite.
    """
    operations = Operations(context)

    def alter_column(table_name: str, column_name: str, *, schema: str | None = None, **kw: Any) -> None:
        with operations.batch_alter_table(table_name, schema=schema, recreate="always") as batch:
            batch.alter_column(column_name, **kw)

    def create_foreign_key(
        constraint_name: str | None,
        source_table: str,
        referent_table: str,
        local_cols: list[str],
        remote_cols: list[str],
        *,
        source_schema: str | None = None,
        **kw: Any,
    ) -> None:
        with operations.batch_alter_table(source_table, schema=source_schema, recreate="always") as batch:
            batch.create_foreign_key(constraint_name, referent_table, local_cols, remote_cols, **kw)

    def create_unique_constraint(
        constraint_name: str | None,
        table_name: str,
        columns: list[str],
        *,
        schema: str | None = None,
        **kw: Any,
    ) -> None:
        with operations.batch_alter_table(table_name, schema=schema, recreate="always") as batch:
            # Autogenerate writes None for an unnamed constraint; Alembic's batch form is annotated
            # with str but hands the name to CreateUniqueConstraintOp, which takes None.
            batch.create_unique_constraint(constraint_name, columns, **kw)  # type: ignore[arg-type]

    def drop_constraint(
        constraint_name: str,
        table_name: str,
        type_: str | None = None,
        *,
        schema: str | None = None,
        **kw: Any,
    ) -> None:
        with operations.batch_alter_table(table_name, schema=schema, recreate="always") as batch:
            batch.drop_constraint(constraint_name, type_=type_)

    # Instance attributes win over the class's methods when the ``op`` proxy is installed.
    for function in (alter_column, create_foreign_key, create_unique_constraint, drop_constraint):
        setattr(operations, function.__name__, function)
    return operations


def _scratch_error(url: str, exc: BaseException) -> NXAlembicError:
    return NXAlembicError(
        hide_password(
            url,
            f"cannot open the scratch database {hide_password(url)}: {described(exc)}; "
            "-x scratch_url= must be a database you can write to and throw away "
            "(default: sqlite://, in memory)",
        )
    )


def _scratch_engine(url: str) -> sa.Engine:
    """A sync engine for the scratch database; in-memory SQLite keeps one connection alive."""
    try:
        parsed = make_url(url)
        memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
        return sa.create_engine(parsed, poolclass=sa.pool.StaticPool if memory else sa.pool.NullPool)
    except Exception as exc:
        raise _scratch_error(url, exc) from None


@contextlib.contextmanager
def scratch_database(
    script: ScriptDirectory,
    version_table: str,
    cog: str,
    url: str = DEFAULT_SCRATCH_URL,
    referenced: Iterable[sa.Table] = (),
) -> Iterator[Connection]:
    """A scratch database holding what the cog's revisions create, at head.

    The replay runs the cog's own revision scripts (``upgrade()`` functions) through a
    private migration context; the live database is never opened.  Tables of other cogs
    that the cog's foreign keys reference are created first as bare stubs (columns only),
    because batch mode reflects foreign keys; :func:`history_tables` leaves them out.
    """
    engine = _scratch_engine(url)
    try:
        try:
            opened = engine.connect()
        except Exception as exc:
            raise _scratch_error(url, exc) from None
        with opened as connection:
            stubs = sa.MetaData()
            for table in referenced:
                columns = [sa.Column(c.name, c.type, primary_key=c.primary_key) for c in table.columns]
                sa.Table(table.name, stubs, *columns, schema=table.schema)
            stubs.create_all(connection)
            connection.info["nxalembic.stubs"] = {t.name for t in stubs.tables.values()}
            # End the stubs' transaction: the replay must own its transaction, or a revision
            # using autocommit_block() fails (Alembic asserts that it began the transaction).
            connection.commit()
            context = MigrationContext.configure(
                connection,
                opts={
                    "version_table": version_table,
                    "fn": lambda rev, _ctx: _compat.upgrade_steps(script, rev),
                },
            )
            sqlite = connection.dialect.name == "sqlite"
            operations = _sqlite_replay_operations(context) if sqlite else Operations(context)
            alembic_log = logging.getLogger("alembic")
            level = alembic_log.level
            alembic_log.setLevel(logging.WARNING)  # the replay is an implementation detail
            try:
                with _compat.operations_as_op(operations), context.begin_transaction():
                    context.run_migrations()
                connection.commit()
            except NXAlembicError:
                raise
            except Exception as exc:
                revision = failing_revision(exc) or "?"
                raise NXAlembicError(
                    f"cog {cog!r}: replaying revision {revision} into the scratch database "
                    f"{hide_password(url)!r} failed: {described(exc)}; pass a scratch database of your kind "
                    "with -x scratch_url=..."
                ) from exc
            finally:
                alembic_log.setLevel(level)
            yield connection
    finally:
        engine.dispose()


def history_tables(connection: Connection, version_table: str) -> set[str]:
    """Tables in a scratch database: the tables the cog's own revisions created."""
    stubs: set[str] = connection.info.get("nxalembic.stubs", set())
    return set(sa.inspect(connection).get_table_names()) - {version_table} - stubs


def portable_compare_type(scratch_dialect: str) -> Callable[..., bool | None]:
    """``compare_type`` for offline runs: types the scratch database cannot hold faithfully are
    reported in a warning instead of as a spurious type change."""

    def compare_type(
        context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
    ) -> bool | None:
        module = type(metadata_type).__module__
        foreign_dialect = module.startswith("sqlalchemy.dialects.") and f".{scratch_dialect}" not in module
        timezone = getattr(metadata_type, "timezone", False) and scratch_dialect == "sqlite"
        if foreign_dialect or timezone:
            log.warning(
                "%s.%s: type %r cannot be stored faithfully in the %s scratch database; its changes are "
                "not detected offline (use -x scratch_url= with your database kind, or a live database)",
                metadata_column.table.name,
                metadata_column.name,
                metadata_type,
                scratch_dialect,
            )
            return False
        return None

    return compare_type
