"""One exception type for every problem a user can fix.

It subclasses :class:`alembic.util.CommandError`, so the stock ``alembic`` command line
already prints it as a single ``FAILED: ...`` line and exits 1 without a traceback
(``--raiseerr`` shows one).  The ``nxalembic`` command does the same.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url


class NXAlembicError(CommandError):
    """A configuration, discovery or database problem, worded as what is wrong and how to fix it."""


def hide_password(url: str | URL, text: str | None = None) -> str:
    """Return *text* (default: the URL itself) with the URL's password masked as ``***``.

    Driver errors sometimes echo the connection string; everything we print about a
    database goes through here so that a password never reaches a terminal or a log.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:  # not a URL at all: nothing we can recognise as a password
        return str(url) if text is None else text
    if text is None:
        return parsed.render_as_string(hide_password=True)
    if parsed.password:
        secret = str(parsed.password)
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return text
