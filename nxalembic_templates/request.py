"""Internal: what one Alembic run is asked to do for one cog: the request env.py works from.

Two routes reach the same env.py.  Stock ``alembic -x cog=music upgrade head`` says it on the
command line (``-x`` pairs and Alembic's parsed arguments, ``config.cmd_opts``); the
``nxalembic`` command and :mod:`.testing` know it already and hand a :class:`CogRequest` over in
``config.attributes`` under one key.  :func:`request_for` is the one place that turns either
into a :class:`CogRequest`, and this module is the only one that reads ``config.attributes``
or ``config.cmd_opts``.  :func:`database_url` hands the request's ``-x url=`` and alembic.ini's
``sqlalchemy.url`` (as Alembic's ``Config`` reads it) to the one resolver,
:func:`.engines.database_url`.
"""

from __future__ import annotations

import configparser
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.config import Config

from . import _compat, engines
from .errors import NXAlembicError, first_line, mask
from .settings import pyproject_for

if TYPE_CHECKING:
    from alembic.script.revision import RevisionMap
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from .discovery import BotSchema

__all__ = [
    "DEFAULT_SCRATCH_URL",
    "FALSE",
    "PER_COG_KEYS",
    "TRUE",
    "CogRequest",
    "alembic_ini_url",
    "attach",
    "borrowed_connection",
    "database_url",
    "is_autogenerate",
    "parse_renames",
    "refuse_another_projects_pyproject",
    "refuse_per_cog_overrides",
    "request_for",
    "sql_end_marked",
]

#: The ``config.attributes`` key of the :class:`CogRequest`.
REQUEST_KEY = "nxalembic.request"
#: Where Alembic's cookbook and pytest-alembic hand a connection (or engine) to env.py.
CONNECTION_KEY = "connection"
#: Alembic's cookbook key for "env.py, leave logging alone" (read by env.py files of 0.1.0).
CONFIGURE_LOGGER_KEY = "configure_logger"

#: The last line of the SQL an offline (``--sql``) run printed before it failed: whoever reads
#: the file sees that it stops part-way, and why.
SQL_STOPPED = "-- nxalembic: stopped here, the SQL above is incomplete: {}"
#: The ``config.attributes`` key set once that line is written (by env.py or by the runner).
SQL_STOPPED_KEY = "nxalembic.sql_stopped"

#: The scratch database offline autogenerate replays a cog's revisions into (in-memory SQLite).
DEFAULT_SCRATCH_URL = "sqlite://"
#: The spellings of yes accepted for a boolean ``-x`` key (``offline``, ``allow_drops``).
TRUE = frozenset({"1", "true", "yes", "on"})
#: The spellings of no.
FALSE = frozenset({"0", "false", "no", "off"})

#: ``-x`` keys that would let one cog use another cog's history; nxalembic.ini decides those.
PER_COG_KEYS = ("version_table", "version_location", "version_locations", "version_path")


@dataclass(frozen=True)
class RenameHint:
    """``old_table:new_table`` or ``table.old_column:new_column``, kept as written.

    Table names may contain dots (``Music.songs``), so the text is never split on ``.``: it is
    matched against the cog's real table names (:meth:`column_of`), longest table name first.
    """

    old: str
    new: str

    @classmethod
    def parse(cls, text: str) -> RenameHint:
        old, sep, new = text.partition(":")
        if not sep or not old or not new:
            raise NXAlembicError(
                f"rename hint {text!r} is not old_table:new_table or table.old_column:new_column"
            )
        return cls(old=old, new=new)

    def column_of(self, tables: Iterable[str]) -> tuple[str, str] | None:
        """(table, old column) when the hint reads ``<one of tables>.<column>``: the longest such table."""
        for table in sorted(tables, key=len, reverse=True):
            prefix = f"{table}."
            if self.old.startswith(prefix) and len(self.old) > len(prefix):
                return table, self.old[len(prefix) :]
        return None


def parse_renames(texts: Sequence[str]) -> tuple[RenameHint, ...]:
    """Rename hints as given (``-x rename=a:b,c:d`` may hold several, comma-separated)."""
    return tuple(RenameHint.parse(hint) for text in texts for hint in text.split(",") if hint)


