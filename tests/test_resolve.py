"""One project, one database, on every route: stock ``alembic -x cog=``, ``nxalembic``, the start-up API.

Each route asks the same two functions: :func:`~nxalembic_templates.settings.settings_for`
(which settings go with an ``alembic.ini``) and :func:`~nxalembic_templates.engines.database_url`
(which database they lead to).  The fast tests below pin the resolver's precedence in-process;
the others drive the real executables and the real start-up API on real SQLite files, and look
at the files.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config

from conftest import ALEMBIC, NXALEMBIC, BotProject, Database, Result, run
from nxalembic_templates.engines import PLACEHOLDER_URL, database_url, sqlite_file
from nxalembic_templates.errors import NXAlembicError
from nxalembic_templates.settings import Settings, load_settings, read_alembic_ini, settings_for
from test_pyproject import pyproject_project

COGS = ("core", "economy", "music")

# -- the resolver, in-process ------------------------------------------------------------------


def settings_in(folder: Path, url: str | None = None) -> Settings:
    """An nxalembic.ini in *folder* (with *url* when given), loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nxalembic.ini").write_text(
        "[nxalembic]\nmodule = mybot.main\n" + (f"url = {url}\n" if url else ""), encoding="utf-8"
    )
    return load_settings(folder / "nxalembic.ini")


def none() -> str | None:
    return None


def test_the_first_source_set_wins_and_each_is_asked_only_if_needed(tmp_path: Path) -> None:
    asked: list[str] = []

    def source(name: str, url: str | None) -> Callable[[], str | None]:
        return lambda: asked.append(name) or url  # type: ignore[func-returns-value]

    configured = settings_in(tmp_path / "p", "postgresql://h/settings")
    bare = settings_in(tmp_path / "q")
    ini, models = source("ini", "postgresql://h/ini"), source("models", "postgresql://h/models")
    assert database_url(configured, "postgresql://h/x", ini, models) == "postgresql://h/x"
    assert database_url(configured, None, ini, models) == "postgresql://h/settings"
    assert asked == []
    assert database_url(bare, None, ini, models) == "postgresql://h/ini"
    assert asked == ["ini"]
    assert database_url(bare, None, source("ini", PLACEHOLDER_URL), models) == "postgresql://h/models"
    assert database_url(bare, None, source("ini", "  "), models) == "postgresql://h/models"
    with pytest.raises(NXAlembicError, match=r"^-x url= is empty"):
        database_url(configured, " ", ini, models)
    with pytest.raises(
        NXAlembicError, match=r"^no database URL: set 'url = .*' under \[nxalembic\] in nxalembic.ini"
    ):
        database_url(bare, None, none, none)


@pytest.mark.parametrize("source", ["given", "settings", "ini", "models"])
def test_a_relative_sqlite_path_is_anchored_at_the_settings_folder_from_every_source(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative = "sqlite+aiosqlite:///data/g.sqlite"
    settings = settings_in(tmp_path / "project", relative if source == "settings" else None)
    monkeypatch.chdir(tmp_path)
    url = database_url(
        settings,
        relative if source == "given" else None,
        (lambda: relative) if source == "ini" else none,
        (lambda: relative) if source == "models" else none,
    )
    assert url == f"sqlite+aiosqlite:///{tmp_path / 'project' / 'data' / 'g.sqlite'}"
    assert sqlite_file(url, Path("/elsewhere")) == tmp_path / "project" / "data" / "g.sqlite"
    for memory in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:m?mode=memory&uri=true"):
        assert database_url(settings, memory, none, none) == memory
        assert sqlite_file(memory, tmp_path) is None
    assert database_url(settings, "postgresql://u@h/db", none, none) == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("ini_line", "toml"),
    [
        ("sqlalchemy.url = sqlite:///%(here)s/a.db", ""),
        ("sqlalchemy.url = postgresql://u:p%%40ss@h/db", ""),
        ("# sqlalchemy.url =", 'sqlalchemy.url = "sqlite:///toml.db"'),  # Alembic ignores it there
        ("sqlalchemy.url = sqlite:///ini.db", 'sqlalchemy.url = "sqlite:///toml.db"'),
    ],
)
def test_the_start_up_reader_of_alembic_ini_gives_alembics_own_answer(
    tmp_path: Path, ini_line: str, toml: str
) -> None:
    """The fast path reads alembic.ini without Alembic: it must read the URL Alembic reads."""
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = %(here)s/migrations\n{ini_line}\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(f"[tool.alembic]\n{toml}\n", encoding="utf-8")
    alembic = Config(str(ini), toml_file=str(tmp_path / "pyproject.toml"))
    ours = read_alembic_ini(ini)
    assert ours is not None
    assert ours.url == alembic.get_main_option("sqlalchemy.url")
    assert ours.script_location == tmp_path / "migrations"


