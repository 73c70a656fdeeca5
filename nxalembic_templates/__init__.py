"""Per-cog Alembic migrations for nextcord bots with ormar models.

The package ships the ``nxcog`` Alembic template (``alembic init -t nxcog migrations``) and
the ``nxalembic`` command.  Modules, one responsibility each:

* :mod:`.settings`    reading ``nxalembic.ini``
* :mod:`.discovery`   importing the bot, finding its cogs and their ormar models
* :mod:`.scope`       the per-cog Alembic hooks (what one cog may see and touch)
* :mod:`.locking`     migration engines: one process at a time, atomic where possible
* :mod:`.environment` what the template's ``env.py`` runs
* :mod:`.cli`         the ``nxalembic`` command
* :mod:`.testing`     pytest-alembic's built-in tests once per cog
"""

from pathlib import Path

__version__ = "0.1.0"

#: The template folder; ``alembic init -t <this path>`` works in every kind of install.
TEMPLATE_DIR = Path(__file__).resolve().parent / "percog"

#: The name under which installed wheels register the template with stock Alembic.
TEMPLATE_NAME = "nxcog"

__all__ = ["TEMPLATE_DIR", "TEMPLATE_NAME", "__version__"]
