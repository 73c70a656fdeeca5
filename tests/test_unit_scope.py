"""Fast tier: the per-cog scope (which tables a cog's run may see and touch), where each cog's
revisions and version table live, and the shared comparison's verdict.

In-process with real objects: SQLAlchemy tables in a real MetaData, a real :class:`BotSchema`,
Alembic's own operation objects and migration context on a SQLite file.  No subprocess, no bot.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate.api import RevisionContext
from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import mysql, postgresql, sqlite

from nxalembic_templates import headcheck, scope
from nxalembic_templates.discovery import BotSchema, Cog
from nxalembic_templates.errors import NXAlembicError
from nxalembic_templates.request import CogRequest, RenameHint
from nxalembic_templates.rewrite import StatementByStatementNote
from nxalembic_templates.settings import Settings
from unit_fixtures import fixture_connection  # noqa: F401  (the connection fixture)


def make_metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("music_artists", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "music_songs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("artist", sa.Integer, sa.ForeignKey("music_artists.id")),
    )
    sa.Table(
        "games_scores",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("song", sa.Integer, sa.ForeignKey("music_songs.id")),
        sa.Column("artist", sa.Integer, sa.ForeignKey("music_artists.id")),
    )
    sa.Table("scores", metadata, sa.Column("id", sa.Integer, primary_key=True), schema="stats")
    return metadata


def make_schema(root: Path, settings: Settings | None = None, **cogs: list[str]) -> BotSchema:
    """A bot with *cogs* (name -> its tables of :func:`make_metadata`), sources under *root*/bot."""
    metadata = make_metadata()
    settings = settings or Settings(path=root / "nxalembic.ini", module="bot.main")
    made = {}
    for name, tables in cogs.items():
        directory = root / "bot" / "cogs" / name
        directory.mkdir(parents=True, exist_ok=True)
        made[name] = Cog(
            name=name,
            extension=f"bot.cogs.{name}",
            directory=directory,
            models=(),
            tables=tuple(metadata.tables[t] for t in tables),
        )
    return BotSchema(
        settings=settings, bot=None, cogs=made, extensions_without_models=(), metadata=(metadata,)
    )


class OnATable(ops.MigrateOperation):
    """An operation of a custom comparator: a table name, no schema attribute."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def reverse(self) -> OnATable:
        return self


@pytest.fixture
def bot(tmp_path: Path) -> BotSchema:
    return make_schema(
        tmp_path,
        music=["music_songs", "music_artists"],
        games=["games_scores", "stats.scores"],
    )


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


# -- layout --------------------------------------------------------------------------------------


def test_layout_default_folders_and_version_tables(bot: BotSchema, scripts: Path) -> None:
    found = headcheck.CogLayout.of(bot, scripts)
    assert found.locations == {
        "music": (scripts / "versions" / "music").resolve(),
        "games": (scripts / "versions" / "games").resolve(),
    }
    assert found.version_tables == {"music": "alembic_version_music", "games": "alembic_version_games"}
    assert found.by_folder == {found.locations["music"]: ["music"], found.locations["games"]: ["games"]}
    # worked out once per schema and scripts folder
    assert headcheck.CogLayout.of(bot, scripts) is found
    assert headcheck.CogLayout.of(bot, scripts / "other") is not found


def test_layout_groups_cogs_that_would_share_a_folder(tmp_path: Path, scripts: Path) -> None:
    settings = Settings(
        path=tmp_path / "nxalembic.ini", module="bot.main", version_location="{here}/revisions/{cog_dir}"
    )
    bot = make_schema(tmp_path, settings, music=["music_songs"], games=["games_scores"])
    # two cogs of one package: the same {cog_dir}
    shared = tmp_path / "bot" / "cogs" / "music"
    bot.cogs["games"] = Cog("games", "bot.cogs.games", shared, (), bot.cogs["games"].tables)
    found = headcheck.CogLayout.of(bot, scripts)
    assert list(found.by_folder.values()) == [["music", "games"]]
    with pytest.raises(NXAlembicError) as error:
        scope.CogScope.for_cog(bot, "games", scripts)
    assert str(error.value) == (
        f"cogs 'games' and 'music' would share the revisions folder {found.locations['music']}; "
        "put {cog} into version_location in nxalembic.ini"
    )


