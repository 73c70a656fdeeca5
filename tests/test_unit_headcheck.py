"""Fast tier: the start-up fast path's "is every cog at its head?", answered without Alembic.

In-process with real files and a real SQLite database: revision files written to a temporary
folder and parsed by :func:`folder_head`, version tables read by :func:`version_rows`, the whole
question asked of a :class:`BotSchema` by :func:`heads_if_all_at_head`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from nxalembic_templates import headcheck
from nxalembic_templates.discovery import BotSchema, Cog
from nxalembic_templates.errors import LockTimeout
from nxalembic_templates.locking import LockPolicy
from nxalembic_templates.settings import Settings
from unit_fixtures import fixture_connection  # noqa: F401  (the connection fixture)


def revision(folder: Path, rev: str, down: object = None, name: str | None = None, **extra: object) -> Path:
    """A revision file as Alembic writes it (ids at the top, then the functions)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['"""A revision."""', "import sqlalchemy as sa", "from alembic import op", ""]
    lines += [f"revision = {rev!r}", f"down_revision = {down!r}"]
    lines += [f"{key} = {value!r}" for key, value in extra.items()]
    lines += ["", "", "def upgrade():", "    pass", "", "", "def downgrade():", "    pass", ""]
    path = folder / (name or f"{rev}_x.py")
    path.write_text("\n".join(lines))
    return path


def source(folder: Path, text: str, name: str = "r1_x.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# -- folder_head ------------------------------------------------------------------------------------


def test_no_folder_or_no_revisions(tmp_path: Path) -> None:
    assert headcheck.folder_head(tmp_path / "missing") == []
    assert headcheck.folder_head(tmp_path) == []
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "__init__.py").write_text("x = (")
    assert headcheck.folder_head(tmp_path) == []
    (tmp_path / "a_file").write_text("")
    assert headcheck.folder_head(tmp_path / "a_file") == []


def test_linear_history(tmp_path: Path) -> None:
    revision(tmp_path, "r1")
    assert headcheck.folder_head(tmp_path) == ["r1"]
    revision(tmp_path, "r2", "r1")
    revision(tmp_path, "r3", ("r2",))
    assert headcheck.folder_head(tmp_path) == ["r3"]


def test_merge_and_depends_on(tmp_path: Path) -> None:
    revision(tmp_path, "r1")
    revision(tmp_path, "r2", "r1")
    revision(tmp_path, "r3", "r1")
    assert headcheck.folder_head(tmp_path) is None  # a fork
    revision(tmp_path, "r4", ("r2", "r3"))
    assert headcheck.folder_head(tmp_path) == ["r4"]
    # depends_on makes no ancestor: r5 is a second head
    revision(tmp_path, "r5", None, depends_on="r4")
    assert headcheck.folder_head(tmp_path) is None
    (tmp_path / "r5_x.py").unlink()
    revision(tmp_path, "r5", "r4", depends_on=["r2"])
    assert headcheck.folder_head(tmp_path) == ["r5"]


def test_ids_outside_the_folder_or_refused(tmp_path: Path) -> None:
    revision(tmp_path, "r1", "elsewhere")
    assert headcheck.folder_head(tmp_path) is None
    revision(tmp_path, "r1", None, depends_on="elsewhere")
    assert headcheck.folder_head(tmp_path) is None
    revision(tmp_path, "r1", None, depends_on=("r1", "r1"))
    assert headcheck.folder_head(tmp_path) is None
    for bad in ("head", "heads", "base", "a-b", "a b", "", "r@1", 5, None, ("r",)):
        revision(tmp_path, bad if isinstance(bad, str) and bad else "r1", name="r1_x.py")
        if not isinstance(bad, str) or not bad:
            (tmp_path / "r1_x.py").write_text(f"revision = {bad!r}\ndown_revision = None\n")
        assert headcheck.folder_head(tmp_path) is None, bad
    # a symbol as a down_revision, or a list of non-ids
    for down in ("head", ["r0", 1], {"r0"}, 3):
        revision(tmp_path, "r1", down, name="r1_x.py")
        assert headcheck.folder_head(tmp_path) is None, down
    revision(tmp_path, "headless", name="r1_x.py")
    assert headcheck.folder_head(tmp_path) == ["headless"]


