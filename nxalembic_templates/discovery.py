"""Finding the bot, its cogs and each cog's ormar models.

A *cog*, for migration purposes, is a loaded extension (``bot.extensions``) that defines at
least one ormar model: in the extension module itself (single-file cog) or anywhere inside its
package (package cog), including the many-to-many *through* tables ormar creates for it.
Models the bot imports from outside every extension belong to a pseudo-cog (``core`` unless
``core_cog`` says otherwise), except models of extensions that are not loaded (modules with a
``setup()`` function that a loaded cog happens to import): those belong to no cog.  Both the stock ``alembic -x cog=`` route and the ``nxalembic``
command get their cogs from :func:`discover`, so they can never disagree.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import traceback
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import ormar
import sqlalchemy as sa

from .errors import NXAlembicError
from .settings import NAME_RE, Settings

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

    @property
    def origin(self) -> str:
        return f"extension {self.extension}" if self.extension else "models outside every extension"


@dataclass
class BotSchema:
    """Everything discovery learned about one bot: its cogs and all the metadata they use."""

    settings: Settings
    bot: Any
    cogs: dict[str, Cog]
    #: Loaded extensions that define no model: listed, never an error.
    extensions_without_models: tuple[str, ...]
    metadata: tuple[sa.MetaData, ...]
    _owners: dict[TableKey, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._owners = {key: cog.name for cog in self.cogs.values() for key in cog.table_keys}

    def cog(self, name: str | None) -> Cog:
        """Return the cog called *name*, or fail with a line that lists the known cogs."""
        known = ", ".join(self.cogs) or "(none: no loaded extension defines ormar models)"
        if not name:
            raise NXAlembicError(
                f"no cog selected; known cogs: {known}. Use: alembic -x cog=NAME <command>"
            )
        if not NAME_RE.match(name):
            raise NXAlembicError(
                f"invalid cog name {name!r}: cog names match [A-Za-z_][A-Za-z0-9_]*; known cogs: {known}"
            )
        if name not in self.cogs:
            raise NXAlembicError(
                f"unknown cog {name!r}; known cogs: {known}. Use: alembic -x cog=NAME <command>"
            )
        return self.cogs[name]

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

    def upgrade_order(self, names: Iterable[str] | None = None) -> list[str]:
        """Cogs ordered so that referenced cogs come first; a cycle is an error naming it."""
        wanted = list(self.cogs) if names is None else list(names)
        deps = self.dependencies()
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "active":
                cycle = path[path.index(name):] + [name]
                raise NXAlembicError(
                    "foreign keys form a cycle between cogs: "
                    + " -> ".join(cycle)
                    + "; migrate these cogs one at a time with --app, or move the shared tables into one cog"
                )
            state[name] = "active"
            for dep in sorted(deps[name]):
                visit(dep, path + [name])
            state[name] = "done"
            order.append(name)

        for name in sorted(wanted):
            visit(name, [])
        return [name for name in order if name in set(wanted)]

    def default_url(self) -> str | None:
        """The URL of the models' ormar database, the last fallback for the database URL."""
        for cog in self.cogs.values():
            for model in cog.models:
                database = getattr(model.ormar_config, "database", None)
                url = getattr(database, "url", None)
                if url:
                    return str(url)
        return None


def import_bot(settings: Settings) -> Any:
    """``from <module> import <bot>``, with the ini file's folder on ``sys.path`` first."""
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    _ensure_event_loop()
    try:
        module = importlib.import_module(settings.module)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" ({Path(where.filename).name}:{where.lineno})" if where else ""
        raise NXAlembicError(
            f"importing bot module {settings.module!r} (module = in {settings.path.name}) failed: "
            f"{type(exc).__name__}: {exc}{at}; fix the error or the module path"
        ) from exc
    try:
        bot = getattr(module, settings.bot)
    except AttributeError:
        raise NXAlembicError(
            f"module {settings.module!r} has no attribute {settings.bot!r}; set 'bot = NAME' in "
            f"{settings.path.name} to the variable that holds your bot"
        ) from None
    if not isinstance(getattr(bot, "extensions", None), Mapping):
        raise NXAlembicError(
            f"{settings.module}.{settings.bot} is of type {type(bot).__name__}, not a nextcord bot "
            f"(it has no 'extensions' mapping); point 'bot =' in {settings.path.name} at your "
            "commands.Bot instance"
        )
    return bot


