"""What autogenerate may propose for one cog, beyond stock Alembic.

* **Scratch replay**: the cog's own revisions are replayed into a scratch database (SQLite
  in memory by default).  That tells which tables the cog's history created (the tables it
  *owns*), and lets ``offline`` autogenerate run with no live database at all.
* **Drops** of owned tables whose model is gone: reported always, written only on opt-in.
* **Renames** from hints (or from answers at a prompt) instead of drop + create.
* **Guard** against adding a NOT NULL column without a server default.
* **Naming** of revisions made without ``-m``.

Nothing here widens the safety rule: a table is only ever proposed for a drop or a rename
when this cog's own revisions created it and no loaded cog models it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, renderers
from alembic.config import Config
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from .errors import NXAlembicError, failing_revision, hide_password

#: ``config.attributes`` keys the nxalembic command sets (the stock route uses ``-x``).
OFFLINE_KEY = "nxalembic.offline"
ALLOW_DROPS_KEY = "nxalembic.allow_drops"
RENAMES_KEY = "nxalembic.renames"
ASK_KEY = "nxalembic.ask"
AUTOGENERATE_KEY = "nxalembic.autogenerate"

DEFAULT_SCRATCH_URL = "sqlite://"
#: Alembic's default ``truncate_slug_length`` and its rule for the words of a file name.
DEFAULT_SLUG_LENGTH = 40
_SLUG_WORD = re.compile(r"\w+")
log = logging.getLogger("nxalembic_templates")
TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class RenameHint:
    """``old_table:new_table`` or ``table.old_column:new_column``."""

    old: str
    new: str
    table: str | None = None  # set for a column rename

    @classmethod
    def parse(cls, text: str) -> RenameHint:
        old, sep, new = text.partition(":")
        table, dot, column = old.partition(".")
        if not sep or not old or not new or "." in new or (dot and not (table and column)):
            raise NXAlembicError(
                f"rename hint {text!r} is not old_table:new_table or table.old_column:new_column"
            )
        return cls(old=column, new=new, table=table) if dot else cls(old=old, new=new)


@dataclass
class AutogenOptions:
    offline: bool = False
    allow_drops: bool = False
    renames: list[RenameHint] = field(default_factory=list)
    scratch_url: str = DEFAULT_SCRATCH_URL
    ask: Callable[[str], bool] | None = None

    @classmethod
    def from_config(cls, config: Config) -> AutogenOptions:
        """From ``-x offline=true -x allow_drops=true -x rename=a:b -x scratch_url=...``
        or from the attributes the nxalembic command sets."""
        x = _x_values(config)
        attrs = config.attributes

        def flag(key: str, attr: str) -> bool:
            return bool(attrs.get(attr)) or any(v.lower() in TRUE for v in x.get(key, []))

        hints = [h for value in x.get("rename", []) for h in value.split(",") if h]
        hints += list(attrs.get(RENAMES_KEY, []))
        return cls(
            offline=flag("offline", OFFLINE_KEY),
            allow_drops=flag("allow_drops", ALLOW_DROPS_KEY),
            renames=[RenameHint.parse(h) for h in hints],
            scratch_url=(x.get("scratch_url") or [DEFAULT_SCRATCH_URL])[-1],
            ask=attrs.get(ASK_KEY),
        )


def _x_values(config: Config) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for pair in getattr(config.cmd_opts, "x", None) or []:
        key, _, value = pair.partition("=")
        values.setdefault(key, []).append(value)
    return values


def is_autogenerate_run(config: Config) -> bool:
    """``revision --autogenerate`` or ``check``, from the stock command line or from ours."""
    if config.attributes.get(AUTOGENERATE_KEY):
        return True
    opts = config.cmd_opts
    cmd = getattr(opts, "cmd", None)
    name = getattr(cmd[0], "__name__", "") if cmd else ""
    return name == "check" or (name == "revision" and bool(getattr(opts, "autogenerate", False)))


# -- scratch replay ------------------------------------------------------------------------------


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

    def create_foreign_key(constraint_name: str | None, source_table: str, referent_table: str,
                           local_cols: list[str], remote_cols: list[str], *,
                           source_schema: str | None = None, **kw: Any) -> None:
        with operations.batch_alter_table(source_table, schema=source_schema, recreate="always") as batch:
            batch.create_foreign_key(constraint_name, referent_table, local_cols, remote_cols, **kw)

    def create_unique_constraint(constraint_name: str | None, table_name: str, columns: list[str], *,
                                 schema: str | None = None, **kw: Any) -> None:
        with operations.batch_alter_table(table_name, schema=schema, recreate="always") as batch:
            batch.create_unique_constraint(constraint_name, columns, **kw)

    def drop_constraint(constraint_name: str, table_name: str, type_: str | None = None, *,
                        schema: str | None = None, **kw: Any) -> None:
        with operations.batch_alter_table(table_name, schema=schema, recreate="always") as batch:
            batch.drop_constraint(constraint_name, type_=type_)

    # Instance attributes win over the class's methods when the ``op`` proxy is installed.
    for function in (alter_column, create_foreign_key, create_unique_constraint, drop_constraint):
        setattr(operations, function.__name__, function)
    return operations


def _scratch_error(url: str, exc: BaseException) -> NXAlembicError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return NXAlembicError(
        hide_password(url, f"cannot open the scratch database {hide_password(url)}: {type(exc).__name__}: "
                      f"{detail}; -x scratch_url= must be a database you can write to and throw away "
                      "(default: sqlite://, in memory)")
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
def scratch_database(script: ScriptDirectory, version_table: str, cog: str,
                     url: str = DEFAULT_SCRATCH_URL, referenced: Iterable[sa.Table] = ()) -> Iterator[Connection]:
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
                opts={"version_table": version_table, "fn": lambda rev, _ctx: script._upgrade_revs("heads", rev)},
            )
            sqlite = connection.dialect.name == "sqlite"
            operations = _sqlite_replay_operations(context) if sqlite else Operations(context)
            alembic_log = logging.getLogger("alembic")
            level = alembic_log.level
            alembic_log.setLevel(logging.WARNING)  # the replay is an implementation detail
            operations._install_proxy()  # what Operations.context() does, with our subclass
            try:
                with context.begin_transaction():
                    context.run_migrations()
                connection.commit()
            except NXAlembicError:
                raise
            except Exception as exc:
                revision = failing_revision(exc) or "?"
                raise NXAlembicError(
                    f"cog {cog!r}: replaying revision {revision} into the scratch database {hide_password(url)!r} failed: "
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}; "
                    "pass a scratch database of your kind with -x scratch_url=..."
                ) from exc
            finally:
                operations._remove_proxy()
                alembic_log.setLevel(level)
            yield connection
    finally:
        engine.dispose()


def history_tables(connection: Connection, version_table: str) -> set[str]:
    """Tables in a scratch database: the tables the cog's own revisions created."""
    stubs = connection.info.get("nxalembic.stubs", set())
    return set(sa.inspect(connection).get_table_names()) - {version_table} - stubs