def test_two_files_with_one_id(tmp_path: Path) -> None:
    revision(tmp_path, "r1")
    revision(tmp_path, "r1", name="other.py")
    assert headcheck.folder_head(tmp_path) is None


def test_no_down_revision_cannot_load(tmp_path: Path) -> None:
    source(tmp_path, "revision = 'r1'\n")
    assert headcheck.folder_head(tmp_path) is None


def test_cycles(tmp_path: Path) -> None:
    revision(tmp_path, "r1", "r2")
    revision(tmp_path, "r2", "r1")
    revision(tmp_path, "r3", "r2")
    assert headcheck.folder_head(tmp_path) is None
    for path in tmp_path.iterdir():
        path.unlink()
    revision(tmp_path, "r1")
    revision(tmp_path, "r2", "r1", depends_on="r3")
    revision(tmp_path, "r3", "r1", depends_on="r2")
    revision(tmp_path, "r4", ("r2", "r3"))
    assert headcheck.folder_head(tmp_path) is None
    # a self-reference
    for path in tmp_path.iterdir():
        path.unlink()
    revision(tmp_path, "r1", "r1")
    assert headcheck.folder_head(tmp_path) is None


def test_acyclic_within() -> None:
    assert headcheck._acyclic_within({"a": [], "b": ["a"], "c": ["b", "a"]}, {"a": [], "b": [], "c": []})
    assert headcheck._acyclic_within({"a": [], "b": ["a"]}, {"a": [], "b": ["a"]}) is False  # twice
    assert headcheck._acyclic_within({"a": ["b"], "b": ["a"]}, {"a": [], "b": []}) is False
    assert headcheck._acyclic_within({"a": []}, {"a": ["x"]}) is False
    # a diamond is no cycle, whatever the order the revisions are met in
    down = {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    assert headcheck._acyclic_within(down, {key: [] for key in down})
    assert headcheck._acyclic_within({"a": [], "b": ["a"], "c": ["a"]}, {"a": [], "b": [], "c": ["b"]})
    # a long history does not hit the recursion limit
    long = {f"r{i}": [f"r{i - 1}"] if i else [] for i in range(5000)}
    assert headcheck._acyclic_within(long, {key: [] for key in long})
    long["r0"] = ["r4999"]
    assert headcheck._acyclic_within(long, {key: [] for key in long}) is False


def test_branch_labels(tmp_path: Path) -> None:
    revision(tmp_path, "r1", branch_labels=("music",))
    revision(tmp_path, "r2", "r1", branch_labels="extra")
    assert headcheck.folder_head(tmp_path) == ["r2"]
    revision(tmp_path, "r2", "r1", branch_labels="music")
    assert headcheck.folder_head(tmp_path) is None  # used twice
    revision(tmp_path, "r2", "r1", branch_labels="r1")
    assert headcheck.folder_head(tmp_path) is None  # a label that is a revision id
    revision(tmp_path, "r2", "r1", branch_labels="not-an-id")
    assert headcheck.folder_head(tmp_path) is None
    revision(tmp_path, "r2", "music")
    assert headcheck.folder_head(tmp_path) is None  # a label as a target is left to Alembic


def test_files_alembic_skips_or_cannot_read(tmp_path: Path) -> None:
    revision(tmp_path, "r1")
    (tmp_path / ".#r2_x.py").write_text("revision = 'r2'\ndown_revision = 'r1'\n")
    (tmp_path / "r2_x.pyc").write_bytes(b"")
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "r2.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "folder.py").mkdir()  # a folder is walked, not loaded
    assert headcheck.folder_head(tmp_path) == ["r1"]
    # a revision file in a subfolder would be listed as a head and never applied
    revision(tmp_path / "sub", "r9", "r1")
    assert headcheck.folder_head(tmp_path) is None


def test_strange_file_names_are_left_to_alembic(tmp_path: Path) -> None:
    revision(tmp_path, "r1")
    revision(tmp_path, "r2", "r1", name="x.py\n")
    assert headcheck.folder_head(tmp_path) is None
    (tmp_path / "x.py\n").unlink()
    (tmp_path / "broken.py").symlink_to(tmp_path / "nowhere")
    assert headcheck.folder_head(tmp_path) is None


def test_unreadable_folder(tmp_path: Path) -> None:
    # a file where the folder should be: not a directory, no revisions
    (tmp_path / "versions").write_text("")
    assert headcheck.folder_head(tmp_path / "versions") == []
    # a loop of links: the folder cannot be listed
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert headcheck.folder_head(tmp_path / "loop") == []


# -- the ids of one file ---------------------------------------------------------------------------


def ids_of(tmp_path: Path, text: str) -> headcheck.Ids | None:
    return headcheck._literal_ids(source(tmp_path, text))


def test_literal_ids(tmp_path: Path) -> None:
    found = ids_of(
        tmp_path,
        """\
        '''Add songs.

        revision = 'not this one'
        '''
        from alembic import op
        revision: str = 'r2'
        down_revision = ('r1',)
        depends_on = None
        branch_labels = None
        other = revision

        def upgrade():
            globals()['revision'] = 'x'  # could set the id when upgrade() runs
        """,
    )
    assert found is None  # globals() reaches the namespace
    found = ids_of(
        tmp_path,
        """\
        '''Add songs: revision = 'x' in the docstring is text.'''
        from alembic import op
        revision: str = 'r2'
        down_revision = ('r1',)
        depends_on = None
        other = revision
        x, y = 1, 2
        a.b = 3

        def upgrade():
            op.create_table('songs')
        """,
    )
    assert found == {"revision": "r2", "down_revision": ("r1",), "depends_on": None}


@pytest.mark.parametrize(
    "text",
    [
        "revision = 'r1'\nrevision = 'r2'\ndown_revision = None\n",
        "revision = 'r1'\ndown_revision = None\nif True:\n    revision = 'r2'\n",
        "revision = 'r1'\ndown_revision = None\nfor revision in 'ab':\n    pass\n",
        "revision = 'r1'\ndown_revision = None\nrevision += 'x'\n",
        "revision = 'r1'\ndown_revision = None\nrevision, x = 'a', 'b'\n",
        "revision = 'r1'\ndown_revision = None\n(revision := 'r2')\n",
        "revision = 'r1'\ndown_revision = None\nfrom x import y as revision\n",
        "revision = 'r1'\ndown_revision = None\nimport revision\n",
        "revision = 'r1'\ndown_revision = None\nimport revision.sub\n",
        "revision = 'r1'\ndown_revision = None\nimport revision.sub.deeper\n",
        # line breaks Python reads and a byte search does not: the whole file is walked
        "revision = 'r1'\rdown_revision = None\rglobals()['revision'] = 'x'\r",
        "\ufeffrevision = 'r1'\ndown_revision = None\nglobals()['revision'] = 'x'\n",
        "# coding: latin-1\nrevision = 'r1'\ndown_revision = None\nglobals()['revision'] = 'x'\n",
        "revision = 'r1'\ndown_revision = None\nfrom x import *\n",
        "revision = 'r1'\ndown_revision = None\ndef revision():\n    pass\n",
        "revision = 'r1'\ndown_revision = None\nclass revision:\n    pass\n",
        "revision = 'r1'\ndown_revision = None\ndef f():\n    global revision\n    revision = 'x'\n",
        "revision = 'r1'\ndown_revision = None\ndef __getattr__(name):\n    return 'x'\n",
        "revision = 'r1'\ndown_revision = None\ntry:\n    pass\nexcept E as revision:\n    pass\n",
        "revision = 'r1'\ndown_revision = None\nmatch x:\n    case {**revision}:\n        pass\n",
        "revision = 'r1'\ndown_revision = None\nmatch x:\n    case [revision]:\n        pass\n",
        "revision = 'r1'\ndown_revision = None\ndel revision\n",
        "revision = 'r1'\ndown_revision = None\nvars()['revision'] = 'x'\n",
        "revision = 'r1'\ndown_revision = None\nimport sys\nsys.modules[__name__].__dict__['x'] = 1\n",
        "revision = 'r1'\ndown_revision = None\nx.revision = 'r2'\n",
        "revision = 'r1'\ndown_revision = None\nexec('x')\n",
        "revision = 'r1'\ndown_revision = None\nwith x as revision:\n    pass\n",
        "revision = 'r1'\ndown_revision = None\ndef f():\n    nonlocal revision\n",
        "revision = 'r1'\ndown_revision = None\n\uff52evision = 'r2'\n",  # NFKC: a fullwidth r
        "revision = 'r' + '1'\ndown_revision = None\n",
        "revision = f'r{1}'\ndown_revision = None\n",
        "revision = 'r1'\ndown_revision = (\n",
        "revision = 'r1'\ndown_revision = None\nx = '\\N{BOGUS}'\n",
    ],
)
def test_ids_set_in_other_ways_are_unknown(tmp_path: Path, text: str) -> None:
    assert ids_of(tmp_path, text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("revision = 'r1'\ndown_revision = None\n", {"revision": "r1", "down_revision": None}),
        # names that only contain or resemble a watched one
        (
            "revision = 'r1'\ndown_revision = None\nrevisions = 1\nmy_revision = 2\nx = revision\n",
            {"revision": "r1", "down_revision": None},
        ),
        # a watched name read, not bound, after the first definition
        (
            "revision = 'r1'\ndown_revision = None\ndef upgrade():\n    print(revision, down_revision)\n",
            {"revision": "r1", "down_revision": None},
        ),
        # a watched name inside a function's own scope is read from the whole file: still plain
        (
            "revision = 'r1'\ndown_revision = None\ndef upgrade():\n    x.revision\n",
            {"revision": "r1", "down_revision": None},
        ),
        (
            "# -*- coding: utf-8 -*-\nrevision = 'r1'\ndown_revision = None\n",
            {"revision": "r1", "down_revision": None},
        ),
        ("\ufeffrevision = 'r1'\r\ndown_revision = None\r\n", {"revision": "r1", "down_revision": None}),
        ("revision = 'r1'\ndown_revision = None\ns = 'é'\n", {"revision": "r1", "down_revision": None}),
        ("", {}),
        ("'''Only a docstring: revision = 1.'''\n", {}),
        # a def inside a string: the head alone does not parse, the whole file is read
        (
            "revision = 'r1'\ndown_revision = '''\ndef x():\n'''\n",
            {"revision": "r1", "down_revision": "\ndef x():\n"},
        ),
        ("x: int\nrevision: str = 'r1'\ndown_revision = None\n", {"revision": "r1", "down_revision": None}),
        ("a = revision = 'r1'\ndown_revision = None\n", {"revision": "r1", "down_revision": None}),
        # an unpacking assignment (of other names) above the ids
        ("x, y = 1, 2\nrevision = 'r1'\ndown_revision = None\n", {"revision": "r1", "down_revision": None}),
    ],
)
def test_plain_ids(tmp_path: Path, text: str, expected: dict[str, object]) -> None:
    assert ids_of(tmp_path, text) == expected


