"""One exception type for every problem a user can fix, and masking of database credentials.

:class:`NXAlembicError` is a plain ``Exception``: this module (and so settings, discovery and
the start-up fast path, which use it) must not import Alembic, whose import costs a bot's
start about a fifth of its own import time.  Where our code hands control back to Alembic
(env.py, callbacks Alembic calls), :func:`reported_to_alembic` raises it as Alembic's
``CommandError`` instead, chained to the original, so the stock ``alembic`` command line prints
one ``FAILED: ...`` line and exits 1 without a traceback (``--raiseerr`` shows one), and code
calling ``alembic.command`` catches ``CommandError`` as before; :func:`unwrapped` gives the
``nxalembic`` command and the start-up API the original back.

A URL can carry credentials in two places: the password after the user name, and query
keys such as ``?password=``, ``?sslpassword=`` or ``?passfile=`` (libpq and the PostgreSQL
drivers accept them).  Every URL the package handles is remembered (:func:`remember_url`),
and :func:`mask` removes the secrets of all of them, in every quoted form, plus anything in
the text that merely *looks* like URL credentials; :class:`NXAlembicError` masks its own
message, so an error path that forgets to mask still prints no password.

Public: the exceptions (``__all__``: :class:`NXAlembicError` and the three the start-up API
raises).  The helpers (masking, one-line messages) are internal.
"""

from __future__ import annotations

import contextlib
import re
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import URL, make_url

__all__ = ["CogsBehind", "CogsWithoutRevisions", "LockTimeout", "NXAlembicError"]

MASK = "***"

#: A query key whose value is a credential (or says where one is): password, passfile, sslpassword, token...
CREDENTIAL_KEY = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.I)

#: ``scheme://user:PASSWORD@``: the password runs to the last ``@`` of the word (an unquoted ``@`` in it).
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)\S*@")
#: ``?password=VALUE`` / ``&sslpassword=VALUE`` in a URL's query.
_QUERY = re.compile(
    r"([?&][^\s=&?#]*?(?:pass|pwd|secret|token|key|auth|credential)[^\s=&?#]*=)[^\s&#]*", re.I
)
#: libpq's ``password=VALUE`` in a conninfo string (drivers quote them in errors).
_CONNINFO = re.compile(r"(\b(?:ssl)?password\s*=\s*|\bpassfile\s*=\s*)('[^']*'|[^\s'&]+)", re.I)

#: The secrets of every URL seen in this process (longest masked first).
_SECRETS: set[str] = set()


class NXAlembicError(Exception):
    """A configuration, discovery or database problem, worded as what is wrong and how to fix it.

    The message is masked on the way in: the last line of defence against a password that
    an error path copied from a URL, a driver message or the bot's own exception.
    """

    def __init__(self, message: Any = "", *args: Any) -> None:
        super().__init__(mask(str(message)), *args)


@contextlib.contextmanager
def reported_to_alembic() -> Iterator[None]:
    """Raise an :class:`NXAlembicError` leaving the block as Alembic's ``CommandError``.

    For code that Alembic runs and whose exceptions reach Alembic's own caller: env.py, and the
    callbacks Alembic calls after env.py (writing a revision file).  The original is the
    ``__cause__``; :func:`unwrapped` recovers it.  Alembic is imported only on that way out.
    """
    try:
        yield
    except NXAlembicError as exc:
        from alembic.util import CommandError

        raise CommandError(str(exc)) from exc


def unwrapped(exc: BaseException) -> BaseException:
    """The :class:`NXAlembicError` that :func:`reported_to_alembic` turned into *exc*, else *exc*."""
    cause = exc.__cause__
    if isinstance(cause, NXAlembicError) and not isinstance(exc, NXAlembicError) and str(exc) == str(cause):
        return cause
    return exc


def _secrets_of(url: URL) -> Iterator[str]:
    if url.password:
        yield str(url.password)
    for key, value in url.query.items():
        if CREDENTIAL_KEY.search(key):
            yield from ([value] if isinstance(value, str) else value)


def remember_url(url: str | URL | None) -> None:
    """Remember the credentials of *url*, so that :func:`mask` hides them from now on."""
    if not url:
        return
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:  # not a URL: the patterns of mask() still apply to it
        return
    _SECRETS.update(secret for secret in _secrets_of(parsed) if secret)


def _forms(secret: str) -> set[str]:
    """*secret* as written and as the URL quoting of urllib and SQLAlchemy may render it."""
    return {secret, quote(secret), quote(secret, safe=""), quote(secret, safe=" +"), quote_plus(secret)}


def _standalone(form: str) -> re.Pattern[str]:
    """*form* where it is not part of a longer word: the password ``postgres`` is masked in
    ``postgres:postgres@`` but leaves ``postgresql+asyncpg://`` readable."""
    before = r"(?<![A-Za-z0-9])" if form[:1].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if form[-1:].isalnum() else ""
    return re.compile(before + re.escape(form) + after)


