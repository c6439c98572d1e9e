"""Conversations kept by name: LangGraph's checkpointer plus one small table of our own.

Used by ``hag-agent chat`` and by ``hag-agent serve`` (``hag.session``): both keep a session in
the same place, a SQLite file in the data directory by default, or PostgreSQL
(``--sessions postgresql://...`` or ``$HAG_SESSIONS_URL``) so that several processes share them.
One module per concept: where sessions are (`location`), what a name may be (`names`), the two
databases (`databases`), one turn at a time per session (`turn_locks`), and the store the chat
and the server use (`store`).

A layer above the core (it imports `graph` for the checkpoint serializer) and below the front
ends; psycopg and the PostgreSQL checkpointer are imported only when a URL names PostgreSQL.
"""

from hag_agent.sessions.location import (
    SESSIONS_URL_VARIABLE,
    PostgresLocation,
    SessionsLocation,
    SqliteLocation,
    default_data_dir,
    sessions_location,
)
from hag_agent.sessions.names import check_session_name, new_session_name
from hag_agent.sessions.store import DATABASE_NAME, SessionInfo, SessionStore

__all__ = [
    "DATABASE_NAME",
    "SESSIONS_URL_VARIABLE",
    "PostgresLocation",
    "SessionInfo",
    "SessionStore",
    "SessionsLocation",
    "SqliteLocation",
    "check_session_name",
    "default_data_dir",
    "new_session_name",
    "sessions_location",
]
