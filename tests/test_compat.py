"""Every private Alembic / SQLAlchemy API the package uses still does what we rely on.

One test per function of ``nxalembic_templates._compat``, run in every CI leg (newest and
oldest supported alembic and SQLAlchemy, see MATRIX_TESTS in the Makefile): an upstream
release that changes one of them fails the test named after it, not a user's migration.
No bot, no nxcog template: plain Alembic script folders written here, real SQLite.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from conftest import write_revision
from nxalembic_templates import _compat

SCRIPT_TEMPLATE = '''"""${message}"""
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''


def scripts_folder(tmp_path: Path, env_py: str = "") -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "script.py.mako").write_text(SCRIPT_TEMPLATE)
    (folder / "env.py").write_text(env_py)
    return folder


def test_load_revisions_yields_every_file_even_two_with_one_id(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path)
    write_revision(folder / "versions", "aaa", None, name="first")
    write_revision(folder / "versions", "aaa", None, name="second")
    script = ScriptDirectory(str(folder), version_locations=[str(folder / "versions")])
    loaded = sorted(Path(s.path).name for s in _compat.load_revisions(script))
    assert loaded == ["aaa_first.py", "aaa_second.py"]  # the revision map would keep only one of them


def test_retarget_points_a_built_script_directory_at_one_folder(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path)
    write_revision(folder / "versions/music", "m1", None)
    write_revision(folder / "versions/economy", "e1", None)
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("version_locations", f"{folder}/versions/music {folder}/versions/economy")
    config.set_main_option("path_separator", "space")
    script = ScriptDirectory.from_config(config)
    assert sorted(script.get_heads()) == ["e1", "m1"]  # built, and its memoized locations used

    _compat.retarget(script, folder / "versions/economy", lambda: _compat.load_revisions(script))
    assert script.get_heads() == ["e1"]
    written = script.generate_revision("e2", "next", head="e1")  # needs the single (memoized) location
    assert written is not None and Path(written.path).parent == folder / "versions/economy"


def test_retarget_takes_a_revision_map_already_loaded(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path)
    write_revision(folder / "versions/music", "m1", None)
    write_revision(folder / "versions/economy", "e1", None)
    loaded = ScriptDirectory(str(folder), version_locations=[str(folder / "versions/economy")]).revision_map
    assert loaded.heads == ("e1",)
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("version_locations", f"{folder}/versions/music")
    config.set_main_option("path_separator", "space")
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == ["m1"]

    _compat.retarget(script, folder / "versions/economy", loaded)
    assert script.revision_map is loaded and script.get_heads() == ["e1"]
    written = script.generate_revision("e2", "next", head="e1")
    assert written is not None and Path(written.path).parent == folder / "versions/economy"
    assert loaded.get_revision("e2") is written  # the shared map learns the new revision


def test_metadata_view_lists_tables_in_place_in_the_order_given() -> None:
    metadata = sa.MetaData(naming_convention={"ix": "ix_%(column_0_label)s"})
    users = sa.Table("users", metadata, sa.Column("id", sa.Integer, primary_key=True))
    songs = sa.Table(
        "music.songs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.ForeignKey("users.id")),
    )
    plays = sa.Table("plays", metadata, sa.Column("song", sa.ForeignKey("music.songs.id")), schema="stats")

    view = _compat.metadata_view([plays, songs], metadata)
    assert list(view.tables) == ["stats.plays", "music.songs"]
    assert view.tables["music.songs"] is songs and songs.metadata is metadata  # listed, not copied or moved
    assert view.sorted_tables == [plays, songs]  # the order given, not sorted anew
    assert view.naming_convention == metadata.naming_convention
    assert {fk.column.table for fk in songs.foreign_keys} == {users}  # still resolves on its own MetaData
    assert list(metadata.tables) == ["users", "music.songs", "stats.plays"]
    # what autogenerate does with target_metadata: list, sort, compare against a database
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"target_metadata": view})
        from alembic.autogenerate import compare_metadata

        diffs = compare_metadata(context, view)
    assert [(d[0], d[1].name) for d in diffs] == [("add_table", "plays"), ("add_table", "music.songs")]


def test_upgrade_steps_run_the_chain_from_base_to_the_heads(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path)
    write_revision(folder / "versions", "r1", None, "op.create_table('one', sa.Column('id', sa.Integer))")
    write_revision(folder / "versions", "r2", "r1", "op.create_table('two', sa.Column('id', sa.Integer))")
    script = ScriptDirectory(str(folder), version_locations=[str(folder / "versions")])
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"fn": lambda rev, _ctx: _compat.upgrade_steps(script, rev)}
        )
        with Operations.context(context), context.begin_transaction():
            context.run_migrations()
        assert {"one", "two"} <= set(sa.inspect(connection).get_table_names())
        assert context.get_current_heads() == ("r2",)


def test_operations_as_op_makes_our_instance_what_op_calls_reach() -> None:
    from alembic import op

    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        operations = Operations(MigrationContext.configure(connection))
        seen: list[str] = []
        operations.create_table = lambda name, *columns, **kw: seen.append(name)  # type: ignore[method-assign]
        with _compat.operations_as_op(operations):
            op.create_table("songs")
        assert seen == ["songs"]
        with pytest.raises((NameError, AttributeError)):  # removed again afterwards
            op.create_table("after")


@pytest.mark.parametrize(
    "a, b, same",
    [
        (sa.Integer(), sa.BigInteger(), True),
        (sa.String(40), sa.Text(), True),
        (sa.VARCHAR(10), sa.String(), True),
        (sa.String(40), sa.Integer(), False),
        (sa.Boolean(), sa.Integer(), False),
    ],
)
def test_type_affinity_groups_the_types_a_rename_may_keep(
    a: sa.types.TypeEngine, b: sa.types.TypeEngine, same: bool
) -> None:
    assert (_compat.type_affinity(a) is _compat.type_affinity(b)) is same


RECORDING_ENV = """
import sqlalchemy as sa
from alembic import context
from conftest import write_revision
from nxalembic_templates import _compat

