"""A private PostgreSQL server for the tests: its own cluster in a temporary folder.

:func:`postgres_server` runs ``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package
(``/usr/lib/postgresql/<version>/bin``, or ``initdb`` on the PATH), listening on 127.0.0.1
at a free port and on a Unix socket inside the cluster's folder, with password
authentication. PostgreSQL refuses to run as root: under root (CI) the cluster belongs to
``nobody`` and every server program runs as that user; otherwise as whoever runs the tests.
On the way out the server is stopped and its folder removed, whatever happened.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .processes import free_port

USER, PASSWORD = "archbuilder", "archbuilder-test"  # the cluster's superuser; loopback only
START_SECONDS = 60


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and how to reach a database on it."""

    port: int
    folder: Path
    bin: Path

    def url(self, database: str, *, driver: str = "postgresql+psycopg") -> str:
        """The SQLAlchemy URL of ``database``, with psycopg 3 named (any SQLAlchemy 2)."""
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def createdb(self, name: str) -> str:
        """Create the database ``name``; its URL."""
        _run([self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name], self)
        return self.url(name)


def server_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest, else the PATH's; None if neither."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    initdb = found[-1] if found else shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def _owner() -> pwd.struct_passwd | None:
    """The user the server runs as when the tests run as root (PostgreSQL refuses root)."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _run(command: list, server: Server | None, *, folder: Path | None = None) -> None:
    owner = _owner()
    env = {**os.environ, "PGPASSWORD": PASSWORD, "LC_ALL": "C"}
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
        env=env,
        cwd=folder or (server.folder if server else None),
        user=owner.pw_uid if owner else None,
        group=owner.pw_gid if owner else None,
        extra_groups=[] if owner else None,
    )
    if result.returncode:
        raise RuntimeError(f"{Path(str(command[0])).name} failed ({result.returncode}):\n{result.stderr}")


@contextmanager
def postgres_server() -> Iterator[Server]:
    """A fresh cluster, started; stopped and deleted on exit. Skips the test when PostgreSQL
    is not installed, except under CI (``CI`` set), where .ci/run installs it: there it fails."""
    bin = server_bin()
    if bin is None:
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's tmp_path: its folders are private to the user running the tests,
    # and the server's user must reach its own.
    folder = Path(tempfile.mkdtemp(prefix="archbuilder-pg-"))
    owner = _owner()
    try:
        if owner:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        (folder / "password").write_text(PASSWORD + "\n")
        if owner:
            os.chown(folder / "password", owner.pw_uid, owner.pw_gid)
        data = folder / "data"
        initdb = [bin / "initdb", "-D", data, "-U", USER, "--pwfile", folder / "password"]
        _run([*initdb, "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-sync"], None, folder=folder)
        server = _start(bin, folder, data)
        try:
            yield server
        finally:
            _run([bin / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], server)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(bin: Path, folder: Path, data: Path) -> Server:
    """pg_ctl start on a free port, again on another if the port was taken meanwhile."""
    for attempt in range(3):
        server = Server(free_port(), folder, bin)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {data} -c fsync=off "
            "-c max_connections=60 -c shared_buffers=16MB"
        )
        try:
            _run([bin / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "-o", options, "start"], server)  # fmt: skip
            return server
        except RuntimeError:
            log = folder / "server.log"
            if attempt == 2 or "in use" not in (log.read_text() if log.exists() else ""):
                raise
    raise AssertionError("unreachable")
