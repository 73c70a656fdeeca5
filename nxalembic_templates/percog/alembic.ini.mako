# Alembic configuration for per-cog migrations (template: nxcog, package nxalembic-templates).
# The bot and the cog options live in nxalembic.ini next to this file:
#
#   [nxalembic]
#   module = yourbot.main        ; from yourbot.main import bot
#   bot = bot
#   ; url = sqlite+aiosqlite:///bot.db         (default: the URL of your ormar database)
#   ; version_table = alembic_version_{cog}    (alembic.{cog} reads Nextcord-Ormar databases)
#   ; version_location = {script_location}/versions/{cog}   (or {cog_dir}/migrations)
#   ; core_cog = core                          (cog of models outside every extension)
#
# Every command that touches the database needs a cog:  alembic -x cog=NAME <command>

[alembic]
# where env.py and script.py.mako live; %(here)s is the folder of this file
script_location = ${script_location}

# Revision file names: %%(rev)s_%%(slug)s is the default.
# file_template = %%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s

# the folder of this file goes on sys.path (nxalembic.ini's folder always does)
prepend_sys_path = .

# Each cog's revisions live in their own folder; env.py selects it from -x cog=NAME.
# These two settings only serve `alembic heads` / `alembic branches`, which never run env.py:
# they list the heads of every cog found under versions/ (one head per cog is normal).
version_locations = ${script_location}/versions
recursive_version_locations = true
path_separator = os

# Run env.py for every `revision` and `history` too, so that a plain `alembic -x cog=NAME
# revision -m "..."` lands in the cog's own folder and `history` shows the cog's own chain.
revision_environment = true

# Leave empty: the URL comes from -x url=, nxalembic.ini, or your ormar database.
# sqlalchemy.url =

[post_write_hooks]
# Run a formatter on new revision files, for example ruff:
# hooks = ruff
# ruff.type = module
# ruff.module = ruff
# ruff.options = format REVISION_SCRIPT_FILENAME

[loggers]
keys = root,sqlalchemy,alembic,alembic_errors,nextcord,discord,disnake

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

# Alembic logs each error besides printing "FAILED: ..."; one line is enough
[logger_alembic_errors]
level = CRITICAL
handlers =
qualname = alembic.util.messaging

# the discord libraries warn about optional voice support when the bot is imported; not our
# business here (discord: discord.py and py-cord)
[logger_nextcord]
level = ERROR
handlers =
qualname = nextcord

[logger_discord]
level = ERROR
handlers =
qualname = discord

[logger_disnake]
level = ERROR
handlers =
qualname = disnake

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
