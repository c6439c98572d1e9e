"""The server's own settings: where it listens, who may call it, how much it takes at once."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ClientParamsPolicy = Literal["pin", "ignore"]
"""What happens to sampling values a client sends: ``pin`` them (the client's word wins over
any proposal) or ``ignore`` them (HAG chooses; the response lists what was ignored)."""

DEFAULT_MODEL_NAME = "hag-agent"
"""The served model name when the backend names none (the embedded model)."""


class ServerSettings(BaseModel):
    """Settings of one server; per-request HAG options come on top of ``run_settings``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Interface to listen on (loopback by default: put a proxy in front to expose it)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port (0: any free one)."""
    api_keys: tuple[SecretStr, ...] = ()
    """Bearer keys a caller must present on ``/v1``; none: no authentication."""
    max_concurrency: int = Field(default=8, ge=1)
    """Requests in flight at once; more get 429 with Retry-After."""
    retry_after_s: int = Field(default=1, ge=0)
    """The Retry-After a 429 carries, in seconds."""
    max_body_bytes: int = Field(default=4 * 2**20, ge=1024)
    """Largest request body accepted; larger ones get 413."""
    client_params: ClientParamsPolicy = "pin"
    """What to do with sampling values a client sends explicitly."""
    passthrough: bool = False
    """Forward a request HAG cannot honour (tools, response_format, n > 1 ...) to the upstream
    unchanged instead of refusing it (endpoint backends)."""
    workers: int = Field(default=1, ge=1, le=64)
    """Server processes sharing the port, each with its own event loop, backend (an embedded
    model each) and ``max_concurrency``; their metrics are added up."""
    drain_s: float = Field(default=30.0, ge=0.0)
    """On SIGTERM, how long in-flight requests may take to finish before they are cut."""
    sessions: str | None = None
    """Where ``hag.session`` conversations are kept: a directory, a ``.sqlite`` file or a
    ``postgresql://`` URL; None: ``$HAG_SESSIONS_URL``, else the chat's data directory."""
    run_settings: dict[str, Any] = Field(default_factory=dict)
    """`HAGContext` settings of every run (backend, backend_options, proposer ...); a request's
    ``hag`` options override them."""
    model_name: str | None = None
    """The default model's name in ``/v1/models`` and requests; None: the backend's ``model``
    option (``HAG_MODEL`` for endpoints), else ``hag-agent``."""
    other_models: tuple[str, ...] = ()
    """More upstream models a request may name (endpoint backends): each runs with its name as
    the backend's ``model`` option."""

    def served_model(self) -> str:
        """The default model's name: what a request names to get the server's own settings."""
        if self.model_name:
            return self.model_name
        options = self.run_settings.get("backend_options") or {}
        backend = self.run_settings.get("backend")
        env_model = os.environ.get("HAG_MODEL") if backend not in (None, "embedded") else None
        return str(options.get("model") or env_model or DEFAULT_MODEL_NAME)

    def served_models(self) -> list[str]:
        """Every model name a request may use, the default first."""
        default = self.served_model()
        return [default, *(name for name in self.other_models if name != default)]

    def key_values(self) -> list[bytes]:
        """The API keys as bytes, for a constant-time comparison."""
        return [key.get_secret_value().encode() for key in self.api_keys]


__all__ = ["DEFAULT_MODEL_NAME", "ClientParamsPolicy", "ServerSettings"]
