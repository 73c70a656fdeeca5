"""A bot that Nextcord-Ormar 0.3 migrated, taken over and developed further, end to end.

Nextcord-Ormar named an app's tables ``<App>.<model>s`` and its version table ``alembic.<App>``,
and kept an app's revisions in the app's ``migrations/`` folder.  The database here is built
the way its tool built it: the app's own revision files run by the real ``alembic`` through a
plain env.py that sets ``version_table = "alembic.<App>"`` (what NXAlembic did), then rows are
added.  The bot has what real bots have: a capitalised app (``Music``), an app module beside
other modules in a package folder (``cogs/economy.py``, revisions in ``cogs/migrations/``), a
table renamed by a hand-written legacy revision, an Enum column (a named enum type on
PostgreSQL), a string primary key ``_id`` and an app with models but no history (``quotes``).

Foreign keys to dotted tables (``'Music.songs.id'``) are what broke: Alembic read them as
schema ``Music``, table ``songs``.  No revision file written by the tools is edited here.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import ALEMBIC, BotProject, Database, alembic_forked, run, sync_url

BACKENDS = ["sqlite+aiosqlite", "postgresql+psycopg", "mysql+pymysql"]
LEGACY = {"Music": ["a1b2c3d4e5f6", "b2c3d4e5f6a1"], "economy": ["c3d4e5f6a1b2"]}
LEGACY_HEADS = {app: revisions[-1] for app, revisions in LEGACY.items()}
OLD_TABLES = {"Music.songs", "economy.wallets"}
NEW_TABLES = {"Music.playlists", "economy.purchases", "quotes.quotes"}
VERSION_TABLES = {"alembic.Music", "alembic.economy", "alembic.quotes"}

NXALEMBIC_INI = """\
[nxalembic]
module = oldbot.main
bot = bot
version_table = alembic.{cog}
version_location = {cog_dir}/migrations
"""

SONG = """
class Genre(enum.Enum):
    rock = "rock"
    jazz = "jazz"


class Song(ormar.Model):
    ormar_config = base_config.copy(tablename="Music.songs")

    id: int = ormar.Integer(primary_key=True)
    title: str = ormar.String(max_length=200)
    genre: Genre = ormar.Enum(enum_class=Genre)
"""
WALLET = """
class Wallet(ormar.Model):
    ormar_config = base_config.copy(tablename="economy.wallets")

    owner: str = ormar.String(primary_key=True, max_length=32, name="_id")
    balance: int = ormar.Integer()
"""
# What the developer adds after the switch: new models with foreign keys to dotted tables in the
# same cog (Playlist) and in other cogs (Purchase, Wallet.favourite, Quote), a new nullable column.
SONG_PLAYS = "    plays: Optional[int] = ormar.Integer(nullable=True)\n"
PLAYLIST = """

class Playlist(ormar.Model):
    ormar_config = base_config.copy(tablename="Music.playlists")

    id: int = ormar.Integer(primary_key=True)
    name: str = ormar.String(max_length=100, index=True)
    top: Optional[Song] = ormar.ForeignKey(Song, related_name="top_of")
"""
WALLET_FAVOURITE = '    favourite: Optional[Song] = ormar.ForeignKey(Song, related_name="favourite_of")\n'
PURCHASE = """

class Purchase(ormar.Model):
    ormar_config = base_config.copy(tablename="economy.purchases")

    id: int = ormar.Integer(primary_key=True)
    wallet: Optional[Wallet] = ormar.ForeignKey(Wallet, related_name="purchases")
    song: Optional[Song] = ormar.ForeignKey(Song, related_name="purchases")
"""

HEADER = """\
import enum
from typing import Optional

import ormar
from nextcord.ext import commands

"""
COG = """

class {cls}(commands.Cog):
    pass


def setup(bot: commands.Bot) -> None:
    bot.add_cog({cls}())
