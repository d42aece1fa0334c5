"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary folder, serve on a free loopback port.

The cluster trusts every local connection and runs with ``fsync`` off: it holds nothing worth keeping and is removed
by :meth:`ThrowawayCluster.stop` (or at interpreter exit when a run ends without calling it).
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

#: The role initdb creates as superuser; the tests connect as it without a password.
USER = "gridgov"
_DB_NAME = re.compile(r"[a-z0-9_]+")
_START_ATTEMPTS = 3


def bin_dir() -> Path | None:
    """The folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``), or None when none is installed.

    Returns
    -------
    Path or None
        ``pg_config --bindir`` when that has an ``initdb``, else the newest ``/usr/lib/postgresql/*/bin`` with one.
    """
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(found.stdout.strip())
        if found.returncode == 0 and (candidate / "initdb").exists():
            return candidate
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def available() -> tuple[bool, str]:
    """Whether a throwaway cluster with PostGIS can be started here.

    Returns
    -------
    tuple of (bool, str)
        ``(True, "")`` when initdb and the PostGIS extension are installed, else ``(False, what is missing)``.
    """
    programs = bin_dir()
    if programs is None:
        return False, "PostgreSQL's initdb was not found (no pg_config --bindir, no /usr/lib/postgresql/*/bin/initdb)"
    control = _share_dir(programs) / "extension" / "postgis.control"
    if not control.exists():
        return False, f"the PostGIS extension is not installed for the PostgreSQL in {programs} (no {control})"
    return True, ""


def _share_dir(programs: Path) -> Path:
    if (programs / "pg_config").exists():
        found = subprocess.run([str(programs / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return Path(found.stdout.strip())
    # Debian's layout: /usr/lib/postgresql/15/bin beside /usr/share/postgresql/15.
    return Path("/usr/share/postgresql") / programs.parent.name


def _free_port() -> int:
    # The port is free now; another process may take it before the server binds, hence the retries in start.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrowawayCluster:
    """A PostgreSQL server of its own in a temporary folder, started on construction.

    Parameters
    ----------
    max_connections
        The server's ``max_connections``.

    Attributes
    ----------
    folder : Path
        The temporary folder holding the data directory (``data``), the log (``server.log``) and the socket.
    port : int
        The loopback TCP port the server listens on.

    Examples
    --------
    ``with ThrowawayCluster() as cluster: cluster.create_database("x")`` then connect to ``cluster.url("x")``.
    """

    def __init__(self, *, max_connections: int = 200) -> None:
        programs = bin_dir()
        if programs is None:
            raise RuntimeError(f"cannot start a PostgreSQL cluster: {available()[1]}")
        self._bin = programs
        self.folder = Path(tempfile.mkdtemp(prefix="gridgov-pg-"))
        self.port = 0
        atexit.register(self.stop)
        try:
            if os.geteuid() == 0:
                # initdb refuses to run as root; the server's files then belong to the postgres OS user.
                shutil.chown(self.folder, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "--encoding", "UTF8",
                      "--locale", "C", "--no-sync")
            self._start(max_connections)
        except BaseException:
            self.stop()
            raise

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.folder / "data"

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.folder / "server.log"

    def url(self, dbname: str) -> str:
        """The connection URL of one database of this cluster.

        Parameters
        ----------
        dbname
            The database's name.

        Returns
        -------
        str
            ``postgresql://gridgov@127.0.0.1:PORT/dbname``.
        """
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create an empty database, or a copy of ``template``, and return its URL.

        Parameters
        ----------
        name
            The new database's name, of ``[a-z0-9_]+``.
        template
            The database to copy (it must have no open connections), or None for PostgreSQL's default ``template1``.

        Returns
        -------
        str
            The new database's URL.
        """
        sql = f"CREATE DATABASE {_checked(name, 'name')}"
        if template is not None:
            sql += f" TEMPLATE {_checked(template, 'template')}"
        self._admin(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connection still open to it.

        Parameters
        ----------
        name
            The database's name, of ``[a-z0-9_]+``; nothing happens when it does not exist.
        """
        self._admin(f"DROP DATABASE IF EXISTS {_checked(name, 'name')} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server (fast shutdown, immediate when that fails) and remove the folder; safe to call twice."""
        atexit.unregister(self.stop)
        if (self.data / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                if self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-t", "30", check=False) == 0:
                    break
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _start(self, max_connections: int) -> None:
        for _ in range(_START_ATTEMPTS):
            self.port = _free_port()
            options = ["-p", str(self.port), "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1",
                       "-c", f"max_connections={max_connections}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                       "-c", "full_page_writes=off"]
            # -w: pg_ctl returns once the server accepts connections.
            if self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
                         "-o", shlex.join(options), check=False) == 0:
                return
            if "could not bind" not in self.log.read_text(errors="replace"):
                break
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"
        raise RuntimeError(f"PostgreSQL did not start in {self.folder}; server log ends with:\n{tail}")

    def _run(self, program: str, *args: str, check: bool = True) -> int:
        command = [str(self._bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # The folder as working directory: the postgres OS user may not be allowed into the caller's.
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done.returncode

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(sql.encode())


def _checked(name: str, argument: str) -> str:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"`{argument}` must be a database name of [a-z0-9_]+, got {name!r}")
    return name
