"""Hatchling build hook: the templates go into Alembic's ``templates/`` folder in standard wheels only.

Alembic has no registry for third-party templates: ``alembic init -t NAME`` and
``alembic list_templates`` look only inside Alembic's own ``templates/`` folder.  A standard
wheel (what ``pip install nxalembic-templates`` and ``make install-wheel`` install) therefore
also places a copy of ``nxalembic_templates/percog/`` there as ``alembic/templates/nxcog/``, and
of ``percog_pyproject/`` as ``nxcog_pyproject/``; pip's RECORD removes them on uninstall.

An editable wheel (``pip install -e .``, what ``make install`` does) gets no such copy: hatchling
would otherwise write one at install time, which then goes stale as the source changes.  In an
editable install stock ``alembic list_templates`` does not show ``nxcog``; ``nxalembic init``
(which reads the template from the package itself) works in every install.

``nxcog_pyproject``'s ``env.py`` and ``script.py.mako`` are symbolic links to ``nxcog``'s: the
wheel holds a copy of each.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: Source folder in the package -> where a standard wheel installs it.
TEMPLATES = {
    "nxalembic_templates/percog": "alembic/templates/nxcog",
    "nxalembic_templates/percog_pyproject": "alembic/templates/nxcog_pyproject",
}


class AlembicTemplatesHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the template folders to standard wheels; editable wheels stay without them."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "standard":
            build_data["force_include"].update(TEMPLATES)
