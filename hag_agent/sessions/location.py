"""Where sessions are kept: a SQLite file (the default) or a PostgreSQL database.

One rule for ``hag-agent chat`` and ``hag-agent serve``: ``--sessions`` (a directory, a
``.sqlite`` file or a ``postgresql://`` URL), else ``$HAG_SESSIONS_URL``, else the data
directory (``$HAG_DATA_DIR``, ``$XDG_DATA_HOME/hag-agent`` or ``~/.local/share/hag-agent``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SESSIONS_URL_VARIABLE = "HAG_SESSIONS_URL"
"""Where sessions are kept when no ``--sessions`` is given."""
DATABASE_NAME = "sessions.sqlite"
"""The SQLite file's name inside a sessions directory."""
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def default_data_dir() -> Path:
    """``$HAG_DATA_DIR``, else ``$XDG_DATA_HOME/hag-agent``, else ``~/.local/share/hag-agent``."""
    if os.environ.get("HAG_DATA_DIR"):
        return Path(os.environ["HAG_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "hag-agent"


@dataclass(frozen=True)
class SqliteLocation:
    """A SQLite file on this machine."""

    path: Path

    def describe(self) -> str:
        """The location, for messages."""
        return str(self.path)


@dataclass(frozen=True)
class PostgresLocation:
    """A PostgreSQL database, by its libpq URL."""

    url: str

    def describe(self) -> str:
        """The URL with any password masked (it appears in messages and logs)."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


SessionsLocation = SqliteLocation | PostgresLocation


def sessions_location(value: str | Path | None = None) -> SessionsLocation:
    """Where sessions are kept, from ``--sessions`` (or None), the environment and defaults.

    A ``postgresql://`` URL is PostgreSQL; a path ending in ``.sqlite``, ``.sqlite3`` or ``.db``
    is that SQLite file; any other path is a directory holding ``sessions.sqlite``.
    """
    if value is None or str(value) == "":
        value = os.environ.get(SESSIONS_URL_VARIABLE) or default_data_dir()
    text = str(value)
    if text.startswith(_POSTGRES_SCHEMES):
        return PostgresLocation(text)
    path = Path(text).expanduser()
    if path.suffix in _FILE_SUFFIXES:
        return SqliteLocation(path)
    return SqliteLocation(path / DATABASE_NAME)


__all__ = [
    "DATABASE_NAME",
    "SESSIONS_URL_VARIABLE",
    "PostgresLocation",
    "SessionsLocation",
    "SqliteLocation",
    "default_data_dir",
    "sessions_location",
]
