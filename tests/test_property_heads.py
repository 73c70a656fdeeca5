"""Property: the start-up fast path's head is Alembic's head, or "don't know".

Random histories written as real revision files in a temp folder: linear, forks, merges,
second roots, ``depends_on``, branch labels, ids Alembic refuses, stray and cyclic references,
files Alembic skips by name, revision files in a subfolder, and ids set in ways only running
the file tells (compound statements, import aliases, ``global``, ``globals()``, a name Python
NFKC-normalises to an id...).  For each, :func:`~nxalembic_templates.headcheck.folder_head`
(``ast``, no Alembic) is ``None`` or exactly what Alembic answers once it has loaded the same
folder: the heads of the cog's checked history (:func:`~nxalembic_templates.history.cog_script`,
the full route) and of a plain :class:`ScriptDirectory`.  And where the fast path calls a
database at its head (its version rows equal to that head), Alembic's ``upgrade heads`` from
those rows has nothing to apply.

In-process and fast: ``make test`` runs a bounded number of cases (``EXAMPLES``);
``make test-long`` many more (``NXALEMBIC_PROPERTY_EXAMPLES``, a fixed ``--hypothesis-seed``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nxalembic_templates.headcheck import ID_NAMES, REVISION_FILE, SOURCELESS_REVISION_FILE, folder_head
from nxalembic_templates.history import cog_script

#: Cases per run; ``make test-long`` raises it.
EXAMPLES = int(os.environ.get("NXALEMBIC_PROPERTY_EXAMPLES", "100"))

PLAIN_IDS = [f"r{i:02d}" for i in range(12)]
#: Ids Alembic refuses or reads as symbols, and one no file has.
ODD_IDS = ["head", "base", "a-b", "a@b", "", "x y"]
MISSING = "zz99"
LABELS = ["lbl_a", "lbl_b"]

#: Code that may set an id otherwise than the file's literal lines say: {name} is the id's
#: name, {value} a literal.  Alembic runs it; the fast path must not guess.
TRICKS = [
    "if True:\n    {name} = {value}",
    "if False:\n    {name} = {value}",
    "for {name} in [{value}]:\n    pass",
    "while False:\n    {name} = {value}",
    "from string import digits as {name}",
    "import string as {name}",
    "({name} := {value})",
    "{name} += ()",
    "{name}: object = {value}",
    "{name}, _other = {value}, 1",
    "[{name}] = [{value}]",
    "def _set():\n    global {name}\n    {name} = {value}\n\n\n_set()",
    "globals()[{name!r}] = {value}",
    "vars()[{name!r}] = {value}",
    "exec({name!r} + ' = ' + repr({value}))",
    "import sys\nsetattr(sys.modules[__name__], {name!r}, {value})",
    "try:\n    raise ValueError\nexcept ValueError as {name}:\n    pass",
    "import contextlib\nwith contextlib.nullcontext({value}) as {name}:\n    pass",
    "match {value}:\n    case {name}:\n        pass",
    "class {name}:\n    pass",
    "def {name}():\n    pass",
    "del {name}",
    "def __getattr__(attribute):\n    return {value}",
    # Python reads a fullwidth first letter as the ASCII one (NFKC)
    "{fullwidth} = {value}",
    "if True:\n    {fullwidth} = {value}",
    "_ = [{name} for {name} in [{value}]]",
    "_ = [({name} := x) for x in [{value}]]",
]

#: Where a revision file goes and how it is named (Alembic skips some names, and subfolders).
PLACES = ["plain"] * 8 + ["__init__", "lock", "hidden", "pyc", "sub", "pycache", "txt"]


@dataclass(frozen=True)
class RevisionFile:
    revision: str
    down: object
    depends_on: object
    labels: object
    annotated: bool
    omitted: str | None
    tricks: tuple[tuple[str, str, str, bool], ...]  # (template, name, value, below the first def)
    place: str

    def name(self, index: int) -> str:
        stem = f"{self.revision or 'x'}_{index}".replace(" ", "_").replace("@", "_")
        return {
            "plain": f"{stem}.py",
            "__init__": f"__init__{stem}.py",
            "lock": f".#{stem}.py",
            "hidden": f".{stem}.py",
            "pyc": f"{stem}.pyc",
            "sub": f"sub/{stem}.py",
            "pycache": f"__pycache__/{stem}.py",
            "txt": f"{stem}.py.txt",
        }[self.place]

    def source(self) -> str:
        values = {
            "revision": self.revision,
            "down_revision": self.down,
            "depends_on": self.depends_on,
            "branch_labels": self.labels,
        }
        head, tail = ['"""A generated revision."""', "from alembic import op"], []
        for name, value in values.items():
            if name != self.omitted:
                head.append(f"{name}: object = {value!r}" if self.annotated else f"{name} = {value!r}")
        for template, name, value, below in self.tricks:
            fullwidth = chr(ord(name[0]) - ord("a") + 0xFF41) + name[1:]
            (tail if below else head).append(template.format(name=name, value=value, fullwidth=fullwidth))
        body = "\n\ndef upgrade():\n    op.get_context()\n\n\ndef downgrade():\n    pass\n"
        return "\n".join(head) + body + "\n\n" + "\n\n".join(tail) + "\n"


@st.composite
def references(draw: st.DrawFn, ids: list[str], index: int, root_weight: int, messy: bool) -> object:
    """A ``down_revision`` / ``depends_on`` value: earlier ids; when *messy*, anything."""
    earlier = ids[:index]
    kinds = ["none"] * root_weight + ["one"] * 4 + ["two", "list"] + (["any", "odd"] if messy else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none" or (kind in ("one", "two", "list") and not earlier):
        return draw(st.sampled_from([None, None, (), []]))
    if kind == "one":
        return draw(st.sampled_from(earlier))
    if kind in ("two", "list"):
        chosen = draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=2, unique=True))
        return chosen if kind == "list" else tuple(chosen)
    if kind == "any":  # a later id too: cycles, self-references
        return draw(st.sampled_from(ids))
    return draw(st.sampled_from([MISSING, *LABELS, 1, ("r00", "r00")]))


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[RevisionFile], list[str] | None]:
    """Revision files, and a version table's rows (any ids, one no file has; ``None``: the head).

    One history in three is messy (ids Alembic refuses, stray or cyclic references, missing
    names, subfolders: mostly histories Alembic cannot load); one in three sets ids by tricks.
    """
    messy, tricky = draw(st.integers(0, 2)) == 0, draw(st.integers(0, 2)) == 0
    count = draw(st.integers(0, 7))
    ids = draw(st.lists(st.sampled_from(PLAIN_IDS), min_size=count, max_size=count, unique=True))
    if ids and messy and draw(st.booleans()):  # a duplicate, or an id Alembic refuses
        ids[draw(st.integers(0, len(ids) - 1))] = draw(st.sampled_from([*ODD_IDS, ids[0]]))
    tricked = (
        set(draw(st.lists(st.integers(0, max(count - 1, 0)), min_size=1, max_size=2))) if tricky else set()
    )
    files = []
    for index, revision in enumerate(ids):
        tricks = []
        for _ in range(draw(st.integers(1, 2)) if index in tricked else 0):
            value = draw(st.one_of(st.sampled_from(ids), st.just(MISSING), st.just(tuple(ids[:1]))))
            tricks.append(
                (
                    draw(st.sampled_from(TRICKS)),
                    draw(st.sampled_from(ID_NAMES)),
                    repr(value),
                    draw(st.booleans()),
                )
            )
        files.append(
            RevisionFile(
                revision=revision,
                down=draw(references(ids, index, 1 if index else 6, messy)),
                depends_on=draw(references(ids, len(ids) if messy else index, 12, messy)),
                labels=draw(
                    st.sampled_from(
                        [None] * 6 + ([*LABELS, tuple(LABELS), revision] if messy else [f"lbl_{revision}"])
                    )
                ),
                annotated=draw(st.booleans()),
                omitted=draw(st.sampled_from([None] * 4 + list(ID_NAMES))) if messy else None,
                tricks=tuple(tricks),
                # a clean history skips (by its name) its last file at most: nothing refers to it
                place=draw(st.sampled_from(PLACES if messy or index == count - 1 else ["plain"])),
            )
        )
    if not ids or draw(st.booleans()):
        return files, None  # the version rows are the head, whatever it is
    return files, sorted(draw(st.lists(st.sampled_from([*ids, MISSING]), max_size=3, unique=True)))


def alembic_heads(root: Path, folder: Path) -> tuple[ScriptDirectory, list[str]] | None:
    """The cog's history as the full route loads it (checked), and its heads; ``None``: it fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            script = cog_script(root, folder, "cog", {})
            return script, sorted(script.get_heads())
        except Exception:
            return None


