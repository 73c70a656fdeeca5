"""Internal: every use of Alembic's and SQLAlchemy's private API, in one place.

Each function below wraps one thing upstream does not offer publicly, says why no public
route does the job, and has a test of its own in ``tests/test_compat.py`` that runs in every
CI leg (newest and oldest supported alembic / SQLAlchemy): an upstream release that changes
one of them fails one named test instead of a migration in a user's deploy.

No other module of the package may touch an underscore attribute of Alembic or SQLAlchemy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.operations.batch import ApplyBatchImpl
from alembic.operations.schemaobj import SchemaObjects
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionMap
from sqlalchemy.engine import Connection

__all__ = [
    "configured_options",
    "dotted_table_targets",
    "load_revisions",
    "metadata_view",
    "operations_as_op",
    "retarget",
    "revision_command_autogenerate",
    "type_affinity",
    "upgrade_steps",
]


def load_revisions(script: ScriptDirectory) -> Iterator[Script]:
    """The revision files of *script*'s version locations, one :class:`Script` each, unchecked.

    Private: ``ScriptDirectory._load_revisions``.  The public routes (``revision_map``,
    ``walk_revisions``) build a :class:`RevisionMap` from these at once, and that map only
    *warns* about two files with one revision id and keeps one of them: we need the files
    before that, to refuse duplicates and name revisions that point into another cog.
    """
    return script._load_revisions()


def retarget(
    script: ScriptDirectory, location: Path, revisions: Callable[[], Iterable[Script]] | RevisionMap
) -> None:
    """Point an already built *script* at the single folder *location*, loading *revisions*.

    *revisions* is the loader of a new :class:`RevisionMap`, or a map already loaded (the
    ``nxalembic`` command reads each cog's files once and hands its map to every command).

    Alembic builds the :class:`ScriptDirectory` from alembic.ini *before* env.py runs, and the
    command functions (``upgrade``, ``revision``, ``history``...) keep that object, so the stock
    ``alembic -x cog=NAME`` route cannot hand them another one: env.py changes it in place.
    Private: the memoized ``_version_locations`` / ``_singular_version_location`` values
    computed from the old locations must be dropped.  (Where we build the object ourselves,
    the public ``version_locations`` constructor argument is used instead.)
    """
    script.version_locations = [str(location)]
    script.recursive_version_locations = False
    for memoized in ("_version_locations", "_singular_version_location"):
        script.__dict__.pop(memoized, None)
    script.revision_map = revisions if isinstance(revisions, RevisionMap) else RevisionMap(revisions)


class _MetadataView(sa.MetaData):
    """A MetaData listing tables of another one, in the order given (see :func:`metadata_view`)."""

    def __init__(self, tables: list[sa.Table], like: sa.MetaData) -> None:
        super().__init__(schema=like.schema, naming_convention=like.naming_convention, info=like.info)
        self._in_order = tables
        for table in tables:
            self._add_table(table.name, table.schema, table)

    @property
    def sorted_tables(self) -> list[sa.Table]:
        return list(self._in_order)


def metadata_view(tables: Iterable[sa.Table], like: sa.MetaData) -> sa.MetaData:
    """A :class:`MetaData` holding *tables* themselves (not copies), named as *like* names things.

    Autogenerate sorts and walks every table of ``target_metadata`` for each cog, so handing
    it the bot's whole MetaData costs every cog time in proportion to all cogs' tables.  One
    cog's tables alone are what it compares (``include_object`` turns the others away), but
    ``Table.to_metadata()`` copies would lose what a table's foreign keys resolve against (the
    other cogs' tables, dotted names): the tables stay where they are, on *like*, and this
    MetaData only lists them.  Its ``sorted_tables`` (the order autogenerate writes
    ``create_table`` in) is *tables* as given, so the caller passes them in the order of
    ``like.sorted_tables``: sorting a subset anew can order unrelated tables differently.
    Private: ``MetaData._add_table``, the method ``Table`` itself registers with; the public
    route (``Table(name, metadata)``) makes a new table.
    """
    return _MetadataView(list(tables), like)


def upgrade_steps(script: ScriptDirectory, current: Any) -> list[Any]:
    """The migration steps from *current* to the heads: the ``fn`` of a scratch replay.

    Private: ``ScriptDirectory._upgrade_revs``, which is what ``alembic.command.upgrade``
    itself hands to ``EnvironmentContext``; the public route (``command.upgrade``) would run the
    project's env.py again, on the live database, instead of our scratch connection.
    """
    return script._upgrade_revs("heads", current)


@contextlib.contextmanager
def operations_as_op(operations: Operations) -> Iterator[Operations]:
    """Make *operations* what ``from alembic import op`` calls reach while the block runs.

    Private: ``Operations._install_proxy`` / ``_remove_proxy``.  The public
    ``Operations.context()`` installs a plain :class:`Operations` it creates itself, and the
    scratch replay on SQLite needs its own instance (batch mode for ALTERs).
    """
    operations._install_proxy()
    try:
        yield operations
    finally:
        operations._remove_proxy()


def type_affinity(type_: Any) -> Any:
    """The generic class a column type behaves as (``VARCHAR`` and ``Text``: ``String``).

    Private: ``TypeEngine._type_affinity``.  The public ``as_generic()`` keeps subclasses apart
    (``BigInteger`` is not ``Integer`` there) and raises for some dialect types, and the rename
    question must treat every integer as one kind.
    """
    return getattr(type_, "_type_affinity", None) or type(type_)


def revision_command_autogenerate(migration_context: Any) -> bool | None:
    """Whether the running ``revision`` / ``check`` autogenerates, as the command was called.

    Private: ``revision_context.command_args`` in the migration context's options, the only
    place that holds the ``autogenerate`` argument when a library (pytest-alembic) calls
    ``alembic.command.revision()`` directly, without a command line.  ``None``: not a revision
    command, or the value is not there.
    """
    opts = getattr(migration_context, "opts", None) or {}
    args = getattr(opts.get("revision_context"), "command_args", None)
    if isinstance(args, dict) and "autogenerate" in args:
        return bool(args["autogenerate"])
    return None


#: ``is_table(name, connection)``: whether a table called *name* (dots and all) exists or is modelled.
IsTable = Callable[[str, "Connection | None"], bool]


@contextlib.contextmanager
def dotted_table_targets(is_table: IsTable) -> Iterator[None]:
    """While the block runs, the foreign key target ``'music.songs.id'`` names the table
    ``music.songs`` (when *is_table* says so), not the table ``songs`` in a schema ``music``.

    Alembic writes foreign key targets as ``'table.column'`` strings and, when it runs
    ``create_table``, ``add_column`` or a batch recreate, adds a placeholder for the referenced
    table to a throwaway MetaData; for ``'music.songs.id'`` that placeholder is table ``songs``
    in schema ``music``, so PostgreSQL fails (schema "music" does not exist) and SQLite
    silently leaves the constraint out (a foreign key into another schema).  SQLAlchemy itself
    resolves the same string to a Table keyed ``music.songs`` when one is on the MetaData, so
    the placeholder is made that table instead.  Only targets whose table part names a table
    *is_table* knows change; everything else goes to Alembic unchanged.

    Private: ``SchemaObjects._ensure_table_for_fk`` and ``ApplyBatchImpl._setup_referent``,
    the two places that make the placeholder.  No public route: the revision file (which must
    run unchanged) only has the string, and SQLAlchemy's unambiguous target form (a token
    tuple) is new in SQLAlchemy 2.1 and rendered by no Alembic release.
    """
    ensure, setup = SchemaObjects._ensure_table_for_fk, ApplyBatchImpl._setup_referent

    def ensure_table_for_fk(self: SchemaObjects, metadata: sa.MetaData, fk: sa.ForeignKey) -> None:
        context = self.migration_context
        target = _dotted_target(fk, context.connection if context is not None else None, is_table)
        if target is None:
            return ensure(self, metadata, fk)
        _placeholder(metadata, target[0], [target[1]])

    def setup_referent(
        self: ApplyBatchImpl, metadata: sa.MetaData, constraint: sa.ForeignKeyConstraint
    ) -> None:
        connection = self.impl.connection
        targets = [_dotted_target(fk, connection, is_table) for fk in constraint.elements]
        if not targets or None in targets or len({t[0] for t in targets}) != 1:  # type: ignore[index]
            return setup(self, metadata, constraint)
        table = targets[0][0]  # type: ignore[index]
        if table != self.temp_table_name:
            _placeholder(metadata, table, [t[1] for t in targets])  # type: ignore[index]

    SchemaObjects._ensure_table_for_fk = ensure_table_for_fk  # type: ignore[method-assign]
    ApplyBatchImpl._setup_referent = setup_referent  # type: ignore[method-assign]
    try:
        yield
    finally:
        SchemaObjects._ensure_table_for_fk = ensure  # type: ignore[method-assign]
        ApplyBatchImpl._setup_referent = setup  # type: ignore[method-assign]


def _dotted_target(
    fk: sa.ForeignKey, connection: Connection | None, is_table: IsTable
) -> tuple[str, str] | None:
    """(table, column) of a string target whose table has a dot in its name and exists."""
    try:
        named = isinstance(fk._colspec, str)  # a Column object target is resolved already
        spec = fk.target_fullname
    except sa.exc.SQLAlchemyError:
        return None
    # The column is what follows the last dot (as for SQLAlchemy); the table part stays whole.
    table, _, column = spec.rpartition(".")
    if not named or "." not in table or not is_table(table, connection):
        return None
    return table, column


def _placeholder(metadata: sa.MetaData, table: str, columns: list[str]) -> None:
    placeholder = metadata.tables.get(table)
    if placeholder is None:
        placeholder = sa.Table(table, metadata)
    for column in columns:
        if column not in placeholder.c:
            placeholder.append_column(sa.Column(column, sa.types.NULLTYPE))


# -- runner --


def configured_options(context: Any) -> dict[str, Any]:
    """The options env.py gave ``context.configure()``, as the *context* (a ``MigrationContext``) holds them.

    ``compare.screened`` must know whether the hooks Alembic runs with are the ``Screen``'s
    (env.py may configure Alembic itself) and which ``target_metadata`` they go with.  Alembic
    offers no public read of them: ``MigrationContext.opts`` is an undocumented attribute.
    """
    options: dict[str, Any] = context.opts
    return options
