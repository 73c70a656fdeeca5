"""What the ``nxcog`` env.py runs: select the cog, point Alembic at its history, migrate.

env.py stays a few lines long and calls :func:`run_migrations`; the logic lives here, in the
installed package, so a bug fix reaches users without re-running ``alembic init``.  The run
is described by a ``request.CogRequest`` (from ``-x`` on the stock command line, or
handed over by the ``nxalembic`` command); see ``docs/architecture.rst`` for the whole path.

Public: :func:`run_migrations` and :func:`setup_logging` (``__all__``), what env.py calls.  The
module's other names are internal, even those other modules of the package import.

The hooks are not only ours: env.py's own ``include_name`` / ``include_object`` /
``process_revision_directives`` are combined with the cog's (``scope.UserHooks``), never replace them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError, to_tuple
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import _compat, locking
from .discovery import BotSchema, discover
from .engines import anchor_sqlite_path, parse_url, with_connection
from .errors import (
    NXAlembicError,
    failing_revision,
    first_line,
    hide_password,
    remember_url,
    reported_to_alembic,
    revisions_must_not_exit,
)
from .headcheck import version_rows
from .history import (
    forked_history,
    history_tables,
    portable_compare_type,
    scratch_database,
    unknown_revisions,
    use_cog_history,
    write_revisions_safely,
)
from .request import (
    alembic_ini_url,
    borrowed_connection,
    database_url,
    is_autogenerate,
    refuse_another_projects_pyproject,
    refuse_per_cog_overrides,
    request_for,
    sql_end_marked,
)
from .scope import SCREEN_COMMAND, CogScope, Screen, UserHooks
from .settings import load_settings, settings_for

__all__ = ["run_migrations", "setup_logging"]

log = logging.getLogger("nxalembic_templates")

#: What Ctrl-C prints: the transaction in progress is rolled back when the connection closes.
INTERRUPTED = "FAILED: interrupted (Ctrl-C); the migration in progress, if any, was rolled back"


class AlembicEnvironment(Protocol):
    """What env.py hands over: ``alembic.context`` (the module forwarding to the running
    :class:`~alembic.runtime.environment.EnvironmentContext`) or that ``EnvironmentContext``."""

    @property
    def config(self) -> Config: ...
    @property
    def script(self) -> ScriptDirectory: ...
    def configure(self, *args: Any, **kwargs: Any) -> None: ...
    def is_offline_mode(self) -> bool: ...
    def begin_transaction(self) -> AbstractContextManager[Any]: ...
    def run_migrations(self, **kw: Any) -> None: ...
    def get_context(self) -> MigrationContext: ...


def setup_logging(context: AlembicEnvironment) -> None:
    """Logging from alembic.ini, unless the caller runs many cogs in one process (``nxalembic``)."""
    config = context.config
    with reported_to_alembic():  # a bad -x is reported here, the first thing env.py asks
        if config.config_file_name and request_for(config).configure_logger:
            from logging.config import fileConfig  # imported here: the nxalembic command never needs it

            fileConfig(config.config_file_name, disable_existing_loggers=False)


def load_schema(config: Config) -> BotSchema:
    """Discover the bot once per command and keep it with the request."""
    request = request_for(config)
    if request.schema is None:
        remember_url(request.url)  # masked in whatever the bot module prints
        with contextlib.suppress(NXAlembicError):
            remember_url(alembic_ini_url(config))
        refuse_another_projects_pyproject(config)
        request.schema = discover(load_settings(settings_for(config.config_file_name)))
    return request.schema


def run_migrations(context: AlembicEnvironment | None = None, **configure_options: Any) -> None:
    """Run the current Alembic command for the selected cog, offline or online.

    *configure_options* are passed on to :meth:`EnvironmentContext.configure` (for example
    ``compare_server_default=True``).  ``include_name``, ``include_object`` and
    ``process_revision_directives`` among them are combined with the cog's own hooks (both
    filters must let a table through; env.py's directives run first, then the cog's), never
    put in their place: a cog's run never sees another cog's tables.  ``version_table``,
    ``version_table_schema`` and ``target_metadata`` are refused: each cog's come from
    nxalembic.ini and its models.
    """
    if context is None:
        from alembic import context as alembic_context

        context = alembic_context
    try:
        with reported_to_alembic():  # Alembic's caller (the stock command line) knows CommandError only
            _run_migrations(context, configure_options)
    except KeyboardInterrupt:
        if not request_for(context.config).from_command_line:
            raise  # not the stock command line: the caller (nxalembic, a test runner) decides
        # Stock ``alembic``'s main() would print a long traceback: one line and the shell's 130.
        print(INTERRUPTED, file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def _run_migrations(context: AlembicEnvironment, configure_options: dict[str, Any]) -> None:
    config = context.config
    refuse_per_cog_overrides(config, configure_options)
    configure_options = dict(configure_options)
    user_hooks = UserHooks.taken_from(configure_options)
    if request_for(config).command == SCREEN_COMMAND:
        _run_screen(context, configure_options, user_hooks)
        return
    request = request_for(config)  # its cog; an unknown one is refused naming the known cogs
    scope = CogScope.for_cog(load_schema(config), request.cog, Path(context.script.dir).resolve(), request)
    scope.user_hooks = user_hooks
    use_cog_history(
        context.script, scope.version_location, scope.cog.name, scope.other_locations, scope.request.revisions
    )
    write_revisions_safely(context.script, scope.cog.name)
    autogenerate = is_autogenerate(scope.request)
    options: dict[str, Any] = {
        # autogenerate compares the cog's own tables only: handing it every cog's would cost
        # each cog time in proportion to all cogs' tables (include_object turns them away anyway)
        "target_metadata": scope.target_metadata() if autogenerate else list(scope.schema.metadata),
        "version_table": scope.version_table,
        "include_name": scope.include_name,
        "include_object": scope.include_object,
        "process_revision_directives": scope.process_revision_directives,
        "compare_type": True,
        # a cog with tables in named schemas (ormar's schema=) is compared in those schemas too
        "include_schemas": bool(scope.schemas),
        **scope.request.configure,
        **configure_options,
    }
    if autogenerate:
        options.setdefault("dont_mutate", True)  # comparing must not create a version table
    with contextlib.ExitStack() as stack:
        stack.enter_context(revisions_must_not_exit(scope.cog.name))
        # 'music.songs.id' in a revision means the table music.songs (replay and live run alike)
        stack.enter_context(_compat.dotted_table_targets(_is_table(scope.schema)))
        if autogenerate:
            scratch = _replay_history(stack, context.script, scope)
            if scope.request.offline:
                # No live database: autogenerate against the replayed history instead.
                try:
                    url: str | None = database_url(config, scope.request, scope.schema)
                except NXAlembicError:
                    if scope.request.url is not None:
                        raise  # an empty -x url= is a mistake, offline too
                    url = None
                target = make_url(url).get_backend_name() if url else scratch.dialect.name
                scope.target_dialect = target
                options["compare_type"] = portable_compare_type(scratch.dialect.name)
                _run_on_connection(
                    context, scope, scratch, {**options, "render_as_batch": target == "sqlite"}
                )
                return
        _run_online_or_sql(context, scope, options)


def _run_screen(
    context: AlembicEnvironment, configure_options: dict[str, Any], user_hooks: UserHooks
) -> None:
    """Compare several cogs at their head in one pass (``scope.Screen``), on the caller's connection.

    The options are those of a cog's own ``check``, env.py's filters combined the same way,
    with the cogs' tables together in place of one cog's.
    """
    request = request_for(context.config)
    if user_hooks.process_revision_directives is not None:
        # env.py's own hook may change what a cog's check reports, and a shared pass cannot run it
        raise NXAlembicError("env.py passes process_revision_directives: each cog is compared on its own")
    schema = load_schema(context.config)
    connection = request.connection
    if not isinstance(connection, Connection):
        raise NXAlembicError("a screen run needs the caller's connection")  # nxalembic hands it over
    screen = Screen.of(schema, request.cogs)
    screen.user_hooks = user_hooks
    # request.configure names one of the cogs' version tables: Alembic reads it before comparing
    context.configure(
        connection=connection,
        **{
            "target_metadata": screen.target_metadata(),
            "include_name": screen.include_name,
            "include_object": screen.include_object,
            "compare_type": True,
            "include_schemas": bool(screen.schemas),
            **locking.configure_options(connection),
            **request.configure,
            **configure_options,
            "dont_mutate": True,
        },
    )
    with _compat.dotted_table_targets(_is_table(schema)), context.begin_transaction():
        context.run_migrations()


def _is_table(schema: BotSchema) -> Callable[[str, Connection | None], bool]:
    """Whether a table of this name (dots and all) is modelled by a loaded cog or exists in the
    database a revision runs on (which covers tables the cog's history created or renamed)."""
    modelled = schema.derived.get("modelled table names")
    if modelled is None:  # once per process, not once per cog
        modelled = schema.derived["modelled table names"] = frozenset(
            table.name
            for metadata in schema.metadata
            for table in metadata.tables.values()
            if table.schema is None
        )

    def is_table(name: str, connection: Connection | None) -> bool:
        return name in modelled or (connection is not None and sa.inspect(connection).has_table(name))

    return is_table


def created_tables(scope: CogScope, script: ScriptDirectory, scratch_url: str) -> set[str]:
    """The tables the cog's own revisions (*script*, its loaded history) create: a scratch replay,
    as a cog's own autogenerate does it.  A replay that fails raises :class:`.NXAlembicError`."""
    with (
        _compat.dotted_table_targets(_is_table(scope.schema)),
        _scratch(scope, script, scratch_url) as scratch,
    ):
        return history_tables(scratch, scope.version_table)


def _scratch(scope: CogScope, script: ScriptDirectory, url: str) -> AbstractContextManager[Connection]:
    url = anchor_sqlite_path(url, scope.schema.settings.root)  # a relative path: as -x url='s
    return scratch_database(
        script, scope.version_table, scope.cog.name, url, referenced=scope.referenced_tables()
    )


def _replay_history(stack: contextlib.ExitStack, script: ScriptDirectory, scope: CogScope) -> Connection:
    """Replay the cog's revisions into a scratch database; learn which tables they own."""
    try:
        scratch = stack.enter_context(_scratch(scope, script, scope.request.scratch_url))
    except NXAlembicError:
        if scope.request.offline:
            raise
        log.warning("cog %r: history replay failed, so dropped tables are not detected", scope.cog.name)
        return None  # type: ignore[return-value]
    scope.history = history_tables(scratch, scope.version_table)
    return scratch


def _run_online_or_sql(context: AlembicEnvironment, scope: CogScope, options: dict[str, Any]) -> None:
    config = context.config
    connection = borrowed_connection(config, scope.request)
    if isinstance(connection, Engine):
        # pytest-alembic hands over its engine: the caller's, borrowed for one connection, never disposed
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
    url = database_url(config, scope.request, scope.schema)
    if context.is_offline_mode():
        parsed = parse_url(url)
        scope.check_dialect(parsed.get_dialect())
        context.configure(
            url=url,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            render_as_batch=parsed.get_backend_name() == "sqlite",
            **options,
        )
        with (
            context.begin_transaction(),
            sql_end_marked(config, context.get_context().impl.static_output),
        ):
            context.run_migrations()
        return
    with_connection(
        url,
        lambda connection: _run_on_connection(context, scope, connection, options),
        read_only=is_autogenerate(scope.request),
    )


def _run_on_connection(
    context: AlembicEnvironment, scope: CogScope, connection: Connection, options: dict[str, Any]
) -> None:
    scope.check_dialect(connection.dialect)
    # MariaDB / MySQL commit DDL statement by statement: note what each revision ran, so that
    # one failing half-way can say where it left the database (see locking.py).
    tracked = locking.non_transactional(connection) and not locking.is_read_only(connection)
    statements = locking.StatementLog(scope.version_table)
    moved: list[bool] = []
    callers_hook = options.get("on_version_apply")

    def on_version_apply(**kwargs: Any) -> None:
        statements.reset()
        moved.append(True)
        if callers_hook is not None:
            callers_hook(**kwargs)

    context.configure(
        connection=connection,
        **{
            "render_as_batch": connection.dialect.name == "sqlite",
            **locking.configure_options(connection),
            **options,
            **({"on_version_apply": on_version_apply} if tracked else {}),
        },
    )
    try:
        with statements.watching(connection) if tracked else contextlib.nullcontext():
            with context.begin_transaction():
                locking.acquire(connection)
                context.run_migrations()
        if tracked and moved:
            locking.clear_partial(connection, scope.version_table)
    except NXAlembicError:
        raise  # ours, already one line (a LockTimeout: asking the database more would wait again)
    except CommandError as exc:
        raise _explain_command_error(exc, context, scope) from exc
    except Exception as exc:
        revision = failing_revision(exc)
        if revision is None and not isinstance(exc, SQLAlchemyError):
            # Neither a revision script nor the database failed: the exception belongs to a
            # caller's hook (pytest-alembic signals results this way) and must reach it as is.
            raise
        step = f"revision {revision}" if revision else "migration"
        between = ""
        if tracked and revision is not None and statements.done:
            between = locking.explain_partial(
                statements, exc, revision, _down_revisions(context.script, revision)
            )
            locking.record_partial(connection, statements, revision, exc)
        raise NXAlembicError(
            hide_password(
                connection.engine.url,
                f"cog {scope.cog.name!r}: {step} failed: {type(exc).__name__}: {first_line(exc)}"
                + (between or _already_exists_hint(exc, context.script, revision, scope, connection)),
            )
        ) from exc


def _down_revisions(script: ScriptDirectory, revision: str) -> list[str]:
    """The revisions *revision* follows: what the version table says when it did not finish."""
    try:
        return list(to_tuple(script.get_revision(revision).down_revision, default=()))
    except Exception:
        return []


def _already_exists_hint(
    exc: BaseException, script: ScriptDirectory, revision: str | None, scope: CogScope, connection: Connection
) -> str:
    """The fix (``stamp``) when the cog's first revision finds its tables already there.

    Only advised when the database, read again, shows tables made without migrations
    (:func:`_made_without_migrations`): otherwise ``stamp`` would mark as migrated what is not.
    """
    if revision is None or "already exists" not in str(exc):
        return ""
    try:
        first = script.get_revision(revision).down_revision is None
    except Exception:
        first = False
    if not first or not _made_without_migrations(connection, scope):
        return ""
    cog = scope.cog.name
    return (
        f"; the tables exist but {scope.version_table} is empty (made without migrations?): if they "
        f"already match the cog's revisions, record that with 'alembic -x cog={cog} stamp head' "
        "instead of upgrading"
    )


def _made_without_migrations(connection: Connection, scope: CogScope) -> bool:
    """Whether every table of the cog's models exists while its version table is empty, as read now.

    Read after the failed migration's transaction ended (the error alone does not tell).
    When the database cannot be read, nothing is advised.
    """
    if connection.in_transaction():
        return False  # a caller's transaction, maybe aborted: not ours to read in or end
    try:
        inspector = sa.inspect(connection)
        if not scope.cog.table_keys or not all(
            inspector.has_table(name, schema=schema) for schema, name in scope.cog.table_keys
        ):
            return False
        version_table = scope.version_table
        return not inspector.has_table(version_table) or not any(
            version_rows(connection, {version_table: version_table}).values()
        )
    except Exception:
        return False
    finally:
        if connection.in_transaction():
            connection.rollback()


def _explain_command_error(
    exc: CommandError, context: AlembicEnvironment, scope: CogScope
) -> CommandError | NXAlembicError:
    """Alembic's message, or one that names the cog and the fix when we can tell the cause."""
    script, cog = context.script, scope.cog.name
    if str(exc).startswith("Multiple head revisions are present"):
        return forked_history(cog, script.get_heads())
    try:
        current = context.get_context().get_current_heads()
    except Exception:  # the database cannot tell: keep Alembic's message
        return exc
    unknown = unknown_revisions(cog, script, current, scope.version_table, scope.version_location)
    return exc if unknown is None else unknown
