"""Alembic environment for per-cog migrations of a discord bot (templates nxcog and nxcog_pyproject).

What happens, in order (see nxalembic_templates.environment for the details):

1. nxalembic.ini (or [tool.nxalembic] in pyproject.toml) names the bot:
   ``from <module> import <bot>`` (or a function building it, and the ``extensions`` to load);
   its folder goes on sys.path.
2. Every loaded extension that defines ormar models is a cog; the cog is chosen with
   ``alembic -x cog=NAME ...`` (the ``nxalembic`` command chooses it for you).
3. Alembic is pointed at that cog's own revisions folder and version table, and is only
   allowed to see and touch that cog's tables; autogenerate never writes ``drop_table``.
4. The database URL is, in order: ``-x url=...``, ``url`` in nxalembic.ini / [tool.nxalembic],
   ``sqlalchemy.url`` in alembic.ini, the URL of the models' ormar database.
"""

from alembic import context

from nxalembic_templates.environment import run_migrations, setup_logging

# Logging as alembic.ini says (left alone when the nxalembic command runs many cogs at once).
setup_logging(context)

# Keyword arguments are passed on to context.configure(), e.g. compare_server_default=True.
run_migrations(context)