def test_settings_belong_to_the_folder_of_alembic_ini_before_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, other = tmp_path / "here", tmp_path / "other"
    here.mkdir()
    (here / "pyproject.toml").write_text('[tool.nxalembic]\nmodule = "herebot"\n', encoding="utf-8")
    settings_in(other)
    monkeypatch.chdir(here)
    assert settings_for(other / "alembic.ini") == other / "nxalembic.ini"
    assert settings_for(tmp_path / "bare" / "alembic.ini") == here / "pyproject.toml"  # none there
    assert settings_for(None) == here / "pyproject.toml"  # a Config built without a file


# -- the routes, on real files -------------------------------------------------------------------

#: A bot process calling the start-up API: prints ``OUTCOME`` and the results, or ``ERROR`` and the message.
API_SCRIPT = """\
import asyncio, json, sys
import nxalembic_templates
{bot}

async def main():
    try:
        results = await nxalembic_templates.upgrade(bot, mode=sys.argv[1])
    except Exception as exc:
        print("ERROR " + type(exc).__name__ + ": " + str(exc), flush=True)
        return
    print("OUTCOME " + json.dumps({{r.cog: [r.now, r.behind] for r in results}}), flush=True)

asyncio.run(main())
"""


def start_api(project: BotProject, mode: str, cwd: Path, bot: str = "from demobot.main import bot") -> str:
    """Run the start-up API in a bot process started in *cwd*; its one ``OUTCOME``/``ERROR`` line."""
    script = project.path / "start_api.py"
    script.write_text(API_SCRIPT.format(bot=bot), encoding="utf-8")
    result = run([sys.executable, str(script), mode], cwd=cwd, env=project.env)
    [line] = [line for line in result.stdout.splitlines() if line.startswith(("OUTCOME", "ERROR"))]
    assert "Traceback" not in result.output, result.output
    return line


def relative_sqlite_project(make_project: Callable[..., BotProject]) -> BotProject:
    """The example bot whose models open ``./g.sqlite`` (no URL anywhere else), with its revisions."""
    project = make_project("sqlite+aiosqlite")
    project.db = Database("sqlite+aiosqlite:///g.sqlite")  # the env var the bot reads, as written
    project.nxalembic("migrate")
    return project


def heads(project: BotProject) -> dict[str, list[str]]:
    return {cog: [path.name.split("_", 1)[0] for path in project.revisions(cog)] for cog in COGS}


class Routes:
    """The three routes to one project (*other*), each run from another project's folder (*cwd*)."""

    def __init__(self, project: BotProject, cwd: Path) -> None:
        self.project, self.cwd = project, cwd
        self.config = ("-c", str(project.path / "alembic.ini"))

    def alembic(self, cog: str, *args: str) -> Result:
        return run([ALEMBIC, *self.config, "-x", f"cog={cog}", *args], cwd=self.cwd, env=self.project.env)

    def nxalembic(self, *args: str) -> Result:
        return run([NXALEMBIC, *self.config, *args], cwd=self.cwd, env=self.project.env)

    def api(self, mode: str) -> dict[str, list[Any]]:
        line = start_api(self.project, mode, self.cwd)
        assert line.startswith("OUTCOME"), line
        return dict(json.loads(line.removeprefix("OUTCOME ")))

    def apply(self, route: str) -> None:
        if route == "alembic":
            for cog in ("core", "music", "economy"):
                self.alembic(cog, "upgrade", "head")
        elif route == "nxalembic":
            self.nxalembic("upgrade")
        else:
            self.api("apply")

    def currents(self, route: str) -> dict[str, list[str]]:
        """Each cog's revision in the database, as *route* reads it."""
        if route == "alembic":
            return {cog: self.alembic(cog, "current").stdout.split()[:1] for cog in COGS}
        if route == "nxalembic":
            status = json.loads(self.nxalembic("status", "--json").stdout)
            return {c["cog"]: c["current"] for c in status["cogs"]}
        return {cog: now for cog, (now, _behind) in self.api("verify").items()}


