"""The two databases sessions can live in, behind one small interface.

Each gives: SQL on our own table (written with ``?`` placeholders), LangGraph's checkpointer
for synchronous runs (the chat) and an asynchronous one (the server), and a per-session
`TurnLock`. PostgreSQL needs the ``postgres`` extra (``langgraph-checkpoint-postgres``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from hag_agent.errors import ConfigurationError, HAGInputError
from hag_agent.graph import checkpoint_serializer
from hag_agent.sessions.location import PostgresLocation, SessionsLocation, SqliteLocation
from hag_agent.sessions.turn_locks import AdvisoryTurnLock, FileTurnLock, TurnLock

TABLE = "hag_chat_sessions"
"""Our table: when each session started and was last used, its turns, its saved settings."""
_COLUMNS = (
    "name TEXT PRIMARY KEY, created {real} NOT NULL, updated {real} NOT NULL,"
    " turns INTEGER NOT NULL DEFAULT 0, settings TEXT NOT NULL DEFAULT '{{}}'"
)
_SETUP_LOCK = "SELECT pg_advisory_lock(hashtextextended('hag-agent sessions setup', 0))"
_SETUP_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('hag-agent sessions setup', 0))"


class SessionDatabase(Protocol):
    """What `SessionStore` needs of a database."""

    @property
    def location(self) -> SessionsLocation:
        """Where the database is."""

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        """For synchronous runs (``stream``/``invoke``)."""

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What the database's driver raises (a refused write among them)."""

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on our table (committed at once); its rows."""

    def async_checkpointer(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A checkpointer for asynchronous runs (``astream``), open while the context is."""

    def turn_lock(self, name: str) -> TurnLock:
        """Session ``name``'s lock, taken (raises `SessionBusyError` when held elsewhere)."""

    def close(self) -> None:
        """Close the connection."""


class SqliteDatabase:
    """A SQLite file: one connection for our table and the synchronous checkpointer."""

    def __init__(self, location: SqliteLocation) -> None:
        """Open (creating if needed) the file.

        Raises:
            HAGInputError: The directory or database cannot be created or opened.
        """
        self.location = location
        self.errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        self._lock = threading.Lock()  # the connection is shared by threads (the server's)
        try:
            location.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(location.path, check_same_thread=False)
            self.query(f"CREATE TABLE IF NOT EXISTS {TABLE} ({_COLUMNS.format(real='REAL')})")
        except (OSError, sqlite3.Error) as exc:
            message = f"cannot open the sessions database in {location.path.parent}: {exc}"
            raise HAGInputError(message) from None
        self.checkpointer = SqliteSaver(self.connection, serde=checkpoint_serializer())

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on our table (committed at once); its rows."""
        with self._lock:
            rows = self.connection.execute(sql, parameters).fetchall()
            self.connection.commit()
        return rows

    @contextlib.asynccontextmanager
    async def async_checkpointer(self) -> AsyncIterator[Any]:
        """An ``aiosqlite`` connection to the same file, and LangGraph's checkpointer on it."""
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        connection = await aiosqlite.connect(self.location.path)
        try:
            yield AsyncSqliteSaver(connection, serde=checkpoint_serializer())
        finally:
            await connection.close()

    def turn_lock(self, name: str) -> TurnLock:
        """``flock`` on ``<database>.locks/<name>``."""
        directory = self.location.path.with_name(self.location.path.name + ".locks")
        return FileTurnLock(directory, name)

    def close(self) -> None:
        """Close the database."""
        self.connection.close()


class PostgresDatabase:
    """A PostgreSQL database: one connection for our table and the synchronous checkpointer."""

    def __init__(self, location: PostgresLocation) -> None:
        """Connect, and create our table and LangGraph's (once, whoever comes first).

        Raises:
            ConfigurationError: The ``postgres`` extra is not installed.
            HAGInputError: The database cannot be reached or set up.
        """
        try:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise ConfigurationError(
                f"sessions in PostgreSQL need the postgres extra ({exc.name} is missing): "
                "pip install 'hag-agent[postgres]'"
            ) from None
        self.location = location
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        try:
            self.connection: Any = psycopg.connect(
                location.url, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
            self.checkpointer = PostgresSaver(self.connection, serde=checkpoint_serializer())
            # Two processes starting at once would race on CREATE TABLE: one sets up at a time.
            self.connection.execute(_SETUP_LOCK)
            try:
                columns = _COLUMNS.format(real="DOUBLE PRECISION")
                self.connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})")
                self.checkpointer.setup()
            finally:
                self.connection.execute(_SETUP_UNLOCK)
        except psycopg.Error as exc:
            message = f"cannot open the sessions database {location.describe()}: {exc}"
            raise HAGInputError(message) from None

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on our table (autocommitted); its rows."""
        cursor = self.connection.execute(sql.replace("?", "%s"), parameters)
        if cursor.description is None:
            return []
        return [tuple(row.values()) for row in cursor.fetchall()]

    @contextlib.asynccontextmanager
    async def async_checkpointer(self) -> AsyncIterator[Any]:
        """A pool of connections, and LangGraph's asynchronous checkpointer on it."""
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        options = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        pool: Any = AsyncConnectionPool(self.location.url, kwargs=options, open=False)
        await pool.open()
        try:
            yield AsyncPostgresSaver(pool, serde=checkpoint_serializer())
        finally:
            await pool.close()

    def turn_lock(self, name: str) -> TurnLock:
        """An advisory lock on a connection of its own."""
        return AdvisoryTurnLock(self.location.url, name)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


def open_database(location: SessionsLocation) -> SessionDatabase:
    """The database at ``location``, open.

    Raises:
        ConfigurationError: PostgreSQL without the ``postgres`` extra.
        HAGInputError: The database cannot be opened.
    """
    if isinstance(location, PostgresLocation):
        return PostgresDatabase(location)
    return SqliteDatabase(location)


__all__ = ["TABLE", "PostgresDatabase", "SessionDatabase", "SqliteDatabase", "open_database"]
