"""Reminders cog: a package whose models live in a submodule."""

from discord.ext import commands

from .models import Reminder


class Reminders(commands.Cog):
    @commands.command()
    async def reminders(self, ctx: commands.Context) -> None:
        count = await Reminder.objects.filter(note__author_id=ctx.author.id).count()
        await ctx.send(f"you have {count} reminders")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Reminders())
