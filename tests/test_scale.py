"""Issue 12: many cogs, every command's answer right, and nothing a command leaves behind grows with them.

* each revision is applied once, and only a cog behind its head is upgraded;
* Alembic's ``prepend_sys_path`` does not grow ``sys.path`` by one entry per cog and command;
* ``status``, ``check`` and ``migrate`` report exactly the cogs whose models and database
  differ (docs/performance.rst, "Compared together": how they compare all cogs in one pass);
* the one read of every version table answers what Alembic answers per cog.

How fast (cost linear in cogs, the one pass, the sync SQLite driver under ``sqlite+aiosqlite``,
each revision file read once per process): ``benchmarks/bench_scale.py``, results in
``benchmarks/RESULTS.md``.  Here every observation is written by the revision files themselves
into a log file, never timed.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BotProject, Database, copy_example_bot, run

COGS = ("core", "economy", "music")

#: Appended to each revision file: one line per upgrade() call.
PROBE = """

import json as _json
import sys as _sys

_LOG = __import__("pathlib").Path(__file__).parents[3] / "probe.log"  # next to alembic.ini

_upgrade = upgrade


def upgrade() -> None:
    with open(_LOG, "a", encoding="utf-8") as _log:
        _log.write(_json.dumps({"upgraded": __file__, "sys_path": len(_sys.path)}) + "\\n")
    _upgrade()