def test_unreadable_file(tmp_path: Path) -> None:
    assert headcheck._literal_ids(tmp_path / "missing.py") is None
    assert headcheck._literal_ids(tmp_path) is None


def test_suspects_are_whole_words(tmp_path: Path) -> None:
    text = b"revision = 1\nmy_revision = revisions\nx.revision\nglobals\xc3\xa9 import  *"
    found = sorted(headcheck._suspects(text))
    assert found == [
        0,
        len(b"revision = 1\nmy_revision = revisions\nx."),
        text.index(b"globals"),
        text.index(b"\xc3"),
        text.index(b"\xa9"),
        text.index(b"import"),
    ]
    assert list(headcheck._suspects(b"")) == []
    assert list(headcheck._suspects(b"revision revision revision")) == [0, 9, 18]
    assert list(headcheck._suspects(b"revision")) == [0]
    assert list(headcheck._suspects(b"import\\\n*")) == [0]


def test_id_list() -> None:
    assert headcheck._id_list(None) == []
    assert headcheck._id_list("r1") == ["r1"]
    assert headcheck._id_list(("r1", "r2")) == ["r1", "r2"]
    assert headcheck._id_list(["r1"]) == ["r1"]
    assert headcheck._id_list(()) == []
    assert headcheck._id_list("head") is None
    assert headcheck._id_list(("r1", "base")) is None
    assert headcheck._id_list({"r1"}) is None
    assert headcheck._id_list(1) is None
    assert headcheck._plain_id("r_1")
    assert headcheck._plain_id("headx")
    assert headcheck._plain_id("base_1")
    assert not headcheck._plain_id("head")
    assert not headcheck._plain_id(1)


