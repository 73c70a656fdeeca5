"""Internal: reading the settings: where the bot lives and how cogs map to version tables and folders.

They live in ``nxalembic.ini`` (``[nxalembic]``) or, with the same keys as TOML strings, in the
``[tool.nxalembic]`` table of ``pyproject.toml``; in one folder ``nxalembic.ini`` wins (hints spell
a setting in the syntax of its file: :func:`setting_hint`).  They are
looked for next to ``alembic.ini``, then in the current directory (:func:`settings_for`, the one
answer of every route).  :func:`read_alembic_ini` reads what the start-up fast path needs of
``alembic.ini`` without importing Alembic, the way Alembic's ``Config`` reads it.
"""

from __future__ import annotations

import configparser
import json
import logging
import re
import string
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NXAlembicError, first_line

__all__ = [
    "CONFIG_FILE",
    "NAME_RE",
    "PYPROJECT",
    "TOML_TABLE",
    "Settings",
    "extensions_hint",
    "load_settings",
    "pyproject_for",
    "read_alembic_ini",
    "read_pyproject",
    "setting_hint",
    "setting_line",
    "settings_for",
]

#: The settings file, next to alembic.ini (it wins over ``[tool.nxalembic]``).
CONFIG_FILE = "nxalembic.ini"
SECTION = "nxalembic"
#: The same settings as a table of ``pyproject.toml``, with TOML strings for values.
PYPROJECT = "pyproject.toml"
#: The table of ``pyproject.toml`` that holds the settings.
TOML_TABLE = "tool.nxalembic"

#: Every key the settings accept, in either file.
KNOWN_KEYS = ("module", "bot", "url", "version_table", "version_location", "core_cog", "extensions")

log = logging.getLogger(__name__)

DEFAULT_VERSION_TABLE = "alembic_version_{cog}"
DEFAULT_VERSION_LOCATION = "{script_location}/versions/{cog}"
DEFAULT_CORE_COG = "core"

#: A cog name, a bot variable, each part of a module path (use ``fullmatch``; messages quote the pattern).
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A dotted module path: ``mybot.cogs.music``.
DOTTED_RE = re.compile(rf"{NAME_RE.pattern}(?:\.{NAME_RE.pattern})*")

#: Placeholders allowed in ``version_location``.
LOCATION_FIELDS = frozenset({"cog", "cog_dir", "script_location", "here"})

#: What a formatted version table name may contain: ``alembic_version_music``, ``alembic.music``.
#: No quotes, semicolons, whitespace or control characters, so nothing configured can break
#: out of an identifier in the SQL that Alembic writes (``upgrade --sql``).
VERSION_TABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

#: Unicode categories refused in every value: control, format (zero-width), line/paragraph separators.
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

#: Keys whose value may span several lines (one item a line, or commas).
LIST_KEYS = frozenset({"extensions"})
STARTER = (("module", "yourbot.main"), ("bot", "bot"))  # the settings every project needs

#: Names that are version tables whatever ``version_table`` says: stock Alembic's single table,
#: and this package's default pattern (a database may have been migrated with the default).
STOCK_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Settings:
    """The parsed ``[nxalembic]`` section (or ``[tool.nxalembic]`` table); paths are absolute."""

    path: Path
    module: str
    bot: str = "bot"
    url: str | None = None
    version_table: str = DEFAULT_VERSION_TABLE
    version_location: str = DEFAULT_VERSION_LOCATION
    core_cog: str = DEFAULT_CORE_COG
    #: ``extensions``: the extensions discovery loads itself (names as written; a package
    #: without ``setup`` stands for the extensions inside it, see :mod:`.extensions`).
    extensions: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        """The folder of ``nxalembic.ini``; it goes on ``sys.path`` before the bot is imported."""
        return self.path.parent

    def version_table_for(self, cog: str) -> str:
        return self.version_table.format(cog=cog)

    def version_table_cog(self, table: str) -> str | None:
        """The cog whose version table *table* is, by name alone (``""`` for ``alembic_version``).

        Any valid cog name counts, loaded or not, so that no model table can ever be (and so
        be altered or dropped as) the version table of a cog that is not loaded right now.
        """
        if table == STOCK_VERSION_TABLE:
            return ""
        found = (
            _version_table_regex(p).fullmatch(table) for p in (self.version_table, DEFAULT_VERSION_TABLE)
        )
        return next((match.group("cog") for match in found if match), None)

    def version_location_for(self, cog: str, cog_dir: Path, script_location: Path) -> Path:
        """Resolve the revisions folder of *cog*; relative patterns are relative to the ini file."""
        values = {"cog": cog, "cog_dir": cog_dir, "script_location": script_location, "here": self.root}
        path = Path(self.version_location.format(**values))
        return (path if path.is_absolute() else self.root / path).resolve()


