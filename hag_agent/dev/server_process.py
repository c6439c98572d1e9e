"""Start a server process on a free loopback port, wait until it is healthy, stop it cleanly.

Used by the integration tests and the benchmarks (llama.cpp's server, vLLM).
"""

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
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A started server: its process (a group leader), address, log and start-up time."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    started_in: float

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the whole process group and check nothing is left behind."""
        if self.process.poll() is None:
            # The main process first, so it can shut its engine down; then the whole group.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_members(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in _group_members(self.process.pid):
            os.kill(pid, signal.SIGKILL)  # stragglers: killed, and still reported below
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
    cwd: Path | None = None,
) -> ServerProcess:
    """Start ``command`` (in ``cwd``) in its own process group; wait for ``health_path``."""
    log = log_path.open("wb")
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
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


def resident_mb(pgid: int) -> float:
    """Resident memory of every process in a group, in MiB."""
    total = 0
    for pid in _group_members(pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024