"""

FILES = {
    "oldbot/__init__.py": "",
    "oldbot/db.py": """
        import os

        import ormar
        import sqlalchemy

        database = ormar.DatabaseConnection(os.environ["OLDBOT_DATABASE_URL"])
        base_config = ormar.OrmarConfig(database=database, metadata=sqlalchemy.MetaData())
    """,
    "oldbot/main.py": """
        import nextcord
        from nextcord.ext import commands

        bot = commands.Bot(command_prefix="!", intents=nextcord.Intents.default())
        for extension in ("oldbot.cogs.music", "oldbot.cogs.economy", "oldbot.cogs.quotes"):
            bot.load_extension(extension)
    """,
    "oldbot/cogs/__init__.py": "",
    # An ordinary module beside the app module economy.py.
    "oldbot/cogs/helpers.py": "def coins(amount: int) -> str:\n    return f'{amount} coins'\n",
    # The app's name is capitalised: cog "Music", version table alembic.Music, tables Music.<model>s.
    "oldbot/cogs/music/__init__.py": HEADER
    + '__nxalembic_cog__ = "Music"\n\nfrom .models import Song  # noqa: F401\n'
    + COG.format(cls="Music"),
    "oldbot/cogs/music/models.py": HEADER + "from ...db import base_config\n\n" + SONG,
    "oldbot/cogs/economy.py": HEADER
    + "from ..db import base_config\nfrom .helpers import coins  # noqa: F401\n"
    + "from .music.models import Song  # noqa: F401\n\n"
    + WALLET
    + COG.format(cls="Economy"),
    # An app with models but no history yet.
    "oldbot/cogs/quotes/__init__.py": HEADER
    + "from ...db import base_config\nfrom ..music.models import Song\n\n"
    + """
class Quote(ormar.Model):
    ormar_config = base_config.copy(tablename="quotes.quotes")

    id: int = ormar.Integer(primary_key=True)
    text: str = ormar.String(max_length=200)
    song: Optional[Song] = ormar.ForeignKey(Song, related_name="quotes")
"""
    + COG.format(cls="Quotes"),
}


def legacy_revision(revision: str, down: str | None, upgrade: str, downgrade: str) -> str:
    """A revision file in the style Nextcord-Ormar (Alembic 1.8) wrote them."""

    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip(), "    ")

    return (
        f'"""\n\nRevision ID: {revision}\nRevises: {down or ""}\nCreate Date: 2022-07-24 '
        '21:47:21.160156\n\n"""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n\n# revision identifiers, used by Alembic.\n"
        f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body(upgrade)}\n\n\ndef downgrade() -> None:\n{body(downgrade)}\n"
    )


MUSIC_1, MUSIC_2 = LEGACY["Music"]
LEGACY_REVISIONS = {
    f"oldbot/cogs/music/migrations/{MUSIC_1}_.py": legacy_revision(
        MUSIC_1,
        None,
        """
        op.create_table('Music.tracks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('genre', sa.Enum('rock', 'jazz', name='genre'), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
    """,
        """
        op.drop_table('Music.tracks')
        sa.Enum(name='genre').drop(op.get_bind(), checkfirst=True)
    """,
    ),
    # Written by hand: Nextcord-Ormar's autogenerate could not detect a rename.
    f"oldbot/cogs/music/migrations/{MUSIC_2}_rename_tracks.py": legacy_revision(
        MUSIC_2,
        MUSIC_1,
        """
        op.rename_table('Music.tracks', 'Music.songs')
    """,
        """
        op.rename_table('Music.songs', 'Music.tracks')
    """,
    ),
    # economy.py is a module in oldbot/cogs/, so its revisions are in oldbot/cogs/migrations/.
    f"oldbot/cogs/migrations/{LEGACY['economy'][0]}_.py": legacy_revision(
        LEGACY["economy"][0],
        None,
        """
        op.create_table('economy.wallets',
        sa.Column('_id', sa.String(length=32), nullable=False),
        sa.Column('balance', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('_id')
        )
    """,
        """
        op.drop_table('economy.wallets')
    """,
    ),
}

#: A plain Alembic env.py doing what NXAlembic's did: one version table "alembic.<app>" per app.
LEGACY_ENV = """
import os

import sqlalchemy as sa
from alembic import context

app = context.get_x_argument(as_dictionary=True)["app"]
engine = sa.create_engine(os.environ["LEGACY_URL"], poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, version_table=f"alembic.{app}")
    with context.begin_transaction():
        context.run_migrations()
"""

