"""Internal: where each cog's revisions and version table live; is every cog at its head?  No Alembic.

:class:`CogLayout` is asked by every route (stock ``alembic -x cog=``, ``nxalembic``, the start-up
fast path), so they never disagree; :func:`version_rows` is the one reader of version tables.
:func:`heads_if_all_at_head`, asked on every start by :mod:`.startup`, answers from the revision
files, *parsed* with :mod:`ast` (not run), and one ``UNION ALL`` on a read-only connection.
Whatever it cannot decide for certain is "don't know" (``None``): the caller takes the full route
(Alembic, under the lock), which words every error.  The fast path changes nothing, takes no lock.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from .discovery import BotSchema
from .engines import database_url, missing_sqlite_file, models_url, with_connection
from .errors import NXAlembicError
from .locking import LockPolicy
from .settings import read_alembic_ini

__all__ = ["CogLayout", "VersionRows", "heads_if_all_at_head", "nested_revisions", "version_rows"]

#: SQLite allows 500 terms in one compound SELECT.
UNION_BATCH = 200

#: A revision file's ids: name -> the literal assigned to it at module level.
Ids = dict[str, object]

#: The module-level names Alembic reads from a revision file (``Script``).
ID_NAMES = ("revision", "down_revision", "depends_on", "branch_labels")

#: Names whose binding anywhere but a plain top-level assignment makes the ids uncertain
#: (a module ``__getattr__`` answers for an id the file does not assign).
_WATCHED = frozenset(ID_NAMES) | {"__getattr__"}
#: Names and attributes that reach a module's namespace at run time.
_DYNAMIC = frozenset(
    {"globals", "vars", "locals", "exec", "eval", "setattr", "delattr", "__import__", "__dict__"}
    | {"__setattr__", "__delattr__", "__class__", "f_globals", "f_locals", "__builtins__", "builtins"}
    | {"gc", "ctypes"}
)
#: An id Alembic takes as it is: word characters only (none of ``@-+:``), not ``head(s)``/``base``.
_PLAIN_ID = re.compile(r"(?!(?:heads?|base)$)\w+")

#: One cog's version rows (sorted), or why its version table could not be read.
VersionRows = list[str] | SQLAlchemyError

#: The first top-level ``def``, ``class`` or decorator: revision files assign their ids above it.
_FIRST_DEFINITION = re.compile(rb"^(?:def|async|class|@)", re.M)
_SUSPECT_NAMES = tuple(name.encode() for name in sorted(_WATCHED | _DYNAMIC))
#: ``import *``, and a non-ASCII byte (an identifier NFKC-normalised to a watched name).
_SUSPECT_TEXT = re.compile(rb"import[\s\\]*\*|[\x80-\xff]")
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
#: A source encoding declaration (PEP 263).
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=]", re.M)

#: The file names Alembic's ``ScriptDirectory`` loads as revisions (``re.match``, as
#: ``alembic.script.base`` does; ``tests/test_property_heads.py`` keeps them equal).
REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
SOURCELESS_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)(c|o)?$")


@dataclass(frozen=True)
class CogLayout:
    """Every loaded cog's revisions folder and version table, kept on the :class:`~.discovery.BotSchema`."""

    locations: dict[str, Path]
    version_tables: dict[str, str]
    #: Revisions folder -> its cogs, in cog order.
    by_folder: dict[Path, list[str]]

    @classmethod
    def of(cls, schema: BotSchema, script_location: Path) -> CogLayout:
        key = (cls.__name__, script_location)
        layout = schema.derived.get(key)
        if layout is None:
            settings = schema.settings
            locations = {
                cog.name: settings.version_location_for(cog.name, cog.directory, script_location)
                for cog in schema.cogs.values()
            }
            _refuse_source_folders(schema, locations, script_location)  # an error is not cached
            by_folder: dict[Path, list[str]] = {}
            for name, location in locations.items():
                by_folder.setdefault(location, []).append(name)
            layout = schema.derived[key] = cls(
                locations=locations,
                version_tables={name: settings.version_table_for(name) for name in schema.cogs},
                by_folder=by_folder,
            )
        return layout


