"""Chat sessions on disk: LangGraph's SQLite checkpointer plus one small table of our own.

The conversation itself lives in the checkpointer (thread id = session name). The table keeps
what the checkpointer does not: when a session started, its completed turns, and its pinned
settings, so ``--session NAME`` resumes all of it after a restart. A turn cancelled half way
leaves checkpoints behind; `SessionStore.head` skips them, so the next turn forks from the last
completed one and the cancelled one never shows up in the history.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver

from hag_agent.chat.settings import ChatSettings
from hag_agent.errors import HAGInputError
from hag_agent.graph import CompiledHAGGraph, checkpoint_serializer

DATABASE_NAME = "sessions.sqlite"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_data_dir() -> Path:
    """``$HAG_DATA_DIR``, else ``$XDG_DATA_HOME/hag-agent``, else ``~/.local/share/hag-agent``."""
    if os.environ.get("HAG_DATA_DIR"):
        return Path(os.environ["HAG_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "hag-agent"


def check_session_name(name: str) -> str:
    """The name, if usable as a session name (letters, digits, ``.``, ``_``, ``-``; 64 at most).

    Raises:
        HAGInputError: For any other name.
    """
    if not _NAME.match(name):
        raise HAGInputError(
            f"bad session name {name!r}: use letters, digits, '.', '_' or '-' (64 at most), "
            "starting with a letter or digit"
        )
    return name


def new_session_name() -> str:
    """A fresh name from the current time, e.g. ``2026-11-26-161203``."""
    return time.strftime("%Y-%m-%d-%H%M%S")


@dataclass(frozen=True)
class SessionInfo:
    """One saved session, for ``/sessions``."""

    name: str
    turns: int
    created: float
    updated: float


class SessionStore:
    """The sessions database: a checkpointer for the graph, and each session's record."""

    def __init__(self, directory: Path) -> None:
        """Open (creating if needed) the database under ``directory``.

        Raises:
            HAGInputError: The directory or database cannot be created or opened.
        """
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / DATABASE_NAME
            # One connection for the checkpointer and our table; the chat is one thread.
            self.connection = sqlite3.connect(self.path, check_same_thread=False)
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS hag_chat_sessions ("
                " name TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,"
                " turns INTEGER NOT NULL DEFAULT 0, settings TEXT NOT NULL DEFAULT '{}')"
            )
            self.connection.commit()
        except (OSError, sqlite3.Error) as exc:
            message = f"cannot open the sessions database in {directory}: {exc}"
            raise HAGInputError(message) from None
        self.checkpointer = SqliteSaver(self.connection, serde=checkpoint_serializer())

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    def sessions(self) -> list[SessionInfo]:
        """Every saved session, most recently used first."""
        rows = self.connection.execute(
            "SELECT name, turns, created, updated FROM hag_chat_sessions ORDER BY updated DESC"
        ).fetchall()
        return [SessionInfo(*row) for row in rows]

    def exists(self, name: str) -> bool:
        """Whether a session of that name was saved."""
        row = self.connection.execute(
            "SELECT 1 FROM hag_chat_sessions WHERE name = ?", (name,)
        ).fetchone()
        return row is not None

    def settings(self, name: str) -> ChatSettings:
        """The session's saved settings (defaults for a new session)."""
        row = self.connection.execute(
            "SELECT settings FROM hag_chat_sessions WHERE name = ?", (name,)
        ).fetchone()
        return ChatSettings.model_validate_json(row[0]) if row else ChatSettings()

    def save(self, name: str, settings: ChatSettings, *, turns: int | None = None) -> None:
        """Record the session and its settings, and its completed turns when given.

        The count is set, not added to: a process killed between a turn's last checkpoint and
        this write leaves it one behind, and the next `ChatTerminal.open` sets it right.
        """
        now = time.time()
        try:
            self.connection.execute(
                "INSERT INTO hag_chat_sessions (name, created, updated, turns, settings)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " updated = excluded.updated, settings = excluded.settings,"
                " turns = COALESCE(?, hag_chat_sessions.turns)",
                (name, now, now, turns or 0, settings.model_dump_json(), turns),
            )
            self.connection.commit()
        except sqlite3.Error as exc:
            raise self.write_failed(exc) from None

    def write_failed(self, exc: sqlite3.Error) -> HAGInputError:
        """The error for a write the database refused, a full disk most often.

        SQLite rolls the refused transaction back, so the database keeps what it had.
        """
        return HAGInputError(
            f"cannot write the sessions database {self.path}: {exc} (is the disk full?)"
        )

    def head(self, graph: CompiledHAGGraph, name: str) -> RunnableConfig:
        """The config to run the session's next turn from: its last completed turn.

        A cancelled turn's checkpoints still wait for a next node; they are skipped, so the next
        turn forks from before them.
        """
        thread: RunnableConfig = {"configurable": {"thread_id": name}}
        for snapshot in graph.get_state_history(thread):
            if not snapshot.next and snapshot.values.get("messages"):
                return snapshot.config
        return thread

    def messages(self, graph: CompiledHAGGraph, head: RunnableConfig) -> list[Any]:
        """The conversation up to ``head``."""
        if "checkpoint_id" not in head.get("configurable", {}):
            return []
        return list(graph.get_state(head).values.get("messages") or [])
