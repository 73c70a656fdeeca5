"""Internal: loading the bot the library's way, without letting it start.

Importing the bot module for migrations must build the bot, never connect it: while it runs,
:class:`StartGuard` makes the Discord clients' start methods fail (:data:`CLIENT_LIBRARIES`,
:data:`START_METHODS`), through :mod:`._compat`'s patch functions.

Many bots load their extensions only when they start: under ``if __name__ == "__main__":``,
in ``async def main()``, or (discord.py 2.x, where ``load_extension`` is a coroutine) in
``setup_hook``.  Importing such a module gives a bot without extensions, so without cogs.
The ``extensions`` setting names them, and discovery loads them with the bot's own
``load_extension``: called, and awaited when what it returns is awaitable, so the same code
serves libraries whose ``load_extension`` is a plain function (nextcord, disnake, py-cord)
and those where it is a coroutine (discord.py).  The same goes for a ``bot`` setting naming
a function that builds the bot (``def create_bot()`` or ``async def create_bot()``).

Which names are extensions is decided without importing anything but packages: the
libraries' ``load_extension`` executes the module afresh, so a module imported here first
would run twice and define its ormar models twice.  A module is an extension when its source
has a top-level ``setup`` function (``def`` or ``async def``), which is what every library
calls.

The wording of a bot module or an extension that fails (:func:`import_error`) lives here
too: one line pointing at the user's own code, whatever the step that failed.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import importlib.abc
import importlib.util
import inspect
import pkgutil
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa

from . import _compat
from .errors import NXAlembicError, file_line
from .settings import Settings, extensions_hint, setting_hint

__all__ = [
    "CLIENT_LIBRARIES",
    "BotStartedOnImport",
    "StartGuard",
    "bot_attribute",
    "check_is_bot",
    "ensure_event_loop",
    "import_error",
    "importing",
    "load_missing",
    "missing",
    "no_extensions",
    "resolve",
]


def resolve(result: Any) -> Any:
    """*result* itself, or what it gives when awaited, for code that has no event loop to await on.

    The awaiting happens on a fresh event loop in a short-lived thread of its own, so it works
    whether or not the calling thread runs a loop, and never changes the calling thread's
    current loop (nextcord 2.x builds its bot on that one).
    """
    if not inspect.isawaitable(result):
        return result

    async def wait() -> Any:
        return await result

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nxalembic-await") as worker:
        return worker.submit(asyncio.run, wait()).result()


def has_setup(path: str | None) -> bool | None:
    """Whether the Python source at *path* defines a top-level ``setup``; ``None``: cannot tell."""
    if not path or not path.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(path).read_bytes(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "setup"
        for node in tree.body
    )


def _find_spec(settings: Settings, name: str) -> Any:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        spec, detail = None, f" ({exc})"
    else:
        detail = ""
    if spec is None:
        raise NXAlembicError(
            f"{settings.path.name}: extensions: no module named {name!r}{detail}; list importable module "
            f"names (relative to {settings.root}), e.g. mybot.cogs.music"
        )
    return spec


def _inside(settings: Settings, package: str, locations: list[str]) -> Iterator[str]:
    """The extensions directly inside *package*: its modules and packages with a ``setup``."""
    for info in sorted(pkgutil.iter_modules(locations), key=lambda i: i.name):
        folder = Path(getattr(info.module_finder, "path", ""))
        source = folder / info.name / "__init__.py" if info.ispkg else folder / f"{info.name}.py"
        if has_setup(str(source)) is not False:  # unreadable or broken: loading it will say why
            yield f"{package}.{info.name}"


def extension_names(settings: Settings) -> list[str]:
    """The extension names the ``extensions`` setting stands for, in load order.

    A module with a top-level ``setup`` is one extension (a package too, by its
    ``__init__.py``); a package without one stands for every module and sub-package directly
    inside it that has one.  Anything else is an error naming the entry.
    """
    names: list[str] = []
    for entry in settings.extensions:
        spec = _find_spec(settings, entry)
        locations = list(spec.submodule_search_locations or [])
        own = has_setup(spec.origin)
        if own or (own is None and not locations):
            names.append(entry)
            continue
        if not locations:
            raise NXAlembicError(
                f"{settings.path.name}: extensions: module {entry} has no setup function, so it is not an "
                "extension; list the modules that define setup(bot), or their package"
            )
        inside = list(_inside(settings, entry, locations))
        if not inside:
            raise NXAlembicError(
                f"{settings.path.name}: extensions: package {entry} has no module with a setup function "
                "directly inside it; list the extension modules themselves"
            )
        names += inside
    return list(dict.fromkeys(names))


def missing(settings: Settings, bot: Any) -> list[str]:
    """The extensions the ``extensions`` setting names that *bot* has not loaded, in load order."""
    loaded: Mapping[str, Any] = bot.extensions
    return [name for name in extension_names(settings) if name not in loaded]


def load_missing(settings: Settings, bot: Any) -> None:
    """Load the ``extensions`` the bot has not loaded, awaiting ``load_extension`` if it is a coroutine.

    For a bot built for migrations only (``discovery.import_bot``); the start-up API loads
    nothing into the running bot (``startup`` imports what it lacks aside).
    """
    for name in missing(settings, bot):
        try:
            resolve(bot.load_extension(name))
        except Exception as exc:
            raise import_error(settings, exc, _loading(settings, name)) from exc


# ------------------------------------------------------------------------------------------------
# Keeping the bot from starting (connecting to Discord) while its module is imported.
# ------------------------------------------------------------------------------------------------


class BotStartedOnImport(BaseException):
    """Raised by a guarded client method while the bot module is imported for migrations.

    A BaseException, so that the bot's own ``except Exception`` cannot swallow it.
    """

    def __init__(self, method: str, where: traceback.FrameSummary | None) -> None:
        super().__init__(method)
        self.method = method
        self.where = where


#: Methods of a Discord client that connect to Discord; a bot module must not call them on import.
START_METHODS = ("run", "start", "login", "connect")
#: Libraries whose clients are guarded: nextcord (and its ``discord`` shim), discord.py, py-cord, disnake.
CLIENT_LIBRARIES = frozenset({"nextcord", "discord", "disnake"})


class StartGuard(importlib.abc.MetaPathFinder):
    """Make the Discord clients' start methods fail at once, until the import is over.

    A library already imported is patched at once; one the bot module imports later is
    patched right after it loads (this finder wraps its loader), so that no Discord library
    is imported just to guard it (``import nextcord`` alone takes most of a second).
    Everything is put back on exit: the methods, ``sys.meta_path``, the modules' loaders.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refused: BotStartedOnImport | None = None
        self._originals: dict[tuple[type, str], Any] = {}
        self._finding = False

    def __enter__(self) -> StartGuard:
        for name in CLIENT_LIBRARIES & set(sys.modules):
            self._patch(sys.modules[name])
        _compat.add_import_hook(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _compat.remove_import_hook(self)
        for (cls, name), original in self._originals.items():
            _compat.replace_class_attribute(cls, name, original)
        self._originals.clear()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in CLIENT_LIBRARIES or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(fullname)  # the other finders' answer
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchAfterLoading(spec.loader, self._patch)  # type: ignore[assignment]
        return spec

    def _patch(self, library: ModuleType) -> None:
        for class_name in ("Client", "AutoShardedClient"):
            cls = getattr(library, class_name, None)
            if not isinstance(cls, type):
                continue
            for method in START_METHODS:
                if method in cls.__dict__ and (cls, method) not in self._originals:
                    self._originals[(cls, method)] = cls.__dict__[method]
                    _compat.replace_class_attribute(cls, method, self._refusal(f"{cls.__name__}.{method}"))

    def _refusal(self, method: str) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            error = BotStartedOnImport(method, user_frame(traceback.extract_stack(), self.root))
            self.refused = self.refused or error
            raise error

        return refuse


class _PatchAfterLoading:
    """A module loader that runs *after(module)* once the module has loaded."""

    def __init__(self, loader: importlib.abc.Loader, after: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._after = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader  # the module keeps its real loader, not this wrapper
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._after(module)


# ------------------------------------------------------------------------------------------------
# What a bot module that fails to import, build or load an extension is told.
# ------------------------------------------------------------------------------------------------

#: A source line that starts a client: ``bot.run(...)``, ``client.start(...)``, ``asyncio.run(main())``.
STARTS_BOT = re.compile(rf"\.(?:{'|'.join(START_METHODS)})\s*\(")
IF_MAIN = 'if __name__ == "__main__":'


def importing(settings: Settings) -> str:
    """What importing the bot module is called in a failure's line (*doing* of :func:`import_error`)."""
    return f"importing bot module {settings.module!r} (module = in {settings.path.name})"


def _loading(settings: Settings, name: str) -> str:
    return f"loading extension {name!r} (extensions = in {settings.path.name})"


def bot_attribute(settings: Settings, module: ModuleType) -> Any:
    """The module's ``bot`` attribute, or an error listing the attributes that look like bots."""
    try:
        return getattr(module, settings.bot)
    except AttributeError:
        bots = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and isinstance(getattr(value, "extensions", None), Mapping)
        ]
        found = f" (it has {', '.join(repr(b) for b in bots)})" if bots else ""
        raise NXAlembicError(
            f"module {settings.module!r} has no attribute {settings.bot!r}{found}; set "
            f"{setting_hint(settings.path, ('bot', 'NAME'))} to the variable that holds your bot, or to a "
            "function or class that builds it"
        ) from None


def check_is_bot(settings: Settings, bot: Any, what: str = "") -> None:
    """Refuse what is not a discord bot (no ``extensions`` mapping); *what* says where it came from."""
    if not isinstance(getattr(bot, "extensions", None), Mapping):
        what = what or f"{settings.module}.{settings.bot} is of type"
        raise NXAlembicError(
            f"{what} {type(bot).__name__}, not a discord bot "
            f"(it has no 'extensions' mapping); point 'bot =' in {settings.path.name} at your "
            "commands.Bot instance or at a function or class that builds it"
        )


def no_extensions(settings: Settings, given: bool) -> str:
    """Why a bot has no extensions, and the two settings that fix it (in the syntax of their file)."""
    package = ".".join([*settings.module.split(".")[:-1], "cogs"])  # mybot.main: mybot.cogs
    listed = f"list them, or their package, as {extensions_hint(settings.path, package)}"
    if given:
        what = "the bot passed to nxalembic_templates.upgrade() has no extensions loaded"
        return f"{what}; load them before the call, or {listed}"
    return (
        f"bot {settings.module}.{settings.bot} has no extensions loaded: importing {settings.module} "
        f"loads none (extensions loaded under {IF_MAIN}, in main() or in setup_hook only load when the bot "
        f"starts); {listed}, or point bot at a function or class that builds the bot and loads them "
        f"({setting_hint(settings.path, ('bot', 'create_bot'))})"
    )


def user_frame(frames: Iterable[traceback.FrameSummary], root: Path) -> traceback.FrameSummary | None:
    """The deepest of *frames* in the user's own code (under *root*, not an installed package)."""
    found = None
    for frame in frames:
        path = Path(frame.filename)
        if (
            path.is_absolute()
            and not {"site-packages", "dist-packages"} & set(path.parts)
            and path.resolve().is_relative_to(root)
        ):
            found = frame
    return found


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """*exc* and the exceptions it was raised from (``raise ... from``), outermost first."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__


def import_error(settings: Settings, exc: BaseException | None, doing: str) -> NXAlembicError:
    """One line for a bot module that failed to import (or build, or load an extension).

    It points at the user's own code; *doing* says what was running, as :func:`importing`.
    """
    module, root = repr(settings.module), settings.root
    if isinstance(exc, BotStartedOnImport):
        where = (
            f"{file_line(exc.where.filename, exc.where.lineno, root)} starts"
            if exc.where
            else f"bot module {module} starts"
        )
        return NXAlembicError(
            f"{where} the bot ({exc.method}) while bot module {module} is imported for migrations; put "
            f"that call under {IF_MAIN} so that importing the module only builds the bot"
        )
    # The libraries wrap an extension's error (ExtensionFailed ... from error): look inside.
    chain = list(_causes(exc))
    frame = user_frame((f for e in chain for f in traceback.extract_tb(e.__traceback__)), root)
    syntax = next((e for e in reversed(chain) if isinstance(e, SyntaxError)), None)
    if syntax is not None and syntax.filename and syntax.lineno:
        frame = traceback.FrameSummary(syntax.filename, syntax.lineno, "<module>", line=syntax.text or "")
    at = f" ({file_line(frame.filename, frame.lineno, root)})" if frame else ""
    fix = "fix the error or the module path" if doing.startswith("importing") else "fix the error"
    if frame is not None and STARTS_BOT.search(frame.line or ""):
        fix = f"that line starts the bot, which must not happen on import: put it under {IF_MAIN}"
    if isinstance(exc, SystemExit):
        return NXAlembicError(
            f"{doing.split(' (', 1)[0]} called sys.exit({exc.code!r}){at}, so nothing was checked "
            f"or migrated; remove that call or put it under {IF_MAIN}"
        )
    duplicate = next(
        (
            m
            for e in chain
            if isinstance(e, sa.exc.InvalidRequestError)
            and (m := re.match(r"Table '([^']+)' is already defined for this MetaData instance", str(e)))
        ),
        None,
    )
    if duplicate:
        model = re.match(r"\s*class\s+(\w+)", frame.line or "") if frame else None
        by = f"model {model.group(1)}{at}" if model else f"a second model{at}"
        return NXAlembicError(
            f"table {duplicate.group(1)!r} is defined twice on one MetaData: {by} uses a tablename "
            "another model already has; give one of the two models another tablename"
        )
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else "the module did not load"
    return NXAlembicError(f"{doing} failed: {detail}{at}; {fix}")


def ensure_event_loop() -> None:
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
