"""The one exception hierarchy every public hag-agent call raises from.

Model nonsense never raises (it is clamped or replaced and recorded); these are for the caller's
mistakes and for a backend that fails after its own retries.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError


class HAGError(Exception):
    """Base class of every error hag-agent raises on purpose."""


class HAGInputError(HAGError, ValueError):
    """The input is unusable: empty prompt, wrong type, missing field."""


class SessionStoreError(HAGError):
    """The sessions database refused a write (a full disk, most often); it keeps what it had.

    Not the caller's input: the server answers it with 503, the CLI with exit code 2.
    """


class SessionBusyError(HAGInputError):
    """Another turn of the same session is running (in this process or another)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"session {name} is running another turn; a session runs one turn at a time"
        )
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), (self.name,))


class InvalidSettingsError(HAGError, ValueError):
    """A setting or pinned hyperparameter is invalid or outside its bound.

    Attributes:
        field: The setting or hyperparameter name.
        value: The rejected value.
        bound: The bound it violated, in words (e.g. ``"[0.0, 2.0]"``); empty when the value
            is invalid for another reason, which ``detail`` gives.
    """

    def __init__(self, field: str, value: object, bound: str, detail: str = "") -> None:
        self.field = field
        self.value = value
        self.bound = bound
        self.detail = detail
        # Without a bound the value is wrong in shape (a missing field, a wrong type): the
        # detail says how, and a missing field has no value to show.
        message = f"{field}={value!r}" if bound or value is not None else field
        if bound:
            message += f" is outside its bound {bound}"
        if detail:
            message += f": {detail}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle with the constructor's own arguments (a cluster's worker sends it back)."""
        return (type(self), (self.field, self.value, self.bound, self.detail))


class ConfigurationError(HAGError):
    """hag-agent is not set up to run: no backend, unknown strategy, missing package."""


class LearnedHeadError(ConfigurationError):
    """A learned proposer head file is missing, unreadable, or not a head file."""


class HeadMismatchError(LearnedHeadError):
    """A learned head does not fit the embeddings it is given (dimensions or model differ)."""


class BackendError(HAGError):
    """The model backend failed after its retries.

    Attributes:
        status: HTTP status when there was one, else None.
        body: The start of the response body (at most 500 characters), if any.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        self.message = message
        self.status = status
        self.body = body[:500]
        detail = message
        if status is not None:
            detail = f"{detail} (HTTP {status})"
        if self.body:
            detail = f"{detail}: {self.body}"
        super().__init__(detail)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle with the constructor's own arguments (a cluster's worker sends it back)."""
        rebuild = functools.partial(type(self), status=self.status, body=self.body)
        return (rebuild, (self.message,))


class BackendTimeoutError(BackendError):
    """The backend did not answer within the deadline."""


class BackendUnavailableError(BackendError):
    """The backend could not be reached (refused, reset, dropped connection)."""


class EmbeddingsUnsupportedError(BackendError):
    """The backend cannot embed text (its `Capabilities.embeddings` is False)."""


class WorkerLostError(HAGError):
    """A cluster's worker died while running a job, and the cluster's own retries ran out."""


def invalid_setting(
    exc: ValidationError, prefix: str = "", default: str = "settings", owner: str = ""
) -> InvalidSettingsError:
    """The first validation error as an `InvalidSettingsError`, its field ``prefix`` + path.

    A broken limit (``le``, ``ge`` ...) is the bound; a missing field is named as required (by
    ``owner``), without the enclosing object pydantic gives as its input.
    """
    first = exc.errors()[0]
    where, message = first_error(exc, default)
    if first["type"] == "missing":
        return InvalidSettingsError(prefix + where, None, "", f"required {owner}".rstrip())
    limits = first.get("ctx") or {}
    bound = ", ".join(f"{k} {v}" for k, v in limits.items() if k != "error")
    return InvalidSettingsError(prefix + where, first.get("input"), bound, message)


def first_error(exc: ValidationError, default: str) -> tuple[str, str]:
    """Where the first validation error is (dotted field path, ``default`` at the top) and why."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or default
    return where, str(first.get("msg", ""))
