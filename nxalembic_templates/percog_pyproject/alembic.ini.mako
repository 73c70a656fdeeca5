# Alembic configuration for per-cog migrations (template: nxcog_pyproject, package nxalembic-templates).
# Alembic's settings are in [tool.alembic] of pyproject.toml, the bot and the cog options in
# [tool.nxalembic] there; this file keeps only what Alembic reads from no other file.
#
# Every command that touches the database needs a cog:  alembic -x cog=NAME <command>

[alembic]
# Leave empty: the URL comes from -x url=, [tool.nxalembic] url, or your ormar database.
# sqlalchemy.url =

# Two switches that would belong to [tool.alembic], kept here because Alembic 1.16.0 cannot
# read TOML booleans (and newer versions accept nothing else there); every version reads these:
# run env.py for every `revision` and `history` too, so that a plain `alembic -x cog=NAME
# revision -m "..."` lands in the cog's own folder and `history` shows the cog's own chain ...
revision_environment = true
# ... and let `alembic heads` / `alembic branches` (which never run env.py) find every cog's
# revisions below versions/.
recursive_version_locations = true

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

# the discord library warns about optional voice support when the bot is imported; not our
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
