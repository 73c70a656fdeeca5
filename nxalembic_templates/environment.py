"""What the ``nxcog`` env.py runs: select the cog, point Alembic at its history, migrate.

env.py stays a few lines long and calls :func:`run_migrations`; the logic lives here, in the
installed package, so a bug fix reaches users without re-running ``alembic init``.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import functools
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic import util
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionMap
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import locking
from .autogen import (
    AutogenOptions,
    docstring_text,
    history_tables,
    is_autogenerate_run,
    portable_compare_type,
    scratch_database,
)
from .discovery import BotSchema, discover
from .errors import NXAlembicError, _revision_frame, failing_revision, hide_password, remember_url
from .scope import CogScope
from .settings import find_config_file, load_settings

#: ``config.attributes`` keys the ``nxalembic`` command uses to hand over what it already has.
SCHEMA_KEY = "nxalembic.schema"
COG_KEY = "nxalembic.cog"
CONNECTION_KEY = "connection"  # the name Alembic's cookbook uses for a shared connection
CONFIGURE_KEY = "nxalembic.configure"  # extra context.configure() options (e.g. on_version_apply)

T = TypeVar("T")
log = logging.getLogger("nxalembic_templates")

#: The placeholder Alembic's own templates write; it means "no URL configured".
PLACEHOLDER_URL = "driver://user:pass@localhost/dbname"


def load_schema(config: Config) -> BotSchema:
    """Discover the bot once per process and cache it on the Alembic config."""
    schema = config.attributes.get(SCHEMA_KEY)
    if schema is None:
        remember_url(x_arguments(config).get("url"))  # masked in whatever the bot module prints
        with contextlib.suppress(NXAlembicError):
            remember_url(_alembic_ini_url(config))
        ini_dir = Path(config.config_file_name).resolve().parent if config.config_file_name else None
        schema = discover(load_settings(find_config_file(ini_dir)))
        config.attributes[SCHEMA_KEY] = schema
    return schema


def selected_cog(config: Config) -> str | None:
    """The cog from the ``nxalembic`` command, or from ``alembic -x cog=NAME``."""
    name = config.attributes.get(COG_KEY)
    if name:
        return str(name)
    return x_arguments(config).get("cog")


def x_arguments(config: Config) -> dict[str, str]:
    """The ``-x key=value`` arguments of the command line (``-x`` may be repeated)."""
    pairs = getattr(config.cmd_opts, "x", None) or []
    return dict(pair.split("=", 1) if "=" in pair else (pair, "") for pair in pairs)


def database_url(config: Config, schema: BotSchema) -> str:
    """``-x url=``, then nxalembic.ini's ``url``, then alembic.ini's ``sqlalchemy.url``, then ormar's.

    A relative SQLite path is made absolute against the folder of nxalembic.ini, so the same
    file is migrated whatever the working directory (``alembic -c project/alembic.ini``).
    """
    x_url = x_arguments(config).get("url")
    if x_url is not None and not x_url.strip():
        raise NXAlembicError(
            "-x url= is empty; give a database URL (-x url=sqlite+aiosqlite:///bot.db) or leave -x url= "
            "out to use url in nxalembic.ini, sqlalchemy.url in alembic.ini or your ormar database"
        )
    candidates = (
        lambda: x_url,
        lambda: schema.settings.url,
        lambda: _alembic_ini_url(config),
        schema.default_url,
    )
    for candidate in candidates:
        url = candidate()
        if url and url.strip() != PLACEHOLDER_URL:
            return anchor_sqlite_path(url.strip(), schema.settings.root)
    raise NXAlembicError(
        "no database URL: set url = ... in nxalembic.ini, sqlalchemy.url in alembic.ini, "
        "pass -x url=..., or give your ormar models a database"
    )


def anchor_sqlite_path(url: str, root: Path) -> str:
    """*url* with a relative SQLite file path made absolute against *root*.

    In-memory databases (``sqlite://``, ``:memory:``, ``mode=memory``) and every other
    backend are returned unchanged; so is a URL that does not parse (it is reported when
    the engine is made, with the password masked).
    """
    try:
        parsed = make_url(url)
    except Exception:
        return url
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return url
    if parsed.query.get("mode") == "memory":
        return url
    if database.startswith("file:"):  # a URI filename (?uri=true): anchor the path part
        path = database[len("file:"):]
        if not path or path == ":memory:" or path.startswith("/"):
            return url
        database = f"file:{(root / path).resolve()}"
    elif Path(database).is_absolute():
        return url
    else:
        database = str((root / database).resolve())
    return parsed.set(database=database).render_as_string(hide_password=False)


def use_cog_history(
    script: ScriptDirectory, location: Path, cog: str | None = None, others: Mapping[str, Path] | None = None
) -> None:
    """Point an already-built :class:`ScriptDirectory` at one cog's revisions folder.

    Alembic builds the script directory from alembic.ini *before* env.py runs, and the
    command functions keep a reference to it, so it is retargeted in place: the version
    location is replaced and the lazily built revision map (plus its memoized paths) reset.
    The revision files are loaded at once and checked (see :func:`_checked_revisions`), so a
    broken one is named here; *others* (the other cogs' folders) tell whose a stray id is.
    """
    script.version_locations = [str(location)]
    script.recursive_version_locations = False
    for memoized in ("_version_locations", "_singular_version_location"):
        script.__dict__.pop(memoized, None)
    script.revision_map = RevisionMap(_checked_revisions(script, cog, others or {}))
    try:
        script.revision_map.heads  # load the revision files now: a broken one is named below
    except CommandError:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: a revision that exits must not end the command quietly
        raise NXAlembicError(_broken_revision_file(exc, location)) from exc


def _checked_revisions(
    script: ScriptDirectory, cog: str | None, others: Mapping[str, Path]
) -> Callable[[], Iterator[Script]]:
    """The revision loader for :class:`RevisionMap`, refusing what Alembic would not say clearly.

    Alembic only warns about two files with one revision id (and then silently uses one of
    them), and fails with a bare ``KeyError`` on a ``down_revision`` or ``depends_on`` that is
    not in the folder, which is what a revision pointing into another cog's history looks like.
    """

    def load() -> Iterator[Script]:
        seen: dict[str, Script] = {}
        for revision in script._load_revisions():
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
            for key, ids in (("down_revision", revision.down_revision), ("depends_on", revision.dependencies)):
                for missing in [i for i in util.to_tuple(ids, default=()) if i not in seen and i not in labels]:
                    raise NXAlembicError(_stray_revision(script, revision, key, missing, cog, others))

    return load


def _cog_prefix(cog: str | None) -> str:
    return f"cog {cog!r}: " if cog else ""


def _stray_revision(
    script: ScriptDirectory, revision: Script, key: str, missing: str, cog: str | None, others: Mapping[str, Path]
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


def _find_revision(script: ScriptDirectory, revision_id: str, others: Mapping[str, Path]) -> tuple[str, Path] | None:
    """The cog (and file) whose revisions folder holds *revision_id*, if any."""
    for other_cog, location in others.items():
        other = ScriptDirectory(script.dir, version_locations=[str(location)])
        try:
            for revision in other._load_revisions():
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
    where = f"{filename}:{lineno}" if filename else f"in {location}"
    if isinstance(exc, SystemExit):
        return (
            f"cannot load revision file {where}: it calls sys.exit({exc.code!r}) when imported; "
            "remove that call (a revision file must not end the process)"
        )
    detail = exc.msg if isinstance(exc, SyntaxError) else _first_line(exc)
    return f"cannot load revision file {where}: {type(exc).__name__}: {detail}; fix or remove that file"


#: What a new revision id may hold: it is written into the file name and the docstring.
REVISION_ID = re.compile(r"[A-Za-z0-9_]+")


def write_revisions_safely(script: ScriptDirectory, cog: str) -> None:
    """Make every revision file this command writes importable, whatever its message.

    ``generate_revision`` is the one call through which ``revision`` (with or without
    ``--autogenerate``), ``merge`` and ``nxalembic migrate`` write a file, so the message is
    escaped there (see :func:`.autogen.docstring_text`): that reaches the script.py.mako users
    copied at ``alembic init`` time, and escapes exactly once.  The cog's name is handed to the
    template too (its first revision's docstring says so).
    """
    generate = getattr(script.generate_revision, "__wrapped__", script.generate_revision)  # never escape twice

    @functools.wraps(generate)
    def generate_revision(revid: str, message: str | None, *args: Any, **kw: Any) -> Script | None:
        if not REVISION_ID.fullmatch(revid):
            raise NXAlembicError(
                f"revision id {revid!r} may only hold letters, digits and '_' (it becomes part of the file "
                "name and the file); pass another --rev-id, or none to get a generated one"
            )
        kw.setdefault("cog", cog)
        return generate(revid, None if message is None else docstring_text(message), *args, **kw)

    script.generate_revision = generate_revision  # type: ignore[method-assign]


#: ``-x`` keys that would let one cog use another cog's history; nxalembic.ini decides those.
PER_COG_KEYS = ("version_table", "version_location", "version_locations", "version_path")


def _refuse_per_cog_overrides(config: Config, configure_options: dict[str, Any]) -> None:
    for key in PER_COG_KEYS:
        if key in x_arguments(config):
            raise NXAlembicError(
                f"-x {key}= is not accepted: each cog's version table and revisions folder come from "
                "version_table / version_location in nxalembic.ini (both contain {cog}); change them there"
            )
    if "version_table" in configure_options:
        raise NXAlembicError(
            f"env.py passes version_table={configure_options['version_table']!r} to run_migrations(), "
            "which would give every cog one version table; remove it and set "
            "version_table = ..._{cog} in nxalembic.ini instead"
        )


def cog_scope(config: Config, script: ScriptDirectory) -> CogScope:
    schema = load_schema(config)
    return CogScope.for_cog(schema, selected_cog(config), Path(script.dir).resolve())


def run_migrations(context: EnvironmentContext | None = None, **configure_options: Any) -> None:
    """Run the current Alembic command for the selected cog, offline or online.

    *configure_options* are passed on to :meth:`EnvironmentContext.configure` (for example
    ``compare_server_default=True``); the per-cog hooks and version table are always ours.
    """
    if context is None:
        from alembic import context as alembic_context

        context = alembic_context  # type: ignore[assignment]
    assert context is not None
    try:
        _run_migrations(context, configure_options)
    except KeyboardInterrupt:
        if getattr(context.config.cmd_opts, "cmd", None) is None:
            raise  # not the stock command line: the caller (nxalembic, a test runner) decides
        # Stock ``alembic``'s main() would print a long traceback: one line and the shell's 130.
        print(INTERRUPTED, file=sys.stderr, flush=True)
        raise SystemExit(130) from None


#: What Ctrl-C prints: the transaction in progress is rolled back when the connection closes.
INTERRUPTED = "FAILED: interrupted (Ctrl-C); the migration in progress, if any, was rolled back"


def _run_migrations(context: EnvironmentContext, configure_options: dict[str, Any]) -> None:
    config = context.config
    _refuse_per_cog_overrides(config, configure_options)
    scope = cog_scope(config, context.script)
    use_cog_history(context.script, scope.version_location, scope.cog.name, scope.other_locations)
    write_revisions_safely(context.script, scope.cog.name)
    options: dict[str, Any] = {
        "target_metadata": list(scope.schema.metadata),
        "version_table": scope.version_table,
        "include_name": scope.include_name,
        "include_object": scope.include_object,
        "process_revision_directives": scope.process_revision_directives,
        "compare_type": True,
        # a cog with tables in named schemas (ormar's schema=) is compared in those schemas too
        "include_schemas": bool(scope.schemas),
        **config.attributes.get(CONFIGURE_KEY, {}),
        **configure_options,
    }
    scope.options = AutogenOptions.from_config(config)
    if is_autogenerate_run(config):
        options.setdefault("dont_mutate", True)  # comparing must not create a version table
    with contextlib.ExitStack() as stack:
        stack.enter_context(_revisions_must_not_exit(scope.cog.name))
        if is_autogenerate_run(config):
            scratch = _replay_history(stack, context.script, scope)
            if scope.options.offline:
                # No live database: autogenerate against the replayed history instead.
                url = _target_url(config, scope)
                target = make_url(url).get_backend_name() if url else scratch.dialect.name
                options["compare_type"] = portable_compare_type(scratch.dialect.name)
                _run_on_connection(context, scope, scratch, {**options, "render_as_batch": target == "sqlite"})
                return
        _run_online_or_sql(context, scope, options)


def _replay_history(stack: contextlib.ExitStack, script: ScriptDirectory, scope: CogScope) -> Connection:
    """Replay the cog's revisions into a scratch database; learn which tables they own."""
    try:
        scratch = stack.enter_context(
            scratch_database(script, scope.version_table, scope.cog.name, scope.options.scratch_url,
                             referenced=scope.referenced_tables())
        )
    except NXAlembicError:
        if scope.options.offline:
            raise
        log.warning("cog %r: history replay failed, so dropped tables are not detected", scope.cog.name)
        return None  # type: ignore[return-value]
    scope.history = history_tables(scratch, scope.version_table)
    return scratch


def _target_url(config: Config, scope: CogScope) -> str | None:
    try:
        return database_url(config, scope.schema)
    except NXAlembicError:
        if "url" in x_arguments(config):
            raise  # an empty -x url= is a mistake, offline too
        return None


def _alembic_ini_url(config: Config) -> str | None:
    """``sqlalchemy.url`` from alembic.ini, whose ``%`` must be doubled (configparser interpolation).

    configparser's own error quotes the value from the first ``%`` on, which for a URL-quoted
    password is the password itself; this error names the fix instead.
    """
    try:
        return config.get_main_option("sqlalchemy.url")
    except configparser.InterpolationError:
        raise NXAlembicError(
            "sqlalchemy.url in alembic.ini contains a '%' that is not doubled: alembic.ini is read with "
            "interpolation, so write each '%' of the URL (e.g. %40 in a password) as '%%'"
        ) from None


def _run_online_or_sql(context: EnvironmentContext, scope: CogScope, options: dict[str, Any]) -> None:
    config = context.config
    connection = config.attributes.get(CONNECTION_KEY)
    if isinstance(connection, Engine):
        # pytest-alembic hands over its engine here; the engine is the caller's, so it is
        # neither wrapped nor disposed, only borrowed for one connection.
        with connection.connect() as borrowed:
            _run_on_connection(context, scope, borrowed, options)
        return
    if isinstance(connection, AsyncEngine):
        raise NXAlembicError(
            "config.attributes['connection'] holds an async engine; hand over a sync Engine or "
            "Connection (e.g. sqlalchemy.create_engine with a sync driver such as psycopg)"
        )
    if connection is not None:
        _run_on_connection(context, scope, connection, options)
        return
    url = database_url(config, scope.schema)
    if context.is_offline_mode():
        parsed = locking.parse_url(url)
        scope.check_dialect(parsed.get_dialect())
        dialect = parsed.get_backend_name()
        context.configure(
            url=url,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            render_as_batch=dialect == "sqlite",
            **options,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    with_connection(url, lambda connection: _run_on_connection(context, scope, connection, options),
                    read_only=is_autogenerate_run(config))


def with_connection(url: str, work: Callable[[Connection], T], read_only: bool = False) -> T:
    """Open one migration connection to *url* (sync or async driver) and run *work* on it.

    Async URLs (``sqlite+aiosqlite``, ``postgresql+asyncpg``) get an async engine and *work*
    runs through ``run_sync``, so Alembic itself always sees a plain sync connection.
    A *read_only* connection can only compare (see :mod:`.locking`).
    """
    engine = locking.create_engine(url, read_only=read_only)
    if isinstance(engine, AsyncEngine):
        return asyncio.run(_with_async_connection(engine, url, work))
    try:
        try:
            connection = engine.connect()
        except Exception as exc:
            raise _connect_error(url, exc) from exc
        with connection:
            return work(connection)
    finally:
        engine.dispose()


async def _with_async_connection(engine: AsyncEngine, url: str, work: Callable[[Connection], T]) -> T:
    try:
        try:
            connection = await engine.connect()
        except Exception as exc:
            raise _connect_error(url, exc) from exc
        try:
            return await connection.run_sync(work)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


def _connect_error(url: str, exc: BaseException) -> NXAlembicError:
    return NXAlembicError(
        hide_password(
            url,
            f"cannot connect to database {hide_password(url)}: {_first_line(exc)}; check the URL "
            "(-x url=, nxalembic.ini url, alembic.ini sqlalchemy.url or your ormar database) "
            "and that the server is running",
        )
    )


def _run_on_connection(
    context: EnvironmentContext, scope: CogScope, connection: Connection, options: dict
) -> None:
    scope.check_dialect(connection.dialect)
    context.configure(
        connection=connection,
        **{"render_as_batch": connection.dialect.name == "sqlite", **locking.configure_options(connection), **options},
    )
    try:
        with context.begin_transaction():
            locking.acquire(connection)
            context.run_migrations()
    except CommandError as exc:
        raise _explain_command_error(exc, context, scope) from exc
    except Exception as exc:
        revision = failing_revision(exc)
        if revision is None and not isinstance(exc, SQLAlchemyError):
            # Neither a revision script nor the database failed: the exception belongs to a
            # caller's hook (pytest-alembic signals results this way) and must reach it as is.
            raise
        step = f"revision {revision}" if revision else "migration"
        raise NXAlembicError(
            hide_password(
                connection.engine.url,
                f"cog {scope.cog.name!r}: {step} failed: {type(exc).__name__}: {_first_line(exc)}"
                + _already_exists_hint(exc, context.script, revision, scope),
            )
        ) from exc


def _already_exists_hint(exc: BaseException, script: ScriptDirectory, revision: str | None,
                         scope: CogScope) -> str:
    """The fix when the cog's first revision finds its tables already there.

    The first revision (no ``down_revision``) only runs when the version table is empty, so
    "already exists" there means the tables were made without migrations (``create_all``,
    another tool): recording the revision with ``stamp`` adopts them.
    """
    if revision is None or "already exists" not in str(exc):
        return ""
    try:
        first = script.get_revision(revision).down_revision is None
    except Exception:
        first = False
    if not first:
        return ""
    cog = scope.cog.name
    return (
        f"; the tables exist but {scope.version_table} is empty (made without migrations?): if they "
        f"already match the cog's revisions, record that with 'alembic -x cog={cog} stamp head' "
        "instead of upgrading"
    )


def _explain_command_error(exc: CommandError, context: EnvironmentContext, scope: CogScope) -> CommandError:
    """Alembic's message, or one that names the cog and the fix when we can tell the cause."""
    script, cog = context.script, scope.cog.name
    if str(exc).startswith("Multiple head revisions are present"):
        return forked_history(cog, script.get_heads())
    try:
        current = context.get_context().get_current_heads()
    except Exception:  # the database cannot tell: keep Alembic's message
        return exc
    unknown = [rev for rev in current if not _has_revision(script, rev)]
    if unknown:
        return NXAlembicError(
            f"cog {cog!r}: the database ({scope.version_table}) is at revision {', '.join(unknown)}, which is "
            f"not in {scope.version_location}; restore that revision file, or if it is gone for good, "
            f"'alembic -x cog={cog} stamp --purge REVISION' records where the database really is"
        )
    return exc


def forked_history(cog: str, heads: Sequence[str]) -> NXAlembicError:
    heads = sorted(heads)
    return NXAlembicError(
        f"cog {cog!r} has {len(heads)} heads ({', '.join(heads)}): its history forked; merge them with "
        f"'alembic -x cog={cog} merge heads -m \"merge\"' and run the command again"
    )


def _has_revision(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.revision_map.get_revision(revision) is not None
    except Exception:
        return False


@contextlib.contextmanager
def _revisions_must_not_exit(cog: str) -> Iterator[None]:
    """Turn ``SystemExit`` (any ``BaseException`` but Ctrl-C) from a revision's code into an error.

    ``sys.exit(0)`` in ``upgrade()`` would otherwise end ``upgrade``, ``check`` or ``status``
    with exit status 0 and no output, as if all went well.  The transaction it interrupted
    is rolled back on the way out, as for any other failure.
    """
    try:
        yield
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:
        frame = _revision_frame(exc)
        if frame is None:
            raise
        revision, filename, lineno = frame
        what = f"sys.exit({exc.code!r}) was called" if isinstance(exc, SystemExit) else f"{type(exc).__name__} raised"
        raise NXAlembicError(
            f"cog {cog!r}: revision {revision} failed: {what} at {filename}:{lineno}; a revision must not end "
            "the process: remove that call, or raise an exception to make the migration fail"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