def _version_table_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching what *pattern* gives for any valid cog name (group ``cog``)."""
    parts, group = [], f"(?P<cog>{NAME_RE.pattern})"
    for literal, field, _spec, _conversion in string.Formatter().parse(pattern):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(group)
            group = "(?P=cog)"
    return re.compile("".join(parts))


def pyproject_for(alembic_ini: Path | str) -> Path:
    """The ``pyproject.toml`` whose ``[tool.alembic]`` completes *alembic_ini*: the one beside it
    (stock ``alembic`` reads the current directory's: the same file from the project folder)."""
    return Path(alembic_ini).resolve().parent / PYPROJECT


def config_in(folder: Path) -> Path | None:
    """The settings file of *folder*: ``nxalembic.ini``, else a ``pyproject.toml`` with ``[tool.nxalembic]``
    (with both, one warning per folder and process says which is in force)."""
    ini, pyproject = folder / CONFIG_FILE, folder / PYPROJECT
    in_pyproject = pyproject.is_file() and _nxalembic_table(pyproject, read_pyproject(pyproject)) is not None
    if ini.is_file():
        if in_pyproject and ini.resolve() not in _warned:
            _warned.add(ini.resolve())
            log.warning(
                "%s and [%s] in %s both configure nxalembic: using %s (delete one of them)",
                *(ini.resolve(), TOML_TABLE, pyproject.resolve(), CONFIG_FILE),
            )
        return ini.resolve()
    return pyproject.resolve() if in_pyproject else None


#: The ``nxalembic.ini`` files whose precedence over ``[tool.nxalembic]`` was said already.
_warned: set[Path] = set()


def settings_for(alembic_ini: Path | str | None) -> Path:
    """The settings file of *alembic_ini*'s project, for every route.

    The folder of ``alembic.ini`` first (``-c other/alembic.ini`` must not take this folder's
    settings), the current directory only when that folder has none.
    """
    folder = Path(alembic_ini).resolve().parent if alembic_ini else None
    return find_config_file(folder)


def find_config_file(*folders: Path | str | None) -> Path:
    """The settings in the first of *folders* that has some, else in the current folder (or what to add)."""
    candidates = [*(Path(d) for d in folders if d), Path.cwd()]
    if (found := next((file for file in map(config_in, candidates) if file), None)) is not None:
        return found
    looked = ", ".join(dict.fromkeys(str(c.resolve()) for c in candidates))
    first = candidates[0] / PYPROJECT
    toml = first.is_file() and "alembic" in read_pyproject(first).get("tool", {})
    raise NXAlembicError(
        f"no {CONFIG_FILE} and no [{TOML_TABLE}] in {PYPROJECT} found (looked in {looked}); add "
        f"{setting_hint(PYPROJECT if toml else CONFIG_FILE, *STARTER)} "
        f"of {candidates[0].resolve()}, or run 'nxalembic init --module yourbot.main', which writes them "
        "(yourbot.main: the module that creates your bot)"
    )


@dataclass(frozen=True)
class AlembicIni:
    """What the start-up fast path needs of ``alembic.ini`` (and ``[tool.alembic]`` beside it)."""

    #: The scripts folder, resolved as :class:`.runner.Project` resolves it.
    script_location: Path
    #: ``sqlalchemy.url`` exactly as ``Config.get_main_option`` returns it (``None``: unset).
    url: str | None


def read_alembic_ini(alembic_ini: Path) -> AlembicIni | None:
    """alembic.ini read as Alembic's ``Config`` reads it, without importing Alembic; ``None``: can't tell.

    ``script_location`` / ``sourceless`` from alembic.ini, else ``[tool.alembic]`` beside it;
    ``sqlalchemy.url`` from alembic.ini only.  A ``pkg:folder`` location, ``sourceless`` revisions
    and an unreadable file are left to Alembic (``None``), whose route then says why.
    """
    parser = configparser.ConfigParser({"here": alembic_ini.absolute().parent.as_posix()})
    try:
        parser.read(alembic_ini, encoding="utf-8")
        location: object = parser.get("alembic", "script_location", fallback=None)
        sourceless: object = parser.get("alembic", "sourceless", fallback=None)
        url = parser.get("alembic", "sqlalchemy.url", fallback=None)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    if location is None or sourceless is None:
        toml = _toml_alembic(alembic_ini)
        if toml is None:
            return None
        location = location if location is not None else toml.get("script_location")
        sourceless = sourceless if sourceless is not None else toml.get("sourceless", False)
    if not isinstance(location, str):
        return None
    if sourceless not in ("false", False) or (":" in location and not Path(location).is_absolute()):
        return None
    return AlembicIni(Path(location).resolve(), url)


def _toml_alembic(alembic_ini: Path) -> dict[str, object] | None:
    """``[tool.alembic]`` beside *alembic_ini*, ``%(here)s`` filled in; ``{}``: none, ``None``: unreadable."""
    path = pyproject_for(alembic_ini)
    if not path.is_file():
        return {}
    try:
        table = read_pyproject(path).get("tool", {}).get("alembic", {})
        here = {"here": path.absolute().parent.as_posix()}
        return {key: value % here if isinstance(value, str) else value for key, value in dict(table).items()}
    except (NXAlembicError, AttributeError, TypeError, ValueError, KeyError):
        return None


def read_pyproject(path: Path) -> dict[str, Any]:
    """Parse a ``pyproject.toml`` with :mod:`tomllib`; a syntax error is one line naming the file."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise NXAlembicError(f"{path.resolve()} is not valid TOML: {first_line(str(exc))}") from None
    except OSError as exc:
        raise NXAlembicError(f"cannot read {path.resolve()}: {first_line(str(exc))}") from None


def _nxalembic_table(path: Path, data: dict[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool", {})
    table = tool.get("nxalembic") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise NXAlembicError(
            f"{path.resolve()}: tool.nxalembic must be a table "
            f'([{TOML_TABLE}] with module = "yourbot.main"), not {_toml_type(table)}'
        )
    return table


def _toml_type(value: Any) -> str:
    """How TOML names the type of *value*, for messages."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), "a date or time")


def setting_line(path: Path | str, key: str, *values: str) -> str:
    """``key = value`` as the settings file *path* spells it (every hint and skeleton line): TOML strings in
    pyproject.toml, an array for several values; plain text in nxalembic.ini, commas between values."""
    if Path(path).name != PYPROJECT:
        return f"{key} = {', '.join(values)}"
    strings = [json.dumps(item, ensure_ascii=False) for item in values]
    return f"{key} = {strings[0] if len(strings) == 1 else '[' + ', '.join(strings) + ']'}"


def setting_hint(path: Path | str, *settings: tuple[str, ...], sep: str = " and ") -> str:
    """``'bot = "bot"' under [tool.nxalembic] in pyproject.toml``: how to write *settings* (``(key, value,
    ...)`` each, joined by *sep*) in the settings file *path*; each quoted line pastes as it is."""
    lines = sep.join(f"'{setting_line(path, *setting)}'" for setting in settings)
    return f"{lines} under [{TOML_TABLE if Path(path).name == PYPROJECT else SECTION}] in {Path(path).name}"


def _fields(path: Path, key: str, pattern: str) -> set[str]:
    """The ``{placeholders}`` of *pattern*; a stray brace is an error naming the key."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        raise NXAlembicError(
            f"{path}: {key} = {pattern!r} is not a valid pattern ({exc}); write placeholders "
            "as {cog} with both braces"
        ) from None


def _check_no_control_characters(path: Path, values: Mapping[str, str], toml: bool) -> None:
    """Refuse control characters in any value: in ini syntax a stray indented line after ``key = value``
    would silently continue it (a table name, a URL)."""
    for key, value in values.items():
        allowed = "\n\t" if key in LIST_KEYS else ""  # a list: one name a line, indented at will
        bad = next(
            (ch for ch in value if ch not in allowed and unicodedata.category(ch) in CONTROL_CATEGORIES), None
        )
        if bad is None:
            continue
        if toml:
            raise NXAlembicError(
                f"{path}: [{TOML_TABLE}] {key} contains the control character {bad!r}; "
                f'write {key} = "..." as one plain line'
            )
        what = f"the control character {bad!r}"
        if bad == "\n":
            what = "a line break (an indented line continues the value above it)"
        raise NXAlembicError(
            f"{path}: the value of {key} contains {what}; write {key} = ... on one line "
            "and start every other line at the left margin"
        )


def _check_version_table(path: Path, pattern: str) -> None:
    """Validate what the ``version_table`` pattern *produces*, not just how it looks."""
    fields = _fields(path, "version_table", pattern)
    if not fields:
        raise NXAlembicError(
            f"{path}: version_table = {pattern!r} gives the one table {pattern.format()!r} for every cog, "
            "so cogs would share one history; write {cog} with single braces, e.g. alembic_version_{cog}"
        )
    plain = all(not spec and not conversion for _, _, spec, conversion in string.Formatter().parse(pattern))
    if fields != {"cog"} or not plain:
        raise NXAlembicError(
            f"{path}: version_table = {pattern!r} must contain '{{cog}}' and no other "
            "placeholder or format spec (e.g. alembic_version_{cog} or alembic.{cog})"
        )
    # a plain {cog} and nothing else: every cog gets a name of its own, which must be plain
    name = pattern.format(cog="first_cog")
    if not VERSION_TABLE_RE.fullmatch(name):
        raise NXAlembicError(
            f"{path}: version_table = {pattern!r} gives {name!r}, which is not a plain table name; "
            "use only letters, digits, '_' and '.', e.g. alembic_version_{cog}"
        )


def _ini_values(path: Path) -> dict[str, str]:
    """The ``[nxalembic]`` section of an ``nxalembic.ini``, as read by configparser."""
    # Inline comments as in the README: "module = mybot.main   # from mybot.main import bot".
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with path.open(encoding="utf-8-sig") as fh:  # -sig: a BOM (Windows editors) is not text
            parser.read_file(fh)
    except configparser.MissingSectionHeaderError:
        raise NXAlembicError(
            f"{path} does not start with a section header; put a [{SECTION}] line above 'module = ...'"
        ) from None
    except UnicodeDecodeError as exc:
        raise NXAlembicError(
            f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it with UTF-8 encoding"
        ) from None
    except (OSError, configparser.Error) as exc:
        raise NXAlembicError(f"cannot read {path}: {first_line(str(exc))}") from exc
    if not parser.has_section(SECTION):
        raise NXAlembicError(f"{path} has no [{SECTION}] section; add {setting_hint(path, *STARTER)}")
    values = dict(parser[SECTION])
    _check_no_control_characters(path, values, toml=False)
    return values


def _toml_values(path: Path) -> dict[str, str]:
    """The ``[tool.nxalembic]`` table of a ``pyproject.toml``: every value must be a TOML string."""
    table = _nxalembic_table(path, read_pyproject(path))
    if table is None:
        raise NXAlembicError(f"{path} has no [{TOML_TABLE}] table; add {setting_hint(path, *STARTER)}")
    table = dict(table)
    for key, value in table.items():
        if key in LIST_KEYS and isinstance(value, list) and all(isinstance(item, str) for item in value):
            table[key] = "\n".join(value)  # extensions = ["a", "b"]: the ini file's one-a-line list
        elif not isinstance(value, str):
            array = f' or an array of strings ({key} = ["...", "..."])' if key in LIST_KEYS else ""
            raise NXAlembicError(
                f'{path}: [{TOML_TABLE}] {key} must be a string in quotes ({key} = "..."){array}, '
                f"not {_toml_type(value)}"
            )
    _check_no_control_characters(path, table, toml=True)
    return table


def load_settings(path: Path | str) -> Settings:
    """Parse and validate ``nxalembic.ini`` or ``[tool.nxalembic]`` of a ``pyproject.toml``: the same keys
    and checks; every problem is one :class:`NXAlembicError` line naming the file and the key."""
    path = Path(path).resolve()
    toml = path.name == PYPROJECT
    section = _toml_values(path) if toml else _ini_values(path)
    unknown = sorted(set(section) - set(KNOWN_KEYS))
    if unknown:
        raise NXAlembicError(
            f"{path}: unknown key(s) {', '.join(unknown)} in [{TOML_TABLE if toml else SECTION}]; "
            f"known keys are {', '.join(sorted(KNOWN_KEYS))}"
        )
    module = section.get("module", "").strip()
    if not module:
        raise NXAlembicError(
            f"{path}: needs {setting_hint(path, STARTER[0])} (the module that creates your bot)"
        )
    if not DOTTED_RE.fullmatch(module):
        dotted = module.removesuffix(".py").replace("\\", "/").strip("/").replace("/", ".")
        hint = f"; write {setting_hint(path, ('module', dotted))} (the import path, not the file)"
        hint = hint if DOTTED_RE.fullmatch(dotted) else ""
        raise NXAlembicError(f"{path}: module = {module!r} is not a dotted Python module path{hint}")
    bot = section.get("bot", "bot").strip() or "bot"
    if not NAME_RE.fullmatch(bot):
        called = bot.removesuffix("()")
        hint = f"; write {setting_hint(path, ('bot', called))} (a function or class there builds the bot)"
        hint = hint if NAME_RE.fullmatch(called) else ""
        raise NXAlembicError(f"{path}: bot = {bot!r} is not a Python attribute name{hint}")

    version_table = section.get("version_table", DEFAULT_VERSION_TABLE).strip()
    _check_version_table(path, version_table)
    version_location = section.get("version_location", DEFAULT_VERSION_LOCATION).strip()
    fields = _fields(path, "version_location", version_location)
    if fields - LOCATION_FIELDS or not fields & {"cog", "cog_dir"}:
        raise NXAlembicError(
            f"{path}: version_location = {version_location!r} must contain {{cog}} or {{cog_dir}} "
            f"and may use only {', '.join('{' + f + '}' for f in sorted(LOCATION_FIELDS))}"
        )
    core_cog = section.get("core_cog", DEFAULT_CORE_COG).strip()
    if not NAME_RE.fullmatch(core_cog):
        raise NXAlembicError(f"{path}: core_cog = {core_cog!r} must match {NAME_RE.pattern}")
    extensions = parse_extensions(path, section.get("extensions", ""))
    url = section.get("url", "").strip() or None
    return Settings(path, module, bot, url, version_table, version_location, core_cog, extensions)


def parse_extensions(path: Path, value: str) -> tuple[str, ...]:
    """The ``extensions`` value: dotted module names, one a line or separated by commas (a TOML array
    arrives one a line); duplicates are dropped, the order is kept (it is the load order)."""
    names = [name for name in map(str.strip, value.replace("\n", ",").split(",")) if name]
    for name in names:
        if not DOTTED_RE.fullmatch(name):
            raise NXAlembicError(
                f"{path}: extensions: {name!r} is not a dotted module name; write " + extensions_hint(path)
            )
    return tuple(dict.fromkeys(names))


def extensions_hint(path: Path | str, package: str = "mybot.cogs") -> str:
    """The two spellings of ``extensions`` in *path*'s syntax: the extensions, or their package."""
    listed = ("extensions", f"{package}.music", f"{package}.games")
    return setting_hint(path, listed, ("extensions", package), sep=" or ")