def _refuse_source_folders(schema: BotSchema, locations: dict[str, Path], script_location: Path) -> None:
    """A revisions folder holds revisions only: Alembic would load bot sources or env.py as ones."""
    sources = {cog.name: cog.directory.resolve() for cog in schema.cogs.values()}
    holding: dict[Path, str] = {}  # each source folder and its ancestors -> the first cog at or below it
    for cog, folder in sources.items():
        for ancestor in (folder, *folder.parents):
            holding.setdefault(ancestor, cog)
    for name, location in locations.items():
        if location == script_location:
            held = f"the scripts folder {script_location} (env.py)"
        else:
            inside = holding.get(location)
            if inside is None:
                continue
            held = f"the source folder of cog {inside!r}"
            if location != sources[inside]:
                held = f"a folder that contains the sources of cog {inside!r}"
        raise NXAlembicError(
            f"version_location = {schema.settings.version_location} in {schema.settings.path.name} puts the "
            f"revisions of cog {name!r} in {location}, {held}; Alembic would load those files as revisions: "
            "use a folder of their own, e.g. {cog_dir}/migrations or {script_location}/versions/{cog}"
        )


def nested_revisions(folder: Path, sourceless: bool = False) -> tuple[Path, list[str]] | None:
    """The first subfolder of a cog's revisions *folder* holding revision files, and their names.

    With ``recursive_version_locations`` Alembic lists them as heads, yet no route applies them.
    """
    pattern = SOURCELESS_REVISION_FILE if sourceless else REVISION_FILE
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        here = Path(root)
        if here == folder or (
            here.name.endswith("__pycache__") and (not sourceless or here.parent == folder)
        ):
            continue
        names = sorted(name for name in files if pattern.match(name))
        if names:
            return here, names
    return None


def heads_if_all_at_head(
    schema: BotSchema, alembic_ini: Path, url: str | None = None, lock: LockPolicy | None = None
) -> dict[str, list[str]] | None:
    """Each cog's head (in upgrade order) when every cog's database is at it, else ``None``.

    *url* is as ``-x url=``; *lock*'s timeout bounds the read's wait (:class:`~.errors.LockTimeout`).
    A SQLite file that does not exist is not created here.
    """
    options = read_alembic_ini(alembic_ini)
    if options is None:
        return None
    try:
        order = schema.upgrade_order()
        layout = CogLayout.of(schema, options.script_location)
    except NXAlembicError:  # a foreign-key cycle, revisions in a source folder: the full route says so
        return None
    if any(len(cogs) > 1 for cogs in layout.by_folder.values()):
        return None
    heads: dict[str, list[str]] = {}
    for cog in order:
        head = folder_head(layout.locations[cog])
        if not head:  # unknown, or no revisions: a cog with models and none is never ready
            return None
        heads[cog] = head
    try:
        database = database_url(schema.settings, url, lambda: options.url, lambda: models_url(schema))
    except NXAlembicError:  # no URL, an empty url=: the full route words it
        return None
    if missing_sqlite_file(database) is not None:
        return None
    tables = {cog: layout.version_tables[cog] for cog in order}

    def read(connection: Connection) -> dict[str, VersionRows] | None:
        try:
            return version_rows(connection, tables)
        except SQLAlchemyError:  # the database went away between the statements
            return None

    current = with_connection(database, read, read_only=True, lock=lock)
    return heads if current == heads else None  # a table that cannot be read (its error) is no head


def folder_head(folder: Path) -> list[str] | None:
    """The head of the history in *folder* (``[]`` when it has no revisions), or ``None``.

    Alembic's head: the revision no ``down_revision`` names (``depends_on`` makes no ancestor).
    ``None`` unless the files make one plain, complete, unforked history Alembic would load.
    """
    try:
        if not folder.is_dir():
            return []
        if nested_revisions(folder) is not None:
            return None
        files = []
        for path in folder.iterdir():
            match = REVISION_FILE.match(path.name)
            if match is None or path.is_dir():
                continue  # not loaded (a folder is walked, not loaded: see nested_revisions)
            if match.group(1) != path.name or not path.is_file():
                return None  # "x.py\n", a broken link, a pipe: what Alembic makes of it is not ours to say
            files.append(path)
    except OSError:
        return None
    down: dict[str, list[str]] = {}
    depends: dict[str, list[str]] = {}
    labels: list[str] = []
    for path in files:
        ids = _literal_ids(path)
        if ids is None or "down_revision" not in ids:  # no down_revision: Alembic cannot load the file
            return None
        revision = ids.get("revision")
        parents, needs, named = (
            _id_list(ids.get(key)) for key in ("down_revision", "depends_on", "branch_labels")
        )
        if not _plain_id(revision) or revision in down or parents is None or needs is None or named is None:
            return None
        down[revision], depends[revision] = parents, needs
        labels += named
    if len(set(labels)) != len(labels) or set(labels) & down.keys():
        return None  # Alembic refuses a branch label used twice, or one that is a revision id
    if not _acyclic_within(down, depends):
        return None
    heads = down.keys() - {parent for parents in down.values() for parent in parents}
    if down and len(heads) != 1:
        return None
    return sorted(heads)


