"""nxalembic.ini options, database URL precedence and discovery rules, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import ALEMBIC, BotProject, run


def set_ini(project: BotProject, **keys: str) -> None:
    lines = ["[nxalembic]", "module = demobot.main", "bot = bot", *(f"{k} = {v}" for k, v in keys.items())]
    (project.path / "nxalembic.ini").write_text("\n".join(lines) + "\n")


def test_version_table_pattern_of_the_predecessor(make_project) -> None:
    project = make_project("sqlite+aiosqlite")
    set_ini(project, version_table="alembic.{cog}")
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    project.cog("core", "upgrade", "head")
    assert "alembic.core" in project.db.tables()
    assert len(project.db.versions("alembic.core")) == 1
    assert "alembic_version_core" not in project.db.tables()


def test_version_location_inside_the_cogs_package(make_project) -> None:
    project = make_project("sqlite")
    set_ini(project, version_location="{cog_dir}/migrations")
    project.cog("music", "revision", "--autogenerate", "-m", "songs")
    files = list((project.path / "demobot/cogs/music/migrations").glob("*.py"))
    assert len(files) == 1 and "music_songs" in files[0].read_text()
    project.cog("music", "upgrade", "head")
    assert "music_songs" in project.db.tables()
    # a single-file cog's {cog_dir} is the folder of its module
    project.cog("economy", "revision", "--autogenerate", "-m", "wallets")
    assert len(list((project.path / "demobot/cogs/migrations").glob("*.py"))) == 1


def test_core_cog_can_be_renamed(make_project) -> None:
    project = make_project("sqlite+aiosqlite")
    set_ini(project, core_cog="shared")
    project.cog("shared", "revision", "--autogenerate", "-m", "users")
    assert len(project.revisions("shared")) == 1
    assert "unknown cog 'core'" in project.cog("core", "current", check=False).output


def test_explicit_cog_name_attribute(make_project) -> None:
    project = make_project("sqlite+aiosqlite")
    project.edit(
        "demobot/cogs/economy.py",
        "from ..db import base_config\n",
        'from ..db import base_config\n\n__nxalembic_cog__ = "bank"\n',
    )
    out = project.cog("bank", "revision", "--autogenerate", "-m", "wallets").output
    assert "/versions/bank/" in out
    assert "known cogs: bank, core, music" in project.cog("economy", "current", check=False).output


def test_database_url_precedence(make_project, tmp_path: Path) -> None:
    project = make_project("sqlite+aiosqlite")
    project.cog("core", "revision", "--autogenerate", "-m", "users")
    ormar_db, ini_db, alembic_db, x_db = (tmp_path / f"{n}.db" for n in ("ormar", "ini", "alembic", "x"))
    project.db.url = f"sqlite+aiosqlite:///{ormar_db}"  # the models' ormar database (lowest)
    project.cog("core", "upgrade", "head")
    assert ormar_db.exists()
    ini = project.path / "alembic.ini"
    ini.write_text(ini.read_text().replace("# sqlalchemy.url =", f"sqlalchemy.url = sqlite:///{alembic_db}"))
    project.cog("core", "upgrade", "head")
    assert alembic_db.exists()
    set_ini(project, url=f"sqlite:///{ini_db}")
    project.cog("core", "upgrade", "head")
    assert ini_db.exists()
    project.alembic("-x", "cog=core", "-x", f"url=sqlite:///{x_db}", "upgrade", "head")
    assert x_db.exists()


def test_runs_from_another_folder_without_pythonpath(make_project, tmp_path: Path) -> None:
    project = make_project("sqlite+aiosqlite")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**project.env, "PYTHONPATH": ""}
    run(
        [
            ALEMBIC,
            "-c",
            str(project.path / "alembic.ini"),
            "-x",
            "cog=core",
            "revision",
            "--autogenerate",
            "-m",
            "u",
        ],
        cwd=elsewhere,
        env=env,
    )
    run(
        [ALEMBIC, "-c", str(project.path / "alembic.ini"), "-x", "cog=core", "upgrade", "head"],
        cwd=elsewhere,
        env=env,
    )
    assert "core_users" in project.db.tables()
    assert len(project.revisions("core")) == 1


def test_discovery_as_reported_by_status(make_project) -> None:
    project = make_project("sqlite+aiosqlite")
    assert project.db.tables() == set()  # an empty database: status refuses a SQLite file that does not exist
    status = json.loads(project.nxalembic("status", "--json").stdout)
    cogs = {c["cog"]: c for c in status["cogs"]}
    assert set(cogs) == {"core", "music", "economy"}
    assert cogs["music"]["extension"] == "demobot.cogs.music"
    assert cogs["core"]["extension"] is None
    assert status["extensions_without_models"] == ["demobot.cogs.fun"]
    project.cog("music", "revision", "--autogenerate", "-m", "songs")
    body = project.revision_ops(project.revisions("music")[0])
    assert "'playlists_songs'" in body  # ormar's automatic many-to-many through table


def test_two_extensions_claiming_one_name_is_an_error(make_project) -> None:
    project = make_project("sqlite+aiosqlite")
    project.edit(
        "demobot/cogs/economy.py",
        "from ..db import base_config\n",
        'from ..db import base_config\n\n__nxalembic_cog__ = "music"\n',
    )
    result = project.cog("music", "current", check=False)
    assert result.returncode != 0
    assert "demobot.cogs.economy" in result.output and "demobot.cogs.music" in result.output
    assert "Traceback" not in result.output
