"""The nxcog template as stock Alembic sees it: listed, initialised, removed on uninstall.

The tests marked ``wheel`` need the installed wheel (``make install-wheel``; ``make test`` installs
it): an editable install registers no template with stock Alembic, and they skip there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import ALEMBIC, REPO, run


@pytest.mark.wheel
def test_list_templates_shows_nxcog_with_synopsis(tmp_path: Path) -> None:
    out = run([ALEMBIC, "list_templates"], cwd=tmp_path).stdout
    line = next(text for text in out.splitlines() if text.startswith("nxcog - "))
    assert "per-cog" in line.lower()
    for stock in ("generic - ", "async - ", "pyproject - "):
        assert any(text.startswith(stock) for text in out.splitlines()), stock


@pytest.mark.wheel
def test_init_nxcog_creates_the_environment(tmp_path: Path) -> None:
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], cwd=tmp_path)
    made = {p.name for p in (tmp_path / "migrations").iterdir()}
    assert {"env.py", "script.py.mako", "README", "versions"} <= made
    assert "__pycache__" not in made
    ini = (tmp_path / "alembic.ini").read_text()
    assert "script_location = %(here)s/migrations" in ini
    assert "revision_environment = true" in ini
    assert (
        "nxalembic_templates.environment import run_migrations"
        in (tmp_path / "migrations/env.py").read_text()
    )


@pytest.mark.wheel
def test_alembic_ini_sample_matches_what_init_writes(tmp_path: Path) -> None:
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], cwd=tmp_path)
    assert (tmp_path / "alembic.ini").read_text() == (REPO / "alembic.ini.sample").read_text(), (
        "alembic.ini.sample is stale: copy the alembic.ini that 'alembic init -t nxcog migrations' writes"
    )


@pytest.mark.parametrize("template", ["generic", "async", "pyproject"])
def test_stock_templates_still_work(tmp_path: Path, template: str) -> None:
    run([ALEMBIC, "init", "-t", template, "scripts"], cwd=tmp_path)
    assert (tmp_path / "scripts" / "env.py").is_file()


def test_uninstall_removes_nxcog(tmp_path: Path) -> None:
    """A fresh venv: install alembic and our wheel, see nxcog, uninstall, nxcog is gone."""
    # Always a wheel of this checkout, never one left in dist/ by an earlier build.
    run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(REPO)],
        cwd=tmp_path,
    )
    [wheel] = sorted((tmp_path / "dist").glob("nxalembic_templates-*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    run([*pip, "alembic"], cwd=tmp_path)
    run([*pip, "--no-deps", str(wheel)], cwd=tmp_path)
    alembic = str(venv / "bin" / "alembic")
    assert "nxcog - " in run([alembic, "list_templates"], cwd=tmp_path).stdout
    run(
        [str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "nxalembic-templates"],
        cwd=tmp_path,
    )
    listing = run([alembic, "list_templates"], cwd=tmp_path).stdout
    assert "nxcog" not in listing and "generic - " in listing
    failed = run([alembic, "init", "-t", "nxcog", "m"], cwd=tmp_path, check=False)
    assert failed.returncode != 0 and "No such template" in failed.output
