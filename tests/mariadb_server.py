"""Throwaway MariaDB server for the test suite.

Like :mod:`postgres_server`: a real server (Debian's ``mariadb-server`` binaries, installed by
``.ci/install-mariadb.sh``), never the system service.  Each ``MariaDBServer`` gets its own data
directory from ``mariadb-install-db`` in a temp folder, listens on 127.0.0.1 on a free port and
on a unix socket inside that folder, and has a test user that logs in with a real password.

Tuned for throwaway data, because the suite runs hundreds of migrations on it (CI budget): the
data directory is on /dev/shm when there is one, and durability is switched off
(``innodb_flush_log_at_trx_commit=0``, no doublewrite buffer, no binary log, no fsync of the
data files), with a small buffer pool and no performance schema.  None of this changes what the
tests look at (SQL semantics, DDL auto-commit, ``GET_LOCK``); it only stops the server from
waiting for a disk that nobody will ever read again.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

if TYPE_CHECKING:  # imported where used: the matrix legs, which run no MariaDB test, lack the driver
    import pymysql

INSTALL_HINT = "MariaDB server binaries (mariadb-install-db, mariadbd) not found; run .ci/install-mariadb.sh"

#: How long the server may take to accept connections before the session errors, in seconds.
START_TIMEOUT = 60


def find_binary(name: str) -> Path | None:
    """*name* on PATH, else in /usr/sbin or /usr/bin (mariadbd is in /usr/sbin, often not on PATH)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    for folder in ("/usr/sbin", "/usr/bin"):
        if os.access(Path(folder) / name, os.X_OK):
            return Path(folder) / name
    return None


def _free_port() -> int:
    """Ask the kernel for an unused loopback port (tiny race window until the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The unprivileged user mariadbd runs as under root (it refuses to run as root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("mysql", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root but neither a 'mysql' nor a 'nobody' user exists")


class MariaDBServer:
    """A private MariaDB server; use as a context manager or call start()/stop().

    ``user`` may do anything (it creates and drops the tests' databases) and logs in with
    ``password`` over TCP (``mysql_native_password``), so wrong passwords are really rejected.
    """

    host = "127.0.0.1"

    def __init__(self, user: str = "nxtest", password: str = "s3cret-pw") -> None:
        install_db, mariadbd = find_binary("mariadb-install-db"), find_binary("mariadbd")
        if install_db is None or mariadbd is None:
            raise RuntimeError(INSTALL_HINT)
        self.install_db, self.mariadbd = install_db, mariadbd
        self.user = user
        self.password = password
        self.port = 0
        self.os_user = _server_user()
        self.tmpdir: Path | None = None
        self.process: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "MariaDBServer":
        """mariadb-install-db + mariadbd; raises RuntimeError (with the server log tail) on failure."""
        shm = Path("/dev/shm")
        self.tmpdir = Path(tempfile.mkdtemp(prefix="mariadbtest-", dir=shm if shm.is_dir() else None))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        assert self.tmpdir is not None
        self.datadir, self.socket = self.tmpdir / "data", self.tmpdir / "mariadb.sock"
        self.logfile = self.tmpdir / "server.log"
        init_file = self.tmpdir / "init.sql"
        password = self.password.replace("\\", "\\\\").replace("'", "\\'")
        init_file.write_text(
            f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{password}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'%' WITH GRANT OPTION;\n"
        )
        if self.os_user is not None:  # the server user must own everything it touches
            pw = pwd.getpwnam(self.os_user)
            for path in (self.tmpdir, init_file):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        user_opt = [f"--user={self.os_user}"] if self.os_user else []
        # --no-defaults first: no /etc/mysql/*.cnf, nothing of a system server leaks in.
        proc = subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={self.datadir}",
                *user_opt,
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
                "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
            ],
            cwd=self.tmpdir,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}"
            )
        self.port = _free_port()
        log = open(self.logfile, "w")
        self.process = subprocess.Popen(
            [
                self.mariadbd,
                "--no-defaults",
                f"--datadir={self.datadir}",
                *user_opt,
                f"--socket={self.socket}",
                f"--port={self.port}",
                f"--bind-address={self.host}",
                f"--pid-file={self.tmpdir / 'mariadbd.pid'}",
                f"--init-file={init_file}",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--performance-schema=OFF",
                # throwaway data: no durability, small footprint (see the module docstring)
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-flush-method=nosync",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=64M",
                "--sync-frm=0",
                "--max-connections=300",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
            ],
            cwd=self.tmpdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """Connect over TCP with the test user's password until it works, the server dies, or time
        runs out."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mariadbd exited with {self.process.returncode}\n"
                    f"--- server log tail ---\n{self._log_tail()}"
                )
            try:
                self._connect().close()
                return
            except _pymysql().err.OperationalError as exc:
                last = exc
                # Not a test waiting for a state it could observe otherwise: the server gives no
                # other sign of readiness than accepting a login (as pg_ctl -w also polls).
                time.sleep(0.05)
        raise RuntimeError(
            f"mariadbd did not accept connections within {START_TIMEOUT} s ({last})\n"
            f"--- server log tail ---\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Kill the server at once (its data is throwaway) and delete its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> "MariaDBServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------

    def create_database(self, name: str) -> None:
        self.sql(f"CREATE DATABASE {_ident(name)}")

    def drop_database(self, name: str) -> None:
        """Drop ``name``; connections still using it (a leaked pool) are killed first."""
        rows = self.sql(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()", (name,)
        )
        for (thread_id,) in rows:
            try:
                self.sql(f"KILL {int(thread_id)}")
            except _pymysql().err.OperationalError:  # it ended meanwhile
                pass
        self.sql(f"DROP DATABASE IF EXISTS {_ident(name)}")

    def sql(self, statement: str, args: tuple | None = None, dbname: str | None = None) -> list[tuple]:
        """Run one statement over TCP with the password, as a client would; its rows."""
        with self._connect(dbname) as conn, conn.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def url(self, dbname: str, driver: Literal["aiomysql", "asyncmy", "pymysql"] = "aiomysql") -> str:
        """SQLAlchemy URL, e.g. mysql+aiomysql://nxtest:s3cret-pw@127.0.0.1:PORT/db."""
        creds = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"mysql+{driver}://{creds}@{self.host}:{self.port}/{dbname}"

    # -- helpers -----------------------------------------------------------------

    def _connect(self, dbname: str | None = None) -> "pymysql.connections.Connection":
        return _pymysql().connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=dbname,
            connect_timeout=10,
            autocommit=True,
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def _ident(name: str) -> str:
    """Quote an SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def _pymysql() -> ModuleType:
    """The PyMySQL driver (the ``[mysql]`` extra), imported on first use."""
    import pymysql

    return pymysql
