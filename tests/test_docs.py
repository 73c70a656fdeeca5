"""The documentation builds with warnings as errors, through the real ``sphinx-build``.

A broken page (bad reference, missing toctree entry, docstring autodoc cannot render)
makes this red.  The build imports the installed package, as ``make docs`` does.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import REPO, run

SPHINX_BUILD = str(Path(sys.executable).parent / "sphinx-build")
DOCS = REPO / "docs"


def build(source: Path, out: Path) -> tuple[int, str]:
    result = run(
        [SPHINX_BUILD, "-W", "--keep-going", "-q", "-b", "html", str(source), str(out)], cwd=REPO, check=False
    )
    return result.returncode, result.output


def text_of(page: Path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    code, output = build(DOCS, out)
    assert code == 0, output
    return out


def test_docs_build_without_warnings(html: Path) -> None:
    pages = {p.stem for p in html.glob("*.html")}
    assert {
        "index",
        "introduction",
        "quickstart",
        "configuration",
        "pyproject",
        "migrations",
        "stock-alembic",
        "coming-from-nextcord-ormar",
        "concurrency",
        "errors",
        "testing",
        "performance",
        "api",
        "contributing",
    } <= pages


def test_cli_reference_is_rendered_from_the_parser(html: Path) -> None:
    from nxalembic_templates.cli import parser

    text = text_of(html / "migrations.html")
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"nxalembic {name}" in text, name
    assert "--raiseerr" in text


def test_api_reference_documents_the_modules(html: Path) -> None:
    text = text_of(html / "api.html")
    for name in ("run_migrations", "per_cog_alembic_config", "upgrade_sync", "CogsBehind", "NXAlembicError"):
        assert name in text, name


def test_every_nxalembic_ini_key_is_documented(html: Path) -> None:
    """Every key load_settings accepts is explained on the configuration page."""
    from nxalembic_templates import settings

    source = Path(settings.__file__).read_text(encoding="utf-8")
    keys = set(re.findall(r'section\.get\("(\w+)"', source))
    assert {"module", "bot", "url", "version_table", "version_location", "core_cog"} <= keys
    text = text_of(html / "configuration.html")
    missing = sorted(key for key in keys if f"{key} =" not in text and f"{key}=" not in text)
    assert not missing, f"configuration.rst does not document: {missing}"
