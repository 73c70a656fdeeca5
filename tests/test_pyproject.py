"""The pyproject.toml set-up: ``[tool.alembic]`` and ``[tool.nxalembic]`` instead of ini files.

A project that keeps its tool settings in pyproject.toml runs ``nxalembic init --pyproject``
(or stock ``alembic init -t nxcog_pyproject``): Alembic's settings go to ``[tool.alembic]``,
the bot and the cog options to ``[tool.nxalembic]``, and ``alembic.ini`` keeps only logging and
the (optional) database URL.  Every test runs the real executables in a temp folder on a real
SQLite file and asserts on the schema and the version tables.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import textwrap
import tomllib
from pathlib import Path

import alembic
import pytest
import sqlalchemy as sa

from conftest import ALEMBIC, BIN, EXAMPLES, REPO, BotProject, Database, run, wheel_installed
from test_deploying_doc import documented_commands, documented_files
from test_libraries import LIBRARIES

#: A project's own pyproject.toml before init: comments, other tools, odd spacing all kept.
EXISTING = """\
# the bot's own project file
[project]
name = "demobot"   # trailing comment
version = "1.0"
dependencies = ["nextcord>=2.6", "ormar>=0.26"]

[tool.ruff]
line-length = 99
"""

#: The start-up API as a bot's own start script calls it (before ``bot.start``), run from a
#: folder outside the project: alembic.ini is found from the bot's code.
STARTUP = """\
import asyncio, json, sys

import nxalembic_templates
from demobot.main import bot

