"""Internal: finding the bot, its cogs and each cog's ormar models.

A *cog*, for migration purposes, is a loaded extension (``bot.extensions``) that defines at
least one ormar model: in the extension module itself (single-file cog) or anywhere inside its
package (package cog), including the many-to-many *through* tables ormar creates for it.
Models the bot imports from outside every extension belong to a pseudo-cog (``core`` unless
``core_cog`` says otherwise), except models of extensions that are not loaded (modules with a
``setup()`` function that a loaded cog happens to import): those belong to no cog.  Both the
stock ``alembic -x cog=`` route and the ``nxalembic`` command get their cogs from
:func:`discover`, so they can never disagree.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import ormar
import sqlalchemy as sa

from .errors import NXAlembicError, mask, remember_url
from .extensions import (
    BotStartedOnImport,
    StartGuard,
    bot_attribute,
    check_is_bot,
    ensure_event_loop,
    import_error,
    importing,
    load_missing,
    no_extensions,
    resolve,
)
from .settings import NAME_RE, Settings, setting_hint

__all__ = [
    "COG_NAME_ATTRIBUTE",
    "SET_ASIDE",
    "BotSchema",
    "Cog",
    "TableKey",
    "dependency_order",
    "discover",
]

#: Models defined by extensions imported aside (the start-up API's), not by the live bot's code.
SET_ASIDE: weakref.WeakSet[type] = weakref.WeakSet()

#: Module-level attribute an extension sets to choose its cog name explicitly.
COG_NAME_ATTRIBUTE = "__nxalembic_cog__"

#: ``(schema, table name)``; schema is ``None`` for the connection's default schema.
TableKey = tuple[str | None, str]


def table_key(table: sa.Table) -> TableKey:
    return (table.schema, table.name)


@dataclass(frozen=True)
class Cog:
    """One migration unit: a name, where it came from, and the tables it owns."""

    name: str
    #: Dotted extension name, or ``None`` for the pseudo-cog of models outside extensions.
    extension: str | None
    #: The ``{cog_dir}`` of ``version_location``: the package folder, or the module's folder.
    directory: Path
    models: tuple[type[ormar.Model], ...]
    tables: tuple[sa.Table, ...]

    @cached_property
    def table_keys(self) -> frozenset[TableKey]:
        # Cached: include_name asks once per table in the database (thousands, see
        # benchmarks/bench_autogenerate_foreign_tables.py); ``tables`` is a tuple and never changes.
        return frozenset(table_key(t) for t in self.tables)


@dataclass
class BotSchema:
    """Everything discovery learned about one bot: its cogs and all the metadata they use."""

    settings: Settings
    bot: Any
    cogs: dict[str, Cog]
    #: Loaded extensions that define no model: listed, never an error.
    extensions_without_models: tuple[str, ...]
    metadata: tuple[sa.MetaData, ...]
    #: Why the bot has no extensions (:func:`no_extensions`), or ``""`` when it has some.
    no_extensions_hint: str = ""
    _owners: dict[TableKey, str] = field(default_factory=dict, repr=False)
    #: What higher layers derive from the schema once per process and keep with it (e.g. the
    #: revisions folder of every cog, :class:`~.scope.CogLayout`): key -> value.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._owners = {key: cog.name for cog in self.cogs.values() for key in cog.table_keys}

    @property
    def _known(self) -> str:
        return ", ".join(self.cogs) or "(none: no loaded extension defines ormar models)"

    def cog(self, name: str | None) -> Cog:
        """Return the cog called *name*, or fail with a line that lists the known cogs."""
        known = self._known
        if not name:
            raise NXAlembicError(f"no cog selected; known cogs: {known}. Use: alembic -x cog=NAME <command>")
        if not NAME_RE.fullmatch(name):
            raise NXAlembicError(
                f"invalid cog name {name!r}: cog names match {NAME_RE.pattern}; known cogs: {known}"
            )
        if name not in self.cogs:
            raise self.unknown_cog(name, ". Use: alembic -x cog=NAME <command>")
        return self.cogs[name]

    def unknown_cog(self, name: str, use: str) -> NXAlembicError:
        """The error for a cog name that is not a cog; *use* (with its separator) says how to pick one.

        A loaded extension without models is named as such: "unknown" would suggest a typo.
        """
        known = self._known
        for extension in self.extensions_without_models:
            if name in (extension, extension.rsplit(".", 1)[-1]):
                return NXAlembicError(
                    f"extension {extension} is loaded but defines no ormar models, so it has no "
                    f"migrations; cogs with models: {known}{use}"
                )
        hint = f" ({self.no_extensions_hint})" if self.no_extensions_hint else ""
        return NXAlembicError(f"unknown cog {name!r}; known cogs: {known}{hint}{use}")

    def all_table_keys(self) -> set[TableKey]:
        """Tables modelled by any loaded cog."""
        return set(self._owners)

    def owner_of(self, key: TableKey) -> str | None:
        return self._owners.get(key)

    def dependencies(self) -> dict[str, set[str]]:
        """Cog name -> names of the other cogs whose tables its foreign keys reference."""
        deps: dict[str, set[str]] = {name: set() for name in self.cogs}
        for cog in self.cogs.values():
            for table in cog.tables:
                for fk in table.foreign_keys:
                    try:
                        target = table_key(fk.column.table)
                    except sa.exc.SQLAlchemyError:
                        continue  # unresolvable reference: autogenerate will report it
                    owner = self._owners.get(target)
                    if owner and owner != cog.name:
                        deps[cog.name].add(owner)
        return deps

    def upgrade_order(self, names: Iterable[str] | None = None, with_dependencies: bool = False) -> list[str]:
        """Cogs ordered so that referenced cogs come first; a cycle is an error naming it.

        *with_dependencies*: the cogs *names* reference (directly or not) are in the list too.
        """
        wanted = list(self.cogs) if names is None else list(names)

        def refuse(cycle: list[str]) -> None:
            raise NXAlembicError(
                "foreign keys form a cycle between cogs: "
                + " -> ".join(cycle)
                + "; migrate these cogs one at a time with --cog, or move the shared tables into one cog"
            )

        order = dependency_order(wanted, self.dependencies(), refuse)
        return order if with_dependencies else [name for name in order if name in set(wanted)]


def import_bot(settings: Settings) -> Any:
    """``from <module> import <bot>`` (the ini file's folder first on ``sys.path``), then build and load it.

    A ``bot`` function is called (and awaited) to build the bot, then the missing ``extensions``
    are loaded (:mod:`.extensions`).  Meanwhile the bot cannot start (:class:`~.extensions.StartGuard`)
    and what it prints goes to stderr, masked: stdout may carry ``status --json`` or ``upgrade --sql``.
    Every failure, ``sys.exit()`` included, is one error naming the line of the user's code.
    """
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    ensure_event_loop()
    output = io.StringIO()
    failure: BaseException | None = None
    doing = importing(settings)
    bot: Any = None
    try:
        with (
            StartGuard(settings.root) as guard,
            contextlib.redirect_stdout(output),
            contextlib.redirect_stderr(output),
        ):
            try:
                module = importlib.import_module(settings.module)
                value = bot_attribute(settings, module)
                if isinstance(getattr(value, "extensions", None), Mapping) or not callable(value):
                    bot = value
                else:
                    doing = f"calling {settings.module}.{settings.bot}() (bot = in {settings.path.name})"
                    bot = resolve(value())
                    check_is_bot(settings, bot, f"{settings.module}.{settings.bot}() returned")
                check_is_bot(settings, bot)
                load_missing(settings, bot)
            except NXAlembicError:
                raise
            except (Exception, SystemExit, BotStartedOnImport) as exc:
                failure = exc
        failure = failure or guard.refused  # a start the bot module caught and carried on after
    finally:
        _replay_masked(output.getvalue(), settings)
    if failure is not None:
        raise import_error(settings, failure, doing) from failure
    return bot


def _replay_masked(text: str, settings: Settings) -> None:
    """Write what the bot module printed to stderr, without the credentials of any known URL.

    The models' ormar databases are only known once the module ran: their URLs (the very
    thing a bot likes to print) are remembered first, for this text and every later error.
    """
    remember_url(settings.url)
    for model in _all_models():
        remember_url(str(getattr(getattr(model.ormar_config, "database", None), "url", "") or ""))
    if text:
        sys.stderr.write(mask(text))
        sys.stderr.flush()


def _all_models() -> Iterator[type[ormar.Model]]:
    """Every concrete ormar model class created in this process (through models included)."""
    seen: set[int] = set()
    stack = list(ormar.Model.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        config = getattr(cls, "ormar_config", None)
        table = None if cls in SET_ASIDE else getattr(config, "table", None)
        if config is None or config.abstract or not isinstance(table, sa.Table) or id(table) in seen:
            continue  # seen: ormar copies through models for subclasses; the table is what counts
        seen.add(id(table))
        yield cls


def _extension_of(module_name: str, extensions: Mapping[str, ModuleType]) -> str | None:
    """The innermost loaded extension that is or contains *module_name*.

    One lookup per dotted part, not one comparison per extension (a bot may load hundreds).
    """
    if module_name in extensions:
        return module_name
    parts = module_name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        ext = ".".join(parts[:end])
        if ext in extensions and hasattr(extensions[ext], "__path__"):
            return ext
    return None


def _inside_unloaded_extension(module_name: str) -> bool:
    """Whether *module_name* is, or is inside, a module with a ``setup()`` function.

    Its models belong to an extension that is not loaded right now, not to the pseudo-cog.
    """
    parts = module_name.split(".")
    for end in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and callable(getattr(module, "setup", None)):
            return True
    return False


def _module_dir(module: ModuleType | None) -> Path:
    filename = getattr(module, "__file__", None)
    return Path(filename).resolve().parent if filename else Path.cwd()


def _cog_name(ext: str, module: ModuleType) -> str:
    explicit = getattr(module, COG_NAME_ATTRIBUTE, None)
    name = explicit if explicit is not None else ext.rsplit(".", 1)[-1]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        source = f"{COG_NAME_ATTRIBUTE} in {ext}" if explicit is not None else f"extension {ext}"
        raise NXAlembicError(
            f"cog name {name!r} from {source} must match {NAME_RE.pattern}; "
            f"set {COG_NAME_ATTRIBUTE} = 'valid_name' in that module"
        )
    return name


def _refuse_version_table_names(settings: Settings, cogs: Mapping[str, Cog]) -> None:
    """No model table may be named like a version table, of any cog, loaded or not.

    Autogenerate would treat such a table as the model's (altering or dropping the version
    column) and Alembic as the cog's history: either way a cog's migration state is lost.
    """
    for cog in cogs.values():
        for model, table in zip(cog.models, cog.tables, strict=True):
            owner = settings.version_table_cog(table.name)
            if owner is None:
                continue
            whose = f"the version table of cog {owner!r}" if owner else "stock Alembic's version table"
            raise NXAlembicError(
                f"model {model.__module__}.{model.__name__} of cog {cog.name!r} uses table {table.name!r}, "
                f"which is {whose} (version_table = {settings.version_table} in {settings.path.name}); "
                "give the model another tablename"
            )


def discover(
    settings: Settings, bot: Any = None, aside: tuple[dict[str, Any], list[Any]] | None = None
) -> BotSchema:
    """Import the bot (unless given) and group its ormar models into cogs.

    A given bot (the start-up API's) is taken as it is; *aside* adds the extensions it has not
    loaded and their models, imported aside (``startup._import_aside``, :data:`SET_ASIDE`).
    A bot with no extensions and no models is an error that says why (:func:`no_extensions`).
    """
    given = bot is not None
    if bot is None:
        bot = import_bot(settings)
    modules, models = aside or ({}, [])
    extensions: Mapping[str, ModuleType] = {**modules, **bot.extensions}
    bot_module = sys.modules.get(settings.module)
    top_package = settings.module.split(".", 1)[0]

    by_extension: dict[str, list[type[ormar.Model]]] = {ext: [] for ext in extensions}
    outside: list[type[ormar.Model]] = []
    for model in [*_all_models(), *(m for m in models if _extension_of(m.__module__, modules))]:
        ext = _extension_of(model.__module__, extensions)
        (by_extension[ext] if ext else outside).append(model)

    # Models outside every loaded extension belong to the bot when they live in the bot's own
    # package or share a MetaData with the cogs (other libraries' models are not ours), unless
    # they are defined inside an extension that is not loaded (imported by a loaded cog).
    cog_metadata = {id(m.ormar_config.metadata) for ms in by_extension.values() for m in ms}
    core_models = [
        m
        for m in outside
        if (m.__module__.split(".", 1)[0] == top_package or id(m.ormar_config.metadata) in cog_metadata)
        and not _inside_unloaded_extension(m.__module__)
    ]

    cogs: dict[str, Cog] = {}
    claimed: dict[str, str] = {}

    def add(
        name: str, origin: str, extension: str | None, directory: Path, models: list[type[ormar.Model]]
    ) -> None:
        if name in claimed:
            core = extension is None or "outside" in claimed[name]
            raise NXAlembicError(
                f"cog name {name!r} is claimed by both {claimed[name]} and {origin}; give one of "
                f"them another name with {COG_NAME_ATTRIBUTE} = '...' in its module"
                + (f" or set {setting_hint(settings.path, ('core_cog', 'shared'))}" if core else "")
            )
        folded = next((other for other in claimed if other.casefold() == name.casefold()), None)
        if folded is not None:
            raise NXAlembicError(
                f"cog names {folded!r} ({claimed[folded]}) and {name!r} ({origin}) differ only in case, "
                "so they would share one version table on SQLite (and MySQL with lower_case_table_names) "
                f"and one revisions folder on case-insensitive file systems; rename one with "
                f"{COG_NAME_ATTRIBUTE} = '...' in its module"
            )
        claimed[name] = origin
        models = sorted(models, key=lambda m: (m.__module__, m.ormar_config.tablename))
        cogs[name] = Cog(
            name=name,
            extension=extension,
            directory=directory,
            models=tuple(models),
            tables=tuple(m.ormar_config.table for m in models),
        )

    for ext, module in sorted(extensions.items()):
        if by_extension[ext]:
            add(_cog_name(ext, module), f"extension {ext}", ext, _module_dir(module), by_extension[ext])
    if core_models:
        add(settings.core_cog, "models outside every extension", None, _module_dir(bot_module), core_models)

    table_owner: dict[TableKey, str] = {}
    for cog in cogs.values():
        for key in cog.table_keys:
            if key in table_owner:
                shown = ".".join(k for k in key if k)
                raise NXAlembicError(
                    f"table {shown!r} is defined by models of two cogs, {table_owner[key]} and "
                    f"{cog.name}; each table must belong to exactly one cog"
                )
            table_owner[key] = cog.name

    if not extensions and not cogs:
        raise NXAlembicError(no_extensions(settings, given))
    _refuse_version_table_names(settings, cogs)

    metadata = {id(m.ormar_config.metadata): m.ormar_config.metadata for c in cogs.values() for m in c.models}
    return BotSchema(
        settings=settings,
        bot=bot,
        cogs=dict(sorted(cogs.items())),
        extensions_without_models=tuple(ext for ext in sorted(extensions) if not by_extension[ext]),
        metadata=tuple(metadata.values()),
        no_extensions_hint="" if extensions else no_extensions(settings, given),
    )


def dependency_order(
    wanted: Iterable[str],
    depends_on: Mapping[str, Iterable[str]],
    on_cycle: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """*wanted* and everything it depends on (transitively), each after its dependencies.

    The one dependency order: cogs are upgraded after the cogs their foreign keys point at, a
    cog's tables dropped before the tables they point at.  Names are opaque strings (a table
    may be called ``music.songs``), so nothing here splits them.  Ties go by name, so the order
    is the same on every run.  A cycle is handed to *on_cycle* as the path that closes it
    (``[a, b, a]``), which may raise; without *on_cycle* the edge that closes a cycle is
    ignored (any order will do, the database says the rest).
    """
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            if on_cycle is not None:
                on_cycle([*path[path.index(name) :], name])
            return
        state[name] = "active"
        for dependency in sorted(depends_on.get(name, ())):
            visit(dependency, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(wanted):
        visit(name, [])
    return order
