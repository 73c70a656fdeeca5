"""Models that belong to no extension: they form the pseudo-cog ``core``."""

import ormar

from .db import base_config


class User(ormar.Model):
    ormar_config = base_config.copy(tablename="core_users")

    id: int = ormar.BigInteger(primary_key=True, autoincrement=False)  # Discord user id
    name: str = ormar.String(max_length=100)
