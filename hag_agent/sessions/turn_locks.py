"""One turn at a time per session, across threads, processes and machines.

A lock dies with its holder: a process killed mid-turn (``kill -9``) frees its sessions at once,
without a lease to expire. On SQLite the lock is ``flock`` on a file per session beside the
database (one machine); on PostgreSQL it is an advisory lock held by a connection of its own,
which the server drops when that connection goes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any, Protocol

from hag_agent.errors import SessionBusyError


class TurnLock(Protocol):
    """A held lock on one session; ``release`` may be called more than once."""

    def release(self) -> None:
        """Let the next turn in."""


class FileTurnLock:
    """``flock`` on ``<directory>/<name>``: exclusive per open file, so per turn, not process."""

    def __init__(self, directory: Path, name: str) -> None:
        """Take the lock at once.

        Raises:
            SessionBusyError: When another turn holds it.
        """
        directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise SessionBusyError(name) from None

    def release(self) -> None:
        """Close the file, which drops the lock (the file stays: deleting it would race)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class AdvisoryTurnLock:
    """``pg_try_advisory_lock`` on a connection of its own, keyed by a 64-bit hash of the name."""

    def __init__(self, url: str, name: str) -> None:
        """Take the lock at once.

        Raises:
            SessionBusyError: When another turn holds it.
        """
        import psycopg

        self._key = f"hag-agent session {name}"
        self._connection: Any = psycopg.connect(url, autocommit=True)
        row = self._connection.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._key,)
        ).fetchone()
        if not row or not row[0]:
            self._connection.close()
            self._connection = None
            raise SessionBusyError(name)

    def release(self) -> None:
        """Unlock explicitly (the server frees a closed connection's locks only later)."""
        if self._connection is None:
            return
        with contextlib.suppress(Exception):  # a broken connection has lost the lock anyway
            self._connection.execute(
                "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (self._key,)
            )
        self._connection.close()
        self._connection = None


__all__ = ["AdvisoryTurnLock", "FileTurnLock", "TurnLock"]
