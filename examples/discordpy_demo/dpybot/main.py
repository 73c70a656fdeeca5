"""Entry point: ``python -m dpybot.main`` runs the bot with ``DISCORD_TOKEN``.

The bot loads its extensions in ``setup_hook``, which discord.py runs when the bot logs in,
before it connects to the gateway, and migrates the database there, after loading them.
Importing this module builds the bot without extensions (``extensions`` in pyproject.toml's
``[tool.nxalembic]`` has the migration tools load them).  Without ``DISCORD_TOKEN`` it runs
``setup_hook`` (loading the extensions, migrating) and stops before logging in: what
``make demo LIB=discordpy`` shows.
"""

from __future__ import annotations

import asyncio
import logging
import os

import discord
from discord.ext import commands

import nxalembic_templates

EXTENSIONS = (
    "dpybot.cogs.notes",  # single-file cog
    "dpybot.cogs.reminders",  # package cog, models in dpybot/cogs/reminders/models.py
    "dpybot.cogs.fun",  # no models: not a cog for migrations
)

log = logging.getLogger("dpybot")


class DemoBot(commands.Bot):
    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # the loaded cogs' revisions, before the bot connects (one INFO line per cog)
        await nxalembic_templates.upgrade(self)


intents = discord.Intents.default()
intents.message_content = True  # prefix commands read message text
bot = DemoBot(command_prefix="!", intents=intents)


async def main(token: str | None) -> None:
    async with bot:
        if token:
            await bot.start(token)  # logs in (running setup_hook), then connects
            return
        await bot.setup_hook()
        log.info("no DISCORD_TOKEN set: setup_hook ran, the database is ready; not connecting to Discord")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per cog comes from nxalembic
    asyncio.run(main(os.environ.get("DISCORD_TOKEN")))