def x_pairs(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``-x key=value`` pairs (``-x`` may be repeated) as key -> values in the order given."""
    values: dict[str, list[str]] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        values.setdefault(key, []).append(value)
    return values


@dataclass
class CogRequest:
    """One run for one cog: which cog, which command, and how to autogenerate."""

    #: The cog to migrate (``-x cog=``); ``None``: not chosen (an error, naming the known cogs).
    cog: str | None = None
    #: Alembic's command: ``upgrade``, ``revision``, ``check``...; ``None`` when a library calls
    #: ``alembic.command`` functions directly (pytest-alembic).
    command: str | None = None
    #: ``revision --autogenerate`` or ``check``; ``None``: not known up front (see :func:`is_autogenerate`).
    autogenerate: bool | None = None
    #: Autogenerate against a scratch replay of the cog's history instead of the database.
    offline: bool = False
    #: Write drops of tables the cog's revisions created whose models are gone.
    allow_drops: bool = False
    renames: tuple[RenameHint, ...] = ()
    #: Asks a yes/no question at the terminal (rename detection); ``None``: never ask.
    ask: Callable[[str], bool] | None = None
    scratch_url: str = DEFAULT_SCRATCH_URL
    #: ``-x url=``: ``None`` when not given, ``""`` when given empty (a mistake).
    url: str | None = None
    #: Per-cog keys given with ``-x`` (:data:`PER_COG_KEYS`); env.py refuses them.
    refused_x: tuple[str, ...] = ()
    #: Extra ``context.configure()`` options (``on_version_apply``, ``dont_mutate``...).
    configure: Mapping[str, Any] = field(default_factory=dict)
    #: A connection (or sync engine) to migrate on instead of opening the database URL.
    connection: Connection | Engine | AsyncEngine | None = None
    #: Whether env.py sets up logging from alembic.ini (not when many cogs run in one process).
    configure_logger: bool = True
    #: Built from a stock ``alembic`` command line (Ctrl-C then prints one line and exits 130).
    from_command_line: bool = False
    #: The cogs one autogenerate pass compares together (:class:`.scope.Screen`; ``nxalembic`` only).
    cogs: tuple[str, ...] = ()
    #: The discovered bot, once imported (cached: importing it is the slow part).
    schema: BotSchema | None = field(default=None, repr=False, compare=False)
    #: Returns the cog's revision map, already loaded and checked (the ``nxalembic`` command
    #: reads each cog's revision files once per process); ``None``: env.py loads the files.
    revisions: Callable[[], RevisionMap] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_x(cls, pairs: Sequence[str], **fields: Any) -> CogRequest:
        """The request that ``-x`` pairs describe (both routes parse ``-x`` here), plus *fields*.

        Single-valued keys take the last value given; the flags are true when any value is.
        """
        x = x_pairs(pairs)

        def flag(key: str) -> bool:
            return any(value.lower() in TRUE for value in x.get(key, []))

        values: dict[str, Any] = {
            "offline": flag("offline"),
            "allow_drops": flag("allow_drops"),
            "renames": parse_renames(x.get("rename", [])),
            "refused_x": tuple(key for key in PER_COG_KEYS if key in x),
        }
        for key in ("cog", "url", "scratch_url"):
            if key in x:
                values[key] = x[key][-1]
        return cls(**{**values, **fields})


def attach(config: Config, request: CogRequest) -> None:
    """Hand *request* to env.py for the next Alembic command on *config*."""
    config.attributes[REQUEST_KEY] = request
    config.attributes[CONFIGURE_LOGGER_KEY] = request.configure_logger


def request_for(config: Config) -> CogRequest:
    """The request of the running command: the one attached, else the stock command line's.

    The stock route is read here and nowhere else: ``-x`` pairs, the command's name (Alembic's
    ``CommandLine`` stores the command function in ``cmd_opts.cmd``) and ``--autogenerate``.
    The request built is cached on *config*, so the bot is imported once per command.
    """
    request = config.attributes.get(REQUEST_KEY)
    if isinstance(request, CogRequest):
        return request
    options = config.cmd_opts
    command = _compat.command_name(options)
    autogenerate = None
    if command is not None:
        autogenerate = command == "check" or (
            command == "revision" and bool(getattr(options, "autogenerate", False))
        )
    request = CogRequest.from_x(
        getattr(options, "x", None) or [],
        command=command,
        autogenerate=autogenerate,
        configure_logger=bool(config.attributes.get(CONFIGURE_LOGGER_KEY, True)),
        from_command_line=command is not None,
    )
    config.attributes[REQUEST_KEY] = request
    return request


def borrowed_connection(config: Config, request: CogRequest) -> Connection | Engine | AsyncEngine | None:
    """The connection to migrate on: the request's, else one a caller put in ``attributes``.

    pytest-alembic (and Alembic's cookbook recipe for sharing a connection) set
    ``config.attributes["connection"]`` right before calling a command.
    """
    if request.connection is not None:
        return request.connection
    return config.attributes.get(CONNECTION_KEY)


def is_autogenerate(request: CogRequest, migration_context: Any = None) -> bool:
    """Whether this run compares models with the database (``revision --autogenerate``, ``check``).

    The request says so on both command-line routes.  When a library calls
    ``alembic.command.revision()`` itself, only the running revision command knows.
    """
    if request.autogenerate is not None:
        return request.autogenerate
    if migration_context is None:
        return False
    return bool(_compat.revision_command_autogenerate(migration_context))


def database_url(config: Config, request: CogRequest, schema: BotSchema) -> str:
    """The database of Alembic's route: :func:`.engines.database_url` with alembic.ini read by *config*."""
    return engines.database_url(
        schema.settings, request.url, lambda: alembic_ini_url(config), lambda: engines.models_url(schema)
    )


def alembic_ini_url(config: Config) -> str | None:
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


def refuse_another_projects_pyproject(config: Config) -> None:
    """Stock ``alembic -c other/alembic.ini`` run elsewhere: no ``[tool.alembic]`` of this folder's project.

    Stock Alembic completes alembic.ini with ``[tool.alembic]`` of the *current directory's*
    pyproject.toml; the settings (``settings.settings_for``), ``nxalembic`` and the
    start-up API take the one beside alembic.ini.  An option Alembic took from another
    project's table (its ``script_location``: its revisions) would mix two projects.
    """
    ini, toml = config.config_file_name, config.toml_file_name
    if not ini or not toml or Path(toml).resolve() == pyproject_for(ini):
        return
    ini_options = config.file_config
    section = config.config_ini_section
    taken = sorted(key for key in config.toml_alembic_config if not ini_options.has_option(section, key))
    if taken:
        raise NXAlembicError(
            f"Alembic took {', '.join(taken)} from [tool.alembic] of {Path(toml).resolve()}, but the config "
            f"file is {Path(ini).resolve()} of another project; run alembic in {Path(ini).resolve().parent} "
            f"(or use nxalembic -c {ini}, which reads the pyproject.toml beside it)"
        )


def refuse_per_cog_overrides(config: Config, configure_options: dict[str, Any]) -> None:
    """What env.py or ``-x`` may not choose for one cog: its version table, its models, a schema."""
    refused = request_for(config).refused_x
    if refused:
        key = refused[0]
        raise NXAlembicError(
            f"-x {key}= is not accepted: each cog's version table and revisions folder come from "
            "version_table / version_location of the settings (nxalembic.ini or [tool.nxalembic] in "
            "pyproject.toml; both contain {cog}); change them there"
        )
    if "version_table" in configure_options:
        raise NXAlembicError(
            f"env.py passes version_table={configure_options['version_table']!r} to run_migrations(), "
            "which would give every cog one version table; remove it and set "
            "version_table = ..._{cog} in nxalembic.ini (or [tool.nxalembic]) instead"
        )
    if configure_options.get("target_metadata") is not None:
        raise NXAlembicError(
            "env.py passes target_metadata to run_migrations(), which would compare every cog with "
            "those tables instead of its own models (found from the bot); remove it"
        )
    if "version_table_schema" in configure_options:
        # Honouring it would need every reader of version tables to know the schema, the
        # start-up check too, which never runs env.py: refused rather than read in two places.
        raise NXAlembicError(
            f"env.py passes version_table_schema={configure_options['version_table_schema']!r} to "
            "run_migrations(), which nxalembic's own reads of the version tables (status, upgrade, the "
            "start-up check) would not see; remove it: each cog's version table lives in the "
            "connection's default schema"
        )


@contextlib.contextmanager
def sql_end_marked(config: Config, write: Callable[[str], None]) -> Iterator[None]:
    """Run an offline (``--sql``) migration; if it fails, end its SQL with :data:`SQL_STOPPED`
    through *write*, unless a run inside this one (env.py's) wrote it already, and let it go on."""
    config.attributes.pop(SQL_STOPPED_KEY, None)
    try:
        yield
    except BaseException as exc:
        if not config.attributes.pop(SQL_STOPPED_KEY, False):
            config.attributes[SQL_STOPPED_KEY] = True
            write(SQL_STOPPED.format(mask(" ".join(first_line(exc).split()))))
        raise
