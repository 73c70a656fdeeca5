"""Entry point: ``python -m demobot.main`` migrates the database, then runs the bot with ``DISCORD_TOKEN``.

Importing this module builds the bot and loads its extensions without connecting to
Discord, which is all the migration tools need.  Running it first brings the database up to
every cog's revisions (:func:`prepare`, see docs/deploying.rst), then connects; without
``DISCORD_TOKEN`` it stops after migrating (what ``make demo`` shows).
"""

from __future__ import annotations

import logging
import os

import nextcord
from nextcord.ext import commands

import nxalembic_templates

from . import models  # noqa: F401  (the core models: users)

EXTENSIONS = (
    "demobot.cogs.music",  # package cog, models in demobot/cogs/music/models.py
    "demobot.cogs.economy",  # single-file cog
    "demobot.cogs.fun",  # no models: not a cog for migrations
)

log = logging.getLogger("demobot")

intents = nextcord.Intents.default()
intents.message_content = True  # prefix commands read message text
bot = commands.Bot(command_prefix="!", intents=intents)
for extension in EXTENSIONS:
    bot.load_extension(extension)


async def prepare() -> list[nxalembic_templates.CogResult]:
    """Bring the database up to the loaded cogs' revisions before the bot connects.

    The migration runs in a worker thread, so the event loop stays free; each cog gets one
    line on the ``nxalembic_templates.startup`` logger.  Shards started together migrate
    once: the others wait for the migration lock, then find every cog at its head.
    """
    return await nxalembic_templates.upgrade(bot)


async def main(token: str | None) -> None:
    await prepare()
    if not token:
        log.info("no DISCORD_TOKEN set: the database is ready; not connecting to Discord")
        return
    await bot.start(token)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per cog comes from nxalembic
    # nextcord ties the bot to the event loop that was current when it was built: run on that one
    bot.loop.run_until_complete(main(os.environ.get("DISCORD_TOKEN")))
