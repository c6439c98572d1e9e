"""Session names: what a name may be, and a fresh one."""

from __future__ import annotations

import re
import time

from hag_agent.errors import HAGInputError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit; 64 at most (the
name is also a lock file's name)."""
_NAME = re.compile(NAME_PATTERN)


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


__all__ = ["NAME_PATTERN", "check_session_name", "new_session_name"]