mode = sys.argv[1]
results = asyncio.run(nxalembic_templates.upgrade(bot, mode=mode))
print(json.dumps({r.cog: r.applied for r in results}))
"""

#: The one line said when nxalembic.ini and [tool.nxalembic] both configure a folder.
BOTH = "both configure nxalembic: using nxalembic.ini"

COGS = ("core", "economy", "music")

PAGE = REPO / "docs" / "pyproject.rst"

#: A new column for the economy cog's wallets.
NOTE = (
    "    balance: int = ormar.Integer(default=0)\n",
    "    balance: int = ormar.Integer(default=0)\n"
    "    note: str = ormar.String(max_length=20, nullable=True)\n",
)


def pyproject_project(path: Path, *, existing: str = EXISTING) -> BotProject:
    """The example bot in *path* with a pyproject.toml of its own and no ini file at all."""
    shutil.copytree(
        EXAMPLES / "demobot", path / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
    )
    (path / "pyproject.toml").write_text(existing, encoding="utf-8")
    return BotProject(path, Database(f"sqlite+aiosqlite:///{path / 'bot.db'}"))


@pytest.fixture
def initialised(tmp_path: Path) -> BotProject:
    """``nxalembic init --pyproject --module demobot.main`` run in a pyproject-only project."""
    project = pyproject_project(tmp_path / "bot")
    project.nxalembic("init", "--pyproject", "--module", "demobot.main")
    return project


def test_init_pyproject_appends_and_keeps_the_existing_file(initialised: BotProject) -> None:
    path = initialised.path
    text = (path / "pyproject.toml").read_text(encoding="utf-8")
    assert text.startswith(EXISTING), "the project's own pyproject.toml must be kept byte for byte"
    data = tomllib.loads(text)
    assert data["project"]["name"] == "demobot" and data["tool"]["ruff"] == {"line-length": 99}
    alembic = data["tool"]["alembic"]
    assert alembic["script_location"] == "%(here)s/migrations"
    assert alembic["version_locations"] == ["%(here)s/migrations/versions"]
    assert data["tool"]["nxalembic"] == {"module": "demobot.main", "bot": "bot"}
    assert not (path / "nxalembic.ini").exists()
    ini = (path / "alembic.ini").read_text()
    assert "script_location" not in ini and "[logger_alembic]" in ini
    assert "\nrevision_environment = true\n" in ini  # booleans: see alembic.ini.mako
    # the same env.py as the nxcog template: one file, a few lines calling the package
    assert (path / "migrations" / "env.py").read_bytes() == (
        REPO / "nxalembic_templates" / "percog" / "env.py"
    ).read_bytes()

    again = initialised.nxalembic("init", "--pyproject", "--force", "more", check=False)
    assert (path / "pyproject.toml").read_text(encoding="utf-8") == text, "a second init changed it"
    assert "[tool.nxalembic] exists" in again.output


def test_the_documented_workflow_from_a_pyproject_only_project(tmp_path: Path) -> None:
    """docs/pyproject.rst's commands as written, on the page's pyproject.toml, then the start-up API."""
    existing = documented_files(PAGE)["pyproject.toml"]
    project = pyproject_project(tmp_path / "bot", existing=existing)
    commands = documented_commands(PAGE)
    assert commands[0] == "nxalembic init --pyproject --module demobot.main" and "nxalembic check" in commands
    for command in commands:
        program, *args = shlex.split(command)
        run([str(BIN / program), *args], cwd=project.path, env=project.env)

    db = project.db
    text = (project.path / "pyproject.toml").read_text(encoding="utf-8")
    assert text.startswith(existing) and not (project.path / "nxalembic.ini").exists()
    [documented] = [block for block in toml_blocks(PAGE) if "alembic" in block.get("tool", {})]
    assert tomllib.loads(text)["tool"]["alembic"] == documented["tool"]["alembic"]
    assert tomllib.loads(text)["tool"]["nxalembic"] == documented["tool"]["nxalembic"]
    [core] = project.revisions("core")
    assert "op.create_table('core_users'" in core.read_text()
    for cog in COGS:
        [revision] = project.revisions(cog)
        assert db.versions(f"alembic_version_{cog}") == [revision.name.split("_")[0]]
    assert {"core_users", "music_songs", "economy_wallets", "economy_purchases"} <= db.tables()

    # a model change: check sees it, migrate writes it, and the start-up API applies it from a
    # folder outside the project (alembic.ini and pyproject.toml are found from the bot's code)
    project.edit("demobot/cogs/economy.py", *NOTE)
    changed = project.nxalembic("check", check=False)
    assert changed.returncode == 1 and "economy" in changed.output
    project.nxalembic("migrate", "--cog", "economy")
    script = project.path / "start.py"
    script.write_text(STARTUP, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    applied = json.loads(run([sys.executable, str(script), "apply"], cwd=elsewhere, env=project.env).stdout)
    assert {cog: len(revisions) for cog, revisions in applied.items()} == {
        "core": 0,
        "economy": 1,
        "music": 0,
    }
    assert "note" in {c["name"] for c in sa.inspect(db.engine).get_columns("economy_wallets")}


def toml_blocks(page: Path) -> list[dict]:
    """Every ``toml`` code-block of *page*, parsed."""
    blocks = re.findall(
        r"^\.\. code-block:: toml\n(?:   :.*\n)*\n((?:   .*\n|\n)+)", page.read_text(), re.MULTILINE
    )
    return [tomllib.loads(textwrap.dedent(block)) for block in blocks]


def test_nxalembic_ini_wins_and_says_so_once(initialised: BotProject) -> None:
    """Both files configure the folder: nxalembic.ini's version table is used, and one line says so."""
    project, db = initialised, initialised.db
    project.edit("pyproject.toml", 'bot = "bot"\n', 'bot = "bot"\nversion_table = "from_toml_{cog}"\n')
    (project.path / "nxalembic.ini").write_text(
        "[nxalembic]\nmodule = demobot.main\nversion_table = from_ini_{cog}\n", encoding="utf-8"
    )
    project.nxalembic("migrate")  # every cog: one without revisions is never upgraded
    stock = project.cog("music", "upgrade", "head")
    assert stock.output.count(BOTH) == 1, stock.output
    command = project.nxalembic("upgrade")
    assert command.output.count(BOTH) == 1, command.output
    [line] = [line for line in command.output.splitlines() if BOTH in line]
    assert str(project.path / "nxalembic.ini") in line and str(project.path / "pyproject.toml") in line
    tables = db.tables()
    assert {"from_ini_music", "from_ini_economy", "from_ini_core"} <= tables
    assert not any(t.startswith("from_toml_") for t in tables)


#: Stock ``alembic``: the same line, from env.py (Alembic itself reads a syntax error first).
STOCK = ("alembic", "-x", "cog=music", "upgrade", "head")


