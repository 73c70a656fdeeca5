"""Migrating from inside the running bot: ``await nxalembic_templates.upgrade(bot)``.

Most bots run as one long-lived process that is restarted with new code, so "upgrade the
database when the bot starts" is the deploy step they want.  Three things make that harder
than calling ``runner.Project``:

* the bot is already imported and running: its loaded extensions are the cogs, and its
  module must not be imported a second time (a second ``Bot`` object, extensions run twice);
* Alembic is synchronous: run on the bot's event loop it would block the loop, and a loop
  blocked for longer than the gateway heartbeat gets the bot disconnected by Discord.  So
  the whole migration runs in a worker thread and the loop keeps serving (:func:`upgrade`);
  the worker has no running loop, so an async driver's ``asyncio.run`` bridge works there;
* several shards or replicas start at once: one migrates under the migration lock
  (``locking``), the others wait (``lock_timeout`` bounds that) and then find every cog
  at its head; or they run in ``verify`` mode and never migrate at all.

Nearly every start finds every cog at its head, and that is told without Alembic, not even
imported (``headcheck``: the revision files parsed, every version table read at once).
Otherwise it is the ``nxalembic upgrade`` of ``runner`` (``status`` in ``verify`` mode).  It
prints nothing: one INFO line per cog goes to the logger :data:`LOGGER_NAME`, a wait for
the lock is a WARNING there; Alembic's INFO lines are kept out (:func:`_alembic_quiet`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import os
import sys
import sysconfig
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import ormar
import sqlalchemy as sa

from .discovery import SET_ASIDE, BotSchema, discover
from .engines import database_url, models_url, refuse_another_sqlite_file

# LockTimeout is not raised here, but the package root re-exports it from this module
from .errors import CogsBehind, CogsWithoutRevisions, LockTimeout, NXAlembicError, hide_password  # noqa: F401
from .extensions import CLIENT_LIBRARIES, import_error, missing
from .headcheck import heads_if_all_at_head
from .locking import LockPolicy, check_timeout
from .settings import Settings, load_settings, read_alembic_ini, settings_for

if TYPE_CHECKING:  # imported when needed: .runner imports Alembic, which the fast path does without
    from .runner import MigrationResult, Project

#: The logger the start-up API reports to (one INFO line per cog).
LOGGER_NAME = "nxalembic_templates.startup"
log = logging.getLogger(LOGGER_NAME)

#: ``apply``: migrate every cog to its head; ``verify``: change nothing, fail if any cog is behind.
MODES = ("apply", "verify")

#: The Alembic config file looked for next to the bot's code.
ALEMBIC_INI = "alembic.ini"

__all__ = ["LOGGER_NAME", "MODES", "CogResult", "find_alembic_ini", "upgrade", "upgrade_sync"]


@dataclass(frozen=True)
class CogResult:
    """What the start-up check did for one cog."""

    cog: str
    #: The revisions applied by this call, oldest first (always empty in ``verify`` mode).
    applied: list[str]
    #: The cog's revision(s) in the database after the call.
    now: list[str]
    #: How many of the cog's revisions are not applied (0 after ``apply``).
    behind: int


async def upgrade(
    bot: Any,
    *,
    mode: str = "apply",
    config: str | os.PathLike[str] | None = None,
    url: str | None = None,
    lock_timeout: float | None = None,
) -> list[CogResult]:
    """Bring the database up to the bot's cogs (or, in ``verify`` mode, check that it is), off the loop.

    *bot*: the bot object.  Its loaded extensions are its cogs, plus those the ``extensions``
    setting names that it has not loaded: imported aside, never loaded into the bot
    (docs/deploying.rst, "Which cogs"), so a bot that loads them in ``setup_hook`` may call
    this before, in or after ``setup_hook``; its extensions stay the ones it loads itself.
    *mode*: ``"apply"`` (default) or ``"verify"`` (raise :class:`~.errors.CogsBehind` naming
    every cog that is behind and by how many revisions; change nothing, take no lock).
    *config*: the project's ``alembic.ini`` (default: see :func:`find_alembic_ini`).
    *url*: the database URL, as ``-x url=`` would give it (default: nxalembic.ini ``url``,
    alembic.ini ``sqlalchemy.url``, then the models' ormar database).
    *lock_timeout*: seconds to wait for another process's migration at most, then
    :class:`~.errors.LockTimeout` (default: wait; SQLite gives up after 300 s).

    A cog with models and no revisions yet (before its first ``nxalembic migrate``) is never
    ready: both modes raise :class:`~.errors.CogsWithoutRevisions` naming it (``apply`` after
    upgrading the other cogs).

    Returns one :class:`CogResult` per cog, referenced cogs first.  The work runs in a worker
    thread: the event loop keeps running meanwhile.  Cancelling the awaiting task does not
    stop a migration already running; it completes (or fails and rolls back) in its thread.
    """
    ini, policy = _arguments(bot, mode, config, lock_timeout)
    settings = load_settings(settings_for(ini))
    aside = _import_aside(settings, bot)  # on this thread: other threads must not see the swap
    return await asyncio.to_thread(_run, bot, ini, settings, mode, url, policy, aside)


def upgrade_sync(
    bot: Any,
    *,
    mode: str = "apply",
    config: str | os.PathLike[str] | None = None,
    url: str | None = None,
    lock_timeout: float | None = None,
) -> list[CogResult]:
    """:func:`upgrade` for code with no running event loop: before ``bot.run(TOKEN)``.

    The work still runs in a worker thread of its own, so an async driver's event loop never
    becomes (or replaces) the calling thread's current loop, the one ``bot.run`` may use.
    Inside a running loop this refuses: waiting here would block that loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "nxalembic_templates.upgrade_sync() was called inside a running event loop, which it would "
            "block; use 'await nxalembic_templates.upgrade(bot)' there instead"
        )
    ini, policy = _arguments(bot, mode, config, lock_timeout)
    settings = load_settings(settings_for(ini))
    aside = _import_aside(settings, bot)
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="nxalembic-startup"
    ) as worker:
        return worker.submit(_run, bot, ini, settings, mode, url, policy, aside).result()


