"""The ``nxalembic`` command through its real executable: every cog in one process.

Most tests run on SQLite through aiosqlite and on PostgreSQL through asyncpg.  PostgreSQL
checks foreign keys when a table is created, so a wrong cog order fails there.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, NXALEMBIC, BotProject, at_head, migrated, run, stock_at_head

CLI_BACKENDS = ["sqlite+aiosqlite", "postgresql+asyncpg", "mysql+aiomysql"]
#: core has no foreign keys, music references core, economy references music.
DEPENDENCY_ORDER = ["core", "music", "economy"]
MUSIC_TABLES = {"music_songs", "music_playlists", "playlists_songs"}
ECONOMY_TABLES = {"economy_wallets", "economy_purchases"}
LOCALE = "    locale: str | None = ormar.String(max_length=10, nullable=True)\n"
PLAYS = "    plays: int | None = ormar.Integer(nullable=True)\n"


@pytest.fixture(params=CLI_BACKENDS)
def cli_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def project(make_project: Any, cli_backend: str) -> BotProject:
    return make_project(cli_backend)


@pytest.fixture
def migrated_project(make_project: Any, cli_backend: str) -> BotProject:
    """A copy of the project after ``nxalembic migrate`` (made once per backend): for the tests of
    what comes after it; test_migrate_names_revisions_... tests migrate itself."""
    return make_project(cli_backend, prepared=migrated)


@pytest.fixture
def project_at_head(make_project: Any, cli_backend: str) -> BotProject:
    """A copy of the project after ``nxalembic migrate`` and ``nxalembic upgrade`` (made once per backend)."""
    return make_project(cli_backend, prepared=at_head)


def revision_id(path: Path) -> str:
    return re.search(r"^revision: str = '(\w+)'", path.read_text(), re.M).group(1)  # type: ignore[union-attr]


def chain(project: BotProject, cog: str) -> list[str]:
    """The cog's revision ids from base to head."""
    down = {}
    for path in project.revisions(cog):
        parent = re.search(r"^down_revision: .* = '?(\w+)'?$", path.read_text(), re.M).group(1)  # type: ignore[union-attr]
        down[parent] = revision_id(path)
    ids, current = [], "None"
    while current in down:
        current = down[current]
        ids.append(current)
    return ids


def head(project: BotProject, cog: str) -> str:
    return chain(project, cog)[-1]


def normalised_snapshot(project: BotProject) -> dict[str, Any]:
    """All tables; version rows become ``cog#n`` (position in the cog's chain), ids being random."""
    names = {rev: f"{cog}#{n}" for cog in DEPENDENCY_ORDER for n, rev in enumerate(chain(project, cog))}
    snap = project.db.snapshot()
    for table, contents in snap.items():
        if table.startswith("alembic_version_") and contents:
            contents["rows"] = sorted((names.get(row[0], row[0]),) for row in contents["rows"])
    return snap


def failed_line(result: Any) -> str:
    """The one line a failing command writes to stderr; asserts exactly one, without traceback."""
    assert result.returncode != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("database: "):  # which database, before it is touched
        lines = lines[1:]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("FAILED: "), lines[0]
    return lines[0]


def status(project: BotProject) -> dict[str, Any]:
    data = json.loads(project.nxalembic("status", "--json").stdout)
    data["by_cog"] = {row["cog"]: row for row in data["cogs"]}
    return data


def add_music_plays(project: BotProject) -> None:
    project.edit(
        "demobot/cogs/music/models.py",
        "    title: str = ormar.String(max_length=200)\n",
        "    title: str = ormar.String(max_length=200)\n" + PLAYS,
    )


def add_core_locale(project: BotProject) -> None:
    project.edit(
        "demobot/models.py",
        "    name: str = ormar.String(max_length=100)\n",
        "    name: str = ormar.String(max_length=100)\n" + LOCALE,
    )


# -- the parser ------------------------------------------------------------------------------


def test_parser_is_importable_for_the_docs() -> None:
    from nxalembic_templates.cli import parser

    assert parser.prog == "nxalembic"
    args = parser.parse_args(["upgrade", "--cog", "music", "abc123"])
    assert (args.command, args.cog, args.revision, args.sql) == ("upgrade", "music", "abc123", False)
    args = parser.parse_args(["-q", "migrate", "--app", "economy", "--empty", "-m", "note"])
    assert (args.quiet, args.cog, args.empty, args.message) == (True, "economy", True, "note")
    args = parser.parse_args(["-x", "url=sqlite://", "upgrade", "-x", "cog=music"])
    assert (args.x, args.x_after) == (["url=sqlite://"], ["cog=music"]), (
        "-x is accepted after the command too"
    )
    args = parser.parse_args(["status", "--json"])
    assert args.json and not args.quiet
    assert parser.parse_args(["upgrade", "-q"]).quiet
    subcommands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(subcommands) == {"migrate", "upgrade", "downgrade", "status", "check", "init"}