# -- version_rows ------------------------------------------------------------------------------------


def version_table(connection: sa.Connection, name: str, *versions: str) -> None:
    connection.exec_driver_sql(f'CREATE TABLE "{name}" (version_num VARCHAR(32) NOT NULL PRIMARY KEY)')
    for version in versions:
        connection.exec_driver_sql(f"INSERT INTO \"{name}\" VALUES ('{version}')")
    connection.commit()


def test_version_rows(connection: sa.Connection) -> None:
    version_table(connection, "alembic_version_music", "r2", "a1")
    version_table(connection, "alembic_version_games")
    version_table(connection, "alembic.core", "c1")
    tables = {
        "music": "alembic_version_music",
        "games": "alembic_version_games",
        "core": "alembic.core",
        "new": "alembic_version_new",
    }
    found = headcheck.version_rows(connection, tables)
    assert found == {"music": ["a1", "r2"], "games": [], "core": ["c1"], "new": []}
    assert list(found) == list(tables)
    assert not connection.in_transaction()
    assert headcheck.version_rows(connection, {}) == {}


def test_version_rows_one_unreadable_table(connection: sa.Connection) -> None:
    version_table(connection, "alembic_version_music", "r1")
    connection.exec_driver_sql('CREATE TABLE "alembic_version_odd" (other INTEGER)')
    connection.commit()
    found = headcheck.version_rows(
        connection,
        {"music": "alembic_version_music", "odd": "alembic_version_odd", "new": "alembic_version_x"},
    )
    assert found["music"] == ["r1"]
    assert found["new"] == []
    assert isinstance(found["odd"], SQLAlchemyError)
    assert not connection.in_transaction()


