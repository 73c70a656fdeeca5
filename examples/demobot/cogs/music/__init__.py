"""Music cog: a package whose models live in a submodule."""

from nextcord.ext import commands

from .models import Playlist, Song


class Music(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @commands.command()
    async def songs(self, ctx: commands.Context) -> None:
        names = [song.title for song in await Song.objects.all()]
        await ctx.send(", ".join(names) or "no songs yet")

    @commands.command()
    async def playlists(self, ctx: commands.Context) -> None:
        count = await Playlist.objects.filter(owner__id=ctx.author.id).count()
        await ctx.send(f"you have {count} playlists")


def setup(bot: commands.Bot) -> None:
    bot.add_cog(Music(bot))
