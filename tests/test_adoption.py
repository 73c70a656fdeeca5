"""Taking over a database that Nextcord-Ormar 0.3 migrated.

Nextcord-Ormar named an app's tables ``<app>.<model>s`` and its version table ``alembic.<app>``:
single table names with a dot in them (not schemas), in the database's default schema.  It kept
an app's revisions in ``<app folder>/migrations``.  Such a database is built here by hand, with
plain SQL; the bot's models are mapped to the same names (``tablename="music.songs"``) and
nxalembic.ini says ``version_table = alembic.{cog}`` and ``version_location = {cog_dir}/migrations``.
Then the stock commands must see the stamped revision, find no drift, and migrate on top.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import textwrap

import pytest
import sqlalchemy as sa

from conftest import BotProject, Database

BASELINE = {"music": "ab12cd34ef56", "economy": "0f1e2d3c4b5a"}

NXALEMBIC_INI = """\
[nxalembic]
module = legacybot.main
bot = bot
; Nextcord-Ormar's names: version table alembic.<app>, revisions in <app folder>/migrations
version_table = alembic.{cog}
version_location = {cog_dir}/migrations
"""

FILES = {
    "legacybot/__init__.py": "",
    "legacybot/db.py": """
        import os

        import ormar
        import sqlalchemy

        database = ormar.DatabaseConnection(os.environ["LEGACYBOT_DATABASE_URL"])
        base_config = ormar.OrmarConfig(database=database, metadata=sqlalchemy.MetaData())
    """,
    "legacybot/main.py": """
        import nextcord
        from nextcord.ext import commands

        intents = nextcord.Intents.default()
        intents.message_content = True
        bot = commands.Bot(command_prefix="!", intents=intents)
        for extension in ("legacybot.cogs.music", "legacybot.cogs.economy"):
            bot.load_extension(extension)
    """,
    "legacybot/cogs/__init__.py": "",
    "legacybot/cogs/music/__init__.py": """
        from nextcord.ext import commands

        from .models import Song  # noqa: F401


        class Music(commands.Cog):
            pass


        def setup(bot: commands.Bot) -> None:
            bot.add_cog(Music())
    """,
    # The names Nextcord-Ormar gave these models: "<app>.<model name, lower case>s".
    "legacybot/cogs/music/models.py": """
        from typing import Optional

        import ormar

        from ...db import base_config


        class Song(ormar.Model):
            ormar_config = base_config.copy(tablename="music.songs")

            id: int = ormar.Integer(primary_key=True)
            title: str = ormar.String(max_length=200)
            artist: Optional[str] = ormar.String(max_length=200, nullable=True)
    """,
    "legacybot/cogs/economy/__init__.py": """
        import ormar
        from nextcord.ext import commands

        from ...db import base_config


        class Wallet(ormar.Model):
            ormar_config = base_config.copy(tablename="economy.wallets")

            id: int = ormar.Integer(primary_key=True)
            user: int = ormar.BigInteger()
            balance: int = ormar.Integer()


        class Economy(commands.Cog):
            pass


        def setup(bot: commands.Bot) -> None:
            bot.add_cog(Economy())
    """,
    # Baselines in the style Nextcord-Ormar wrote them; their ids are what the database is stamped with.
    f"legacybot/cogs/music/migrations/{BASELINE['music']}_.py": f"""
        \"\"\"

        Revision ID: {BASELINE["music"]}
        Revises:
        Create Date: 2022-07-24 21:47:21.160156

        \"\"\"
        from alembic import op
        import sqlalchemy as sa


        # revision identifiers, used by Alembic.
        revision = '{BASELINE["music"]}'
        down_revision = None
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
            op.create_table('music.songs',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('title', sa.String(length=200), nullable=False),
            sa.Column('artist', sa.String(length=200), nullable=True),
            sa.PrimaryKeyConstraint('id')
            )


        def downgrade() -> None:
            op.drop_table('music.songs')
    """,
    f"legacybot/cogs/economy/migrations/{BASELINE['economy']}_.py": f"""
        from alembic import op
        import sqlalchemy as sa

        revision = '{BASELINE["economy"]}'
        down_revision = None
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
            op.create_table('economy.wallets',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('user', sa.BigInteger(), nullable=False),
            sa.Column('balance', sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint('id')
            )


        def downgrade() -> None:
            op.drop_table('economy.wallets')
    """,
}


def predecessor_schema(backend: str) -> list[str]:
    """The database as Nextcord-Ormar 0.3 left it, in plain SQL (what its Alembic run created)."""
    serial = {"postgresql": "SERIAL", "mysql": "INTEGER AUTO_INCREMENT"}.get(backend, "INTEGER")
    return [
        f'CREATE TABLE "music.songs" (id {serial} NOT NULL, title VARCHAR(200) NOT NULL, '
        "artist VARCHAR(200), PRIMARY KEY (id))",
        f'CREATE TABLE "economy.wallets" (id {serial} NOT NULL, "user" BIGINT NOT NULL, '
        "balance INTEGER NOT NULL, PRIMARY KEY (id))",
        *(
            f'CREATE TABLE "alembic.{app}" (version_num VARCHAR(32) NOT NULL, '
            f'CONSTRAINT "alembic.{app}_pkc" PRIMARY KEY (version_num))'
            for app in BASELINE
        ),
        *(f"INSERT INTO \"alembic.{app}\" (version_num) VALUES ('{rev}')" for app, rev in BASELINE.items()),
        "INSERT INTO \"music.songs\" (title, artist) VALUES ('Clair de lune', 'Debussy')",
    ]


@pytest.fixture
def legacy(project: BotProject) -> BotProject:
    """The bot project after the switch: Nextcord-Ormar's layout plus an nxcog migrations folder.

    Its bot reads ``LEGACYBOT_DATABASE_URL``; a cog's revisions are in Nextcord-Ormar's
    ``<app folder>/migrations`` and its version table is ``alembic.<app>``, as NXALEMBIC_INI says.
    """
    shutil.rmtree(project.path / "demobot")
    for relpath, text in FILES.items():
        project.write(relpath, textwrap.dedent(text).lstrip())
    project.write("nxalembic.ini", NXALEMBIC_INI)
    return dataclasses.replace(
        project,
        url_variable="LEGACYBOT_DATABASE_URL",
        version_location="legacybot/cogs/{cog}/migrations",
        version_table="alembic.{cog}",
    )


def song_columns(db: Database) -> list[str]:
    return [column["name"] for column in sa.inspect(db.engine).get_columns("music.songs")]


def test_a_nextcord_ormar_database_is_adopted_as_it_is(legacy: BotProject) -> None:
    for statement in predecessor_schema(legacy.db.backend):
        legacy.db.execute(statement)
    before = legacy.db.snapshot()

    for app, revision in BASELINE.items():
        assert f"{revision} (head)" in legacy.cog(app, "current").stdout
        assert "No new upgrade operations detected" in legacy.cog(app, "check").output
    assert legacy.db.snapshot() == before  # reading and comparing changed nothing
    assert "in sync" in legacy.nxalembic("status").stdout

    # A model change becomes a revision on top of the stamped one, next to it in migrations/.
    models = legacy.path / "legacybot/cogs/music/models.py"
    models.write_text(models.read_text() + "    plays: Optional[int] = ormar.Integer(nullable=True)\n")
    legacy.cog("music", "revision", "--autogenerate", "-m", "add plays")
    [new] = [p for p in legacy.revisions("music") if not p.name.startswith(BASELINE["music"])]
    text = new.read_text()
    # (op.add_column('music.songs', ...), or its batch form on SQLite)
    assert "'music.songs'" in text and re.search(
        r"add_column\((?:'music\.songs', )?sa\.Column\('plays'", text
    ), text
    assert f"down_revision: str | Sequence[str] | None = '{BASELINE['music']}'" in text
    assert "economy" not in text and "drop_table" not in text
    new_id = re.search(r"^revision: str = '(\w+)'", text, re.M).group(1)  # type: ignore[union-attr]

    legacy.cog("music", "upgrade", "head")
    assert legacy.versions("music") == [new_id]
    assert legacy.versions("economy") == [BASELINE["economy"]]
    assert song_columns(legacy.db) == ["id", "title", "artist", "plays"]
    assert legacy.db.snapshot({"music.songs"})["music.songs"]["rows"] == [
        (1, "Clair de lune", "Debussy", None)
    ]
    assert "No new upgrade operations detected" in legacy.cog("music", "check").output
    # The dotted names are table names, not schemas; no alembic_version_* table appeared.
    assert legacy.db.tables() == {"music.songs", "economy.wallets", "alembic.music", "alembic.economy"}
    if legacy.db.backend in ("postgresql", "mysql"):  # MariaDB calls its databases schemas
        schemas = set(sa.inspect(legacy.db.engine).get_schema_names())
        assert not {"music", "economy", "alembic"} & schemas


def test_a_fresh_database_gets_the_predecessors_names_from_the_baselines(legacy: BotProject) -> None:
    """New installs of the adopted bot start from the same baselines and end with the same names."""
    legacy.nxalembic("upgrade")
    assert legacy.db.tables() == {"music.songs", "economy.wallets", "alembic.music", "alembic.economy"}
    for app, revision in BASELINE.items():
        assert legacy.versions(app) == [revision]
    check = legacy.nxalembic("check")
    assert "all cogs: models match their migrations" in check.stdout
