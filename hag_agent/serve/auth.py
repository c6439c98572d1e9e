"""Bearer API keys: the caller's key against the server's, in constant time.

A missing or wrong key is a 401 in OpenAI's format. The key itself is never repeated in an
error, a log line or a trace.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from hag_agent.serve.api_errors import APIError


def check_bearer(authorization: str | None, keys: Sequence[bytes]) -> None:
    """Accept the request when its ``Authorization: Bearer KEY`` matches one of ``keys``.

    Every key is compared, each in constant time, so the time taken says nothing about which
    key came close. No keys: authentication is off.

    Raises:
        APIError: 401 when keys are set and none matches.
    """
    if not keys:
        return
    scheme, _, given = (authorization or "").partition(" ")
    presented = given.strip().encode() if scheme.lower() == "bearer" else b""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key)
    if not matched:
        raise APIError(
            401,
            "a valid API key is required: send Authorization: Bearer <key>",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


__all__ = ["check_bearer"]