@pytest.mark.parametrize(
    ("pattern", "held"),
    [
        ("{cog_dir}", "the source folder of cog 'music'"),
        ("{here}/bot/cogs", "a folder that contains the sources of cog 'music'"),
        ("{here}", "a folder that contains the sources of cog 'music'"),
        ("{script_location}", "the scripts folder"),
    ],
)
def test_layout_refuses_a_revisions_folder_holding_sources(
    tmp_path: Path, scripts: Path, pattern: str, held: str
) -> None:
    settings = Settings(path=tmp_path / "nxalembic.ini", module="bot.main", version_location=pattern)
    bot = make_schema(tmp_path, settings, music=["music_songs"])
    with pytest.raises(NXAlembicError) as error:
        headcheck.CogLayout.of(bot, scripts)
    message = str(error.value)
    assert held in message
    assert "revisions of cog 'music'" in message
    assert f"version_location = {settings.version_location} in nxalembic.ini" in message
    assert message.endswith(
        "Alembic would load those files as revisions: use a folder of their own, "
        "e.g. {cog_dir}/migrations or {script_location}/versions/{cog}"
    )
    # an error is not kept: the next call checks again
    assert not bot.derived


def test_layout_checks_every_cog(tmp_path: Path, scripts: Path) -> None:
    # music's folder is fine, games' is its source folder
    settings = Settings(
        path=tmp_path / "nxalembic.ini", module="bot.main", version_location="{here}/{cog}_src"
    )
    bot = make_schema(tmp_path, settings, music=["music_songs"], games=["games_scores"])
    games = bot.cogs["games"]
    bot.cogs["games"] = Cog("games", games.extension, tmp_path / "games_src", (), games.tables)
    assert list(bot.cogs) == ["music", "games"]
    with pytest.raises(
        NXAlembicError, match=r"revisions of cog 'games' in .* the source folder of cog 'games'"
    ):
        headcheck.CogLayout.of(bot, scripts)


def test_layout_scripts_folder_message_names_env_py(tmp_path: Path, scripts: Path) -> None:
    settings = Settings(
        path=tmp_path / "nxalembic.ini", module="bot.main", version_location="{script_location}"
    )
    bot = make_schema(tmp_path, settings, music=["music_songs"])
    with pytest.raises(NXAlembicError, match=r"the scripts folder .*migrations \(env\.py\)"):
        headcheck.CogLayout.of(bot, scripts)


def test_layout_folder_beside_sources_is_fine(tmp_path: Path, scripts: Path) -> None:
    settings = Settings(path=tmp_path / "nxalembic.ini", module="bot.main", version_location="{cog_dir}/mig")
    bot = make_schema(tmp_path, settings, music=["music_songs"], games=["games_scores"])
    found = headcheck.CogLayout.of(bot, scripts)
    assert found.locations["games"] == tmp_path / "bot" / "cogs" / "games" / "mig"


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_nested_revisions(tmp_path: Path) -> None:
    folder = tmp_path / "versions"
    write(folder / "a1_top.py")
    assert headcheck.nested_revisions(folder) is None
    assert headcheck.nested_revisions(tmp_path / "missing") is None
    # what Alembic does not load does not count, nor do bytecode caches
    write(folder / "sub" / "__init__.py")
    write(folder / "sub" / ".#lock.py")
    write(folder / "sub" / "notes.txt")
    write(folder / "__pycache__" / "a1_top.cpython-311.pyc")
    write(folder / "sub" / "__pycache__" / "x.pyc")
    assert headcheck.nested_revisions(folder) is None
    write(folder / "zz" / "b2.py")
    write(folder / "sub" / "c3.py")
    write(folder / "sub" / "b2.py")
    # the first subfolder (in name order), its revision files in name order
    assert headcheck.nested_revisions(folder) == (folder / "sub", ["b2.py", "c3.py"])


