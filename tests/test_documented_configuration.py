"""Documented configuration and discovery rules that no other test covers, end to end.

Each test changes a copy of the example bot the way a user would (nxalembic.ini, alembic.ini,
env.py, a new extension or model) and runs the real ``alembic`` / ``nxalembic`` executables.
Where a rule is about what a cog *is*, the revision files autogenerate writes are the
evidence: a table a cog does not own never appears in its ``create_table`` calls.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import textwrap
from pathlib import Path

from conftest import ALEMBIC, NXALEMBIC, BotProject, run
from test_bad_input import assert_one_clear_line
from test_configuration import set_ini

PLACEHOLDER_URL = "driver://user:pass@localhost/dbname"


# -- helpers ------------------------------------------------------------------------------------


def write(project: BotProject, relpath: str, text: str) -> None:
    path = project.path / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def load_extension(project: BotProject, extension: str) -> None:
    """Add *extension* to the bot's EXTENSIONS, as a user adding a load_extension would."""
    project.edit("demobot/main.py", '    "demobot.cogs.fun",', f'    "demobot.cogs.fun",\n    "{extension}",')


def created_tables(paths: list[Path]) -> set[str]:
    """Tables the upgrade() of these revision files creates."""
    return {m for p in paths for m in re.findall(r"op\.create_table\('([\w.]+)'", p.read_text())}


def cogs_of(project: BotProject) -> tuple[set[str], list[str]]:
    """The cogs and the extensions without models, as ``nxalembic status --json`` reports them."""
    assert project.db.tables() == set()  # an empty database: status refuses a SQLite file that does not exist
    status = json.loads(project.nxalembic("status", "--json").stdout)
    return {c["cog"] for c in status["cogs"]}, status["extensions_without_models"]


def alembic_ini_url(project: BotProject, url: str) -> None:
    project.edit("alembic.ini", "# sqlalchemy.url =", f"sqlalchemy.url = {url}")


# -- which database URL is used ------------------------------------------------------------------


def test_the_placeholder_url_of_alembic_templates_counts_as_unset(make_project) -> None:
    """configuration.rst: the placeholder sqlalchemy.url of Alembic's templates counts as unset,
    so the next source (here the models' ormar database) is used."""
    project = make_project("sqlite+aiosqlite")
    alembic_ini_url(project, "driver://user:pass@localhost/otherdb")  # not the placeholder: it is used
    refused = project.cog("core", "current", check=False)
    assert (
        refused.returncode != 0
        and "cannot use database URL driver://user:***@localhost/otherdb" in refused.output
    )

    project.edit("alembic.ini", "driver://user:pass@localhost/otherdb", PLACEHOLDER_URL)
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    project.cog("core", "upgrade", "head")
    assert "core_users" in project.db.tables()
    assert (
        "core: nothing to do, at " in project.nxalembic("upgrade", "--cog", "core").stdout
    )  # the nxalembic route agrees


# -- env.py ---------------------------------------------------------------------------------------


def core_changes(project: BotProject) -> list[str]:
    status = json.loads(project.nxalembic("status", "--json").stdout)
    return next(c["model_changes"] for c in status["cogs"] if c["cog"] == "core")


def test_keyword_arguments_of_run_migrations_reach_configure(make_project) -> None:
    """migrations.rst: keyword arguments of run_migrations() in env.py are passed on to
    context.configure(); compare_server_default=True makes a server-default change visible."""
    project = make_project("sqlite")
    project.cog("core", "revision", "--autogenerate", "-m", "users", "--rev-id", "users")
    project.cog("core", "upgrade", "head")
    project.nxalembic("migrate")  # every cog at its head: status compares them in one pass
    project.nxalembic("upgrade")
    project.edit(
        "demobot/models.py",
        "name: str = ormar.String(max_length=100)",
        "name: str = ormar.String(max_length=100, server_default='anon', nullable=False)",
    )
    # Alembic's default (compare_server_default=False) does not see it
    unseen = project.cog("core", "revision", "--autogenerate", "-m", "default")
    assert "No changes in schema detected for cog 'core'" in unseen.output
    assert core_changes(project) == []

    project.edit(
        "migrations/env.py", "run_migrations(context)", "run_migrations(context, compare_server_default=True)"
    )
    assert core_changes(project) == ["modify_default core_users.name"]  # the nxalembic route
    assert "modify_default" in project.cog("core", "check", check=False).output  # the stock route
    project.cog("core", "revision", "--autogenerate", "-m", "default", "--rev-id", "default")
    [change] = [p for p in project.revisions("core") if p.name.startswith("default_")]
    assert "server_default='anon'" in project.revision_ops(change)