# -- migrate + upgrade against the stock commands ----------------------------------------------


def test_migrate_and_upgrade_equal_the_stock_commands_cog_by_cog(make_project: Any, cli_backend: str) -> None:
    ours = make_project(cli_backend, name="a", db_name="a")
    ours.nxalembic("migrate")
    ours.nxalembic("upgrade")
    # The stock commands cog by cog in DEPENDENCY_ORDER (made once per database kind, copied).
    stock = make_project(cli_backend, name="b", db_name="b", prepared=stock_at_head)

    for cog in DEPENDENCY_ORDER:
        [mine], [theirs] = ours.revisions(cog), stock.revisions(cog)
        assert ours.revision_ops(mine) == stock.revision_ops(theirs), cog
    tables = ours.db.tables()
    assert {"core_users", *MUSIC_TABLES, *ECONOMY_TABLES} <= tables
    assert {f"alembic_version_{cog}" for cog in DEPENDENCY_ORDER} <= tables
    assert "alembic_version" not in tables
    assert normalised_snapshot(ours) == normalised_snapshot(stock)


# -- migrate -------------------------------------------------------------------------------------


def test_migrate_names_revisions_writes_nothing_without_changes_and_blank_with_empty(
    project: BotProject,
) -> None:
    first = project.nxalembic("migrate")
    for cog in DEPENDENCY_ORDER:
        assert len(project.revisions(cog)) == 1
        assert f"{cog}: wrote migrations/versions/{cog}/" in first.stdout
    assert project.revisions("core")[0].name.endswith("_create_core_users.py")
    assert "3 revision files written" in first.stdout
    assert project.db.tables() == set(), "migrate must leave the database alone"

    again = project.nxalembic("migrate")
    for cog in DEPENDENCY_ORDER:
        assert f"{cog}: no changes" in again.stdout
        assert len(project.revisions(cog)) == 1
    assert "0 revision files written" in again.stdout

    before = {cog: project.revisions(cog) for cog in DEPENDENCY_ORDER}
    blank = project.nxalembic("migrate", "--cog", "music", "--empty", "-m", "by hand")
    [new] = [p for p in project.revisions("music") if p not in before["music"]]
    assert new.name.endswith("_by_hand.py") and "music: wrote" in blank.stdout
    assert "    pass" in project.revision_ops(new) and "op." not in project.revision_ops(new)
    assert f"= '{revision_id(before['music'][0])}'" in new.read_text()
    assert project.revisions("core") == before["core"] and project.revisions("economy") == before["economy"]

    add_core_locale(project)
    named = project.nxalembic("migrate", "--app", "core", "-m", "user locale")
    [locale] = [p for p in project.revisions("core") if p not in before["core"]]
    assert locale.name.endswith("_user_locale.py")
    assert re.search(r"add_column\(.*'locale'", project.revision_ops(locale))
    assert "music" not in named.stdout and "economy" not in named.stdout


#: Behaviour that is decided before any database is asked (a name derived from the operations, a
#: cycle between the models' foreign keys) runs on SQLite only.
BEFORE_ANY_DATABASE = pytest.mark.parametrize("cli_backend", ["sqlite+aiosqlite"])


@BEFORE_ANY_DATABASE
def test_migrate_derives_the_message_from_the_operations(migrated_project: BotProject) -> None:
    project = migrated_project
    add_music_plays(project)
    project.nxalembic("migrate")
    [added] = [p for p in project.revisions("music") if "create" not in p.name]
    assert added.name.endswith("_add_music_songs_plays.py")
    assert "add_music_songs_plays" in added.read_text()


# -- upgrade and downgrade -------------------------------------------------------------------------


