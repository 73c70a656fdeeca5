"""pytest-alembic's built-in tests, once per cog, through ``nxalembic_templates.testing``.

Each test writes a user's test setup into a copy of the example bot whose every cog has
migrations made by the real ``alembic`` command, then runs pytest on it in a subprocess,
as the user would, and reads the per-test outcome from pytest's report.
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest

from conftest import BotProject, run

COGS = ("core", "economy", "music")
BUILTIN_TESTS = (
    "test_single_head_revision",
    "test_upgrade",
    "test_model_definitions_match_ddl",
    "test_up_down_consistency",
)

# pytest-alembic <= 0.13.1 attaches a collector to tests/conftest.py that fails under
# pytest 9; pointing its (unused here) collection path elsewhere avoids that.
PYTEST_INI = """\
[pytest]
pytest_alembic_tests_path = tests/no-collector-here
"""

CONFTEST = """\
from pathlib import Path

from nxalembic_templates.testing import per_cog_alembic_config

alembic_config = per_cog_alembic_config(Path(__file__).parents[1] / "alembic.ini")
"""

POSTGRES_ENGINE = """

import os

import pytest
import sqlalchemy as sa


@pytest.fixture
def alembic_engine():
    engine = sa.create_engine(os.environ["MIGRATIONS_TEST_URL"], poolclass=sa.pool.NullPool)
    with engine.begin() as connection:  # every test starts from an empty database
        connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    yield engine
    engine.dispose()
"""

MARIADB_ENGINE = """

import os

import pytest
import sqlalchemy as sa


@pytest.fixture
def alembic_engine():
    engine = sa.create_engine(os.environ["MIGRATIONS_TEST_URL"], poolclass=sa.pool.NullPool)
    name = engine.url.database
    with engine.begin() as connection:  # every test starts from an empty database
        connection.exec_driver_sql(f"DROP DATABASE `{name}`")
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    yield engine
    engine.dispose()
"""

TEST_MODULE = """\
from pytest_alembic.tests import (  # noqa: F401  (collected here, once per cog)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
"""


def migrated_bot(project: BotProject) -> BotProject:
    """Every cog of the example bot gets its first revision from the stock command line."""
    for cog in ("core", "music", "economy"):
        project.cog(cog, "revision", "--autogenerate", "-m", f"create {cog}")
        project.cog(cog, "upgrade", "head")
    assert all(len(project.revisions(cog)) == 1 for cog in COGS)
    return project


def user_tests(project: BotProject, conftest: str = CONFTEST) -> None:
    (project.path / "pytest.ini").write_text(PYTEST_INI)
    tests = project.path / "tests"
    tests.mkdir()
    (tests / "conftest.py").write_text(conftest)
    (tests / "test_migrations.py").write_text(TEST_MODULE)


def outcomes(project: BotProject, env: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    """Run the user's pytest; map ``test[cog]`` to PASSED/FAILED/ERROR."""
    result = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "tests"],
        cwd=project.path,
        env={**project.env, **(env or {})},
        check=False,
    )
    found = dict(
        (m.group(2), m.group(1))
        for m in re.finditer(
            r"^(PASSED|FAILED|ERROR) tests/test_migrations\.py::(\w+\[\w+\])", result.stdout, re.M
        )
    )
    assert found, result.output
    return result.returncode, found


def expected(outcome: str = "PASSED") -> dict[str, str]:
    return {f"{test}[{cog}]": outcome for test in BUILTIN_TESTS for cog in COGS}


def test_every_builtin_test_passes_for_every_cog(make_project) -> None:
    project = migrated_bot(make_project("sqlite"))
    user_tests(project)
    code, found = outcomes(project)
    assert found == expected()
    assert code == 0


def test_a_model_change_without_revision_fails_only_that_cogs_ddl_test(make_project) -> None:
    project = migrated_bot(make_project("sqlite"))
    project.edit(
        "demobot/cogs/music/models.py",
        "    title: str = ormar.String(max_length=200)\n",
        "    title: str = ormar.String(max_length=200)\n"
        "    plays: int | None = ormar.Integer(nullable=True)\n",
    )
    user_tests(project)
    code, found = outcomes(project)
    assert found == {**expected(), "test_model_definitions_match_ddl[music]": "FAILED"}
    assert code == 1


def test_two_heads_in_one_cog_fail_only_that_cogs_head_test(make_project) -> None:
    project = migrated_bot(make_project("sqlite"))
    [first] = project.revisions("economy")
    base = re.search(r"^revision: str = '(\w+)'", first.read_text(), re.M).group(1)
    for n in (1, 2):  # two children of the same parent: a forked history
        project.cog("economy", "revision", "-m", f"branch {n}", "--head", base, "--splice")
    user_tests(project)
    code, found = outcomes(project)
    assert found["test_single_head_revision[economy]"] == "FAILED"
    assert found["test_single_head_revision[music]"] == found["test_single_head_revision[core]"] == "PASSED"
    assert code == 1


def test_on_postgresql_referenced_cogs_are_upgraded_first(make_project, pg_server) -> None:
    """economy references music references core: on PostgreSQL their tables must exist."""
    project = migrated_bot(make_project("sqlite"))
    user_tests(project, CONFTEST + POSTGRES_ENGINE)
    name = "t_" + uuid.uuid4().hex[:12]
    pg_server.create_database(name)
    try:
        code, found = outcomes(project, {"MIGRATIONS_TEST_URL": pg_server.url(name, driver="psycopg")})
    finally:
        pg_server.drop_database(name)
    assert found == expected()
    assert code == 0


def test_on_mariadb_referenced_cogs_are_upgraded_first(make_project, mariadb_server) -> None:
    """The MariaDB twin: foreign keys there need the referenced tables too (sync PyMySQL, as
    pytest-alembic's engine is a sync one)."""
    project = migrated_bot(make_project("sqlite"))
    user_tests(project, CONFTEST + MARIADB_ENGINE)
    name = "t_" + uuid.uuid4().hex[:12]
    mariadb_server.create_database(name)
    try:
        code, found = outcomes(project, {"MIGRATIONS_TEST_URL": mariadb_server.url(name, driver="pymysql")})
    finally:
        mariadb_server.drop_database(name)
    assert found == expected()
    assert code == 0


@pytest.fixture(autouse=True)
def _no_stray_files(tmp_path: Path):
    yield
    assert not list(tmp_path.rglob("*_test_revision.py")), "pytest-alembic must not write revision files"
