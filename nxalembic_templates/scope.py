"""Internal: the per-cog scope: which tables one cog's Alembic run may see and touch.

Safety rule: a migration for cog X never creates, alters or drops a table X does not own,
and autogenerate never writes ``drop_table`` (drops are written by hand in a blank
revision).  Three layers enforce it, each cheap:

* ``include_name`` stops reflection of foreign tables, so other cogs' tables, unknown tables
  and version tables are not even read (thousands of them cost one name listing);
* ``include_object`` drops the "table was removed" comparison that would become a drop;
* ``process_revision_directives`` strips whatever is left that touches a foreign table and,
  when autogenerate found nothing, writes no file.  Drops of the cog's *own* tables (those
  its revisions created) are added back only on explicit opt-in, see :mod:`.rewrite`.

Hooks env.py passes to ``run_migrations()`` (:class:`UserHooks`) are combined with these, never
put in their place: a name or object is compared only when both filters let it through (ours
first, so env.py's hook never even sees another cog's table), and env.py's
``process_revision_directives`` runs before ours, so whatever it adds is still filtered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from . import _compat
from .discovery import COG_NAME_ATTRIBUTE, BotSchema, Cog, TableKey
from .errors import NXAlembicError
from .headcheck import CogLayout
from .locking import MYSQL_DIALECTS
from .request import CogRequest, is_autogenerate
from .rewrite import DEFAULT_SLUG_LENGTH, Rewriter, note_statement_by_statement, revision_message

__all__ = ["SCREEN_COMMAND", "CogScope", "Screen", "UserHooks"]

log = logging.getLogger("nxalembic_templates")

#: Alembic names the version table's primary key constraint ``<version table>_pkc``.
VERSION_PK_SUFFIX = "_pkc"


class _AllBut(Mapping[str, Path]):
    """*mapping* without the key *left_out*, without copying it."""

    def __init__(self, mapping: Mapping[str, Path], left_out: str) -> None:
        self._mapping = mapping
        self._left_out = left_out

    def __getitem__(self, key: str) -> Path:
        if key == self._left_out:
            raise KeyError(key)
        return self._mapping[key]

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._mapping if key != self._left_out)

    def __len__(self) -> int:
        return len(self._mapping) - (self._left_out in self._mapping)


#: MariaDB / MySQL: the longest identifier (table, constraint, database name) the server accepts.
MYSQL_IDENTIFIER_MAX = 64


#: The Alembic hooks env.py may pass to ``run_migrations()``: combined with the package's own.
HOOK_OPTIONS = ("include_name", "include_object", "process_revision_directives")


@dataclass(frozen=True)
class UserHooks:
    """env.py's own Alembic hooks (keyword arguments of ``run_migrations()``), kept apart from ours.

    Spread into ``context.configure()`` they would replace the package's hooks, and a cog's run
    would then see, report and drop other cogs' tables; :class:`OwnTables` and
    :class:`CogScope` call them after (filters) or before (directives) their own instead.
    """

    include_name: Callable[..., Any] | None = None
    include_object: Callable[..., Any] | None = None
    process_revision_directives: Callable[..., Any] | None = None

    @classmethod
    def taken_from(cls, options: dict[str, Any]) -> UserHooks:
        """The hooks in *options*, removed from it (``None`` too), so none is spread over ours."""
        return cls(**{name: options.pop(name) for name in HOOK_OPTIONS if name in options})


class OwnTables:
    """The ``include_name`` / ``include_object`` hooks over a set of owned tables.

    One cog's (:class:`CogScope`) or several cogs' together (:class:`Screen`): the
    hooks are the same, only the set differs; env.py's own filters (:attr:`user_hooks`) apply
    on top of both alike, so the shared comparison and a cog's own see the same tables.
    """

    #: env.py's own hooks, combined with ours (set by :mod:`.environment`).
    user_hooks: UserHooks = UserHooks()

    @property
    def own_tables(self) -> frozenset[TableKey]:
        raise NotImplementedError

    def owns(self, name: str | None, schema: str | None = None) -> bool:
        return (schema, name) in self.own_tables

    @property
    def schemas(self) -> frozenset[str]:
        """The named database schemas (PostgreSQL) the tables live in, if any."""
        return frozenset(schema for schema, _name in self.own_tables if schema)

    def include_name(self, name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        """Reflect only the own tables (never other cogs', unknown or version tables), and only
        what env.py's own ``include_name`` lets through."""
        theirs = self.user_hooks.include_name
        return self._own_name(name, type_, parent_names) and (
            theirs is None or bool(theirs(name, type_, parent_names))
        )

    def _own_name(self, name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "table":
            return self.owns(name, parent_names.get("schema_name"))
        if type_ == "schema":  # None is the default schema; Alembic asks only with include_schemas
            return name is None or name in self.schemas
        return True

    def include_object(
        self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        """Compare only the own tables, never propose dropping a table, and compare only what
        env.py's own ``include_object`` lets through."""
        theirs = self.user_hooks.include_object
        return self._own_object(obj, type_, reflected, compare_to) and (
            theirs is None or bool(theirs(obj, name, type_, reflected, compare_to))
        )

    def _own_object(self, obj: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            if reflected and compare_to is None:
                return False  # present in the database, absent from the models: a drop
            return self.owns(obj.name, obj.schema)
        table = getattr(obj, "table", None)
        if table is not None:
            return self.owns(table.name, table.schema)
        return True


@dataclass
class CogScope(OwnTables):
    """Alembic hooks and names for one cog."""

    schema: BotSchema
    cog: Cog
    version_table: str
    version_location: Path
    #: What the run was asked to do (command, autogenerate flags).
    request: CogRequest = field(default_factory=CogRequest)
    #: Tables this cog's own revisions created (from a scratch replay); None when unknown.
    history: set[str] | None = None
    #: Every loaded cog's revisions folder, to name the cog a stray revision id belongs to.
    locations: dict[str, Path] = field(default_factory=dict)
    #: The dialect revisions are written for when autogenerate compares with a replay (offline);
    #: None: the dialect of the database compared with.
    target_dialect: str | None = None

    @classmethod
    def for_cog(
        cls, schema: BotSchema, name: str | None, script_location: Path, request: CogRequest | None = None
    ) -> CogScope:
        cog = schema.cog(name)
        layout = CogLayout.of(schema, script_location)
        location = layout.locations[cog.name]
        sharing = [other for other in layout.by_folder[location] if other != cog.name]
        if sharing:
            raise NXAlembicError(
                f"cogs {cog.name!r} and {sharing[0]!r} would share the revisions folder {location}; "
                f"put {{cog}} into version_location in {schema.settings.path.name}"
            )
        return cls(
            schema=schema,
            cog=cog,
            version_table=layout.version_tables[cog.name],
            version_location=location,
            locations=layout.locations,
            request=request or CogRequest(cog=cog.name),
        )

    @property
    def other_locations(self) -> Mapping[str, Path]:
        """The revisions folders of the other loaded cogs (a view: nothing is copied)."""
        return _AllBut(self.locations, self.cog.name)

    def check_dialect(self, dialect: Any) -> None:
        """Refuse a version table name the database would reject or cut short.

        Alembic names the table's primary key ``<version table>_pkc``, so that name must fit
        the dialect's identifier limit (PostgreSQL: 63) too.  A name cut short would not be
        this cog's configured table, and two long names could become one shared table.
        MariaDB / MySQL refuse identifiers over 64 characters, the primary key's name too
        (SQLAlchemy's limit for them, 255, is the one of aliases).
        """
        longest = MYSQL_IDENTIFIER_MAX if dialect.name in MYSQL_DIALECTS else dialect.max_identifier_length
        limit = longest - len(VERSION_PK_SUFFIX)
        if len(self.version_table) > limit:
            raise NXAlembicError(
                f"cog {self.cog.name!r}: version table {self.version_table!r} is {len(self.version_table)} "
                f"characters long and {dialect.name} allows {limit} (its primary key "
                f"<table>{VERSION_PK_SUFFIX} must fit in {longest}); shorten version_table "
                f"in {self.schema.settings.path.name}, or the cog name with {COG_NAME_ATTRIBUTE} = '...'"
            )

    def target_metadata(self) -> list[sa.MetaData]:
        """What autogenerate compares: the cog's own tables, listed per MetaData they belong to.

        The tables stay on their MetaData (foreign keys resolve as before); autogenerate then
        sorts and walks this cog's tables only, not every cog's (see :func:`metadata_views`).
        """
        return metadata_views(self.schema, self.cog.tables)

    # -- ownership -----------------------------------------------------------------------------

    @property
    def own_tables(self) -> frozenset[TableKey]:
        return self.cog.table_keys

    def referenced_tables(self) -> list[Any]:
        """Other cogs' tables that this cog's foreign keys point at."""
        found: dict[Any, Any] = {}
        for table in self.cog.tables:
            for fk in table.foreign_keys:
                try:
                    target = fk.column.table
                except Exception:  # unresolvable reference: nothing to stand in for
                    continue
                if not self.owns(target.name, target.schema):
                    found[(target.schema, target.name)] = target
        return list(found.values())

    # -- Alembic hooks ---------------------------------------------------------------------------

    def process_revision_directives(
        self, context: Any, revision: Any, directives: list[ops.MigrationScript]
    ) -> None:
        """Keep only operations on own tables, then apply renames, drops, guard and naming; on
        MariaDB / MySQL note in a revision of several statements that it is not all-or-nothing.

        env.py's own ``process_revision_directives`` runs first, so that what it adds or
        changes passes through the same filter.  An autogenerate that finds nothing writes no
        file (``revision`` only: ``check`` needs the empty script to report "no changes").
        """
        if self.user_hooks.process_revision_directives is not None:
            self.user_hooks.process_revision_directives(context, revision, directives)
        autogenerate = is_autogenerate(self.request, context)
        command = self.request.command
        for script in directives:
            script.version_path = str(self.version_location)
            if not autogenerate:
                continue
            rewriter = Rewriter(
                cog=self.cog.name,
                own_tables={name for _schema, name in self.own_tables},
                history=self.history,
                modelled={name for _schema, name in self.schema.all_table_keys()},
                request=self.request,
                include_drops=command == "check",
                refuse_column_drops=command == "revision",
            )
            for upgrade_ops, downgrade_ops in zip(
                script.upgrade_ops_list, script.downgrade_ops_list, strict=True
            ):
                upgrade_ops.ops[:] = list(self._allowed(upgrade_ops.ops))
                downgrade_ops.ops[:] = rewriter.rewrite(context.connection, upgrade_ops).ops
            for note in rewriter.notes:
                log.warning(note)
            if not script.message:
                script.message = revision_message(script.upgrade_ops_list, _slug_length(context))
            if command == "revision" and (self.target_dialect or context.dialect.name) in MYSQL_DIALECTS:
                for upgrade_ops in script.upgrade_ops_list:
                    note_statement_by_statement(upgrade_ops)
        if autogenerate and command == "revision":
            if all(ops_.is_empty() for script in directives for ops_ in script.upgrade_ops_list):
                directives[:] = []
                context.config.print_stdout(
                    f"No changes in schema detected for cog {self.cog.name!r}; no revision written."
                )
                return
        if directives and command != "check":
            self.version_location.mkdir(parents=True, exist_ok=True)

    def _allowed(self, operations: Iterable[Any]) -> Iterable[Any]:
        """Drop every proposed operation on a table this cog's models do not define."""
        for op in operations:
            if isinstance(op, ops.ModifyTableOps):
                if self.owns(op.table_name, op.schema):
                    op.ops[:] = list(self._allowed(op.ops))
                    if op.ops:
                        yield op
                continue
            if isinstance(op, ops.DropTableOp):
                continue
            table_name = getattr(op, "table_name", None)
            if table_name is not None and not self.owns(table_name, getattr(op, "schema", None)):
                continue
            yield op


def metadata_views(schema: BotSchema, tables: Iterable[sa.Table]) -> list[sa.MetaData]:
    """*tables* listed per MetaData they belong to, each list in the order its MetaData sorts in.

    A view per MetaData (:func:`._compat.metadata_view`): the tables are not copied, so their
    foreign keys resolve as before, and autogenerate walks these tables only.
    """
    by_metadata: dict[int, tuple[sa.MetaData, list[sa.Table]]] = {}
    for table in tables:
        by_metadata.setdefault(id(table.metadata), (table.metadata, []))[1].append(table)
    views = []
    for metadata, listed in by_metadata.values():
        position = schema.derived.get(("table order", id(metadata)))
        if position is None:  # once per MetaData and process: the order the whole MetaData sorts in
            position = {table: i for i, table in enumerate(metadata.sorted_tables)}
            schema.derived[("table order", id(metadata))] = position
        views.append(_compat.metadata_view(sorted(listed, key=position.__getitem__), metadata))
    return views


def _slug_length(context: Any) -> int:
    """``truncate_slug_length`` of alembic.ini, as Alembic's script directory read it."""
    script = getattr(context, "script", None)
    return int(getattr(script, "truncate_slug_length", None) or DEFAULT_SLUG_LENGTH)


# ------------------------------------------------------------------------------------------------
# Many cogs at their head compared with the database in one autogenerate pass.
#
# ``nxalembic status`` and ``check`` (CI runs ``check`` on every push) ask every cog "do your
# models still match your migrations?".  Asked cog by cog, each answer costs an Alembic command,
# a run of env.py, a scratch replay of the cog's history, and one listing of *every* table in the
# database, so the whole command grows with cogs × tables.  Nearly always the answer is "no
# changes", and for a cog at its head that answer needs none of the per-cog work: comparing its
# own tables with the database is enough.  So the cogs at their head are first compared together,
# in one autogenerate pass (one run of env.py, one listing, each cog's own tables reflected once),
# and only the cogs this pass finds a difference in are compared again on their own, the full way,
# which words what they report.
#
# A cog's result is taken from the shared pass only where it cannot differ from its own run:
#
# * each cog's run compares its own tables only (``include_name`` / ``include_object`` of its
#   :class:`~.scope.CogScope`); the shared pass compares the union of those tables with the same
#   options (those env.py passes included), and autogenerate compares table by table, so a
#   cog's own run finds a difference exactly where the shared pass finds one on its tables;
# * a cog's own ``check`` also reports tables its revisions created that no loaded cog models
#   any more (drops, :mod:`.rewrite`), which needs the replay.  Such a table exists in the
#   database and no loaded cog owns it, so when the database holds tables outside the loaded
#   cogs' tables and version tables, a cog whose history (replayed) creates one of them is
#   compared on its own too (:func:`.compare.screened`);
# * env.py's own ``configure`` options apply to the shared pass as to each cog's run (it runs
#   through env.py too), its own ``include_name`` / ``include_object`` combined with the pass's
#   hooks exactly as with a cog's (:class:`~.scope.UserHooks`), except a
#   ``process_revision_directives`` of its own, which may change what a cog reports and which a
#   shared pass cannot run: then every cog is compared on its own, as when the pass fails in any
#   way (an env.py hook raising, say);
# * an operation this module cannot attribute to one table marks every cog as changed.
# ------------------------------------------------------------------------------------------------

#: The :attr:`.request.CogRequest.command` of the shared pass (env.py branches on it).
SCREEN_COMMAND = "screen"


@dataclass
class Screen(OwnTables):
    """The hooks and target of one autogenerate pass over several cogs' own tables."""

    schema: BotSchema
    cogs: tuple[str, ...]

    @classmethod
    def of(cls, schema: BotSchema, cogs: Sequence[str]) -> Screen:
        for name in cogs:
            schema.cog(name)  # an unknown name is the caller's mistake: say so, as for one cog
        return cls(schema=schema, cogs=tuple(cogs))

    @property
    def own_tables(self) -> frozenset[TableKey]:
        found = self.schema.derived.get(("screen tables", self.cogs))
        if found is None:  # include_name asks once per table of the database
            found = frozenset(key for name in self.cogs for key in self.schema.cogs[name].table_keys)
            self.schema.derived[("screen tables", self.cogs)] = found
        return found

    def target_metadata(self) -> list[sa.MetaData]:
        return metadata_views(self.schema, (t for name in self.cogs for t in self.schema.cogs[name].tables))

    def unchanged(self, operations: Iterable[Any]) -> set[str]:
        """The cogs none of *operations* (autogenerate's upgrade operations) touches."""
        changed: set[str] = set()
        for op in operations:
            # autogenerate writes table operations and ModifyTableOps (holding the column, index
            # and constraint changes of one table) at the top level, all with a table_name
            table_name = getattr(op, "table_name", None)
            owner = self.schema.owner_of((getattr(op, "schema", None), table_name)) if table_name else None
            if owner is None:
                return set()  # cannot tell whose it is: every cog is compared on its own
            changed.add(owner)
        return set(self.cogs) - changed