def portable_compare_type(scratch_dialect: str) -> Callable[..., bool | None]:
    """``compare_type`` for offline runs: types the scratch database cannot hold faithfully are
    reported in a warning instead of as a spurious type change."""

    def compare_type(context: Any, inspected_column: Any, metadata_column: Any,
                     inspected_type: Any, metadata_type: Any) -> bool | None:
        module = type(metadata_type).__module__
        foreign_dialect = module.startswith("sqlalchemy.dialects.") and f".{scratch_dialect}" not in module
        timezone = getattr(metadata_type, "timezone", False) and scratch_dialect == "sqlite"
        if foreign_dialect or timezone:
            log.warning(
                "%s.%s: type %r cannot be stored faithfully in the %s scratch database; its changes are "
                "not detected offline (use -x scratch_url= with your database kind, or a live database)",
                metadata_column.table.name, metadata_column.name, metadata_type, scratch_dialect,
            )
            return False
        return None

    return compare_type


# Alembic's autogenerate never proposes a table rename itself, so it ships no renderer for one.
@renderers.dispatch_for(ops.RenameTableOp)
def _render_rename_table(autogen_context: Any, op: ops.RenameTableOp) -> str:
    prefix = autogen_context.opts.get("alembic_module_prefix", "op.")
    schema = f", schema={op.schema!r}" if op.schema else ""
    return f"{prefix}rename_table({op.table_name!r}, {op.new_table_name!r}{schema})"


# -- rewriting the proposed operations --------------------------------------------------------------


