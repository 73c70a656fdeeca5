"""Internal: one cog's revision history: its own folder, checked when loaded, written safely.

Every cog has a revisions folder of its own.  Alembic is pointed at it (the script directory
it already built is retargeted for the stock route; a new one is built for the
``nxalembic`` command), the files are loaded at once and checked for what Alembic would not
say clearly (a duplicate revision id, an id from another cog's history, a file that fails
to import), and the files a command writes are made safe to import whatever their message.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import util
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionMap
from alembic.util import CommandError
from sqlalchemy.engine import Connection, make_url

from . import _compat
from .errors import (
    NXAlembicError,
    described,
    failing_revision,
    file_line,
    first_line,
    hide_password,
    reported_to_alembic,
)
from .headcheck import nested_revisions
from .request import DEFAULT_SCRATCH_URL
from .rewrite import REVISION_ID, docstring_text

__all__ = [
    "cog_script",
    "forked_history",
    "history_tables",
    "portable_compare_type",
    "scratch_database",
    "unknown_revisions",
    "use_cog_history",
    "write_revisions_safely",
]


def use_cog_history(
    script: ScriptDirectory,
    location: Path,
    cog: str | None = None,
    others: Mapping[str, Path] | None = None,
    loaded: Callable[[], RevisionMap] | None = None,
) -> None:
    """Point the :class:`ScriptDirectory` Alembic built from alembic.ini at one cog's folder.

    Changed in place (:func:`._compat.retarget`): the command functions keep the object they built
    before env.py ran.  The files are loaded and checked at once (:func:`_checked_revisions`);
    *others* (the other cogs' folders) tell whose a stray id is.  *loaded*: the cog's revision map
    already loaded and checked (``nxalembic`` loads each cog's files once, :func:`cog_script`).
    """
    if loaded is not None:
        _compat.retarget(script, location, loaded())
        return
    _compat.retarget(script, location, _checked_revisions(script, cog, others or {}))
    _load_now(script, location)


def cog_script(
    script_dir: Path, location: Path, cog: str, others: Mapping[str, Path], sourceless: bool = False
) -> ScriptDirectory:
    """A new :class:`ScriptDirectory` holding only *cog*'s history, loaded and checked.

    *sourceless*: alembic.ini's ``sourceless`` (revision files may be ``.pyc`` only).
    """
    script = ScriptDirectory(str(script_dir), version_locations=[str(location)], sourceless=sourceless)
    script.revision_map = RevisionMap(_checked_revisions(script, cog, others))
    _load_now(script, location)
    return script


def _load_now(script: ScriptDirectory, location: Path) -> None:
    """Import the revision files now, so that a broken one is named before anything runs."""
    try:
        _ = script.revision_map.heads  # reading the heads loads every revision file
    except (CommandError, NXAlembicError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # SystemExit too: a revision that exits must not end the command quietly
        raise NXAlembicError(_broken_revision_file(exc, location)) from exc


def _checked_revisions(
    script: ScriptDirectory, cog: str | None, others: Mapping[str, Path]
) -> Callable[[], Iterator[Script]]:
    """The revision loader for :class:`RevisionMap`, refusing what Alembic would not say clearly:
    two files with one id (Alembic warns, then uses one), a ``down_revision`` / ``depends_on``
    not in the folder (a bare ``KeyError``; an id of another cog's history looks like that)."""

    def load() -> Iterator[Script]:
        for location in script.version_locations or ():
            _refuse_nested_revisions(Path(location), cog, script.sourceless)
        seen: dict[str, Script] = {}
        for revision in _compat.load_revisions(script):
            if revision.revision in seen:
                first, second = sorted([seen[revision.revision].path, revision.path])
                raise NXAlembicError(
                    f"{_cog_prefix(cog)}revision files {first} and {second} have the same revision id "
                    f"{revision.revision!r}; give one of them a new id (its revision = '...' and the "
                    "down_revision of the files that follow it)"
                )
            seen[revision.revision] = revision
            yield revision
        labels = {label for revision in seen.values() for label in revision.branch_labels}
        for revision in seen.values():
            for key, ids in (
                ("down_revision", revision.down_revision),
                ("depends_on", revision.dependencies),
            ):
                for missing in [
                    i for i in util.to_tuple(ids, default=()) if i not in seen and i not in labels
                ]:
                    raise NXAlembicError(_stray_revision(script, revision, key, missing, cog, others))

    return load


def _refuse_nested_revisions(folder: Path, cog: str | None, sourceless: bool) -> None:
    """Refuse revision files in a subfolder of the cog's folder.

    ``alembic heads`` lists them (``recursive_version_locations``); no route applies them.
    """
    nested = nested_revisions(folder, sourceless)
    if nested is not None:
        where, names = nested
        raise NXAlembicError(
            f"{_cog_prefix(cog)}{where} holds revision files ({', '.join(names)}), but Alembic applies only "
            f"the files of the cog's revisions folder {folder} itself: move them there, or delete them"
        )


def _cog_prefix(cog: str | None) -> str:
    return f"cog {cog!r}: " if cog else ""


def _stray_revision(
    script: ScriptDirectory,
    revision: Script,
    key: str,
    missing: str,
    cog: str | None,
    others: Mapping[str, Path],
) -> str:
    """Say which file names an id its cog does not have, whose id it is, and the fix."""
    where = f"{_cog_prefix(cog)}revision file {revision.path}: {key} {missing!r}"
    this_cog = f"cog {cog!r}" if cog else "this cog"
    owner = _find_revision(script, missing, others)
    if owner is None:
        return (
            f"{where} is not a revision of this or any other cog; restore the revision file with that id, "
            f"or change {key} to a revision of {this_cog}"
        )
    other_cog, path = owner
    fix = (
        f"point down_revision at a revision of {this_cog} (None for its first revision)"
        if key == "down_revision"
        else "remove it (nxalembic upgrades cogs in the order of their foreign keys)"
    )
    return f"{where} is a revision of cog {other_cog!r} ({path}); each cog has its own history: {fix}"


def _find_revision(
    script: ScriptDirectory, revision_id: str, others: Mapping[str, Path]
) -> tuple[str, Path] | None:
    """The cog (and file) whose revisions folder holds *revision_id*, if any."""
    for other_cog, location in others.items():
        other = ScriptDirectory(script.dir, version_locations=[str(location)])
        try:
            for revision in _compat.load_revisions(other):
                if revision.revision == revision_id:
                    return other_cog, Path(revision.path)
        except (Exception, SystemExit):  # a broken file there is that cog's problem, reported on its own
            continue
    return None


def _broken_revision_file(exc: BaseException, location: Path) -> str:
    """One line naming the revision file that cannot be imported, and where."""
    filename, lineno = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    if not isinstance(exc, SyntaxError) or not filename:
        filename = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve().parent == location:
                filename, lineno = frame.filename, frame.lineno
    where = file_line(filename, lineno) if filename else f"in {location}"
    if isinstance(exc, SystemExit):
        return (
            f"cannot load revision file {where}: it calls sys.exit({exc.code!r}) when imported; "
            "remove that call (a revision file must not end the process)"
        )
    detail = exc.msg if isinstance(exc, SyntaxError) else first_line(exc)
    return f"cannot load revision file {where}: {type(exc).__name__}: {detail}; fix or remove that file"


def write_revisions_safely(script: ScriptDirectory, cog: str) -> None:
    """Make every revision file this command writes importable, whatever its message.

    ``generate_revision`` is the one call through which ``revision``, ``merge`` and ``nxalembic
    migrate`` write a file: the message is escaped there exactly once (:func:`.rewrite.docstring_text`),
    whatever script.py.mako users copied, and the template gets the cog's name.
    """

    def wrap(generate: Callable[..., Script | None]) -> Callable[..., Script | None]:
        @functools.wraps(generate)
        def generate_revision(revid: str, message: str | None, *args: Any, **kw: Any) -> Script | None:
            if not REVISION_ID.fullmatch(revid):
                with reported_to_alembic():  # Alembic calls this after env.py has returned
                    raise NXAlembicError(
                        f"revision id {revid!r} may only hold letters, digits and '_' (it becomes part of "
                        "the file name and the file); pass another --rev-id, or none to get a generated one"
                    )
            kw.setdefault("cog", cog)
            return generate(revid, None if message is None else docstring_text(message), *args, **kw)

        return generate_revision

    _compat.wrap_generate_revision(script, wrap)  # never escapes twice


def forked_history(cog: str, heads: Sequence[str]) -> NXAlembicError:
    """The one error for a cog whose history has several *heads*, with the command that merges them."""
    heads = sorted(heads)
    return NXAlembicError(
        f"cog {cog!r} has {len(heads)} heads ({', '.join(heads)}): its history forked; merge them with "
        f"'alembic -x cog={cog} merge heads -m \"merge\"' and run the command again"
    )


def unknown_revisions(
    cog: str, script: ScriptDirectory, current: Sequence[str], version_table: str, location: Path
) -> NXAlembicError | None:
    """The one error for a version row that no revision file of the cog has, else ``None``.

    *current* are the rows read from the cog's *version_table*: ``apply`` (Alembic's route)
    and ``verify`` (the count of revisions behind) both say which row, where the files are,
    and how to record where the database really is.
    """
    unknown = [revision for revision in current if not has_revision(script, revision)]
    if not unknown:
        return None
    return NXAlembicError(
        f"cog {cog!r}: the database ({version_table}) is at revision {', '.join(unknown)}, which is not "
        f"in {location}; restore that revision file, or if it is gone for good, 'alembic -x cog={cog} "
        "stamp --purge REVISION' records where the database really is"
    )


def has_revision(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.revision_map.get_revision(revision) is not None
    except Exception:
        return False


# -- The scratch replay: which tables a cog's history created (the only ones a drop or a rename
# may name), and what ``offline`` autogenerate compares with.  The live database is never opened.

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

    _compat.replace_operations(
        operations, alter_column, create_foreign_key, create_unique_constraint, drop_constraint
    )
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
    """A sync engine for the scratch database; in-memory SQLite keeps one connection alive.

    Not :func:`.engines.create_engine`: an in-memory database lives as long as its one
    connection (``StaticPool``, where migrations get none), the scratch database is never
    locked, and a URL it cannot open is worded for ``-x scratch_url=``.
    """
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
