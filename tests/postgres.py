"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, ``postgres`` on
127.0.0.1 and a free port (its unix socket in the same folder), one database per test.

Why a real server and not SQLite with a PostgreSQL dialect flag: what differs is the server's
behaviour (row locks across connections, strict types and lengths, timezone handling,
transactional DDL), which only the server itself shows.

The binaries come from Debian's ``postgresql`` package (installed here when missing, as root,
the way tests/chromium.py installs Chromium). ``postgres`` refuses to run as root, so as root
the server runs as the package's ``postgres`` system user through ``runuser``. Host
connections need a password (scram-sha-256), so the URLs the tests use carry one, as a
production URL would, and the tests can check it never reaches a log.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SERVER_USER = "postgres"  # the system user Debian's package creates
DB_USER = "alphaline"


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: the newest Debian version, else PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(re.sub(r"\D", "", p.parent.parent.name) or 0))
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def ensure_bindir() -> Path:
    """The server binaries, installed from Debian's package when missing (as root)."""
    bindir = find_bindir()
    if bindir:
        return bindir
    if os.geteuid() != 0:
        raise RuntimeError("the PostgreSQL server binaries (initdb, pg_ctl, postgres) are not "
                           "installed and this user cannot apt-get them: run "
                           "`apt-get install -y postgresql` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
    bindir = find_bindir()
    if not bindir:
        raise RuntimeError("apt-get installed postgresql but no initdb is under "
                           "/usr/lib/postgresql/*/bin or on PATH")
    return bindir


def _server_user() -> str | None:
    """Who the server runs as: None (this user) unless we are root, which postgres refuses."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false",
                        SERVER_USER], check=True, capture_output=True)
    return SERVER_USER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """One running server; :meth:`database` makes a fresh, empty database and its URL."""

    folder: Path
    port: int
    password: str
    bindir: Path
    run_as: str | None
    started_in: float = 0.0  # seconds from initdb to accepting connections
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def url(self, dbname: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def database(self, prefix: str = "t", driver: str = "postgresql+psycopg") -> str:
        """A new empty database; its URL (with the password, as production URLs have)."""
        import psycopg

        name = f"{re.sub(r'[^a-z0-9_]', '_', prefix.lower())[:40]}_{next(self._names)}"
        with psycopg.connect(host=str(self.folder), port=self.port, user=DB_USER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name, driver)

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.run_as, "--"] if self.run_as else []) + list(args)

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                                 "-m", "immediate", "-w", "stop"), capture_output=True)


def _start(bindir: Path, folder: Path, run_as: str | None) -> PostgresServer:
    password = secrets.token_urlsafe(12)
    (folder / "pwfile").write_text(password + "\n")
    if run_as:
        shutil.chown(folder, run_as)
        shutil.chown(folder / "pwfile", run_as)
    server = PostgresServer(folder, 0, password, bindir, run_as)
    done = subprocess.run(server._cmd(
        str(bindir / "initdb"), "-D", str(folder / "data"), "-U", DB_USER,
        f"--pwfile={folder / 'pwfile'}", "--auth-local=trust", "--auth-host=scram-sha-256",
        "--encoding=UTF8", "--locale=C", "--no-sync"), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    last = ""
    for _ in range(3):  # a free port can be taken between the probe and the bind: retry
        server.port = free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {folder} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200 -c timezone=UTC")
        done = subprocess.run(server._cmd(
            str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(server.log_file),
            "-w", "-t", "60", "-o", opts, "start"), capture_output=True, text=True)
        if done.returncode == 0:
            return server
        log = server.log_file.read_text() if server.log_file.exists() else "(no log)"
        last = f"{done.stdout}{done.stderr}\nserver log:\n{log[-4000:]}"
        if "already in use" not in log:
            break
    raise RuntimeError(f"PostgreSQL did not start ({bindir / 'postgres'}):\n{last}")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server for the block, stopped and its folder removed after."""
    bindir = ensure_bindir()
    run_as = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="alphaline-pg-"))
    t0 = time.monotonic()
    try:
        server = _start(bindir, folder, run_as)
        server.started_in = time.monotonic() - t0
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
