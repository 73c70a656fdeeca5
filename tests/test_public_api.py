"""The public API is small, documented on docs/api.rst, and the only thing used from outside.

What users call: the start-up API (the package root and ``startup``),
``environment.run_migrations`` / ``setup_logging`` (the template's env.py), ``testing``, the
errors, and the ``nxalembic`` command (``cli.main``).  The rules:

* every module has ``__all__``, and every name in it exists;
* a module is *internal* when its docstring starts with ``Internal:``; the public modules are
  exactly :data:`PUBLIC_MODULES`;
* a public module's ``__all__`` is its public API (its other names are internal, even when
  other modules of the package import them);
* an internal module's ``__all__`` is exactly the names the package's other modules import
  from it (so it says what the module offers its neighbours, and stays true);
* every name in any ``__all__`` has a docstring (a ``#:`` comment for data), and so do the
  public methods of the public classes;
* docs/api.rst documents exactly the public API (``automodule`` documents a module's
  ``__all__``, autodoc's rule; a re-export counts where it is defined);
* the package root's ``__all__`` is its own names plus the lazy re-exports of ``startup``;
* code outside the package (examples/, docs/conf.py, hatch_build.py, the templates' env.py,
  the console script of pyproject.toml) uses only names in a module's ``__all__``.  tests/
  and benchmarks/ are white-box and exempt: the fast tier tests private helpers on purpose,
  and ``bench_startup_check.py --profile`` profiles the start-up API's private work.

Read from the source (``ast``) and from the imported modules; no subprocess.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
import textwrap
import tomllib
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "nxalembic_templates"
ROOT = "nxalembic_templates"

#: The modules users import; every other module's docstring starts with "Internal:".
PUBLIC_MODULES = {ROOT, f"{ROOT}.startup", f"{ROOT}.environment", f"{ROOT}.testing", f"{ROOT}.errors"}
PUBLIC_MODULES |= {f"{ROOT}.cli"}  # the nxalembic command (its console script: cli.main)

#: Code outside the package that may use only ``__all__`` names (tests/ and benchmarks/ are
#: white-box: the fast tier tests private helpers, the benchmarks profile private work).
OUTSIDE = [
    *sorted((REPO / "examples").rglob("*.py")),
    REPO / "docs" / "conf.py",
    REPO / "hatch_build.py",
    *sorted(PACKAGE.glob("percog*/env.py")),
]


def stems() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def dotted(stem: str) -> str:
    return ROOT if stem == "__init__" else f"{ROOT}.{stem}"


def module(stem: str) -> ModuleType:
    return importlib.import_module(dotted(stem))


@functools.cache
def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def declared_all(stem: str) -> list[str] | None:
    """The module's ``__all__`` as written in its source (a literal list), or None."""
    for node in tree_of(PACKAGE / f"{stem}.py").body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(module(stem).__all__)  # the root spreads STARTUP_NAMES into its list
    return None


def is_internal(stem: str) -> bool:
    return (module(stem).__doc__ or "").lstrip().startswith("Internal:")