"""


@pytest.fixture(scope="module")
def probed_base(tmp_path_factory: pytest.TempPathFactory, initialised_template: Path) -> Path:
    """The example bot on async SQLite with two revisions per cog, each logging to probe.log."""
    path = tmp_path_factory.mktemp("scale") / "bot"
    project = copy_example_bot(path, initialised_template)
    for cog in COGS:
        project.cog(cog, "revision", "--autogenerate", "-m", "create")
        project.cog(cog, "revision", "-m", "second")
    project.db.dispose()
    for cog in COGS:
        files = project.revisions(cog)
        assert len(files) == 2
        for file in files:
            file.write_text(file.read_text() + PROBE, encoding="utf-8")
    return path


@pytest.fixture
def probed(probed_base: Path, tmp_path: Path) -> Iterator[tuple[BotProject, Path, list[Path]]]:
    """A copy of the probed project (fresh database); the log, and the revision files."""
    path = tmp_path / "bot"
    shutil.copytree(probed_base, path, ignore=shutil.ignore_patterns("__pycache__", "*.db", "probe.log"))
    project = BotProject(path, Database(f"sqlite+aiosqlite:///{path / 'bot.db'}"))
    yield project, path / "probe.log", [file for cog in COGS for file in project.revisions(cog)]
    project.db.dispose()


def _entries(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    log.unlink()
    return entries


def test_upgrade_of_many_cogs_applies_each_revision_once_and_keeps_sys_path(probed: Any) -> None:
    project, log, files = probed
    project.nxalembic("upgrade")
    upgraded = [e for e in _entries(log) if "upgraded" in e]
    assert sorted(Path(e["upgraded"]).name for e in upgraded) == sorted(path.name for path in files)
    # prepend_sys_path = . is put in front of sys.path once, not once more per cog
    assert len({e["sys_path"] for e in upgraded}) == 1, upgraded
    assert {cog: len(project.versions(cog)) for cog in COGS} == {cog: 1 for cog in COGS}


def test_upgrade_at_head_changes_nothing_and_a_cog_behind_is_upgraded_alone(probed: Any) -> None:
    """Every deploy runs ``upgrade`` with nothing to do (how cheaply: docs/performance.rst,
    "Nothing to do costs one read", and benchmarks/bench_scale.py's "upgrade, head")."""
    project, log, _files = probed
    project.nxalembic("upgrade")
    _entries(log)
    heads = {cog: project.versions(cog) for cog in COGS}

    result = project.nxalembic("upgrade")
    assert _entries(log) == []  # no upgrade() ran
    assert result.stdout.count("nothing to do") == len(COGS), result.stdout
    assert {cog: project.versions(cog) for cog in COGS} == heads

    project.nxalembic("downgrade", "economy")
    _entries(log)
    result = project.nxalembic("upgrade")
    entries = _entries(log)
    assert [Path(e["upgraded"]).parent.name for e in entries] == ["economy"]
    assert result.stdout.count("nothing to do") == len(COGS) - 1, result.stdout
    assert {cog: project.versions(cog) for cog in COGS} == heads


READ_CURRENTS = """
import json
from pathlib import Path
from alembic.runtime.migration import MigrationContext
from nxalembic_templates import runner
from nxalembic_templates.headcheck import version_rows

project = runner.Project(Path("alembic.ini"))
cogs = sorted(project.schema.cogs)


def alembics(connection, cog):
    opts = {"version_table": project.scope(cog).version_table}
    return sorted(MigrationContext.configure(connection, opts=opts).get_current_heads())


def read(connection):
    tables = {cog: project.scope(cog).version_table for cog in cogs}
    return {"batched": version_rows(connection, tables),
            "one_by_one": {cog: alembics(connection, cog) for cog in cogs}}


print(json.dumps(project.connected(read, read_only=True)))
"""


def test_one_read_of_every_version_table_matches_alembics_own_reads(probed: Any) -> None:
    """The one read of every cog's version table answers what Alembic answers per cog (600 cogs,
    several statements: tests/test_version_rows.py)."""
    project, _log, _files = probed
    script = project.path / "read_currents.py"
    script.write_text(READ_CURRENTS, encoding="utf-8")

    def read() -> dict[str, dict[str, list[str]]]:
        return json.loads(run([sys.executable, str(script)], cwd=project.path, env=project.env).stdout)

    project.nxalembic("upgrade", "--cog", "core")  # economy and music: no version table yet
    answer = read()
    assert answer["batched"] == answer["one_by_one"]
    assert answer["batched"]["economy"] == answer["batched"]["music"] == []
    project.nxalembic("upgrade")
    project.nxalembic("downgrade", "music", "base")  # an empty version table
    answer = read()
    assert answer["batched"] == answer["one_by_one"]
    assert answer["batched"]["music"] == []
    assert answer["batched"]["economy"] == project.db.versions("alembic_version_economy") != []


@pytest.mark.parametrize("command", ["status", "check"])
def test_status_and_check_report_exactly_the_cogs_that_differ(probed: Any, command: str) -> None:
    """CI runs ``check`` on every push: with every cog at its head, a difference under one cog
    (a stray column, a model removed) is reported for that cog alone, in the words of its own
    comparison, and a table no cog owns for none.  (How: all cogs compared in one pass, a cog it
    finds changed again on its own, docs/performance.rst, "Compared together"; how fast:
    benchmarks/bench_scale.py.)"""
    project, _log, _files = probed
    project.nxalembic("upgrade")

    result = project.nxalembic(command)
    assert "models differ" not in result.stdout + result.stderr

    # the database drifts under one cog (a stray column): that cog alone is compared again
    project.db.execute("ALTER TABLE music_songs ADD COLUMN stray INTEGER")
    result = project.nxalembic(command, check=False)
    if command == "check":
        assert result.returncode == 1
        assert "music: models differ from migrations: remove_column music_songs.stray" in result.stdout
        assert "core:" not in result.stdout and "economy:" not in result.stdout, result.stdout
    else:
        rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        assert "in sync" in rows["core"] and "in sync" in rows["economy"], result.stdout
        assert "in sync" not in rows["music"], result.stdout

    # a table no loaded cog owns (the stray column gone again): it may be one a cog's revisions
    # created, whose drop that cog's own check would report; no cog's history creates it here
    project.db.execute("ALTER TABLE music_songs DROP COLUMN stray")
    project.db.execute("CREATE TABLE leftover (id INTEGER PRIMARY KEY)")
    result = project.nxalembic(command)
    assert "models differ" not in result.stdout + result.stderr

    # a model removed: its tables, which music's revisions created, are owned by no loaded cog
    # now; the pass finds nothing, but music's history creates them: music alone is compared on
    # its own, and its check reports their drop
    models = project.path / "demobot" / "cogs" / "music" / "models.py"
    text = models.read_text(encoding="utf-8")
    models.write_text(text[: text.index("class Playlist")], encoding="utf-8")
    project.edit("demobot/cogs/music/__init__.py", "import Playlist, Song", "import Song")
    result = project.nxalembic(command, check=False)
    if command == "check":
        assert result.returncode == 1
        assert "remove_table music_playlists" in result.stdout and "leftover" not in result.stdout
        assert "core:" not in result.stdout and "economy:" not in result.stdout, result.stdout
    else:
        rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
        assert "in sync" not in rows["music"], result.stdout
        assert "in sync" in rows["core"] and "in sync" in rows["economy"], result.stdout


def test_migrate_writes_a_revision_for_the_changed_cog_only(probed: Any) -> None:
    """``migrate`` with every cog at its head writes nothing; after one model change, only that
    cog's revision.  (How fast, the cogs compared in one pass: benchmarks/bench_scale.py.)"""
    project, _log, files = probed
    project.nxalembic("upgrade")

    project.nxalembic("migrate")
    assert [file for cog in COGS for file in project.revisions(cog)] == files

    project.edit(
        "demobot/models.py",
        "    name: str = ormar.String(max_length=100)\n",
        "    name: str = ormar.String(max_length=100)\n"
        "    locale: str | None = ormar.String(max_length=10, nullable=True)\n",
    )
    project.nxalembic("migrate")
    written = sorted(set(file for cog in COGS for file in project.revisions(cog)) - set(files))
    assert [file.parent.name for file in written] == ["core"]
    assert written[0].name.endswith("_add_core_users_locale.py")


OWN_DIRECTIVES = """

def _directives(context, revision, directives):
    with open(__import__("pathlib").Path(context.config.config_file_name).parent / "probe.log", "a") as log:
        log.write(__import__("json").dumps({"directives": True}) + "\\n")


run_migrations(context, process_revision_directives=_directives)
"""


def test_an_env_py_with_its_own_process_revision_directives_gets_each_cog_compared_on_its_own(
    probed: Any,
) -> None:
    """Such a hook may change what a cog's check reports, and a shared pass cannot run it.

    A mechanism the documentation promises (docs/performance.rst, "Compared together": an env.py
    that passes its own ``process_revision_directives`` gets every cog compared on its own): the
    user's hook is called once for each cog.
    """
    project, log, _files = probed
    project.nxalembic("upgrade")
    env_py = project.path / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text(encoding="utf-8").replace("\nrun_migrations(context)\n", OWN_DIRECTIVES),
        encoding="utf-8",
    )
    _entries(log)
    project.nxalembic("check")
    assert sum("directives" in e for e in _entries(log)) == len(COGS)


