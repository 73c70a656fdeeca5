[tool.alembic]
# Per-cog migrations (template: nxcog_pyproject, package nxalembic-templates).
# Where env.py and script.py.mako live; %(here)s is the folder of this file.
script_location = "${script_location}"

# Revision file names: %%(rev)s_%%(slug)s is the default.
# file_template = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"

# The folder of this file goes on sys.path (the bot's folder, that of [tool.nxalembic], always does).
prepend_sys_path = ["."]

# Each cog's revisions live in their own folder; env.py selects it from -x cog=NAME.
# This setting (with recursive_version_locations in alembic.ini) only serves `alembic heads` /
# `alembic branches`, which never run env.py: they list the heads of every cog found under
# versions/ (one head per cog is normal).
version_locations = ["${script_location}/versions"]

# revision_environment and recursive_version_locations are in alembic.ini: Alembic 1.16.0
# cannot read a TOML boolean and later versions refuse a string, while every version reads
# "true" from alembic.ini.

# Run a formatter on new revision files, for example ruff:
# [[tool.alembic.post_write_hooks]]
# name = "ruff"
# type = "module"
# module = "ruff"
# options = "format REVISION_SCRIPT_FILENAME"

# The bot and the cog options (what nxalembic.ini holds otherwise; `nxalembic init` writes this
# table for you, here too; `bot` may name a function or class that builds the bot):
#
# [tool.nxalembic]
# module = "yourbot.main"        # from yourbot.main import bot
# bot = "bot"
# url = "sqlite+aiosqlite:///bot.db"          # default: the URL of your ormar database
# version_table = "alembic_version_{cog}"     # "alembic.{cog}" reads Nextcord-Ormar databases
# version_location = "{script_location}/versions/{cog}"   # or "{cog_dir}/migrations"
# core_cog = "core"                           # cog of models outside every extension
# extensions = "yourbot.cogs"                 # extensions loaded only when the bot starts (setup_hook):
# extensions = ["yourbot.cogs.music", "yourbot.cogs.games"]   # their package, or instead each one
