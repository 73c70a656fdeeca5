"""Hooks env.py passes to ``run_migrations()`` are combined with the cog's own, never put in
their place (migrations.rst), and a hook that raises fails its cog only (status / check)."""

from __future__ import annotations

import json
from typing import Any

from conftest import BotProject

#: env.py filters that let everything through, except one table of economy.
FILTERS = """
def _names(name, type_, parent_names):
    return True


def _objects(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name == "economy_purchases")

"""
EVERYTHING_BUT_PURCHASES = (
    FILTERS
    + """
run_migrations(context, include_name=_names, include_object=_objects)
"""
)
#: The same filters and directives that change nothing.
EVERYTHING_WITH_DIRECTIVES = (
    FILTERS
    + """
def _directives(context, revision, directives):
    pass


run_migrations(context, include_name=_names, include_object=_objects, process_revision_directives=_directives)
"""
)

#: env.py directives that note they ran and ask for another cog's table to be dropped.
DIRECTIVES_DROPPING_MUSIC = """
def _directives(context, revision, directives):
    from pathlib import Path

    from alembic.operations import ops

    (Path(context.config.config_file_name).parent / "directives.ran").write_text("yes")
    for script in directives:
        script.upgrade_ops.ops.append(ops.DropTableOp("music_songs"))


run_migrations(context, process_revision_directives=_directives)
"""

#: An env.py compare_type hook that fails on one table of music.
RAISING_COMPARE_TYPE = """
def _compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    if metadata_column.table.name == "music_songs":
        raise ValueError("compare_type cannot handle music_songs")
    return None


run_migrations(context, compare_type=_compare_type)
"""


def at_head_with_env(make_project: Any, env_tail: str) -> BotProject:
    project = make_project("sqlite")
    project.nxalembic("migrate")
    project.nxalembic("upgrade")
    project.edit("migrations/env.py", "\nrun_migrations(context)\n", env_tail)
    return project


def test_env_py_filters_that_include_everything_still_never_show_other_cogs_tables(make_project: Any) -> None:
    project = at_head_with_env(make_project, EVERYTHING_WITH_DIRECTIVES)
    project.db.execute("CREATE TABLE hand_made (id INTEGER PRIMARY KEY)")
    for cog in ("core", "music", "economy"):
        check = project.cog(cog, "check", check=False)
        assert check.returncode == 0, check.output
        written = project.cog(cog, "-x", "allow_drops=true", "revision", "--autogenerate", "-m", "again")
        assert "no revision written" in written.output, written.output
    assert project.nxalembic("check").returncode == 0
    assert len(project.revisions("core")) == 1


def test_env_py_filter_excluding_a_table_of_the_cog_is_respected_on_both_routes(make_project: Any) -> None:
    """One filter on the stock route, on ``nxalembic check`` with every cog at its head (the
    shared comparison: env.py's filters are combined into its hooks) and on a cog compared on
    its own."""
    project = at_head_with_env(make_project, EVERYTHING_BUT_PURCHASES)
    project.db.execute("ALTER TABLE economy_purchases ADD COLUMN stray INTEGER")
    assert project.cog("economy", "check", check=False).returncode == 0  # the stock route
    assert project.nxalembic("check").returncode == 0  # the shared comparison
    project.db.execute("ALTER TABLE music_songs ADD COLUMN stray INTEGER")  # ours still compare it
    failed = project.nxalembic("check", check=False)
    assert failed.returncode == 1
    assert "music: models differ from migrations: remove_column music_songs.stray" in failed.stdout
    assert "economy" not in failed.stdout and "core" not in failed.stdout, failed.stdout


def test_env_py_directives_run_before_the_cogs_own(make_project: Any) -> None:
    project = at_head_with_env(make_project, DIRECTIVES_DROPPING_MUSIC)
    project.edit(
        "demobot/models.py",
        "    name: str = ormar.String(max_length=100)\n",
        "    name: str = ormar.String(max_length=100)\n"
        "    locale: str | None = ormar.String(max_length=10, nullable=True)\n",
    )
    project.cog("core", "revision", "--autogenerate")
    assert (project.path / "directives.ran").read_text() == "yes"
    [written] = [p for p in project.revisions("core") if "add_core_users_locale" in p.name]
    body = project.revision_ops(written)
    assert "add_column(sa.Column('locale'" in body and "music_songs" not in written.read_text()
    project.cog("core", "upgrade", "head")
    assert "music_songs" in project.db.tables()


def test_env_py_target_metadata_is_refused_in_one_line(make_project: Any) -> None:
    project = at_head_with_env(
        make_project,
        "\nimport sqlalchemy\n\nrun_migrations(context, target_metadata=sqlalchemy.MetaData())\n",
    )
    before = project.db.snapshot()
    for result in (project.cog("core", "check", check=False), project.nxalembic("check", check=False)):
        assert result.returncode != 0 and "Traceback" not in result.output
        assert "env.py passes target_metadata to run_migrations()" in result.output, result.output
    assert project.db.snapshot() == before


def test_a_hook_raising_in_the_shared_comparison_fails_its_cog_only(make_project: Any) -> None:
    """The shared pass falls back to cog by cog on any exception: status reports every cog."""
    project = at_head_with_env(make_project, RAISING_COMPARE_TYPE)
    project.db.execute("ALTER TABLE economy_wallets ADD COLUMN stray INTEGER")
    status = project.nxalembic("status", "--json")
    rows = {row["cog"]: row for row in json.loads(status.stdout)["cogs"]}
    assert "ValueError: compare_type cannot handle music_songs" in rows["music"]["not_compared"]
    assert rows["core"]["not_compared"] is None and rows["core"]["model_changes"] == []
    assert rows["economy"]["model_changes"] == ["remove_column economy_wallets.stray"]
    check = project.nxalembic("check", check=False)
    assert check.returncode == 1 and "Traceback" not in check.output
    assert "music: models not compared: ValueError: compare_type cannot handle music_songs" in check.stdout
    assert "economy: models differ from migrations: remove_column economy_wallets.stray" in check.stdout
