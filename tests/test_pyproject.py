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

from conftest import ALEMBIC, BIN, EXAMPLES, REPO, BotProject, Database, run
from test_deploying_doc import documented_commands, documented_files

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
