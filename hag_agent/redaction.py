"""Keeping secrets out of what hag-agent shows: error messages, reprs, traces.

An API key reaches hag-agent as a backend option (``api_key``, read from ``HAG_API_KEY``). It
must go to the server and nowhere else, yet two paths would print it: a server that quotes the
key in its error body (some gateways answer 401 with "Incorrect API key provided: sk-..."),
which becomes a `BackendError` message; and the options dict itself, in a runnable's repr.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[redacted]"
"""What a secret is replaced by."""
SECRET_OPTION = re.compile(r"api_?key|token|secret|password|credential", re.IGNORECASE)
"""Option names whose values are secrets."""
_MIN_SECRET_CHARS = 6
# Shorter "keys" (vLLM's placeholder "EMPTY", "none") would mask ordinary words in messages.
_PLACEHOLDERS = frozenset({"empty", "none", "null", "dummy", "sk-no-key-required"})


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each real secret replaced by `MASK`."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS and secret.lower() not in _PLACEHOLDERS:
            text = text.replace(secret, MASK)
    return text


def masked_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``options`` whose secret-named values (`SECRET_OPTION`) read `MASK`."""
    return {
        key: MASK if SECRET_OPTION.search(str(key)) and value else value
        for key, value in options.items()
    }