ROWS = [
    "INSERT INTO \"Music.songs\" (id, title, genre) VALUES (1, 'Clair de lune', 'jazz'), (2, 'Paranoid', "
    "'rock')",
    "INSERT INTO \"economy.wallets\" (_id, balance) VALUES ('_alice', 10), ('bob', 0)",
]


@dataclass
class OldBot(BotProject):
    """The bot project after the switch: Nextcord-Ormar's layout plus an nxcog migrations folder.

    A :class:`BotProject` whose bot reads ``OLDBOT_DATABASE_URL``; what it adds is this walk's
    story: the database built as NXAlembic built it, the model changes made after the switch,
    and the revisions written since, found among Nextcord-Ormar's own in each app's
    ``migrations/`` folder (an app module's are in its package's: no one folder per cog).
    """

    url_variable: str = "OLDBOT_DATABASE_URL"
    #: Makes another database for the same bot (empty).
    fresh_database: Callable[[], Database] | None = None

    @classmethod
    def switched(cls, project: BotProject, fresh_database: Callable[[], Database] | None = None) -> OldBot:
        """*project* with the example bot replaced by the old bot, its legacy revisions and nxalembic.ini."""
        bot = cls(project.path, project.db, fresh_database=fresh_database)
        shutil.rmtree(bot.path / "demobot")
        for relpath, text in {**FILES, **LEGACY_REVISIONS}.items():
            bot.write(relpath, textwrap.dedent(text).lstrip() if relpath in FILES else text)
        bot.write("nxalembic.ini", NXALEMBIC_INI)
        return bot

    def append(self, relpath: str, text: str, after: str | None = None) -> None:
        path = self.path / relpath
        old = path.read_text()
        if after is None:
            path.write_text(old + text)
        else:
            assert after in old, after
            path.write_text(old.replace(after, after + text, 1))

    def build_legacy_database(self, db: Database | None = None) -> None:
        """Run each app's revisions the way NXAlembic did, then add rows."""
        db = db or self.db
        self.write("legacy_env/env.py", LEGACY_ENV)
        for app, folder in (("Music", "oldbot/cogs/music/migrations"), ("economy", "oldbot/cogs/migrations")):
            self.write(
                f"legacy_{app}.ini",
                f"[alembic]\nscript_location = legacy_env\nversion_locations = {folder}\n",
            )
            run(
                [ALEMBIC, "-c", f"legacy_{app}.ini", "-x", f"app={app}", "upgrade", "heads"],
                cwd=self.path,
                env={"LEGACY_URL": sync_url(db.url)},
            )
        for statement in ROWS:
            db.execute(statement)

    def develop(self) -> None:
        """The model changes made after the switch."""
        self.append("oldbot/cogs/music/models.py", SONG_PLAYS + PLAYLIST)
        self.append("oldbot/cogs/economy.py", WALLET_FAVOURITE, after="    balance: int = ormar.Integer()\n")
        self.append("oldbot/cogs/economy.py", PURCHASE, after=WALLET_FAVOURITE)

    def upgrade_legacy(self) -> None:
        """``nxalembic upgrade`` while quotes has no revision: the others are upgraded, then it fails."""
        result = self.nxalembic("upgrade", check=False)
        assert result.returncode == 1, result.output
        assert "cog 'quotes' has models but no revisions" in result.stderr, result.output

    def new_revisions(self) -> list[Path]:
        legacy = {self.path / relpath for relpath in LEGACY_REVISIONS}
        return sorted(p for p in self.path.glob("oldbot/**/migrations/*.py") if p not in legacy)


@pytest.fixture(params=BACKENDS)
def oldbot(make_project: Any, request: pytest.FixtureRequest) -> OldBot:
    return OldBot.switched(
        make_project(request.param),
        fresh_database=lambda: make_project(request.param, name="fresh", db_name="fresh").db,
    )


