"""Throwaway PostgreSQL and MariaDB servers for the fast tier, started once per test session.

The fast tier (``tests/test_unit_*.py``) calls the package's functions in-process on real
connections.  Where its server comes from, the first that applies:

* ``NXALEMBIC_TEST_POSTGRESQL`` / ``NXALEMBIC_TEST_MARIADB``: the URL of a running server (a
  maintenance database).  ``make mutation`` starts both once (``python tests/servers.py
  COMMAND...``, below) for all its mutants: mutmut runs pytest once per mutant, in a forked
  process, with ``--noconftest``, so a server started by a fixture would start per mutant.
* conftest.py's session servers (``pg_server``, ``mariadb_server``): ``make test``,
  ``make test-unit``, one test file run with pytest.
* a server started here, for the session (pytest ``--noconftest``, as mutmut runs it).

Without the server binaries the tests skip with the install hint, except in ``make test``
(``NXALEMBIC_TEST_WHEEL=1``), which installs them first: there a missing server fails.
Each test module gets a database of its own (:func:`database`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mariadb_server import INSTALL_HINT as MARIADB_HINT
from mariadb_server import MariaDBServer, find_binary
from postgres_server import INSTALL_HINT as POSTGRES_HINT
from postgres_server import PostgresServer, find_pg_bindir

#: The environment variable naming a running server, per kind.
ENV = {"postgresql": "NXALEMBIC_TEST_POSTGRESQL", "mariadb": "NXALEMBIC_TEST_MARIADB"}


def _installed(kind: str) -> bool:
    if kind == "postgresql":
        return find_pg_bindir() is not None
    return find_binary("mariadb-install-db") is not None and find_binary("mariadbd") is not None


def _admin_url(server: PostgresServer | MariaDBServer) -> str:
    """The sync URL of *server*'s maintenance database (psycopg, pymysql)."""
    if isinstance(server, PostgresServer):
        return server.url("postgres", driver="psycopg")
    return server.url("", driver="pymysql")


def server_url(kind: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """For a session-scoped fixture: the maintenance URL of a server of *kind* (see the module doc)."""
    url = os.environ.get(ENV[kind])
    if url:
        yield url
        return
    if not _installed(kind):
        if os.environ.get("NXALEMBIC_TEST_WHEEL") == "1":
            pytest.fail(POSTGRES_HINT if kind == "postgresql" else MARIADB_HINT)
        pytest.skip(POSTGRES_HINT if kind == "postgresql" else MARIADB_HINT)
    fixture = "pg_server" if kind == "postgresql" else "mariadb_server"
    try:
        server = request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:  # --noconftest: a server of our own
        with PostgresServer() if kind == "postgresql" else MariaDBServer() as own:
            yield _admin_url(own)
        return
    yield _admin_url(server)


@contextmanager
def database(admin_url: str, suffix: str = "") -> Iterator[str]:
    """A new database on the server of *admin_url*, dropped afterwards; its URL (same driver).

    Its name is unique, and ends with *suffix* (any characters the server allows).
    """
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    raw_name = "u_" + uuid.uuid4().hex[:12] + suffix
    name = admin.dialect.identifier_preparer.quote_identifier(raw_name)
    postgresql = admin.dialect.name == "postgresql"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield make_url(admin_url).set(database=raw_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f"DROP DATABASE IF EXISTS {name}{' WITH (FORCE)' if postgresql else ''}"
            )
        admin.dispose()


def main(command: list[str]) -> int:
    """Run *command* with a PostgreSQL and a MariaDB server started for it (URLs in :data:`ENV`)."""
    with ExitStack() as stack:
        env = dict(os.environ)
        env[ENV["postgresql"]] = _admin_url(stack.enter_context(PostgresServer()))
        env[ENV["mariadb"]] = _admin_url(stack.enter_context(MariaDBServer()))
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
