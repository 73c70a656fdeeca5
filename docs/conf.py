"""Sphinx configuration; ``make docs`` builds with warnings as errors and no network access.

autodoc and ``.. argparse::`` import the *installed* package (``make docs`` installs it
first), so the reference shows what users get.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

import nxalembic_templates

project = "nxalembic-templates"
author = "nxalembic-templates developers"
copyright = "nxalembic-templates developers"  # the name Sphinx reads (it shadows the builtin)
release = version = nxalembic_templates.__version__

extensions = ["sphinx.ext.autodoc", "sphinxarg.ext"]
exclude_patterns = ["_build"]
# furo: a maintained theme (listed in the docs and test extras, installed by .readthedocs.yaml).
html_theme = "furo"
html_static_path: list[str] = []
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md"


class BenchmarkResults(Directive):
    """``.. benchmark-results::``: benchmarks/RESULTS.md as written by ``make bench`` runs.

    The file is Markdown and is shown as it is; a checkout without it gets a note saying
    how to produce it, so the page builds either way.
    """

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        if not RESULTS.is_file():
            text = "benchmarks/RESULTS.md is not in this checkout: run make bench to measure."
            return [nodes.paragraph(text, text)]
        env.note_dependency(str(RESULTS))
        text = RESULTS.read_text(encoding="utf-8")
        block = nodes.literal_block(text, text)
        block["language"] = "markdown"
        return [block]


def setup(app):  # type: ignore[no-untyped-def]
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"parallel_read_safe": True}