def mask(text: str, urls: Iterable[str | URL | None] = ()) -> str:
    """*text* without the credentials of *urls*, of every remembered URL, and of URL-like text."""
    for url in urls:
        remember_url(url)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        for form in sorted(_forms(secret), key=len, reverse=True):
            text = _standalone(form).sub(MASK, text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _QUERY.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _CONNINFO.sub(lambda m: f"{m.group(1)}{MASK}", text)


def hide_password(url: str | URL, text: str | None = None) -> str:
    """Return *text* (default: the URL itself) with the URL's credentials masked as ``***``.

    Driver errors sometimes echo the connection string; everything we print about a
    database goes through here so that a password never reaches a terminal or a log.
    Credentials in the query (``?password=...``) are masked like the password.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:  # not a URL at all: nothing we can recognise as a password
        return mask(str(url) if text is None else text)
    remember_url(parsed)
    if text is None:
        text = parsed.render_as_string(hide_password=True)
    return mask(text)


# -- where a failure came from (used by the env runner and the scratch replay) --


def failing_revision(exc: BaseException) -> str | None:
    """The ``revision`` id of the innermost revision script in *exc*'s traceback."""
    frame = revision_frame(exc)
    return frame[0] if frame else None


def revision_frame(exc: BaseException) -> tuple[str, str, int] | None:
    """Revision id, file and line of the innermost revision script in *exc*'s traceback."""
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        names = frame.f_globals
        if "revision" in names and "down_revision" in names and callable(names.get("upgrade")):
            found = (str(names["revision"]), frame.f_code.co_filename, lineno)
    return found


# -- how a failure is quoted in one line ------------------------------------------------------


def first_line(error: BaseException | str) -> str:
    """The first line of an exception's message (a driver's own one when SQLAlchemy wraps it),
    or of *error* as text; an exception without a message is named by its type."""
    if isinstance(error, BaseException):
        text = str(getattr(error, "orig", None) or error).strip()
        return text.splitlines()[0] if text else type(error).__name__
    lines = error.strip().splitlines()
    return lines[0] if lines else ""


def described(exc: BaseException) -> str:
    """``Type: first line of the message`` (just ``Type`` without one): an exception in one line."""
    text = first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def file_line(filename: str, lineno: int | None, root: Path | None = None) -> str:
    """``path:line`` for a message; with *root* (the project folder), the path is resolved and
    shown relative to *root* when the file is inside it."""
    if root is None:
        return f"{filename}:{lineno}"
    path = Path(filename).resolve()
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return f"{shown}:{lineno}"


# -- errors a deploy script or a bot's start-up code tells apart -----------------------------


class LockTimeout(NXAlembicError):
    """The migration lock was not obtained within the lock timeout the caller set.

    Its own type, so that a bot starting next to a long migration (another shard, a deploy
    step) can choose to retry or to start in read-only fashion instead of failing hard.
    """


class CogsBehind(NXAlembicError):
    """``verify`` mode found cogs whose database is behind their revisions; nothing was changed.

    :attr:`behind` maps each such cog to how many of its revisions are not applied, so a
    replica that must not migrate itself can report exactly what it waits for.
    """

    def __init__(self, behind: dict[str, int]) -> None:
        self.behind = dict(behind)
        listed = ", ".join(f"{cog} by {n} revision{'' if n == 1 else 's'}" for cog, n in self.behind.items())
        super().__init__(
            f"the database is behind the bot's revisions: {listed}; run 'nxalembic upgrade' (or start one "
            "process with mode='apply') before starting processes in verify mode"
        )


class CogsWithoutRevisions(NXAlembicError):
    """Cogs that have models but no revisions yet: their tables would never be created.

    A cog added to the bot before its first ``nxalembic migrate``.  Not a :class:`CogsBehind`:
    no other process's ``upgrade`` can fix it (a replica waiting on ``CogsBehind`` would wait
    for ever), only writing the cog's first revision can.  :attr:`cogs` names them, sorted.
    """

    def __init__(self, cogs: Iterable[str]) -> None:
        self.cogs = sorted(cogs)
        names = ", ".join(repr(cog) for cog in self.cogs)
        if len(self.cogs) == 1:
            text = (
                f"cog {names} has models but no revisions, so its tables would never be created; "
                f"run 'nxalembic migrate --cog {self.cogs[0]}', then 'nxalembic upgrade'"
            )
        else:
            text = (
                f"cogs {names} have models but no revisions, so their tables would never be created; "
                "run 'nxalembic migrate --cog NAME' for each, then 'nxalembic upgrade'"
            )
        super().__init__(text)
