"""Entry point: ``python -m demobot.main`` runs the bot with ``DISCORD_TOKEN``.

Importing this module builds the bot and loads its extensions without connecting to
Discord, which is all the migration tools need.
"""

import os

import nextcord
from nextcord.ext import commands

from . import models  # noqa: F401  (the core models: users)

EXTENSIONS = (
    "demobot.cogs.music",  # package cog, models in demobot/cogs/music/models.py
    "demobot.cogs.economy",  # single-file cog
    "demobot.cogs.fun",  # no models: not a cog for migrations
)

intents = nextcord.Intents.default()
intents.message_content = True  # prefix commands read message text
bot = commands.Bot(command_prefix="!", intents=intents)
for extension in EXTENSIONS:
    bot.load_extension(extension)


if __name__ == "__main__":
    bot.run(os.environ["DISCORD_TOKEN"])