def plain_alembic_heads(root: Path, folder: Path) -> list[str] | None:
    """Stock Alembic's heads of *folder* (no checks of ours); ``None`` when it fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return sorted(ScriptDirectory(str(root), version_locations=[str(folder)]).get_heads())
        except Exception:
            return None


def check_history(root: Path, files: list[RevisionFile], rows: list[str] | None) -> None:
    folder = root / "versions" / "cog"
    folder.mkdir(parents=True)
    for index, revision in enumerate(files):
        path = folder / revision.name(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(revision.source(), encoding="utf-8")

    head = folder_head(folder)
    loaded = alembic_heads(root, folder)
    alembic = "fails" if loaded is None else len(loaded[1])
    event(f"fast path: {'dont know' if head is None else len(head)}; Alembic: {alembic}")
    if any(revision.place == "sub" for revision in files):  # refused by the full route, unknown here
        assert (head, loaded) == (None, None)
    if head is None:
        return  # "don't know": the full route (Alembic) answers
    assert loaded is not None, f"the fast path read the head {head}; Alembic cannot load the history"
    script, heads = loaded
    assert head == heads, "the fast path's head is not Alembic's"
    assert plain_alembic_heads(root, folder) == heads
    if not head:
        return  # no revisions: not this test's question
    # the fast path calls the database at its head when its version rows are that head; then
    # Alembic's `upgrade heads` has nothing to apply
    current = head if rows is None else rows
    if current == head:
        assert list(script.iterate_revisions("heads", tuple(current), implicit_base=True)) == []


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_the_fast_paths_head_is_alembics_or_dont_know(
    tmp_path: Path, history: tuple[list[RevisionFile], list[str] | None]
) -> None:
    files, rows = history
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    check_history(root, files, rows)
    shutil.rmtree(root)  # kept when the case fails, for a look


@pytest.mark.parametrize(
    "name",
    ["a.py", "__init__.py", "__init__a.py", ".#a.py", ".a.py", "a.pyc", "a.pyo", "a.py.txt", "a.PY", "_a.py"],
)
@pytest.mark.parametrize("sourceless", [False, True])
def test_the_revision_file_names_are_alembics(tmp_path: Path, name: str, sourceless: bool) -> None:
    """:data:`~nxalembic_templates.headcheck.REVISION_FILE` loads what Alembic's own listing loads."""
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / name).write_bytes(b"")
    script = ScriptDirectory(str(tmp_path), version_locations=[str(folder)], sourceless=sourceless)
    pattern = SOURCELESS_REVISION_FILE if sourceless else REVISION_FILE
    try:
        alembic_loads = bool(list(script.walk_revisions()))
    except Exception:  # it tried to load the (empty) file as a revision
        alembic_loads = True
    assert (pattern.match(name) is not None) == alembic_loads
