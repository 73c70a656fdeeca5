"""Many cogs at their head compared with the database in one autogenerate pass.

``nxalembic status`` and ``check`` (CI runs ``check`` on every push) ask every cog "do your
models still match your migrations?".  Asked cog by cog, each answer costs an Alembic command,
a run of env.py, a scratch replay of the cog's history, and one listing of *every* table in the
database, so the whole command grows with cogs × tables.  Nearly always the answer is "no
changes", and for a cog at its head that answer needs none of the per-cog work: comparing its
own tables with the database is enough.  So the cogs at their head are first compared together,
in one autogenerate pass (one run of env.py, one listing, each cog's own tables reflected once),
and only the cogs this pass finds a difference in are compared again on their own, the full way,
which words what they report.

A cog's result is taken from the shared pass only where it cannot differ from its own run:

* each cog's run compares its own tables only (``include_name`` / ``include_object`` of its
  :class:`~.scope.CogScope`); the shared pass compares the union of those tables with the same
  options (those env.py passes included), and autogenerate compares table by table, so a
  cog's own run finds a difference exactly where the shared pass finds one on its tables;
* a cog's own ``check`` also reports tables its revisions created that no loaded cog models
  any more (drops, :mod:`.rewrite`), which needs the replay.  Such a table exists in the
  database and no loaded cog owns it, so when the database holds tables outside the loaded
  cogs' tables and version tables, a cog whose history (replayed) creates one of them is
  compared on its own too (:meth:`.runner.Project.screened`);
* env.py's own ``configure`` options apply to the shared pass as to each cog's run (it runs
  through env.py too), its own ``include_name`` / ``include_object`` combined with the pass's
  hooks exactly as with a cog's (:class:`~.scope.UserHooks`), except a
  ``process_revision_directives`` of its own, which may change what a cog reports and which a
  shared pass cannot run: then every cog is compared on its own, as when the pass fails in any
  way (an env.py hook raising, say);
* an operation this module cannot attribute to one table marks every cog as changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .discovery import BotSchema, TableKey
from .scope import OwnTables, metadata_views

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
