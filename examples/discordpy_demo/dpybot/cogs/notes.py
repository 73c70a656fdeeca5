"""Notes cog: a single-file cog."""

import ormar
from discord.ext import commands

from ..db import base_config


class Note(ormar.Model):
    ormar_config = base_config.copy(tablename="notes_notes")

    id: int = ormar.Integer(primary_key=True)
    author_id: int = ormar.BigInteger(index=True)  # Discord user id
    text: str = ormar.String(max_length=500)


class Notes(commands.Cog):
    @commands.command()
    async def note(self, ctx: commands.Context, *, text: str) -> None:
        await Note.objects.create(author_id=ctx.author.id, text=text)
        await ctx.send("noted")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Notes())