def test_nested_revisions_sourceless(tmp_path: Path) -> None:
    folder = tmp_path / "versions"
    write(folder / "__pycache__" / "a1.cpython-311.pyc")
    write(folder / "sub" / "x.pyo")
    # sourceless: .pyc / .pyo count; the folder's own __pycache__ does not
    assert headcheck.nested_revisions(folder, sourceless=True) == (folder / "sub", ["x.pyo"])
    assert headcheck.nested_revisions(folder) is None
    (folder / "sub" / "x.pyo").unlink()
    write(folder / "sub" / "__pycache__" / "y.pyc")
    assert headcheck.nested_revisions(folder, sourceless=True) == (folder / "sub" / "__pycache__", ["y.pyc"])
    assert headcheck.nested_revisions(folder) is None


def test_revision_file_patterns() -> None:
    for name in ("a1.py", "x.py", "__init__x.py.py"):
        assert headcheck.REVISION_FILE.match(name) or name.startswith("__init__")
    assert headcheck.REVISION_FILE.match("__init__.py") is None
    assert headcheck.REVISION_FILE.match(".#a1.py") is None
    assert headcheck.REVISION_FILE.match("a1.pyc") is None
    assert headcheck.SOURCELESS_REVISION_FILE.match("a1.pyc")
    assert headcheck.SOURCELESS_REVISION_FILE.match("a1.pyo")
    assert headcheck.SOURCELESS_REVISION_FILE.match("a1.pyx") is None


# -- scope: the hooks ------------------------------------------------------------------------------


def test_all_but_is_a_view_without_one_key() -> None:
    mapping = {"a": Path("/a"), "b": Path("/b"), "c": Path("/c")}
    view = scope._AllBut(mapping, "b")
    assert dict(view) == {"a": Path("/a"), "c": Path("/c")}
    assert len(view) == 2
    assert view["a"] == Path("/a")
    with pytest.raises(KeyError) as error:
        view["b"]
    assert error.value.args == ("b",)
    with pytest.raises(KeyError):
        view["zz"]
    assert "b" not in view
    assert len(scope._AllBut(mapping, "zz")) == 3
    mapping["d"] = Path("/d")  # a view, not a copy
    assert list(view) == ["a", "c", "d"]


def test_user_hooks_are_taken_out_of_the_options() -> None:
    def include_name(*_: Any) -> bool:
        return True

    options: dict[str, Any] = {"include_name": include_name, "process_revision_directives": None, "x": 1}
    hooks = scope.UserHooks.taken_from(options)
    assert hooks == scope.UserHooks(include_name=include_name)
    assert options == {"x": 1}
    assert scope.UserHooks.taken_from({}) == scope.UserHooks()


def cog_scope(bot: BotSchema, scripts: Path, name: str = "music", **request: Any) -> scope.CogScope:
    return scope.CogScope.for_cog(bot, name, scripts, CogRequest(cog=name, **request) if request else None)


def test_cog_scope_names(bot: BotSchema, scripts: Path) -> None:
    music = scope.CogScope.for_cog(bot, "music", scripts)
    assert music.version_table == "alembic_version_music"
    assert music.version_location == (scripts / "versions" / "music").resolve()
    assert music.request == CogRequest(cog="music")
    assert dict(music.other_locations) == {"games": (scripts / "versions" / "games").resolve()}
    asked = CogRequest(cog="music", command="check")
    assert scope.CogScope.for_cog(bot, "music", scripts, asked).request is asked
    with pytest.raises(NXAlembicError, match="unknown cog 'nope'"):
        scope.CogScope.for_cog(bot, "nope", scripts)


def test_include_name_reflects_own_tables_only(bot: BotSchema, scripts: Path) -> None:
    games = cog_scope(bot, scripts, "games")
    assert games.include_name("games_scores", "table", {"schema_name": None})
    assert games.include_name("scores", "table", {"schema_name": "stats"})
    assert not games.include_name("scores", "table", {"schema_name": None})
    assert not games.include_name("music_songs", "table", {"schema_name": None})
    assert not games.include_name("alembic_version_games", "table", {})
    # schemas: the default one, and those of the own tables
    assert games.schemas == frozenset({"stats"})
    assert games.include_name(None, "schema", {})
    assert games.include_name("stats", "schema", {})
    assert not games.include_name("other", "schema", {})
    assert cog_scope(bot, scripts, "music").schemas == frozenset()
    # columns, indexes...: their table was filtered already
    assert games.include_name("id", "column", {"table_name": "music_songs"})


