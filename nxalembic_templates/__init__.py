"""Per-cog Alembic migrations for discord bots (nextcord, discord.py, disnake, py-cord) with ormar models.

The package ships the ``nxcog`` Alembic template (``alembic init -t nxcog migrations``) and
the ``nxalembic`` command.  Each module has one job; docs/architecture.rst lists them, bottom
layer first, and follows one command through them.  What users call: the template's env.py
calls :func:`.environment.run_migrations`; :mod:`.testing` serves pytest-alembic; the
``nxalembic`` command is :mod:`.cli`; a bot migrates itself at start-up with
``await nxalembic_templates.upgrade(bot)`` (:mod:`.startup`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The one place the version is written: the build reads it ([tool.hatch.version] in
#: pyproject.toml), and so do ``nxalembic --version`` and the documentation.
__version__ = "0.1.0"

#: The template folder; ``alembic init -t <this path>`` works in every kind of install.
TEMPLATE_DIR = Path(__file__).resolve().parent / "percog"

#: The name under which installed wheels register the template with stock Alembic.
TEMPLATE_NAME = "nxcog"

#: The variant that keeps Alembic's settings in ``[tool.alembic]`` of pyproject.toml (same env.py).
PYPROJECT_TEMPLATE_DIR = TEMPLATE_DIR.parent / "percog_pyproject"
#: The name under which installed wheels register that variant with stock Alembic.
PYPROJECT_TEMPLATE_NAME = "nxcog_pyproject"

#: The start-up API, importable from the top level (``from nxalembic_templates import upgrade``).
#: Loaded on first use: env.py and the ``nxalembic`` command import this package too, and
#: must not pay for the start-up module (nor could they: it sits in the top layers).
STARTUP_NAMES = ("upgrade", "upgrade_sync", "CogResult", "CogsBehind", "CogsWithoutRevisions", "LockTimeout")

__all__ = [
    "PYPROJECT_TEMPLATE_DIR",
    "PYPROJECT_TEMPLATE_NAME",
    "TEMPLATE_DIR",
    "TEMPLATE_NAME",
    "__version__",
    *STARTUP_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in STARTUP_NAMES:
        from . import startup

        return getattr(startup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *STARTUP_NAMES})