@pytest.mark.parametrize(
    ("writer", "reader"), [("alembic", "nxalembic"), ("nxalembic", "api"), ("api", "alembic")]
)
def test_every_route_resolves_the_same_project_and_database_file(
    make_project: Callable[..., BotProject], writer: str, reader: str
) -> None:
    """What one route applies, the other reads back from the one file, whatever the working folder.

    The project keeps its database in ``g.sqlite`` beside its nxalembic.ini (a relative URL
    there; the bot's models open the same file by its absolute path); every route runs from
    another project's folder, whose ``[tool.nxalembic]`` names a database of its own.
    """
    here = make_project("sqlite+aiosqlite", name="here", db_name="here")
    pyproject_settings(here, "sqlite+aiosqlite:///here.db")
    project = make_project("sqlite+aiosqlite", name="other", db_name="other")
    project.edit("nxalembic.ini", "bot = bot\n", "bot = bot\nurl = sqlite+aiosqlite:///g.sqlite\n")
    project.db = Database(f"sqlite+aiosqlite:///{project.path / 'g.sqlite'}")
    project.nxalembic("migrate")
    routes = Routes(project, here.path)
    routes.apply(writer)
    assert routes.currents(reader) == heads(project)
    assert {"core_users", "music_songs", "economy_wallets"} <= project.db.tables()
    assert not list(here.path.glob("*.db")) and not list(here.path.glob("*.sqlite"))


