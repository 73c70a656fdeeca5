"""Internal: where each cog's revisions and version table live: worked out once, shared by every route.

The stock ``alembic -x cog=`` route and the ``nxalembic`` command (through :mod:`.scope`) and
the start-up fast path (:mod:`.headcheck`, which must not import Alembic) all ask here, so they
can never disagree about which folder holds a cog's history or which table records it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .discovery import BotSchema
from .errors import NXAlembicError

__all__ = ["REVISION_FILE", "CogLayout", "nested_revisions"]

#: The file names Alembic's ``ScriptDirectory`` loads as revisions, matched (``re.match``) as it
#: matches them (``alembic.script.base``: ``_only_source_rev_file``, ``_sourceless_rev_file``):
#: any ``*.py`` but ``__init__*`` and editor lock files ``.#*``; with ``sourceless``, ``.pyc`` /
#: ``.pyo`` too.  ``tests/test_property_heads.py`` keeps them equal to Alembic's.
REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
SOURCELESS_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)(c|o)?$")


@dataclass(frozen=True)
class CogLayout:
    """Every loaded cog's revisions folder and version table, worked out once per process.

    One command asks for the scope of every cog, often several times (``nxalembic status``:
    five times per cog); the folders are resolved on disk, so they are computed and checked
    once per bot and scripts folder and kept on the :class:`~.discovery.BotSchema`.
    """

    locations: dict[str, Path]
    version_tables: dict[str, str]
    #: Revisions folder -> the cogs whose revisions it would hold, in cog order.
    by_folder: dict[Path, list[str]]

    @classmethod
    def of(cls, schema: BotSchema, script_location: Path) -> CogLayout:
        key = (cls.__name__, script_location)
        layout = schema.derived.get(key)
        if layout is None:
            settings = schema.settings
            locations = {
                cog.name: settings.version_location_for(cog.name, cog.directory, script_location)
                for cog in schema.cogs.values()
            }
            _refuse_source_folders(schema, locations, script_location)  # an error is not cached
            by_folder: dict[Path, list[str]] = {}
            for name, location in locations.items():
                by_folder.setdefault(location, []).append(name)
            layout = schema.derived[key] = cls(
                locations=locations,
                version_tables={name: settings.version_table_for(name) for name in schema.cogs},
                by_folder=by_folder,
            )
        return layout


def _refuse_source_folders(schema: BotSchema, locations: dict[str, Path], script_location: Path) -> None:
    """A revisions folder must hold revisions only: not bot sources, not env.py.

    Alembic imports every ``.py`` file of the folder as a revision, so ``{cog_dir}`` (or an
    ancestor of a cog's folder, or the scripts folder itself) would load the bot's own
    modules and env.py as revisions.
    """
    sources = {cog.name: cog.directory.resolve() for cog in schema.cogs.values()}
    # Each source folder and its ancestors -> the first cog (in cog order) at or below it: one
    # lookup per revisions folder instead of comparing it with every cog's folder.
    holding: dict[Path, str] = {}
    for cog, folder in sources.items():
        for ancestor in (folder, *folder.parents):
            holding.setdefault(ancestor, cog)
    for name, location in locations.items():
        if location == script_location:
            held = f"the scripts folder {script_location} (env.py)"
        else:
            inside = holding.get(location)
            if inside is None:
                continue
            held = (
                f"the source folder of cog {inside!r}"
                if location == sources[inside]
                else (f"a folder that contains the sources of cog {inside!r}")
            )
        raise NXAlembicError(
            f"version_location = {schema.settings.version_location} in {schema.settings.path.name} puts the "
            f"revisions of cog {name!r} in {location}, {held}; Alembic would load those files as revisions: "
            "use a folder of their own, e.g. {cog_dir}/migrations or {script_location}/versions/{cog}"
        )


def nested_revisions(folder: Path, sourceless: bool = False) -> tuple[Path, list[str]] | None:
    """The first subfolder of a cog's revisions *folder* holding revision files, and their names.

    Every route applies the files of the cog's folder itself (Alembic is pointed at that one
    folder), while alembic.ini's ``recursive_version_locations = true`` (which ``alembic heads``
    needs to see every cog's folder under ``versions/``) lists those of its subfolders too: such
    a file would be listed as a head and never applied.  Walked as Alembic walks it: Python's
    bytecode caches (``__pycache__``) are no revisions folder.
    """
    pattern = SOURCELESS_REVISION_FILE if sourceless else REVISION_FILE
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        here = Path(root)
        if here == folder or (
            here.name.endswith("__pycache__") and (not sourceless or here.parent == folder)
        ):
            continue
        names = sorted(name for name in files if pattern.match(name))
        if names:
            return here, names
    return None