@pytest.mark.parametrize(
    ("change", "command", "expected"),
    [
        (("module =", "module = = "), ("upgrade",), "is not valid TOML: "),
        (
            ('bot = "bot"', "bot = 3"),
            STOCK,
            '[tool.nxalembic] bot must be a string in quotes (bot = "..."), not an integer',
        ),
        (
            ('bot = "bot"', 'bot = "bot"\nurl = ["sqlite:///x.db"]'),
            ("status",),
            "[tool.nxalembic] url must be",
        ),
        (('bot = "bot"', 'bot = "bot"\ncore = "x"'), ("check",), "unknown key(s) core in [tool.nxalembic]"),
        (('bot = "bot"', 'bot = "bot"\nversion_table = "same"'), STOCK, "version_table = 'same' gives the"),
    ],
    ids=["syntax", "integer", "array", "unknown-key", "bad-version-table"],
)
def test_bad_pyproject_is_one_line(
    initialised: BotProject, change: tuple[str, str], command: tuple[str, ...], expected: str
) -> None:
    project = initialised
    project.edit("pyproject.toml", *change)
    if command[0] == "alembic":
        result = project.alembic(*command[1:], check=False)
    else:
        result = project.nxalembic(*command, check=False)
    assert result.returncode != 0, result.output
    assert result.output.splitlines() == [result.output.strip()], result.output
    assert result.output.startswith(f"FAILED: {project.path / 'pyproject.toml'}"), result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not project.db.tables()  # nothing was migrated


def test_init_pyproject_refuses_broken_toml_and_creates_nothing(tmp_path: Path) -> None:
    project = pyproject_project(tmp_path / "bot", existing=EXISTING + "[tool.ruff\n")
    result = project.nxalembic("init", "--pyproject", "--module", "demobot.main", check=False)
    assert result.returncode != 0 and "Traceback" not in result.output
    assert result.output.strip() == result.output.strip().splitlines()[0]
    assert f"{project.path / 'pyproject.toml'} is not valid TOML" in result.output
    assert sorted(p.name for p in project.path.iterdir()) == ["demobot", "pyproject.toml"]
    assert (project.path / "pyproject.toml").read_text() == EXISTING + "[tool.ruff\n"


@pytest.mark.wheel  # stock Alembic finds nxcog_pyproject in the wheel's copy only
def test_stock_alembic_init_nxcog_pyproject(tmp_path: Path) -> None:
    """Listed by ``alembic list_templates``; ``alembic init`` writes [tool.alembic] and a small
    alembic.ini."""
    listing = run([ALEMBIC, "list_templates"], cwd=tmp_path).stdout
    [line] = [line for line in listing.splitlines() if line.startswith("nxcog_pyproject - ")]
    assert "pyproject.toml" in line
    run([ALEMBIC, "init", "-t", "nxcog_pyproject", "migrations"], cwd=tmp_path)
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["tool"]["alembic"]["script_location"] == "%(here)s/migrations"
    assert "nxalembic" not in data["tool"]  # commented out: the user fills in module and bot
    nxcog = Path(alembic.__file__).parent / "templates" / "nxcog"
    for shared in ("env.py", "script.py.mako"):
        assert (tmp_path / "migrations" / shared).read_bytes() == (nxcog / shared).read_bytes()
    ini = (tmp_path / "alembic.ini").read_text()
    assert "script_location" not in ini and "[handler_console]" in ini


def stock_init_nxcog_pyproject(path: Path) -> None:
    """``alembic init -t nxcog_pyproject migrations`` in *path*, with the real executable.

    An editable install registers no template with stock Alembic: there ``nxalembic init
    --pyproject`` writes the same files from the same template, and the ``[tool.nxalembic]`` it
    appends is cut off again, leaving what stock Alembic leaves (as ``initialised_template`` does).
    """
    if wheel_installed():
        run([ALEMBIC, "init", "-t", "nxcog_pyproject", "migrations"], cwd=path)
        return
    before = (path / "pyproject.toml").read_text(encoding="utf-8")
    run([str(BIN / "nxalembic"), "init", "--pyproject", "migrations"], cwd=path)
    text = (path / "pyproject.toml").read_text(encoding="utf-8")
    (path / "pyproject.toml").write_text(before + text[len(before) :].split("\n[tool.nxalembic]")[0])