def test_upgrade_reports_each_cog_in_dependency_order_and_quiet_silences(
    migrated_project: BotProject,
) -> None:
    project = migrated_project
    out = project.nxalembic("upgrade").stdout.splitlines()
    assert out == [
        *(f"{cog}: 1 revision applied, now at {head(project, cog)}" for cog in DEPENDENCY_ORDER),
        "upgraded 3 cogs: 3 revisions applied",
    ]
    for cog in DEPENDENCY_ORDER:
        assert project.db.versions(f"alembic_version_{cog}") == [head(project, cog)]
    again = project.nxalembic("upgrade").stdout
    assert f"music: nothing to do, at {head(project, 'music')}" in again
    assert "upgraded 3 cogs: 0 revisions applied" in again

    add_music_plays(project)
    project.nxalembic("migrate", "--app", "music")
    assert project.nxalembic("-q", "upgrade").output == ""
    assert project.db.versions("alembic_version_music") == [head(project, "music")]
    add_core_locale(project)
    project.nxalembic("migrate", "-q")
    assert project.nxalembic("upgrade", "-q").output == ""
    assert "locale" in {c[0] for c in project.db.snapshot({"core_users"})["core_users"]["columns"]}


def test_upgrade_one_cog_to_a_revision_and_downgrade_one_step_or_to_base(
    migrated_project: BotProject,
) -> None:
    project = migrated_project
    add_music_plays(project)
    project.nxalembic("migrate", "--app", "music")
    base, top = chain(project, "music")

    project.nxalembic("upgrade", "--app", "core")
    out = project.nxalembic("upgrade", "--app", "music", base).stdout
    assert f"music: 1 revision applied, now at {base}" in out
    assert project.db.versions("alembic_version_music") == [base]
    assert project.db.versions("alembic_version_economy") == [] and not ECONOMY_TABLES & project.db.tables()
    project.nxalembic("upgrade")
    assert project.db.versions("alembic_version_music") == [top]

    out = project.nxalembic("downgrade", "music").stdout
    assert f"music: 1 revision undone, now at {base}" in out
    assert project.db.versions("alembic_version_music") == [base]
    assert "plays" not in {c[0] for c in project.db.snapshot({"music_songs"})["music_songs"]["columns"]}

    keep = project.db.snapshot({"core_users", "alembic_version_core"})
    project.nxalembic("downgrade", "economy", "base")  # PostgreSQL: economy references music
    project.nxalembic("downgrade", "--cog", "music", "base")
    assert not (MUSIC_TABLES | ECONOMY_TABLES) & project.db.tables()
    assert project.db.versions("alembic_version_music") == []
    assert project.db.snapshot({"core_users", "alembic_version_core"}) == keep


def test_upgrade_sql_prints_every_cog_in_dependency_order(migrated_project: BotProject) -> None:
    project = migrated_project
    sql = project.nxalembic("upgrade", "--sql").stdout
    positions = [
        sql.index(f"CREATE TABLE {table}") for table in ("core_users", "music_songs", "economy_wallets")
    ]
    assert positions == sorted(positions)
    headers = [sql.index(f"-- cog {cog}:") for cog in DEPENDENCY_ORDER]
    assert headers == sorted(headers)
    for cog in DEPENDENCY_ORDER:
        assert f"INSERT INTO alembic_version_{cog}" in sql
    assert project.db.tables() == set(), "--sql must not touch the database"

    only = project.nxalembic("upgrade", "--app", "music", "--sql").stdout
    assert (
        "CREATE TABLE music_songs" in only and "CREATE TABLE core_users" not in only and "economy" not in only
    )


# -- order, cycles, failures ------------------------------------------------------------------------


def close_a_cycle(project: BotProject) -> None:
    """core gets a model referencing economy: core -> economy -> music -> core."""
    (project.path / "demobot" / "loyalty.py").write_text(
        '"""A core model that references an economy wallet: closes a cycle between cogs."""\n'
        "from typing import Optional\n\nimport ormar\n\n"
        "from .cogs.economy import Wallet\nfrom .db import base_config\n\n\n"
        "class Loyalty(ormar.Model):\n"
        '    ormar_config = base_config.copy(tablename="core_loyalty")\n\n'
        "    id: int = ormar.Integer(primary_key=True)\n"
        "    wallet: Optional[Wallet] = ormar.ForeignKey(Wallet)\n"
    )
    with (project.path / "demobot" / "main.py").open("a") as fh:
        fh.write("\nfrom . import loyalty  # noqa: E402,F401\n")


@BEFORE_ANY_DATABASE
def test_a_foreign_key_cycle_between_cogs_is_an_error_naming_it(project: BotProject) -> None:
    close_a_cycle(project)
    for args in (("upgrade",), ("migrate",), ("upgrade", "--sql")):
        line = failed_line(project.nxalembic(*args, check=False))
        assert "core -> economy -> music -> core" in line, line
    assert project.db.tables() == set()
    assert all(project.revisions(cog) == [] for cog in DEPENDENCY_ORDER)

    # the way out the message names: one cog at a time
    project.nxalembic("migrate", "--app", "music")
    [music] = project.revisions("music")
    assert "op.create_table('music_songs'" in project.revision_ops(music)