@dataclass
class Rewriter:
    """Rewrites one autogenerated script for one cog: renames, drops, guard, naming."""

    cog: str
    own_tables: set[str]
    #: Tables the cog's history created, or None when unknown (no replay was done).
    history: set[str] | None
    #: Tables modelled by any loaded cog.
    modelled: set[str]
    options: AutogenOptions
    include_drops: bool = False  # `check` reports drops even without the opt-in
    notes: list[str] = field(default_factory=list)
    dialect: Any = None

    @property
    def droppable(self) -> set[str]:
        """Owned by history, modelled by no loaded cog."""
        return set() if self.history is None else self.history - self.modelled

    def rewrite(self, connection: Connection | None, upgrade_ops: ops.UpgradeOps) -> ops.DowngradeOps:
        self.dialect = connection.dialect if connection is not None else None
        used_tables = self._rename_tables(connection, upgrade_ops)
        self._rename_columns(upgrade_ops)
        self._drops(connection, upgrade_ops, self.droppable - used_tables)
        self._guard(upgrade_ops)
        return reverse_ops(upgrade_ops)

    # table renames ------------------------------------------------------------------------

    def _rename_tables(self, connection: Connection | None, upgrade_ops: ops.UpgradeOps) -> set[str]:
        # hints about other cogs' tables are theirs (nxalembic migrate passes every hint to every cog)
        pairs = {h.old: h.new for h in self.options.renames if h.table is None and h.new in self.own_tables}
        creates = {op.table_name: op for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)}
        if self.options.ask:
            for old in sorted(self.droppable - set(pairs)):
                for new in sorted(set(creates) - set(pairs.values())):
                    if self.options.ask(f"Did you rename table {old} to {new}? [y/N] "):
                        pairs[old] = new
                        break
        used: set[str] = set()
        for old, new in pairs.items():
            if new not in creates:
                raise NXAlembicError(
                    f"cog {self.cog!r}: rename hint {old}:{new} does not match a new table of this cog "
                    f"(new tables: {', '.join(sorted(creates)) or 'none'})"
                )
            if old not in self.droppable:
                raise NXAlembicError(
                    f"cog {self.cog!r}: cannot rename table {old!r}: it was not created by this cog's "
                    "revisions or is still modelled"
                )
            create = creates[new]
            index = upgrade_ops.ops.index(create)
            replacement: list[Any] = [ops.RenameTableOp(old, new, schema=create.schema)]
            if connection is not None:
                replacement += _table_changes(connection, create.to_table(), old, new)
            upgrade_ops.ops[index:index + 1] = replacement
            used.add(old)
        return used

    # column renames -----------------------------------------------------------------------

    def _rename_columns(self, upgrade_ops: ops.UpgradeOps) -> None:
        hinted = {
            (h.table, h.old): h.new for h in self.options.renames if h.table is not None and h.table in self.own_tables
        }
        for table_ops in [op for op in upgrade_ops.ops if isinstance(op, ops.ModifyTableOps)]:
            drops = {op.column_name: op for op in table_ops.ops if isinstance(op, ops.DropColumnOp)}
            adds = {op.column.name: op for op in table_ops.ops if isinstance(op, ops.AddColumnOp)}
            pairs = {old: new for (table, old), new in hinted.items() if table == table_ops.table_name}
            if self.options.ask:
                for old, drop in drops.items():
                    if old in pairs:
                        continue
                    for new, add in adds.items():
                        if new not in pairs.values() and _same_kind(drop.to_column().type, add.column.type) and \
                                self.options.ask(f"Did you rename {table_ops.table_name}.{old} to {new}? [y/N] "):
                            pairs[old] = new
                            break
            for old, new in pairs.items():
                if old not in drops or new not in adds:
                    raise NXAlembicError(
                        f"cog {self.cog!r}: rename hint {table_ops.table_name}.{old}:{new} does not match a "
                        "removed and an added column of that table"
                    )
                before, after = drops[old].to_column(), adds[new].column
                alter = ops.AlterColumnOp(
                    table_ops.table_name, old, schema=table_ops.schema, modify_name=new,
                    existing_type=before.type, existing_nullable=before.nullable,
                    existing_server_default=before.server_default,
                )
                if not _same_type(before.type, after.type, self.dialect):
                    alter.modify_type = after.type
                if before.nullable != after.nullable:
                    alter.modify_nullable = after.nullable
                index = table_ops.ops.index(drops[old])
                table_ops.ops[index] = alter
                table_ops.ops.remove(adds[new])
            missing = {(t, o) for (t, o) in hinted if t == table_ops.table_name} - {
                (table_ops.table_name, o) for o in pairs
            }
            if missing:
                raise NXAlembicError(f"cog {self.cog!r}: rename hint for {missing} matched no change")
        unmatched = {t for (t, _o) in hinted} - {
            op.table_name for op in upgrade_ops.ops if isinstance(op, ops.ModifyTableOps)
        }
        if unmatched:
            raise NXAlembicError(
                f"cog {self.cog!r}: rename hint for table(s) {', '.join(sorted(unmatched))} matched no change "
                "(is the model renamed and the column removed/added in one step?)"
            )

    # drops ------------------------------------------------------------------------------

    def _drops(self, connection: Connection | None, upgrade_ops: ops.UpgradeOps, tables: set[str]) -> None:
        if not tables:
            return
        if not (self.options.allow_drops or self.include_drops):
            self.notes.append(
                f"cog {self.cog!r}: table(s) {', '.join(sorted(tables))} created by this cog's revisions are no "
                "longer modelled; no drop written (rerun with --allow-drops / -x allow_drops=true to drop them)"
            )
            return
        if connection is None:
            return
        existing = set(sa.inspect(connection).get_table_names())
        reflected = sa.MetaData()
        for name in sorted(tables & existing):
            # resolve_fks=False: tables it references may belong to cogs that are not loaded
            sa.Table(name, reflected, autoload_with=connection, resolve_fks=False)
        for table in _referencing_first(list(reflected.tables.values())):
            upgrade_ops.ops.append(ops.DropTableOp.from_table(table))

    # guard ------------------------------------------------------------------------------

    def _guard(self, upgrade_ops: ops.UpgradeOps) -> None:
        for table_ops in upgrade_ops.ops:
            if not isinstance(table_ops, ops.ModifyTableOps):
                continue
            for op in table_ops.ops:
                if isinstance(op, ops.AddColumnOp):
                    column = op.column
                    if not column.nullable and column.server_default is None and not column.primary_key:
                        dropped = [o.column_name for o in table_ops.ops if isinstance(o, ops.DropColumnOp)]
                        hint = (
                            f" (a rename? pass -x rename={table_ops.table_name}.{dropped[0]}:{column.name})"
                            if dropped else ""
                        )
                        raise NXAlembicError(
                            f"cog {self.cog!r}: adding NOT NULL column {table_ops.table_name}.{column.name} without "
                            "a server default fails on any non-empty table; make it nullable (nullable=True) or "
                            f"give it a server default (server_default=...) in the model{hint}"
                        )