def test_the_stock_alembic_route_ends_in_a_working_project(tmp_path: Path) -> None:
    """docs/pyproject.rst's stock route: ``alembic init -t nxcog_pyproject``, then ``nxalembic init``
    writes the missing [tool.nxalembic] (in TOML, nothing else touched) and every command works."""
    project = pyproject_project(tmp_path / "bot")
    commands = documented_files(PAGE)["the stock Alembic route"].replace("$ ", "").splitlines()
    assert commands[:2] == [
        "alembic init -t nxcog_pyproject migrations",
        "nxalembic init --module demobot.main",
    ]
    stock_init_nxcog_pyproject(project.path)
    files = {p: p.read_bytes() for p in project.path.rglob("*") if p.is_file() and "demobot" not in p.parts}
    assert "nxalembic" not in tomllib.loads((project.path / "pyproject.toml").read_text())["tool"]

    # before: every command says what to add to pyproject.toml, in TOML that parses
    failed = project.nxalembic("status", check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.output, failed.output
    assert "under [tool.nxalembic] in pyproject.toml of" in failed.output, failed.output
    lines = re.findall(r"'((?:module|bot) = [^']*)'", failed.output)
    assert tomllib.loads("\n".join(lines)) == {"module": "yourbot.main", "bot": "bot"}
    assert "'nxalembic init --module yourbot.main'" in failed.output

    for command in commands[1:]:
        program, *args = shlex.split(command)
        result = run([str(BIN / program), *args], cwd=project.path, env=project.env)
    assert re.search(r"^music .* 0 +in sync$", result.stdout, re.M), result.stdout  # status, last
    text = (project.path / "pyproject.toml").read_text(encoding="utf-8")
    pyproject = files.pop(project.path / "pyproject.toml").decode()
    assert text.startswith(pyproject), "init must only append [tool.nxalembic]"
    assert tomllib.loads(text)["tool"]["nxalembic"] == {"module": "demobot.main", "bot": "bot"}
    assert not (project.path / "nxalembic.ini").exists()
    assert all(path.read_bytes() == data for path, data in files.items()), "init changed a file"
    for cog in COGS:
        [revision] = project.revisions(cog)
        assert project.db.versions(f"alembic_version_{cog}") == [revision.name.split("_")[0]]

    again = project.nxalembic("init", "--module", "demobot.main")
    assert "left as it is" in again.stdout and (project.path / "pyproject.toml").read_text() == text


#: A bot built by its class, as discord.py bots often are, loading its extensions only when it
#: starts (in ``main()`` here, in ``setup_hook`` on discord.py): importing the module loads none.
KITBOT = {
    "kitbot/__init__.py": "",
    "kitbot/main.py": """\
        import nextcord
        from nextcord.ext import commands


        class KitBot(commands.Bot):
            def __init__(self) -> None:
                super().__init__(command_prefix="!", intents=nextcord.Intents.default())


        async def main() -> None:
            bot = KitBot()
            for name in ("kitbot.cogs.music", "kitbot.cogs.games"):
                bot.load_extension(name)
        """,
    "kitbot/db.py": """\
        import os

        import ormar
        import sqlalchemy

        database = ormar.DatabaseConnection(os.environ["DEMOBOT_DATABASE_URL"])
        base_config = ormar.OrmarConfig(database=database, metadata=sqlalchemy.MetaData())
        """,
    "kitbot/cogs/__init__.py": "",
    **{
        f"kitbot/cogs/{cog}.py": f"""\
        import ormar

        from ..db import base_config


        class {cog.title()}(ormar.Model):
            ormar_config = base_config.copy(tablename="{cog}_items")

            id: int = ormar.Integer(primary_key=True)


        def setup(bot) -> None:
            pass
        """
        for cog in ("music", "games")
    },
}


def test_a_class_built_bot_takes_each_pasted_extensions_line(tmp_path: Path) -> None:
    """``bot = "KitBot"`` (a class); the ``extensions`` lines of the init skeleton and of the hint,
    pasted into pyproject.toml as they are, parse and make the cogs found (TOML, not ini)."""
    project = pyproject_project(tmp_path / "bot")
    for name, text in KITBOT.items():
        (project.path / name).parent.mkdir(parents=True, exist_ok=True)
        (project.path / name).write_text(textwrap.dedent(text))
    project.nxalembic("init", "--pyproject", "--module", "kitbot.main", "--bot", "KitBot")
    pyproject = project.path / "pyproject.toml"
    written = pyproject.read_text(encoding="utf-8")
    skeleton = re.findall(r"^# (extensions = .*)$", written.split("\n[tool.nxalembic]")[1], re.M)
    assert skeleton == [
        'extensions = "kitbot.cogs"',
        'extensions = ["kitbot.cogs.music", "kitbot.cogs.games"]',
    ]

    failed = project.nxalembic("status", check=False)
    assert failed.returncode == 1 and "bot kitbot.main.KitBot has no extensions loaded" in failed.output
    assert "under [tool.nxalembic] in pyproject.toml" in failed.output, failed.output
    hinted = re.findall(r"'(extensions = [^']*)'", failed.output)
    assert hinted == ['extensions = ["kitbot.cogs.music", "kitbot.cogs.games"]', 'extensions = "kitbot.cogs"']
    assert "'bot = \"create_bot\"'" in failed.output

    # [tool.nxalembic] is the file's last table: a pasted line lands in it
    pyproject.write_text(f"{written}{hinted[0]}\n", encoding="utf-8")
    project.nxalembic("migrate")
    assert [len(project.revisions(cog)) for cog in ("music", "games")] == [1, 1]
    for line in (hinted[1], skeleton[1], skeleton[0]):
        pyproject.write_text(f"{written}{line}\n", encoding="utf-8")
        assert tomllib.loads(pyproject.read_text())["tool"]["nxalembic"]["extensions"]
    project.nxalembic("upgrade")  # with the uncommented skeleton line
    assert {"music_items", "games_items"} <= project.db.tables()
    assert "all cogs: models match" in project.nxalembic("check").stdout


def test_both_templates_describe_the_same_bots() -> None:
    """``alembic list_templates`` shows each README's first line: nxcog_pyproject's says what nxcog's
    says, every supported library included, but for where the settings live; so does the rest."""
    nxcog, pyproject = (
        (REPO / "nxalembic_templates" / folder / "README").read_text(encoding="utf-8")
        for folder in ("percog", "percog_pyproject")
    )
    libraries = ", ".join(LIBRARIES)  # nextcord, discord.py, disnake, py-cord
    common = f"Per-cog migrations for a discord bot ({libraries}) with ormar models"
    assert nxcog.splitlines()[0] == f"{common} (needs nxalembic.ini; use -x cog=NAME)."
    assert pyproject.splitlines()[0] == f"{common} (settings in pyproject.toml; use -x cog=NAME)."
    for readme in (nxcog, pyproject):
        assert (
            "`nxalembic init --module yourbot.main`, which writes it and leaves this folder as it is"
            in readme
        )
    assert (
        nxcog[nxcog.index("Every cog of the bot") :] == pyproject[pyproject.index("Every cog of the bot") :]
    )


def test_init_pyproject_on_a_stock_nxcog_environment_writes_only_the_settings(
    initialised_template: Path, tmp_path: Path
) -> None:
    """``alembic init -t nxcog`` made the environment, and there is no pyproject.toml yet: ``nxalembic
    init --pyproject`` keeps every file and writes a pyproject.toml that holds [tool.nxalembic] only."""
    path = tmp_path / "bot"
    shutil.copytree(initialised_template, path)
    files = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    out = run([str(BIN / "nxalembic"), "init", "--pyproject", "--module", "demobot.main"], cwd=path).stdout
    assert "has an Alembic environment already, left as it is" in out
    assert all(p.read_bytes() == data for p, data in files.items())
    assert {p for p in path.rglob("*") if p.is_file()} - set(files) == {path / "pyproject.toml"}
    data = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8"))
    assert data == {"tool": {"nxalembic": {"module": "demobot.main", "bot": "bot"}}}


def test_the_pages_hint_is_the_message_itself() -> None:
    """docs/pyproject.rst quotes the no-extensions hint for a pyproject.toml project as it is said."""
    from nxalembic_templates.extensions import no_extensions
    from nxalembic_templates.settings import Settings

    found = re.search(r"^   (FAILED: bot demobot\.main\.bot .*?)\n\n", PAGE.read_text(), re.M | re.S)
    assert found, "the page quotes the message no more"
    quoted = found.group(1)
    said = no_extensions(Settings(Path("/srv/bot/pyproject.toml"), "demobot.main"), given=False)
    assert " ".join(quoted.split()) == f"FAILED: {said}"