def test_the_start_up_api_refuses_a_relative_sqlite_file_the_bot_would_open_elsewhere(
    make_project: Callable[..., BotProject], tmp_path: Path
) -> None:
    """Started from another folder, the bot opens ./g.sqlite there: migrating the project's is refused."""
    project = relative_sqlite_project(make_project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    line = start_api(project, "apply", elsewhere)
    assert line.startswith("ERROR NXAlembicError: the bot opens the SQLite database "), line
    assert str(elsewhere / "g.sqlite") in line and str(project.path / "g.sqlite") in line, line
    assert "\n" not in line.strip()
    assert not (elsewhere / "g.sqlite").exists()
    assert (
        not (project.path / "g.sqlite").exists()
        or not Database(f"sqlite:///{project.path / 'g.sqlite'}").tables()
    )
    # from the project folder, the bot's file is the project's: migrated, as the CLI would
    assert start_api(project, "apply", project.path).startswith("OUTCOME")
    assert "core_users" in Database(f"sqlite:///{project.path / 'g.sqlite'}").tables()


FRAMEWORK_BOT = """\
from nextcord.ext import commands


class FrameworkBot(commands.Bot):
    '''A base class every bot of a team builds on, shipped in a package of its own.'''
"""


def framework(tmp_path: Path) -> Path:
    """A shared framework package in its own folder, with its own alembic.ini, settings and database."""
    root = tmp_path / "framework"
    (root / "fwbot").mkdir(parents=True)
    (root / "fwbot" / "__init__.py").write_text(FRAMEWORK_BOT, encoding="utf-8")
    (root / "fwbot" / "shared.py").write_text("def setup(bot):\n    pass\n", encoding="utf-8")
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n", encoding="utf-8")
    (root / "migrations" / "versions").mkdir(parents=True)
    (root / "nxalembic.ini").write_text(
        f"[nxalembic]\nmodule = fwbot\nurl = sqlite:///{root / 'framework.db'}\n", encoding="utf-8"
    )
    return root


def framework_bot(extensions: tuple[str, ...]) -> str:
    loads = "".join(f"bot.load_extension({name!r})\n" for name in extensions)
    return (
        "import nextcord\nfrom fwbot import FrameworkBot\nfrom demobot import models\n"
        "bot = FrameworkBot(command_prefix='!', intents=nextcord.Intents.default())\n" + loads
    )


def test_the_start_up_api_migrates_the_bot_instances_project_not_its_base_class_package(
    make_project: Callable[..., BotProject], tmp_path: Path
) -> None:
    fw = framework(tmp_path)
    project = make_project("sqlite+aiosqlite")
    project.nxalembic("migrate")
    env = {**project.env, "PYTHONPATH": str(fw)}  # as pip install -e ../framework would
    own = framework_bot(("demobot.cogs.music", "demobot.cogs.economy"))
    script = project.path / "start_api.py"
    script.write_text(API_SCRIPT.format(bot=own), encoding="utf-8")
    result = run([sys.executable, str(script), "apply"], cwd=project.path, env=env)
    assert "OUTCOME" in result.stdout, result.output
    assert {"core_users", "music_songs", "economy_wallets"} <= project.db.tables()
    assert not (fw / "framework.db").exists()

    # an extension of the framework's folder too: two projects, which one is meant is not guessed
    both = framework_bot(("demobot.cogs.music", "fwbot.shared"))
    script.write_text(API_SCRIPT.format(bot=both), encoding="utf-8")
    result = run([sys.executable, str(script), "apply"], cwd=tmp_path, env=env)
    [line] = [line for line in result.stdout.splitlines() if line.startswith(("OUTCOME", "ERROR"))]
    assert line.startswith("ERROR NXAlembicError: the bot's code belongs to two projects: "), line
    assert str(fw / "alembic.ini") in line and str(project.path / "alembic.ini") in line
    assert "config=" in line and "Traceback" not in result.output
    assert not (fw / "framework.db").exists()


def pyproject_settings(project: BotProject, url: str) -> None:
    """Move *project*'s settings into ``[tool.nxalembic]`` of its pyproject.toml, with its own *url*."""
    (project.path / "nxalembic.ini").unlink()
    (project.path / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [tool.nxalembic]
            module = "demobot.main"
            url = "{url}"
            """),
        encoding="utf-8",
    )


@pytest.mark.parametrize("command", ["nxalembic", "alembic"])
def test_config_given_with_c_brings_its_own_projects_settings(
    make_project: Callable[..., BotProject], command: str
) -> None:
    """Run from a project with [tool.nxalembic], ``-c other/alembic.ini`` migrates other's database."""
    here = make_project("sqlite+aiosqlite", name="here", db_name="here")
    pyproject_settings(here, "sqlite+aiosqlite:///here.db")
    other = make_project("sqlite+aiosqlite", name="other", db_name="other")
    other.nxalembic("migrate")
    ini = str(other.path / "alembic.ini")
    executable, args = (
        (NXALEMBIC, ["upgrade"])
        if command == "nxalembic"
        else (ALEMBIC, ["-x", "cog=core", "upgrade", "head"])
    )
    result = run([executable, "-c", ini, *args], cwd=here.path, env=other.env, check=False)
    assert result.returncode == 0, result.output
    assert "core_users" in other.db.tables()
    assert not (here.path / "here.db").exists(), "other's revisions went to this project's database"


def test_stock_alembic_refuses_another_projects_tool_alembic(tmp_path: Path) -> None:
    """Stock alembic reads [tool.alembic] of the working folder: never another project's revisions."""
    here, other = pyproject_project(tmp_path / "here"), pyproject_project(tmp_path / "other")
    for project in (here, other):
        project.nxalembic("init", "--pyproject", "--module", "demobot.main")
    other.nxalembic("migrate")
    ini = other.path / "alembic.ini"
    result = run(
        [ALEMBIC, "-c", str(ini), "-x", "cog=core", "upgrade", "head"],
        cwd=here.path,
        env=other.env,
        check=False,
    )
    assert result.returncode != 0
    [line] = [line for line in result.output.splitlines() if line.startswith("FAILED")]
    assert str(here.path / "pyproject.toml") in line and str(ini) in line and "script_location" in line, line
    assert "Traceback" not in result.output
    assert not other.db.tables() and not list(here.path.glob("*.db"))
    # from the project's own folder, or through nxalembic -c, it is the project's [tool.alembic]
    run([NXALEMBIC, "-c", str(ini), "upgrade"], cwd=here.path, env=other.env)
    assert "core_users" in other.db.tables()


def test_two_cogs_whose_names_differ_only_in_case_are_refused_at_discovery(
    make_project: Callable[..., BotProject],
) -> None:
    project = make_project("sqlite+aiosqlite")
    project.edit(
        "demobot/cogs/economy.py",
        "from ..db import base_config\n",
        'from ..db import base_config\n\n__nxalembic_cog__ = "Music"\n',
    )
    for result in (project.nxalembic("status", check=False), project.cog("music", "current", check=False)):
        assert result.returncode != 0
        [line] = [line for line in result.output.splitlines() if "differ only in case" in line]
        assert "demobot.cogs.economy" in line and "demobot.cogs.music" in line, line
        assert "__nxalembic_cog__" in line and "Traceback" not in result.output
    assert not project.db.tables()


def test_a_relative_scratch_url_is_anchored_like_the_database_url(
    make_project: Callable[..., BotProject], elsewhere: Path
) -> None:
    """``-x scratch_url=sqlite:///scratch.db`` names a file beside nxalembic.ini, as ``-x url=`` does,
    whatever the working folder (run here from another folder with ``-c``)."""
    project = make_project("sqlite")
    offline = ("-x", "cog=core", "-x", "offline=true")
    project.alembic(*offline, "revision", "--autogenerate", "-m", "users", "--rev-id", "users")
    run(
        [
            ALEMBIC,
            "-c",
            str(project.path / "alembic.ini"),
            *offline,
            "-x",
            "scratch_url=sqlite:///scratch.db",
            "revision",
            "--autogenerate",
            "-m",
            "again",
            "--rev-id",
            "again",
        ],
        cwd=elsewhere,
        env=project.env,
    )
    assert (project.path / "scratch.db").exists()
    assert not (elsewhere / "scratch.db").exists()