def record(migration_context, revision, directives):
    context.config.attributes["seen"].append(_compat.revision_command_autogenerate(migration_context))
    if context.config.attributes["write_no_file"]:
        directives[:] = []

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=sa.MetaData(),
                      process_revision_directives=record)
    with context.begin_transaction():
        context.run_migrations()
"""


def test_revision_command_autogenerate_tells_how_revision_was_called(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path, RECORDING_ENV)
    (folder / "versions").mkdir()
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'db.sqlite'}")
    config.set_main_option("revision_environment", "true")  # env.py runs for a blank revision too
    config.attributes.update(seen=[], write_no_file=True)
    command.revision(config, message="auto", autogenerate=True)
    command.revision(config, message="blank")
    config.attributes["write_no_file"] = False  # check needs the (empty) script to say "no changes"
    command.check(config)
    assert config.attributes["seen"] == [True, False, True]
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:  # outside a revision command: nothing to tell
        assert _compat.revision_command_autogenerate(MigrationContext.configure(connection)) is None


def test_dotted_table_targets_make_music_songs_id_the_table_music_songs() -> None:
    """create_table, batch create_foreign_key and a batch recreate keep a foreign key to the table
    'music.songs' (not schema 'music', which SQLite would silently leave out); a target that is
    not a known table ('other.things.id') still goes to Alembic as before; the hook is gone after."""
    engine = sa.create_engine("sqlite://")
    asked: list[str] = []

    def is_table(name: str, connection: object) -> bool:
        asked.append(name)
        return connection is not None and sa.inspect(connection).has_table(name)

    def fks(connection: sa.Connection, table: str) -> list[tuple[str | None, str]]:
        return [
            (fk["referred_schema"], fk["referred_table"])
            for fk in sa.inspect(connection).get_foreign_keys(table)
        ]

    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        with _compat.dotted_table_targets(is_table):
            op.create_table("music.songs", sa.Column("id", sa.Integer, primary_key=True))
            op.create_table(
                "music.playlists",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("top", sa.Integer),
                sa.ForeignKeyConstraint(["top"], ["music.songs.id"], name="fk_top"),
            )
            op.create_table(
                "music.albums", sa.Column("id", sa.Integer, primary_key=True), sa.Column("song", sa.Integer)
            )
            with op.batch_alter_table("music.albums") as batch:
                batch.create_foreign_key("fk_song", "music.songs", ["song"], ["id"])
            with op.batch_alter_table("music.playlists", recreate="always") as batch:
                batch.add_column(sa.Column("name", sa.String(20)))
            op.create_table(
                "other_things",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("x", sa.Integer),
                sa.ForeignKeyConstraint(["x"], ["other.things.id"]),
            )
        assert fks(connection, "music.playlists") == [(None, "music.songs")]
        assert fks(connection, "music.albums") == [(None, "music.songs")]
        assert fks(connection, "other_things") == []  # schema 'other', as Alembic reads it
        assert "music.songs" in asked and "other.things" in asked
        asked.clear()
        op.create_table(
            "after",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("top", sa.Integer),
            sa.ForeignKeyConstraint(["top"], ["music.songs.id"]),
        )
        assert asked == [] and fks(connection, "after") == []  # Alembic's own reading again


# -- runner --


def test_configured_options_are_what_configure_was_given() -> None:
    """``compare.screened`` reads the hooks and the target Alembic runs with from the context."""
    metadata = sa.MetaData()

    def include_name(*_: object) -> bool:
        return True

    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        opts = {"include_name": include_name, "target_metadata": metadata}
        context = MigrationContext.configure(connection, opts=opts)
        options = _compat.configured_options(context)
    engine.dispose()
    assert options["include_name"] is include_name and options["target_metadata"] is metadata
    assert options.get("include_object") is None


def test_dotted_table_targets_hold_in_two_threads_migrating_at_once() -> None:
    """Two threads each inside their own block: each reads dotted targets with its own *is_table*,
    one leaving its block does not undo the other's, and after both Alembic's own reading is back.

    The steps are ordered with events (A enters, B enters, A migrates and leaves, B migrates and
    leaves): a block that swaps the class's methods and puts back what it found fails all three."""
    asked: dict[str, list[str]] = {"a": [], "b": []}
    found: dict[str, object] = {}
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def is_table_of(thread: str) -> Callable[[str, object], bool]:
        def is_table(name: str, connection: object) -> bool:
            asked[thread].append(name)
            return connection is not None and sa.inspect(connection).has_table(name)

        return is_table

    def migrate(thread: str) -> list[tuple[str | None, str]]:
        with sa.create_engine("sqlite://").begin() as connection:
            op = Operations(MigrationContext.configure(connection))
            op.create_table("music.songs", sa.Column("id", sa.Integer, primary_key=True))
            op.create_table(
                "music.playlists",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("top", sa.Integer),
                sa.ForeignKeyConstraint(["top"], ["music.songs.id"]),
            )
            return [
                (fk["referred_schema"], fk["referred_table"])
                for fk in sa.inspect(connection).get_foreign_keys("music.playlists")
            ]

    def run(thread: str, body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:  # reported by the main thread
            found[f"{thread} error"] = exc
            for event in (a_in, b_in, a_out):
                event.set()

    def thread_a() -> None:
        with _compat.dotted_table_targets(is_table_of("a")):
            a_in.set()
            assert b_in.wait(30)
            found["a"] = migrate("a")
        a_out.set()

    def thread_b() -> None:
        assert a_in.wait(30)
        with _compat.dotted_table_targets(is_table_of("b")):
            b_in.set()
            assert a_out.wait(30)
            found["b"] = migrate("b")

    threads = [threading.Thread(target=run, args=(n, f)) for n, f in (("a", thread_a), ("b", thread_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not [key for key in found if key.endswith("error")], found
    assert found["a"] == [(None, "music.songs")] and asked["a"] and set(asked["a"]) == {"music.songs"}
    assert found["b"] == [(None, "music.songs")] and asked["b"] and set(asked["b"]) == {"music.songs"}
    asked["a"].clear()
    asked["b"].clear()
    assert migrate("main") == [] and asked == {"a": [], "b": []}  # Alembic's own reading again


def test_wrap_generate_revision_wraps_alembics_method_once_per_instance(tmp_path: Path) -> None:
    folder = scripts_folder(tmp_path)
    script = ScriptDirectory(str(folder), version_locations=[str(folder / "versions")])
    calls: list[str] = []

    def wrap(generate: Callable[..., object]) -> Callable[..., object]:
        def generate_revision(revid: str, message: str | None, *args: object, **kw: object) -> object:
            calls.append(revid)
            return generate(revid, f"wrapped {message}", *args, **kw)

        return generate_revision

    _compat.wrap_generate_revision(script, wrap)
    _compat.wrap_generate_revision(script, wrap)  # a second env.py run on one instance: not twice
    written = script.generate_revision("aaa", "first", head="base")
    assert calls == ["aaa"] and written is not None and written.doc == "wrapped first"
    other = ScriptDirectory(str(folder), version_locations=[str(folder / "versions")])
    assert other.generate_revision("bbb", "second", head="aaa").doc == "second"  # the class is untouched


def test_command_name_is_the_command_the_stock_command_line_parsed() -> None:
    from alembic.config import CommandLine

    assert _compat.command_name(CommandLine().parser.parse_args(["upgrade", "head"])) == "upgrade"
    assert _compat.command_name(CommandLine().parser.parse_args(["revision", "--autogenerate"])) == "revision"
    assert _compat.command_name(None) is None


def test_register_renderer_registers_once_and_is_idempotent() -> None:
    from alembic.autogenerate import render_python_code, renderers
    from alembic.operations import ops

    class Note(ops.MigrateOperation):
        pass

    def render(_context: object, _op: Note) -> str:
        return "# a note"

    _compat.register_renderer(Note, render)
    _compat.register_renderer(Note, render)  # no "key already exists"
    assert "# a note" in render_python_code(ops.UpgradeOps(ops=[Note()]))
    # Alembic itself still refuses a second one (1.16: a bare AssertionError; later: ValueError)
    with pytest.raises((ValueError, AssertionError)):
        renderers.dispatch_for(Note)(render)


def test_replace_operations_reaches_op_for_this_instance_only() -> None:
    from alembic import op

    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        operations = Operations(MigrationContext.configure(connection))
        seen: list[str] = []

        def create_table(name: str, *columns: object, **kw: object) -> None:
            seen.append(name)

        _compat.replace_operations(operations, create_table)
        with _compat.operations_as_op(operations):
            op.create_table("songs")
        assert seen == ["songs"]
        assert "create_table" not in vars(Operations(MigrationContext.configure(connection)))


def test_import_hook_and_class_attributes_are_put_back() -> None:
    class Finder:
        def find_spec(self, *_args: object) -> None:
            return None

    finder = Finder()
    _compat.add_import_hook(finder)
    assert sys.meta_path[0] is finder
    _compat.remove_import_hook(finder)
    _compat.remove_import_hook(finder)  # twice: nothing
    assert finder not in sys.meta_path

    class Client:
        def run(self) -> str:
            return "ran"

    original = Client.__dict__["run"]
    _compat.replace_class_attribute(Client, "run", lambda self: "refused")
    assert Client().run() == "refused"
    _compat.replace_class_attribute(Client, "run", original)
    assert Client().run() == "ran"
