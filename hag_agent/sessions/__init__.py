"""Conversations kept by name: LangGraph's checkpointer plus one small table of our own.

Used by ``hag-agent chat`` and by ``hag-agent serve`` (``hag.session``): both keep a session in
the same place, a SQLite file in the data directory by default, or PostgreSQL
(``--sessions postgresql://...`` or ``$HAG_SESSIONS_URL``) so that several processes share them.
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