def test_version_rows_in_batches(connection: sa.Connection) -> None:
    """More cogs than one UNION ALL reads (two batches and one more cog); one table missing."""
    count = 2 * headcheck.UNION_BATCH + 1
    tables = {f"cog{i}": f"alembic_version_cog{i}" for i in range(count)}
    for i, table in enumerate(tables.values()):
        if i != 3:
            version_table(connection, table, f"r{i}")
    found = headcheck.version_rows(connection, tables)
    assert found == {f"cog{i}": ([f"r{i}"] if i != 3 else []) for i in range(count)}


def test_union_of_no_tables(connection: sa.Connection) -> None:
    assert headcheck._union(connection, {}) == {}


# -- heads_if_all_at_head: the whole question --------------------------------------------------------


def bot_schema(root: Path, *cogs: str, url: str | None = None) -> BotSchema:
    metadata = sa.MetaData()
    made = {}
    for name in cogs:
        table = sa.Table(f"{name}_things", metadata, sa.Column("id", sa.Integer, primary_key=True))
        made[name] = Cog(name, f"bot.cogs.{name}", root / "bot" / name, (), (table,))
    return BotSchema(
        settings=Settings(path=root / "nxalembic.ini", module="bot.main", url=url),
        bot=None,
        cogs=made,
        extensions_without_models=(),
        metadata=(metadata,),
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\nsqlalchemy.url = sqlite:///%(here)s/bot.db\n"
    )
    revision(tmp_path / "migrations" / "versions" / "music", "m1")
    revision(tmp_path / "migrations" / "versions" / "music", "m2", "m1")
    revision(tmp_path / "migrations" / "versions" / "games", "g1")
    return tmp_path


