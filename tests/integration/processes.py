"""Start a server process on a free loopback port, wait until it is healthy, stop it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_in: float

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the whole process group and check nothing is left behind."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        left = _group_members(self.process.pid)
        assert not left, f"processes left behind: {left}"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid:
                state = (entry / "stat").read_text().split(") ")[1].split()[0]
                if state != "Z":
                    members.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return members


def start_server(
    command: list[str],
    *,
    port: int,
    health_path: str,
    deadline: float,
    log_path: Path,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``command`` in its own process group; wait for ``health_path`` to answer 200."""
    log = log_path.open("wb")
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path, 0.0)
    url = f"http://127.0.0.1:{port}{health_path}"
    while time.monotonic() - start < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    server.started_in = time.monotonic() - start
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"server not healthy within {deadline:.0f} s:\n{server.log_tail()}")
