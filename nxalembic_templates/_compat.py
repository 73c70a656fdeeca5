"""Internal: every use of Alembic's and SQLAlchemy's private API, in one place.

Each function below wraps one thing upstream does not offer publicly, says why no public
route does the job, and has a test of its own in ``tests/test_compat.py`` that runs in every
CI leg (newest and oldest supported alembic / SQLAlchemy): an upstream release that changes
one of them fails one named test instead of a migration in a user's deploy.

No other module of the package may touch an underscore attribute of Alembic or SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Alembic is imported where it is used: the start-up fast path imports this module without it.
if TYPE_CHECKING:
    from alembic.operations import Operations
    from alembic.operations.batch import ApplyBatchImpl
    from alembic.operations.schemaobj import SchemaObjects
    from alembic.script import Script, ScriptDirectory
    from alembic.script.revision import RevisionMap

__all__ = [
    "add_import_hook",
    "command_name",
    "configured_options",
    "dotted_table_targets",
    "load_revisions",
    "metadata_view",
    "operations_as_op",
    "register_renderer",
    "remove_import_hook",
    "replace_class_attribute",
    "replace_operations",
    "retarget",
    "revision_command_autogenerate",
    "set_read_only",
    "type_affinity",
    "upgrade_steps",
    "wrap_generate_revision",
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
    from alembic.script.revision import RevisionMap

    script.version_locations = [str(location)]
    script.recursive_version_locations = False
    for memoized in ("_version_locations", "_singular_version_location"):
        script.__dict__.pop(memoized, None)
    script.revision_map = revisions if isinstance(revisions, RevisionMap) else RevisionMap(revisions)


def wrap_generate_revision(
    script: ScriptDirectory, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    """Make *script*'s ``generate_revision`` call ``wrap(original)`` instead, once per instance.

    ``generate_revision`` is the one call through which ``revision`` (with or without
    ``--autogenerate``) and ``merge`` write a file.  No public route reaches every one of them:
    ``process_revision_directives`` is not called by ``merge``, and ``template_args`` cannot
    change the message.  The command function keeps the :class:`ScriptDirectory` it built
    before env.py ran, so the method is replaced on that instance (an attribute of the
    instance, the class is untouched; checked against alembic 1.20).  A second call on one
    instance wraps Alembic's method again, never the wrapper.
    """
    original = getattr(script.generate_revision, "__wrapped__", script.generate_revision)
    wrapper = wrap(original)
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    script.generate_revision = wrapper  # type: ignore[method-assign]


def command_name(cmd_opts: Any) -> str | None:
    """The name of the Alembic command the stock command line runs (``upgrade``...), or ``None``.

    Alembic's ``CommandLine`` keeps the command function as the first item of
    ``cmd_opts.cmd`` (its argparse default); it is not documented, and no public attribute
    names the command (checked against alembic 1.20).  ``None``: no command line (a library
    calling ``alembic.command`` directly).
    """
    cmd = getattr(cmd_opts, "cmd", None)
    return getattr(cmd[0], "__name__", None) if cmd else None


#: The renderers :func:`register_renderer` registered, by operation class.
_RENDERERS: dict[type, Callable[..., Any]] = {}


def register_renderer(op_class: type, render: Callable[..., Any]) -> None:
    """Make autogenerate render *op_class* with *render*, in the whole process, once.

    Alembic's route is public (``alembic.autogenerate.renderers.dispatch_for``) but global:
    one registry per process, and a second registration of one class raises.  Every
    registration of the package happens here, when first needed; a second call for the same
    class does nothing (checked against alembic 1.20).  A renderer someone else registered
    for the class first still makes this raise, as before.
    """
    from alembic.autogenerate import renderers

    with _HOOK_LOCK:
        if _RENDERERS.get(op_class) is render:
            return
        renderers.dispatch_for(op_class)(render)
        _RENDERERS[op_class] = render


def set_read_only(dialect: sa.engine.Dialect, dbapi_connection: Any) -> None:
    """Make every transaction of a PostgreSQL driver connection READ ONLY.

    ``set_readonly()`` is a method of SQLAlchemy's PostgreSQL dialects (psycopg, psycopg2,
    asyncpg...) only, undocumented and untyped there (checked against SQLAlchemy 2.1).  The
    public route, the ``postgresql_readonly`` execution option, sets it per connection
    checkout; here it is set once when the driver connection is made (a ``connect`` event).
    Raises ``NotImplementedError`` for a driver SQLAlchemy cannot switch.
    """
    dialect.set_readonly(dbapi_connection, True)  # type: ignore[attr-defined]


def add_import_hook(finder: Any) -> None:
    """Ask *finder* first about every import from now on (``sys.meta_path``, process-wide).

    Python's public import hook, but process-wide: every thread's imports see the finder
    until :func:`remove_import_hook`.  Used while the bot module is imported, to guard the
    Discord client library it imports (see ``extensions.StartGuard``).
    """
    sys.meta_path.insert(0, finder)


def remove_import_hook(finder: Any) -> None:
    """Undo :func:`add_import_hook` (nothing when the finder is gone already)."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(finder)