def test_status_still_reports_every_cog_when_one_version_table_cannot_be_read(probed: Any) -> None:
    """The one read of every version table fails on a broken one: each row then reads its own,
    and only the broken cog's row says what is wrong."""
    project, _log, _files = probed
    project.nxalembic("upgrade")
    project.db.execute("DROP TABLE alembic_version_economy")
    project.db.execute("CREATE TABLE alembic_version_economy (other INTEGER)")
    result = project.nxalembic("status", "--json", check=False)
    rows = {row["cog"]: row for row in json.loads(result.stdout)["cogs"]}
    assert "version_num" in rows["economy"]["not_compared"], rows["economy"]
    for cog in ("core", "music"):
        assert rows[cog]["not_compared"] is None and rows[cog]["model_changes"] == [], rows[cog]
        assert rows[cog]["current"] == rows[cog]["head"] != []


@pytest.mark.parametrize("backend", ["postgresql+asyncpg", "mysql+aiomysql"])
def test_check_reports_the_drifted_cog_alone_on_database_servers(make_project: Any, backend: str) -> None:
    """The shared comparison on PostgreSQL and MariaDB: nothing reported when nothing changed,
    and a drifted cog found and reported alone."""
    project = make_project(backend)
    project.nxalembic("migrate")
    project.nxalembic("upgrade")

    assert project.nxalembic("check").returncode == 0

    project.db.execute("ALTER TABLE music_songs ADD COLUMN stray INTEGER")
    failed = project.nxalembic("check", check=False)
    assert failed.returncode == 1
    assert "music: models differ from migrations: remove_column music_songs.stray" in failed.stdout
    assert "core:" not in failed.stdout and "economy:" not in failed.stdout, failed.stdout