def test_include_object_compares_own_tables_and_never_drops(bot: BotSchema, scripts: Path) -> None:
    music = cog_scope(bot, scripts)
    tables = bot.metadata[0].tables
    songs, scores = tables["music_songs"], tables["games_scores"]
    assert music.include_object(songs, "music_songs", "table", False, None)
    assert music.include_object(songs, "music_songs", "table", True, songs)
    # in the database, not in the models: that would be a drop
    assert not music.include_object(songs, "music_songs", "table", True, None)
    assert not music.include_object(scores, "games_scores", "table", False, None)
    # what belongs to a table follows its table
    assert music.include_object(songs.c.id, "id", "column", False, None)
    assert not music.include_object(scores.c.id, "id", "column", False, None)
    assert not music.include_object(tables["stats.scores"].c.id, "id", "column", False, None)
    # the schema is part of the name: games owns stats.scores, not a scores table in the default schema
    games = cog_scope(bot, scripts, "games")
    stats_scores = tables["stats.scores"]
    plain_scores = sa.Table("scores", sa.MetaData(), sa.Column("id", sa.Integer))
    assert games.include_object(stats_scores, "scores", "table", False, None)
    assert not games.include_object(plain_scores, "scores", "table", False, None)
    assert games.include_object(stats_scores.c.id, "id", "column", False, None)
    assert not games.include_object(plain_scores.c.id, "id", "column", False, None)
    # an object without a table (none today) is left to Alembic
    assert music.include_object(object(), "x", "something", False, None)