def _referencing_first(tables: list[sa.Table]) -> list[sa.Table]:
    """Order tables so that each comes before the tables (of this list) it references."""
    names = {t.name for t in tables}
    refs = {t.name: {fk.target_fullname.rsplit(".", 1)[0].rsplit(".", 1)[-1] for fk in t.foreign_keys} & names - {t.name}
            for t in tables}
    ordered: list[sa.Table] = []
    remaining = sorted(tables, key=lambda t: t.name)
    while remaining:
        # a table can go once no remaining table references it
        ready = [t for t in remaining if not any(t.name in refs[o.name] for o in remaining if o is not t)]
        chosen = ready[0] if ready else remaining[0]  # a cycle: any order, the database will say
        ordered.append(chosen)
        remaining.remove(chosen)
    return ordered


def _same_type(a: Any, b: Any, dialect: Any) -> bool:
    """Whether two column types render to the same DDL on *dialect*."""
    try:
        return bool(a.compile(dialect=dialect) == b.compile(dialect=dialect))
    except Exception:
        return repr(a) == repr(b)


def _same_kind(a: Any, b: Any) -> bool:
    return getattr(a, "_type_affinity", type(a)) is getattr(b, "_type_affinity", type(b))


def _table_changes(connection: Connection, model_table: sa.Table, old: str, new: str) -> list[Any]:
    """Column changes between the existing table *old* and the model table *new*, as ops on *new*."""
    metadata = sa.MetaData()
    model_table.to_metadata(metadata, name=old)
    context = MigrationContext.configure(
        connection,
        opts={
            "include_name": lambda name, type_, _p: type_ != "table" or name == old,
            "compare_type": True,
            "target_metadata": metadata,
        },
    )
    changes = produce_migrations(context, metadata).upgrade_ops
    result = []
    for table_ops in changes.ops if changes else []:
        if isinstance(table_ops, ops.ModifyTableOps):
            for op in table_ops.ops:
                if hasattr(op, "table_name"):
                    op.table_name = new
            result.append(ops.ModifyTableOps(new, table_ops.ops, schema=table_ops.schema))
    return result


def reverse_ops(upgrade_ops: ops.UpgradeOps) -> ops.DowngradeOps:
    """Alembic's reversal, plus the two reversals it does not know (renames)."""
    return ops.DowngradeOps(ops=[_reverse(op) for op in reversed(upgrade_ops.ops)])


