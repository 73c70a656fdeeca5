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
from dataclasses import dataclass
from pathlib import Path

from .errors import NXAlembicError

CONFIG_FILE = "nxalembic.ini"
SECTION = "nxalembic"

DEFAULT_VERSION_TABLE = "alembic_version_{cog}"
DEFAULT_VERSION_LOCATION = "{script_location}/versions/{cog}"
DEFAULT_CORE_COG = "core"

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Placeholders allowed in ``version_location``.
LOCATION_FIELDS = frozenset({"cog", "cog_dir", "script_location", "here"})


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

    @property
    def root(self) -> Path:
        """The folder of ``nxalembic.ini``; it goes on ``sys.path`` before the bot is imported."""
        return self.path.parent

    def version_table_for(self, cog: str) -> str:
        return self.version_table.format(cog=cog)

    def version_location_for(self, cog: str, cog_dir: Path, script_location: Path) -> Path:
        """Resolve the revisions folder of *cog*; relative patterns are relative to the ini file."""
        raw = self.version_location.format(
            cog=cog, cog_dir=cog_dir, script_location=script_location, here=self.root
        )
        path = Path(raw)
        return (path if path.is_absolute() else self.root / path).resolve()


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


def _fields(pattern: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}


def load_settings(path: Path | str) -> Settings:
    """Parse and validate one ``nxalembic.ini``; every problem is one :class:`NXAlembicError` line."""
    path = Path(path).resolve()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        first = str(exc).splitlines()[0]
        raise NXAlembicError(f"cannot read {path}: {first}") from exc
    if not parser.has_section(SECTION):
        raise NXAlembicError(
            f"{path} has no [{SECTION}] section; add one with 'module = yourbot.main' and 'bot = bot'"
        )
    section = parser[SECTION]
    known = {"module", "bot", "url", "version_table", "version_location", "core_cog"}
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
    if not all(NAME_RE.match(part) for part in module.split(".")):
        raise NXAlembicError(f"{path}: module = {module!r} is not a dotted Python module path")
    bot = section.get("bot", "bot").strip() or "bot"
    if not NAME_RE.match(bot):
        raise NXAlembicError(f"{path}: bot = {bot!r} is not a Python attribute name")

    version_table = section.get("version_table", DEFAULT_VERSION_TABLE).strip()
    bad = _fields(version_table) - {"cog"}
    if bad or "{cog}" not in version_table:
        raise NXAlembicError(
            f"{path}: version_table = {version_table!r} must contain '{{cog}}' and no other "
            "placeholder (e.g. alembic_version_{cog} or alembic.{cog})"
        )
    version_location = section.get("version_location", DEFAULT_VERSION_LOCATION).strip()
    fields = _fields(version_location)
    if fields - LOCATION_FIELDS or not fields & {"cog", "cog_dir"}:
        raise NXAlembicError(
            f"{path}: version_location = {version_location!r} must contain {{cog}} or {{cog_dir}} "
            f"and may use only {', '.join('{' + f + '}' for f in sorted(LOCATION_FIELDS))}"
        )
    core_cog = section.get("core_cog", DEFAULT_CORE_COG).strip()
    if not NAME_RE.match(core_cog):
        raise NXAlembicError(f"{path}: core_cog = {core_cog!r} must match [A-Za-z_][A-Za-z0-9_]*")
    return Settings(
        path=path,
        module=module,
        bot=bot,
        url=section.get("url", "").strip() or None,
        version_table=version_table,
        version_location=version_location,
        core_cog=core_cog,
    )
