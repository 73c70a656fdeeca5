"""The bot's one ormar database; ``DPYBOT_DATABASE_URL`` selects it (default: ``dpybot.db`` here)."""

import os

import ormar
import sqlalchemy

DATABASE_URL = os.environ.get("DPYBOT_DATABASE_URL", "sqlite+aiosqlite:///dpybot.db")

database = ormar.DatabaseConnection(DATABASE_URL)
base_config = ormar.OrmarConfig(database=database, metadata=sqlalchemy.MetaData())