def foreign_keys(
    db: Database, tables: set[str] | None = None
) -> set[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    """(table, columns, referred table, referred columns) of every foreign key, as the database has them."""
    inspector = sa.inspect(db.engine)
    found = set()
    for table in sorted(tables or set(inspector.get_table_names())):
        for fk in inspector.get_foreign_keys(table):
            assert fk["referred_schema"] is None, fk
            found.add(
                (table, tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            )
    return found


EXPECTED_FKS = {
    ("Music.playlists", ("top",), "Music.songs", ("id",)),
    ("economy.wallets", ("favourite",), "Music.songs", ("id",)),
    ("economy.purchases", ("wallet",), "economy.wallets", ("_id",)),
    ("economy.purchases", ("song",), "Music.songs", ("id",)),
    ("quotes.quotes", ("song",), "Music.songs", ("id",)),
}


def has_dotted_index(db: Database) -> bool:
    inspector = sa.inspect(db.engine)
    indexes = inspector.get_indexes("Music.playlists")
    if db.backend == "mysql":  # InnoDB adds an index named after each foreign key: not ours
        fks = {fk["name"] for fk in inspector.get_foreign_keys("Music.playlists")}
        indexes = [i for i in indexes if i["name"] not in fks]
    return [(i["name"], i["column_names"]) for i in indexes] == [("ix_Music.playlists_name", ["name"])]


def old_rows(db: Database) -> dict[str, list[tuple]]:
    with db.engine.connect() as conn:
        return {
            "Music.songs": sorted(
                map(tuple, conn.execute(sa.text('SELECT id, title, genre FROM "Music.songs"')))
            ),
            "economy.wallets": sorted(
                map(tuple, conn.execute(sa.text('SELECT _id, balance FROM "economy.wallets"')))
            ),
        }


OLD_ROWS = {
    "Music.songs": [(1, "Clair de lune", "jazz"), (2, "Paranoid", "rock")],
    "economy.wallets": [("_alice", 10), ("bob", 0)],
}


def assert_zero_drift(bot: OldBot, db: Database | None = None) -> None:
    result = (bot if db is None else bot.on(db)).nxalembic("check", check=False)
    assert result.returncode == 0 and "all cogs: models match their migrations" in result.stdout, (
        result.output
    )


def test_the_whole_walk_from_a_nextcord_ormar_database(oldbot: OldBot) -> None:
    oldbot.build_legacy_database()
    db = oldbot.db
    assert db.versions("alembic.Music") == [MUSIC_2] and db.versions("alembic.economy") == LEGACY["economy"]
    if db.backend == "postgresql":
        assert db.scalar("SELECT count(*) FROM pg_type WHERE typname = 'genre' AND typtype = 'e'") == 1

    # Adopt with configuration only: the legacy heads are found, the adopted cogs have no drift.
    status = oldbot.nxalembic("status", check=False).stdout
    for app, head in LEGACY_HEADS.items():
        assert re.search(rf"^\s*{app}\b.*{head}", status, re.M), status
    for check in alembic_forked(oldbot, *(["-x", f"cog={app}", "check"] for app in LEGACY)):
        assert "No new upgrade operations detected" in check.output

    # Carry on: new models with foreign keys to dotted tables, in the same cog and across cogs.
    oldbot.develop()
    oldbot.nxalembic("migrate")
    written = oldbot.new_revisions()
    assert {p.parent.relative_to(oldbot.path).as_posix() for p in written} == {
        "oldbot/cogs/music/migrations",
        "oldbot/cogs/migrations",
        "oldbot/cogs/quotes/migrations",
    }
    texts = {p: p.read_text() for p in written}
    assert any("'Music.songs.id'" in text for text in texts.values())  # what Alembic writes, not edited
    oldbot.nxalembic("upgrade")
    assert {p: p.read_text() for p in oldbot.new_revisions()} == texts

    assert foreign_keys(db) == EXPECTED_FKS
    assert has_dotted_index(db)
    assert old_rows(db) == OLD_ROWS
    assert db.tables() == OLD_TABLES | NEW_TABLES | VERSION_TABLES
    assert_zero_drift(oldbot)

    # Down one cog at a time (referencing cogs first), then up again.
    for cog in ("economy", "quotes", "Music"):
        oldbot.nxalembic("downgrade", cog)
    assert db.versions("alembic.Music") == [MUSIC_2] and db.versions("alembic.economy") == LEGACY["economy"]
    assert db.versions("alembic.quotes") == []
    assert db.tables() - VERSION_TABLES == OLD_TABLES and foreign_keys(db) == set()
    assert old_rows(db) == OLD_ROWS
    oldbot.nxalembic("upgrade")
    assert foreign_keys(db) == EXPECTED_FKS and old_rows(db) == OLD_ROWS
    assert_zero_drift(oldbot)

    # A new install: an empty database built from the same revision files.
    assert oldbot.fresh_database is not None
    fresh = oldbot.fresh_database()
    oldbot.on(fresh).nxalembic("upgrade")
    assert fresh.tables() == db.tables()
    assert foreign_keys(fresh) == EXPECTED_FKS
    assert_zero_drift(oldbot, db=fresh)


#: The offline generator on every backend: it renders from the revision files, not from the
#: database, and its revisions meet each dialect's DDL here only.  Stock ``alembic revision
#: --autogenerate`` on SQLite alone (batch mode, the cog chosen with ``-x cog=`` in Nextcord-Ormar's
#: layout): on PostgreSQL and MariaDB its revisions are the ones the walk above writes and runs on
#: every backend (``nxalembic migrate`` autogenerates each cog through the same env.py and
#: ``alembic.command.revision``), down and up again and on a new database.
GENERATED = [
    ("sqlite+aiosqlite", "alembic revision --autogenerate"),
    *((backend, "nxalembic migrate --offline") for backend in BACKENDS),
]


@pytest.mark.parametrize("oldbot,generator", GENERATED, indirect=["oldbot"])
def test_revisions_generated_with_foreign_keys_to_dotted_tables_run_unchanged(
    oldbot: OldBot, generator: str
) -> None:
    """create_table with foreign keys (one cog and across cogs), add_column with one (batch on SQLite).

    Backends and generators: see GENERATED."""
    oldbot.upgrade_legacy()  # the legacy revision files build a new database, rename included
    oldbot.develop()
    if generator == "nxalembic migrate --offline":
        oldbot.nxalembic("migrate", "--offline")
    else:
        alembic_forked(  # in a row, in one interpreter start
            oldbot,
            *(
                ["-x", f"cog={cog}", "revision", "--autogenerate", "-m", "more"]
                for cog in ("Music", "economy", "quotes")
            ),
        )
    texts = {p: p.read_text() for p in oldbot.new_revisions()}
    assert len(texts) == 3 and any("'Music.songs.id'" in text for text in texts.values())

    oldbot.nxalembic("upgrade")

    assert {p: p.read_text() for p in oldbot.new_revisions()} == texts
    assert foreign_keys(oldbot.db) == EXPECTED_FKS and has_dotted_index(oldbot.db)
    assert_zero_drift(oldbot)
    # create_foreign_key's reverse, drop_constraint, runs too (batch mode on SQLite)
    oldbot.nxalembic("downgrade", "economy")
    assert foreign_keys(oldbot.db, {"economy.wallets"}) == set()
    assert [c["name"] for c in sa.inspect(oldbot.db.engine).get_columns("economy.wallets")] == [
        "_id",
        "balance",
    ]


#: Run by Nextcord-Ormar on SQLite: its foreign key to 'Music.songs.id' was silently left out.
LEGACY_PLAYLISTS = legacy_revision(
    "d4e5f6a1b2c3",
    MUSIC_2,
    """
    op.create_table('Music.playlists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('top', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['top'], ['Music.songs.id'], name='fk_Music.playlists_Music.songs_id_top'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_Music.playlists_name'), 'Music.playlists', ['name'], unique=False)
""",
    """
    op.drop_index(op.f('ix_Music.playlists_name'), table_name='Music.playlists')
    op.drop_table('Music.playlists')
""",
)


def test_foreign_keys_sqlite_left_out_are_named_by_check_and_added_by_migrate(make_project: Any) -> None:
    bot = OldBot.switched(make_project("sqlite+aiosqlite"))
    bot.write("oldbot/cogs/music/migrations/d4e5f6a1b2c3_playlists.py", LEGACY_PLAYLISTS)
    bot.build_legacy_database()
    bot.db.execute("INSERT INTO \"Music.playlists\" (id, name, top) VALUES (7, 'calm', 1)")
    assert foreign_keys(bot.db, {"Music.playlists"}) == set()  # what Nextcord-Ormar left
    bot.append("oldbot/cogs/music/models.py", PLAYLIST)

    check = bot.cog("Music", "check", check=False)
    assert check.returncode != 0 and "add_fk" in check.output and "Music.playlists" in check.output, (
        check.output
    )
    check = bot.nxalembic("check", check=False)
    assert check.returncode != 0, check.output
    assert (
        "Music: models differ from migrations: add_fk fk_Music.playlists_Music.songs_id_top on "
        "Music.playlists" in check.stdout
    ), check.output

    bot.nxalembic("migrate", "--cog", "Music")
    [new] = [p for p in bot.new_revisions() if not p.name.startswith("d4e5f6a1b2c3")]
    text = new.read_text()
    assert (
        "create_foreign_key('fk_Music.playlists_Music.songs_id_top', 'Music.songs', ['top'], ['id'])" in text
    ), text
    bot.nxalembic("upgrade", "--cog", "Music")

    assert new.read_text() == text
    assert foreign_keys(bot.db, {"Music.playlists"}) == {
        ("Music.playlists", ("top",), "Music.songs", ("id",))
    }
    assert has_dotted_index(bot.db)
    with bot.db.engine.connect() as conn:
        assert list(conn.execute(sa.text('SELECT id, name, top FROM "Music.playlists"'))) == [(7, "calm", 1)]
    assert old_rows(bot.db) == OLD_ROWS
    assert "No new upgrade operations detected" in bot.cog("Music", "check").output

    # A new database from the same files: the old revision now makes the constraint, the new one
    # keeps it once.
    fresh = Database(bot.db.url.replace("bot.db", "fresh.db"))
    bot.on(fresh).nxalembic("upgrade", "--cog", "Music")
    [fk] = sa.inspect(fresh.engine).get_foreign_keys("Music.playlists")
    assert (fk["name"], fk["referred_table"]) == ("fk_Music.playlists_Music.songs_id_top", "Music.songs")
    assert "No new upgrade operations detected" in bot.on(fresh).cog("Music", "check").output
    fresh.dispose()


def test_rename_hints_take_dotted_table_names_whole(make_project: Any) -> None:
    """``--rename Music.playlists:Music.mixes`` and ``--rename Music.songs.title:name``: the table
    names are matched whole against the cog's tables, never split on their dots."""
    bot = OldBot.switched(make_project("sqlite+aiosqlite"))
    bot.upgrade_legacy()
    bot.develop()
    bot.nxalembic("migrate")
    bot.nxalembic("upgrade")
    bot.db.execute("INSERT INTO \"Music.songs\" (id, title, genre) VALUES (1, 'Clair de lune', 'jazz')")
    bot.db.execute("INSERT INTO \"Music.playlists\" (id, name, top) VALUES (7, 'calm', 1)")
    models = bot.path / "oldbot/cogs/music/models.py"
    models.write_text(
        models.read_text()
        .replace('tablename="Music.playlists"', 'tablename="Music.mixes"')
        .replace("title: str = ormar.String(max_length=200)", "name: str = ormar.String(max_length=200)")
    )

    bot.nxalembic(
        "migrate",
        "--cog",
        "Music",
        "--rename",
        "Music.playlists:Music.mixes",
        "--rename",
        "Music.songs.title:name",
    )
    [rename] = [p for p in bot.new_revisions() if "rename" in p.name]
    text = rename.read_text()
    assert "op.rename_table('Music.playlists', 'Music.mixes')" in text and "new_column_name='name'" in text, (
        text
    )
    bot.nxalembic("upgrade")

    with bot.db.engine.connect() as conn:
        assert list(conn.execute(sa.text('SELECT id, name, genre FROM "Music.songs"'))) == [
            (1, "Clair de lune", "jazz")
        ]
        assert list(conn.execute(sa.text('SELECT id, name, top FROM "Music.mixes"'))) == [(7, "calm", 1)]
    assert ("Music.mixes", ("top",), "Music.songs", ("id",)) in foreign_keys(bot.db)
    assert_zero_drift(bot)
