"""Per-cog Alembic migrations for nextcord bots with ormar models.

The package ships the ``nxcog`` Alembic template (``alembic init -t nxcog migrations``) and
the ``nxalembic`` command.  Each module has one job; docs/architecture.rst lists them, bottom
layer first, and follows one command through them.  What users call: the template's env.py
calls :func:`.environment.run_migrations`; :mod:`.testing` serves pytest-alembic; the
``nxalembic`` command is :mod:`.cli`.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The template folder; ``alembic init -t <this path>`` works in every kind of install.
TEMPLATE_DIR = Path(__file__).resolve().parent / "percog"

#: The name under which installed wheels register the template with stock Alembic.
TEMPLATE_NAME = "nxcog"

__all__ = ["TEMPLATE_DIR", "TEMPLATE_NAME", "__version__"]