def replace_class_attribute(cls: type, name: str, value: Any) -> None:
    """Set *name* of *cls* (a Discord client class) to *value*, for every instance in the process.

    Makes ``Client.run`` / ``start`` / ``login`` / ``connect`` of nextcord (checked against
    2.6), discord.py, py-cord and disnake refuse while the bot module is imported for
    migrations, and puts them back after: none of these libraries has a public way to
    forbid starting a client.  The caller keeps the original and restores it with this too.
    """
    setattr(cls, name, value)


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


def replace_operations(operations: Operations, *functions: Callable[..., Any]) -> None:
    """Make ``op.NAME`` (and *operations*.NAME) call each of *functions* for this instance only.

    Private by necessity: the ``op`` proxy is installed per class (Alembic's
    ``ModuleClsProxy._setups`` is keyed by the class, so an :class:`Operations` subclass is
    not reachable through ``op``), and it looks methods up on the instance, so an instance
    attribute of the function's name wins over the class's method (checked against
    alembic 1.20).  The class itself is untouched.
    """
    for function in functions:
        setattr(operations, function.__name__, function)


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
    the two places that make the placeholder (checked against alembic 1.20).  No public route:
    the revision file (which must run unchanged) only has the string, and SQLAlchemy's
    unambiguous target form (a token tuple) is new in SQLAlchemy 2.1 and rendered by no Alembic
    release.  Safe with several threads migrating at once: the two methods are replaced once,
    while any block is open (a count under a lock), and *is_table* is this block's own
    (a context variable), so every other caller, and every thread outside a block, gets
    Alembic's own reading.
    """
    token = _IS_TABLE.set(is_table)
    _hook_dotted_targets(+1)
    try:
        yield
    finally:
        _hook_dotted_targets(-1)
        _IS_TABLE.reset(token)


#: The *is_table* of the innermost open :func:`dotted_table_targets` block of this context.
_IS_TABLE: contextvars.ContextVar[IsTable | None] = contextvars.ContextVar("nxalembic_is_table", default=None)
_HOOK_LOCK = threading.Lock()
#: Open blocks in the process, and Alembic's two methods as they were before the first one.
_hook_users = 0
_hook_originals: dict[str, Any] = {}


def _hook_dotted_targets(change: int) -> None:
    """Replace Alembic's two placeholder methods when the first block opens, restore them after the last."""
    global _hook_users
    from alembic.operations.batch import ApplyBatchImpl
    from alembic.operations.schemaobj import SchemaObjects

    with _HOOK_LOCK:
        _hook_users += change
        if change > 0 and _hook_users == 1:
            _hook_originals["ensure"] = SchemaObjects._ensure_table_for_fk
            _hook_originals["setup"] = ApplyBatchImpl._setup_referent
            SchemaObjects._ensure_table_for_fk = _ensure_table_for_fk  # type: ignore[method-assign]
            ApplyBatchImpl._setup_referent = _setup_referent  # type: ignore[method-assign]
        elif change < 0 and _hook_users == 0:
            SchemaObjects._ensure_table_for_fk = _hook_originals["ensure"]  # type: ignore[method-assign]
            ApplyBatchImpl._setup_referent = _hook_originals["setup"]  # type: ignore[method-assign]


def _ensure_table_for_fk(self: SchemaObjects, metadata: sa.MetaData, fk: sa.ForeignKey) -> None:
    is_table = _IS_TABLE.get()
    context = self.migration_context
    target = None
    if is_table is not None:
        target = _dotted_target(fk, context.connection if context is not None else None, is_table)
    if target is None:
        return _hook_originals["ensure"](self, metadata, fk)  # type: ignore[no-any-return]
    _placeholder(metadata, target[0], [target[1]])
    return None


def _setup_referent(self: ApplyBatchImpl, metadata: sa.MetaData, constraint: sa.ForeignKeyConstraint) -> None:
    is_table = _IS_TABLE.get()
    connection = self.impl.connection
    targets = [_dotted_target(fk, connection, is_table) for fk in constraint.elements] if is_table else []
    if not targets or None in targets or len({t[0] for t in targets}) != 1:  # type: ignore[index]
        return _hook_originals["setup"](self, metadata, constraint)  # type: ignore[no-any-return]
    table = targets[0][0]  # type: ignore[index]
    if table != self.temp_table_name:
        _placeholder(metadata, table, [t[1] for t in targets])  # type: ignore[index]
    return None


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