def test_a_failing_revision_is_named_and_later_cogs_are_untouched(migrated_project: BotProject) -> None:
    project = migrated_project
    project.nxalembic("migrate", "--app", "music", "--empty", "-m", "boom")
    [boom] = [p for p in project.revisions("music") if p.name.endswith("_boom.py")]
    text = boom.read_text()
    boom.write_text(text.replace("    pass\n", '    raise RuntimeError("kaboom")\n', 1))

    result = project.nxalembic("upgrade", check=False)
    assert result.returncode != 0
    assert f"core: 1 revision applied, now at {head(project, 'core')}" in result.stdout
    assert "music:" not in result.stdout and "economy:" not in result.stdout
    line = failed_line(result)
    assert "'music'" in line and revision_id(boom) in line and "kaboom" in line
    assert "not touched: economy" in line
    assert project.db.versions("alembic_version_core") == [head(project, "core")]
    if project.db.backend == "mysql":  # DDL commits by itself: music's first revision stays applied
        [first] = [p for p in project.revisions("music") if p != boom]
        assert project.db.versions("alembic_version_music") == [revision_id(first)]
        assert MUSIC_TABLES <= project.db.tables() and not ECONOMY_TABLES & project.db.tables()
    else:  # the whole cog is one transaction: music's first revision is rolled back with the failing one
        assert project.db.versions("alembic_version_music") == []
        assert not (MUSIC_TABLES | ECONOMY_TABLES) & project.db.tables()
    assert project.db.versions("alembic_version_economy") == []


# -- status and check ------------------------------------------------------------------------------


def test_status_json_counts_pending_flags_changes_and_lists_the_rest(migrated_project: BotProject) -> None:
    project = migrated_project
    add_music_plays(project)
    project.nxalembic("migrate", "--app", "music")

    before = status(project)
    assert {cog: row["pending"] for cog, row in before["by_cog"].items()} == {
        "core": 1,
        "music": 2,
        "economy": 1,
    }
    for cog, row in before["by_cog"].items():
        assert row["current"] == [] and row["head"] == [head(project, cog)]
        assert row["version_table"] == f"alembic_version_{cog}" and row["differs"] is False
    assert before["by_cog"]["music"]["extension"] == "demobot.cogs.music"
    assert before["by_cog"]["core"]["extension"] is None
    assert before["extensions_without_models"] == ["demobot.cogs.fun"]
    assert before["unowned_tables"] == []
    assert project.db.tables() == set(), "status must leave the database alone"

    project.nxalembic("upgrade")
    project.db.execute("CREATE TABLE stray_notes (id INTEGER PRIMARY KEY)")
    add_core_locale(project)
    after = status(project)
    for cog, row in after["by_cog"].items():
        assert row["pending"] == 0 and row["current"] == row["head"] == [head(project, cog)]
    assert after["by_cog"]["core"]["differs"] is True
    assert any("locale" in change for change in after["by_cog"]["core"]["model_changes"])
    assert not after["by_cog"]["music"]["differs"] and not after["by_cog"]["economy"]["differs"]
    assert after["unowned_tables"] == ["stray_notes"]
    assert after["extensions_without_models"] == ["demobot.cogs.fun"]

    table = project.nxalembic("status").stdout
    assert re.search(r"^core\s+alembic_version_core\s+\w+\s+\w+\s+0\s+1 change$", table, re.M), table
    assert "extensions without models: demobot.cogs.fun" in table
    assert "tables owned by no loaded cog: stray_notes" in table


def test_check_fails_on_a_model_change_until_migrated_and_upgraded(project_at_head: BotProject) -> None:
    project = project_at_head
    assert project.nxalembic("check").returncode == 0

    add_core_locale(project)
    failed = project.nxalembic("check", check=False)
    assert failed.returncode == 1
    assert re.search(r"^core: models differ from migrations: .*locale", failed.stdout, re.M), failed.output
    assert "music:" not in failed.stdout and "economy:" not in failed.stdout
    assert "run 'nxalembic migrate' to write revisions for: core" in failed.stderr

    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    passed = project.nxalembic("check")
    assert passed.returncode == 0 and "models match" in passed.stdout


# -- init --------------------------------------------------------------------------------------------


