"""The package keeps the structure docs/architecture.rst describes.

* modules import only modules of their own or lower layers, and no import cycle;
* ``config.attributes`` and ``config.cmd_opts`` are read in ``request.py`` only;
* private (underscore) API of Alembic and SQLAlchemy is used in ``_compat.py`` only;
* every module is on the architecture page, and the page lists no module that is gone;
* at most 19 modules, none over 450 lines but the few listed with a ceiling that only comes down.

Read from the source (``ast``), so a violation names the file and line.
"""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "nxalembic_templates"

#: The design, bottom first: each layer has one job, and a module imports only from its own
#: layer or the layers below it (plus the one lazy re-export below).  Within a layer the imports
#: must not form a cycle (``test_no_import_cycle``).  docs/architecture.rst draws the same layers.
LAYERS: dict[str, set[str]] = {
    # what every module may use: the errors users see, the one home of private upstream API
    "foundation": {"__init__", "errors", "_compat"},
    # which project and which settings: nxalembic.ini / [tool.nxalembic], read without Alembic
    "settings": {"settings"},
    # the bot: import it, load its extensions the library's way, find each cog's models
    "bot": {"extensions", "discovery"},
    # the database: engines and URLs, the migration lock, version rows and the start-up fast path
    "database": {"locking", "engines", "headcheck"},
    # one cog's Alembic run: the request (-x cog=), its scope, history, rewrites and env.py's body
    "per-cog run": {"request", "rewrite", "history", "scope", "environment"},
    # the commands over all cogs: status and the shared comparison, migrations, the test helpers
    "commands": {"compare", "runner", "testing"},
    # where users come in: the start-up API and the nxalembic command
    "entry points": {"startup", "cli"},
}
LAYER_OF = {name: index for index, names in enumerate(LAYERS.values()) for name in names}

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
        if (target not in LAYER_OF or LAYER_OF[target] > LAYER_OF[name])
        and target not in LAZY_REEXPORTS.get(name, set())
    ]
    assert not wrong, wrong


def test_no_import_cycle() -> None:
    """Imports within a layer are allowed; together with the layers' order they must stay acyclic."""
    graph = {
        name: {target for target, _line in internal_imports(tree) if target in LAYER_OF and target != name}
        - LAZY_REEXPORTS.get(name, set())
        for name, tree in modules().items()
    }
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


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


#: Libraries whose objects the package must not change outside ``_compat.py``.
UPSTREAM = ("alembic", "sqlalchemy", "ormar", "nextcord", "discord", "disnake")
#: Upstream calls that register something for the whole process (Alembic's renderers and
#: operations, SQLAlchemy's compiler extension).
GLOBAL_REGISTRATIONS = {"dispatch_for", "register_operation", "implementation_for", "compiles"}


def _upstream_imports(tree: ast.Module) -> set[str]:
    """The names a module binds to upstream modules or their members (``sa``, ``Operations``...)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if alias.name.split(".")[0] in UPSTREAM
            }
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in UPSTREAM:
                names |= {alias.asname or alias.name for alias in node.names}
    return names


def _root(node: ast.expr) -> str | None:
    """``a`` of ``a.b.c`` / ``a[0].b``; ``None`` for anything else."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _handed_over(function: ast.FunctionDef | ast.AsyncFunctionDef, upstream: set[str]) -> set[str]:
    """Parameters of *function* annotated with an upstream type (``script: ScriptDirectory``):
    objects that are not ours, so any attribute set on them patches someone else's object."""
    arguments = function.args
    return {
        arg.arg
        for arg in arguments.posonlyargs + arguments.args + arguments.kwonlyargs
        if arg.annotation is not None
        and {n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)} & upstream
    }


def _made_here(function: ast.FunctionDef | ast.AsyncFunctionDef, upstream: set[str]) -> set[str]:
    """Locals of *function* made by an upstream class (``operations = Operations(...)``): ours to
    fill in (``alter.modify_type = ...``), but a function stored on one replaces its method."""
    return {
        target.id
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and _root(node.value.func) in upstream
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def upstream_patches(name: str, tree: ast.Module) -> list[str]:
    """Where module *name* changes an upstream object or the import system, as ``file:line what``."""
    upstream = _upstream_imports(tree)
    functions = {
        node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    found = []
    scopes: list[tuple[ast.AST, set[str], set[str]]] = [(tree, upstream, set())]
    scopes += [
        (node, upstream | _handed_over(node, upstream), _made_here(node, upstream))
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    for scope, theirs, made in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
                targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                value = getattr(node, "value", None)
                a_function = isinstance(value, ast.Lambda) or (
                    isinstance(value, ast.Name) and value.id in functions
                )
                for target in targets:
                    if not isinstance(target, ast.Attribute):
                        continue
                    root = _root(target.value)
                    if root in theirs or (root in made and a_function):
                        found.append(f"{name}.py:{target.lineno} sets .{target.attr} on {root}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in ("setattr", "delattr") and node.args and _root(node.args[0]) != "self":
                    found.append(f"{name}.py:{node.lineno} calls {node.func.id}()")
            if isinstance(node, ast.Attribute) and node.attr == "meta_path":
                found.append(f"{name}.py:{node.lineno} edits sys.meta_path")
            if isinstance(node, ast.Attribute) and node.attr in GLOBAL_REGISTRATIONS:
                found.append(f"{name}.py:{node.lineno} registers with .{node.attr}() for the whole process")
    return sorted(set(found), key=lambda where: int(where.split(":")[1].split()[0]))


def test_upstream_objects_are_patched_in_compat_py_only() -> None:
    """No attribute of an Alembic / SQLAlchemy / ormar / Discord library object set, no
    ``setattr``, no ``sys.meta_path`` edit, no process-wide registration outside ``_compat.py``:
    each of those changes code that is not ours, for the whole process, and lives there with
    its reason and the upstream version it was checked against."""
    patches = [
        where
        for name, tree in modules().items()
        if name != "_compat"
        for where in upstream_patches(name, tree)
    ]
    assert not patches, patches


def test_the_patch_check_finds_each_kind_of_patch() -> None:
    """The check above would see each kind of patch this package once had (file and line)."""
    source = """
import sys
import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import Operations
from alembic.script import ScriptDirectory

sa.Table.extra = 1

@renderers.dispatch_for(Operations)
def render(context, op):
    pass

def retarget(script: ScriptDirectory, cls):
    script.generate_revision = len
    operations = Operations(None)
    operations.alter_column = ours
    operations.impl = Operations(None)
    setattr(cls, "run", len)
    sys.meta_path.insert(0, None)

def ours(thing):
    thing.value = 1
"""
    found = upstream_patches("example", ast.parse(source))
    assert found == [
        "example.py:8 sets .extra on sa",
        "example.py:10 registers with .dispatch_for() for the whole process",
        "example.py:15 sets .generate_revision on script",
        "example.py:17 sets .alter_column on operations",
        "example.py:19 calls setattr()",
        "example.py:20 edits sys.meta_path",
    ]


#: A package a newcomer can hold in their head: at most MAX_MODULES modules, none over MAX_LINES
#: lines.  A module that would grow past it sheds code first (or moves it where it belongs).
MAX_MODULES = 19
MAX_LINES = 450


def test_module_count_and_size() -> None:
    lines = {path.stem: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert len(lines) <= MAX_MODULES, f"{len(lines)} modules: fold a small one into the one it serves"
    too_long = {name: count for name, count in lines.items() if count > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