def test_env_py_filters_apply_on_top_and_never_see_foreign_tables(bot: BotSchema, scripts: Path) -> None:
    music = cog_scope(bot, scripts)
    seen: list[tuple[Any, ...]] = []

    def include_name(name: Any, type_: str, parents: dict[str, Any]) -> Any:
        seen.append(("name", name, type_, parents))
        return 0 if name == "music_artists" else "yes"  # any truth value

    def include_object(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> Any:
        seen.append(("object", obj, name, type_, reflected, compare_to))
        return name != "music_artists"

    music.user_hooks = scope.UserHooks(include_name=include_name, include_object=include_object)
    tables = bot.metadata[0].tables
    assert music.include_name("music_songs", "table", {"schema_name": None}) is True
    assert music.include_name("music_artists", "table", {"schema_name": None}) is False
    assert music.include_name("games_scores", "table", {"schema_name": None}) is False
    songs = tables["music_songs"]
    assert music.include_object(songs, "music_songs", "table", True, songs) is True
    assert music.include_object(tables["music_artists"], "music_artists", "table", False, None) is False
    assert not music.include_object(tables["games_scores"], "games_scores", "table", False, None)
    assert seen == [
        ("name", "music_songs", "table", {"schema_name": None}),
        ("name", "music_artists", "table", {"schema_name": None}),
        ("object", songs, "music_songs", "table", True, songs),
        ("object", tables["music_artists"], "music_artists", "table", False, None),
    ]


@pytest.mark.parametrize(
    ("dialect", "longest"), [(postgresql.dialect(), 63), (mysql.dialect(), 64), (sqlite.dialect(), 9999)]
)
def test_check_dialect_fits_the_version_table_and_its_primary_key(
    bot: BotSchema, scripts: Path, dialect: Any, longest: int
) -> None:
    music = cog_scope(bot, scripts)
    limit = longest - len("_pkc")
    music.version_table = "v" * limit
    music.check_dialect(dialect)
    music.version_table = "v" * (limit + 1)
    with pytest.raises(NXAlembicError) as error:
        music.check_dialect(dialect)
    assert str(error.value) == (
        f"cog 'music': version table {music.version_table!r} is {limit + 1} characters long and "
        f"{dialect.name} allows {limit} (its primary key <table>_pkc must fit in {longest}); shorten "
        "version_table in nxalembic.ini, or the cog name with __nxalembic_cog__ = '...'"
    )


def test_mariadb_has_mysqls_limit(bot: BotSchema, scripts: Path) -> None:
    music = cog_scope(bot, scripts)
    dialect = mysql.dialect()
    dialect.name = "mariadb"
    music.version_table = "v" * 61
    with pytest.raises(NXAlembicError, match="mariadb allows 60"):
        music.check_dialect(dialect)


def test_referenced_tables_are_other_cogs_tables(bot: BotSchema, scripts: Path) -> None:
    games = cog_scope(bot, scripts, "games")
    # songs and artists (artists twice: once)
    assert sorted(t.name for t in games.referenced_tables()) == ["music_artists", "music_songs"]
    assert cog_scope(bot, scripts, "music").referenced_tables() == []
    # an unresolvable reference has nothing to stand in for
    orphans = sa.Table(
        "games_orphans",
        bot.metadata[0],
        sa.Column("other", sa.Integer, sa.ForeignKey("nowhere.id")),
        sa.Column("song", sa.Integer, sa.ForeignKey("music_songs.id")),
        sa.Column("own", sa.Integer, sa.ForeignKey("stats.scores.id")),
    )
    old = bot.cogs["games"]
    bot.cogs["games"] = Cog(old.name, old.extension, old.directory, (), (orphans, *old.tables))
    games = cog_scope(bot, scripts, "games")
    assert sorted(t.name for t in games.referenced_tables()) == ["music_artists", "music_songs"]


def test_target_metadata_lists_own_tables_in_their_metadatas_order(bot: BotSchema, scripts: Path) -> None:
    tables = bot.metadata[0].tables
    music = cog_scope(bot, scripts)
    views = music.target_metadata()
    assert len(views) == 1
    # artists first: songs reference them (the order the whole MetaData sorts in)
    assert views[0].sorted_tables == [tables["music_artists"], tables["music_songs"]]
    assert [t.name for t in views[0].tables.values()] == ["music_artists", "music_songs"]
    # the tables themselves, not copies
    assert views[0].tables["music_songs"] is tables["music_songs"]


def test_metadata_views_one_per_metadata(bot: BotSchema) -> None:
    other = sa.MetaData()
    extra = sa.Table("extra", other, sa.Column("id", sa.Integer, primary_key=True))
    tables = bot.metadata[0].tables
    views = scope.metadata_views(bot, [tables["music_songs"], extra, tables["music_artists"]])
    assert [list(v.tables) for v in views] == [["music_artists", "music_songs"], ["extra"]]
    # the sort order of each MetaData is worked out once and kept
    assert ("table order", id(bot.metadata[0])) in bot.derived
    assert scope.metadata_views(bot, []) == []


# -- scope: process_revision_directives ------------------------------------------------------------


def migration_context(
    connection: sa.Connection, scripts: Path, slug: int | None = None
) -> tuple[MigrationContext, io.StringIO]:
    out = io.StringIO()
    config = Config(stdout=out)
    script = ScriptDirectory(str(scripts), truncate_slug_length=slug)
    environment = EnvironmentContext(config, script)
    context = MigrationContext.configure(
        connection, environment_context=environment, opts={"script": script} if slug else {}
    )
    return context, out


def script_of(*upgrade: Any, message: str | None = None) -> ops.MigrationScript:
    return ops.MigrationScript(
        "abc",
        ops.UpgradeOps(ops=list(upgrade)),
        ops.DowngradeOps(ops=[]),
        message=message,
    )


def create(name: str, schema: str | None = None) -> ops.CreateTableOp:
    return ops.CreateTableOp(name, [sa.Column("id", sa.Integer, primary_key=True)], schema=schema)


def test_directives_keep_own_operations_only(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    music = cog_scope(bot, scripts, autogenerate=True, command="revision")
    context, out = migration_context(connection, scripts)
    add = ops.AddColumnOp("music_songs", sa.Column("title", sa.String(), nullable=True))
    foreign_add = ops.AddColumnOp("games_scores", sa.Column("x", sa.String(), nullable=True))
    script = script_of(
        create("music_songs"),
        create("games_scores"),
        ops.DropTableOp("music_artists"),
        ops.ModifyTableOps("music_songs", [add]),
        ops.ModifyTableOps("games_scores", [foreign_add]),
        ops.ModifyTableOps("music_artists", [ops.AddColumnOp("games_scores", sa.Column("y", sa.String()))]),
        StatementByStatementNote(),  # an operation on no table
    )
    directives = [script]
    music.process_revision_directives(context, "abc", directives)
    assert directives == [script]
    kept = script.upgrade_ops.ops
    assert [type(op).__name__ for op in kept] == [
        "CreateTableOp",
        "ModifyTableOps",
        "StatementByStatementNote",
    ]
    assert kept[0].table_name == "music_songs"
    assert kept[1].ops == [add]
    assert script.version_path == str(music.version_location)
    assert script.message == "create_music_songs_and_2_more"
    # the downgrade is the reverse of what is kept
    assert [type(op).__name__ for op in script.downgrade_ops.ops] == [
        "StatementByStatementNote",
        "ModifyTableOps",
        "DropTableOp",
    ]
    assert music.version_location.is_dir()
    assert out.getvalue() == ""


def test_directives_tell_tables_apart_by_schema(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    games = cog_scope(bot, scripts, "games", autogenerate=True, command="check")
    context, _out = migration_context(connection, scripts)
    column = sa.Column("x", sa.String(), nullable=True)
    script = script_of(
        create("scores", schema="stats"),
        create("scores"),
        ops.ModifyTableOps("scores", [ops.AddColumnOp("scores", column, schema="stats")], schema="stats"),
        ops.ModifyTableOps("scores", [ops.AddColumnOp("scores", column)]),
        OnATable("games_scores"),
        OnATable("music_songs"),
    )
    games.process_revision_directives(context, "abc", [script])
    assert [
        (type(op).__name__, op.table_name, getattr(op, "schema", "-")) for op in script.upgrade_ops.ops
    ] == [
        ("CreateTableOp", "scores", "stats"),
        ("ModifyTableOps", "scores", "stats"),
        ("OnATable", "games_scores", "-"),
    ]


def test_directives_slug_length_comes_from_the_script_directory(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    music = cog_scope(bot, scripts, autogenerate=True, command="revision")
    context, _out = migration_context(connection, scripts, slug=20)
    script = script_of(create("music_songs"), create("music_artists"))
    music.process_revision_directives(context, "abc", [script])
    assert script.message == "create_music_songs"
    written = script_of(create("music_songs"), message="my message")
    music.process_revision_directives(context, "abc", [written])
    assert written.message == "my message"


def test_an_empty_autogenerate_revision_writes_no_file(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    music = cog_scope(bot, scripts, autogenerate=True, command="revision")
    context, out = migration_context(connection, scripts)
    directives = [script_of(create("games_scores"))]
    music.process_revision_directives(context, "abc", directives)
    assert directives == []
    assert out.getvalue() == "No changes in schema detected for cog 'music'; no revision written.\n"
    assert not music.version_location.exists()


def test_check_keeps_the_empty_script_and_makes_no_folder(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    music = cog_scope(bot, scripts, autogenerate=True, command="check")
    context, out = migration_context(connection, scripts)
    script = script_of(create("games_scores"))
    directives = [script]
    music.process_revision_directives(context, "abc", directives)
    assert directives == [script]
    assert script.upgrade_ops.is_empty()
    assert script.message == "no_changes"
    assert out.getvalue() == ""
    assert not music.version_location.exists()


def test_a_blank_revision_is_left_as_written(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    music = cog_scope(bot, scripts, autogenerate=False, command="revision")
    context, _out = migration_context(connection, scripts)
    script, second = script_of(create("games_scores")), script_of()
    directives = [script, second]
    music.process_revision_directives(context, "abc", directives)
    assert directives == [script, second]
    assert [op.table_name for op in script.upgrade_ops.ops] == ["games_scores"]
    assert script.message is None
    assert script.version_path == second.version_path == str(music.version_location)
    assert music.version_location.is_dir()


@pytest.mark.parametrize("autogenerate", [True, False])
def test_a_library_calling_alembic_command_revision(
    bot: BotSchema, scripts: Path, connection: sa.Connection, autogenerate: bool
) -> None:
    """No command line: only the running revision command knows whether it autogenerates."""
    music = cog_scope(bot, scripts, command="revision")
    assert music.request.autogenerate is None
    config, script_directory = Config(stdout=io.StringIO()), ScriptDirectory(str(scripts))
    arguments = {"autogenerate": autogenerate, "message": None, "rev_id": "abc", "head": "head"}
    arguments |= {"splice": False, "branch_label": None, "version_path": None, "depends_on": None}
    revision_context = RevisionContext(config, script_directory, arguments)
    context = MigrationContext.configure(
        connection,
        environment_context=EnvironmentContext(config, script_directory),
        opts={"revision_context": revision_context},
    )
    script = script_of(create("games_scores"), create("music_songs"))
    music.process_revision_directives(context, "abc", [script])
    kept = [op.table_name for op in script.upgrade_ops.ops]
    assert kept == (["music_songs"] if autogenerate else ["games_scores", "music_songs"])


def test_env_py_directives_run_first_and_are_filtered(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    music = cog_scope(bot, scripts, autogenerate=True, command="revision")
    calls: list[Any] = []

    def theirs(context: Any, revision: Any, directives: list[ops.MigrationScript]) -> None:
        calls.append((context, revision))
        directives[0].upgrade_ops.ops.append(create("games_scores"))
        directives[0].upgrade_ops.ops.append(create("music_artists"))

    music.user_hooks = scope.UserHooks(process_revision_directives=theirs)
    context, _out = migration_context(connection, scripts)
    script = script_of()
    music.process_revision_directives(context, "rev1", [script])
    assert calls == [(context, "rev1")]
    assert [op.table_name for op in script.upgrade_ops.ops] == ["music_artists"]


def test_drops_are_reported_and_written_on_opt_in(
    bot: BotSchema, scripts: Path, connection: sa.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    connection.exec_driver_sql("CREATE TABLE music_old (id INTEGER PRIMARY KEY)")
    music = cog_scope(bot, scripts, autogenerate=True, command="revision")
    music.history = {"music_old", "music_songs"}
    context, _out = migration_context(connection, scripts)
    directives = [script_of(create("music_songs"))]
    with caplog.at_level("WARNING", logger="nxalembic_templates"):
        music.process_revision_directives(context, "abc", directives)
    assert "table(s) music_old created by this cog's revisions are no longer modelled" in caplog.text
    assert [type(op).__name__ for op in directives[0].upgrade_ops.ops] == ["CreateTableOp"]
    # `check` reports the drop without the opt-in
    music = cog_scope(bot, scripts, autogenerate=True, command="check")
    music.history = {"music_old"}
    script = script_of()
    music.process_revision_directives(context, "abc", [script])
    assert [(type(op).__name__, op.table_name) for op in script.upgrade_ops.ops] == [
        ("DropTableOp", "music_old")
    ]


def test_column_drops_refused_in_revision_only(
    bot: BotSchema, scripts: Path, connection: sa.Connection
) -> None:
    context, _out = migration_context(connection, scripts)

    def dropping() -> ops.MigrationScript:
        title = sa.Column("title", sa.String(), nullable=True)
        drop = ops.DropColumnOp.from_column_and_tablename(None, "music_songs", title)
        return script_of(ops.ModifyTableOps("music_songs", [drop]))

    with pytest.raises(
        NXAlembicError, match=r"^cog 'music': the revision would drop column music_songs\.title"
    ):
        cog_scope(bot, scripts, autogenerate=True, command="revision").process_revision_directives(
            context, "abc", [dropping()]
        )
    cog_scope(bot, scripts, autogenerate=True, command="check").process_revision_directives(
        context, "abc", [dropping()]
    )
    cog_scope(
        bot, scripts, autogenerate=True, command="revision", allow_drops=True
    ).process_revision_directives(context, "abc", [dropping()])


def test_rename_hints_reach_the_rewriter(bot: BotSchema, scripts: Path, connection: sa.Connection) -> None:
    music = cog_scope(
        bot,
        scripts,
        autogenerate=True,
        command="revision",
        renames=(RenameHint("music_songs.title", "name"),),
    )
    context, _out = migration_context(connection, scripts)
    script = script_of(
        ops.ModifyTableOps(
            "music_songs",
            [
                ops.DropColumnOp.from_column_and_tablename(
                    None, "music_songs", sa.Column("title", sa.String(), nullable=True)
                ),
                ops.AddColumnOp("music_songs", sa.Column("name", sa.String(), nullable=True)),
            ],
        )
    )
    music.process_revision_directives(context, "abc", [script])
    (alter,) = script.upgrade_ops.ops  # a plain rename: one op, outside a (SQLite batch) table block
    assert isinstance(alter, ops.AlterColumnOp)
    assert (alter.table_name, alter.column_name, alter.modify_name) == ("music_songs", "title", "name")
    assert script.message == "rename_music_songs_title_to_name"


@pytest.mark.parametrize(("dialect_name", "noted"), [("mysql", True), ("mariadb", True), ("sqlite", False)])
def test_statement_by_statement_note_for_mysql_revisions(
    bot: BotSchema, scripts: Path, connection: sa.Connection, dialect_name: str, noted: bool
) -> None:
    music = cog_scope(bot, scripts, autogenerate=True, command="revision")
    music.target_dialect = dialect_name if dialect_name != "sqlite" else None
    context, _out = migration_context(connection, scripts)
    script = script_of(create("music_songs"), create("music_artists"))
    music.process_revision_directives(context, "abc", [script])
    first = script.upgrade_ops.ops[0]
    assert (type(first).__name__ == "StatementByStatementNote") is noted
    # check writes no file: no note
    music = cog_scope(bot, scripts, autogenerate=True, command="check")
    music.target_dialect = dialect_name
    script = script_of(create("music_songs"), create("music_artists"))
    music.process_revision_directives(context, "abc", [script])
    assert type(script.upgrade_ops.ops[0]).__name__ == "CreateTableOp"


# -- screen: the shared comparison ------------------------------------------------------------------


def test_screen_own_tables_and_target(bot: BotSchema) -> None:
    tables = bot.metadata[0].tables
    both = scope.Screen.of(bot, ["music", "games"])
    assert both.cogs == ("music", "games")
    assert both.own_tables == bot.cogs["music"].table_keys | bot.cogs["games"].table_keys
    assert both.own_tables is both.own_tables  # worked out once
    assert scope.Screen.of(bot, ["games"]).own_tables == bot.cogs["games"].table_keys
    assert [list(v.tables) for v in both.target_metadata()] == [
        # the order the whole MetaData sorts in
        ["music_artists", "stats.scores", "music_songs", "games_scores"]
    ]
    assert both.include_name("scores", "table", {"schema_name": "stats"})
    assert not both.include_name("alembic_version_music", "table", {"schema_name": None})
    assert not scope.Screen.of(bot, ["music"]).include_object(
        tables["games_scores"], "games_scores", "table", False, None
    )
    with pytest.raises(NXAlembicError, match="unknown cog 'nope'"):
        scope.Screen.of(bot, ["music", "nope"])


def test_screen_unchanged_cogs(bot: BotSchema) -> None:
    both = scope.Screen.of(bot, ["music", "games"])
    add = ops.AddColumnOp("music_songs", sa.Column("x", sa.String()))
    assert both.unchanged([]) == {"music", "games"}
    assert both.unchanged([ops.ModifyTableOps("music_songs", [add])]) == {"games"}
    assert both.unchanged([create("scores", schema="stats")]) == {"music"}
    assert both.unchanged([create("music_songs"), create("scores", schema="stats")]) == set()
    # an operation no cog (or no table) can be named for: every cog is compared on its own
    assert both.unchanged([create("scores")]) == set()
    assert both.unchanged([ops.ExecuteSQLOp("SELECT 1")]) == set()
    assert both.unchanged([create("music_songs"), ops.ExecuteSQLOp("SELECT 1")]) == set()

    assert both.unchanged([OnATable("games_scores")]) == {"music"}
