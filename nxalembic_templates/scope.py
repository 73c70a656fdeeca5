"""The per-cog scope: which tables one cog's Alembic run may see and touch.

Safety rule: a migration for cog X never creates, alters or drops a table X does not own,
and autogenerate never writes ``drop_table`` (drops are written by hand in a blank
revision).  Three layers enforce it, each cheap:

* ``include_name`` stops reflection of foreign tables, so other cogs' tables, unknown tables
  and version tables are not even read (thousands of them cost one name listing);
* ``include_object`` drops the "table was removed" comparison that would become a drop;
* ``process_revision_directives`` strips whatever is left that touches a foreign table and,
  when autogenerate found nothing, writes no file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.operations import ops

from .discovery import BotSchema, Cog, TableKey
from .errors import NXAlembicError


@dataclass
class CogScope:
    """Alembic hooks and names for one cog."""

    schema: BotSchema
    cog: Cog
    version_table: str
    version_location: Path

    @classmethod
    def for_cog(cls, schema: BotSchema, name: str | None, script_location: Path) -> CogScope:
        cog = schema.cog(name)
        locations = {
            other.name: schema.settings.version_location_for(other.name, other.directory, script_location)
            for other in schema.cogs.values()
        }
        for other, location in locations.items():
            if other != cog.name and location == locations[cog.name]:
                raise NXAlembicError(
                    f"cogs {cog.name!r} and {other!r} would share the revisions folder {location}; "
                    "put {cog} into version_location in nxalembic.ini"
                )
        return cls(
            schema=schema,
            cog=cog,
            version_table=schema.settings.version_table_for(cog.name),
            version_location=locations[cog.name],
        )

    # -- ownership -----------------------------------------------------------------------------

    @property
    def own_tables(self) -> frozenset[TableKey]:
        return self.cog.table_keys

    def owns(self, name: str | None, schema: str | None = None) -> bool:
        return (schema, name) in self.own_tables

    # -- Alembic hooks ---------------------------------------------------------------------------

    def include_name(self, name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        """Reflect only this cog's own tables (never other cogs', unknown or version tables)."""
        if type_ == "table":
            return self.owns(name, parent_names.get("schema_name"))
        return True

    def include_object(
        self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        """Compare only own tables, and never propose dropping a table."""
        if type_ == "table":
            if reflected and compare_to is None:
                return False  # present in the database, absent from the models: a drop
            return self.owns(obj.name, obj.schema)
        table = getattr(obj, "table", None)
        if table is not None:
            return self.owns(table.name, table.schema)
        return True

    def process_revision_directives(self, context: Any, revision: Any, directives: list) -> None:
        """Keep only operations on own tables; skip writing a file for an empty autogenerate."""
        autogenerate = _is_autogenerate(context)
        for script in directives:
            script.version_path = str(self.version_location)
            if autogenerate:
                for upgrade_ops in script.upgrade_ops_list:
                    upgrade_ops.ops[:] = list(self._allowed(upgrade_ops.ops))
                for downgrade_ops in script.downgrade_ops_list:
                    downgrade_ops.ops[:] = list(self._allowed(downgrade_ops.ops, downgrade=True))
        if autogenerate and _command(context) == "revision":
            if all(ops_.is_empty() for script in directives for ops_ in script.upgrade_ops_list):
                directives[:] = []
                context.config.print_stdout(
                    f"No changes in schema detected for cog {self.cog.name!r}; no revision written."
                )
                return
        for script in directives:
            if autogenerate and not script.message:
                script.message = revision_message(script.upgrade_ops_list)
        if directives and _command(context) != "check":
            self.version_location.mkdir(parents=True, exist_ok=True)

    def _allowed(self, operations: Iterable[Any], downgrade: bool = False) -> Iterable[Any]:
        for op in operations:
            if isinstance(op, ops.ModifyTableOps):
                if self.owns(op.table_name, op.schema):
                    op.ops[:] = list(self._allowed(op.ops, downgrade))
                    if op.ops:
                        yield op
                continue
            if isinstance(op, ops.DropTableOp) and not downgrade:
                continue
            table_name = getattr(op, "table_name", None)
            if table_name is not None and not self.owns(table_name, getattr(op, "schema", None)):
                continue
            yield op


def _command(context: Any) -> str | None:
    """Name of the Alembic command being run (``revision``, ``check``...), if it can be told."""
    config = context.config
    name = config.attributes.get("nxalembic.command")
    if name:
        return str(name)
    cmd = getattr(getattr(config, "cmd_opts", None), "cmd", None)
    if cmd:
        return getattr(cmd[0], "__name__", None)
    return None


def _is_autogenerate(context: Any) -> bool:
    opts = getattr(context, "opts", {}) or {}
    revision_context = opts.get("revision_context")
    args = getattr(revision_context, "command_args", None)
    if isinstance(args, dict) and "autogenerate" in args:
        return bool(args["autogenerate"])
    return bool(getattr(context.config.cmd_opts, "autogenerate", False))


def revision_message(upgrade_ops_list: Iterable[ops.UpgradeOps]) -> str:
    """A message derived from the operations, for revisions made without ``-m``.

    ``create_song``-style names: ``create_music_songs``, ``add_music_songs_artist``...
    """
    names: list[str] = []
    for upgrade_ops in upgrade_ops_list:
        for op in upgrade_ops.ops:
            names.extend(_op_names(op))
    names = list(dict.fromkeys(names))
    if not names:
        return "no_changes"
    if len(names) > 2:
        return f"{names[0]}_and_{len(names) - 1}_more"
    return "_and_".join(names)


def _op_names(op: Any) -> list[str]:
    if isinstance(op, ops.ModifyTableOps):
        return [name for sub in op.ops for name in _op_names(sub)]
    table = getattr(op, "table_name", None)
    if isinstance(op, ops.CreateTableOp):
        return [f"create_{table}"]
    if isinstance(op, ops.DropTableOp):
        return [f"drop_{table}"]
    if isinstance(op, ops.AddColumnOp):
        return [f"add_{table}_{op.column.name}"]
    if isinstance(op, ops.DropColumnOp):
        return [f"drop_{table}_{op.column_name}"]
    if isinstance(op, ops.AlterColumnOp):
        new = op.kw.get("modify_name")
        return [f"rename_{table}_{op.column_name}_to_{new}" if new else f"alter_{table}_{op.column_name}"]
    if isinstance(op, ops.CreateIndexOp):
        columns = [getattr(c, "name", c) for c in op.columns]
        return [f"index_{table}_{'_'.join(c for c in columns if isinstance(c, str)) or op.index_name}"]
    if isinstance(op, ops.DropIndexOp):
        return [f"drop_index_{op.index_name}"]
    if isinstance(op, ops.RenameTableOp):
        return [f"rename_{table}_to_{op.new_table_name}"]
    kind = type(op).__name__.removesuffix("Op")
    return [f"{kind.lower()}_{table}" if table else kind.lower()]