def _plain_id(revision: object) -> TypeGuard[str]:
    """A revision id Alembic accepts as it is (``Revision.verify_rev_id``)."""
    return isinstance(revision, str) and _PLAIN_ID.fullmatch(revision) is not None


def _acyclic_within(down: Mapping[str, list[str]], depends: Mapping[str, list[str]]) -> bool:
    """Every ``down_revision`` / ``depends_on`` names a revision of the folder, each once, and no cycle."""
    edges: dict[str, list[str]] = {}
    for revision in down:
        targets = down[revision] + depends[revision]
        if len(set(targets)) != len(targets) or not set(targets) <= down.keys():
            return False
        edges[revision] = targets
    done: set[str] = set()
    for start in edges:  # depth-first, without recursion: a long history must not hit the limit
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                on_path.discard(node)
                done.add(node)
                continue
            if node in done:
                continue
            if node in on_path:
                return False
            on_path.add(node)
            stack.append((node, True))
            stack.extend((target, False) for target in edges[node] if target not in done)
    return True


def _literal_ids(path: Path) -> Ids | None:
    """The literals a revision file assigns to :data:`ID_NAMES`, when nothing else can set them.

    Each id must be assigned once, by a plain top-level assignment of a literal; any other
    binding of a watched name, or a run-time reach of the namespace (``globals()``, ``exec``...),
    answers ``None``.  Names compare after the parser's NFKC normalisation.
    """
    try:
        source = path.read_bytes()
    except OSError:
        return None
    suspects = list(_suspects(source))
    tree = _module_head(source, path, suspects)
    if tree is None:
        return None
    found: Ids = {}
    plain: list[ast.Name] = []  # the targets of the plain top-level assignments
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None and node.simple:
            targets, value = [node.target], node.value
        else:
            continue
        if not all(isinstance(target, ast.Name) for target in targets):
            continue  # unpacking: judged below, with every other binding
        for target in targets:
            assert isinstance(target, ast.Name)
            if target.id not in ID_NAMES:
                continue
            if target.id in found:
                return None
            try:
                found[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
            plain.append(target)
    if not _only_plain(source, tree, plain, suspects):
        marked = set(map(id, plain))
        if any(id(each) not in marked and _binds_or_reaches(each) for each in ast.walk(tree)):
            return None
    return found


def _only_plain(source: bytes, tree: ast.Module, plain: list[ast.Name], suspects: list[int]) -> bool:
    """Whether every suspect in the parsed source is a target in *plain* or in the docstring.

    A shortcut past walking every node (as long as parsing); ``False`` means: walk the tree.
    """
    body = tree.body
    if not body:
        return True
    if source.startswith(b"\xef\xbb\xbf") or b"\r" in source or _CODING.search(source):
        return False  # byte offsets and lines here might not be the parser's
    last = body[-1].end_lineno or body[-1].lineno
    lines = [0]  # the offset of each line the parsed statements span
    while len(lines) < last:
        lines.append(source.index(b"\n", lines[-1]) + 1)
    end = lines[-1] + (body[-1].end_col_offset or 0)
    starts = {lines[target.lineno - 1] + target.col_offset for target in plain}
    first, docstring = body[0], (0, 0)
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        docstring = (
            lines[first.lineno - 1] + first.col_offset,
            lines[(first.end_lineno or first.lineno) - 1] + (first.end_col_offset or 0),
        )
    return all(at in starts or docstring[0] <= at < docstring[1] for at in suspects if at < end)


def _suspects(source: bytes) -> Iterator[int]:
    """Where *source* spells a watched or dynamic name (a whole word), ``import *``, or non-ASCII."""
    for name in _SUSPECT_NAMES:
        at = source.find(name)
        while at != -1:
            after = at + len(name)
            if (at == 0 or source[at - 1] not in _WORD_BYTES) and (
                after >= len(source) or source[after] not in _WORD_BYTES
            ):
                yield at
            at = source.find(name, after)
    for match in _SUSPECT_TEXT.finditer(source):
        yield match.start()


def _binds_or_reaches(node: ast.AST) -> bool:
    """Whether *node* may bind a watched name, or reach the module's namespace at run time."""
    if isinstance(node, ast.Name):
        return (not isinstance(node.ctx, ast.Load) and node.id in _WATCHED) or node.id in _DYNAMIC
    if isinstance(node, ast.Attribute):
        return (not isinstance(node.ctx, ast.Load) and node.attr in _WATCHED) or node.attr in _DYNAMIC
    if isinstance(node, ast.alias):
        return node.name == "*" or (node.asname or node.name.split(".", 1)[0]) in _WATCHED
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return bool(_WATCHED.intersection(node.names))
    if isinstance(node, ast.MatchMapping):
        return node.rest in _WATCHED
    # def, class, except ... as, match captures (and type parameters, which bind nothing here)
    name = getattr(node, "name", None)
    return isinstance(name, str) and name in _WATCHED


def _module_head(source: bytes, path: Path, suspects: list[int]) -> ast.Module | None:
    """The syntax tree of *source* down to its first definition, when no suspect lies below it.

    Otherwise (or with a coding declaration, or when the head alone does not parse) the whole file.
    """
    cut = _FIRST_DEFINITION.search(source)
    if cut is not None and all(at < cut.start() for at in suspects) and not _CODING.search(source):
        try:
            return ast.parse(source[: cut.start()], str(path))
        except (SyntaxError, ValueError):
            pass
    try:
        return ast.parse(source, str(path))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _id_list(value: object) -> list[str] | None:
    """An id literal (``down_revision``, ``depends_on``, ``branch_labels``) as ids, or ``None``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if _plain_id(value) else None
    if isinstance(value, (tuple, list)) and all(_plain_id(item) for item in value):
        return [str(item) for item in value]
    return None


def version_rows(connection: Connection, tables: Mapping[str, str]) -> dict[str, VersionRows]:
    """Each cog's version table rows (sorted), or the error that made its table unreadable.

    What Alembic's ``get_current_heads()`` answers (``tests/test_version_rows.py``), for every
    route; *tables*: cog -> version table, in the default schema.  A missing table is ``[]``.
    One ``UNION ALL`` per :data:`UNION_BATCH` cogs; a failed batch is read again without the
    missing tables, then table by table, so one unreadable table is only that cog's error.
    """
    cogs = list(tables)
    found: dict[str, VersionRows] = {}
    existing: set[str] | None = None
    try:
        for start in range(0, len(cogs), UNION_BATCH):
            batch = {cog: tables[cog] for cog in cogs[start : start + UNION_BATCH]}
            rows = _union(connection, batch)
            if isinstance(rows, SQLAlchemyError):  # a table is missing, or cannot be read
                if existing is None:
                    existing = set(inspect(connection).get_table_names())
                found.update((cog, []) for cog, table in batch.items() if table not in existing)
                batch = {cog: table for cog, table in batch.items() if table in existing}
                rows = _union(connection, batch)
            if isinstance(rows, SQLAlchemyError):  # one that exists cannot be read: which one?
                single = {cog: _union(connection, {cog: table}) for cog, table in batch.items()}
                rows = {
                    cog: read if isinstance(read, SQLAlchemyError) else read[cog]
                    for cog, read in single.items()
                }
            found.update(rows)
    finally:
        connection.rollback()  # end the read's transaction
    return {cog: found[cog] for cog in cogs}


def _union(connection: Connection, tables: Mapping[str, str]) -> dict[str, VersionRows] | SQLAlchemyError:
    """The rows of *tables*, read in one ``UNION ALL`` statement, or the error it failed with."""
    found: dict[str, list[str]] = {cog: [] for cog in tables}
    if not tables:
        return dict(found)
    cogs = list(tables)
    quote = connection.dialect.identifier_preparer.quote
    statement = " UNION ALL ".join(
        f"SELECT {index} AS cog, version_num FROM {quote(tables[cog])}" for index, cog in enumerate(cogs)
    )
    try:
        for index, version in connection.exec_driver_sql(statement):
            found[cogs[index]].append(version)
    except SQLAlchemyError as exc:
        connection.rollback()  # PostgreSQL refuses every later statement of a failed transaction
        return exc
    return {cog: sorted(versions) for cog, versions in found.items()}
