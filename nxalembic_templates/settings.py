"""Reading ``nxalembic.ini``: where the bot lives and how cogs map to version tables and folders.

The file is the predecessor's format (``[nxalembic]`` with ``module`` and ``bot``), extended
with optional keys.  It is looked for in the current directory first and then next to
``alembic.ini``, so both ``cd project && alembic ...`` and ``alembic -c project/alembic.ini``
work.
"""

from __future__ import annotations

import configparser
import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import NXAlembicError, first_line

CONFIG_FILE = "nxalembic.ini"
SECTION = "nxalembic"

DEFAULT_VERSION_TABLE = "alembic_version_{cog}"
DEFAULT_VERSION_LOCATION = "{script_location}/versions/{cog}"
DEFAULT_CORE_COG = "core"

#: A cog name, a bot variable, each part of a module path (use ``fullmatch``; messages quote the pattern).
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

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

#: Names that are version tables whatever ``version_table`` says: stock Alembic's single table,
#: and this package's default pattern (a database may have been migrated with the default).
STOCK_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Settings:
    """The parsed ``[nxalembic]`` section; paths are absolute."""

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
        for pattern in (self.version_table, DEFAULT_VERSION_TABLE):
            match = _version_table_regex(pattern).fullmatch(table)
            if match:
                return match.group("cog")
        return None

    def version_location_for(self, cog: str, cog_dir: Path, script_location: Path) -> Path:
        """Resolve the revisions folder of *cog*; relative patterns are relative to the ini file."""
        raw = self.version_location.format(
            cog=cog, cog_dir=cog_dir, script_location=script_location, here=self.root
        )
        path = Path(raw)
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


def find_config_file(*extra_dirs: Path | str | None) -> Path:
    """Find ``nxalembic.ini`` in the current directory, then in each of *extra_dirs*."""
    candidates = [Path.cwd(), *(Path(d) for d in extra_dirs if d)]
    for folder in candidates:
        path = folder / CONFIG_FILE
        if path.is_file():
            return path.resolve()
    looked = ", ".join(dict.fromkeys(str(c.resolve()) for c in candidates))
    raise NXAlembicError(
        f"no {CONFIG_FILE} found (looked in {looked}); create one with "
        f"'[{SECTION}]', 'module = yourbot.main' and 'bot = bot', or run 'nxalembic init'"
    )


def _fields(path: Path, key: str, pattern: str) -> set[str]:
    """The ``{placeholders}`` of *pattern*; a stray brace is an error naming the key."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        raise NXAlembicError(
            f"{path}: {key} = {pattern!r} is not a valid pattern ({exc}); write placeholders "
            "as {cog} with both braces"
        ) from None


def _check_no_control_characters(path: Path, section: configparser.SectionProxy) -> None:
    """Refuse line breaks (continuation lines) and other control characters in any value.

    An indented line after ``key = value`` continues the value in ini syntax, so a stray
    indent silently glues the next line into a table name or a URL.
    """
    for key, value in section.items():
        allowed = "\n" if key in LIST_KEYS else ""
        bad = next(
            (ch for ch in value if ch not in allowed and unicodedata.category(ch) in CONTROL_CATEGORIES), None
        )
        if bad is not None:
            what = (
                "a line break (an indented line continues the value above it)"
                if bad == "\n"
                else (f"the control character {bad!r}")
            )
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
    names = [pattern.format(cog=cog) for cog in ("first_cog", "second_cog")]
    if names[0] == names[1] or "first_cog" not in names[0]:
        raise NXAlembicError(
            f"{path}: version_table = {pattern!r} gives {names[0]!r} for a cog named first_cog, "
            f"not a name of its own per cog; write {{cog}} with single braces, e.g. alembic_version_{{cog}}"
        )
    if not VERSION_TABLE_RE.fullmatch(names[0]):
        raise NXAlembicError(
            f"{path}: version_table = {pattern!r} gives {names[0]!r}, which is not a plain table name; "
            "use only letters, digits, '_' and '.', e.g. alembic_version_{cog}"
        )


def load_settings(path: Path | str) -> Settings:
    """Parse and validate one ``nxalembic.ini``; every problem is one :class:`NXAlembicError` line."""
    path = Path(path).resolve()
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
        raise NXAlembicError(
            f"{path} has no [{SECTION}] section; add one with 'module = yourbot.main' and 'bot = bot'"
        )
    section = parser[SECTION]
    _check_no_control_characters(path, section)
    known = {"module", "bot", "url", "version_table", "version_location", "core_cog", "extensions"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise NXAlembicError(
            f"{path}: unknown key(s) {', '.join(unknown)} in [{SECTION}]; "
            f"known keys are {', '.join(sorted(known))}"
        )
    module = section.get("module", "").strip()
    if not module:
        raise NXAlembicError(
            f"{path}: [{SECTION}] needs 'module = yourbot.main' (the module that creates your bot)"
        )
    if not all(NAME_RE.fullmatch(part) for part in module.split(".")):
        dotted = module.removesuffix(".py").replace("\\", "/").strip("/").replace("/", ".")
        hint = (
            f"; write module = {dotted} (the import path, not the file)"
            if all(NAME_RE.fullmatch(part) for part in dotted.split("."))
            else ""
        )
        raise NXAlembicError(f"{path}: module = {module!r} is not a dotted Python module path{hint}")
    bot = section.get("bot", "bot").strip() or "bot"
    if not NAME_RE.fullmatch(bot):
        called = bot.removesuffix("()")
        hint = (
            f"; write bot = {called} (a function there is called to build the bot)"
            if NAME_RE.fullmatch(called)
            else ""
        )
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
    return Settings(
        path=path,
        module=module,
        bot=bot,
        url=section.get("url", "").strip() or None,
        version_table=version_table,
        version_location=version_location,
        core_cog=core_cog,
        extensions=extensions,
    )


def parse_extensions(path: Path, value: str) -> tuple[str, ...]:
    """The ``extensions`` value: dotted module names, one a line or separated by commas.

    Both spellings are common in ini files (``extensions = a, b`` and an indented list), so
    both are read; duplicates are dropped, the order is kept (it is the load order).
    """
    names = [name.strip() for line in value.splitlines() for name in line.split(",")]
    names = [name for name in names if name]
    for name in names:
        if not all(NAME_RE.fullmatch(part) for part in name.split(".")):
            raise NXAlembicError(
                f"{path}: extensions: {name!r} is not a dotted module name; list extensions as "
                "mybot.cogs.music (one a line or separated by commas), or a package such as mybot.cogs"
            )
    return tuple(dict.fromkeys(names))