def _reverse(op: Any) -> Any:
    if isinstance(op, ops.ModifyTableOps):
        return ops.ModifyTableOps(op.table_name, [_reverse(o) for o in reversed(op.ops)], schema=op.schema)
    if isinstance(op, ops.RenameTableOp):
        return ops.RenameTableOp(op.new_table_name, op.table_name, schema=op.schema)
    if isinstance(op, ops.AlterColumnOp) and op.modify_name:
        reverse = ops.AlterColumnOp(
            op.table_name, op.modify_name, schema=op.schema, modify_name=op.column_name,
            existing_type=op.modify_type or op.existing_type,
            existing_nullable=op.existing_nullable if op.modify_nullable is None else op.modify_nullable,
            existing_server_default=op.existing_server_default,
        )
        if op.modify_type is not None:
            reverse.modify_type = op.existing_type
        if op.modify_nullable is not None:
            reverse.modify_nullable = op.existing_nullable
        return reverse
    return op.reverse()


def revision_message(upgrade_ops_list: Iterable[ops.UpgradeOps], limit: int = DEFAULT_SLUG_LENGTH) -> str:
    """A message derived from the operations, for revisions made without ``-m``:
    ``create_music_songs``, ``add_music_songs_artist``, ``rename_music_songs_title_to_name``...

    Alembic names the file after the message and cuts that name at *limit* characters
    (``truncate_slug_length``), mid-word and with a trailing ``_``.  So the message is made to
    fit here: as many whole operation names as fit, and a count of the rest
    (``create_music_songs_and_2_more``); else the first name alone; else its first words.
    """
    names: list[str] = []
    for upgrade_ops in upgrade_ops_list:
        for op in upgrade_ops.ops:
            names.extend(_op_names(op))
    names = list(dict.fromkeys(names))
    if not names:
        return "no_changes"
    for count in range(len(names), 0, -1):
        rest = len(names) - count
        more = f"_and_{rest}_more" if rest else ""
        message = "_and_".join(names[:count]) + more
        if len(slug(message)) <= limit:
            return message
    return names[0] if len(slug(names[0])) <= limit else _cut_at_word(slug(names[0]), limit)


def slug(message: str) -> str:
    """The part of a revision file name Alembic makes from *message* (before truncation)."""
    return "_".join(_SLUG_WORD.findall(message)).lower()


def _cut_at_word(text: str, limit: int) -> str:
    """*text* cut to at most *limit* characters at a ``_`` (mid-word only if one word is longer)."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit("_", 1)[0]
    return cut if cut and len(cut) <= limit else text[: max(limit, 1)]


def docstring_text(text: str) -> str:
    """*text* escaped to sit between the triple quotes of a revision file's docstring.

    script.py.mako writes the message as is between triple quotes, and the message is user text
    (``-m``) or built from table names (an ormar ``tablename`` can be any string): a backslash
    (``C:\\Users``), a triple quote or a NUL would make a file that does not import, or one that
    runs code.  Python reads the escapes back, so ``__doc__`` (what ``alembic history`` shows)
    is *text* unchanged.
    """
    escaped = []
    for char in text:
        if char in '\\"':
            escaped.append("\\" + char)
        elif char in "\n\t" or char.isprintable():
            escaped.append(char)
        else:
            escaped.append(repr(char)[1:-1])  # \r, \x00, \u2028, a lone surrogate from argv
    return "".join(escaped)


def _op_names(op: Any) -> list[str]:
    if isinstance(op, ops.ModifyTableOps):
        return [name for sub in op.ops for name in _op_names(sub)]
    table = getattr(op, "table_name", None)
    if isinstance(op, ops.CreateTableOp):
        return [f"create_{table}"]
    if isinstance(op, ops.DropTableOp):
        return [f"drop_{table}"]
    if isinstance(op, ops.RenameTableOp):
        return [f"rename_{table}_to_{op.new_table_name}"]
    if isinstance(op, ops.AddColumnOp):
        return [f"add_{table}_{op.column.name}"]
    if isinstance(op, ops.DropColumnOp):
        return [f"drop_{table}_{op.column_name}"]
    if isinstance(op, ops.AlterColumnOp):
        new = op.modify_name
        return [f"rename_{table}_{op.column_name}_to_{new}" if new else f"alter_{table}_{op.column_name}"]
    if isinstance(op, ops.CreateIndexOp):
        columns = [getattr(c, "name", c) for c in op.columns]
        return [f"index_{table}_{'_'.join(c for c in columns if isinstance(c, str)) or op.index_name}"]
    if isinstance(op, ops.DropIndexOp):
        return [f"drop_index_{op.index_name}"]
    kind = type(op).__name__.removesuffix("Op")
    return [f"{kind.lower()}_{table}" if table else kind.lower()]