def at(project: Path, **versions: list[str]) -> None:
    engine = sa.create_engine(f"sqlite:///{project / 'bot.db'}")
    with engine.connect() as connection:
        for cog, rows in versions.items():
            version_table(connection, f"alembic_version_{cog}", *rows)
    engine.dispose()


def test_a_version_table_that_cannot_be_read_is_dont_know(project: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m2"])
    engine = sa.create_engine(f"sqlite:///{project / 'bot.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql('CREATE TABLE "alembic_version_games" (version INTEGER)')
    engine.dispose()
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None


def test_all_at_head(project: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m2"], games=["g1"])
    found = headcheck.heads_if_all_at_head(schema, project / "alembic.ini")
    assert found == {"games": ["g1"], "music": ["m2"]}
    assert list(found or {}) == schema.upgrade_order()


def test_not_all_at_head(project: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m1"], games=["g1"])
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None


def test_the_database_does_not_exist_yet(project: Path) -> None:
    schema = bot_schema(project, "music")
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None
    assert not (project / "bot.db").exists()


def test_the_given_url_comes_first(project: Path, tmp_path: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m1"], games=["g1"])
    other = project / "other.db"
    engine = sa.create_engine(f"sqlite:///{other}")
    with engine.connect() as connection:
        version_table(connection, "alembic_version_music", "m2")
        version_table(connection, "alembic_version_games", "g1")
    engine.dispose()
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini", url=f"sqlite:///{other}") == {
        "games": ["g1"],
        "music": ["m2"],
    }
    # the settings' url comes before alembic.ini's
    schema = bot_schema(project, "music", "games", url=f"sqlite:///{other}")
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is not None
    # an empty url= is for the full route to word
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini", url="") is None


def test_a_cog_without_revisions_is_never_ready(project: Path) -> None:
    schema = bot_schema(project, "music", "games", "stats")
    at(project, music=["m2"], games=["g1"], stats=[])
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None


def test_an_unsure_folder_or_configuration(project: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m2"], games=["g1"])
    revision(project / "migrations" / "versions" / "games", "g2", "g1", name="g2.py")
    revision(project / "migrations" / "versions" / "games", "g3", "g1", name="g3.py")
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None  # a fork
    assert headcheck.heads_if_all_at_head(schema, project / "missing.ini") is None


def test_what_the_full_route_must_word(project: Path) -> None:
    # revisions in a source folder: CogLayout refuses
    (project / "nxalembic.ini").write_text("")
    schema = bot_schema(project, "music")
    schema = BotSchema(
        settings=Settings(path=project / "nxalembic.ini", module="m", version_location="{cog_dir}"),
        bot=None,
        cogs=schema.cogs,
        extensions_without_models=(),
        metadata=schema.metadata,
    )
    at(project, music=["m2"])
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None
    # two cogs in one folder (both at its head): Alembic's route refuses that
    schema = BotSchema(
        settings=Settings(path=project / "nxalembic.ini", module="m", version_location="{cog_dir}/../revs"),
        bot=None,
        cogs={
            "music": Cog(
                "music",
                "bot.cogs.music",
                project / "bot",
                (),
                bot_schema(project, "music").cogs["music"].tables,
            ),
            "games": Cog(
                "games",
                "bot.cogs.games",
                project / "bot",
                (),
                bot_schema(project, "games").cogs["games"].tables,
            ),
        },
        extensions_without_models=(),
        metadata=(),
    )
    revision(project / "revs", "s1")
    (project / "bot.db").unlink()
    at(project, games=["s1"], music=["s1"])
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None


def hold(database: Path, how: str) -> tuple[sa.Engine, Any]:
    """Another connection holding one of SQLite's locks (``IMMEDIATE``: a migration running elsewhere)."""
    holder = sa.create_engine(f"sqlite:///{database}", poolclass=sa.pool.NullPool)
    raw = holder.raw_connection()
    raw.driver_connection.isolation_level = None
    raw.driver_connection.execute(f"BEGIN {how}")
    return holder, raw


def let_go(holder: sa.Engine, raw: Any) -> None:
    raw.driver_connection.execute("ROLLBACK")
    raw.close()
    holder.dispose()


def test_the_read_takes_no_lock(project: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m2"], games=["g1"])
    holder, raw = hold(project / "bot.db", "IMMEDIATE")
    try:
        found = headcheck.heads_if_all_at_head(schema, project / "alembic.ini", lock=LockPolicy(timeout=0.5))
    finally:
        let_go(holder, raw)
    assert found == {"games": ["g1"], "music": ["m2"]}


def test_the_read_waits_no_longer_than_the_lock_timeout(project: Path) -> None:
    schema = bot_schema(project, "music", "games")
    at(project, music=["m2"], games=["g1"])
    holder, raw = hold(project / "bot.db", "EXCLUSIVE")
    try:
        with pytest.raises(LockTimeout, match=r"^gave up after 0\.2 s waiting to read "):
            headcheck.heads_if_all_at_head(schema, project / "alembic.ini", lock=LockPolicy(timeout=0.2))
    finally:
        let_go(holder, raw)


def test_a_foreign_key_cycle_is_for_the_full_route(project: Path) -> None:
    metadata = sa.MetaData()
    a = sa.Table(
        "music_a",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("b", sa.ForeignKey("games_b.id")),
    )
    b = sa.Table(
        "games_b",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("a", sa.ForeignKey("music_a.id")),
    )
    schema = BotSchema(
        settings=Settings(path=project / "nxalembic.ini", module="m"),
        bot=None,
        cogs={
            "music": Cog("music", "bot.cogs.music", project / "bot" / "music", (), (a,)),
            "games": Cog("games", "bot.cogs.games", project / "bot" / "games", (), (b,)),
        },
        extensions_without_models=(),
        metadata=(metadata,),
    )
    at(project, music=["m2"], games=["g1"])
    assert headcheck.heads_if_all_at_head(schema, project / "alembic.ini") is None


def test_heads_come_in_upgrade_order(project: Path) -> None:
    metadata = sa.MetaData()
    g = sa.Table("games_g", metadata, sa.Column("id", sa.Integer, primary_key=True))
    m = sa.Table(
        "music_m",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("g", sa.ForeignKey("games_g.id")),
    )
    z = sa.Table(
        "aaa_z",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("m", sa.ForeignKey("music_m.id")),
    )
    schema = BotSchema(
        settings=Settings(path=project / "nxalembic.ini", module="m"),
        bot=None,
        cogs={
            "music": Cog("music", "x.music", project / "bot" / "music", (), (m,)),
            "games": Cog("games", "x.games", project / "bot" / "games", (), (g,)),
            "aaa": Cog("aaa", "x.aaa", project / "bot" / "aaa", (), (z,)),
        },
        extensions_without_models=(),
        metadata=(metadata,),
    )
    revision(project / "migrations" / "versions" / "aaa", "z1")
    at(project, music=["m2"], games=["g1"], aaa=["z1"])
    found = headcheck.heads_if_all_at_head(schema, project / "alembic.ini")
    assert list(found or {}) == ["games", "music", "aaa"]
