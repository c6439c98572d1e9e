"""Errors as OpenAI's API reports them, and which status each of hag-agent's errors gets.

The body is ``{"error": {"message", "type", "param", "code"}}``, which the official SDKs turn
into their typed exceptions (``BadRequestError``, ``AuthenticationError`` ...). The caller's
mistakes are 4xx; a backend that fails after its retries is 502 (an error answer), 503
(unreachable or overloaded) or 504 (timed out), naming the cause.
"""

from __future__ import annotations

from typing import Any

from hag_agent.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
    HAGError,
    InvalidSettingsError,
    SessionStoreError,
)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "upstream_unavailable",
    504: "upstream_timeout",
}


class APIError(HAGError):
    """A request that ends in an HTTP error, with what OpenAI's error body says.

    Attributes:
        status: The HTTP status.
        param: The request field at fault, if one is.
        code: A short machine-readable reason.
        headers: Extra response headers (Retry-After, WWW-Authenticate).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON body, in OpenAI's format."""
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "server_error"),
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    """A 400 naming the field at fault."""
    return APIError(400, message, param=param, code=code)


def from_hag_error(exc: HAGError, *, settings_prefix: str = "hag.") -> APIError:
    """The HTTP error for one of hag-agent's typed errors.

    Args:
        exc: What the run raised.
        settings_prefix: Where invalid settings live in the request (``hag.`` by default;
            sampling fields the client sent are named by `translation`).
    """
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, BackendError):
        return _backend_error(exc)
    if isinstance(exc, InvalidSettingsError):
        return bad_request(str(exc), param=f"{settings_prefix}{exc.field}")
    if isinstance(exc, ConfigurationError):
        return bad_request(f"this server cannot run that: {exc}", code="unsupported_setting")
    if isinstance(exc, SessionStoreError):
        return APIError(503, f"sessions are unavailable: {exc}", code="sessions_unavailable")
    return bad_request(str(exc), param="messages", code="invalid_input")


def _backend_error(exc: BackendError) -> APIError:
    cause = f"the model backend failed: {exc}"
    if isinstance(exc, BackendTimeoutError):
        return APIError(504, cause, code="upstream_timeout")
    if isinstance(exc, BackendUnavailableError):
        return APIError(503, cause, code="upstream_unreachable")
    if exc.status in (429, 503):
        return APIError(503, cause, code="upstream_overloaded", headers={"Retry-After": "1"})
    if exc.status == 404:
        return APIError(502, cause, code="upstream_not_found")
    return APIError(502, cause, code="upstream_error")


__all__ = ["APIError", "bad_request", "from_hag_error"]
