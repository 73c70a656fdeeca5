"""Internal: loading the extensions a bot does not load when its module is imported.

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
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import importlib.util
import inspect
import pkgutil
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import NXAlembicError
from .settings import Settings

__all__ = ["ExtensionFailed", "build", "extension_names", "load_missing", "load_missing_async"]


class ExtensionFailed(Exception):
    """Loading extension *name* raised *error* (the caller turns it into one line)."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(name)
        self.name = name
        self.error = error


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


def _missing(bot: Any, names: list[str]) -> list[str]:
    loaded: Mapping[str, Any] = bot.extensions
    return [name for name in names if name not in loaded]


def load_missing(bot: Any, names: list[str]) -> None:
    """Load each of *names* the bot has not loaded yet, awaiting ``load_extension`` if it is a coroutine."""
    for name in _missing(bot, names):
        try:
            resolve(bot.load_extension(name))
        except Exception as exc:
            raise ExtensionFailed(name, exc) from exc


async def load_missing_async(bot: Any, names: list[str]) -> None:
    """:func:`load_missing` on the caller's event loop: the running bot's own loop."""
    for name in _missing(bot, names):
        try:
            result = bot.load_extension(name)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            raise ExtensionFailed(name, exc) from exc


def build(factory: Callable[[], Any | Awaitable[Any]]) -> Any:
    """Call the bot factory (``def`` or ``async def``) and return what it built."""
    return resolve(factory())
