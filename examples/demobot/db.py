"""The bot's one ormar database and metadata, shared by every cog's models.

``DEMOBOT_DATABASE_URL`` selects the database (default: ``demobot.db`` in the current folder).
"""

import os

import ormar
import sqlalchemy

DATABASE_URL = os.environ.get("DEMOBOT_DATABASE_URL", "sqlite+aiosqlite:///demobot.db")

database = ormar.DatabaseConnection(DATABASE_URL)
metadata = sqlalchemy.MetaData()
base_config = ormar.OrmarConfig(database=database, metadata=metadata)
