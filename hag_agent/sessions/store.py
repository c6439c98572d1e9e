"""The sessions store: a checkpointer for the graph, and each session's record.

The conversation itself lives in LangGraph's checkpointer (thread id = session name). Our table
keeps what the checkpointer does not: when a session started, its completed turns, and its
saved settings, so a session resumes all of it after a restart. A turn that failed or was
cancelled half way leaves checkpoints behind; `head` skips them, so the next turn forks from
the last completed one and the unfinished one never shows up in the history.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot
from pydantic import BaseModel

from hag_agent.errors import SessionStoreError
from hag_agent.graph import CompiledHAGGraph
from hag_agent.sessions.databases import TABLE, SessionDatabase, open_database
from hag_agent.sessions.location import (
    DATABASE_NAME,
    SessionsLocation,
    SqliteLocation,
    sessions_location,
)
from hag_agent.sessions.turn_locks import TurnLock

SettingsT = TypeVar("SettingsT", bound=BaseModel)


@dataclass(frozen=True)
class SessionInfo:
    """One saved session, for ``/sessions``."""

    name: str
    turns: int
    created: float
    updated: float


class SessionStore:
    """The sessions database: a checkpointer for the graph, each session's record, its lock."""

    def __init__(self, where: SessionsLocation | Path | str | None = None) -> None:
        """Open (creating if needed) the database.

        Args:
            where: A location, a directory (``sessions.sqlite`` in it) or what ``--sessions``
                takes; None: ``$HAG_SESSIONS_URL``, else the data directory.

        Raises:
            HAGInputError: The database cannot be created or opened.
            ConfigurationError: PostgreSQL without the ``postgres`` extra.
        """
        if isinstance(where, Path):
            location: SessionsLocation = SqliteLocation(where / DATABASE_NAME)
        elif isinstance(where, str | None):
            location = sessions_location(where)
        else:
            location = where
        self.location = location
        self.database: SessionDatabase = open_database(location)
        self.checkpointer = self.database.checkpointer

    @property
    def path(self) -> Path | None:
        """The SQLite file, when sessions live in one."""
        return self.location.path if isinstance(self.location, SqliteLocation) else None

    def close(self) -> None:
        """Close the database."""
        self.database.close()

    def sessions(self) -> list[SessionInfo]:
        """Every saved session, most recently used first."""
        rows = self.database.query(
            f"SELECT name, turns, created, updated FROM {TABLE} ORDER BY updated DESC"
        )
        return [SessionInfo(*row) for row in rows]

    def exists(self, name: str) -> bool:
        """Whether a session of that name was saved."""
        return bool(self.database.query(f"SELECT 1 FROM {TABLE} WHERE name = ?", (name,)))

    def settings(self, name: str, kind: type[SettingsT]) -> SettingsT:
        """The session's saved settings as ``kind`` (its defaults for a new session)."""
        rows = self.database.query(f"SELECT settings FROM {TABLE} WHERE name = ?", (name,))
        return kind.model_validate_json(rows[0][0]) if rows else kind()

    def save(
        self, name: str, settings: BaseModel | None = None, *, turns: int | None = None
    ) -> None:
        """Record the session, with its settings and its completed turns when given.

        The count is set, not added to: a process killed between a turn's last checkpoint and
        this write leaves it one behind, and the next count from the history sets it right.
        """
        now = time.time()
        saved = None if settings is None else settings.model_dump_json()
        try:
            self.database.query(
                f"INSERT INTO {TABLE} (name, created, updated, turns, settings)"
                " VALUES (?, ?, ?, ?, COALESCE(?, '{}')) ON CONFLICT(name) DO UPDATE SET"
                f" updated = excluded.updated, settings = COALESCE(?, {TABLE}.settings),"
                f" turns = COALESCE(?, {TABLE}.turns)",
                (name, now, now, turns or 0, saved, saved, turns),
            )
        except self.write_errors as exc:
            raise self.write_failed(exc) from None

    @property
    def write_errors(self) -> tuple[type[Exception], ...]:
        """What the database raises for a refused write (a checkpoint's included)."""
        return self.database.errors

    def write_failed(self, exc: Exception) -> SessionStoreError:
        """The error for a write the database refused, a full disk most often.

        The database rolls the refused transaction back, so it keeps what it had.
        """
        where = self.database.location.describe()
        return SessionStoreError(
            f"cannot write the sessions database {where}: {exc} (is the disk full?)"
        )

    def turn_lock(self, name: str) -> TurnLock:
        """Take session ``name``'s lock for one turn; ``release`` it when the turn ends.

        Raises:
            SessionBusyError: Another turn of that session runs (here or in another process).
        """
        return self.database.turn_lock(name)

    def head(self, graph: CompiledHAGGraph, name: str) -> RunnableConfig:
        """The config to run the session's next turn from: its last completed turn.

        An unfinished turn's checkpoints still wait for a next node; they are skipped, so the
        next turn forks from before them.
        """
        return last_completed(graph.get_state_history(thread(name)), name)

    async def ahead(self, graph: CompiledHAGGraph, name: str) -> RunnableConfig:
        """`head`, for a graph with an asynchronous checkpointer."""
        return await alast_completed(graph.aget_state_history(thread(name)), name)

    def next_turn(self, graph: CompiledHAGGraph, name: str) -> RunnableConfig:
        """Where the session's next turn starts; call it holding the session's `turn_lock`.

        Before a first completed turn there is no checkpoint to fork from: a config without
        one would continue the unfinished turn's state (its question would stay in the
        conversation), so those leftovers are deleted first.
        """
        head = self.head(graph, name)
        saver = graph.checkpointer
        if "checkpoint_id" not in head["configurable"] and isinstance(saver, BaseCheckpointSaver):
            saver.delete_thread(name)
        return head

    async def anext_turn(self, graph: CompiledHAGGraph, name: str) -> RunnableConfig:
        """`next_turn`, for a graph with an asynchronous checkpointer."""
        head = await self.ahead(graph, name)
        saver = graph.checkpointer
        if "checkpoint_id" not in head["configurable"] and isinstance(saver, BaseCheckpointSaver):
            await saver.adelete_thread(name)
        return head

    def messages(self, graph: CompiledHAGGraph, head: RunnableConfig) -> list[Any]:
        """The conversation up to ``head``."""
        if "checkpoint_id" not in head.get("configurable", {}):
            return []
        return list(graph.get_state(head).values.get("messages") or [])

    async def amessages(self, graph: CompiledHAGGraph, head: RunnableConfig) -> list[Any]:
        """`messages`, for a graph with an asynchronous checkpointer."""
        if "checkpoint_id" not in head.get("configurable", {}):
            return []
        return list((await graph.aget_state(head)).values.get("messages") or [])


def thread(name: str) -> RunnableConfig:
    """The config naming session ``name``'s thread (the checkpointer's key)."""
    return {"configurable": {"thread_id": name}}


def _completed(snapshot: StateSnapshot) -> bool:
    return not snapshot.next and bool(snapshot.values.get("messages"))


def last_completed(history: Iterable[StateSnapshot], name: str) -> RunnableConfig:
    """The newest completed snapshot's config in ``history`` (newest first), else the thread."""
    for snapshot in history:
        if _completed(snapshot):
            return snapshot.config
    return thread(name)


async def alast_completed(history: AsyncIterator[StateSnapshot], name: str) -> RunnableConfig:
    """`last_completed` over an asynchronous history."""
    async for snapshot in history:
        if _completed(snapshot):
            return snapshot.config
    return thread(name)


__all__ = ["DATABASE_NAME", "SessionInfo", "SessionStore", "thread"]
