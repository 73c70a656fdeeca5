"""The package keeps the structure docs/architecture.rst describes.

* modules import only modules of lower layers (so there is no import cycle);
* ``config.attributes`` and ``config.cmd_opts`` are read in ``request.py`` only;
* private (underscore) API of Alembic and SQLAlchemy is used in ``_compat.py`` only;
* every module is on the architecture page, and the page lists no module that is gone.

Read from the source (``ast``), so a violation names the file and line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "nxalembic_templates"

#: Bottom first; a module may import modules of earlier layers only.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "_compat"},
    {"settings"},
    {"extensions"},
    {"discovery"},
    {"locking"},
    {"engines"},
    {"headcheck"},
    {"request"},
    {"rewrite"},
    {"history"},
    {"scope"},
    {"environment"},
    {"compare", "testing"},
    {"runner"},
    {"startup", "cli"},
]
LAYER_OF = {name: index for index, names in enumerate(LAYERS) for name in names}

#: The package root re-exports the start-up API, imported lazily inside its ``__getattr__``
#: (PEP 562): the one import allowed to go up, since nothing runs it on ``import nxalembic_templates``.
LAZY_REEXPORTS = {"__init__": {"startup"}}


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.glob("*.py"))}


def internal_imports(tree: ast.Module) -> list[tuple[str, int]]:
    """(module, line) of every import of a sibling module, wherever it stands (functions too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.append((node.module.split(".")[0], node.lineno))
                else:  # from . import locking / from . import TEMPLATE_DIR (the package root)
                    found += [
                        (alias.name if alias.name in LAYER_OF else "__init__", node.lineno)
                        for alias in node.names
                    ]
            elif node.module and node.module.startswith("nxalembic_templates"):
                rest = node.module.split(".")[1:]
                found += [(rest[0], node.lineno)] if rest else [(a.name, node.lineno) for a in node.names]
    return found


def test_every_module_has_a_layer() -> None:
    assert set(modules()) == set(LAYER_OF), "add the module to LAYERS and to docs/architecture.rst"


@pytest.mark.parametrize("name", sorted(LAYER_OF))
def test_imports_go_down_the_layers_only(name: str) -> None:
    wrong = [
        f"{name}.py:{line} imports {target}"
        for target, line in internal_imports(modules()[name])
        if (target not in LAYER_OF or LAYER_OF[target] >= LAYER_OF[name])
        and target not in LAZY_REEXPORTS.get(name, set())
    ]
    assert not wrong, wrong


def test_lazy_reexports_happen_inside_module_getattr_only() -> None:
    """``import nxalembic_templates`` (every env.py run) must not import the start-up module."""
    for name, targets in LAZY_REEXPORTS.items():
        tree = modules()[name]
        getattr_ = [
            node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        ]
        inside = {
            line
            for fn in getattr_
            for node in ast.walk(fn)
            if isinstance(node, ast.ImportFrom)
            for line in [node.lineno]
        }
        outside = [
            f"{name}.py:{line} imports {target}"
            for target, line in internal_imports(tree)
            if target in targets and line not in inside
        ]
        assert not outside, outside


def test_config_attributes_and_cmd_opts_are_read_in_request_py_only() -> None:
    readers = []
    for name, tree in modules().items():
        if name == "request":
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("attributes", "cmd_opts")
                and isinstance(node.ctx, ast.Load)
            ):
                readers.append(f"{name}.py:{node.lineno} reads .{node.attr}")
            if isinstance(node, ast.Constant) and node.value in ("attributes", "cmd_opts"):
                readers.append(f"{name}.py:{node.lineno} names {node.value!r}")
    assert not readers, readers


def _private(name: str) -> bool:
    """``_name``: private by Python's convention (``__dunder__`` and ``_`` alone are not)."""
    return re.fullmatch(r"_[A-Za-z]\w*", name) is not None


def test_private_upstream_api_is_used_in_compat_py_only() -> None:
    """No ``obj._name`` on anything but our own objects, and no ``"_name"`` string to reach one."""
    users = []
    for name, tree in modules().items():
        if name == "_compat":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                ours = isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or _private(owner.id))
                if not ours:
                    users.append(f"{name}.py:{node.lineno} uses .{node.attr}")
            if isinstance(node, ast.Call):  # getattr(obj, "_x"), obj.__dict__.pop("_x")...
                for key in node.args:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and _private(key.value):
                        users.append(f"{name}.py:{node.lineno} reaches {key.value!r}")
    assert not users, users


def test_the_architecture_page_names_every_module() -> None:
    page = (REPO / "docs/architecture.rst").read_text()
    missing = [name for name in LAYER_OF if name != "__init__" and f"``{name}.py``" not in page]
    assert not missing, f"docs/architecture.rst does not describe {missing}"
    listed = set(re.findall(r"``([a-z_]+)\.py``", page)) - {"env"}
    assert listed <= set(LAYER_OF), (
        f"docs/architecture.rst names modules that do not exist: {listed - set(LAYER_OF)}"
    )
