"""Fun cog: commands only, no models, so it has no migrations."""

import random

from discord.ext import commands


class Fun(commands.Cog):
    @commands.command()
    async def roll(self, ctx: commands.Context, sides: int = 6) -> None:
        await ctx.send(str(random.randint(1, max(sides, 1))))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Fun())
