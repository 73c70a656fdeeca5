"""One meaning of "head" and "pending" on every route: Alembic's.

``nxalembic status`` counts what Alembic's ``upgrade heads`` would apply; the start-up fast path
(:mod:`nxalembic_templates.headcheck`, which reads revision files with ``ast`` instead of running
them) answers Alembic's heads or "don't know" (``None``), never another head; revisions in a
subfolder of a cog's revisions folder, which Alembic's ``upgrade`` never sees, are refused on
every route.  ``tests/test_property_heads.py`` checks the fast path against Alembic on generated
histories.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from conftest import BotProject, write_revision
from nxalembic_templates.headcheck import folder_head
from test_startup import start_bot, with_start_script

COGS = ("core", "economy", "music")


def alembic_heads(folder: Path) -> list[str] | None:
    """What Alembic itself makes of *folder* as a cog's revisions folder; ``None`` when it fails."""
    try:
        return sorted(ScriptDirectory(str(folder.parent), version_locations=[str(folder)]).get_heads())
    except Exception:
        return None


# -- A2: pending is what `upgrade heads` would apply ---------------------------------------------

#: (revision, down_revision, depends_on), oldest first; the database is put at "b0000000000b".
UNAPPLIED_BRANCH = {
    "fork": [
        ("a0000000000a", None, None),
        ("b0000000000b", "a0000000000a", None),
        ("c0000000000c", "a0000000000a", None),
    ],
    "second root": [
        ("a0000000000a", None, None),
        ("b0000000000b", "a0000000000a", None),
        ("c0000000000c", None, None),
    ],
    "depends on the current head": [
        ("a0000000000a", None, None),
        ("b0000000000b", "a0000000000a", None),
        ("c0000000000c", None, "b0000000000b"),
    ],
}


def core_and_economy_at_head(project: BotProject) -> None:
    """A set-up (prepared once, copied): core and economy at a hand-written first revision."""
    for cog in ("core", "economy"):
        project.write_revision(cog, f"{cog}00000001", None)
        project.cog(cog, "upgrade", "head")


@pytest.mark.parametrize("history", list(UNAPPLIED_BRANCH))
def test_status_counts_the_branch_alembic_would_apply(
    make_project: Callable[..., BotProject], history: str
) -> None:
    project = make_project("sqlite", prepared=core_and_economy_at_head)
    for revision, down, depends_on in UNAPPLIED_BRANCH[history]:
        project.write_revision("music", revision, down, depends_on=depends_on)
    project.cog("music", "upgrade", "b0000000000b")
    assert project.versions("music") == ["b0000000000b"]
    before = project.db.snapshot()

    status = json.loads(project.nxalembic("status", "--json").stdout)
    [music] = [row for row in status["cogs"] if row["cog"] == "music"]
    assert (music["current"], music["head"], music["pending"]) == (
        ["b0000000000b"],
        ["b0000000000b", "c0000000000c"],
        1,
    )
    result = project.nxalembic("status", "--exit-code", check=False)
    assert result.returncode == 1, result.output
    # two heads: 'nxalembic upgrade' refuses them, so status names the merge, not the upgrade
    assert FORKED in result.stderr and "run 'nxalembic upgrade'" not in result.stderr, result.output
    # the fast path does not call that "at head"
    assert folder_head(project.revisions_folder("music")) is None
    assert project.db.snapshot() == before

    # what Alembic's `upgrade heads` then does is what status counted
    project.cog("music", "upgrade", "heads")
    status = json.loads(project.nxalembic("status", "--json").stdout)
    [music] = [row for row in status["cogs"] if row["cog"] == "music"]
    assert music["pending"] == 0


FORKED = (
    "cog 'music' has 2 heads (b0000000000b, c0000000000c): its history forked; merge them with "
    "'alembic -x cog=music merge heads -m \"merge\"' and run the command again"
)


