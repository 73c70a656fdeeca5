"""Names and text of revision files.

A revision made without ``-m`` gets a message derived from its operations, made to fit the
file name Alembic cuts at ``truncate_slug_length``; every message is escaped for the
docstring it is written into; a revision id is checked before it becomes part of a file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from alembic.operations import ops

#: Alembic's default ``truncate_slug_length`` and its rule for the words of a file name.
DEFAULT_SLUG_LENGTH = 40
_SLUG_WORD = re.compile(r"\w+")

#: What a new revision id may hold: it is written into the file name and the docstring.
REVISION_ID = re.compile(r"[A-Za-z0-9_]+")


def revision_message(upgrade_ops_list: Iterable[ops.UpgradeOps], limit: int = DEFAULT_SLUG_LENGTH) -> str:
    """A message derived from the operations, for revisions made without ``-m``:
    ``create_music_songs``, ``add_music_songs_artist``, ``rename_music_songs_title_to_name``...

    Alembic names the file after the message and cuts that name at *limit* characters
    (``truncate_slug_length``), mid-word and with a trailing ``_``.  So the message is made to
    fit here: as many whole operation names as fit, and a count of the rest
    (``create_music_songs_and_2_more``); else the first name alone; else its first words.
    """
    names: list[str] = []
    for upgrade_ops in upgrade_ops_list:
        for op in upgrade_ops.ops:
            names.extend(_op_names(op))
    names = list(dict.fromkeys(names))
    if not names:
        return "no_changes"
    for count in range(len(names), 0, -1):
        rest = len(names) - count
        more = f"_and_{rest}_more" if rest else ""
        message = "_and_".join(names[:count]) + more
        if len(slug(message)) <= limit:
            return message
    return names[0] if len(slug(names[0])) <= limit else _cut_at_word(slug(names[0]), limit)


def slug(message: str) -> str:
    """The part of a revision file name Alembic makes from *message* (before truncation)."""
    return "_".join(_SLUG_WORD.findall(message)).lower()


def _cut_at_word(text: str, limit: int) -> str:
    """*text* cut to at most *limit* characters at a ``_`` (mid-word only if one word is longer)."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit("_", 1)[0]
    return cut if cut and len(cut) <= limit else text[: max(limit, 1)]


def docstring_text(text: str) -> str:
    """*text* escaped to sit between the triple quotes of a revision file's docstring.

    script.py.mako writes the message as is between triple quotes, and the message is user text
    (``-m``) or built from table names (an ormar ``tablename`` can be any string): a backslash
    (``C:\\Users``), a triple quote or a NUL would make a file that does not import, or one that
    runs code.  Python reads the escapes back, so ``__doc__`` (what ``alembic history`` shows)
    is *text* unchanged.
    """
    escaped = []
    for char in text:
        if char in '\\"':
            escaped.append("\\" + char)
        elif char in "\n\t" or char.isprintable():
            escaped.append(char)
        else:
            escaped.append(repr(char)[1:-1])  # \r, \x00, \u2028, a lone surrogate from argv
    return "".join(escaped)


def _op_names(op: Any) -> list[str]:
    if isinstance(op, ops.ModifyTableOps):
        return [name for sub in op.ops for name in _op_names(sub)]
    table = getattr(op, "table_name", None)
    if isinstance(op, ops.CreateTableOp):
        return [f"create_{table}"]
    if isinstance(op, ops.DropTableOp):
        return [f"drop_{table}"]
    if isinstance(op, ops.RenameTableOp):
        return [f"rename_{table}_to_{op.new_table_name}"]
    if isinstance(op, ops.AddColumnOp):
        return [f"add_{table}_{op.column.name}"]
    if isinstance(op, ops.DropColumnOp):
        return [f"drop_{table}_{op.column_name}"]
    if isinstance(op, ops.AlterColumnOp):
        new = op.modify_name
        return [f"rename_{table}_{op.column_name}_to_{new}" if new else f"alter_{table}_{op.column_name}"]
    if isinstance(op, ops.CreateIndexOp):
        columns = [getattr(c, "name", c) for c in op.columns]
        return [f"index_{table}_{'_'.join(c for c in columns if isinstance(c, str)) or op.index_name}"]
    if isinstance(op, ops.DropIndexOp):
        return [f"drop_index_{op.index_name}"]
    kind = type(op).__name__.removesuffix("Op")
    return [f"{kind.lower()}_{table}" if table else kind.lower()]