def test_init_writes_a_working_skeleton_and_keeps_an_existing_nxalembic_ini(tmp_path: Path) -> None:
    out = run([NXALEMBIC, "init", "--module", "demobot.main"], cwd=tmp_path).stdout
    assert {"env.py", "script.py.mako", "README", "versions"} <= {
        p.name for p in (tmp_path / "migrations").iterdir()
    }
    assert "script_location = %(here)s/migrations" in (tmp_path / "alembic.ini").read_text()
    ini = (tmp_path / "nxalembic.ini").read_text()
    assert "[nxalembic]" in ini and "module = demobot.main" in ini and "bot = bot" in ini
    assert "nxalembic.ini" in out

    # the skeleton is enough to migrate the example bot
    shutil.copytree(EXAMPLES / "demobot", tmp_path / "demobot", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"DEMOBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"}
    run([NXALEMBIC, "migrate"], cwd=tmp_path, env=env)
    assert "upgraded 3 cogs: 3 revisions applied" in run([NXALEMBIC, "upgrade"], cwd=tmp_path, env=env).stdout

    (tmp_path / "nxalembic.ini").write_text("[nxalembic]\nmodule = mine.bot\n")
    kept = run([NXALEMBIC, "init", "scripts"], cwd=tmp_path)
    assert (tmp_path / "scripts" / "env.py").is_file()
    assert (tmp_path / "nxalembic.ini").read_text() == "[nxalembic]\nmodule = mine.bot\n"
    assert "left as it is" in kept.stdout


def test_init_uses_the_packages_own_template_whatever_the_install(tmp_path: Path) -> None:
    """A copy of the package on PYTHONPATH (as a source or editable install) inits from itself."""
    import nxalembic_templates

    copy = tmp_path / "src" / "nxalembic_templates"
    shutil.copytree(
        Path(nxalembic_templates.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    (copy / "percog" / "README").write_text("template from the copied package\n")
    project = tmp_path / "project"
    project.mkdir()
    code = "import sys; from nxalembic_templates.cli import main; sys.exit(main())"
    run([sys.executable, "-c", code, "init", "m"], cwd=project, env={"PYTHONPATH": str(copy.parent)})
    assert (project / "m" / "README").read_text() == "template from the copied package\n"
    assert (project / "m" / "env.py").is_file() and (project / "nxalembic.ini").is_file()


# -- errors --------------------------------------------------------------------------------------------


def test_errors_are_one_line_without_traceback_and_change_nothing(make_project: Any) -> None:
    project = make_project("sqlite+aiosqlite", prepared=migrated)
    cases = {
        ("upgrade", "--app", "nope"): "known cogs: core, economy, music",
        ("downgrade", "nope"): "unknown cog 'nope'",
        ("upgrade", "abc123"): "needs --cog NAME",
        ("upgrade", "--app", "music", "zzzz"): "cog 'music': Can't locate revision identified by 'zzzz'",
        ("downgrade",): "downgrade needs a cog",
        ("-c", "missing.ini", "status"): "no Alembic config",
        ("frobnicate",): "invalid choice: 'frobnicate'",
        ("-x", "url=postgresql+psycopg://bob:s3cret@127.0.0.1:1/x", "upgrade"): "cannot connect to database",
    }
    for args, expected in cases.items():
        result = project.nxalembic(*args, check=False)
        line = failed_line(result)
        assert expected in line and result.stdout == "", (args, result.output)
        assert "s3cret" not in result.output
    assert project.db.tables() == set()

    loud = project.nxalembic("--raiseerr", "upgrade", "--app", "nope", check=False)
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "unknown cog 'nope'" in loud.stderr


# -- the console script and cli.main() -----------------------------------------------------------------

FREEZE_PROBE = """
import gc, json, sys
from nxalembic_templates import cli

before = gc.get_freeze_count()
print(json.dumps(["main", cli.main(sys.argv[1:]), gc.get_freeze_count() - before]), flush=True)
before = gc.get_freeze_count()
code = cli.script()  # the console script: argv from sys.argv, as the installed `nxalembic`
print(json.dumps(["script", code, gc.get_freeze_count() - before]))
"""


def test_main_in_process_freezes_nothing_and_the_console_script_freezes_the_bot(make_project: Any) -> None:
    """``gc.freeze()`` belongs to the console script, whose process ends with the command: a caller of
    ``cli.main()`` in its own process keeps a heap the garbage collector still walks."""
    project = make_project("sqlite+aiosqlite", prepared=migrated)
    probe = project.write("freeze_probe.py", FREEZE_PROBE)
    result = project.run(sys.executable, str(probe), "-q", "upgrade", "--sql", check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('["')]
    assert lines[0] == ["main", 0, 0], f"cli.main() froze the caller's heap\n{result.output}"
    assert lines[1][:2] == ["script", 0] and lines[1][2] > 0, "the console script no longer freezes the bot"