def _arguments(
    bot: Any, mode: str, config: str | os.PathLike[str] | None, lock_timeout: float | None
) -> tuple[Path, LockPolicy]:
    """Check the arguments on the caller's side, before any thread or database is involved."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a mode; use one of {', '.join(repr(m) for m in MODES)}")
    if not isinstance(getattr(bot, "extensions", None), Mapping):
        raise TypeError(
            f"{type(bot).__name__} object is not a discord bot (it has no 'extensions' mapping); pass the "
            "commands.Bot instance, with its extensions loaded"
        )
    check_timeout(lock_timeout, "lock_timeout")
    policy = LockPolicy(lock_timeout, report=log.warning)
    return find_alembic_ini(bot, config), policy


def _import_aside(settings: Settings, bot: Any) -> tuple[dict[str, ModuleType], list[Any]]:
    """The extensions of the ``extensions`` setting that *bot* has not loaded, and their models.

    Not loaded into the bot (that would change its extensions; one it loads later in
    ``setup_hook`` would fail): imported as plain modules, ``setup`` not called, while the
    project's own modules are hidden from ``sys.modules``, so they run on fresh copies of
    them (MetaData, models); then the live modules are put back.  One imported already (by a
    loaded cog) is taken as it is.  Call it on the thread that runs the bot.
    """
    names = missing(settings, bot) if settings.extensions else []
    found = {name: sys.modules[name] for name in names if name in sys.modules}
    if len(found) == len(names):
        return found, []
    installed = _installed_folders()
    hidden = {name: m for name, m in list(sys.modules.items()) if _own(m, settings.root, installed)}
    before = set(_model_classes())
    for name in hidden:
        del sys.modules[name]
    try:
        for name in names:
            try:
                found[name] = found.get(name) or importlib.import_module(name)
            except Exception as exc:
                doing = f"importing extension {name!r} (extensions = in {settings.path.name})"
                raise import_error(settings, exc, doing) from exc
    finally:
        for name, module in list(sys.modules.items()):
            if _own(module, settings.root, installed):
                del sys.modules[name]
        sys.modules.update(hidden)  # their parents were hidden too: no live package got an attribute
    new = [m for m in _model_classes() if m not in before]
    SET_ASIDE.update(new)
    by_table: dict[int, Any] = {}  # the first class of each table, as discovery takes it (not ormar's copies)
    for m in new:
        if not m.ormar_config.abstract and isinstance(m.ormar_config.table, sa.Table):
            by_table.setdefault(id(m.ormar_config.table), m)
    return found, list(by_table.values())


def _model_classes() -> list[Any]:
    """Every ormar model class in the process, in the order discovery walks them (ormar's copies after)."""
    found, stack = [], list(ormar.Model.__subclasses__())
    while stack:
        found.append(cls := stack.pop())
        stack.extend(cls.__subclasses__())
    return found


def _own(module: Any, root: Path, installed: list[Path]) -> bool:
    """Whether *module* is the project's own code: a file (or package folder) under *root*, not installed."""
    if str(getattr(module, "__name__", "")).split(".")[0] in ("__main__", "nxalembic_templates"):
        return False
    paths = [getattr(module, "__file__", None) or "", *(getattr(module, "__path__", None) or ())]
    folders = [Path(os.path.abspath(path)) for path in paths if path]
    return any(f.is_relative_to(root) and not any(f.is_relative_to(i) for i in installed) for f in folders)


#: Start-up calls running Alembic (threads): the first quiets Alembic, the last restores it.
_quiet = {"calls": 0, "ours": False}
_quiet_lock = threading.Lock()


@contextlib.contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic's INFO lines off meanwhile, unless the ``alembic`` logger has a level of its own."""
    alembic_log = logging.getLogger("alembic")
    with _quiet_lock:
        _quiet["calls"] += 1
        if _quiet["calls"] == 1:
            _quiet["ours"] = alembic_log.level == logging.NOTSET
            alembic_log.setLevel(logging.WARNING if _quiet["ours"] else alembic_log.level)
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet["calls"] -= 1
            if not _quiet["calls"] and _quiet["ours"]:
                alembic_log.setLevel(logging.NOTSET)


def find_alembic_ini(bot: Any, config: str | os.PathLike[str] | None = None) -> Path:
    """The ``alembic.ini`` of the project *bot* belongs to.

    *config* when given (a file, or a folder holding ``alembic.ini``); else ``$ALEMBIC_CONFIG``
    (as for ``alembic`` and ``nxalembic``); else the project of the bot *instance*: the nearest
    ``alembic.ini`` found walking up from the folder of each loaded extension (where its
    models live) and of the script that started Python (``__main__``, the module that made
    the bot; not when it is an installed launcher such as pytest or a console script).  When
    these lead to two ``alembic.ini`` files, which project is meant cannot be told: refused,
    naming both.  When they lead to none: the current directory, then the module of the
    bot's class when it is the bot's own (``class MyBot(commands.Bot)``).  The class comes
    last because a class says nothing about whose bot this is: one from a shared framework
    package in another folder would otherwise bring the framework's ``alembic.ini`` and
    database along.
    """
    if config is None:
        config = os.environ.get("ALEMBIC_CONFIG") or None
    if config is not None:
        path = Path(config)
        if path.is_dir():
            path = path / ALEMBIC_INI
        if not path.is_file():
            raise NXAlembicError(f"no Alembic config at {path}; pass config= the project's alembic.ini")
        return path.resolve()
    found: dict[Path, Path] = {}  # alembic.ini -> the first code folder it was found from
    seen: set[Path] = set()
    folders = list(dict.fromkeys(_code_folders(bot)))
    for folder in folders:
        ini = _nearest_alembic_ini(folder, seen)
        if ini is not None:
            found.setdefault(ini, folder)
    if len(found) > 1:
        (first, first_from), (second, second_from) = list(found.items())[:2]
        raise NXAlembicError(
            f"the bot's code belongs to two projects: {first} (from {first_from}) and {second} "
            f"(from {second_from}); pass config='path/to/alembic.ini' of the bot's own project "
            "(or set ALEMBIC_CONFIG)"
        )
    if found:
        return next(iter(found))
    looked = [f"{folder} and above" for folder in folders]
    if (Path.cwd() / ALEMBIC_INI).is_file():
        return (Path.cwd() / ALEMBIC_INI).resolve()
    looked.append(str(Path.cwd()))
    class_folder = _bot_class_folder(bot)
    if class_folder is not None:
        ini = _nearest_alembic_ini(class_folder, seen)
        if ini is not None:
            return ini
        looked.append(f"{class_folder} and above")
    raise NXAlembicError(
        f"no {ALEMBIC_INI} found for the bot (looked in {'; '.join(looked)}); pass "
        "config='path/to/alembic.ini' "
        "or set ALEMBIC_CONFIG"
    )


def _nearest_alembic_ini(folder: Path, seen: set[Path]) -> Path | None:
    """The ``alembic.ini`` in *folder* or the nearest folder above it (*seen*: folders walked already)."""
    for candidate in (folder, *folder.parents):
        if candidate in seen:
            return None  # walked up from here already: an alembic.ini above it is known
        seen.add(candidate)
        if (candidate / ALEMBIC_INI).is_file():
            return (candidate / ALEMBIC_INI).resolve()
    return None


def _code_folders(bot: Any) -> Iterator[Path]:
    """Folders of the bot instance's own code: its loaded extensions, then ``__main__``.

    Installed code (a library's extension such as jishaku, a launcher such as pytest, a
    console script in the environment's ``bin`` folder) belongs to no project and is skipped.
    """
    installed = _installed_folders()
    for module in [*bot.extensions.values(), sys.modules.get("__main__")]:
        filename = getattr(module, "__file__", None)
        if filename:
            folder = Path(os.path.abspath(filename)).parent
            if not any(folder.resolve().is_relative_to(root) for root in installed):
                yield folder


#: The folders of the Python installation that hold code (not ``data``: that is ``sys.prefix``,
#: ``/usr`` for a system Python, where a project may live, e.g. ``/usr/src/app``).
INSTALLED_PATHS = ("stdlib", "platstdlib", "purelib", "platlib", "scripts")


def _installed_folders() -> list[Path]:
    paths = sysconfig.get_paths()
    return [Path(paths[name]).resolve() for name in INSTALLED_PATHS if name in paths]


def _bot_class_folder(bot: Any) -> Path | None:
    """The folder of the bot's class, when the class is the bot's own (not the client library's)."""
    name = type(bot).__module__
    module = sys.modules.get(name) if name.split(".", 1)[0] not in CLIENT_LIBRARIES else None
    filename = getattr(module, "__file__", None)
    return Path(os.path.abspath(filename)).parent if filename else None


def _run(
    bot: Any, ini: Path, settings: Settings, mode: str, url: str | None, policy: LockPolicy, aside: Any
) -> list[CogResult]:
    """The synchronous work, in a worker thread: discover the running bot's cogs, then migrate or verify.

    Nearly every start finds every cog at its head: ``headcheck`` tells that from the
    revision files and one read, without importing Alembic.  Otherwise (or when it cannot
    tell) Alembic's route runs, under the migration lock in ``apply`` mode.
    """
    schema = discover(settings, bot, aside)
    url = _bot_database(schema, ini, url)
    heads = heads_if_all_at_head(schema, ini, url, policy)
    if heads is not None:
        return _at_head(heads, mode)
    with _alembic_quiet():
        return _full_route(schema, ini, mode, url, policy)


def _bot_database(schema: BotSchema, ini: Path, url: str | None) -> str | None:
    """The database to migrate (``engines.database_url``), refused when it is not the bot's.

    When alembic.ini cannot be read without Alembic, the caller's *url* as it is: the full
    route resolves the URL and says what is wrong with the file.
    """
    options = read_alembic_ini(ini)
    if options is None:
        return url
    database = database_url(schema.settings, url, lambda: options.url, lambda: models_url(schema))
    refuse_another_sqlite_file(database, schema)
    return database


def _at_head(heads: dict[str, list[str]], mode: str) -> list[CogResult]:
    """The result (and log lines) of either mode when every cog is at its head."""
    line = "cog %s: at head %s, nothing to do" if mode == "apply" else "cog %s: at head %s"
    for cog, head in heads.items():
        log.info(line, cog, _short(head))
    return [CogResult(cog, [], head, 0) for cog, head in heads.items()]


def _full_route(
    schema: BotSchema, ini: Path, mode: str, url: str | None, policy: LockPolicy
) -> list[CogResult]:
    from .runner import Project

    project = Project(ini, schema=schema, url=url)
    project.lock = policy
    project.announce = lambda parsed: log.debug("database: %s", hide_password(parsed))
    if mode == "verify":
        return _verify(project)
    return [_applied(result) for result in project.upgrade(report=_log_applied)]


def _verify(project: Project) -> list[CogResult]:
    rows = project.behind()
    for row in rows:
        if not row.head:
            log.info("cog %s: no revisions", row.cog)
        elif row.behind:
            log.info(
                "cog %s: %s behind (at %s, head %s)",
                row.cog,
                _count(row.behind, "revision"),
                _short(row.current),
                _short(row.head),
            )
        else:
            log.info("cog %s: at head %s", row.cog, _short(row.head))
    unborn = [row.cog for row in rows if not row.head]
    if unborn:  # no process's upgrade could make these ready: not CogsBehind, which replicas wait on
        raise CogsWithoutRevisions(unborn)
    behind = {row.cog: row.behind for row in rows if row.behind}
    if behind:
        raise CogsBehind(behind)
    return [CogResult(row.cog, [], list(row.current), 0) for row in rows]


def _applied(result: MigrationResult) -> CogResult:
    return CogResult(result.cog, list(result.steps), list(result.now), 0)


def _log_applied(result: MigrationResult) -> None:
    if result.steps:
        log.info(
            "cog %s: %s applied, now at %s",
            result.cog,
            _count(len(result.steps), "revision"),
            _short(result.now),
        )
    else:
        log.info("cog %s: at head %s, nothing to do", result.cog, _short(result.now))


def _short(revisions: list[str]) -> str:
    return ", ".join(revisions) or "base"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
