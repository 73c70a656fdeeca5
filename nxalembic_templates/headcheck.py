"""Is every cog at its head?  Answered without Alembic: the start-up API's fast path.

A bot that migrates itself (:mod:`.startup`) asks this on every start, and nearly always the
answer is yes.  Importing Alembic alone costs about a fifth of a 50-cog bot's own import, so
the question is answered from the files and one query instead:

* each cog's revisions folder is the one Alembic's route uses (:class:`.layout.CogLayout`);
  its revision files are *parsed*, not run (:mod:`ast`), for their literal ``revision``,
  ``down_revision`` and ``depends_on``; the head is the revision no other one builds on;
* one ``UNION ALL`` statement reads every cog's version table, on a read-only connection.

Whatever this cannot decide for certain answers "don't know" (``None``): a file whose ids are
not plain literals, a fork, an id the folder does not have, a version table that is missing,
a cog behind or ahead, a configuration it cannot read the way Alembic reads it.  The caller
then takes the full route (Alembic, under the migration lock), which also words every error.
So this module changes nothing, takes no lock, and raises nothing of its own; only a database
that cannot be reached at all is reported here (the full route would wait for it once more).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from .discovery import BotSchema
from .engines import database_url, models_url, with_connection
from .errors import NXAlembicError
from .layout import CogLayout
from .settings import read_alembic_ini

#: SQLite allows 500 terms in one compound SELECT.
UNION_BATCH = 200

#: A revision file's ids: name -> the literal assigned to it at module level.
Ids = dict[str, object]

#: The module-level names read from a revision file.
ID_NAMES = ("revision", "down_revision", "depends_on")

#: The first top-level ``def``, ``class`` or decorator: revision files assign their ids above it.
_FIRST_DEFINITION = re.compile(rb"^(?:def|async|class|@)", re.M)
#: Any mention of an id name (below the first definition, one sends the whole file to the parser).
_ID_MENTION = re.compile(rb"\b(?:revision|down_revision|depends_on)\b")


def heads_if_all_at_head(
    schema: BotSchema, alembic_ini: Path, url: str | None = None
) -> dict[str, list[str]] | None:
    """Each cog's head (in upgrade order) when every cog's database is at it, else ``None``.

    *url* is the caller's URL (as ``-x url=``); otherwise the one precedence of
    :func:`.engines.database_url` applies, with alembic.ini read as Alembic reads it
    (:func:`.settings.read_alembic_ini`).
    """
    options = read_alembic_ini(alembic_ini)
    if options is None:
        return None
    script_location = options.script_location
    try:
        order = schema.upgrade_order()
        layout = CogLayout.of(schema, script_location)
    except NXAlembicError:  # a foreign-key cycle, revisions in a source folder: the full route says so
        return None
    if any(len(cogs) > 1 for cogs in layout.by_folder.values()):
        return None
    heads: dict[str, list[str]] = {}
    for cog in order:
        head = folder_head(layout.locations[cog])
        if head is None:
            return None
        heads[cog] = head
    try:
        database = database_url(schema.settings, url, lambda: options.url, lambda: models_url(schema))
    except NXAlembicError:  # no URL, an empty url=: the full route words it
        return None
    tables = {cog: layout.version_tables[cog] for cog in order}
    current = with_connection(database, lambda connection: _versions(connection, tables), read_only=True)
    return heads if current == heads else None


def folder_head(folder: Path) -> list[str] | None:
    """The head of the history in *folder* (``[]`` when it has no revisions), or ``None``.

    ``None`` when the files do not make one plain, complete, unforked history: an id that is not
    a literal, two files with one id, a ``down_revision`` or ``depends_on`` outside the folder,
    more than one head (or none: a cycle).  The files Alembic would load are the ``*.py`` files
    of the folder itself (cogs' folders are not searched recursively), ``__init__.py`` and
    editor lock files (``.#name.py``) aside.
    """
    try:
        files = [path for path in folder.iterdir() if _is_revision_file(path)] if folder.is_dir() else []
    except OSError:
        return None
    revisions: set[str] = set()
    referenced: set[str] = set()
    for path in files:
        ids = _literal_ids(path)
        if ids is None:
            return None
        revision, down, depends = ids.get("revision"), ids.get("down_revision"), ids.get("depends_on")
        if not isinstance(revision, str) or revision in revisions:
            return None
        revisions.add(revision)
        for value in (down, depends):
            names = _id_list(value)
            if names is None:
                return None
            referenced.update(names)
    if not referenced <= revisions:
        return None
    heads = revisions - referenced
    if revisions and len(heads) != 1:
        return None
    return sorted(heads)


def _is_revision_file(path: Path) -> bool:
    name = path.name
    return name.endswith(".py") and name != "__init__.py" and not name.startswith(".#") and path.is_file()


def _literal_ids(path: Path) -> Ids | None:
    """The module-level literals assigned once to ``revision``, ``down_revision``, ``depends_on``."""
    try:
        source = path.read_bytes()
    except OSError:
        return None
    tree = _module_head(source, path)
    if tree is None:
        return None
    found: Ids = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.AugAssign):
            targets, value = [node.target], None
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name) or target.id not in ID_NAMES:
                if any(isinstance(n, ast.Name) and n.id in ID_NAMES for n in ast.walk(target)):
                    return None  # unpacked into, or assigned oddly: left to Alembic
                continue
            if target.id in found or value is None:
                return None
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    return found


def _module_head(source: bytes, path: Path) -> ast.Module | None:
    """The syntax tree of *source* down to its first definition, when that is all the ids can be in.

    Parsing the functions' bodies would cost most of the time and tell nothing: the ids are
    assigned above them.  The rest is parsed too when it mentions an id name at all, or when
    the head alone does not parse (the first ``def`` stood inside a string).
    """
    cut = _FIRST_DEFINITION.search(source)
    if cut is not None and not _ID_MENTION.search(source, cut.start()):
        try:
            return ast.parse(source[: cut.start()], str(path))
        except (SyntaxError, ValueError):
            pass
    try:
        return ast.parse(source, str(path))
    except (SyntaxError, ValueError):
        return None


def _id_list(value: object) -> list[str] | None:
    """A ``down_revision`` / ``depends_on`` literal as a list of ids (``None``: not one Alembic reads)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list)) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _versions(connection: Connection, tables: Mapping[str, str]) -> dict[str, list[str]] | None:
    """:func:`version_rows` of every cog; ``None`` when a version table is missing."""
    try:
        return version_rows(connection, tables)
    except SQLAlchemyError:
        return None
    finally:
        connection.rollback()


def version_rows(connection: Connection, tables: Mapping[str, str]) -> dict[str, list[str]]:
    """Each cog's version table rows (sorted), read in one ``UNION ALL`` per :data:`UNION_BATCH` cogs.

    *tables* maps each cog to its version table, which must exist.  Shared with
    :meth:`.runner.Project.currents`, the ``nxalembic upgrade`` fast path.
    """
    found: dict[str, list[str]] = {cog: [] for cog in tables}
    cogs = list(tables)
    quote = connection.dialect.identifier_preparer.quote
    for start in range(0, len(cogs), UNION_BATCH):
        batch = cogs[start : start + UNION_BATCH]
        # plain SQL text: compiling 200 SELECT constructs would cost more than running them
        statement = " UNION ALL ".join(
            f"SELECT {index} AS cog, version_num FROM {quote(tables[cog])}" for index, cog in enumerate(batch)
        )
        for index, version in connection.exec_driver_sql(statement):
            found[batch[index]].append(version)
    return {cog: sorted(versions) for cog, versions in found.items()}
