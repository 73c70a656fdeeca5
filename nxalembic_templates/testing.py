"""Run pytest-alembic's built-in tests once per cog.

pytest-alembic tests *one* migration history; an nxcog project has one history per cog.
:func:`per_cog_alembic_config` makes pytest-alembic's ``alembic_config`` fixture
parametrized over the bot's cogs, so every test that uses ``alembic_runner`` runs once per
cog, with ids like ``test_upgrade[music]``.  In a ``conftest.py``::

    from nxalembic_templates.testing import per_cog_alembic_config

    alembic_config = per_cog_alembic_config("alembic.ini")

and in a test module::

    from pytest_alembic.tests import (
        test_model_definitions_match_ddl,
        test_single_head_revision,
        test_up_down_consistency,
        test_upgrade,
    )

How a cog is selected: the Alembic config carries a ``request.CogRequest`` naming the
cog (what ``-x cog=`` does on the command line), and its
``version_locations`` point at that cog's revisions only, because pytest-alembic reads the
history (heads, revision order) *before* env.py runs.  pytest-alembic hands its engine
(``alembic_engine`` fixture, in-memory SQLite by default) to env.py through
``config.attributes["connection"]``; env.py migrates on it and never opens the URL of
``nxalembic.ini``.

A cog whose tables have foreign keys into other cogs' tables needs those tables first on
PostgreSQL: by default the fixture upgrades the referenced cogs to head on the same engine
before the cog's own tests run (their own tests run separately).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from pytest_alembic.config import Config as PytestAlembicConfig

from .discovery import BotSchema
from .environment import load_schema
from .errors import NXAlembicError
from .locking import one_in_process
from .request import CogRequest, attach
from .scope import CogScope
from .settings import pyproject_for

__all__ = ["alembic_config_for", "cog_names", "per_cog_alembic_config", "upgrade_dependencies"]

_schemas: dict[Path, BotSchema] = {}


def _ini_path(alembic_ini: str | Path) -> Path:
    path = Path(alembic_ini).resolve()
    if not path.is_file():
        raise NXAlembicError(
            f"no Alembic config at {path}; pass the path of your alembic.ini "
            "(e.g. Path(__file__).parent / 'alembic.ini')"
        )
    return path


def _schema(alembic_ini: Path) -> BotSchema:
    """Discover the bot once per alembic.ini and test session (importing it is the slow part)."""
    if alembic_ini not in _schemas:
        config = AlembicConfig(str(alembic_ini), toml_file=pyproject_for(alembic_ini))
        attach(config, CogRequest(configure_logger=False))
        _schemas[alembic_ini] = load_schema(config)
    return _schemas[alembic_ini]


def cog_names(alembic_ini: str | Path = "alembic.ini") -> list[str]:
    """The bot's cogs, as ``alembic -x cog=NAME`` accepts them (imports the bot)."""
    return list(_schema(_ini_path(alembic_ini)).cogs)


def _cog_alembic_config(cog: str, alembic_ini: Path, engine: Any = None) -> AlembicConfig:
    """An Alembic config that selects *cog*, as ``alembic -c INI -x cog=COG`` would.

    pytest's logging is left as it is; the command is whatever pytest-alembic calls, and the
    connection the one pytest-alembic puts in ``config.attributes["connection"]`` (or *engine*).
    """
    schema = _schema(alembic_ini)
    config = AlembicConfig(str(alembic_ini), toml_file=pyproject_for(alembic_ini))
    attach(config, CogRequest(cog=cog, configure_logger=False, schema=schema, connection=engine))
    script_location = Path(ScriptDirectory.from_config(config).dir).resolve()
    location = CogScope.for_cog(schema, cog, script_location).version_location
    config.set_main_option("version_locations", str(location).replace("%", "%%"))
    config.set_main_option("recursive_version_locations", "false")
    return config


def alembic_config_for(
    cog: str, alembic_ini: str | Path = "alembic.ini", **options: Any
) -> PytestAlembicConfig:
    """A pytest-alembic :class:`~pytest_alembic.config.Config` for one cog.

    *options* are pytest-alembic's own (``minimum_downgrade_revision``, ``skip_revisions``,
    ``before_revision_data``, ``at_revision_data``); revision ids are per cog, so they
    usually make sense for one cog only.
    """
    path = _ini_path(alembic_ini)
    _schema(path).cog(cog)  # an unknown or invalid name fails here, naming the known cogs
    return PytestAlembicConfig(alembic_config=_cog_alembic_config(cog, path), **options)


def _dependency_order(schema: BotSchema, cog: str) -> list[str]:
    """The cogs *cog*'s foreign keys reach (directly or not), referenced cogs first."""
    return [name for name in schema.upgrade_order([cog], with_dependencies=True) if name != cog]


def upgrade_dependencies(cog: str, engine: Any, alembic_ini: str | Path = "alembic.ini") -> list[str]:
    """Upgrade the cogs that *cog* references to head on *engine*; return their names in order.

    One migration of this process at a time (``locking.one_in_process``): a test
    running these from threads would otherwise swap Alembic's process-wide ``context``.
    """
    path = _ini_path(alembic_ini)
    order = _dependency_order(_schema(path), cog)
    for name in order:
        with one_in_process():
            command.upgrade(_cog_alembic_config(name, path, engine), "head")
    return order


def per_cog_alembic_config(
    alembic_ini: str | Path = "alembic.ini",
    cogs: Iterable[str] | None = None,
    *,
    with_dependencies: bool = True,
    options: Callable[[str], dict[str, Any]] | None = None,
) -> Any:
    """pytest-alembic's ``alembic_config`` fixture, parametrized over cogs.

    Assign the result in a ``conftest.py`` or test module (the fixture is registered under
    the name ``alembic_config`` whatever the variable is called).

    * *alembic_ini*: path of ``alembic.ini``; relative paths are relative to the directory
      pytest runs in, so prefer ``Path(__file__).parent / "alembic.ini"``.
    * *cogs*: the cogs to test (default: every cog the bot has; the bot is imported when the
      test module is collected).
    * *with_dependencies*: upgrade the cogs a cog references to head on ``alembic_engine``
      before its tests (needed on PostgreSQL when foreign keys cross cogs).
    * *options*: cog name -> pytest-alembic options for that cog, e.g.
      ``lambda cog: {"minimum_downgrade_revision": "abc123"} if cog == "music" else {}``.
    """
    path = _ini_path(alembic_ini)
    schema = _schema(path)
    names: Sequence[str] = list(schema.cogs) if cogs is None else list(cogs)
    for name in names:
        schema.cog(name)

    @pytest.fixture(name="alembic_config", params=names, ids=names)
    def alembic_config(request: pytest.FixtureRequest) -> PytestAlembicConfig:
        cog = str(request.param)
        if with_dependencies and _dependency_order(schema, cog):
            upgrade_dependencies(cog, request.getfixturevalue("alembic_engine"), path)
        return alembic_config_for(cog, path, **(options(cog) if options else {}))

    return alembic_config