@pytest.mark.parametrize("history", ["fork", "depends on a sibling"])
def test_status_says_forked_where_upgrade_refuses_two_heads(
    make_project: Callable[..., BotProject], history: str
) -> None:
    """All applied (`alembic upgrade heads`), pending 0, yet two heads: ``nxalembic upgrade``
    refuses, so ``status`` (text, ``--json``, ``--exit-code``) and ``check`` say so too."""
    project = make_project("sqlite", prepared=core_and_economy_at_head)
    project.write_revision("music", "a0000000000a", None)
    project.write_revision("music", "b0000000000b", "a0000000000a")
    depends_on = "b0000000000b" if history == "depends on a sibling" else None
    project.write_revision("music", "c0000000000c", "a0000000000a", depends_on=depends_on)
    project.cog("music", "upgrade", "heads")
    assert alembic_heads(project.revisions_folder("music")) == ["b0000000000b", "c0000000000c"]
    before = project.db.snapshot()

    upgrade = project.nxalembic("upgrade", check=False)
    assert upgrade.returncode != 0 and FORKED in upgrade.output, upgrade.output
    text = project.nxalembic("status", "--exit-code", check=False)
    assert text.returncode == 1, text.output
    assert FORKED in text.stdout and FORKED in text.stderr, text.output
    assert "behind" not in text.stderr, text.output
    rows = {row["cog"]: row for row in json.loads(project.nxalembic("status", "--json").stdout)["cogs"]}
    assert (rows["music"]["pending"], rows["music"]["forked"]) == (0, FORKED)
    assert rows["core"]["forked"] is None
    check = project.nxalembic("check", check=False)
    assert check.returncode == 1 and FORKED in check.stderr, check.output
    assert project.db.snapshot() == before


# -- A3: depends_on makes no head --------------------------------------------------------------


def test_a_dependency_is_a_head_to_the_fast_path_as_to_alembic(
    make_project: Callable[..., BotProject], tmp_path: Path
) -> None:
    """``c(a, depends_on=b)``: Alembic's heads are b and c (depends_on does not make b an ancestor),
    so every route says the history forked, the start-up fast path included."""
    project = with_start_script(make_project("sqlite+aiosqlite"))
    for cog in ("core", "economy"):
        project.write_revision(cog, f"{cog}00000001", None)
    music = project.revisions_folder("music")
    write_revision(music, "a0000000000a", None)
    write_revision(music, "b0000000000b", "a0000000000a")
    write_revision(music, "c0000000000c", "a0000000000a", depends_on="b0000000000b")
    for cog in COGS:
        project.cog(cog, "upgrade", "heads")
    assert project.versions("music") == ["c0000000000c"]
    assert alembic_heads(music) == ["b0000000000b", "c0000000000c"]
    before = project.db.snapshot()

    result = project.nxalembic("upgrade", check=False)
    assert result.returncode != 0 and "has 2 heads (b0000000000b, c0000000000c)" in result.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for mode in ("apply", "verify"):
        outcome, _stdout, _logs = start_bot(project, elsewhere, sync=True, extra=False, mode=mode)
        assert outcome.get("error") == "NXAlembicError", outcome
        assert "has 2 heads (b0000000000b, c0000000000c)" in outcome["message"]
    assert project.db.snapshot() == before
    assert folder_head(music) is None


# -- A4: ids the ast reading cannot be sure of -------------------------------------------------

