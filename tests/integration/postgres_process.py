"""A real PostgreSQL server for tests: Debian's binaries, a temporary data directory, a free
port on 127.0.0.1, trust authentication, stopped (and its files removed) afterwards.

Skips when no PostgreSQL is installed (``apt-get install postgresql``: `.ci/run` does, and fails
on such a skip) or when the postgres extra is missing. PostgreSQL refuses to run as root: as
root, it runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hag_agent.dev.server_process import free_port
from hag_agent.testing.extras import missing_extra, skip_reason

NO_POSTGRES = (
    "no PostgreSQL server binaries (Debian's postgresql package: apt-get install postgresql)"
)


def postgres_bin() -> Path | None:
    """The directory of ``initdb`` and ``postgres``: on the PATH, else Debian's newest."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    return None


def _as_postgres_user(root: Path) -> list[str]:
    """The command prefix that runs PostgreSQL here (as root: the postgres user)."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(f"{NO_POSTGRES}: as root it needs the postgres user")
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """A started PostgreSQL; its URL."""
    missing = missing_extra("postgres")
    if missing:
        pytest.skip(skip_reason("postgres", missing))
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip(NO_POSTGRES)
    # Not pytest's tmp_path: its parent is private to this user, and the server may run as
    # another.
    root = Path(tempfile.mkdtemp(prefix="hag-postgres-"))
    (root / "sockets").mkdir()
    prefix = _as_postgres_user(root)
    data = root / "data"
    initdb = [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "hag"]
    initdb += ["--auth=trust", "-E", "UTF8", "--no-instructions"]
    subprocess.run(initdb, check=True, capture_output=True)
    port = free_port()
    log = (root / "postgres.log").open("wb")
    postgres = [*prefix, str(binaries / "postgres"), "-D", str(data), "-p", str(port)]
    postgres += ["-c", "listen_addresses=127.0.0.1", "-k", str(root / "sockets")]
    server = subprocess.Popen(
        postgres,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"postgresql://hag@127.0.0.1:{port}/postgres"
    try:
        _wait_until_up(url, server, root)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGINT)  # fast shutdown
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_up(url: str, server: subprocess.Popen[bytes], root: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log = (root / "postgres.log").read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL exited with {server.returncode}:\n{log}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("PostgreSQL did not accept connections within 60 s")