def imported_names(path: Path, inside_package: bool) -> list[tuple[str, str, int]]:
    """(module stem, name, line) of every package name *path* imports or reaches as ``module.name``.

    Relative imports count inside the package only (examples/ has its own packages).
    """
    found: list[tuple[str, str, int]] = []
    aliases: dict[str, str] = {}  # local name -> module stem
    all_stems = set(stems())
    nodes = list(ast.walk(tree_of(path)))
    for node in list(nodes):  # code in strings too (scripts run in a subprocess)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ROOT in node.value:
            try:
                script = ast.parse(textwrap.dedent(node.value))
            except SyntaxError:
                continue
            for inner in ast.walk(script):
                if hasattr(inner, "lineno"):
                    inner.lineno = node.lineno  # the string's line in *path*
                nodes.append(inner)
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and inside_package:
                target = node.module
            elif node.level == 0 and node.module and (node.module + ".").startswith(ROOT + "."):
                target = node.module.split(".")[1] if "." in node.module else None
            else:
                continue
            for alias in node.names:
                if target is None and alias.name in all_stems:  # from nxalembic_templates import startup
                    aliases[alias.asname or alias.name] = alias.name
                else:
                    found.append((target or "__init__", alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == ROOT and len(parts) == 2 and alias.asname:
                    aliases[alias.asname] = parts[1]
    for node in nodes:
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in aliases:
            found.append((aliases[node.value.id], node.attr, node.lineno))
        elif isinstance(node.value, ast.Name) and node.value.id == ROOT and node.attr not in all_stems:
            found.append(("__init__", node.attr, node.lineno))  # nxalembic_templates.upgrade
        elif (  # nxalembic_templates.startup.upgrade
            isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == ROOT
            and node.value.attr in all_stems
        ):
            found.append((node.value.attr, node.attr, node.lineno))
    return found


@functools.cache
def package_imports() -> dict[str, dict[str, list[str]]]:
    """module stem -> name -> the other package modules that import it."""
    used: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for stem in stems():
        for target, name, _line in imported_names(PACKAGE / f"{stem}.py", inside_package=True):
            if target != stem:
                used[target][name].append(stem)
    return used


# -- __all__ everywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize("stem", stems())
def test_every_module_has_all_and_every_name_in_it_exists(stem: str) -> None:
    names = declared_all(stem)
    assert names is not None, f"{stem}.py has no __all__ (put it right after the imports)"
    assert len(names) == len(set(names)), f"{stem}.__all__ lists a name twice"
    missing = [name for name in names if not hasattr(module(stem), name)]
    assert not missing, f"{stem}.__all__ names what the module does not have: {missing}"


def test_the_public_modules_are_the_ones_users_call() -> None:
    public = {dotted(stem) for stem in stems() if not is_internal(stem)}
    assert public == PUBLIC_MODULES, "an internal module's docstring starts with 'Internal:'"


@pytest.mark.parametrize("stem", [s for s in stems() if dotted(s) not in PUBLIC_MODULES])
def test_an_internal_modules_all_is_what_the_package_imports_from_it(stem: str) -> None:
    imported = package_imports().get(stem, {})
    names = set(declared_all(stem) or ())
    unlisted = sorted(
        f"{name} (imported by {', '.join(sorted(set(by)))})"
        for name, by in imported.items()
        if name not in names
    )
    unused = sorted(names - set(imported))
    assert not unlisted, f"add to {stem}.__all__: {unlisted}"
    assert not unused, f"no other module imports these; drop them from {stem}.__all__: {unused}"


def test_the_package_root_reexports_the_startup_api_lazily() -> None:
    root, startup = module("__init__"), module("startup")
    own = {
        name
        for node in tree_of(PACKAGE / "__init__.py").body
        for name in (
            [t.id for t in node.targets if isinstance(t, ast.Name)]
            if isinstance(node, ast.Assign)
            else [node.target.id]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
            else []
        )
    } - {"__all__", "STARTUP_NAMES"}
    assert set(root.__all__) == own | set(root.STARTUP_NAMES)
    for name in root.STARTUP_NAMES:
        assert getattr(root, name) is getattr(startup, name), name
        assert name in dir(root), name
    with pytest.raises(AttributeError):
        root.no_such_name  # noqa: B018


# -- docstrings -------------------------------------------------------------------------------------


def documented_data(tree: ast.Module, source: str) -> set[str]:
    """Module-level names assigned with a ``#:`` comment above or a string just below."""
    lines = source.splitlines()
    found = set()
    body = tree.body
    for index, node in enumerate(body):
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        above = lines[node.lineno - 2].lstrip() if node.lineno >= 2 else ""
        after = body[index + 1] if index + 1 < len(body) else None
        below = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if above.startswith("#:") or below:
            found.update(targets)
    return found


def definitions(stem: str) -> dict[str, ast.AST]:
    return {
        node.name: node
        for node in tree_of(PACKAGE / f"{stem}.py").body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def undocumented(stem: str, name: str) -> list[str]:
    """What lacks a docstring: the name itself, and in a public module a class's public methods."""
    defs = definitions(stem)
    if name not in defs and name not in documented_data_names(stem):
        obj = getattr(module(stem), name)
        home = getattr(obj, "__module__", None)
        if home and home.startswith(ROOT) and home != dotted(stem):  # a re-export: judged at home
            return undocumented(home.split(".")[-1] if home != ROOT else "__init__", name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            return [name]  # data without a #: comment
    if name not in defs:
        return []
    node = defs[name]
    missing = [] if ast.get_docstring(node) else [name]
    if isinstance(node, ast.ClassDef) and dotted(stem) in PUBLIC_MODULES:
        missing += [
            f"{name}.{item.name}"
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            and not item.name.startswith("_")
            and not ast.get_docstring(item)
        ]
    return missing


def documented_data_names(stem: str) -> set[str]:
    path = PACKAGE / f"{stem}.py"
    return documented_data(tree_of(path), path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("stem", stems())
def test_every_name_in_all_has_a_docstring(stem: str) -> None:
    missing = [item for name in declared_all(stem) or () for item in undocumented(stem, name)]
    assert not missing, f"{stem}.py: add a docstring (a #: comment for data) to {missing}"


# -- the API page -----------------------------------------------------------------------------------

DIRECTIVE = re.compile(r"^\.\. (auto\w+):: (\S+)\n((?:   .*\n|\n)*)", re.M)


def canonical(module_name: str, name: str) -> str:
    """One spelling per object: a function or class by where it is defined, data by its module."""
    obj = getattr(importlib.import_module(module_name), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{module_name}.{name}"


def documented_on_the_api_page() -> list[str]:
    """What the auto* directives of docs/api.rst document.

    ``automodule`` documents the module's ``__all__`` (``autodoc_default_options`` in conf.py
    asks for the members; with Sphinx 9 that default also overrides a ``:members:`` list, so
    the page narrows a module with ``:no-members:`` and single directives instead).  Like
    autodoc, ``automodule`` skips dunder names such as ``__version__``.
    """
    text = (REPO / "docs" / "api.rst").read_text(encoding="utf-8")
    found: list[str] = []
    for kind, target, options in DIRECTIVE.findall(text):
        if kind == "automodule":
            assert not re.search(r":members:.*\S", options), (
                f"{target}: use :no-members: and auto* directives"
            )
            if ":no-members:" not in options:
                names = importlib.import_module(target).__all__
                found += [canonical(target, name) for name in names if not name.startswith("__")]
        else:
            module_name, _, name = target.rpartition(".")
            found.append(canonical(module_name, name))
    return found


def public_api() -> set[str]:
    return {
        canonical(name, item) for name in PUBLIC_MODULES for item in importlib.import_module(name).__all__
    }


def test_the_api_page_documents_exactly_the_public_api() -> None:
    found = documented_on_the_api_page()
    twice = sorted({name for name in found if found.count(name) > 1})
    assert not twice, f"docs/api.rst documents these twice (a re-export and its home): {twice}"
    documented, public = set(found), public_api()
    assert not public - documented, f"docs/api.rst does not document: {sorted(public - documented)}"
    assert not documented - public, f"docs/api.rst documents internals: {sorted(documented - public)}"


def test_the_api_page_says_the_other_modules_are_internal() -> None:
    text = " ".join((REPO / "docs" / "api.rst").read_text(encoding="utf-8").split())
    assert "are internal" in text
    for stem in stems():
        if is_internal(stem):
            assert f".. automodule:: {dotted(stem)}" not in text, stem


# -- nothing outside the package reaches past __all__ --------------------------------------------


def entry_point_names() -> list[tuple[str, str, str]]:
    data: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    groups = [project.get("scripts", {}), *project.get("entry-points", {}).values()]
    found = []
    for group in groups:
        for key, value in group.items():
            target, _, name = value.partition(":")
            if target.startswith(ROOT):
                found.append(
                    (target.split(".")[1] if "." in target else "__init__", name, f"pyproject {key}")
                )
    return found


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(REPO)))
def test_code_outside_the_package_uses_only_names_in_all(path: Path) -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} uses {stem}.{name}"
        for stem, name, line in imported_names(path, inside_package=False)
        if name not in (declared_all(stem) or ()) and name not in stems()
    ]
    assert not wrong, wrong


def test_the_console_script_is_public() -> None:
    entries = entry_point_names()
    assert entries, "pyproject.toml names no entry point of the package"
    wrong = [
        f"{where}: {stem}.{name}" for stem, name, where in entries if name not in (declared_all(stem) or ())
    ]
    assert not wrong, wrong
