"""Throwaway PostgreSQL server for the test suite.

The tests need a real PostgreSQL (not SQLite, not mocks), but must not depend on a
system service or touch one: each ``PostgresServer`` runs its own cluster in a temp
directory, listening only on 127.0.0.1 on a free port, with real password auth.
Install the binaries with ``.ci/install-postgres.sh``.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

INSTALL_HINT = "PostgreSQL server binaries (initdb, pg_ctl) not found; run .ci/install-postgres.sh"


def find_pg_bindir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None.

    PATH wins so a developer can pick a specific version; otherwise the newest Debian
    install under /usr/lib/postgresql/<version>/bin (which is not on PATH) is used.
    Symlinks are resolved so we end up in the real bindir next to ``postgres``/``psql``.
    """
    candidates: list[Path] = []
    if (initdb := shutil.which("initdb")) is not None:
        candidates.append(Path(initdb).resolve().parent)
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    for bindir in candidates:
        if all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "pg_ctl")):
            return bindir
    return None


def _free_port() -> int:
    """Ask the kernel for an unused loopback port (tiny race window until the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """Unprivileged user to run the server as, or None to run as ourselves.

    initdb/postgres refuse to run as root, so under root (CI containers) we drop to the
    ``postgres`` user the Debian package creates, falling back to ``nobody``.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root but neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """A private PostgreSQL cluster; use as a context manager or call start()/stop().

    ``user`` is a superuser created by initdb with a password; TCP and socket logins both
    require scram-sha-256 auth, so wrong passwords are really rejected.
    """

    host = "127.0.0.1"

    def __init__(self, user: str = "nxtest", password: str = "s3cret-pw") -> None:
        bindir = find_pg_bindir()
        if bindir is None:
            raise RuntimeError(INSTALL_HINT)
        self.bindir = bindir
        self.user = user
        self.password = password
        self.port = 0
        self.os_user = _server_user()
        self.tmpdir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "PostgresServer":
        """initdb + pg_ctl start; raises RuntimeError (with the server log tail) on failure."""
        self.tmpdir = Path(tempfile.mkdtemp(prefix="pgtest-"))
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def _start(self) -> None:
        assert self.tmpdir is not None
        self.datadir, self.sockdir = self.tmpdir / "data", self.tmpdir / "sock"
        self.logfile = self.tmpdir / "server.log"
        self.sockdir.mkdir()
        pwfile = self.tmpdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user is not None:  # the server user must own everything it touches
            pw = pwd.getpwnam(self.os_user)
            for path in (self.tmpdir, self.sockdir, pwfile):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._run_as_server(
            "initdb",
            "-D",
            self.datadir,
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        pwfile.unlink()
        self.port = _free_port()
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '{self.host}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.sockdir}'\nmax_connections = 100\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        try:
            self._run_as_server("pg_ctl", "-D", self.datadir, "-l", self.logfile, "-w", "-t", "30", "start")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- server log tail ---\n{self._log_tail()}") from None

    def stop(self) -> None:
        """Kill the server quickly (no checkpoint: data is throwaway) and delete its files."""
        if self.tmpdir is not None and (self.tmpdir / "data" / "postmaster.pid").exists():
            self._run_as_server("pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
        self._cleanup()

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------

    def create_database(self, name: str) -> None:
        self.psql(f"CREATE DATABASE {_ident(name)}")

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if connections (e.g. a leaked pool) are still open."""
        self.psql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through psql over TCP with the password, as a client would."""
        psql = self.bindir / "psql" if (self.bindir / "psql").exists() else shutil.which("psql")
        if psql is None:
            raise RuntimeError(INSTALL_HINT.replace("initdb, pg_ctl", "psql"))
        env = {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"}
        proc = subprocess.run(
            [
                psql,
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                dbname,
                "-At",
                "-c",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({sql!r}): {proc.stderr.strip()}")
        return proc.stdout

    def url(self, dbname: str, driver: Literal["asyncpg", "psycopg"] = "asyncpg") -> str:
        """SQLAlchemy URL, e.g. postgresql+asyncpg://nxtest:s3cret-pw@127.0.0.1:PORT/db."""
        creds = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"postgresql+{driver}://{creds}@{self.host}:{self.port}/{dbname}"

    # -- helpers -----------------------------------------------------------------

    def _run_as_server(self, exe: str, *args: str | Path) -> None:
        """Run a server binary, as the unprivileged server user when we are root."""
        cmd: list[str | Path] = [self.bindir / exe, *args]
        if self.os_user is not None:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.os_user, "--", *cmd]
            else:
                pw = pwd.getpwnam(self.os_user)
                cmd = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", *cmd]
        # cwd: the server user may not be able to enter our cwd (e.g. /root).
        proc = subprocess.run(cmd, cwd=self.tmpdir, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise RuntimeError(f"{exe} failed (exit {proc.returncode}): {output}")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def _cleanup(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def _ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