#: Code that leaves the second revision file's ids other than its literal lines say (or makes
#: Alembic fail to load it): the fast path must answer Alembic's head or "don't know".
TRICKS = {
    "if": 'if True:\n    revision = "d0000000000d"',
    "for target": 'for revision in ["d0000000000d"]:\n    pass',
    "import alias": "from string import digits as revision",
    "walrus": '(revision := "d0000000000d")',
    "augmented": 'revision += "d"',
    "annotated": 'revision: str = "d0000000000d"',
    "tuple unpacking": 'revision, other = "d0000000000d", 1',
    "global in a function": 'def _set():\n    global revision\n    revision = "d0000000000d"\n\n\n_set()',
    "globals()": 'globals()["revision"] = "d0000000000d"',
    "exec": "exec(\"revision = 'd0000000000d'\")",
    "except name": "try:\n    raise ValueError\nexcept ValueError as revision:\n    pass",
    "with target": "import contextlib\nwith contextlib.nullcontext('d0000000000d') as revision:\n    pass",
    "class": "class down_revision:\n    pass",
    "match capture": 'match "d0000000000d":\n    case revision:\n        pass',
    "del": "del down_revision",
    "module __getattr__": "del depends_on\n\n\ndef __getattr__(name):\n    return 'b0000000000b'",
    # NFKC: Python reads the fullwidth r as the ASCII one, below the first definition
    "non-ASCII name after a def": 'def _f():\n    pass\n\n\n\uff52evision = "d0000000000d"',
}


@pytest.mark.parametrize("trick", list(TRICKS))
def test_the_fast_path_never_reads_another_head_than_alembic(tmp_path: Path, trick: str) -> None:
    folder = tmp_path / "versions" / "music"
    write_revision(folder, "a0000000000a", None)
    write_revision(folder, "b0000000000b", "a0000000000a", preamble=TRICKS[trick])
    expected = alembic_heads(folder)
    assert expected != ["b0000000000b"]  # the trick does change what Alembic reads
    assert folder_head(folder) in (None, expected)


@pytest.mark.parametrize(
    ("name", "loaded"),
    [("__init__b.py", False), (".#b.py", False), (".b.py", True), ("b.pyc", False), ("b.py.txt", False)],
)
def test_the_fast_path_reads_the_files_alembic_loads(tmp_path: Path, name: str, loaded: bool) -> None:
    folder = tmp_path / "versions" / "music"
    write_revision(folder, "a0000000000a", None)
    write_revision(folder, "b0000000000b", "a0000000000a", filename=name)
    expected = ["b0000000000b"] if loaded else ["a0000000000a"]
    assert alembic_heads(folder) == expected
    assert folder_head(folder) == expected


def test_a_file_without_down_revision_is_not_a_root_to_the_fast_path(tmp_path: Path) -> None:
    folder = tmp_path / "versions" / "music"
    folder.mkdir(parents=True)
    (folder / "b_rev.py").write_text('revision = "b0000000000b"\n')
    assert alembic_heads(folder) is None  # Alembic cannot load it
    assert folder_head(folder) is None


# -- A5: revisions in a subfolder of a cog's folder --------------------------------------------


def test_revisions_in_a_subfolder_of_a_cogs_folder_are_refused_on_every_route(
    make_project: Callable[..., BotProject],
) -> None:
    project = make_project("sqlite")
    for cog in COGS:
        project.write_revision(cog, f"{cog}00000001", None)
    nested = project.revisions_folder("music") / "later"
    write_revision(nested, "music00000002", "music00000001")
    assert "music00000002 (head)" in project.alembic("heads").stdout  # what `alembic heads` lists
    before = project.db.snapshot()

    refusal = (
        f"cog 'music': {nested} holds revision files (music00000002_hand.py), but Alembic applies only the "
        f"files of the cog's revisions folder {project.revisions_folder('music')} itself: move them there, "
        "or delete them"
    )
    for result in (
        project.nxalembic("upgrade", check=False),
        project.cog("music", "upgrade", "head", check=False),
    ):
        assert result.returncode != 0
        assert refusal in result.output, result.output
        assert "Traceback" not in result.output
    result = project.nxalembic("status", "--exit-code", check=False)
    assert result.returncode == 1 and refusal in result.stdout, result.output
    assert folder_head(project.revisions_folder("music")) is None  # the fast path leaves it to those routes
    assert project.db.snapshot() == before

    # Python's own bytecode cache is no revision folder
    nested.rename(project.revisions_folder("music") / "__pycache__")
    project.nxalembic("upgrade")
    assert project.versions("music") == ["music00000001"]
    assert folder_head(project.revisions_folder("music")) == ["music00000001"]