def _ensure_event_loop() -> None:
    """Give nextcord an event loop to find while the bot module runs ``commands.Bot()``.

    nextcord 2.x asks ``asyncio.get_event_loop()`` in the Bot constructor, which fails in a
    process that already ran ``asyncio.run()`` (it leaves no current loop behind): the case
    for tools that migrate in-process, such as pytest-alembic.
    """
    try:
        asyncio.get_running_loop()
        return
    except RuntimeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            asyncio.get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())


def _all_models() -> Iterator[type[ormar.Model]]:
    """Every concrete ormar model class created in this process (through models included)."""
    seen: set[int] = set()
    stack = list(ormar.Model.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        config = getattr(cls, "ormar_config", None)
        table = getattr(config, "table", None)
        if config is None or config.abstract or not isinstance(table, sa.Table):
            continue
        if id(table) in seen:
            continue  # ormar copies through models for subclasses; the table is what counts
        seen.add(id(table))
        yield cls


def _extension_of(module_name: str, extensions: Mapping[str, ModuleType]) -> str | None:
    """The innermost loaded extension that contains *module_name*."""
    best: str | None = None
    for ext, ext_module in extensions.items():
        inside = module_name == ext or (
            hasattr(ext_module, "__path__") and module_name.startswith(ext + ".")
        )
        if inside and (best is None or len(ext) > len(best)):
            best = ext
    return best


def _inside_unloaded_extension(module_name: str) -> bool:
    """Whether *module_name* is, or is inside, a module with a ``setup()`` function.

    nextcord loads an extension by calling its module's ``setup(bot)``; a model defined in
    such a module (or package) that is not in ``bot.extensions`` belongs to a cog that is not
    loaded right now, so it must not fall into the pseudo-cog.
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
    if not isinstance(name, str) or not NAME_RE.match(name):
        source = f"{COG_NAME_ATTRIBUTE} in {ext}" if explicit is not None else f"extension {ext}"
        raise NXAlembicError(
            f"cog name {name!r} from {source} must match [A-Za-z_][A-Za-z0-9_]*; "
            f"set {COG_NAME_ATTRIBUTE} = 'valid_name' in that module"
        )
    return name


def _refuse_version_table_names(settings: Settings, cogs: Mapping[str, Cog]) -> None:
    """No model table may be named like a version table, of any cog, loaded or not.

    Autogenerate would treat such a table as the model's (altering or dropping the version
    column) and Alembic as the cog's history: either way a cog's migration state is lost.
    """
    for cog in cogs.values():
        for model, table in zip(cog.models, cog.tables):
            owner = settings.version_table_cog(table.name)
            if owner is None:
                continue
            whose = f"the version table of cog {owner!r}" if owner else "stock Alembic's version table"
            raise NXAlembicError(
                f"model {model.__module__}.{model.__name__} of cog {cog.name!r} uses table {table.name!r}, "
                f"which is {whose} (version_table = {settings.version_table} in {settings.path.name}); "
                "give the model another tablename"
            )


def discover(settings: Settings, bot: Any | None = None) -> BotSchema:
    """Import the bot (unless given) and group its ormar models into cogs."""
    if bot is None:
        bot = import_bot(settings)
    extensions: Mapping[str, ModuleType] = dict(bot.extensions)
    bot_module = sys.modules.get(settings.module)
    top_package = settings.module.split(".", 1)[0]

    by_extension: dict[str, list[type[ormar.Model]]] = {ext: [] for ext in extensions}
    outside: list[type[ormar.Model]] = []
    for model in _all_models():
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

    def add(name: str, origin: str, extension: str | None, directory: Path, models: list) -> None:
        if name in claimed:
            raise NXAlembicError(
                f"cog name {name!r} is claimed by both {claimed[name]} and {origin}; give one of "
                f"them another name with {COG_NAME_ATTRIBUTE} = '...' in its module"
                + (" or set core_cog in nxalembic.ini" if extension is None or "outside" in claimed[name] else "")
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

    without_models: list[str] = []
    for ext in sorted(extensions):
        if not by_extension[ext]:
            without_models.append(ext)
            continue
        module = extensions[ext]
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

    _refuse_version_table_names(settings, cogs)

    metadata: dict[int, sa.MetaData] = {}
    for cog in cogs.values():
        for model in cog.models:
            metadata.setdefault(id(model.ormar_config.metadata), model.ormar_config.metadata)

    return BotSchema(
        settings=settings,
        bot=bot,
        cogs=dict(sorted(cogs.items())),
        extensions_without_models=tuple(without_models),
        metadata=tuple(metadata.values()),
    )
