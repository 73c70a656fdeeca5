"""Economy cog: a single-file cog; a purchase references a music song (cross-cog key)."""

from typing import Optional

import ormar
from nextcord.ext import commands

from ..db import base_config
from .music.models import Song


class Wallet(ormar.Model):
    ormar_config = base_config.copy(tablename="economy_wallets")

    id: int = ormar.Integer(primary_key=True)
    user_id: int = ormar.BigInteger(index=True)
    balance: int = ormar.Integer(default=0)


class Purchase(ormar.Model):
    ormar_config = base_config.copy(tablename="economy_purchases")

    id: int = ormar.Integer(primary_key=True)
    wallet: Optional[Wallet] = ormar.ForeignKey(Wallet)
    song: Optional[Song] = ormar.ForeignKey(Song)
    price: int = ormar.Integer()


class Economy(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @commands.command()
    async def balance(self, ctx: commands.Context) -> None:
        wallet = await Wallet.objects.get_or_none(user_id=ctx.author.id)
        await ctx.send(f"balance: {wallet.balance if wallet else 0}")


def setup(bot: commands.Bot) -> None:
    bot.add_cog(Economy(bot))