# -- version_location ----------------------------------------------------------------------------


def test_here_in_version_location_is_the_folder_of_nxalembic_ini(make_project, tmp_path: Path) -> None:
    """configuration.rst: ``{here}`` is the folder of nxalembic.ini, wherever the command runs."""
    project = make_project("sqlite+aiosqlite")
    set_ini(project, version_location="{here}/cog_history/{cog}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = ("-c", str(project.path / "alembic.ini"))
    run(
        [ALEMBIC, *config, "-x", "cog=core", "revision", "--autogenerate", "-m", "users"],
        cwd=elsewhere,
        env=project.env,
    )
    run([ALEMBIC, *config, "-x", "cog=core", "upgrade", "head"], cwd=elsewhere, env=project.env)
    [revision] = list((project.path / "cog_history" / "core").glob("*.py"))
    assert created_tables([revision]) == {"core_users"}
    assert not list(elsewhere.rglob("*.py")) and project.revisions("core") == []
    assert len(project.db.versions("alembic_version_core")) == 1
    # nxalembic reads the same folder: core is at head there, music and economy get their own
    project.nxalembic("migrate")
    assert {p.name for p in (project.path / "cog_history").iterdir()} == {"core", "economy", "music"}
    assert len(list((project.path / "cog_history" / "core").glob("*.py"))) == 1


SHOP = """
    \"\"\"A second single-file cog in demobot/cogs/, next to economy.py.\"\"\"
    import ormar

    from ..db import base_config


    class Item(ormar.Model):
        ormar_config = base_config.copy(tablename="shop_items")

        id: int = ormar.Integer(primary_key=True)


    def setup(bot):
        pass
"""


def test_two_cogs_resolving_to_one_revisions_folder_are_an_error(make_project) -> None:
    """configuration.rst: two single-file cogs of one folder with ``{cog_dir}/migrations`` are an error."""
    project = make_project("sqlite+aiosqlite")
    write(project, "demobot/cogs/shop.py", SHOP)
    load_extension(project, "demobot.cogs.shop")
    set_ini(project, version_location="{cog_dir}/migrations")
    shared = project.path / "demobot" / "cogs" / "migrations"
    words = (
        "would share the revisions folder",
        str(shared),
        "put {cog} into version_location",
        "'economy'",
        "'shop'",
    )
    for args in (("-x", "cog=economy", "revision", "-m", "x"), ("-x", "cog=shop", "upgrade", "head")):
        result = project.alembic(*args, check=False)
        assert_one_clear_line(result.output, result.returncode, words)
    result = project.nxalembic("migrate", check=False)
    assert_one_clear_line(result.output, result.returncode, words)
    assert not shared.exists() and project.db.tables() == set()

    set_ini(project, version_location="{cog_dir}/migrations/{cog}")
    project.cog("shop", "revision", "--autogenerate", "-m", "items")
    project.cog("economy", "revision", "--autogenerate", "-m", "wallets")
    assert created_tables(list((shared / "shop").glob("*.py"))) == {"shop_items"}
    assert created_tables(list((shared / "economy").glob("*.py"))) == {"economy_wallets", "economy_purchases"}


# -- what a cog is ---------------------------------------------------------------------------------


def test_one_table_in_two_cogs_is_an_error_naming_both(make_project) -> None:
    """configuration.rst: every table belongs to exactly one cog."""
    project = make_project("sqlite+aiosqlite")
    # a model of another MetaData that maps economy's table: SQLAlchemy alone would not object
    write(
        project,
        "demobot/cogs/shop.py",
        SHOP.replace("import ormar\n", "import ormar\n    import sqlalchemy\n").replace(
            'tablename="shop_items"', 'tablename="economy_wallets", metadata=sqlalchemy.MetaData()'
        ),
    )
    load_extension(project, "demobot.cogs.shop")
    words = (
        "table 'economy_wallets' is defined by models of two cogs, economy and shop",
        "each table must belong to exactly one cog",
    )
    for result in (
        project.cog("music", "upgrade", "head", check=False),
        project.nxalembic("upgrade", check=False),
    ):
        assert_one_clear_line(result.output, result.returncode, words)
    # on the cogs' own MetaData, SQLAlchemy refuses the second table while the extension loads
    project.edit("demobot/cogs/shop.py", ", metadata=sqlalchemy.MetaData()", "")
    result = project.cog("music", "upgrade", "head", check=False)
    assert_one_clear_line(
        result.output,
        result.returncode,
        (
            "table 'economy_wallets' is defined twice on one MetaData",
            "demobot/cogs/shop.py:",
            "another tablename",
        ),
    )
    assert project.db.tables() == set()


def test_nested_extensions_the_innermost_wins(make_project) -> None:
    """configuration.rst: when extensions are nested, the innermost one wins."""
    project = make_project("sqlite+aiosqlite")
    write(
        project,
        "demobot/cogs/music/radio/__init__.py",
        """
        \"\"\"An extension inside the music extension's package.\"\"\"
        from .models import Station  # noqa: F401


        def setup(bot):
            pass
    """,
    )
    write(
        project,
        "demobot/cogs/music/radio/models.py",
        """
        import ormar

        from ....db import base_config


        class Station(ormar.Model):
            ormar_config = base_config.copy(tablename="radio_stations")

            id: int = ormar.Integer(primary_key=True)
            name: str = ormar.String(max_length=50)
    """,
    )
    load_extension(project, "demobot.cogs.music.radio")
    cogs, without_models = cogs_of(project)
    assert cogs == {"core", "economy", "music", "radio"} and "demobot.cogs.music.radio" not in without_models
    project.nxalembic("migrate")
    assert created_tables(project.revisions("radio")) == {"radio_stations"}
    assert created_tables(project.revisions("music")) == {"music_songs", "music_playlists", "playlists_songs"}


def test_abstract_models_are_tables_of_no_cog(make_project) -> None:
    """configuration.rst: abstract models are skipped; their fields live on in concrete subclasses."""
    project = make_project("sqlite+aiosqlite")
    # an abstract model is the only model of the fun extension: fun stays an extension without models
    project.edit(
        "demobot/cogs/fun.py",
        "from nextcord.ext import commands\n",
        "import ormar\nfrom nextcord.ext import commands\n\nfrom ..db import base_config\n\n\n"
        "class Stamped(ormar.Model):\n"
        "    ormar_config = base_config.copy(abstract=True)\n\n"
        "    id: int = ormar.Integer(primary_key=True)\n"
        "    created: int = ormar.Integer(default=0)\n",
    )
    project.edit(
        "demobot/cogs/economy.py",
        "from .music.models import Song\n",
        "from .fun import Stamped\nfrom .music.models import Song\n\n\n"
        "class Note(Stamped):\n"
        '    ormar_config = base_config.copy(tablename="economy_notes")\n\n'
        "    text: str = ormar.String(max_length=50)\n",
    )
    cogs, without_models = cogs_of(project)
    assert cogs == {"core", "economy", "music"} and without_models == ["demobot.cogs.fun"]
    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    assert created_tables(project.revisions("economy")) == {
        "economy_wallets",
        "economy_purchases",
        "economy_notes",
    }
    columns = [c[0] for c in project.db.snapshot({"economy_notes"})["economy_notes"]["columns"]]
    assert columns == ["id", "created", "text"]
    assert project.db.tables() - {f"alembic_version_{c}" for c in cogs} == {
        "core_users",
        "music_songs",
        "music_playlists",
        "playlists_songs",
        "economy_wallets",
        "economy_purchases",
        "economy_notes",
    }


OTHER_LIBRARY = """
    \"\"\"A library's models: outside the bot's package, on a MetaData of their own.\"\"\"
    import ormar
    import sqlalchemy

    config = ormar.OrmarConfig(database=ormar.DatabaseConnection("sqlite+aiosqlite:///lib.db"),
                               metadata=sqlalchemy.MetaData())


    class Thing(ormar.Model):
        ormar_config = config.copy(tablename="lib_things")

        id: int = ormar.Integer(primary_key=True)
"""


def test_other_libraries_models_belong_to_no_cog(make_project) -> None:
    """configuration.rst: models outside the bot's package on another MetaData are ignored;
    outside the package but on the cogs' MetaData, they join the pseudo-cog."""
    project = make_project("sqlite+aiosqlite")
    write(project, "otherlib/__init__.py", OTHER_LIBRARY)
    write(
        project,
        "sharedlib/__init__.py",
        """
        \"\"\"Outside the bot's package, but on the bot's own MetaData.\"\"\"
        import ormar

        from demobot.db import base_config


        class Badge(ormar.Model):
            ormar_config = base_config.copy(tablename="shared_badges")

            id: int = ormar.Integer(primary_key=True)
    """,
    )
    project.edit(
        "demobot/main.py",
        "from . import models",
        "import otherlib  # noqa: F401\nimport sharedlib  # noqa: F401\nfrom . import models",
    )
    project.edit(
        "demobot/cogs/music/models.py",
        "from ...models import User\n",
        "from ...models import User\nimport otherlib  # noqa: F401\n",
    )
    cogs, _ = cogs_of(project)
    assert cogs == {"core", "economy", "music"}
    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    assert created_tables(project.revisions("core")) == {"core_users", "shared_badges"}
    every = created_tables([p for cog in cogs for p in project.revisions(cog)])
    assert "lib_things" not in every and "lib_things" not in project.db.tables()
    assert project.nxalembic("check").returncode == 0


# -- the nxalembic command itself ------------------------------------------------------------------


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = run([NXALEMBIC, "--version"], cwd=tmp_path)
    assert result.stdout.strip() == f"nxalembic {importlib.metadata.version('nxalembic-templates')}"


def test_alembic_config_environment_variable_picks_alembic_ini(make_project, tmp_path: Path) -> None:
    """cli.py (``-c``): default alembic.ini, or $ALEMBIC_CONFIG; nxalembic.ini is then found next to it."""
    project = make_project("sqlite+aiosqlite")
    (project.path / "alembic.ini").rename(project.path / "bot-alembic.ini")
    missing = project.nxalembic("upgrade", check=False)
    assert_one_clear_line(
        missing.output, missing.returncode, ("no Alembic config at", "alembic.ini", "-c PATH/alembic.ini")
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**project.env, "ALEMBIC_CONFIG": str(project.path / "bot-alembic.ini")}
    run([NXALEMBIC, "migrate"], cwd=elsewhere, env=env)
    out = run([NXALEMBIC, "upgrade"], cwd=elsewhere, env=env).stdout
    assert "upgraded 3 cogs: 3 revisions applied" in out
    assert {"core_users", "music_songs", "economy_wallets"} <= project.db.tables()
    assert all(len(project.revisions(cog)) == 1 for cog in ("core", "music", "economy"))
    # -c wins over the variable
    wrong = run([NXALEMBIC, "-c", str(elsewhere / "nope.ini"), "status"], cwd=elsewhere, env=env, check=False)
    assert_one_clear_line(wrong.output, wrong.returncode, ("no Alembic config at", "nope.ini"))
